//! `kubectl automon reconcile --loop` as a background process of a test, its log collected as it
//! comes, and the Events it publishes on Nodes.

use std::process::Command;

use super::{automon_admin, get_json};

/// `kubectl automon reconcile --loop` running in the background, its log (stderr) collected as
/// it comes; killed when dropped.
pub struct ReconcileLoop {
    pub child: std::process::Child,
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
    pub identity: String,
}

impl ReconcileLoop {
    /// Starts the loop for the stack in `ns` as `identity`, with `extra` flags, and waits for
    /// its first full sync (or, with another loop leading, for it to say so).
    pub fn start(ns: &str, identity: &str, extra: &[&str]) -> ReconcileLoop {
        ReconcileLoop::start_with(automon_admin(), ns, identity, extra)
    }

    /// [`ReconcileLoop::start`] with the binary already pointed at a cluster (`automon()` with
    /// the real nodes' kubeconfig, say).
    pub fn start_with(mut cmd: Command, ns: &str, identity: &str, extra: &[&str]) -> ReconcileLoop {
        use std::io::BufRead as _;
        let mut child = cmd
            .args(["reconcile", "--loop", "-n", ns, "--identity", identity])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start reconcile --loop");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut l = ReconcileLoop {
            child,
            log,
            identity: identity.to_string(),
        };
        l.wait_for_log("Synced", 60);
        l
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log has `needle`; panics with the log after `secs`.
    #[track_caller]
    pub fn wait_for_log(&mut self, needle: &str, secs: u64) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while !self.log().contains(needle) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the loop exited ({status}) before {needle:?}:\n{}",
                    self.log()
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {needle:?} in the loop's log within {secs}s:\n{}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// The address `--metrics-addr 127.0.0.1:0` was bound to, from the log.
    pub fn metrics_url(&self) -> String {
        let log = self.log();
        let line = log
            .lines()
            .find(|l| l.starts_with("Metrics"))
            .unwrap_or_else(|| panic!("no Metrics line:\n{log}"));
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .trim_end_matches("/metrics")
            .to_string()
    }

    /// Sends SIGTERM and waits for the exit: its code and how long it took.
    pub fn terminate(&mut self) -> (i32, std::time::Duration) {
        let started = std::time::Instant::now();
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        (status.code().unwrap_or(-1), started.elapsed())
    }

    /// SIGKILL: the loop dies without releasing anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ReconcileLoop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Events (events.k8s.io) the loop `identity` published on Nodes: (type, reason, node,
/// related object's name, note).
pub fn node_events(identity: &str) -> Vec<(String, String, String, String, String)> {
    let list = get_json(&["get", "events.events.k8s.io", "-n", "default"]);
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reportingInstance"] == identity && e["regarding"]["kind"] == "Node")
        .map(|e| {
            (
                s(&e["type"]),
                s(&e["reason"]),
                s(&e["regarding"]["name"]),
                s(&e["related"]["name"]),
                s(&e["note"]),
            )
        })
        .collect()
}
