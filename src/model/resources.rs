//! The resource types automon renders and manages, known without discovery: apiVersion and kind
//! to plural and scope. One table, so that applying, pruning, diffing and deleting never pay
//! discovery round trips for types we already know.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind},
};

use crate::model::{Object, api_version, kind};

/// Whether objects of a type live in a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Namespaced,
    Cluster,
}

/// One known type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub scope: Scope,
}

use Scope::{Cluster, Namespaced};

const fn known(
    api_version: &'static str,
    kind: &'static str,
    plural: &'static str,
    scope: Scope,
) -> Known {
    Known {
        api_version,
        kind,
        plural,
        scope,
    }
}

/// Every type the stack renders, the CRDs it installs, and the custom resources the operator
/// serves (for inventories and for `disable`'s "is any custom resource left?" check).
pub const KNOWN: &[Known] = &[
    known("v1", "Namespace", "namespaces", Cluster),
    known("v1", "ServiceAccount", "serviceaccounts", Namespaced),
    known("v1", "Secret", "secrets", Namespaced),
    known("v1", "ConfigMap", "configmaps", Namespaced),
    known("v1", "Service", "services", Namespaced),
    known(
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        Namespaced,
    ),
    known("v1", "Pod", "pods", Namespaced),
    known("v1", "Node", "nodes", Cluster),
    known("apps/v1", "Deployment", "deployments", Namespaced),
    known("apps/v1", "DaemonSet", "daemonsets", Namespaced),
    known("apps/v1", "StatefulSet", "statefulsets", Namespaced),
    known(
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        "clusterroles",
        Cluster,
    ),
    known(
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        Cluster,
    ),
    known("rbac.authorization.k8s.io/v1", "Role", "roles", Namespaced),
    known(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        "rolebindings",
        Namespaced,
    ),
    known(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        "networkpolicies",
        Namespaced,
    ),
    known("networking.k8s.io/v1", "Ingress", "ingresses", Namespaced),
    known(
        "gateway.networking.k8s.io/v1",
        "HTTPRoute",
        "httproutes",
        Namespaced,
    ),
    known(
        "policy/v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        Namespaced,
    ),
    known(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        Cluster,
    ),
    known(
        "monitoring.coreos.com/v1",
        "Prometheus",
        "prometheuses",
        Namespaced,
    ),
    known(
        "monitoring.coreos.com/v1",
        "Alertmanager",
        "alertmanagers",
        Namespaced,
    ),
    known(
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
        "servicemonitors",
        Namespaced,
    ),
    known(
        "monitoring.coreos.com/v1",
        "PodMonitor",
        "podmonitors",
        Namespaced,
    ),
    known("monitoring.coreos.com/v1", "Probe", "probes", Namespaced),
    known(
        "monitoring.coreos.com/v1",
        "PrometheusRule",
        "prometheusrules",
        Namespaced,
    ),
    known(
        "monitoring.coreos.com/v1",
        "ThanosRuler",
        "thanosrulers",
        Namespaced,
    ),
    known(
        "monitoring.coreos.com/v1alpha1",
        "AlertmanagerConfig",
        "alertmanagerconfigs",
        Namespaced,
    ),
    known(
        "monitoring.coreos.com/v1alpha1",
        "PrometheusAgent",
        "prometheusagents",
        Namespaced,
    ),
    known(
        "monitoring.coreos.com/v1alpha1",
        "ScrapeConfig",
        "scrapeconfigs",
        Namespaced,
    ),
];

impl Known {
    pub fn group(&self) -> &'static str {
        self.api_version.rsplit_once('/').map_or("", |(g, _)| g)
    }

    pub fn api_resource(&self) -> ApiResource {
        let (group, version) = self
            .api_version
            .rsplit_once('/')
            .unwrap_or(("", self.api_version));
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, self.kind),
            self.plural,
        )
    }

    /// `deployments.apps`, `configmaps`: how kubectl and RBAC name the resource.
    pub fn qualified_plural(&self) -> String {
        match self.group() {
            "" => self.plural.to_string(),
            g => format!("{}.{g}", self.plural),
        }
    }

    /// An object of this type known by its metadata alone (an item of a `list_metadata`).
    pub fn with_metadata(&self, metadata: ObjectMeta) -> Object {
        crate::model::metadata_only(self.api_version, self.kind, metadata)
    }

    /// An API for this type, in `namespace` when it is namespaced (all namespaces when `None`).
    pub fn api(&self, client: &Client, namespace: Option<&str>) -> Api<DynamicObject> {
        let ar = self.api_resource();
        match (self.scope, namespace) {
            (Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
            _ => Api::all_with(client.clone(), &ar),
        }
    }
}

/// The known type of a `Kind.group` (as ApplySet annotations write it) or `Kind` (core).
pub fn by_group_kind(group_kind: &str) -> Option<&'static Known> {
    let (kind, group) = group_kind.split_once('.').unwrap_or((group_kind, ""));
    KNOWN.iter().find(|k| k.kind == kind && k.group() == group)
}

/// The known type of an object.
pub fn of(o: &Object) -> Option<&'static Known> {
    let (av, k) = (api_version(o), kind(o));
    KNOWN.iter().find(|x| x.api_version == av && x.kind == k)
}

/// An API for exactly this object's type and namespace.
pub fn api_for(client: &Client, o: &Object) -> Option<Api<DynamicObject>> {
    of(o).map(|k| k.api(client, o.metadata.namespace.as_deref()))
}

/// `deployment.apps/grafana`, the way kubectl names an object.
pub fn display_name(o: &Object) -> String {
    let k = kind(o).to_lowercase();
    let name = o.metadata.name.as_deref().unwrap_or("");
    match of(o).map(Known::group).filter(|g| !g.is_empty()) {
        Some(g) => format!("{k}.{g}/{name}"),
        None => format!("{k}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config::Config, render};

    #[test]
    fn every_rendered_object_is_a_known_type() {
        for o in render::render(&Config::default()).objects {
            assert!(
                of(&o).is_some(),
                "{} is not in resources::KNOWN",
                display_name(&o)
            );
        }
    }

    #[test]
    fn group_kinds_resolve() {
        assert_eq!(
            by_group_kind("Deployment.apps").unwrap().plural,
            "deployments"
        );
        assert_eq!(by_group_kind("ConfigMap").unwrap().plural, "configmaps");
        assert_eq!(
            by_group_kind("Prometheus.monitoring.coreos.com")
                .unwrap()
                .plural,
            "prometheuses"
        );
        assert!(by_group_kind("Widget.example.com").is_none());
    }

    #[test]
    fn names_read_like_kubectl() {
        let objects = render::render(&Config::default()).objects;
        let names: Vec<String> = objects.iter().map(display_name).collect();
        assert!(
            names.contains(&"namespace/automon".to_string()),
            "{names:?}"
        );
        assert!(
            names.contains(&"daemonset.apps/node-exporter".to_string()),
            "{names:?}"
        );
        assert!(
            names.contains(&"prometheus.monitoring.coreos.com/automon".to_string()),
            "{names:?}"
        );
    }
}
