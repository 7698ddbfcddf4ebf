//! The krew install a user runs: the manifest this repository builds passes krew's own
//! validation, and `kubectl krew install --manifest --archive` installs a plugin that kubectl
//! then runs. Offline: krew still checks the archive's sha256 against the manifest.

mod common;

use std::process::Command;

use common::*;

fn tools_bin() -> std::path::PathBuf {
    let out = Command::new(repo_root().join("tests/cluster/build-tools"))
        .args(["kubernetes", "krew"])
        .output()
        .expect("build-tools");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::path::PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

#[test]
fn krew_validates_and_installs_the_plugin() {
    let bin = tools_bin();
    let work = tempfile::tempdir().unwrap();
    let out_dir = work.path().join("krew-out");
    let package = Command::new(repo_root().join("krew/package"))
        .env("AUTOMON_BINARY", env!("CARGO_BIN_EXE_kubectl-automon"))
        .env("KREW_OUT", &out_dir)
        .env(
            "KREW_URI",
            "https://example.invalid/kubectl-automon_linux_amd64.tar.gz",
        )
        .output()
        .unwrap();
    let package = Run::from(package).success();
    let manifest = out_dir.join("automon.yaml");
    assert!(package.stdout.contains("automon.yaml"), "{package:#?}");
    let archive = out_dir.join("kubectl-automon_linux_amd64.tar.gz");

    let validate = Command::new(bin.join("validate-krew-manifest"))
        .arg("-manifest")
        .arg(&manifest)
        .arg("-skip-install")
        .output()
        .unwrap();
    Run::from(validate).success();

    let krew_root = work.path().join("krew-root");
    let path = format!(
        "{}:{}:/usr/bin:/bin",
        krew_root.join("bin").display(),
        bin.display()
    );
    let install = Command::new(bin.join("kubectl"))
        .args(["krew", "install"])
        .arg(format!("--manifest={}", manifest.display()))
        .arg(format!("--archive={}", archive.display()))
        .env("KREW_ROOT", &krew_root)
        .env("PATH", &path)
        .output()
        .unwrap();
    let install = Run::from(install).success();
    assert!(
        install.stderr.contains("Installed plugin: automon"),
        "{install:#?}"
    );

    let version = Command::new(bin.join("kubectl"))
        .args(["automon", "version", "--client"])
        .env("PATH", &path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    Run::from(version).success().stdout_has("Plugin Version: v");

    // A tampered archive is refused: krew checks the sha256 even offline.
    std::fs::write(&archive, b"not the archive").unwrap();
    let again = Command::new(bin.join("kubectl"))
        .args(["krew", "install"])
        .arg(format!("--manifest={}", manifest.display()))
        .arg(format!("--archive={}", archive.display()))
        .env("KREW_ROOT", work.path().join("krew-root-2"))
        .env("PATH", &path)
        .output()
        .unwrap();
    let again = Run::from(again);
    assert_ne!(again.code, 0, "{again:#?}");
}
