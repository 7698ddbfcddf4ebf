//! Grafana, node-exporter and kube-state-metrics as rendered by the real binary are accepted by
//! a real API server with strict validation, and node-exporter really lands on every node.

mod common;

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use common::*;
use serde_json::Value;

const COMPONENTS: &[&str] = &["grafana", "node-exporter", "kube-state-metrics"];

fn name_label(o: &Value) -> &str {
    o["metadata"]["labels"]["app.kubernetes.io/name"]
        .as_str()
        .unwrap_or("")
}

#[test]
fn components_pass_strict_server_side_validation() {
    let c = cluster();
    c.ensure_crds();
    let items = rendered_objects(&[]);
    let namespace: Vec<Value> = items
        .iter()
        .filter(|o| o["kind"] == "Namespace")
        .cloned()
        .collect();
    assert_eq!(namespace.len(), 1);
    let ours: Vec<Value> = items
        .iter()
        .filter(|o| COMPONENTS.contains(&name_label(o)))
        .cloned()
        .collect();
    let kinds: BTreeSet<&str> = ours.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    for k in [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Service",
        "NetworkPolicy",
        "Deployment",
        "DaemonSet",
        "ServiceMonitor",
    ] {
        assert!(kinds.contains(k), "no {k} among {kinds:?}");
    }

    if !exists(&["namespace", "automon"]) {
        let (_dir, ns) = write_list("namespace.json", &namespace);
        c.server_side_apply(&ns, &[]).success();
    }
    c.accepts_strictly(&ours);
}

#[test]
fn node_exporter_runs_ready_on_every_linux_node() {
    let c = cluster();
    // A namespace and host port of its own, so that other tests' exporters never collide with it.
    let ns = "automon-ne";
    let _cleanup = Cleanup::fresh(ns);
    let port = port_for(ns);
    let items = rendered_objects(&["-n", ns, &port[0], &port[1]]);
    let wanted: Vec<Value> = items
        .iter()
        .filter(|o| {
            o["kind"] == "Namespace"
                || (name_label(o) == "node-exporter"
                    && (o["kind"] == "ServiceAccount" || o["kind"] == "DaemonSet"))
        })
        .cloned()
        .collect();
    assert_eq!(wanted.len(), 3, "{wanted:#?}");
    let (_dir, file) = write_list("node-exporter.json", &wanted);
    c.server_side_apply(&file, &[]).success();

    // The nodes the DaemonSet promises to cover: Linux, not opted out.
    let nodes: BTreeSet<String> = c
        .kubectl(&[
            "get",
            "nodes",
            "-l",
            "kubernetes.io/os=linux,automon.io/exclude!=true",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
        .success()
        .stdout
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert!(!nodes.is_empty(), "the local cluster has no Linux nodes");

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = String::new();
    loop {
        let pods = get_json(&[
            "get",
            "pods",
            "-n",
            ns,
            "-l",
            "app.kubernetes.io/name=node-exporter",
        ]);
        let ready: BTreeSet<String> = pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| {
                p["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
            })
            .filter_map(|p| p["spec"]["nodeName"].as_str().map(str::to_string))
            .collect();
        if ready == nodes {
            break;
        }
        last = format!("ready on {ready:?}, want {nodes:?}");
        assert!(
            Instant::now() < deadline,
            "node-exporter not ready everywhere: {last}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let ds = get_json(&["get", "daemonset", "node-exporter", "-n", ns]);
    assert_eq!(
        ds["status"]["desiredNumberScheduled"].as_u64(),
        Some(nodes.len() as u64),
        "{last}"
    );
}
