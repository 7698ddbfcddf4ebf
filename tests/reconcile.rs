//! `reconcile` on the local cluster, the real binary the way a user runs it: kwok nodes joining
//! get their Events on the Node (one per node, naming the exporter pod), a node whose taint the
//! configuration does not tolerate gets a Warning after the deadline and a Normal Event once
//! fixed, drift is put back by the leader (and only reported with --no-repair), two loops never
//! both write, SIGTERM gives the Lease back within 2 seconds, and credentials that only view are
//! told everything they lack before anything is written.

mod common;

use std::time::Duration;

use common::{
    Cleanup, KwokNodes, ReconcileLoop, automon_admin, cluster, curl, enable, eventually, exists,
    get_json, kwok_node, node_events, run, status_json, tainted, write_temp,
};
use serde_json::json;

fn lease_holder(ns: &str) -> String {
    let out = cluster().kubectl(&[
        "get",
        "lease",
        "automon-reconcile",
        "-n",
        ns,
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    out.stdout.trim().to_string()
}

#[test]
fn joins_get_events_taints_a_warning_and_sigterm_releases_the_lease() {
    const NS: &str = "rc-joins";
    let _ns = Cleanup::fresh(NS);
    // Tolerating no taint, node-exporter stays off the tainted node.
    enable(NS, &["--set", "nodeExporter.tolerations=none"]).success();
    // An identity of this run only: Events outlive a run (an hour) and are counted by identity.
    let id = format!("rc-joins-loop-{}", std::process::id());
    let mut l = ReconcileLoop::start(
        NS,
        &id,
        &["--exporter-deadline", "3s", "--metrics-addr", "127.0.0.1:0"],
    );
    l.wait_for_log(&format!("acquired (this loop: {id})"), 30);
    let url = l.metrics_url();

    let names: Vec<String> = (0..20).map(|i| format!("rc-join-{i}")).collect();
    let mut nodes: Vec<serde_json::Value> = names.iter().map(|n| kwok_node(n)).collect();
    nodes.push(tainted("rc-taint", "rc-dedicated", "db", "NoExecute"));
    let _nodes = KwokNodes::create(nodes);

    // One ExporterReady per joined node, on that node, naming its exporter pod.
    eventually(90, "20 ExporterReady Events", || {
        node_events(&l.identity)
            .iter()
            .filter(|e| e.1 == "ExporterReady" && names.contains(&e.2))
            .count()
            >= 20
    });
    let events = node_events(&l.identity);
    for name in &names {
        let mine: Vec<_> = events
            .iter()
            .filter(|e| &e.2 == name && e.1 == "ExporterReady")
            .collect();
        assert_eq!(mine.len(), 1, "{name}: {events:#?}");
        let (kind, _, _, pod, note) = mine[0];
        assert_eq!(kind, "Normal");
        assert!(pod.starts_with("node-exporter-"), "{mine:?}");
        assert!(note.contains(&format!("{NS}/{pod}")), "{note}");
        // The pod really runs on that node.
        let node_of = cluster().kubectl(&[
            "get",
            "pod",
            "-n",
            NS,
            pod,
            "-o",
            "jsonpath={.spec.nodeName}",
        ]);
        assert_eq!(node_of.stdout.trim(), name);
    }

    // The tainted node: a Warning naming the taint once the deadline passed.
    eventually(30, "ExporterMissing on rc-taint", || {
        node_events(&l.identity)
            .iter()
            .any(|e| e.1 == "ExporterMissing" && e.2 == "rc-taint")
    });
    let warning = node_events(&l.identity)
        .into_iter()
        .find(|e| e.1 == "ExporterMissing" && e.2 == "rc-taint")
        .unwrap();
    assert_eq!(warning.0, "Warning");
    assert!(
        warning
            .4
            .contains("taint rc-dedicated=db:NoExecute not tolerated"),
        "{warning:?}"
    );
    assert!(
        l.log().contains("node rc-taint · not monitored after"),
        "{}",
        l.log()
    );

    // The taint removed: the exporter comes, and so does the Normal Event.
    cluster()
        .kubectl(&["taint", "node", "rc-taint", "rc-dedicated-"])
        .success();
    eventually(60, "ExporterReady on rc-taint", || {
        node_events(&l.identity)
            .iter()
            .any(|e| e.1 == "ExporterReady" && e.2 == "rc-taint")
    });

    // Its own metrics and probes, from prometheus-client.
    let metrics = curl(&format!("{url}/metrics")).unwrap();
    assert!(metrics.contains("automon_reconcile_leader 1"), "{metrics}");
    let ready: u64 = metric(
        &metrics,
        "automon_reconcile_events_total{reason=\"ExporterReady\"}",
    );
    assert!(ready >= 21, "{metrics}");
    assert!(
        metric(
            &metrics,
            "automon_reconcile_events_total{reason=\"ExporterMissing\"}"
        ) >= 1
    );
    assert!(metrics.contains("automon_reconcile_verdict_latency_seconds_count"));
    assert_eq!(curl(&format!("{url}/readyz")).unwrap().trim(), "ok");
    assert_eq!(curl(&format!("{url}/healthz")).unwrap().trim(), "ok");

    // status says a loop holds the Lease, and where.
    let (_, st) = status_json(NS, &[]);
    assert_eq!(st["reconcile"]["holder"], id, "{}", st["reconcile"]);

    // SIGTERM: exit 0 within 2s, the Lease given back.
    assert_eq!(lease_holder(NS), id);
    let (code, took) = l.terminate();
    assert_eq!(code, 0, "{}", l.log());
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(lease_holder(NS), "", "the Lease still has a holder");
    assert!(
        l.log().contains("Stopped   Lease released after"),
        "{}",
        l.log()
    );
}

/// The value of one sample line of the exposition text.
fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}")) as u64
}

#[test]
fn drift_is_put_back_by_the_leader_and_reported_with_no_repair() {
    const NS: &str = "rc-drift";
    let _ns = Cleanup::fresh(NS);
    enable(NS, &[]).success();
    let dashboard = "grafana-dashboard-node-detail";

    // One pass with --no-repair: says what drifted, changes nothing, exits degraded.
    cluster()
        .kubectl(&["delete", "configmap", "-n", NS, dashboard])
        .success();
    let pass = run(automon_admin().args(["reconcile", "-n", NS, "--no-repair"]));
    assert_eq!(pass.code, 8, "{pass:#?}");
    assert!(
        pass.stderr.contains(&format!(
            "configmap/{dashboard} missing · not repaired (--no-repair)"
        )),
        "{pass:#?}"
    );
    assert!(!exists(&["configmap", "-n", NS, dashboard]));
    // One pass that repairs: back, and all good.
    let pass = run(automon_admin().args(["reconcile", "-n", NS]));
    assert_eq!(pass.code, 0, "{pass:#?}");
    assert!(pass.stderr.contains("restored"), "{pass:#?}");
    cluster()
        .kubectl(&["get", "configmap", "-n", NS, dashboard])
        .success();

    // The loop: a deleted ConfigMap and a PrometheusRule replaced by another field manager.
    let mut l = ReconcileLoop::start(NS, "rc-drift-loop", &[]);
    l.wait_for_log("acquired", 30);
    cluster()
        .kubectl(&["delete", "configmap", "-n", NS, dashboard])
        .success();
    let mut rule = get_json(&["get", "prometheusrule", "-n", NS, "node-alerts"]);
    let original = rule["spec"].clone();
    rule["spec"]["groups"][0]["rules"][0]["expr"] = json!("vector(1)");
    let (_dir, file) = write_temp("rule.json", &rule.to_string());
    cluster()
        .kubectl(&[
            "replace",
            "--field-manager",
            "kubectl-edit",
            "-f",
            file.to_str().unwrap(),
        ])
        .success();
    l.wait_for_log(&format!("configmap/{dashboard} deleted · restored"), 30);
    l.wait_for_log(
        "prometheusrule.monitoring.coreos.com/node-alerts changed by kubectl-edit (spec.groups",
        30,
    );
    cluster()
        .kubectl(&["get", "configmap", "-n", NS, dashboard])
        .success();
    let rule = get_json(&["get", "prometheusrule", "-n", NS, "node-alerts"]);
    assert_eq!(rule["spec"], original, "the rule was not put back");
    // The repaired objects are automon's again, and nothing else was touched.
    let log = l.log();
    assert_eq!(log.matches("restored").count(), 2, "{log}");
}

#[test]
fn two_loops_one_writer_and_the_other_takes_over() {
    const NS: &str = "rc-lease";
    let _ns = Cleanup::fresh(NS);
    enable(NS, &[]).success();
    // Long enough for a node to join and its exporter to turn Ready while a dead leader's
    // Lease has not run out yet.
    let lease = ["--lease-duration", "15s"];
    // Identities of this run only: Events outlive a run (an hour) and are counted by identity.
    let (id_a, id_b) = (
        format!("rc-lease-a-{}", std::process::id()),
        format!("rc-lease-b-{}", std::process::id()),
    );
    let mut a = ReconcileLoop::start(NS, &id_a, &lease);
    a.wait_for_log(&format!("acquired (this loop: {id_a})"), 30);
    let mut b = ReconcileLoop::start(NS, &id_b, &lease);
    b.wait_for_log(&format!("held by {id_a}"), 10);

    let _nodes = KwokNodes::create(vec![kwok_node("rc-lease-0"), kwok_node("rc-lease-1")]);
    eventually(60, "the leader's 2 Events", || {
        node_events(&id_a)
            .iter()
            .filter(|e| e.1 == "ExporterReady" && e.2.starts_with("rc-lease-"))
            .count()
            == 2
    });
    b.wait_for_log("no Event (another loop leads)", 10);
    assert!(node_events(&id_b).is_empty(), "the follower wrote");

    // The leader dies without a word, and a node joins before its Lease runs out: the follower
    // sees the Event due and leaves it to the leader, which is gone. Taking over, it writes it.
    a.kill();
    let killed = std::time::Instant::now();
    let _late = KwokNodes::create(vec![kwok_node("rc-lease-late")]);
    b.wait_for_log(&format!("acquired (this loop: {id_b})"), 30);
    let took = killed.elapsed();
    assert!(
        took <= Duration::from_secs(15 + 5),
        "took over after {took:?}"
    );
    b.wait_for_log(
        "node rc-lease-late · ExporterReady was due while another loop led",
        10,
    );
    assert_eq!(lease_holder(NS), id_b);
    eventually(
        30,
        "the new leader's Event for the node that joined meanwhile",
        || {
            node_events(&id_b)
                .iter()
                .any(|e| e.1 == "ExporterReady" && e.2 == "rc-lease-late")
        },
    );
    // What the dead leader did write is not written twice.
    assert!(
        !node_events(&id_b)
            .iter()
            .any(|e| e.2 == "rc-lease-0" || e.2 == "rc-lease-1"),
        "{:?}",
        node_events(&id_b)
    );
    let (code, _) = b.terminate();
    assert_eq!(code, 0);
}

#[test]
fn credentials_that_only_view_are_told_what_they_lack_and_nothing_is_written() {
    const NS: &str = "rc-view";
    let _ns = Cleanup::fresh(NS);
    enable(NS, &[]).success();
    let c = cluster();
    c.kubectl(&[
        "delete",
        "clusterrolebinding",
        "rc-viewer",
        "--ignore-not-found",
    ]);
    c.kubectl(&[
        "create",
        "clusterrolebinding",
        "rc-viewer",
        "--clusterrole",
        "view",
        "--user",
        "rc-viewer",
    ])
    .success();
    // The authorizer sees a new binding a moment later; the test is about what it lacks.
    eventually(30, "the view binding took effect", || {
        c.kubectl(&[
            "auth",
            "can-i",
            "get",
            "configmaps",
            "-n",
            NS,
            "--as",
            "rc-viewer",
        ])
        .code
            == 0
    });
    let out = run(automon_admin().args(["reconcile", "--loop", "-n", NS, "--as", "rc-viewer"]));
    c.kubectl(&["delete", "clusterrolebinding", "rc-viewer"]);
    assert_eq!(out.code, 6, "{out:#?}");
    for want in [
        "reconcile cannot run with these credentials; nothing was written",
        "list, watch nodes cluster-wide",
        "create, patch events.events.k8s.io in namespace \"default\"",
        "create, get, patch leases.coordination.k8s.io in namespace \"rc-view\"",
        "patch daemonsets.apps in namespace \"rc-view\"",
    ] {
        assert!(
            out.stderr.contains(want),
            "{want:?} missing:\n{}",
            out.stderr
        );
    }
    // Nothing written: no Lease.
    assert!(!exists(&["lease", "-n", NS, "automon-reconcile"]));

    // Not installed: status' message and exit code.
    let none = run(automon_admin().args(["reconcile", "-n", "rc-nothing-here"]));
    assert_eq!(none.code, 9, "{none:#?}");
    assert!(
        none.stderr
            .contains("automon is not installed in namespace rc-nothing-here"),
        "{none:#?}"
    );
}
