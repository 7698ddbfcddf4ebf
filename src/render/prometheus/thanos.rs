//! The operator's Thanos sidecar (`spec.thanos`) from `prometheus.thanos`, the headless Service
//! a Thanos Query finds each Prometheus pod's StoreAPI through, and the ingress it needs.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        core::v1::ServiceSpec,
        networking::v1::{NetworkPolicyIngressRule, NetworkPolicyPeer},
    },
    apimachinery::pkg::apis::meta::v1::LabelSelector,
};
use serde_json::{Value, json};

use super::NAME;
use crate::model::Object;
use crate::{
    render::{
        Context, meta,
        network::{self, tcp},
        service,
    },
    versions,
};

/// The Service in front of the sidecars' gRPC StoreAPI.
pub const SERVICE: &str = "prometheus-thanos";
/// The sidecar's gRPC port, as the operator configures it (`--grpc-address=:10901`) and names
/// it (`grpc`).
pub const GRPC_PORT: i32 = 10901;
const GRPC_PORT_NAME: &str = "grpc";

/// Adds `spec.thanos` to the shards' `Prometheus` when the sidecar is configured, or when
/// Thanos Query asks the shards ([`super::query`]); only the configured one uploads blocks.
pub fn extend(spec: &mut Value, ctx: &Context) {
    let configured = ctx.config.prometheus.thanos.as_ref();
    if configured.is_none() && !super::query::enabled(ctx) {
        return;
    }
    sidecar(spec, ctx);
    if let Some(t) = configured {
        let storage = &t.object_storage_config;
        spec["thanos"]["objectStorageConfig"] = json!({"name": storage.secret, "key": storage.key});
        spec["thanos"]["resources"] = json!(meta::resources(&t.resources));
    }
}

/// The sidecar alone, serving the StoreAPI to Thanos Query (the ruler's: its alerts and the
/// rules it evaluates; nothing uploaded).
pub fn sidecar(spec: &mut Value, ctx: &Context) {
    spec["thanos"] = json!({
        "version": versions::THANOS.version,
        "image": ctx.image(&versions::THANOS),
    });
}

/// The headless Service (one DNS SRV record per pod, `_grpc._tcp.prometheus-thanos.<ns>`), so
/// that Thanos Query reaches every replica and shard rather than one behind a virtual IP.
pub fn objects(ctx: &Context, labels: &BTreeMap<String, String>) -> Vec<Object> {
    if ctx.config.prometheus.thanos.is_none() && !super::query::enabled(ctx) {
        return Vec::new();
    }
    vec![headless(ctx, SERVICE, NAME, labels)]
}

/// A headless Service `name` of the sidecars of the component `pods`.
pub fn headless(
    ctx: &Context,
    name: &str,
    pods: &str,
    labels: &BTreeMap<String, String>,
) -> Object {
    service::service(
        ctx,
        name,
        labels,
        ServiceSpec {
            cluster_ip: Some("None".into()),
            ..service::spec(ctx, pods, &[(GRPC_PORT_NAME, GRPC_PORT)])
        },
    )
}

/// The StoreAPI: from any namespace with `prometheus.thanos` (Thanos Query usually runs in a
/// namespace of its own, or is shared by several clusters' stacks; the StoreAPI only reads),
/// else from the stack's Thanos Query when it runs.
pub fn ingress(ctx: &Context) -> Option<NetworkPolicyIngressRule> {
    let from = if ctx.config.prometheus.thanos.is_some() {
        NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector::default()),
            ..Default::default()
        }
    } else if super::query::enabled(ctx) {
        network::pods(ctx, super::query::NAME)
    } else {
        return None;
    };
    Some(network::ingress(vec![from], vec![tcp(GRPC_PORT)]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model;
    use crate::render::prometheus::objects;

    fn render_with(sets: &[&str]) -> Vec<Object> {
        objects(&Context::new(&crate::render::fixtures::config(sets)))
    }

    const THANOS: &str =
        "prometheus.thanos={objectStorageConfig: {secret: thanos-objstore, key: objstore.yml}}";

    #[test]
    fn sidecar_service_and_policy_only_when_configured() {
        let plain = render_with(&[]);
        let with = render_with(&[THANOS]);
        let prometheus = |objects: &[Object]| {
            objects
                .iter()
                .find(|o| model::kind(o) == "Prometheus")
                .unwrap()
                .data["spec"]
                .clone()
        };
        assert!(prometheus(&plain).get("thanos").is_none());
        let sidecar = &prometheus(&with)["thanos"];
        assert_eq!(sidecar["image"], "quay.io/thanos/thanos:v0.42.4");
        assert_eq!(
            sidecar["objectStorageConfig"],
            json!({"name": "thanos-objstore", "key": "objstore.yml"})
        );
        // Retention is the user's to shorten: the sidecar does not change it.
        assert_eq!(prometheus(&with)["retention"], "15d");

        let service = with
            .iter()
            .find(|o| o.metadata.name.as_deref() == Some(SERVICE))
            .expect("the sidecars' Service");
        assert_eq!(service.data["spec"]["clusterIP"], "None");
        assert_eq!(service.data["spec"]["ports"][0]["port"], 10901);
        assert_eq!(service.data["spec"]["ports"][0]["targetPort"], "grpc");
        assert_eq!(
            service.data["spec"]["selector"]["app.kubernetes.io/name"],
            "prometheus"
        );
        assert_eq!(plain.len() + 1, with.len());

        let policy = |objects: &[Object]| {
            objects
                .iter()
                .find(|o| model::kind(o) == "NetworkPolicy")
                .unwrap()
                .data["spec"]["ingress"]
                .clone()
        };
        assert_eq!(policy(&plain).as_array().unwrap().len(), 1);
        let ingress = policy(&with);
        assert_eq!(ingress[0], policy(&plain)[0]);
        assert_eq!(ingress[1]["from"], json!([{"namespaceSelector": {}}]));
        assert_eq!(
            ingress[1]["ports"],
            json!([{"port": 10901, "protocol": "TCP"}])
        );
    }

    #[test]
    fn a_mirror_registry_applies_to_the_sidecar() {
        let objects = render_with(&[THANOS, "images.registry=mirror.local:5000"]);
        let p = objects
            .iter()
            .find(|o| model::kind(o) == "Prometheus")
            .unwrap();
        assert_eq!(
            p.data["spec"]["thanos"]["image"],
            "mirror.local:5000/thanos/thanos:v0.42.4"
        );
    }
}
