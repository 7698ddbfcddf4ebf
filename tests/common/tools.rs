//! Real tools run out of cluster beside the tests: promtool, and Prometheus, Alertmanager,
//! node_exporter and kube-state-metrics as processes on 127.0.0.1, built once through
//! `tests/cluster/build-tools` and killed when the test ends.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use serde_json::Value;

use super::{Run, cluster, free_port, repo_root};

/// promtool, built once per test binary (see [`built_tool`]).
pub fn promtool() -> &'static Path {
    static PROMTOOL: OnceLock<PathBuf> = OnceLock::new();
    PROMTOOL.get_or_init(|| built_tool("prometheus", "promtool"))
}

/// A test tool built through `tests/cluster/build-tools <target>` (cached after the first
/// build), e.g. `built_tool("prometheus", "promtool")`, so that tests work on a fresh machine.
pub fn built_tool(target: &str, name: &str) -> PathBuf {
    let out = Command::new(repo_root().join("tests/cluster/build-tools"))
        .arg(target)
        .output()
        .expect("run tests/cluster/build-tools");
    assert!(
        out.status.success(),
        "build-tools {target} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = String::from_utf8(out.stdout).expect("build-tools prints a path");
    PathBuf::from(bin.trim()).join(name)
}

/// A value pinned in tests/cluster/versions.env (`NAME=value`), e.g.
/// `pinned("PROMETHEUS_OPERATOR_VERSION")`.
pub fn pinned(name: &str) -> String {
    let path = repo_root().join("tests/cluster/versions.env");
    let text = std::fs::read_to_string(&path).expect("read tests/cluster/versions.env");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("{} pins no {name}", path.display()))
        .trim()
        .to_string()
}

/// `promtool <args>` run in a fresh directory holding `files` (name, text), which `args` name
/// by their relative names.
pub fn promtool_with(files: &[(&str, &str)], args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    Run::from(
        Command::new(promtool())
            .current_dir(dir.path())
            .args(args)
            .output()
            .expect("run promtool"),
    )
}

/// A child process (a real Prometheus, an exporter, a watching `status`) with its output in
/// a log file, killed when the test ends, passed or not.
pub struct Process(pub std::process::Child, pub &'static str);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Process {
    pub fn spawn(name: &'static str, cmd: &mut Command, log: &Path) -> Self {
        let log = std::fs::File::create(log).expect("log file");
        let child = cmd
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Process(child, name)
    }

    pub fn assert_running(&mut self, log: &Path) {
        if let Ok(Some(status)) = self.0.try_wait() {
            panic!(
                "{} exited ({status}):\n{}",
                self.1,
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
    }
}

/// A real node_exporter (from [`built_tool`]) on a free port of 127.0.0.1, logging to
/// `dir`/node_exporter.log: the process, its log and its port.
pub fn spawn_node_exporter(dir: &Path) -> (Process, PathBuf, u16) {
    let port = free_port();
    let log = dir.join("node_exporter.log");
    let process = Process::spawn(
        "node_exporter",
        Command::new(built_tool("node_exporter", "node_exporter"))
            .arg(format!("--web.listen-address=127.0.0.1:{port}")),
        &log,
    );
    (process, log, port)
}

/// The real kube-state-metrics (from [`built_tool`]), run out of cluster against the local
/// cluster with exactly the arguments `render` gives its Deployment in `objects` (its ports
/// chosen here, on 127.0.0.1), logging to `dir`/kube-state-metrics.log: the process, its log
/// and its metrics port.
pub fn spawn_kube_state_metrics(objects: &[Value], dir: &Path) -> (Process, PathBuf, u16) {
    let deployment = objects
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "kube-state-metrics")
        .expect("the kube-state-metrics Deployment");
    let args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("kube-state-metrics' arguments")
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .filter(|a| !a.starts_with("--port=") && !a.starts_with("--telemetry-port="));
    let (port, telemetry_port) = (free_port(), free_port());
    let log = dir.join("kube-state-metrics.log");
    let process = Process::spawn(
        "kube-state-metrics",
        Command::new(built_tool(
            "kube_state_metrics",
            &format!(
                "kube-state-metrics-{}",
                pinned("KUBE_STATE_METRICS_VERSION")
            ),
        ))
        .args(args)
        .arg(format!("--kubeconfig={}", cluster().kubeconfig.display()))
        .args(["--host=127.0.0.1", "--telemetry-host=127.0.0.1"])
        .arg(format!("--port={port}"))
        .arg(format!("--telemetry-port={telemetry_port}")),
        &log,
    );
    (process, log, port)
}

/// A real Prometheus (`prometheus`, from [`built_tool`]) on 127.0.0.1:`port`, with its
/// configuration in `dir`/prometheus.yaml (rule files beside it) and its data in `dir`/data;
/// its log is the path returned.
pub fn spawn_prometheus(prometheus: &Path, dir: &Path, port: u16) -> (Process, PathBuf) {
    spawn_prometheus_with(prometheus, dir, port, &[])
}

/// [`spawn_prometheus`] with more flags (`--web.enable-remote-write-receiver`).
pub fn spawn_prometheus_with(
    prometheus: &Path,
    dir: &Path,
    port: u16,
    flags: &[&str],
) -> (Process, PathBuf) {
    let log = dir.join("prometheus.log");
    let process = Process::spawn(
        "prometheus",
        Command::new(prometheus)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yaml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(flags),
        &log,
    );
    (process, log)
}

/// A real Alertmanager (from [`built_tool`]) on a free port of 127.0.0.1 with `config` (YAML) in
/// `dir`/alertmanager.yaml, its data in `dir`/alertmanager and gossip off (no cluster port),
/// logging to `dir`/alertmanager.log: the process, its log and its port.
pub fn spawn_alertmanager(dir: &Path, config: &str) -> (Process, PathBuf, u16) {
    let port = free_port();
    let file = dir.join("alertmanager.yaml");
    std::fs::write(&file, config).unwrap();
    let log = dir.join("alertmanager.log");
    let process = Process::spawn(
        "alertmanager",
        Command::new(built_tool("alertmanager", "alertmanager"))
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.path={}",
                dir.join("alertmanager").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address="),
        &log,
    );
    (process, log, port)
}
