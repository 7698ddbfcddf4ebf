//! `diff` as a user runs it against the local cluster: everything new in an empty namespace,
//! nothing after the stack is installed, the conflict when someone scales Grafana by hand, the
//! change a new setting makes, the member `enable` would prune, and an error exit above 1.

mod common;

use common::*;

const NS: &str = "automon-diff-story";

fn diff(args: &[&str]) -> Run {
    run(automon_admin().args(["diff", "-n", NS]).args(args))
}

#[test]
fn diff_tells_what_enable_would_change() {
    let c = cluster();
    c.ensure_crds();
    // Whatever an earlier run left is gone first; what this one installs, at the end.
    let installed = Cleanup::fresh(NS);
    let objects = rendered_objects(&["-n", NS]);

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
            Some(ns) => kind_name(o).replacen('/', &format!("/{ns}/"), 1),
            None => kind_name(o),
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
    assert!(!exists(&["namespace", NS]));

    // Installed exactly as enable installs it: no differences, no output, exit 0.
    let (_d, file) = write_list("stack.json", &objects);
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
