//! The Secret that holds the credentials the configuration gave literally
//! ([`crate::config::credentials::SECRET_NAME`]): `enable` writes it before the stack that
//! reads it, server-side under automon's field manager, keeping every key already there (a
//! stored revision may still name one; keys are named by value, so a rollback finds its own);
//! `disable` deletes it. Not an ApplySet member: render, diff and the revisions never hold its
//! values.

use std::collections::BTreeMap;

use k8s_openapi::{
    ByteString,
    api::core::v1::{Namespace, Secret},
};
use kube::api::{Api, ObjectMeta, Patch, PatchParams};

use crate::{
    cluster::{Cluster, apply::FIELD_MANAGER, error::ClusterError},
    config::credentials::{Credentials, SECRET_NAME},
    model::{
        Object,
        names::{MANAGED_BY, MANAGED_BY_LABEL, NAME_LABEL, PART_OF, PART_OF_LABEL},
    },
};

/// What [`store`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Keys the Secret holds after the write.
    pub keys: usize,
    /// Keys this write added or changed.
    pub written: usize,
}

/// The credentials Secret as it should be: `data` (key → value) over what `existing` holds.
pub fn desired(
    namespace: &str,
    existing: Option<&Secret>,
    data: &BTreeMap<String, String>,
) -> Secret {
    let mut merged: BTreeMap<String, ByteString> =
        existing.and_then(|s| s.data.clone()).unwrap_or_default();
    for (k, v) in data {
        merged.insert(k.clone(), ByteString(v.clone().into_bytes()));
    }
    Secret {
        metadata: ObjectMeta {
            name: Some(SECRET_NAME.into()),
            namespace: Some(namespace.into()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
                (PART_OF_LABEL.to_string(), PART_OF.to_string()),
                (NAME_LABEL.to_string(), SECRET_NAME.to_string()),
            ])),
            ..Default::default()
        },
        data: Some(merged),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

/// Writes `credentials` into the Secret (server-side apply), creating the namespace first from
/// `namespace_object` when it is not there yet. `dry_run`: the API server validates, nothing is
/// persisted (and nothing is sent while the namespace is missing).
pub async fn store(
    cluster: &Cluster,
    namespace: &str,
    namespace_object: Option<&Object>,
    credentials: &Credentials,
    dry_run: bool,
) -> Result<Stored, ClusterError> {
    let classify = |e| cluster.target.classify(e);
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    let present = namespaces
        .get_opt(namespace)
        .await
        .map_err(classify)?
        .is_some();
    let data = credentials.data();
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), namespace);
    let existing = if present {
        secrets.get_opt(SECRET_NAME).await.map_err(classify)?
    } else {
        None
    };
    let written = data
        .iter()
        .filter(|(k, v)| {
            existing
                .as_ref()
                .and_then(|s| s.data.as_ref())
                .and_then(|d| d.get(*k))
                .is_none_or(|old| old.0 != v.as_bytes())
        })
        .count();
    let secret = desired(namespace, existing.as_ref(), &data);
    let keys = secret.data.as_ref().map_or(0, BTreeMap::len);
    let mut params = PatchParams::apply(FIELD_MANAGER);
    if dry_run {
        params = params.dry_run();
    }
    if !present {
        if dry_run {
            return Ok(Stored { keys, written });
        }
        if let Some(api) = namespace_object
            .and_then(|ns| crate::model::resources::api_for(&cluster.client, ns).zip(Some(ns)))
        {
            let (api, ns) = api;
            api.patch(namespace, &params, &Patch::Apply(ns))
                .await
                .map_err(classify)?;
        }
    }
    secrets
        .patch(SECRET_NAME, &params, &Patch::Apply(&secret))
        .await
        .map_err(classify)?;
    Ok(Stored { keys, written })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_keys_join_the_ones_already_there() {
        let existing = desired(
            "automon",
            None,
            &BTreeMap::from([("old".to_string(), "a".to_string())]),
        );
        let s = desired(
            "automon",
            Some(&existing),
            &BTreeMap::from([("new".to_string(), "b".to_string())]),
        );
        let data = s.data.unwrap();
        assert_eq!(data.keys().collect::<Vec<_>>(), ["new", "old"]);
        assert_eq!(data["old"].0, b"a");
        let labels = s.metadata.labels.unwrap();
        assert_eq!(labels[MANAGED_BY_LABEL], MANAGED_BY);
        // Not an ApplySet member: no part-of label of the ApplySet.
        assert!(!labels.contains_key(crate::model::names::APPLYSET_PART_OF_LABEL));
    }
}
