//! NetworkPolicy pieces every component shares: which pods may talk to it, on which ports, and
//! the egress an API client needs (the API server and DNS).

use k8s_openapi::{
    api::networking::v1::{NetworkPolicyEgressRule, NetworkPolicyPeer, NetworkPolicyPort},
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
};

use super::Context;

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
