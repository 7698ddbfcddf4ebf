//! Sizing and sharding on the local cluster, with the real prometheus-operator: the stack sized
//! for 3, 1,000 and 5,000 nodes (`render --nodes`) passes the API server's server-side dry run,
//! and `prometheus.shards: 3` becomes three Prometheus StatefulSets whose configuration keeps
//! each target on one shard (hashmod), plus the ruler's StatefulSet, which federates from the
//! shards and alone holds the rules that must see every target.

mod common;

use common::*;

#[test]
fn the_stack_sized_for_3_1000_and_5000_nodes_passes_a_server_side_dry_run() {
    let ns = "automon-sized";
    let _cleanup = Cleanup::created(ns);
    let c = cluster();
    c.ensure_crds();
    for nodes in ["3", "1000", "5000"] {
        let out = run(automon()
            .args(["render", "-n", ns, "--nodes", nodes])
            .args(port_for(ns)))
        .success();
        let applied = c
            .kubectl_with_input(
                &[
                    "apply",
                    "--server-side",
                    "--dry-run=server",
                    "--field-manager=automon-test",
                    "-o",
                    "name",
                    "-f",
                    "-",
                ],
                &out.stdout,
            )
            .success();
        let prometheuses = applied
            .stdout
            .lines()
            .filter(|l| l.starts_with("prometheus.monitoring.coreos.com/"))
            .count();
        // 3 nodes: one Prometheus; 1,000 and 5,000: shards, and the ruler beside them.
        assert_eq!(
            prometheuses,
            if nodes == "3" { 1 } else { 2 },
            "{nodes}: {}",
            applied.stdout
        );
    }
    // Nothing was created by the dry runs.
    let left = c
        .kubectl(&["get", "prometheus", "-n", ns, "-o", "name"])
        .success();
    assert!(left.stdout.trim().is_empty(), "{}", left.stdout);
}

#[test]
fn three_shards_become_three_statefulsets_with_hashmod_and_a_ruler_that_federates() {
    let ns = "automon-shards";
    let _cleanup = Cleanup::fresh(ns);
    operator_start();
    // It watches every namespace: stop it after this test so that no later test meets it.
    let _operator = OperatorStop;
    let out = enable(
        ns,
        &["--set", "prometheus.shards=3", "--wait", "--timeout", "3m"],
    )
    .success();
    assert_has(&out.stdout, "Sizing    ");

    // Three shards and the ruler, as StatefulSets the operator made.
    let statefulsets = |_: &()| {
        let out = cluster().kubectl(&["get", "statefulsets", "-n", ns, "-o", "name"]);
        let mut names: Vec<String> = out.stdout.lines().map(String::from).collect();
        names.sort();
        names
    };
    let want = [
        "statefulset.apps/alertmanager-automon",
        "statefulset.apps/prometheus-automon",
        "statefulset.apps/prometheus-automon-ruler",
        "statefulset.apps/prometheus-automon-shard-1",
        "statefulset.apps/prometheus-automon-shard-2",
    ];
    let names = poll(60, || statefulsets(&()), |n| n == &want);
    assert_eq!(names, want);
    // Each shard's pods are told their shard number; the configuration keeps the targets
    // whose address hashes to it.
    for (set, shard) in [
        ("prometheus-automon", "0"),
        ("prometheus-automon-shard-1", "1"),
        ("prometheus-automon-shard-2", "2"),
    ] {
        let sts = get_json(&["get", "statefulset", "-n", ns, set]);
        let env = sts["spec"]["template"]["spec"]["containers"].to_string();
        assert!(
            env.contains(&format!(r#"{{"name":"SHARD","value":"{shard}"}}"#)),
            "{set}: {env}"
        );
    }
    let config = poll(
        60,
        || generated_config(ns, "automon"),
        |c| c.contains(&format!("serviceMonitor/{ns}/node-exporter/")),
    );
    let node_exporter_job = config
        .split("- job_name: ")
        .find(|j| j.starts_with(&format!("serviceMonitor/{ns}/node-exporter/")))
        .unwrap_or_else(|| panic!("no node-exporter job:\n{config}"));
    for needle in [
        "modulus: 3",
        "action: hashmod",
        "regex: $(SHARD)",
        "action: keep",
    ] {
        assert!(
            node_exporter_job.contains(needle),
            "{needle} not in:\n{node_exporter_job}"
        );
    }
    // The shards do not scrape the ruler's federation job; the ruler scrapes only it.
    assert!(!config.contains("prometheus-federate"), "{config}");
    let ruler = poll(
        60,
        || generated_config(ns, "automon-ruler"),
        |c| c.contains("prometheus-federate"),
    );
    let jobs: Vec<&str> = ruler
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- job_name: "))
        .collect();
    assert_eq!(
        jobs,
        [format!("serviceMonitor/{ns}/prometheus-federate/0")],
        "{ruler}"
    );
    for needle in [
        "metrics_path: /federate",
        "honor_labels: true",
        "kube_node_info",
    ] {
        assert!(ruler.contains(needle), "{needle} not in:\n{ruler}");
    }
    // One ruler: every federation target is its own (the operator's one-shard modulus).
    assert!(ruler.contains("modulus: 1\n"), "{ruler}");
    // The rules: the coverage checks only in the ruler, the per-target ones only in the shards.
    let shard_rules = poll(
        60,
        || rule_files(ns, "automon"),
        |r| r.contains("alert: NodeDown"),
    );
    let ruler_rules = poll(
        60,
        || rule_files(ns, "automon-ruler"),
        |r| r.contains("NodeMonitoringCoverageGap"),
    );
    // (The ConfigMaps' data as JSON text: a rule file's newlines are `\n` in it.)
    let has = |rules: &str, alert: &str| rules.contains(&format!("alert: {alert}\\n"));
    for alert in [
        "NodeMonitoringCoverageGap",
        "KubeStateMetricsDown",
        "NodeExporterDown",
    ] {
        assert!(has(&ruler_rules, alert), "{alert} not in the ruler's rules");
        assert!(!has(&shard_rules, alert), "{alert} in the shards' rules");
    }
    for alert in ["NodeDown", "HighCPUUsage", "Watchdog"] {
        assert!(has(&shard_rules, alert), "{alert} not in the shards' rules");
        assert!(!has(&ruler_rules, alert), "{alert} in the ruler's rules");
    }

    // A second enable changes nothing; status counts every shard's pods.
    let again = enable(ns, &["--set", "prometheus.shards=3"]).success();
    assert_has(&again.stdout, "Nothing to do");
}
