//! What every per-node exporter shares: a DaemonSet (one pod per node, rolled a tenth at a
//! time), the nodes it may run on, and the headless Service and single ServiceMonitor through
//! which Prometheus scrapes every pod with the node's name in `node` and `instance`.

use crate::model::names;
use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        apps::v1::{DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy, RollingUpdateDaemonSet},
        core::v1::{
            Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
            PodSpec, PodTemplateSpec, ServiceAccount, ServiceSpec, Toleration,
        },
        networking::v1::NetworkPolicyIngressRule,
    },
    apimachinery::pkg::{
        apis::meta::v1::{LabelSelector, ObjectMeta},
        util::intstr::IntOrString,
    },
};
use serde_json::json;

use super::{
    Context, custom,
    network::{self, pods, tcp_named},
    object, service,
};

use crate::config::TolerationPolicy;
use crate::model::Object;

/// The DaemonSet `name`: `pod` is the exporter's own part of the pod; its ServiceAccount (of
/// the same name, without an API token: exporters never call the API server), priority and
/// pull Secrets are filled in here.
pub fn daemon_set(
    ctx: &Context,
    name: &str,
    labels: &BTreeMap<String, String>,
    pod: PodSpec,
) -> Object {
    object(DaemonSet {
        metadata: ctx.meta(name, labels),
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(ctx.selector(name)),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels.clone()),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(name.into()),
                    automount_service_account_token: Some(false),
                    // An exporter evicted under pressure is a node nobody watches.
                    priority_class_name: Some("system-node-critical".into()),
                    image_pull_secrets: ctx.pull_secrets(),
                    ..pod
                }),
            },
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDaemonSet {
                    max_unavailable: Some(IntOrString::String("10%".into())),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// The exporter's ServiceAccount: an identity for its pods, with no token mounted.
pub fn service_account(ctx: &Context, name: &str, labels: &BTreeMap<String, String>) -> Object {
    object(ServiceAccount {
        metadata: ctx.meta(name, labels),
        automount_service_account_token: Some(false),
        ..Default::default()
    })
}

/// Nodes that meet every one of `requirements`.
pub fn node_affinity(requirements: Vec<NodeSelectorRequirement>) -> Affinity {
    Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: Some(requirements),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Nodes labelled `<label>: "true"` opt out; any other value (or none) keeps the exporter.
pub fn not_excluded(label: &str) -> NodeSelectorRequirement {
    NodeSelectorRequirement {
        key: label.into(),
        operator: "NotIn".into(),
        values: Some(vec!["true".into()]),
    }
}

/// The tolerations `nodeExporter.tolerations` asks every per-node exporter for.
pub fn tolerations(policy: TolerationPolicy) -> Option<Vec<Toleration>> {
    match policy {
        // Every taint, NoExecute included: a tainted node is still a node to watch.
        TolerationPolicy::All => Some(vec![Toleration {
            operator: Some("Exists".into()),
            ..Default::default()
        }]),
        TolerationPolicy::None => None,
    }
}

/// Headless: Prometheus scrapes each pod (one per node) through the Endpoints, never a VIP.
pub fn headless_service(
    ctx: &Context,
    name: &str,
    labels: &BTreeMap<String, String>,
    port: (&str, i32),
) -> Object {
    service::service(
        ctx,
        name,
        labels,
        ServiceSpec {
            cluster_ip: Some("None".into()),
            ..service::spec(ctx, name, &[port])
        },
    )
}

/// `instance` and `node` become the node's name, so that alerts, dashboards and the coverage
/// check join the exporter's series with kube-state-metrics'.
pub fn node_name_relabelings() -> Vec<serde_json::Value> {
    let node_name = |target: &str| {
        json!({
            "action": "replace",
            "sourceLabels": ["__meta_kubernetes_pod_node_name"],
            "targetLabel": target,
        })
    };
    vec![node_name("node"), node_name("instance")]
}

/// One ServiceMonitor for all nodes (one per node would blow up Prometheus' configuration).
pub fn service_monitor(
    ctx: &Context,
    name: &str,
    labels: &BTreeMap<String, String>,
    port_name: &str,
) -> Object {
    custom(json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": ctx.meta(name, labels),
        "spec": {
            // The Service's app.kubernetes.io/name is the job: job="<name>".
            "jobLabel": names::NAME_LABEL,
            "selector": {"matchLabels": ctx.selector(name)},
            "endpoints": [{
                "port": port_name,
                "scheme": "http",
                "interval": ctx.config.prometheus.scrape_interval.0,
                "relabelings": node_name_relabelings(),
            }],
        },
    }))
}

/// An exporter's NetworkPolicy: only Prometheus may scrape, on the metrics port, and egress
/// stays as it is. Pods in the host's network are outside most CNIs' policy enforcement, so for
/// those this is mostly documentation of intent; kube-prometheus keeps it too, and CNIs that do
/// enforce host-network policy honour it.
pub fn scrape_only(
    ctx: &Context,
    name: &str,
    labels: &BTreeMap<String, String>,
    port_name: &str,
) -> Object {
    network::policy(
        ctx,
        name,
        labels,
        vec![scrape_ingress(ctx, port_name)],
        None,
    )
}

/// Prometheus' scrapes of an exporter's metrics port.
pub fn scrape_ingress(ctx: &Context, port_name: &str) -> NetworkPolicyIngressRule {
    network::ingress(vec![pods(ctx, "prometheus")], vec![tcp_named(port_name)])
}
