//! Prometheus: the `Prometheus` custom resource the operator turns into StatefulSet
//! `prometheus-automon`, its read-only discovery RBAC, its Service, a self-scrape, a
//! NetworkPolicy and, with more than one replica, a PodDisruptionBudget.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        core::v1::ServiceSpec,
        networking::v1::{
            NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
            NetworkPolicySpec,
        },
        rbac::v1::PolicyRule,
    },
    apimachinery::pkg::apis::meta::v1::LabelSelector,
};
use serde_json::{Value, json};

use super::{
    Context, Object,
    blocks::{pod_disruption_budget, self_scrape},
    custom, meta,
    meta::{PART_OF, PART_OF_LABEL},
    network::tcp,
    object, rbac,
    security::operand_pod,
    service,
};
use crate::versions;

const NAME: &str = "prometheus";
/// The Service in front of Prometheus, and its port's name.
pub const SERVICE: &str = NAME;
pub const PORT_NAME: &str = "web";
/// The `Prometheus` object; the operator names its StatefulSet `prometheus-automon`.
pub const INSTANCE: &str = "automon";
const PORT: i32 = 9090;

pub fn objects(ctx: &Context) -> Vec<Object> {
    let labels = ctx.labels(NAME, NAME, versions::PROMETHEUS.version);
    let mut objects = rbac::cluster_identity(ctx, NAME, &labels, cluster_rules());
    objects.extend([
        prometheus(ctx, &labels),
        service::service(
            ctx,
            NAME,
            &labels,
            ServiceSpec {
                // With several replicas, Grafana keeps seeing one replica's data rather than
                // alternating between two slightly different ones.
                session_affinity: Some("ClientIP".into()),
                ..service::spec(ctx, NAME, &[(PORT_NAME, PORT)])
            },
        ),
        network_policy(ctx, &labels),
        self_scrape(ctx, NAME, &labels, PORT_NAME),
    ]);
    objects.extend(thanos::objects(ctx, &labels));
    if ctx.config.prometheus.replicas > 1 {
        objects.push(pod_disruption_budget(ctx, NAME, &labels));
    }
    objects
}

/// The selector every kind of scrape and rule object is chosen by: automon's own label, set
/// explicitly, because a nil selector would select nothing and an empty one everything.
pub fn automon_selector() -> Value {
    json!({"matchLabels": {PART_OF_LABEL: PART_OF}})
}

/// Read-only: service discovery, the kubelet's metrics, and Prometheus-format endpoints.
fn cluster_rules() -> Vec<PolicyRule> {
    let discover = &["get", "list", "watch"];
    let rule = |group: &str, resources: &[&str], verbs: &[&str]| PolicyRule {
        api_groups: Some(vec![group.into()]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..Default::default()
    };
    vec![
        rule(
            "",
            &["nodes", "nodes/metrics", "services", "endpoints", "pods"],
            discover,
        ),
        rule("discovery.k8s.io", &["endpointslices"], discover),
        // Only for `configMap` references in scrape configuration (CA bundles).
        rule("", &["configmaps"], &["get"]),
        PolicyRule {
            non_resource_urls: Some(vec!["/metrics".into()]),
            verbs: vec!["get".into()],
            ..Default::default()
        },
    ]
}

fn prometheus(ctx: &Context, labels: &BTreeMap<String, String>) -> Object {
    let c = &ctx.config.prometheus;
    let mut spec = json!({
        "version": versions::PROMETHEUS.version,
        "image": ctx.image(&versions::PROMETHEUS),
        "replicas": c.replicas,
        "retention": c.retention.0,
        "scrapeInterval": c.scrape_interval.0,
        "evaluationInterval": c.evaluation_interval.0,
        "resources": meta::resources(&c.resources),
        "serviceAccountName": NAME,
        // The Endpoints API is deprecated; the operator writes the kubelet's as EndpointSlices.
        "serviceDiscoveryRole": "EndpointSlice",
        // Namespace selectors stay unset: only the stack's own namespace.
        "serviceMonitorSelector": automon_selector(),
        "podMonitorSelector": automon_selector(),
        "probeSelector": automon_selector(),
        "scrapeConfigSelector": automon_selector(),
        "ruleSelector": automon_selector(),
        "alerting": {"alertmanagers": [{
            "namespace": ctx.namespace,
            "name": super::alertmanager::NAME,
            "port": "web",
            "apiVersion": "v2",
        }]},
        // The operator puts its own labels on the pods too; these are the ones automon's
        // Service, NetworkPolicies and PodDisruptionBudget select.
        "podMetadata": {"labels": labels},
        "securityContext": operand_pod(),
        "nodeSelector": {"kubernetes.io/os": "linux"},
    });
    if !c.external_labels.is_empty() {
        spec["externalLabels"] = json!(c.external_labels);
    }
    remote_write::extend(&mut spec, c);
    thanos::extend(&mut spec, ctx);
    if let Some(size) = &c.retention_size {
        spec["retentionSize"] = json!(size);
    }
    if let Some(size) = &c.storage.size {
        let mut claim = json!({
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": size.0}},
        });
        if let Some(class) = &c.storage.storage_class {
            claim["storageClassName"] = json!(class);
        }
        spec["storage"] = json!({"volumeClaimTemplate": {"spec": claim}});
    }
    if let Some(secrets) = ctx.pull_secrets() {
        spec["imagePullSecrets"] = json!(secrets);
    }
    custom(json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Prometheus",
        "metadata": ctx.meta(INSTANCE, labels),
        "spec": spec,
    }))
}

/// The UI and API from the stack's namespace (Grafana, its own self-scrape); out to every scrape
/// target, which may be any pod or node on any port, so egress stays open.
fn network_policy(ctx: &Context, labels: &BTreeMap<String, String>) -> Object {
    object(NetworkPolicy {
        metadata: ctx.meta(NAME, labels),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(ctx.selector(NAME)),
                ..Default::default()
            }),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: Some(
                [NetworkPolicyIngressRule {
                    from: Some(vec![NetworkPolicyPeer {
                        pod_selector: Some(LabelSelector::default()),
                        ..Default::default()
                    }]),
                    ports: Some(vec![tcp(PORT)]),
                }]
                .into_iter()
                .chain(thanos::ingress(ctx))
                .collect(),
            ),
            egress: Some(vec![NetworkPolicyEgressRule::default()]),
        }),
    })
}

// Remote write and the Thanos sidecar, each its own part of the `Prometheus` object.
mod remote_write;
mod thanos;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config::Config, render};

    fn render_with(sets: &[&str]) -> Vec<Object> {
        let mut config = Config::default();
        for s in sets {
            config = config.with_set(s).unwrap();
        }
        objects(&Context::new(&config))
    }

    fn spec(objects: &[Object]) -> &Value {
        &objects
            .iter()
            .find(|o| render::kind(o) == "Prometheus")
            .expect("a Prometheus")
            .data["spec"]
    }

    #[test]
    fn selectors_are_explicit_and_namespace_selectors_unset() {
        let objects = render_with(&[]);
        let spec = spec(&objects);
        for key in [
            "serviceMonitorSelector",
            "podMonitorSelector",
            "probeSelector",
            "scrapeConfigSelector",
            "ruleSelector",
        ] {
            assert_eq!(
                spec[key],
                json!({"matchLabels": {"app.kubernetes.io/part-of": "automon"}}),
                "{key}"
            );
            let ns_key = key.replace("Selector", "NamespaceSelector");
            assert!(spec.get(&ns_key).is_none(), "{ns_key}");
        }
    }

    #[test]
    fn defaults_use_empty_dir_and_one_replica_without_pdb() {
        let objects = render_with(&[]);
        let spec = spec(&objects);
        assert!(spec.get("storage").is_none());
        assert!(spec.get("retentionSize").is_none());
        assert_eq!(spec["replicas"], 1);
        assert_eq!(spec["retention"], "15d");
        assert_eq!(spec["version"], "v3.16.0");
        assert_eq!(spec["image"], "quay.io/prometheus/prometheus:v3.16.0");
        assert_eq!(spec["serviceAccountName"], "prometheus");
        assert_eq!(spec["alerting"]["alertmanagers"][0]["name"], "alertmanager");
        assert_eq!(spec["alerting"]["alertmanagers"][0]["port"], "web");
        assert_eq!(spec["resources"]["requests"]["memory"], "1Gi");
        assert!(
            !objects
                .iter()
                .any(|o| render::kind(o) == "PodDisruptionBudget")
        );
    }

    #[test]
    fn configuration_reaches_the_custom_resource() {
        let objects = render_with(&[
            "prometheus.replicas=2",
            "prometheus.retention=30d",
            "prometheus.retentionSize=40GB",
            "prometheus.storage.size=50Gi",
            "prometheus.storage.storageClass=fast",
            "prometheus.externalLabels={cluster: prod}",
        ]);
        let spec = spec(&objects);
        assert_eq!(spec["replicas"], 2);
        assert_eq!(spec["retention"], "30d");
        assert_eq!(spec["retentionSize"], "40GB");
        assert_eq!(spec["externalLabels"]["cluster"], "prod");
        let claim = &spec["storage"]["volumeClaimTemplate"]["spec"];
        assert_eq!(claim["resources"]["requests"]["storage"], "50Gi");
        assert_eq!(claim["storageClassName"], "fast");
        let pdb = objects
            .iter()
            .find(|o| render::kind(o) == "PodDisruptionBudget")
            .expect("a PDB with two replicas");
        assert_eq!(
            pdb.data["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"],
            "prometheus"
        );
    }

    #[test]
    fn service_and_policies_select_the_pods_the_operator_labels() {
        let objects = render_with(&[]);
        let pod_labels = &spec(&objects)["podMetadata"]["labels"];
        for o in objects
            .iter()
            .filter(|o| ["Service", "NetworkPolicy"].contains(&render::kind(o)))
        {
            let selector = if render::kind(o) == "Service" {
                &o.data["spec"]["selector"]
            } else {
                &o.data["spec"]["podSelector"]["matchLabels"]
            };
            for (k, v) in selector.as_object().unwrap() {
                assert_eq!(&pod_labels[k], v, "{} selects {k}", render::kind(o));
            }
        }
    }

    #[test]
    fn rbac_is_read_only() {
        let objects = render_with(&[]);
        let role = objects
            .iter()
            .find(|o| render::kind(o) == "ClusterRole")
            .unwrap();
        assert_eq!(role.metadata.name.as_deref(), Some("automon-prometheus"));
        for rule in role.data["rules"].as_array().unwrap() {
            for verb in rule["verbs"].as_array().unwrap() {
                assert!(
                    ["get", "list", "watch"].contains(&verb.as_str().unwrap()),
                    "{rule}"
                );
            }
        }
    }
}
