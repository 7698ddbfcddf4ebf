//! `open` as a user runs it, on the local cluster: a stack with the real operator, the real
//! Prometheus and Alertmanager answering for their pods (kwok's pods run no containers; the
//! API server reaches the real processes through the local cluster's loopback proxy and kwok's
//! port-forward), and the URL that `open` prints fetched with curl. Grafana cannot run here: a
//! small server answers for its pod. Then the errors a user meets.

mod common;

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{OnceLock, mpsc},
    thread,
    time::{Duration, Instant},
};

use common::*;

const NS: &str = "op-stack";

/// The stack, every component ready, the operator running; shared by the tests of this binary.
fn stack() -> &'static str {
    static SLOT: OnceLock<&'static str> = OnceLock::new();
    SLOT.get_or_init(|| {
        Cleanup::until_exit(NS);
        cluster().ensure_crds();
        ensure_operator();
        enable(NS, &["--wait", "--timeout", "3m"]).success();
        NS
    })
}

/// The first pod of `ns` with `app.kubernetes.io/name=<name>`, which the stack has.
#[track_caller]
fn pod_named(ns: &str, name: &str) -> String {
    pod_of(ns, name).unwrap_or_else(|| panic!("no {name} pod in {ns}"))
}

/// A running `open`: its first stdout lines, and its stderr in a file.
struct Open {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: tempfile::NamedTempFile,
}

impl Open {
    fn start(args: &[&str]) -> Open {
        let stderr = tempfile::NamedTempFile::new().unwrap();
        let mut child = automon_admin()
            .arg("open")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr.reopen().unwrap())
            .spawn()
            .expect("start kubectl-automon open");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Open {
            child,
            lines,
            stderr,
        }
    }

    /// The next line on stdout, within 30 s.
    #[track_caller]
    fn line(&mut self) -> String {
        match self.lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let status = self.child.try_wait();
                panic!(
                    "open printed nothing more (exit: {status:?}); stderr:\n{}",
                    self.stderr()
                )
            }
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr.path()).unwrap_or_default()
    }

    /// Ctrl-C, as a user ends it: it must exit 0, promptly.
    #[track_caller]
    fn interrupt(mut self) -> String {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "open exited {status}:\n{}", self.stderr());
                return self.stderr();
            }
            assert!(Instant::now() < deadline, "open did not stop on SIGINT");
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The URL in open's first line: `Prometheus  http://127.0.0.1:PORT  (forwarding to …)`.
fn url_of(line: &str) -> String {
    line.split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string()
}

/// A real Prometheus (scraping itself), its port.
fn real_prometheus(dir: &Path) -> (Process, u16) {
    let port = free_port();
    std::fs::write(
        dir.join("prometheus.yaml"),
        format!(
            "scrape_configs: [{{job_name: self, static_configs: [{{targets: ['127.0.0.1:{port}']}}]}}]\n"
        ),
    )
    .unwrap();
    let (process, _log) = spawn_prometheus(&built_tool("prometheus", "prometheus"), dir, port);
    (process, port)
}

#[test]
fn open_prometheus_reaches_the_real_prometheus_and_stops_on_ctrl_c() {
    let ns = stack();
    let dir = tempfile::tempdir().unwrap();
    let (_prometheus, port) = real_prometheus(dir.path());
    let pod = pod_named(ns, "prometheus");
    let _exposed = expose(ns, &pod, 9090, port);

    let mut open = Open::start(&["prometheus", "-n", ns]);
    let line = open.line();
    assert!(line.starts_with("Prometheus "), "{line}");
    assert!(
        line.ends_with(&format!("(forwarding to {ns}/{pod}:9090; Ctrl-C stops)")),
        "{line}"
    );
    let url = url_of(&line);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    // Through open's listener, the API server's port-forward, kwok's kubelet server: the real
    // Prometheus answers with its own build information.
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        match curl(&format!("{url}/api/v1/status/buildinfo")) {
            Ok(body) => break body,
            Err(e) if Instant::now() > deadline => panic!("{e}\nopen's stderr:\n{}", open.stderr()),
            Err(_) => thread::sleep(Duration::from_millis(500)),
        }
    };
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success", "{body}");
    assert!(
        v["data"]["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "{body}"
    );
    // A second connection gets a second forward.
    assert!(curl(&format!("{url}/-/ready")).is_ok());
    open.interrupt();
    assert!(
        curl(&format!("{url}/-/ready")).is_err(),
        "the port closes with open"
    );
}

#[test]
fn open_alertmanager_reaches_the_real_alertmanager_on_the_port_asked_for() {
    let ns = stack();
    let dir = tempfile::tempdir().unwrap();
    let (_alertmanager, log, port) = spawn_alertmanager(
        dir.path(),
        "route: {receiver: none}\nreceivers: [{name: none}]\n",
    );
    let pod = pod_named(ns, "alertmanager");
    let _exposed = expose(ns, &pod, 9093, port);

    let local = free_port();
    let mut open = Open::start(&["alertmanager", "-n", ns, "--port", &local.to_string()]);
    let line = open.line();
    assert!(line.starts_with("Alertmanager "), "{line}");
    let url = url_of(&line);
    assert_eq!(url, format!("http://127.0.0.1:{local}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        match curl(&format!("{url}/api/v2/status")) {
            Ok(body) => break body,
            Err(e) if Instant::now() > deadline => panic!(
                "{e}\nopen's stderr:\n{}\nalertmanager:\n{}",
                open.stderr(),
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
            Err(_) => thread::sleep(Duration::from_millis(500)),
        }
    };
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["versionInfo"]["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("0.")),
        "{body}"
    );

    // The port is taken now: a second open on it says so and exits.
    let taken = run(automon_admin().args([
        "open",
        "alertmanager",
        "-n",
        ns,
        "--port",
        &local.to_string(),
    ]));
    assert_ne!(taken.code, 0, "{taken:#?}");
    assert!(
        taken.stderr.contains(&format!("127.0.0.1:{local}")),
        "{taken:#?}"
    );
    assert!(taken.stderr.contains("--port"), "{taken:#?}");
    open.interrupt();
}

/// Grafana itself cannot run here: a server of the test's answers for its pod. `open` prints
/// the URL and how to read the password, never the password; when the pod is replaced, the next
/// connection goes to the new one, and stderr says so.
#[test]
fn open_grafana_prints_how_to_log_in_and_follows_a_replaced_pod() {
    let ns = stack();
    let grafana = fake_http_server(Some(
        "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nConnection: close\r\n\r\nfake grafana\n",
    ));
    let pod = pod_named(ns, "grafana");
    let exposed = expose(ns, &pod, 3000, grafana);

    let mut open = Open::start(&["grafana", "-n", ns]);
    let first = open.line();
    let login = open.line();
    assert!(first.starts_with("Grafana "), "{first}");
    assert!(
        first.ends_with(&format!("(forwarding to {ns}/{pod}:3000; Ctrl-C stops)")),
        "{first}"
    );
    assert_eq!(
        login,
        format!(
            "Login       admin, password: kubectl get secret grafana-admin -n {ns} -o jsonpath='{{.data.admin-password}}' | base64 -d"
        )
    );
    let url = url_of(&first);
    let deadline = Instant::now() + Duration::from_secs(60);
    while curl(&url)
        .map_err(|e| assert!(Instant::now() < deadline, "{e}\n{}", open.stderr()))
        .is_err()
    {
        thread::sleep(Duration::from_millis(500));
    }
    assert!(curl(&url).unwrap().contains("fake grafana"));

    // The Deployment replaces a deleted pod; the new one answers through the same URL.
    cluster()
        .kubectl(&["delete", "pod", "-n", ns, &pod, "--wait=false"])
        .success();
    let deadline = Instant::now() + Duration::from_secs(90);
    let replacement = loop {
        let out = cluster().kubectl(&[
            "get", "pods", "-n", ns, "-l", "app.kubernetes.io/name=grafana", "-o",
            r#"jsonpath={range .items[?(@.status.phase=="Running")]}{.metadata.name}{" "}{.metadata.deletionTimestamp}{"\n"}{end}"#,
        ]);
        let fresh = out
            .stdout
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.contains(' ') && *l != pod)
            .map(str::to_string);
        if let Some(p) = fresh {
            break p;
        }
        assert!(Instant::now() < deadline, "no replacement pod: {out:#?}");
        thread::sleep(Duration::from_millis(500));
    };
    drop(exposed);
    let _exposed = expose(ns, &replacement, 3000, grafana);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match curl(&url) {
            Ok(body) if body.contains("fake grafana") => break,
            r => assert!(Instant::now() < deadline, "{r:?}\n{}", open.stderr()),
        }
        thread::sleep(Duration::from_millis(500));
    }
    let stderr = open.interrupt();
    assert!(
        stderr.contains(&format!(
            "pod {ns}/{pod} is gone; forwarding to {ns}/{replacement}"
        )),
        "{stderr}"
    );
    // The password is in the Secret, and nowhere in what open printed.
    let secret = cluster().kubectl(&[
        "get",
        "secret",
        "grafana-admin",
        "-n",
        ns,
        "-o",
        "jsonpath={.data.admin-password}",
    ]);
    let password = {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(secret.stdout.trim())
            .expect("base64");
        String::from_utf8(bytes).unwrap()
    };
    assert!(password.len() >= 16, "a generated password");
    assert!(
        !first.contains(&password) && !login.contains(&password) && !stderr.contains(&password)
    );
}

#[test]
fn open_says_what_is_wrong() {
    // Not installed: exit 9 and how to install.
    let empty = "op-empty";
    let _cleanup = Cleanup::created(empty);
    let out = run(automon_admin().args(["open", "prometheus", "-n", empty]));
    assert_eq!(out.code, 9, "{out:#?}");
    assert!(
        out.stderr
            .contains(&format!("automon is not installed in namespace {empty}")),
        "{out:#?}"
    );
    assert!(out.stdout.is_empty(), "{out:#?}");

    // A user who may read the stack (the `view` role) but not port-forward: exit 6, the
    // missing permission named, nothing printed on stdout.
    let ns = stack();
    cluster()
        .kubectl(&[
            "create",
            "rolebinding",
            "op-limited-view",
            "-n",
            ns,
            "--clusterrole=view",
            "--user=limited",
        ])
        .success();
    let out = run(automon()
        .env("KUBECONFIG", &cluster().limited_kubeconfig)
        .args(["open", "grafana", "-n", ns]));
    assert_eq!(out.code, 6, "{out:#?}");
    assert!(out.stdout.is_empty(), "{out:#?}");
    assert!(
        out.stderr.contains("create") && out.stderr.contains("pods/portforward"),
        "{out:#?}"
    );
    assert!(
        out.stderr.contains(&format!("namespace \"{ns}\"")),
        "{out:#?}"
    );

    // Not a component open knows.
    let out = run(automon_admin().args(["open", "kibana", "-n", ns]));
    assert_eq!(out.code, 2, "{out:#?}");

    // Thanos Query on a stack of one shard: there is none, and `open prometheus` holds it all.
    let out = run(automon_admin().args(["open", "query", "-n", ns]));
    assert_eq!(out.code, 2, "{out:#?}");
    assert!(out.stdout.is_empty(), "{out:#?}");
    assert!(
        out.stderr.contains(&format!(
            "the stack in namespace {ns} has one Prometheus shard, so it runs no Thanos Query: \
             `kubectl automon open prometheus -n {ns}` holds every series"
        )),
        "{out:#?}"
    );
}
