//! `enable` as a user runs it, against the local cluster with the real prometheus-operator:
//! the whole stack installed and reconciled, a second run that changes nothing, the limited
//! user stopped before any write, a foreign field manager's conflict, and an API server that
//! goes away in the middle.

mod common;

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use common::*;

#[test]
fn enable_installs_the_stack_and_the_operator_reconciles_it() {
    let ns = "automon-enable-full";
    let _cleanup = Cleanup::fresh(ns);
    let c = cluster();
    operator_start();
    // It watches every namespace: stop it after this test so that no later test meets it.
    let _operator = OperatorStop;

    // The CRDs as the local cluster's operator build gives them: applied, then waited for.
    // (Not as an earlier run sent them: those would be identical, and not sent again.)
    c.kubectl(&["annotate", "crd", "--all", "automon.io/applied-sha256-"]);
    let crds = c.crds_dir();
    let out = enable(
        ns,
        &[
            "--wait",
            "--timeout",
            "3m",
            "--crds-from",
            crds.to_str().unwrap(),
        ],
    )
    .success();
    assert_has(&out.stdout, "CRDs      established in");
    assert_has(&out.stdout, &format!("namespace/{ns} created"));
    assert_has(&out.stdout, "daemonset.apps/node-exporter created");
    assert_has(&out.stdout, "Done");

    // The operator generated the configuration: one scrape job per ServiceMonitor. It writes
    // it as it reconciles, which goes on after the workloads --wait waits for are ready: give
    // it the time a user would.
    let monitors = get_json(&["get", "servicemonitors", "-n", ns]);
    let monitors: Vec<String> = monitors["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert!(monitors.len() >= 5, "{monitors:?}");
    let missing = |config: &str| -> Vec<String> {
        monitors
            .iter()
            .filter(|name| !config.contains(&format!("job_name: serviceMonitor/{ns}/{name}/")))
            .cloned()
            .collect()
    };
    let config = poll(
        60,
        || generated_config(ns, "automon"),
        |c| missing(c).is_empty(),
    );
    assert!(
        missing(&config).is_empty(),
        "no scrape job for ServiceMonitors {:?}:\n{config}",
        missing(&config)
    );
    // ...and every alert in the rule files it mounts, which it also writes as it reconciles
    // (a PrometheusRule it has not seen yet is not in them): the same patience.
    let alerts = [
        "NodeDown",
        "HighCPUUsage",
        "HighMemoryUsage",
        "DiskSpaceLow",
        "NodeExporterDown",
        "NodeNotReady",
        "NodeFilesystemFillingUp",
        "NodeMonitoringCoverageGap",
        "KubeStateMetricsDown",
        "Watchdog",
    ];
    let absent = |text: &str| -> Vec<&str> {
        alerts
            .iter()
            .filter(|alert| !text.contains(&format!("alert: {alert}")))
            .copied()
            .collect()
    };
    let text = poll(60, || rule_files(ns, "automon"), |t| absent(t).is_empty());
    assert!(
        absent(&text).is_empty(),
        "alerts {:?} missing from the rule files the operator mounts",
        absent(&text)
    );
    // node-exporter runs on every node.
    let ds = get_json(&["get", "daemonset", "-n", ns, "node-exporter"]);
    let nodes = c
        .kubectl(&["get", "nodes", "-o", "name"])
        .stdout
        .lines()
        .count() as i64;
    assert!(
        ds["status"]["numberReady"].as_i64().unwrap() >= nodes.min(3),
        "{ds}"
    );

    // A second enable changes nothing and says so.
    let again = enable(ns, &[]).success();
    assert_has(&again.stdout, "Nothing to do");
    assert_lacks(&again.stdout, " created");
    assert_lacks(&again.stdout, " configured");
}

#[test]
fn limited_user_gets_every_missing_permission_and_nothing_is_created() {
    let ns = "automon-enable-limited";
    let c = cluster();
    let out = run(automon()
        .args(["enable", "-n", ns])
        .args(port_for(ns))
        .env("KUBECONFIG", &c.limited_kubeconfig));
    assert_eq!(out.code, 6, "{out:#?}");
    let text = format!("{}{}", out.stdout, out.stderr);
    // One line per resource and place, its verbs first.
    for (verb, resource) in [
        ("create", "namespaces"),
        ("create", "daemonsets.apps"),
        ("create", "clusterroles.rbac.authorization.k8s.io"),
        ("create", "prometheuses.monitoring.coreos.com"),
    ] {
        let listed = text.lines().any(|l| {
            l.split_whitespace().any(|w| w == resource) && l.contains(&format!("{verb},"))
                || l.split_whitespace().any(|w| w == resource) && l.contains(&format!(" {verb} "))
        });
        assert!(listed, "{verb} {resource} not listed:\n{text}");
    }
    assert!(!exists(&["namespace", ns]), "the namespace was created");
}

#[test]
fn foreign_field_manager_conflict_stops_the_apply() {
    let ns = "automon-enable-conflict";
    let _cleanup = Cleanup::fresh(ns);
    let c = cluster();
    enable(ns, &[]).success();
    // Another tool takes over a field automon sets.
    let patch = c.kubectl(&[
        "patch",
        "deployment",
        "grafana",
        "-n",
        ns,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"replicas":2}}"#,
        "--field-manager",
        "helm",
    ]);
    assert_eq!(patch.code, 0, "{patch:#?}");
    let out = enable(ns, &[]);
    assert_eq!(out.code, 7, "{out:#?}");
    assert_has(&out.stderr, "deployment.apps/grafana");
    assert_has(&out.stderr, ".spec.replicas");
    assert_has(&out.stderr, "\"helm\"");
    assert_has(&out.stderr, "--force-conflicts");

    let forced = enable(ns, &["--force-conflicts"]).success();
    assert_has(&forced.stdout, "deployment.apps/grafana configured");
    let d = get_json(&["get", "deployment", "-n", ns, "grafana"]);
    assert_eq!(d["spec"]["replicas"], 1);
}

/// A TCP proxy to the API server that stops answering (holds connections, forwards nothing)
/// once the client has sent `budget` bytes: the API server "goes away" mid-enable.
fn failing_proxy(upstream: String, budget: usize) -> (u16, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sent = Arc::new(AtomicUsize::new(0));
    let dead = Arc::new(AtomicBool::new(false));
    let dead_flag = dead.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let (sent, dead) = (sent.clone(), dead_flag.clone());
            let (mut c_read, mut s_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut s_read, mut c_write) = (server, client);
            let up_dead = dead.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(n) = c_read.read(&mut buf) {
                    if n == 0 || up_dead.load(Ordering::SeqCst) {
                        break;
                    }
                    if sent.fetch_add(n, Ordering::SeqCst) + n > budget {
                        up_dead.store(true, Ordering::SeqCst);
                        break;
                    }
                    if s_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                // Hold the connection open and silent, as a hung server does.
                while !c_read.read(&mut buf).map(|n| n == 0).unwrap_or(true) {}
            });
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(n) = s_read.read(&mut buf) {
                    if n == 0
                        || dead.load(Ordering::SeqCst)
                        || c_write.write_all(&buf[..n]).is_err()
                    {
                        break;
                    }
                }
            });
        }
    });
    (port, dead)
}

#[test]
fn api_server_lost_mid_enable_then_the_next_enable_converges() {
    let ns = "automon-enable-outage";
    let _cleanup = Cleanup::fresh(ns);
    let c = cluster();
    // The CRDs are the cluster's (as `enable` below expects), whichever test ran first.
    c.ensure_crds();
    let upstream = c.server.trim_start_matches("https://").to_string();
    // Past preflight and the first phases, inside the stack phase (the render alone is ~150 KB).
    let (port, dead) = failing_proxy(upstream, 60_000);
    let (_d, kc) = c.kubeconfig_to(port);
    let started = Instant::now();
    let out = run(automon()
        .args(["enable", "-n", ns, "--request-timeout", "3s"])
        .args(port_for(ns))
        .arg("--kubeconfig")
        .arg(&kc));
    assert!(
        dead.load(Ordering::SeqCst),
        "the proxy never cut the connection: {out:#?}"
    );
    assert_eq!(out.code, 4, "{out:#?}");
    assert_has(&out.stderr, &format!("https://127.0.0.1:{port}"));
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    // Part of the stack is there: the namespace came first.
    assert!(exists(&["namespace", ns]));

    let out = enable(ns, &[]).success();
    assert!(
        out.stdout.contains(" created"),
        "the rest was created: {}",
        out.stdout
    );
    let again = enable(ns, &[]).success();
    assert!(again.stdout.contains("Nothing to do"), "{}", again.stdout);
}

#[test]
fn enable_then_disable_leaves_nothing_of_automon() {
    let ns = "automon-enable-disable";
    let _cleanup = Cleanup::fresh(ns);
    let c = cluster();
    enable(ns, &[]).success();
    let parent = get_json(&["get", "configmap", "-n", ns, "automon"]);
    let id = parent["metadata"]["labels"]["applyset.kubernetes.io/id"]
        .as_str()
        .unwrap()
        .to_string();

    let out = run(automon_admin().args(["disable", "-n", ns, "--yes"])).success();
    assert!(out.stdout.contains("deleted"), "{}", out.stdout);

    // No member of this ApplySet anywhere, namespaced or cluster-scoped.
    let selector = format!("applyset.kubernetes.io/part-of={id}");
    let kinds = "deployments,daemonsets,services,configmaps,secrets,serviceaccounts,networkpolicies,\
                 roles,rolebindings,servicemonitors,prometheusrules,prometheuses,alertmanagers";
    let left = c.kubectl(&["get", kinds, "-A", "-l", &selector, "-o", "name"]);
    assert_eq!(left.code, 0, "{left:#?}");
    assert!(
        left.stdout.trim().is_empty(),
        "left behind:\n{}",
        left.stdout
    );
    let cluster_left = c.kubectl(&[
        "get",
        "clusterroles,clusterrolebindings",
        "-l",
        &selector,
        "-o",
        "name",
    ]);
    assert!(
        cluster_left.stdout.trim().is_empty(),
        "left behind:\n{}",
        cluster_left.stdout
    );
    // The namespace goes too (no data was kept: Prometheus used an emptyDir).
    eventually(60, &format!("namespace {ns} gone"), || {
        !exists(&["namespace", ns])
    });
    // The CRDs stay: other stacks' custom resources use them.
    assert!(exists(&["crd", "prometheuses.monitoring.coreos.com"]));
}

#[test]
fn dry_runs_change_nothing_and_say_what_would_change() {
    let ns = "automon-enable-dryrun";
    let _cleanup = Cleanup::fresh(ns);
    // A fresh namespace: the server cannot dry-run what would live in it; enable says so.
    let out = enable(ns, &["--dry-run=server"]).success();
    assert_has(&out.stderr, "does not exist yet");
    assert_has(
        &out.stdout,
        &format!("namespace/{ns} created (server dry run)"),
    );
    let out = enable(ns, &["--dry-run"]).success();
    assert_has(
        &out.stdout,
        "daemonset.apps/node-exporter created (dry run)",
    );
    assert!(
        !exists(&["namespace", ns]),
        "a dry run created the namespace"
    );

    enable(ns, &[]).success();
    let out = enable(
        ns,
        &["--dry-run=server", "--set", "prometheus.retention=30d"],
    )
    .success();
    assert_has(
        &out.stdout,
        "prometheus.monitoring.coreos.com/automon configured (server dry run)",
    );
    assert_has(&out.stdout, "grafana unchanged (server dry run)");
    let p = get_json(&["get", "prometheus", "-n", ns, "automon"]);
    assert_eq!(
        p["spec"]["retention"], "15d",
        "the dry run changed the cluster"
    );
}

/// Without `-f`, a later enable starts from the configuration the last one stored, so a
/// `--set` (the fixes `doctor` prints) changes one key and keeps the others; `-f` replaces it.
#[test]
fn a_set_changes_one_key_of_the_stored_configuration() {
    let ns = "automon-enable-stored";
    let _cleanup = Cleanup::fresh(ns);
    let stored = || {
        let cm = get_json(&["get", "configmap", "automon", "-n", ns]);
        cm["data"]["config.yaml"].as_str().unwrap().to_string()
    };
    enable(ns, &["--set", "prometheus.retention=3d"]).success();
    // (enable() adds this test's own nodeExporter.port: two --set.)
    let out = enable(ns, &["--set", "nodeExporter.tolerations=none"]).success();
    assert_has(
        &out.stdout,
        &format!("Config    the values stored in ConfigMap {ns}/automon, changed by 2 --set"),
    );
    let text = stored();
    assert!(text.contains("retention: 3d"), "{text}");
    assert!(text.contains("tolerations: none"), "{text}");
    // Nothing changed since: diff agrees with enable about the configuration.
    run(automon_admin().args(["diff", "-n", ns]).args(port_for(ns))).code(0);
    let (_dir, empty) = write_temp("defaults.yaml", "");
    enable(ns, &["-f", empty.to_str().unwrap()]).success();
    // The file is the whole set of values: the stored ones are gone, defaults are not stored.
    let text = stored();
    assert!(
        !text.contains("retention") && !text.contains("tolerations"),
        "{text}"
    );
    let p = get_json(&["get", "prometheus", "-n", ns, "automon"]);
    assert_eq!(p["spec"]["retention"], "15d");
}

/// The parent stores what the user gave, never the defaults (so a newer plugin's defaults
/// reach the stack), a later enable keeps it, `history --revision N` shows each revision's,
/// and a parent v0.1.0 wrote (its whole configuration) upgrades to the one value it changed.
#[test]
fn the_parent_stores_the_users_values_and_upgrades_v0_1_0s() {
    let ns = "automon-enable-values";
    // The retention change replaces the Prometheus pod, which enable lends a second replica
    // first: the operator must run to make it until the test ends (another test of this binary
    // may have started it, and stops it when it ends: not while this one needs it).
    let _operator = operator_needed();
    let _cleanup = Cleanup::fresh(ns);
    let version = env!("CARGO_PKG_VERSION");
    let port = node_exporter_port(ns);
    let stored = || {
        let cm = get_json(&["get", "configmap", "automon", "-n", ns]);
        cm["data"]["config.yaml"].as_str().unwrap().to_string()
    };
    let retention =
        || get_json(&["get", "prometheus", "-n", ns, "automon"])["spec"]["retention"].clone();
    let history = |args: &[&str]| run(automon_admin().args(["history", "-n", ns]).args(args));

    // (enable() gives each test's stack its own nodeExporter.port: a value too.)
    let out = enable(ns, &["--set", "prometheus.retention=30d"]).success();
    assert_has(
        &out.stdout,
        &format!(
            "Values    2 of yours differ from v{version}'s defaults: nodeExporter.port={port} (default 9100), prometheus.retention=30d (default 15d)"
        ),
    );
    let first =
        format!("namespace: {ns}\nnodeExporter:\n  port: {port}\nprometheus:\n  retention: 30d\n");
    assert_eq!(stored(), first);

    // Without -f, the stored values are the base: a --set adds to them.
    let out = run(automon_admin().args([
        "enable",
        "-n",
        ns,
        "--set",
        "alerts.highCpu.thresholdPercent=90",
    ]))
    .success();
    assert_has(
        &out.stdout,
        &format!("Config    the values stored in ConfigMap {ns}/automon, changed by 1 --set"),
    );
    let second = format!("alerts:\n  highCpu:\n    thresholdPercent: 90\n{first}");
    assert_eq!(stored(), second);
    assert_eq!(retention(), "30d");
    // A run that changes nothing keeps them and records nothing.
    run(automon_admin().args(["enable", "-n", ns])).success();
    assert_eq!(stored(), second);

    // history: the list, and each revision's values, as `helm get values --revision N`.
    let list = history(&["-o", "json"]).success();
    let revisions: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(revisions.as_array().unwrap().len(), 2, "{}", list.stdout);
    assert_eq!(history(&["--revision", "1"]).success().stdout, first);
    assert_eq!(history(&["--revision", "2"]).success().stdout, second);
    let json: serde_json::Value =
        serde_json::from_str(&history(&["--revision", "2", "-o", "json"]).success().stdout)
            .unwrap();
    assert_eq!(json["alerts"]["highCpu"]["thresholdPercent"], 90);
    let missing = history(&["--revision", "9"]).code(1);
    assert_has(&missing.stderr, "revision 9 does not exist");

    // The parent as v0.1.0 left it: its whole configuration (v0.1.0's defaults, recorded in
    // the source) with one value changed, the stack's namespace and port, v0.1.0's tooling;
    // applied as v0.1.0 applied it.
    let defaults =
        std::fs::read_to_string(repo_root().join("src/config/defaults/v0.1.0.yaml")).unwrap();
    let full: String = defaults
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    for default in ["namespace: automon\n", "port: 9100\n", "retention: 15d\n"] {
        assert!(full.contains(default), "{default} in {full}");
    }
    let full = full
        .replace("namespace: automon\n", &format!("namespace: {ns}\n"))
        .replace("port: 9100\n", &format!("port: {port}\n"))
        .replace("retention: 15d\n", "retention: 7d\n");
    parent_written_by(ns, "v0.1.0", Some(&full));
    assert_eq!(stored(), full);

    // The current plugin recognises the one value (and the port) and stores only those.
    let out = run(automon_admin().args(["enable", "-n", ns])).success();
    assert_has(
        &out.stdout,
        &format!(
            "Values    recognised 2 values of yours in the configuration v0.1.0 stored; the rest were v0.1.0's defaults and now follow v{version}'s"
        ),
    );
    assert_has(&out.stdout, "prometheus.retention=7d (default 15d)");
    let upgraded =
        format!("namespace: {ns}\nnodeExporter:\n  port: {port}\nprometheus:\n  retention: 7d\n");
    assert_eq!(stored(), upgraded);
    assert_eq!(retention(), "7d");
    // The highCpu threshold the v0.1.0 configuration did not change is the default again.
    let rules = cluster()
        .kubectl(&[
            "get",
            "prometheusrule",
            "-n",
            ns,
            "node-alerts",
            "-o",
            "yaml",
        ])
        .success()
        .stdout;
    assert!(rules.contains("> 80") && !rules.contains("> 90"), "{rules}");
    let parent = get_json(&["get", "configmap", "automon", "-n", ns]);
    assert_eq!(
        parent["metadata"]["annotations"]["applyset.kubernetes.io/tooling"],
        format!("kubectl-automon/v{version}").as_str()
    );
    // history records the upgrade with its values; the next enable says nothing of v0.1.0.
    assert_eq!(history(&["--revision", "3"]).success().stdout, upgraded);
    let out = run(automon_admin().args(["enable", "-n", ns])).success();
    assert!(!out.stdout.contains("v0.1.0"), "{}", out.stdout);
    assert_eq!(stored(), upgraded);
}
