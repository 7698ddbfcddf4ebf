//! Recording rules: the sums the compute-resources dashboards show for the whole cluster and
//! for one namespace, recorded once per evaluation instead of computed by every viewer from
//! every container's series at each step of a range query. Measured without them
//! (bench/thanos-query, BENCHMARKS.md): one viewer of the cluster dashboard cost Thanos Query
//! ~10 MiB and 0.17 s of CPU per node, so 2 GiB at 200 nodes; the query, not Query, was the
//! cost, and one Prometheus pays it too.
//!
//! Each recorded series lives on one shard, so that Thanos Query never takes two shards' partial
//! sums for replicas of one series (it deduplicates by `prometheus_replica`, which is also what
//! tells shards apart): cAdvisor's sums keep `node` (each node's kubelet is one target, and
//! hashmod keeps a target on one shard), and kube-state-metrics is one target. The dashboards sum
//! them further. With one Prometheus the same rules give the same series.

use super::{KUBE_STATE_METRICS, RecordRule};
use crate::config::Config;

/// CPU cores the containers of a namespace use on a node: `cluster`, `node`, `namespace`.
pub const CPU_USAGE: &str = "node_namespace:container_cpu_usage_seconds:sum_rate";
/// Memory working set of the containers of a namespace on a node: `cluster`, `node`,
/// `namespace`.
pub const MEMORY_USAGE: &str = "node_namespace:container_memory_working_set_bytes:sum";
/// Requests of a namespace's pods that hold them now (Pending or Running), by `cluster`,
/// `namespace` and `resource` (`cpu` in cores, `memory` in bytes).
pub const REQUESTS: &str = "namespace_resource:kube_pod_container_resource_requests:sum_active";
/// Limits, as [`REQUESTS`].
pub const LIMITS: &str = "namespace_resource:kube_pod_container_resource_limits:sum_active";

/// The name of the group and of its PrometheusRule.
pub const GROUP: &str = "automon-recording";

/// Real containers: not the pod's own cgroup (no container name) nor a sandbox (no image).
pub const CONTAINERS: &str = r#"container!="", image!="""#;
/// cAdvisor's series, as the kubelet ServiceMonitor labels them.
const CADVISOR: &str = r#"job="kubelet", metrics_path="/metrics/cadvisor""#;

pub(super) fn rules(config: &Config) -> Vec<RecordRule> {
    let window = rate_window(config);
    let committed = |kind: &str| {
        format!(
            "sum by (cluster, namespace, resource) (\n  \
             kube_pod_container_resource_{kind}{{{KUBE_STATE_METRICS}, resource=~\"cpu|memory\"}}\n  \
             * on (cluster, namespace, pod) group_left ()\n  \
             max by (cluster, namespace, pod) (kube_pod_status_phase{{{KUBE_STATE_METRICS}, phase=~\"Pending|Running\"}} == 1)\n)"
        )
    };
    vec![
        RecordRule::new(
            CPU_USAGE,
            format!(
                "sum by (cluster, node, namespace) (rate(container_cpu_usage_seconds_total{{{CADVISOR}, {CONTAINERS}}}[{window}]))"
            ),
        ),
        RecordRule::new(
            MEMORY_USAGE,
            format!(
                "sum by (cluster, node, namespace) (container_memory_working_set_bytes{{{CADVISOR}, {CONTAINERS}}})"
            ),
        ),
        RecordRule::new(REQUESTS, committed("requests")),
        RecordRule::new(LIMITS, committed("limits")),
    ]
}

/// Four scrape intervals, the least Grafana's `$__rate_interval` would take: one missed scrape
/// leaves three samples to the rate (2m at the default 30s).
fn rate_window(config: &Config) -> String {
    let scrape = config.prometheus.scrape_interval.seconds().unwrap_or(30);
    format!("{}s", 4 * scrape.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::rules::reads_across_targets;

    #[test]
    fn each_rule_reads_one_job_so_every_shard_records_its_own_part() {
        for r in rules(&Config::default()) {
            assert!(!reads_across_targets(&r.expr), "{}: {}", r.record, r.expr);
        }
    }

    #[test]
    fn the_rate_window_is_four_scrape_intervals() {
        assert_eq!(rate_window(&Config::default()), "120s");
        let fast = Config::default()
            .with_set("prometheus.scrapeInterval=5s")
            .unwrap();
        assert_eq!(rate_window(&fast), "20s");
        assert!(rules(&fast)[0].expr.ends_with("[20s]))"));
    }

    #[test]
    fn cadvisor_sums_keep_the_node_that_places_them_on_one_shard() {
        let r = rules(&Config::default());
        for name in [CPU_USAGE, MEMORY_USAGE] {
            let rule = r.iter().find(|r| r.record == name).unwrap();
            assert!(
                rule.expr.starts_with("sum by (cluster, node, namespace)"),
                "{rule:?}"
            );
        }
    }
}
