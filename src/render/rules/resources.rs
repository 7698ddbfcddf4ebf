//! Resource alerts: CPU throttling, memory near the limit, namespaces over their quota,
//! PersistentVolumes filling up or predicted to, PersistentVolumeClaims pending. From cAdvisor,
//! the kubelet's volume stats and kube-state-metrics.

use super::AlertRule;
use crate::config::Config;

pub(super) fn rules(_config: &Config) -> Vec<AlertRule> {
    Vec::new()
}
