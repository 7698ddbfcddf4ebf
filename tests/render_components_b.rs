//! Grafana, node-exporter and kube-state-metrics as rendered by the real binary are accepted by
//! a real API server with strict validation, and node-exporter really lands on every node.

mod common;

use std::{
    collections::BTreeSet,
    path::Path,
    time::{Duration, Instant},
};

use common::*;
use serde_json::{Value, json};

const COMPONENTS: &[&str] = &["grafana", "node-exporter", "kube-state-metrics"];

/// `render -o json` with these extra arguments, as a list of objects.
fn render(args: &[&str]) -> Vec<Value> {
    let out = run(automon().args(["render", "-o", "json"]).args(args)).success();
    let list: Value = serde_json::from_str(&out.stdout).expect("render -o json is JSON");
    list["items"].as_array().expect("a v1/List").clone()
}

fn name_label(o: &Value) -> &str {
    o["metadata"]["labels"]["app.kubernetes.io/name"]
        .as_str()
        .unwrap_or("")
}

fn write_list(dir: &Path, file: &str, items: &[Value]) -> String {
    let path = dir.join(file);
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
    std::fs::write(&path, serde_json::to_string_pretty(&list).unwrap()).unwrap();
    path.to_string_lossy().into_owned()
}

/// Deletes a scratch namespace when the test ends, passed or failed.
struct ScratchNamespace<'a>(&'a LocalCluster, String);

impl Drop for ScratchNamespace<'_> {
    fn drop(&mut self) {
        self.0.kubectl(&[
            "delete",
            "namespace",
            &self.1,
            "--wait=false",
            "--ignore-not-found",
        ]);
    }
}

#[test]
fn components_pass_strict_server_side_validation() {
    let c = cluster();
    c.ensure_crds();
    let items = render(&[]);
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

    let dir = tempfile::tempdir().unwrap();
    if c.kubectl(&["get", "namespace", "automon"]).code != 0 {
        let ns = write_list(dir.path(), "namespace.json", &namespace);
        c.kubectl(&[
            "apply",
            "--server-side",
            "--field-manager",
            "automon-test",
            "-f",
            &ns,
        ])
        .success();
    }
    let file = write_list(dir.path(), "components.json", &ours);
    let out = c
        .kubectl(&[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--validate=strict",
            "--field-manager",
            "automon-test",
            "-f",
            &file,
        ])
        .success();
    let accepted = out
        .stdout
        .lines()
        .filter(|l| l.ends_with("(server dry run)"))
        .count();
    assert_eq!(accepted, ours.len(), "{out:#?}");
    assert!(!out.stderr.contains("unknown field"), "{out:#?}");
}

#[test]
fn node_exporter_runs_ready_on_every_linux_node() {
    let c = cluster();
    // A namespace and host port of its own, so that other tests' exporters never collide with it.
    let ns = format!("automon-ne-{}", std::process::id());
    let port = 20000 + std::process::id() % 10000;
    let _cleanup = ScratchNamespace(c, ns.clone());
    let items = render(&["-n", &ns, "--set", &format!("nodeExporter.port={port}")]);
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
    let dir = tempfile::tempdir().unwrap();
    let file = write_list(dir.path(), "node-exporter.json", &wanted);
    c.kubectl(&[
        "apply",
        "--server-side",
        "--field-manager",
        "automon-test",
        "-f",
        &file,
    ])
    .success();

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
        let pods = c
            .kubectl(&[
                "get",
                "pods",
                "-n",
                &ns,
                "-l",
                "app.kubernetes.io/name=node-exporter",
                "-o",
                "json",
            ])
            .success();
        let pods: Value = serde_json::from_str(&pods.stdout).unwrap();
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
    let ds = c
        .kubectl(&["get", "daemonset", "node-exporter", "-n", &ns, "-o", "json"])
        .success();
    let ds: Value = serde_json::from_str(&ds.stdout).unwrap();
    assert_eq!(
        ds["status"]["desiredNumberScheduled"].as_u64(),
        Some(nodes.len() as u64),
        "{last}"
    );
}
