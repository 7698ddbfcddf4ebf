//! The operator, Prometheus, Alertmanager and kubelet objects as `render` prints them, offered to
//! a real API server (server-side dry run, strict field validation) with the real
//! prometheus-operator CRDs installed: every object must be accepted as it is.

mod common;

use common::{automon, cluster, run};
use serde_json::Value;

/// The components these modules render (the `app.kubernetes.io/component` label).
const COMPONENTS: &[&str] = &["operator", "prometheus", "alertmanager", "kubelet"];
/// A namespace of this test's own, so that it never touches a stack another test installs.
const NAMESPACE: &str = "automon-dryrun-components-a";

fn rendered(sets: &[&str]) -> Vec<Value> {
    let mut cmd = automon();
    cmd.args(["render", "-o", "json", "-n", NAMESPACE]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let out = run(&mut cmd).success();
    let list: Value = serde_json::from_str(&out.stdout).expect("render -o json is JSON");
    list["items"]
        .as_array()
        .expect("a List")
        .iter()
        .filter(|o| {
            let component = &o["metadata"]["labels"]["app.kubernetes.io/component"];
            COMPONENTS.iter().any(|c| component == c)
        })
        .cloned()
        .collect()
}

/// The CRDs and the namespace, both idempotent; nothing of the stack itself is created.
fn prepare() {
    let c = cluster();
    let crds = c.dir.join("crds");
    c.kubectl(&[
        "apply",
        "--server-side",
        "--field-manager",
        "automon-test",
        "-f",
        crds.to_str().unwrap(),
    ])
    .success();
    c.kubectl(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/prometheuses.monitoring.coreos.com",
        "crd/alertmanagers.monitoring.coreos.com",
        "crd/servicemonitors.monitoring.coreos.com",
    ])
    .success();
    let ns = format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{{\"name\":\"{NAMESPACE}\"}}}}"
    );
    let (_dir, path) = common::write_temp("ns.json", &ns);
    c.kubectl(&[
        "apply",
        "--server-side",
        "--field-manager",
        "automon-test",
        "-f",
        path.to_str().unwrap(),
    ])
    .success();
}

/// Every object through `kubectl apply --dry-run=server --validate=strict`; the rejections.
fn rejections(objects: &[Value]) -> Vec<String> {
    let c = cluster();
    let dir = tempfile::tempdir().unwrap();
    let mut rejected = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        let path = dir.path().join(format!("{i}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(o).unwrap()).unwrap();
        let r = c.kubectl(&[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--validate=strict",
            "--field-manager",
            "automon-test",
            "-f",
            path.to_str().unwrap(),
        ]);
        let name = format!("{}/{}", o["kind"], o["metadata"]["name"]);
        if r.code != 0 || !r.stderr.trim().is_empty() {
            // Warnings (unknown or deprecated fields) count too: strict means strict.
            rejected.push(format!("{name}: {}{}", r.stdout, r.stderr));
        }
    }
    rejected
}

fn kinds(objects: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap_or_default().to_string())
        .collect();
    k.sort();
    k.dedup();
    k
}

#[test]
fn default_objects_are_accepted_by_the_api_server() {
    prepare();
    let objects = rendered(&[]);
    for kind in [
        "Alertmanager",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "NetworkPolicy",
        "Prometheus",
        "Secret",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
    ] {
        assert!(kinds(&objects).iter().any(|k| k == kind), "no {kind}");
    }
    let monitors = objects
        .iter()
        .filter(|o| o["kind"] == "ServiceMonitor")
        .count();
    assert_eq!(monitors, 4, "operator, prometheus, alertmanager, kubelet");
    assert_eq!(rejections(&objects), Vec::<String>::new());
}

#[test]
fn replicated_stack_with_storage_and_receivers_is_accepted() {
    prepare();
    let objects = rendered(&[
        "prometheus.replicas=2",
        "prometheus.retentionSize=40GB",
        "prometheus.storage.size=50Gi",
        "prometheus.storage.storageClass=standard",
        "prometheus.externalLabels={cluster: test}",
        "alertmanager.replicas=3",
        "alertmanager.receivers=[{name: team, webhook: {url: 'http://hook.example/alerts'}, slack: {apiUrl: 'https://hooks.slack.example/T0', channel: '#alerts'}}]",
        "images.pullSecrets=[mirror-credentials]",
    ]);
    let pdbs = objects
        .iter()
        .filter(|o| o["kind"] == "PodDisruptionBudget")
        .count();
    assert_eq!(pdbs, 2, "Prometheus and Alertmanager run several replicas");
    assert_eq!(rejections(&objects), Vec::<String>::new());
}
