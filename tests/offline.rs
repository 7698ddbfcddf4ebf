//! What a new user meets before any cluster is involved: help with examples, `version` with the
//! server down, render's refusal of cluster flags, a configuration file that cannot be read.
//! Every test runs the real binary and needs no cluster.

mod common;

use common::*;

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

#[test]
fn help_is_a_command_and_every_help_ends_with_examples() {
    let out = run(automon().args(["help", "status"])).success();
    assert!(
        out.stdout.contains("Usage: kubectl automon status"),
        "{out:#?}"
    );
    let examples = out.stdout.rsplit_once("Examples:\n").expect("Examples").1;
    assert!(
        examples.contains("kubectl automon status -o wide"),
        "{out:#?}"
    );
    let out = run(automon().args(["disable", "--help"])).success();
    assert!(out.stdout.contains("Examples:\n"), "{out:#?}");
}

#[test]
fn render_refuses_cluster_flags_and_keeps_the_namespace() {
    let out = run(automon().args(["render", "--context", "nope"]))
        .code(EXIT_USAGE)
        .stderr_has(
            "--context is not for `render`, which works offline and never reads the kubeconfig",
        );
    assert!(out.stdout.is_empty(), "{out:#?}");
    run(automon().args(["completion", "bash", "--kubeconfig", "/nonexistent"]))
        .code(EXIT_USAGE)
        .stderr_has("--kubeconfig is not for `completion`");
    let out = run(automon().args(["render", "-n", "mon"])).success();
    assert!(
        out.stdout.contains("namespace: mon"),
        "{}",
        &out.stdout[..200]
    );
    let help = run(automon().args(["render", "--help"])).success();
    assert!(!help.stdout.contains("--context"), "{help:#?}");
    assert!(help.stdout.contains("--namespace"), "{help:#?}");
}

#[test]
fn an_unreadable_configuration_file_is_named_with_the_reason() {
    run(automon().args(["render", "-f", "/nonexistent.yaml"]))
        .code(EXIT_USAGE)
        .stderr_has(
            "error: cannot read /nonexistent.yaml: No such file or directory (os error 2); check the path given to -f/--filename",
        );
    run(automon().args(["render", "--set", "prometheus.replicas=two"]))
        .code(EXIT_USAGE)
        .stderr_has("prometheus.replicas: expected a whole number (0 or more), got \"two\"");
}
