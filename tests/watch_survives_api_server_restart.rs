//! The loop survives the API server going away: stopped for 15 seconds right after ten nodes
//! joined (before their exporters were judged), started again; once the controller-manager has
//! an exporter Ready on each of the ten, each gets its ExporterReady Event within a minute, and
//! the loop kept running throughout. Its own test binary:
//! nothing else may run while the API server is down; named to sort last, as cargo runs test
//! binaries in name order, so that no other binary runs on a control plane just restarted.

mod common;

use std::time::Duration;

use common::{
    Cleanup, KwokNodes, ReconcileLoop, cluster, enable, get_json, kwok_node, localcluster,
    node_events, poll, write_list,
};

/// type, reason, node, related, note
type Event = (String, String, String, String, String);

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
    // Shorter than the node controller's grace period (50 s) less kwok's time to renew its
    // leases after the restart: past it, the controller marks the nodes NotReady and their
    // pods not Ready, which kwok (unlike a kubelet) never marks Ready again.
    std::thread::sleep(Duration::from_secs(15));
    localcluster(&["apiserver", "start"]).success();

    // The exporters on the ten nodes are the controller-manager's and kwok's to bring back:
    // the DaemonSet controller's retries of what failed during the outage back off, so on a busy
    // machine they may take minutes. Waited for first, so that the loop is timed on its own.
    // A pod the node controller marked not Ready while kwok's leases were late keeps its
    // containers ready and its Ready condition False: a kubelet would report it Ready again,
    // kwok does not, so the test does the kubelet's part and deletes it (the DaemonSet makes
    // another, which kwok runs Ready).
    let exporters = || {
        let pods = get_json(&["get", "pods", "-n", NS]);
        let items = pods["items"].as_array().cloned().unwrap_or_default();
        let mut up = 0;
        for p in items {
            let on = p["spec"]["nodeName"].as_str().unwrap_or_default();
            if !names.iter().any(|n| n == on) {
                continue;
            }
            let ready = p["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            let containers_ready = p["status"]["containerStatuses"]
                .as_array()
                .is_some_and(|c| !c.is_empty() && c.iter().all(|c| c["ready"] == true));
            if ready {
                up += 1;
            } else if containers_ready && p["metadata"]["deletionTimestamp"].is_null() {
                let name = p["metadata"]["name"].as_str().unwrap_or_default();
                cluster().kubectl(&["delete", "pod", "-n", NS, name, "--wait=false"]);
            }
        }
        up
    };
    let up = poll(300, exporters, |n| *n == 10);
    assert_eq!(
        up,
        10,
        "not within 300s of the restart: an exporter Ready on each of the 10 nodes (the controller-manager's and kwok's work: a pod Running but not Ready was marked so by the node controller, and kwok does not mark it Ready again); the pods:\n{}",
        cluster()
            .kubectl(&["get", "pods", "-n", NS, "-o", "wide"])
            .stdout
    );

    // The nodes with an ExporterReady Event: a node whose exporter pod was made again (above)
    // may rightly have two, one for each pod.
    let ready = |events: &Vec<Event>| {
        events
            .iter()
            .filter(|e| e.1 == "ExporterReady" && names.contains(&e.2))
            .map(|e| e.2.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    let events = poll(60, || node_events(&l.identity), |e| ready(e) == 10);
    let log = l.log();
    assert_eq!(
        ready(&events),
        10,
        "not within 60s of the exporters being Ready: an ExporterReady Event on each of the 10 nodes; the Events:\n{events:#?}\nthe pods:\n{}\nthe loop:\n{log}",
        cluster()
            .kubectl(&["get", "pods", "-n", NS, "-o", "wide"])
            .stdout
    );
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
