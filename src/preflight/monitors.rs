//! Another stack's ServiceMonitors and PodMonitors, read as far as automon needs them: which
//! Prometheus selects each, which targets it keeps, under which job name and with which label
//! naming the node. Beside kube-prometheus-stack, automon must not scrape a target that stack's
//! Prometheus already scrapes (every sum over it would double), and its rules and dashboards must
//! then select that stack's series as that stack labels them — found here, not assumed.
//!
//! Pure: preflight lists the objects ([`super::AlreadyThere::add`]); everything else is a
//! function of them, as the Prometheus Operator would generate the configuration.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::DynamicObject;
use serde::Serialize;

use super::PrometheusInfo;
use crate::model::{exporter::Holder, selector};

/// The meta labels that carry the node a target runs on, as the operator's service discovery
/// gives them: the pod's node, or the endpoint's.
const NODE_NAME_SOURCES: &[&str] = &[
    "__meta_kubernetes_pod_node_name",
    "__meta_kubernetes_endpoint_node_name",
    "__meta_kubernetes_endpointslice_endpoint_node_name",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MonitorKind {
    ServiceMonitor,
    PodMonitor,
}

/// Where a monitor looks for Services or pods (`spec.namespaceSelector`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Namespaces {
    /// `any: true`.
    Any,
    /// `matchNames`; the monitor's own namespace when unset.
    Names(Vec<String>),
}

/// One endpoint of a monitor (`spec.endpoints[]` or `spec.podMetricsEndpoints[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// The Service's (or the pod's container) port name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// `targetPort` (a number or a name), when it is used instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_port: Option<String>,
    pub path: String,
    /// The job a relabeling sets outright (`targetLabel: job` with a fixed replacement).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The label a relabeling copies the target's node name into (`node`, `nodename`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_label: Option<String>,
}

/// A ServiceMonitor or PodMonitor that is not automon's.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Monitor {
    pub kind: MonitorKind,
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub selector: LabelSelector,
    pub namespaces: Namespaces,
    /// `spec.jobLabel`: the label of the Service (or pod) whose value is the job name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_label: Option<String>,
    pub endpoints: Vec<Endpoint>,
}

/// How another stack's scrape of a target automon would scrape labels its series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ForeignScrape {
    /// `servicemonitor monitoring/kps-prometheus-node-exporter`
    pub by: String,
    /// The value of `job` on its series.
    pub job: String,
    /// The label that names the node on its series; `None` when none does (then the node is
    /// found through kube-state-metrics' `kube_pod_info`, by the target's namespace and pod).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_label: Option<String>,
}

impl Monitor {
    /// A ServiceMonitor or PodMonitor as a `Monitor`; `None` for any other kind (pure).
    pub fn of(o: &DynamicObject) -> Option<Monitor> {
        let spec = o.data.get("spec")?;
        // List items may come without their kind: the spec tells them apart.
        let kind = match o.types.as_ref().map(|t| t.kind.as_str()) {
            Some("ServiceMonitor") => MonitorKind::ServiceMonitor,
            Some("PodMonitor") => MonitorKind::PodMonitor,
            Some(_) => return None,
            None if spec.get("endpoints").is_some() => MonitorKind::ServiceMonitor,
            None if spec.get("podMetricsEndpoints").is_some() => MonitorKind::PodMonitor,
            None => return None,
        };
        let namespace = o.metadata.namespace.clone().unwrap_or_default();
        let ns = &spec["namespaceSelector"];
        let namespaces = if ns["any"] == true {
            Namespaces::Any
        } else {
            let names: Vec<String> = ns["matchNames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect();
            Namespaces::Names(if names.is_empty() {
                vec![namespace.clone()]
            } else {
                names
            })
        };
        let list = match kind {
            MonitorKind::ServiceMonitor => "endpoints",
            MonitorKind::PodMonitor => "podMetricsEndpoints",
        };
        let endpoints = spec[list]
            .as_array()
            .into_iter()
            .flatten()
            .map(endpoint)
            .collect();
        Some(Monitor {
            kind,
            name: o.metadata.name.clone().unwrap_or_default(),
            namespace,
            labels: o.metadata.labels.clone().unwrap_or_default(),
            selector: serde_json::from_value(spec["selector"].clone()).unwrap_or_default(),
            namespaces,
            job_label: spec["jobLabel"]
                .as_str()
                .filter(|l| !l.is_empty())
                .map(str::to_string),
            endpoints,
        })
    }

    /// `servicemonitor monitoring/kps-kubelet`
    pub fn describe(&self) -> String {
        let kind = match self.kind {
            MonitorKind::ServiceMonitor => "servicemonitor",
            MonitorKind::PodMonitor => "podmonitor",
        };
        format!("{kind} {}/{}", self.namespace, self.name)
    }

    fn looks_in(&self, namespace: &str) -> bool {
        match &self.namespaces {
            Namespaces::Any => true,
            Namespaces::Names(names) => names.iter().any(|n| n == namespace),
        }
    }

    /// Whether `prometheus` selects this monitor, as the operator decides it: its selector for
    /// the kind (unset selects nothing), and its namespace selector (unset: its own namespace
    /// alone; a labelled one is taken to select, since namespaces' labels are not read here).
    pub fn selected_by(&self, prometheus: &PrometheusInfo) -> bool {
        let (selector, namespaces) = match self.kind {
            MonitorKind::ServiceMonitor => (
                &prometheus.service_monitor_selector,
                &prometheus.service_monitor_namespace_selector,
            ),
            MonitorKind::PodMonitor => (
                &prometheus.pod_monitor_selector,
                &prometheus.pod_monitor_namespace_selector,
            ),
        };
        let Some(selector) = selector else {
            return false;
        };
        let in_namespace = namespaces.is_some() || self.namespace == prometheus.namespace;
        in_namespace && selector::matches(selector, &self.labels)
    }

    /// The job name of this monitor's targets through `endpoint`, as the operator names it:
    /// a relabeling's fixed job, else the value of `jobLabel` on the Service or pod
    /// (`object_labels`), else the Service's name (a PodMonitor: `<namespace>/<name>`).
    pub fn job(
        &self,
        endpoint: &Endpoint,
        object_name: &str,
        object_labels: &BTreeMap<String, String>,
    ) -> String {
        if let Some(job) = &endpoint.job {
            return job.clone();
        }
        if let Some(value) = self.job_label.as_ref().and_then(|l| object_labels.get(l)) {
            return value.clone();
        }
        match self.kind {
            MonitorKind::ServiceMonitor => object_name.to_string(),
            MonitorKind::PodMonitor => format!("{}/{}", self.namespace, self.name),
        }
    }

    /// The job, when the selector alone tells it (its `jobLabel` is among the `matchLabels`, or
    /// a relabeling sets it): the kubelet's and the API server's Services are selected so.
    pub fn job_from_selector(&self, endpoint: &Endpoint) -> Option<String> {
        endpoint.job.clone().or_else(|| {
            let label = self.job_label.as_ref()?;
            self.selector.match_labels.as_ref()?.get(label).cloned()
        })
    }
}

fn endpoint(e: &serde_json::Value) -> Endpoint {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let relabelings = e["relabelings"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let replaces = |r: &&serde_json::Value| {
        r["action"]
            .as_str()
            .is_none_or(|a| a.eq_ignore_ascii_case("replace"))
    };
    let job = relabelings
        .iter()
        .filter(replaces)
        .filter(|r| {
            r["targetLabel"] == "job" && r["sourceLabels"].as_array().is_none_or(Vec::is_empty)
        })
        .filter_map(|r| r["replacement"].as_str())
        .next_back()
        .map(str::to_string);
    let node_label = relabelings
        .iter()
        .filter(replaces)
        .filter(|r| {
            let sources = r["sourceLabels"].as_array();
            sources.is_some_and(|s| {
                s.len() == 1
                    && s[0]
                        .as_str()
                        .is_some_and(|l| NODE_NAME_SOURCES.contains(&l))
            }) && r["replacement"]
                .as_str()
                .is_none_or(|x| x == "$1" || x == "${1}")
                && r["regex"]
                    .as_str()
                    .is_none_or(|x| x == "(.*)" || x == "^(.*)$")
        })
        .filter_map(|r| r["targetLabel"].as_str())
        .next_back()
        .map(str::to_string);
    Endpoint {
        port: text(&e["port"]),
        target_port: text(&e["targetPort"]),
        path: e["path"].as_str().unwrap_or("/metrics").to_string(),
        job,
        node_label,
    }
}

/// The monitor among `monitors` that `prometheus` selects and that keeps `holder`'s targets on
/// its port: a ServiceMonitor of the holder's Service, on that Service port (by name, or by
/// target port), or a PodMonitor of its pods on that container port. `/metrics` only: another
/// path is another scrape. The first by namespace and name (pure).
pub fn scraping_holder(
    holder: &Holder,
    prometheus: &PrometheusInfo,
    monitors: &[Monitor],
) -> Option<ForeignScrape> {
    let port = holder.port.to_string();
    let mut found: Vec<(&Monitor, ForeignScrape)> = monitors
        .iter()
        .filter(|m| m.looks_in(&holder.namespace) && m.selected_by(prometheus))
        .filter_map(|m| {
            let (name, labels, port_name) = match m.kind {
                MonitorKind::ServiceMonitor => {
                    let s = holder.service.as_ref()?;
                    (s.name.as_str(), &s.all_labels, s.port_name.as_deref())
                }
                MonitorKind::PodMonitor => (
                    holder.name.as_str(),
                    &holder.pod_labels,
                    holder.port_name.as_deref(),
                ),
            };
            if !selector::matches(&m.selector, labels) {
                return None;
            }
            let e = m.endpoints.iter().find(|e| {
                e.path == "/metrics"
                    && match (&e.port, &e.target_port) {
                        (Some(p), _) => Some(p.as_str()) == port_name,
                        (None, Some(t)) => {
                            *t == port || Some(t.as_str()) == holder.port_name.as_deref()
                        }
                        (None, None) => false,
                    }
            })?;
            Some((
                m,
                ForeignScrape {
                    by: m.describe(),
                    job: m.job(e, name, labels),
                    node_label: e.node_label.clone(),
                },
            ))
        })
        .collect();
    found.sort_by(|(a, _), (b, _)| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    found.into_iter().next().map(|(_, s)| s)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::exporter::HolderService;

    fn monitor(v: serde_json::Value) -> Monitor {
        Monitor::of(&serde_json::from_value(v).unwrap()).unwrap()
    }

    /// kube-prometheus-stack 88.5.3's node-exporter ServiceMonitor, as its chart renders it.
    fn chart_node_exporter() -> Monitor {
        monitor(json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
            "metadata": {"name": "kps-prometheus-node-exporter", "namespace": "monitoring",
                         "labels": {"release": "kps", "app.kubernetes.io/name": "prometheus-node-exporter"}},
            "spec": {
                "jobLabel": "jobLabel",
                "selector": {"matchLabels": {"app.kubernetes.io/name": "prometheus-node-exporter", "app.kubernetes.io/instance": "kps"}},
                "endpoints": [{"port": "http-metrics", "scheme": "http"}]
            }
        }))
    }

    fn chart_prometheus(selector: serde_json::Value) -> PrometheusInfo {
        let s: Option<LabelSelector> = serde_json::from_value(selector).unwrap();
        PrometheusInfo {
            namespace: "monitoring".into(),
            name: "kps-kube-prometheus-stack-prometheus".into(),
            service_monitor_selector: s.clone(),
            service_monitor_namespace_selector: Some(LabelSelector::default()),
            pod_monitor_selector: s.clone(),
            pod_monitor_namespace_selector: Some(LabelSelector::default()),
            rule_selector: s,
            rule_namespace_selector: Some(LabelSelector::default()),
        }
    }

    fn chart_holder() -> Holder {
        let labels = BTreeMap::from(
            [
                ("app.kubernetes.io/name", "prometheus-node-exporter"),
                ("app.kubernetes.io/instance", "kps"),
                ("jobLabel", "node-exporter"),
                ("release", "kps"),
                ("helm.sh/chart", "prometheus-node-exporter-4.56.1"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        Holder {
            namespace: "monitoring".into(),
            name: "kps-prometheus-node-exporter".into(),
            port: 9100,
            port_name: Some("http-metrics".into()),
            scheme: "http",
            selector: LabelSelector::default(),
            priority_class: None,
            automon: false,
            service: Some(HolderService {
                name: "kps-prometheus-node-exporter".into(),
                labels: labels.clone(),
                all_labels: labels,
                port_name: Some("http-metrics".into()),
            }),
            pod_labels: BTreeMap::new(),
        }
    }

    #[test]
    fn the_charts_node_exporter_scrape_is_found_with_its_job_and_no_node_label() {
        let release = chart_prometheus(json!({"matchLabels": {"release": "kps"}}));
        let found = scraping_holder(&chart_holder(), &release, &[chart_node_exporter()]).unwrap();
        assert_eq!(
            found,
            ForeignScrape {
                by: "servicemonitor monitoring/kps-prometheus-node-exporter".into(),
                job: "node-exporter".into(),
                node_label: None,
            }
        );
        // A Prometheus that selects another release does not scrape it.
        let other = chart_prometheus(json!({"matchLabels": {"release": "other"}}));
        assert_eq!(
            scraping_holder(&chart_holder(), &other, &[chart_node_exporter()]),
            None
        );
        // Nor one with no selector at all.
        let none = chart_prometheus(json!(null));
        assert_eq!(
            scraping_holder(&chart_holder(), &none, &[chart_node_exporter()]),
            None
        );
        // One that selects everything does.
        let all = chart_prometheus(json!({}));
        assert!(scraping_holder(&chart_holder(), &all, &[chart_node_exporter()]).is_some());
    }

    #[test]
    fn a_relabeled_job_and_node_label_are_read_from_the_endpoint() {
        let mut m = chart_node_exporter();
        m.endpoints = vec![endpoint(&json!({
            "port": "http-metrics",
            "relabelings": [
                {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "nodename", "action": "replace", "regex": "^(.*)$", "replacement": "$1"},
                {"targetLabel": "job", "replacement": "nodes"}
            ]
        }))];
        let release = chart_prometheus(json!({"matchLabels": {"release": "kps"}}));
        let found = scraping_holder(&chart_holder(), &release, &[m]).unwrap();
        assert_eq!(
            (found.job.as_str(), found.node_label.as_deref()),
            ("nodes", Some("nodename"))
        );
    }

    #[test]
    fn another_port_or_path_is_another_scrape() {
        let release = chart_prometheus(json!({"matchLabels": {"release": "kps"}}));
        let mut m = chart_node_exporter();
        m.endpoints[0].port = Some("https".into());
        assert_eq!(scraping_holder(&chart_holder(), &release, &[m]), None);
        let mut m = chart_node_exporter();
        m.endpoints[0].path = "/probe".into();
        assert_eq!(scraping_holder(&chart_holder(), &release, &[m]), None);
        // In a namespace it does not look in.
        let mut m = chart_node_exporter();
        m.namespaces = Namespaces::Names(vec!["default".into()]);
        assert_eq!(scraping_holder(&chart_holder(), &release, &[m]), None);
    }

    #[test]
    fn the_job_of_the_kubelet_and_api_server_scrapes_is_told_by_the_selector() {
        let kubelet = monitor(json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
            "metadata": {"name": "kps-kube-prometheus-stack-kubelet", "namespace": "monitoring"},
            "spec": {"jobLabel": "k8s-app",
                     "selector": {"matchLabels": {"app.kubernetes.io/name": "kubelet", "k8s-app": "kubelet"}},
                     "namespaceSelector": {"matchNames": ["kube-system"]},
                     "endpoints": [{"port": "https-metrics"}, {"port": "https-metrics", "path": "/metrics/cadvisor"}]}
        }));
        assert_eq!(
            kubelet.namespaces,
            Namespaces::Names(vec!["kube-system".into()])
        );
        assert_eq!(
            kubelet.job_from_selector(&kubelet.endpoints[1]).as_deref(),
            Some("kubelet")
        );
        assert_eq!(kubelet.endpoints[1].path, "/metrics/cadvisor");
        let unnamed = monitor(json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
            "metadata": {"name": "x", "namespace": "monitoring"},
            "spec": {"selector": {"matchLabels": {"k8s-app": "kubelet"}}, "endpoints": [{"port": "https-metrics"}]}
        }));
        assert_eq!(unnamed.job_from_selector(&unnamed.endpoints[0]), None);
        assert_eq!(
            unnamed.job(&unnamed.endpoints[0], "kubelet-svc", &BTreeMap::new()),
            "kubelet-svc"
        );
    }
}
