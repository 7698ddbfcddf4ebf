//! A single-replica Deployment of one component: its selector labels, its ServiceAccount, Linux
//! nodes, the image pull Secrets. The component brings its containers, pod security and volumes.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec},
        core::v1::{PodSpec, PodTemplateSpec},
    },
    apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta},
};

use super::{Context, object};

use crate::model::Object;

/// `pod` is the component's own part of the pod; `annotations` go on the pod template (e.g. a
/// checksum that restarts the pods when their configuration changes).
pub fn deployment(
    ctx: &Context,
    name: &str,
    labels: &BTreeMap<String, String>,
    annotations: Option<BTreeMap<String, String>>,
    pod: PodSpec,
) -> Object {
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
                    node_selector: Some(BTreeMap::from([(
                        "kubernetes.io/os".into(),
                        "linux".into(),
                    )])),
                    image_pull_secrets: ctx.pull_secrets(),
                    ..pod
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    })
}
