//! The stack on real nodes: a kubelet with containerd and runc (tests/cluster/real-nodes) runs
//! every pod the stack renders as real containers, in cluster. The operator runs as automon's
//! Deployment under its own ServiceAccount and ClusterRole (no out-of-cluster operator here), the
//! Prometheus and Alertmanager StatefulSets it generates run with their config-reloader sidecars,
//! and Prometheus scrapes the real kubelet, cAdvisor, node-exporter, kube-state-metrics and the
//! API server. The images are built here from the same Go modules as the upstream images, tagged
//! with the references the stack renders, so the rendered specs run unchanged.
//!
//! Grafana is left out on the real nodes (`grafana.enabled=false`): its image cannot be built
//! here (its module is not served by the Go module proxy), so its pod stays proved by its spec,
//! its dashboards' schema and its queries only (tests/dashboards.rs, tests/render*.rs).
//!
//! These tests run on a cluster of their own (`LOCALCLUSTER_INSTANCE=real`, no kwok node), so
//! that no pod of the stack lands on a node that runs nothing.

mod common;

use common::*;
use std::{
    collections::BTreeMap,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::TcpListener,
    process::Command,
    sync::{Mutex, OnceLock, RwLock},
    time::{Duration, Instant},
};

const NS: &str = "automon";

/// Tests that take a node away or add one hold this for writing; the others read.
static NODES: RwLock<()> = RwLock::new(());

fn nodes_steady() -> std::sync::RwLockReadGuard<'static, ()> {
    NODES
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn nodes_change() -> std::sync::RwLockWriteGuard<'static, ()> {
    NODES
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn localcluster_real(args: &[&str]) -> Run {
    let run = Run::from(
        localcluster_instance("real")
            .args(args)
            .output()
            .expect("run tests/cluster/localcluster"),
    );
    assert_eq!(run.code, 0, "localcluster {args:?}: {run:#?}");
    run
}

/// Alertmanager's webhook receiver: a process on 127.0.0.1 that the real nodes' pods reach at
/// 10.5.0.1 (`localcluster forward`), recording every notification it gets.
struct Receiver {
    port: u16,
    /// Each notification and when it arrived.
    notifications: Mutex<Vec<(Instant, serde_json::Value)>>,
}

fn receiver() -> &'static Receiver {
    static RECEIVER: OnceLock<&'static Receiver> = OnceLock::new();
    RECEIVER.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let r: &'static Receiver = Box::leak(Box::new(Receiver {
            port: listener.local_addr().unwrap().port(),
            notifications: Mutex::new(Vec::new()),
        }));
        std::thread::spawn(move || {
            for conn in listener.incoming().map_while(Result::ok) {
                // A connection each: one that stalls never holds up the next notification.
                std::thread::spawn(move || r.serve(conn));
            }
        });
        localcluster_real(&["forward", &r.port.to_string()]);
        let port = r.port.to_string();
        at_exit(move || {
            let _ = localcluster_instance("real")
                .args(["unforward", &port])
                .output();
        });
        r
    })
}

impl Receiver {
    /// One HTTP/1.1 request with a Content-Length body (what Alertmanager's webhook sends),
    /// answered 200 and closed.
    fn serve(&self, conn: std::net::TcpStream) {
        let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
        let mut reader = BufReader::new(conn);
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
            return;
        };
        for a in v["alerts"].as_array().into_iter().flatten() {
            eprintln!(
                "receiver: {} {} {}",
                a["status"], a["labels"]["alertname"], a["labels"]["node"]
            );
        }
        self.received().push((Instant::now(), v));
        let _ = reader
            .get_mut()
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }

    fn received(&self) -> std::sync::MutexGuard<'_, Vec<(Instant, serde_json::Value)>> {
        self.notifications
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits for a notification, arrived after `since`, that says `alertname` on `node` is
    /// `status` (firing or resolved); returns when it arrived.
    #[track_caller]
    fn wait_for(
        &self,
        alertname: &str,
        node: &str,
        status: &str,
        since: Instant,
        secs: u64,
    ) -> Instant {
        let deadline = since + Duration::from_secs(secs);
        loop {
            let got = self.received().iter().find_map(|(at, n)| {
                let says = n["alerts"].as_array().into_iter().flatten().any(|a| {
                    a["labels"]["alertname"] == alertname
                        && a["labels"]["node"] == node
                        && a["status"] == status
                });
                (*at >= since && says).then_some(*at)
            });
            if let Some(at) = got {
                return at;
            }
            assert!(
                Instant::now() < deadline,
                "no {status} {alertname} for {node} at the receiver within {secs}s; it got:\n{:#}",
                serde_json::Value::Array(self.received().iter().map(|(_, n)| n.clone()).collect())
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

fn kubectl(args: &[&str]) -> Run {
    real_cluster().kubectl(args)
}

fn automon_real() -> Command {
    let mut cmd = automon();
    cmd.env("KUBECONFIG", &real_cluster().kubeconfig);
    cmd
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = kubectl(&[args, &["-o", "json"]].concat());
    assert_eq!(out.code, 0, "{out:#?}");
    serde_json::from_str(&out.stdout).unwrap()
}

/// `enable --wait` once for every test of this binary: the stack with everything but Grafana.
fn stack() -> &'static Run {
    static ENABLED: OnceLock<Run> = OnceLock::new();
    ENABLED.get_or_init(|| {
        let c = real_cluster();
        let crds = c.dir.join("crds");
        let hook = format!("http://10.5.0.1:{}/alerts", receiver().port);
        let started = Instant::now();
        let out = run(automon_real()
            .args([
                "enable",
                "--wait",
                "--timeout",
                "10m",
                "--crds-from",
                crds.to_str().unwrap(),
            ])
            .args(
                [
                    "grafana.enabled=false",
                    // Alerts within seconds of their cause, each delivered to the test's receiver.
                    "prometheus.scrapeInterval=5s",
                    "prometheus.evaluationInterval=5s",
                    &format!("alertmanager.receivers=[{{name: test, webhook: {{url: '{hook}'}}}}]"),
                    "alertmanager.route.receiver=test",
                    "alertmanager.route.groupWait=1s",
                    "alertmanager.route.groupInterval=5s",
                    "alerts.highCpu.thresholdPercent=95",
                    "alerts.highCpu.for=0m",
                    "alerts.nodeDown.for=0m",
                    "alerts.exporterDown.for=0m",
                ]
                .iter()
                .flat_map(|s| ["--set", s]),
            ));
        eprintln!(
            "enable --wait on real nodes: exit {} in {:.1}s\n{}\n{}",
            out.code,
            started.elapsed().as_secs_f64(),
            out.stdout,
            out.stderr
        );
        // The receiver's port is this run's: Alertmanager has it once its config-reloader saw
        // the Secret the kubelet updated in its volume.
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let status = kubectl(&[
                "get",
                "--raw",
                &format!(
                    "/api/v1/namespaces/{NS}/services/http:alertmanager:web/proxy/api/v2/status"
                ),
            ]);
            if status.stdout.contains(&hook) {
                break;
            }
            assert!(
                out.code != 0 || Instant::now() < deadline,
                "Alertmanager never loaded the receiver {hook}: {status:#?}"
            );
            if out.code != 0 {
                break;
            }
            std::thread::sleep(Duration::from_secs(2));
        }
        out
    })
}

/// A GET through the API server's service proxy to the in-cluster Prometheus.
fn prometheus_get(path: &str) -> Result<serde_json::Value, String> {
    let out = kubectl(&[
        "get",
        "--raw",
        &format!("/api/v1/namespaces/{NS}/services/http:prometheus:web/proxy{path}"),
    ]);
    if out.code != 0 {
        return Err(out.stderr);
    }
    serde_json::from_str(&out.stdout).map_err(|e| format!("{e}: {}", out.stdout))
}

fn query(expr: &str) -> Vec<serde_json::Value> {
    let q: String = url_encode(expr);
    match prometheus_get(&format!("/api/v1/query?query={q}")) {
        Ok(v) => v["data"]["result"].as_array().cloned().unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn real_node_names() -> Vec<String> {
    let nodes = json(&["get", "nodes", "-l", "type=real"]);
    nodes["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn enable_wait_runs_every_pod_ready_by_its_own_probes_with_no_restart() {
    let _steady = nodes_steady();
    let out = stack();
    assert_eq!(out.code, 0, "enable --wait failed on real nodes: {out:#?}");

    let pods = json(&["get", "pods", "-n", NS]);
    let pods = pods["items"].as_array().unwrap();
    let mut seen = BTreeMap::new();
    for pod in pods {
        let name = pod["metadata"]["name"].as_str().unwrap();
        let app = pod["metadata"]["labels"]["app.kubernetes.io/name"]
            .as_str()
            .unwrap_or("?");
        *seen.entry(app.to_string()).or_insert(0) += 1;
        assert_eq!(
            pod["status"]["phase"], "Running",
            "{name}: {:#}",
            pod["status"]
        );
        let node = pod["spec"]["nodeName"].as_str().unwrap_or("");
        assert!(node.starts_with("automon-real-"), "{name} is on {node}");
        let ready = pod["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        assert!(ready, "{name} is not Ready: {:#}", pod["status"]);
        for c in pod["status"]["containerStatuses"].as_array().unwrap() {
            assert_eq!(
                c["restartCount"], 0,
                "{name}/{} restarted: {:#}",
                c["name"], c["lastState"]
            );
            assert_eq!(c["ready"], true, "{name}/{}: {:#}", c["name"], c);
        }
    }
    let nodes = real_node_names().len();
    for (app, want) in [
        ("prometheus-operator", 1),
        ("prometheus", 1),
        ("alertmanager", 1),
        ("kube-state-metrics", 1),
        ("node-exporter", nodes),
    ] {
        assert!(
            seen.get(app).copied().unwrap_or(0) >= want,
            "{app}: {seen:?}"
        );
    }
    assert!(!seen.contains_key("grafana"), "Grafana is left out here");

    // The operator ran under automon's ClusterRole, and nothing it asked for was refused.
    let log = kubectl(&["logs", "-n", NS, "deployment/prometheus-operator"]);
    assert_eq!(log.code, 0, "{log:#?}");
    assert!(
        !log.stdout.to_lowercase().contains("forbidden"),
        "the operator was refused something:\n{}",
        log.stdout
    );
}

#[test]
fn prometheus_in_cluster_has_every_target_up() {
    let _steady = nodes_steady();
    assert_eq!(stack().code, 0, "enable failed: {:#?}", stack());
    let nodes = real_node_names();
    // Every ServiceMonitor's scrape pool, and how many targets it must have.
    let want: Vec<(&str, usize)> = vec![
        ("serviceMonitor/automon/node-exporter/0", nodes.len()),
        ("serviceMonitor/automon/kubelet/0", nodes.len()),
        ("serviceMonitor/automon/kubelet/1", nodes.len()),
        ("serviceMonitor/automon/kube-state-metrics/0", 1),
        ("serviceMonitor/automon/kube-state-metrics/1", 1),
        ("serviceMonitor/automon/apiserver/0", 1),
        ("serviceMonitor/automon/alertmanager/0", 1),
        ("serviceMonitor/automon/prometheus/0", 1),
        ("serviceMonitor/automon/prometheus-operator/0", 1),
    ];
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut last;
    loop {
        let targets = prometheus_get("/api/v1/targets?state=active");
        let mut pools: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        if let Ok(t) = &targets {
            for t in t["data"]["activeTargets"].as_array().unwrap() {
                pools
                    .entry(t["scrapePool"].as_str().unwrap().to_string())
                    .or_default()
                    .push((
                        t["scrapeUrl"].as_str().unwrap().to_string(),
                        format!("{} {}", t["health"], t["lastError"]),
                    ));
            }
        }
        let missing: Vec<String> = want
            .iter()
            .filter(|(pool, n)| {
                let got = pools.get(*pool).map(Vec::as_slice).unwrap_or_default();
                got.len() < *n || got.iter().any(|(_, h)| !h.starts_with("\"up\""))
            })
            .map(|(pool, _)| pool.to_string())
            .collect();
        last = format!(
            "{missing:?} not all up; targets: {pools:#?} {:?}",
            targets.err()
        );
        if missing.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{last}");
        std::thread::sleep(Duration::from_secs(3));
    }

    // cAdvisor's real series for the stack's own containers, from the real kubelet.
    let cpu = query("container_cpu_usage_seconds_total{namespace=\"automon\",container!=\"\"}");
    let containers: Vec<&str> = cpu
        .iter()
        .filter_map(|s| s["metric"]["container"].as_str())
        .collect();
    for c in [
        "prometheus",
        "config-reloader",
        "alertmanager",
        "node-exporter",
    ] {
        assert!(
            containers.contains(&c),
            "no cAdvisor series for {c}: {containers:?}"
        );
    }
    // node-exporter's real series for every real node.
    let up = query("node_uname_info");
    assert_eq!(up.len(), nodes.len(), "{up:#?}");

    // status judges this Prometheus: the SCRAPE column from its targets.
    let status = run(automon_real().arg("status"));
    assert_eq!(status.code, 0, "{status:#?}");
    assert!(status.stdout.contains("SCRAPE"), "{}", status.stdout);
}

/// The containers as the node runs them: /proc of each container's process (the nodes share the
/// machine's PID namespace) against the restricted profile the stack renders.
#[test]
fn every_container_runs_restricted_as_proc_shows_it() {
    let _steady = nodes_steady();
    assert_eq!(stack().code, 0, "enable failed: {:#?}", stack());
    let ps = localcluster_real(&["on-node", "automon-real-0", "crictl", "ps", "-o", "json"]);
    let ps: serde_json::Value = serde_json::from_str(&ps.stdout).unwrap();
    let mut table = Vec::new();
    for c in ps["containers"].as_array().unwrap() {
        if c["labels"]["io.kubernetes.pod.namespace"] != NS {
            continue;
        }
        let id = c["id"].as_str().unwrap();
        let inspect = localcluster_real(&["on-node", "automon-real-0", "crictl", "inspect", id]);
        let inspect: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
        let pid = inspect["info"]["pid"]
            .as_u64()
            .expect("the container's pid");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}:")))
                .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
        let root = mountinfo
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.get(4) == Some(&"/"))
            .map(|f| f[5].to_string())
            .unwrap_or_default();
        let name = format!(
            "{}/{}",
            c["labels"]["io.kubernetes.pod.name"].as_str().unwrap(),
            c["metadata"]["name"].as_str().unwrap()
        );
        table.push((
            name,
            field("Uid"),
            field("CapEff"),
            field("Seccomp"),
            field("NoNewPrivs"),
            root,
        ));
    }
    eprintln!("CONTAINER  UID  CAPEFF  SECCOMP  NONEWPRIVS  ROOT");
    for row in &table {
        eprintln!("{row:?}");
    }
    assert!(table.len() >= 7, "{table:#?}");
    for (name, uid, cap, seccomp, nnp, root) in &table {
        assert!(
            !uid.split(' ').any(|u| u == "0"),
            "{name} runs as root: {uid}"
        );
        assert_eq!(cap, "0000000000000000", "{name} has capabilities");
        assert_eq!(seccomp, "2", "{name}: seccomp is not filtering");
        assert_eq!(nnp, "1", "{name} may gain privileges");
        assert!(
            root.split(',').any(|o| o == "ro"),
            "{name}: root is writable ({root})"
        );
    }
}

/// HighCPUUsage from real load: a pod burning both cores of the machine the node runs on;
/// the alert fires from node-exporter's real counters, reaches the receiver through the real
/// Alertmanager pod, and resolves when the pod is gone.
#[test]
fn high_cpu_from_a_burning_pod_reaches_the_receiver_and_resolves() {
    let _steady = nodes_steady();
    assert_eq!(stack().code, 0, "enable failed: {:#?}", stack());
    let burn = r#"
apiVersion: v1
kind: Namespace
metadata: {name: burn}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: burn, namespace: burn}
spec:
  replicas: 2
  selector: {matchLabels: {app: burn}}
  template:
    metadata: {labels: {app: burn}}
    spec:
      nodeSelector: {kubernetes.io/hostname: automon-real-0}
      terminationGracePeriodSeconds: 5
      securityContext: {runAsNonRoot: true, runAsUser: 65534, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: burn
        image: localhost/automon-test/burn:1
        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
"#;
    // The machine's own load (the rest of the suite shares its two cores) may be above the
    // threshold already: the burn starts once the alert is not firing, so that what fires is
    // the burn's.
    let quiet = Instant::now() + Duration::from_secs(600);
    while !query("ALERTS{alertname=\"HighCPUUsage\",node=\"automon-real-0\"}").is_empty() {
        assert!(
            Instant::now() < quiet,
            "HighCPUUsage fired for 10 minutes before the burn"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    let (_dir, file) = write_temp("burn.yaml", burn);
    let started = Instant::now();
    let applied = kubectl(&["apply", "-f", file.to_str().unwrap()]);
    assert_eq!(applied.code, 0, "{applied:#?}");
    let ready = kubectl(&[
        "rollout",
        "status",
        "-n",
        "burn",
        "deployment/burn",
        "--timeout=120s",
    ]);
    assert_eq!(ready.code, 0, "{ready:#?}");
    let fired = receiver().wait_for("HighCPUUsage", "automon-real-0", "firing", started, 300);
    eprintln!(
        "HighCPUUsage delivered {:.0}s after the burn started",
        (fired - started).as_secs_f64()
    );
    let deleted = kubectl(&[
        "delete",
        "namespace",
        "burn",
        "--wait=true",
        "--timeout=120s",
    ]);
    assert_eq!(deleted.code, 0, "{deleted:#?}");
    let stopped = Instant::now();
    // It resolves once the machine is below the threshold again: the rest of the suite shares
    // its two cores, so give it time.
    let resolved = receiver().wait_for("HighCPUUsage", "automon-real-0", "resolved", stopped, 600);
    eprintln!(
        "HighCPUUsage resolved {:.0}s after the burn stopped",
        (resolved - stopped).as_secs_f64()
    );
}

/// A second real node joins while `reconcile --loop` runs: its exporter pod starts, the loop
/// writes the Event, Prometheus scrapes it. Then the node crashes: NodeDown reaches the
/// receiver; it starts again: NodeDown resolves.
#[test]
fn a_real_node_joins_under_the_loop_then_crashes_and_the_receiver_hears_it() {
    let _change = nodes_change();
    assert_eq!(stack().code, 0, "enable failed: {:#?}", stack());
    // One node to start from, whatever an earlier run left, and to end with, whatever happens.
    localcluster_real(&["real-nodes", "1"]);
    struct OneNode;
    impl Drop for OneNode {
        fn drop(&mut self) {
            let _ = localcluster_instance("real")
                .args(["real-nodes", "1"])
                .output();
        }
    }
    let _one_node = OneNode;
    let mut loop_ = ReconcileLoop::start_with(automon_real(), NS, "real-nodes-test", &[]);
    let asked = Instant::now();
    localcluster_real(&["real-nodes", "2"]);
    loop_.wait_for_log("node automon-real-1 joined", 180);
    eprintln!(
        "automon-real-1: joined and its exporter Ready {:.0}s after real-nodes 2",
        asked.elapsed().as_secs_f64()
    );
    let events = json(&[
        "get",
        "events.events.k8s.io",
        "-A",
        "--field-selector",
        "regarding.name=automon-real-1,reason=ExporterReady",
    ]);
    assert!(
        !events["items"].as_array().unwrap().is_empty(),
        "no ExporterReady Event for automon-real-1: {events:#}"
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while query("up{job=\"node-exporter\",node=\"automon-real-1\"} == 1").is_empty() {
        assert!(
            Instant::now() < deadline,
            "automon-real-1's exporter was never scraped"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    eprintln!(
        "automon-real-1: first successful scrape {:.0}s after real-nodes 2",
        asked.elapsed().as_secs_f64()
    );
    drop(loop_);

    localcluster_real(&["crash-node", "automon-real-1"]);
    let crashed = Instant::now();
    let fired = receiver().wait_for("NodeDown", "automon-real-1", "firing", crashed, 180);
    eprintln!(
        "NodeDown delivered {:.0}s after the crash",
        (fired - crashed).as_secs_f64()
    );
    localcluster_real(&["real-nodes", "2"]);
    let back = Instant::now();
    let resolved = receiver().wait_for("NodeDown", "automon-real-1", "resolved", back, 240);
    eprintln!(
        "NodeDown resolved {:.0}s after the node came back",
        (resolved - back).as_secs_f64()
    );
}
