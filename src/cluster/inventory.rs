//! The installed stack as the cluster knows it: the ApplySet parent (ConfigMap `automon` in the
//! stack's namespace) and every member it claims, one list call per group-kind, selected by the
//! `applyset.kubernetes.io/part-of` label. Gather only: what to do with it is the caller's.

use std::collections::BTreeSet;

use futures::{StreamExt as _, TryStreamExt as _};
use kube::api::{Api, ListParams, ObjectMeta};

use k8s_openapi::api::core::v1::ConfigMap;

use crate::{
    cluster::{Cluster, error::ClusterError},
    config::{self, Config, Values},
    model::{
        Object, kind,
        names::{
            APPLYSET_GROUP_KINDS, APPLYSET_ID_LABEL, APPLYSET_PART_OF_LABEL, APPLYSET_TOOLING,
            CONFIG_KEY, MANAGED_BY, PARENT_NAME, VERSION_LABEL,
        },
        resources::{self, Known, Scope},
    },
};

/// How many member lists are in flight at once.
const LISTS_IN_FLIGHT: usize = 16;

/// The ApplySet parent and its members, as read from the cluster.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub parent: Object,
    pub members: Vec<Object>,
}

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// No parent ConfigMap: nothing of automon is installed in this namespace.
    #[error(
        "automon is not installed in namespace {namespace:?} (there is no ConfigMap {PARENT_NAME:?} there)"
    )]
    NotInstalled { namespace: String },
    #[error(
        "ConfigMap {namespace}/{PARENT_NAME} exists but is not an automon ApplySet parent (it has no {APPLYSET_ID_LABEL} label); \
         it was not created by kubectl-automon, so automon will not touch it"
    )]
    NotAParent { namespace: String },
    #[error(
        "the ApplySet parent {namespace}/{PARENT_NAME} lists kinds automon does not know ({}); \
         delete their objects by hand (label {APPLYSET_PART_OF_LABEL}={id})",
        kinds.join(", ")
    )]
    UnknownKinds {
        namespace: String,
        id: String,
        kinds: Vec<String>,
    },
    /// Kept as a source (not transparent) so that the exit code of the ClusterError is found.
    #[error("reading the inventory")]
    Cluster(#[from] ClusterError),
}

/// The `applyset.kubernetes.io/id` label of a parent: what makes a ConfigMap automon's parent.
pub fn applyset_id(parent: &ObjectMeta) -> Option<&str> {
    parent
        .labels
        .as_ref()?
        .get(APPLYSET_ID_LABEL)
        .map(String::as_str)
}

/// The version of automon that last applied the stack, as its parent records it: the ApplySet
/// tooling annotation (`kubectl-automon/v0.2.0`), else the `app.kubernetes.io/version` label
/// (`0.2.0`, written `v0.2.0` here). `None` when neither says (tooling of another name is not
/// automon's version).
pub fn installed_version(parent: &ObjectMeta) -> Option<String> {
    let tooling = parent
        .annotations
        .as_ref()
        .and_then(|a| a.get(APPLYSET_TOOLING))
        .and_then(|t| t.trim().strip_prefix(MANAGED_BY)?.strip_prefix('/'))
        .map(str::trim);
    let label = || {
        let v = parent.labels.as_ref()?.get(VERSION_LABEL)?.trim();
        Some(format!("v{}", v.trim_start_matches('v')))
    };
    tooling
        .filter(|v| !v.is_empty())
        .map(String::from)
        .or_else(label)
        .filter(|v| v != "v")
}

/// The group-kinds a parent's `contains-group-kinds` annotation lists, resolved to known types;
/// the ones automon does not know come back apart.
pub fn member_types(parent: &Object) -> (Vec<&'static Known>, Vec<String>) {
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for gk in group_kinds(&parent.metadata) {
        match resources::by_group_kind(&gk) {
            Some(k) if !known.contains(&k) => known.push(k),
            Some(_) => {}
            None => unknown.push(gk),
        }
    }
    (known, unknown)
}

/// The group-kinds a parent's `contains-group-kinds` annotation lists (`Kind.group`, `Kind` for
/// the core group), sorted, blanks dropped: the one reading of that annotation.
pub fn group_kinds(meta: &ObjectMeta) -> BTreeSet<String> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(APPLYSET_GROUP_KINDS))
        .map(|listed| {
            listed
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The parent listing `extra` kinds besides its own, sorted and comma-separated as kubectl
/// writes the annotation.
pub fn with_kinds(parent: &Object, extra: impl IntoIterator<Item = String>) -> Object {
    let mut all = group_kinds(&parent.metadata);
    all.extend(extra);
    listing(parent, all)
}

/// The parent listing exactly `kinds`.
pub fn listing(parent: &Object, kinds: BTreeSet<String>) -> Object {
    let mut listed = parent.clone();
    listed
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(
            APPLYSET_GROUP_KINDS.into(),
            kinds.into_iter().collect::<Vec<_>>().join(","),
        );
    listed
}

/// The ApplySet parent ConfigMap in `namespace` (it also holds the stored configuration), or
/// `None` when there is none or the ConfigMap there is not automon's parent.
pub async fn parent_configmap(
    client: &kube::Client,
    namespace: &str,
) -> Result<Option<k8s_openapi::api::core::v1::ConfigMap>, kube::Error> {
    let configmaps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), namespace);
    Ok(configmaps
        .get_opt(PARENT_NAME)
        .await?
        .filter(|p| applyset_id(&p.metadata).is_some()))
}

/// `Ok` when the stack is installed in the cluster's namespace, else
/// [`super::error::NotInstalled`] (exit 9), for a command that only talks to the stack.
pub async fn ensure_installed(cluster: &Cluster) -> anyhow::Result<()> {
    let namespace = &cluster.namespace;
    match parent_configmap(&cluster.client, namespace).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(super::error::NotInstalled {
            namespace: namespace.clone(),
        }
        .into()),
        Err(e) => Err(cluster.target.classify(e).into()),
    }
}

/// How [`read`] reads the members that are CRDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crds {
    /// Schemas and all: what reads their spec (`disable`, for the custom resources of each).
    Whole,
    /// Metadata only: name, labels, resourceVersion and managedFields are all a plan needs of
    /// them, and ten CRDs are 5 MB of schemas that every run would otherwise read and parse.
    /// [`whole_crds`] reads them whole where their content is compared.
    Metadata,
}

/// Reads the parent in the cluster's namespace and lists every member, CRDs as `crds` says.
pub async fn read(cluster: &Cluster, crds: Crds) -> Result<Inventory, InventoryError> {
    let namespace = cluster.namespace.clone();
    let classify = |e| InventoryError::Cluster(cluster.target.classify(e));
    let configmaps = resources::by_group_kind("ConfigMap")
        .expect("ConfigMap is a known type")
        .api(&cluster.client, Some(&namespace));
    let Some(parent) = configmaps.get_opt(PARENT_NAME).await.map_err(classify)? else {
        return Err(InventoryError::NotInstalled { namespace });
    };
    let Some(id) = applyset_id(&parent.metadata).map(str::to_string) else {
        return Err(InventoryError::NotAParent { namespace });
    };
    let (types, unknown) = member_types(&parent);
    if !unknown.is_empty() {
        return Err(InventoryError::UnknownKinds {
            namespace,
            id,
            kinds: unknown,
        });
    }
    let selector = ListParams::default().labels(&format!("{APPLYSET_PART_OF_LABEL}={id}"));
    // One list per kind, all at once: the inventory is read before every enable and diff.
    let lists = futures::stream::iter(types)
        .map(|known| {
            let selector = &selector;
            let namespace = &namespace;
            async move {
                let api: Api<Object> = match known.scope {
                    Scope::Namespaced => known.api(&cluster.client, Some(namespace)),
                    Scope::Cluster => known.api(&cluster.client, None),
                };
                let listed = if crds == Crds::Metadata && known.kind == "CustomResourceDefinition" {
                    api.list_metadata(selector).await.map(|l| {
                        (l.items.into_iter())
                            .map(|m| known.with_metadata(m.metadata))
                            .collect()
                    })
                } else {
                    crate::cluster::list_paged(&api, selector).await
                };
                match listed {
                    Ok(items) => Ok(Some((known, items))),
                    // The type is gone from the server (its CRD deleted): no members are left.
                    Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
                    Err(e) => Err(e),
                }
            }
        })
        .buffered(LISTS_IN_FLIGHT)
        .try_collect::<Vec<_>>()
        .await
        .map_err(classify)?;
    let members = lists
        .into_iter()
        .flatten()
        .flat_map(|(known, items)| items.into_iter().map(move |o| typed(known, o)))
        .collect();
    Ok(Inventory { parent, members })
}

/// The member CRDs of `inventory` whole, schemas and all, in one list by the ApplySet's label:
/// for what compares their content after [`read`] took their metadata only. None when no CRD
/// is a member.
pub async fn whole_crds(
    cluster: &Cluster,
    inventory: &Inventory,
) -> Result<Vec<Object>, ClusterError> {
    let crd = "CustomResourceDefinition";
    let id = applyset_id(&inventory.parent.metadata);
    let Some(id) = id.filter(|_| inventory.members.iter().any(|m| kind(m) == crd)) else {
        return Ok(Vec::new());
    };
    let known = resources::by_group_kind("CustomResourceDefinition.apiextensions.k8s.io")
        .expect("CustomResourceDefinition is a known type");
    let selector = ListParams::default().labels(&format!("{APPLYSET_PART_OF_LABEL}={id}"));
    let items = crate::cluster::list_paged(&known.api(&cluster.client, None), &selector)
        .await
        .map_err(|e| cluster.target.classify(e))?;
    Ok(items.into_iter().map(|o| typed(known, o)).collect())
}

/// Lists leave apiVersion/kind off their items' types; put them back.
fn typed(known: &Known, mut o: Object) -> Object {
    if o.types.is_none() {
        o.types = Some(kube::api::TypeMeta {
            api_version: known.api_version.to_string(),
            kind: known.kind.to_string(),
        });
    }
    o
}

/// The kinds of member `enable` never prunes (see [`stale`]), as the parent lists them.
const NEVER_PRUNED: &[(&str, &str)] = &[
    (
        "CustomResourceDefinition",
        "CustomResourceDefinition.apiextensions.k8s.io",
    ),
    ("PersistentVolumeClaim", "PersistentVolumeClaim"),
];

/// The parent as `enable` leaves it: CRDs that an earlier `enable --crds-from` made members, and
/// volume claims a configuration no longer renders, stay members (they are never pruned), so
/// their kind stays listed for `disable` to find them.
pub fn final_parent(parent: &Object, members: &[Object]) -> Object {
    let kept = NEVER_PRUNED
        .iter()
        .filter(|(kind, _)| members.iter().any(|m| crate::model::kind(m) == *kind))
        .map(|(_, listed)| listed.to_string());
    with_kinds(parent, kept)
}

/// The members `enable` prunes because `rendered` no longer has them, in the order to delete
/// them (reverse phase). Three kinds of member are never pruned: the Grafana admin Secret, which
/// render never produces (`enable` generates it once); CRDs, whose deletion takes every custom
/// resource of their kind with it; and PersistentVolumeClaims, whose deletion takes the data
/// with it (Grafana's, when `grafana.persistence` is turned off): `disable --delete-data`
/// decides about those, or the user with kubectl ([`kept_claims`] says which).
pub fn stale<'a>(members: &'a [Object], rendered: &[Object]) -> Vec<&'a Object> {
    let keep: std::collections::BTreeSet<_> =
        rendered.iter().map(crate::cluster::apply::key).collect();
    let mut stale: Vec<&Object> = members
        .iter()
        .filter(|m| {
            let kind = crate::model::kind(m);
            let admin = kind == "Secret"
                && m.metadata.name.as_deref() == Some(crate::render::grafana::ADMIN_SECRET);
            let kept = NEVER_PRUNED.iter().any(|(k, _)| *k == kind) || admin;
            !kept && !keep.contains(&crate::cluster::apply::key(m))
        })
        .collect();
    stale.sort_by_key(|o| std::cmp::Reverse(crate::render::phase(o)));
    stale
}

/// The volume claims among `members` that `rendered` no longer has: kept with their data (see
/// [`stale`]), and worth a warning that says how to delete them.
pub fn kept_claims<'a>(members: &'a [Object], rendered: &[Object]) -> Vec<&'a Object> {
    let keep: std::collections::BTreeSet<_> =
        rendered.iter().map(crate::cluster::apply::key).collect();
    members
        .iter()
        .filter(|m| crate::model::kind(m) == "PersistentVolumeClaim")
        .filter(|m| !keep.contains(&crate::cluster::apply::key(m)))
        .collect()
}

/// The configuration `enable` stored in the parent: the running binary's defaults with the
/// stored values over them.
pub fn stored_config(parent: &ConfigMap) -> Result<Config, config::ConfigError> {
    let (values, _) = stored_values(parent)?;
    Config::from_values(values, &stored_origin(parent))
}

/// The values `enable` stored in the parent, read by the version that wrote them
/// ([`installed_version`]): from a v0.1.0 parent, what was not v0.1.0's default, and what was recognised.
pub fn stored_values(
    parent: &ConfigMap,
) -> Result<(Values, Option<config::values::Recognised>), config::ConfigError> {
    let text = parent
        .data
        .as_ref()
        .and_then(|d| d.get(CONFIG_KEY))
        .map(String::as_str)
        .unwrap_or_default();
    let version = installed_version(&parent.metadata);
    Values::stored(text, version.as_deref(), &stored_origin(parent))
}

/// Where the stored values are, as errors name it: `ConfigMap <ns>/automon key config.yaml`.
pub fn stored_origin(parent: &ConfigMap) -> String {
    format!(
        "ConfigMap {}/{PARENT_NAME} key {CONFIG_KEY}",
        parent.metadata.namespace.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model;
    use crate::{config::Config, render};

    fn rendered_parent() -> Object {
        render::render(&Config::default())
            .objects
            .into_iter()
            .find(|o| {
                model::kind(o) == "ConfigMap" && o.metadata.name.as_deref() == Some(PARENT_NAME)
            })
            .expect("render has a parent")
    }

    #[test]
    fn the_rendered_parent_lists_only_known_types() {
        let parent = rendered_parent();
        let (known, unknown) = member_types(&parent);
        assert!(unknown.is_empty(), "{unknown:?}");
        let kinds: Vec<_> = known.iter().map(|k| k.kind).collect();
        for k in ["Namespace", "Deployment", "Prometheus", "ClusterRole"] {
            assert!(kinds.contains(&k), "{kinds:?}");
        }
        assert!(applyset_id(&parent.metadata).is_some_and(|id| id.starts_with("applyset-")));
    }

    #[test]
    fn unknown_and_repeated_group_kinds_are_told_apart() {
        let mut parent = rendered_parent();
        parent.metadata.annotations = Some(
            [(
                APPLYSET_GROUP_KINDS.to_string(),
                "ConfigMap, Widget.example.com,ConfigMap,,Deployment.apps".to_string(),
            )]
            .into(),
        );
        let (known, unknown) = member_types(&parent);
        assert_eq!(
            known.iter().map(|k| k.kind).collect::<Vec<_>>(),
            ["ConfigMap", "Deployment"]
        );
        assert_eq!(unknown, ["Widget.example.com"]);
    }

    #[test]
    fn a_parent_without_the_annotation_has_no_members() {
        let mut parent = rendered_parent();
        parent.metadata.annotations = None;
        assert_eq!(member_types(&parent), (vec![], vec![]));
    }

    #[test]
    fn the_installed_version_is_the_tooling_then_the_label() {
        let parent = rendered_parent();
        assert_eq!(
            installed_version(&parent.metadata).as_deref(),
            Some(crate::versions::PLUGIN_VERSION)
        );
        let meta = |tooling: Option<&str>, label: Option<&str>| ObjectMeta {
            annotations: tooling.map(|t| [(APPLYSET_TOOLING.to_string(), t.to_string())].into()),
            labels: label.map(|l| [(VERSION_LABEL.to_string(), l.to_string())].into()),
            ..Default::default()
        };
        let cases = [
            (
                Some("kubectl-automon/v0.1.0"),
                Some("0.2.0"),
                Some("v0.1.0"),
            ),
            (None, Some("0.1.0"), Some("v0.1.0")),
            (
                Some("kubectl/v1.36.3"),
                Some("0.10.0-rc.1"),
                Some("v0.10.0-rc.1"),
            ),
            (Some("kubectl/v1.36.3"), None, None),
            (Some("kubectl-automon/"), None, None),
            (Some("kubectl-automonx/v1.0.0"), None, None),
            (None, Some(""), None),
            (None, None, None),
        ];
        for (tooling, label, want) in cases {
            assert_eq!(
                installed_version(&meta(tooling, label)).as_deref(),
                want,
                "{tooling:?} {label:?}"
            );
        }
    }
}
