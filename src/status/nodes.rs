//! Node coverage (pure): for every node, the exporter pod on it and its state, and, when it has
//! none or it is not working, why, in the scheduler's and the kubelet's own terms.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::{
    api::{apps::v1::DaemonSet, core::v1::PodSpec},
    jiff::Timestamp,
};
use serde::Serialize;

use super::prometheus::Target;
use crate::model::{
    selector,
    slim::{SlimNode, SlimPod, SlimPodSpec},
};

/// Whether a node is watched by an exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Coverage {
    /// An exporter runs and is ready on it (and Prometheus scrapes it, when that is known).
    Monitored,
    /// Opted out with the exclusion label: not a gap.
    Excluded,
    NotMonitored,
}

/// The exporter pod on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExporterPod {
    pub name: String,
    /// `Running`, `Pending`, `CrashLoopBackOff`, `ImagePullBackOff`, `NotReady`, `Terminating`…
    pub state: String,
    pub ready: bool,
    pub restarts: i32,
}

/// What Prometheus says about the node's exporter target.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Scrape {
    /// `up`, `down` or `unknown`, as Prometheus reports target health.
    pub health: String,
    /// Seconds since the last scrape.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_scrape_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Why a node is not monitored (or excluded), for scripts and for doctor's fixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Cause {
    DaemonSetMissing,
    UnsupportedOs,
    NodeSelector,
    Excluded,
    NodeAffinity,
    Taint,
    CreationRefused,
    NotCreated,
    PodNotReady,
    NoScrapeTarget,
    ScrapeFailing,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    pub name: String,
    /// The node's Ready condition: `True`, `False` or `Unknown`.
    pub ready: String,
    pub os: String,
    pub arch: String,
    pub coverage: Coverage,
    pub exporter: Option<ExporterPod>,
    /// `None` when Prometheus could not be asked.
    pub scrape: Option<Scrape>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    /// Why the node is not monitored (or excluded); `None` when it is monitored.
    pub reason: Option<String>,
}

/// What node coverage is judged against.
pub struct Inputs<'a> {
    pub nodes: Vec<&'a SlimNode>,
    /// The node-exporter DaemonSet; `None` when it is missing.
    pub daemonset: Option<&'a DaemonSet>,
    /// The windows-exporter DaemonSet, when the stack has one: it covers Windows nodes.
    pub windows: Option<&'a DaemonSet>,
    /// Pods in the stack's namespace; the DaemonSet's selector picks its own.
    pub pods: Vec<&'a SlimPod>,
    /// The newest `FailedCreate` message of the DaemonSet (an admission refusal, a quota).
    pub failed_create: Option<&'a str>,
    /// When it was last reported.
    pub failed_create_at: Option<Timestamp>,
    pub exclude_label: &'a str,
    /// The stack's namespace, which the reasons' commands name.
    pub namespace: &'a str,
    /// Another stack's exporter the stack scrapes instead of its own (`namespace/name`).
    pub exporter_from: Option<&'a str>,
    /// node-exporter targets by node name, when Prometheus answered.
    pub targets: Option<&'a HashMap<String, Target>>,
    /// Seconds since the epoch, for the age of a scrape.
    pub now: f64,
}

pub use crate::model::slim::OS_LABEL;

pub fn assess<'a>(inputs: &Inputs<'a>) -> Vec<NodeStatus> {
    let template_of = |d: Option<&'a DaemonSet>| {
        d.and_then(|d| d.spec.as_ref())
            .and_then(|s| s.template.spec.as_ref())
    };
    let (template, windows_template) = (template_of(inputs.daemonset), template_of(inputs.windows));
    let by_node = exporter_pods_by_node(inputs.daemonset, &inputs.pods);
    let windows_by_node = exporter_pods_by_node(inputs.windows, &inputs.pods);
    let mut out: Vec<NodeStatus> = inputs
        .nodes
        .iter()
        .map(|node| {
            let name = node.name().to_string();
            let labels = node.labels();
            let os = node.os().to_string();
            let arch = node.arch().to_string();
            let ready = node.ready().to_string();
            // A Windows node is windows-exporter's, when the stack runs one.
            let windows = inputs.windows.is_some() && os == crate::render::classes::WINDOWS;
            let (pods, template) = if windows {
                (&windows_by_node, windows_template)
            } else {
                (&by_node, template)
            };
            let pod = pods.get(name.as_str()).copied();
            let exporter = pod.map(exporter_pod);
            let scrape = inputs.targets.map(|targets| match targets.get(&name) {
                Some(t) => Scrape {
                    health: t.health.clone(),
                    last_scrape_seconds: t.last_scrape.map(|at| (inputs.now - at).max(0.0)),
                    error: t.last_error.clone().filter(|e| !e.is_empty()),
                },
                None => Scrape {
                    health: "missing".into(),
                    last_scrape_seconds: None,
                    error: None,
                },
            });
            let (coverage, why) = match (pod, &exporter) {
                // The opt-out wins even while the pod it removes is still there (terminating).
                _ if opted_out(labels, inputs) => (
                    Coverage::Excluded,
                    Some((
                        Cause::Excluded,
                        format!("excluded by label {}=true", inputs.exclude_label),
                    )),
                ),
                (Some(pod), Some(e)) => judge_pod(pod, e, scrape.as_ref()),
                _ => why_no_pod(node, labels, &os, template, inputs),
            };
            let (cause, reason) = why.unzip();
            NodeStatus {
                name,
                ready,
                os,
                arch,
                coverage,
                exporter,
                scrape,
                cause,
                reason,
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The DaemonSet's pods, keyed by the node they run on or, before they are scheduled, the
/// node the DaemonSet controller pinned them to (a `metadata.name` match field).
fn exporter_pods_by_node<'a>(
    daemonset: Option<&DaemonSet>,
    pods: &[&'a SlimPod],
) -> HashMap<&'a str, &'a SlimPod> {
    let Some(selector) = daemonset.and_then(|d| d.spec.as_ref()).map(|s| &s.selector) else {
        return HashMap::new();
    };
    let mut out: HashMap<&str, &SlimPod> = HashMap::new();
    for pod in pods {
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        if !selector::matches(selector, &labels) {
            continue;
        }
        let Some(node) = target_node(&pod.spec) else {
            continue;
        };
        // A replacement and the pod it replaces may overlap; the live one tells the truth.
        let keep = out.get(node).is_none_or(|old| {
            old.metadata.deletion_timestamp.is_some() && pod.metadata.deletion_timestamp.is_none()
        });
        if keep {
            out.insert(node, pod);
        }
    }
    out
}

fn target_node(spec: &SlimPodSpec) -> Option<&str> {
    spec.node_name
        .as_deref()
        .filter(|n| !n.is_empty())
        .or(spec.pinned_node.as_deref())
}

/// A pod's state in kubectl's words (the STATUS column of `kubectl get pods`, simplified),
/// and the message that explains it.
pub fn pod_state(pod: &SlimPod) -> (String, Option<String>) {
    if pod.metadata.deletion_timestamp.is_some() {
        return ("Terminating".into(), None);
    }
    (pod.status.state.clone(), pod.status.message.clone())
}

fn exporter_pod(pod: &SlimPod) -> ExporterPod {
    let (state, _) = pod_state(pod);
    ExporterPod {
        name: pod.metadata.name.clone().unwrap_or_default(),
        ready: state == "Running",
        state,
        restarts: pod.status.restarts,
    }
}

type Why = (Coverage, Option<(Cause, String)>);

fn judge_pod(pod: &SlimPod, e: &ExporterPod, scrape: Option<&Scrape>) -> Why {
    if !e.ready {
        let (state, message) = pod_state(pod);
        let reason = match message {
            Some(m) => format!("exporter pod {} {state}: {m}", e.name),
            None => format!("exporter pod {} {state}", e.name),
        };
        return (Coverage::NotMonitored, Some((Cause::PodNotReady, reason)));
    }
    match scrape {
        Some(s) if s.health == "missing" => (
            Coverage::NotMonitored,
            Some((
                Cause::NoScrapeTarget,
                "exporter runs but Prometheus has no scrape target for it".into(),
            )),
        ),
        Some(s) if s.health == "down" => (
            Coverage::NotMonitored,
            Some((
                Cause::ScrapeFailing,
                match &s.error {
                    Some(err) => format!("scrape failing: {err}"),
                    None => "scrape failing".into(),
                },
            )),
        ),
        _ => (Coverage::Monitored, None),
    }
}

/// An explicit opt-out wins over every other reason: the gap is intended.
fn opted_out(labels: &BTreeMap<String, String>, inputs: &Inputs) -> bool {
    labels.get(inputs.exclude_label).map(String::as_str) == Some("true")
}

/// Why the DaemonSet put no pod on a node, in the order the DaemonSet controller decides it:
/// node selector (the OS), required node affinity (the exclusion label), taints; then what
/// the controller reported (an admission refusal), then a node too new to have one yet.
fn why_no_pod(
    node: &SlimNode,
    labels: &BTreeMap<String, String>,
    os: &str,
    template: Option<&PodSpec>,
    inputs: &Inputs,
) -> Why {
    let not = |cause: Cause, reason: String| (Coverage::NotMonitored, Some((cause, reason)));
    let ns = inputs.namespace;
    let Some(template) = template else {
        return not(
            Cause::DaemonSetMissing,
            match inputs.exporter_from {
                Some(from) => format!(
                    "daemonset {from}, the exporter this stack scrapes, is missing (`kubectl automon enable -n {ns}` deploys automon's own)"
                ),
                None => format!(
                    "the node-exporter DaemonSet is missing (`kubectl automon enable -n {ns}` restores it)"
                ),
            },
        );
    };

    for (k, v) in template.node_selector.iter().flatten() {
        if labels.get(k) != Some(v) {
            if k == OS_LABEL {
                let hint = if os == "windows" {
                    format!(
                        " (Windows nodes need windows-exporter: `kubectl automon enable -n {ns}` or `kubectl automon reconcile -n {ns}` adds it)"
                    )
                } else {
                    String::new()
                };
                return not(
                    Cause::UnsupportedOs,
                    format!(
                        "node-exporter does not run on {} nodes{hint}",
                        if os.is_empty() { "unlabelled" } else { os }
                    ),
                );
            }
            return not(
                Cause::NodeSelector,
                format!("node selector {k}={v} not met"),
            );
        }
    }
    let terms = template
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|r| r.node_selector_terms.as_slice())
        .unwrap_or_default();
    let term_holds = |t: &k8s_openapi::api::core::v1::NodeSelectorTerm| {
        t.match_expressions
            .iter()
            .flatten()
            .all(|r| selector::node_requirement_holds(r, labels))
    };
    if !terms.is_empty() && !terms.iter().any(term_holds) {
        let failing = terms[0]
            .match_expressions
            .iter()
            .flatten()
            .find(|r| !selector::node_requirement_holds(r, labels));
        if let Some(r) = failing {
            if r.key == inputs.exclude_label {
                let value = labels.get(&r.key).map(String::as_str).unwrap_or_default();
                return (
                    Coverage::Excluded,
                    Some((
                        Cause::Excluded,
                        format!("excluded by label {}={value}", r.key),
                    )),
                );
            }
            let values = r.values.as_deref().unwrap_or_default().join(",");
            return not(
                Cause::NodeAffinity,
                format!("node affinity {} {} ({values}) not met", r.key, r.operator),
            );
        }
    }
    let mut tolerations = template.tolerations.clone().unwrap_or_default();
    tolerations.extend(selector::daemonset_default_tolerations(
        template.host_network == Some(true),
    ));
    let untolerated = selector::untolerated(&node.spec.taints, &tolerations);
    if !untolerated.is_empty() {
        let names: Vec<String> = untolerated
            .into_iter()
            .map(selector::describe_taint)
            .collect();
        let s = if names.len() == 1 { "" } else { "s" };
        return not(
            Cause::Taint,
            format!("taint{s} {} not tolerated", names.join(", ")),
        );
    }
    // Events live an hour: a refusal from before the node existed is not about it.
    let node_created = node.created().map(|t| t.0);
    let before_the_node = matches!(
        (inputs.failed_create_at, node_created),
        (Some(refused), Some(created)) if refused < created
    );
    if let Some(message) = inputs.failed_create.filter(|_| !before_the_node) {
        // The DaemonSet controller's event says "Error creating: <the API server's answer>";
        // after many alike, the event recorder folds them into one that says so first.
        let message = message
            .strip_prefix("(combined from similar events): ")
            .unwrap_or(message);
        let message = message.strip_prefix("Error creating: ").unwrap_or(message);
        return not(
            Cause::CreationRefused,
            format!("pod creation refused: {message}"),
        );
    }
    not(
        Cause::NotCreated,
        "no exporter pod yet (the DaemonSet controller has not created one)".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model;
    use crate::{config::Config, render};

    fn daemonset() -> DaemonSet {
        let objects = render::render(&Config::default()).objects;
        let o = objects
            .iter()
            .find(|o| model::kind(o) == "DaemonSet")
            .unwrap();
        serde_json::from_value(serde_json::to_value(o).unwrap()).unwrap()
    }

    fn node(name: &str, extra: serde_json::Value) -> SlimNode {
        let mut v = serde_json::json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        });
        merge(&mut v, extra);
        serde_json::from_value(v).unwrap()
    }

    fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
        match (a, b) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }

    fn pod(name: &str, node: &str, status: serde_json::Value) -> SlimPod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {
                "app.kubernetes.io/name": "node-exporter",
                "app.kubernetes.io/part-of": "automon",
            }},
            "spec": {"nodeName": node, "containers": [{"name": "node-exporter"}]},
            "status": status,
        }))
        .unwrap()
    }

    fn running() -> serde_json::Value {
        serde_json::json!({
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "node-exporter", "ready": true, "restartCount": 0,
                "image": "x", "imageID": "", "state": {"running": {}}}],
        })
    }

    fn assess_one(
        ds: Option<&DaemonSet>,
        node: SlimNode,
        pods: &[SlimPod],
        failed: Option<&str>,
    ) -> NodeStatus {
        assess_refused_at(ds, node, pods, failed, None)
    }

    fn assess_refused_at(
        ds: Option<&DaemonSet>,
        node: SlimNode,
        pods: &[SlimPod],
        failed: Option<&str>,
        at: Option<&str>,
    ) -> NodeStatus {
        let inputs = Inputs {
            nodes: vec![&node],
            daemonset: ds,
            windows: None,
            pods: pods.iter().collect(),
            failed_create: failed,
            failed_create_at: at.map(|t| t.parse().unwrap()),
            exclude_label: "automon.io/exclude",
            namespace: "automon",
            exporter_from: None,
            targets: None,
            now: 0.0,
        };
        assess(&inputs).remove(0)
    }

    #[test]
    fn a_running_ready_exporter_monitors_its_node() {
        let ds = daemonset();
        let n = assess_one(
            Some(&ds),
            node("a", serde_json::json!({})),
            &[pod("ne-1", "a", running())],
            None,
        );
        assert_eq!(n.coverage, Coverage::Monitored);
        assert_eq!(n.exporter.unwrap().state, "Running");
        assert_eq!(
            (n.os.as_str(), n.arch.as_str(), n.ready.as_str()),
            ("linux", "amd64", "True")
        );
        assert_eq!(n.reason, None);
    }

    #[test]
    fn each_reason_for_a_missing_exporter_is_named() {
        let ds = daemonset();
        let win = node(
            "w",
            serde_json::json!({"metadata": {"labels": {"kubernetes.io/os": "windows"}}}),
        );
        let r = assess_one(Some(&ds), win, &[], None);
        assert_eq!(r.coverage, Coverage::NotMonitored);
        assert!(r.reason.unwrap().contains("does not run on windows nodes"));

        let excluded = node(
            "x",
            serde_json::json!({"metadata": {"labels": {"automon.io/exclude": "true"}}}),
        );
        let r = assess_one(Some(&ds), excluded, &[], None);
        assert_eq!(r.coverage, Coverage::Excluded);
        // The opt-out wins over the OS: an excluded Windows node is not a gap.
        let excluded_win = node(
            "xw",
            serde_json::json!({"metadata": {"labels": {"automon.io/exclude": "true", "kubernetes.io/os": "windows"}}}),
        );
        assert_eq!(
            assess_one(Some(&ds), excluded_win, &[], None).coverage,
            Coverage::Excluded
        );
        assert_eq!(
            r.reason.unwrap(),
            "excluded by label automon.io/exclude=true"
        );

        let mut strict = ds.clone();
        strict
            .spec
            .as_mut()
            .unwrap()
            .template
            .spec
            .as_mut()
            .unwrap()
            .tolerations = None;
        let gpu = node(
            "g",
            serde_json::json!({"spec": {"taints": [
                {"key": "nvidia.com/gpu", "value": "present", "effect": "NoExecute"},
                {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
            ]}}),
        );
        let r = assess_one(Some(&strict), gpu.clone(), &[], None);
        assert_eq!(
            r.reason.unwrap(),
            "taint nvidia.com/gpu=present:NoExecute not tolerated"
        );
        // The default policy tolerates every taint.
        let r = assess_one(
            Some(&ds),
            gpu,
            &[],
            Some("Error creating: pods \"ne-x\" is forbidden: violates PodSecurity"),
        );
        assert_eq!(
            r.reason.unwrap(),
            "pod creation refused: pods \"ne-x\" is forbidden: violates PodSecurity"
        );
        // Many alike are folded into one event that says so: the same reason.
        let r = assess_one(
            Some(&ds),
            node("a", serde_json::json!({})),
            &[],
            Some(
                "(combined from similar events): Error creating: pods \"ne-x\" is forbidden: violates PodSecurity",
            ),
        );
        assert_eq!(
            r.reason.unwrap(),
            "pod creation refused: pods \"ne-x\" is forbidden: violates PodSecurity"
        );

        let r = assess_one(None, node("a", serde_json::json!({})), &[], None);
        assert!(r.reason.unwrap().contains("DaemonSet is missing"));
    }

    #[test]
    fn a_broken_pod_says_what_the_kubelet_or_scheduler_said() {
        let ds = daemonset();
        let crash = pod(
            "ne-1",
            "a",
            serde_json::json!({
                "phase": "Running",
                "containerStatuses": [{"name": "node-exporter", "ready": false, "restartCount": 7,
                    "image": "x", "imageID": "",
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}}}],
            }),
        );
        let r = assess_one(Some(&ds), node("a", serde_json::json!({})), &[crash], None);
        assert_eq!(r.coverage, Coverage::NotMonitored);
        let e = r.exporter.unwrap();
        assert_eq!(
            (e.state.as_str(), e.restarts, e.ready),
            ("CrashLoopBackOff", 7, false)
        );
        assert_eq!(
            r.reason.unwrap(),
            "exporter pod ne-1 CrashLoopBackOff: back-off 5m0s restarting failed container"
        );

        // Not scheduled yet: the pod names its node through the DaemonSet's match field.
        let mut pending: SlimPod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "ne-2", "labels": {
                "app.kubernetes.io/name": "node-exporter", "app.kubernetes.io/part-of": "automon"}},
            "spec": {"containers": [{"name": "node-exporter"}], "affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b"]}]}]}}}},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 1 node(s) didn't have free ports for the requested pod ports."}]},
        }))
        .unwrap();
        let r = assess_one(
            Some(&ds),
            node("b", serde_json::json!({})),
            &[pending.clone()],
            None,
        );
        assert_eq!(r.exporter.unwrap().state, "Pending");
        assert!(r.reason.unwrap().contains("didn't have free ports"));
        pending.spec.pinned_node = None;
        let r = assess_one(
            Some(&ds),
            node("b", serde_json::json!({})),
            &[pending],
            None,
        );
        assert!(
            r.exporter.is_none(),
            "a pod for no node is nobody's exporter"
        );
    }

    #[test]
    fn a_refusal_from_before_a_node_existed_is_not_its_reason() {
        let ds = daemonset();
        let new = node(
            "n",
            serde_json::json!({"metadata": {"creationTimestamp": "2026-11-25T10:00:00Z"}}),
        );
        let quota = Some("Error creating: pods \"ne-x\" is forbidden: exceeded quota");
        let at = |t| assess_refused_at(Some(&ds), new.clone(), &[], quota, Some(t));
        let r = at("2026-11-25T09:30:00Z");
        assert_eq!(r.cause, Some(Cause::NotCreated), "{r:?}");
        let r = at("2026-11-25T10:00:01Z");
        let refused = "pod creation refused: pods \"ne-x\" is forbidden: exceeded quota";
        assert_eq!(
            (r.cause, r.reason.as_deref()),
            (Some(Cause::CreationRefused), Some(refused))
        );
    }

    #[test]
    fn a_node_just_excluded_is_excluded_while_its_pod_terminates() {
        let ds = daemonset();
        let mut leaving = pod("ne-1", "x", running());
        leaving.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        let excluded = node(
            "x",
            serde_json::json!({"metadata": {"labels": {"automon.io/exclude": "true"}}}),
        );
        let r = assess_one(Some(&ds), excluded, &[leaving], None);
        assert_eq!(r.coverage, Coverage::Excluded);
        assert_eq!(r.exporter.unwrap().state, "Terminating");
        assert_eq!(r.cause, Some(Cause::Excluded));
    }

    #[test]
    fn prometheus_has_the_last_word_when_it_answers() {
        let ds = daemonset();
        let nodes = [
            node("a", serde_json::json!({})),
            node("b", serde_json::json!({})),
        ];
        let pods = [pod("ne-a", "a", running()), pod("ne-b", "b", running())];
        let targets = HashMap::from([(
            "a".to_string(),
            Target {
                health: "down".into(),
                last_scrape: Some(90.0),
                last_error: Some("connection refused".into()),
            },
        )]);
        let inputs = Inputs {
            nodes: nodes.iter().collect(),
            daemonset: Some(&ds),
            windows: None,
            pods: pods.iter().collect(),
            failed_create: None,
            failed_create_at: None,
            exclude_label: "automon.io/exclude",
            namespace: "automon",
            exporter_from: None,
            targets: Some(&targets),
            now: 100.0,
        };
        let out = assess(&inputs);
        assert_eq!(
            out[0].reason.as_deref(),
            Some("scrape failing: connection refused")
        );
        assert_eq!(
            out[0].scrape.as_ref().unwrap().last_scrape_seconds,
            Some(10.0)
        );
        assert_eq!(out[1].coverage, Coverage::NotMonitored);
        assert!(
            out[1]
                .reason
                .as_deref()
                .unwrap()
                .contains("no scrape target")
        );
    }
}
