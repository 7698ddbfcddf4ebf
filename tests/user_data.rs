//! Never lose what the user had, never report success for work half done: the three defects a
//! new user hit, each replayed as that user did. A namespace that was there before `enable`
//! (with the user's ConfigMap in it) survives `disable`; `enable | head -1` finishes its work and
//! records its revision; a `kubectl scale` of a managed Deployment is drift the loop restores,
//! and `enable` after it succeeds.

mod common;

use std::{
    io::{BufRead, BufReader},
    process::Stdio,
    time::Duration,
};

use common::*;

#[test]
fn disable_keeps_a_namespace_that_was_there_before_and_what_is_in_it() {
    let ns = "automon-team-a";
    let _cleanup = Cleanup::fresh(ns);
    let c = cluster();
    c.kubectl(&["create", "namespace", ns]);
    c.kubectl(&[
        "create",
        "configmap",
        "app-config",
        "-n",
        ns,
        "--from-literal=greeting=hello",
    ]);

    // A server dry run and the real run both say the namespace is configured, not created,
    // and which labels go on it and why.
    let dry = enable(ns, &["--dry-run=server"]).success();
    assert_has(
        &dry.stdout,
        &format!("namespace/{ns} configured (server dry run)"),
    );
    let out = enable(ns, &[]).success();
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("namespace/{ns} ")))
        .unwrap_or_default()
        .to_string();
    assert!(
        line.starts_with(&format!("namespace/{ns} configured (it was there before")),
        "{}",
        out.stdout
    );
    assert!(
        line.contains("pod-security.kubernetes.io/enforce=privileged"),
        "{line}"
    );
    assert_eq!(
        get_json(&["get", "namespace", ns])
            .pointer("/metadata/labels/pod-security.kubernetes.io~1enforce"),
        Some(&serde_json::json!("privileged"))
    );
    // Not an ApplySet member: nothing that prunes the ApplySet can take it.
    let labels = get_json(&["get", "namespace", ns])["metadata"]["labels"].clone();
    assert!(
        labels.get("applyset.kubernetes.io/part-of").is_none(),
        "{labels}"
    );
    // A second run changes nothing and says so.
    let again = enable(ns, &[]).success();
    assert_has(&again.stdout, &format!("namespace/{ns} unchanged"));

    // The confirmation-free disable keeps the namespace and the user's ConfigMap, and takes
    // back the labels it added.
    let gone = run(automon_admin().args(["disable", "-n", ns, "--yes"])).success();
    assert_lacks(&gone.stdout, &format!("namespace \"{ns}\" deleted"));
    assert!(
        gone.stderr.contains(&format!(
            "kept namespace \"{ns}\": it was there before automon"
        )),
        "{gone:#?}"
    );
    assert!(
        exists(&["configmap", "app-config", "-n", ns]),
        "the user's ConfigMap is gone"
    );
    let namespace = get_json(&["get", "namespace", ns]);
    assert!(namespace["metadata"]["deletionTimestamp"].is_null());
    let labels = namespace["metadata"]["labels"].clone();
    assert!(
        labels.get("pod-security.kubernetes.io/enforce").is_none(),
        "automon's label stayed: {labels}"
    );
}

#[test]
fn disable_keeps_its_own_namespace_while_it_holds_what_automon_did_not_create() {
    let ns = "automon-shared-ns";
    let _cleanup = Cleanup::fresh(ns);
    let c = cluster();
    let out = enable(ns, &[]).success();
    assert_has(&out.stdout, &format!("namespace/{ns} created"));
    // Someone puts their own ConfigMap into automon's namespace.
    c.kubectl(&[
        "create",
        "configmap",
        "notes",
        "-n",
        ns,
        "--from-literal=a=b",
    ]);
    let gone = run(automon_admin().args(["disable", "-n", ns, "--yes"])).success();
    assert!(
        gone.stderr.contains(&format!(
            "kept namespace \"{ns}\": it holds 1 object that automon did not create (configmap \"notes\")"
        )),
        "{gone:#?}"
    );
    assert!(
        exists(&["configmap", "notes", "-n", ns]),
        "the ConfigMap must survive"
    );
}

#[test]
fn a_closed_stdout_never_leaves_enable_half_done() {
    let ns = "automon-pipe";
    let _cleanup = Cleanup::fresh(ns);
    enable(ns, &[]).success();
    let revisions_before = history_json(ns).len();

    // `enable --set prometheus.retention=7d 2>&1 | head -1`: stdout and stderr are one pipe
    // whose reader leaves after the first line.
    let mut child = automon_admin()
        .args(["enable", "-n", ns])
        .args(port_for(ns))
        .args(["--set", "prometheus.retention=7d"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start enable");
    {
        let mut first = String::new();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        reader.read_line(&mut first).unwrap();
        assert!(!first.is_empty());
        // The reader goes away, as `head -1` does.
    }
    let status = child.wait().unwrap();
    // It finished: the Prometheus has the new retention, and the revision is recorded (a
    // command that stopped half-way would have to exit non-zero instead).
    assert!(status.success(), "enable exited {status}");
    let retention =
        get_json(&["get", "prometheus", "automon", "-n", ns])["spec"]["retention"].clone();
    assert_eq!(retention, serde_json::json!("7d"));
    assert_eq!(history_json(ns).len(), revisions_before + 1);
    // And nothing is pending.
    run(automon_admin().args(["diff", "-n", ns]).args(port_for(ns))).code(0);
}

#[test]
fn a_scale_is_drift_the_loop_restores_and_enable_after_it_succeeds() {
    let ns = "automon-scaled";
    let _cleanup = Cleanup::fresh(ns);
    let c = cluster();
    enable(ns, &[]).success();

    let mut lp = ReconcileLoop::start(ns, "automon-scaled-loop", &[]);

    c.kubectl(&["scale", "deployment", "grafana", "-n", ns, "--replicas=2"]);
    eventually(30, "the loop restored the replicas", || {
        lp.log()
            .contains("deployment.apps/grafana changed by kubectl")
            && get_json(&["get", "deployment", "grafana", "-n", ns])["spec"]["replicas"]
                == serde_json::json!(1)
    });
    // SIGTERM, as a user's Ctrl-C: the loop releases its Lease, so the one pass below leads.
    lp.terminate();
    let log = lp.log();
    assert!(log.contains("spec.replicas"), "{log}");
    assert!(log.contains("restored"), "{log}");

    // enable after it: no conflict over .spec.replicas.
    enable(ns, &[]).success();

    // A one-pass reconcile sees it too.
    c.kubectl(&["scale", "deployment", "grafana", "-n", ns, "--replicas=3"]);
    std::thread::sleep(Duration::from_millis(500));
    let once = run(automon_admin().args(["reconcile", "-n", ns]));
    assert!(
        once.stderr.contains("spec.replicas") || once.stdout.contains("spec.replicas"),
        "{once:#?}"
    );
    eventually(20, "the one pass restored the replicas", || {
        get_json(&["get", "deployment", "grafana", "-n", ns])["spec"]["replicas"]
            == serde_json::json!(1)
    });
    enable(ns, &[]).success();
}
