//! Thanos Query over the shards: with more than one shard each Prometheus holds a part of the
//! series, so Grafana, `status`, `doctor` and `open query` ask Deployment `thanos-query`, which
//! asks every shard's and the ruler's Thanos sidecar (their StoreAPI, found through headless
//! Services) and merges the answers. With one shard nothing of this is rendered.
//!
//! Deduplication: the operator gives each Prometheus pod the external labels `prometheus`
//! (`<ns>/<Prometheus>`) and `prometheus_replica` (the pod). Both are Query's replica labels:
//! the replicas of a shard are one series, and so are the few series the ruler federates from
//! the shards ([`super::super::rules::CLUSTER_SERIES`]) and the shards' own copies of them, which
//! differ in those two labels only. Every other series lives on one shard: hashmod keeps each
//! target on one, and the ruler's own series (its ALERTS) are its alone.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        core::v1::{
            Container, ContainerPort, HTTPGetAction, PodSpec, Probe, ServiceAccount, ServicePort,
            ServiceSpec,
        },
        networking::v1::NetworkPolicyEgressRule,
    },
    apimachinery::pkg::util::intstr::IntOrString,
};
use serde_json::json;

use super::{NAME as PROMETHEUS, RULER_NAME, thanos};
use crate::{
    model::Object,
    render::{
        Context,
        blocks::pod_disruption_budget,
        deployment::deployment,
        meta,
        network::{self, dns_egress, namespace_pods, pods, tcp},
        object,
        security::{restricted_container, restricted_pod},
        service,
    },
    versions,
};

/// The Deployment, its Service, ServiceAccount and NetworkPolicy.
pub const NAME: &str = "thanos-query";
/// The Service's port: Prometheus' own number and name, so that whatever asked one Prometheus
/// asks Query the same way.
pub const PORT: i32 = 9090;
pub const PORT_NAME: &str = "web";
/// Query's own HTTP port in the container (its default).
pub const HTTP_PORT: i32 = 10902;
const HTTP_PORT_NAME: &str = "http";
/// The headless Service of the ruler's sidecar (the shards' is [`thanos::SERVICE`]).
pub const RULER_SERVICE: &str = "prometheus-ruler-thanos";
/// The external labels the operator sets on every Prometheus pod, and Query deduplicates by.
pub const REPLICA_LABELS: [&str; 2] = ["prometheus_replica", "prometheus"];
/// The image's user (`nobody`).
const USER: i64 = 65534;

/// Whether the stack runs Thanos Query: more than one shard.
pub fn enabled(ctx: &Context) -> bool {
    ctx.sizing.shards > 1
}

pub fn objects(ctx: &Context) -> Vec<Object> {
    if !enabled(ctx) {
        return Vec::new();
    }
    let labels = ctx.labels(NAME, PROMETHEUS, versions::THANOS.version);
    let ruler_labels = ctx.labels(RULER_NAME, PROMETHEUS, versions::PROMETHEUS.version);
    let mut objects = vec![
        object(ServiceAccount {
            metadata: ctx.meta(NAME, &labels),
            automount_service_account_token: Some(false),
            ..Default::default()
        }),
        deployment_of(ctx, &labels),
        // Grafana keeps asking one replica (their answers are the same).
        service::sticky(
            ctx,
            NAME,
            &labels,
            ServiceSpec {
                // Prometheus' port, to Query's own.
                ports: Some(vec![ServicePort {
                    name: Some(PORT_NAME.into()),
                    port: PORT,
                    target_port: Some(IntOrString::String(HTTP_PORT_NAME.into())),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
                ..service::spec(ctx, NAME, &[])
            },
        ),
        thanos::headless(ctx, RULER_SERVICE, RULER_NAME, &ruler_labels),
        network_policy(ctx, &labels),
    ];
    if ctx.config.prometheus.replicas > 1 {
        objects.push(pod_disruption_budget(ctx, NAME, &labels));
    }
    objects
}

/// Query's flags: the two sidecar Services by DNS SRV (every pod behind each, as they come
/// and go) and the replica labels.
pub fn args(namespace: &str) -> Vec<String> {
    let mut args = vec![
        "query".to_string(),
        format!("--http-address=0.0.0.0:{HTTP_PORT}"),
        format!("--grpc-address=0.0.0.0:{}", thanos::GRPC_PORT),
        "--log.format=logfmt".to_string(),
    ];
    for service in [thanos::SERVICE, RULER_SERVICE] {
        args.push(format!(
            "--endpoint=dnssrv+_grpc._tcp.{service}.{namespace}.svc"
        ));
    }
    for label in REPLICA_LABELS {
        args.push(format!("--query.replica-label={label}"));
    }
    args
}

fn deployment_of(ctx: &Context, labels: &BTreeMap<String, String>) -> Object {
    let probe = |path: &str, initial_delay| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(HTTP_PORT_NAME.into()),
            ..Default::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        timeout_seconds: Some(5),
        ..Default::default()
    };
    let container = Container {
        name: NAME.into(),
        image: Some(ctx.image(&versions::THANOS)),
        args: Some(args(ctx.namespace)),
        ports: Some(vec![
            ContainerPort {
                name: Some(HTTP_PORT_NAME.into()),
                container_port: HTTP_PORT,
                protocol: Some("TCP".into()),
                ..Default::default()
            },
            ContainerPort {
                name: Some("grpc".into()),
                container_port: thanos::GRPC_PORT,
                protocol: Some("TCP".into()),
                ..Default::default()
            },
        ]),
        resources: Some(meta::resources(&ctx.sizing.query)),
        readiness_probe: Some(probe("/-/ready", 5)),
        liveness_probe: Some(probe("/-/healthy", 30)),
        security_context: Some(restricted_container(USER)),
        ..Default::default()
    };
    let mut d = deployment(
        ctx,
        NAME,
        labels,
        ctx.config.prometheus.placement(),
        None,
        PodSpec {
            automount_service_account_token: Some(false),
            security_context: Some(restricted_pod(USER, None)),
            containers: vec![container],
            ..Default::default()
        },
    );
    d.data["spec"]["replicas"] = json!(ctx.config.prometheus.replicas);
    d
}

/// In: its HTTP API from the stack's namespace (Grafana), as Prometheus'. Out: DNS, and the
/// sidecars' StoreAPI of the shards and the ruler, nothing else.
fn network_policy(ctx: &Context, labels: &BTreeMap<String, String>) -> Object {
    let ingress = vec![network::ingress(
        vec![namespace_pods()],
        vec![tcp(HTTP_PORT)],
    )];
    let stores = NetworkPolicyEgressRule {
        to: Some(vec![pods(ctx, PROMETHEUS), pods(ctx, RULER_NAME)]),
        ports: Some(vec![tcp(thanos::GRPC_PORT)]),
    };
    network::policy(ctx, NAME, labels, ingress, Some(vec![dns_egress(), stores]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{model, render};

    fn rendered(sets: &[&str]) -> Vec<Object> {
        render::render(&render::fixtures::config(sets)).objects
    }

    fn named<'a>(objects: &'a [Object], kind: &str, name: &str) -> Option<&'a Object> {
        objects
            .iter()
            .find(|o| model::kind(o) == kind && o.metadata.name.as_deref() == Some(name))
    }

    #[test]
    fn one_shard_runs_no_query_and_grafana_asks_prometheus() {
        let objects = rendered(&[]);
        assert!(named(&objects, "Deployment", NAME).is_none());
        assert!(named(&objects, "Service", thanos::SERVICE).is_none());
        let prometheus = named(&objects, "Prometheus", "automon").unwrap();
        assert!(prometheus.data["spec"].get("thanos").is_none());
        let datasources = named(&objects, "ConfigMap", "grafana-datasources").unwrap();
        let text = datasources.data["data"]["datasources.yaml"]
            .as_str()
            .unwrap();
        assert!(
            text.contains("http://prometheus.automon.svc:9090"),
            "{text}"
        );
    }

    #[test]
    fn shards_are_read_together_through_query_over_every_sidecar() {
        let objects = rendered(&["prometheus.shards=3", "prometheus.replicas=2"]);
        let d = named(&objects, "Deployment", NAME).expect("Thanos Query");
        assert_eq!(d.data["spec"]["replicas"], 2);
        let args = &d.data["spec"]["template"]["spec"]["containers"][0]["args"];
        for arg in [
            "--endpoint=dnssrv+_grpc._tcp.prometheus-thanos.automon.svc",
            "--endpoint=dnssrv+_grpc._tcp.prometheus-ruler-thanos.automon.svc",
            "--query.replica-label=prometheus_replica",
            "--query.replica-label=prometheus",
        ] {
            assert!(
                args.as_array().unwrap().contains(&arg.into()),
                "{arg}: {args}"
            );
        }
        // Each headless Service selects its own pods' gRPC port.
        for (service, pods) in [
            (thanos::SERVICE, "prometheus"),
            (RULER_SERVICE, "prometheus-ruler"),
        ] {
            let s = named(&objects, "Service", service).unwrap();
            assert_eq!(s.data["spec"]["clusterIP"], "None");
            assert_eq!(
                s.data["spec"]["selector"]["app.kubernetes.io/name"], pods,
                "{service}"
            );
            assert_eq!(s.data["spec"]["ports"][0]["port"], thanos::GRPC_PORT);
        }
        // Both Prometheus get a sidecar that uploads nothing; both let Query in.
        for name in ["automon", "automon-ruler"] {
            let p = named(&objects, "Prometheus", name).unwrap();
            assert_eq!(
                p.data["spec"]["thanos"]["image"],
                "quay.io/thanos/thanos:v0.42.4"
            );
            assert!(
                p.data["spec"]["thanos"]
                    .get("objectStorageConfig")
                    .is_none()
            );
        }
        for policy in ["prometheus", "prometheus-ruler"] {
            let ingress =
                &named(&objects, "NetworkPolicy", policy).unwrap().data["spec"]["ingress"];
            let from_query = ingress.as_array().unwrap().iter().any(|rule| {
                rule["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == NAME
                    && rule["ports"][0]["port"] == thanos::GRPC_PORT
            });
            assert!(from_query, "{policy}: {ingress}");
        }
        let service = named(&objects, "Service", NAME).unwrap();
        assert_eq!(service.data["spec"]["ports"][0]["port"], PORT);
        assert_eq!(
            service.data["spec"]["ports"][0]["targetPort"],
            HTTP_PORT_NAME
        );
        let datasources = named(&objects, "ConfigMap", "grafana-datasources").unwrap();
        let text = datasources.data["data"]["datasources.yaml"]
            .as_str()
            .unwrap();
        assert!(
            text.contains("http://thanos-query.automon.svc:9090"),
            "{text}"
        );
        assert!(named(&objects, "PodDisruptionBudget", NAME).is_some());
    }

    #[test]
    fn a_configured_sidecar_uploads_and_stays_open_to_any_namespace() {
        let objects = rendered(&[
            "prometheus.shards=2",
            "prometheus.thanos={objectStorageConfig: {secret: s, key: k}}",
        ]);
        let p = named(&objects, "Prometheus", "automon").unwrap();
        assert_eq!(
            p.data["spec"]["thanos"]["objectStorageConfig"],
            serde_json::json!({"name": "s", "key": "k"})
        );
        // The ruler's sidecar serves Query only.
        let r = named(&objects, "Prometheus", "automon-ruler").unwrap();
        assert!(
            r.data["spec"]["thanos"]
                .get("objectStorageConfig")
                .is_none()
        );
        let ingress =
            &named(&objects, "NetworkPolicy", "prometheus").unwrap().data["spec"]["ingress"];
        assert!(
            ingress.to_string().contains(r#""namespaceSelector":{}"#),
            "{ingress}"
        );
    }
}
