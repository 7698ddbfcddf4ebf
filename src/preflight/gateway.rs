//! Whether the cluster serves the Gateway API's HTTPRoute: an HTTPRoute among the objects to
//! apply (`<ui>.httpRoute`) needs its CRD, serving `v1`. Asked before the first write, so that
//! enable refuses with the way to install it instead of failing half-way through the apply.
//! `render` never asks: it renders the HTTPRoute whatever the cluster has.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use serde::Serialize;

use crate::{
    cluster::{Cluster, error::ClusterError},
    model::{
        Object,
        finding::{Finding, Level},
        kind,
    },
    render::exposure::HTTPROUTE_CRD,
};

/// The Gateway API release whose standard channel automon's HTTPRoutes are tested against
/// (tests/cluster/versions.env pins the same).
pub const TESTED_RELEASE: &str = "v1.6.3";

/// What preflight found of the Gateway API, when an HTTPRoute is to be applied.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayApi {
    /// The HTTPRoutes to apply, as `namespace/name`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<String>,
    /// The versions the HTTPRoute CRD serves; `None` when it is not installed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub served: Option<Vec<String>>,
    /// Why the CRD was not read (the user may not get CRDs; listed as missing already).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_checked: Option<String>,
}

/// The HTTPRoutes among `objects` (pure).
pub fn wanted(objects: &[Object]) -> Vec<String> {
    objects
        .iter()
        .filter(|o| kind(o) == "HTTPRoute")
        .map(|o| {
            format!(
                "{}/{}",
                o.metadata.namespace.as_deref().unwrap_or_default(),
                o.metadata.name.as_deref().unwrap_or_default()
            )
        })
        .collect()
}

/// The versions the HTTPRoute CRD serves, `None` when it is absent; nothing asked when no
/// HTTPRoute is wanted.
pub async fn search(
    cluster: &Cluster,
    routes: &[String],
) -> Result<Option<Vec<String>>, ClusterError> {
    if routes.is_empty() {
        return Ok(None);
    }
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
    let crd = crds
        .get_opt(HTTPROUTE_CRD)
        .await
        .map_err(|e| cluster.target.classify(e))?;
    Ok(crd.map(|c| {
        c.spec
            .versions
            .iter()
            .filter(|v| v.served)
            .map(|v| v.name.clone())
            .collect()
    }))
}

impl GatewayApi {
    /// Served, or refused with the way to install it (pure); no finding without an HTTPRoute.
    pub fn assess(&self) -> Option<Finding> {
        if self.routes.is_empty() {
            return None;
        }
        let asked = format!(
            "{} asked for by <ui>.httpRoute ({})",
            crate::output::plural(self.routes.len(), "HTTPRoute"),
            self.routes.join(", ")
        );
        if let Some(why) = &self.not_checked {
            return Some(
                Finding::new(
                    "gateway",
                    Level::Warn,
                    format!("cannot tell whether {HTTPROUTE_CRD} is installed"),
                )
                .with_details(vec![why.clone(), asked]),
            );
        }
        let install = format!(
            "install the Gateway API's standard channel (your Gateway implementation ships it; or the release's: kubectl apply --server-side -f https://github.com/kubernetes-sigs/gateway-api/releases/download/{TESTED_RELEASE}/standard-install.yaml), or turn httpRoute.enabled off"
        );
        match &self.served {
            Some(versions) if versions.iter().any(|v| v == "v1") => Some(Finding::new(
                "gateway",
                Level::Ok,
                "Gateway API HTTPRoute served".to_string(),
            )),
            Some(versions) => Some(
                Finding::new(
                    "gateway",
                    Level::Fail,
                    format!(
                        "CRD {HTTPROUTE_CRD} serves {} but not v1, which automon writes",
                        versions.join(", ")
                    ),
                )
                .with_details(vec![asked, format!("upgrade it: {install}")]),
            ),
            None => Some(
                Finding::new(
                    "gateway",
                    Level::Fail,
                    format!("CRD {HTTPROUTE_CRD} is not installed"),
                )
                .with_details(vec![asked, install]),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the CRD's discovery says, against what is asked: served `v1`, an older release
    /// serving `v1beta1` only, none at all, not readable; and nothing asked, no finding.
    #[test]
    fn the_crd_must_serve_v1_when_a_route_is_asked_for() {
        let routes = vec!["automon/prometheus".to_string()];
        let found = |served: Option<&[&str]>, not_checked: Option<&str>| GatewayApi {
            routes: routes.clone(),
            served: served.map(|s| s.iter().map(|v| v.to_string()).collect()),
            not_checked: not_checked.map(str::to_string),
        };
        let ok = found(Some(&["v1", "v1beta1"]), None).assess().unwrap();
        assert_eq!(ok.level, Level::Ok);
        let old = found(Some(&["v1beta1"]), None).assess().unwrap();
        assert_eq!(old.level, Level::Fail);
        assert!(old.message.contains("serves v1beta1 but not v1"), "{old:?}");
        let absent = found(None, None).assess().unwrap();
        assert_eq!(absent.level, Level::Fail);
        assert_eq!(
            absent.message,
            "CRD httproutes.gateway.networking.k8s.io is not installed"
        );
        assert!(
            absent.details[0].contains("automon/prometheus"),
            "{absent:?}"
        );
        assert!(
            absent.details[1].contains("standard-install.yaml"),
            "{absent:?}"
        );
        assert!(absent.details[1].contains(TESTED_RELEASE), "{absent:?}");
        let unreadable = found(
            None,
            Some("may not get customresourcedefinitions cluster-wide"),
        )
        .assess()
        .unwrap();
        assert_eq!(unreadable.level, Level::Warn);
        let none = GatewayApi::default();
        assert!(none.assess().is_none());
    }

    #[test]
    fn only_httproutes_are_wanted() {
        let config = crate::config::Config::default()
            .with_set("grafana.httpRoute.parentRefs=[{name: gw}]")
            .and_then(|c| c.with_set("grafana.httpRoute.enabled=true"))
            .and_then(|c| c.with_set("prometheus.ingress.enabled=true"))
            .unwrap();
        let objects = crate::render::render(&config).objects;
        assert_eq!(wanted(&objects), ["automon/grafana"]);
        assert!(wanted(&crate::render::render(&Default::default()).objects).is_empty());
    }
}
