//! The krew install a user runs, for every platform the release covers. krew/package writes five
//! archives and the manifest: krew's own validation accepts the manifest; it is exactly what
//! krew-release-bot makes of `.krew.yaml` on a tag; the archives are reproducible from their
//! binaries; `kubectl krew install --manifest --archive` installs each platform's archive (krew
//! checks the sha256 offline too, and refuses a tampered one) and `uninstall` removes it; the
//! linux/amd64 plugin runs from krew's bin, and kubectl completes its arguments through
//! kubectl_complete-automon, set up as krew's caveats say.
//!
//! The test suite packs the binary it built as linux/amd64 and a placeholder file for the other
//! four platforms: packing, manifest and install are what it tests, and building those four needs
//! the release's cross toolchain. krew/cross-check runs these same tests on the real release
//! (AUTOMON_RELEASE_DIR: krew/package's output), after checking each binary itself.

mod common;

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use common::*;
use sha2::{Digest, Sha256};

/// krew's OS_ARCH of every archive, and the name of the plugin's binary in it.
const PLATFORMS: [(&str, &str); 5] = [
    ("linux_amd64", "kubectl-automon"),
    ("linux_arm64", "kubectl-automon"),
    ("darwin_amd64", "kubectl-automon"),
    ("darwin_arm64", "kubectl-automon"),
    ("windows_amd64", "kubectl-automon.exe"),
];
const TAG: &str = concat!("v", env!("CARGO_PKG_VERSION"));

/// Where krew/package wrote the release: the real one (AUTOMON_RELEASE_DIR), or one packed once
/// per test run from this build's binary.
fn release() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("AUTOMON_RELEASE_DIR") {
            return std::fs::canonicalize(dir).expect("AUTOMON_RELEASE_DIR");
        }
        let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("krew-release");
        let _ = std::fs::remove_dir_all(&work);
        let binaries = work.join("binaries");
        for (os_arch, exe) in PLATFORMS {
            let dir = binaries.join(os_arch);
            std::fs::create_dir_all(&dir).unwrap();
            if os_arch == "linux_amd64" {
                std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_kubectl-automon"), dir.join(exe))
                    .unwrap();
            } else {
                let note =
                    format!("placeholder for the {os_arch} build: krew/cross-check builds it\n");
                std::fs::write(dir.join(exe), note).unwrap();
            }
        }
        let out = work.join("out");
        package(&binaries, &out);
        out
    })
}

/// krew/package packing the binaries in `binaries` (DIR/OS_ARCH/EXE) into `out`.
fn package(binaries: &Path, out: &Path) {
    let run = Command::new(repo_root().join("krew/package"))
        .env("AUTOMON_BINARIES", binaries)
        .env("KREW_OUT", out)
        .output()
        .unwrap();
    let run = Run::from(run).success();
    assert_eq!(
        run.stdout.trim(),
        out.join("automon.yaml").to_str().unwrap()
    );
}

fn archive(os_arch: &str) -> PathBuf {
    release().join(format!("kubectl-automon_{os_arch}.tar.gz"))
}

fn sha256(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    format!("{:x}", Sha256::digest(bytes))
}

/// Where build-tools put kubectl, krew and validate-krew-manifest.
fn tools_bin() -> PathBuf {
    built_tool("krew", "krew");
    built_tool("kubernetes", "kubectl")
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `.krew.yaml` as krew-release-bot renders it (Go's text/template with its two actions):
/// `{{ .TagName }}` is the tag, and `{{ addURIAndSha "URL" .TagName }}` is `uri: URL` and, on the
/// next line indented by four spaces, `sha256: ` of that release asset, found here by file name.
fn render_like_krew_release_bot(template: &str, tag: &str, assets: &Path) -> String {
    let action = regex::Regex::new(
        r#"\{\{-?\s*(?:\.TagName|addURIAndSha\s+"([^"]*)"\s+\.TagName)\s*-?\}\}"#,
    )
    .unwrap();
    let tag_name = regex::Regex::new(r"\{\{-?\s*\.TagName\s*-?\}\}").unwrap();
    let rendered = action.replace_all(template, |c: &regex::Captures| match c.get(1) {
        None => tag.to_string(),
        Some(url) => {
            let url = tag_name.replace_all(url.as_str(), tag);
            let file = assets.join(url.rsplit('/').next().unwrap());
            format!("uri: {url}\n    sha256: {}", sha256(&file))
        }
    });
    assert!(
        !rendered.contains("{{"),
        ".krew.yaml uses an action this rendering does not know:\n{rendered}"
    );
    rendered.into_owned()
}

#[test]
fn the_manifest_is_what_krew_release_bot_renders_from_krew_yaml() {
    let template = std::fs::read_to_string(repo_root().join(".krew.yaml")).unwrap();
    let written = std::fs::read_to_string(release().join("automon.yaml")).unwrap();
    assert_eq!(
        written,
        render_like_krew_release_bot(&template, TAG, release())
    );

    // Five platforms, each the archive of its own name with its bin, and the checksum beside it.
    let manifest: serde_json::Value = serde_saphyr::from_str(&written).unwrap();
    assert_eq!(manifest["spec"]["version"], TAG);
    let platforms = manifest["spec"]["platforms"].as_array().unwrap();
    assert_eq!(platforms.len(), PLATFORMS.len(), "{written}");
    for (p, (os_arch, exe)) in platforms.iter().zip(PLATFORMS) {
        let labels = &p["selector"]["matchLabels"];
        assert_eq!(
            format!(
                "{}_{}",
                labels["os"].as_str().unwrap(),
                labels["arch"].as_str().unwrap()
            ),
            os_arch
        );
        assert_eq!(p["bin"], exe);
        let name = format!("kubectl-automon_{os_arch}.tar.gz");
        assert_eq!(
            p["uri"],
            format!("https://github.com/automon/kubectl-automon/releases/download/{TAG}/{name}")
        );
        let sum = sha256(&archive(os_arch));
        assert_eq!(p["sha256"], sum.as_str());
        let beside = std::fs::read_to_string(release().join(format!("{name}.sha256"))).unwrap();
        assert_eq!(beside, format!("{sum}  {name}\n"), "sha256sum -c format");
    }
}

#[test]
fn krew_validates_the_five_platform_manifest() {
    let validate = Command::new(tools_bin().join("validate-krew-manifest"))
        .arg("-manifest")
        .arg(release().join("automon.yaml"))
        // Installing every platform means downloading its uri; the next test installs each
        // archive from the file instead.
        .arg("-skip-install")
        .output()
        .unwrap();
    let validate = Run::from(validate).success();
    assert!(
        validate
            .stderr
            .contains("no overlapping spec.platform[].selector"),
        "{validate:#?}"
    );
}

#[test]
fn each_archive_holds_the_plugin_its_completion_helper_and_the_license() {
    for (os_arch, exe) in PLATFORMS {
        let list = Command::new("tar")
            .args(["--numeric-owner", "-tvzf"])
            .arg(archive(os_arch))
            .output()
            .unwrap();
        let list = Run::from(list).success();
        let helper = if os_arch.starts_with("windows") {
            "kubectl_complete-automon.cmd"
        } else {
            "kubectl_complete-automon"
        };
        let mut entries: Vec<(&str, &str, &str)> = list
            .stdout
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                // mode, owner/group, size, date, time, name
                (f[5], f[0], f[1])
            })
            .collect();
        entries.sort();
        let mut want = vec![
            (exe, "-rwxr-xr-x", "0/0"),
            (helper, "-rwxr-xr-x", "0/0"),
            ("LICENSE", "-rw-r--r--", "0/0"),
            ("README.md", "-rw-r--r--", "0/0"),
        ];
        want.sort();
        assert_eq!(entries, want, "{os_arch}:\n{}", list.stdout);
        assert!(
            list.stdout.lines().all(|l| l.contains("1970-01-01")),
            "{os_arch}: mtime is not the epoch:\n{}",
            list.stdout
        );
    }
}

#[test]
fn archives_are_reproducible_from_their_binaries() {
    let work = tempfile::tempdir().unwrap();
    let binaries = work.path().join("binaries");
    for (os_arch, exe) in PLATFORMS {
        let dir = binaries.join(os_arch);
        std::fs::create_dir_all(&dir).unwrap();
        let untar = Command::new("tar")
            .arg("-xzf")
            .arg(archive(os_arch))
            .arg("-C")
            .arg(&dir)
            .arg(exe)
            .output()
            .unwrap();
        Run::from(untar).success();
    }
    let again = work.path().join("out");
    package(&binaries, &again);
    for (os_arch, _) in PLATFORMS {
        let name = format!("kubectl-automon_{os_arch}.tar.gz");
        assert_eq!(
            sha256(&again.join(&name)),
            sha256(&archive(os_arch)),
            "{name} differs when packed again"
        );
    }
    assert_eq!(
        std::fs::read_to_string(again.join("automon.yaml")).unwrap(),
        std::fs::read_to_string(release().join("automon.yaml")).unwrap()
    );
}

/// `kubectl krew ARGS` with this KREW_ROOT (and KREW_OS/KREW_ARCH of `os_arch`).
fn krew(root: &Path, os_arch: &str, args: &[&str]) -> Run {
    let (os, arch) = os_arch.split_once('_').unwrap();
    let out = Command::new(tools_bin().join("kubectl"))
        .arg("krew")
        .args(args)
        .env("KREW_ROOT", root)
        .env("KREW_OS", os)
        .env("KREW_ARCH", arch)
        .env("PATH", search_path(root))
        .output()
        .unwrap();
    Run::from(out)
}

/// krew's bin first, then kubectl and krew, then the system.
fn search_path(root: &Path) -> String {
    format!(
        "{}:{}:/usr/bin:/bin",
        root.join("bin").display(),
        tools_bin().display()
    )
}

fn install(root: &Path, os_arch: &str) -> Run {
    let manifest = release().join("automon.yaml");
    krew(
        root,
        os_arch,
        &[
            "install",
            &format!("--manifest={}", manifest.display()),
            &format!("--archive={}", archive(os_arch).display()),
        ],
    )
}

#[test]
fn krew_installs_and_uninstalls_every_platform() {
    for (os_arch, exe) in PLATFORMS {
        let root = tempfile::tempdir().unwrap();
        let installed = install(root.path(), os_arch).success();
        let said = format!("{}{}", installed.stdout, installed.stderr);
        assert!(said.contains("Installed plugin: automon"), "{said}");
        // The caveats tell how to set up kubectl's completion of the plugin.
        assert!(said.contains("completion kubectl-plugin"), "{said}");
        let store = root.path().join("store/automon").join(TAG);
        for file in [exe, "LICENSE", "README.md"] {
            assert!(
                store.join(file).is_file(),
                "{os_arch}: no {file} in the store"
            );
        }
        let link = root.path().join("bin").join(exe);
        assert!(link.exists(), "{os_arch}: {} missing", link.display());

        // krew refuses to uninstall without a local index (a git clone of krew-index, which
        // `kubectl krew update` makes); an empty repository stands for it offline.
        let index = root.path().join("index/default");
        std::fs::create_dir_all(&index).unwrap();
        Run::from(
            Command::new("git")
                .args(["init", "-q"])
                .arg(&index)
                .output()
                .unwrap(),
        )
        .success();
        krew(root.path(), os_arch, &["uninstall", "automon"])
            .success()
            .stderr_has("Uninstalled plugin: automon");
        assert!(
            !link.exists(),
            "{os_arch}: uninstall left {}",
            link.display()
        );
        assert!(
            !store.exists(),
            "{os_arch}: uninstall left {}",
            store.display()
        );
    }
}

#[test]
fn krew_refuses_a_tampered_archive() {
    let work = tempfile::tempdir().unwrap();
    let tampered = work.path().join("kubectl-automon_linux_amd64.tar.gz");
    std::fs::write(&tampered, b"not the archive").unwrap();
    let manifest = release().join("automon.yaml");
    let root = work.path().join("krew-root");
    let refused = krew(
        &root,
        "linux_amd64",
        &[
            "install",
            &format!("--manifest={}", manifest.display()),
            &format!("--archive={}", tampered.display()),
        ],
    );
    assert_ne!(refused.code, 0, "{refused:#?}");
    assert!(refused.stderr.contains("checksum"), "{refused:#?}");
}

/// `kubectl ARGS` with krew's bin on PATH.
fn kubectl(root: &Path, args: &[&str]) -> Run {
    let out = Command::new(tools_bin().join("kubectl"))
        .args(args)
        .env("PATH", search_path(root))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    Run::from(out)
}

/// Candidate values of a `kubectl __complete` answer (the directive line and tab-separated
/// descriptions left out).
fn candidates(answer: &Run) -> Vec<String> {
    answer
        .stdout
        .lines()
        .filter(|l| !l.starts_with(':'))
        .map(|l| l.split('\t').next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn the_installed_linux_plugin_runs_and_kubectl_completes_it() {
    let root = tempfile::tempdir().unwrap();
    install(root.path(), "linux_amd64").success();

    let version = kubectl(root.path(), &["automon", "version", "--client"]).success();
    assert!(
        version
            .stdout
            .starts_with(&format!("Plugin Version: {TAG}\nGit Commit:     ")),
        "{version:#?}"
    );

    // What krew's caveats say to do, with the helper the plugin prints: it is the archive's own.
    let printed = kubectl(root.path(), &["automon", "completion", "kubectl-plugin"]).success();
    let shipped = root
        .path()
        .join("store/automon")
        .join(TAG)
        .join("kubectl_complete-automon");
    assert_eq!(printed.stdout, std::fs::read_to_string(&shipped).unwrap());
    let helper = root.path().join("bin/kubectl_complete-automon");
    std::fs::write(&helper, &printed.stdout).unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();

    let subcommands = kubectl(root.path(), &["__complete", "automon", "st"]).success();
    assert_eq!(candidates(&subcommands), ["status"], "{subcommands:#?}");
    assert!(subcommands.stdout.ends_with(":4\n"), "{subcommands:#?}");

    let flags = kubectl(root.path(), &["__complete", "automon", "status", "--"]).success();
    let flags = candidates(&flags);
    for flag in ["--output", "--context", "--namespace"] {
        assert!(flags.iter().any(|f| f == flag), "{flag} not in {flags:?}");
    }

    let components = kubectl(root.path(), &["__complete", "automon", "open", ""]).success();
    assert_eq!(
        candidates(&components),
        ["grafana", "prometheus", "alertmanager", "query"]
    );
}
