//! One node-exporter per node. Before deploying its own, automon looks for a DaemonSet that
//! already serves the exporter's port on the nodes (another stack's, or another automon
//! stack's): two exporters cannot both listen on one port of a node, and the second one either
//! fails to bind (host network, no declared host port: the scheduler sees no conflict) or, with
//! a higher priority and a declared host port, preempts the first. When there is one, automon
//! scrapes it instead (`render` builds the scrape object from the [`Holder`]) and records which
//! in the parent ([`FROM_ANNOTATION`]), where `status` and `doctor` read it.
//!
//! Finding the holder is pure ([`holder`]); the reads are [`search`]'s.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        apps::v1::DaemonSet,
        core::v1::{PodSpec, Service},
    },
    apimachinery::pkg::util::intstr::IntOrString,
};
use kube::api::{Api, ListParams};

use crate::{
    cluster::{Cluster, error::ClusterError},
    config::Config,
    model::exporter::{Holder, HolderService},
    model::{Object, is_automons, names::CONFIG_KEY},
};

/// Whether pods of `spec` serve `port` on their node: a declared host port, or a container port
/// in the host's network (which declares nothing to the scheduler).
pub fn serves_port(
    spec: &PodSpec,
    port: u16,
) -> Option<&k8s_openapi::api::core::v1::ContainerPort> {
    let port = i32::from(port);
    let host_network = spec.host_network == Some(true);
    spec.containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .find(|cp| cp.host_port == Some(port) || (host_network && cp.container_port == port))
}

/// What the stack asks of its exporter: the port, and whether a holder may be scraped instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub port: u16,
    pub reuse: bool,
}

impl Wanted {
    /// From the configuration stored in the objects' ApplySet parent (a render, or a
    /// revision); the defaults when it cannot be read.
    pub fn of(objects: &[Object]) -> Wanted {
        let config = objects
            .iter()
            .find(|o| crate::model::is_parent(o))
            .and_then(|p| p.data["data"][CONFIG_KEY].as_str())
            .and_then(|text| Config::from_yaml(text, "the ApplySet parent").ok())
            .unwrap_or_default();
        Wanted {
            port: config.node_exporter.port,
            reuse: config.node_exporter.reuse_existing,
        }
    }
}

/// The DaemonSet, other than the stack's own in `namespace`, that serves `port` on the nodes;
/// the first by namespace and name when there are several (pure).
pub fn holder(daemonsets: &[DaemonSet], port: u16, namespace: &str) -> Option<Holder> {
    let mut found: Vec<Holder> = daemonsets
        .iter()
        .filter_map(|d| {
            let meta = &d.metadata;
            let automon = is_automons(meta.labels.as_ref());
            let ns = meta.namespace.clone().unwrap_or_default();
            if automon && ns == namespace {
                return None;
            }
            let spec = d.spec.as_ref()?;
            let pod = spec.template.spec.as_ref()?;
            let cp = serves_port(pod, port)?;
            let port_name = cp.name.clone();
            let scheme = if port_name.as_deref().is_some_and(|n| n.contains("https")) {
                "https"
            } else {
                "http"
            };
            Some(Holder {
                namespace: ns,
                name: meta.name.clone().unwrap_or_default(),
                port,
                port_name,
                scheme,
                selector: spec.selector.clone(),
                priority_class: pod.priority_class_name.clone(),
                automon,
                service: None,
                pod_labels: BTreeMap::new(),
            })
        })
        .collect();
    found.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    found.into_iter().next()
}

/// Labels a release changes, which a selector must not pin.
const VOLATILE_LABELS: &[&str] = &[
    "app.kubernetes.io/version",
    "helm.sh/chart",
    "chart",
    "heritage",
    "pod-template-hash",
];

/// The Service among `services` (in the holder's namespace) that selects the holder's pods and
/// exposes its port (pure).
pub fn service_of(
    holder: &Holder,
    pod_labels: &BTreeMap<String, String>,
    services: &[Service],
) -> Option<HolderService> {
    services.iter().find_map(|s| {
        let spec = s.spec.as_ref()?;
        let selector = spec.selector.as_ref().filter(|s| !s.is_empty())?;
        if !selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)) {
            return None;
        }
        let port = spec.ports.iter().flatten().find(|p| match &p.target_port {
            Some(IntOrString::Int(n)) => *n == i32::from(holder.port),
            Some(IntOrString::String(name)) => holder.port_name.as_deref() == Some(name.as_str()),
            None => p.port == i32::from(holder.port),
        })?;
        let all_labels = s.metadata.labels.clone().unwrap_or_default();
        let labels: BTreeMap<String, String> = all_labels
            .iter()
            .filter(|(k, _)| !VOLATILE_LABELS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // A Service without labels cannot be selected by a ServiceMonitor.
        (!labels.is_empty()).then(|| HolderService {
            name: s.metadata.name.clone().unwrap_or_default(),
            labels,
            all_labels,
            port_name: port.name.clone(),
        })
    })
}

/// Lists the DaemonSets of the cluster (a handful, even at thousands of nodes) and, when one
/// holds `port`, the Services of its namespace.
pub async fn search(cluster: &Cluster, port: u16) -> Result<Option<Holder>, ClusterError> {
    let classify = |e| cluster.target.classify(e);
    let daemonsets: Api<DaemonSet> = Api::all(cluster.client.clone());
    let list = daemonsets
        .list(&ListParams::default())
        .await
        .map_err(classify)?;
    let Some(mut found) = holder(&list.items, port, &cluster.namespace) else {
        return Ok(None);
    };
    let pod_labels = list
        .items
        .iter()
        .find(|d| {
            d.metadata.namespace.as_deref() == Some(found.namespace.as_str())
                && d.metadata.name.as_deref() == Some(found.name.as_str())
        })
        .and_then(|d| d.spec.as_ref()?.template.metadata.as_ref()?.labels.clone())
        .unwrap_or_default();
    let services: Api<Service> = Api::namespaced(cluster.client.clone(), &found.namespace);
    let services = services
        .list(&ListParams::default())
        .await
        .map_err(classify)?;
    found.service = service_of(&found, &pod_labels, &services.items);
    found.pod_labels = pod_labels;
    Ok(Some(found))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn daemonset(value: serde_json::Value) -> DaemonSet {
        serde_json::from_value(value).unwrap()
    }

    /// kube-prometheus' node-exporter: kube-rbac-proxy on the host port, named https.
    fn kube_prometheus() -> DaemonSet {
        daemonset(json!({
            "metadata": {"name": "node-exporter", "namespace": "monitoring",
                         "labels": {"app.kubernetes.io/name": "node-exporter"}},
            "spec": {
                "selector": {"matchLabels": {"app.kubernetes.io/name": "node-exporter"}},
                "template": {
                    "metadata": {"labels": {"app.kubernetes.io/name": "node-exporter", "app.kubernetes.io/version": "1.9.1"}},
                    "spec": {
                        "hostNetwork": true,
                        "priorityClassName": "system-cluster-critical",
                        "containers": [
                            {"name": "node-exporter", "image": "quay.io/prometheus/node-exporter:v1.9.1"},
                            {"name": "kube-rbac-proxy", "image": "quay.io/brancz/kube-rbac-proxy:v0.19.1",
                             "ports": [{"name": "https", "containerPort": 9100, "hostPort": 9100}]}
                        ]
                    }
                }
            }
        }))
    }

    /// kube-prometheus-stack's: host network, container port 9100, no host port declared.
    fn chart() -> DaemonSet {
        daemonset(json!({
            "metadata": {"name": "kps-prometheus-node-exporter", "namespace": "kps"},
            "spec": {
                "selector": {"matchLabels": {"app.kubernetes.io/name": "prometheus-node-exporter"}},
                "template": {"spec": {
                    "hostNetwork": true,
                    "containers": [{"name": "node-exporter",
                                    "ports": [{"name": "http-metrics", "containerPort": 9100}]}]
                }}
            }
        }))
    }

    fn automon(ns: &str, port: u16) -> DaemonSet {
        daemonset(json!({
            "metadata": {"name": "node-exporter", "namespace": ns,
                         "labels": {"app.kubernetes.io/part-of": "automon"}},
            "spec": {
                "selector": {"matchLabels": {"app.kubernetes.io/name": "node-exporter"}},
                "template": {"spec": {
                    "hostNetwork": true,
                    "containers": [{"name": "node-exporter",
                                    "ports": [{"name": "metrics", "containerPort": port, "hostPort": port}]}]
                }}
            }
        }))
    }

    #[test]
    fn a_declared_host_port_or_a_host_network_port_holds_it() {
        let h = holder(&[kube_prometheus()], 9100, "automon").unwrap();
        assert_eq!(h.describe(), "daemonset monitoring/node-exporter");
        assert_eq!(h.scheme, "https");
        assert_eq!(h.priority_class.as_deref(), Some("system-cluster-critical"));
        assert!(!h.automon);

        let h = holder(&[chart()], 9100, "automon").unwrap();
        assert_eq!(h.reference(), "kps/kps-prometheus-node-exporter");
        assert_eq!(
            (h.scheme, h.port_name.as_deref()),
            ("http", Some("http-metrics"))
        );

        assert_eq!(holder(&[kube_prometheus(), chart()], 9101, "automon"), None);
    }

    #[test]
    fn the_stacks_own_exporter_is_not_a_holder_another_automon_stacks_is() {
        assert_eq!(holder(&[automon("a", 9100)], 9100, "a"), None);
        let h = holder(&[automon("a", 9100)], 9100, "b").unwrap();
        assert!(h.automon);
        assert_eq!(h.reference(), "a/node-exporter");
        // Several: the first by namespace, so that every run picks the same.
        let h = holder(&[kube_prometheus(), automon("a", 9100)], 9100, "b").unwrap();
        assert_eq!(h.reference(), "a/node-exporter");
    }

    #[test]
    fn a_port_without_the_host_network_or_a_host_port_holds_nothing() {
        let mut d = chart();
        d.spec
            .as_mut()
            .unwrap()
            .template
            .spec
            .as_mut()
            .unwrap()
            .host_network = None;
        assert_eq!(holder(&[d], 9100, "automon"), None);
    }

    #[test]
    fn the_service_that_selects_the_pods_on_that_port_is_found() {
        let h = holder(&[kube_prometheus()], 9100, "automon").unwrap();
        let pod_labels = BTreeMap::from([
            (
                "app.kubernetes.io/name".to_string(),
                "node-exporter".to_string(),
            ),
            ("app.kubernetes.io/version".to_string(), "1.9.1".to_string()),
        ]);
        let service = |name: &str,
                       selector: serde_json::Value,
                       target: serde_json::Value|
         -> Service {
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "monitoring",
                             "labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/version": "1.9.1"}},
                "spec": {"selector": selector, "ports": [{"name": "https", "port": 9100, "targetPort": target}]}
            }))
            .unwrap()
        };
        let services = [
            service("grafana", json!({"app": "grafana"}), json!(3000)),
            service(
                "node-exporter",
                json!({"app.kubernetes.io/name": "node-exporter"}),
                json!("https"),
            ),
        ];
        let s = service_of(&h, &pod_labels, &services).unwrap();
        assert_eq!(s.name, "node-exporter");
        assert_eq!(s.port_name.as_deref(), Some("https"));
        // The version changes with every release: not pinned.
        assert_eq!(
            s.labels,
            BTreeMap::from([(
                "app.kubernetes.io/name".to_string(),
                "node-exporter".to_string()
            )])
        );
        let other_port = [service(
            "node-exporter",
            json!({"app.kubernetes.io/name": "node-exporter"}),
            json!(9101),
        )];
        assert_eq!(service_of(&h, &pod_labels, &other_port), None);
    }
}
