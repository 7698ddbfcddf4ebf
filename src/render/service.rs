//! A Service in front of one component's pods: selected by the component's selector labels,
//! each port by name to the container port of the same name.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{Service, ServicePort, ServiceSpec},
    apimachinery::pkg::util::intstr::IntOrString,
};

use super::{Context, object};

use crate::model::Object;

/// The spec; callers add what is theirs (`clusterIP: None`, session affinity) with `..`.
pub fn spec(ctx: &Context, name: &str, ports: &[(&str, i32)]) -> ServiceSpec {
    ServiceSpec {
        selector: Some(ctx.selector(name)),
        ports: Some(
            ports
                .iter()
                .map(|(port_name, number)| ServicePort {
                    name: Some((*port_name).into()),
                    port: *number,
                    target_port: Some(IntOrString::String((*port_name).into())),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                })
                .collect(),
        ),
        ..Default::default()
    }
}

/// The Service object.
pub fn service(
    ctx: &Context,
    name: &str,
    labels: &BTreeMap<String, String>,
    spec: ServiceSpec,
) -> Object {
    object(Service {
        metadata: ctx.meta(name, labels),
        spec: Some(spec),
        ..Default::default()
    })
}

/// A Service whose clients keep to one of its pods (ClientIP affinity): replicas that each
/// answer a little differently (their own scrapes, their own silences) are not mixed.
pub fn sticky(
    ctx: &Context,
    name: &str,
    labels: &BTreeMap<String, String>,
    spec: ServiceSpec,
) -> Object {
    service(
        ctx,
        name,
        labels,
        ServiceSpec {
            session_affinity: Some("ClientIP".into()),
            ..spec
        },
    )
}
