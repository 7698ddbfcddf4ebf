//! Beside a whole stack installed the way kube-prometheus-stack installs itself (its operator,
//! a `Prometheus` and an `Alertmanager` reconciled by the real prometheus-operator, a
//! node-exporter in the host network that declares no host port), `enable` reuses all of it,
//! and `status` judges what this install owns, names what it reuses with its health, asks the
//! Prometheus that really scrapes (a real Prometheus answering for that stack's pod) and exits
//! 0. `doctor` never tells the user to let automon restore what it deliberately left out. What
//! that stack's own rules and ServiceMonitors already do (an alert of the same name, the kubelet
//! scrape) is left out, and automon's kube-state-metrics exports only the node labels under a
//! job of its own, its rules reading every other series from that stack's, so that its
//! Prometheus does nothing twice.
//! A test binary of its own: another operator is cluster-wide news.

mod common;

use common::*;

const KPS: &str = "automon-kps";
const NS: &str = "automon-beside-kps";

fn kube_prometheus_stack(port: u16) -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: {KPS}}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: kps-operator
  namespace: {KPS}
  labels: {{app.kubernetes.io/name: prometheus-operator, release: kps}}
spec:
  selector: {{matchLabels: {{app: kps-operator}}}}
  template:
    metadata: {{labels: {{app: kps-operator}}}}
    spec: {{containers: [{{name: operator, image: "quay.io/prometheus-operator/prometheus-operator:v0.93.1"}}]}}
---
apiVersion: monitoring.coreos.com/v1
kind: Prometheus
metadata: {{name: k8s, namespace: {KPS}}}
spec:
  replicas: 1
  serviceMonitorSelector: {{matchLabels: {{release: kps}}}}
  serviceMonitorNamespaceSelector: {{}}
  podMonitorSelector: {{matchLabels: {{release: kps}}}}
  podMonitorNamespaceSelector: {{}}
  ruleSelector: {{matchLabels: {{release: kps}}}}
  ruleNamespaceSelector: {{}}
---
apiVersion: monitoring.coreos.com/v1
kind: Alertmanager
metadata: {{name: main, namespace: {KPS}}}
spec: {{replicas: 1}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: node-exporter, namespace: {KPS}, labels: {{release: kps}}}}
spec:
  selector: {{matchLabels: {{app.kubernetes.io/name: node-exporter}}}}
  template:
    metadata: {{labels: {{app.kubernetes.io/name: node-exporter}}}}
    spec:
      hostNetwork: true
      tolerations: [{{operator: Exists}}]
      nodeSelector: {{kubernetes.io/os: linux}}
      containers:
      - name: node-exporter
        image: quay.io/prometheus/node-exporter:v1.9.1
        ports: [{{name: http-metrics, containerPort: {port}}}]
---
apiVersion: v1
kind: Service
metadata:
  name: kps-prometheus-node-exporter
  namespace: {KPS}
  labels: {{app.kubernetes.io/name: prometheus-node-exporter, release: kps, helm.sh/chart: prometheus-node-exporter-4.47.0}}
spec:
  selector: {{app.kubernetes.io/name: node-exporter}}
  ports: [{{name: http-metrics, port: {port}, targetPort: {port}}}]
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {{name: kps-kubelet, namespace: {KPS}, labels: {{release: kps}}}}
spec:
  selector: {{matchLabels: {{app.kubernetes.io/name: kubelet, k8s-app: kubelet}}}}
  namespaceSelector: {{matchNames: [kube-system]}}
  endpoints: [{{port: https-metrics, scheme: https}}]
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {{name: kps-kube-state-metrics, namespace: {KPS}, labels: {{release: kps}}}}
spec:
  jobLabel: app.kubernetes.io/name
  selector: {{matchLabels: {{app.kubernetes.io/name: kube-state-metrics, app.kubernetes.io/instance: kps}}}}
  endpoints: [{{port: http, honorLabels: true}}]
---
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {{name: kps-kubernetes-apps, namespace: {KPS}, labels: {{release: kps}}}}
spec:
  groups:
  - name: kubernetes-apps
    rules:
    - {{alert: KubePodCrashLooping, expr: "vector(1) == 0"}}
    - {{alert: KubeJobFailed, expr: "vector(1) == 0"}}
"#
    )
}

#[test]
fn beside_kube_prometheus_stack_status_is_healthy_and_names_what_it_reuses() {
    let c = cluster();
    c.ensure_crds();
    let _ns = Cleanup::fresh(NS);
    let _kps = Cleanup::fresh(KPS);
    let port = node_exporter_port(NS);
    apply(&kube_prometheus_stack(port));
    ensure_operator();
    eventually(
        120,
        &format!("the operator made a Prometheus and an Alertmanager pod in {KPS}"),
        || pod_of(KPS, "prometheus").is_some() && pod_of(KPS, "alertmanager").is_some(),
    );
    // A real Prometheus, Alertmanager and node_exporter answer for that stack's pods.
    let served = serve(KPS);
    at_exit(move || drop(served));

    let set_port = format!("nodeExporter.port={port}");
    let out = run(automon_admin().args(["enable", "-n", NS, "--set", &set_port])).success();
    assert_has(&out.stdout, "reusing it");
    assert_has(
        &out.stdout,
        &format!("Exporter  daemonset {KPS}/node-exporter serves port {port}"),
    );
    // What that stack already does is not done twice: its Prometheus would evaluate two
    // KubePodCrashLooping and count every kubelet series twice.
    assert_has(
        &out.stderr,
        &format!(
            "automon leaves out 2 alerts its rules already define (KubeJobFailed, KubePodCrashLooping; in {KPS}/kps-kubernetes-apps) and the kubelet scrape (servicemonitor {KPS}/kps-kubelet does it) and every kube-state-metrics series but kube_node_labels (servicemonitor {KPS}/kps-kube-state-metrics scrapes theirs, as job kube-state-metrics, which automon's rules and dashboards read; automon's own kube-state-metrics exports only kube_node_labels, the node labels its coverage check reads, as job automon-kube-state-metrics)"
        ),
    );
    assert!(!exists(&["servicemonitor", "-n", NS, "kubelet"]));
    let workload_alerts = c
        .kubectl(&[
            "get",
            "prometheusrule",
            "-n",
            NS,
            "workload-alerts",
            "-o",
            "json",
        ])
        .success()
        .stdout;
    assert!(!workload_alerts.contains("KubePodCrashLooping"));
    assert!(workload_alerts.contains("KubeDeploymentReplicasMismatch"));
    // Their kube-state-metrics' series, but the node labels: automon's.
    assert!(workload_alerts.contains(r#"job=\"kube-state-metrics\""#));
    assert!(!workload_alerts.contains(r#"job=\"automon-kube-state-metrics\""#));
    let coverage = c
        .kubectl(&[
            "get",
            "prometheusrule",
            "-n",
            NS,
            "automon-coverage",
            "-o",
            "json",
        ])
        .success()
        .stdout;
    assert!(
        coverage.contains(r#"kube_node_labels{job=\"automon-kube-state-metrics\""#)
            && coverage.contains(r#"kube_node_info{job=\"kube-state-metrics\"}"#),
        "{coverage}"
    );
    let ksm = c
        .kubectl(&[
            "get",
            "servicemonitor",
            "-n",
            NS,
            "kube-state-metrics",
            "-o",
            "json",
        ])
        .success()
        .stdout;
    assert!(
        ksm.contains(r#""replacement": "automon-kube-state-metrics""#),
        "{ksm}"
    );
    let sm = exporter_scrape_object(NS);
    // Through that stack's Service, picked by that stack's Prometheus.
    assert_eq!(
        sm["spec"]["selector"]["matchLabels"],
        serde_json::json!({"app.kubernetes.io/name": "prometheus-node-exporter", "release": "kps"}),
        "{sm:#}"
    );
    assert_eq!(sm["metadata"]["labels"]["release"], "kps", "{sm:#}");

    // The operator and Prometheus take their time.
    let (out, st) = poll(
        180,
        || status_json(NS, &[]),
        |(_, st)| st["health"] == "Healthy",
    );
    assert_eq!(st["health"], "Healthy", "{out:#?}");
    assert_eq!(
        st["prometheus"]["via"],
        format!("service {KPS}/prometheus-operated:web through the API server"),
        "{st:#}"
    );
    let reused: Vec<(String, String)> = st["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| {
            Some((
                c["name"].as_str()?.to_string(),
                c["reused"].as_str()?.to_string(),
            ))
        })
        .collect();
    let expect = |name: &str, from: &str| (name.to_string(), format!("{KPS}/{from}"));
    assert_eq!(
        reused,
        [
            expect("prometheus-operator", "kps-operator"),
            expect("prometheus", "k8s"),
            expect("alertmanager", "main"),
            expect("node-exporter", "node-exporter"),
        ],
        "{st:#}"
    );
    for c in st["components"].as_array().unwrap() {
        assert_eq!(c["healthy"], true, "{c}");
    }
    assert_eq!(st["summary"]["notMonitored"], 0, "{st:#}");
    let human = run(automon_admin().args(["status", "-n", NS])).code(0);
    assert!(
        human.stdout.contains(&format!("(reused: {KPS}/k8s)")),
        "{human:#?}"
    );

    // doctor judges the other stack's CRDs against its operator, and never asks automon to
    // restore what it left out on purpose.
    let doctor = run(automon_admin().args(["doctor", "-n", NS]));
    for wrong in [
        "restores it",
        "alertmanager-automon-config",
        "(installs them)",
        "(updates the CRDs",
    ] {
        assert!(!doctor.stdout.contains(wrong), "{wrong}: {doctor:#?}");
    }
    assert!(
        doctor
            .stdout
            .contains(&format!("the operator {KPS}/kps-operator")),
        "{doctor:#?}"
    );

    let diff = run(automon_admin().args(["diff", "-n", NS, "--set", &set_port])).success();
    assert_eq!(diff.stdout, "", "{diff:#?}");
}
