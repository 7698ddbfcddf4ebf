//! NetworkPolicies: one builder every component calls with its own rules, and the pieces they
//! share: which pods may talk to it, on which ports, and the egress an API client needs (the
//! API server and DNS).

use std::collections::BTreeMap;

use k8s_openapi::{
    api::networking::v1::{
        NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
        NetworkPolicyPort, NetworkPolicySpec,
    },
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
};

use super::{Context, Object, object};

/// The NetworkPolicy `name` for the pods of the component `name` (its selector labels): what
/// may reach them (`ingress`) and what they may reach (`egress`). Without `egress` the policy
/// is about ingress alone and leaves the pods' egress as it is; an empty one allows none.
pub fn policy(
    ctx: &Context,
    name: &str,
    labels: &BTreeMap<String, String>,
    ingress: Vec<NetworkPolicyIngressRule>,
    egress: Option<Vec<NetworkPolicyEgressRule>>,
) -> Object {
    let types = if egress.is_some() {
        vec!["Ingress".into(), "Egress".into()]
    } else {
        vec!["Ingress".into()]
    };
    object(NetworkPolicy {
        metadata: ctx.meta(name, labels),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(ctx.selector(name)),
                ..Default::default()
            }),
            policy_types: Some(types),
            ingress: Some(ingress),
            egress,
        }),
    })
}

/// The policy of an API client that Prometheus scrapes (the operator, kube-state-metrics):
/// Prometheus' scrapes on `ports` in; the API server and DNS out.
pub fn scraped_api_client(
    ctx: &Context,
    name: &str,
    labels: &BTreeMap<String, String>,
    ports: Vec<NetworkPolicyPort>,
) -> Object {
    let ingress = vec![ingress(vec![pods(ctx, "prometheus")], ports)];
    policy(
        ctx,
        name,
        labels,
        ingress,
        Some(vec![api_server_egress(), dns_egress()]),
    )
}

/// Ingress from these peers to these ports.
pub fn ingress(
    from: Vec<NetworkPolicyPeer>,
    ports: Vec<NetworkPolicyPort>,
) -> NetworkPolicyIngressRule {
    NetworkPolicyIngressRule {
        from: Some(from),
        ports: Some(ports),
    }
}

/// Every pod in the stack's namespace (the policy's own).
pub fn namespace_pods() -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        pod_selector: Some(LabelSelector::default()),
        ..Default::default()
    }
}

/// Anywhere, on any port: for pods whose peers cannot be known when rendering (scrape targets,
/// Alertmanager's receivers).
pub fn anywhere() -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule::default()
}

/// Pods of one of the stack's components (its selector labels), in the stack's namespace.
pub fn pods(ctx: &Context, name: &str) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        pod_selector: Some(LabelSelector {
            match_labels: Some(ctx.selector(name)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn port(port: IntOrString, protocol: &str) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(port),
        protocol: Some(protocol.into()),
        ..Default::default()
    }
}

pub fn tcp(number: i32) -> NetworkPolicyPort {
    port(IntOrString::Int(number), "TCP")
}

pub fn udp(number: i32) -> NetworkPolicyPort {
    port(IntOrString::Int(number), "UDP")
}

/// A container port by its name.
pub fn tcp_named(name: &str) -> NetworkPolicyPort {
    port(IntOrString::String(name.into()), "TCP")
}

/// Name lookups, over UDP and TCP, to whichever DNS the cluster runs.
pub fn dns_egress() -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        to: None,
        ports: Some(vec![udp(53), tcp(53)]),
    }
}

/// The API server's address is not known when rendering, and policies see the endpoints' port
/// (often 6443) after the Service's 443 is translated: allow both, to anywhere.
pub fn api_server_egress() -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        to: None,
        ports: Some(vec![tcp(443), tcp(6443)]),
    }
}
