//! Beside the real kube-prometheus-stack chart (../shared/peers, installed by the real `helm
//! install`, default values): `enable` reuses its operator, Prometheus and node-exporter and adds
//! no second scrape of anything that Prometheus already scrapes. Proved with the configuration
//! the real operator generates for the chart's Prometheus, loaded into a real Prometheus whose
//! service discovery reads the local cluster (its scrapes go to a closed port of 127.0.0.1):
//! every (address, path) is kept by exactly one job, and a duplicate ServiceMonitor is caught.
//! automon's node alerts, as applied, fire once per node on series labelled as the chart's
//! targets are (promtool), though those name no node, and every dashboard query so joined
//! parses. automon's kube-state-metrics exports only the node labels the chart's does not, and
//! its coverage check reads those beside the chart's nodes (promtool). `disable` leaves the
//! chart as it was.
//! A test binary of its own: another operator is cluster-wide news.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    process::Command,
};

use common::*;
use serde_json::{Value, json};

/// The chart's release and namespace, and automon's.
const RELEASE: &str = "kps";
const CHART_NS: &str = "automon-kps-chart";
const NS: &str = "automon-beside-chart";
/// The chart's Prometheus, as it names it.
const PROMETHEUS: &str = "kps-kube-prometheus-stack-prometheus";

fn chart() -> PathBuf {
    repo_root().join("../shared/peers/kube-prometheus-stack-88.5.3")
}

fn helm(args: &[&str]) -> Run {
    static HELM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let helm = HELM.get_or_init(|| built_tool("helm", "helm"));
    let c = cluster();
    Run::from(
        Command::new(helm)
            .env("KUBECONFIG", &c.kubeconfig)
            .env("HELM_CACHE_HOME", c.dir.join("helm/cache"))
            .env("HELM_CONFIG_HOME", c.dir.join("helm/config"))
            .env("HELM_DATA_HOME", c.dir.join("helm/data"))
            .args(args)
            .output()
            .expect("run helm"),
    )
}

/// Uninstalls the release and waits for its namespace to go: its operator must not outlive the
/// test binary.
struct Chart;

impl Drop for Chart {
    fn drop(&mut self) {
        helm(&[
            "uninstall",
            RELEASE,
            "-n",
            CHART_NS,
            "--ignore-not-found",
            "--wait",
            "--timeout",
            "120s",
        ]);
        cluster().kubectl(&[
            "delete",
            "namespace",
            CHART_NS,
            "--ignore-not-found",
            "--timeout=120s",
        ]);
    }
}

/// The configuration the operator generated for the chart's Prometheus, once it holds `pool`.
fn chart_config(pool: &str) -> Value {
    operator_config(CHART_NS, PROMETHEUS, pool)
}

/// The chart's objects in its namespace, each with its resourceVersion: what `enable` and
/// `disable` must leave as they were.
fn chart_objects() -> BTreeMap<String, String> {
    let kinds = "deployments,daemonsets,services,servicemonitors,prometheusrules,prometheuses,alertmanagers,configmaps";
    let list = cluster().get_json(&[
        "get",
        kinds,
        "-n",
        CHART_NS,
        "-l",
        &format!("release={RELEASE}"),
    ]);
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                ),
                o["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

/// The rule of `alert` among rule `groups`, as applied.
fn alert_rule(groups: &[Value], alert: &str) -> Value {
    groups
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .find(|r| r["alert"] == alert)
        .unwrap_or_else(|| panic!("{alert} is applied"))
        .clone()
}

/// `rule`'s annotations as they read on an alert of `node`.
fn annotations_on(rule: &Value, node: &str) -> BTreeMap<String, String> {
    rule["annotations"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().unwrap().replace("{{ $labels.node }}", node),
            )
        })
        .collect()
}

#[test]
fn beside_the_real_chart_nothing_is_scraped_twice_and_node_alerts_fire_once_per_node() {
    let c = cluster();
    c.ensure_crds();
    let _ns = Cleanup::fresh(NS).waited();
    // Whatever an earlier run left, gone first.
    drop(Chart);
    let chart_guard = Chart;
    let chart = chart();
    helm(&[
        "install",
        RELEASE,
        chart.to_str().unwrap(),
        "-n",
        CHART_NS,
        "--create-namespace",
        // The cluster has the CRDs at the pinned version (ensure_crds): helm 4 applies a chart's
        // CRDs server-side and stops at the conflict with their field manager.
        "--skip-crds",
        "--wait",
        "--timeout",
        "300s",
    ])
    .success();
    ensure_operator();
    // The chart alone: its own scrapes, each once.
    let (alone, _) = kept_targets(chart_config(
        "serviceMonitor/automon-kps-chart/kps-prometheus-node-exporter/0",
    ));
    assert!(
        twice(&alone).is_empty(),
        "the chart alone scrapes targets twice: {:?}",
        twice(&alone)
    );
    eprintln!(
        "the chart alone: {} targets, each in one scrape pool",
        alone.len()
    );
    let before = chart_objects();

    let out = run(automon_admin().args(["enable", "-n", NS])).success();
    assert_has(
        &out.stdout,
        &format!(
            "Exporter  daemonset {CHART_NS}/kps-prometheus-node-exporter serves port 9100 on the nodes: its own stack's Prometheus scrapes it, automon reads those series"
        ),
    );
    assert_has(
        &out.stderr,
        &format!(
            "the node-exporter scrape (servicemonitor {CHART_NS}/kps-prometheus-node-exporter does it; its series name no node, so automon's rules and dashboards find each one's node through kube_pod_info)"
        ),
    );
    assert!(!exists(&["servicemonitor", "-n", NS, "node-exporter"]));
    assert!(!exists(&["podmonitor", "-n", NS, "node-exporter"]));
    // The chart's kube-state-metrics exports every series but automon's node labels:
    // automon's exports those alone, reading nodes alone, and its rules read the rest from
    // the chart's.
    assert_has(
        &out.stdout,
        &format!(
            "Exporter  kube-state-metrics reads servicemonitor {CHART_NS}/kps-kube-state-metrics's series (job kube-state-metrics); automon's own exports only kube_node_labels (the node labels its coverage check reads), as job automon-kube-state-metrics"
        ),
    );
    assert_has(
        &out.stderr,
        &format!(
            "every kube-state-metrics series but kube_node_labels (servicemonitor {CHART_NS}/kps-kube-state-metrics scrapes theirs, as job kube-state-metrics"
        ),
    );
    let ksm = c.get_json(&["get", "deployment", "-n", NS, "kube-state-metrics"]);
    let args: Vec<&str> = ksm["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for arg in [
        "--resources=nodes",
        "--metric-allowlist=kube_node_labels",
        "--metric-labels-allowlist=nodes=[kubernetes.io/os,automon.io/exclude]",
    ] {
        assert!(args.contains(&arg), "{arg}: {args:?}");
    }
    let role = c.get_json(&["get", "clusterrole", &format!("{NS}-kube-state-metrics")]);
    assert_eq!(
        role["rules"],
        json!([{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch"]}])
    );
    // The real kube-state-metrics with those arguments, against the local cluster: the node
    // labels, each node's, and no other family.
    let dir = tempfile::tempdir().unwrap();
    let (real, real_log, real_port) = spawn_kube_state_metrics(&[ksm], dir.path());
    let metrics = poll(
        60,
        || http_get(real_port, "/metrics").unwrap_or_default(),
        |m| m.contains("kube_node_labels{"),
    );
    drop(real);
    let families: BTreeSet<&str> = metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap())
        .collect();
    assert_eq!(
        families,
        BTreeSet::from(["kube_node_labels"]),
        "{}",
        std::fs::read_to_string(&real_log).unwrap_or_default()
    );
    assert!(
        metrics.contains(r#"label_kubernetes_io_os="linux""#),
        "{metrics}"
    );

    // With automon's objects selected too (its kube-state-metrics is labelled for the chart's
    // Prometheus): still every target once.
    let (with_automon, labelled) = kept_targets(chart_config(&format!(
        "serviceMonitor/{NS}/kube-state-metrics/0"
    )));
    assert!(
        twice(&with_automon).is_empty(),
        "targets scraped twice beside automon: {:?}",
        twice(&with_automon)
    );
    eprintln!(
        "beside automon: {} targets, each in one scrape pool",
        with_automon.len()
    );
    // Each kube-state-metrics under its own job: the chart's, and automon's node labels.
    for job in ["kube-state-metrics", "automon-kube-state-metrics"] {
        assert!(
            labelled.iter().any(|(l, _)| l["job"] == job),
            "no target of job {job}"
        );
    }
    let nodes: BTreeSet<String> = labelled
        .iter()
        .filter(|(l, _)| l["job"] == "node-exporter")
        .map(|(_, node)| node.clone())
        .collect();
    let kwok_nodes = c.get_json(&["get", "nodes", "-l", "type=kwok"])["items"]
        .as_array()
        .unwrap()
        .len();
    assert!(
        nodes.len() >= kwok_nodes.min(3) && !nodes.contains(""),
        "{nodes:?}"
    );

    // The check catches what it is for: a second ServiceMonitor of the chart's exporter.
    let mut double = c.get_json(&[
        "get",
        "servicemonitor",
        "-n",
        CHART_NS,
        "kps-prometheus-node-exporter",
    ]);
    for key in [
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "managedFields",
        "generation",
        "annotations",
    ] {
        double["metadata"].as_object_mut().unwrap().remove(key);
    }
    double["metadata"]["name"] = json!("double-node-exporter");
    c.kubectl_with_input(&["apply", "-f", "-"], &double.to_string())
        .success();
    let (doubled, _) = kept_targets(chart_config(
        "serviceMonitor/automon-kps-chart/double-node-exporter/0",
    ));
    c.kubectl(&[
        "delete",
        "servicemonitor",
        "-n",
        CHART_NS,
        "double-node-exporter",
    ])
    .success();
    assert!(
        twice(&doubled).len() >= nodes.len(),
        "a duplicate ServiceMonitor went unnoticed: {doubled:?}"
    );

    // automon's node alerts as applied, on the chart's series as its targets label them (no
    // node label), with kube_pod_info from the chart's kube-state-metrics: NodeDown once per
    // node.
    let rules = c.get_json(&["get", "prometheusrule", "-n", NS, "node-alerts"]);
    let ksm_job = "kube-state-metrics";
    let node_down = alert_rule(rules["spec"]["groups"].as_array().unwrap(), "NodeDown");
    let expr = node_down["expr"].as_str().unwrap();
    assert!(
        expr.contains("group_left (node)")
            && expr.contains(&format!(r#"kube_pod_info{{job="{ksm_job}""#)),
        "{expr}"
    );
    let mut series = Vec::new();
    let mut expected = Vec::new();
    for (labels, node) in labelled.iter().filter(|(l, _)| l["job"] == "node-exporter") {
        let selector: Vec<String> = labels
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={}", v))
            .collect();
        assert!(
            labels.get("node").is_none(),
            "the chart's series name no node: {labels}"
        );
        series.push(json!({"series": format!("up{{{}}}", selector.join(", ")), "values": "0x10"}));
        series.push(json!({
            "series": format!(
                "kube_pod_info{{job=\"{ksm_job}\", namespace={}, pod={}, node=\"{node}\"}}",
                labels["namespace"], labels["pod"]
            ),
            "values": "1x10"
        }));
        let annotations = annotations_on(&node_down, node);
        expected.push(json!({"exp_labels": {"severity": "critical", "node": node}, "exp_annotations": annotations}));
    }
    let groups: Vec<Value> = c.get_json(&["get", "prometheusrule", "-n", NS])["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["spec"]["groups"].as_array().unwrap().clone())
        .collect();
    let rule_file = serde_json::to_string(&json!({"groups": groups})).unwrap();
    promtool_with(
        &[("rules.yaml", &rule_file)],
        &["check", "rules", "rules.yaml"],
    )
    .success();
    // The coverage check as applied: automon's node labels (the chart's carry none of the
    // labels it reads), the chart's nodes, the chart's exporter targets joined to their node.
    // The first node's target is down: a gap; the second's is down but the node is opted out;
    // the rest are up.
    let gap_rule = alert_rule(&groups, "NodeMonitoringCoverageGap");
    let gap_expr = gap_rule["expr"].as_str().unwrap();
    assert!(
        gap_expr.contains(r#"kube_node_labels{job="automon-kube-state-metrics""#)
            && gap_expr.contains(r#"kube_node_info{job="kube-state-metrics"}"#),
        "{gap_expr}"
    );
    let exporters: Vec<&(Value, String)> = labelled
        .iter()
        .filter(|(l, _)| l["job"] == "node-exporter")
        .collect();
    let mut gap_series = Vec::new();
    for (i, (labels, node)) in exporters.iter().enumerate() {
        let selector: Vec<String> = labels
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let up = if i < 2 { "0x40" } else { "1x40" };
        let exclude = if i == 1 { "true" } else { "" };
        for s in [
            format!("up{{{}}}", selector.join(", ")),
            format!(
                "kube_pod_info{{job=\"{ksm_job}\", namespace={}, pod={}, node=\"{node}\"}}",
                labels["namespace"], labels["pod"]
            ),
            format!("kube_node_info{{job=\"{ksm_job}\", node=\"{node}\"}}"),
            format!("kube_node_labels{{job=\"{ksm_job}\", node=\"{node}\"}}"),
            format!(
                "kube_node_labels{{job=\"automon-kube-state-metrics\", node=\"{node}\", label_kubernetes_io_os=\"linux\", label_automon_io_exclude=\"{exclude}\"}}"
            ),
        ] {
            let values = if s.starts_with("up{") { up } else { "1x40" };
            gap_series.push(json!({"series": s, "values": values}));
        }
    }
    let gap_node = &exporters[0].1;
    let mut gap_labels = gap_rule["labels"].clone();
    gap_labels["node"] = json!(gap_node);
    let gap_annotations = annotations_on(&gap_rule, gap_node);
    let test = json!({
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [{"eval_time": "8m", "alertname": "NodeDown", "exp_alerts": expected}],
        }, {
            "interval": "1m",
            "input_series": gap_series,
            "alert_rule_test": [{"eval_time": "30m", "alertname": "NodeMonitoringCoverageGap", "exp_alerts": [
                {"exp_labels": gap_labels, "exp_annotations": gap_annotations},
            ]}],
        }],
    });
    let test = serde_json::to_string(&test).unwrap();
    promtool_with(
        &[("rules.yaml", &rule_file), ("test.yaml", &test)],
        &["test", "rules", "test.yaml"],
    )
    .success();

    // Every dashboard query as applied (joined to the node where it reads node-exporter), with
    // Grafana's variables filled in, is PromQL a real promtool parses.
    let dashboards = c.get_json(&["get", "configmaps", "-n", NS, "-l", "grafana_dashboard=1"]);
    let queries = dashboard_queries(dashboards["items"].as_array().unwrap());
    assert!(queries.len() > 20, "{}", queries.len());
    let values = BTreeMap::from([
        ("__rate_interval", "1m"),
        ("__range", "1h"),
        ("datasource", "prometheus"),
        ("cluster", ".*"),
        ("node", "n1"),
        ("namespace", "default"),
        ("type", "Deployment"),
        ("workload", "web"),
        ("pod", "web-0"),
    ]);
    let joined = queries
        .iter()
        .filter(|q| q.expr.contains("group_left (node)"))
        .count();
    assert!(joined >= 5, "{joined} dashboard queries joined to the node");
    let recorded: Vec<Value> = queries
        .iter()
        .enumerate()
        .map(|(i, q)| json!({"record": format!("automon_dashboard:query_{i}"), "expr": substitute(&q.expr, &values)}))
        .collect();
    let dashboard_rules =
        serde_json::to_string(&json!({"groups": [{"name": "dashboards", "rules": recorded}]}))
            .unwrap();
    promtool_with(
        &[("rules.yaml", &dashboard_rules)],
        &["check", "rules", "rules.yaml"],
    )
    .success();

    let diff = run(automon_admin().args(["diff", "-n", NS])).success();
    assert_eq!(diff.stdout, "", "{diff:#?}");
    run(automon_admin().args(["disable", "-n", NS, "--yes"])).success();
    assert_eq!(
        chart_objects(),
        before,
        "enable and disable left the chart as it was"
    );
    drop(chart_guard);
}
