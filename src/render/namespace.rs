//! The namespace, with PodSecurity labels that say honestly what runs in it: node-exporter
//! needs the host's network, PIDs and read-only host paths, which only `privileged` admits.
//! Audit and warn stay at `restricted` so that anything else that loosens up is visible.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;

use super::{Context, object};

use crate::model::Object;
use crate::versions::PLUGIN_VERSION;

pub fn objects(ctx: &Context) -> Vec<Object> {
    let mut labels = ctx.labels("automon", "namespace", PLUGIN_VERSION);
    labels.extend(pod_security_labels());
    let mut meta = ctx.meta(ctx.namespace, &labels);
    meta.namespace = None;
    vec![object(Namespace {
        metadata: meta,
        ..Default::default()
    })]
}

pub fn pod_security_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "pod-security.kubernetes.io/enforce".into(),
            "privileged".into(),
        ),
        (
            "pod-security.kubernetes.io/enforce-version".into(),
            "latest".into(),
        ),
        (
            "pod-security.kubernetes.io/audit".into(),
            "restricted".into(),
        ),
        (
            "pod-security.kubernetes.io/audit-version".into(),
            "latest".into(),
        ),
    ])
}
