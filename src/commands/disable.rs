//! `disable`: deletes exactly the inventory (the ApplySet's members), in reverse phase order,
//! waiting for each step to be gone before the next. Keeps the CRDs while custom resources
//! outside the inventory use them, and the Prometheus/Alertmanager/Grafana volumes unless
//! `--delete-data`.
//! Gather (inventory, foreign custom resources, volumes) → plan ([`crate::plan::removal`],
//! pure) → confirm → delete.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead, IsTerminal},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use kube::{
    api::{Api, ListParams},
    runtime::watcher,
};

use crate::model;
use crate::{
    cluster::{
        Cluster, KubeFlags,
        error::{ClusterError, humantime},
        inventory::{self, Inventory, InventoryError},
        parse_request_timeout,
    },
    exit::Verdict,
    model::{
        Object,
        names::APPLYSET_PART_OF_LABEL,
        resources::{self, Known},
    },
    output::{self, Palette},
    plan::removal::{
        KeptNamespace, NamespaceContents, NamespaceKept, OPERATOR_NAME_LABEL, Plan, counts_by_kind,
        crd_resource, data_claims, deleted_name, kept_notes, not_automons, outside_inventory, plan,
        with_revisions,
    },
    render,
};

/// How many deletes of one step are in flight at once.
const DELETES_IN_FLIGHT: usize = 16;

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DryRun {
    /// Print what would be deleted; send nothing
    Client,
    /// Send the deletes as a server-side dry run; nothing is persisted
    Server,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Delete without asking for confirmation (required when stdin is not a terminal)
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Also delete the PersistentVolumeClaims of Prometheus, Alertmanager and Grafana (their data)
    #[arg(long)]
    pub delete_data: bool,
    /// Only show what would be deleted: client (send nothing) or server (server-side dry run)
    #[arg(long, value_enum, value_name = "client|server", num_args = 0..=1, require_equals = true, default_missing_value = "client")]
    pub dry_run: Option<DryRun>,
    /// How long to wait for everything to be gone (e.g. 90s, 5m); 0 waits as long as it takes
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_request_timeout)]
    pub timeout: Duration,
}

/// The revision Secrets in the stack's namespace and the credentials Secret, metadata only
/// (their data is never read here): they go with the stack, though not ApplySet members.
async fn list_revisions(cluster: &Cluster) -> Result<Vec<Object>, ClusterError> {
    let api: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let list = api
        .list_metadata(&ListParams::default().labels(crate::cluster::revision::REVISION_LABEL))
        .await
        .map_err(|e| cluster.target.classify(e))?;
    let credentials = api
        .get_metadata_opt(crate::config::credentials::SECRET_NAME)
        .await
        .map_err(|e| cluster.target.classify(e))?;
    Ok(list
        .items
        .into_iter()
        .chain(credentials)
        .map(|m| model::metadata_only("v1", "Secret", m.metadata))
        .collect())
}

pub async fn run(flags: &KubeFlags, args: Args) -> anyhow::Result<Verdict> {
    let cluster = Cluster::connect(flags).await?;
    let err = Palette::stderr();
    // Whole CRDs: their spec names the custom resources that would go with them.
    let inventory = match inventory::read(&cluster, inventory::Crds::Whole).await {
        Ok(i) => i,
        Err(InventoryError::NotInstalled { namespace }) => {
            crate::output::diag!(
                "automon is not installed in namespace {namespace:?}: nothing to delete (use -n for another namespace)"
            );
            return Ok(Verdict::Done);
        }
        Err(e) => return Err(e.into()),
    };
    let (foreign, (watchers, borrowers), claims) = futures::try_join!(
        foreign_custom_resources(&cluster, &inventory),
        other_stacks(&cluster, &inventory),
        list_claims(&cluster),
    )?;
    let claims = data_claims(&inventory, claims);
    let contents = namespace_contents(&cluster, &inventory, &claims).await;
    let mut plan = plan(
        &inventory,
        &foreign,
        &watchers,
        claims,
        &contents,
        args.delete_data,
    );
    with_revisions(&mut plan, list_revisions(&cluster).await?);
    let mut notes = kept_notes(&plan, &cluster.namespace);
    notes.extend(crds_not_installed(&cluster, &inventory).await);
    notes.extend(borrowers.iter().map(|ns| {
        format!(
            "automon's stack in namespace {ns} scrapes this stack's node-exporter: its nodes go unmonitored until `kubectl automon enable -n {ns}` deploys its own"
        )
    }));

    if args.dry_run.is_none() && !args.yes {
        if !std::io::stdin().is_terminal() {
            crate::output::diag!(
                "{} refusing to delete {} without confirmation: stdin is not a terminal; re-run with --yes (or --dry-run to see what would go)",
                err.bad("error:"),
                output::plural(plan.objects().count(), "object")
            );
            return Ok(Verdict::Usage);
        }
        if !confirm(&plan, &notes, &cluster.namespace)? {
            // As `kubectl delete -i`: declining is not an error.
            crate::output::diag!("nothing deleted");
            return Ok(Verdict::Done);
        }
    }

    let started = Instant::now();
    let deadline = (!args.timeout.is_zero()).then(|| started + args.timeout);
    let suffix = match args.dry_run {
        None => "",
        Some(DryRun::Client) => " (dry run)",
        Some(DryRun::Server) => " (server dry run)",
    };
    let mut deleted = 0;
    for step in &plan.steps {
        if args.dry_run != Some(DryRun::Client) {
            delete_step(&cluster, step, args.dry_run.is_some()).await?;
        }
        for o in step {
            output::print(&format!("{} deleted{suffix}", deleted_name(o)))?;
        }
        deleted += step.len();
        if args.dry_run.is_none() {
            wait_gone(&cluster, step, deadline, args.timeout).await?;
        }
    }
    if let Some(KeptNamespace {
        name,
        why: NamespaceKept::Existed,
    }) = &plan.kept_namespace
        && args.dry_run != Some(DryRun::Client)
    {
        release_namespace(&cluster, name, args.dry_run.is_some()).await?;
        output::print(&format!(
            "namespace/{name} kept (it was there before automon); the labels automon added are removed{suffix}"
        ))?;
    }
    for note in &notes {
        crate::output::diag!("{} {note}", err.warn("warning:"));
    }
    output::print(&format!(
        "automon disabled in namespace {:?}: {} deleted{suffix} in {}",
        cluster.namespace,
        output::plural(deleted, "object"),
        humantime(round_tenths(started.elapsed()))
    ))?;
    Ok(Verdict::Done)
}

fn round_tenths(d: Duration) -> Duration {
    Duration::from_millis((d.as_millis() as u64).div_ceil(100) * 100)
}

/// Lists what will go, by kind, and what stays; asks on the terminal.
fn confirm(plan: &Plan, notes: &[String], namespace: &str) -> anyhow::Result<bool> {
    let rows: Vec<Vec<String>> = counts_by_kind(plan)
        .into_iter()
        .map(|(k, n)| vec![k, n.to_string()])
        .collect();
    crate::output::diag!(
        "This deletes automon from namespace {namespace:?} (and its cluster-wide objects):"
    );
    crate::output::diag!("{}", output::table(&["kind", "count"], &rows));
    for note in notes {
        crate::output::diag!("{note}");
    }
    output::prompt(&format!(
        "Delete {}? [y/N] ",
        output::plural(plan.objects().count(), "object")
    ));
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("cannot read the answer")?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES"))
}

/// For each CRD in the inventory, the custom resources of it that are not members (one list per
/// CRD, all namespaces, metadata only).
async fn foreign_custom_resources(
    cluster: &Cluster,
    inventory: &Inventory,
) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let mut out = BTreeMap::new();
    for crd in inventory
        .members
        .iter()
        .filter(|o| model::kind(o) == "CustomResourceDefinition")
    {
        let name = crd.metadata.name.clone().unwrap_or_default();
        // A CRD we cannot read is kept: never delete what might still be in use.
        let Some(ar) = crd_resource(crd) else {
            out.insert(
                name.clone(),
                vec![format!("(cannot read the spec of {name})")],
            );
            continue;
        };
        let api: Api<Object> = Api::all_with(cluster.client.clone(), &ar);
        let listed = match api.list_metadata(&ListParams::default()).await {
            Ok(l) => l
                .items
                .into_iter()
                .map(|m| (m.metadata.namespace, m.metadata.name.unwrap_or_default()))
                .collect::<Vec<_>>(),
            Err(kube::Error::Api(s)) if s.code == 404 => Vec::new(),
            Err(e) => {
                return Err(anyhow::Error::new(cluster.target.classify(e))
                    .context(format!("cannot list the custom resources of {name}")));
            }
        };
        out.insert(name, outside_inventory(&ar, &listed, &inventory.members));
    }
    Ok(out)
}

/// What the other stacks in the cluster need of this one: who else watches its CRDs (other
/// automon stacks, every Prometheus Operator that is not automon's) and which automon stacks
/// scrape its node-exporter instead of running their own. One list of automon's ApplySet
/// parents (all namespaces, metadata) serves both, with the Deployments when the inventory
/// holds CRDs. When the lists cannot be read, the CRDs are kept: never delete what might still
/// be in use.
async fn other_stacks(
    cluster: &Cluster,
    inventory: &Inventory,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    use crate::model::names::{APPLYSET_ID_LABEL, PART_OF, PART_OF_LABEL};
    use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};
    let has = |kind: &str, name: Option<&str>| {
        inventory.members.iter().any(|o| {
            model::kind(o) == kind && name.is_none_or(|n| o.metadata.name.as_deref() == Some(n))
        })
    };
    let (crds, exporter) = (
        has("CustomResourceDefinition", None),
        has("DaemonSet", Some(render::node_exporter::NAME)),
    );
    if !crds && !exporter {
        return Ok((Vec::new(), Vec::new()));
    }
    let parents: Api<ConfigMap> = Api::all(cluster.client.clone());
    let deployments: Api<Deployment> = Api::all(cluster.client.clone());
    let parents_of =
        ListParams::default().labels(&format!("{PART_OF_LABEL}={PART_OF},{APPLYSET_ID_LABEL}"));
    let all = ListParams::default();
    let read = futures::try_join!(parents.list_metadata(&parents_of), async {
        match crds {
            true => deployments.list(&all).await.map(|l| l.items),
            false => Ok(Vec::new()),
        }
    });
    let (parents, deployments) = match read {
        Ok(lists) => lists,
        Err(kube::Error::Api(s)) if s.code == 403 => {
            let unseen = format!(
                "what cannot be seen ({}: may not list configmaps and deployments in all namespaces)",
                s.message
            );
            return Ok((crds.then_some(unseen).into_iter().collect(), Vec::new()));
        }
        Err(e) => return Err(cluster.target.classify(e).into()),
    };
    let others = || {
        parents
            .items
            .iter()
            .filter(|p| p.metadata.namespace.as_deref() != Some(cluster.namespace.as_str()))
    };
    let mut watchers: Vec<String> = Vec::new();
    if crds {
        watchers.extend(others().filter_map(|p| {
            let ns = p.metadata.namespace.as_deref()?;
            Some(format!("automon's stack in namespace {ns}"))
        }));
        watchers.extend(
            deployments
                .iter()
                .filter_map(crate::preflight::operator_deployment)
                .map(|d| {
                    format!(
                        "the Prometheus Operator of deployment {}/{}",
                        d.namespace, d.name
                    )
                }),
        );
        watchers.sort();
        watchers.dedup();
    }
    let ours = format!("{}/{}", cluster.namespace, render::node_exporter::NAME);
    let borrowers = others()
        .filter(|p| {
            exporter
                && p.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(crate::model::names::EXPORTER_FROM))
                    == Some(&ours)
        })
        .filter_map(|p| p.metadata.namespace.clone())
        .collect();
    Ok((watchers, borrowers))
}

/// The prometheus-operator CRDs in the cluster that automon did not install (the stack found
/// them at a compatible version, or reused another operator's): they stay, and disable says so.
async fn crds_not_installed(cluster: &Cluster, inventory: &Inventory) -> Option<String> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let members: BTreeSet<&str> = inventory
        .members
        .iter()
        .filter(|o| model::kind(o) == "CustomResourceDefinition")
        .filter_map(|o| o.metadata.name.as_deref())
        .collect();
    let api: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
    let listed = api.list_metadata(&ListParams::default()).await.ok()?;
    let theirs: Vec<String> = listed
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .filter(|n| {
            n.ends_with(&format!(".{}", crate::cluster::crds::GROUP))
                && !members.contains(n.as_str())
        })
        .collect();
    (!theirs.is_empty()).then(|| {
        format!(
            "kept {} of {} ({}): automon did not install them (they were in the cluster before it)",
            output::plural(theirs.len(), "customresourcedefinition"),
            crate::cluster::crds::GROUP,
            match theirs.len() {
                0..=3 => theirs.join(", "),
                n => format!("{} and {} more", theirs[..3].join(", "), n - 3),
            }
        )
    })
}

/// What the stack's namespace holds that automon did not create (see [`not_automons`]): one list
/// per namespaced type automon knows, metadata only. A list the API server refuses makes the
/// answer unknown, and an unknown answer keeps the namespace.
async fn namespace_contents(
    cluster: &Cluster,
    inventory: &Inventory,
    claims: &[Object],
) -> NamespaceContents {
    use futures::{StreamExt as _, TryStreamExt as _};
    let types = resources::KNOWN
        .iter()
        .filter(|k| k.scope == resources::Scope::Namespaced);
    let listed: Result<Vec<Vec<Object>>, String> = futures::stream::iter(types)
        .map(|known| async move {
            crate::cluster::list_known_metadata(&cluster.client, known, Some(&cluster.namespace))
                .await
                .map_err(|e| {
                    format!(
                        "listing {} in {}: {}",
                        known.qualified_plural(),
                        cluster.namespace,
                        cluster.target.classify(e)
                    )
                })
        })
        .buffer_unordered(DELETES_IN_FLIGHT)
        .try_collect()
        .await;
    match listed {
        Ok(lists) => {
            let all: Vec<Object> = lists.into_iter().flatten().collect();
            match not_automons(&all, inventory, claims) {
                found if found.is_empty() => NamespaceContents::OnlyAutomons,
                found => NamespaceContents::Others(found),
            }
        }
        Err(why) => NamespaceContents::Unknown(why),
    }
}

/// Takes back what automon applied to a namespace that was there before it: an apply of the bare
/// namespace under automon's field manager removes every label only automon set, and leaves
/// the ones another manager also set.
async fn release_namespace(cluster: &Cluster, name: &str, dry_run: bool) -> anyhow::Result<()> {
    let bare = render::custom(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}
    }));
    let options = crate::cluster::apply::ApplyOptions {
        dry_run,
        force: false,
    };
    crate::cluster::apply::server_side_apply(cluster, &bare, options)
        .await
        .with_context(|| format!("cannot remove automon's labels from namespace {name}"))?;
    Ok(())
}

/// The namespace's volume claims that carry the operator's name label.
async fn list_claims(cluster: &Cluster) -> anyhow::Result<Vec<Object>> {
    let known = resources::by_group_kind("PersistentVolumeClaim").expect("a known type");
    let api = known.api(&cluster.client, Some(&cluster.namespace));
    let list = api
        .list(&ListParams::default().labels(OPERATOR_NAME_LABEL))
        .await
        .map_err(|e| cluster.target.classify(e))
        .context("cannot list the persistentvolumeclaims")?;
    Ok(list
        .items
        .into_iter()
        .map(|mut o| {
            o.types.get_or_insert_with(|| kube::api::TypeMeta {
                api_version: known.api_version.into(),
                kind: known.kind.into(),
            });
            o
        })
        .collect())
}

/// Sends every delete of a step at once; an object already gone is fine.
async fn delete_step(cluster: &Cluster, step: &[Object], dry_run: bool) -> anyhow::Result<()> {
    use futures::StreamExt as _;
    let results: Vec<_> = futures::stream::iter(step)
        .map(|o| async move {
            crate::cluster::apply::delete(cluster, o, dry_run)
                .await
                .with_context(|| format!("cannot delete {}", deleted_name(o)))
        })
        .buffer_unordered(DELETES_IN_FLIGHT)
        .collect()
        .await;
    results
        .into_iter()
        .collect::<anyhow::Result<Vec<()>>>()
        .map(|_| ())
}

/// `deployments.apps` in `Some("automon")`; `None` for cluster-scoped types.
type TypeInNamespace = (String, Option<String>);

/// Watches each type and namespace of the step (members only, by their ApplySet label) until
/// no object of the step is left (same UID: an object recreated by someone else under the same
/// name is not ours).
async fn wait_gone(
    cluster: &Cluster,
    step: &[Object],
    deadline: Option<Instant>,
    timeout: Duration,
) -> anyhow::Result<()> {
    let mut groups: BTreeMap<TypeInNamespace, (&'static Known, Vec<&Object>)> = BTreeMap::new();
    for o in step {
        let Some(known) = resources::of(o) else {
            continue;
        };
        groups
            .entry((known.qualified_plural(), o.metadata.namespace.clone()))
            .or_insert((known, Vec::new()))
            .1
            .push(o);
    }
    let sources = groups
        .iter()
        .map(|((_, namespace), (known, objects))| {
            // Members share the ApplySet label: watch only them.
            let label = objects
                .iter()
                .map(|o| {
                    o.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(APPLYSET_PART_OF_LABEL))
                })
                .collect::<Option<BTreeSet<_>>>()
                .filter(|s| s.len() == 1)
                .and_then(|s| s.into_iter().next().cloned());
            let selection = match &label {
                Some(id) => {
                    watcher::Config::default().labels(&format!("{APPLYSET_PART_OF_LABEL}={id}"))
                }
                None => watcher::Config::default(),
            };
            crate::cluster::watch::Source {
                api: known.api(&cluster.client, namespace.as_deref()),
                selection,
            }
        })
        .collect();
    // Named from the step's own objects: watched list items come without their type.
    let left = |seen: &[Vec<Object>]| -> Vec<String> {
        let present: BTreeSet<&str> = seen
            .iter()
            .flatten()
            .filter_map(|o| o.metadata.uid.as_deref())
            .collect();
        step.iter()
            .filter(|o| {
                o.metadata
                    .uid
                    .as_deref()
                    .is_some_and(|u| present.contains(u))
            })
            .map(resources::display_name)
            .collect()
    };
    // No deadline: a day stands for "until it is done".
    let until = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
    // A namespace whose deletion the API server's discovery holds will not finish by waiting:
    // stop at once and name what holds it.
    let discovery_fails = |seen: &[Vec<Object>]| {
        seen.iter()
            .flatten()
            .any(crate::cluster::blocker::discovery_fails)
    };
    let waited = crate::cluster::watch::until(cluster, sources, until, |seen| {
        left(seen).is_empty() || discovery_fails(seen)
    })
    .await
    .context("cannot check what is left")?;
    let names = left(&waited.seen);
    if names.is_empty() {
        return Ok(());
    }
    let mut why = Vec::new();
    for ns in step.iter().filter(|o| model::kind(o) == "Namespace") {
        let name = ns.metadata.name.as_deref().unwrap_or_default();
        why.extend(crate::cluster::blocker::explain(cluster, name).await);
    }
    let waited_for = if discovery_fails(&waited.seen) {
        "cannot finish deleting".to_string()
    } else {
        format!(
            "timed out after {} (--timeout) waiting for",
            humantime(timeout)
        )
    };
    if why.is_empty() {
        anyhow::bail!(
            "{waited_for} {} to be deleted; a finalizer may hold them (see kubectl get {} -o yaml)",
            names.join(", "),
            names.first().map(String::as_str).unwrap_or("")
        );
    }
    anyhow::bail!(
        "{waited_for} {}: the namespace controller says\n  {}\n(it finishes by itself once that is fixed)",
        names.join(", "),
        why.join("\n  ")
    );
}
