//! Building blocks more than one component uses: the PodDisruptionBudget of a replicated
//! component and the ServiceMonitor that scrapes a component's own Service.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec},
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
};
use serde_json::{Value, json};

use super::{Context, custom, object};

use crate::model::Object;

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

/// A ServiceMonitor that scrapes a component's own Service (selected by its name) on `port`;
/// the job is the Service's name.
pub fn self_scrape(
    ctx: &Context,
    name: &str,
    labels: &BTreeMap<String, String>,
    port: &str,
) -> Object {
    service_monitor(
        ctx,
        name,
        labels,
        json!({
            "selector": {"matchLabels": ctx.selector(name)},
            "endpoints": [{"port": port}],
        }),
    )
}
