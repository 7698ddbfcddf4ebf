//! The stack's alerts about itself: Prometheus failing to reload its configuration, to evaluate
//! rules, to compact its TSDB or to keep up with remote write; Alertmanager failing to notify;
//! the operator failing to reconcile.

use super::AlertRule;
use crate::config::Config;

pub(super) fn rules(_config: &Config) -> Vec<AlertRule> {
    Vec::new()
}
