//! `diff`: what `enable` would change, from a server-side dry run of every rendered object,
//! as unified diffs like `kubectl diff` (and the ApplySet members `enable` would prune).
//! Exit status like `kubectl diff`: 0 no differences, 1 differences, 2 and more an error.

use anyhow::Context as _;
use futures::{StreamExt as _, TryStreamExt as _, stream};

use super::args::{ConfigArgs, CrdArgs};
use crate::{
    cluster::{
        Cluster, KubeFlags,
        apply::{self, ApplyError, ApplyOptions, FieldConflict},
        inventory, revision,
    },
    exit::Verdict,
    model::{
        Object, diff, kind,
        resources::{self, display_name},
    },
    output::{self, Palette},
    pipeline::{self, CrdsFrom, Source},
    plan::{self, ClusterState, Plan},
    render,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    crds: CrdArgs,
    /// Compare the cluster with a recorded revision instead: what `rollback N` would change
    #[arg(long, value_name = "N", value_parser = super::args::counting_number, conflicts_with_all = ["file", "set", "crds_from"])]
    revision: Option<u32>,
}

/// One object of the plan: what is live, and what `enable` would store.
struct Compared {
    object: Object,
    live: Option<Object>,
    merged: Merged,
}

/// What `enable` would store, as far as the server can tell us.
enum Merged {
    /// The server's answer to a dry-run apply.
    DryRun(Object),
    /// The planned form: the server cannot dry-run it before `enable` creates its namespace
    /// or CRD.
    Rendered(Object),
    /// Another manager owns fields: `enable` stops unless `--force-conflicts`; `forced` is the
    /// server's answer to a forced dry run, what `--force-conflicts` would store.
    Conflict {
        conflicts: Vec<FieldConflict>,
        forced: Object,
    },
}

pub async fn run(flags: &KubeFlags, args: Args) -> anyhow::Result<Verdict> {
    let offline = args.config.load(flags)?;
    let cluster = Cluster::connect(flags).await?;
    let namespace = offline.namespace.clone();
    let cluster = Cluster {
        namespace: namespace.clone(),
        ..cluster
    };

    let (state, plan) = match args.revision {
        Some(n) => {
            revision::list_installed(&cluster).await?;
            let (_, payload) = revision::read(&cluster, n).await?;
            planned(&cluster, Source::Revision(payload.objects)).await?
        }
        None => {
            // The configuration enable would apply: the stored one, changed by --set, unless -f.
            let loaded = args.config.load_for(flags, &cluster).await?;
            let (config, credentials) = (loaded.config, loaded.credentials);
            if !credentials.is_empty() {
                // Not a member, so not diffed: said, without its values.
                crate::output::diag!(
                    "note: enable would write {} into Secret {namespace}/{} first ({})",
                    crate::output::plural(credentials.0.len(), "credential"),
                    crate::config::credentials::SECRET_NAME,
                    credentials.paths().join(", ")
                );
            }
            let crds = Some(CrdsFrom::new(
                args.crds.source(),
                args.crds.crds_from.clone(),
            ));
            let source = Source::Config {
                config: Box::new(config),
                crds,
            };
            planned(&cluster, source).await?
        }
    };
    let missing_crds = plan::missing_crds(&state, plan.objects());
    let planned: Vec<Object> = plan
        .objects()
        .chain(&plan.adopted_namespace)
        .cloned()
        .collect();
    // The inventory just read holds the live members: only what it lacks is read one by one.
    // It read the CRDs' metadata alone: when CRDs are compared, the member CRDs are read whole.
    let whole_crds = match &state.inventory {
        Some(i)
            if planned
                .iter()
                .any(|o| kind(o) == "CustomResourceDefinition") =>
        {
            inventory::whole_crds(&cluster, i).await?
        }
        _ => Vec::new(),
    };
    let members: std::collections::HashMap<apply::Key, &Object> = state
        .inventory
        .iter()
        .flat_map(|i| i.members.iter().chain(std::iter::once(&i.parent)))
        .chain(&whole_crds)
        .map(|m| (apply::key(m), m))
        .collect();
    let compared: Vec<Compared> = stream::iter(planned.iter().map(|o| {
        let dry_run = plan::can_dry_run(o, state.namespace_exists, &missing_crds);
        let known = members.get(&apply::key(o)).map(|m| (*m).clone());
        compare(&cluster, o, dry_run, known)
    }))
    .buffered(pipeline::IN_FLIGHT)
    .try_collect()
    .await?;

    // Assess.
    let pruned = &plan.prune;
    let mut notes = notes(&plan, &state, &namespace, &missing_crds);
    let mut diffs = Vec::new();
    let mut differences = 0;
    for c in &compared {
        let merged = match &c.merged {
            Merged::DryRun(m) | Merged::Rendered(m) => m,
            Merged::Conflict { conflicts, forced } => {
                differences += 1;
                notes.push(conflict_note(&c.object, conflicts));
                forced
            }
        };
        if let Some(d) = diff::object_diff(&diff::path_of(&c.object), c.live.as_ref(), Some(merged))
        {
            if !matches!(c.merged, Merged::Conflict { .. }) {
                differences += 1;
            }
            diffs.push(d);
        }
    }
    for o in pruned {
        notes.push(format!(
            "{} is in the inventory but no longer rendered: enable would prune it",
            display_name(o)
        ));
        if let Some(d) = diff::object_diff(&diff::path_of(o), Some(o), None) {
            differences += 1;
            diffs.push(d);
        }
    }

    // Print: notes are diagnostics, the diffs are the data.
    let err = Palette::stderr();
    for n in &notes {
        crate::output::diag!("{} {n}", err.warn("note:"));
    }
    if !diffs.is_empty() {
        output::print(&diff::paint(&diffs.concat(), &Palette::stdout()))?;
    }
    Ok(if differences > 0 {
        Verdict::Differences
    } else {
        Verdict::Done
    })
}

/// What `diff` says before the diffs: the plan's warnings, what enable reuses, and what the
/// server could not dry-run.
fn notes(
    plan: &Plan,
    state: &ClusterState,
    namespace: &str,
    missing_crds: &[&'static resources::Known],
) -> Vec<String> {
    let mut notes = plan.warnings.clone();
    if let Some(reuse) = &plan.reuse {
        notes.push(format!(
            "another Prometheus Operator is installed ({}): enable reuses it and installs no operator, Prometheus or Alertmanager of its own",
            reuse.operator
        ));
    }
    if let Some(h) = &state.exporter {
        notes.push(format!(
            "{} serves port {} on the nodes: enable scrapes it and deploys no node-exporter of its own",
            h.describe(),
            h.port
        ));
    }
    if !state.namespace_exists {
        notes.push(format!(
            "namespace {namespace:?} does not exist yet (enable creates it first): the objects in it \
             are shown as rendered, without a server dry run"
        ));
    }
    if !missing_crds.is_empty() {
        let names: Vec<String> = missing_crds.iter().map(|k| plan::crd_name(k)).collect();
        notes.push(format!(
            "the CRDs are not installed ({}; enable installs them first): custom resources are \
             shown as rendered, without a server dry run",
            names.join(", ")
        ));
    }
    notes
}

/// What the cluster holds and the plan for `source`: the same reads and detection (another
/// operator, another exporter) and the same plan as `enable` (or `rollback`) would make.
async fn planned(cluster: &Cluster, source: Source) -> anyhow::Result<(ClusterState, Plan)> {
    let objects = match &source {
        Source::Revision(objects) => objects.clone(),
        Source::Config { config, .. } => render::render(config).objects,
    };
    let state = pipeline::observe(cluster, &cluster.namespace, &objects).await?;
    let plan = pipeline::plan(source, &state).await?;
    Ok((state, plan))
}

/// `known`: the live object when the inventory already has it; else it is read.
async fn compare(
    cluster: &Cluster,
    o: &Object,
    dry_run: bool,
    known: Option<Object>,
) -> anyhow::Result<Compared> {
    let name = o.metadata.name.as_deref().unwrap_or("");
    let api = resources::api_for(&cluster.client, o)
        .with_context(|| format!("{}: not a type automon knows", display_name(o)))?;
    if !dry_run {
        // Its namespace or CRD is missing, so nothing of it can be live.
        return Ok(Compared {
            object: o.clone(),
            live: None,
            merged: Merged::Rendered(o.clone()),
        });
    }
    let live = match known {
        Some(live) => Some(live),
        None => api
            .get_opt(name)
            .await
            .map_err(|e| cluster.target.classify(e))
            .with_context(|| format!("reading {}", display_name(o)))?,
    };
    let dry = |force| ApplyOptions {
        dry_run: true,
        force,
    };
    let merged = match apply::server_side_apply(cluster, o, dry(false)).await {
        Ok(m) => Merged::DryRun(with_types(m, o)),
        Err(ApplyError::Conflict { conflicts, .. }) => Merged::Conflict {
            conflicts,
            forced: with_types(
                apply::server_side_apply(cluster, o, dry(true))
                    .await
                    .context("server-side dry run with --force-conflicts")?,
                o,
            ),
        },
        Err(e) => return Err(e).context("server-side dry run"),
    };
    Ok(Compared {
        object: o.clone(),
        live: live.map(|l| with_types(l, o)),
        merged,
    })
}

fn conflict_note(o: &Object, conflicts: &[FieldConflict]) -> String {
    let fields: Vec<String> = conflicts
        .iter()
        .map(|c| format!("{} is owned by {:?}", c.field, c.manager))
        .collect();
    format!(
        "conflict: {}: {}; enable stops here unless --force-conflicts (the diff shows what it \
         would change)",
        display_name(o),
        fields.join(", ")
    )
}

/// Objects read back from the API carry apiVersion and kind only sometimes (never as list
/// items); set them from the rendered object so that both sides of a diff print them.
fn with_types(mut o: Object, like: &Object) -> Object {
    if o.types.is_none() {
        o.types = like.types.clone();
    }
    o
}

#[cfg(test)]
fn known(group_kind: &str) -> &'static resources::Known {
    resources::by_group_kind(group_kind).expect("a type in resources::KNOWN")
}

// ---------------------------------------------------------------------------------------------
#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        cluster::inventory,
        plan::{can_dry_run, crd_name, is_custom},
    };
    use serde_json::json;

    fn obj(api_version: &str, kind: &str, ns: Option<&str>, name: &str) -> Object {
        let mut meta = json!({"name": name});
        if let Some(ns) = ns {
            meta["namespace"] = ns.into();
        }
        crate::render::custom(json!({"apiVersion": api_version, "kind": kind, "metadata": meta}))
    }

    #[test]
    fn only_members_no_longer_rendered_are_pruned_never_crds_or_the_admin_secret() {
        let rendered = [
            obj("apps/v1", "Deployment", Some("mon"), "grafana"),
            obj(
                "rbac.authorization.k8s.io/v1",
                "ClusterRole",
                None,
                "mon-prometheus",
            ),
        ];
        let members = [
            obj("apps/v1", "Deployment", Some("mon"), "grafana"),
            obj("apps/v1", "Deployment", Some("mon"), "old-exporter"),
            obj(
                "rbac.authorization.k8s.io/v1",
                "ClusterRole",
                None,
                "mon-prometheus",
            ),
            obj("v1", "ConfigMap", Some("mon"), "grafana"),
            obj(
                "v1",
                "Secret",
                Some("mon"),
                crate::render::grafana::ADMIN_SECRET,
            ),
            obj(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                "prometheuses.monitoring.coreos.com",
            ),
        ];
        let names: Vec<String> = inventory::stale(&members, &rendered)
            .into_iter()
            .map(display_name)
            .collect();
        assert_eq!(names, ["deployment.apps/old-exporter", "configmap/grafana"]);
    }

    #[test]
    fn custom_resources_are_told_from_built_in_types() {
        let custom: Vec<&str> = resources::KNOWN
            .iter()
            .filter(|k| is_custom(k))
            .map(|k| k.kind)
            .collect();
        assert!(custom.contains(&"Prometheus"), "{custom:?}");
        assert!(custom.contains(&"ServiceMonitor"), "{custom:?}");
        for builtin in [
            "Deployment",
            "ClusterRole",
            "NetworkPolicy",
            "CustomResourceDefinition",
            "PodDisruptionBudget",
            "ConfigMap",
        ] {
            assert!(!custom.contains(&builtin), "{builtin} in {custom:?}");
        }
        assert_eq!(
            crd_name(known("Prometheus.monitoring.coreos.com")),
            "prometheuses.monitoring.coreos.com"
        );
    }

    #[test]
    fn dry_runs_wait_for_their_namespace_and_crd() {
        let deploy = obj("apps/v1", "Deployment", Some("mon"), "grafana");
        let role = obj("rbac.authorization.k8s.io/v1", "ClusterRole", None, "mon-x");
        let prom = obj(
            "monitoring.coreos.com/v1",
            "Prometheus",
            Some("mon"),
            "automon",
        );
        let prom_type = known("Prometheus.monitoring.coreos.com");
        assert!(can_dry_run(&deploy, true, &[]));
        assert!(!can_dry_run(&deploy, false, &[]));
        assert!(can_dry_run(&role, false, &[]));
        assert!(can_dry_run(&prom, true, &[]));
        assert!(!can_dry_run(&prom, true, &[prom_type]));
    }

    #[test]
    fn conflict_notes_name_object_field_and_manager() {
        let note = conflict_note(
            &obj("apps/v1", "Deployment", Some("mon"), "grafana"),
            &[FieldConflict {
                field: ".spec.replicas".into(),
                manager: "kubectl".into(),
            }],
        );
        assert!(
            note.starts_with(
                r#"conflict: deployment.apps/grafana: .spec.replicas is owned by "kubectl""#
            ),
            "{note}"
        );
    }
}
