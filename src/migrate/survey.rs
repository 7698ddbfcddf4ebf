//! Reading what a migration starts from (I/O): the release's records, the live copy of each
//! object of its manifest, the CRDs and volumes that stay, and the user's objects its
//! Prometheus selects. What to make of them is decided by the pure modules beside this one.

use std::collections::{BTreeMap, BTreeSet};

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api,
    api::{ApiResource, GroupVersionKind, ListParams},
    discovery::Scope,
};

use super::{
    manifest::{self, Fate, Live},
    mapping::{self, Destination, Mapping},
    release::{self, Release, ReleaseError},
    yours::{self, SELECTED_KINDS, Yours},
};
use crate::{
    cluster::{Cluster, error::ClusterError},
    model::{self, Object, resources},
};

/// How many reads are in flight at once.
const IN_FLIGHT: usize = 16;

/// The release's records in its namespace, latest first, and the other releases recorded there.
pub async fn records(
    cluster: &Cluster,
    name: &str,
    namespace: &str,
) -> Result<(Vec<(String, u32)>, Vec<String>), ClusterError> {
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), namespace);
    let listed = api
        .list_metadata(&ListParams::default().labels("owner=helm"))
        .await
        .map_err(|e| cluster.target.classify(e))?;
    let secrets: Vec<(String, BTreeMap<String, String>)> = listed
        .items
        .into_iter()
        .map(|s| {
            (
                s.metadata.name.unwrap_or_default(),
                s.metadata.labels.unwrap_or_default(),
            )
        })
        .collect();
    let others = release::release_names(&secrets)
        .into_iter()
        .filter(|n| n != name)
        .collect();
    Ok((release::records_of(name, &secrets), others))
}

/// One record, decoded.
pub async fn read_record(
    cluster: &Cluster,
    namespace: &str,
    record: &str,
) -> anyhow::Result<Release> {
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), namespace);
    let secret = api
        .get(record)
        .await
        .map_err(|e| cluster.target.classify(e))?;
    let unreadable = |reason: String| ReleaseError::Unreadable {
        namespace: namespace.to_string(),
        secret: record.to_string(),
        reason,
    };
    if secret.type_.as_deref() != Some(release::RECORD_TYPE) {
        return Err(unreadable(format!(
            "its type is {:?}, not {}",
            secret.type_.unwrap_or_default(),
            release::RECORD_TYPE
        ))
        .into());
    }
    let data = secret
        .data
        .as_ref()
        .and_then(|d| d.get("release"))
        .ok_or_else(|| unreadable("it has no release key".into()))?;
    Ok(release::decode(&data.0).map_err(unreadable)?)
}

/// The latest revision of the release, which must be kube-prometheus-stack's, and its records.
pub async fn read_release(
    cluster: &Cluster,
    name: &str,
    namespace: &str,
) -> anyhow::Result<(Release, Vec<(String, u32)>)> {
    let (records, others) = records(cluster, name, namespace).await?;
    let Some((latest, _)) = records.first() else {
        return Err(ReleaseError::NotFound {
            name: name.into(),
            namespace: namespace.into(),
            others,
        }
        .into());
    };
    let release = release::of_this_chart(read_record(cluster, namespace, latest).await?)?;
    Ok((release, records))
}

/// One object of the manifest with its type as the server serves it, where Helm put it, and
/// what the removal does with it.
#[derive(Debug, Clone)]
pub struct Planned {
    pub object: Object,
    /// `None`: the type is no longer served (its CRD is gone), so the object is too.
    pub resource: Option<ApiResource>,
    pub fate: Fate,
}

impl Planned {
    pub fn kind(&self) -> &str {
        model::kind(&self.object)
    }

    pub fn namespace(&self) -> Option<&str> {
        self.object.metadata.namespace.as_deref()
    }

    pub fn name(&self) -> &str {
        self.object.metadata.name.as_deref().unwrap_or_default()
    }

    /// `deployment.apps/kps-operator`, as kubectl names it.
    pub fn display(&self) -> String {
        let kind = self.kind().to_lowercase();
        match model::api_version(&self.object).rsplit_once('/') {
            Some((group, _)) => format!("{kind}.{group}/{}", self.name()),
            None => format!("{kind}/{}", self.name()),
        }
    }

    pub fn api(&self, cluster: &Cluster) -> Option<Api<Object>> {
        let ar = self.resource.as_ref()?;
        Some(match self.namespace() {
            Some(ns) => Api::namespaced_with(cluster.client.clone(), ns, ar),
            None => Api::all_with(cluster.client.clone(), ar),
        })
    }
}

/// An object's type as the server serves it and whether it is namespaced; `None` when it is
/// not served. Known types need no discovery.
async fn served(
    cluster: &Cluster,
    object: &Object,
) -> Result<Option<(ApiResource, bool)>, ClusterError> {
    if let Some(known) = resources::of(object) {
        return Ok(Some((
            known.api_resource(),
            known.scope == resources::Scope::Namespaced,
        )));
    }
    let (group, version) = model::api_version(object)
        .rsplit_once('/')
        .unwrap_or(("", model::api_version(object)));
    let gvk = GroupVersionKind::gvk(group, version, model::kind(object));
    match kube::discovery::pinned_kind(&cluster.client, &gvk).await {
        Ok((ar, caps)) => Ok(Some((ar, caps.scope == Scope::Namespaced))),
        Err(kube::Error::Discovery(_)) => Ok(None),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(cluster.target.classify(e)),
    }
}

/// Every object of the release's manifest, in Helm's uninstall order, with what the removal
/// does with it (its live copy read for Helm's ownership marks).
pub async fn plan_removal(cluster: &Cluster, release: &Release) -> anyhow::Result<Vec<Planned>> {
    let rendered = manifest::objects(&release.manifest).map_err(|why| {
        anyhow::anyhow!(
            "the manifest of release {} revision {} cannot be read: {why}",
            release.name,
            release.revision
        )
    })?;
    let mut types: BTreeMap<(String, String), Option<(ApiResource, bool)>> = BTreeMap::new();
    for o in &rendered {
        let key = (
            model::api_version(o).to_string(),
            model::kind(o).to_string(),
        );
        if let std::collections::btree_map::Entry::Vacant(slot) = types.entry(key) {
            slot.insert(served(cluster, o).await?);
        }
    }
    let mut planned: Vec<Planned> = futures::stream::iter(rendered)
        .map(|mut object| {
            let found = types
                .get(&(
                    model::api_version(&object).to_string(),
                    model::kind(&object).to_string(),
                ))
                .cloned()
                .flatten();
            async move {
                // As Helm builds them: a namespaced object without one is in the release's.
                match &found {
                    Some((_, true)) if object.metadata.namespace.is_none() => {
                        object.metadata.namespace = Some(release.namespace.clone());
                    }
                    Some((_, false)) => object.metadata.namespace = None,
                    _ => {}
                }
                let resource = found.map(|(ar, _)| ar);
                let mut p = Planned {
                    object,
                    resource,
                    fate: Fate::Gone,
                };
                let live = match p.api(cluster) {
                    None => Live::Gone,
                    Some(api) => match api.get_metadata_opt(p.name()).await {
                        Ok(Some(m)) => Live::Present(Box::new(m.metadata)),
                        Ok(None) => Live::Gone,
                        Err(e) => Live::Unknown(cluster.target.classify(e).to_string()),
                    },
                };
                p.fate = manifest::fate(&p.object, &release.name, &release.namespace, &live);
                p
            }
        })
        .buffered(IN_FLIGHT)
        .collect()
        .await;
    planned.sort_by_key(|p| manifest::uninstall_rank(p.kind()));
    Ok(planned)
}

/// What `migrate --dry-run` reports.
pub struct Survey {
    pub release: Release,
    /// The release's records, latest first.
    pub records: Vec<(String, u32)>,
    pub mapping: Mapping,
    pub planned: Vec<Planned>,
    /// The prometheus-operator CRDs in the cluster: they stay.
    pub crds: Vec<String>,
    /// `namespace/name` of the release's volume claims: its Prometheus' and Alertmanager's
    /// data and the claims in its manifest. They stay.
    pub claims: Vec<String>,
    pub yours: Vec<Yours>,
}

impl Survey {
    /// The hooks `helm uninstall` would run (`pre-delete`, `post-delete`), which the removal
    /// does not.
    pub fn uninstall_hooks(&self) -> Vec<String> {
        self.release
            .hooks
            .iter()
            .filter(|h| h.runs_on_uninstall())
            .map(|h| {
                format!(
                    "{}/{} ({})",
                    h.kind.to_lowercase(),
                    h.name,
                    h.events.join(",")
                )
            })
            .collect()
    }
}

/// Reads the release `name` in `namespace` and everything the report says about it; `-n`
/// (`cluster.namespace`) is where automon goes.
pub async fn survey(cluster: &Cluster, name: &str, namespace: &str) -> anyhow::Result<Survey> {
    let (release, records) = read_release(cluster, name, namespace).await?;
    let mapping = mapping::map(
        &release.config,
        &release.chart_values,
        &Destination {
            release: &release.name,
            release_namespace: &release.namespace,
            automon_namespace: &cluster.namespace,
        },
    );
    let planned = plan_removal(cluster, &release).await?;
    let (crds, claims, yours) = futures::try_join!(
        crds(cluster),
        claims(cluster, &planned),
        selected(cluster, &planned)
    )?;
    Ok(Survey {
        release,
        records,
        mapping,
        planned,
        crds,
        claims,
        yours,
    })
}

/// The names of the prometheus-operator CRDs in the cluster.
async fn crds(cluster: &Cluster) -> anyhow::Result<Vec<String>> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
    let listed = api
        .list_metadata(&ListParams::default())
        .await
        .map_err(|e| cluster.target.classify(e))?;
    let suffix = format!(".{}", crate::cluster::crds::GROUP);
    Ok(listed
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .filter(|n| n.ends_with(&suffix))
        .collect())
}

/// The claims of the release's Prometheus and Alertmanager (their StatefulSets' volumes, never
/// in the manifest) and those in its manifest, as `namespace/name`.
async fn claims(cluster: &Cluster, planned: &[Planned]) -> anyhow::Result<Vec<String>> {
    let mut owners: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for p in planned {
        if let ("Prometheus" | "Alertmanager", Some(ns)) = (p.kind(), p.namespace()) {
            owners
                .entry(ns)
                .or_default()
                .push((p.kind().to_string(), p.name().to_string()));
        }
    }
    let mut out: BTreeSet<String> = planned
        .iter()
        .filter(|p| p.kind() == "PersistentVolumeClaim")
        .map(|p| format!("{}/{}", p.namespace().unwrap_or_default(), p.name()))
        .collect();
    for (ns, owners) in owners {
        let api: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
            Api::namespaced(cluster.client.clone(), ns);
        let names: Vec<String> = api
            .list_metadata(&ListParams::default())
            .await
            .map_err(|e| cluster.target.classify(e))?
            .items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect();
        out.extend(
            manifest::data_claims(&names, &owners)
                .into_iter()
                .map(|n| format!("{ns}/{n}")),
        );
    }
    Ok(out.into_iter().collect())
}

/// The user's objects the release's Prometheus selects (every kind it selects, every
/// namespace, metadata only; a kind not served has none).
async fn selected(cluster: &Cluster, planned: &[Planned]) -> anyhow::Result<Vec<Yours>> {
    let prometheuses: Vec<Object> = planned
        .iter()
        .filter(|p| p.kind() == "Prometheus")
        .map(|p| p.object.clone())
        .collect();
    if prometheuses.is_empty() {
        return Ok(Vec::new());
    }
    let release: BTreeSet<yours::Key> = planned
        .iter()
        .map(|p| {
            (
                p.kind().to_string(),
                p.namespace().unwrap_or_default().to_string(),
                p.name().to_string(),
            )
        })
        .collect();
    let lists: Vec<Vec<Object>> = futures::stream::iter(SELECTED_KINDS)
        .map(|(kind, _, _)| async move {
            let known = resources::KNOWN
                .iter()
                .find(|k| k.kind == *kind && k.group() == crate::cluster::crds::GROUP)
                .expect("a kind automon knows");
            crate::cluster::list_known_metadata(&cluster.client, known, None)
                .await
                .map_err(|e| cluster.target.classify(e))
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect()
        .await?;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(cluster.client.clone());
    let namespace_labels = namespaces
        .list_metadata(&ListParams::default())
        .await
        .map_err(|e| cluster.target.classify(e))?
        .items
        .into_iter()
        .filter_map(|n| Some((n.metadata.name?, n.metadata.labels.unwrap_or_default())))
        .collect();
    let listed: Vec<Object> = lists.into_iter().flatten().collect();
    Ok(yours::yours(
        &prometheuses,
        &listed,
        &namespace_labels,
        &release,
    ))
}
