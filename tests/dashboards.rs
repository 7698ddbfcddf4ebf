//! The dashboards `render` ships, checked with real tools: every panel's and variable's PromQL
//! parses (promtool), every dashboard type-checks against Grafana's published `Dashboard` type
//! (`@grafana/schema`), and the node dashboards' queries return data from a real node-exporter
//! scraped by a real Prometheus (the workload, Kubernetes and stack dashboards read exporters
//! that do not run here; the end-to-end test runs them against the local cluster).
//! The dashboards node classes add or change (GPUs, Windows node detail, the overview's
//! coverage) get the same parse and schema checks; no real GPU or Windows exporter runs here.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use common::{
    DashboardQuery, Run, built_tool, dashboard_queries, dashboards_in, fake_http_server, free_port,
    node_class_objects, prometheus_query as query, promtool_with, rendered_objects, repo_root,
    rule_file, rule_groups, spawn_node_exporter, spawn_prometheus, substitute,
};

/// The name the fake node carries, in place of Grafana's `$node`.
const NODE: &str = "test-node";
/// The dashboards whose every query a real node-exporter (and the kube-state-metrics lines
/// below) answers.
const NODE_DASHBOARDS: &[&str] = &[
    "automon-cluster-overview",
    "automon-node-detail",
    "automon-alerts-overview",
];

/// The dashboards exactly as `kubectl automon render` prints them.
fn rendered_dashboards() -> Vec<Value> {
    let dashboards = dashboards_in(&rendered_objects(&[]));
    // `render` orders objects by kind and name.
    let uids: BTreeSet<_> = dashboards
        .iter()
        .map(|d| d["uid"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        uids,
        BTreeSet::from([
            "automon-cluster-overview",
            "automon-node-detail",
            "automon-alerts-overview",
            "automon-k8s-compute-cluster",
            "automon-k8s-compute-namespace",
            "automon-k8s-compute-workload",
            "automon-k8s-compute-pod",
            "automon-k8s-persistent-volumes",
            "automon-k8s-apiserver",
            "automon-k8s-kubelet",
            "automon-prometheus",
            "automon-alertmanager",
        ]),
        "the dashboards rendered by default"
    );
    dashboards
}

/// The dashboards node classes add or change, from their reviewed snapshots (see
/// `node_class_objects`).
fn class_dashboards() -> Vec<Value> {
    let dashboards = dashboards_in(&node_class_objects());
    let uids: Vec<_> = dashboards
        .iter()
        .map(|d| d["uid"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        uids,
        [
            "automon-cluster-overview",
            "automon-gpus",
            "automon-windows-node-detail"
        ]
    );
    dashboards
}

/// Every query (panels and variables) of these objects' dashboards.
fn queries_of(objects: &[Value]) -> Vec<DashboardQuery> {
    let out = dashboard_queries(objects);
    assert!(out.len() > 20, "too few queries: {}", out.len());
    out
}

/// Grafana's variables as Grafana would fill them for one node, pod and workload, the
/// cluster variable's "All", and a window of `rate_interval`.
fn substituted(expr: &str, rate_interval: &str) -> String {
    let values = BTreeMap::from([
        ("__rate_interval", rate_interval),
        ("__range", "1h"),
        ("datasource", "prometheus"),
        ("cluster", ".*"),
        ("node", NODE),
        ("namespace", "default"),
        ("type", "Deployment"),
        ("workload", "web"),
        ("pod", "web-0"),
    ]);
    substitute(expr, &values)
}

/// A run's verdict and everything it printed, for a failure message.
fn passed(out: Run) -> (bool, String) {
    (out.code == 0, format!("{}{}", out.stdout, out.stderr))
}

/// `promtool check rules` on a rule file of one recording rule per query: (passed, output).
fn promtool_parses(queries: &[DashboardQuery]) -> (bool, String, String) {
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    for (i, q) in queries.iter().enumerate() {
        let expr = serde_json::to_string(&substituted(&q.expr, "1m")).expect("a string");
        // `$1` and the like are label_replace's regex groups, not Grafana's.
        let left = expr.split('$').skip(1).any(|rest| {
            rest.starts_with(|c: char| c == '{' || c == '_' || c.is_ascii_alphabetic())
        });
        assert!(!left, "{}: a variable left: {expr}", q.at());
        rules.push_str(&format!(
            "      # {}\n      - record: automon_dashboard:query_{i}\n        expr: {expr}\n",
            q.at()
        ));
    }
    let check = |text: &str| {
        passed(promtool_with(
            &[("rules.yaml", text)],
            &["check", "rules", "rules.yaml"],
        ))
    };
    let (ok, output) = check(&rules);
    // The check can fail: a broken query is rejected.
    let (broken_ok, _) = check(
        "groups:\n  - name: broken\n    rules:\n      - record: x:y\n        expr: sum(rate(\n",
    );
    assert!(!broken_ok, "promtool accepted a broken query");
    (ok, output, rules)
}

#[test]
fn every_panel_query_parses() {
    let objects = rendered_objects(&[]);
    rendered_dashboards();
    let (ok, output, rules) = promtool_parses(&queries_of(&objects));
    assert!(ok, "promtool rejects a dashboard query:\n{output}\n{rules}");
}

/// GPU and Windows panels cannot be run against a real exporter here; their PromQL (and the
/// selectors their `node` variables list nodes from) must at least parse.
#[test]
fn every_class_panel_query_parses() {
    class_dashboards();
    let (ok, output, rules) = promtool_parses(&queries_of(&node_class_objects()));
    assert!(ok, "promtool rejects a dashboard query:\n{output}\n{rules}");
}

#[test]
fn substitution_fills_every_form_grafana_accepts() {
    let values = BTreeMap::from([
        ("namespace", "default"),
        ("node", "n1"),
        ("__rate_interval", "1m"),
        ("datasource", "prometheus"),
    ]);
    assert_eq!(
        substitute(
            r#"rate(x{namespace="$namespace", node=~"${node}", nodes="$nodes"}[$__rate_interval]) ${datasource:queryparam} label_replace(y, "a", "$1", "b", "(.+)")"#,
            &values
        ),
        r#"rate(x{namespace="default", node=~"n1", nodes="$nodes"}[1m]) prometheus label_replace(y, "a", "$1", "b", "(.+)")"#
    );
}

/// What kube-state-metrics exposes about one Ready Linux node, for the panels that count
/// nodes; node-exporter's metrics come from the real thing.
const KUBE_STATE_METRICS: &str = r#"# HELP kube_node_info Information about a cluster node.
# TYPE kube_node_info gauge
kube_node_info{node="test-node",os_image="Debian GNU/Linux 13",kernel_version="6.12.0",container_runtime_version="containerd://2.1.0",kubelet_version="v1.36.3",internal_ip="127.0.0.1"} 1
# HELP kube_node_labels Kubernetes labels converted to Prometheus labels.
# TYPE kube_node_labels gauge
kube_node_labels{node="test-node",label_kubernetes_io_os="linux"} 1
# HELP kube_node_status_condition The condition of a cluster node.
# TYPE kube_node_status_condition gauge
kube_node_status_condition{node="test-node",condition="Ready",status="true"} 1
kube_node_status_condition{node="test-node",condition="Ready",status="false"} 0
kube_node_status_condition{node="test-node",condition="Ready",status="unknown"} 0
"#;

/// Serves [`KUBE_STATE_METRICS`] on a free port until the test binary exits.
fn serve_kube_state_metrics() -> u16 {
    fake_http_server(Some(&format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{KUBE_STATE_METRICS}",
        KUBE_STATE_METRICS.len()
    )))
}

#[test]
fn every_panel_query_returns_data_from_a_real_node_exporter() {
    let dashboards = rendered_dashboards();
    let dir = tempfile::tempdir().expect("tempdir");
    let prometheus_port = free_port();
    let ksm_port = serve_kube_state_metrics();
    let (mut exporter, exporter_log, exporter_port) = spawn_node_exporter(dir.path());
    // What the node-exporter ServiceMonitor produces: job node-exporter, and the pod's node
    // name in both `node` and `instance`. kube-state-metrics keeps its own labels.
    let config = format!(
        r#"global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules.yaml]
scrape_configs:
  - job_name: node-exporter
    static_configs:
      - targets: ["127.0.0.1:{exporter_port}"]
        labels: {{node: {NODE}}}
    relabel_configs:
      - target_label: instance
        replacement: {NODE}
  - job_name: kube-state-metrics
    honor_labels: true
    static_configs:
      - targets: ["127.0.0.1:{ksm_port}"]
"#
    );
    std::fs::write(dir.path().join("prometheus.yaml"), config).expect("write config");
    // The stack's Watchdog fires always; the alert panels show it.
    std::fs::write(
        dir.path().join("rules.yaml"),
        "groups:\n  - name: watchdog\n    rules:\n      - alert: Watchdog\n        expr: vector(1)\n        labels: {severity: none}\n",
    )
    .expect("write rules");
    let (mut prometheus, prometheus_log) = spawn_prometheus(
        &built_tool("prometheus", "prometheus"),
        dir.path(),
        prometheus_port,
    );

    // rate() needs two samples inside its window: wait for a handful of scrapes of both jobs
    // and for the Watchdog.
    let ready = r#"count_over_time(up{job="node-exporter"}[1m]) >= 5 and on () count_over_time(up{job="kube-state-metrics"}[1m]) >= 5 and on () ALERTS{alertname="Watchdog",alertstate="firing"}"#;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        exporter.assert_running(&exporter_log);
        prometheus.assert_running(&prometheus_log);
        if query(prometheus_port, ready).is_ok_and(|r| !r.is_empty()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped the exporter:\n{}",
            std::fs::read_to_string(&prometheus_log).unwrap_or_default()
        );
        thread::sleep(Duration::from_millis(500));
    }

    let mut no_data = Vec::new();
    let node_queries: Vec<_> = queries_of(&rendered_objects(&[]))
        .into_iter()
        .filter(|q| NODE_DASHBOARDS.contains(&q.dashboard_uid.as_str()))
        .collect();
    assert!(node_queries.len() > 20, "{}", node_queries.len());
    for q in node_queries {
        let expr = substituted(&q.expr, "15s");
        match query(prometheus_port, &expr) {
            Ok(result) if !result.is_empty() => {}
            Ok(_) => no_data.push(format!("{}: No data: {expr}", q.at())),
            Err(e) => no_data.push(format!("{}: {e}: {expr}", q.at())),
        }
    }
    assert!(
        no_data.is_empty(),
        "panels without data:\n{}",
        no_data.join("\n")
    );

    // The node variable lists the nodes its query finds: label_values(<selector>, node).
    let node_detail = dashboards
        .iter()
        .find(|d| d["uid"] == "automon-node-detail")
        .expect("node dashboard");
    let variable = node_detail["templating"]["list"]
        .as_array()
        .and_then(|l| l.iter().find(|v| v["name"] == "node"))
        .expect("node variable");
    let definition = variable["query"]["query"].as_str().expect("variable query");
    let (selector, label) = definition
        .strip_prefix("label_values(")
        .and_then(|s| s.strip_suffix(")"))
        .and_then(|s| s.rsplit_once(", "))
        .unwrap_or_else(|| panic!("not label_values(selector, label): {definition}"));
    let series = query(prometheus_port, selector).expect("variable query");
    let values: Vec<_> = series
        .iter()
        .map(|s| s["metric"][label].as_str().unwrap_or_default())
        .collect();
    assert_eq!(values, [NODE], "the node variable's values");
}

/// Where the pinned npm packages are installed, beside the Go-built tools. Installed once per
/// test binary: two tests running `npm install` into one folder at once break each other.
fn npm_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(install_npm_packages).clone()
}

fn install_npm_packages() -> PathBuf {
    let cache = std::env::var_os("AUTOMON_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/kubectl-automon")
        });
    let dir = cache.join("npm");
    let wanted = std::fs::read_to_string(repo_root().join("tests/dashboards/package.json"))
        .expect("package.json");
    let installed = std::fs::read_to_string(dir.join("package.json")).unwrap_or_default();
    if installed != wanted || !dir.join("node_modules/typescript/bin/tsc").exists() {
        std::fs::create_dir_all(&dir).expect("npm cache dir");
        std::fs::write(dir.join("package.json"), &wanted).expect("write package.json");
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--no-package-lock"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .status()
            .expect("run npm");
        assert!(status.success(), "npm install failed");
    }
    dir
}

/// A dashboard as a TypeScript expression. JSON is TypeScript, except that Grafana's types make
/// some fields string enums, which a string literal never satisfies; those values go through a
/// function that accepts exactly the enum's values (`${ThresholdsMode}`), so a wrong one still fails.
fn typescript(v: &Value, key: &str, parent: &str) -> String {
    match v {
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .map(|(k, x)| {
                    format!(
                        "{}: {}",
                        serde_json::to_string(k).expect("key"),
                        typescript(x, k, key)
                    )
                })
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(|x| typescript(x, "", key)).collect();
            format!("[{}]", items.join(", "))
        }
        Value::String(_) if parent == "thresholds" && key == "mode" => {
            format!("thresholdsMode({v})")
        }
        _ => v.to_string(),
    }
}

fn type_check(dashboards: &[(String, Value)]) -> (bool, String) {
    let npm = npm_dir();
    let dir = tempfile::tempdir_in(&npm).expect("tempdir");
    let mut files = Vec::new();
    for (name, d) in dashboards {
        let file = dir.path().join(format!("{name}.ts"));
        let text = format!(
            "import {{ type Dashboard, ThresholdsMode }} from '@grafana/schema';\n\
             const thresholdsMode = (v: `${{ThresholdsMode}}`) => v as ThresholdsMode;\n\
             export const dashboard: Dashboard = {};\n",
            typescript(d, "", "")
        );
        std::fs::write(&file, text).expect("write .ts");
        files.push(file);
    }
    let out = Command::new("node")
        .arg(npm.join("node_modules/typescript/bin/tsc"))
        .args([
            "--noEmit",
            "--strict",
            "--skipLibCheck",
            "--module",
            "esnext",
            "--moduleResolution",
            "bundler",
            "--target",
            "es2022",
        ])
        .args(&files)
        .output()
        .expect("run tsc");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn dashboards_type_check_against_grafanas_schema() {
    let dashboards: Vec<(String, Value)> = rendered_dashboards()
        .into_iter()
        .map(|d| (d["uid"].as_str().expect("uid").to_string(), d))
        .collect();
    let (ok, output) = type_check(&dashboards);
    assert!(ok, "tsc rejects a dashboard:\n{output}");

    // The check can fail: a wrong type, a misspelt field, a value outside an enum.
    type Spoil = fn(&mut Value);
    let wrongs: [(&str, Spoil); 3] = [
        ("'string' is not assignable to type 'number'", |d| {
            d["schemaVersion"] = "41".into()
        }),
        (r#"'"width"' does not exist"#, |d| {
            d["panels"][0]["gridPos"]["width"] = 3.into()
        }),
        (r#""relative""#, |d| {
            d["panels"][0]["fieldConfig"]["defaults"]["thresholds"]["mode"] = "relative".into()
        }),
    ];
    for (needle, spoil) in wrongs {
        let mut wrong = dashboards[0].1.clone();
        spoil(&mut wrong);
        let (ok, output) = type_check(&[("wrong".into(), wrong)]);
        assert!(
            !ok && output.contains(needle),
            "tsc should reject a dashboard with {needle}:\n{output}"
        );
    }
}

#[test]
fn class_dashboards_type_check_against_grafanas_schema() {
    let dashboards: Vec<(String, Value)> = class_dashboards()
        .into_iter()
        .map(|d| (d["uid"].as_str().expect("uid").to_string(), d))
        .collect();
    let (ok, output) = type_check(&dashboards);
    assert!(ok, "tsc rejects a dashboard:\n{output}");
}

/// Input series for [`workload_queries_give_the_right_numbers`]: namespace `default` has a
/// Deployment `web` (ReplicaSet `web-7c9`, two pods, plus an old ReplicaSet scaled to 0) and a
/// StatefulSet `db` (one pod), each container using one CPU core; a running pod requesting half
/// a core and a finished one requesting two; pod `web-0` throttled in a quarter of its
/// periods; a claim 30% full.
const WORKLOAD_SERIES: &str = r#"
      - series: 'kube_pod_owner{job="kube-state-metrics", namespace="default", pod="web-7c9-a", owner_kind="ReplicaSet", owner_name="web-7c9", owner_is_controller="true"}'
        values: '1x20'
      - series: 'kube_pod_owner{job="kube-state-metrics", namespace="default", pod="web-7c9-b", owner_kind="ReplicaSet", owner_name="web-7c9", owner_is_controller="true"}'
        values: '1x20'
      - series: 'kube_pod_owner{job="kube-state-metrics", namespace="default", pod="db-0", owner_kind="StatefulSet", owner_name="db", owner_is_controller="true"}'
        values: '1x20'
      - series: 'kube_replicaset_owner{job="kube-state-metrics", namespace="default", replicaset="web-7c9", owner_kind="Deployment", owner_name="web", owner_is_controller="true"}'
        values: '1x20'
      - series: 'kube_replicaset_owner{job="kube-state-metrics", namespace="default", replicaset="web-5f1", owner_kind="Deployment", owner_name="web", owner_is_controller="true"}'
        values: '1x20'
      - series: 'kube_deployment_spec_replicas{job="kube-state-metrics", namespace="default", deployment="web"}'
        values: '2x20'
      - series: 'kube_deployment_status_replicas_available{job="kube-state-metrics", namespace="default", deployment="web"}'
        values: '1x20'
      - series: 'kube_statefulset_replicas{job="kube-state-metrics", namespace="default", statefulset="web"}'
        values: '5x20'
      - series: 'container_cpu_usage_seconds_total{job="kubelet", metrics_path="/metrics/cadvisor", namespace="default", pod="web-7c9-a", container="app", image="web:1"}'
        values: '0+60x20'
      - series: 'container_cpu_usage_seconds_total{job="kubelet", metrics_path="/metrics/cadvisor", namespace="default", pod="web-7c9-b", container="app", image="web:1"}'
        values: '0+60x20'
      - series: 'container_cpu_usage_seconds_total{job="kubelet", metrics_path="/metrics/cadvisor", namespace="default", pod="db-0", container="db", image="db:1"}'
        values: '0+60x20'
      - series: 'kube_pod_container_resource_requests{job="kube-state-metrics", namespace="default", pod="web-7c9-a", container="app", resource="cpu", unit="core"}'
        values: '0.5x20'
      - series: 'kube_pod_status_phase{job="kube-state-metrics", namespace="default", pod="web-7c9-a", phase="Running"}'
        values: '1x20'
      - series: 'kube_pod_status_phase{job="kube-state-metrics", namespace="default", pod="web-7c9-a", phase="Succeeded"}'
        values: '0x20'
      - series: 'kube_pod_container_resource_requests{job="kube-state-metrics", namespace="default", pod="migrate-x", container="migrate", resource="cpu", unit="core"}'
        values: '2x20'
      - series: 'kube_pod_status_phase{job="kube-state-metrics", namespace="default", pod="migrate-x", phase="Succeeded"}'
        values: '1x20'
      - series: 'container_cpu_cfs_periods_total{job="kubelet", metrics_path="/metrics/cadvisor", namespace="default", pod="web-0", container="app", image="web:1"}'
        values: '0+600x20'
      - series: 'container_cpu_cfs_throttled_periods_total{job="kubelet", metrics_path="/metrics/cadvisor", namespace="default", pod="web-0", container="app", image="web:1"}'
        values: '0+150x20'
      - series: 'kubelet_volume_stats_used_bytes{job="kubelet", metrics_path="/metrics", node="n1", namespace="default", persistentvolumeclaim="data-db-0"}'
        values: '30x20'
      - series: 'kubelet_volume_stats_capacity_bytes{job="kubelet", metrics_path="/metrics", node="n1", namespace="default", persistentvolumeclaim="data-db-0"}'
        values: '100x20'
"#;

/// The workload grouping the dashboards do inline (pods -> ReplicaSet -> Deployment, pods ->
/// StatefulSet) gives the right numbers, run by promtool on known series: the namespace's
/// workloads table, and the workload dashboard's replicas and per-pod usage for the chosen kind
/// only (a StatefulSet named like the Deployment does not leak in); and so do requests (a
/// finished pod's do not count), throttling and a claim's fullness.
#[test]
fn workload_queries_give_the_right_numbers() {
    let objects = rendered_objects(&[]);
    let expr = |uid: &str, panel: &str, i: usize| {
        let q: Vec<_> = dashboard_queries(&objects)
            .into_iter()
            .filter(|q| q.dashboard_uid == uid && q.panel_title == panel)
            .collect();
        let q = q.get(i).unwrap_or_else(|| panic!("{uid} / {panel} #{i}"));
        serde_json::to_string(&substituted(&q.expr, "5m")).expect("a string")
    };
    let namespace = "automon-k8s-compute-namespace";
    let workload = "automon-k8s-compute-workload";
    let cases = [
        (
            expr(namespace, "Workloads", 0),
            r#"[{labels: '{workload="web", workload_type="Deployment"}', value: 2}, {labels: '{workload="db", workload_type="StatefulSet"}', value: 1}]"#,
        ),
        (
            expr(namespace, "Workloads", 1),
            r#"[{labels: '{workload="web", workload_type="Deployment"}', value: 2}, {labels: '{workload="db", workload_type="StatefulSet"}', value: 1}]"#,
        ),
        (
            expr(workload, "CPU usage per pod", 0),
            r#"[{labels: '{namespace="default", pod="web-7c9-a"}', value: 1}, {labels: '{namespace="default", pod="web-7c9-b"}', value: 1}]"#,
        ),
        (
            expr(workload, "Desired replicas", 0),
            r#"[{labels: '{workload_type="Deployment"}', value: 2}]"#,
        ),
        (
            expr(workload, "Available replicas", 0),
            r#"[{labels: '{workload_type="Deployment"}', value: 1}]"#,
        ),
        // The cluster's table reads the recorded sums: the same numbers.
        (
            expr("automon-k8s-compute-cluster", "Namespaces", 1),
            r#"[{labels: '{namespace="default"}', value: 3}]"#,
        ),
        (
            expr("automon-k8s-compute-cluster", "Namespaces", 2),
            r#"[{labels: '{namespace="default"}', value: 0.5}]"#,
        ),
        (
            expr("automon-k8s-compute-namespace", "CPU requests", 0),
            r#"[{labels: '{}', value: 0.5}]"#,
        ),
        (
            expr("automon-k8s-compute-pod", "CPU throttling per container", 0),
            r#"[{labels: '{container="app"}', value: 0.25}]"#,
        ),
        (
            expr("automon-k8s-persistent-volumes", "Space used per claim", 0),
            r#"[{labels: '{namespace="default", persistentvolumeclaim="data-db-0"}', value: 0.3}]"#,
        ),
    ];
    let mut tests = format!(
        "rule_files: [rules.yaml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:{WORKLOAD_SERIES}    promql_expr_test:\n"
    );
    for (expr, samples) in &cases {
        tests.push_str(&format!(
            "      - expr: {expr}\n        eval_time: 10m\n        exp_samples: {samples}\n"
        ));
    }
    // The recording rules the stack ships, evaluated as Prometheus would.
    let recording = rule_file(
        rule_groups(&objects)
            .into_iter()
            .filter(|g| g["name"] == "automon-recording")
            .collect(),
    );
    assert!(recording.contains("record:"), "{recording}");
    let run = |text: &str| {
        passed(promtool_with(
            &[("rules.yaml", &recording), ("tests.yaml", text)],
            &["test", "rules", "tests.yaml"],
        ))
    };
    let (ok, output) = run(&tests);
    assert!(ok, "{output}\n{tests}");
    // The check can fail: the StatefulSet's pod counted as the Deployment's.
    let wrong = tests.replacen(
        "value: 2}, {labels: '{workload=\"db\"",
        "value: 3}, {labels: '{workload=\"db\"",
        1,
    );
    assert_ne!(wrong, tests);
    assert!(!run(&wrong).0, "promtool accepted a wrong count");
}
