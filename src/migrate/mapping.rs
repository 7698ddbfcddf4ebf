//! What a kube-prometheus-stack user set, as automon's values (the tree `enable -f` takes).
//! Each value the user gave (the release's `config`, never the chart's defaults) is carried to
//! its automon key, found equal to automon's default, done by a step of the migration, or not
//! carried, with the reason and what to do. Credentials are never copied: a receiver is
//! carried only when the chart's values name the Secret that holds its URL. Pure.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::{
    config::{Config, values::Values},
    output::plural,
};

/// Chart keys whose value automon takes as it is, at its own key.
pub const DIRECT: &[(&str, &str)] = &[
    (
        "prometheus.prometheusSpec.retention",
        "prometheus.retention",
    ),
    (
        "prometheus.prometheusSpec.retentionSize",
        "prometheus.retentionSize",
    ),
    ("prometheus.prometheusSpec.replicas", "prometheus.replicas"),
    ("prometheus.prometheusSpec.shards", "prometheus.shards"),
    (
        "prometheus.prometheusSpec.scrapeInterval",
        "prometheus.scrapeInterval",
    ),
    (
        "prometheus.prometheusSpec.evaluationInterval",
        "prometheus.evaluationInterval",
    ),
    (
        "prometheus.prometheusSpec.storageSpec.volumeClaimTemplate.spec.resources.requests.storage",
        "prometheus.storage.size",
    ),
    (
        "prometheus.prometheusSpec.storageSpec.volumeClaimTemplate.spec.storageClassName",
        "prometheus.storage.storageClass",
    ),
    (
        "alertmanager.alertmanagerSpec.replicas",
        "alertmanager.replicas",
    ),
    (
        "alertmanager.config.route.group_by",
        "alertmanager.route.groupBy",
    ),
    (
        "alertmanager.config.route.group_wait",
        "alertmanager.route.groupWait",
    ),
    (
        "alertmanager.config.route.group_interval",
        "alertmanager.route.groupInterval",
    ),
    (
        "alertmanager.config.route.repeat_interval",
        "alertmanager.route.repeatInterval",
    ),
    ("grafana.enabled", "grafana.enabled"),
    ("kubelet.enabled", "kubelet.enabled"),
    ("kubeApiServer.enabled", "apiServer.enabled"),
    ("global.imageRegistry", "images.registry"),
    ("prometheus-node-exporter.service.port", "nodeExporter.port"),
];

/// Each component's requests and limits in the chart, and in automon.
pub const RESOURCES: &[(&str, &str)] = &[
    (
        "prometheus.prometheusSpec.resources",
        "prometheus.resources",
    ),
    (
        "alertmanager.alertmanagerSpec.resources",
        "alertmanager.resources",
    ),
    ("grafana.resources", "grafana.resources"),
    (
        "prometheus-node-exporter.resources",
        "nodeExporter.resources",
    ),
    ("kube-state-metrics.resources", "kubeStateMetrics.resources"),
];

/// Chart keys read as one value (their keys are label names, which may hold dots).
const WHOLE: &[&str] = &["prometheus.prometheusSpec.externalLabels"];

/// Where each component's pods may run, in the chart and in automon: the same five fields of a
/// pod spec under each (`prometheus.prometheusSpec.tolerations` is `prometheus.tolerations`).
pub const PLACEMENT: &[(&str, &str)] = &[
    ("prometheus.prometheusSpec", "prometheus"),
    ("alertmanager.alertmanagerSpec", "alertmanager"),
    ("grafana", "grafana"),
    ("kube-state-metrics", "kubeStateMetrics"),
    ("prometheusOperator", "operator"),
];

/// The placement fields, as both spell them.
const PLACEMENT_FIELDS: [&str; 5] = [
    "nodeSelector",
    "tolerations",
    "affinity",
    "priorityClassName",
    "topologySpreadConstraints",
];

/// automon's key for a chart key of [`PLACEMENT`], if it is one.
fn placement_key(chart: &str) -> Option<String> {
    PLACEMENT.iter().find_map(|(prefix, section)| {
        let field = chart.strip_prefix(prefix)?.strip_prefix('.')?;
        PLACEMENT_FIELDS
            .contains(&field)
            .then(|| format!("{section}.{field}"))
    })
}

/// Whether a chart key is read as one value: [`WHOLE`], and a placement's node selector and
/// affinity (a pod spec's, as they are).
fn whole(chart: &str) -> bool {
    WHOLE.contains(&chart)
        || placement_key(chart)
            .is_some_and(|k| k.ends_with(".nodeSelector") || k.ends_with(".affinity"))
}

/// Where the Prometheus Operator mounts the Secrets listed in `alertmanagerSpec.secrets`.
const AM_SECRETS_DIR: &str = "/etc/alertmanager/secrets/";

/// The release, and where automon goes: for the words of the rows and the Secrets' notes.
pub struct Destination<'a> {
    pub release: &'a str,
    pub release_namespace: &'a str,
    pub automon_namespace: &'a str,
}

/// One value the user gave, and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The chart's key, e.g. `prometheus.prometheusSpec.retention`.
    pub chart: String,
    /// The value given, as it may be shown: a credential is `(hidden)`, a list counted.
    pub given: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// What to do besides (a Secret to copy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum Outcome {
    /// Carried to this automon key, with this value (as it may be shown).
    Carried { key: String, value: String },
    /// Equal to automon's default at this key: nothing to carry.
    Default { key: String },
    /// Nothing to carry: automon does this anyway.
    Same { why: String },
    /// Not a value in automon: a step of the migration does it.
    Migration { what: String },
    /// Not carried over: why, and what to do.
    NotCarried { why: String },
}

/// The user's values as automon's, and a row for each.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// What `enable -f` takes.
    pub values: Values,
    pub rows: Vec<Row>,
    /// The values given that equal the chart's own defaults and have no automon setting: not
    /// listed (a copy of the chart's whole values.yaml is common).
    pub chart_defaults: usize,
}

impl Mapping {
    pub fn not_carried(&self) -> impl Iterator<Item = &Row> {
        self.rows
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::NotCarried { .. }))
    }
}

/// A row before validation: a value to carry is checked against automon's configuration.
struct Draft {
    chart: String,
    given: String,
    plan: Plan,
    note: Option<String>,
}

enum Plan {
    Carry { key: Vec<String>, value: Value },
    Same(String),
    Migration(String),
    NotCarried(String),
}

/// Maps the values the user gave (`user`, the release's `config`) over the chart's own
/// (`chart_defaults`) to automon's.
pub fn map(user: &Value, chart_defaults: &Value, to: &Destination) -> Mapping {
    let receivers = receivers(user, to);
    let mut drafts = Vec::new();
    let mut chart_default_count = 0;
    for (path, value) in leaves(user) {
        let chart = path.join(".");
        for draft in rule(&chart, value, &receivers, to) {
            let unchanged = pointer(chart_defaults, &path) == Some(value);
            if unchanged && matches!(draft.plan, Plan::NotCarried(_) | Plan::Same(_)) {
                chart_default_count += 1;
                continue;
            }
            drafts.push(draft);
        }
    }
    let (values, rows) = validated(drafts);
    Mapping {
        values,
        rows,
        chart_defaults: chart_default_count,
    }
}

/// Checks each value to carry against automon's configuration (a receiver alone, the route's
/// receiver with the receivers carried), then marks those equal to automon's defaults; the
/// values are what is carried and not a default.
fn validated(drafts: Vec<Draft>) -> (Values, Vec<Row>) {
    let mut tree = Value::Object(Map::new());
    let mut receivers: Vec<Value> = Vec::new();
    let mut rows = Vec::new();
    // Receivers first: the route's receiver is checked against them.
    let (mut first, mut then): (Vec<Draft>, Vec<Draft>) = drafts.into_iter().partition(
        |d| !matches!(&d.plan, Plan::Carry { key, .. } if key.join(".") == "alertmanager.route.receiver"),
    );
    first.append(&mut then);
    for d in first {
        let outcome = match d.plan {
            Plan::Same(why) => Outcome::Same { why },
            Plan::Migration(what) => Outcome::Migration { what },
            Plan::NotCarried(why) => Outcome::NotCarried { why },
            Plan::Carry { key, value } => {
                let dotted = key.join(".");
                let is_receiver = dotted == "alertmanager.receivers";
                let mut alone = Value::Object(Map::new());
                if is_receiver {
                    insert(&mut alone, &key, json!([value.clone()]));
                } else {
                    if dotted == "alertmanager.route.receiver" {
                        insert(
                            &mut alone,
                            &["alertmanager".into(), "receivers".into()],
                            json!(receivers),
                        );
                    }
                    insert(&mut alone, &key, value.clone());
                }
                match Config::from_values(Values::from_tree(alone.clone()), "the mapped values") {
                    Err(e) => Outcome::NotCarried {
                        why: format!("automon refuses it ({}: {})", e.key, e.problem),
                    },
                    Ok(_) if is_receiver => {
                        let shown = receiver_shown(&value);
                        receivers.push(value);
                        Outcome::Carried {
                            key: format!("alertmanager.receivers[{}]", receivers.len() - 1),
                            value: shown,
                        }
                    }
                    Ok(_) if is_default(&key, &value) => Outcome::Default { key: dotted },
                    Ok(_) => {
                        insert(&mut tree, &key, value.clone());
                        Outcome::Carried {
                            key: dotted,
                            value: shown_value(&value),
                        }
                    }
                }
            }
        };
        rows.push(Row {
            chart: d.chart,
            given: d.given,
            outcome,
            note: d.note,
        });
    }
    if !receivers.is_empty() {
        insert(
            &mut tree,
            &["alertmanager".into(), "receivers".into()],
            Value::Array(receivers),
        );
    }
    // Rows are in the chart's key order, as the user's values are.
    rows.sort_by(|a, b| a.chart.cmp(&b.chart));
    (Values::from_tree(tree), rows)
}

/// Whether `value` at `key` is what automon does by default.
fn is_default(key: &[String], value: &Value) -> bool {
    let mut tree = Value::Object(Map::new());
    insert(&mut tree, key, value.clone());
    Values::from_tree(tree)
        .compared()
        .iter()
        .all(|c| !c.differs())
}

/// Sets `value` at `key` (its parts), making the sections on the way.
fn insert(tree: &mut Value, key: &[String], value: Value) {
    let Some((last, parents)) = key.split_last() else {
        return;
    };
    let mut node = tree;
    for part in parents {
        if !node[part.as_str()].is_object() {
            node[part.as_str()] = Value::Object(Map::new());
        }
        node = &mut node[part.as_str()];
    }
    node[last.as_str()] = value;
}

fn pointer<'a>(tree: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(tree, |node, part| node.get(part))
}

/// The user's values as leaves: scalars, lists and empty sections, each with its path; a key of
/// [`WHOLE`] is one leaf.
fn leaves(user: &Value) -> Vec<(Vec<String>, &Value)> {
    fn walk<'a>(path: &mut Vec<String>, v: &'a Value, out: &mut Vec<(Vec<String>, &'a Value)>) {
        match v {
            Value::Object(m) if !m.is_empty() && !whole(&path.join(".")) => {
                for (k, child) in m {
                    path.push(k.clone());
                    walk(path, child, out);
                    path.pop();
                }
            }
            _ if path.is_empty() => {}
            _ => out.push((path.clone(), v)),
        }
    }
    let mut out = Vec::new();
    walk(&mut Vec::new(), user, &mut out);
    out
}

fn carry(chart: &str, given: &Value, key: &str, value: Value) -> Draft {
    Draft {
        chart: chart.into(),
        given: shown(chart, given),
        plan: Plan::Carry {
            key: key.split('.').map(String::from).collect(),
            value,
        },
        note: None,
    }
}

fn other(chart: &str, given: &Value, plan: Plan) -> Draft {
    Draft {
        chart: chart.into(),
        given: shown(chart, given),
        plan,
        note: None,
    }
}

fn not_carried(chart: &str, given: &Value, why: impl Into<String>) -> Vec<Draft> {
    vec![other(chart, given, Plan::NotCarried(why.into()))]
}

fn same(chart: &str, given: &Value, why: impl Into<String>) -> Vec<Draft> {
    vec![other(chart, given, Plan::Same(why.into()))]
}

/// A number where automon takes a quantity or a duration is that text (`cpu: 1`).
fn as_text(v: &Value) -> Value {
    match v {
        Value::Number(n) => Value::String(n.to_string()),
        other => other.clone(),
    }
}

/// The scrapes of kube-prometheus-stack that automon does not make, by the chart's key.
const NOT_SCRAPED: &[(&str, &str)] = &[
    ("kubeEtcd", "etcd"),
    ("kubeControllerManager", "kube-controller-manager"),
    ("kubeScheduler", "kube-scheduler"),
    ("kubeProxy", "kube-proxy"),
    ("coreDns", "CoreDNS"),
    ("kubeDns", "kube-dns"),
];

/// The parts automon always runs, by the chart's `…enabled` key.
const ALWAYS: &[(&str, &str)] = &[
    ("prometheus.enabled", "Prometheus"),
    ("alertmanager.enabled", "Alertmanager"),
    (
        "prometheusOperator.enabled",
        "its own Prometheus Operator (or reuses the cluster's)",
    ),
    (
        "nodeExporter.enabled",
        "node-exporter on every Linux node (or reuses one already serving its port)",
    ),
    ("kubeStateMetrics.enabled", "kube-state-metrics"),
];

const OWN_OBJECTS: &str = "objects the release makes, so removing it deletes them: recreate them as objects of your own before migrating (labelled so that they stay selected)";

/// What becomes of one leaf of the user's values.
fn rule(chart: &str, value: &Value, receivers: &[Receiver], to: &Destination) -> Vec<Draft> {
    let empty = value.as_str().is_some_and(str::is_empty) || value.is_null();
    if let Some((_, key)) = DIRECT.iter().find(|(c, _)| *c == chart) {
        if empty {
            return same(
                chart,
                value,
                "empty, which leaves it unset: automon's default applies",
            );
        }
        let value_for = match *key {
            "prometheus.storage.size"
            | "prometheus.retention"
            | "prometheus.scrapeInterval"
            | "prometheus.evaluationInterval"
            | "prometheus.retentionSize"
            | "prometheus.storage.storageClass"
            | "images.registry" => as_text(value),
            _ => value.clone(),
        };
        return vec![carry(chart, value, key, value_for)];
    }
    if let Some(key) = placement_key(chart) {
        let unset = empty
            || value.as_object().is_some_and(Map::is_empty)
            || value.as_array().is_some_and(Vec::is_empty);
        return match unset {
            true => same(chart, value, "empty: no placement, as automon's default"),
            false => vec![carry(chart, value, &key, value.clone())],
        };
    }
    for (prefix, key) in RESOURCES {
        if let Some(rest) = chart.strip_prefix(&format!("{prefix}.")) {
            return match rest {
                "requests.cpu" | "requests.memory" | "limits.cpu" | "limits.memory" => {
                    vec![carry(
                        chart,
                        value,
                        &format!("{key}.{rest}"),
                        as_text(value),
                    )]
                }
                _ => not_carried(chart, value, "automon sets CPU and memory only"),
            };
        }
    }
    if let Some(what) = selection(chart, value, to) {
        return vec![other(chart, value, Plan::Migration(what))];
    }
    if let Some((part, scrape)) = NOT_SCRAPED.iter().find_map(|(k, s)| {
        chart
            .strip_prefix(k)
            .filter(|r| r.starts_with('.'))
            .map(|r| (r, *s))
    }) {
        return match (part, value) {
            (".enabled", Value::Bool(false)) => same(
                chart,
                value,
                format!("automon does not scrape {scrape} either"),
            ),
            _ => not_carried(
                chart,
                value,
                format!(
                    "automon does not scrape {scrape}; a ServiceMonitor of your own can (labelled so that it stays selected)"
                ),
            ),
        };
    }
    if let Some((_, part)) = ALWAYS.iter().find(|(k, _)| *k == chart) {
        return match value {
            Value::Bool(false) => not_carried(chart, value, format!("automon always runs {part}")),
            _ => same(chart, value, format!("automon runs {part}")),
        };
    }
    match chart {
        "prometheus.prometheusSpec.externalLabels" => {
            let Some(labels) = value.as_object() else {
                return not_carried(chart, value, "not a section of labels");
            };
            return labels
                .iter()
                .map(|(k, v)| {
                    let at = format!("{chart}.{k}");
                    Draft {
                        chart: at.clone(),
                        given: shown(&at, v),
                        plan: Plan::Carry {
                            key: vec!["prometheus".into(), "externalLabels".into(), k.clone()],
                            value: as_text(v),
                        },
                        note: None,
                    }
                })
                .collect();
        }
        "global.imagePullSecrets" => {
            let names: Option<Vec<Value>> = value.as_array().map(|a| {
                a.iter()
                    .filter_map(|s| s.get("name").or(Some(s)).and_then(Value::as_str))
                    .map(|s| Value::String(s.into()))
                    .collect()
            });
            return match names {
                Some(n) => vec![carry(chart, value, "images.pullSecrets", Value::Array(n))],
                None => not_carried(chart, value, "not a list of Secret names"),
            };
        }
        "prometheus-node-exporter.tolerations" => return tolerations(chart, value),
        "grafana.sidecar.dashboards.searchNamespace" => {
            return match value.as_str() {
                Some(all) if all.eq_ignore_ascii_case("ALL") => {
                    vec![carry(
                        chart,
                        value,
                        "grafana.dashboardsFromAllNamespaces",
                        json!(true),
                    )]
                }
                _ if empty => vec![carry(
                    chart,
                    value,
                    "grafana.dashboardsFromAllNamespaces",
                    json!(false),
                )],
                _ => not_carried(
                    chart,
                    value,
                    "automon's Grafana loads dashboards from every namespace or from its own (grafana.dashboardsFromAllNamespaces)",
                ),
            };
        }
        "grafana.adminPassword" => {
            return not_carried(
                chart,
                value,
                "a credential: automon makes Grafana's admin password at random into Secret grafana-admin (`kubectl automon open grafana` says how to read it)",
            );
        }
        "grafana.defaultDashboardsEnabled" => {
            return match value {
                Value::Bool(false) => not_carried(
                    chart,
                    value,
                    "automon's dashboards are its own: turn them off under dashboards",
                ),
                _ => same(chart, value, "automon provisions its own dashboards"),
            };
        }
        "windowsMonitoring.enabled" => {
            return match value {
                Value::Bool(false) => not_carried(
                    chart,
                    value,
                    "automon adds windows-exporter when a Windows node joins (reconcile); it cannot be turned off",
                ),
                _ => same(
                    chart,
                    value,
                    "automon adds windows-exporter when a Windows node joins (reconcile)",
                ),
            };
        }
        "crds.enabled" => {
            return same(
                chart,
                value,
                "automon installs the prometheus-operator CRDs itself, or keeps the cluster's",
            );
        }
        "alertmanager.config.receivers" => return receiver_rows(chart, receivers, to),
        "alertmanager.config.route.receiver" => return route_receiver(chart, value, receivers),
        "alertmanager.config.route.routes" => {
            let n = value.as_array().map_or(0, Vec::len);
            return not_carried(
                chart,
                value,
                format!(
                    "automon's route has no child routes: every alert goes to alertmanager.route.receiver ({} not carried)",
                    plural(n, "route")
                ),
            );
        }
        "alertmanager.config.inhibit_rules" => {
            return not_carried(chart, value, "automon's Alertmanager has no inhibit rules");
        }
        "alertmanager.config.templates" => {
            return not_carried(
                chart,
                value,
                "automon's Alertmanager uses its default templates",
            );
        }
        "alertmanager.alertmanagerSpec.secrets" => {
            return match receivers.iter().any(|r| !r.secrets.is_empty()) {
                true => same(chart, value, "read to find the Secrets the receivers name"),
                false => not_carried(
                    chart,
                    value,
                    "automon mounts no Secret of yours into Alertmanager",
                ),
            };
        }
        _ => {}
    }
    if let Some(field) = chart.strip_prefix("alertmanager.config.global.") {
        let used = |kind: &str| receivers.iter().any(|r| r.uses_global(kind));
        return match field {
            "smtp_from" | "smtp_smarthost" if used("email") => {
                same(chart, value, "used by the email receivers carried over")
            }
            "slack_api_url_file" if used("slack") => {
                same(chart, value, "used by the Slack receivers carried over")
            }
            _ => not_carried(
                chart,
                value,
                "automon's Alertmanager has no such global setting",
            ),
        };
    }
    if chart.starts_with("alertmanager.config.route.") {
        return not_carried(
            chart,
            value,
            "automon's route sets its receiver, groupBy, groupWait, groupInterval and repeatInterval only",
        );
    }
    if chart == "prometheus.prometheusSpec.remoteWrite" {
        return not_carried(
            chart,
            value,
            "give the endpoints as prometheus.remoteWrite by hand (docs/remote-write.md); the Secrets they name must be in automon's namespace",
        );
    }
    if chart.starts_with("prometheus.prometheusSpec.thanos") {
        return not_carried(
            chart,
            value,
            "give the Thanos sidecar as prometheus.thanos by hand (docs/remote-write.md)",
        );
    }
    if [
        "additionalPrometheusRulesMap",
        "extraManifests",
        "prometheus.additionalServiceMonitors",
        "prometheus.additionalPodMonitors",
        "prometheus.prometheusSpec.additionalScrapeConfigs",
    ]
    .iter()
    .any(|k| chart == *k || chart.starts_with(&format!("{k}.")))
    {
        return not_carried(chart, value, OWN_OBJECTS);
    }
    if [
        "alertmanager.stringConfig",
        "alertmanager.tplConfig",
        "alertmanager.alertmanagerSpec.useExistingSecret",
        "alertmanager.alertmanagerSpec.configSecret",
        "alertmanager.alertmanagerSpec.alertmanagerConfiguration",
    ]
    .iter()
    .any(|k| chart == *k || chart.starts_with(&format!("{k}.")))
    {
        return not_carried(
            chart,
            value,
            "Alertmanager's configuration given this way is not read: give automon's receivers (alertmanager.receivers) by hand",
        );
    }
    if chart.split('.').nth(1) == Some("ingress") {
        return not_carried(
            chart,
            value,
            "automon makes no Ingress: `kubectl automon open grafana|prometheus|alertmanager`, or an Ingress of your own to its Service",
        );
    }
    not_carried(chart, value, fallback(chart))
}

/// Why a key no rule names is not carried, by where it is.
fn fallback(chart: &str) -> &'static str {
    const BY_PREFIX: &[(&str, &str)] = &[
        (
            "defaultRules.",
            "automon ships its own rules; its groups turn off under alerts.groups (workloads, resources, kubernetes, stack)",
        ),
        (
            "prometheusOperator.",
            "automon runs its own Prometheus Operator at its pinned version",
        ),
        (
            "crds.",
            "automon installs the prometheus-operator CRDs itself, or keeps the cluster's",
        ),
        ("thanosRuler.", "automon runs no Thanos Ruler"),
        ("prometheus.", "automon's Prometheus has no such setting"),
        (
            "alertmanager.",
            "automon's Alertmanager has no such setting",
        ),
        (
            "grafana.",
            "automon's Grafana has no such setting (it provisions its datasource and dashboards itself)",
        ),
        (
            "prometheus-node-exporter.",
            "automon's node-exporter has no such setting",
        ),
        (
            "nodeExporter.",
            "automon's node-exporter has no such setting",
        ),
        (
            "kube-state-metrics.",
            "automon's kube-state-metrics has no such setting",
        ),
        (
            "kubeStateMetrics.",
            "automon's kube-state-metrics has no such setting",
        ),
        ("kubelet.", "automon's kubelet scrape has no such setting"),
        (
            "kubeApiServer.",
            "automon's API server scrape has no such setting",
        ),
        (
            "windowsMonitoring.",
            "automon's windows-exporter has no such setting",
        ),
        (
            "prometheus-windows-exporter.",
            "automon's windows-exporter has no such setting",
        ),
        ("global.", "automon has no such global setting"),
    ];
    const NAMING: &[&str] = &[
        "nameOverride",
        "fullnameOverride",
        "namespaceOverride",
        "commonLabels",
        "cleanPrometheusOperatorObjectNames",
        "kubeTargetVersionOverride",
        "kubeVersionOverride",
    ];
    if NAMING
        .iter()
        .any(|k| chart == *k || chart.starts_with(&format!("{k}.")))
    {
        return "automon names and labels its objects itself";
    }
    BY_PREFIX
        .iter()
        .find(|(p, _)| chart.starts_with(p))
        .map_or("automon has no such setting", |(_, why)| why)
}

/// The Prometheus' selectors (`serviceMonitorSelector`, `…NamespaceSelector`,
/// `…SelectorNilUsesHelmValues`): which of the user's objects it scrapes and evaluates.
fn selection(chart: &str, value: &Value, to: &Destination) -> Option<String> {
    let rest = chart.strip_prefix("prometheus.prometheusSpec.")?;
    let key = rest.split('.').next()?;
    let kinds = [
        ("serviceMonitor", "ServiceMonitor"),
        ("podMonitor", "PodMonitor"),
        ("probe", "Probe"),
        ("rule", "PrometheusRule"),
        ("scrapeConfig", "ScrapeConfig"),
    ];
    let (_, kind) = kinds.iter().find(|(k, _)| {
        key.strip_prefix(k).is_some_and(|s| {
            ["Selector", "NamespaceSelector", "SelectorNilUsesHelmValues"].contains(&s)
        })
    })?;
    let kept = "the migration keeps those of yours selected (listed as yours)";
    Some(match (key.ends_with("NilUsesHelmValues"), value) {
        (true, Value::Bool(false)) => format!(
            "the chart's Prometheus selects every {kind}, not only those labelled release: {}; {kept}",
            to.release
        ),
        _ => format!("which {kind}s the chart's Prometheus selects; {kept}"),
    })
}

fn tolerations(chart: &str, value: &Value) -> Vec<Draft> {
    let Some(list) = value.as_array() else {
        return not_carried(chart, value, "not a list of tolerations");
    };
    let tolerates_all = list.iter().any(|t| {
        t.get("operator").and_then(Value::as_str) == Some("Exists")
            && t.get("key")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            && t.get("effect")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
    });
    if tolerates_all {
        return vec![carry(
            chart,
            value,
            "nodeExporter.tolerations",
            json!("all"),
        )];
    }
    if list.is_empty() {
        return vec![carry(
            chart,
            value,
            "nodeExporter.tolerations",
            json!("none"),
        )];
    }
    not_carried(
        chart,
        value,
        "automon's node-exporter tolerates every taint (all) or none; label the nodes it should skip automon.io/exclude=true",
    )
}

/// One receiver of the user's `alertmanager.config.receivers`, read for automon.
struct Receiver {
    index: usize,
    name: String,
    result: Result<Option<Value>, String>,
    /// The Secrets it names (their values are never read).
    secrets: BTreeSet<String>,
    /// The integrations that took a value from `global` (`email`, `slack`).
    from_global: BTreeSet<&'static str>,
    kinds: Vec<String>,
}

impl Receiver {
    fn uses_global(&self, kind: &str) -> bool {
        self.result.as_ref().is_ok_and(Option::is_some) && self.from_global.contains(kind)
    }
}

/// The Secret and key a file in Alertmanager's pod comes from: `/etc/alertmanager/secrets/S/K`.
fn secret_of_file(path: &str) -> Option<(String, String)> {
    let (secret, key) = path.strip_prefix(AM_SECRETS_DIR)?.split_once('/')?;
    (!secret.is_empty() && !key.is_empty() && !key.contains('/'))
        .then(|| (secret.to_string(), key.to_string()))
}

/// The chart's integrations (`<kind>_configs`) that automon's receivers have.
const CARRIED_INTEGRATIONS: [&str; 6] = [
    "webhook",
    "slack",
    "email",
    "pagerduty",
    "opsgenie",
    "msteamsv2",
];

/// A non-empty text of the chart's `alertmanager.config.global`.
fn global_text<'a>(global: &'a Value, key: &str) -> Option<&'a str> {
    global[key].as_str().filter(|s| !s.is_empty())
}

fn receivers(user: &Value, to: &Destination) -> Vec<Receiver> {
    let global = &user["alertmanager"]["config"]["global"];
    let list = user["alertmanager"]["config"]["receivers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    list.iter()
        .enumerate()
        .map(|(index, r)| {
            let mut out = Receiver {
                index,
                name: r["name"].as_str().unwrap_or_default().to_string(),
                result: Ok(None),
                secrets: BTreeSet::new(),
                from_global: BTreeSet::new(),
                kinds: Vec::new(),
            };
            out.result = receiver(r, global, to, &mut out);
            out
        })
        .collect()
}

/// The credential's words: what it is, and how to give it to automon.
fn credential(field: &str, reference: &str, to: &Destination) -> String {
    format!(
        "its {field} is a credential written in the chart's values, which automon never copies: put it in a Secret in namespace {} and name it as {reference}: {{secret: NAME, key: KEY}}",
        to.automon_namespace
    )
}

/// One receiver as automon's (`None`: it sends nowhere), or why it cannot be.
fn receiver(
    r: &Value,
    global: &Value,
    to: &Destination,
    out: &mut Receiver,
) -> Result<Option<Value>, String> {
    if out.name.is_empty() {
        return Err("a receiver without a name".into());
    }
    let Some(fields) = r.as_object() else {
        return Err("not a section".into());
    };
    let mut integrations: Vec<(&str, &Vec<Value>)> = fields
        .iter()
        .filter_map(|(k, v)| Some((k.strip_suffix("_configs")?, v.as_array()?)))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    integrations.sort_by_key(|(k, _)| *k);
    out.kinds = integrations.iter().map(|(k, _)| k.to_string()).collect();
    if integrations.is_empty() {
        return Ok(None);
    }
    let others: Vec<&str> = integrations
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !CARRIED_INTEGRATIONS.contains(k))
        .collect();
    if !others.is_empty() {
        return Err(format!(
            "automon's receivers send to a webhook, Slack, email, PagerDuty, Opsgenie or Teams (msteamsv2); {} cannot be carried over",
            others.join(", ")
        ));
    }
    let mut automon = json!({"name": out.name});
    for (kind, configs) in integrations {
        if configs.len() > 1 {
            return Err(format!(
                "automon's receiver has one {kind} integration; this one has {}",
                configs.len()
            ));
        }
        let it = Integration {
            c: &configs[0],
            global,
            to,
        };
        let (key, value) = match kind {
            "webhook" => ("webhook", webhook(&it, out)?),
            "slack" => ("slack", slack(&it, out)?),
            "pagerduty" => ("pagerduty", pagerduty(&it, out)?),
            "opsgenie" => ("opsgenie", opsgenie(&it, out)?),
            "msteamsv2" => ("msteams", msteams(&it, out)?),
            _ => ("email", email(&it, out)?),
        };
        automon[key] = value;
    }
    Ok(Some(automon))
}

/// One integration of a chart's receiver (`<kind>_configs[0]`), with the chart's
/// `alertmanager.config.global` it may take values from.
struct Integration<'a> {
    c: &'a Value,
    global: &'a Value,
    to: &'a Destination<'a>,
}

impl Integration<'_> {
    /// A non-empty text of the integration.
    fn text(&self, key: &str) -> Option<&str> {
        self.c[key].as_str().filter(|s| !s.is_empty())
    }

    /// A credential: `<field>_file` (a Secret the chart mounts: automon's `{secret, key}`), else
    /// `global.<global>_file` for `kind`; a literal one is refused (never copied, `reference` is
    /// how to give it to automon). `None` when neither names one.
    fn credential(
        &self,
        out: &mut Receiver,
        field: &str,
        global: Option<(&'static str, &str)>,
        reference: &str,
    ) -> Result<Option<Value>, String> {
        let own_file = format!("{field}_file");
        if let Some(path) = self.text(&own_file) {
            return secret_key(&own_file, path, out).map(Some);
        }
        if self.text(field).is_some() {
            return Err(credential(field, reference, self.to));
        }
        let Some((kind, global)) = global else {
            return Ok(None);
        };
        let global_file = format!("{global}_file");
        if let Some(path) = global_text(self.global, &global_file) {
            out.from_global.insert(kind);
            return secret_key(&format!("global.{global_file}"), path, out).map(Some);
        }
        if global_text(self.global, global).is_some() {
            return Err(credential(&format!("global.{global}"), reference, self.to));
        }
        Ok(None)
    }
}

/// automon's `{secret, key}` for a file the chart mounts from a Secret, which is noted.
fn secret_key(field: &str, path: &str, out: &mut Receiver) -> Result<Value, String> {
    let (secret, key) = secret_of_file(path).ok_or_else(|| {
        format!("its {field} {path} is not in a Secret the chart mounts ({AM_SECRETS_DIR}NAME/KEY)")
    })?;
    out.secrets.insert(secret.clone());
    Ok(json!({"secret": secret, "key": key}))
}

fn webhook(it: &Integration, out: &mut Receiver) -> Result<Value, String> {
    let url = it
        .credential(out, "url", None, "webhook.urlSecret")?
        .ok_or("its webhook has no url")?;
    Ok(json!({"urlSecret": url}))
}

fn slack(it: &Integration, out: &mut Receiver) -> Result<Value, String> {
    let url = it
        .credential(
            out,
            "api_url",
            Some(("slack", "slack_api_url")),
            "slack.apiUrlSecret",
        )?
        .ok_or("its Slack integration has no api_url")?;
    let channel = it
        .text("channel")
        .ok_or("its Slack integration names no channel, which automon needs")?;
    Ok(json!({"apiUrlSecret": url, "channel": channel}))
}

fn pagerduty(it: &Integration, out: &mut Receiver) -> Result<Value, String> {
    if it.text("service_key").is_some() || it.text("service_key_file").is_some() {
        return Err("its PagerDuty integration uses the Events API v1 (service_key); automon sends to Events API v2: make a v2 integration and name its routing key as pagerduty.routingKeySecret".into());
    }
    let key = it
        .credential(out, "routing_key", None, "pagerduty.routingKeySecret")?
        .ok_or("its PagerDuty integration has no routing_key")?;
    let mut pd = json!({"routingKeySecret": key});
    if let Some(url) = it
        .text("url")
        .or_else(|| global_text(it.global, "pagerduty_url"))
    {
        pd["url"] = json!(url);
    }
    Ok(pd)
}

fn opsgenie(it: &Integration, out: &mut Receiver) -> Result<Value, String> {
    let key = it
        .credential(
            out,
            "api_key",
            Some(("opsgenie", "opsgenie_api_key")),
            "opsgenie.apiKeySecret",
        )?
        .ok_or("its Opsgenie integration has no api_key")?;
    let mut genie = json!({"apiKeySecret": key});
    if let Some(url) = it
        .text("api_url")
        .or_else(|| global_text(it.global, "opsgenie_api_url"))
    {
        genie["apiUrl"] = json!(url);
    }
    Ok(genie)
}

fn msteams(it: &Integration, out: &mut Receiver) -> Result<Value, String> {
    let url = it
        .credential(out, "webhook_url", None, "msteams.webhookUrlSecret")?
        .ok_or("its Teams integration has no webhook_url")?;
    Ok(json!({"webhookUrlSecret": url}))
}

fn email(it: &Integration, out: &mut Receiver) -> Result<Value, String> {
    let global = it.global;
    if it.text("auth_secret").is_some()
        || it.text("auth_identity").is_some()
        || global_text(global, "smtp_auth_secret").is_some()
        || global_text(global, "smtp_auth_identity").is_some()
    {
        return Err("its email integration authenticates with CRAM-MD5 or an identity (auth_secret, auth_identity); automon's sends a user and a password (authUsername, authPasswordSecret)".into());
    }
    // `from` and `smarthost` may come from `global` (`smtp_*`), which is noted.
    let mut field = |k: &str, global_key: &str| {
        it.text(k).map(str::to_string).or_else(|| {
            let g = global_text(global, global_key)?;
            out.from_global.insert("email");
            Some(g.to_string())
        })
    };
    let (Some(to_addr), Some(from), Some(smarthost)) = (
        it.text("to").map(str::to_string),
        field("from", "smtp_from"),
        field("smarthost", "smtp_smarthost"),
    ) else {
        return Err("its email integration lacks to, from or smarthost".into());
    };
    let mut email = json!({"to": to_addr, "from": from, "smarthost": smarthost});
    let user = it
        .text("auth_username")
        .or_else(|| global_text(global, "smtp_auth_username"));
    let password = it.credential(
        out,
        "auth_password",
        Some(("email", "smtp_auth_password")),
        "email.authPasswordSecret",
    )?;
    match (user, password) {
        (Some(user), Some(password)) => {
            email["authUsername"] = json!(user);
            email["authPasswordSecret"] = password;
        }
        (None, None) => {}
        _ => {
            return Err(
                "its email integration has a user without a password, or a password without a user"
                    .into(),
            );
        }
    }
    if let Some(require_tls) = it.c["require_tls"]
        .as_bool()
        .or_else(|| global["smtp_require_tls"].as_bool())
    {
        email["requireTls"] = json!(require_tls);
    }
    if it.c["tls_config"]["insecure_skip_verify"].as_bool() == Some(true) {
        email["insecureSkipVerify"] = json!(true);
    }
    Ok(email)
}

/// A row per receiver; a note where a Secret it names is in another namespace than automon's.
fn receiver_rows(chart: &str, receivers: &[Receiver], to: &Destination) -> Vec<Draft> {
    receivers
        .iter()
        .map(|r| {
            let at = format!("{chart}[{}]", r.index);
            let given = match r.kinds.as_slice() {
                [] => format!("{} (no integration)", r.name),
                kinds => format!("{} ({})", r.name, kinds.join(", ")),
            };
            let plan = match &r.result {
                Ok(Some(v)) => Plan::Carry {
                    key: vec!["alertmanager".into(), "receivers".into()],
                    value: v.clone(),
                },
                Ok(None) => Plan::Same(format!(
                    "receiver {} sends nowhere, as automon's {} receiver does when none is given",
                    r.name,
                    crate::config::UI_ONLY_RECEIVER
                )),
                Err(why) => Plan::NotCarried(why.clone()),
            };
            let moved = to.release_namespace != to.automon_namespace;
            let note = (matches!(plan, Plan::Carry { .. }) && moved && !r.secrets.is_empty()).then(|| {
                format!(
                    "copy Secret {} from namespace {} to {}: automon reads Secrets in its own namespace",
                    r.secrets.iter().cloned().collect::<Vec<_>>().join(", "),
                    to.release_namespace,
                    to.automon_namespace
                )
            });
            Draft {
                chart: at,
                given,
                plan,
                note,
            }
        })
        .collect()
}

fn route_receiver(chart: &str, value: &Value, receivers: &[Receiver]) -> Vec<Draft> {
    let name = value.as_str().unwrap_or_default();
    match receivers.iter().find(|r| r.name == name).map(|r| &r.result) {
        Some(Ok(Some(_))) => vec![carry(
            chart,
            value,
            "alertmanager.route.receiver",
            value.clone(),
        )],
        Some(Ok(None)) => same(
            chart,
            value,
            format!(
                "receiver {name} sends nowhere: with no receiver automon's alerts go to its {} receiver, the same",
                crate::config::UI_ONLY_RECEIVER
            ),
        ),
        Some(Err(_)) => not_carried(
            chart,
            value,
            format!("its receiver {name} is not carried over (see above)"),
        ),
        None => not_carried(
            chart,
            value,
            format!("no receiver {name} among the values given"),
        ),
    }
}

/// Whether a key holds a credential by its name: its value is never shown.
fn is_credential(chart: &str) -> bool {
    let last = chart
        .rsplit('.')
        .next()
        .unwrap_or(chart)
        .to_ascii_lowercase();
    !last.ends_with("file")
        && [
            "password",
            "secret",
            "token",
            "url",
            "key",
            "auth",
            "credential",
        ]
        .iter()
        .any(|w| last.contains(w))
}

/// A value as a row shows it: a credential hidden, a long list counted, a section elided.
fn shown(chart: &str, v: &Value) -> String {
    match v {
        Value::String(s) if is_credential(chart) && !s.is_empty() => "(hidden)".into(),
        other => shown_value(other),
    }
}

fn shown_value(v: &Value) -> String {
    match v {
        Value::String(s) if s.is_empty() => "\"\"".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let scalars: Option<Vec<String>> = a
                .iter()
                .map(|x| match x {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    Value::Bool(b) => Some(b.to_string()),
                    _ => None,
                })
                .collect();
            match scalars.map(|s| format!("[{}]", s.join(", "))) {
                Some(text) if text.len() <= 40 => text,
                _ => plural(a.len(), "item"),
            }
        }
        Value::Object(m) if m.is_empty() => "{}".into(),
        Value::Object(_) => "{…}".into(),
        other => other.to_string(),
    }
}

/// `team (webhook from Secret hooks key url)`: a receiver without its values.
fn receiver_shown(r: &Value) -> String {
    let name = r["name"].as_str().unwrap_or_default();
    let mut parts = Vec::new();
    for (kind, field) in [("webhook", "urlSecret"), ("slack", "apiUrlSecret")] {
        if let Some(s) = r[kind].get(field) {
            parts.push(format!(
                "{kind} from Secret {} key {}",
                s["secret"].as_str().unwrap_or_default(),
                s["key"].as_str().unwrap_or_default()
            ));
        }
    }
    if let Some(e) = r.get("email") {
        parts.push(format!("email to {}", e["to"].as_str().unwrap_or_default()));
    }
    format!("{name} ({})", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn to() -> Destination<'static> {
        Destination {
            release: "kps",
            release_namespace: "monitoring",
            automon_namespace: "automon",
        }
    }

    fn peers() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/peers/kube-prometheus-stack-88.5.3")
    }

    /// The chart's values.yaml (and a subchart's), as Helm reads it.
    fn chart_values(sub: Option<&str>) -> Value {
        let path = match sub {
            None => peers().join("values.yaml"),
            Some(s) => peers().join("charts").join(s).join("values.yaml"),
        };
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_saphyr::from_str(&text).unwrap()
    }

    fn outcome_of<'a>(m: &'a Mapping, chart: &str) -> &'a Outcome {
        &m.rows
            .iter()
            .find(|r| r.chart == chart)
            .unwrap_or_else(|| panic!("no row {chart}: {:#?}", m.rows))
            .outcome
    }

    /// Every chart key the tables name is one the chart has (or sits in a section the chart
    /// leaves empty for the user), so the table maps real values, not invented ones.
    #[test]
    fn the_tables_name_the_charts_real_keys() {
        let top = chart_values(None);
        let sub = |name: &str| chart_values(Some(name));
        let subcharts = [
            ("prometheus-node-exporter", sub("prometheus-node-exporter")),
            ("kube-state-metrics", sub("kube-state-metrics")),
            ("grafana", sub("grafana")),
        ];
        let keys = DIRECT
            .iter()
            .chain(RESOURCES)
            .map(|(c, _)| *c)
            .chain(WHOLE.iter().copied())
            .chain(PLACEMENT.iter().map(|(c, _)| *c))
            .chain([
                "alertmanager.config.receivers",
                "alertmanager.config.route.receiver",
                "alertmanager.config.route.routes",
                "alertmanager.alertmanagerSpec.secrets",
                "prometheus-node-exporter.tolerations",
                "grafana.sidecar.dashboards.searchNamespace",
                "global.imagePullSecrets",
                "prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues",
            ]);
        for chart in keys {
            let parts: Vec<String> = chart.split('.').map(String::from).collect();
            let (tree, path) = match subcharts.iter().find(|(s, _)| *s == parts[0]) {
                Some((_, values)) if pointer(&top, &parts).is_none() => (values, &parts[1..]),
                _ => (&top, &parts[..]),
            };
            // Walk down; an empty section or an unset one ends what the chart spells out.
            let mut node = tree;
            for (i, part) in path.iter().enumerate() {
                match node.get(part) {
                    Some(next) => node = next,
                    None if node.as_object().is_some_and(Map::is_empty) || node.is_null() => break,
                    None => panic!("{chart}: the chart has no {}", path[..=i].join(".")),
                }
            }
        }
    }

    /// A copy of the chart's whole values.yaml given as the user's values (common: `helm show
    /// values > values.yaml`, edit, `-f values.yaml`): what has an automon key is carried or is
    /// automon's default, the rest is not listed; automon accepts the result.
    #[test]
    fn the_charts_whole_values_yaml_given_back() {
        let values = chart_values(None);
        let m = map(&values, &values, &to());
        let config = Config::from_values(m.values.clone(), "mapped").unwrap();
        assert!(m.chart_defaults > 500, "{}", m.chart_defaults);
        // The chart's defaults that differ from automon's are carried: nothing changes.
        assert_eq!(config.prometheus.retention.0, "10d");
        assert_eq!(config.alertmanager.route.group_by, ["namespace"]);
        assert_eq!(config.alertmanager.route.repeat_interval.0, "12h");
        assert!(config.alertmanager.receivers.is_empty());
        assert_eq!(
            outcome_of(&m, "prometheus.prometheusSpec.replicas"),
            &Outcome::Default {
                key: "prometheus.replicas".into()
            }
        );
        assert!(matches!(
            outcome_of(
                &m,
                "prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues"
            ),
            Outcome::Migration { .. }
        ));
        // What has no automon key and equals the chart's default is counted, not listed: the
        // chart's null receiver, the scrapes automon does not make, the operator's settings.
        for unlisted in [
            "alertmanager.config.receivers[0]",
            "alertmanager.config.route.receiver",
            "kubeEtcd.enabled",
            "prometheusOperator.admissionWebhooks.enabled",
        ] {
            assert!(m.rows.iter().all(|r| r.chart != unlisted), "{unlisted}");
        }
        assert!(m.rows.len() < 60, "{:#?}", m.rows);
    }

    #[test]
    fn what_users_set_is_carried_to_automons_keys() {
        let user = json!({
            "prometheus": {"prometheusSpec": {
                "retention": "30d", "retentionSize": "40GB", "replicas": 2, "shards": 1,
                "scrapeInterval": "15s", "evaluationInterval": "",
                "externalLabels": {"cluster": "prod", "topology.kubernetes.io/region": "eu-1"},
                "resources": {"requests": {"cpu": 1, "memory": "4Gi"}, "limits": {"memory": "8Gi", "ephemeral-storage": "1Gi"}},
                "storageSpec": {"volumeClaimTemplate": {"spec": {
                    "storageClassName": "fast", "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "100Gi"}}}}},
                "serviceMonitorSelectorNilUsesHelmValues": false,
                "ruleSelector": {"matchLabels": {"team": "a"}},
                "nodeSelector": {"pool": "monitoring"},
            }},
            "alertmanager": {"alertmanagerSpec": {"replicas": 3, "resources": {"requests": {"memory": "64Mi"}},
                "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "monitoring", "effect": "NoSchedule"}],
                "affinity": {}}},
            "prometheusOperator": {"priorityClassName": "system-cluster-critical"},
            "prometheus-node-exporter": {"tolerations": [{"operator": "Exists"}], "service": {"port": 9101}},
            "kube-state-metrics": {"resources": {"limits": {"memory": "1Gi"}}},
            "grafana": {"enabled": false, "adminPassword": "planted-password", "sidecar": {"dashboards": {"searchNamespace": "ALL"}}},
            "global": {"imageRegistry": "mirror.local:5000", "imagePullSecrets": [{"name": "pull"}]},
            "kubeEtcd": {"enabled": false},
            "kubeDns": {"enabled": true},
            "nodeExporter": {"enabled": false},
            "kubelet": {"enabled": true},
            "defaultRules": {"rules": {"etcd": false}},
        });
        let m = map(&user, &chart_values(None), &to());
        let want = json!({
            "prometheus": {
                "retention": "30d", "retentionSize": "40GB", "replicas": 2, "shards": 1,
                "scrapeInterval": "15s",
                "externalLabels": {"cluster": "prod", "topology.kubernetes.io/region": "eu-1"},
                "resources": {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"memory": "8Gi"}},
                "storage": {"size": "100Gi", "storageClass": "fast"},
                "nodeSelector": {"pool": "monitoring"},
            },
            "alertmanager": {"replicas": 3, "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "monitoring", "effect": "NoSchedule"}]},
            "operator": {"priorityClassName": "system-cluster-critical"},
            "nodeExporter": {"port": 9101},
            "kubeStateMetrics": {"resources": {"limits": {"memory": "1Gi"}}},
            "grafana": {"enabled": false},
            "images": {"registry": "mirror.local:5000", "pullSecrets": ["pull"]},
        });
        assert_eq!(
            serde_json::to_value(&m.values).unwrap(),
            want,
            "{:#?}",
            m.rows
        );
        Config::from_values(m.values.clone(), "mapped").unwrap();
        let o = |c: &str| outcome_of(&m, c).clone();
        assert_eq!(
            o("prometheus.prometheusSpec.retention"),
            Outcome::Carried {
                key: "prometheus.retention".into(),
                value: "30d".into()
            }
        );
        assert_eq!(
            o("prometheus.prometheusSpec.externalLabels.topology.kubernetes.io/region"),
            Outcome::Carried {
                key: "prometheus.externalLabels.topology.kubernetes.io/region".into(),
                value: "eu-1".into()
            }
        );
        // Where the pods run: the pod spec's fields as they are, the selector whole.
        assert_eq!(
            o("prometheus.prometheusSpec.nodeSelector"),
            Outcome::Carried {
                key: "prometheus.nodeSelector".into(),
                value: "{…}".into()
            }
        );
        assert!(
            m.rows
                .iter()
                .all(|r| r.chart != "alertmanager.alertmanagerSpec.affinity"),
            "an empty affinity is the chart's default: nothing to say"
        );
        // Equal to automon's default: said, not carried.
        for (chart, key) in [
            (
                "prometheus-node-exporter.tolerations",
                "nodeExporter.tolerations",
            ),
            (
                "grafana.sidecar.dashboards.searchNamespace",
                "grafana.dashboardsFromAllNamespaces",
            ),
            ("kubelet.enabled", "kubelet.enabled"),
            (
                "alertmanager.alertmanagerSpec.resources.requests.memory",
                "alertmanager.resources.requests.memory",
            ),
        ] {
            assert_eq!(o(chart), Outcome::Default { key: key.into() }, "{chart}");
        }
        // Empty, as the chart's default: nothing to say.
        assert!(
            m.rows
                .iter()
                .all(|r| r.chart != "prometheus.prometheusSpec.evaluationInterval")
        );
        assert!(matches!(
            o("prometheus.prometheusSpec.ruleSelector.matchLabels.team"),
            Outcome::Migration { .. }
        ));
        let Outcome::Migration { what } =
            o("prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues")
        else {
            panic!()
        };
        assert!(
            what.contains("selects every ServiceMonitor, not only those labelled release: kps"),
            "{what}"
        );
        assert!(matches!(o("kubeEtcd.enabled"), Outcome::Same { .. }));
        let why = |c: &str| match o(c) {
            Outcome::NotCarried { why } => why,
            other => panic!("{c}: {other:?}"),
        };
        for (chart, says) in [
            ("kubeDns.enabled", "does not scrape kube-dns"),
            ("nodeExporter.enabled", "always runs node-exporter"),
            (
                "prometheus.prometheusSpec.resources.limits.ephemeral-storage",
                "CPU and memory only",
            ),
            (
                "prometheus.prometheusSpec.storageSpec.volumeClaimTemplate.spec.accessModes",
                "no such setting",
            ),
            ("defaultRules.rules.etcd", "alerts.groups"),
            ("grafana.adminPassword", "credential"),
        ] {
            assert!(why(chart).contains(says), "{chart}: {}", why(chart));
        }
        // The password is never shown, nor carried.
        let all = format!("{:?}{}", m.rows, m.values.to_yaml());
        assert!(!all.contains("planted-password"), "{all}");
    }

    #[test]
    fn receivers_are_carried_only_with_their_secrets_named() {
        let user = json!({"alertmanager": {
            "alertmanagerSpec": {"secrets": ["hooks"]},
            "config": {
                "global": {"smtp_from": "am@example.com", "smtp_smarthost": "smtp.example.com:587", "slack_api_url": "https://hooks.slack.com/planted-slack"},
                "route": {"receiver": "team", "group_by": ["alertname"], "routes": [{"receiver": "pager", "matchers": ["severity = critical"]}]},
                "receivers": [
                    {"name": "null"},
                    {"name": "team", "webhook_configs": [{"url_file": "/etc/alertmanager/secrets/hooks/team-url", "send_resolved": true}]},
                    {"name": "literal", "webhook_configs": [{"url": "https://hooks.example.com/planted-token"}]},
                    {"name": "mail", "email_configs": [{"to": "ops@example.com"}]},
                    {"name": "chat", "slack_configs": [{"channel": "#alerts"}]},
                    {"name": "pager", "pagerduty_configs": [{"routing_key": "planted-key"}]},
                    {"name": "two", "webhook_configs": [{"url_file": "/etc/alertmanager/secrets/hooks/a"}, {"url_file": "/etc/alertmanager/secrets/hooks/b"}]},
                    {"name": "elsewhere", "webhook_configs": [{"url_file": "/etc/hooks/url"}]},
                    {"name": "pd", "pagerduty_configs": [{"routing_key_file": "/etc/alertmanager/secrets/hooks/pd-key", "url": "https://events.eu.pagerduty.com/v2/enqueue"}]},
                    {"name": "genie", "opsgenie_configs": [{"api_key_file": "/etc/alertmanager/secrets/hooks/genie"}]},
                    {"name": "teams", "msteamsv2_configs": [{"webhook_url_file": "/etc/alertmanager/secrets/hooks/teams"}]},
                    {"name": "smtp", "email_configs": [{"to": "ops@example.com", "auth_username": "am", "auth_password_file": "/etc/alertmanager/secrets/hooks/smtp", "require_tls": true}]},
                    {"name": "v1", "pagerduty_configs": [{"service_key": "planted-v1"}]},
                    {"name": "vo", "victorops_configs": [{"api_key": "planted-vo"}]},
                ],
            },
        }});
        let m = map(&user, &json!({}), &to());
        let receivers =
            serde_json::to_value(&m.values).unwrap()["alertmanager"]["receivers"].clone();
        assert_eq!(
            receivers,
            json!([
                {"name": "team", "webhook": {"urlSecret": {"secret": "hooks", "key": "team-url"}}},
                {"name": "mail", "email": {"to": "ops@example.com", "from": "am@example.com", "smarthost": "smtp.example.com:587"}},
                {"name": "pd", "pagerduty": {"routingKeySecret": {"secret": "hooks", "key": "pd-key"}, "url": "https://events.eu.pagerduty.com/v2/enqueue"}},
                {"name": "genie", "opsgenie": {"apiKeySecret": {"secret": "hooks", "key": "genie"}}},
                {"name": "teams", "msteams": {"webhookUrlSecret": {"secret": "hooks", "key": "teams"}}},
                {"name": "smtp", "email": {"to": "ops@example.com", "from": "am@example.com", "smarthost": "smtp.example.com:587",
                    "authUsername": "am", "authPasswordSecret": {"secret": "hooks", "key": "smtp"}, "requireTls": true}},
            ])
        );
        let row = |c: &str| {
            m.rows
                .iter()
                .find(|r| r.chart == c)
                .unwrap_or_else(|| panic!("{c}: {:#?}", m.rows))
        };
        assert_eq!(
            row("alertmanager.config.receivers[1]").outcome,
            Outcome::Carried {
                key: "alertmanager.receivers[0]".into(),
                value: "team (webhook from Secret hooks key team-url)".into()
            }
        );
        assert_eq!(
            row("alertmanager.config.receivers[1]").note.as_deref(),
            Some(
                "copy Secret hooks from namespace monitoring to automon: automon reads Secrets in its own namespace"
            )
        );
        let why = |c: &str| match &row(c).outcome {
            Outcome::NotCarried { why } => why.clone(),
            other => panic!("{c}: {other:?}"),
        };
        for (chart, says) in [
            (
                "alertmanager.config.receivers[2]",
                "its url is a credential written in the chart's values, which automon never copies: put it in a Secret in namespace automon and name it as webhook.urlSecret",
            ),
            (
                "alertmanager.config.receivers[4]",
                "global.slack_api_url is a credential",
            ),
            (
                "alertmanager.config.receivers[5]",
                "its routing_key is a credential written in the chart's values",
            ),
            (
                "alertmanager.config.receivers[12]",
                "Events API v1 (service_key)",
            ),
            (
                "alertmanager.config.receivers[13]",
                "victorops cannot be carried over",
            ),
            (
                "alertmanager.config.receivers[6]",
                "one webhook integration; this one has 2",
            ),
            (
                "alertmanager.config.receivers[7]",
                "/etc/hooks/url is not in a Secret the chart mounts",
            ),
        ] {
            assert!(why(chart).contains(says), "{chart}: {}", why(chart));
        }
        assert!(matches!(
            row("alertmanager.config.receivers[0]").outcome,
            Outcome::Same { .. }
        ));
        assert_eq!(
            row("alertmanager.config.route.receiver").outcome,
            Outcome::Carried {
                key: "alertmanager.route.receiver".into(),
                value: "team".into()
            }
        );
        assert!(why("alertmanager.config.route.routes").contains("no child routes"));
        assert!(matches!(
            row("alertmanager.config.global.smtp_from").outcome,
            Outcome::Same { .. }
        ));
        assert_eq!(
            row("alertmanager.config.global.slack_api_url").given,
            "(hidden)"
        );
        assert!(matches!(
            row("alertmanager.alertmanagerSpec.secrets").outcome,
            Outcome::Same { .. }
        ));
        let c = Config::from_values(m.values.clone(), "mapped").unwrap();
        assert_eq!(c.alertmanager.route.receiver.as_deref(), Some("team"));
        let all = format!("{:?}{}", m.rows, m.values.to_yaml());
        for planted in [
            "planted-token",
            "planted-slack",
            "planted-key",
            "planted-v1",
            "planted-vo",
        ] {
            assert!(!all.contains(planted), "{planted}: {all}");
        }
        // The route's receiver not carried: neither is the route's choice of it.
        let user = json!({"alertmanager": {"config": {
            "route": {"receiver": "literal"},
            "receivers": [{"name": "literal", "webhook_configs": [{"url": "https://h/x"}]}],
        }}});
        let m = map(&user, &json!({}), &to());
        assert!(matches!(
            outcome_of(&m, "alertmanager.config.route.receiver"),
            Outcome::NotCarried { .. }
        ));
        assert_eq!(m.values, Values::default());
    }

    #[test]
    fn what_automon_refuses_is_not_carried_and_says_why() {
        let user =
            json!({"prometheus": {"prometheusSpec": {"retentionSize": "50 gigs", "replicas": 20}}});
        let m = map(&user, &json!({}), &to());
        assert_eq!(m.values, Values::default());
        let Outcome::NotCarried { why } = outcome_of(&m, "prometheus.prometheusSpec.replicas")
        else {
            panic!()
        };
        assert_eq!(
            why,
            "automon refuses it (prometheus.replicas: 20 is out of range (1 to 10))"
        );
        let Outcome::NotCarried { why } = outcome_of(&m, "prometheus.prometheusSpec.retentionSize")
        else {
            panic!()
        };
        assert!(
            why.starts_with("automon refuses it (prometheus.retentionSize:"),
            "{why}"
        );
    }

    #[test]
    fn nothing_given_maps_to_nothing() {
        let m = map(&json!({}), &chart_values(None), &to());
        assert!(m.rows.is_empty());
        assert_eq!(m.values.to_yaml(), "{}\n");
    }
}
