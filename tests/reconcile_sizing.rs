//! The loop keeps the stack sized for the cluster, on the local cluster: 48 nodes joining a
//! 3-node cluster (past the 50-node tier) get Prometheus sized for up to 100 nodes, recorded as
//! a revision; when they leave, it is sized back down after the grace period. Its own test
//! binary: every loop in the cluster would follow the same nodes.

mod common;

use common::{
    Cleanup, KwokNodes, ReconcileLoop, automon_admin, cluster, enable, eventually, kwok_node, run,
};

/// The stack's `Prometheus`: (what it was sized for, its memory request).
fn sized(ns: &str) -> (String, String) {
    let out = cluster().kubectl(&[
        "get",
        "prometheus",
        "automon",
        "-n",
        ns,
        "-o",
        "jsonpath={.metadata.annotations.automon\\.io/sized-for-nodes} {.spec.resources.requests.memory}",
    ]);
    let mut parts = out.stdout.split_whitespace().map(String::from);
    (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    )
}

#[test]
fn the_loop_sizes_the_stack_up_when_the_cluster_grows_and_down_after_it_shrinks() {
    const NS: &str = "rc-sizing";
    let _ns = Cleanup::fresh(NS);
    let nodes_now = cluster()
        .kubectl(&["get", "nodes", "-o", "name"])
        .stdout
        .lines()
        .count();
    assert!(
        nodes_now <= 10,
        "a small cluster to start from: {nodes_now} nodes"
    );
    enable(NS, &[]).success();
    assert_eq!(sized(NS), ("50".to_string(), "1Gi".to_string()));
    let mut l = ReconcileLoop::start(NS, "rc-sizing-loop", &["--class-grace", "3s"]);
    l.wait_for_log("acquired", 30);

    // Past 50 nodes: sized for up to 100, once for the whole burst.
    let names: Vec<String> = (0..48).map(|i| format!("rc-size-{i}")).collect();
    let grown = KwokNodes::create(names.iter().map(|n| kwok_node(n)).collect());
    // Five seconds after the crossing, and up to a minute more while a joined node still
    // waits for its exporter (the joins' Events go first).
    eventually(150, "Prometheus sized for up to 100 nodes", || {
        sized(NS).0 == "100"
    });
    let (_, memory) = sized(NS);
    assert_ne!(memory, "1Gi", "the memory request grew");
    l.wait_for_log("reconcile: sized for up to 100 nodes (was 50)", 30);
    let history = run(automon_admin().args(["history", "-n", NS])).success();
    assert!(
        history
            .stdout
            .contains("reconcile: sized for up to 100 nodes (was 50)"),
        "{}",
        history.stdout
    );
    assert_eq!(
        history.stdout.matches("reconcile: sized for").count(),
        1,
        "one resize for the burst:\n{}",
        history.stdout
    );
    // enable agrees with the loop: nothing to change.
    let again = enable(NS, &[]).success();
    assert!(again.stdout.contains("Nothing to do."), "{again:#?}");

    // Back to a small cluster: sized down after the grace period.
    drop(grown);
    l.wait_for_log("sized down to up to 50", 60);
    eventually(60, "Prometheus sized for up to 50 nodes again", || {
        sized(NS) == ("50".to_string(), "1Gi".to_string())
    });
}
