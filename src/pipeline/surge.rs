//! No window without a ready Prometheus or Alertmanager (pure): which of them this run replaces
//! the pods of, and whether it can lend each a second replica for the time of the rollout. The
//! operator runs them as StatefulSets; with one replica, any change of the pod template (a new
//! operator's config-reloader, resources, retention) deletes the one pod before its successor
//! starts. Raised to two first, the controller replaces the highest ordinal first and waits for
//! it to be ready before it replaces the other, so one pod stays ready throughout.

use serde_json::Value;

use crate::{
    cluster::{apply, revision::Payload},
    model::{Object, kind, resources::display_name},
    plan::{ClusterState, Plan},
    render::{Phase, phase},
};

/// The replicas a single-replica Prometheus or Alertmanager has while it is replaced.
pub const SURGE_REPLICAS: i64 = 2;

/// The label the operator puts on the StatefulSets of a `Prometheus` (`prometheus=<name>`) or an
/// `Alertmanager` (`alertmanager=<name>`), beside `app.kubernetes.io/managed-by`.
pub fn statefulset_selector(kind: &str, name: &str) -> String {
    format!(
        "{}={name},app.kubernetes.io/managed-by=prometheus-operator",
        kind.to_lowercase()
    )
}

/// A Prometheus or Alertmanager whose pods this run replaces.
#[derive(Debug, Clone, PartialEq)]
pub struct Replaced {
    /// The object as the plan has it (its configured replicas).
    pub desired: Object,
    /// Why its pods are replaced, for the line that says so.
    pub why: &'static str,
    /// What raises it to [`SURGE_REPLICAS`] without changing anything else: the object as automon
    /// last applied it (the latest revision), two replicas. `None` when it keeps more than one
    /// replica already (the controller keeps one ready by itself), or when no revision says
    /// what was applied (the rollout then has a window, said so).
    pub surge: Option<Object>,
}

impl Replaced {
    /// `prometheus.monitoring.coreos.com/automon`
    pub fn name(&self) -> String {
        display_name(&self.desired)
    }

    /// The configured replicas (the CR's default, 1, when it says none).
    pub fn replicas(&self) -> i64 {
        replicas(&self.desired)
    }

    /// The object as the stack phase applies it: two replicas while it is lent a second.
    pub fn during(&self) -> Object {
        with_replicas(&self.desired, SURGE_REPLICAS)
    }

    /// Whether its pods are replaced with one replica only: a window without a ready pod.
    pub fn single(&self) -> bool {
        self.replicas() <= 1
    }
}

/// The Prometheus and Alertmanager objects of `plan` whose pods the run replaces, decided
/// conservatively from what the cluster holds (`state`): the operator's Deployment changes (a
/// new operator rewrites their pod templates: at least the config-reloader's image), or the
/// object's spec changes in anything but `replicas`. Nothing on a first install (no pod to
/// replace) or when another operator is reused (its objects, not automon's). `accepted` is the
/// latest revision: what raises each to two replicas without changing anything else.
pub fn replaced(plan: &Plan, state: &ClusterState, accepted: Option<&Payload>) -> Vec<Replaced> {
    let Some(inventory) = &state.inventory else {
        return Vec::new();
    };
    if plan.reuse.is_some() {
        return Vec::new();
    }
    let live = |o: &Object| {
        let key = apply::key(o);
        inventory.members.iter().find(|m| apply::key(m) == key)
    };
    let operator_changes = plan
        .members
        .iter()
        .filter(|o| phase(o) == Phase::Operator && kind(o) == "Deployment")
        .any(|o| live(o).is_none_or(|l| !contains(&l.data["spec"], &o.data["spec"])));
    plan.members
        .iter()
        .filter(|o| matches!(kind(o), "Prometheus" | "Alertmanager"))
        .filter_map(|o| {
            let was = live(o)?;
            let why = if operator_changes {
                "the operator changes"
            } else if !contains(
                &without_replicas(&was.data["spec"]),
                &without_replicas(&o.data["spec"]),
            ) {
                "its spec changes"
            } else {
                return None;
            };
            let surge = accepted
                .filter(|_| replicas(o) <= 1)
                .and_then(|a| a.objects.iter().find(|a| apply::key(a) == apply::key(o)))
                .map(|a| with_replicas(a, SURGE_REPLICAS));
            Some(Replaced {
                desired: o.clone(),
                why,
                surge,
            })
        })
        .collect()
}

/// `spec.replicas`, 1 when unset (the operator's default).
pub fn replicas(o: &Object) -> i64 {
    o.data["spec"]["replicas"].as_i64().unwrap_or(1)
}

/// `o` with `spec.replicas` set to `n`.
pub fn with_replicas(o: &Object, n: i64) -> Object {
    let mut o = o.clone();
    o.data["spec"]["replicas"] = n.into();
    o
}

fn without_replicas(spec: &Value) -> Value {
    let mut spec = spec.clone();
    if let Some(m) = spec.as_object_mut() {
        m.remove("replicas");
    }
    spec
}

/// Whether `live` holds everything `wanted` says (the API server adds defaults, never takes
/// away): maps by key, lists item by item and of the same length, the rest equal. A value the
/// server writes another way (a quantity normalised) counts as a change: conservative.
pub fn contains(live: &Value, wanted: &Value) -> bool {
    match (live, wanted) {
        (Value::Object(l), Value::Object(w)) => w
            .iter()
            .all(|(k, v)| l.get(k).is_some_and(|lv| contains(lv, v)) || v.is_null()),
        (Value::Array(l), Value::Array(w)) => {
            l.len() == w.len() && l.iter().zip(w).all(|(l, w)| contains(l, w))
        }
        (l, w) => l == w,
    }
}

/// The image of the config-reloader the operator `deployment` puts into every pod it runs
/// (`--prometheus-config-reloader=`): a StatefulSet whose pods carry it has been rewritten by
/// that operator.
pub fn reloader_image(deployment: &Object) -> Option<String> {
    let containers = deployment.data["spec"]["template"]["spec"]["containers"].as_array()?;
    containers
        .iter()
        .flat_map(|c| c["args"].as_array().into_iter().flatten())
        .find_map(|a| a.as_str()?.strip_prefix("--prometheus-config-reloader="))
        .map(str::to_string)
}

/// The operator's Deployment in `plan`, when the plan has automon's own operator.
pub fn operator_deployment(plan: &Plan) -> Option<&Object> {
    plan.members
        .iter()
        .find(|o| phase(o) == Phase::Operator && kind(o) == "Deployment")
}

/// Whether the operator has reconciled the latest spec of a Prometheus or Alertmanager: its
/// `Reconciled` condition observed the object's generation (successfully or not). One without
/// the condition (an operator older than it) counts as reconciled.
pub fn reconciled(o: &Object) -> bool {
    let generation = o.metadata.generation.unwrap_or(0);
    let conditions = o.data["status"]["conditions"].as_array();
    let Some(condition) = conditions
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Reconciled")
    else {
        return true;
    };
    condition["observedGeneration"].as_i64().unwrap_or(0) >= generation
}

/// Whether each of a Prometheus' or Alertmanager's StatefulSets (as JSON) has a ready pod now
/// (and there is one): what has none serves nothing a rollout could interrupt.
pub fn ready_sets(sets: &[Value]) -> bool {
    !sets.is_empty()
        && sets
            .iter()
            .all(|s| s["status"]["readyReplicas"].as_i64().unwrap_or(0) > 0)
}

/// Whether the operator's Deployment in the cluster (`state`) had an available pod: an old
/// operator that would read what the run applies before the new one runs.
pub fn operator_available(plan: &Plan, state: &ClusterState) -> bool {
    let Some((operator, inventory)) = operator_deployment(plan).zip(state.inventory.as_ref())
    else {
        return false;
    };
    let key = apply::key(operator);
    inventory
        .members
        .iter()
        .find(|m| apply::key(m) == key)
        .is_some_and(|m| m.data["status"]["availableReplicas"].as_i64().unwrap_or(0) > 0)
}

/// A StatefulSet's rollout, as the surge needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sts {
    pub replicas: i64,
    pub ready: i64,
    /// Every pod is at the update revision and the controller has seen the latest spec.
    pub updated: bool,
    /// The pods carry the config-reloader image asked for (or none was asked for).
    pub reloader: bool,
}

impl Sts {
    /// A StatefulSet (as JSON) read for the surge; `reloader`, when given, the image its pods'
    /// config-reloader must have.
    pub fn of(sts: &Value, reloader: Option<&str>) -> Sts {
        let int = |v: &Value| v.as_i64().unwrap_or(0);
        let status = &sts["status"];
        let replicas = sts["spec"]["replicas"].as_i64().unwrap_or(1);
        let updated = int(&sts["metadata"]["generation"]) <= int(&status["observedGeneration"])
            && status["updateRevision"] == status["currentRevision"]
            && int(&status["updatedReplicas"]) == replicas
            && int(&status["replicas"]) == replicas;
        let reloader = reloader.is_none_or(|image| {
            let spec = &sts["spec"]["template"]["spec"];
            ["containers", "initContainers"]
                .iter()
                .flat_map(|k| spec[k].as_array().into_iter().flatten())
                .filter(|c| {
                    c["name"]
                        .as_str()
                        .is_some_and(|n| n.contains("config-reloader"))
                })
                .all(|c| c["image"] == image)
        });
        Sts {
            replicas,
            ready: int(&status["readyReplicas"]),
            updated,
            reloader,
        }
    }

    /// Every one of `want` pods ready, at the latest spec.
    pub fn rolled_out(&self, want: i64) -> bool {
        self.replicas == want && self.ready >= want && self.updated && self.reloader
    }
}

/// The label on the pods the surge released from their StatefulSet: they serve until the
/// StatefulSet's own are ready again, then are deleted.
pub const RELEASED_LABEL: &str = "automon.io/released-by-surge";

/// The pod label the StatefulSet selects by and nothing else does (Services and Prometheus'
/// discovery select by `app.kubernetes.io/name`): removed, the pod is the StatefulSet's no more.
pub const RELEASE_BY: &str = "app.kubernetes.io/managed-by";

/// The pods of the second replica lent, by name: `<set>-<ordinal>` for every ordinal from the
/// configured replicas up to [`SURGE_REPLICAS`], of each StatefulSet (as JSON).
pub fn lent_pods(sets: &[Value], configured: i64) -> Vec<String> {
    sets.iter()
        .filter_map(|s| s["metadata"]["name"].as_str())
        .flat_map(|set| (configured..SURGE_REPLICAS).map(move |i| format!("{set}-{i}")))
        .collect()
}

/// How many pods of each StatefulSet (as JSON) are ready, its own and those released from it,
/// the fewest: 0 is a window without a ready pod.
pub fn fewest_ready(sets: &[Value], pods: &[Value]) -> i64 {
    let ready = |p: &&Value| {
        p["metadata"]["deletionTimestamp"].is_null()
            && p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
    };
    sets.iter()
        .filter_map(|s| s["metadata"]["name"].as_str())
        .map(|set| {
            pods.iter()
                .filter(ready)
                .filter(|p| {
                    p["metadata"]["name"]
                        .as_str()
                        .and_then(|n| n.strip_prefix(set)?.strip_prefix('-'))
                        .is_some_and(|i| i.parse::<u32>().is_ok())
                })
                .count() as i64
        })
        .min()
        .unwrap_or(0)
}

/// Whether a Deployment (as JSON) has finished its rollout, as `kubectl rollout status` says:
/// the controller saw the latest spec, every replica is of the new ReplicaSet and available,
/// and no pod of an older one is left.
pub fn deployment_rolled_out(d: &Value) -> bool {
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    let status = &d["status"];
    let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
    int(&d["metadata"]["generation"]) <= int(&status["observedGeneration"])
        && int(&status["updatedReplicas"]) == replicas
        && int(&status["replicas"]) == replicas
        && int(&status["availableReplicas"]) == replicas
}

/// The claims a StatefulSet (as JSON) makes for its pod `ordinal`: `<template>-<set>-<ordinal>`,
/// one per volumeClaimTemplate (the StatefulSet controller's naming).
pub fn claims(sts: &Value, ordinal: i64) -> Vec<String> {
    let set = sts["metadata"]["name"].as_str().unwrap_or_default();
    sts["spec"]["volumeClaimTemplates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["metadata"]["name"].as_str())
        .map(|t| format!("{t}-{set}-{ordinal}"))
        .collect()
}

/// The longest time without a ready pod, from the ready counts seen and when: each stretch
/// from the first count of 0 to the next count above it (or to `end`).
pub fn longest_window(
    seen: &[(std::time::Instant, i64)],
    end: std::time::Instant,
) -> std::time::Duration {
    let mut longest = std::time::Duration::ZERO;
    let mut since = None;
    for &(at, ready) in seen {
        match (ready, since) {
            (0, None) => since = Some(at),
            (r, Some(s)) if r > 0 => {
                longest = longest.max(at - s);
                since = None;
            }
            _ => {}
        }
    }
    if let Some(s) = since {
        longest = longest.max(end.saturating_duration_since(s));
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{cluster::inventory::Inventory, config::Config, plan::CrdSource};
    use serde_json::json;

    /// The default stack's plan, installed already as `live` (a stack rendered from `was`).
    fn planned(now: &[&str], was: &[&str]) -> (Plan, ClusterState, Payload) {
        let config = |sets: &[&str]| {
            let mut c = Config::default();
            for s in sets {
                c = c.with_set(s).unwrap();
            }
            c
        };
        let objects = |sets: &[&str]| crate::render::render(&config(sets)).objects;
        let installed = objects(was);
        let (parent, members): (Vec<Object>, Vec<Object>) = installed
            .iter()
            .cloned()
            .partition(|o| o.metadata.name.as_deref() == Some("automon") && kind(o) == "ConfigMap");
        let state = ClusterState {
            namespace_exists: true,
            inventory: Some(Inventory {
                parent: parent[0].clone(),
                members,
            }),
            ..Default::default()
        };
        let plan = crate::plan::plan(objects(now), &state, CrdSource::Untouched, "").unwrap();
        let accepted = Payload {
            objects: installed,
            resource_versions: Default::default(),
        };
        (plan, state, accepted)
    }

    fn names(r: &[Replaced]) -> Vec<(String, &'static str, Option<i64>)> {
        r.iter()
            .map(|r| (r.name(), r.why, r.surge.as_ref().map(replicas)))
            .collect()
    }

    #[test]
    fn nothing_changes_nothing_is_replaced() {
        let (plan, state, accepted) = planned(&[], &[]);
        assert_eq!(replaced(&plan, &state, Some(&accepted)), vec![]);
    }

    #[test]
    fn a_changed_spec_surges_only_what_changes() {
        let (plan, state, accepted) = planned(&["prometheus.retention=30d"], &[]);
        assert_eq!(
            names(&replaced(&plan, &state, Some(&accepted))),
            vec![(
                "prometheus.monitoring.coreos.com/automon".into(),
                "its spec changes",
                Some(2)
            )]
        );
        let (plan, state, accepted) = planned(&["alertmanager.resources.requests.cpu=50m"], &[]);
        let r = replaced(&plan, &state, Some(&accepted));
        assert_eq!(names(&r)[0].0, "alertmanager.monitoring.coreos.com/automon");
        assert_eq!(r.len(), 1);
        // The surge is the object as it was applied, two replicas: not the new spec.
        let surge = r[0].surge.as_ref().unwrap();
        let was = accepted
            .objects
            .iter()
            .find(|o| apply::key(o) == apply::key(surge))
            .unwrap();
        assert_eq!(
            surge.data["spec"]["resources"],
            was.data["spec"]["resources"]
        );
        assert_ne!(
            surge.data["spec"]["resources"],
            r[0].desired.data["spec"]["resources"]
        );
        assert_eq!(r[0].during().data["spec"]["replicas"], 2);
        assert_eq!(
            r[0].during().data["spec"]["resources"],
            r[0].desired.data["spec"]["resources"]
        );
    }

    #[test]
    fn a_new_operator_replaces_both() {
        let (mut plan, state, accepted) = planned(&[], &[]);
        let operator = plan
            .members
            .iter_mut()
            .find(|o| phase(o) == Phase::Operator && kind(o) == "Deployment")
            .unwrap();
        operator.data["spec"]["template"]["spec"]["containers"][0]["image"] = json!("operator:v2");
        let r = names(&replaced(&plan, &state, Some(&accepted)));
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(
            r.iter()
                .all(|(_, why, surge)| *why == "the operator changes" && *surge == Some(2))
        );
    }

    #[test]
    fn only_replicas_changing_replaces_nothing() {
        let (plan, state, accepted) = planned(&["alertmanager.replicas=3"], &[]);
        assert_eq!(replaced(&plan, &state, Some(&accepted)), vec![]);
        // An enable stopped during a surge left two replicas: put back, nothing replaced.
        let (plan, state, accepted) = planned(&[], &["alertmanager.replicas=2"]);
        let r = replaced(&plan, &state, Some(&accepted));
        assert!(
            r.iter().all(|r| kind(&r.desired) != "Alertmanager"),
            "{:?}",
            names(&r)
        );
    }

    #[test]
    fn several_replicas_need_no_surge_and_no_revision_says_so() {
        let (plan, state, accepted) = planned(
            &[
                "alertmanager.replicas=2",
                "alertmanager.resources.requests.cpu=50m",
            ],
            &[],
        );
        let r = replaced(&plan, &state, Some(&accepted));
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].surge.clone(), r[0].single()), (None, false));
        let (plan, state, _) = planned(&["prometheus.retention=30d"], &[]);
        let r = replaced(&plan, &state, None);
        assert_eq!((r[0].surge.clone(), r[0].single()), (None, true));
    }

    #[test]
    fn a_first_install_replaces_nothing() {
        let (plan, mut state, accepted) = planned(&["prometheus.retention=30d"], &[]);
        state.inventory = None;
        assert_eq!(replaced(&plan, &state, Some(&accepted)), vec![]);
    }

    #[test]
    fn live_defaults_are_not_changes() {
        let wanted = json!({"a": 1, "b": [{"name": "x", "image": "i"}], "n": null});
        let live = json!({"a": 1, "b": [{"name": "x", "image": "i", "imagePullPolicy": "IfNotPresent"}], "z": 2});
        assert!(contains(&live, &wanted));
        assert!(!contains(&json!({"a": 1, "b": []}), &wanted));
        assert!(!contains(
            &json!({"a": 2, "b": [{"name": "x", "image": "i"}]}),
            &wanted
        ));
    }

    #[test]
    fn the_reloader_image_comes_from_the_operators_args() {
        let objects = crate::render::render(&Config::default()).objects;
        let plan_operator = objects
            .iter()
            .find(|o| phase(o) == Phase::Operator && kind(o) == "Deployment")
            .unwrap();
        let image = reloader_image(plan_operator).unwrap();
        assert!(image.contains("prometheus-config-reloader:"), "{image}");
    }

    fn sts(replicas: i64, ready: i64, update: &str, current: &str, reloader: &str) -> Value {
        json!({
            "metadata": {"name": "prometheus-automon", "generation": 3},
            "spec": {"replicas": replicas, "template": {"spec": {
                "initContainers": [{"name": "init-config-reloader", "image": reloader}],
                "containers": [{"name": "prometheus", "image": "p"}, {"name": "config-reloader", "image": reloader}]
            }}, "volumeClaimTemplates": [{"metadata": {"name": "prometheus-automon-db"}}]},
            "status": {"observedGeneration": 3, "replicas": replicas, "readyReplicas": ready,
                       "updatedReplicas": replicas, "updateRevision": update, "currentRevision": current}
        })
    }

    #[test]
    fn a_statefulset_is_rolled_out_when_every_pod_is_updated_and_ready() {
        assert!(Sts::of(&sts(2, 2, "b", "b", "r:2"), Some("r:2")).rolled_out(2));
        // Still replacing the other pod.
        assert!(!Sts::of(&sts(2, 2, "b", "a", "r:2"), Some("r:2")).rolled_out(2));
        // The new operator has not rewritten it yet.
        assert!(!Sts::of(&sts(2, 2, "a", "a", "r:1"), Some("r:2")).rolled_out(2));
        assert!(Sts::of(&sts(2, 2, "a", "a", "r:1"), None).rolled_out(2));
        // Not scaled up yet, or one not ready.
        assert!(!Sts::of(&sts(1, 1, "a", "a", "r"), None).rolled_out(2));
        assert!(!Sts::of(&sts(2, 1, "a", "a", "r"), None).rolled_out(2));
    }

    #[test]
    fn reconciled_is_the_operators_word_on_the_latest_generation() {
        let cr = |generation: i64, observed: Option<i64>| -> Object {
            let conditions: Vec<Value> = observed
                .map(|g| json!({"type": "Reconciled", "status": "True", "observedGeneration": g}))
                .into_iter()
                .collect();
            serde_json::from_value(
                json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
                "metadata": {"name": "automon", "generation": generation},
                "status": {"conditions": conditions}}),
            )
            .unwrap()
        };
        assert!(reconciled(&cr(3, Some(3))));
        assert!(!reconciled(&cr(4, Some(3))));
        assert!(reconciled(&cr(4, None)));
    }

    #[test]
    fn released_pods_count_as_ready_until_deleted() {
        let set = |n: &str| json!({"metadata": {"name": n}});
        let pod = |n: &str, ready: bool, deleting: bool| {
            json!({"metadata": {"name": n, "deletionTimestamp": if deleting { json!("2026-12-06T08:00:00Z") } else { Value::Null }},
                   "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
        };
        let sets = [set("alertmanager-automon")];
        let pods = [
            pod("alertmanager-automon-0", false, false),
            pod("alertmanager-automon-1", true, false),
        ];
        assert_eq!(fewest_ready(&sets, &pods), 1);
        let pods = [
            pod("alertmanager-automon-0", false, false),
            pod("alertmanager-automon-1", true, true),
        ];
        assert_eq!(fewest_ready(&sets, &pods), 0);
        // Shards: the one without a ready pod is the window.
        let sets = [set("prometheus-automon"), set("prometheus-automon-shard-1")];
        let pods = [
            pod("prometheus-automon-0", true, false),
            pod("prometheus-automon-shard-1-0", false, false),
        ];
        assert_eq!(fewest_ready(&sets, &pods), 0);
        assert_eq!(
            lent_pods(&sets, 1),
            vec!["prometheus-automon-1", "prometheus-automon-shard-1-1"]
        );
    }

    #[test]
    fn only_what_serves_now_and_an_operator_that_ran_are_waited_for() {
        let set = |ready: i64| json!({"status": {"readyReplicas": ready}});
        assert!(ready_sets(&[set(1)]));
        assert!(!ready_sets(&[set(1), set(0)]));
        assert!(!ready_sets(&[]));
        let (plan, mut state, _) = planned(&[], &[]);
        assert!(!operator_available(&plan, &state));
        let members = &mut state.inventory.as_mut().unwrap().members;
        let operator = members
            .iter_mut()
            .find(|o| phase(o) == Phase::Operator && kind(o) == "Deployment")
            .unwrap();
        operator.data["status"] = json!({"availableReplicas": 1});
        assert!(operator_available(&plan, &state));
    }

    #[test]
    fn claims_are_named_as_the_statefulset_controller_names_them() {
        assert_eq!(
            claims(&sts(2, 2, "a", "a", "r"), 1),
            vec!["prometheus-automon-db-prometheus-automon-1".to_string()]
        );
        assert_eq!(
            claims(&json!({"metadata": {"name": "x"}, "spec": {}}), 1),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_deployment_is_rolled_out_when_no_old_pod_is_left() {
        let seen = |observed: i64, updated: i64, total: i64, available: i64| {
            json!({"metadata": {"generation": 2}, "spec": {"replicas": 1},
                   "status": {"observedGeneration": observed, "updatedReplicas": updated, "replicas": total, "availableReplicas": available}})
        };
        let d = |updated, total, available| seen(2, updated, total, available);
        assert!(deployment_rolled_out(&d(1, 1, 1)));
        // The new pod is ready, the old one not gone yet (both available).
        assert!(!deployment_rolled_out(&d(1, 2, 2)));
        // The new pod exists, the old one is still the one ready.
        assert!(!deployment_rolled_out(&d(1, 2, 1)));
        // The new pod is there but not available.
        assert!(!deployment_rolled_out(&d(1, 1, 0)));
        assert!(!deployment_rolled_out(&d(0, 1, 1)));
        // The controller has not seen the new spec yet.
        assert!(!deployment_rolled_out(&seen(1, 1, 1, 1)));
    }

    #[test]
    fn the_window_is_the_longest_stretch_without_a_ready_pod() {
        let t0 = std::time::Instant::now();
        let at = |ms: u64| t0 + std::time::Duration::from_millis(ms);
        let seen = [
            (at(0), 1),
            (at(100), 0),
            (at(400), 0),
            (at(900), 1),
            (at(1000), 0),
        ];
        assert_eq!(
            longest_window(&seen, at(1200)),
            std::time::Duration::from_millis(800)
        );
        assert_eq!(
            longest_window(&[(at(0), 2), (at(50), 1)], at(99)),
            std::time::Duration::ZERO
        );
        assert_eq!(
            longest_window(&seen[..3], at(1500)),
            std::time::Duration::from_millis(1400)
        );
    }
}
