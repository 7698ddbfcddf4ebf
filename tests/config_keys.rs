//! Every key's value is checked as the program that finally reads it checks it, before
//! anything is written: `render`, which has no cluster to ask, refuses a bad value by its key
//! with the usage exit code and prints nothing on stdout. One key per grammar; the grammars'
//! edge cases are the unit tests of src/config/checks.rs. The render tests need no cluster; the
//! last compares the checks with the local cluster's API server, in server-side dry runs.

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

/// Whether `render --set <set>` takes the value (exit 0) or refuses it as a bad value (exit 2).
fn render_takes(set: &str) -> bool {
    let out = run(automon().args(["render", "--set", set]));
    assert!(matches!(out.code, 0 | EXIT_USAGE), "{set}:\n{out:#?}");
    out.code == 0
}

/// Whether the API server takes `manifest` (JSON) in a server-side dry run: nothing is written.
fn api_server_takes(manifest: serde_json::Value) -> bool {
    let out = cluster().kubectl_with_input(
        &["create", "--dry-run=server", "-o", "name", "-f", "-"],
        &manifest.to_string(),
    );
    out.code == 0
}

/// The checks agree with their consumer, the API server, value by value and edge case by edge
/// case: what `render` takes the API server takes, what it refuses the API server refuses.
#[test]
fn the_api_server_agrees_with_the_checks() {
    let n = |c: char, k: usize| std::iter::repeat_n(c, k).collect::<String>();
    let subdomain = |last: usize| {
        format!(
            "{}.{}.{}.{}",
            n('a', 63),
            n('b', 63),
            n('c', 63),
            n('d', last)
        )
    };
    let secret = |name: &str, key: &str| serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "default"}, "stringData": {key: "x"}});
    let names = [
        "a",
        "team-hooks",
        "a.b",
        "9",
        "Team",
        "-a",
        "a-",
        "a_b",
        "a..b",
        ".a",
        "ünï",
        "a b",
        &n('a', 63),
        &n('a', 64),
        &subdomain(61),
        &subdomain(62),
    ];
    for name in names {
        let ours = render_takes(&format!("images.pullSecrets=['{name}']"));
        assert_eq!(
            ours,
            api_server_takes(secret(name, "k")),
            "Secret name {name:?}"
        );
    }
    for name in [
        "a",
        "monitoring",
        "1team",
        "a.b",
        "Team",
        "-a",
        "a_b",
        &n('a', 63),
        &n('a', 64),
    ] {
        let ours = render_takes(&format!("prometheus.select.namespaces=['{name}']"));
        let namespace = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        assert_eq!(ours, api_server_takes(namespace), "namespace {name:?}");
    }
    for key in [
        "url",
        ".hidden",
        "a..b",
        "a-b_c.d",
        ".",
        "..",
        "..x",
        "a/b",
        "a b",
        &n('k', 253),
        &n('k', 254),
    ] {
        let ours = render_takes(&format!(
            "alertmanager.receivers=[{{name: r, webhook: {{urlSecret: {{secret: s, key: '{key}'}}}}}}]"
        ));
        assert_eq!(
            ours,
            api_server_takes(secret("s", key)),
            "Secret key {key:?}"
        );
    }
    let pod = |labels: serde_json::Value, cpu: &str| {
        serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "keys", "namespace": "default", "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "registry.local:5000/c:1",
                "resources": {"requests": {"cpu": cpu}}}]}})
    };
    // Not `.`, `Gi` or `e3`, which a Pod's parser reads as 0 but the operator's CRDs' pattern
    // for quantities (Prometheus', Alertmanager's) refuses, as automon does for every key.
    for cpu in [
        "0", "500m", "2", "1.5", ".5", "1.", "+1", "1e3", "1E-2", "100n", "10u", "1k", "1Gi", "-1",
        "lots", "1K", "1GB", "1 Gi", "1.2.3", "1e", "1Mi3", "+-1", "",
    ] {
        let ours = render_takes(&format!("grafana.resources.requests.cpu='{cpu}'"));
        let theirs = api_server_takes(pod(serde_json::json!({}), cpu));
        assert_eq!(ours, theirs, "CPU request {cpu:?}");
    }
    for key in [
        "a",
        "example.com/skip",
        "a.b-c/d_e.f",
        "Team_A",
        &n('n', 63),
        "Example.com/x",
        "-a",
        "a_",
        "a/",
        "/x",
        "a/b/c",
        "ä",
        &n('n', 64),
        &format!("{}/x", subdomain(61)),
        &format!("{}/x", subdomain(62)),
    ] {
        let ours = render_takes(&format!("nodeExporter.excludeLabel='{key}'"));
        let theirs = api_server_takes(pod(serde_json::json!({key: "true"}), "10m"));
        assert_eq!(ours, theirs, "label key {key:?}");
    }
}
