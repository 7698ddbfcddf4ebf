//! Every key's value is checked as the program that finally reads it checks it, before
//! anything is written: `render`, which has no cluster to ask, refuses a bad value by its key
//! with the usage exit code and prints nothing on stdout. One key per grammar; the grammars'
//! edge cases are the unit tests of src/config/checks.rs. Needs no cluster.

mod common;

use common::*;

/// `render --set <set>`: refused with exit code 2, the key and `words` in the error, and no
/// manifest on stdout.
#[track_caller]
fn refused(set: &str, key: &str, words: &str) {
    let out = run(automon().args(["render", "--set", set])).code(EXIT_USAGE);
    assert!(out.stdout.is_empty(), "{set}: printed manifests:\n{out:#?}");
    let line = format!("error: --set {set}: {key}: ");
    assert!(
        out.stderr.contains(&line),
        "{set}: stderr lacks {line:?}:\n{out:#?}"
    );
    assert!(
        out.stderr.contains(words),
        "{set}: stderr lacks {words:?}:\n{out:#?}"
    );
}

#[test]
fn render_refuses_a_bad_value_by_its_key_for_each_grammar() {
    let cases = [
        // The container runtime's image reference grammar.
        ("images.registry=mirror", "images.registry", "docker.io"),
        (
            "images.registry=mirror.example.com/Team",
            "images.registry",
            "upper-case",
        ),
        // An object name as the API server validates it.
        (
            "images.pullSecrets=[Regcred]",
            "images.pullSecrets[0]",
            "\"Regcred\" is not a Secret name",
        ),
        (
            "prometheus.storage.storageClass=fast_ssd",
            "prometheus.storage.storageClass",
            "is not a StorageClass name",
        ),
        // A namespace, and the Service name the operator makes from it.
        ("namespace=1team", "namespace", "\"1team-kubelet\""),
        // Prometheus' external labels.
        (
            "prometheus.externalLabels.__x=a",
            "prometheus.externalLabels",
            "\"__x\" starts with \"__\"",
        ),
        // Prometheus' durations.
        (
            "prometheus.retention=1.5h",
            "prometheus.retention",
            "not 1.5h",
        ),
        // Prometheus' byte sizes.
        (
            "prometheus.retentionSize=8EB",
            "prometheus.retentionSize",
            "2^63-1",
        ),
        // Alertmanager's group_by and intervals.
        (
            "alertmanager.route.groupBy=[node, node]",
            "alertmanager.route.groupBy",
            "given twice",
        ),
        (
            "alertmanager.route.repeatInterval=0s",
            "alertmanager.route.repeatInterval",
            "longer than 0",
        ),
        // Kubernetes quantities, and a request within its limit.
        (
            "grafana.resources.requests.cpu=1 core",
            "grafana.resources.requests.cpu",
            "is not a Kubernetes quantity",
        ),
        (
            "grafana.resources.requests.memory=1Gi",
            "grafana.resources.requests.memory",
            "above the memory limit (256Mi)",
        ),
        // A label key as the API server validates it.
        (
            "nodeExporter.excludeLabel=Example.com/skip",
            "nodeExporter.excludeLabel",
            "not a valid label key",
        ),
    ];
    for (set, key, words) in cases {
        refused(set, key, words);
    }
}

/// The values the same keys take are rendered where the consumer reads them.
#[test]
fn render_takes_what_the_consumers_take() {
    let out = run(automon().args([
        "render",
        "--set",
        "images.registry=registry.local:5000/mirror",
        "--set",
        "images.pullSecrets=[mirror-pull]",
        "--set",
        "prometheus.externalLabels={cluster: prod, topology.kubernetes.io/region: eu-1}",
        "--set",
        "prometheus.retention=1d12h",
        "--set",
        "alertmanager.route.groupBy=['...']",
    ]))
    .success();
    assert_has(
        &out.stdout,
        "image: registry.local:5000/mirror/prometheus-operator/prometheus-operator:",
    );
    assert_has(&out.stdout, "name: mirror-pull");
    assert_has(&out.stdout, "topology.kubernetes.io/region: eu-1");
    assert_has(&out.stdout, "retention: 1d12h");
}
