//! The coverage-gap alert end to end on real series: the real kube-state-metrics (built from its
//! Go module, run out of cluster with exactly the arguments `render` gives its Deployment) reads
//! the local cluster's nodes; a real node_exporter stands for the exporter of three of them; a
//! real Prometheus loads the rendered rules and scrapes both. The node no exporter covers is the
//! one NodeMonitoringCoverageGap goes pending for; labelled with the exclusion label, it is
//! accepted as a gap and the alert clears, through kube-state-metrics' own label allowlist.

mod common;

use common::{
    KwokNodes, built_tool, cluster, free_port, kwok_node, poll, prometheus_query, rendered_objects,
    rendered_rule_file, spawn_kube_state_metrics, spawn_node_exporter, spawn_prometheus,
};
use serde_json::{Value, json};

/// The nodes an alert is pending or firing for.
fn alerting_nodes(port: u16, alert: &str) -> Result<Vec<String>, String> {
    let result = prometheus_query(port, &format!("ALERTS{{alertname=\"{alert}\"}}"))?;
    let mut nodes: Vec<String> = result
        .iter()
        .map(|s| s["metric"]["node"].as_str().unwrap_or("").to_string())
        .collect();
    nodes.sort();
    Ok(nodes)
}

#[test]
fn the_node_no_exporter_covers_is_the_gap_real_kube_state_metrics_and_prometheus_find() {
    let c = cluster();
    let _node = KwokNodes::create(vec![kwok_node("cov-uncovered")]);
    let objects = rendered_objects(&[]);
    let dir = tempfile::tempdir().unwrap();

    // kube-state-metrics, as the stack runs it, against the local cluster.
    let (mut ksm, ksm_log, ksm_port) = spawn_kube_state_metrics(&objects, dir.path());

    // One real node_exporter stands for the exporter on each of the three cluster nodes
    // (a target per node, told apart by its `node` label, as the stack's relabelling sets it).
    let (mut exporter, exporter_log, exporter_port) = spawn_node_exporter(dir.path());
    let covered = ["automon-node-0", "automon-node-1", "automon-node-2"];
    let node_configs: Vec<Value> = covered
        .iter()
        .map(|n| json!({"targets": [format!("127.0.0.1:{exporter_port}")], "labels": {"node": n}}))
        .collect();
    let config = json!({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["rules.yaml"],
        "scrape_configs": [
            {"job_name": "kube-state-metrics",
             "static_configs": [{"targets": [format!("127.0.0.1:{ksm_port}")]}]},
            {"job_name": "node-exporter", "static_configs": node_configs},
        ],
    });
    std::fs::write(dir.path().join("rules.yaml"), rendered_rule_file(&objects)).unwrap();
    std::fs::write(
        dir.path().join("prometheus.yaml"),
        serde_saphyr::to_string(&config).unwrap(),
    )
    .unwrap();
    let prometheus_port = free_port();
    let (mut prometheus, prometheus_log) = spawn_prometheus(
        &built_tool("prometheus", "prometheus"),
        dir.path(),
        prometheus_port,
    );

    // Every node kube-state-metrics knows but the three covered ones is a gap: the new node
    // (and any other a test left in the cluster, which nothing covers either).
    let known: Vec<String> = c
        .kubectl(&["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"])
        .stdout
        .split_whitespace()
        .filter(|n| !covered.contains(n))
        .map(String::from)
        .collect();
    assert!(known.contains(&"cov-uncovered".to_string()), "{known:?}");
    let mut expected = known.clone();
    expected.sort();
    let gaps = poll(
        60,
        || {
            ksm.assert_running(&ksm_log);
            exporter.assert_running(&exporter_log);
            prometheus.assert_running(&prometheus_log);
            alerting_nodes(prometheus_port, "NodeMonitoringCoverageGap")
        },
        |gaps| gaps.as_ref() == Ok(&expected),
    );
    assert_eq!(
        gaps,
        Ok(expected.clone()),
        "NodeMonitoringCoverageGap pending for"
    );
    // kube-state-metrics is up, every node is Ready: nothing else is wrong.
    for quiet in ["KubeStateMetricsDown", "NodeNotReady", "NodeDown"] {
        assert_eq!(
            alerting_nodes(prometheus_port, quiet).unwrap(),
            Vec::<String>::new(),
            "{quiet}"
        );
    }

    // Excluded by its label: an accepted gap, no longer an alert.
    c.kubectl(&["label", "node", "cov-uncovered", "automon.io/exclude=true"])
        .success();
    expected.retain(|n| n != "cov-uncovered");
    let gaps = poll(
        60,
        || alerting_nodes(prometheus_port, "NodeMonitoringCoverageGap"),
        |gaps| gaps.as_ref() == Ok(&expected),
    );
    assert_eq!(gaps, Ok(expected), "after the exclusion label");
}
