//! Proving coverage before the release goes: every target the release's Prometheus scrapes is
//! scraped by automon's too, compared by what each one monitors (a node's exporter, a node's
//! kubelet path, the API server, a pod's port) rather than by job names, which differ between
//! the stacks. Reading the targets is the I/O; identifying and comparing them is pure.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    time::Duration,
};

use serde::Serialize;
use serde_json::Value;

use crate::{
    output::{self, plural},
    status::prometheus::Source,
};

/// One active target, as `/api/v1/targets` reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Target {
    /// The `job` label.
    pub job: String,
    /// `serviceMonitor/<namespace>/<name>/<endpoint>`, or a plain job name.
    pub scrape_pool: String,
    /// `up`, `down` or `unknown` (not scraped yet).
    pub health: String,
    pub last_error: Option<String>,
    /// The URL scraped, after relabeling: its path and parameters.
    pub scrape_url: String,
    /// The labels service discovery gave it, before relabeling: what it is in Kubernetes.
    pub discovered: BTreeMap<String, String>,
}

/// The active targets of one Prometheus, asked within `wait`; an error says which Prometheus
/// and why it did not answer.
pub async fn active_targets(source: Source<'_>, wait: Duration) -> Result<Vec<Target>, String> {
    let data = source
        .get_within("/api/v1/targets?state=active", wait)
        .await?;
    Ok(targets(&data))
}

/// The active targets in `/api/v1/targets`' data (pure).
pub fn targets(data: &Value) -> Vec<Target> {
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    data["activeTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| Target {
            job: text(&t["labels"]["job"]).unwrap_or_default(),
            scrape_pool: text(&t["scrapePool"]).unwrap_or_default(),
            health: text(&t["health"]).unwrap_or_else(|| "unknown".into()),
            last_error: text(&t["lastError"]),
            scrape_url: text(&t["scrapeUrl"]).unwrap_or_default(),
            discovered: t["discoveredLabels"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.clone(), text(v)?)))
                .collect(),
        })
        .collect()
}

impl Target {
    fn label(&self, name: &str) -> Option<&str> {
        self.discovered.get(name).map(String::as_str)
    }

    /// A Kubernetes label of the target's pod (`app.kubernetes.io/name`).
    fn pod_label(&self, key: &str) -> Option<&str> {
        self.label(&format!("__meta_kubernetes_pod_label_{}", sanitized(key)))
    }

    /// A Kubernetes label of the Service the target was found through.
    fn service_label(&self, key: &str) -> Option<&str> {
        self.label(&format!(
            "__meta_kubernetes_service_label_{}",
            sanitized(key)
        ))
    }

    /// `__meta_kubernetes_endpoint_<x>`, or the EndpointSlice role's name for it.
    fn endpoint(&self, endpoints: &str, slices: &str) -> Option<&str> {
        self.label(&format!("__meta_kubernetes_endpoint_{endpoints}"))
            .or_else(|| self.label(&format!("__meta_kubernetes_endpointslice_{slices}")))
    }

    /// The pod's `app.kubernetes.io/name`, else the Service's.
    fn name_label(&self) -> Option<&str> {
        self.pod_label(NAME_LABEL)
            .or_else(|| self.service_label(NAME_LABEL))
    }

    /// The address service discovery found (`10.0.0.7:9100`), before any relabeling.
    fn address(&self) -> &str {
        self.label("__address__")
            .unwrap_or_else(|| host_of(&self.scrape_url))
    }

    /// The path scraped and its parameters (`module=http_2xx`), from the URL scraped.
    fn path_and_params(&self) -> (String, String) {
        let after_scheme = self
            .scrape_url
            .split_once("://")
            .map_or("", |(_, rest)| rest);
        let (path, params) = match after_scheme.find('/') {
            Some(i) => {
                let rest = &after_scheme[i..];
                rest.split_once('?').unwrap_or((rest, ""))
            }
            None => ("", ""),
        };
        let path = match path {
            "" => self.label("__metrics_path__").unwrap_or("/metrics"),
            p => p,
        };
        let mut params: Vec<&str> = params.split('&').filter(|p| !p.is_empty()).collect();
        params.sort_unstable();
        (path.to_string(), params.join("&"))
    }
}

/// The Kubernetes recommended name label.
const NAME_LABEL: &str = "app.kubernetes.io/name";

/// A label key as Prometheus' Kubernetes discovery writes it in a meta label's name.
fn sanitized(key: &str) -> String {
    key.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?']).next().unwrap_or_default()
}

/// What a target monitors, so that two stacks' targets of the same thing are one. kwok's nodes
/// share one address: a pod or node names a target wherever there is one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Identity {
    /// A node's exporter, whichever DaemonSet runs it.
    NodeExporter { node: String },
    /// One path of a node's kubelet (`/metrics`, `/metrics/cadvisor`, `/metrics/probes`).
    Kubelet { node: String, path: String },
    /// One API server, by the address the `kubernetes` Service lists.
    ApiServer { address: String },
    /// kube-state-metrics: the cluster's objects, whichever pod serves them.
    KubeStateMetrics,
    /// Anything else, exactly: its pod (or endpoint, or address), port, path and parameters.
    Exact {
        namespace: String,
        /// `pod/<name>`, `node/<name>`, or the address when discovery names neither.
        object: String,
        port: String,
        path: String,
        params: String,
    },
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::NodeExporter { node } => write!(f, "node-exporter on node/{node}"),
            Identity::Kubelet { node, path } => write!(f, "kubelet {path} on node/{node}"),
            Identity::ApiServer { address } => write!(f, "apiserver {address}"),
            Identity::KubeStateMetrics => f.write_str("kube-state-metrics"),
            Identity::Exact {
                namespace,
                object,
                port,
                path,
                params,
            } => {
                if !namespace.is_empty() {
                    write!(f, "{namespace}/")?;
                }
                write!(f, "{object}")?;
                if !port.is_empty() && !object.ends_with(&format!(":{port}")) {
                    write!(f, ":{port}")?;
                }
                write!(f, "{path}")?;
                if !params.is_empty() {
                    write!(f, "?{params}")?;
                }
                Ok(())
            }
        }
    }
}

/// What a target monitors (pure).
pub fn identify(t: &Target) -> Identity {
    let (path, params) = t.path_and_params();
    let pod_name = t.pod_label(NAME_LABEL).unwrap_or_default();
    let pod_node = t
        .label("__meta_kubernetes_pod_node_name")
        .or_else(|| t.endpoint("node_name", "endpoint_node_name"));
    if pod_name.contains("node-exporter")
        && let Some(node) = pod_node
    {
        return Identity::NodeExporter {
            node: node.to_string(),
        };
    }
    let target_kind = t.endpoint("address_target_kind", "address_target_kind");
    let target_name = t.endpoint("address_target_name", "address_target_name");
    let kubelet_service = t.service_label(NAME_LABEL) == Some("kubelet")
        || t.service_label("k8s-app") == Some("kubelet");
    if kubelet_service
        && target_kind == Some("Node")
        && let Some(node) = target_name
    {
        return Identity::Kubelet {
            node: node.to_string(),
            path,
        };
    }
    let namespace = t.label("__meta_kubernetes_namespace").unwrap_or_default();
    if namespace == "default" && t.label("__meta_kubernetes_service_name") == Some("kubernetes") {
        return Identity::ApiServer {
            address: t.address().to_string(),
        };
    }
    if t.name_label()
        .is_some_and(|n| n.contains("kube-state-metrics"))
    {
        return Identity::KubeStateMetrics;
    }
    let address = t.address();
    let port = address
        .rsplit_once(':')
        .map_or("", |(_, port)| port)
        .to_string();
    let object = match (t.label("__meta_kubernetes_pod_name"), target_name) {
        (Some(pod), _) => format!("pod/{pod}"),
        (None, Some(name)) => format!("{}/{name}", target_kind.unwrap_or("").to_lowercase()),
        (None, None) => address.to_string(),
    };
    Identity::Exact {
        namespace: namespace.to_string(),
        object,
        port,
        path,
        params,
    }
}

/// A component of a stack, which each stack scrapes in itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Component {
    Prometheus,
    Alertmanager,
    Operator,
    Grafana,
}

impl Component {
    pub fn name(self) -> &'static str {
        match self {
            Component::Prometheus => "prometheus",
            Component::Alertmanager => "alertmanager",
            Component::Operator => "operator",
            Component::Grafana => "grafana",
        }
    }
}

/// The stack component a target is, by its name label (`prometheus-operator` is the operator).
pub fn component(t: &Target) -> Option<Component> {
    let name = t.name_label()?;
    [
        Component::Operator,
        Component::Alertmanager,
        Component::Grafana,
        Component::Prometheus,
    ]
    .into_iter()
    .find(|c| name.contains(c.name()))
}

/// Whether a target is one of the release's own pods: labelled as the release's
/// (`app.kubernetes.io/instance` or `release`), or a stack component found through a Service so
/// labelled (the operator names the Prometheus and Alertmanager pods after their resource, not
/// the release). The chart's Services of the cluster's components (coredns, etcd) carry the
/// release's label too: their pods are not the release's.
fn of_release(t: &Target, release: &str) -> bool {
    let is = |v: Option<&str>| v == Some(release);
    let pod = is(t.pod_label("app.kubernetes.io/instance")) || is(t.pod_label("release"));
    let service =
        is(t.service_label("app.kubernetes.io/instance")) || is(t.service_label("release"));
    pod || (service && component(t).is_some())
}

/// One of the chart's targets that automon's Prometheus scrapes too.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Covered {
    pub identity: Identity,
    pub target: String,
    pub chart_job: String,
    pub automon_job: String,
    /// Up in the chart's Prometheus, down in automon's (its last error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub down: Option<String>,
}

/// One of the chart's targets that no target of automon's monitors.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lost {
    pub identity: Identity,
    pub target: String,
    pub chart_job: String,
    pub scrape_pool: String,
    pub why: String,
    /// What keeps it.
    pub fix: String,
}

/// One of the release's own components, which goes with it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WithRelease {
    pub target: String,
    pub chart_job: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<Component>,
    /// automon's job of the same component, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
}

impl WithRelease {
    pub fn fate(&self) -> String {
        match (self.component, &self.replaced_by) {
            (Some(c), Some(_)) => format!("replaced by automon's own {}", c.name()),
            _ => "goes with the release".into(),
        }
    }
}

/// The chart's targets, each covered, lost or going with the release.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Coverage {
    /// The chart's Prometheus' active targets.
    pub targets: usize,
    pub covered: Vec<Covered>,
    pub lost: Vec<Lost>,
    pub with_release: Vec<WithRelease>,
}

/// Each of the chart's targets against automon's (pure): covered when one of automon's
/// monitors the same thing, whatever its health; the release's own components go with it.
pub fn compare(chart: &[Target], automon: &[Target], release: &str) -> Coverage {
    let mut theirs: BTreeMap<Identity, Vec<&Target>> = BTreeMap::new();
    for t in automon {
        theirs.entry(identify(t)).or_default().push(t);
    }
    let mut components: BTreeMap<Component, &str> = BTreeMap::new();
    for t in automon {
        if let Some(c) = component(t) {
            components.entry(c).or_insert(t.job.as_str());
        }
    }
    let mut coverage = Coverage {
        targets: chart.len(),
        ..Coverage::default()
    };
    for t in chart {
        let identity = identify(t);
        let target = identity.to_string();
        let per_cluster = matches!(
            identity,
            Identity::NodeExporter { .. } | Identity::KubeStateMetrics
        );
        if !per_cluster && of_release(t, release) {
            let component = component(t);
            coverage.with_release.push(WithRelease {
                target,
                chart_job: t.job.clone(),
                component,
                replaced_by: component
                    .and_then(|c| components.get(&c))
                    .map(|job| job.to_string()),
            });
            continue;
        }
        match theirs.get(&identity) {
            Some(same) => {
                let up = same.iter().find(|a| a.health == "up");
                let answering = up.unwrap_or(&same[0]);
                let down =
                    (t.health == "up" && up.is_none() && answering.health == "down").then(|| {
                        answering
                            .last_error
                            .clone()
                            .unwrap_or_else(|| "down".into())
                    });
                coverage.covered.push(Covered {
                    identity,
                    target,
                    chart_job: t.job.clone(),
                    automon_job: answering.job.clone(),
                    down,
                });
            }
            None => {
                let (why, fix) = why_lost(&identity, t, release, &theirs);
                coverage.lost.push(Lost {
                    identity,
                    target,
                    chart_job: t.job.clone(),
                    scrape_pool: t.scrape_pool.clone(),
                    why,
                    fix,
                });
            }
        }
    }
    coverage
}

/// Why automon has no target of `identity`, and what keeps it.
fn why_lost(
    identity: &Identity,
    t: &Target,
    release: &str,
    theirs: &BTreeMap<Identity, Vec<&Target>>,
) -> (String, String) {
    let own_monitor =
        "a ServiceMonitor of your own, labelled so that automon's Prometheus selects it, keeps it";
    match identity {
        Identity::NodeExporter { node } => {
            let any = theirs
                .keys()
                .any(|i| matches!(i, Identity::NodeExporter { .. }));
            if any {
                (
                    format!("automon's node-exporter has no pod on node/{node}"),
                    "see whether its DaemonSet tolerates the node's taints (kubectl automon status)"
                        .into(),
                )
            } else {
                (
                    "automon scrapes no node-exporter".into(),
                    "nodeExporter.enabled: true in automon's configuration keeps it".into(),
                )
            }
        }
        Identity::Kubelet { node, path } => {
            let paths: BTreeSet<&str> = theirs
                .keys()
                .filter_map(|i| match i {
                    Identity::Kubelet { path, .. } => Some(path.as_str()),
                    _ => None,
                })
                .collect();
            if paths.is_empty() {
                (
                    "automon scrapes no kubelet".into(),
                    "kubelet.enabled: true in automon's configuration keeps it".into(),
                )
            } else if !paths.contains(path.as_str()) {
                (
                    format!("automon does not scrape the kubelet's {path}"),
                    own_monitor.into(),
                )
            } else {
                (
                    format!("automon scrapes no kubelet on node/{node}"),
                    "see whether the node is Ready and in the kubelet Service's endpoints".into(),
                )
            }
        }
        Identity::ApiServer { .. } => (
            "automon does not scrape the API server".into(),
            "apiServer.enabled: true in automon's configuration keeps it".into(),
        ),
        Identity::KubeStateMetrics => (
            "automon scrapes no kube-state-metrics".into(),
            "kubeStateMetrics.enabled: true in automon's configuration keeps it".into(),
        ),
        Identity::Exact { .. } => match monitor_of(&t.scrape_pool) {
            Some((kind, namespace, name)) if name.starts_with(&format!("{release}-")) => (
                format!("the release's {kind} {namespace}/{name} scraped it, and goes with it"),
                own_monitor.into(),
            ),
            Some((kind, namespace, name)) => (
                format!("automon's Prometheus does not select your {kind} {namespace}/{name}"),
                "label it so that automon's Prometheus selects it".into(),
            ),
            None => (
                format!(
                    "automon does not scrape it (the chart's scrape configuration {})",
                    t.scrape_pool
                ),
                own_monitor.into(),
            ),
        },
    }
}

/// The monitor a scrape pool comes from (`serviceMonitor/ns/name/0`): its kind as kubectl
/// names it, namespace and name; `None` for a plain scrape configuration.
fn monitor_of(pool: &str) -> Option<(&'static str, &str, &str)> {
    let mut parts = pool.splitn(4, '/');
    let kind = match parts.next()? {
        "serviceMonitor" => "servicemonitor",
        "podMonitor" => "podmonitor",
        "probe" => "probe",
        "scrapeConfig" => "scrapeconfig",
        _ => return None,
    };
    Some((kind, parts.next()?, parts.next()?))
}

impl Coverage {
    /// Covered targets that automon's Prometheus sees down while the chart's sees them up.
    pub fn covered_but_down(&self) -> impl Iterator<Item = &Covered> {
        self.covered.iter().filter(|c| c.down.is_some())
    }

    pub fn replaced(&self) -> usize {
        self.with_release
            .iter()
            .filter(|w| w.replaced_by.is_some())
            .count()
    }

    /// `37 targets of the chart's Prometheus: 31 scraped by automon's too, 6 go with the
    /// release (4 replaced by automon's own), 0 lost`.
    pub fn summary(&self) -> String {
        let down = match self.covered_but_down().count() {
            0 => String::new(),
            n => format!(" ({n} down in automon's)"),
        };
        format!(
            "{} of the chart's Prometheus: {} scraped by automon's too{down}, {} {} with the release ({} replaced by automon's own), {} lost",
            plural(self.targets, "target"),
            self.covered.len(),
            self.with_release.len(),
            if self.with_release.len() == 1 {
                "goes"
            } else {
                "go"
            },
            self.replaced(),
            self.lost.len()
        )
    }

    /// The lost targets as a table (TARGET, CHART'S JOB, WHY); empty when none is lost.
    pub fn lost_table(&self) -> String {
        table_of(
            &["target", "chart's job", "why"],
            self.lost.iter().map(|l| {
                [
                    l.target.clone(),
                    l.chart_job.clone(),
                    format!("{}; {}", l.why, l.fix),
                ]
            }),
        )
    }

    /// The covered targets down in automon's Prometheus (TARGET, AUTOMON'S JOB, ERROR).
    pub fn down_table(&self) -> String {
        table_of(
            &["target", "automon's job", "error"],
            self.covered_but_down().map(|c| {
                [
                    c.target.clone(),
                    c.automon_job.clone(),
                    c.down.clone().unwrap_or_default(),
                ]
            }),
        )
    }

    /// The release's own targets and what becomes of each (TARGET, CHART'S JOB, AFTER).
    pub fn release_table(&self) -> String {
        table_of(
            &["target", "chart's job", "after"],
            self.with_release
                .iter()
                .map(|w| [w.target.clone(), w.chart_job.clone(), w.fate()]),
        )
    }
}

/// A table of three columns, or nothing when there are no rows.
fn table_of(headers: &[&str; 3], rows: impl Iterator<Item = [String; 3]>) -> String {
    let rows: Vec<Vec<String>> = rows.map(Vec::from).collect();
    if rows.is_empty() {
        String::new()
    } else {
        output::table(headers, &rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Fixtures cut down from what a real Prometheus reports for the real chart's generated
    // configuration (endpoints role) and automon's (EndpointSlice role) on the local cluster,
    // whose kwok nodes share one address (10.4.0.1).

    /// An active target as `/api/v1/targets` words it, with only the labels that matter.
    fn target(pool: &str, job: &str, health: &str, url: &str, discovered: Value) -> Value {
        json!({"scrapePool": pool, "labels": {"job": job}, "health": health,
               "scrapeUrl": url, "discoveredLabels": discovered, "lastError": ""})
    }

    fn answer(targets: Vec<Value>) -> Vec<Target> {
        super::targets(&json!({"activeTargets": targets, "droppedTargets": []}))
    }

    fn chart_node_exporter(node: &str, pod: &str) -> Value {
        target(
            "serviceMonitor/monitoring/kps-prometheus-node-exporter/0",
            "node-exporter",
            "up",
            "http://10.4.0.1:9100/metrics",
            json!({
                "__address__": "10.4.0.1:9100",
                "__meta_kubernetes_endpoint_address_target_kind": "Pod",
                "__meta_kubernetes_endpoint_address_target_name": pod,
                "__meta_kubernetes_namespace": "monitoring",
                "__meta_kubernetes_pod_label_app_kubernetes_io_instance": "kps",
                "__meta_kubernetes_pod_label_app_kubernetes_io_name": "prometheus-node-exporter",
                "__meta_kubernetes_pod_label_release": "kps",
                "__meta_kubernetes_pod_name": pod,
                "__meta_kubernetes_pod_node_name": node,
                "__meta_kubernetes_service_label_release": "kps",
            }),
        )
    }

    fn automon_node_exporter(node: &str, pod: &str, health: &str) -> Value {
        target(
            "serviceMonitor/automon/node-exporter/0",
            "node-exporter",
            health,
            "http://10.4.0.1:39165/metrics",
            json!({
                "__address__": "10.4.0.1:39165",
                "__meta_kubernetes_endpointslice_address_target_kind": "Pod",
                "__meta_kubernetes_endpointslice_address_target_name": pod,
                "__meta_kubernetes_namespace": "automon",
                "__meta_kubernetes_pod_label_app_kubernetes_io_name": "node-exporter",
                "__meta_kubernetes_pod_label_app_kubernetes_io_part_of": "automon",
                "__meta_kubernetes_pod_name": pod,
                "__meta_kubernetes_pod_node_name": node,
            }),
        )
    }

    /// A kubelet path through the operator's kubelet Service: the chart's (endpoints role,
    /// one scrape pool a path) or automon's (EndpointSlice role).
    fn kubelet(chart: bool, node: &str, path: &str) -> Value {
        let (pool, role) = if chart {
            let n = ["/metrics", "/metrics/cadvisor", "/metrics/probes"]
                .iter()
                .position(|p| *p == path)
                .unwrap_or(9);
            (
                format!("serviceMonitor/monitoring/kps-kube-prometheus-stack-kubelet/{n}"),
                "endpoint",
            )
        } else {
            let n = usize::from(path != "/metrics");
            (
                format!("serviceMonitor/automon/kubelet/{n}"),
                "endpointslice",
            )
        };
        target(
            &pool,
            "kubelet",
            "up",
            &format!("https://10.4.0.1:10250{path}"),
            json!({
                "__address__": "10.4.0.1:10250",
                format!("__meta_kubernetes_{role}_address_target_kind"): "Node",
                format!("__meta_kubernetes_{role}_address_target_name"): node,
                "__meta_kubernetes_namespace": "kube-system",
                "__meta_kubernetes_service_label_app_kubernetes_io_name": "kubelet",
                "__meta_kubernetes_service_label_k8s_app": "kubelet",
                "__meta_kubernetes_service_name": if chart { "kps-kube-prometheus-stack-kubelet" } else { "automon-kubelet" },
                "__metrics_path__": path,
            }),
        )
    }

    /// A pod's port in `namespace`, found through a Service labelled `service_labels`.
    fn pod(
        pool: &str,
        job: &str,
        namespace: &str,
        pod: &str,
        address: &str,
        pod_labels: Value,
        service_labels: Value,
    ) -> Value {
        let mut d = json!({
            "__address__": address,
            "__meta_kubernetes_endpoint_address_target_kind": "Pod",
            "__meta_kubernetes_endpoint_address_target_name": pod,
            "__meta_kubernetes_namespace": namespace,
            "__meta_kubernetes_pod_name": pod,
            "__meta_kubernetes_pod_node_name": "automon-node-2",
            "__metrics_path__": "/metrics",
        });
        for (prefix, labels) in [("pod", pod_labels), ("service", service_labels)] {
            for (k, v) in labels.as_object().unwrap() {
                d[format!("__meta_kubernetes_{prefix}_label_{}", sanitized(k))] = v.clone();
            }
        }
        target(pool, job, "up", &format!("http://{address}/metrics"), d)
    }

    fn chart_component(name: &str, pod_name: &str, instance: &str) -> Value {
        pod(
            &format!("serviceMonitor/monitoring/kps-kube-prometheus-stack-{name}/0"),
            &format!("kps-kube-prometheus-stack-{name}"),
            "monitoring",
            pod_name,
            "10.0.0.6:9090",
            json!({"app.kubernetes.io/name": name, "app.kubernetes.io/instance": instance}),
            json!({"release": "kps", "app.kubernetes.io/instance": "kps"}),
        )
    }

    fn automon_component(name: &str) -> Value {
        pod(
            &format!("serviceMonitor/automon/{name}/0"),
            name,
            "automon",
            &format!("{name}-0"),
            "10.0.0.9:9090",
            json!({"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "automon"}),
            json!({"app.kubernetes.io/name": name}),
        )
    }

    fn kube_state_metrics(chart: bool) -> Value {
        let (ns, pod_name, instance) = if chart {
            (
                "monitoring",
                "kps-kube-state-metrics-659896646d-72r4v",
                json!("kps"),
            )
        } else {
            (
                "automon",
                "kube-state-metrics-65bd946c87-sk2tl",
                json!(null),
            )
        };
        pod(
            &format!("serviceMonitor/{ns}/kube-state-metrics/0"),
            "kube-state-metrics",
            ns,
            pod_name,
            "10.0.0.3:8080",
            json!({"app.kubernetes.io/name": "kube-state-metrics", "app.kubernetes.io/instance": instance}),
            json!({"app.kubernetes.io/name": "kube-state-metrics"}),
        )
    }

    fn users_app(port: &str) -> Value {
        pod(
            "serviceMonitor/team-a/app/0",
            "app",
            "team-a",
            "app-7c9f-x2",
            &format!("10.0.1.4:{port}"),
            json!({"app": "app"}),
            json!({"app": "app", "release": "kps"}),
        )
    }

    fn api_server(pool: &str, job: &str) -> Value {
        target(
            pool,
            job,
            "up",
            "https://127.0.0.1:6443/metrics",
            json!({
                "__address__": "127.0.0.1:6443",
                "__meta_kubernetes_namespace": "default",
                "__meta_kubernetes_service_name": "kubernetes",
                "__meta_kubernetes_service_label_component": "apiserver",
            }),
        )
    }

    /// The lost targets and why, as the table says them.
    fn lost(c: &Coverage) -> Vec<(&str, &str)> {
        c.lost
            .iter()
            .map(|l| (l.target.as_str(), l.why.as_str()))
            .collect()
    }

    fn identities(targets: &[Target]) -> Vec<String> {
        targets.iter().map(|t| identify(t).to_string()).collect()
    }

    #[test]
    fn each_target_is_named_by_what_it_monitors() {
        let cases = [
            (
                chart_node_exporter("automon-node-1", "kps-prometheus-node-exporter-pfwd8"),
                "node-exporter on node/automon-node-1",
            ),
            (
                automon_node_exporter("automon-node-1", "node-exporter-bj5v5", "up"),
                "node-exporter on node/automon-node-1",
            ),
            (
                kubelet(true, "automon-node-0", "/metrics/probes"),
                "kubelet /metrics/probes on node/automon-node-0",
            ),
            (
                kubelet(false, "automon-node-0", "/metrics/cadvisor"),
                "kubelet /metrics/cadvisor on node/automon-node-0",
            ),
            (
                api_server(
                    "serviceMonitor/monitoring/kps-kube-prometheus-stack-apiserver/0",
                    "apiserver",
                ),
                "apiserver 127.0.0.1:6443",
            ),
            (kube_state_metrics(true), "kube-state-metrics"),
            (kube_state_metrics(false), "kube-state-metrics"),
            (users_app("8080"), "team-a/pod/app-7c9f-x2:8080/metrics"),
            // A Probe's target: no pod, no endpoint, its parameters told apart.
            (
                target(
                    "probe/team-a/site/0",
                    "blackbox",
                    "up",
                    "http://blackbox.team-a.svc:9115/probe?target=https%3A%2F%2Fexample.com&module=http_2xx",
                    json!({"__address__": "blackbox.team-a.svc:9115"}),
                ),
                "blackbox.team-a.svc:9115/probe?module=http_2xx&target=https%3A%2F%2Fexample.com",
            ),
        ];
        for (fixture, want) in cases {
            let t = answer(vec![fixture]);
            assert_eq!(identities(&t), [want]);
        }
        // The API's own words: no error is none, no health is not scraped yet.
        let t = answer(vec![json!({"labels": {"job": "x"}, "lastError": ""})]);
        assert_eq!(
            (t[0].health.as_str(), t[0].last_error.as_ref()),
            ("unknown", None)
        );
    }

    #[test]
    fn two_nodes_at_one_address_are_two_targets() {
        let chart = answer(vec![
            chart_node_exporter("automon-node-0", "kps-prometheus-node-exporter-cmnpw"),
            chart_node_exporter("automon-node-1", "kps-prometheus-node-exporter-pfwd8"),
            kubelet(true, "automon-node-0", "/metrics"),
            kubelet(true, "automon-node-1", "/metrics"),
        ]);
        let automon = answer(vec![
            automon_node_exporter("automon-node-0", "node-exporter-znjdn", "up"),
            kubelet(false, "automon-node-0", "/metrics"),
        ]);
        let c = compare(&chart, &automon, "kps");
        assert_eq!(
            lost(&c),
            [
                (
                    "node-exporter on node/automon-node-1",
                    "automon's node-exporter has no pod on node/automon-node-1"
                ),
                (
                    "kubelet /metrics on node/automon-node-1",
                    "automon scrapes no kubelet on node/automon-node-1"
                ),
            ]
        );
        assert_eq!(c.covered.len(), 2);
    }

    #[test]
    fn the_kubelets_probes_not_scraped_by_automon_are_lost() {
        let paths = ["/metrics", "/metrics/cadvisor", "/metrics/probes"];
        let chart = answer(
            paths
                .iter()
                .map(|p| kubelet(true, "automon-node-0", p))
                .collect(),
        );
        let automon = answer(
            paths[..2]
                .iter()
                .map(|p| kubelet(false, "automon-node-0", p))
                .collect(),
        );
        let c = compare(&chart, &automon, "kps");
        assert_eq!(c.covered.len(), 2);
        assert_eq!(c.lost.len(), 1);
        let lost = &c.lost[0];
        assert_eq!(
            lost.target,
            "kubelet /metrics/probes on node/automon-node-0"
        );
        assert_eq!(
            lost.why,
            "automon does not scrape the kubelet's /metrics/probes"
        );
        assert_eq!(
            lost.scrape_pool,
            "serviceMonitor/monitoring/kps-kube-prometheus-stack-kubelet/2"
        );
        // With the probes scraped too, none is lost.
        let automon = answer(
            paths
                .iter()
                .map(|p| kubelet(false, "automon-node-0", p))
                .collect(),
        );
        assert!(compare(&chart, &automon, "kps").lost.is_empty());
    }

    #[test]
    fn a_users_service_monitor_target_is_matched_exactly() {
        let chart = answer(vec![users_app("8080")]);
        // automon's Prometheus finds the same pod's port through EndpointSlices.
        let mut same = users_app("8080");
        let d = same["discoveredLabels"].as_object_mut().unwrap();
        for kind in ["kind", "name"] {
            let v = d
                .remove(&format!("__meta_kubernetes_endpoint_address_target_{kind}"))
                .unwrap();
            d.insert(
                format!("__meta_kubernetes_endpointslice_address_target_{kind}"),
                v,
            );
        }
        same["labels"]["job"] = json!("team-a/app");
        let c = compare(&chart, &answer(vec![same]), "kps");
        assert!(c.lost.is_empty(), "{:?}", c.lost);
        assert_eq!(
            (
                c.covered[0].chart_job.as_str(),
                c.covered[0].automon_job.as_str()
            ),
            ("app", "team-a/app")
        );
        // Another port of the pod is another target.
        let c = compare(&chart, &answer(vec![users_app("9090")]), "kps");
        let lost: Vec<(&str, &str)> = c
            .lost
            .iter()
            .map(|l| (l.why.as_str(), l.fix.as_str()))
            .collect();
        assert_eq!(
            lost,
            [(
                "automon's Prometheus does not select your servicemonitor team-a/app",
                "label it so that automon's Prometheus selects it"
            )]
        );
        // Labelled `release: kps` on its Service, the user's app is still no part of the release.
        assert!(c.with_release.is_empty());
    }

    #[test]
    fn the_releases_own_components_go_with_it_replaced_where_automon_has_its_own() {
        let chart = answer(vec![
            // The operator names the Prometheus and Alertmanager pods after their resource.
            chart_component(
                "prometheus",
                "prometheus-kps-kube-prometheus-stack-prometheus-0",
                "kps-kube-prometheus-stack-prometheus",
            ),
            chart_component(
                "alertmanager",
                "alertmanager-kps-kube-prometheus-stack-alertmanager-0",
                "kps-kube-prometheus-stack-alertmanager",
            ),
            chart_component("grafana", "kps-grafana-594f8586d6-9kzl7", "kps"),
            chart_component(
                "kube-prometheus-stack-prometheus-operator",
                "kps-operator-5d9c7-abc",
                "kps",
            ),
            kube_state_metrics(true),
            // The chart's Service of the cluster's coredns is labelled as the release's; coredns is not.
            pod(
                "serviceMonitor/monitoring/kps-kube-prometheus-stack-coredns/0",
                "coredns",
                "kube-system",
                "coredns-6f6b679f8f-q2x7z",
                "10.0.0.2:9153",
                json!({"k8s-app": "kube-dns"}),
                json!({"app": "kube-prometheus-stack-coredns", "release": "kps", "jobLabel": "coredns"}),
            ),
        ]);
        let automon = answer(vec![
            automon_component("prometheus"),
            automon_component("grafana"),
            automon_component("prometheus-operator"),
            kube_state_metrics(false),
        ]);
        let c = compare(&chart, &automon, "kps");
        let fates: Vec<(&str, String)> = c
            .with_release
            .iter()
            .map(|w| (w.chart_job.as_str(), w.fate()))
            .collect();
        assert_eq!(
            fates,
            [
                (
                    "kps-kube-prometheus-stack-prometheus",
                    "replaced by automon's own prometheus".to_string()
                ),
                (
                    "kps-kube-prometheus-stack-alertmanager",
                    "goes with the release".to_string()
                ),
                (
                    "kps-kube-prometheus-stack-grafana",
                    "replaced by automon's own grafana".to_string()
                ),
                (
                    "kps-kube-prometheus-stack-kube-prometheus-stack-prometheus-operator",
                    "replaced by automon's own operator".to_string()
                ),
            ]
        );
        assert_eq!(c.covered.len(), 1, "kube-state-metrics: {:?}", c.covered);
        assert_eq!(
            lost(&c),
            [(
                "kube-system/pod/coredns-6f6b679f8f-q2x7z:9153/metrics",
                "the release's servicemonitor monitoring/kps-kube-prometheus-stack-coredns scraped it, and goes with it"
            )]
        );
        assert_eq!(
            c.summary(),
            "6 targets of the chart's Prometheus: 1 scraped by automon's too, 4 go with the release (3 replaced by automon's own), 1 lost"
        );
        assert_eq!(
            c.lost_table(),
            [
                "TARGET                                                  CHART'S JOB   WHY",
                "kube-system/pod/coredns-6f6b679f8f-q2x7z:9153/metrics   coredns       the release's servicemonitor monitoring/kps-kube-prometheus-stack-coredns scraped it, and goes with it; a ServiceMonitor of your own, labelled so that automon's Prometheus selects it, keeps it",
            ]
            .join("\n")
        );
    }

    #[test]
    fn a_target_up_in_the_charts_and_down_in_automons_is_covered_but_down() {
        let mut down = automon_node_exporter("automon-node-0", "node-exporter-znjdn", "down");
        down["lastError"] = json!("dial tcp 10.4.0.1:39165: connect: connection refused");
        let chart = answer(vec![
            chart_node_exporter("automon-node-0", "kps-prometheus-node-exporter-cmnpw"),
            chart_node_exporter("automon-node-1", "kps-prometheus-node-exporter-pfwd8"),
        ]);
        let automon = answer(vec![
            down,
            automon_node_exporter("automon-node-1", "node-exporter-bj5v5", "unknown"),
        ]);
        let c = compare(&chart, &automon, "kps");
        assert!(c.lost.is_empty());
        let down: Vec<&str> = c.covered_but_down().map(|d| d.target.as_str()).collect();
        // Not scraped yet is not down.
        assert_eq!(down, ["node-exporter on node/automon-node-0"]);
        assert_eq!(
            c.summary(),
            "2 targets of the chart's Prometheus: 2 scraped by automon's too (1 down in automon's), 0 go with the release (0 replaced by automon's own), 0 lost"
        );
        assert!(
            c.down_table().contains("connection refused"),
            "{}",
            c.down_table()
        );
        // Down on both sides: no news of automon's.
        let mut chart = chart;
        chart[0].health = "down".into();
        assert_eq!(
            compare(&chart, &automon, "kps").covered_but_down().count(),
            0
        );
    }

    /// A Prometheus of one canned answer on a free port of 127.0.0.1: its URL.
    fn prometheus_answering(body: String) -> String {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let n = conn.read(&mut request).unwrap();
            let first = String::from_utf8_lossy(&request[..n]);
            assert!(
                first.starts_with("GET /api/v1/targets?state=active "),
                "{first}"
            );
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(reply.as_bytes()).unwrap();
        });
        url
    }

    #[test]
    fn reads_the_active_targets_or_says_which_prometheus_did_not_answer() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let wait = Duration::from_secs(5);
        let body = json!({"status": "success", "data": {"activeTargets": [kubelet(false, "automon-node-0", "/metrics")]}});
        let url = prometheus_answering(body.to_string());
        let got = runtime.block_on(active_targets(Source::Url(&url), wait));
        assert_eq!(
            identities(&got.unwrap()),
            ["kubelet /metrics on node/automon-node-0"]
        );
        // A port nobody listens on.
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", listener.local_addr().unwrap())
        };
        let err = runtime
            .block_on(active_targets(Source::Url(&closed), wait))
            .unwrap_err();
        assert!(
            err.starts_with(&format!("{closed}: cannot connect")),
            "{err}"
        );
    }

    #[test]
    fn the_releases_table_says_what_becomes_of_each() {
        let chart = answer(vec![
            chart_component(
                "prometheus",
                "prometheus-kps-0",
                "kps-kube-prometheus-stack-prometheus",
            ),
            chart_component(
                "alertmanager",
                "alertmanager-kps-0",
                "kps-kube-prometheus-stack-alertmanager",
            ),
        ]);
        let c = compare(
            &chart,
            &answer(vec![automon_component("prometheus")]),
            "kps",
        );
        assert_eq!(
            c.release_table(),
            [
                "TARGET                                           CHART'S JOB                              AFTER",
                "monitoring/pod/prometheus-kps-0:9090/metrics     kps-kube-prometheus-stack-prometheus     replaced by automon's own prometheus",
                "monitoring/pod/alertmanager-kps-0:9090/metrics   kps-kube-prometheus-stack-alertmanager   goes with the release",
            ]
            .join("\n")
        );
        assert_eq!(c.lost_table(), "");
        assert_eq!(c.down_table(), "");
    }
}
