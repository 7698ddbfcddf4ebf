//! Every fix `doctor` and `status` print names what is really involved, and works. For a stack
//! of its own and for one beside kube-prometheus-stack (the real chart, installed by the real
//! `helm install`, whose operator, Prometheus and node-exporter the stack reuses), each scenario
//! breaks what the checks look at: a node the exporter does not tolerate, a Windows node, a
//! node the chart's exporter keeps off, PodSecurity that refuses the exporter, another pod on
//! its port, a component that cannot start, selectors that miss, alerts routed to no one, CRDs
//! behind the operator, leftovers of other stacks, an older plugin's install, a Prometheus that
//! does not answer, or answers with targets missing and down. Then every `kubectl …` command
//! `doctor` and `status` print, as text and as JSON, runs exactly as printed against the
//! cluster (one that would change something with `--dry-run=server` added), and must succeed
//! and find what it names.
//!
//! A binary of its own: the chart's operator, CRDs and webhooks are cluster-wide news. Run it
//! alone on the shared cluster (`flock /tmp/automon-test.lock`); it leaves nothing behind.

mod common;
mod doctor_support;

use std::{
    collections::BTreeSet,
    io::{BufReader, Write},
    net::TcpListener,
    path::Path,
    process::{Command, Stdio},
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use common::*;
use doctor_support::*;
use serde_json::{Value, json};

/// The two scenarios change what `enable` finds in the cluster: one at a time.
static ALONE: Mutex<()> = Mutex::new(());

// ---- Commands as printed ------------------------------------------------------------------

/// Every `kubectl …` command in `text`: from `kubectl` to the end of its shell words (quotes
/// kept whole), ending where prose ends a command: at a word ending in `;`, `,`, a backtick or
/// `)` (`` `…`) `` too), before `&&`, `or`, `then` or a word in parentheses, and at the end of
/// the line.
fn commands_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut rest = line;
        while let Some(at) = command_start(rest) {
            let (command, after) = command_at(&rest[at..]);
            out.push(command);
            rest = after;
        }
    }
    out
}

/// Where `kubectl ` starts a command in `s` (not inside a word such as `kubectl-automon`).
fn command_start(s: &str) -> Option<usize> {
    s.match_indices("kubectl ").map(|(i, _)| i).find(|&i| {
        s[..i]
            .chars()
            .last()
            .is_none_or(|c| !(c.is_alphanumeric() || "-_./".contains(c)))
    })
}

/// The command at the start of `s`, and what follows it.
fn command_at(s: &str) -> (String, &str) {
    let mut words: Vec<&str> = Vec::new();
    let mut at = 0;
    loop {
        let start = at + s[at..].len() - s[at..].trim_start_matches(' ').len();
        if start == s.len() {
            return (words.join(" "), "");
        }
        let mut quote = None;
        let mut end = s.len();
        for (i, c) in s[start..].char_indices() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == '\'' || c == '"' => quote = Some(c),
                None if c == ' ' => {
                    end = start + i;
                    break;
                }
                None => {}
            }
        }
        let word = &s[start..end];
        if ["&&", "||", "or", "then"].contains(&word) || word.starts_with('(') {
            return (words.join(" "), &s[start..]);
        }
        let bare = word.trim_end_matches([';', ',', '`', ')']);
        if bare.len() < word.len() {
            words.push(bare);
            return (words.join(" "), &s[end..]);
        }
        words.push(word);
        at = end;
    }
}

/// Every string in a JSON document.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
        Value::Object(o) => o.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// What `doctor` and `status` print about the stack in `ns`: doctor's report (`-o json`),
/// and every command in it, in doctor's text, and in status' table, wide table and JSON.
fn printed(ns: &str) -> (Value, BTreeSet<String>) {
    let mut texts = Vec::new();
    let mut report = Value::Null;
    for (command, output) in [
        ("doctor", None),
        ("doctor", Some("json")),
        ("status", None),
        ("status", Some("wide")),
        ("status", Some("json")),
    ] {
        let mut cmd = automon_admin();
        cmd.args([command, "-n", ns]);
        if let Some(o) = output {
            cmd.args(["-o", o]);
        }
        let out = run(&mut cmd);
        texts.push(out.stderr.clone());
        match output {
            Some("json") => {
                let v: Value = serde_json::from_str(&out.stdout)
                    .unwrap_or_else(|e| panic!("{command} -o json ({e}):\n{out:#?}"));
                strings(&v, &mut texts);
                if command == "doctor" {
                    report = v;
                }
            }
            _ => texts.push(out.stdout),
        }
    }
    let commands = texts.iter().flat_map(|t| commands_in(t)).collect();
    (report, commands)
}

/// kubectl's verbs that change something: run with `--dry-run=server`.
const WRITES: &[&str] = &[
    "label", "annotate", "patch", "delete", "apply", "create", "replace", "scale", "taint",
    "cordon", "uncordon", "drain", "set",
];

/// Runs `command` as printed, in a shell with the cluster's kubeconfig and the plugin on the
/// PATH (`kubectl automon` is the binary under test), `--dry-run=server` added to what would
/// change something; what is wrong with the outcome, if anything.
fn run_printed(command: &str) -> Result<String, String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let (automon, verb) = match words[..] {
        ["kubectl", "automon", sub, ..] => (true, sub),
        ["kubectl", verb, ..] => (false, verb),
        _ => return Err("not a kubectl command".into()),
    };
    if !automon && verb == "krew" {
        return Err("krew cannot run here (offline)".into());
    }
    let dry = (automon && verb == "enable") || (!automon && WRITES.contains(&verb));
    let line = if dry {
        format!("{command} --dry-run=server")
    } else {
        command.to_string()
    };
    if automon && verb == "reconcile" && words.contains(&"--loop") {
        return run_loop(&line);
    }
    let out = Run::from(shell(&line).output().expect("run sh"));
    let said = format!("$ {line}\nexit {}\n{}{}", out.code, out.stdout, out.stderr);
    let both = format!("{}{}", out.stdout, out.stderr);
    // doctor, status and reconcile exit with their verdict (8 degraded, 10 unverified); diff
    // exits 1 when something would change, which is what it is there to show.
    let fine: &[i32] = match (automon, verb) {
        (true, "doctor" | "status") => &[0, 8, 10],
        (true, "reconcile") => &[0, 8],
        (true, "diff") => &[0, 1],
        _ => &[0],
    };
    let reads = ["get", "describe", "logs"].contains(&verb)
        || (automon && !["enable", "reconcile"].contains(&verb));
    if !fine.contains(&out.code) {
        Err(said)
    } else if reads && both.trim().is_empty() {
        Err(format!("printed nothing:\n{said}"))
    } else if ["No resources found", "NotFound", "not found"]
        .iter()
        .any(|n| both.contains(n))
    {
        Err(format!("found nothing:\n{said}"))
    } else {
        Ok(said)
    }
}

/// `sh -c LINE` with the cluster's kubeconfig, kubectl and the plugin on the PATH.
fn shell(line: &str) -> Command {
    let c = cluster();
    let plugin = Path::new(env!("CARGO_BIN_EXE_kubectl-automon"))
        .parent()
        .unwrap();
    let mut cmd = automon_build(Path::new("/bin/sh"));
    cmd.args(["-c", line]).env("KUBECONFIG", &c.kubeconfig).env(
        "PATH",
        format!(
            "{}:{}:/usr/bin:/bin",
            c.tools_bin.display(),
            plugin.display()
        ),
    );
    // Nothing a fix runs may leave loopback: were enable to download CRDs, it would fail here.
    for proxy in ["HTTPS_PROXY", "HTTP_PROXY"] {
        cmd.env(proxy, "http://127.0.0.1:9");
    }
    cmd.env("NO_PROXY", "127.0.0.1,localhost");
    cmd
}

/// A `reconcile --loop` as printed: it must keep running (and say it synced) until told to
/// stop, then give back its Lease and exit 0.
fn run_loop(line: &str) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("loop.out");
    let mut child = shell(&format!("exec {line}"))
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("loop.err")).unwrap(),
        ))
        .spawn()
        .expect("run the loop");
    let said = || {
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
        format!("$ {line}\n{}{}", read("loop.out"), read("loop.err"))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !said().contains("Synced") {
        if let Some(exit) = child.try_wait().unwrap() {
            return Err(format!("ended ({exit}) before it synced:\n{}", said()));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!("not synced within 60s:\n{}", said()));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let exit = child.wait().unwrap();
    if exit.success() {
        Ok(said())
    } else {
        Err(format!("exit {exit} after SIGTERM:\n{}", said()))
    }
}

/// The checks a scenario must have provoked, each with what its fix must say: (check, a
/// part of the message, a part of the fix).
type Provoked<'a> = &'a [(&'a str, &'a str, &'a str)];

/// Reads doctor and status until every finding of `provoked` shows (controllers, kwok and the
/// operator take their time), then runs every command they print; fails with each one that
/// does not work. Returns the commands.
#[track_caller]
fn every_fix_works(ns: &str, provoked: Provoked) -> BTreeSet<String> {
    let missing = |report: &Value| -> Vec<String> {
        provoked
            .iter()
            .filter(|(check, message, fix)| {
                !report["checks"].as_array().into_iter().flatten().any(|f| {
                    f["check"] == *check
                        && f["message"].as_str().is_some_and(|m| m.contains(message))
                        && f["fix"].as_str().is_some_and(|x| x.contains(fix))
                })
            })
            .map(|p| format!("{p:?}"))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let (report, commands) = loop {
        let (report, commands) = printed(ns);
        let left = missing(&report);
        if left.is_empty() {
            break (report, commands);
        }
        assert!(
            Instant::now() < deadline,
            "not provoked within 120s: {left:#?}\n{report:#}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!("{ns}: {} commands printed", commands.len());
    // The loop and the one pass of reconcile really act (there is no dry run of them): last.
    let (acting, reading): (Vec<&String>, Vec<&String>) = commands
        .iter()
        .partition(|c| c.starts_with("kubectl automon reconcile"));
    let failed: Vec<String> = reading
        .into_iter()
        .chain(acting)
        .filter_map(|c| match run_printed(c) {
            Ok(said) => {
                eprintln!("{said}");
                None
            }
            Err(e) => Some(e),
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} printed commands failed:\n{}\n\ndoctor:\n{report:#}",
        failed.len(),
        commands.len(),
        failed.join("\n\n")
    );
    commands
}

// ---- What the scenarios break ----------------------------------------------------------------

/// A Prometheus on loopback that answers what the stack's is asked: the targets given, no
/// alerts or rules, `series` in its head and `memory` bytes resident. Lives as long as the
/// test binary.
fn fake_prometheus(targets: Vec<Value>, series: u64, memory: u64) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let answers = [
        ("/api/v1/alerts", json!({"alerts": []})),
        ("/api/v1/targets", json!({"activeTargets": targets})),
        ("/api/v1/rules", json!({"groups": []})),
        (
            "/api/v1/status/tsdb",
            json!({"headStats": {"numSeries": series}}),
        ),
        (
            "/api/v1/query",
            json!({"resultType": "vector", "result": [{"metric": {}, "value": [0, memory.to_string()]}]}),
        ),
    ];
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let Ok(reader) = stream.try_clone() else {
                continue;
            };
            let Ok(Some(request)) = HttpRequest::read(&mut BufReader::new(reader)) else {
                continue;
            };
            let path = request.path().unwrap_or_default().to_string();
            let body = answers
                .iter()
                .find(|(p, _)| path.contains(p))
                .map(|(_, data)| json!({"status": "success", "data": data}).to_string())
                .unwrap_or_else(|| r#"{"status":"error","error":"unknown path"}"#.into());
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// How doctor begins a node's finding.
fn on(node: &str) -> String {
    format!("node {node} has no working exporter")
}

/// A node-exporter target of Prometheus' `/api/v1/targets`, for `node`, up or down.
fn target(job: &str, node: &str, up: bool) -> Value {
    let now = "2026-12-06T10:00:00Z";
    json!({
        "labels": {"job": job, "node": node, "instance": format!("{node}:9100")},
        "health": if up { "up" } else { "down" },
        "lastError": if up { "" } else { "connection refused" },
        "lastScrape": now,
    })
}

/// The pods of a `Prometheus` (every shard's), by the labels the operator gives them.
fn prometheus_pods(ns: &str, name: &str) -> Vec<String> {
    let out = kubectl(&[
        "get",
        "pods",
        "-n",
        ns,
        "-l",
        &format!("app.kubernetes.io/name=prometheus,app.kubernetes.io/instance={name}"),
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    out.stdout.split_whitespace().map(str::to_string).collect()
}

/// Every pod of the `Prometheus` `ns/name` answered by `port` until the guards drop.
fn answer_for(ns: &str, name: &str, port: u16) -> Vec<Exposed> {
    let pods = prometheus_pods(ns, name);
    assert!(!pods.is_empty(), "no pod of Prometheus {ns}/{name}");
    pods.iter().map(|p| expose(ns, p, 9090, port)).collect()
}

/// The nodes the cluster starts with (`automon-node-N`).
fn cluster_nodes() -> Vec<String> {
    kubectl(&["get", "nodes", "-o", "name"])
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("node/"))
        .filter(|n| n.starts_with("automon-node-"))
        .map(str::to_string)
        .collect()
}

/// `kubectl label namespace NS pod-security.kubernetes.io/enforce=LEVEL`; privileged again
/// when the guard drops.
struct PodSecurity(String);

impl PodSecurity {
    fn enforce(ns: &str, level: &str) -> PodSecurity {
        kubectl(&[
            "label",
            "namespace",
            ns,
            &format!("pod-security.kubernetes.io/enforce={level}"),
            "--overwrite",
        ]);
        PodSecurity(ns.into())
    }
}

impl Drop for PodSecurity {
    fn drop(&mut self) {
        cluster().kubectl(&[
            "label",
            "namespace",
            &self.0,
            "pod-security.kubernetes.io/enforce-",
        ]);
    }
}

/// Annotates `what` (`kind -n ns name`) as automon itself would: no conflict for `enable`.
fn annotate_as_automon(what: &[&str], key: &str, value: &str) {
    let mut object = get_json(&[&["get"], what].concat());
    object["metadata"]["annotations"][key] = value.into();
    apply_as_automon(object);
}

/// `kubectl patch <what> --type=merge -p <patch>`, which must succeed.
fn merge_patch(what: &[&str], patch: Value) {
    let patch = patch.to_string();
    kubectl(&[&["patch"], what, &["--type=merge", "-p", &patch]].concat());
}

// ---- The scenarios --------------------------------------------------------------------------

#[test]
fn the_command_reader_takes_what_a_user_would_copy() {
    let cases = [
        (
            "fix: kubectl describe pod -n a p; kubectl logs -n a p --previous",
            vec![
                "kubectl describe pod -n a p",
                "kubectl logs -n a p --previous",
            ],
        ),
        (
            "kubectl automon enable -n a --set x=all, or: kubectl label node n k=true --overwrite (to accept the gap)",
            vec![
                "kubectl automon enable -n a --set x=all",
                "kubectl label node n k=true --overwrite",
            ],
        ),
        (
            "kubectl automon preflight -n a && kubectl automon enable -n a --wait",
            vec![
                "kubectl automon preflight -n a",
                "kubectl automon enable -n a --wait",
            ],
        ),
        (
            r#"route to it: kubectl automon enable -n a --set 'r=[{name: t, webhook: {url: "https://h/x"}}]' --set r=t (your URL)"#,
            vec![
                r#"kubectl automon enable -n a --set 'r=[{name: t, webhook: {url: "https://h/x"}}]' --set r=t"#,
            ],
        ),
        (
            "Degraded: x. Run `kubectl automon doctor -n a` for fixes. (kubectl automon reconcile --loop -n a) (install it with `kubectl automon enable -n a`)",
            vec![
                "kubectl automon doctor -n a",
                "kubectl automon reconcile --loop -n a",
                "kubectl automon enable -n a",
            ],
        ),
        (
            "tooling kubectl-automon/v0.2.0; kubectl automon diff -n a, then kubectl automon enable -n a",
            vec!["kubectl automon diff -n a", "kubectl automon enable -n a"],
        ),
    ];
    for (text, want) in cases {
        assert_eq!(commands_in(text), want, "{text}");
    }
}

/// automon's own stack, sharded, with its exporter tolerating no taint: everything a check
/// looks at broken at once, then a Prometheus that answers with targets missing and down, then
/// the exporter's scrape object and DaemonSet gone, then a namespace without the stack.
#[test]
fn every_fix_of_a_stack_of_its_own_works() {
    let _alone = ALONE.lock().unwrap_or_else(PoisonError::into_inner);
    let ns = "fx-own";
    let holder_ns = "fx-own-holder";
    let _cleanup = Cleanup::fresh(ns);
    let _holder = Cleanup::created(holder_ns);
    enable_ready(
        ns,
        &[
            "--set",
            "prometheus.shards=2",
            "--set",
            "nodeExporter.tolerations=none",
        ],
    );
    let port = node_exporter_port(ns);

    // Nodes the exporter cannot serve: a taint, Windows, another pod on its port.
    let _nodes = KwokNodes::create(vec![
        tainted("fx-own-gpu", "nvidia.com/gpu", "present", "NoExecute"),
        windows_node("fx-own-win"),
    ]);
    let _port_node = node_with_port_held(kwok_node("fx-own-port"), holder_ns, port);
    eventually(60, "the exporter pending on fx-own-port", || {
        let (_, st) = status_json(ns, &[]);
        st["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["name"] == "fx-own-port" && n["exporter"]["state"] == "Pending")
    });
    let grafana = grafana_cannot_pull(ns);
    let _kubelet = stale_kubelet_service("fx-stale-kubelet");
    let configuration = format!("{ns}-gone");
    let _webhook = Object::apply(
        "validatingwebhookconfiguration",
        &configuration,
        None,
        &gone_webhook(&configuration, ns, "Ignore"),
    );
    // As an older automon sized it, for more nodes (its own change: no conflict for enable).
    annotate_as_automon(
        &["prometheus", "-n", ns, "automon"],
        "automon.io/sized-for-nodes",
        "250",
    );
    parent_written_by(ns, "v0.0.1", None);
    every_fix_works(
        ns,
        &[
            (
                "version",
                "v0.0.1",
                &format!("`kubectl automon enable -n {ns}`"),
            ),
            (
                "components",
                "grafana",
                &format!("kubectl describe pod -n {ns} {grafana}"),
            ),
            (
                "nodes",
                &on("fx-own-gpu"),
                "--set nodeExporter.tolerations=all",
            ),
            ("nodes", &on("fx-own-win"), "windows-exporter"),
            ("nodes", &on("fx-own-port"), "(see the host port check)"),
            (
                "hostPort",
                "fx-own-port",
                &format!("--set nodeExporter.port={}", port + 1),
            ),
            (
                "kubeletService",
                "fx-stale-kubelet",
                "kubectl delete service -n kube-system",
            ),
            (
                "webhooks",
                &configuration,
                "kubectl delete validatingwebhookconfiguration",
            ),
            ("alertmanager", "ui-only", "--set 'alertmanager.receivers="),
            // Sharded: status asks Thanos Query, and the fix looks at it.
            (
                "scrapes",
                "did not answer",
                &format!("kubectl get pods -n {ns} -l app.kubernetes.io/name=thanos-query"),
            ),
            (
                "sizing",
                "sized for up to 250",
                &format!("kubectl automon diff -n {ns}"),
            ),
        ],
    );
    drop((_nodes, _port_node, _kubelet, _webhook));

    // The stack as enable leaves it (the fixes above were dry runs, reconcile's aside), alerts
    // sent somewhere; then what other tools change in automon's objects (while a field is
    // another tool's, every `enable` stops at the conflict, and says so): its Prometheus'
    // rule selector, and its namespace's PodSecurity, "restricted", which refuses the
    // exporter of a new node.
    enable(
        ns,
        &[
            "--force-conflicts",
            "--set",
            r#"alertmanager.receivers=[{name: team, webhook: {url: "http://example.invalid/"}}]"#,
            "--set",
            "alertmanager.route.receiver=team",
        ],
    )
    .success();
    kubectl(&["delete", "pod", "-n", ns, &grafana, "--wait=false"]);
    patch_prometheus(
        ns,
        r#"{"spec":{"ruleSelector":{"matchLabels":{"release":"kps"}}}}"#,
    );
    let psa = PodSecurity::enforce(ns, "restricted");
    let refused = KwokNodes::create(vec![kwok_node("fx-own-psa")]);
    every_fix_works(
        ns,
        &[
            ("selectors", "PrometheusRule", "--force-conflicts"),
            (
                "nodes",
                &on("fx-own-psa"),
                &format!("kubectl describe daemonset -n {ns} node-exporter"),
            ),
            (
                "podSecurity",
                &format!("namespace {ns}"),
                &format!("kubectl label namespace {ns}"),
            ),
        ],
    );
    drop((refused, psa));
    enable(ns, &["--force-conflicts"]).success();

    // A Prometheus that answers: one node's target missing, one down, another job down, a
    // head past the estimate and memory near the limit.
    let nodes = cluster_nodes();
    let (scraped, down, missing) = (&nodes[0], &nodes[1], &nodes[2]);
    let targets = vec![
        target("node-exporter", scraped, true),
        target("node-exporter", down, false),
        target("kube-state-metrics", "", false),
    ];
    let prometheus = fake_prometheus(targets, 20_000_000, 2000 << 20);
    let _answering = answer_for(ns, "automon", prometheus);
    // The stack is sharded: status asks its Thanos Query, which answers for every shard.
    let query_pod = pod_of(ns, "thanos-query").expect("Thanos Query's pod");
    let _query_answering = expose(ns, &query_pod, 10902, prometheus);
    let answered = [
        ("nodes", on(down), format!("kubectl describe pod -n {ns} ")),
        (
            "nodes",
            on(missing),
            format!("kubectl get servicemonitor -n {ns} node-exporter -o yaml"),
        ),
        (
            "scrapes",
            "kube-state-metrics".into(),
            format!("kubectl automon status -n {ns} -o wide"),
        ),
        ("sizing", "series".into(), "--set prometheus.shards=".into()),
        (
            "sizing",
            "2000 MiB of its 2048 MiB".into(),
            "prometheus.resources.limits.memory=4096Mi".into(),
        ),
    ];
    let answered: Vec<(&str, &str, &str)> = answered
        .iter()
        .map(|(c, m, f)| (*c, m.as_str(), f.as_str()))
        .collect();
    every_fix_works(ns, &answered);

    // No scrape object for the exporter, then no exporter at all: enable restores them.
    kubectl(&["delete", "servicemonitor", "-n", ns, "node-exporter"]);
    every_fix_works(
        ns,
        &[(
            "nodes",
            &on(missing),
            &format!("kubectl automon enable -n {ns} (no scrape object"),
        )],
    );
    kubectl(&["delete", "daemonset", "-n", ns, "node-exporter"]);
    every_fix_works(
        ns,
        &[(
            "nodes",
            &on(scraped),
            &format!("kubectl automon enable -n {ns}"),
        )],
    );

    // A namespace without the stack: how to install it.
    let empty = "fx-empty";
    let _empty = Cleanup::created(empty);
    every_fix_works(
        empty,
        &[(
            "installed",
            "not installed",
            &format!("kubectl automon preflight -n {empty}"),
        )],
    );
}

/// The real kube-prometheus-stack chart, installed by `helm install` as its users do, and a
/// stack beside it that reuses its operator, Prometheus and node-exporter: every fix names the
/// chart's namespace and objects where they are the ones involved.
#[test]
fn every_fix_beside_kube_prometheus_stack_names_its_objects() {
    let _alone = ALONE.lock().unwrap_or_else(PoisonError::into_inner);
    let ns = "fx-kps";
    let kps = "monitoring";
    let _chart = Chart::install("kps", kps);
    let _cleanup = Cleanup::fresh(ns);
    ensure_operator();
    let prometheus = "kps-kube-prometheus-stack-prometheus";
    let operator = "kps-kube-prometheus-stack-operator";
    let exporter = "kps-prometheus-node-exporter";
    eventually(120, "the chart's Prometheus pod", || {
        !prometheus_pods(kps, prometheus).is_empty()
    });
    // The exporter's port is the chart's: automon scrapes its exporter instead of its own.
    run(automon_admin().args(["enable", "-n", ns])).success();
    assert_eq!(
        parent_field(ns, r"{.metadata.annotations.automon\.io/prometheus-from}"),
        format!("{kps}/{prometheus}")
    );

    let _nodes = KwokNodes::create(vec![
        tainted("fx-kps-gpu", "nvidia.com/gpu", "present", "NoExecute"),
        // The chart's exporter keeps off virtual kubelets.
        labelled("fx-kps-vk", "type", "virtual-kubelet"),
        windows_node("fx-kps-win"),
    ]);
    let _psa = PodSecurity::enforce(kps, "restricted");
    let _refused = KwokNodes::create(vec![kwok_node("fx-kps-psa")]);
    // A rule of the stack without the chart's label; the chart's Prometheus looking for
    // ServiceMonitors only in namespaces labelled team=ops.
    apply(&format!(
        "apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: fx-unlabelled
  namespace: {ns}
  labels: {{app.kubernetes.io/part-of: automon}}
spec:
  groups: [{{name: fx, rules: [{{alert: FxNever, expr: vector(1) == 0}}]}}]
"
    ));
    merge_patch(
        &["prometheus", "-n", kps, prometheus],
        json!({"spec": {"serviceMonitorNamespaceSelector": {"matchLabels": {"team": "ops"}}}}),
    );
    // The chart's operator cannot pull its image.
    let operator_pod = kubectl(&["get", "pods", "-n", kps, "-o", "name"])
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("pod/{operator}-")))
        .map(|suffix| format!("{operator}-{suffix}"))
        .expect("the chart's operator pod");
    cannot_pull(kps, &operator_pod, "*");
    parent_written_by(ns, "v0.0.1", None);
    every_fix_works(
        ns,
        &[
            (
                "version",
                "v0.0.1",
                &format!("`kubectl automon diff -n {ns}`"),
            ),
            (
                "components",
                "prometheus-operator",
                &format!("kubectl describe deployment -n {kps} {operator}"),
            ),
            (
                "selectors",
                "fx-unlabelled",
                &format!("kubectl label prometheusrule -n {ns} fx-unlabelled release=kps"),
            ),
            (
                "selectors",
                "ServiceMonitor",
                &format!("kubectl label namespace {ns} team=ops"),
            ),
            (
                "nodes",
                &on("fx-kps-gpu"),
                &format!("kubectl patch daemonset -n {kps} {exporter} --type json"),
            ),
            (
                "nodes",
                &on("fx-kps-vk"),
                &format!("kubectl describe daemonset -n {kps} {exporter}"),
            ),
            ("nodes", &on("fx-kps-win"), "windows-exporter"),
            (
                "nodes",
                &on("fx-kps-psa"),
                &format!("kubectl describe daemonset -n {kps} {exporter}"),
            ),
            (
                "podSecurity",
                &format!("namespace {kps}"),
                &format!("kubectl label namespace {kps}"),
            ),
            (
                "scrapes",
                "did not answer",
                &format!(
                    "kubectl get pods -n {kps} -l app.kubernetes.io/name=prometheus,app.kubernetes.io/instance={prometheus}"
                ),
            ),
        ],
    );
    drop((_nodes, _refused, _psa));

    // Its Prometheus looking in its own namespace only, and selecting no rule; then answering:
    // one node's target missing, one down.
    kubectl(&["delete", "pod", "-n", kps, &operator_pod, "--wait=false"]);
    merge_patch(
        &["prometheus", "-n", kps, prometheus],
        json!({"spec": {"serviceMonitorNamespaceSelector": null, "ruleSelector": null}}),
    );
    let nodes = cluster_nodes();
    let targets = vec![
        target("node-exporter", &nodes[0], true),
        target("node-exporter", &nodes[1], false),
    ];
    let port = fake_prometheus(targets, 1000, 1 << 20);
    let _answering = answer_for(kps, prometheus, port);
    let patch = format!("kubectl patch prometheus -n {kps} {prometheus} --type merge -p");
    let scraped_by = kubectl(&["get", "servicemonitors,podmonitors", "-A", "-o", "name"]).stdout;
    eprintln!("scrape objects: {scraped_by}");
    every_fix_works(
        ns,
        &[
            (
                "selectors",
                "only looks in its own namespace monitoring",
                &patch,
            ),
            ("selectors", "ruleSelector is unset", &patch),
            (
                "nodes",
                &on(&nodes[1]),
                &format!("kubectl describe pod -n {kps} {exporter}-"),
            ),
            ("nodes", &on(&nodes[2]), "kubectl get "),
        ],
    );
}

/// A Helm release of kube-prometheus-stack from `../shared/peers`, installed by the real
/// `helm install` as its users do where the CRDs are there already (the pinned ones, which
/// other tests expect): with `--skip-crds` (Helm 4 applies the chart's own server-side and
/// stops at the conflict). Uninstalled, its namespace and what it left cluster-wide deleted,
/// when the guard drops.
struct Chart {
    release: &'static str,
    namespace: &'static str,
}

impl Chart {
    fn install(release: &'static str, namespace: &'static str) -> Chart {
        let c = cluster();
        c.ensure_crds();
        let chart = Chart { release, namespace };
        chart.remove();
        let helm = built_tool("helm", "helm");
        let dir = repo_root().join("../shared/peers/kube-prometheus-stack-88.5.3");
        let out = run(Command::new(helm)
            .args(["install", release])
            .arg(&dir)
            .args([
                "-n",
                namespace,
                "--create-namespace",
                "--skip-crds",
                "--kubeconfig",
            ])
            .arg(&c.kubeconfig)
            .env("HOME", tempfile::tempdir().unwrap().path()));
        assert_eq!(out.code, 0, "helm install:\n{out:#?}");
        chart
    }

    fn remove(&self) {
        let c = cluster();
        let helm = built_tool("helm", "helm");
        let _ = Command::new(helm)
            .args([
                "uninstall",
                self.release,
                "-n",
                self.namespace,
                "--wait",
                "--kubeconfig",
            ])
            .arg(&c.kubeconfig)
            .env("HOME", std::env::temp_dir())
            .output();
        c.kubectl(&[
            "delete",
            "namespace",
            self.namespace,
            "--ignore-not-found",
            "--timeout=120s",
        ]);
        // What its hooks and its operator's objects leave outside the namespace.
        let prefix = format!("/{}-", self.release);
        for kind in [
            "clusterrole",
            "clusterrolebinding",
            "validatingwebhookconfiguration",
            "mutatingwebhookconfiguration",
        ] {
            let listed = c.kubectl(&["get", kind, "-o", "name"]).stdout;
            let names: Vec<&str> = listed.lines().filter(|l| l.contains(&prefix)).collect();
            if !names.is_empty() {
                c.kubectl(&[&["delete", "--ignore-not-found"], &names[..]].concat());
            }
        }
        c.kubectl(&[
            "delete",
            "service",
            "-n",
            "kube-system",
            "-l",
            &format!("release={}", self.release),
            "--ignore-not-found",
        ]);
    }
}

impl Drop for Chart {
    fn drop(&mut self) {
        self.remove();
    }
}
