//! No window without a ready Prometheus or Alertmanager while `enable` replaces their pods, on
//! real nodes (tests/cluster/real-nodes: a kubelet with containerd and runc). With one replica,
//! a change of their pod template makes the StatefulSet controller delete the one pod before
//! its successor starts; `enable` lends each a second replica for the time of the rollout. A
//! watch on their pods (every change, as the API server tells it) measures the longest time
//! each had no ready pod: 0 through `enable --wait`, and what it is without the second replica,
//! shown the plain way: the pod deleted, as the controller deletes it.
//!
//! The stack is tests/real_nodes.rs' (namespace `automon`, `grafana.enabled=false`): only one fits
//! on the real nodes (node-exporter's host port). One installed before is rolled back to the
//! revision it had; one this test installed is disabled.

mod common;

use common::*;
use serde_json::Value;
use std::{
    collections::BTreeMap,
    io::BufReader,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

const NS: &str = "automon";
const WORKLOADS: [&str; 2] = ["prometheus", "alertmanager"];

/// For each workload, when its count of ready pods changed and to what.
type ReadySeen = Arc<Mutex<BTreeMap<&'static str, Vec<(Instant, usize)>>>>;

/// Every pod of Prometheus and Alertmanager, watched: for each, when its count of ready pods
/// (Ready, not being deleted) changed and to what.
struct PodWatch {
    child: Child,
    seen: ReadySeen,
}

impl PodWatch {
    fn start() -> PodWatch {
        let c = real_cluster();
        let mut child = Command::new(c.tools_bin.join("kubectl"))
            .arg("--kubeconfig")
            .arg(&c.kubeconfig)
            .args(["get", "pods", "-n", NS, "--watch", "-o", "json"])
            .args(["-l", "app.kubernetes.io/name in (prometheus,alertmanager)"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl get pods --watch");
        let stdout = child.stdout.take().unwrap();
        let seen: ReadySeen = Arc::default();
        let record = seen.clone();
        std::thread::spawn(move || {
            let mut pods: BTreeMap<String, (&'static str, bool)> = BTreeMap::new();
            let stream = serde_json::Deserializer::from_reader(BufReader::new(stdout));
            for pod in stream.into_iter::<Value>().map_while(Result::ok) {
                let Some(workload) = WORKLOADS
                    .into_iter()
                    .find(|w| pod["metadata"]["labels"][*w] == "automon")
                else {
                    continue;
                };
                let ready = pod["metadata"]["deletionTimestamp"].is_null()
                    && pod["status"]["conditions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True");
                let name = pod["metadata"]["name"].as_str().unwrap().to_string();
                pods.insert(name, (workload, ready));
                let now = Instant::now();
                let mut seen = record.lock().unwrap();
                for w in WORKLOADS {
                    let n = pods.values().filter(|(x, r)| *x == w && *r).count();
                    let list = seen.entry(w).or_default();
                    if list.last().is_none_or(|(_, last)| *last != n) {
                        list.push((now, n));
                    }
                }
            }
        });
        let watch = PodWatch { child, seen };
        // Listed first: both have a ready pod before anything changes.
        let deadline = Instant::now() + Duration::from_secs(30);
        while WORKLOADS.iter().any(|w| watch.ready(w) == 0) {
            assert!(
                Instant::now() < deadline,
                "no ready pod seen: {:?}",
                watch.seen.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        watch
    }

    fn ready(&self, workload: &str) -> usize {
        let seen = self.seen.lock().unwrap();
        seen.get(workload)
            .and_then(|l| l.last())
            .map_or(0, |(_, n)| *n)
    }

    /// The longest time `workload` had no ready pod, since the watch started, and how many
    /// times its ready count changed.
    fn longest_window(&self, workload: &str) -> (Duration, usize) {
        let seen = self.seen.lock().unwrap();
        let list = seen.get(workload).cloned().unwrap_or_default();
        let (mut longest, mut since) = (Duration::ZERO, None);
        // From its first ready pod on: the initial list names the pods one by one.
        for (at, n) in list.iter().skip_while(|(_, n)| *n == 0) {
            match (n, since) {
                (0, None) => since = Some(*at),
                (n, Some(s)) if *n > 0 => {
                    longest = longest.max(*at - s);
                    since = None;
                }
                _ => {}
            }
        }
        if let Some(s) = since {
            longest = longest.max(s.elapsed());
        }
        (longest, list.len())
    }
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The uids of `workload`'s pods now.
fn pod_uids(workload: &str) -> Vec<String> {
    let pods = real_cluster().get_json(&[
        "get",
        "pods",
        "-n",
        NS,
        "-l",
        &format!("{workload}=automon"),
    ]);
    pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["uid"].as_str().unwrap().to_string())
        .collect()
}

/// The latest revision of the stack, when one is installed.
fn installed_revision() -> Option<u32> {
    let out = run(real_cluster().automon().args(["history", "-o", "json"]));
    if out.code != 0 {
        return None;
    }
    let v: Value = serde_json::from_str(&out.stdout).ok()?;
    let revisions = v.as_array().or_else(|| v["revisions"].as_array())?;
    revisions
        .iter()
        .filter_map(|r| r["revision"].as_u64())
        .max()
        .map(|n| n as u32)
}

/// The CPU request `enable` sets for `workload` now (a `--set` changes it).
fn cpu_request(workload: &str) -> String {
    let kind = if workload == "prometheus" {
        "prometheus"
    } else {
        "alertmanager"
    };
    let cr = real_cluster().get_json(&["get", kind, "automon", "-n", NS]);
    cr["spec"]["resources"]["requests"]["cpu"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn enable_replaces_prometheus_and_alertmanager_pods_with_one_ready_throughout() {
    let c = real_cluster();
    let before = installed_revision();
    let enable = |sets: &[&str]| c.enable_waiting(sets);
    if before.is_none() {
        enable(&[]).success();
    }
    // Leave the stack as it was found, whatever the assertions say.
    at_exit(move || {
        let c = real_cluster();
        let out = match before {
            Some(n) => {
                run(c
                    .automon()
                    .args(["rollback", &n.to_string(), "--wait", "--timeout", "10m"]))
            }
            None => run(c.automon().args(["disable", "--yes"])),
        };
        eprintln!(
            "restoring the stack ({before:?}): exit {}\n{}",
            out.code, out.stderr
        );
    });

    // A change of both pod templates: their CPU requests, to a value they do not have now.
    let next = |now: String, a: &'static str, b: &'static str| if now == a { b } else { a };
    let prometheus_cpu = next(cpu_request("prometheus"), "290m", "310m");
    let alertmanager_cpu = next(cpu_request("alertmanager"), "12m", "14m");
    let uids_before: Vec<Vec<String>> = WORKLOADS.iter().map(|w| pod_uids(w)).collect();
    let watch = PodWatch::start();
    let out = enable(&[
        &format!("prometheus.resources.requests.cpu={prometheus_cpu}"),
        &format!("alertmanager.resources.requests.cpu={alertmanager_cpu}"),
    ]);
    assert_eq!(out.code, 0, "enable failed: {out:#?}");
    for w in WORKLOADS {
        let (window, changes) = watch.longest_window(w);
        eprintln!(
            "with the second replica: {w} had no ready pod for {} ms at the longest ({changes} changes of its ready count seen)",
            window.as_millis()
        );
        assert_eq!(
            window,
            Duration::ZERO,
            "{w} had a window: {:?}",
            watch.seen.lock().unwrap()
        );
        assert!(
            out.stderr
                .contains(&format!("{w}.monitoring.coreos.com/automon: rolled out in"))
                && out.stderr.contains("with a ready pod throughout"),
            "{}",
            out.stderr
        );
    }
    drop(watch);

    // Replaced, and back to one replica, one pod, nothing lent left.
    for (w, uids) in WORKLOADS.iter().zip(&uids_before) {
        let now = pod_uids(w);
        assert_eq!(now.len(), 1, "{w}: {now:?}");
        assert!(!uids.contains(&now[0]), "{w}'s pod was not replaced");
        let cr = c.get_json(&["get", w, "automon", "-n", NS]);
        assert_eq!(cr["spec"]["replicas"], 1, "{w}");
        let cpu = if *w == "prometheus" {
            prometheus_cpu
        } else {
            alertmanager_cpu
        };
        assert_eq!(cr["spec"]["resources"]["requests"]["cpu"], cpu, "{w}");
        let sts = c.get_json(&["get", "statefulset", &format!("{w}-automon"), "-n", NS]);
        assert_eq!(sts["spec"]["replicas"], 1, "{w}");
    }
    let released = c.get_json(&[
        "get",
        "pods",
        "-n",
        NS,
        "-l",
        "automon.io/released-by-surge",
    ]);
    assert_eq!(
        released["items"],
        serde_json::json!([]),
        "lent pods left behind"
    );
    // Nothing else changes on a second run: no surge, nothing replaced.
    let again = enable(&[
        &format!("prometheus.resources.requests.cpu={prometheus_cpu}"),
        &format!("alertmanager.resources.requests.cpu={alertmanager_cpu}"),
    ])
    .success();
    assert!(!again.stderr.contains("Surge"), "{}", again.stderr);

    // Without the second replica, the way the StatefulSet controller replaces a pod: deleted,
    // then its successor created.
    let watch = PodWatch::start();
    for w in WORKLOADS {
        c.kubectl(&[
            "delete",
            "pod",
            &format!("{w}-automon-0"),
            "-n",
            NS,
            "--wait=false",
        ])
        .success();
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while WORKLOADS
        .iter()
        .any(|w| watch.longest_window(w).1 < 3 || watch.ready(w) == 0)
    {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            watch.seen.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for w in WORKLOADS {
        let (window, _) = watch.longest_window(w);
        eprintln!(
            "without it (the pod deleted, as the controller replaces it): {w} had no ready pod for {} ms",
            window.as_millis()
        );
        assert!(window > Duration::ZERO, "{w}");
    }
}
