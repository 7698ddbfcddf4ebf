//! A component's identity: its ServiceAccount and the ClusterRole bound to it, named alike
//! (the cluster-scoped pair carries the namespace, see `Context::cluster_name`).

use std::collections::BTreeMap;

use k8s_openapi::api::{
    core::v1::ServiceAccount,
    rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject},
};

use super::{Context, object};

use crate::model::Object;

/// The ServiceAccount `name`, ClusterRole `<ns>-<name>` with `rules`, and their binding.
pub fn cluster_identity(
    ctx: &Context,
    name: &str,
    labels: &BTreeMap<String, String>,
    rules: Vec<PolicyRule>,
) -> Vec<Object> {
    vec![
        object(ServiceAccount {
            metadata: ctx.meta(name, labels),
            ..Default::default()
        }),
        object(ClusterRole {
            metadata: ctx.cluster_meta(name, labels),
            rules: Some(rules),
            ..Default::default()
        }),
        object(ClusterRoleBinding {
            metadata: ctx.cluster_meta(name, labels),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "ClusterRole".into(),
                name: ctx.cluster_name(name),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: name.into(),
                namespace: Some(ctx.namespace.into()),
                ..Default::default()
            }]),
        }),
    ]
}
