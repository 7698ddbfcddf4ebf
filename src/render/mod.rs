//! Rendering: configuration in, every object of the stack out, as typed Kubernetes objects in a
//! stable order. Pure: no I/O, no clock, no randomness, so the same input gives the same bytes.
//! One module per component, each returning that component's objects; `render` is the list.

pub mod alertmanager;
mod blocks;
mod dashboards;
mod deployment;
#[cfg(test)]
mod fixtures;
pub mod grafana;
mod kube_state_metrics;
mod kubelet;
pub mod meta;
mod namespace;
mod network;
pub mod node_exporter;
pub mod operator;
mod per_node;
pub mod prometheus;
mod rbac;
pub mod rules;
mod security;
mod service;

use kube::api::DynamicObject;
use serde::Serialize;

use crate::config::Config;
pub use meta::Context;

/// One rendered object. Typed k8s-openapi objects and custom resources alike end up here.
pub type Object = DynamicObject;

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
pub fn render_beside(
    config: &Config,
    extra: Vec<Object>,
    exporter: Option<&crate::exporter::Holder>,
) -> Rendered {
    let ctx = Context {
        exporter,
        ..Context::new(config)
    };
    let mut objects = extra;
    objects.extend(namespace::objects(&ctx));
    objects.extend(operator::objects(&ctx));
    objects.extend(prometheus::objects(&ctx));
    objects.extend(alertmanager::objects(&ctx));
    objects.extend(grafana::objects(&ctx));
    objects.extend(node_exporter::objects(&ctx));
    objects.extend(kube_state_metrics::objects(&ctx));
    objects.extend(kubelet::objects(&ctx));
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
        .and_then(|l| l.get(meta::COMPONENT_LABEL))
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

pub fn kind(o: &Object) -> &str {
    o.types.as_ref().map_or("", |t| t.kind.as_str())
}

pub fn api_version(o: &Object) -> &str {
    o.types.as_ref().map_or("", |t| t.api_version.as_str())
}

/// `Kind.group` (or `Kind` for the core group), as ApplySets and `kubectl` name types.
pub fn group_kind(o: &Object) -> String {
    let kind = kind(o);
    match api_version(o).rsplit_once('/') {
        Some((group, _)) => format!("{kind}.{group}"),
        None => kind.to_string(),
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
            out.push_str(&to_yaml(o));
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

/// One object as YAML: apiVersion, kind, metadata, then the rest with keys sorted.
pub fn to_yaml(o: &Object) -> String {
    serde_saphyr::to_string(o).expect("objects serialise as YAML")
}
