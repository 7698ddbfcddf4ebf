//! Rendering: configuration in, every object of the stack out, as typed Kubernetes objects in a
//! stable order. Pure: no I/O, no clock, no randomness, so the same input gives the same bytes.
//! One module per component, each returning that component's objects; `render` is the list.

pub mod alertmanager;
mod apiserver;
mod blocks;
pub mod classes;
mod dashboards;
mod dcgm_exporter;
mod deployment;
pub mod exposure;
#[cfg(test)]
mod fixtures;
pub mod grafana;
pub mod kube_state_metrics;
mod kubelet;
pub mod meta;
pub mod namespace;
mod network;
pub mod node_exporter;
pub mod operator;
mod per_node;
pub mod prometheus;
mod rbac;
pub mod rules;
mod security;
mod service;
mod windows_exporter;

use crate::model::exporter::Holder;
use crate::model::{self, Object, kind, names};
use serde::Serialize;

use crate::config::Config;
pub use classes::NodeClasses;
pub use meta::Context;

/// Turns a typed k8s-openapi object into an [`Object`].
pub fn object<K: k8s_openapi::Resource + Serialize>(k: K) -> Object {
    let mut value = serde_json::to_value(&k).expect("k8s-openapi objects serialise");
    // k8s-openapi leaves apiVersion/kind out unless asked; be explicit.
    value["apiVersion"] = K::API_VERSION.into();
    value["kind"] = K::KIND.into();
    serde_json::from_value(value).expect("a Kubernetes object is a DynamicObject")
}

/// A custom resource (or any object) written as JSON: `apiVersion`, `kind`, `metadata`, rest.
pub fn custom(value: serde_json::Value) -> Object {
    serde_json::from_value(value).expect("custom resources have apiVersion, kind and metadata")
}

/// The order objects are applied in. `enable` waits between phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Namespace (and CRDs, which `enable` adds): must exist before anything in them.
    Foundation,
    /// The operator and its RBAC: it must run before its custom resources mean anything.
    Operator,
    /// Everything else.
    Stack,
}

/// The rendered stack.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub objects: Vec<Object>,
}

/// Every object of the stack for this configuration, labelled and ordered.
pub fn render(config: &Config) -> Rendered {
    render_with(config, Vec::new())
}

/// The stack plus `extra` objects from outside the renderer (the CRDs), ordered and labelled
/// as ApplySet members like every other object.
pub fn render_with(config: &Config, extra: Vec<Object>) -> Rendered {
    render_beside(config, extra, None)
}

/// [`render_with`], next to another exporter that already serves node-exporter's port on the
/// nodes (`exporter`): the stack scrapes it and deploys no node-exporter of its own.
pub fn render_beside(config: &Config, extra: Vec<Object>, exporter: Option<&Holder>) -> Rendered {
    render_classes(config, extra, exporter, NodeClasses::default(), None)
}

/// [`render_beside`], for a cluster with these classes of node: each class present adds its
/// exporter, alerts and dashboards, and widens the coverage checks to its nodes. With none,
/// the stack is byte for byte what it was before classes existed. `nodes`, when known, sizes
/// the stack ([`crate::config::sizing`]).
pub fn render_classes(
    config: &Config,
    extra: Vec<Object>,
    exporter: Option<&Holder>,
    classes: NodeClasses,
    nodes: Option<u32>,
) -> Rendered {
    let ctx = Context {
        exporter,
        classes,
        sizing: crate::config::sizing::estimate(config, nodes),
        ..Context::new(config)
    };
    let mut objects = extra;
    objects.extend(namespace::objects(&ctx));
    objects.extend(operator::objects(&ctx));
    objects.extend(prometheus::objects(&ctx));
    objects.extend(alertmanager::objects(&ctx));
    objects.extend(grafana::objects(&ctx));
    objects.extend(node_exporter::objects(&ctx));
    objects.extend(windows_exporter::objects(&ctx));
    objects.extend(dcgm_exporter::objects(&ctx));
    objects.extend(kube_state_metrics::objects(&ctx));
    objects.extend(kubelet::objects(&ctx));
    objects.extend(apiserver::objects(&ctx));
    objects.extend(rules::objects(&ctx));
    objects.extend(dashboards::objects(&ctx));
    objects.sort_by_key(sort_key);
    let parent = meta::applyset_parent(&ctx, &objects);
    for o in &mut objects {
        meta::label_member(&ctx, o);
    }
    objects.insert(
        objects.partition_point(|o| phase(o) == Phase::Foundation),
        parent,
    );
    Rendered { objects }
}

/// The `app.kubernetes.io/component` an object belongs to.
pub fn component(o: &Object) -> Option<&str> {
    o.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(names::COMPONENT_LABEL))
        .map(String::as_str)
}

/// The components another Prometheus Operator replaces when `enable` reuses it: ours, its
/// Prometheus and its Alertmanager (and the CRDs, which are the other operator's).
pub fn replaced_by_existing_operator(o: &Object) -> bool {
    const REPLACED: &[&str] = &[operator::COMPONENT, "prometheus", "alertmanager"];
    let component = component(o);
    component.is_some_and(|c| REPLACED.contains(&c)) || kind(o) == "CustomResourceDefinition"
}

/// Which phase an object belongs to.
pub fn phase(o: &Object) -> Phase {
    let kind = kind(o);
    if kind == "Namespace" || kind == "CustomResourceDefinition" {
        return Phase::Foundation;
    }
    let component = component(o);
    if component == Some(operator::COMPONENT) {
        Phase::Operator
    } else {
        Phase::Stack
    }
}

/// CRDs and namespaces first, RBAC before what uses it, workloads last, then by name.
fn sort_key(o: &Object) -> (Phase, usize, String, String) {
    const KIND_ORDER: &[&str] = &[
        "CustomResourceDefinition",
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Secret",
        "ConfigMap",
        "Service",
        "Ingress",
        "HTTPRoute",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Deployment",
        "DaemonSet",
        "Prometheus",
        "Alertmanager",
        "ServiceMonitor",
        "PrometheusRule",
    ];
    let k = kind(o);
    let rank = KIND_ORDER
        .iter()
        .position(|x| *x == k)
        .unwrap_or(KIND_ORDER.len());
    (
        phase(o),
        rank,
        o.metadata.namespace.clone().unwrap_or_default(),
        o.metadata.name.clone().unwrap_or_default(),
    )
}

impl Rendered {
    /// All objects as one YAML stream (`---` between documents).
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        for o in &self.objects {
            out.push_str("---\n");
            out.push_str(&model::to_yaml(o));
        }
        out
    }

    /// All objects as a `v1/List`, like `kubectl get -o json`.
    pub fn to_json(&self) -> String {
        let list = serde_json::json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": self.objects,
        });
        let mut s = serde_json::to_string_pretty(&list).expect("objects serialise");
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Each object's YAML by `kind/namespace/name`.
    fn by_key(rendered: &Rendered) -> BTreeMap<String, String> {
        rendered
            .objects
            .iter()
            .map(|o| {
                let key = format!(
                    "{}/{}/{}",
                    kind(o),
                    o.metadata.namespace.as_deref().unwrap_or_default(),
                    o.metadata.name.as_deref().unwrap_or_default()
                );
                (key, model::to_yaml(o))
            })
            .collect()
    }

    #[test]
    fn no_node_classes_render_the_stack_as_before() {
        let config = Config::default();
        let plain = render(&config).to_yaml();
        let none =
            render_classes(&config, Vec::new(), None, NodeClasses::default(), None).to_yaml();
        assert_eq!(plain, none);
    }

    /// The objects node classes add or change, one snapshot each (`classes__<kind>-<name>`,
    /// beside `render`'s own in tests/snapshots), so that a reviewer reads each on its own.
    /// tests/rules.rs and tests/dashboards.rs check the rules and dashboards of these reviewed
    /// snapshots with promtool and Grafana's schema, as they check `render`'s output: `render`
    /// cannot be asked for classes (the commands detect them).
    #[test]
    fn node_classes_snapshot() {
        let config = Config::default();
        let all = NodeClasses {
            windows: true,
            gpu: true,
        };
        let before = by_key(&render(&config));
        let after = by_key(&render_classes(&config, Vec::new(), None, all, None));
        for key in before.keys() {
            assert!(after.contains_key(key), "{key} is gone with node classes");
        }
        let mut names = Vec::new();
        for (key, yaml) in &after {
            if before.get(key) == Some(yaml) {
                continue;
            }
            let mut parts = key.split('/');
            let (kind, _namespace, name) = (parts.next(), parts.next(), parts.next());
            let name = format!(
                "classes__{}-{}",
                kind.unwrap_or_default().to_lowercase(),
                name.unwrap_or_default()
            );
            insta::with_settings!({
                snapshot_path => "../../tests/snapshots",
                prepend_module_to_snapshot => false,
                omit_expression => true,
            }, {
                insta::assert_snapshot!(name.clone(), yaml);
            });
            names.push(name);
        }
        assert_eq!(
            names,
            [
                "classes__configmap-grafana-dashboard-cluster-overview",
                "classes__configmap-grafana-dashboard-gpus",
                "classes__configmap-grafana-dashboard-windows-node-detail",
                "classes__daemonset-dcgm-exporter",
                "classes__daemonset-windows-exporter",
                "classes__deployment-kube-state-metrics",
                "classes__networkpolicy-dcgm-exporter",
                "classes__networkpolicy-windows-exporter",
                "classes__prometheusrule-automon-coverage",
                "classes__prometheusrule-gpu-alerts",
                "classes__prometheusrule-windows-alerts",
                "classes__service-dcgm-exporter",
                "classes__service-windows-exporter",
                "classes__serviceaccount-dcgm-exporter",
                "classes__serviceaccount-windows-exporter",
                "classes__servicemonitor-dcgm-exporter",
                "classes__servicemonitor-windows-exporter",
            ]
        );
    }
}
