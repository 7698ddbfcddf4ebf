//! Before the first write: what the API server would refuse. A server-side dry run of what it
//! can judge now, and a check against the schema it will judge by of what it cannot yet (its
//! namespace or CRD is not there, or its CRD is about to change).

use super::IN_FLIGHT;
use crate::{
    cluster::{
        Cluster,
        apply::{self, ApplyError, ApplyOptions, Live},
        revision, schema,
    },
    model::{
        Object, api_version, kind,
        resources::{self, display_name},
    },
    plan::{self, ClusterState, Plan},
};

/// Dry-runs, server-side and concurrently, every object of the plan that the server can judge
/// before anything is written (its namespace exists, its CRD exists and is not about to
/// change) and that is not exactly what the server last accepted (`accepted`, the latest
/// revision). CRDs are not dry-run: they are large, go first, and their own apply is the check.
/// The refusals; conflicts are left to the apply, which names them.
pub async fn refusals(
    cluster: &Cluster,
    plan: &Plan,
    state: &ClusterState,
    accepted: Option<&revision::Payload>,
    options: ApplyOptions,
) -> Vec<ApplyError> {
    let mut missing = plan::missing_crds(state, plan.objects());
    missing.extend(
        plan.objects()
            .filter_map(resources::of)
            .filter(|k| plan.wait_for.contains(&plan::crd_name(k))),
    );
    let (check, local): (Vec<Object>, Vec<Object>) = plan
        .objects()
        .filter(|o| kind(o) != "CustomResourceDefinition")
        .filter(|o| accepted.is_none_or(|a| !a.objects.contains(o)))
        .cloned()
        .partition(|o| plan::can_dry_run(o, state.namespace_exists, &missing));
    let dry = ApplyOptions {
        dry_run: true,
        ..options
    };
    let nothing_live = Live::default();
    let (dry_run, schemas) = futures::join!(
        apply::apply_all(cluster, &check, &nothing_live, dry, IN_FLIGHT),
        against_schemas(cluster, plan, &local)
    );
    dry_run
        .into_iter()
        .filter_map(|r| match r {
            Err(e @ ApplyError::Invalid { .. }) => Some(e),
            _ => None,
        })
        .chain(schemas)
        .collect()
}

/// What the server cannot dry-run yet (its namespace or CRD is not there, or its CRD is about
/// to change) is checked against the schema it will be judged by: the CRD the plan applies, or
/// the one the server publishes for its type. An object no schema is found for is left to the
/// apply.
async fn against_schemas(cluster: &Cluster, plan: &Plan, objects: &[Object]) -> Vec<ApplyError> {
    if objects.is_empty() {
        return Vec::new();
    }
    let crds: Vec<&Object> = plan
        .objects()
        .filter(|o| kind(o) == "CustomResourceDefinition")
        .collect();
    let from_crds = schema::crd_schemas(&crds);
    let gvk = |o: &Object| {
        let av = api_version(o);
        let (group, version) = av.rsplit_once('/').unwrap_or(("", av));
        (group.to_string(), version.to_string(), kind(o).to_string())
    };
    let server_side: Vec<&Object> = objects
        .iter()
        .filter(|o| !from_crds.contains_key(&gvk(o)))
        .collect();
    let published = if server_side.is_empty() {
        None
    } else {
        match schema::Published::index(cluster).await {
            Ok(mut p) => {
                p.load(
                    cluster,
                    server_side
                        .iter()
                        .map(|o| schema::group_version_path(api_version(o))),
                )
                .await;
                Some(p)
            }
            // A server that publishes no OpenAPI v3 leaves these to the apply.
            Err(_) => None,
        }
    };
    // Each type's schema once, however many objects it has.
    let mut resolved = std::collections::HashMap::new();
    for o in &server_side {
        resolved.entry(gvk(o)).or_insert_with(|| {
            published
                .as_ref()
                .and_then(|p| p.schema(api_version(o), kind(o)))
        });
    }
    let value = |o: &Object| serde_json::to_value(o).expect("objects serialise");
    objects
        .iter()
        .filter_map(|o| {
            let problems = match from_crds.get(&gvk(o)) {
                Some(schema) => schema::check(&value(o), schema, None, true),
                None => {
                    let (doc, schema) = resolved.get(&gvk(o))?.as_ref()?;
                    schema::check(&value(o), schema, Some(doc), false)
                }
            };
            (!problems.is_empty()).then(|| ApplyError::Invalid {
                object: display_name(o),
                message: format!(
                    "its schema says: {}",
                    problems
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            })
        })
        .collect()
}
