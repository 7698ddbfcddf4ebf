//! Records the git commit the plugin is built from, for `version`: AUTOMON_GIT_COMMIT when set
//! (the release script sets it; so can anyone building from a source archive), else the commit
//! git reports for this checkout, else "unknown" (no git, or not a checkout).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=AUTOMON_GIT_COMMIT");
    let commit = std::env::var("AUTOMON_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            watch_git_head();
            git(&["rev-parse", "HEAD"])
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=AUTOMON_GIT_COMMIT={}", commit.trim());
}

/// Rebuild when HEAD moves: HEAD itself (a checkout, or a detached commit), the branch file it
/// points at, and packed-refs (where the branch lives after `git gc`). Only files that exist are
/// named: cargo reruns a build script on every build for a missing one.
fn watch_git_head() {
    let mut paths = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        paths.push(branch);
    }
    for p in paths {
        if let Some(path) = git(&["rev-parse", "--git-path", &p])
            && std::path::Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}
