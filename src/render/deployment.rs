//! A single-replica Deployment of one component: its selector labels, its ServiceAccount, Linux
//! nodes and the placement configured for it, the image pull Secrets. The component brings its
//! containers, pod security and volumes.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec},
        core::v1::{PodSpec, PodTemplateSpec},
    },
    apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta},
};

use super::{Context, object};

use crate::{config::placement::Placement, model::Object};

/// `pod` is the component's own part of the pod; `annotations` go on the pod template (e.g. a
/// checksum that restarts the pods when their configuration changes).
pub fn deployment(
    ctx: &Context,
    name: &str,
    labels: &BTreeMap<String, String>,
    placement: Placement,
    annotations: Option<BTreeMap<String, String>>,
    pod: PodSpec,
) -> Object {
    let tolerations = placement.tolerations();
    let spread = placement.topology_spread_constraints();
    object(Deployment {
        metadata: ctx.meta(name, labels),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(ctx.selector(name)),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels.clone()),
                    annotations,
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(name.into()),
                    node_selector: Some(placement.node_selector()),
                    tolerations: (!tolerations.is_empty()).then_some(tolerations),
                    affinity: placement.affinity(),
                    priority_class_name: placement.priority_class_name.map(str::to_string),
                    topology_spread_constraints: (!spread.is_empty()).then_some(spread),
                    image_pull_secrets: ctx.pull_secrets(),
                    ..pod
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    })
}
