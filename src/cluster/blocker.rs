//! What holds a namespace in `Terminating`, in the namespace controller's own words (the
//! namespace's status conditions) and, when discovery is what fails, the unavailable
//! APIServices behind it. A namespace cannot finish deleting while the API server cannot list
//! every group: one aggregated API without a backend (prometheus-adapter's
//! `v1beta1.metrics.k8s.io`, typically) holds every namespace deletion in the cluster.

use k8s_openapi::{
    api::core::v1::Namespace, kube_aggregator::pkg::apis::apiregistration::v1::APIService,
};
use kube::{
    api::{Api, ListParams},
    runtime::watcher,
};

use crate::{
    cluster::Cluster,
    model::{Object, resources},
};

/// An aggregated API the API server cannot reach: `v1beta1.metrics.k8s.io`, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    pub name: String,
    /// `service monitoring/prometheus-adapter`
    pub backend: String,
    /// The Available condition's reason and message.
    pub why: String,
}

/// The APIServices whose Available condition is not True (pure).
pub fn unavailable(services: &[APIService]) -> Vec<Unavailable> {
    services
        .iter()
        .filter_map(|s| {
            let available = s
                .status
                .as_ref()
                .and_then(|st| st.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == "Available"))?;
            if available.status == "True" {
                return None;
            }
            let backend = s
                .spec
                .as_ref()
                .and_then(|sp| sp.service.as_ref())
                .map(|r| {
                    format!(
                        "service {}/{}",
                        r.namespace.as_deref().unwrap_or_default(),
                        r.name.as_deref().unwrap_or_default()
                    )
                })
                .unwrap_or_else(|| "the API server itself".to_string());
            let why = [available.reason.as_deref(), available.message.as_deref()]
                .into_iter()
                .flatten()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(": ");
            Some(Unavailable {
                name: s.metadata.name.clone().unwrap_or_default(),
                backend,
                why,
            })
        })
        .collect()
}

/// The fix for an unavailable APIService.
pub fn fix(u: &Unavailable) -> String {
    format!(
        "bring back {} (the API server reaches {} through it), or, if nothing serves that API any more: kubectl delete apiservice {}",
        u.backend, u.name, u.name
    )
}

/// Conditions of a terminating namespace that say what holds it.
const BLOCKING: &[&str] = &[
    "NamespaceDeletionDiscoveryFailure",
    "NamespaceDeletionGroupVersionParsingFailure",
    "NamespaceDeletionContentFailure",
    "NamespaceContentRemaining",
    "NamespaceFinalizersRemaining",
];

/// Why `namespace` is still terminating, one line per blocker, with the fix where there is
/// one (pure). Empty when it is not terminating or says nothing.
pub fn namespace_blockers(namespace: &Namespace, services: &[APIService]) -> Vec<String> {
    let status = namespace.status.as_ref();
    if status.and_then(|s| s.phase.as_deref()) != Some("Terminating") {
        return Vec::new();
    }
    let mut out = Vec::new();
    for c in status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| c.status == "True" && BLOCKING.contains(&c.type_.as_str()))
    {
        out.push(format!(
            "{}: {}",
            c.type_,
            c.message.as_deref().unwrap_or_default()
        ));
        if c.type_ == "NamespaceDeletionDiscoveryFailure" {
            out.extend(unavailable(services).iter().map(|u| {
                format!(
                    "apiservice {} is unavailable ({}); fix: {}",
                    u.name,
                    u.why,
                    fix(u)
                )
            }));
        }
    }
    out
}

/// Whether a watched Namespace reports that the API server's discovery holds its deletion:
/// it will not finish by waiting.
pub fn discovery_fails(o: &Object) -> bool {
    o.data["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "NamespaceDeletionDiscoveryFailure" && c["status"] == "True")
}

/// Waits until the terminating `namespace` is gone (enable, right after a disable). Stops
/// early when discovery holds it; either way, what holds it is named.
pub async fn wait_gone(
    cluster: &Cluster,
    namespace: &str,
    deadline: std::time::Instant,
) -> anyhow::Result<()> {
    let api = resources::by_group_kind("Namespace")
        .expect("a known type")
        .api(&cluster.client, None);
    let selection = watcher::Config::default().fields(&format!("metadata.name={namespace}"));
    let sources = vec![crate::cluster::watch::Source { api, selection }];
    let waited = crate::cluster::watch::until(cluster, sources, deadline, |seen| {
        seen[0].is_empty() || seen[0].iter().any(discovery_fails)
    })
    .await?;
    if waited.seen[0].is_empty() {
        return Ok(());
    }
    let why = explain(cluster, namespace).await;
    anyhow::bail!(
        "namespace {namespace} is still being deleted (an earlier disable?), and nothing can be created in it until it is gone{}",
        if why.is_empty() {
            "; see kubectl get namespace {namespace} -o yaml".replace("{namespace}", namespace)
        } else {
            format!(
                ": the namespace controller says\n  {}\n(it finishes by itself once that is fixed; then run enable again)",
                why.join("\n  ")
            )
        }
    );
}

/// Reads `namespace` and, when discovery fails, the APIServices; what holds it. Best effort:
/// what cannot be read is left out.
pub async fn explain(cluster: &Cluster, namespace: &str) -> Vec<String> {
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    let Ok(Some(ns)) = namespaces.get_opt(namespace).await else {
        return Vec::new();
    };
    let services: Api<APIService> = Api::all(cluster.client.clone());
    let services = services
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    namespace_blockers(&ns, &services)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn adapter(available: &str) -> APIService {
        serde_json::from_value(json!({
            "metadata": {"name": "v1beta1.metrics.k8s.io"},
            "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100,
                     "versionPriority": 100,
                     "service": {"namespace": "monitoring", "name": "prometheus-adapter"}},
            "status": {"conditions": [{"type": "Available", "status": available,
                "reason": "ServiceNotFound",
                "message": "service/prometheus-adapter in \"monitoring\" is not present"}]}
        }))
        .unwrap()
    }

    #[test]
    fn a_discovery_failure_names_the_apiservice_and_the_fix() {
        let ns: Namespace = serde_json::from_value(json!({
            "metadata": {"name": "automon"},
            "status": {"phase": "Terminating", "conditions": [
                {"type": "NamespaceDeletionDiscoveryFailure", "status": "True",
                 "message": "Discovery failed for some groups, 1 failing: metrics.k8s.io/v1beta1"},
                {"type": "NamespaceContentRemaining", "status": "False", "message": ""}
            ]}
        }))
        .unwrap();
        let lines = namespace_blockers(
            &ns,
            &[adapter("False"), {
                let mut fine = adapter("True");
                fine.metadata.name = Some("v1.fine.example.com".into());
                fine
            }],
        );
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(lines[0].starts_with("NamespaceDeletionDiscoveryFailure: Discovery failed"));
        assert_eq!(
            lines[1],
            "apiservice v1beta1.metrics.k8s.io is unavailable (ServiceNotFound: service/prometheus-adapter in \"monitoring\" is not present); fix: bring back service monitoring/prometheus-adapter (the API server reaches v1beta1.metrics.k8s.io through it), or, if nothing serves that API any more: kubectl delete apiservice v1beta1.metrics.k8s.io"
        );
    }

    #[test]
    fn a_namespace_that_is_not_terminating_has_no_blocker() {
        let ns: Namespace = serde_json::from_value(
            json!({"metadata": {"name": "a"}, "status": {"phase": "Active"}}),
        )
        .unwrap();
        assert!(namespace_blockers(&ns, &[adapter("False")]).is_empty());
    }

    #[test]
    fn a_finalizer_is_named_as_the_controller_names_it() {
        let ns: Namespace = serde_json::from_value(json!({
            "metadata": {"name": "a"},
            "status": {"phase": "Terminating", "conditions": [
                {"type": "NamespaceFinalizersRemaining", "status": "True",
                 "message": "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"}
            ]}
        }))
        .unwrap();
        assert_eq!(
            namespace_blockers(&ns, &[]),
            [
                "NamespaceFinalizersRemaining: Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
            ]
        );
    }
}
