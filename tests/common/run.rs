//! The binary under test, run the way a user runs it: a clean environment, its exit code and
//! output, the exit codes it promises; and the files a test writes for it (a configuration, a
//! kubeconfig, a credential plugin).

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::OnceLock,
};

/// The exit codes the plugin promises (`src/error.rs`, `exit`) that tests name.
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_KUBECONFIG: i32 = 3;
pub const EXIT_UNREACHABLE: i32 = 4;
pub const EXIT_UNAUTHORIZED: i32 = 5;
pub const EXIT_FORBIDDEN: i32 = 6;
pub const EXIT_NOT_INSTALLED: i32 = 9;

/// The binary under test with a clean environment: no user kubeconfig, no colour, no proxy.
pub fn automon() -> Command {
    automon_build(Path::new(env!("CARGO_BIN_EXE_kubectl-automon")))
}

/// A build of the plugin (the one under test, or an earlier one: tests/upgrade.rs) with the
/// clean environment of [`automon`].
pub fn automon_build(binary: &Path) -> Command {
    let mut cmd = Command::new(binary);
    for v in [
        "KUBECONFIG",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
        "KUBERNETES_SERVICE_HOST",
    ] {
        cmd.env_remove(v);
    }
    // No test leaves loopback: a download the test did not mean (the pinned CRDs when a test
    // forgot --crds-from) goes to a refused port on loopback instead of resolving a public name.
    // The Kubernetes client reads neither variable unless HTTPS_PROXY is set too.
    cmd.env("ALL_PROXY", "http://127.0.0.1:9");
    cmd.env("NO_PROXY", "127.0.0.1,localhost,::1");
    cmd.env("NO_COLOR", "1");
    cmd.env("HOME", scratch_home());
    cmd
}

/// An empty HOME so that a developer's ~/.kube/config never leaks into a test.
fn scratch_home() -> &'static Path {
    static HOME: OnceLock<tempfile::TempDir> = OnceLock::new();
    HOME.get_or_init(|| tempfile::tempdir().unwrap()).path()
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

/// Writes an executable shell script (a credential plugin, say) at `path`.
pub fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A kubeconfig user's `exec` credential plugin running `command`, as the lines under `user:`.
pub fn exec_user(command: &Path) -> String {
    format!(
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n      interactiveMode: Never\n",
        command.display()
    )
}

/// The value after `key: ` on the first line that has it.
pub fn yaml_value(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in\n{text}"))
        .to_string()
}

/// Asserts that `text` contains `needle`, showing the text where it does not.
#[track_caller]
pub fn assert_has(text: &str, needle: &str) {
    assert!(text.contains(needle), "no {needle:?} in:\n{text}");
}

/// Asserts that `text` does not contain `needle`, showing the text where it does.
#[track_caller]
pub fn assert_lacks(text: &str, needle: &str) {
    assert!(!text.contains(needle), "{needle:?} in:\n{text}");
}
