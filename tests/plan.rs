//! One plan for `enable` and `diff`: right after an `enable`, `diff` with the same arguments
//! has nothing to show (exit 0), whether the CRDs came from `--crds-from`, a `--set` changed
//! the stored configuration, or a member was pruned; and an identical CRD is not sent again.
//! (The reuse case, with another Prometheus Operator, is in enable_reuse.rs, the test binary
//! that owns the foreign operator.) A binary of its own: `--crds-from` relabels the
//! cluster-wide CRDs, which no other test may see half-way.

mod common;

use common::*;

const NS: &str = "automon-plan-agrees";

fn diff(args: &[&str]) -> Run {
    run(automon_admin()
        .args(["diff", "-n", NS])
        .args(port_for(NS))
        .args(args))
}

#[test]
fn diff_after_enable_shows_nothing() {
    let _cleanup = Cleanup::fresh(NS);
    let c = cluster();
    let crds = c.crds_dir();
    let crds = crds.to_str().unwrap();

    // CRDs from a directory: sent once, then known to be identical and not sent again.
    enable(NS, &["--crds-from", crds]).success();
    let again = enable(NS, &["--crds-from", crds])
        .success()
        .stdout_has(&format!(
            "CRDs      10 from {crds}, identical to the cluster's: not sent"
        ))
        .stdout_has("Nothing to do.");
    assert!(
        !again.stdout.contains("established in"),
        "nothing sent, nothing waited for:\n{}",
        again.stdout
    );
    let out = diff(&["--crds-from", crds]).success();
    assert_eq!(out.stdout, "", "{out:#?}");
    // Without the flag the CRDs in the cluster are kept, and still nothing differs.
    diff(&[]).success();

    // A changed --set: diff shows it before, nothing after.
    diff(&["--set", "prometheus.retention=30d"])
        .code(1)
        .stdout_has("+  retention: 30d\n");
    enable(NS, &["--set", "prometheus.retention=30d"]).success();
    let out = diff(&["--set", "prometheus.retention=30d"]).success();
    assert_eq!(out.stdout, "", "{out:#?}");
    diff(&[]).success();

    // A prune: Grafana off. diff names what enable would prune, enable prunes it, and then
    // diff has nothing left to say.
    diff(&["--set", "grafana.enabled=false"])
        .code(1)
        .stderr_has("deployment.apps/grafana is in the inventory but no longer rendered");
    enable(NS, &["--set", "grafana.enabled=false"])
        .success()
        .stdout_has("deployment.apps/grafana pruned");
    let out = diff(&[]).success();
    assert_eq!(out.stdout, "", "{out:#?}");
    assert!(!exists(&["deployment", "grafana", "-n", NS]), "pruned");
}

/// What the API server would refuse is found before the first write: a policy of the cluster
/// (a ValidatingAdmissionPolicy, as a platform team writes them) refuses the Prometheus a new
/// setting gives; enable dry-runs what changed, names the object and the reason, and applies
/// nothing: the stored configuration (the parent, written first otherwise) stays as it was,
/// and no revision is recorded.
#[test]
fn a_refusal_stops_enable_before_its_first_write() {
    const NS: &str = "automon-plan-refused";
    let _cleanup = Cleanup::fresh(NS);
    let c = cluster();
    let policy = format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: {NS}-retention}}
spec:
  failurePolicy: Fail
  matchConstraints:
    namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {NS}}}}}
    resourceRules:
    - apiGroups: [monitoring.coreos.com]
      apiVersions: ["*"]
      operations: [CREATE, UPDATE]
      resources: [prometheuses]
  validations:
  - expression: "!has(object.spec.retention) || object.spec.retention != '30d'"
    message: "retention 30d is not allowed here"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: {NS}-retention}}
spec:
  policyName: {NS}-retention
  validationActions: [Deny]
"#
    );
    let (_d, file) = write_temp("policy.yaml", &policy);
    let remove_policy = || {
        c.kubectl(&["delete", "--ignore-not-found", "-f", file.to_str().unwrap()]);
    };
    enable(NS, &[]).success();
    c.kubectl(&["apply", "-f", file.to_str().unwrap()])
        .success();
    let stored = || parent_field(NS, "{.data.config\\.yaml}");
    let before = stored();
    // A policy takes effect within a second or so: wait until the server refuses the change.
    let refuses = || {
        c.kubectl(&[
            "patch",
            "prometheus",
            "automon",
            "-n",
            NS,
            "--type=merge",
            "-p",
            r#"{"spec":{"retention":"30d"}}"#,
            "--dry-run=server",
        ])
        .code
            != 0
    };
    eventually(30, "the policy took effect", refuses);
    let out = enable(NS, &["--set", "prometheus.retention=30d"]);
    remove_policy();
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.stderr.contains("prometheus.monitoring.coreos.com/automon: the API server rejected it")
            && out.stderr.contains("retention 30d is not allowed here")
            && out
                .stderr
                .contains("the API server would refuse 1 object(s) (a server-side dry run or the schema says so); nothing was applied"),
        "{out:#?}"
    );
    assert_lacks(&out.stdout, "configured");
    assert_eq!(stored(), before, "the stored configuration changed");
    let revisions = c.kubectl(&[
        "get",
        "secrets",
        "-n",
        NS,
        "-l",
        "automon.io/revision",
        "-o",
        "name",
    ]);
    assert_eq!(revisions.stdout.lines().count(), 1, "{revisions:#?}");
}
