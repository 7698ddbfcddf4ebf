//! `status` as a user runs it, each situation built for real on the local cluster: a healthy
//! stack with the real prometheus-operator, kwok nodes with an untolerated NoExecute taint, a
//! Windows label or the exclusion label, exporter pods crashing or unable to pull, PodSecurity
//! `restricted` refusing the DaemonSet's pods, host port taken by another exporter, a real
//! Prometheus at `--prometheus-url`, a namespace with nothing installed, `--watch` in a pipe,
//! the table folded on a cluster of more than 20 nodes, and the same verdicts through a proxy
//! that speaks plain JSON only.
//!
//! Other test binaries share the cluster and add nodes of their own at the same time: every
//! test asserts about its own namespace and nodes only, never about cluster-wide totals.

mod common;

use std::{path::Path, sync::OnceLock, thread, time::Duration};

use serde_json::{Value, json};

use common::*;

// ---------------------------------------------------------------------------------------------
// Tests in this binary that add nodes run side by side (`nodes_shared`); a test whose verdict
// every node in the cluster counts towards (a healthy stack, a quiet `--watch`) or whose nodes
// change every stack's verdict (a Windows node, more than 20 nodes) runs `nodes_alone`.

/// A stack made by the first test that needs it and kept for the others, however they are
/// scheduled; removed when the test binary exits.
fn shared(
    slot: &'static OnceLock<&'static str>,
    ns: &'static str,
    make: impl FnOnce(),
) -> &'static str {
    slot.get_or_init(|| {
        Cleanup::until_exit(ns);
        make();
        ns
    })
}

/// The whole stack, ready, with the real operator reconciling it: started unless it runs
/// already (and then stopped when the binary exits), and started again should another test
/// binary stop it before the stack is ready.
fn healthy_stack() -> &'static str {
    static SLOT: OnceLock<&'static str> = OnceLock::new();
    shared(&SLOT, "st-healthy", || {
        cluster().ensure_crds();
        enable("st-healthy", &[]).success();
        until("every component of st-healthy ready", || {
            ensure_operator();
            let (out, st) = status_json("st-healthy", &[]);
            let components = st["components"].as_array().cloned().unwrap_or_default();
            // node-exporter's readiness depends on every node, other tests' too.
            let ready = components
                .iter()
                .filter(|c| c["name"] != "node-exporter")
                .all(|c| c["healthy"] == true);
            if ready && components.len() == 6 {
                Ok(())
            } else {
                Err(format!("{out:#?}"))
            }
        });
        // The real Prometheus, Alertmanager and node_exporter answer for the stack's pods.
        let served = serve("st-healthy");
        at_exit(move || drop(served));
    })
}

/// The name of the `Prometheus` pod the operator made in `ns` (started if need be).
fn prometheus_pod(ns: &str) -> String {
    until(&format!("the operator's Prometheus pod in {ns}"), || {
        ensure_operator();
        pod_of(ns, "prometheus").ok_or_else(|| "not yet".to_string())
    })
}

/// A stack whose node-exporter tolerates no taint, for the per-node situations.
fn strict_stack() -> &'static str {
    static SLOT: OnceLock<&'static str> = OnceLock::new();
    shared(&SLOT, "st-strict", || {
        cluster().ensure_crds();
        enable("st-strict", &["--set", "nodeExporter.tolerations=none"]).success();
    })
}

/// The strict stack, with nodes of the test's own beside other tests' nodes.
fn strict_with(
    nodes: Vec<Value>,
) -> (
    &'static str,
    std::sync::RwLockReadGuard<'static, ()>,
    KwokNodes,
) {
    let ns = strict_stack();
    let sharing = nodes_shared();
    (ns, sharing, KwokNodes::create(nodes))
}

// ---------------------------------------------------------------------------------------------

fn status(ns: &str, extra: &[&str]) -> Run {
    run(automon_admin().args(["status", "-n", ns]).args(extra))
}

/// `status -o json` (with `extra`) until `done` holds of it.
#[track_caller]
fn json_until(ns: &str, extra: &[&str], what: &str, done: impl Fn(&Value) -> bool) -> Value {
    until(what, || {
        let (out, json) = status_json(ns, extra);
        if done(&json) {
            Ok(json)
        } else {
            Err(format!("{out:#?}"))
        }
    })
}

/// The human table (with `extra`) until `done` holds of it.
#[track_caller]
fn table_until(ns: &str, extra: &[&str], what: &str, done: impl Fn(&Run) -> bool) -> Run {
    until(what, || {
        let out = status(ns, extra);
        if done(&out) {
            Ok(out)
        } else {
            Err(format!("{out:#?}"))
        }
    })
}

fn node<'a>(st: &'a Value, name: &str) -> &'a Value {
    status_node(st, name)
}

/// The table row whose first column is `first`.
#[track_caller]
fn row<'a>(text: &'a str, first: &str) -> &'a str {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(first))
        .unwrap_or_else(|| panic!("no row {first}:\n{text}"))
}

/// The columns of the table row whose first column is `first`.
#[track_caller]
fn columns<'a>(text: &'a str, first: &str) -> Vec<&'a str> {
    row(text, first).split_whitespace().collect()
}

/// The exporter on `name` runs and is ready (the stack's DaemonSet put it there).
fn exporter_running(st: &Value, name: &str) -> bool {
    node(st, name)["exporter"]["state"] == "Running"
}

fn exporter_pod(st: &Value, name: &str) -> String {
    node(st, name)["exporter"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("no exporter pod on {name}: {}", node(st, name)))
        .to_string()
}

const IMAGE: &str = "quay.io/prometheus/node-exporter:v1.12.1";

/// Reports the exporter pod's container as waiting for `reason`, the way a kubelet would
/// (kwok leaves a pod's status alone once it has an IP): the pod is not ready.
fn report_waiting(ns: &str, pod: &str, reason: &str, message: &str, restarts: i32) {
    let mut container = json!({
        "name": "node-exporter", "image": IMAGE, "imageID": "", "ready": false,
        "restartCount": restarts,
        "state": {"waiting": {"reason": reason, "message": message}},
    });
    if restarts > 0 {
        container["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error"}});
    }
    let status = json!({
        "conditions": [
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
            {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady"},
            {"type": "PodScheduled", "status": "True"},
        ],
        "containerStatuses": [container],
    });
    cluster()
        .kubectl(&[
            "patch",
            "pod",
            pod,
            "-n",
            ns,
            "--subresource=status",
            "--type=merge",
            "-p",
            &json!({ "status": status }).to_string(),
        ])
        .success();
}

/// A node's verdict in JSON and in its table row, for a node not monitored: the reason has
/// every one of `parts` (the whole of it, where it is fixed; its fixed parts, where it names a
/// pod the DaemonSet controller generated or counts the cluster's nodes).
#[track_caller]
fn assert_not_monitored(st: &Value, table: &Run, name: &str, cause: &str, parts: &[&str]) {
    let n = node(st, name);
    assert_eq!(n["coverage"], "notMonitored", "{n}");
    assert_eq!(n["cause"], cause, "{n}");
    let reason = n["reason"].as_str().unwrap_or_default();
    for part in parts {
        assert!(reason.contains(part), "{name}'s reason lacks {part:?}: {n}");
    }
    assert_eq!(st["health"], "Degraded", "{st}");
    assert_eq!(table.code, 8, "degraded:\n{table:#?}");
    let row = row(&table.stdout, name);
    for part in parts {
        assert!(
            row.contains(part),
            "{name}'s row lacks {part:?}:\n{}",
            table.stdout
        );
    }
    assert!(
        table.stdout.contains("Degraded: ") && table.stdout.contains("kubectl automon doctor"),
        "{}",
        table.stdout
    );
}

/// The exit status says what the last line says: 0 for "Healthy." (or "Healthy stack; 2 alerts
/// firing …": alerts about the cluster), 10 for "Unverified: …" (Prometheus did not answer), 8
/// for "Degraded: …".
#[track_caller]
fn exits_as_it_says(out: Run) -> Run {
    let last = out
        .stdout
        .trim_end()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    let code = if last == "Healthy." || last.starts_with("Healthy stack; ") {
        0
    } else if last.starts_with("Unverified: ") {
        10
    } else {
        8
    };
    out.code(code)
}

/// Waits until `status` says `name` is not monitored for `reason` (a fixed one), in JSON and
/// in the table, and checks both.
#[track_caller]
fn verdict(ns: &str, name: &str, cause: &str, reason: &str) -> (Value, Run) {
    let st = json_until(ns, &[], reason, |st| node(st, name)["reason"] == reason);
    let table = table_with(ns, name, &[reason]);
    assert_not_monitored(&st, &table, name, cause, &[reason]);
    assert!(
        row(&table.stdout, name).ends_with(reason),
        "{}",
        table.stdout
    );
    (st, table)
}

/// The table as it is once `name`'s row has every one of `parts`.
#[track_caller]
fn table_with(ns: &str, name: &str, parts: &[&str]) -> Run {
    table_until(ns, &[], &format!("{name}: {parts:?}"), |out| {
        out.stdout
            .lines()
            .any(|l| l.starts_with(&format!("{name} ")) && parts.iter().all(|p| l.contains(p)))
    })
}

// ---------------------------------------------------------------------------------------------

#[test]
fn a_healthy_stack_is_healthy_when_prometheus_says_so_and_unverified_when_it_cannot() {
    let ns = healthy_stack();
    let _alone = nodes_alone();

    let st = json_until(ns, &[], "a healthy stack, every node scraped", |st| {
        st["health"] == "Healthy"
            && st["nodes"].as_array().is_some_and(|nodes| {
                nodes
                    .iter()
                    .all(|n| n["coverage"] == "excluded" || n["scrape"]["health"] == "up")
            })
    });
    let names: Vec<&str> = st["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "prometheus-operator",
            "prometheus",
            "alertmanager",
            "grafana",
            "kube-state-metrics",
            "node-exporter"
        ]
    );
    for c in st["components"].as_array().unwrap() {
        assert_eq!(c["healthy"], true, "{c}");
        assert_eq!(c["ready"], c["desired"], "{c}");
        assert!(c["version"].as_str().is_some_and(|v| !v.is_empty()), "{c}");
        assert!(c.get("message").is_none(), "{c}");
    }
    assert_eq!(st["problems"], json!([]));
    let s = &st["summary"];
    assert_eq!(s["notMonitored"], 0, "{s}");
    assert_eq!(
        s["monitored"].as_u64().unwrap() + s["excluded"].as_u64().unwrap(),
        s["nodes"].as_u64().unwrap(),
        "{s}"
    );
    for n in st["nodes"].as_array().unwrap() {
        assert!(
            n["coverage"] == "monitored" || n["coverage"] == "excluded",
            "{n}"
        );
    }
    // The real Prometheus answered through the API server's service proxy (the egress proxy
    // joins the pod's IP to it on loopback): it scrapes the real node_exporter for every node,
    // has loaded the stack's own rules from its PrometheusRules, and Watchdog fires.
    let p = &st["prometheus"];
    assert_eq!(p["reachable"], true, "{st}");
    assert_eq!(
        p["via"],
        format!("service {ns}/prometheus:web through the API server"),
        "{st}"
    );
    assert_eq!(st["unknown"], json!([]), "{st}");
    assert_eq!(p["rulesLoaded"]["alerts"], st["rules"]["alerts"], "{st}");
    assert_eq!(p["rulesLoaded"]["groups"], st["rules"]["groups"], "{st}");
    assert!(
        p["firing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "Watchdog"),
        "{st}"
    );
    assert_eq!(p["targets"]["down"], 0, "{st}");

    let out = table_until(ns, &[], "exit 0", |out| out.code == 0);
    let text = &out.stdout;
    for (name, kind) in [
        ("prometheus-operator", "Deployment"),
        ("prometheus", "Prometheus"),
        ("alertmanager", "Alertmanager"),
        ("grafana", "Deployment"),
        ("kube-state-metrics", "Deployment"),
    ] {
        let cols = columns(text, name);
        assert_eq!(cols[1], kind, "{text}");
        assert_eq!(cols[2], "1/1", "{text}");
        assert!(cols[3].starts_with('v') || cols[3].contains('.'), "{text}");
        assert_eq!(cols[5], "Healthy", "{text}");
    }
    let cols = columns(text, "node-exporter");
    let (ready, desired) = cols[2].split_once('/').unwrap();
    assert_eq!(ready, desired, "{text}");
    assert_eq!(cols[5], "Healthy", "{text}");

    // Every node is listed (up to 20; more fold, see below), each with a running exporter.
    let summary = text
        .lines()
        .find(|l| l.contains(" nodes monitored"))
        .unwrap_or_else(|| panic!("no summary line:\n{text}"));
    let (monitored, rest) = summary.split_once('/').unwrap();
    let nodes: usize = rest.split_whitespace().next().unwrap().parse().unwrap();
    let monitored: usize = monitored.parse().unwrap();
    let node_rows: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("NODE "))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    if nodes <= 20 {
        assert_eq!(node_rows.len(), nodes, "{text}");
    }
    for r in &node_rows {
        let cols: Vec<&str> = r.split_whitespace().collect();
        assert_eq!(cols[1], "True", "{text}");
        if !r.contains("excluded by label") {
            assert_eq!(cols[3], "Running", "{text}");
            // SCRAPE: "up 3s", what Prometheus says of the node's target.
            assert_eq!(cols[4], "up", "{text}");
            assert!(cols[5].ends_with('s'), "{text}");
        }
    }
    if monitored == nodes {
        assert!(summary.starts_with(&format!("{nodes}/{nodes} nodes monitored ·")));
    } else {
        let excluded = nodes - monitored;
        assert!(
            summary.contains(&format!("({excluded} excluded)")),
            "{summary}"
        );
    }
    assert!(
        text.contains("Scrape targets: ") && text.contains(" up, 0 down"),
        "{text}"
    );
    assert!(!text.contains("did not answer"), "{text}");
    assert!(text.trim_end().ends_with("\nHealthy."), "{text}");

    // The same stack with a Prometheus that does not answer is never called healthy: what the
    // API server shows is fine, what only Prometheus knows is unknown (exit 10).
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let flag = ["--prometheus-url", nowhere.as_str()];
    let (out, st) = status_json(ns, &flag);
    assert_eq!(out.code, 10, "{out:#?}");
    assert_eq!(st["health"], "Unverified", "{st}");
    assert_eq!(st["problems"], json!([]), "{st}");
    let unknown = st["unknown"][0].as_str().unwrap();
    assert!(
        unknown.starts_with(&format!(
            "scrape health and firing alerts (Prometheus did not answer at {nowhere}: "
        )),
        "{st}"
    );
    let out = status(ns, &flag).code(10);
    let last = out.stdout.trim_end().lines().last().unwrap();
    assert!(
        last.starts_with(
            "Unverified: nothing wrong as far as the API server shows; unknown: scrape health and firing alerts"
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn an_untolerated_noexecute_taint_is_named() {
    let gpu = tainted("st-taint-1", "nvidia.com/gpu", "present", "NoExecute");
    let (ns, _sharing, _nodes) = strict_with(vec![gpu]);
    let reason = "taint nvidia.com/gpu=present:NoExecute not tolerated";

    let (st, table) = verdict(ns, "st-taint-1", "taint", reason);
    let n = node(&st, "st-taint-1");
    assert_eq!(n["exporter"], Value::Null, "{n}");
    assert_eq!(n["ready"], "True", "{n}");
    let cols = columns(&table.stdout, "st-taint-1");
    assert_eq!(cols[1..4], ["True", "linux/amd64", "—"], "{}", table.stdout);
}

#[test]
fn a_windows_node_is_not_served_by_node_exporter() {
    let ns = strict_stack();
    // A Windows node is a gap for every stack in the cluster, the healthy one's too.
    let _alone = nodes_alone();
    let _nodes = KwokNodes::create(vec![windows_node("st-windows-1")]);
    // The stack was enabled before the Windows node joined: no windows-exporter yet.
    let reason = &format!(
        "node-exporter does not run on windows nodes (Windows nodes need windows-exporter: `kubectl automon enable -n {ns}` or `kubectl automon reconcile -n {ns}` adds it)"
    );

    let (st, table) = verdict(ns, "st-windows-1", "unsupportedOs", reason);
    assert_eq!(node(&st, "st-windows-1")["os"], "windows");
    let cols = columns(&table.stdout, "st-windows-1");
    assert_eq!(cols[2], "windows/amd64", "{}", table.stdout);
}

#[test]
fn an_excluded_node_is_counted_apart_and_the_stack_stays_healthy() {
    let ns = healthy_stack();
    let _alone = nodes_alone();
    let infra = labelled("st-excluded-1", "automon.io/exclude", "true");
    let _nodes = KwokNodes::create(vec![infra]);
    let reason = "excluded by label automon.io/exclude=true";

    let st = json_until(ns, &[], "healthy, st-excluded-1 excluded", |st| {
        st["health"] == "Healthy" && node(st, "st-excluded-1")["coverage"] == "excluded"
    });
    let n = node(&st, "st-excluded-1");
    assert_eq!(n["cause"], "excluded", "{n}");
    assert_eq!(n["reason"], reason, "{n}");
    assert_eq!(n["exporter"], Value::Null, "{n}");
    let s = &st["summary"];
    assert!(s["excluded"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(s["notMonitored"], 0, "{s}");
    // node-exporter's READY counts the nodes it should cover: the excluded ones are not.
    let ne = st["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "node-exporter")
        .unwrap();
    assert_eq!(
        ne["desired"].as_u64().unwrap(),
        s["nodes"].as_u64().unwrap() - s["excluded"].as_u64().unwrap(),
        "{ne}"
    );
    assert_eq!(ne["healthy"], true, "{ne}");

    let table = table_until(ns, &[], "exit 0 with st-excluded-1", |out| {
        out.code == 0 && out.stdout.contains("st-excluded-1")
    });
    assert!(
        row(&table.stdout, "st-excluded-1").ends_with(reason),
        "{}",
        table.stdout
    );
    let table = table.stdout_has(" excluded) · ");
    assert!(
        table.stdout.trim_end().ends_with("\nHealthy."),
        "{}",
        table.stdout
    );
}

#[test]
fn a_crashing_or_unpullable_exporter_names_its_pod() {
    let (ns, _sharing, _nodes) = strict_with(vec![kwok_node("st-crash-1"), kwok_node("st-pull-1")]);
    let st = json_until(ns, &[], "exporters on st-crash-1 and st-pull-1", |st| {
        exporter_running(st, "st-crash-1") && exporter_running(st, "st-pull-1")
    });
    let (crash, pull) = (
        exporter_pod(&st, "st-crash-1"),
        exporter_pod(&st, "st-pull-1"),
    );
    let back_off = format!("back-off 2m40s restarting failed container=node-exporter pod={crash}");
    report_waiting(ns, &crash, "CrashLoopBackOff", &back_off, 4);
    let pulling = format!("Back-off pulling image \"{IMAGE}\"");
    report_waiting(ns, &pull, "ImagePullBackOff", &pulling, 0);

    let crash_reason = format!("exporter pod {crash} CrashLoopBackOff: {back_off}");
    let pull_reason = format!("exporter pod {pull} ImagePullBackOff: {pulling}");
    let st = json_until(ns, &[], "both pods' states", |st| {
        node(st, "st-crash-1")["reason"] == crash_reason.as_str()
            && node(st, "st-pull-1")["reason"] == pull_reason.as_str()
    });
    let table = table_with(ns, "st-pull-1", &[&pull_reason]);
    for (name, state, reason, restarts) in [
        ("st-crash-1", "CrashLoopBackOff", &crash_reason, 4),
        ("st-pull-1", "ImagePullBackOff", &pull_reason, 0),
    ] {
        assert_not_monitored(&st, &table, name, "podNotReady", &[reason]);
        let e = &node(&st, name)["exporter"];
        assert_eq!(e["state"], state, "{e}");
        assert_eq!(e["ready"], false, "{e}");
        assert_eq!(e["restarts"], restarts, "{e}");
        let cols = columns(&table.stdout, name);
        assert_eq!(cols[3], state, "{}", table.stdout);
    }
    // Through a proxy that speaks plain JSON only (no Table of the exporter's pods, no nodes
    // as protobuf), status reads the lists whole and says the same of every node.
    let c = cluster();
    let dir = tempfile::tempdir().unwrap();
    let (_proxy, kubeconfig, log) =
        c.rules_review_proxy(dir.path(), &c.kubeconfig, &["--json-only"]);
    let (_, proxied) = status_json(ns, &["--kubeconfig", kubeconfig.to_str().unwrap()]);
    // What Prometheus last scraped may move between the two runs; the rest may not.
    let verdicts = |st: &Value| {
        ["st-crash-1", "st-pull-1"].map(|name| {
            let mut n = node(st, name).clone();
            n.as_object_mut().map(|n| n.remove("scrape"));
            n
        })
    };
    assert_eq!(
        verdicts(&proxied),
        verdicts(&st),
        "through the JSON-only proxy:\n{proxied:#}"
    );
    let asked = std::fs::read_to_string(&log).unwrap();
    assert!(asked.contains("GET /api/v1/nodes?"), "{asked}");
    assert!(asked.contains("includeObject=None"), "{asked}");

    // -o wide names the pod and counts its restarts.
    let wide = status(ns, &["-o", "wide"]).code(8);
    let cols = columns(&wide.stdout, "st-crash-1");
    assert_eq!(
        cols[3..6],
        ["CrashLoopBackOff", crash.as_str(), "4"],
        "{}",
        wide.stdout
    );
}

#[test]
fn podsecurity_restricted_refuses_the_exporter_pod() {
    let ns = "st-psa";
    let _cleanup = Cleanup::fresh(ns);
    let _sharing = nodes_shared();
    cluster().ensure_crds();
    enable(ns, &[]).success();
    // Someone tightens the namespace after the install: the pods that run stay, new ones
    // are refused.
    cluster()
        .kubectl(&[
            "label",
            "namespace",
            ns,
            "pod-security.kubernetes.io/enforce=restricted",
            "--overwrite",
        ])
        .success();
    let _nodes = KwokNodes::create(vec![kwok_node("st-psa-1")]);

    let st = json_until(ns, &[], "st-psa-1 refused", |st| {
        node(st, "st-psa-1")["cause"] == "creationRefused"
    });
    // The DaemonSet controller tries again with a new pod name each time: the fixed parts.
    let parts = [
        "pod creation refused: pods \"node-exporter-",
        "\" is forbidden: violates PodSecurity \"restricted:latest\": host namespaces (hostNetwork=true, hostPID=true)",
    ];
    let table = table_with(ns, "st-psa-1", &parts);
    assert_not_monitored(&st, &table, "st-psa-1", "creationRefused", &parts);
    let reason = node(&st, "st-psa-1")["reason"].as_str().unwrap();
    assert!(reason.starts_with(parts[0]), "{reason}");
}

#[test]
fn a_host_port_taken_by_another_exporter_keeps_the_pod_pending() {
    // The node is held back from this stack (which tolerates no taint) until the other
    // exporter runs on it, as on a node that had one before automon came.
    let held = tainted("st-port-1", "st-test/hold", "1", "NoSchedule");
    let (ns, _sharing, _nodes) = strict_with(vec![held]);

    // Another stack's node-exporter on the same port, as critical as ours (a less critical
    // pod would be preempted by the DaemonSet's system-node-critical one).
    let squatter_ns = "st-port-squatter";
    let _squatter = Cleanup::created(squatter_ns);
    let c = cluster();
    let port = node_exporter_port(ns);
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "other-node-exporter", "namespace": squatter_ns},
        "spec": {
            "nodeName": "st-port-1",
            "priorityClassName": "system-node-critical",
            "containers": [{"name": "node-exporter", "image": IMAGE,
                "ports": [{"containerPort": port, "hostPort": port}]}],
        },
    });
    let (_d, file) = write_temp("pod.json", &pod.to_string());
    c.kubectl(&["create", "-f", file.to_str().unwrap()])
        .success();
    c.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "-n",
        squatter_ns,
        "pod/other-node-exporter",
        "--timeout=60s",
    ])
    .success();
    c.kubectl(&["taint", "node", "st-port-1", "st-test/hold-"])
        .success();

    let st = json_until(ns, &[], "our exporter pending on st-port-1", |st| {
        let n = node(st, "st-port-1");
        n["exporter"]["state"] == "Pending"
            && n["reason"]
                .as_str()
                .is_some_and(|r| r.contains("didn't have free ports"))
    });
    let pod = exporter_pod(&st, "st-port-1");
    let pending = format!("exporter pod {pod} Pending: 0/");
    let parts = [
        pending.as_str(),
        "didn't have free ports for the requested pod ports",
    ];
    let table = table_with(ns, "st-port-1", &parts);
    assert_not_monitored(&st, &table, "st-port-1", "podNotReady", &parts);
    let cols = columns(&table.stdout, "st-port-1");
    assert_eq!(cols[3], "Pending", "{}", table.stdout);
}

#[test]
fn a_real_prometheus_through_the_api_server_tells_scrapes_failures_and_firing_alerts() {
    let (ns, _sharing, _nodes) = strict_with(vec![kwok_node("st-prom-1"), kwok_node("st-prom-2")]);
    json_until(ns, &[], "exporters on st-prom-1 and st-prom-2", |st| {
        exporter_running(st, "st-prom-1") && exporter_running(st, "st-prom-2")
    });
    // Nothing answers for the stack's Prometheus pod yet: status says why, and never "Healthy".
    let pod = prometheus_pod(ns);
    let (out, st) = status_json(ns, &[]);
    assert_eq!(st["prometheus"]["reachable"], false, "{out:#?}");
    assert_ne!(st["health"], "Healthy", "{st}");
    assert!(!st["unknown"][0].as_str().unwrap().is_empty(), "{st}");

    // A real node_exporter scraped by a real Prometheus as the node-exporter job, for
    // st-prom-1 only; a job whose target refuses; an alert that always fires, about that node.
    let dir = tempfile::tempdir().unwrap();
    let (prometheus_port, refused_port) = (free_port(), free_port());
    let (mut exporter, exporter_log, exporter_port) = spawn_node_exporter(dir.path());
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
         rule_files: [rules.yaml]\n\
         scrape_configs:\n\
         \x20 - job_name: node-exporter\n\
         \x20   static_configs:\n\
         \x20     - targets: ['127.0.0.1:{exporter_port}']\n\
         \x20       labels: {{node: st-prom-1}}\n\
         \x20 - job_name: broken\n\
         \x20   static_configs:\n\
         \x20     - targets: ['127.0.0.1:{refused_port}']\n"
    );
    std::fs::write(dir.path().join("prometheus.yaml"), config).unwrap();
    std::fs::write(
        dir.path().join("rules.yaml"),
        "groups:\n  - name: status-test\n    rules:\n      - alert: StatusTestAlwaysFiring\n        \
         expr: vector(1)\n        labels: {severity: warning, node: st-prom-1}\n        \
         annotations: {summary: Fires always}\n",
    )
    .unwrap();
    let (mut prometheus, prometheus_log) = spawn_prometheus(
        &built_tool("prometheus", "prometheus"),
        dir.path(),
        prometheus_port,
    );
    // The API server reaches it as the stack's Prometheus pod, through its service proxy.
    let exposed = expose(ns, &pod, 9090, prometheus_port);

    let st = until("Prometheus scrapes st-prom-1 and the alert fires", || {
        exporter.assert_running(&exporter_log);
        prometheus.assert_running(&prometheus_log);
        let (out, st) = status_json(ns, &[]);
        let firing = st["prometheus"]["firing"]
            .as_array()
            .is_some_and(|f| f.iter().any(|a| a["name"] == "StatusTestAlwaysFiring"));
        let up = node(&st, "st-prom-1")["scrape"]["health"] == "up";
        let down = st["prometheus"]["targets"]["down"] == 1;
        if firing && up && down {
            Ok(st)
        } else {
            Err(format!("{out:#?}"))
        }
    });
    let p = &st["prometheus"];
    assert_eq!(p["reachable"], true, "{p}");
    assert_eq!(
        p["via"],
        format!("service {ns}/prometheus:web through the API server"),
        "{p}"
    );
    assert_eq!(
        p["firing"],
        json!([{"name": "StatusTestAlwaysFiring", "severity": "warning", "node": "st-prom-1",
            "summary": "Fires always", "activeAt": p["firing"][0]["activeAt"]}]),
        "{p}"
    );
    assert_eq!(p["rulesLoaded"], json!({"groups": 1, "alerts": 1}), "{p}");
    // Its head series, beside the estimate for a cluster of this size.
    let head = p["headSeries"].as_u64().expect("the head's series");
    assert!(head > 0, "{p}");
    let z = &st["sizing"];
    assert_eq!(z["headSeries"], head, "{z}");
    assert_eq!(z["sizedFor"], 50, "{z}");
    assert_eq!(z["shards"], 1, "{z}");
    assert!(z["estimatedSeries"].as_u64().unwrap() > 200_000, "{z}");
    let table = status(ns, &[]);
    let line = table
        .stdout
        .lines()
        .find(|l| l.starts_with("Sizing:    "))
        .unwrap_or_else(|| panic!("no Sizing line:\n{}", table.stdout));
    assert!(line.contains(", sized for up to 50: ~"), "{line}");
    assert!(line.contains(" in Prometheus' head"), "{line}");
    assert_eq!(p["targets"]["up"], 1, "{p}");
    let refused = &p["targets"]["unhealthy"][0];
    assert_eq!(refused["job"], "broken", "{p}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{p}"
    );
    assert!(
        st["problems"]
            .as_array()
            .unwrap()
            .contains(&json!("1 scrape target down (job broken)")),
        "{st}"
    );
    let scraped = node(&st, "st-prom-1");
    assert_eq!(scraped["coverage"], "monitored", "{scraped}");
    assert!(scraped["scrape"]["lastScrapeSeconds"].as_f64().unwrap() < 30.0);
    let reason = "exporter runs but Prometheus has no scrape target for it";
    let unscraped = node(&st, "st-prom-2");
    assert_eq!(unscraped["scrape"]["health"], "missing", "{unscraped}");

    let table = table_until(ns, &[], "the firing alert listed", |out| {
        out.stdout.contains("StatusTestAlwaysFiring")
    });
    assert_not_monitored(&st, &table, "st-prom-2", "noScrapeTarget", &[reason]);
    let cols = columns(&table.stdout, "st-prom-2");
    assert_eq!(cols[3..6], ["Running", "no", "target"], "{}", table.stdout);
    let alert = columns(&table.stdout, "StatusTestAlwaysFiring");
    assert_eq!(
        alert[1..],
        ["warning", "st-prom-1", "Fires", "always"],
        "{}",
        table.stdout
    );
    for needle in [
        "1 rule group (1 alert) loaded, 1 firing",
        "Scrape targets: 1 up, 1 down",
    ] {
        assert!(table.stdout.contains(needle), "{needle}:\n{}", table.stdout);
    }
    assert!(!table.stdout.contains("did not answer"), "{}", table.stdout);
    // A scraped node is monitored, so a large cluster folds it: -o wide lists it always.
    let wide = status(ns, &["-o", "wide"]).code(8);
    let cols = columns(&wide.stdout, "st-prom-1");
    assert_eq!(cols[3], "Running", "{}", wide.stdout);
    assert_eq!(cols[6], "up", "{}", wide.stdout);
    assert!(cols[7].ends_with('s'), "an age: {}", wide.stdout);

    // doctor reads the same answer: the failing target, with Prometheus' own error.
    let doctor = run(automon_admin().args(["doctor", "-n", ns, "-o", "json"])).code(8);
    let report: Value = serde_json::from_str(&doctor.stdout).unwrap();
    let scrapes = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "scrapes")
        .unwrap_or_else(|| panic!("no scrapes check: {report}"));
    assert_eq!(scrapes["level"], "fail", "{scrapes}");
    let message = scrapes["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("broken 127.0.0.1:{refused_port}"))
            && message.contains("connection refused"),
        "{scrapes}"
    );

    // A Prometheus that answers 500, then one that never answers: status says which, bounded
    // by --request-timeout, and never calls the stack healthy.
    let failing = fake_http_server(Some(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 6\r\nConnection: close\r\n\r\nbroken",
    ));
    let exposed = exposed.to(9090, failing);
    let st = json_until(ns, &[], "the 500 reported", |st| {
        st["prometheus"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("500"))
    });
    assert_eq!(st["prometheus"]["reachable"], false, "{st}");
    assert_ne!(st["health"], "Healthy", "{st}");
    let hanging = fake_http_server(None);
    let _exposed = exposed.to(9090, hanging);
    let st = json_until(
        ns,
        &["--request-timeout", "2s"],
        "the silence reported",
        |st| st["prometheus"]["error"] == "no answer within 2s",
    );
    assert!(
        st["unknown"][0].as_str().unwrap().ends_with(&format!(
            ": no answer within 2s; `kubectl automon doctor -n {ns}` tells more)"
        )),
        "{st}"
    );
    // No pod at all behind the Service (the Prometheus scaled to none): the API server's 503.
    patch_prometheus(ns, r#"{"spec":{"replicas":0}}"#);
    let st = json_until(ns, &[], "no endpoints reported", |st| {
        st["prometheus"]["error"]
            == "503 Service Unavailable: no ready Prometheus pod behind the Service"
    });
    // The API server's own words, for a bug report, in the JSON only.
    assert!(
        st["prometheus"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no endpoints available")),
        "{st}"
    );
    assert_ne!(st["health"], "Healthy", "{st}");

    // --prometheus-url asks that Prometheus directly, with the same answer.
    let url = format!("http://127.0.0.1:{prometheus_port}");
    let (_, direct) = status_json(ns, &["--prometheus-url", &url]);
    assert_eq!(direct["prometheus"]["via"], url.as_str(), "{direct}");
    assert_eq!(direct["prometheus"]["reachable"], true, "{direct}");

    // Nothing listens there: status says so, and still tells everything else.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    exits_as_it_says(status(ns, &["--prometheus-url", &nowhere]))
        .stdout_has(&format!("Prometheus did not answer at {nowhere}: "))
        .stdout_has("COMPONENT ")
        .stdout_has("NODE ");
    let (_, st) = status_json(ns, &["--prometheus-url", &nowhere]);
    assert_eq!(st["prometheus"]["reachable"], false);
    assert!(!st["prometheus"]["error"].as_str().unwrap().is_empty());
    // Unasked, Prometheus has no word on coverage: the exporter running is what counts.
    assert_eq!(node(&st, "st-prom-2")["coverage"], "monitored");
    assert_eq!(node(&st, "st-prom-2")["scrape"], Value::Null);
}

#[test]
fn nothing_installed_says_how_to_install() {
    let ns = "st-empty";
    let _cleanup = Cleanup::created(ns);
    let out = status(ns, &[])
        .code(9)
        .stderr_has("Install it with: kubectl automon enable -n st-empty");
    assert_eq!(
        out.stdout.trim(),
        "automon is not installed in namespace st-empty."
    );
    let (out, st) = status_json(ns, &[]);
    assert_eq!(out.code, 9, "{out:#?}");
    assert_eq!(st["health"], "NotInstalled");
    assert!(
        st["problems"][0]
            .as_str()
            .unwrap()
            .contains("kubectl automon enable -n st-empty"),
        "{st}"
    );
    // A namespace that does not exist at all is the same answer.
    status("st-nowhere", &[]).code(9);
}

/// The tables `--watch` drew so far, each with what only the clock changes (AGE, seconds
/// since a scrape) blanked out.
fn renderings(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let clock = |w: &str| {
        w.starts_with(|c: char| c.is_ascii_digit())
            && w.ends_with(['s', 'm', 'h', 'd'])
            && w.chars().all(|c| c.is_ascii_digit() || "smhd".contains(c))
    };
    text.split("COMPONENT ")
        .skip(1)
        .map(|r| {
            r.lines()
                .map(|l| {
                    l.split_whitespace()
                        .map(|w| if clock(w) { "<age>" } else { w })
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

#[test]
fn watch_draws_again_only_on_a_change() {
    let ns = healthy_stack();
    let _alone = nodes_alone();
    let _nodes = KwokNodes::create(vec![kwok_node("st-watch-1")]);
    json_until(ns, &[], "an exporter on st-watch-1", |st| {
        exporter_running(st, "st-watch-1")
    });
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("watch.log");
    let mut child = Process::spawn(
        "status --watch",
        automon_admin().args(["status", "-n", ns, "--watch", "--interval", "1s"]),
        &log,
    );
    // Three looks or more in 3.5 seconds: drawn once, unless something changed (another test
    // binary may add or remove a node meanwhile); never twice the same.
    thread::sleep(Duration::from_millis(3500));
    child.assert_running(&log);
    let drawn = renderings(&log);
    assert!(!drawn.is_empty(), "nothing drawn");
    for pair in drawn.windows(2) {
        assert_ne!(
            pair[0],
            pair[1],
            "drawn again without a change:\n{}",
            std::fs::read_to_string(&log).unwrap()
        );
    }

    cluster()
        .kubectl(&["label", "node", "st-watch-1", "automon.io/exclude=true"])
        .success();
    until("drawn again with st-watch-1 excluded", || {
        child.assert_running(&log);
        let now = renderings(&log);
        match now.last() {
            Some(last)
                if now.len() > drawn.len()
                    && last.contains("excluded by label automon.io/exclude=true") =>
            {
                Ok(())
            }
            _ => Err(std::fs::read_to_string(&log).unwrap()),
        }
    });
}

#[test]
fn more_than_twenty_nodes_fold_the_monitored_ones() {
    let ns = healthy_stack();
    let _alone = nodes_alone();
    let names: Vec<String> = (0..22).map(|i| format!("st-fold-{i:02}")).collect();
    let _nodes = KwokNodes::create(names.iter().map(|n| kwok_node(n)).collect());
    // Running, and scraped: the stack's Prometheus (the real one) finds each new exporter.
    let st = json_until(ns, &[], "every st-fold node monitored", |st| {
        names.iter().all(|n| node(st, n)["coverage"] == "monitored")
    });

    let out = table_until(ns, &[], "folded", |out| {
        out.stdout.contains("monitored nodes not listed")
    });
    let out = exits_as_it_says(out);
    assert_lacks(&out.stdout, "st-fold-");
    let fold = out
        .stdout
        .lines()
        .find(|l| l.ends_with(" monitored nodes not listed (-o wide lists every node)"))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    let hidden: usize = fold.split_whitespace().next().unwrap().parse().unwrap();
    assert!(hidden >= names.len(), "{fold}");
    // Whatever the table lists (other tests' nodes, if any need attention), it is the
    // narrow one.
    if let Some(header) = out.stdout.lines().find(|l| l.starts_with("NODE ")) {
        assert!(!header.contains(" POD "), "{}", out.stdout);
    }

    let wide = exits_as_it_says(status(ns, &["-o", "wide"]));
    let header = row(&wide.stdout, "NODE");
    assert!(
        header.contains(" POD ") && header.contains(" RESTARTS "),
        "{header}"
    );
    assert_lacks(&wide.stdout, "not listed");
    for n in &names {
        let cols = columns(&wide.stdout, n);
        let pod = exporter_pod(&st, n);
        assert_eq!(
            cols[1..6],
            ["True", "linux/amd64", "Running", pod.as_str(), "0"],
            "{}",
            wide.stdout
        );
    }
}
