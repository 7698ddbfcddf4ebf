//! Placement (issue 29): `nodeSelector`, `tolerations`, `affinity`, `priorityClassName` and
//! `topologySpreadConstraints` of every component reach its pods as the user wrote them, a real
//! API server accepts them with strict validation, a bad one is refused by its key before
//! anything is written, and the real scheduler puts the stack's pods where they were asked to go.

mod common;

use common::*;
use serde_json::{Value, json};

/// The label and taint of the nodes a team keeps for monitoring.
const POOL: (&str, &str) = ("automon.io/test-pool", "monitoring");
const TAINT: (&str, &str) = ("automon.io/test-dedicated", "monitoring");

/// Every component kept on the monitoring pool, tolerating its taint; `extra` beside.
fn placement_sets(extra: &[&str]) -> Vec<String> {
    let mut sets = Vec::new();
    for section in [
        "prometheus",
        "alertmanager",
        "grafana",
        "kubeStateMetrics",
        "operator",
    ] {
        sets.push(format!("{section}.nodeSelector={{{}: {}}}", POOL.0, POOL.1));
        sets.push(format!(
            "{section}.tolerations=[{{key: {}, operator: Equal, value: {}, effect: NoSchedule}}]",
            TAINT.0, TAINT.1
        ));
    }
    sets.extend(extra.iter().map(|s| s.to_string()));
    sets
}

fn set_flags(sets: &[String]) -> Vec<&str> {
    sets.iter().flat_map(|s| ["--set", s.as_str()]).collect()
}

/// The pod spec of a Deployment, or the spec of a Prometheus / Alertmanager (which takes the
/// pod's scheduling fields itself).
fn pod_fields(o: &Value) -> &Value {
    match o["kind"].as_str() {
        Some("Deployment") => &o["spec"]["template"]["spec"],
        _ => &o["spec"],
    }
}

#[test]
fn every_component_carries_its_placement_and_the_api_server_accepts_it_strictly() {
    let c = cluster();
    c.ensure_crds();
    let sets = placement_sets(&[
        "prometheus.replicas=2",
        "prometheus.priorityClassName=system-cluster-critical",
        "alertmanager.affinity={podAntiAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 100, podAffinityTerm: {topologyKey: kubernetes.io/hostname, labelSelector: {matchLabels: {app.kubernetes.io/name: alertmanager}}}}]}}",
        "grafana.topologySpreadConstraints=[{maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: ScheduleAnyway, labelSelector: {matchLabels: {app.kubernetes.io/name: grafana}}}]",
    ]);
    let objects = rendered_objects(&set_flags(&sets));
    let placed: Vec<Value> = objects
        .iter()
        .filter(|o| {
            matches!(
                o["kind"].as_str(),
                Some("Deployment" | "Prometheus" | "Alertmanager")
            )
        })
        .cloned()
        .collect();
    let names: Vec<String> = placed.iter().map(kind_name).collect();
    assert_eq!(placed.len(), 5, "{names:?}");
    for o in &placed {
        let pod = pod_fields(o);
        let at = kind_name(o);
        assert_eq!(pod["nodeSelector"][POOL.0], POOL.1, "{at}");
        assert_eq!(pod["nodeSelector"]["kubernetes.io/os"], "linux", "{at}");
        assert_eq!(
            pod["tolerations"],
            json!([{"key": TAINT.0, "operator": "Equal", "value": TAINT.1, "effect": "NoSchedule"}]),
            "{at}"
        );
    }
    let by_kind = |kind: &str| placed.iter().find(|o| o["kind"] == kind).unwrap();
    let prometheus = pod_fields(by_kind("Prometheus"));
    assert_eq!(prometheus["priorityClassName"], "system-cluster-critical");
    // Its two replicas spread over nodes by automon's default, the user having said nothing.
    assert_eq!(
        prometheus["topologySpreadConstraints"][0]["topologyKey"],
        "kubernetes.io/hostname"
    );
    assert_eq!(
        prometheus["topologySpreadConstraints"][0]["whenUnsatisfiable"],
        "ScheduleAnyway"
    );
    // The user's affinity replaces the default spread.
    let alertmanager = pod_fields(by_kind("Alertmanager"));
    assert!(alertmanager.get("topologySpreadConstraints").is_none());
    assert_eq!(
        alertmanager["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
            [0]["weight"],
        100
    );
    let grafana = placed
        .iter()
        .find(|o| o["metadata"]["name"] == "grafana")
        .unwrap();
    assert_eq!(
        pod_fields(grafana)["topologySpreadConstraints"][0]["topologyKey"],
        "topology.kubernetes.io/zone"
    );

    if !exists(&["namespace", "automon"]) {
        c.kubectl(&["create", "namespace", "automon"]).success();
    }
    c.accepts_strictly(&placed);
}

#[test]
fn a_bad_placement_is_refused_by_its_key_before_anything_is_written() {
    for (set, words) in [
        (
            "prometheus.tolerations=[{key: k, efect: NoSchedule}]",
            "prometheus.tolerations[0].efect: not a field of a toleration",
        ),
        (
            "grafana.nodeSelector={'no spaces please': x}",
            "grafana.nodeSelector.no spaces please: \"no spaces please\" is not a valid label key",
        ),
        (
            "operator.priorityClassName=High",
            "operator.priorityClassName: \"High\" is not a PriorityClass name",
        ),
    ] {
        // Offline: render has no cluster to ask.
        let rendered = run(automon_admin().args(["render", "--set", set]))
            .code(2)
            .stderr_has(words);
        assert!(rendered.stdout.is_empty(), "{rendered:#?}");
        // enable: nothing written, not even the namespace.
        let ns = "automon-pl-bad";
        let out = enable(ns, &["--set", set]);
        out.code(2).stderr_has(words);
        assert!(!exists(&["namespace", ns]), "enable wrote the namespace");
    }
}

/// The real scheduler puts every pod of the stack on the one node of the monitoring pool, which
/// no pod may use without tolerating its taint: the operator's, Grafana's and
/// kube-state-metrics' Deployments as enable writes them, Prometheus and Alertmanager as the
/// operator makes their StatefulSets from the custom resources.
#[test]
fn the_scheduler_puts_the_stack_on_the_nodes_it_was_told() {
    let ns = "automon-pl";
    let _cleanup = Cleanup::fresh(ns);
    let _sharing = nodes_shared();
    ensure_operator();
    let mut node = labelled("pl-monitoring-0", POOL.0, POOL.1);
    node["spec"] = json!({"taints": [{"key": TAINT.0, "value": TAINT.1, "effect": "NoSchedule"}]});
    let _nodes = KwokNodes::create(vec![node]);
    let sets = placement_sets(&[]);
    enable(ns, &set_flags(&sets)).success();
    for app in [
        "prometheus-operator",
        "grafana",
        "kube-state-metrics",
        "prometheus",
        "alertmanager",
    ] {
        let node = until(&format!("{app}'s pod bound to a node"), || {
            let pod = pod_of(ns, app).ok_or("no pod yet")?;
            let node = get_json(&["get", "pod", &pod, "-n", ns])["spec"]["nodeName"].clone();
            node.as_str()
                .map(str::to_string)
                .ok_or(format!("{pod} not bound yet"))
        });
        assert_eq!(node, "pl-monitoring-0", "{app}");
    }
}
