//! The plugin reaches a cluster exactly as kubectl does, and says clearly why when it cannot.
//! Every test runs the real binary against the local control plane.

mod common;

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::*;

/// A namespace with nothing installed: whether automon is there is a `get configmaps` the API
/// server answers only to a user it authenticated and RBAC allows (an admin: "not installed").
const NOTHING_HERE: &str = "automon-nothing-here";

#[test]
fn version_shows_plugin_pinned_components_and_server() {
    let c = cluster();
    let out = run(automon_admin().arg("version")).success();
    assert!(
        out.stdout.starts_with("Plugin Version: v"),
        "{}",
        out.stdout
    );
    assert_has(&out.stdout, "Server Version: v1.36.");
    assert_has(&out.stdout, &c.server);
    for header in ["COMPONENT", "VERSION", "IMAGE"] {
        assert!(out.stdout.contains(header));
    }
    for component in [
        "prometheus-operator",
        "prometheus",
        "alertmanager",
        "grafana",
        "node-exporter",
        "kube-state-metrics",
    ] {
        assert!(
            out.stdout.contains(component),
            "{component} missing:\n{}",
            out.stdout
        );
    }
    assert!(out.stderr.is_empty(), "{}", out.stderr);
}

#[test]
fn version_json_is_for_scripts() {
    let out = run(automon_admin().args(["version", "-o", "json"])).success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(v["pluginVersion"].as_str().unwrap().starts_with('v'));
    assert!(
        v["server"]["gitVersion"]
            .as_str()
            .unwrap()
            .starts_with("v1.36.")
    );
    assert_eq!(v["server"]["context"], "automon-local");
    assert!(v["components"].as_array().unwrap().len() >= 6);
}

#[test]
fn version_client_needs_no_cluster() {
    let out =
        run(automon().args(["version", "--client", "--kubeconfig", "/nonexistent"])).success();
    assert!(out.stdout.contains("Plugin Version"));
    assert!(!out.stdout.contains("Server Version"));
}

#[test]
fn kubectl_finds_the_plugin_on_path() {
    let c = cluster();
    let plugin_dir = Path::new(env!("CARGO_BIN_EXE_kubectl-automon"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}:/usr/bin:/bin",
        plugin_dir.display(),
        c.tools_bin.display()
    );
    let mut cmd = std::process::Command::new(c.tools_bin.join("kubectl"));
    cmd.args(["automon", "version"])
        .env("PATH", path)
        .env("KUBECONFIG", &c.kubeconfig)
        .env("NO_COLOR", "1");
    let out = Run::from(cmd.output().unwrap()).success();
    assert!(out.stdout.contains("Server Version: v1.36."), "{out:#?}");

    let mut list = std::process::Command::new(c.tools_bin.join("kubectl"));
    list.args(["plugin", "list", "--name-only"])
        .env("PATH", format!("{}:/usr/bin:/bin", plugin_dir.display()));
    let out = Run::from(list.output().unwrap());
    assert!(out.stdout.contains("kubectl-automon"), "{out:#?}");
}

#[test]
fn help_speaks_as_a_kubectl_plugin() {
    let out = run(automon().arg("--help")).success();
    assert!(
        out.stdout.contains("Usage: kubectl automon"),
        "{}",
        out.stdout
    );
    for flag in [
        "--kubeconfig",
        "--context",
        "--cluster",
        "--user",
        "--namespace",
        "--request-timeout",
        "--as ",
        "--as-group",
    ] {
        assert!(out.stdout.contains(flag), "{flag} missing from help");
    }
}

#[test]
fn unknown_flag_is_a_usage_error() {
    run(automon().args(["version", "--bogus"]))
        .code(2)
        .stderr_has("--bogus");
}

#[test]
fn completion_scripts() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run(automon().args(["completion", shell])).success();
        assert!(out.stdout.contains("kubectl-automon"), "{shell}");
    }
}

#[test]
fn missing_context_lists_the_ones_that_exist() {
    run(automon_admin().args(["version", "--context", "production"]))
        .code(EXIT_KUBECONFIG)
        .stderr_has("context \"production\" does not exist")
        .stderr_has("available contexts: automon-local");
}

#[test]
fn missing_user_and_cluster_are_named() {
    run(automon_admin().args(["version", "--user", "nobody"]))
        .code(EXIT_KUBECONFIG)
        .stderr_has("user \"nobody\" does not exist")
        .stderr_has("available users: admin");
    run(automon_admin().args(["version", "--cluster", "elsewhere"]))
        .code(EXIT_KUBECONFIG)
        .stderr_has("cluster \"elsewhere\" does not exist");
}

#[test]
fn no_kubeconfig_anywhere() {
    run(automon().arg("version"))
        .code(EXIT_KUBECONFIG)
        .stderr_has("no kubeconfig found");
    run(automon().args(["version", "--kubeconfig", "/nonexistent/kubeconfig"]))
        .code(EXIT_KUBECONFIG)
        .stderr_has("/nonexistent/kubeconfig");
}

#[test]
fn kubeconfig_variable_with_several_paths_merges_like_kubectl() {
    let c = cluster();
    let text = c.kubeconfig_text();
    let server = yaml_value(&text, "server");
    let ca = yaml_value(&text, "certificate-authority-data");
    let token = yaml_value(&text, "token");
    // Cluster and user in one file, the context in another, a missing file in between.
    let (_d1, creds) = write_temp(
        "creds",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c1\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: u1\n  user:\n    token: {token}\n"
        ),
    );
    let (_d2, ctx) = write_temp(
        "ctx",
        "apiVersion: v1\nkind: Config\ncontexts:\n- name: split\n  context: {cluster: c1, user: u1}\ncurrent-context: split\n",
    );
    let joined = format!(
        "{}:/nonexistent/kubeconfig:{}",
        ctx.display(),
        creds.display()
    );
    let out = run(automon().arg("version").env("KUBECONFIG", joined)).success();
    assert!(out.stdout.contains("(context split)"), "{}", out.stdout);
}

#[test]
fn unreachable_server_is_named() {
    let port = free_port();
    let (_d, kc) = cluster().kubeconfig_to(port);
    run(automon().arg("version").arg("--kubeconfig").arg(&kc))
        .code(EXIT_UNREACHABLE)
        .stderr_has(&format!(
            "cannot reach the API server at https://127.0.0.1:{port}"
        ))
        .stderr_has("connection refused");
}

#[test]
fn silent_server_fails_within_request_timeout() {
    // Accepts connections and never answers.
    let port = fake_http_server(None);
    let (_d, kc) = cluster().kubeconfig_to(port);
    let started = Instant::now();
    run(automon()
        .args(["version", "--request-timeout", "2s"])
        .arg("--kubeconfig")
        .arg(&kc))
    .code(EXIT_UNREACHABLE)
    .stderr_has(&format!(
        "https://127.0.0.1:{port} did not answer within 2s"
    ));
    // Generous bound: the point is that it does not hang, not how fast it gives up.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn rejected_token_says_credentials_were_rejected() {
    let c = cluster();
    let token = c.admin_token();
    let (_d, kc) = c.kubeconfig_with(|text| text.replace(&token, "not-a-valid-token"));
    run(automon().arg("version").arg("--kubeconfig").arg(&kc))
        .code(EXIT_UNAUTHORIZED)
        .stderr_has("rejected the credentials of user \"admin\" (401 Unauthorized)");
}

#[test]
fn forbidden_names_user_verb_and_resource() {
    let c = cluster();
    // The limited user may read /version but not impersonate anyone.
    run(automon()
        .arg("version")
        .env("KUBECONFIG", &c.limited_kubeconfig))
    .success();
    run(automon()
        .args(["version", "--as", "admin"])
        .env("KUBECONFIG", &c.limited_kubeconfig))
    .code(EXIT_FORBIDDEN)
    // Kubernetes 1.36 checks constrained impersonation first and names that verb.
    .stderr_has("forbidden: user \"limited\" may not impersonate")
    .stderr_has("ask a cluster administrator");
}

/// `--as` and `--as-group` reach the API server: as a user with no binding at all, the admin is
/// refused what it may do itself, and the refusal names that user; with a group that may do
/// anything, the same user is let through.
#[test]
fn impersonation_flags_reach_the_server() {
    let status = |flags: &[&str]| {
        run(automon_admin()
            .args(["status", "-n", NOTHING_HERE])
            .args(flags))
    };
    status(&[]).code(EXIT_NOT_INSTALLED).stdout_has(&format!(
        "automon is not installed in namespace {NOTHING_HERE}"
    ));
    status(&["--as", "limited"])
        .code(EXIT_FORBIDDEN)
        .stderr_has(&format!(
            "forbidden: user \"limited\" may not get configmaps in namespace \"{NOTHING_HERE}\""
        ));
    status(&["--as", "limited", "--as-group", "system:masters"])
        .code(EXIT_NOT_INSTALLED)
        .stdout_has(&format!(
            "automon is not installed in namespace {NOTHING_HERE}"
        ));
}

/// A kubeconfig whose only credential is an exec plugin answering `token`: the API server
/// authenticates the plugin's user. Without the plugin, the same kubeconfig is anonymous.
#[test]
fn exec_credential_plugin_supplies_the_token() {
    let c = cluster();
    let admin = c.admin_token();
    let limited = yaml_value(
        &std::fs::read_to_string(&c.limited_kubeconfig).unwrap(),
        "token",
    );
    let credential = format!("  user:\n    token: {admin}\n");
    let status = |kubeconfig: &Path| {
        run(automon()
            .args(["status", "-n", NOTHING_HERE, "--kubeconfig"])
            .arg(kubeconfig))
    };
    let with_plugin = |token: &str| {
        let dir = tempfile::tempdir().unwrap();
        let plugin = dir.path().join("get-token");
        write_script(
            &plugin,
            &format!(
                "#!/bin/sh\necho '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{token}\"}}}}'\n"
            ),
        );
        let kubeconfig = dir.path().join("kubeconfig");
        let user = format!("  user:\n{}", exec_user(&plugin));
        std::fs::write(&kubeconfig, c.kubeconfig_text().replace(&credential, &user)).unwrap();
        (dir, kubeconfig)
    };

    let (_d, anonymous) = c.kubeconfig_with(|text| text.replace(&credential, "  user: {}\n"));
    status(&anonymous)
        .code(EXIT_FORBIDDEN)
        .stderr_has("forbidden: user \"system:anonymous\" may not get configmaps");
    let (_d, as_limited) = with_plugin(&limited);
    status(&as_limited)
        .code(EXIT_FORBIDDEN)
        .stderr_has("forbidden: user \"limited\" may not get configmaps");
    let (_d, as_admin) = with_plugin(&admin);
    status(&as_admin)
        .code(EXIT_NOT_INSTALLED)
        .stdout_has(&format!(
            "automon is not installed in namespace {NOTHING_HERE}"
        ));
}

/// A CONNECT proxy on loopback that tunnels every host to the local API server and records
/// what it was asked for.
fn connect_proxy(api: String) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for mut client in listener.incoming().flatten() {
            let api = api.clone();
            let record = record.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                record.lock().unwrap().push(line);
                let Ok(upstream) = TcpStream::connect(&api) else {
                    return;
                };
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .unwrap();
                let (mut a, mut b) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let (mut c, mut d) = (client, upstream);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut a, &mut b);
                });
                let _ = std::io::copy(&mut d, &mut c);
            });
        }
    });
    (port, seen)
}

#[test]
fn https_proxy_from_environment_and_no_proxy() {
    let c = cluster();
    let api = c.server.trim_start_matches("https://").to_string();
    let api_port = api.rsplit(':').next().unwrap().to_string();
    let (proxy_port, seen) = connect_proxy(api);
    // A server name that does not resolve here: only the proxy can reach it. The certificate
    // is for localhost, which tls-server-name asks for.
    let (_d, kc) = c.kubeconfig_with(|text| {
        text.replace(&c.server, &format!("https://api.automon.test:{api_port}"))
            .replace(
                "    certificate-authority-data:",
                "    tls-server-name: localhost\n    certificate-authority-data:",
            )
    });
    run(automon()
        .arg("version")
        .arg("--kubeconfig")
        .arg(&kc)
        .env("HTTPS_PROXY", format!("http://127.0.0.1:{proxy_port}"))
        .env_remove("NO_PROXY"))
    .success();
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with(&format!("CONNECT api.automon.test:{api_port}"))),
        "{:?}",
        seen.lock().unwrap()
    );

    // NO_PROXY takes the host out of the proxy's hands: the name does not resolve.
    run(automon()
        .args(["version", "--request-timeout", "10s"])
        .arg("--kubeconfig")
        .arg(&kc)
        .env("HTTPS_PROXY", format!("http://127.0.0.1:{proxy_port}"))
        .env("NO_PROXY", "automon.test"))
    .code(EXIT_UNREACHABLE)
    .stderr_has("https://api.automon.test");
}

#[test]
fn proxy_url_in_kubeconfig_is_used() {
    let c = cluster();
    let api = c.server.trim_start_matches("https://").to_string();
    let (proxy_port, seen) = connect_proxy(api.clone());
    let (_d, kc) = c.kubeconfig_with(|text| {
        text.replace(
            "    certificate-authority-data:",
            &format!(
                "    proxy-url: http://127.0.0.1:{proxy_port}\n    certificate-authority-data:"
            ),
        )
    });
    run(automon().arg("version").arg("--kubeconfig").arg(&kc)).success();
    // Every connection of version's requests (the server's version, the stack's) went through
    // the proxy to the API server: usually one, reused; on a loaded machine the pool may open
    // a second, which is no less proxied.
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty(), "the proxy saw no connection");
    for s in &seen {
        assert_eq!(s, &format!("CONNECT {api} HTTP/1.1"), "{seen:?}");
    }
}
