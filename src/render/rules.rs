//! Alert rules: `PrometheusRule` objects built from `alerts.*` in the configuration, one per
//! group. A PrometheusRule's spec is a Prometheus rule file, so [`groups`] is the single source
//! of both the objects and the plain rule file that `promtool` checks and tests. Node classes
//! add their own groups (Windows, GPU) and widen the coverage check to their nodes. Each group
//! is a table of [`Row`]s, one an alert, that one builder turns into rules.

/// The values a group's templates name, by the constants that hold them: `values![NODE]` is
/// `[("NODE", NODE)]`, so that a row writes `{NODE}` where the code would write `NODE`.
macro_rules! values {
    ($($name:ident),* $(,)?) => {
        vec![$((stringify!($name), $name.to_string())),*]
    };
}

mod kubernetes;
mod nodes;
pub mod recording;
mod resources;
mod stack;
mod workloads;

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Context, NodeClasses, custom};
use crate::model::Object;
use crate::{
    config::{Alert, Alerts, Config, FillingUpAlert, PromDuration, Severity, ThresholdAlert},
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

/// One recording rule: `record` is the value of `expr` at each evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordRule {
    pub record: String,
    pub expr: String,
}

impl RecordRule {
    fn new(record: &str, expr: String) -> Self {
        RecordRule {
            record: record.into(),
            expr,
        }
    }
}

/// The rule groups of this configuration for a cluster with these classes of node, without
/// disabled alerts or empty groups.
pub fn groups(config: &Config, classes: NodeClasses) -> Vec<RuleGroup> {
    let on = &config.alerts.groups;
    // Node classes add their groups; `alerts.groups.*` switch those beyond the nodes.
    type Rules = fn(&Config, NodeClasses) -> Vec<AlertRule>;
    let all: [(&str, bool, Rules); 10] = [
        ("node-alerts", true, nodes::node),
        ("windows-alerts", classes.windows, nodes::windows),
        ("gpu-alerts", classes.gpu, nodes::gpu),
        ("kubernetes-node-alerts", true, nodes::kubernetes_node),
        ("automon-coverage", true, nodes::coverage),
        ("workload-alerts", on.workloads, workloads::rules),
        ("resource-alerts", on.resources, resources::rules),
        ("kubernetes-alerts", on.kubernetes, kubernetes::rules),
        ("stack-alerts", on.stack, stack::rules),
        ("automon-meta", true, nodes::meta),
    ];
    all.into_iter()
        .filter(|(_, on, _)| *on)
        .map(|(name, _, rules)| RuleGroup {
            name: name.into(),
            rules: rules(config, classes),
        })
        .filter(|g| !g.rules.is_empty())
        .collect()
}

/// The alerts that say a node does not answer, and the per-node resource alerts they make moot.
pub fn node_down_and_resources() -> (Vec<&'static str>, Vec<&'static str>) {
    nodes::down_and_resources()
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

/// A configuration with remote write, which adds the stack's remote-write alerts.
#[cfg(test)]
fn with_remote_write() -> Config {
    Config::default()
        .with_set("prometheus.externalLabels={cluster: a}")
        .and_then(|c| c.with_set("prometheus.remoteWrite=[{url: \"https://s.example.com\"}]"))
        .expect("a valid --set")
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
/// (see `prometheus::ruler`). One more, [`recording::GROUP`], records what the dashboards sum.
pub fn objects(ctx: &Context) -> Vec<Object> {
    let object = |name: String, group: serde_json::Value, cluster: bool| {
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
            out.push(object(group.name.clone(), serde_json::json!(group), false));
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
            out.push(object(name, serde_json::json!(group), cluster));
        }
    }
    // What the dashboards read, recorded on every shard (each records its own part).
    let recording = serde_json::json!({
        "name": recording::GROUP,
        "rules": recording::rules(ctx.config),
    });
    out.push(object(recording::GROUP.into(), recording, false));
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

// Values of the templates, shared by the groups. Every alert names its node and its value.
const NODE: &str = "{{ $labels.node }}";
const PERCENT: &str = "{{ $value | printf \"%.1f\" }}%";
/// A container of the workload and resource alerts.
const CONTAINER: &str = "{{ $labels.container }} in pod {{ $labels.namespace }}/{{ $labels.pod }}";

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

/// One alert as a row of its group's table; [`Row::rule`] makes it a rule. `expr`, `summary`
/// and `description` are templates: `{NAME}` stands for the group's value of that name (a
/// job's selector, a threshold, how an alert names its object; a value may name others in
/// turn) and `{FOR}` for the row's `for`. Every other brace is PromQL's or a Go template's,
/// written as Prometheus reads it.
struct Row {
    alert: &'static str,
    expr: &'static str,
    settings: Settings,
    summary: &'static str,
    description: &'static str,
}

/// How long an alert's condition must hold before it fires, and how loud it is.
enum Settings {
    /// The same in every configuration, as the groups beyond the nodes have.
    Fixed(&'static str, Severity),
    /// The alert's own `alerts.*` setting, which can also turn it off.
    Configured(fn(&Alerts) -> Setting<'_>),
}

/// A value a template names: `{NAME}` and what it stands for.
type Value = (&'static str, String);

/// An `alerts.*` setting, whatever its kind: on or off, `for`, severity, and the values it
/// gives its alert's templates.
struct Setting<'a> {
    enabled: bool,
    for_: &'a PromDuration,
    severity: Severity,
    values: Vec<Value>,
}

impl<'a> Setting<'a> {
    fn new(enabled: bool, for_: &'a PromDuration, severity: Severity, values: Vec<Value>) -> Self {
        Setting {
            enabled,
            for_,
            severity,
            values,
        }
    }
}

impl<'a> From<&'a Alert> for Setting<'a> {
    fn from(a: &'a Alert) -> Self {
        Setting::new(a.enabled, &a.for_, a.severity, Vec::new())
    }
}

impl<'a> From<&'a ThresholdAlert> for Setting<'a> {
    fn from(a: &'a ThresholdAlert) -> Self {
        let t = a.threshold_percent;
        // FREE: what is left below the threshold (Windows' memory alert speaks of it).
        let values = vec![
            ("THRESHOLD", t.to_string()),
            ("FREE", (100.0 - t).to_string()),
        ];
        Setting::new(a.enabled, &a.for_, a.severity, values)
    }
}

impl<'a> From<&'a FillingUpAlert> for Setting<'a> {
    fn from(a: &'a FillingUpAlert) -> Self {
        let hours = a.hours;
        let values = vec![
            ("HOURS", hours.to_string()),
            ("SECONDS", (u64::from(hours) * 3600).to_string()),
        ];
        Setting::new(a.enabled, &a.for_, a.severity, values)
    }
}

impl Row {
    /// This row's rule, its templates filled from the group's `values`; `None` when its
    /// setting turns it off.
    fn rule(&self, alerts: &Alerts, values: &[Value]) -> Option<AlertRule> {
        let fixed;
        let setting = match self.settings {
            Settings::Fixed(for_, severity) => {
                fixed = PromDuration(for_.into());
                Setting::new(true, &fixed, severity, Vec::new())
            }
            Settings::Configured(setting) => setting(alerts),
        };
        if !setting.enabled {
            return None;
        }
        let own: Vec<Value> = [("FOR", setting.for_.0.clone())]
            .into_iter()
            .chain(setting.values)
            .collect();
        let fill = |template| fill(template, &[&own, values]);
        Some(rule(
            self.alert,
            fill(self.expr),
            setting.for_,
            setting.severity,
            fill(self.summary),
            fill(self.description),
        ))
    }
}

/// The rules of these rows that are on, in order, with their group's `values`.
fn build<'r>(
    rows: impl IntoIterator<Item = &'r Row>,
    config: &Config,
    values: &[Value],
) -> Vec<AlertRule> {
    rows.into_iter()
        .filter_map(|row| row.rule(&config.alerts, values))
        .collect()
}

/// A template with each `{NAME}` that `values` has (the first list that has it wins) replaced
/// by its value, itself filled; every other brace stays as written.
fn fill(template: &str, values: &[&[Value]]) -> String {
    let is_name = |s: &&str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    };
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        let name = rest.split_once('}').map(|(name, _)| name).filter(is_name);
        let value = name.and_then(|name| {
            values
                .iter()
                .flat_map(|list| list.iter())
                .find(|(n, _)| *n == name)
        });
        match (name, value) {
            (Some(name), Some((_, value))) => {
                out.push_str(&fill(value, values));
                rest = &rest[name.len() + 1..];
            }
            _ => out.push('{'),
        }
    }
    out.push_str(rest);
    out
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
                let Some(alert) = r["alert"].as_str().map(str::to_string) else {
                    // The recording rules stay on the shards (each records its part).
                    assert_eq!(name, recording::GROUP);
                    assert_eq!(scope, None);
                    continue;
                };
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
                "automon-meta",
                recording::GROUP,
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
    fn every_name_in_a_template_has_its_value() {
        // Every row renders somewhere here: both coverage gaps, the classes, remote write.
        let config = with_remote_write();
        let name = regex::Regex::new(r"\{[A-Z][A-Z0-9_]*\}").unwrap();
        let all = [groups(&config, NONE), groups(&config, ALL)].concat();
        for r in all.iter().flat_map(|g| &g.rules) {
            for text in [
                &r.expr,
                &r.annotations["summary"],
                &r.annotations["description"],
            ] {
                assert!(!name.is_match(text), "{}: {text}", r.alert);
            }
        }
        let values = [("A", "x {B}".to_string()), ("B", "y".to_string())];
        assert_eq!(
            fill("{A} {{ $value }} {job=\"j\"} {{A}} {C}", &[&values]),
            "x y {{ $value }} {job=\"j\"} {x y} {C}"
        );
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
        assert_eq!(rules.len(), 9);
        for o in rules {
            let labels = o.metadata.labels.as_ref().unwrap();
            assert_eq!(labels["app.kubernetes.io/part-of"], "automon");
        }
    }
}
