//! Another node-exporter already on the nodes: a DaemonSet that serves the exporter's port.
//! preflight finds it, render scrapes it instead of deploying a second one, and status and
//! doctor name it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::Serialize;

/// A DaemonSet that serves the exporter's port on the nodes it runs on.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Holder {
    pub namespace: String,
    pub name: String,
    pub port: u16,
    /// The container port's name, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_name: Option<String>,
    /// `https` when the port is named so (kube-rbac-proxy in front of the exporter, as
    /// kube-prometheus runs it), `http` otherwise.
    pub scheme: &'static str,
    /// The DaemonSet's pod selector.
    pub selector: LabelSelector,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority_class: Option<String>,
    /// Whether it is another automon stack's.
    pub automon: bool,
    /// The Service in front of its pods, when there is one: scraped through a ServiceMonitor
    /// (which can present Prometheus' own token), else the pods through a PodMonitor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<HolderService>,
    /// Its pods' labels, as another stack's PodMonitor may select them.
    #[serde(skip)]
    pub pod_labels: BTreeMap<String, String>,
}

/// The Service in front of a holder's pods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HolderService {
    pub name: String,
    /// The labels a ServiceMonitor selects it by (its own, less the ones a release changes).
    pub labels: BTreeMap<String, String>,
    /// All its labels, as another stack's ServiceMonitor may select it.
    #[serde(skip)]
    pub all_labels: BTreeMap<String, String>,
    /// The Service port's name; `None` when it is unnamed (selected by target port).
    pub port_name: Option<String>,
}

impl Holder {
    /// `daemonset monitoring/node-exporter`
    pub fn describe(&self) -> String {
        format!("daemonset {}/{}", self.namespace, self.name)
    }

    /// The value of [`crate::model::names::EXPORTER_FROM`].
    pub fn reference(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}
