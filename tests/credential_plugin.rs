//! A kubeconfig's exec credential plugin that never returns cannot hold a command: it ends at
//! the deadline (`--request-timeout`) and names the plugin. No cluster: the plugin hangs before
//! anything is dialed, and the server is a loopback port nothing listens on.

mod common;

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use common::*;

#[test]
fn a_credential_plugin_that_never_answers_ends_at_the_deadline_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("plugin.pid");
    let plugin = dir.path().join("get-token");
    write_script(
        &plugin,
        &format!(
            "#!/bin/sh\necho $$ > '{}'\nexec sleep 1000\n",
            pid_file.display()
        ),
    );
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\n\
             clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n\
             users:\n- name: u\n  user:\n{}\
             contexts:\n- name: ctx\n  context: {{cluster: c, user: u}}\n\
             current-context: ctx\n",
            exec_user(&plugin)
        ),
    )
    .unwrap();
    let (stdout, stderr) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let started = Instant::now();
    let mut child = automon()
        .args(["status", "--request-timeout", "2s", "--kubeconfig"])
        .arg(&kubeconfig)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    // Never wait on it for ever either: a hang is the failure this test is about.
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let elapsed = started.elapsed();
    // The plugin outlives the command (kube runs it and keeps no handle): end it here.
    if let Ok(pid) = std::fs::read_to_string(&pid_file) {
        let _ = std::process::Command::new("kill").arg(pid.trim()).status();
    }
    let stderr = std::fs::read_to_string(&stderr).unwrap();
    let status = status.unwrap_or_else(|| panic!("still running after 30s:\n{stderr}"));
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}\n{stderr}");
    assert_eq!(status.code(), Some(EXIT_UNAUTHORIZED), "{stderr}");
    let want = format!(
        "the credential plugin \"{}\" (users[0].user.exec in {}) did not answer in 2s; run it yourself to see why, or raise --request-timeout",
        plugin.display(),
        kubeconfig.display()
    );
    assert!(stderr.contains(&want), "want {want:?} in:\n{stderr}");
}
