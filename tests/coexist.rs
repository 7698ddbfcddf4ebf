//! Next to the monitoring a cluster already has: another stack's node-exporter (installed the
//! way kube-prometheus installs it) or another automon stack's. automon scrapes the exporter
//! that is there instead of deploying a second one that would preempt it or fail to bind, says
//! so, counts the nodes it covers, and refuses when automon's own is asked for. kwok's pods never
//! bind a port, so the tests assert on what automon decides and on the other stack's pods.
//! A test binary of its own: an exporter DaemonSet is cluster-wide news.

mod common;

use common::*;

const OTHER: &str = "automon-coexist-other";
const NS: &str = "automon-coexist";
const A: &str = "automon-coexist-a";
const B: &str = "automon-coexist-b";

/// An exporter as kube-prometheus runs it: kube-rbac-proxy on a declared host port named
/// `https`, host network, `system-cluster-critical`, every taint tolerated, a headless Service.
fn kube_prometheus_exporter(port: u16) -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: {OTHER}}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: node-exporter
  namespace: {OTHER}
  labels: {{app.kubernetes.io/name: node-exporter, app.kubernetes.io/part-of: kube-prometheus}}
spec:
  selector: {{matchLabels: {{app.kubernetes.io/name: node-exporter}}}}
  template:
    metadata: {{labels: {{app.kubernetes.io/name: node-exporter, app.kubernetes.io/version: 1.9.1}}}}
    spec:
      hostNetwork: true
      hostPID: true
      priorityClassName: system-cluster-critical
      tolerations: [{{operator: Exists}}]
      nodeSelector: {{kubernetes.io/os: linux}}
      containers:
      - name: node-exporter
        image: quay.io/prometheus/node-exporter:v1.9.1
        args: ["--web.listen-address=127.0.0.1:{port}"]
      - name: kube-rbac-proxy
        image: quay.io/brancz/kube-rbac-proxy:v0.19.1
        ports: [{{name: https, containerPort: {port}, hostPort: {port}}}]
---
apiVersion: v1
kind: Service
metadata:
  name: node-exporter
  namespace: {OTHER}
  labels: {{app.kubernetes.io/name: node-exporter, app.kubernetes.io/version: 1.9.1}}
spec:
  clusterIP: None
  selector: {{app.kubernetes.io/name: node-exporter}}
  ports: [{{name: https, port: {port}, targetPort: https}}]
"#
    )
}

fn pods_of(ns: &str) -> Vec<String> {
    let out = cluster().kubectl(&[
        "get",
        "pods",
        "-n",
        ns,
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.status.phase}{\"\\n\"}{end}",
    ]);
    let mut pods: Vec<String> = out.stdout.lines().map(str::to_string).collect();
    pods.sort();
    pods
}

/// enable's preflight named the holder, and no exporter of automon's own was applied.
#[track_caller]
fn scrapes_instead(out: &Run, holder: &str) {
    assert_has(&out.stdout, holder);
    assert_lacks(&out.stdout, "daemonset.apps/node-exporter");
}

fn exporter_component(status: &serde_json::Value) -> serde_json::Value {
    status["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "node-exporter")
        .cloned()
        .unwrap_or_else(|| panic!("{status:#}"))
}

#[test]
fn another_stacks_exporter_is_scraped_never_preempted_or_doubled() {
    let c = cluster();
    c.ensure_crds();
    let _other = Cleanup::fresh(OTHER);
    let _ns = Cleanup::fresh(NS);
    let port = node_exporter_port(NS);
    let set_port = format!("nodeExporter.port={port}");
    apply(&kube_prometheus_exporter(port));
    c.kubectl(&[
        "rollout",
        "status",
        "daemonset/node-exporter",
        "-n",
        OTHER,
        "--timeout=90s",
    ])
    .success();
    let theirs = pods_of(OTHER);
    assert!(!theirs.is_empty());

    let out = run(automon_admin().args(["enable", "-n", NS, "--set", &set_port])).success();
    assert_has(
        &out.stdout,
        &format!(
            "Exporter  daemonset {OTHER}/node-exporter serves port {port} on the nodes: scraping it"
        ),
    );
    scrapes_instead(
        &out,
        &format!(
            "daemonset {OTHER}/node-exporter (another stack, priority class system-cluster-critical) serves port {port}"
        ),
    );
    assert_has(
        &out.stdout,
        "servicemonitor.monitoring.coreos.com/node-exporter created",
    );
    // No second exporter, and every pod of theirs is as it was: none preempted, none replaced.
    let ours = c.kubectl(&["get", "daemonsets", "-n", NS, "-o", "name"]);
    assert_eq!(ours.stdout.trim(), "", "{ours:#?}");
    assert_eq!(pods_of(OTHER), theirs);
    // Their Service, through their proxy, with Prometheus' own token.
    let sm = exporter_scrape_object(NS);
    assert_eq!(
        sm["spec"]["namespaceSelector"],
        serde_json::json!({"matchNames": [OTHER]})
    );
    assert_eq!(
        sm["spec"]["selector"],
        serde_json::json!({"matchLabels": {"app.kubernetes.io/name": "node-exporter"}})
    );
    let ep = &sm["spec"]["endpoints"][0];
    assert_eq!(
        (ep["port"].as_str(), ep["scheme"].as_str()),
        (Some("https"), Some("https"))
    );
    assert!(ep["bearerTokenFile"].is_string(), "{sm:#}");
    assert_eq!(
        parent_field(
            NS,
            "{.metadata.annotations.automon\\.io/node-exporter-from}"
        ),
        format!("{OTHER}/node-exporter")
    );

    // status counts the nodes it covers, and names it.
    let (_, st) = status_json(NS, &[]);
    let exporter = exporter_component(&st);
    assert_eq!(
        exporter["reused"],
        format!("{OTHER}/node-exporter"),
        "{st:#}"
    );
    assert_eq!(exporter["healthy"], true, "{st:#}");
    assert_eq!(st["summary"]["notMonitored"], 0, "{st:#}");
    assert_eq!(st["summary"]["monitored"], st["summary"]["nodes"], "{st:#}");
    let human = run(automon_admin().args(["status", "-n", NS]));
    assert!(
        human
            .stdout
            .contains(&format!("(reused: {OTHER}/node-exporter)")),
        "{human:#?}"
    );
    // doctor does not call the port free, nor taken: it is served, and scraped.
    let doctor = run(automon_admin().args(["doctor", "-n", NS]));
    assert!(
        doctor.stdout.contains(&format!(
            "host port {port} is served by daemonset {OTHER}/node-exporter"
        )),
        "{doctor:#?}"
    );
    // diff plans what enable did: nothing to show.
    let diff = run(automon_admin().args(["diff", "-n", NS, "--set", &set_port]))
        .success()
        .stderr_has(&format!(
            "daemonset {OTHER}/node-exporter serves port {port}"
        ));
    assert_eq!(diff.stdout, "", "{diff:#?}");

    // automon's own asked for: refused before any write, naming the holder and the way out.
    let refused = run(automon_admin().args([
        "enable",
        "-n",
        NS,
        "--set",
        &set_port,
        "--set",
        "nodeExporter.reuseExisting=false",
    ]))
    .code(7);
    assert!(
        refused
            .stdout
            .contains(&format!("port {port} is taken by another exporter")),
        "{refused:#?}"
    );
    assert!(
        refused
            .stdout
            .contains("--set nodeExporter.reuseExisting=true"),
        "{refused:#?}"
    );
    let ours = c.kubectl(&["get", "daemonsets", "-n", NS, "-o", "name"]);
    assert_eq!(ours.stdout.trim(), "", "nothing applied: {ours:#?}");

    // The other stack goes: status says so, and enable deploys automon's own.
    c.kubectl(&[
        "delete",
        "namespace",
        OTHER,
        "--wait=true",
        "--timeout=120s",
    ])
    .success();
    let (_, st) = status_json(NS, &[]);
    let exporter = exporter_component(&st);
    assert!(
        exporter["message"]
            .as_str()
            .is_some_and(|m| m.contains("is gone")),
        "{st:#}"
    );
    let out = run(automon_admin().args(["enable", "-n", NS, "--set", &set_port])).success();
    assert_has(&out.stdout, "daemonset.apps/node-exporter created");
    assert_lacks(&out.stdout, "Exporter  ");
    assert_eq!(
        parent_field(
            NS,
            "{.metadata.annotations.automon\\.io/node-exporter-from}"
        ),
        ""
    );
}

#[test]
fn a_second_automon_stack_scrapes_the_first_ones_exporter() {
    let _a = Cleanup::fresh(A);
    let _b = Cleanup::fresh(B);
    let port = node_exporter_port(A);
    enable(A, &[]).success();
    let out = run(automon_admin().args([
        "enable",
        "-n",
        B,
        "--set",
        &format!("nodeExporter.port={port}"),
    ]))
    .success();
    scrapes_instead(
        &out,
        &format!(
            "daemonset {A}/node-exporter (automon's stack in namespace {A}, priority class system-node-critical) serves port {port}"
        ),
    );
    let sm = exporter_scrape_object(B);
    assert_eq!(
        sm["spec"]["namespaceSelector"],
        serde_json::json!({"matchNames": [A]})
    );
    assert_eq!(sm["spec"]["endpoints"][0]["scheme"], "http", "{sm:#}");
    let (_, st) = status_json(B, &[]);
    assert_eq!(
        exporter_component(&st)["reused"],
        format!("{A}/node-exporter")
    );
    assert_eq!(st["summary"]["monitored"], st["summary"]["nodes"], "{st:#}");

    // Disabling A would take B's exporter: disable says so before it deletes anything.
    let dry = run(automon_admin().args(["disable", "-n", A, "--dry-run"])).success();
    assert!(
        dry.stderr.contains(&format!(
            "automon's stack in namespace {B} scrapes this stack's node-exporter: its nodes go unmonitored until `kubectl automon enable -n {B}` deploys its own"
        )),
        "{dry:#?}"
    );

    // B's inventory takes the CRDs in (--crds-from); disabling B keeps every one of them while
    // A's operator watches them, though no PodMonitor, Probe or ScrapeConfig exists.
    let crds = cluster().crds_dir();
    run(automon_admin().args([
        "enable",
        "-n",
        B,
        "--set",
        &format!("nodeExporter.port={port}"),
        "--crds-from",
        crds.to_str().unwrap(),
    ]))
    .success();
    assert!(
        parent_kinds(B).contains("CustomResourceDefinition"),
        "{}",
        parent_kinds(B)
    );
    let out = run(automon_admin().args(["disable", "-n", B, "--yes"])).success();
    // Other stacks of this test binary may watch them too: A is among the named.
    let probes = out
        .stderr
        .lines()
        .find(|l| {
            l.contains(
                "kept customresourcedefinition \"probes.monitoring.coreos.com\": still watched by",
            )
        })
        .unwrap_or_else(|| panic!("{out:#?}"));
    assert!(
        probes.contains(&format!("automon's stack in namespace {A}")),
        "{probes}"
    );
    assert!(!out.stdout.contains("customresourcedefinition"), "{out:#?}");
    cluster()
        .kubectl(&[
            "get",
            "crd",
            "probes.monitoring.coreos.com",
            "scrapeconfigs.monitoring.coreos.com",
        ])
        .success();
}
