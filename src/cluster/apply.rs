//! The one server-side apply: an object, our field manager, strict field validation, optional
//! dry run and force. Conflicts with another field manager come back typed, naming the object,
//! each field and the manager that owns it.

use kube::api::{Patch, PatchParams, ValidationDirective};

use crate::{
    cluster::{Cluster, error::ClusterError},
    model::{
        Object,
        resources::{self, display_name},
    },
};

/// The field manager every write of automon uses.
pub const FIELD_MANAGER: &str = "kubectl-automon";

/// How to apply.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyOptions {
    /// Server-side dry run: the API server validates and defaults, and persists nothing.
    pub dry_run: bool,
    /// Take fields owned by another manager (`--force-conflicts`).
    pub force: bool,
}

/// A field that another manager owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldConflict {
    /// `.spec.replicas`
    pub field: String,
    /// `kubectl-edit`
    pub manager: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(
        "{} has fields owned by another field manager: {}; re-run with --force-conflicts to take them over, or change them back with that tool",
        object,
        describe(conflicts)
    )]
    Conflict {
        object: String,
        conflicts: Vec<FieldConflict>,
    },
    #[error("{object}: the API server rejected it: {message}")]
    Invalid { object: String, message: String },
    #[error("{object}")]
    Cluster {
        object: String,
        #[source]
        source: ClusterError,
    },
    #[error("{0}: not a type automon knows how to apply")]
    UnknownType(String),
}

fn describe(conflicts: &[FieldConflict]) -> String {
    conflicts
        .iter()
        .map(|c| format!("{} (owned by {:?})", c.field, c.manager))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Applies one object server-side and returns what the server made of it.
pub async fn server_side_apply(
    cluster: &Cluster,
    object: &Object,
    options: ApplyOptions,
) -> Result<Object, ApplyError> {
    let name_of = || display_name(object);
    let api = resources::api_for(&cluster.client, object)
        .ok_or_else(|| ApplyError::UnknownType(name_of()))?;
    let mut params = PatchParams::apply(FIELD_MANAGER).validation(ValidationDirective::Strict);
    if options.dry_run {
        params = params.dry_run();
    }
    if options.force {
        params = params.force();
    }
    let name = object.metadata.name.clone().unwrap_or_default();
    // managedFields, resourceVersion and the like must not be sent with an apply.
    let mut body = object.clone();
    body.metadata.managed_fields = None;
    body.metadata.resource_version = None;
    body.metadata.uid = None;
    body.metadata.creation_timestamp = None;
    match api.patch(&name, &params, &Patch::Apply(&body)).await {
        Ok(applied) => Ok(applied),
        Err(kube::Error::Api(status)) if status.code == 409 => Err(ApplyError::Conflict {
            object: name_of(),
            conflicts: conflicts_of(&status),
        }),
        Err(kube::Error::Api(status)) if status.code == 422 || status.code == 400 => {
            Err(ApplyError::Invalid {
                object: name_of(),
                message: status.message.clone(),
            })
        }
        Err(e) => Err(ApplyError::Cluster {
            object: name_of(),
            source: cluster.target.classify(e),
        }),
    }
}

/// Deletes one object in the background (its dependents follow through the garbage
/// collector); one already gone is not an error. The one delete: `enable` prunes and `disable`
/// removes with it.
pub async fn delete(cluster: &Cluster, object: &Object, dry_run: bool) -> Result<(), ApplyError> {
    let api = resources::api_for(&cluster.client, object)
        .ok_or_else(|| ApplyError::UnknownType(display_name(object)))?;
    let mut params = kube::api::DeleteParams::background();
    if dry_run {
        params = params.dry_run();
    }
    match api
        .delete(object.metadata.name.as_deref().unwrap_or(""), &params)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(ApplyError::Cluster {
            object: display_name(object),
            source: cluster.target.classify(e),
        }),
    }
}

/// The conflicts of a 409 from an apply: each cause names a field, and its message the manager
/// (`conflict with "kubectl-edit" using apps/v1`).
fn conflicts_of(status: &kube::core::Status) -> Vec<FieldConflict> {
    let causes = status
        .details
        .as_ref()
        .map(|d| d.causes.clone())
        .unwrap_or_default();
    let mut out: Vec<FieldConflict> = causes
        .iter()
        .map(|c| FieldConflict {
            field: c.field.clone(),
            manager: c
                .message
                .split('"')
                .nth(1)
                .unwrap_or(c.message.as_str())
                .to_string(),
        })
        .collect();
    if out.is_empty() {
        out.push(FieldConflict {
            field: "(unknown)".into(),
            manager: status.message.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(rv: &str, generation: Option<i64>, applied_at: Option<&str>) -> Object {
        let mut o: Object = serde_json::from_value(serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "grafana", "namespace": "automon", "resourceVersion": rv}
        }))
        .unwrap();
        o.metadata.generation = generation;
        if let Some(t) = applied_at {
            o.metadata.managed_fields = Some(vec![
                serde_json::from_value(serde_json::json!({
                    "manager": FIELD_MANAGER, "operation": "Apply", "time": t
                }))
                .unwrap(),
            ]);
        }
        o
    }

    #[test]
    fn outcomes() {
        let t1 = "2026-11-25T10:00:00Z";
        let t2 = "2026-11-25T10:05:00Z";
        let before = obj("5", Some(2), Some(t1));
        let live = Live::from_objects([&before]);
        let other: Object = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "automon"}
        }))
        .unwrap();
        assert_eq!(live.outcome(&other, false), Outcome::Created);
        assert_eq!(
            live.outcome(&obj("5", Some(2), Some(t1)), false),
            Outcome::Unchanged
        );
        // A controller wrote status: the resourceVersion moved, nothing of ours did.
        assert_eq!(
            live.outcome(&obj("9", Some(2), Some(t1)), false),
            Outcome::Unchanged
        );
        // Our apply changed the spec.
        assert_eq!(
            live.outcome(&obj("9", Some(3), Some(t2)), false),
            Outcome::Configured
        );
        // Same second, but the generation moved.
        assert_eq!(
            live.outcome(&obj("9", Some(3), Some(t1)), false),
            Outcome::Configured
        );
        // A dry run writes nothing: only the content tells.
        let mut changed = obj("5", Some(2), Some(t1));
        changed.data["spec"] = serde_json::json!({"replicas": 2});
        assert_eq!(
            live.outcome(&obj("5", Some(2), Some(t1)), true),
            Outcome::Unchanged
        );
        assert_eq!(live.outcome(&changed, true), Outcome::Configured);
        // No generation (ConfigMap-like): only a write moves the resourceVersion.
        let plain_before = obj("5", None, Some(t1));
        let plain = Live::from_objects([&plain_before]);
        assert_eq!(
            plain.outcome(&obj("6", None, Some(t1)), false),
            Outcome::Configured
        );
    }

    #[test]
    fn conflicts_name_field_and_manager() {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure",
            "message": "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: .spec.replicas",
            "reason": "Conflict",
            "code": 409,
            "details": {"causes": [{
                "reason": "FieldManagerConflict",
                "message": "conflict with \"kubectl-edit\" using apps/v1",
                "field": ".spec.replicas"
            }]}
        }))
        .unwrap();
        assert_eq!(
            conflicts_of(&status),
            [FieldConflict {
                field: ".spec.replicas".into(),
                manager: "kubectl-edit".into()
            }]
        );
    }
}

/// What an apply did to one object, as `kubectl apply` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Created,
    Configured,
    Unchanged,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
        }
    }
}

/// Identity of an object across renders and the cluster: `Kind.group`, namespace, name.
pub type Key = (String, String, String);

pub fn key(o: &Object) -> Key {
    (
        crate::model::group_kind(o),
        o.metadata.namespace.clone().unwrap_or_default(),
        o.metadata.name.clone().unwrap_or_default(),
    )
}

/// What exists, so that an apply can tell created, configured and unchanged apart without a
/// GET per object. A no-op apply writes nothing: neither the resourceVersion nor the time of our
/// field manager's entry moves. (The resourceVersion alone is not enough: controllers write
/// status, which moves it without any change of ours.) The objects are borrowed (or given, see
/// [`Live::insert`]): their content is compared only after a dry run, so only a dry run pays for
/// it (a CRD is hundreds of KB).
#[derive(Debug, Default, Clone)]
pub struct Live<'a> {
    objects: std::collections::HashMap<Key, std::borrow::Cow<'a, Object>>,
}

/// What an apply tells apart an object by, before and after.
#[derive(Debug, PartialEq)]
struct Before<'a> {
    resource_version: Option<&'a str>,
    generation: Option<i64>,
    applied_at: Option<String>,
}

impl<'a> Before<'a> {
    fn of(o: &'a Object) -> Self {
        Before {
            resource_version: o.metadata.resource_version.as_deref(),
            generation: o.metadata.generation,
            applied_at: our_apply_time(o),
        }
    }
}

/// The object without what only the server writes, for dry runs (which write nothing, so only
/// the content can tell).
fn content(o: &Object) -> serde_json::Value {
    serde_json::to_value(crate::model::diff::clean(o)).unwrap_or_default()
}

/// When our field manager last changed the object, from its managedFields.
fn our_apply_time(o: &Object) -> Option<String> {
    o.metadata
        .managed_fields
        .as_ref()?
        .iter()
        .find(|m| {
            m.manager.as_deref() == Some(FIELD_MANAGER) && m.operation.as_deref() == Some("Apply")
        })
        .and_then(|m| m.time.as_ref())
        .map(|t| t.0.to_string())
}

impl<'a> Live<'a> {
    pub fn from_objects(objects: impl IntoIterator<Item = &'a Object>) -> Self {
        Live {
            objects: (objects.into_iter())
                .map(|o| (key(o), std::borrow::Cow::Borrowed(o)))
                .collect(),
        }
    }

    /// `o` as it is now, in place of what was known of it (its metadata alone, say).
    pub fn insert(&mut self, o: Object) {
        self.objects.insert(key(&o), std::borrow::Cow::Owned(o));
    }

    pub fn contains(&self, k: &Key) -> bool {
        self.objects.contains_key(k)
    }

    /// What the apply did, from what was there before and the object after.
    /// Objects with a `generation` get status writes from controllers, which move the
    /// resourceVersion; for them, an unchanged generation and apply time mean unchanged.
    pub fn outcome(&self, applied: &Object, dry_run: bool) -> Outcome {
        let Some(live) = self.objects.get(&key(applied)) else {
            return Outcome::Created;
        };
        if dry_run {
            return if content(live) == content(applied) {
                Outcome::Unchanged
            } else {
                Outcome::Configured
            };
        }
        let (before, after) = (Before::of(live), Before::of(applied));
        if before.resource_version == after.resource_version
            || (before.generation.is_some()
                && before.generation == after.generation
                && before.applied_at.is_some()
                && before.applied_at == after.applied_at)
        {
            Outcome::Unchanged
        } else {
            Outcome::Configured
        }
    }
}

/// Applies objects concurrently, at most `in_flight` requests at once, and returns the results
/// in the objects' order.
pub async fn apply_all(
    cluster: &Cluster,
    objects: &[Object],
    live: &Live<'_>,
    options: ApplyOptions,
    in_flight: usize,
) -> Vec<Result<(Outcome, Object), ApplyError>> {
    use futures::StreamExt;
    futures::stream::iter(objects)
        .map(|o| async move {
            let applied = server_side_apply(cluster, o, options).await?;
            // A dry run of a new object comes back without a resourceVersion we knew.
            Ok((live.outcome(&applied, options.dry_run), applied))
        })
        .buffered(in_flight.max(1))
        .collect()
        .await
}
