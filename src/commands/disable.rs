//! `disable`: deletes exactly the inventory (the ApplySet's members), in reverse phase order,
//! waiting for each step to be gone before the next. Keeps the CRDs while custom resources
//! outside the inventory use them, and the Prometheus/Alertmanager volumes unless `--delete-data`.
//! Gather (inventory, foreign custom resources, volumes) → plan (pure) → confirm → delete.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead, IsTerminal},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use kube::{
    api::{Api, ApiResource, GroupVersionKind, ListParams},
    runtime::watcher,
};

use crate::{
    cluster::{Cluster, KubeFlags, parse_request_timeout},
    error::{ClusterError, exit, humantime},
    inventory::{self, Inventory, InventoryError},
    output::{self, Palette},
    render::{
        self, Object, Phase,
        meta::{APPLYSET_PART_OF_LABEL, NAME_LABEL, PARENT_NAME},
    },
    resources::{self, Known},
};

/// The label the operator's StatefulSets (and so their volume claims) carry: the name of the
/// `Prometheus` or `Alertmanager` they belong to.
pub const OPERATOR_NAME_LABEL: &str = "operator.prometheus.io/name";

/// How many deletes of one step are in flight at once.
const DELETES_IN_FLIGHT: usize = 16;

/// How many foreign custom resources to name when a CRD is kept.
const NAMED_EXAMPLES: usize = 3;

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
    /// Also delete the PersistentVolumeClaims of Prometheus and Alertmanager (their data)
    #[arg(long)]
    pub delete_data: bool,
    /// Only show what would be deleted: client (send nothing) or server (server-side dry run)
    #[arg(long, value_enum, value_name = "client|server", num_args = 0..=1, require_equals = true, default_missing_value = "client")]
    pub dry_run: Option<DryRun>,
    /// How long to wait for everything to be gone (e.g. 90s, 5m); 0 waits as long as it takes
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_request_timeout)]
    pub timeout: Duration,
}

/// A CRD that stays, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptCrd {
    /// `servicemonitors.monitoring.coreos.com`
    pub name: String,
    /// `namespace/name` of the custom resources outside the inventory (all of them).
    pub users: Vec<String>,
}

/// What `disable` will do, decided without the cluster.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Deleted one step at a time; every object of a step is gone before the next starts.
    pub steps: Vec<Vec<Object>>,
    pub kept_crds: Vec<KeptCrd>,
    /// Volume claims kept because `--delete-data` was not given.
    pub kept_pvcs: Vec<Object>,
    /// The Namespace, kept because it holds kept volume claims.
    pub kept_namespace: Option<String>,
}

impl Plan {
    pub fn objects(&self) -> impl Iterator<Item = &Object> {
        self.steps.iter().flatten()
    }
}

/// Within a phase: custom resources first (the operator still runs to let go of them), then
/// workloads, then the rest, RBAC last (so nothing loses its permissions while it shuts down).
fn tier(o: &Object) -> u8 {
    let group = resources::of(o).map(Known::group).unwrap_or_default();
    let custom = group.contains('.') && !group.ends_with(".k8s.io");
    match render::kind(o) {
        _ if custom => 0,
        "Deployment" | "DaemonSet" | "StatefulSet" => 1,
        "ServiceAccount" | "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding" => 3,
        _ => 2,
    }
}

fn is_parent(o: &Object) -> bool {
    render::kind(o) == "ConfigMap" && o.metadata.name.as_deref() == Some(PARENT_NAME)
}

/// The volume claims that hold the data of the inventory's `Prometheus` and `Alertmanager`
/// objects. Rule: a claim in the stack's namespace whose `operator.prometheus.io/name` label names
/// one of them and whose `app.kubernetes.io/name` says which kind (`prometheus`/`alertmanager`) —
/// the labels the operator puts on its StatefulSet's selector, which the StatefulSet controller
/// copies onto every claim it creates from `volumeClaimTemplates`.
pub fn data_claims(inventory: &Inventory, claims: Vec<Object>) -> Vec<Object> {
    let owners: BTreeSet<(String, String)> = inventory
        .members
        .iter()
        .filter(|o| matches!(render::kind(o), "Prometheus" | "Alertmanager"))
        .map(|o| {
            (
                render::kind(o).to_lowercase(),
                o.metadata.name.clone().unwrap_or_default(),
            )
        })
        .collect();
    let namespace = inventory.parent.metadata.namespace.as_deref();
    claims
        .into_iter()
        .filter(|c| c.metadata.namespace.as_deref() == namespace)
        .filter(|c| {
            let labels = c.metadata.labels.clone().unwrap_or_default();
            match (labels.get(NAME_LABEL), labels.get(OPERATOR_NAME_LABEL)) {
                (Some(app), Some(name)) => owners.contains(&(app.clone(), name.clone())),
                _ => false,
            }
        })
        .collect()
}

/// The API resource a CRD serves (its storage version), read from the CRD itself so that a CRD
/// automon does not know still gets checked.
pub fn crd_resource(crd: &Object) -> Option<ApiResource> {
    let spec = crd.data.get("spec")?;
    let group = spec.get("group")?.as_str()?;
    let kind = spec.pointer("/names/kind")?.as_str()?;
    let plural = spec.pointer("/names/plural")?.as_str()?;
    let versions = spec.get("versions")?.as_array()?;
    let version = versions
        .iter()
        .find(|v| v.get("storage").and_then(|s| s.as_bool()) == Some(true))
        .or_else(|| versions.first())?
        .get("name")?
        .as_str()?;
    Some(ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, kind),
        plural,
    ))
}

/// `namespace/name` (or `name`) of the listed custom resources of one CRD that are not members.
pub fn outside_inventory(
    resource: &ApiResource,
    listed: &[(Option<String>, String)],
    members: &[Object],
) -> Vec<String> {
    let ours: BTreeSet<(Option<&str>, &str)> = members
        .iter()
        .filter(|m| {
            render::kind(m) == resource.kind
                && render::api_version(m).split('/').next() == Some(resource.group.as_str())
        })
        .map(|m| {
            (
                m.metadata.namespace.as_deref(),
                m.metadata.name.as_deref().unwrap_or_default(),
            )
        })
        .collect();
    let mut out: Vec<String> = listed
        .iter()
        .filter(|(ns, name)| !ours.contains(&(ns.as_deref(), name.as_str())))
        .map(|(ns, name)| match ns {
            Some(ns) => format!("{ns}/{name}"),
            None => name.clone(),
        })
        .collect();
    out.sort();
    out
}

/// The revision Secrets go with the parent: the history of a stack that is gone restores
/// nothing (`helm uninstall` deletes its releases too).
fn with_revisions(plan: &mut Plan, revisions: Vec<Object>) {
    if let Some(step) = plan.steps.iter_mut().find(|s| s.iter().any(is_parent)) {
        step.extend(revisions);
    }
}

/// The revision Secrets in the stack's namespace, metadata only (their data is never read here).
async fn list_revisions(cluster: &Cluster) -> Result<Vec<Object>, ClusterError> {
    let api: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let list = api
        .list_metadata(&ListParams::default().labels(crate::revision::REVISION_LABEL))
        .await
        .map_err(|e| cluster.target.classify(e))?;
    Ok(list
        .items
        .into_iter()
        .map(|m| Object {
            types: Some(kube::api::TypeMeta {
                api_version: "v1".into(),
                kind: "Secret".into(),
            }),
            metadata: m.metadata,
            data: serde_json::Value::Object(Default::default()),
        })
        .collect())
}

/// Decides the order of deletion and what stays. `foreign` maps a CRD's name to the custom
/// resources of it that are not members; `claims` are the data claims found (see [`data_claims`]).
pub fn plan(
    inventory: &Inventory,
    foreign: &BTreeMap<String, Vec<String>>,
    claims: Vec<Object>,
    delete_data: bool,
) -> Plan {
    let mut plan = Plan::default();
    let (mut namespaces, mut crds, mut rest) = (Vec::new(), Vec::new(), Vec::new());
    for o in &inventory.members {
        match render::kind(o) {
            _ if is_parent(o) => {}
            "Namespace" => namespaces.push(o.clone()),
            "CustomResourceDefinition" => crds.push(o.clone()),
            _ => rest.push(o.clone()),
        }
    }
    rest.sort_by_key(|o| {
        let phase_rank = match render::phase(o) {
            Phase::Stack => 0,
            Phase::Operator => 1,
            Phase::Foundation => 2,
        };
        (
            phase_rank,
            tier(o),
            render::kind(o).to_string(),
            o.metadata.namespace.clone(),
            o.metadata.name.clone(),
        )
    });
    for o in rest {
        let step_of = |x: &Object| (render::phase(x), tier(x));
        match plan.steps.last_mut() {
            Some(step) if step.first().map(step_of) == Some(step_of(&o)) => step.push(o),
            _ => plan.steps.push(vec![o]),
        }
    }
    plan.steps.push(vec![inventory.parent.clone()]);
    if delete_data {
        if !claims.is_empty() {
            plan.steps.push(claims);
        }
    } else {
        plan.kept_pvcs = claims;
    }
    if plan.kept_pvcs.is_empty() {
        if !namespaces.is_empty() {
            plan.steps.push(namespaces);
        }
    } else {
        plan.kept_namespace = namespaces.first().and_then(|n| n.metadata.name.clone());
    }
    let mut deleted_crds = Vec::new();
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        match foreign.get(&name) {
            Some(users) if !users.is_empty() => plan.kept_crds.push(KeptCrd {
                name,
                users: users.clone(),
            }),
            _ => deleted_crds.push(crd),
        }
    }
    if !deleted_crds.is_empty() {
        plan.steps.push(deleted_crds);
    }
    plan
}

/// `deployment.apps "grafana"`, as kubectl names an object it deletes.
pub fn deleted_name(o: &Object) -> String {
    let k = render::kind(o).to_lowercase();
    let name = o.metadata.name.as_deref().unwrap_or_default();
    match resources::of(o).map(Known::group).filter(|g| !g.is_empty()) {
        Some(g) => format!("{k}.{g} {name:?}"),
        None => format!("{k} {name:?}"),
    }
}

/// `3 ConfigMaps`-style counts, by kind, in the order of deletion.
pub fn counts_by_kind(plan: &Plan) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for o in plan.objects() {
        let k = render::kind(o).to_string();
        match out.iter_mut().find(|(x, _)| *x == k) {
            Some((_, n)) => *n += 1,
            None => out.push((k, 1)),
        }
    }
    out
}

/// Why each thing stays, and how to remove it by hand.
pub fn kept_notes(plan: &Plan, namespace: &str) -> Vec<String> {
    let mut notes = Vec::new();
    for crd in &plan.kept_crds {
        let named: Vec<_> = crd.users.iter().take(NAMED_EXAMPLES).cloned().collect();
        let more = crd.users.len().saturating_sub(NAMED_EXAMPLES);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        notes.push(format!(
            "kept customresourcedefinition {:?}: {} custom resource(s) outside automon still use it ({}{more})",
            crd.name,
            crd.users.len(),
            named.join(", ")
        ));
    }
    if !plan.kept_pvcs.is_empty() {
        let names: Vec<_> = plan
            .kept_pvcs
            .iter()
            .filter_map(|c| c.metadata.name.clone())
            .collect();
        notes.push(format!(
            "kept {} persistentvolumeclaim(s) holding monitoring data ({}) (--delete-data deletes them with the stack); to delete them now: kubectl delete pvc -n {namespace} {}",
            names.len(),
            names.join(", "),
            names.join(" ")
        ));
    }
    if let Some(ns) = &plan.kept_namespace {
        notes.push(format!(
            "kept namespace {ns:?} because it holds the kept persistentvolumeclaims; after deleting them: kubectl delete namespace {ns}"
        ));
    }
    notes
}

pub async fn run(flags: &KubeFlags, args: Args) -> anyhow::Result<u8> {
    let cluster = Cluster::connect(flags).await?;
    let err = Palette::stderr();
    let inventory = match inventory::read(&cluster).await {
        Ok(i) => i,
        Err(InventoryError::NotInstalled { namespace }) => {
            eprintln!(
                "automon is not installed in namespace {namespace:?}: nothing to delete (use -n for another namespace)"
            );
            return Ok(0);
        }
        Err(e) => return Err(e.into()),
    };
    let foreign = foreign_custom_resources(&cluster, &inventory).await?;
    let claims = data_claims(&inventory, list_claims(&cluster).await?);
    let mut plan = plan(&inventory, &foreign, claims, args.delete_data);
    with_revisions(&mut plan, list_revisions(&cluster).await?);
    let notes = kept_notes(&plan, &cluster.namespace);

    if args.dry_run.is_none() && !args.yes {
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "{} refusing to delete {} objects without confirmation: stdin is not a terminal; re-run with --yes (or --dry-run to see what would go)",
                err.bad("error:"),
                plan.objects().count()
            );
            return Ok(exit::USAGE);
        }
        if !confirm(&plan, &notes, &cluster.namespace)? {
            // As `kubectl delete -i`: declining is not an error.
            eprintln!("nothing deleted");
            return Ok(0);
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
    for note in &notes {
        eprintln!("{} {note}", err.warn("warning:"));
    }
    output::print(&format!(
        "automon disabled in namespace {:?}: {deleted} objects deleted{suffix} in {}",
        cluster.namespace,
        humantime(round_tenths(started.elapsed()))
    ))?;
    Ok(0)
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
    eprintln!("This deletes automon from namespace {namespace:?} (and its cluster-wide objects):");
    eprintln!("{}", output::table(&["kind", "count"], &rows));
    for note in notes {
        eprintln!("{note}");
    }
    eprint!("Delete these {} objects? [y/N] ", plan.objects().count());
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
        .filter(|o| render::kind(o) == "CustomResourceDefinition")
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
            crate::apply::delete(cluster, o, dry_run)
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
            crate::watch::Source {
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
    let waited = crate::watch::until(cluster, sources, until, |seen| left(seen).is_empty())
        .await
        .context("cannot check what is left")?;
    if waited.met {
        return Ok(());
    }
    let names = left(&waited.seen);
    anyhow::bail!(
        "timed out after {} (--timeout) waiting for {} to be deleted; a finalizer may hold them (see kubectl get {} -o yaml)",
        humantime(timeout),
        names.join(", "),
        names.first().map(String::as_str).unwrap_or("")
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config::Config, render::custom};

    fn installed() -> Inventory {
        let mut objects = render::render(&Config::default()).objects;
        let at = objects.iter().position(is_parent).expect("a parent");
        let parent = objects.remove(at);
        Inventory {
            parent,
            members: objects,
        }
    }

    fn crd(plural: &str, kind: &str) -> Object {
        custom(serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.monitoring.coreos.com")},
            "spec": {
                "group": "monitoring.coreos.com",
                "names": {"kind": kind, "plural": plural},
                "scope": "Namespaced",
                "versions": [
                    {"name": "v1alpha1", "served": true, "storage": false},
                    {"name": "v1", "served": true, "storage": true}
                ]
            }
        }))
    }

    fn claim(name: &str, app: &str, owner: &str) -> Object {
        custom(serde_json::json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "automon", "labels": {
                NAME_LABEL: app, OPERATOR_NAME_LABEL: owner
            }},
        }))
    }

    fn kinds(step: &[Object]) -> BTreeSet<&str> {
        step.iter().map(render::kind).collect()
    }

    #[test]
    fn reverse_phase_order_custom_resources_first_rbac_last_parent_then_namespace() {
        let inv = installed();
        let p = plan(&inv, &BTreeMap::new(), vec![], false);
        assert_eq!(
            p.objects().count(),
            inv.members.len() + 1,
            "every member and the parent, once"
        );
        let phases: Vec<Phase> = p.steps.iter().map(|s| render::phase(&s[0])).collect();
        let first_operator = phases.iter().position(|x| *x == Phase::Operator).unwrap();
        assert!(phases[..first_operator].iter().all(|x| *x == Phase::Stack));
        // Within the stack: custom resources, then workloads, ..., RBAC last.
        assert!(
            kinds(&p.steps[0]).contains("Prometheus"),
            "{:?}",
            kinds(&p.steps[0])
        );
        assert!(
            kinds(&p.steps[1]).contains("Deployment"),
            "{:?}",
            kinds(&p.steps[1])
        );
        let last_stack = &p.steps[first_operator - 1];
        assert!(
            kinds(last_stack)
                .iter()
                .all(|k| k.contains("Role") || *k == "ServiceAccount")
        );
        for step in &p.steps {
            let tiers: BTreeSet<_> = step.iter().map(|o| (render::phase(o), tier(o))).collect();
            assert_eq!(tiers.len(), 1, "one phase and tier per step");
        }
        let n = p.steps.len();
        assert!(is_parent(&p.steps[n - 2][0]));
        assert_eq!(kinds(&p.steps[n - 1]), BTreeSet::from(["Namespace"]));
    }

    #[test]
    fn crds_go_last_unless_a_foreign_custom_resource_uses_them() {
        let mut inv = installed();
        inv.members.push(crd("servicemonitors", "ServiceMonitor"));
        inv.members.push(crd("prometheusrules", "PrometheusRule"));
        let foreign = BTreeMap::from([
            (
                "servicemonitors.monitoring.coreos.com".to_string(),
                vec!["team-a/web".to_string()],
            ),
            ("prometheusrules.monitoring.coreos.com".to_string(), vec![]),
        ]);
        let p = plan(&inv, &foreign, vec![], false);
        let last = p.steps.last().unwrap();
        assert_eq!(last.len(), 1);
        assert_eq!(
            last[0].metadata.name.as_deref(),
            Some("prometheusrules.monitoring.coreos.com")
        );
        assert_eq!(
            p.kept_crds,
            [KeptCrd {
                name: "servicemonitors.monitoring.coreos.com".into(),
                users: vec!["team-a/web".into()]
            }]
        );
        let notes = kept_notes(&p, "automon").join("\n");
        assert!(
            notes.contains("servicemonitors.monitoring.coreos.com"),
            "{notes}"
        );
        assert!(notes.contains("team-a/web"), "{notes}");
    }

    #[test]
    fn kept_crd_names_at_most_three_users() {
        let p = Plan {
            kept_crds: vec![KeptCrd {
                name: "x.example.com".into(),
                users: (1..=5).map(|i| format!("ns/r{i}")).collect(),
            }],
            ..Default::default()
        };
        let note = &kept_notes(&p, "automon")[0];
        assert!(note.contains("ns/r1, ns/r2, ns/r3 and 2 more"), "{note}");
        assert!(!note.contains("ns/r4"), "{note}");
    }

    #[test]
    fn custom_resources_in_the_inventory_are_not_foreign() {
        let inv = installed();
        let ar = crd_resource(&crd("servicemonitors", "ServiceMonitor")).unwrap();
        assert_eq!(ar.version, "v1", "the storage version");
        let ours: Vec<_> = inv
            .members
            .iter()
            .filter(|o| render::kind(o) == "ServiceMonitor")
            .map(|o| {
                (
                    o.metadata.namespace.clone(),
                    o.metadata.name.clone().unwrap(),
                )
            })
            .collect();
        assert!(!ours.is_empty());
        let mut listed = ours.clone();
        assert!(outside_inventory(&ar, &listed, &inv.members).is_empty());
        listed.push((Some("automon".into()), "someone-elses".into()));
        listed.push((Some("team-a".into()), ours[0].1.clone()));
        assert_eq!(
            outside_inventory(&ar, &listed, &inv.members),
            ["automon/someone-elses", &format!("team-a/{}", ours[0].1)]
        );
    }

    #[test]
    fn data_claims_are_those_of_the_inventorys_prometheus_and_alertmanager() {
        let inv = installed();
        let prom = inv
            .members
            .iter()
            .find(|o| render::kind(o) == "Prometheus")
            .and_then(|o| o.metadata.name.clone())
            .unwrap();
        let claims = vec![
            claim("prometheus-db-0", "prometheus", &prom),
            claim("other-db-0", "prometheus", "someone-else"),
            claim("wrong-kind-0", "grafana", &prom),
        ];
        let found = data_claims(&inv, claims);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].metadata.name.as_deref(), Some("prometheus-db-0"));
    }

    #[test]
    fn revisions_go_with_the_parent() {
        let inv = installed();
        let mut p = plan(&inv, &BTreeMap::new(), vec![], false);
        let revision = render::custom(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "automon-revision-1", "namespace": "mon"}}));
        with_revisions(&mut p, vec![revision]);
        let step = p.steps.iter().find(|s| s.iter().any(is_parent)).unwrap();
        assert_eq!(step.len(), 2);
        assert_eq!(step[1].metadata.name.as_deref(), Some("automon-revision-1"));
    }

    #[test]
    fn claims_keep_the_namespace_unless_delete_data() {
        let inv = installed();
        let claims = vec![claim("prometheus-db-0", "prometheus", "automon")];
        let kept = plan(&inv, &BTreeMap::new(), claims.clone(), false);
        assert_eq!(kept.kept_pvcs.len(), 1);
        assert_eq!(kept.kept_namespace.as_deref(), Some("automon"));
        assert!(
            kept.objects()
                .all(|o| { !matches!(render::kind(o), "Namespace" | "PersistentVolumeClaim") })
        );
        let notes = kept_notes(&kept, "automon").join("\n");
        assert!(notes.contains("--delete-data"), "{notes}");
        assert!(
            notes.contains("kubectl delete namespace automon"),
            "{notes}"
        );

        let gone = plan(&inv, &BTreeMap::new(), claims, true);
        assert!(gone.kept_pvcs.is_empty() && gone.kept_namespace.is_none());
        let n = gone.steps.len();
        assert_eq!(
            kinds(&gone.steps[n - 2]),
            BTreeSet::from(["PersistentVolumeClaim"])
        );
        assert_eq!(kinds(&gone.steps[n - 1]), BTreeSet::from(["Namespace"]));
    }

    #[test]
    fn names_and_counts_read_like_kubectl() {
        let inv = installed();
        let p = plan(&inv, &BTreeMap::new(), vec![], false);
        let names: Vec<String> = p.objects().map(deleted_name).collect();
        assert!(
            names.contains(&r#"deployment.apps "grafana""#.to_string()),
            "{names:?}"
        );
        assert!(
            names.contains(&r#"namespace "automon""#.to_string()),
            "{names:?}"
        );
        let counts = counts_by_kind(&p);
        assert_eq!(
            counts.iter().map(|(_, n)| n).sum::<usize>(),
            p.objects().count()
        );
        assert!(counts.contains(&("Namespace".to_string(), 1)));
    }
}
