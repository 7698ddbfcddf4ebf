//! Sizing: how many series the stack will hold for a cluster of N nodes, and the requests,
//! limits, retention size and shard count that follow. Pure arithmetic over a per-node series
//! budget; every figure below says where it comes from. Explicit amounts in the configuration
//! always win ([`crate::config::Resources::overlaid`]).
//!
//! Sizes move in tiers, not node by node: a cluster is sized for the smallest [`TIERS`] entry
//! at or above its node count, so a node joining or leaving does not restart Prometheus, and a
//! second `enable` on a cluster that grew by a few nodes changes nothing.

use crate::{
    config::{Config, Quantity, Resources, Shards},
    output::thousands,
};

/// The annotations on the `Prometheus` object that say what it was sized for, so that `status`
/// and `doctor` can tell when the cluster has outgrown it.
pub const SIZED_FOR_ANNOTATION: &str = "automon.io/sized-for-nodes";
pub const SERIES_ANNOTATION: &str = "automon.io/estimated-series";

/// Node counts the stack is sized for. Up to the first, every cluster gets the same stack
/// (the floors below); past the last, sizes grow in steps of the last.
pub const TIERS: &[u32] = &[50, 100, 250, 500, 1_000, 2_000, 3_000, 5_000];

/// Pods per node the estimate assumes: Kubernetes' documented limits for large clusters are
/// 5,000 nodes and 150,000 pods ("Considerations for large clusters"), i.e. 30 per node.
pub const PODS_PER_NODE: u64 = 30;

/// Series one node's node-exporter serves, as automon runs it (its collectors and excludes),
/// measured with node_exporter 1.12.1 (`bench/sizing`, BENCHMARKS.md): 318 that do not depend
/// on the hardware, 17 per CPU, 36 per network device, 18 per disk, 9 per filesystem. For a
/// reference node of 16 CPUs, 2 network devices, 2 disks and 4 filesystems: 734.
pub const NODE_EXPORTER_SERIES: u64 = 318 + 17 * 16 + 36 * 2 + 18 * 2 + 9 * 4;

/// The kubelet's own `/metrics` per node, after automon's drops of unused histograms
/// (`kubelet.dropUnusedSeries`), and without them. An estimate: the kubelet serves about 1,500
/// series, most of them histogram buckets of runtime, API client and storage operation
/// latencies (15 buckets per operation type).
pub const KUBELET_SERIES: u64 = 400;
pub const KUBELET_SERIES_UNDROPPED: u64 = 1_500;

/// cAdvisor (`/metrics/cadvisor`) per pod, after the drops: about 25 for the pod's own cgroup
/// and network, 35 per container at 1.5 containers per pod. Published planning figures put
/// cAdvisor at 50-200 series per container before any drop; without the drops, take 100 per
/// container and 50 for the pod.
pub const CADVISOR_SERIES_PER_POD: u64 = 80;
pub const CADVISOR_SERIES_PER_POD_UNDROPPED: u64 = 200;

/// kube-state-metrics per pod (the `kube_pod_*` families with one series per pod, per
/// container or per condition) and per node (`kube_node_*`, including the conditions).
pub const KSM_SERIES_PER_POD: u64 = 35;
pub const KSM_SERIES_PER_NODE: u64 = 25;

/// Series of Prometheus, Alertmanager, Grafana, the operator and kube-state-metrics'
/// own telemetry: independent of the cluster's size.
pub const STACK_SERIES: u64 = 5_000;

/// The API server's `/metrics`, per API server, after automon's drops (`render::apiserver`).
/// Measured on the test cluster's kube-apiserver 1.36 a few minutes after start: 25,200 series,
/// 6,500 after the drops (1,600 of them latency buckets, 8 of 24 kept). A cluster in use
/// touches more resources and verbs, each with its own counters and buckets: take 8,000.
pub const API_SERVER_SERIES: u64 = 8_000;
/// API servers the estimate counts: an HA control plane's three (managed control planes list
/// two or three endpoints for the `kubernetes` Service). Per API server, not per node: their
/// series hardly grow with the cluster.
pub const API_SERVERS: u64 = 3;

/// Head memory per series to request, and to allow as the limit. Measured (`bench/sizing`):
/// Prometheus 3.16.0 holding 100,000 and 400,000 cAdvisor-like series took 2,896-3,197 B of
/// resident memory per added series in two runs (3.1-3.7 KB on average), before any query or
/// compaction. Robust Perception's analysis of 2.x agrees (about 732 B per series plus labels,
/// doubled for Go's garbage collector); published planning calculators use 2.5 to 8 KiB per
/// series once queries, compaction and WAL replay are counted. Request what was measured with a
/// margin, allow the top.
pub const REQUEST_BYTES_PER_SERIES: u64 = 4 * 1024;
pub const LIMIT_BYTES_PER_SERIES: u64 = 8 * 1024;

/// Series one Prometheus shard is sized to carry (`prometheus.shards: auto`): 2 million is
/// about 8 GiB requested, 16 GiB allowed.
pub const SERIES_PER_SHARD: u64 = 2_000_000;

/// One CPU core per this many series at a 30 s scrape interval, about 33,000 samples a second
/// (ingestion, compaction and rule evaluation); a shorter interval needs proportionally more.
const SERIES_PER_CORE: u64 = 1_000_000;

/// Bytes per sample on disk: Prometheus' storage documentation gives 1-2 bytes; take 2.
const BYTES_PER_SAMPLE: u64 = 2;

/// The floors: an estimate never goes below them (they are what automon shipped before sizing
/// existed).
const PROMETHEUS_FLOOR: (u64, u64, u64) = (200, 1 << 30, 2 << 30);
const KSM_FLOOR: (u64, u64, u64) = (10, 64 << 20, 256 << 20);
const OPERATOR_FLOOR: (u64, u64, u64) = (100, 128 << 20, 256 << 20);

/// kube-state-metrics' documented resource recommendation for clusters over 100 nodes: 200 MiB
/// and 0.1 core, plus 2 MiB and 0.001 core per node.
const KSM_BASE_MEMORY: u64 = 200 << 20;
const KSM_MEMORY_PER_NODE: u64 = 2 << 20;
const KSM_BASE_MILLICORES: u64 = 100;
const KSM_MILLICORES_PER_NODE: u64 = 1;

/// The operator keeps every Node in its informer cache (it maintains the kubelet Service's
/// endpoints): automon's own loop measured 157 MiB for 5,000 full kwok Nodes (BENCHMARKS.md),
/// about 32 KiB each; double it for real nodes' longer status, on top of a base of 64 MiB.
const OPERATOR_BYTES_PER_NODE: u64 = 64 * 1024;
const OPERATOR_BASE_MEMORY: u64 = 64 << 20;

/// What the ruler federates per node (`rules::CLUSTER_SERIES`): `up` of node-exporter and of
/// the kubelet's two endpoints, `kube_node_info`, `kube_node_labels` and a few
/// `kube_node_status_allocatable` (10); for KubeContainerMemoryNearLimit, each container's
/// working set and memory limit (1.5 containers per pod, see [`CADVISOR_SERIES_PER_POD`]); for
/// the volume alerts, five series per PersistentVolumeClaim, taking one claim per node.
pub const RULER_SERIES_PER_NODE: u64 = 10 + 3 * PODS_PER_NODE + 5;
const RULER_FLOOR: (u64, u64, u64) = (50, 256 << 20, 512 << 20);
/// Thanos Query over the shards holds the series a query touches while it evaluates it.
/// Measured (`bench/thanos-query`, BENCHMARKS.md): four viewers of the node dashboards
/// (cluster overview and node detail, every panel at once, refreshed every 30 s) peaked at
/// 360 KiB of Query's memory and took 0.21 millicores per node, above ~70 MiB. So: 256 MiB and
/// 0.1 core, plus 384 KiB and a quarter millicore per node; the limit twice the request.
const QUERY_FLOOR: (u64, u64, u64) = (100, 256 << 20, 512 << 20);
const QUERY_BYTES_PER_NODE: u64 = 384 * 1024;
const QUERY_NODES_PER_MILLICORE: u64 = 4;

/// What the stack is sized for, and the sizes.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// The node count sized for (a tier), or `None`: not known, sized for the first tier.
    pub nodes: Option<u32>,
    /// The tier the sizes are for, known or not.
    pub sized_for: u32,
    pub series_per_node: u64,
    /// Every series the stack's Prometheus holds (all shards together).
    pub series: u64,
    /// Prometheus shards (1 is no sharding).
    pub shards: u32,
    /// Each Prometheus shard's requests and limits, before the configuration's own.
    pub prometheus: Resources,
    pub kube_state_metrics: Resources,
    pub operator: Resources,
    /// The ruler beside sharded Prometheus: it holds the few series per node that the
    /// cluster-wide rules read ([`RULER_SERIES_PER_NODE`]).
    pub ruler: Resources,
    /// Thanos Query, when there is more than one shard.
    pub query: Resources,
    /// Bytes one shard needs on disk for the retention (`enable` says it; `retentionSize`
    /// follows the volume, when there is one).
    pub disk_bytes_per_shard: u64,
}

/// The tier a cluster of `nodes` is sized for.
pub fn tier(nodes: u32) -> u32 {
    let last = *TIERS.last().expect("tiers");
    TIERS
        .iter()
        .copied()
        .find(|&t| nodes <= t)
        .unwrap_or_else(|| nodes.div_ceil(last) * last)
}

/// The tier a stack sized for `have` nodes should move to for a cluster of `nodes` now, if any:
/// up as soon as the cluster passes its tier; down only once the cluster is a fifth below the
/// tier under it, so that a cluster at a boundary does not resize Prometheus back and forth.
pub fn next_tier(have: u32, nodes: u32) -> Option<u32> {
    let want = tier(nodes);
    if want > have || tier(nodes.saturating_add(nodes / 4)) < have {
        Some(want)
    } else {
        None
    }
}

/// Series per node: node-exporter, the kubelet, cAdvisor and kube-state-metrics for the pods
/// a node runs. Without the kubelet job, no kubelet or cAdvisor series.
pub fn series_per_node(config: &Config) -> u64 {
    let kubelet = match (config.kubelet.enabled, config.kubelet.drop_unused_series) {
        (false, _) => 0,
        (true, true) => KUBELET_SERIES + CADVISOR_SERIES_PER_POD * PODS_PER_NODE,
        (true, false) => {
            KUBELET_SERIES_UNDROPPED + CADVISOR_SERIES_PER_POD_UNDROPPED * PODS_PER_NODE
        }
    };
    NODE_EXPORTER_SERIES + kubelet + KSM_SERIES_PER_NODE + KSM_SERIES_PER_POD * PODS_PER_NODE
}

/// The API servers' series, when automon scrapes them.
pub fn api_server_series(config: &Config) -> u64 {
    if config.api_server.enabled {
        API_SERVER_SERIES * API_SERVERS
    } else {
        0
    }
}

/// Sizes for a cluster of `nodes` nodes (`None`: unknown, e.g. `render` without `--nodes`:
/// sized for the first tier, a small cluster).
pub fn estimate(config: &Config, nodes: Option<u32>) -> Estimate {
    let per_node = series_per_node(config);
    let n = tier(nodes.unwrap_or(TIERS[0]));
    let series = per_node * u64::from(n) + STACK_SERIES + api_server_series(config);
    let shards = match config.prometheus.shards {
        Shards::Count(s) => s,
        Shards::Auto => u32::try_from(series.div_ceil(SERIES_PER_SHARD)).unwrap_or(u32::MAX),
    }
    .max(1);
    let per_shard = series.div_ceil(u64::from(shards));
    let interval = config
        .prometheus
        .scrape_interval
        .seconds()
        .unwrap_or(30)
        .max(1);
    let cores_millis = per_shard * 1000 * 30 / interval / SERIES_PER_CORE;
    let prometheus = sized(
        PROMETHEUS_FLOOR,
        cores_millis,
        per_shard * REQUEST_BYTES_PER_SERIES,
        per_shard * LIMIT_BYTES_PER_SERIES,
    );
    let ksm_memory = KSM_BASE_MEMORY + KSM_MEMORY_PER_NODE * u64::from(n);
    let kube_state_metrics = if n > 100 {
        sized(
            KSM_FLOOR,
            KSM_BASE_MILLICORES + KSM_MILLICORES_PER_NODE * u64::from(n),
            ksm_memory,
            2 * ksm_memory,
        )
    } else {
        floor(KSM_FLOOR)
    };
    let operator_memory = OPERATOR_BASE_MEMORY + OPERATOR_BYTES_PER_NODE * u64::from(n);
    let operator = sized(
        OPERATOR_FLOOR,
        OPERATOR_FLOOR.0,
        operator_memory,
        2 * operator_memory,
    );
    let ruler_series = RULER_SERIES_PER_NODE * u64::from(n);
    let ruler = sized(
        RULER_FLOOR,
        ruler_series * 1000 * 30 / interval / SERIES_PER_CORE,
        ruler_series * REQUEST_BYTES_PER_SERIES,
        ruler_series * LIMIT_BYTES_PER_SERIES,
    );
    let query_memory = QUERY_FLOOR.1 + QUERY_BYTES_PER_NODE * u64::from(n);
    let query = sized(
        QUERY_FLOOR,
        QUERY_FLOOR.0 + u64::from(n) / QUERY_NODES_PER_MILLICORE,
        query_memory,
        2 * query_memory,
    );
    let retention = config.prometheus.retention.seconds().unwrap_or(0);
    let disk_bytes_per_shard = per_shard * retention / interval * BYTES_PER_SAMPLE;
    Estimate {
        nodes: nodes.map(|_| n),
        sized_for: n,
        series_per_node: per_node,
        series,
        shards,
        prometheus,
        kube_state_metrics,
        operator,
        ruler,
        query,
        disk_bytes_per_shard,
    }
}

impl Estimate {
    /// Prometheus' `retentionSize`: what the configuration says, else 85% of its volume (so
    /// that Prometheus deletes old blocks before the volume fills), else none (an emptyDir
    /// has no size to stay under).
    pub fn retention_size(&self, config: &Config) -> Option<String> {
        if let Some(size) = &config.prometheus.retention_size {
            return Some(size.clone());
        }
        let volume = bytes_of(config.prometheus.storage.size.as_ref()?)?;
        Some(format!("{}MB", volume * 85 / 100 / 1_000_000))
    }

    /// `23,000 series per node · 1,000 nodes · 3 shards`, for messages.
    pub fn describe(&self) -> String {
        match self.nodes {
            None => format!("sized for up to {} nodes (no node count given)", TIERS[0]),
            Some(n) => format!(
                "sized for up to {}: ~{} series ({} per node){}, ~{} GB of disk{} for the retention",
                crate::output::plural_thousands(u64::from(n), "node"),
                thousands(self.series),
                thousands(self.series_per_node),
                if self.shards > 1 {
                    format!(
                        ", {} shards of ~{} (one view through Thanos Query)",
                        self.shards,
                        thousands(self.series.div_ceil(u64::from(self.shards)))
                    )
                } else {
                    String::new()
                },
                thousands(self.disk_bytes_per_shard.div_ceil(1_000_000_000)),
                if self.shards > 1 { " per shard" } else { "" },
            ),
        }
    }
}

/// Requests of `millicores` and `memory`, a memory limit of `limit`, none below `floor`.
fn sized(floor: (u64, u64, u64), millicores: u64, memory: u64, limit: u64) -> Resources {
    let r = Resources::new(
        &cpu(millicores.max(floor.0)),
        &mebibytes(memory.max(floor.1)),
        &mebibytes(limit.max(floor.2)),
    );
    debug_assert!(r.limits.cpu.is_none());
    r
}

fn floor(f: (u64, u64, u64)) -> Resources {
    sized(f, f.0, f.1, f.2)
}

/// Millicores rounded up to a tenth of a core (`200m`, `1500m`; below that, to 10m), whole
/// cores as a number.
fn cpu(millicores: u64) -> String {
    let step = if millicores > 100 { 100 } else { 10 };
    let m = millicores.div_ceil(step) * step;
    if m.is_multiple_of(1000) {
        (m / 1000).to_string()
    } else {
        format!("{m}m")
    }
}

/// Bytes rounded up to 256 MiB above 1 GiB, to 32 MiB below; whole GiB as `Gi`.
fn mebibytes(bytes: u64) -> String {
    let mib = bytes.div_ceil(1 << 20);
    let step = if mib >= 1024 { 256 } else { 32 };
    let mib = mib.div_ceil(step) * step;
    if mib.is_multiple_of(1024) {
        format!("{}Gi", mib / 1024)
    } else {
        format!("{mib}Mi")
    }
}

/// The bytes of a quantity (`50Gi`, `500M`, `1T`), or `None` when it has a fraction or an
/// unknown suffix.
pub fn bytes_of(q: &Quantity) -> Option<u64> {
    let s = q.0.as_str();
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..end].parse().ok()?;
    let mult: u64 = match &s[end..] {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(r: &Resources) -> (&str, &str) {
        (
            r.requests.memory.as_ref().unwrap().0.as_str(),
            r.limits.memory.as_ref().unwrap().0.as_str(),
        )
    }

    #[test]
    fn small_clusters_get_the_floors_and_one_shard() {
        let c = Config::default();
        for n in [None, Some(1), Some(3), Some(50)] {
            let e = estimate(&c, n);
            assert_eq!(e.shards, 1, "{n:?}");
            assert_eq!(e.prometheus, Resources::new("300m", "1Gi", "2Gi"), "{n:?}");
            assert_eq!(
                e.kube_state_metrics,
                Resources::new("10m", "64Mi", "256Mi"),
                "{n:?}"
            );
        }
    }

    #[test]
    fn tiers_keep_sizes_still_between_steps() {
        assert_eq!(tier(1), 50);
        assert_eq!(tier(50), 50);
        assert_eq!(tier(51), 100);
        assert_eq!(tier(4_999), 5_000);
        assert_eq!(tier(5_001), 10_000);
        let c = Config::default();
        assert_eq!(estimate(&c, Some(260)), estimate(&c, Some(499)));
        assert_ne!(estimate(&c, Some(250)), estimate(&c, Some(251)));
    }

    #[test]
    fn the_loop_moves_up_at_once_and_down_only_well_below() {
        assert_eq!(next_tier(50, 51), Some(100));
        assert_eq!(next_tier(50, 1_200), Some(2_000));
        assert_eq!(next_tier(100, 60), None);
        assert_eq!(next_tier(100, 50), None, "at the boundary: stays");
        assert_eq!(
            next_tier(100, 40),
            Some(50),
            "a fifth below the tier under it"
        );
        assert_eq!(next_tier(100, 3), Some(50));
        assert_eq!(next_tier(50, 3), None);
    }

    #[test]
    fn sizes_grow_with_the_cluster() {
        let c = Config::default();
        let e1k = estimate(&c, Some(1_000));
        let e5k = estimate(&c, Some(5_000));
        assert_eq!(e1k.series_per_node, 734 + 400 + 80 * 30 + 25 + 35 * 30);
        assert_eq!(e1k.series, 4_609 * 1_000 + 5_000 + 3 * 8_000);
        // 4.6M series: three shards of ~1.54M, each 6 GiB requested, 12 GiB allowed.
        assert_eq!(e1k.shards, 3);
        assert_eq!(memory(&e1k.prometheus), ("6Gi", "12Gi"));
        assert_eq!(e5k.shards, 12);
        assert_eq!(memory(&e5k.kube_state_metrics), ("10Gi", "20Gi"));
        assert_eq!(memory(&e5k.operator), ("384Mi", "768Mi"));
    }

    #[test]
    fn keeping_every_kubelet_series_costs_more_and_no_kubelet_none() {
        let c = Config::default();
        let undropped = c.with_set("kubelet.dropUnusedSeries=false").unwrap();
        let off = c.with_set("kubelet.enabled=false").unwrap();
        assert_eq!(
            series_per_node(&undropped) - series_per_node(&c),
            1_100 + 120 * 30
        );
        assert_eq!(series_per_node(&off), 734 + 25 + 35 * 30);
    }

    #[test]
    fn explicit_shards_are_kept_and_the_series_split_over_them() {
        let c = Config::default().with_set("prometheus.shards=2").unwrap();
        let e = estimate(&c, Some(1_000));
        assert_eq!(e.shards, 2);
        assert_eq!(memory(&e.prometheus), ("9Gi", "18176Mi"));
        assert_eq!(estimate(&c, None).shards, 2);
    }

    #[test]
    fn retention_size_follows_the_volume_unless_given() {
        let e = estimate(&Config::default(), Some(100));
        assert_eq!(e.retention_size(&Config::default()), None);
        let c = Config::default()
            .with_set("prometheus.storage.size=100Gi")
            .unwrap();
        assert_eq!(e.retention_size(&c).as_deref(), Some("91268MB"));
        let c = c.with_set("prometheus.retentionSize=40GB").unwrap();
        assert_eq!(e.retention_size(&c).as_deref(), Some("40GB"));
    }

    #[test]
    fn the_sizing_line_says_series_shards_and_disk() {
        let c = Config::default();
        assert_eq!(
            estimate(&c, Some(3)).describe(),
            "sized for up to 50 nodes: ~259,450 series (4,609 per node), ~23 GB of disk for the retention"
        );
        assert_eq!(
            estimate(&c, Some(1_000)).describe(),
            "sized for up to 1,000 nodes: ~4,638,000 series (4,609 per node), 3 shards of ~1,546,000 (one view through Thanos Query), ~134 GB of disk per shard for the retention"
        );
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(cpu(150), "200m");
        assert_eq!(cpu(1_000), "1");
        assert_eq!(mebibytes(1 << 30), "1Gi");
        assert_eq!(mebibytes(3 << 29), "1536Mi");
    }
}
