//! The loop survives the API server going away: stopped for 30 seconds right after ten nodes
//! joined (before their exporters were judged), started again; every one of the ten gets its
//! ExporterReady Event afterwards, and the loop kept running throughout. Its own test binary:
//! nothing else may run while the API server is down; named to sort last, as cargo runs test
//! binaries in name order, so that no other binary runs on a control plane just restarted.

mod common;

use std::time::Duration;

use common::{
    Cleanup, KwokNodes, ReconcileLoop, cluster, enable, eventually, kwok_node, localcluster,
    node_events, write_list,
};

#[test]
fn ten_nodes_joining_across_an_api_server_restart_all_get_their_events() {
    const NS: &str = "rc-outage";
    let _ns = Cleanup::fresh(NS);
    enable(NS, &[]).success();
    // An identity of this run only: Events outlive a run (an hour) and are counted by identity.
    let id = format!("rc-outage-loop-{}", std::process::id());
    let mut l = ReconcileLoop::start(NS, &id, &[]);
    l.wait_for_log("acquired", 30);

    let names: Vec<String> = (0..10).map(|i| format!("rc-outage-{i}")).collect();
    // Deleted when the test ends, whatever happened (created here without waiting for Ready:
    // the API server goes away at once).
    let _guard = KwokNodes(names.clone());
    let nodes: Vec<_> = names.iter().map(|n| kwok_node(n)).collect();
    let (_dir, file) = write_list("nodes.json", &nodes);
    cluster()
        .kubectl(&["create", "--validate=false", "-f", file.to_str().unwrap()])
        .success();
    localcluster(&["apiserver", "stop"]).success();
    std::thread::sleep(Duration::from_secs(30));
    localcluster(&["apiserver", "start"]).success();

    eventually(120, "10 ExporterReady Events after the restart", || {
        node_events(&l.identity)
            .iter()
            .filter(|e| e.1 == "ExporterReady" && names.contains(&e.2))
            .count()
            == 10
    });
    let log = l.log();
    assert!(
        log.contains("every watch starts again with backoff"),
        "{log}"
    );
    assert!(log.contains("watches resumed after"), "{log}");
    assert!(
        l.child.try_wait().unwrap().is_none(),
        "the loop ended:\n{log}"
    );
    let (code, _) = l.terminate();
    assert_eq!(code, 0, "{}", l.log());
}
