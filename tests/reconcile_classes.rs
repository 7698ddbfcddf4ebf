//! Node classes through the loop, on the local cluster: the first Windows node brings
//! windows-exporter (its DaemonSet, scrape object, rules and dashboard) and is monitored by it
//! in `status`; the last Windows node leaving takes them away after the grace period. The same
//! for a GPU node and dcgm-exporter. Its own test binary: every stack in the cluster would
//! follow a Windows node, and two windows-exporters cannot share a node's port.

mod common;

use common::{
    Cleanup, KwokNodes, ReconcileLoop, automon_admin, enable, eventually, exists, labelled,
    node_events, run, status_json, windows_node,
};

#[test]
fn windows_and_gpu_nodes_bring_their_exporters_and_take_them_away() {
    const NS: &str = "rc-classes";
    let _ns = Cleanup::fresh(NS);
    enable(NS, &[]).success();
    assert!(!exists(&["-n", NS, "daemonset/windows-exporter"]));
    let mut l = ReconcileLoop::start(NS, "rc-classes-loop", &["--class-grace", "3s"]);
    l.wait_for_log("acquired", 30);

    // Windows.
    let win = KwokNodes::create(vec![windows_node("rc-win-0")]);
    eventually(60, "windows-exporter deployed", || {
        exists(&["-n", NS, "daemonset/windows-exporter"])
            && exists(&[
                "-n",
                NS,
                "servicemonitor.monitoring.coreos.com/windows-exporter",
            ])
            && exists(&[
                "-n",
                NS,
                "prometheusrule.monitoring.coreos.com/windows-alerts",
            ])
            && exists(&["-n", NS, "configmap/grafana-dashboard-windows-node-detail"])
    });
    l.wait_for_log("Revision  ", 30);
    eventually(60, "ExporterReady on the Windows node", || {
        node_events(&l.identity).iter().any(|e| {
            e.1 == "ExporterReady" && e.2 == "rc-win-0" && e.3.starts_with("windows-exporter-")
        })
    });
    let (_, st) = status_json(NS, &[]);
    let node = st["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "rc-win-0")
        .unwrap();
    assert_eq!(node["coverage"], "monitored", "{node}");
    assert!(
        node["exporter"]["name"]
            .as_str()
            .unwrap()
            .starts_with("windows-exporter-"),
        "{node}"
    );
    // A second enable agrees with the loop: nothing to change.
    let again = enable(NS, &[]).success();
    assert!(again.stdout.contains("Nothing to do."), "{again:#?}");

    drop(win);
    eventually(
        60,
        "windows-exporter removed after the grace period",
        || {
            !exists(&["-n", NS, "daemonset/windows-exporter"])
                && !exists(&[
                    "-n",
                    NS,
                    "servicemonitor.monitoring.coreos.com/windows-exporter",
                ])
        },
    );
    l.wait_for_log("the last of the Windows nodes left", 10);

    // GPU.
    let gpu = KwokNodes::create(vec![labelled("rc-gpu-0", "nvidia.com/gpu.present", "true")]);
    eventually(60, "dcgm-exporter deployed", || {
        exists(&["-n", NS, "daemonset/dcgm-exporter"])
            && exists(&[
                "-n",
                NS,
                "servicemonitor.monitoring.coreos.com/dcgm-exporter",
            ])
            && exists(&["-n", NS, "prometheusrule.monitoring.coreos.com/gpu-alerts"])
    });
    drop(gpu);
    eventually(60, "dcgm-exporter removed after the grace period", || {
        !exists(&["-n", NS, "daemonset/dcgm-exporter"])
    });
    // The revision is recorded once the prune is done.
    let history = || run(automon_admin().args(["history", "-n", NS])).success();
    eventually(30, "the last revision recorded", || {
        history()
            .stdout
            .contains("reconcile: the last of the GPU nodes left")
    });
    let history = history();
    for change in [
        "reconcile: Windows nodes joined",
        "reconcile: the last of the Windows nodes left",
        "reconcile: GPU nodes joined",
        "reconcile: the last of the GPU nodes left",
    ] {
        assert!(
            history.stdout.contains(change),
            "{change}:\n{}",
            history.stdout
        );
    }
    let (code, _) = l.terminate();
    assert_eq!(code, 0, "{}", l.log());
}
