//! Revisions, as Helm keeps releases: every `enable` or `rollback` that changes something
//! records what it applied in a Secret of the stack's namespace (`automon-revision-<N>`): who,
//! when, with which plugin, what changed, and the exact objects (gzip'd JSON, checked against
//! the 1 MiB object limit before anything is applied). A Secret, not a ConfigMap, though the
//! objects no longer carry credentials (the configuration's load seals them into
//! `automon-credentials`): a stack an older plugin installed recorded them in the clear.
//!
//! The summary lives in annotations, so `history` is one list call and decompresses nothing;
//! the objects are read only for the revision a `rollback` or `diff --revision` asks for.

use std::{
    collections::BTreeMap,
    io::{Read as _, Write as _},
};

use k8s_openapi::{
    ByteString,
    api::{
        authentication::v1::{SelfSubjectReview, SelfSubjectReviewStatus},
        core::v1::Secret,
    },
    jiff::Timestamp,
};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use serde::{Deserialize, Serialize};

use crate::{
    cluster::{
        Cluster,
        apply::FIELD_MANAGER,
        error::{ClusterError, NotInstalled},
    },
    config::{ConfigError, Values, values::Recognised},
    model::{
        Object, kind,
        names::{CONFIG_KEY, MANAGED_BY, MANAGED_BY_LABEL, PARENT_NAME, PART_OF, PART_OF_LABEL},
    },
    versions::PLUGIN_VERSION,
};

/// The label every revision Secret carries; its value is the revision number.
pub const REVISION_LABEL: &str = "automon.io/revision";
/// The Secret type of a revision, as Helm marks its releases `helm.sh/release.v1`.
pub const SECRET_TYPE: &str = "automon.io/revision.v1";
/// The data key of the gzip'd JSON.
const DATA_KEY: &str = "revision.json.gz";
const UPDATED: &str = "automon.io/updated";
const PLUGIN: &str = "automon.io/plugin-version";
const BY: &str = "automon.io/by";
const CHANGE: &str = "automon.io/change";
/// What one object may hold in etcd; the payload keeps a margin for the metadata.
const MAX_PAYLOAD: usize = 1024 * 1024 - 16 * 1024;
/// How many revisions are kept unless `--history-max` says otherwise (Helm's default too).
pub const DEFAULT_MAX: u32 = 10;

/// One revision as `history` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub revision: u32,
    pub updated: String,
    pub plugin: String,
    pub by: String,
    pub change: String,
}

/// What a revision holds besides its summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payload {
    /// Every object applied, the ApplySet parent (and with it the configuration) included.
    pub objects: Vec<Object>,
    /// The resourceVersion each object had when the run that recorded it was done, by
    /// [`key`]: an object that still has it is exactly as automon left it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resource_versions: BTreeMap<String, String>,
}

/// A [`Payload`] as it is written, its objects borrowed (not copied) from the run's plan.
#[derive(Serialize)]
struct Written<'a> {
    objects: Vec<&'a Object>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    resource_versions: BTreeMap<String, String>,
}

/// An object's key in [`Payload::resource_versions`]: `Kind.group/namespace/name`.
pub fn key(o: &Object) -> String {
    let (group_kind, namespace, name) = crate::cluster::apply::key(o);
    format!("{group_kind}/{namespace}/{name}")
}

#[derive(Debug, thiserror::Error)]
pub enum RevisionError {
    #[error(
        "revision {revision} does not exist in namespace {namespace:?} (there are: {}); `kubectl automon history -n {namespace}` lists them",
        if known.is_empty() { "none".to_string() } else { known.iter().map(u32::to_string).collect::<Vec<_>>().join(", ") }
    )]
    NotFound {
        namespace: String,
        revision: u32,
        known: Vec<u32>,
    },
    #[error(
        "there is no revision before {current} in namespace {namespace:?} to roll back to; `kubectl automon history -n {namespace}` lists them"
    )]
    NoPrevious { namespace: String, current: u32 },
    #[error(
        "there are no revisions in namespace {namespace:?}: automon was installed there before revisions were recorded (the next enable that changes something records one)"
    )]
    NoRevisions { namespace: String },
    #[error(
        "revision {revision} (Secret {namespace}/{name}) cannot be read: {problem}; it was changed or damaged outside automon, so nothing was applied; pick another revision from `kubectl automon history -n {namespace}`"
    )]
    Corrupt {
        namespace: String,
        name: String,
        revision: u32,
        problem: String,
    },
    #[error(
        "the objects to record are {size} bytes compressed, more than a Secret may hold ({MAX_PAYLOAD}); nothing was applied"
    )]
    TooLarge { size: usize },
    #[error(
        "other runs kept recording revisions at the same time as this one; run `kubectl automon history` and try again"
    )]
    Busy,
    #[error("revisions")]
    Cluster(#[from] ClusterError),
}

/// The Secret name of revision `n`.
pub fn secret_name(n: u32) -> String {
    format!("automon-revision-{n}")
}

/// The compressed payload of `objects` (CRDs left out: they are never rolled back, and the
/// operator's ten are 4.3 MB), checked against the object size limit.
pub fn encode<'a>(
    objects: impl IntoIterator<Item = &'a Object>,
    resource_versions: &BTreeMap<String, String>,
) -> Result<Vec<u8>, RevisionError> {
    let objects: Vec<&Object> = objects
        .into_iter()
        .filter(|o| kind(o) != "CustomResourceDefinition")
        .collect();
    let resource_versions = objects
        .iter()
        .filter_map(|o| {
            let k = key(o);
            resource_versions.get(&k).map(|rv| (k, rv.clone()))
        })
        .collect();
    let payload = Written {
        objects,
        resource_versions,
    };
    let json = serde_json::to_vec(&payload).expect("objects serialize");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&json).expect("writing to memory");
    let bytes = gz.finish().expect("writing to memory");
    if bytes.len() > MAX_PAYLOAD {
        return Err(RevisionError::TooLarge { size: bytes.len() });
    }
    Ok(bytes)
}

/// The objects of a payload; the error says what is wrong with it.
pub fn decode(bytes: &[u8]) -> Result<Payload, String> {
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(64 * 1024 * 1024)
        .read_to_end(&mut json)
        .map_err(|e| format!("its data is not gzip: {e}"))?;
    let payload: Payload =
        serde_json::from_slice(&json).map_err(|e| format!("its data is not a revision: {e}"))?;
    if !payload.objects.iter().any(crate::model::is_parent) {
        return Err("it has no ApplySet parent among its objects".into());
    }
    Ok(payload)
}

/// The values the user gave for a revision, from the ApplySet parent among its objects (read
/// by the version that wrote it, as [`crate::cluster::inventory::stored_values`] reads the
/// live one).
pub fn values(
    payload: &Payload,
    n: u32,
    namespace: &str,
) -> Result<(Values, Option<Recognised>), ConfigError> {
    let parent = payload.objects.iter().find(|o| crate::model::is_parent(o));
    let text = parent
        .and_then(|p| p.data["data"][CONFIG_KEY].as_str())
        .unwrap_or_default();
    let version = parent.and_then(|p| crate::cluster::inventory::installed_version(&p.metadata));
    Values::stored(
        text,
        version.as_deref(),
        &format!(
            "revision {n} in namespace {namespace:?}: ConfigMap {PARENT_NAME} key {CONFIG_KEY}"
        ),
    )
}

/// The summary of a revision Secret, from its name, label and annotations.
fn summary(meta: &ObjectMeta) -> Option<Summary> {
    let revision: u32 = meta.labels.as_ref()?.get(REVISION_LABEL)?.parse().ok()?;
    if meta.name.as_deref() != Some(secret_name(revision).as_str()) {
        return None;
    }
    let a = meta.annotations.clone().unwrap_or_default();
    let get = |k: &str| a.get(k).cloned().unwrap_or_default();
    Some(Summary {
        revision,
        updated: get(UPDATED),
        plugin: get(PLUGIN),
        by: get(BY),
        change: get(CHANGE),
    })
}

fn api(cluster: &Cluster) -> Api<Secret> {
    Api::namespaced(cluster.client.clone(), &cluster.namespace)
}

fn selector() -> ListParams {
    ListParams::default().labels(REVISION_LABEL)
}

/// Every revision in the cluster's namespace, oldest first: metadata only, nothing of the
/// objects is read.
pub async fn list(cluster: &Cluster) -> Result<Vec<Summary>, ClusterError> {
    let secrets = api(cluster)
        .list_metadata(&selector())
        .await
        .map_err(|e| cluster.target.classify(e))?;
    let mut out: Vec<Summary> = secrets
        .items
        .iter()
        .filter_map(|s| summary(&s.metadata))
        .collect();
    out.sort_by_key(|s| s.revision);
    Ok(out)
}

/// [`list`], or [`NotInstalled`] when the namespace holds no revisions because automon is not
/// there at all (rather than installed before revisions were recorded).
pub async fn list_installed(cluster: &Cluster) -> anyhow::Result<Vec<Summary>> {
    let known = list(cluster).await?;
    let has_parent = if known.is_empty() {
        crate::cluster::inventory::parent_configmap(&cluster.client, &cluster.namespace)
            .await
            .map_err(|e| cluster.target.classify(e))?
            .is_some()
    } else {
        true
    };
    Ok(installed(known, has_parent, &cluster.namespace)?)
}

/// The decision of [`list_installed`] (pure): no revisions and no ApplySet parent is "not
/// installed"; no revisions beside a parent is an install older than revisions.
pub fn installed(
    known: Vec<Summary>,
    has_parent: bool,
    namespace: &str,
) -> Result<Vec<Summary>, NotInstalled> {
    if known.is_empty() && !has_parent {
        return Err(NotInstalled {
            namespace: namespace.into(),
        });
    }
    Ok(known)
}

/// Which revision `rollback` restores: the one asked for, or the one before the latest.
pub fn target(
    known: &[Summary],
    asked: Option<u32>,
    namespace: &str,
) -> Result<u32, RevisionError> {
    let numbers: Vec<u32> = known.iter().map(|s| s.revision).collect();
    if numbers.is_empty() {
        return Err(RevisionError::NoRevisions {
            namespace: namespace.into(),
        });
    }
    match asked {
        Some(n) if numbers.contains(&n) => Ok(n),
        Some(n) => Err(RevisionError::NotFound {
            namespace: namespace.into(),
            revision: n,
            known: numbers,
        }),
        None => {
            let current = numbers.last().copied().unwrap_or(0);
            numbers
                .iter()
                .rev()
                .nth(1)
                .copied()
                .ok_or(RevisionError::NoPrevious {
                    namespace: namespace.into(),
                    current,
                })
        }
    }
}

/// Reads one revision's objects.
pub async fn read(cluster: &Cluster, n: u32) -> Result<(Summary, Payload), RevisionError> {
    let name = secret_name(n);
    let ns = cluster.namespace.clone();
    let secret = api(cluster)
        .get_opt(&name)
        .await
        .map_err(|e| cluster.target.classify(e))?;
    let Some(secret) = secret else {
        let known = list(cluster).await?.iter().map(|s| s.revision).collect();
        return Err(RevisionError::NotFound {
            namespace: ns,
            revision: n,
            known,
        });
    };
    let corrupt = |problem: String| RevisionError::Corrupt {
        namespace: ns.clone(),
        name: name.clone(),
        revision: n,
        problem,
    };
    if secret.type_.as_deref() != Some(SECRET_TYPE) {
        return Err(corrupt(format!(
            "its type is {:?}, not {SECRET_TYPE:?}",
            secret.type_.as_deref().unwrap_or("")
        )));
    }
    let summary = summary(&secret.metadata)
        .filter(|s| s.revision == n)
        .ok_or_else(|| corrupt(format!("its {REVISION_LABEL} label is not {n}")))?;
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(DATA_KEY))
        .ok_or_else(|| corrupt(format!("it has no {DATA_KEY} data")))?;
    let payload = decode(&bytes.0).map_err(corrupt)?;
    Ok((summary, payload))
}

/// The objects of the latest revision, when there is one that can be read: what the server
/// last accepted from automon here.
pub async fn latest(cluster: &Cluster) -> Result<Option<Payload>, ClusterError> {
    let Some(last) = list(cluster).await?.last().map(|s| s.revision) else {
        return Ok(None);
    };
    match read(cluster, last).await {
        Ok((_, payload)) => Ok(Some(payload)),
        Err(RevisionError::Cluster(e)) => Err(e),
        Err(_) => Ok(None),
    }
}

/// Who is applying, as the API server authenticated them (a SelfSubjectReview); `unknown`
/// where the server does not answer it (older than 1.28, or forbidden).
pub async fn whoami(cluster: &Cluster) -> String {
    let api: Api<SelfSubjectReview> = Api::all(cluster.client.clone());
    match api
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
    {
        Ok(SelfSubjectReview {
            status:
                Some(SelfSubjectReviewStatus {
                    user_info: Some(u), ..
                }),
            ..
        }) => u.username.unwrap_or_else(|| "unknown".into()),
        _ => "unknown".into(),
    }
}

/// Records the next revision and trims the oldest beyond `max` (0 keeps all). Returns its
/// number.
pub async fn record(
    cluster: &Cluster,
    payload: Vec<u8>,
    change: &str,
    max: u32,
) -> Result<u32, RevisionError> {
    let (by, known) = futures::join!(whoami(cluster), list(cluster));
    let mut known = known?;
    let api = api(cluster);
    // A concurrent run may take a number first: then the next one.
    for attempt in 0..3 {
        if attempt > 0 {
            known = list(cluster).await?;
        }
        let n = known.last().map_or(1, |s| s.revision + 1);
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(secret_name(n)),
                namespace: Some(cluster.namespace.clone()),
                labels: Some(BTreeMap::from([
                    (REVISION_LABEL.to_string(), n.to_string()),
                    (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
                    (PART_OF_LABEL.to_string(), PART_OF.to_string()),
                ])),
                annotations: Some(BTreeMap::from([
                    (UPDATED.to_string(), now()),
                    (PLUGIN.to_string(), PLUGIN_VERSION.to_string()),
                    (BY.to_string(), by.clone()),
                    (CHANGE.to_string(), change.to_string()),
                ])),
                ..Default::default()
            },
            type_: Some(SECRET_TYPE.into()),
            data: Some(BTreeMap::from([(
                DATA_KEY.to_string(),
                ByteString(payload.clone()),
            )])),
            ..Default::default()
        };
        let pp = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        match api.create(&pp, &secret).await {
            Ok(_) => {
                trim(cluster, &known, n, max).await?;
                return Ok(n);
            }
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(cluster.target.classify(e).into()),
        }
    }
    Err(RevisionError::Busy)
}

/// Now, to the second, as RFC 3339 (`2026-11-29T18:23:29Z`).
fn now() -> String {
    let t = Timestamp::now();
    Timestamp::from_second(t.as_second())
        .unwrap_or(t)
        .to_string()
}

/// Deletes the oldest revisions so that `max` are left, `newest` included.
async fn trim(
    cluster: &Cluster,
    known: &[Summary],
    newest: u32,
    max: u32,
) -> Result<(), ClusterError> {
    if max == 0 {
        return Ok(());
    }
    let mut numbers: Vec<u32> = known.iter().map(|s| s.revision).collect();
    numbers.push(newest);
    let excess = numbers.len().saturating_sub(max as usize);
    for n in numbers.into_iter().take(excess) {
        match api(cluster)
            .delete(&secret_name(n), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(cluster.target.classify(e)),
        }
    }
    Ok(())
}

/// What a run changed, for the CHANGE column: `install`, `set a=b, c=d`, `enable -f file`. A
/// credential in a `--set` (what the configuration's load seals) is `(hidden)`.
pub fn describe_change(file: Option<&str>, sets: &[String], first: bool) -> String {
    let sets: Vec<String> = sets
        .iter()
        .map(|s| crate::config::credentials::redact_set(s))
        .collect();
    let mut parts = Vec::new();
    if first {
        parts.push("install".to_string());
    }
    if let Some(f) = file {
        parts.push(format!("enable -f {f}"));
    }
    if !sets.is_empty() {
        parts.push(format!("set {}", sets.join(", ")));
    }
    if parts.is_empty() {
        parts.push("enable".into());
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_revisions_and_no_parent_is_not_installed() {
        let one = || {
            vec![Summary {
                revision: 1,
                updated: "2026-11-29T18:23:29Z".into(),
                plugin: "0.1.0".into(),
                by: "me".into(),
                change: "install".into(),
            }]
        };
        let e = installed(Vec::new(), false, "default").unwrap_err();
        assert_eq!(
            e.to_string(),
            "automon is not installed in namespace default; install it with `kubectl automon enable -n default`"
        );
        // Installed before revisions were recorded: rollback's own error says so (exit 1).
        assert_eq!(installed(Vec::new(), true, "automon").unwrap().len(), 0);
        assert!(matches!(
            target(&[], None, "automon"),
            Err(RevisionError::NoRevisions { .. })
        ));
        assert_eq!(installed(one(), true, "automon").unwrap().len(), 1);
    }
    use crate::{config::Config, render};

    fn summaries(numbers: &[u32]) -> Vec<Summary> {
        numbers
            .iter()
            .map(|&revision| Summary {
                revision,
                updated: String::new(),
                plugin: String::new(),
                by: String::new(),
                change: String::new(),
            })
            .collect()
    }

    #[test]
    fn a_stack_fits_and_comes_back_exactly() {
        let objects = render::render(&Config::default()).objects;
        let bytes = encode(&objects, &BTreeMap::new()).unwrap();
        assert!(bytes.len() < MAX_PAYLOAD / 4, "{} bytes", bytes.len());
        let back = decode(&bytes).unwrap();
        assert_eq!(back.objects, objects);
    }

    #[test]
    fn crds_are_not_recorded() {
        let crd = render::custom(serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "x.monitoring.coreos.com"}}));
        let objects = render::render_with(&Config::default(), vec![crd]).objects;
        let back = decode(&encode(&objects, &BTreeMap::new()).unwrap()).unwrap();
        assert!(
            back.objects
                .iter()
                .all(|o| kind(o) != "CustomResourceDefinition")
        );
        assert_eq!(back.objects.len(), objects.len() - 1);
    }

    #[test]
    fn damaged_payloads_say_what_is_wrong() {
        assert!(decode(b"not gzip").unwrap_err().contains("not gzip"));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"objects\": 3}").unwrap();
        assert!(
            decode(&gz.finish().unwrap())
                .unwrap_err()
                .contains("not a revision")
        );
        let no_parent = encode(&[], &BTreeMap::new()).unwrap();
        assert!(
            decode(&no_parent)
                .unwrap_err()
                .contains("no ApplySet parent")
        );
    }

    #[test]
    fn rollback_target_is_the_one_asked_or_the_one_before_the_latest() {
        let known = summaries(&[3, 4, 5]);
        assert_eq!(target(&known, Some(3), "m").unwrap(), 3);
        assert_eq!(target(&known, None, "m").unwrap(), 4);
        let e = target(&known, Some(9), "m").unwrap_err().to_string();
        assert!(
            e.contains("revision 9 does not exist") && e.contains("3, 4, 5"),
            "{e}"
        );
        let e = target(&summaries(&[1]), None, "m").unwrap_err().to_string();
        assert!(e.contains("no revision before 1"), "{e}");
        let e = target(&[], Some(1), "m").unwrap_err().to_string();
        assert!(e.contains("there are no revisions in namespace"), "{e}");
    }

    #[test]
    fn changes_read_like_the_command_and_hide_urls() {
        assert_eq!(describe_change(None, &[], true), "install");
        assert_eq!(describe_change(None, &[], false), "enable");
        assert_eq!(
            describe_change(None, &["prometheus.retention=30d".into()], false),
            "set prometheus.retention=30d"
        );
        // The documented form: a receiver list, its URL hidden and the rest kept.
        assert_eq!(
            describe_change(
                Some("automon.yaml"),
                &["alertmanager.receivers=[{name: x, slack: {apiUrl: 'https://hooks.example/T0/B0/secret', channel: '#a'}}]".into()],
                false
            ),
            "enable -f automon.yaml; set alertmanager.receivers=[{name: x, slack: {apiUrl: '(hidden)', channel: '#a'}}]"
        );
        // A URL that is no credential stays.
        assert_eq!(
            describe_change(
                None,
                &["prometheus.remoteWrite=[{url: 'https://store/x'}]".into()],
                false
            ),
            "set prometheus.remoteWrite=[{url: 'https://store/x'}]"
        );
    }
}
