//! What a new user meets before any cluster is involved: help with examples, `version` with the
//! server down, render's refusal of cluster flags, a configuration file that cannot be read.
//! Every test runs the real binary and needs no cluster.

mod common;

use common::*;

const EXIT_UNREACHABLE: i32 = 4;

/// A kubeconfig whose server refuses connections: port 1 on loopback, where nothing listens.
fn refused_kubeconfig() -> (tempfile::TempDir, std::path::PathBuf) {
    write_temp(
        "kubeconfig",
        "apiVersion: v1
kind: Config
current-context: down
contexts:
- name: down
  context: {cluster: down, user: me}
clusters:
- name: down
  cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}
users:
- name: me
  user: {token: t}
",
    )
}

#[test]
fn version_prints_the_client_first_when_the_server_is_down() {
    let (_d, kc) = refused_kubeconfig();
    let out = run(automon().arg("version").arg("--kubeconfig").arg(&kc))
        .code(EXIT_UNREACHABLE)
        .stderr_has("cannot reach the API server at https://127.0.0.1:1")
        .stderr_has("connection refused");
    assert!(out.stdout.starts_with("Plugin Version: v"), "{out:#?}");
    assert!(out.stdout.contains("prometheus-operator"), "{out:#?}");
    assert!(!out.stdout.contains("Server Version"), "{out:#?}");

    let out = run(automon()
        .args(["version", "-o", "json"])
        .arg("--kubeconfig")
        .arg(&kc))
    .code(EXIT_UNREACHABLE);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("the client's part");
    assert!(v["pluginVersion"].as_str().unwrap().starts_with('v'));
    assert!(v.get("server").is_none(), "{out:#?}");
}
