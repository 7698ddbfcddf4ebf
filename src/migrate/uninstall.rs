//! The migration's last step: removing the release as `helm uninstall` does (I/O). Every object
//! of its manifest that is still the release's is deleted in Helm's uninstall order, then the
//! deletions are waited for, then every record of the release is deleted (older revisions
//! first, the latest last), so that `helm list` no longer shows it. CRDs, volume claims,
//! objects annotated `helm.sh/resource-policy: keep` and objects that are not the release's
//! (by Helm's ownership marks on the live object) stay. A second run finishes what an
//! interrupted one left: objects already gone are skipped, and the latest record, read again,
//! still names them all until the very end.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api,
    api::{DeleteParams, Preconditions},
    runtime::watcher,
};

use super::{
    manifest::{Fate, Kept},
    release,
    survey::{self, Planned},
};
use crate::{
    cluster::{Cluster, error::humantime},
    model::Object,
};

/// How many deletes are in flight at once.
const IN_FLIGHT: usize = 16;

/// What the removal did.
#[derive(Debug, Default)]
pub struct Removed {
    /// The revision whose manifest was removed; `None` when no record was left.
    pub revision: Option<u32>,
    /// Each object deleted, as kubectl names it, with its namespace.
    pub deleted: Vec<(String, Option<String>)>,
    /// Each object of the manifest left in place, and why.
    pub kept: Vec<(String, Option<String>, Kept)>,
    /// Objects of the manifest that were already gone.
    pub already_gone: usize,
    /// The release's records deleted.
    pub records: Vec<String>,
}

/// Removes release `name` from `namespace` as `helm uninstall` would, waiting up to `timeout`
/// (0: as long as it takes) for what it deletes to be gone. No record of the release left:
/// nothing to do.
pub async fn remove_release(
    cluster: &Cluster,
    name: &str,
    namespace: &str,
    timeout: Duration,
) -> anyhow::Result<Removed> {
    // No deadline: a day stands for "until it is done".
    let deadline = Instant::now()
        + match timeout.is_zero() {
            true => Duration::from_secs(86_400),
            false => timeout,
        };
    let (records, _) = survey::records(cluster, name, namespace).await?;
    let Some((latest, _)) = records.first() else {
        return Ok(Removed::default());
    };
    let release = release::of_this_chart(survey::read_record(cluster, namespace, latest).await?)?;
    let hooks: Vec<String> = release
        .hooks
        .iter()
        .filter(|h| h.runs_on_uninstall())
        .map(|h| format!("{}/{}", h.kind.to_lowercase(), h.name))
        .collect();
    if !hooks.is_empty() {
        anyhow::bail!(
            "release {name} has hooks that `helm uninstall` runs ({}), which automon does not run: remove the release with `helm uninstall {name} -n {namespace}` instead",
            hooks.join(", ")
        );
    }
    let planned = survey::plan_removal(cluster, &release).await?;
    let unverified: Vec<String> = planned
        .iter()
        .filter_map(|p| match &p.fate {
            Fate::Keep(Kept::Unverified(why)) => Some(format!("{}: {why}", p.display())),
            _ => None,
        })
        .collect();
    if !unverified.is_empty() {
        // Nothing is deleted while it is unknown whose some objects are: a second run, once
        // they can be read, removes the release whole.
        anyhow::bail!(
            "cannot tell whether {} of release {name} are its own, so nothing was deleted:\n  {}",
            crate::output::plural(unverified.len(), "object"),
            unverified.join("\n  ")
        );
    }
    let mut removed = Removed {
        revision: Some(release.revision),
        ..Removed::default()
    };
    let mut to_delete: Vec<&Planned> = Vec::new();
    for p in &planned {
        let at = p.namespace().map(str::to_string);
        match &p.fate {
            Fate::Delete { .. } => to_delete.push(p),
            Fate::Gone => removed.already_gone += 1,
            Fate::Keep(why) => removed.kept.push((p.display(), at, why.clone())),
        }
    }
    let gone = delete_in_order(cluster, &to_delete).await?;
    for (p, deleted) in to_delete.iter().zip(&gone) {
        match deleted {
            Deleted::Now => removed
                .deleted
                .push((p.display(), p.namespace().map(str::to_string))),
            Deleted::Before => removed.already_gone += 1,
            Deleted::Replaced => removed.kept.push((
                p.display(),
                p.namespace().map(str::to_string),
                Kept::NotOwned(
                    "it was replaced by another object of the same name since it was read".into(),
                ),
            )),
        }
    }
    let waited: Vec<&Planned> = to_delete
        .iter()
        .zip(&gone)
        .filter(|(_, d)| matches!(d, Deleted::Now))
        .map(|(p, _)| *p)
        .collect();
    wait_gone(cluster, &waited, deadline, timeout).await?;
    // Older revisions first: until the latest record goes, a second run reads it again.
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), namespace);
    for (record, _) in records.iter().rev() {
        match secrets.delete(record, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(
                    anyhow::Error::new(cluster.target.classify(e)).context(format!(
                        "cannot delete the release record {namespace}/{record}"
                    )),
                );
            }
        }
        removed.records.push(record.clone());
    }
    Ok(removed)
}

/// What a delete found.
enum Deleted {
    Now,
    /// It was gone already.
    Before,
    /// Another object (another uid) holds the name now: left alone.
    Replaced,
}

/// Deletes the objects kind by kind in Helm's uninstall order (they come sorted), those of one
/// kind at once, each only if it is still the object that was read (its uid).
async fn delete_in_order(cluster: &Cluster, objects: &[&Planned]) -> anyhow::Result<Vec<Deleted>> {
    let mut out = Vec::with_capacity(objects.len());
    let mut start = 0;
    while start < objects.len() {
        let kind = objects[start].kind();
        let end = objects[start..]
            .iter()
            .position(|p| p.kind() != kind)
            .map_or(objects.len(), |n| start + n);
        let step: Vec<anyhow::Result<Deleted>> = futures::stream::iter(&objects[start..end])
            .map(|p| delete_one(cluster, p))
            .buffered(IN_FLIGHT)
            .collect()
            .await;
        for d in step {
            out.push(d?);
        }
        start = end;
    }
    Ok(out)
}

async fn delete_one(cluster: &Cluster, p: &Planned) -> anyhow::Result<Deleted> {
    let Some(api) = p.api(cluster) else {
        return Ok(Deleted::Before);
    };
    let Fate::Delete { uid } = &p.fate else {
        return Ok(Deleted::Before);
    };
    let mut params = DeleteParams::background();
    params.preconditions = Some(Preconditions {
        uid: uid.clone(),
        resource_version: None,
    });
    match api.delete(p.name(), &params).await {
        Ok(_) => Ok(Deleted::Now),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Deleted::Before),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Deleted::Replaced),
        Err(e) => Err(
            anyhow::Error::new(cluster.target.classify(e)).context(format!(
                "cannot delete {}{}",
                p.display(),
                p.namespace()
                    .map(|ns| format!(" in {ns}"))
                    .unwrap_or_default()
            )),
        ),
    }
}

/// Waits until none of `objects` (by uid) is left: one watch per type and namespace.
async fn wait_gone(
    cluster: &Cluster,
    objects: &[&Planned],
    deadline: Instant,
    timeout: Duration,
) -> anyhow::Result<()> {
    let mut groups: BTreeMap<(String, Option<String>), Vec<&Planned>> = BTreeMap::new();
    for p in objects {
        let Some(ar) = &p.resource else { continue };
        groups
            .entry((
                format!("{}.{}", ar.plural, ar.group),
                p.namespace().map(str::to_string),
            ))
            .or_default()
            .push(p);
    }
    let uids: Vec<&str> = objects
        .iter()
        .filter_map(|p| match &p.fate {
            Fate::Delete { uid } => uid.as_deref(),
            _ => None,
        })
        .collect();
    let sources = groups
        .values()
        .filter_map(|ps| {
            Some(crate::cluster::watch::Source {
                api: ps.first()?.api(cluster)?,
                selection: watcher::Config::default(),
            })
        })
        .collect();
    let left = |seen: &[Vec<Object>]| -> Vec<String> {
        let present: Vec<&str> = seen
            .iter()
            .flatten()
            .filter_map(|o| o.metadata.uid.as_deref())
            .filter(|u| uids.contains(u))
            .collect();
        objects
            .iter()
            .filter(|p| matches!(&p.fate, Fate::Delete { uid: Some(u) } if present.contains(&u.as_str())))
            .map(|p| p.display())
            .collect()
    };
    let waited =
        crate::cluster::watch::until(cluster, sources, deadline, |seen| left(seen).is_empty())
            .await
            .context("cannot watch what was deleted")?;
    let names = left(&waited.seen);
    if names.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "timed out after {} (--timeout) waiting for {} to be deleted; a finalizer may hold them; run the removal again to finish",
        humantime(timeout),
        names.join(", ")
    )
}
