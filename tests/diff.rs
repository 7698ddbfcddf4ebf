//! `diff` as a user runs it against the local cluster: everything new in an empty namespace,
//! nothing after the stack is installed, the conflict when someone scales Grafana by hand, the
//! change a new setting makes, the member `enable` would prune, and an error exit above 1.

mod common;

use common::*;

const NS: &str = "automon-diff-story";

fn rendered(ns: &str) -> Vec<serde_json::Value> {
    let out = run(automon().args(["render", "-o", "json", "-n", ns])).success();
    let list: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    list["items"].as_array().unwrap().clone()
}

/// Removes the namespace and the cluster-scoped objects (`<ns>-*`) the install created, at the
/// start (a previous run may have failed) and when the test ends, passed or failed.
struct Installed<'a>(&'a LocalCluster, &'static str);

impl Installed<'_> {
    fn remove(&self, wait: bool) {
        let wait = format!("--wait={wait}");
        for o in rendered(self.1) {
            if o["metadata"]["namespace"].is_null() && o["kind"] != "Namespace" {
                let kind = o["kind"].as_str().unwrap().to_lowercase();
                let name = o["metadata"]["name"].as_str().unwrap();
                assert!(name.starts_with(&format!("{}-", self.1)), "{name}");
                self.0
                    .kubectl(&["delete", &kind, name, "--ignore-not-found", &wait]);
            }
        }
        self.0
            .kubectl(&["delete", "namespace", self.1, "--ignore-not-found", &wait]);
    }
}

impl Drop for Installed<'_> {
    fn drop(&mut self) {
        self.remove(false);
    }
}

fn diff(args: &[&str]) -> Run {
    run(automon_admin().args(["diff", "-n", NS]).args(args))
}

#[test]
fn diff_tells_what_enable_would_change() {
    let c = cluster();
    c.ensure_crds();
    let installed = Installed(c, NS);
    installed.remove(true);
    let objects = rendered(NS);

    // Nothing installed: every object is new, diffed against nothing; the namespace does not
    // exist, so namespaced objects are shown as rendered, and the user is told why.
    let out = diff(&[]).code(1).stderr_has(&format!(
        "note: namespace \"{NS}\" does not exist yet (enable creates it first)"
    ));
    let headers: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("diff -u -N live/"))
        .collect();
    assert_eq!(headers.len(), objects.len(), "{}", out.stdout);
    for o in &objects {
        let path = match o["metadata"]["namespace"].as_str() {
            Some(ns) => format!(
                "{}/{ns}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            ),
            None => format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            ),
        };
        assert!(
            headers.contains(&format!("diff -u -N live/{path} enable/{path}").as_str()),
            "no diff for {path}"
        );
    }
    for line in out.stdout.lines() {
        let ok = line.starts_with("diff -u -N ")
            || line.starts_with("--- live/")
            || line.starts_with("+++ enable/")
            || line.starts_with("@@ -0,0 +1,")
            || line.starts_with('+');
        assert!(ok, "a new object shows only additions, not {line:?}");
    }
    // Nothing was written by the diff.
    assert_ne!(c.kubectl(&["get", "namespace", NS]).code, 0);

    // Installed exactly as enable installs it: no differences, no output, exit 0.
    let json = run(automon().args(["render", "-o", "json", "-n", NS])).success();
    let (_d, file) = write_temp("stack.json", &json.stdout);
    c.kubectl(&[
        "apply",
        "--server-side",
        "--field-manager",
        "kubectl-automon",
        "-f",
        file.to_str().unwrap(),
    ])
    .success();
    let out = diff(&[]).success();
    assert_eq!(out.stdout, "", "{out:#?}");

    // Someone scales Grafana by hand. `kubectl scale` writes through the scale subresource as
    // field manager "kubectl", which then owns .spec.replicas; our apply of `replicas: 1` would
    // conflict, so the server's dry run answers 409. diff notes the conflict (enable stops there
    // without --force-conflicts), counts it as a difference, and shows what forcing would change.
    c.kubectl(&["scale", "deployment", "grafana", "--replicas=3", "-n", NS])
        .success();
    let out = diff(&[])
        .code(1)
        .stderr_has(r#"conflict: deployment.apps/grafana: .spec.replicas is owned by "kubectl""#)
        .stderr_has("--force-conflicts")
        .stdout_has(&format!(
            "--- live/Deployment/{NS}/grafana\n+++ enable/Deployment/{NS}/grafana\n"
        ))
        .stdout_has("\n-  replicas: 3\n+  replicas: 1\n");
    assert_eq!(
        out.stdout.matches("diff -u -N").count(),
        1,
        "{}",
        out.stdout
    );
    // Back at the rendered value, the two managers share the field: nothing to change.
    c.kubectl(&["scale", "deployment", "grafana", "--replicas=1", "-n", NS])
        .success();
    diff(&[]).success();

    // A new setting: the Prometheus resource and the stored configuration change.
    let out = diff(&["--set", "prometheus.retention=30d"])
        .code(1)
        .stdout_has(&format!("+++ enable/Prometheus/{NS}/automon\n"))
        .stdout_has("\n-  retention: 15d\n+  retention: 30d\n")
        .stdout_has(&format!("+++ enable/ConfigMap/{NS}/automon\n"));
    assert!(
        !out.stdout.contains("Deployment/"),
        "only what the setting touches differs:\n{}",
        out.stdout
    );

    // A member of the ApplySet that is no longer rendered: enable would prune it.
    let id = parent_field(NS, r"{.metadata.labels.applyset\.kubernetes\.io/id}");
    assert!(id.starts_with("applyset-"), "{id}");
    c.kubectl(&[
        "create",
        "configmap",
        "leftover",
        "-n",
        NS,
        "--from-literal=a=b",
    ])
    .success();
    c.kubectl(&[
        "label",
        "configmap",
        "leftover",
        "-n",
        NS,
        &format!("applyset.kubernetes.io/part-of={id}"),
    ])
    .success();
    let out = diff(&[])
        .code(1)
        .stderr_has("configmap/leftover is in the inventory but no longer rendered")
        .stdout_has(&format!(
            "--- live/ConfigMap/{NS}/leftover\n+++ enable/ConfigMap/{NS}/leftover\n@@ -1,"
        ))
        .stdout_has("\n-  name: leftover\n");
    assert!(out.stdout.contains(" +0,0 @@\n"), "{}", out.stdout);
    c.kubectl(&["delete", "configmap", "leftover", "-n", NS])
        .success();
    diff(&[]).success();

    // Errors exit above 1, so that 1 always means "differences".
    let limited = run(automon()
        .env("KUBECONFIG", &c.limited_kubeconfig)
        .args(["diff", "-n", NS]))
    .code(6)
    .stderr_has("forbidden");
    assert_eq!(limited.stdout, "");

    drop(installed);
}
