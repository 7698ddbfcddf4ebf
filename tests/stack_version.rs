//! Which automon installed the stack, beside this plugin: `version` names it, `status` and
//! `doctor` say what to do when the two differ (enable upgrades an older stack; an older plugin
//! is upgraded first), as `helm` does with a chart's version. The difference never changes a
//! verdict: the stack works whichever version installed it.

mod common;

use common::*;
use serde_json::Value;

/// The version this build is (Cargo.toml's, as `--version` prints it).
fn plugin_version() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

/// `doctor -n <ns> -o json`: the run and its `version` check.
fn doctor_version(ns: &str) -> (Run, Value) {
    let out = run(automon_admin().args(["doctor", "-n", ns, "-o", "json"]));
    let report: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor -o json is not JSON ({e}):\n{out:#?}"));
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "version")
        .unwrap_or_else(|| panic!("no version check:\n{report:#}"))
        .clone();
    (out, check)
}

#[test]
fn status_doctor_and_version_tell_the_plugin_from_the_stack() {
    let ns = "stack-version";
    let _cleanup = Cleanup::fresh(ns);
    let _nodes = nodes_shared();
    enable(ns, &[]).success();
    let plugin = plugin_version();

    // Installed by this build: nothing to say.
    let (_, st) = status_json(ns, &[]);
    assert_eq!(st["stackVersion"]["installed"], plugin.as_str(), "{st:#}");
    assert_eq!(st["stackVersion"]["skew"], "Same");
    let (_, check) = doctor_version(ns);
    assert_eq!(check["level"], "ok", "{check:#}");
    let v = run(automon_admin().args(["version", "-n", ns])).success();
    assert_has(
        &v.stdout,
        &format!("Stack Version:  {plugin} (namespace {ns})"),
    );
    assert!(v.stderr.is_empty(), "{v:?}");

    // An older plugin installed it (0.1.0); then a newer one, 0.10.0, which sorts before
    // 0.2.0 as text and after it as a version; then this version's release candidate, older
    // than the release.
    let cases = [
        ("v0.1.0", "PluginNewer", "older than this plugin"),
        ("v0.10.0", "PluginOlder", "newer than this plugin"),
        (
            &*format!("{plugin}-rc.1"),
            "PluginNewer",
            "older than this plugin",
        ),
    ];
    for (installed, skew, said) in cases {
        parent_written_by(ns, installed, None);
        let fix = if skew == "PluginNewer" {
            format!("run `kubectl automon enable -n {ns}` to upgrade it")
        } else {
            "upgrade the plugin: kubectl krew upgrade automon".to_string()
        };

        let v = run(automon_admin().args(["version", "-n", ns])).success();
        assert_has(
            &v.stdout,
            &format!("Stack Version:  {installed} (namespace {ns})"),
        );
        assert_has(&v.stderr, said);
        assert_has(&v.stderr, &fix);
        let json = run(automon_admin().args(["version", "-n", ns, "-o", "json"])).success();
        let json: Value = serde_json::from_str(&json.stdout).unwrap();
        assert_eq!(json["stack"]["state"], "Installed", "{json:#}");
        assert_eq!(json["stack"]["installed"], installed, "{json:#}");
        assert_eq!(json["stack"]["skew"], skew, "{json:#}");

        // Said by status, in its table form too, and never one of its problems: the verdict
        // (and exit code) is the stack's health alone.
        let (_, st) = status_json(ns, &[]);
        assert_eq!(st["stackVersion"]["skew"], skew, "{st:#}");
        let problems = format!("{}{}", st["problems"], st["unknown"]);
        assert_lacks(&problems, "installed by automon");
        let text = run(automon_admin().args(["status", "-n", ns]));
        assert_has(
            &text.stdout,
            &format!(
                "Version:   the stack was installed by automon {installed}, {said} ({plugin}); "
            ),
        );
        assert_has(&text.stdout, &fix);

        // A warning of doctor's: warnings pass (exit 0 unless another check fails).
        let (_, check) = doctor_version(ns);
        assert_eq!(check["level"], "warn", "{check:#}");
        assert_has(check["message"].as_str().unwrap(), said);
        assert!(
            check["fix"].as_str().unwrap().starts_with(&fix),
            "{check:#}"
        );
    }

    // enable upgrades it: this version recorded again.
    enable(ns, &[]).success();
    let (_, check) = doctor_version(ns);
    assert_eq!(check["level"], "ok", "{check:#}");
    let (_, st) = status_json(ns, &[]);
    assert_eq!(st["stackVersion"]["skew"], "Same", "{st:#}");
}

#[test]
fn version_says_not_installed_or_that_it_cannot_tell() {
    let c = cluster();
    let ns = "stack-version-none";
    let v = run(automon_admin().args(["version", "-n", ns])).success();
    assert_has(
        &v.stdout,
        &format!("Stack Version:  not installed (namespace {ns})"),
    );
    let json = run(automon_admin().args(["version", "-n", ns, "-o", "json"])).success();
    let json: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["stack"]["state"], "NotInstalled", "{json:#}");

    // A user who may not read ConfigMaps there still gets the rest, and is told why not.
    let mut limited = automon();
    limited
        .env("KUBECONFIG", &c.limited_kubeconfig)
        .args(["version", "-n", ns]);
    let v = run(&mut limited).success();
    assert_has(
        &v.stdout,
        &format!("Stack Version:  unknown (namespace {ns})"),
    );
    assert_has(&v.stdout, "Server Version: v1.");
    assert_has(
        &v.stderr,
        &format!(
            "cannot tell which version of automon is installed in namespace {ns}: forbidden: user \"limited\" may not get configmaps"
        ),
    );
}
