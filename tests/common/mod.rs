//! Test fixtures: the local cluster (started once per test binary, reused if already up) and
//! the real `kubectl-automon` binary, run the way a user runs it.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::OnceLock,
};

pub struct LocalCluster {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub limited_kubeconfig: PathBuf,
    /// Where kubectl, promtool and the control plane binaries are.
    pub tools_bin: PathBuf,
    pub server: String,
}

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn localcluster_script() -> PathBuf {
    repo_root().join("tests/cluster/localcluster")
}

/// Starts the local cluster unless it is up; every test in a binary shares it.
pub fn cluster() -> &'static LocalCluster {
    static CLUSTER: OnceLock<LocalCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let up = Command::new(localcluster_script())
            .arg("up")
            .status()
            .expect("run tests/cluster/localcluster up");
        assert!(up.success(), "localcluster up failed");
        let env = Command::new(localcluster_script())
            .arg("env")
            .output()
            .expect("localcluster env");
        let env = String::from_utf8(env.stdout).unwrap();
        let var = |name: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .unwrap_or_else(|| panic!("localcluster env has no {name}"))
                .to_string()
        };
        let dir = PathBuf::from(var("AUTOMON_LOCALCLUSTER"));
        let tools_bin = PathBuf::from(var("PATH").trim_end_matches(":$PATH"));
        let kubeconfig = PathBuf::from(var("KUBECONFIG"));
        let text = std::fs::read_to_string(&kubeconfig).unwrap();
        let server = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("server: "))
            .unwrap()
            .to_string();
        LocalCluster {
            limited_kubeconfig: dir.join("limited.kubeconfig"),
            dir,
            kubeconfig,
            tools_bin,
            server,
        }
    })
}

impl LocalCluster {
    /// The admin kubeconfig's text, for tests that write variants of it.
    pub fn kubeconfig_text(&self) -> String {
        std::fs::read_to_string(&self.kubeconfig).unwrap()
    }

    /// kubectl from the tools, against the admin kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(self.tools_bin.join("kubectl"));
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        Run::from(cmd.output().expect("run kubectl"))
    }
}

/// The binary under test with a clean environment: no user kubeconfig, no colour, no proxy.
pub fn automon() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubectl-automon"));
    for v in [
        "KUBECONFIG",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
        "KUBERNETES_SERVICE_HOST",
    ] {
        cmd.env_remove(v);
    }
    cmd.env("NO_COLOR", "1");
    cmd.env("HOME", scratch_home());
    cmd
}

/// An empty HOME so that a developer's ~/.kube/config never leaks into a test.
fn scratch_home() -> &'static Path {
    static HOME: OnceLock<tempfile::TempDir> = OnceLock::new();
    HOME.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

/// The binary against the local cluster's admin kubeconfig.
pub fn automon_admin() -> Command {
    let mut cmd = automon();
    cmd.env("KUBECONFIG", &cluster().kubeconfig);
    cmd
}

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

pub fn run(cmd: &mut Command) -> Run {
    Run::from(cmd.output().expect("run kubectl-automon"))
}

impl Run {
    #[track_caller]
    pub fn success(self) -> Self {
        assert_eq!(self.code, 0, "expected success:\n{self:#?}");
        self
    }
    #[track_caller]
    pub fn code(self, code: i32) -> Self {
        assert_eq!(self.code, code, "expected exit code {code}:\n{self:#?}");
        self
    }
    #[track_caller]
    pub fn stderr_has(self, needle: &str) -> Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{self:#?}"
        );
        self
    }
    #[track_caller]
    pub fn stdout_has(self, needle: &str) -> Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{self:#?}"
        );
        self
    }
}

/// Writes `text` to a fresh file in a temp dir that lives as long as the returned guard.
pub fn write_temp(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// The value after `key: ` on the first line that has it.
pub fn yaml_value(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in\n{text}"))
        .to_string()
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

impl LocalCluster {
    /// The prometheus-operator CRDs (as the local cluster's operator build gives them), installed
    /// once into the shared cluster and Established. Idempotent.
    pub fn ensure_crds(&self) {
        let crd = "crd/servicemonitors.monitoring.coreos.com";
        if self.kubectl(&["get", crd]).code != 0 {
            let dir = self.dir.join("crds");
            self.kubectl(&[
                "apply",
                "--server-side",
                "--field-manager",
                "automon-test",
                "-f",
                dir.to_str().unwrap(),
            ])
            .success();
        }
        self.kubectl(&[
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=60s",
        ])
        .success();
    }
}
