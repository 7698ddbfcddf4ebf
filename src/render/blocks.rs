//! Building blocks more than one component uses: the PodDisruptionBudget of a replicated
//! component, the ServiceMonitor that scrapes a component's own Service, and the placement of a
//! Prometheus' or Alertmanager's pods.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec},
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
};
use serde_json::{Value, json};

use super::{Context, custom, object};

use crate::{config::placement::Placement, model::Object};

/// A `Prometheus`' or `Alertmanager`'s `storage`: a PersistentVolumeClaim per replica (the
/// operator's `volumeClaimTemplate`) when a size is given; `None` leaves the operator's
/// emptyDir.
pub fn volume_claim(storage: &crate::config::Storage) -> Option<Value> {
    let size = storage.size.as_ref()?;
    let mut claim = json!({
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size.0}},
    });
    if let Some(class) = &storage.storage_class {
        claim["storageClassName"] = json!(class);
    }
    Some(json!({"volumeClaimTemplate": {"spec": claim}}))
}

/// The placement configured for a `Prometheus` or `Alertmanager` (their custom resources take
/// the pod spec's fields as they are) on `spec`; and, with no spread or affinity of the user's,
/// a soft spread across nodes of the pods `selector` selects: two replicas on one node would
/// fall together. Set with one replica too, so that scaling never changes the pod template
/// (which would replace the pods already running).
pub fn place(spec: &mut Value, placement: Placement, selector: &BTreeMap<String, String>) {
    spec["nodeSelector"] = json!(placement.node_selector());
    if !placement.tolerations.is_empty() {
        spec["tolerations"] = json!(placement.tolerations);
    }
    if let Some(affinity) = placement.affinity {
        spec["affinity"] = affinity.clone();
    }
    if let Some(class) = placement.priority_class_name {
        spec["priorityClassName"] = json!(class);
    }
    if !placement.topology_spread_constraints.is_empty() {
        spec["topologySpreadConstraints"] = json!(placement.topology_spread_constraints);
    } else if !placement.spreads() {
        spec["topologySpreadConstraints"] = json!([{
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector},
        }]);
    }
}

/// Keeps one replica up through voluntary disruptions (drains) when there are several.
pub fn pod_disruption_budget(
    ctx: &Context,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Object {
    object(PodDisruptionBudget {
        metadata: ctx.meta(name, labels),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(ctx.selector(name)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// A ServiceMonitor of the stack, named `name`, with this spec.
pub fn service_monitor(
    ctx: &Context,
    name: &str,
    labels: &BTreeMap<String, String>,
    spec: Value,
) -> Object {
    custom(json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": ctx.meta(name, labels),
        "spec": spec,
    }))
}

/// A ServiceMonitor that scrapes a component's own Service (selected by its name) on `port`,
/// at `/metrics` under the path prefix it serves under (`prefix`, empty at the root); the job
/// is the Service's name.
pub fn self_scrape(
    ctx: &Context,
    name: &str,
    labels: &BTreeMap<String, String>,
    port: &str,
    prefix: &str,
) -> Object {
    let mut endpoint = json!({"port": port});
    if !prefix.is_empty() {
        endpoint["path"] = json!(format!("{prefix}/metrics"));
    }
    service_monitor(
        ctx,
        name,
        labels,
        json!({
            "selector": {"matchLabels": ctx.selector(name)},
            "endpoints": [endpoint],
        }),
    )
}
