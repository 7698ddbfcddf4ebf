//! What `disable` deletes and keeps, pure: the inventory's members in reverse phase order (one
//! step at a time), the CRDs other custom resources still use, the volume claims that hold data
//! unless `--delete-data`, and the namespace while it holds them. Beside the plan `enable`
//! executes; `disable` gathers, confirms and deletes.

use std::collections::{BTreeMap, BTreeSet};

use kube::api::{ApiResource, GroupVersionKind};

use crate::model;
use crate::model::is_parent;
use crate::{
    cluster::inventory::Inventory,
    model::{
        Object,
        names::NAME_LABEL,
        resources::{self, Known},
    },
    render::{self, Phase},
};

/// The label the operator's StatefulSets (and so their volume claims) carry: the name of the
/// `Prometheus` or `Alertmanager` they belong to.
pub const OPERATOR_NAME_LABEL: &str = "operator.prometheus.io/name";

/// How many foreign custom resources to name when a CRD is kept.
const NAMED_EXAMPLES: usize = 3;

/// A CRD that stays, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptCrd {
    /// `servicemonitors.monitoring.coreos.com`
    pub name: String,
    /// `namespace/name` of the custom resources outside the inventory (all of them).
    pub users: Vec<String>,
    /// What else watches it: another automon stack, another Prometheus Operator.
    pub watchers: Vec<String>,
}

/// What `disable` will do, decided without the cluster.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Deleted one step at a time; every object of a step is gone before the next starts.
    pub steps: Vec<Vec<Object>>,
    pub kept_crds: Vec<KeptCrd>,
    /// Volume claims kept because `--delete-data` was not given.
    pub kept_pvcs: Vec<Object>,
    /// The Namespace, when it stays, and why.
    pub kept_namespace: Option<KeptNamespace>,
}

/// The stack's namespace, kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptNamespace {
    pub name: String,
    pub why: NamespaceKept,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceKept {
    /// It was there before `enable` (the user's): never a member; automon takes back the
    /// labels it added.
    Existed,
    /// It holds objects that are not automon's (`configmap app-config`): deleting the namespace
    /// would delete them.
    Holds(Vec<String>),
    /// Whether it holds anything else could not be read (the reason).
    Unknown(String),
    /// It holds the volume claims `--delete-data` was not given for.
    Claims,
}

/// What else the stack's namespace holds, as `disable` found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceContents {
    /// Nothing but automon's members and what they made.
    OnlyAutomons,
    /// Objects that are not automon's (`configmap app-config`), sorted.
    Others(Vec<String>),
    /// The listing failed (why).
    Unknown(String),
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
    match model::kind(o) {
        _ if custom => 0,
        "Deployment" | "DaemonSet" | "StatefulSet" => 1,
        "ServiceAccount" | "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding" => 3,
        _ => 2,
    }
}

/// The volume claims that hold the stack's data: those the operator made for the inventory's
/// `Prometheus` and `Alertmanager` objects, and the claims that are members themselves
/// (Grafana's, from `grafana.persistence`). Rule for the operator's: a claim in the stack's
/// namespace whose `operator.prometheus.io/name` label names one of them and whose
/// `app.kubernetes.io/name` says which kind (`prometheus`/`alertmanager`) — the labels the
/// operator puts on its StatefulSet's selector, which the StatefulSet controller copies onto
/// every claim it creates from `volumeClaimTemplates`.
pub fn data_claims(inventory: &Inventory, claims: Vec<Object>) -> Vec<Object> {
    let owners: BTreeSet<(String, String)> = inventory
        .members
        .iter()
        .filter(|o| matches!(model::kind(o), "Prometheus" | "Alertmanager"))
        .map(|o| {
            (
                model::kind(o).to_lowercase(),
                o.metadata.name.clone().unwrap_or_default(),
            )
        })
        .collect();
    let namespace = inventory.parent.metadata.namespace.as_deref();
    let members = inventory
        .members
        .iter()
        .filter(|o| model::kind(o) == "PersistentVolumeClaim")
        .cloned();
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
        .chain(members)
        .collect()
}

/// Whose data a claim holds, for the line that says it was kept: `grafana (Grafana's
/// database)`, `prometheus-automon-db-prometheus-automon-0 (Prometheus)`.
fn claim_owner(c: &Object) -> String {
    let name = c.metadata.name.clone().unwrap_or_default();
    let labels = c.metadata.labels.clone().unwrap_or_default();
    let whose = match labels.get(NAME_LABEL).map(String::as_str) {
        Some("prometheus") => "Prometheus' series",
        Some("alertmanager") => "Alertmanager's silences and notification log",
        Some("grafana") => "Grafana's database: users, API keys, dashboards saved in the UI",
        _ => return name,
    };
    format!("{name} ({whose})")
}

/// What of `listed` (the objects in the stack's namespace, metadata only) is not automon's: not a
/// member, not made by a member (an owner reference: pods, the operator's generated Secrets and
/// StatefulSets), not a data claim (`claims`), not a revision, not what Kubernetes puts in every
/// namespace (`kube-root-ca.crt`, the `default` ServiceAccount). `configmap "app-config"`, sorted.
pub fn not_automons(listed: &[Object], inventory: &Inventory, claims: &[Object]) -> Vec<String> {
    let ours: BTreeSet<crate::cluster::apply::Key> = inventory
        .members
        .iter()
        .chain(claims)
        .chain(std::iter::once(&inventory.parent))
        .map(crate::cluster::apply::key)
        .collect();
    let mut out: Vec<String> = listed
        .iter()
        .filter(|o| !ours.contains(&crate::cluster::apply::key(o)))
        .filter(|o| {
            o.metadata
                .owner_references
                .as_ref()
                .is_none_or(Vec::is_empty)
        })
        .filter(|o| {
            let labels = o.metadata.labels.clone().unwrap_or_default();
            !labels.contains_key(crate::cluster::revision::REVISION_LABEL)
        })
        .filter(|o| {
            !matches!(
                (model::kind(o), o.metadata.name.as_deref()),
                ("ConfigMap", Some("kube-root-ca.crt"))
                    | ("ServiceAccount", Some("default"))
                    | ("Secret", Some(crate::config::credentials::SECRET_NAME))
            )
        })
        .map(deleted_name)
        .collect();
    out.sort();
    out
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
            model::kind(m) == resource.kind
                && model::api_version(m).split('/').next() == Some(resource.group.as_str())
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
pub fn with_revisions(plan: &mut Plan, revisions: Vec<Object>) {
    if let Some(step) = plan.steps.iter_mut().find(|s| s.iter().any(is_parent)) {
        step.extend(revisions);
    }
}

/// Decides the order of deletion and what stays. `foreign` maps a CRD's name to the custom
/// resources of it that are not members; `watchers` are what else watches the CRDs (another
/// automon stack, another Prometheus Operator: an operator whose CRDs vanish fails, even with no
/// custom resource at that moment); `claims` are the data claims found (see [`data_claims`]).
pub fn plan(
    inventory: &Inventory,
    foreign: &BTreeMap<String, Vec<String>>,
    watchers: &[String],
    claims: Vec<Object>,
    contents: &NamespaceContents,
    delete_data: bool,
) -> Plan {
    let mut plan = Plan::default();
    let (mut namespaces, mut crds, mut rest) = (Vec::new(), Vec::new(), Vec::new());
    for o in &inventory.members {
        match model::kind(o) {
            _ if is_parent(o) => {}
            // Its data: with `claims` (see [`data_claims`]), kept unless `delete_data`.
            "PersistentVolumeClaim" => {}
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
            model::kind(o).to_string(),
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
    let namespace = inventory
        .parent
        .metadata
        .namespace
        .clone()
        .unwrap_or_default();
    let existed = inventory
        .parent
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(super::NAMESPACE_EXISTED));
    let why = match contents {
        _ if existed || namespaces.is_empty() => None,
        NamespaceContents::Others(found) => Some(NamespaceKept::Holds(found.clone())),
        NamespaceContents::Unknown(e) => Some(NamespaceKept::Unknown(e.clone())),
        NamespaceContents::OnlyAutomons if !plan.kept_pvcs.is_empty() => {
            Some(NamespaceKept::Claims)
        }
        NamespaceContents::OnlyAutomons => {
            plan.steps.push(namespaces);
            None
        }
    };
    let why = if existed {
        Some(NamespaceKept::Existed)
    } else {
        why
    };
    plan.kept_namespace = why.map(|why| KeptNamespace {
        name: namespace,
        why,
    });
    let mut deleted_crds = Vec::new();
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let users = foreign.get(&name).cloned().unwrap_or_default();
        if users.is_empty() && watchers.is_empty() {
            deleted_crds.push(crd);
        } else {
            plan.kept_crds.push(KeptCrd {
                name,
                users,
                watchers: watchers.to_vec(),
            });
        }
    }
    if !deleted_crds.is_empty() {
        plan.steps.push(deleted_crds);
    }
    plan
}

/// `deployment.apps "grafana"`, as kubectl names an object it deletes.
pub fn deleted_name(o: &Object) -> String {
    let k = model::kind(o).to_lowercase();
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
        let k = model::kind(o).to_string();
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
        let mut why = Vec::new();
        if !crd.watchers.is_empty() {
            why.push(format!("still watched by {}", crd.watchers.join(", ")));
        }
        if !crd.users.is_empty() {
            let named: Vec<_> = crd.users.iter().take(NAMED_EXAMPLES).cloned().collect();
            let more = crd.users.len().saturating_sub(NAMED_EXAMPLES);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            why.push(format!(
                "{} custom resource(s) outside automon still use it ({}{more})",
                crd.users.len(),
                named.join(", ")
            ));
        }
        notes.push(format!(
            "kept customresourcedefinition {:?}: {}",
            crd.name,
            why.join("; ")
        ));
    }
    if !plan.kept_pvcs.is_empty() {
        let names: Vec<_> = plan
            .kept_pvcs
            .iter()
            .filter_map(|c| c.metadata.name.clone())
            .collect();
        let owners: Vec<_> = plan.kept_pvcs.iter().map(claim_owner).collect();
        notes.push(format!(
            "kept {} persistentvolumeclaim(s) holding monitoring data: {} (--delete-data deletes them with the stack); to delete them now: kubectl delete pvc -n {namespace} {}",
            names.len(),
            owners.join(", "),
            names.join(" ")
        ));
    }
    if let Some(KeptNamespace { name: ns, why }) = &plan.kept_namespace {
        notes.push(match why {
            NamespaceKept::Existed => format!(
                "kept namespace {ns:?}: it was there before automon, which only labelled it (the PodSecurity labels it added are taken back)"
            ),
            NamespaceKept::Holds(found) => {
                let named: Vec<_> = found.iter().take(NAMED_EXAMPLES).cloned().collect();
                let more = match found.len().saturating_sub(NAMED_EXAMPLES) {
                    0 => String::new(),
                    n => format!(" and {n} more"),
                };
                format!(
                    "kept namespace {ns:?}: it holds {} that automon did not create ({}{more}); when they may go too: kubectl delete namespace {ns}",
                    crate::output::plural(found.len(), "object"),
                    named.join(", ")
                )
            }
            NamespaceKept::Unknown(e) => format!(
                "kept namespace {ns:?}: could not tell whether it holds anything automon did not create ({e}); when nothing of yours is in it: kubectl delete namespace {ns}"
            ),
            NamespaceKept::Claims => format!(
                "kept namespace {ns:?} because it holds the kept persistentvolumeclaims; after deleting them: kubectl delete namespace {ns}"
            ),
        });
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config::Config, render::custom};

    /// The plan with nothing else in the cluster: no foreign users, no claims, data kept.
    fn plain(inv: &Inventory) -> Plan {
        plan(
            inv,
            &BTreeMap::new(),
            &[],
            vec![],
            &NamespaceContents::OnlyAutomons,
            false,
        )
    }

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
        step.iter().map(model::kind).collect()
    }

    #[test]
    fn reverse_phase_order_custom_resources_first_rbac_last_parent_then_namespace() {
        let inv = installed();
        let p = plain(&inv);
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
        let p = plan(
            &inv,
            &foreign,
            &[],
            vec![],
            &NamespaceContents::OnlyAutomons,
            false,
        );
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
                users: vec!["team-a/web".into()],
                watchers: vec![],
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
    fn crds_another_operator_watches_stay_with_no_custom_resource_at_all() {
        let mut inv = installed();
        inv.members.push(crd("podmonitors", "PodMonitor"));
        let watchers = ["automon's stack in namespace a".to_string()];
        let p = plan(
            &inv,
            &BTreeMap::new(),
            &watchers,
            vec![],
            &NamespaceContents::OnlyAutomons,
            false,
        );
        assert!(
            !p.objects()
                .any(|o| model::kind(o) == "CustomResourceDefinition"),
            "no CRD deleted"
        );
        let notes = kept_notes(&p, "b").join("\n");
        assert!(
            notes.contains(
                "kept customresourcedefinition \"podmonitors.monitoring.coreos.com\": still watched by automon's stack in namespace a"
            ),
            "{notes}"
        );
    }

    #[test]
    fn a_crd_kept_for_two_reasons_names_both() {
        let p = Plan {
            kept_crds: vec![KeptCrd {
                name: "x.example.com".into(),
                users: vec!["ns/r1".into()],
                watchers: vec!["automon's stack in namespace a".into()],
            }],
            ..Default::default()
        };
        assert_eq!(
            kept_notes(&p, "b"),
            [
                "kept customresourcedefinition \"x.example.com\": still watched by automon's stack in namespace a; 1 custom resource(s) outside automon still use it (ns/r1)"
            ]
        );
    }

    #[test]
    fn kept_crd_names_at_most_three_users() {
        let p = Plan {
            kept_crds: vec![KeptCrd {
                name: "x.example.com".into(),
                users: (1..=5).map(|i| format!("ns/r{i}")).collect(),
                watchers: vec![],
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
            .filter(|o| model::kind(o) == "ServiceMonitor")
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
            .find(|o| model::kind(o) == "Prometheus")
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
        let mut p = plain(&inv);
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
        let kept = plan(
            &inv,
            &BTreeMap::new(),
            &[],
            claims.clone(),
            &NamespaceContents::OnlyAutomons,
            false,
        );
        assert_eq!(kept.kept_pvcs.len(), 1);
        assert_eq!(
            kept.kept_namespace,
            Some(KeptNamespace {
                name: "automon".into(),
                why: NamespaceKept::Claims
            })
        );
        assert!(
            kept.objects()
                .all(|o| { !matches!(model::kind(o), "Namespace" | "PersistentVolumeClaim") })
        );
        let notes = kept_notes(&kept, "automon").join("\n");
        assert!(notes.contains("--delete-data"), "{notes}");
        assert!(
            notes.contains("kubectl delete namespace automon"),
            "{notes}"
        );

        let gone = plan(
            &inv,
            &BTreeMap::new(),
            &[],
            claims,
            &NamespaceContents::OnlyAutomons,
            true,
        );
        assert!(gone.kept_pvcs.is_empty() && gone.kept_namespace.is_none());
        let n = gone.steps.len();
        assert_eq!(
            kinds(&gone.steps[n - 2]),
            BTreeSet::from(["PersistentVolumeClaim"])
        );
        assert_eq!(kinds(&gone.steps[n - 1]), BTreeSet::from(["Namespace"]));
    }

    #[test]
    fn grafanas_claim_is_data_kept_unless_delete_data() {
        let config = Config::default()
            .with_set("grafana.persistence.enabled=true")
            .unwrap();
        let mut objects = render::render(&config).objects;
        let at = objects.iter().position(is_parent).expect("a parent");
        let parent = objects.remove(at);
        let inv = Inventory {
            parent,
            members: objects,
        };
        let claims = data_claims(
            &inv,
            vec![claim("prometheus-db-0", "prometheus", "automon")],
        );
        let found: Vec<_> = claims
            .iter()
            .filter_map(|c| c.metadata.name.as_deref())
            .collect();
        assert_eq!(found, ["prometheus-db-0", "grafana"]);
        let kept = plan(
            &inv,
            &BTreeMap::new(),
            &[],
            claims.clone(),
            &NamespaceContents::OnlyAutomons,
            false,
        );
        assert!(
            kept.objects()
                .all(|o| model::kind(o) != "PersistentVolumeClaim")
        );
        assert_eq!(kept.kept_pvcs.len(), 2);
        let notes = kept_notes(&kept, "automon").join("\n");
        assert!(
            notes.contains(
                "grafana (Grafana's database: users, API keys, dashboards saved in the UI)"
            ) && notes.contains("prometheus-db-0 (Prometheus' series)")
                && notes.contains("kubectl delete pvc -n automon prometheus-db-0 grafana"),
            "{notes}"
        );
        let gone = plan(
            &inv,
            &BTreeMap::new(),
            &[],
            claims,
            &NamespaceContents::OnlyAutomons,
            true,
        );
        let deleted: Vec<_> = gone
            .objects()
            .filter(|o| model::kind(o) == "PersistentVolumeClaim")
            .filter_map(|o| o.metadata.name.as_deref())
            .collect();
        assert_eq!(deleted, ["prometheus-db-0", "grafana"]);
        assert!(gone.kept_pvcs.is_empty());
    }

    #[test]
    fn names_and_counts_read_like_kubectl() {
        let inv = installed();
        let p = plain(&inv);
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

    #[test]
    fn a_namespace_that_holds_what_automon_did_not_create_is_kept() {
        let inv = installed();
        let others = NamespaceContents::Others(vec!["configmap \"app-config\"".into()]);
        let p = plan(&inv, &BTreeMap::new(), &[], vec![], &others, true);
        assert!(p.objects().all(|o| model::kind(o) != "Namespace"));
        let notes = kept_notes(&p, "automon").join("\n");
        assert!(
            notes.contains(r#"kept namespace "automon": it holds 1 object that automon did not create (configmap "app-config")"#),
            "{notes}"
        );
        // Unknown is kept too: nothing is deleted that may be the user's.
        let unknown = NamespaceContents::Unknown("may not list secrets".into());
        let p = plan(&inv, &BTreeMap::new(), &[], vec![], &unknown, true);
        assert!(p.objects().all(|o| model::kind(o) != "Namespace"));
    }

    #[test]
    fn what_is_not_automons_in_its_namespace() {
        let inv = installed();
        let obj = |kind: &str, name: &str, extra: serde_json::Value| {
            let mut v = serde_json::json!({
                "apiVersion": "v1", "kind": kind,
                "metadata": {"name": name, "namespace": "automon"}
            });
            if let (Some(m), Some(e)) = (v["metadata"].as_object_mut(), extra.as_object()) {
                m.extend(e.clone());
            }
            custom(v)
        };
        let member = inv
            .members
            .iter()
            .find(|o| model::kind(o) == "ConfigMap")
            .expect("a ConfigMap member")
            .clone();
        let listed = vec![
            member,
            obj("ConfigMap", "kube-root-ca.crt", serde_json::json!({})),
            obj("ServiceAccount", "default", serde_json::json!({})),
            obj(
                "Secret",
                "prometheus-automon",
                serde_json::json!({"ownerReferences": [{"apiVersion": "monitoring.coreos.com/v1",
                    "kind": "Prometheus", "name": "automon", "uid": "u"}]}),
            ),
            obj(
                "Secret",
                "automon-revision-1",
                serde_json::json!({"labels": {"automon.io/revision": "1"}}),
            ),
            obj("ConfigMap", "app-config", serde_json::json!({})),
            obj("Pod", "debug", serde_json::json!({})),
        ];
        assert_eq!(
            not_automons(&listed, &inv, &[]),
            [r#"configmap "app-config""#, r#"pod "debug""#]
        );
    }

    #[test]
    fn a_namespace_that_was_there_before_is_never_deleted() {
        let mut inv = installed();
        inv.members.retain(|o| model::kind(o) != "Namespace");
        inv.parent
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(super::super::NAMESPACE_EXISTED.into(), "true".into());
        let p = plan(
            &inv,
            &BTreeMap::new(),
            &[],
            vec![],
            &NamespaceContents::OnlyAutomons,
            true,
        );
        assert!(p.objects().all(|o| model::kind(o) != "Namespace"));
        assert_eq!(
            p.kept_namespace.map(|k| k.why),
            Some(NamespaceKept::Existed)
        );
    }
}
