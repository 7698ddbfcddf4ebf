//! Alert rules: `PrometheusRule` objects built from `alerts.*` in the configuration, one per
//! group. A PrometheusRule's spec is a Prometheus rule file, so [`groups`] is the single source
//! of both the objects and the plain rule file that `promtool` checks and tests. Node classes
//! add their own groups (Windows, GPU) and widen the coverage check to their nodes.

mod kubernetes;
mod resources;
mod stack;
mod workloads;

use std::collections::BTreeMap;

use serde::Serialize;

use super::{
    Context, NodeClasses,
    classes::{GPU_PRESENT_LABEL, GPU_RESOURCE, WINDOWS_EXPORTER_PORT},
    custom,
};

use crate::model::Object;
use crate::{
    config::{Alert, Config, FillingUpAlert, PromDuration, Severity, ThresholdAlert},
    versions::PLUGIN_VERSION,
};

/// The component label of every PrometheusRule.
pub const COMPONENT: &str = "rules";

/// One rule group; it becomes one PrometheusRule of the same name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleGroup {
    pub name: String,
    pub rules: Vec<AlertRule>,
}

/// One alerting rule, serialised exactly as Prometheus reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRule {
    pub alert: String,
    pub expr: String,
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// The rule groups of this configuration for a cluster with these classes of node, without
/// disabled alerts or empty groups.
pub fn groups(config: &Config, classes: NodeClasses) -> Vec<RuleGroup> {
    let a = &config.alerts;
    let exclude = ksm_label(&config.node_exporter.exclude_label);
    let groups = [
        RuleGroup {
            name: "node-alerts".into(),
            rules: [
                node_down(&a.node_down),
                high_cpu(&a.high_cpu),
                high_memory(&a.high_memory),
                disk_space_low(&a.disk_space_low),
                filesystem_filling_up(&a.filesystem_filling_up),
            ]
            .into_iter()
            .flatten()
            .collect(),
        },
        RuleGroup {
            name: "windows-alerts".into(),
            rules: if classes.windows {
                windows_alerts(config)
            } else {
                Vec::new()
            },
        },
        RuleGroup {
            name: "gpu-alerts".into(),
            rules: if classes.gpu {
                gpu_alerts(config, &exclude)
            } else {
                Vec::new()
            },
        },
        RuleGroup {
            name: "kubernetes-node-alerts".into(),
            rules: node_not_ready(&a.node_not_ready).into_iter().collect(),
        },
        RuleGroup {
            name: "automon-coverage".into(),
            rules: [
                exporter_down(&a.exporter_down),
                coverage_gap(&a.coverage_gap, &exclude, classes.windows),
                coverage_blind(&a.coverage_gap),
            ]
            .into_iter()
            .flatten()
            .collect(),
        },
    ];
    // The groups beyond the nodes, each behind its switch (`alerts.groups.*`).
    type Rules = fn(&Config) -> Vec<AlertRule>;
    let beyond: [(&str, bool, Rules); 4] = [
        ("workload-alerts", a.groups.workloads, workloads::rules),
        ("resource-alerts", a.groups.resources, resources::rules),
        ("kubernetes-alerts", a.groups.kubernetes, kubernetes::rules),
        ("stack-alerts", a.groups.stack, stack::rules),
    ];
    let beyond = beyond.into_iter().map(|(name, on, rules)| RuleGroup {
        name: name.into(),
        rules: if on { rules(config) } else { Vec::new() },
    });
    let meta = RuleGroup {
        name: "automon-meta".into(),
        rules: watchdog(&a.watchdog).into_iter().collect(),
    };
    groups
        .into_iter()
        .chain(beyond)
        .chain([meta])
        .filter(|g| !g.rules.is_empty())
        .collect()
}

/// The alert names of one group under the default configuration with these `--set`s; `None`
/// when the group is empty or turned off.
#[cfg(test)]
fn group_alerts(group: &str, sets: &[&str]) -> Option<Vec<String>> {
    let mut config = Config::default();
    for s in sets {
        config = config.with_set(s).expect("a valid --set");
    }
    groups(&config, NodeClasses::default())
        .into_iter()
        .find(|g| g.name == group)
        .map(|g| g.rules.into_iter().map(|r| r.alert).collect())
}

/// The rules as a Prometheus rule file (`groups: [...]`), as `promtool` reads it. The binary
/// has no use for it yet (the integration tests take the same groups from `render`'s output).
#[cfg(test)]
pub fn rule_file(config: &Config, classes: NodeClasses) -> String {
    #[derive(Serialize)]
    struct RuleFile {
        groups: Vec<RuleGroup>,
    }
    serde_saphyr::to_string(&RuleFile {
        groups: groups(config, classes),
    })
    .expect("rule groups serialise as YAML")
}

/// One PrometheusRule per group, picked up by the Prometheus `ruleSelector` (part-of: automon).
/// With more than one Prometheus shard, each shard sees only its own targets: the rules that
/// must see every target at once ([`reads_across_targets`]) leave their group for a
/// PrometheusRule `<group>-cluster`, labelled for the ruler that sees every shard's series
/// (see `prometheus::ruler`).
pub fn objects(ctx: &Context) -> Vec<Object> {
    let object = |name: String, group: RuleGroup, cluster: bool| {
        let mut labels = ctx.labels(&name, COMPONENT, PLUGIN_VERSION);
        if cluster {
            labels.insert(
                super::prometheus::SCOPE_LABEL.into(),
                super::prometheus::CLUSTER_SCOPE.into(),
            );
        }
        custom(serde_json::json!({
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": ctx.meta(&name, &labels),
            "spec": { "groups": [group] },
        }))
    };
    let sharded = ctx.sizing.shards > 1;
    let mut out = Vec::new();
    for group in groups(ctx.config, ctx.classes) {
        if !sharded {
            out.push(object(group.name.clone(), group, false));
            continue;
        }
        let (cluster, own): (Vec<AlertRule>, Vec<AlertRule>) = group
            .rules
            .into_iter()
            .partition(|r| reads_across_targets(&r.expr));
        for (rules, cluster) in [(own, false), (cluster, true)] {
            if rules.is_empty() {
                continue;
            }
            let name = if cluster {
                format!("{}-cluster", group.name)
            } else {
                group.name.clone()
            };
            let group = RuleGroup {
                name: group.name.clone(),
                rules,
            };
            out.push(object(name, group, cluster));
        }
    }
    out
}

/// Whether a rule can only be right when it sees every scrape target at once: it joins the
/// series of more than one job (kube-state-metrics' nodes with an exporter's targets), or asks
/// whether a series is `absent` (a shard without that target would always say so). Under the
/// operator's sharding each shard scrapes a part of the targets, so such rules would fire for
/// the targets another shard holds.
pub fn reads_across_targets(expr: &str) -> bool {
    let mut jobs = std::collections::BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("job=") {
        let value = rest[at + 4..].trim_start_matches('~');
        let value = value.split('"').nth(1).unwrap_or_default();
        jobs.insert(value.to_string());
        rest = &rest[at + 4..];
    }
    expr.contains("absent(") || jobs.len() > 1
}

/// The series a rule that reads across targets may use: what the ruler federates from the
/// shards, by name, narrowed by matchers where a family is large and the rules read a part of
/// it. A test keeps it in step with the rules; `sizing::RULER_SERIES_PER_NODE` counts it.
pub const CLUSTER_SERIES: &[&str] = &[
    "up",
    "kube_node_info",
    "kube_node_labels",
    "kube_node_status_allocatable",
    // Memory near the limit: cAdvisor's working set of containers (not of pods' cgroups)
    // against kube-state-metrics' memory limits.
    r#"container_memory_working_set_bytes{container!=""}"#,
    r#"kube_pod_container_resource_limits{resource="memory"}"#,
    // Volumes filling up, less ReadOnlyMany claims: a few series per claim.
    "kubelet_volume_stats_available_bytes",
    "kubelet_volume_stats_capacity_bytes",
    "kubelet_volume_stats_inodes_free",
    "kubelet_volume_stats_inodes",
    "kube_persistentvolumeclaim_access_mode",
];

/// The name kube-state-metrics gives a node label in `kube_node_labels`: `label_` and the key
/// with every character that is not a letter or digit replaced by `_`.
pub fn ksm_label(key: &str) -> String {
    format!("label_{}", ksm_name(key))
}

/// A name as kube-state-metrics writes it into a label value or name: every character that is
/// not a letter or digit replaced by `_` (`nvidia.com/gpu` is `resource="nvidia_com_gpu"`).
fn ksm_name(key: &str) -> String {
    key.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// A series aggregated to the labels that name one object, `max` so that the same object
/// seen twice (two `instance`s while a target restarts) stays one.
fn max_by(by: &str, metric: &str, selector: &str) -> String {
    format!("max by ({by}) ({metric}{{{selector}}})")
}

/// A kube-state-metrics series with these extra matchers, aggregated to the labels that name
/// one object.
fn ksm_series(by: &str, metric: &str, matchers: &str) -> String {
    let selector = if matchers.is_empty() {
        KUBE_STATE_METRICS.to_string()
    } else {
        format!("{KUBE_STATE_METRICS}, {matchers}")
    };
    max_by(by, metric, &selector)
}

// Alert templates. Every alert names its node and its value.
const NODE: &str = "{{ $labels.node }}";
const PERCENT: &str = "{{ $value | printf \"%.1f\" }}%";
/// A container of the workload and resource alerts, and the labels that name it.
const CONTAINER: &str = "{{ $labels.container }} in pod {{ $labels.namespace }}/{{ $labels.pod }}";
const CONTAINER_LABELS: &str = "namespace, pod, container";

/// node-exporter's series, as the ServiceMonitor labels them.
const NODE_EXPORTER: &str = r#"job="node-exporter""#;
const KUBE_STATE_METRICS: &str = r#"job="kube-state-metrics""#;
/// windows-exporter's and dcgm-exporter's series, as their ServiceMonitors label them.
const WINDOWS_EXPORTER: &str = r#"job="windows-exporter""#;
const DCGM_EXPORTER: &str = r#"job="dcgm-exporter""#;
/// Windows volumes with a drive letter. Those without one (`HarddiskVolumeN`: the boot and
/// recovery partitions) are small and nearly full by design.
const WINDOWS_VOLUMES: &str = r#"job="windows-exporter", volume!~"HarddiskVolume.*""#;
/// Filesystems that hold data worth alerting on: not memory-backed, not image layers, not
/// pseudo filesystems. Read-only ones are left out separately (they cannot fill up).
const REAL_FILESYSTEMS: &str = r#"job="node-exporter", fstype!~"tmpfs|ramfs|devtmpfs|overlay|squashfs|erofs|iso9660|nsfs|aufs|autofs|fuse\\..*""#;
/// CPU rates over 2m: four samples at the default 30s scrape interval, so one missed scrape
/// does not blank the alert.
const RATE_WINDOW: &str = "2m";

/// Where every alert's `runbook_url` points: the section of docs/runbooks.md named after the
/// alert (GitHub anchors are the heading in lower case), on the default branch. Tests check that
/// each alert has its section.
pub const RUNBOOKS: &str = concat!(env!("CARGO_PKG_REPOSITORY"), "/blob/main/docs/runbooks.md#");

/// The runbook of an alert: its section of docs/runbooks.md.
pub fn runbook_url(alert: &str) -> String {
    format!("{RUNBOOKS}{}", alert.to_ascii_lowercase())
}

fn rule(
    name: &str,
    expr: String,
    for_: &PromDuration,
    severity: Severity,
    summary: String,
    description: String,
) -> AlertRule {
    // `for: 0m` is the same as no `for`; leave it out (Watchdog).
    let for_ = (for_.seconds() != Ok(0)).then(|| for_.0.clone());
    AlertRule {
        alert: name.into(),
        expr,
        for_,
        labels: BTreeMap::from([("severity".into(), severity.to_string())]),
        annotations: BTreeMap::from([
            ("summary".into(), summary),
            ("description".into(), description),
            ("runbook_url".into(), runbook_url(name)),
        ]),
    }
}

/// A rule with a fixed `for` and severity, as the groups beyond the nodes have.
fn fixed(
    name: &str,
    expr: String,
    for_: &str,
    severity: Severity,
    summary: String,
    description: String,
) -> AlertRule {
    rule(
        name,
        expr,
        &PromDuration(for_.into()),
        severity,
        summary,
        description,
    )
}

fn node_down(a: &Alert) -> Option<AlertRule> {
    a.enabled.then(|| {
        rule(
            "NodeDown",
            format!("max by (node) (up{{{NODE_EXPORTER}}}) == 0"),
            &a.for_,
            a.severity,
            format!("Node {NODE} is down or unreachable"),
            format!(
                "Prometheus has been unable to scrape node-exporter on node {NODE} for {for_}. \
                 The target exists, so the exporter pod is scheduled there, but it does not \
                 answer: the node is down, its network is unreachable, or the exporter is failing.",
                for_ = a.for_.0
            ),
        )
    })
}

fn high_cpu(a: &ThresholdAlert) -> Option<AlertRule> {
    let t = a.threshold_percent;
    a.enabled.then(|| {
        rule(
            "HighCPUUsage",
            format!(
                "100 * (1 - avg by (node) (rate(node_cpu_seconds_total{{{NODE_EXPORTER}, mode=\"idle\"}}[{RATE_WINDOW}]))) > {t}"
            ),
            &a.for_,
            a.severity,
            format!("CPU usage on node {NODE} is above {t}%"),
            format!(
                "CPU on node {NODE} has been more than {t}% busy for {for_} (currently {PERCENT}).",
                for_ = a.for_.0
            ),
        )
    })
}

fn high_memory(a: &ThresholdAlert) -> Option<AlertRule> {
    let t = a.threshold_percent;
    a.enabled.then(|| {
        rule(
            "HighMemoryUsage",
            format!(
                "100 * (1 - node_memory_MemAvailable_bytes{{{NODE_EXPORTER}}} / node_memory_MemTotal_bytes{{{NODE_EXPORTER}}}) > {t}"
            ),
            &a.for_,
            a.severity,
            format!("Memory usage on node {NODE} is above {t}%"),
            format!(
                "Node {NODE} has used more than {t}% of its memory for {for_} (currently {PERCENT}); \
                 pods on it risk eviction or the OOM killer.",
                for_ = a.for_.0
            ),
        )
    })
}

fn disk_space_low(a: &ThresholdAlert) -> Option<AlertRule> {
    let t = a.threshold_percent;
    a.enabled.then(|| {
        rule(
            "DiskSpaceLow",
            format!(
                "100 * node_filesystem_avail_bytes{{{REAL_FILESYSTEMS}}} / node_filesystem_size_bytes{{{REAL_FILESYSTEMS}}} < {t}\n\
                 and node_filesystem_readonly{{{REAL_FILESYSTEMS}}} == 0"
            ),
            &a.for_,
            a.severity,
            format!("Disk space low on node {NODE} ({{{{ $labels.mountpoint }}}})"),
            format!(
                "Filesystem {{{{ $labels.mountpoint }}}} ({{{{ $labels.device }}}}) on node {NODE} \
                 has only {PERCENT} space left, below {t}%."
            ),
        )
    })
}

fn filesystem_filling_up(a: &FillingUpAlert) -> Option<AlertRule> {
    let hours = a.hours;
    a.enabled.then(|| {
        rule(
            "NodeFilesystemFillingUp",
            // The 6h trend smooths out log rotation and compaction; requiring less than 40%
            // free keeps a fast-growing but nearly empty disk from paging anyone.
            format!(
                "100 * node_filesystem_avail_bytes{{{REAL_FILESYSTEMS}}} / node_filesystem_size_bytes{{{REAL_FILESYSTEMS}}} < 40\n\
                 and predict_linear(node_filesystem_avail_bytes{{{REAL_FILESYSTEMS}}}[6h], {seconds}) < 0\n\
                 and node_filesystem_readonly{{{REAL_FILESYSTEMS}}} == 0",
                seconds = u64::from(hours) * 3600
            ),
            &a.for_,
            a.severity,
            format!("Filesystem on node {NODE} is predicted to fill up within {hours}h"),
            format!(
                "Filesystem {{{{ $labels.mountpoint }}}} ({{{{ $labels.device }}}}) on node {NODE} \
                 has {PERCENT} space left and, at the rate of the last 6 hours, will be full \
                 within {hours} hours."
            ),
        )
    })
}

fn node_not_ready(a: &Alert) -> Option<AlertRule> {
    a.enabled.then(|| {
        rule(
            "NodeNotReady",
            format!(
                "kube_node_status_condition{{{KUBE_STATE_METRICS}, condition=\"Ready\", status=\"true\"}} == 0"
            ),
            &a.for_,
            a.severity,
            format!("Node {NODE} is not Ready"),
            format!(
                "Kubernetes has reported node {NODE} as not Ready for more than {for_}; its \
                 kubelet is not posting status, or it reports a problem (disk, memory, network).",
                for_ = a.for_.0
            ),
        )
    })
}

fn exporter_down(a: &Alert) -> Option<AlertRule> {
    a.enabled.then(|| {
        rule(
            "NodeExporterDown",
            // A node that had a node-exporter target within the last hour and has none now,
            // while Kubernetes still has the node: the target vanished (pod deleted, evicted,
            // DaemonSet changed) rather than failing to answer, which is NodeDown.
            format!(
                "(\n  max by (node) (max_over_time(up{{{NODE_EXPORTER}}}[1h]))\n  \
                 unless on (node) up{{{NODE_EXPORTER}}}\n)\n\
                 and on (node) kube_node_info{{{KUBE_STATE_METRICS}}}"
            ),
            &a.for_,
            a.severity,
            format!("node-exporter on node {NODE} has disappeared"),
            format!(
                "Node {NODE} had a node-exporter target within the last hour and has had none \
                 for {for_}, while the node itself still exists. Unlike NodeDown (the target is \
                 there but cannot be scraped), here there is nothing left to scrape: the \
                 exporter pod was deleted, evicted or no longer fits the node. After an hour \
                 NodeMonitoringCoverageGap keeps reporting the node.",
                for_ = a.for_.0
            ),
        )
    })
}

fn coverage_gap(a: &Alert, exclude_label: &str, windows: bool) -> Option<AlertRule> {
    // The nodes of one OS that Kubernetes knows and that are not opted out, less those with a
    // target of that OS's exporter that is up.
    let uncovered = |os: &str, job: &str| {
        format!(
            "(\n  max by (node) (kube_node_labels{{{KUBE_STATE_METRICS}, label_kubernetes_io_os=\"{os}\", {exclude_label}!=\"true\"}})\n  \
             and on (node) kube_node_info{{{KUBE_STATE_METRICS}}}\n)\n\
             unless on (node) (up{{{job}}} == 1)"
        )
    };
    a.enabled.then(|| {
        if windows {
            // Windows nodes count as covered by windows-exporter, as Linux ones by node-exporter.
            let indent = |s: String| s.replace('\n', "\n  ");
            return rule(
                "NodeMonitoringCoverageGap",
                format!(
                    "(\n  {}\n)\nor\n(\n  {}\n)",
                    indent(uncovered("linux", NODE_EXPORTER)),
                    indent(uncovered("windows", WINDOWS_EXPORTER)),
                ),
                &a.for_,
                a.severity,
                format!("Node {NODE} is not monitored"),
                format!(
                    "Kubernetes knows node {NODE}, which is not excluded from monitoring, but no \
                     exporter target on it (node-exporter on Linux, windows-exporter on Windows) \
                     has been up for {for_}: its CPU, memory and disks are not watched. \
                     `kubectl automon status` shows why (untolerated taint, pod pending or \
                     crashing).",
                    for_ = a.for_.0
                ),
            );
        }
        rule(
            "NodeMonitoringCoverageGap",
            // Every Linux node Kubernetes knows and that is not opted out must have a
            // node-exporter target that is up. Windows nodes need windows-exporter instead.
            uncovered("linux", NODE_EXPORTER),
            &a.for_,
            a.severity,
            format!("Node {NODE} is not monitored"),
            format!(
                "Kubernetes knows Linux node {NODE}, which is not excluded from monitoring, but \
                 no node-exporter target on it has been up for {for_}: its CPU, memory and disks \
                 are not watched. `kubectl automon status` shows why (untolerated taint, pod \
                 pending or crashing).",
                for_ = a.for_.0
            ),
        )
    })
}

/// The coverage-gap alert compares what kube-state-metrics knows with what node-exporter
/// reports; without kube-state-metrics it sees no node at all and stays silent. Say so, with the
/// coverage-gap alert's own settings, so that silence never means "covered".
fn coverage_blind(a: &Alert) -> Option<AlertRule> {
    a.enabled.then(|| {
        rule(
            "KubeStateMetricsDown",
            format!("absent(up{{{KUBE_STATE_METRICS}}} == 1)"),
            &a.for_,
            a.severity,
            "kube-state-metrics is not being scraped".into(),
            format!(
                "No kube-state-metrics target has been up for {for_}: Prometheus does not know \
                 which nodes exist, so NodeMonitoringCoverageGap and NodeNotReady cannot fire. \
                 `kubectl automon status` shows the kube-state-metrics Deployment's state.",
                for_ = a.for_.0
            ),
        )
    })
}

fn watchdog(a: &Alert) -> Option<AlertRule> {
    a.enabled.then(|| {
        rule(
            "Watchdog",
            "vector(1)".into(),
            &a.for_,
            a.severity,
            "Always firing: the alerting pipeline works".into(),
            "This alert fires all the time to prove that Prometheus evaluates rules and \
             Alertmanager receives alerts. If it stops arriving, alerting itself is broken."
                .into(),
        )
    })
}

/// Windows nodes get the node alerts the configuration asks for, from windows-exporter's
/// metrics, with the same thresholds, durations and severities as their Linux counterparts.
fn windows_alerts(config: &Config) -> Vec<AlertRule> {
    let a = &config.alerts;
    [
        windows_exporter_down(&a.node_down),
        windows_high_cpu(&a.high_cpu),
        windows_high_memory(&a.high_memory),
        windows_disk_space_low(&a.disk_space_low),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn windows_exporter_down(a: &Alert) -> Option<AlertRule> {
    a.enabled.then(|| {
        rule(
            "WindowsExporterDown",
            format!("max by (node) (up{{{WINDOWS_EXPORTER}}}) == 0"),
            &a.for_,
            a.severity,
            format!("Windows node {NODE} is down or unreachable"),
            format!(
                "Prometheus has been unable to scrape windows-exporter on Windows node {NODE} for \
                 {for_}. The exporter pod is scheduled there but does not answer on port \
                 {WINDOWS_EXPORTER_PORT}: the node is down or unreachable, the Windows Firewall \
                 blocks the port, or the exporter is failing.",
                for_ = a.for_.0
            ),
        )
    })
}

fn windows_high_cpu(a: &ThresholdAlert) -> Option<AlertRule> {
    let t = a.threshold_percent;
    a.enabled.then(|| {
        rule(
            "WindowsHighCPUUsage",
            format!(
                "100 * (1 - avg by (node) (rate(windows_cpu_time_total{{{WINDOWS_EXPORTER}, mode=\"idle\"}}[{RATE_WINDOW}]))) > {t}"
            ),
            &a.for_,
            a.severity,
            format!("CPU usage on Windows node {NODE} is above {t}%"),
            format!(
                "The processors of Windows node {NODE} have been more than {t}% busy for {for_} \
                 (currently {PERCENT}).",
                for_ = a.for_.0
            ),
        )
    })
}

fn windows_high_memory(a: &ThresholdAlert) -> Option<AlertRule> {
    let t = a.threshold_percent;
    a.enabled.then(|| {
        rule(
            "WindowsHighMemoryUsage",
            format!(
                "100 * (1 - windows_memory_available_bytes{{{WINDOWS_EXPORTER}}} / windows_memory_physical_total_bytes{{{WINDOWS_EXPORTER}}}) > {t}"
            ),
            &a.for_,
            a.severity,
            format!("Memory usage on Windows node {NODE} is above {t}%"),
            format!(
                "Less than {free}% of the physical memory of Windows node {NODE} has been available \
                 for {for_} (currently {PERCENT} in use); Windows pages to disk and the pods on it \
                 slow down.",
                free = 100.0 - t,
                for_ = a.for_.0
            ),
        )
    })
}

fn windows_disk_space_low(a: &ThresholdAlert) -> Option<AlertRule> {
    let t = a.threshold_percent;
    a.enabled.then(|| {
        rule(
            "WindowsDiskSpaceLow",
            format!(
                "100 * windows_logical_disk_free_bytes{{{WINDOWS_VOLUMES}}} / windows_logical_disk_size_bytes{{{WINDOWS_VOLUMES}}} < {t}"
            ),
            &a.for_,
            a.severity,
            format!("Disk space low on Windows node {NODE} ({{{{ $labels.volume }}}})"),
            format!(
                "Volume {{{{ $labels.volume }}}} of Windows node {NODE} has only {PERCENT} of its \
                 space free, below {t}%."
            ),
        )
    })
}

/// GPU temperature from which the GPU alert fires: most NVIDIA data-centre GPUs begin slowing
/// their clocks in the high 80s °C, so ten minutes above this is cooling that is not keeping up.
const GPU_TEMPERATURE_CELSIUS: u32 = 85;

/// The GPU alerts have no settings of their own yet: their durations and severities are fixed.
fn gpu_alerts(config: &Config, exclude_label: &str) -> Vec<AlertRule> {
    vec![
        gpu_temperature_high(),
        gpu_xid_errors(),
        gpu_exporter_down(&config.namespace, exclude_label),
    ]
}

/// One GPU: its series carry the pod that holds it, so they change with every pod; the alert
/// is about the GPU and keeps only node and GPU index.
const ONE_GPU: &str = "max by (node, gpu)";
const GPU: &str = "{{ $labels.gpu }}";

fn gpu_temperature_high() -> AlertRule {
    let t = GPU_TEMPERATURE_CELSIUS;
    let for_ = PromDuration("10m".into());
    rule(
        "GPUTemperatureHigh",
        format!("{ONE_GPU} (DCGM_FI_DEV_GPU_TEMP{{{DCGM_EXPORTER}}}) > {t}"),
        &for_,
        Severity::Warning,
        format!("GPU {GPU} on node {NODE} is running hot"),
        format!(
            "GPU {GPU} on node {NODE} has been above {t} °C for {for_} (currently {{{{ $value }}}} °C). \
             Close to its slowdown temperature a GPU lowers its clocks and the work on it slows \
             down; check the node's cooling and airflow.",
            for_ = for_.0
        ),
    )
}

fn gpu_xid_errors() -> AlertRule {
    // DCGM reports the latest XID a GPU raised (0: none). No `for`: the error has happened.
    rule(
        "GPUXidError",
        format!("{ONE_GPU} (DCGM_FI_DEV_XID_ERRORS{{{DCGM_EXPORTER}}}) > 0"),
        &PromDuration("0m".into()),
        Severity::Warning,
        format!("GPU {GPU} on node {NODE} reported XID error {{{{ $value }}}}"),
        format!(
            "The NVIDIA driver reported XID {{{{ $value }}}} for GPU {GPU} on node {NODE}: a fault \
             of the driver, the GPU or the program using it. Look the code up in NVIDIA's XID \
             catalogue: some point at the application, others (79: the GPU has fallen off the \
             bus; 48: an uncorrectable ECC error) mean the GPU needs a reset and the node should \
             be drained."
        ),
    )
}

/// Nodes with GPUs, by NVIDIA's label or by advertised GPUs, that are not opted out and have no
/// dcgm-exporter target up. A node that advertises GPUs without the label gets no exporter (it
/// is scheduled by the label): the alert says so rather than let it go unwatched.
fn gpu_exporter_down(namespace: &str, exclude_label: &str) -> AlertRule {
    let present = ksm_label(GPU_PRESENT_LABEL);
    let resource = ksm_name(GPU_RESOURCE);
    let for_ = PromDuration("10m".into());
    rule(
        "GPUExporterDown",
        format!(
            "(\n  (\n    max by (node) (kube_node_labels{{{KUBE_STATE_METRICS}, {present}=\"true\"}})\n    \
             or\n    \
             max by (node) (kube_node_status_allocatable{{{KUBE_STATE_METRICS}, resource=\"{resource}\"}} > 0)\n  )\n  \
             unless on (node) kube_node_labels{{{KUBE_STATE_METRICS}, {exclude_label}=\"true\"}}\n)\n\
             unless on (node) (up{{{DCGM_EXPORTER}}} == 1)"
        ),
        &for_,
        Severity::Warning,
        format!("GPU node {NODE} has no GPU metrics"),
        format!(
            "Kubernetes knows GPU node {NODE}, which is not excluded from monitoring, but no \
             dcgm-exporter target on it has been up for {for_}: the temperature, errors and use \
             of its GPUs are not watched. The exporter runs on nodes labelled \
             {GPU_PRESENT_LABEL}=true (NVIDIA's GPU feature discovery sets it); a node that only \
             advertises {GPU_RESOURCE} needs that label. `kubectl -n {namespace} get pods -l \
             app.kubernetes.io/name=dcgm-exporter -o wide` shows the exporter's pods.",
            for_ = for_.0
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::names::{COMPONENT_LABEL, NAME_LABEL};

    const NONE: NodeClasses = NodeClasses {
        windows: false,
        gpu: false,
    };
    const ALL: NodeClasses = NodeClasses {
        windows: true,
        gpu: true,
    };

    fn rule_of<'a>(groups: &'a [RuleGroup], alert: &str) -> Option<&'a AlertRule> {
        groups
            .iter()
            .flat_map(|g| &g.rules)
            .find(|r| r.alert == alert)
    }

    fn names(groups: &[RuleGroup]) -> Vec<&str> {
        groups
            .iter()
            .flat_map(|g| &g.rules)
            .map(|r| r.alert.as_str())
            .collect()
    }

    /// The alerts (every class present) that must see every target, sorted: what the ruler
    /// evaluates when the stack is sharded.
    const ACROSS_TARGETS: [&str; 11] = [
        "GPUExporterDown",
        "KubeAPIDown",
        "KubeContainerMemoryNearLimit",
        "KubePersistentVolumeFillingUp",
        "KubePersistentVolumeFillingUp",
        "KubePersistentVolumeInodesFillingUp",
        "KubePersistentVolumeInodesFillingUp",
        "KubeStateMetricsDown",
        "KubeletDown",
        "NodeExporterDown",
        "NodeMonitoringCoverageGap",
    ];

    #[test]
    fn rules_that_must_see_every_target_are_the_cross_job_and_absent_ones() {
        let config = Config::default();
        let mut across: Vec<&str> = Vec::new();
        let groups = groups(&config, ALL);
        for r in groups.iter().flat_map(|g| &g.rules) {
            if reads_across_targets(&r.expr) {
                across.push(&r.alert);
            }
        }
        across.sort();
        assert_eq!(across, ACROSS_TARGETS);
        // Every series those rules read is federated to the ruler: its name is there, and what
        // narrows it there narrows the rule's selector too.
        let metric = regex::Regex::new(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}").unwrap();
        for r in groups
            .iter()
            .flat_map(|g| &g.rules)
            .filter(|r| reads_across_targets(&r.expr))
        {
            for m in metric.captures_iter(&r.expr) {
                let federated = CLUSTER_SERIES
                    .iter()
                    .find(|s| s.split('{').next() == Some(&m[1]));
                let Some(federated) = federated else {
                    panic!("{}: {} is not federated", r.alert, &m[1]);
                };
                let narrowed = federated
                    .split_once('{')
                    .map_or("", |(_, m)| m.trim_end_matches('}'));
                for matcher in narrowed.split(", ").filter(|m| !m.is_empty()) {
                    assert!(
                        m[2].contains(matcher),
                        "{}: {} needs {matcher}",
                        r.alert,
                        &m[0]
                    );
                }
            }
        }
        assert!(!reads_across_targets(r#"up{job="node-exporter"} == 0"#));
        assert!(reads_across_targets(r#"absent(up{job="x"})"#));
        assert!(reads_across_targets(
            r#"a{job="x"} unless on (node) b{job=~"y"}"#
        ));
    }

    #[test]
    fn sharded_the_cross_target_rules_go_to_the_ruler_and_nothing_is_lost() {
        let config = Config::default().with_set("prometheus.shards=3").unwrap();
        let ctx = Context {
            classes: ALL,
            ..Context::new(&config)
        };
        let objects = objects(&ctx);
        let mut shard = Vec::new();
        let mut cluster = Vec::new();
        for o in &objects {
            let scope = o
                .metadata
                .labels
                .as_ref()
                .unwrap()
                .get(super::super::prometheus::SCOPE_LABEL);
            let name = o.metadata.name.clone().unwrap();
            for r in o.data["spec"]["groups"][0]["rules"].as_array().unwrap() {
                let alert = r["alert"].as_str().unwrap().to_string();
                match scope.map(String::as_str) {
                    Some("cluster") => {
                        assert!(name.ends_with("-cluster"), "{name}");
                        cluster.push(alert)
                    }
                    None => shard.push(alert),
                    Some(other) => panic!("{other}"),
                }
            }
        }
        cluster.sort();
        assert_eq!(cluster, ACROSS_TARGETS);
        let mut all: Vec<String> = shard.into_iter().chain(cluster).collect();
        all.sort();
        let mut unsharded: Vec<String> = names(&groups(&config, ALL))
            .into_iter()
            .map(String::from)
            .collect();
        unsharded.sort();
        assert_eq!(all, unsharded);
    }

    /// The groups about workloads, resources, Kubernetes and the stack: their alerts are about
    /// an object of the cluster, not a node.
    const BEYOND_NODES: &[&str] = &[
        "workload-alerts",
        "resource-alerts",
        "kubernetes-alerts",
        "stack-alerts",
    ];

    #[test]
    fn turning_a_group_off_removes_it_and_nothing_else() {
        let all = groups(&Config::default(), NONE);
        for (key, group) in [
            ("workloads", "workload-alerts"),
            ("resources", "resource-alerts"),
        ] {
            assert!(
                all.iter().any(|g| g.name == group),
                "{group} is on by default"
            );
            let c = Config::default()
                .with_set(&format!("alerts.groups.{key}=false"))
                .unwrap();
            let rest: Vec<RuleGroup> = all.iter().filter(|g| g.name != group).cloned().collect();
            assert_eq!(groups(&c, NONE), rest, "alerts.groups.{key}=false");
            let ctx = Context::new(&c);
            assert!(
                objects(&ctx)
                    .iter()
                    .all(|o| o.metadata.name.as_deref() != Some(group)),
                "{group}"
            );
        }
    }

    #[test]
    fn workload_and_resource_alerts_name_their_object() {
        let g = groups(&Config::default(), NONE);
        let rules: Vec<&AlertRule> = g
            .iter()
            .filter(|g| g.name == "workload-alerts" || g.name == "resource-alerts")
            .flat_map(|g| &g.rules)
            .collect();
        assert_eq!(rules.len(), 26);
        for r in rules {
            let summary = &r.annotations["summary"];
            // A namespaced object by namespace and name; a PersistentVolume by its name.
            assert!(
                summary.contains("{{ $labels.namespace }}/")
                    || summary.contains("{{ $labels.persistentvolume }}"),
                "{}: {summary}",
                r.alert
            );
            assert!(r.for_.is_some(), "{}", r.alert);
            assert_ne!(r.labels["severity"], "none", "{}", r.alert);
            assert_eq!(r.annotations["runbook_url"], runbook_url(&r.alert));
        }
    }

    #[test]
    fn defaults_have_every_alert() {
        let g = groups(&Config::default(), NONE);
        assert_eq!(
            names(&g),
            [
                "NodeDown",
                "HighCPUUsage",
                "HighMemoryUsage",
                "DiskSpaceLow",
                "NodeFilesystemFillingUp",
                "NodeNotReady",
                "NodeExporterDown",
                "NodeMonitoringCoverageGap",
                "KubeStateMetricsDown",
                "KubePodCrashLooping",
                "KubePodNotReady",
                "KubeContainerWaiting",
                "KubeDeploymentReplicasMismatch",
                "KubeDeploymentRolloutStuck",
                "KubeStatefulSetReplicasMismatch",
                "KubeStatefulSetUpdateNotRolledOut",
                "KubeDaemonSetRolloutStuck",
                "KubeDaemonSetNotScheduled",
                "KubeDaemonSetMisScheduled",
                "KubeJobFailed",
                "KubeJobNotCompleted",
                "KubeCronJobScheduleMissed",
                "KubeHpaMaxedOut",
                "KubeHpaReplicasMismatch",
                "CPUThrottlingHigh",
                "KubeContainerMemoryNearLimit",
                "KubeQuotaAlmostFull",
                "KubeQuotaFullyUsed",
                "KubeQuotaExceeded",
                "KubePersistentVolumeFillingUp",
                "KubePersistentVolumeFillingUp",
                "KubePersistentVolumeInodesFillingUp",
                "KubePersistentVolumeInodesFillingUp",
                "KubePersistentVolumeErrors",
                "KubePersistentVolumeClaimPending",
                "KubeAPIDown",
                "KubeAPIErrorsHigh",
                "KubeAPILatencyHigh",
                "KubeClientCertificateExpiration",
                "KubeClientCertificateExpiration",
                "KubeletDown",
                "KubeletClientCertificateExpiration",
                "KubeletClientCertificateExpiration",
                "KubeletTooManyPods",
                "KubeNodeUnreachable",
                "PrometheusBadConfig",
                "PrometheusRuleFailures",
                "PrometheusTSDBCompactionsFailing",
                "PrometheusNotConnectedToAlertmanagers",
                "PrometheusErrorSendingAlertsToAnyAlertmanager",
                "AlertmanagerFailedToSendAlerts",
                "AlertmanagerFailedReload",
                "PrometheusOperatorReconcileErrors",
                "PrometheusOperatorSyncFailed",
                "Watchdog",
            ]
        );
        let node_groups = g
            .iter()
            .filter(|g| !BEYOND_NODES.contains(&g.name.as_str()));
        for r in node_groups.flat_map(|g| &g.rules) {
            assert!(r.labels.contains_key("severity"), "{}", r.alert);
            assert_eq!(r.annotations["runbook_url"], runbook_url(&r.alert));
        }
        // The node alerts name their node; Watchdog and KubeStateMetricsDown are about the
        // pipeline, not a node.
        for r in g
            .iter()
            .filter(|g| g.name.starts_with("node-") || g.name == "automon-coverage")
            .flat_map(|g| &g.rules)
        {
            if r.alert != "KubeStateMetricsDown" {
                assert!(
                    r.annotations["summary"].contains(NODE),
                    "{} names no node",
                    r.alert
                );
            }
        }
    }

    #[test]
    fn thresholds_come_from_config() {
        let c = Config::default()
            .with_set("alerts.highCpu.thresholdPercent=95")
            .and_then(|c| c.with_set("alerts.highMemory.thresholdPercent=92.5"))
            .and_then(|c| c.with_set("alerts.diskSpaceLow.thresholdPercent=10"))
            .and_then(|c| c.with_set("alerts.filesystemFillingUp.hours=4"))
            .and_then(|c| c.with_set("alerts.nodeDown.for=2m"))
            .unwrap();
        let g = groups(&c, NONE);
        let cpu = rule_of(&g, "HighCPUUsage").unwrap();
        assert!(cpu.expr.ends_with("> 95"), "{}", cpu.expr);
        assert!(cpu.annotations["summary"].contains("above 95%"));
        let mem = rule_of(&g, "HighMemoryUsage").unwrap();
        assert!(mem.expr.ends_with("> 92.5"), "{}", mem.expr);
        let disk = rule_of(&g, "DiskSpaceLow").unwrap();
        assert!(disk.expr.contains("< 10\n"), "{}", disk.expr);
        let fill = rule_of(&g, "NodeFilesystemFillingUp").unwrap();
        assert!(fill.expr.contains("[6h], 14400) < 0"), "{}", fill.expr);
        assert_eq!(rule_of(&g, "NodeDown").unwrap().for_.as_deref(), Some("2m"));

        let d = groups(&Config::default(), NONE);
        assert!(rule_of(&d, "HighCPUUsage").unwrap().expr.ends_with("> 80"));
        assert!(rule_of(&d, "DiskSpaceLow").unwrap().expr.contains("< 20\n"));
        let down = rule_of(&d, "NodeDown").unwrap();
        assert_eq!(down.for_.as_deref(), Some("5m"));
        assert_eq!(down.labels["severity"], "critical");
        // Watchdog's `for: 0m` is left out rather than written.
        assert_eq!(rule_of(&d, "Watchdog").unwrap().for_, None);
        assert_eq!(rule_of(&d, "Watchdog").unwrap().labels["severity"], "none");
    }

    #[test]
    fn disabling_removes_the_rule_and_empty_groups() {
        let c = Config::default()
            .with_set("alerts.highCpu.enabled=false")
            .unwrap();
        let g = groups(&c, NONE);
        assert!(rule_of(&g, "HighCPUUsage").is_none());
        assert!(rule_of(&g, "HighMemoryUsage").is_some());
        assert!(!rule_file(&c, NONE).contains("HighCPUUsage"));

        let c = Config::default()
            .with_set("alerts.watchdog.enabled=false")
            .unwrap();
        let g = groups(&c, NONE);
        assert!(g.iter().all(|g| g.name != "automon-meta"));
        let ctx = Context::new(&c);
        assert!(
            objects(&ctx)
                .iter()
                .all(|o| o.metadata.name.as_deref() != Some("automon-meta"))
        );
    }

    #[test]
    fn exclude_label_becomes_the_kube_state_metrics_label() {
        assert_eq!(ksm_label("automon.io/exclude"), "label_automon_io_exclude");
        assert_eq!(ksm_label("a.b-c/d_e"), "label_a_b_c_d_e");
        let c = Config::default()
            .with_set("nodeExporter.excludeLabel=example.com/no-monitoring")
            .unwrap();
        let gap = rule_of(&groups(&c, NONE), "NodeMonitoringCoverageGap")
            .unwrap()
            .expr
            .clone();
        assert!(
            gap.contains(r#"label_example_com_no_monitoring!="true""#),
            "{gap}"
        );
    }

    #[test]
    fn prometheus_rules_carry_names_labels_and_the_same_groups() {
        let c = Config::default();
        let ctx = Context::new(&c);
        let objects = objects(&ctx);
        let names: Vec<_> = objects
            .iter()
            .map(|o| o.metadata.name.as_deref().unwrap_or_default())
            .collect();
        assert_eq!(
            names,
            [
                "node-alerts",
                "kubernetes-node-alerts",
                "automon-coverage",
                "workload-alerts",
                "resource-alerts",
                "kubernetes-alerts",
                "stack-alerts",
                "automon-meta"
            ]
        );
        let groups = groups(&c, NONE);
        for (o, g) in objects.iter().zip(&groups) {
            assert_eq!(crate::model::kind(o), "PrometheusRule");
            assert_eq!(crate::model::api_version(o), "monitoring.coreos.com/v1");
            assert_eq!(o.metadata.namespace.as_deref(), Some("automon"));
            let labels = o.metadata.labels.as_ref().unwrap();
            assert_eq!(labels[COMPONENT_LABEL], COMPONENT);
            assert_eq!(labels[NAME_LABEL], g.name);
            // The objects hold exactly the groups the rule file has: they cannot drift.
            assert_eq!(
                o.data["spec"]["groups"],
                serde_json::json!([serde_json::to_value(g).unwrap()])
            );
        }
    }

    #[test]
    fn node_classes_add_their_groups_and_only_then() {
        let none = groups(&Config::default(), NONE);
        assert!(
            none.iter()
                .all(|g| g.name != "windows-alerts" && g.name != "gpu-alerts")
        );
        let all = groups(&Config::default(), ALL);
        let group_names: Vec<_> = all.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(
            group_names,
            [
                "node-alerts",
                "windows-alerts",
                "gpu-alerts",
                "kubernetes-node-alerts",
                "automon-coverage",
                "workload-alerts",
                "resource-alerts",
                "kubernetes-alerts",
                "stack-alerts",
                "automon-meta"
            ]
        );
        let windows = &all[1];
        let gpu = &all[2];
        assert_eq!(
            names(std::slice::from_ref(windows)),
            [
                "WindowsExporterDown",
                "WindowsHighCPUUsage",
                "WindowsHighMemoryUsage",
                "WindowsDiskSpaceLow"
            ]
        );
        assert_eq!(
            names(std::slice::from_ref(gpu)),
            ["GPUTemperatureHigh", "GPUXidError", "GPUExporterDown"]
        );
        for r in windows.rules.iter().chain(&gpu.rules) {
            assert!(r.annotations["summary"].contains(NODE), "{}", r.alert);
            assert!(r.labels.contains_key("severity"), "{}", r.alert);
        }
        // The groups of a class come and go on their own.
        let gpu_only = groups(
            &Config::default(),
            NodeClasses {
                windows: false,
                gpu: true,
            },
        );
        assert!(gpu_only.iter().any(|g| g.name == "gpu-alerts"));
        assert!(gpu_only.iter().all(|g| g.name != "windows-alerts"));
    }

    #[test]
    fn windows_alerts_follow_the_node_alerts_configuration() {
        let c = Config::default()
            .with_set("alerts.highCpu.thresholdPercent=95")
            .and_then(|c| c.with_set("alerts.diskSpaceLow.enabled=false"))
            .and_then(|c| c.with_set("alerts.nodeDown.for=2m"))
            .unwrap();
        let g = groups(&c, ALL);
        let cpu = rule_of(&g, "WindowsHighCPUUsage").unwrap();
        assert!(cpu.expr.ends_with("> 95"), "{}", cpu.expr);
        assert!(cpu.expr.contains("windows_cpu_time_total"), "{}", cpu.expr);
        assert!(rule_of(&g, "WindowsDiskSpaceLow").is_none());
        let down = rule_of(&g, "WindowsExporterDown").unwrap();
        assert_eq!(down.for_.as_deref(), Some("2m"));
        assert_eq!(down.labels["severity"], "critical");
        assert!(down.expr.contains(r#"up{job="windows-exporter"}"#));
    }

    #[test]
    fn coverage_counts_windows_exporter_for_windows_nodes_only_with_the_class() {
        let linux_only = rule_of(
            &groups(&Config::default(), NONE),
            "NodeMonitoringCoverageGap",
        )
        .unwrap()
        .expr
        .clone();
        assert!(!linux_only.contains("windows"), "{linux_only}");
        let both = rule_of(
            &groups(&Config::default(), ALL),
            "NodeMonitoringCoverageGap",
        )
        .unwrap()
        .expr
        .clone();
        for part in [
            r#"label_kubernetes_io_os="linux""#,
            r#"label_kubernetes_io_os="windows""#,
            r#"up{job="node-exporter"} == 1"#,
            r#"up{job="windows-exporter"} == 1"#,
            r#"label_automon_io_exclude!="true""#,
        ] {
            assert!(both.contains(part), "{part} missing from {both}");
        }
        // The Linux half is the very expression the stack has without the class.
        assert!(
            both.contains(&linux_only.replace('\n', "\n  ")),
            "{both}\n---\n{linux_only}"
        );
    }

    #[test]
    fn gpu_coverage_reads_the_label_and_resource_kube_state_metrics_exports() {
        let c = Config::default()
            .with_set("nodeExporter.excludeLabel=example.com/no-monitoring")
            .unwrap();
        let down = rule_of(&groups(&c, ALL), "GPUExporterDown")
            .unwrap()
            .expr
            .clone();
        for part in [
            r#"label_nvidia_com_gpu_present="true""#,
            r#"resource="nvidia_com_gpu""#,
            r#"label_example_com_no_monitoring="true""#,
            r#"up{job="dcgm-exporter"} == 1"#,
        ] {
            assert!(down.contains(part), "{part} missing from {down}");
        }
    }

    #[test]
    fn rendered_rules_are_selected_by_prometheus() {
        // render() adds part-of: automon, which the Prometheus ruleSelector matches.
        let rendered = crate::render::render(&Config::default());
        let rules: Vec<_> = rendered
            .objects
            .iter()
            .filter(|o| crate::model::kind(o) == "PrometheusRule")
            .collect();
        assert_eq!(rules.len(), 8);
        for o in rules {
            let labels = o.metadata.labels.as_ref().unwrap();
            assert_eq!(labels["app.kubernetes.io/part-of"], "automon");
        }
    }
}
