//! `enable` on a cluster that already runs a Prometheus Operator installed another way: it
//! installs no second operator, Prometheus or Alertmanager, labels its ServiceMonitors and rules
//! to match the existing Prometheus' selectors, and says so. A test binary of its own: the
//! foreign operator is cluster-wide news, and other tests must not see it.

mod common;

use common::*;

const FOREIGN: &str = "automon-reuse-foreign";
const NS: &str = "automon-reuse-stack";

#[test]
fn an_existing_operator_is_reused_not_duplicated() {
    let c = cluster();
    c.ensure_crds();
    // Gone, when the test ends, before another test binary could find the foreign operator.
    let _foreign = Cleanup::fresh(FOREIGN).waited();
    let _ns = Cleanup::fresh(NS).waited();
    let foreign = format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: {FOREIGN}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: prometheus-operator, namespace: {FOREIGN}, labels: {{app.kubernetes.io/name: prometheus-operator}}}}
spec:
  selector: {{matchLabels: {{app: op}}}}
  template:
    metadata: {{labels: {{app: op}}}}
    spec: {{containers: [{{name: op, image: "quay.io/prometheus-operator/prometheus-operator:v0.90.0"}}]}}
---
apiVersion: monitoring.coreos.com/v1
kind: Prometheus
metadata: {{name: main, namespace: {FOREIGN}}}
spec:
  serviceMonitorSelector: {{matchLabels: {{release: kps}}}}
  ruleSelector: {{matchLabels: {{release: kps}}}}
"#
    );
    apply(&foreign);

    let out = run(automon_admin().args(["enable", "-n", NS, "--set", "nodeExporter.port=19555"]))
        .success();
    assert_has(&out.stdout, "another Prometheus Operator is installed");
    assert_has(
        &out.stdout,
        &format!("{FOREIGN}/prometheus-operator v0.90.0"),
    );
    assert_lacks(&out.stdout, "deployment.apps/prometheus-operator");
    assert_lacks(&out.stdout, "prometheus.monitoring.coreos.com/");
    assert_lacks(&out.stdout, "alertmanager.monitoring.coreos.com/");
    assert_has(&out.stdout, "daemonset.apps/node-exporter created");
    // That Prometheus only looks in its own namespace: enable says what to change.
    assert_has(
        &out.stderr,
        &format!("prometheus {FOREIGN}/main selects ServiceMonitors only in its own namespace"),
    );

    // Nothing of a second operator stack in our namespace...
    let ours = c.kubectl(&[
        "get",
        "deployments,prometheuses,alertmanagers",
        "-n",
        NS,
        "-o",
        "name",
    ]);
    assert_lacks(&ours.stdout, "prometheus-operator");
    assert_lacks(&ours.stdout, "prometheus.monitoring.coreos.com");
    // ...and what we installed carries the labels the existing Prometheus selects on.
    let monitors = c.kubectl(&[
        "get",
        "servicemonitors,prometheusrules",
        "-n",
        NS,
        "-l",
        "release=kps",
        "-o",
        "name",
    ]);
    assert!(
        monitors
            .stdout
            .contains("servicemonitor.monitoring.coreos.com/node-exporter"),
        "{monitors:#?}"
    );
    assert!(
        monitors
            .stdout
            .contains("prometheusrule.monitoring.coreos.com/node-alerts"),
        "{monitors:#?}"
    );

    // diff plans as enable does: the reuse applies, the operator's CRDs are left alone, and
    // right after enable there is nothing to show.
    let diff = run(automon_admin().args(["diff", "-n", NS, "--set", "nodeExporter.port=19555"]))
        .success()
        .stderr_has("enable reuses it");
    assert_eq!(diff.stdout, "", "{diff:#?}");
    // The parent lists only the kinds automon installed: status and doctor tell reuse by it.
    let kinds = parent_kinds(NS);
    assert!(
        !kinds.contains("Prometheus.monitoring.coreos.com"),
        "{kinds}"
    );
    assert!(
        kinds.contains("ServiceMonitor.monitoring.coreos.com"),
        "{kinds}"
    );
    // status asks the Prometheus the stack was labelled for, through its operator's Service.
    assert_eq!(
        parent_field(NS, "{.metadata.annotations.automon\\.io/prometheus-from}"),
        format!("{FOREIGN}/main")
    );
    let (_, st) = status_json(NS, &[]);
    assert_eq!(
        st["prometheus"]["via"],
        format!("service {FOREIGN}/prometheus-operated:web through the API server"),
        "{st:#}"
    );
}
