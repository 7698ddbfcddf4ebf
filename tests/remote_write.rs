//! Remote write as a user sets it up: `enable` with a Thanos Receive endpoint (the `thanos`
//! preset), basic auth from a Secret the user created, the `cluster` label, two replicas and
//! the Thanos sidecar. The real prometheus-operator's generated configuration carries the
//! endpoint, credentials, queue and dedup labels; a real Prometheus with that remote_write
//! section sends a real node-exporter's series, with those labels and credentials, to a real
//! receiver (a second Prometheus behind a proxy that checks the credentials); promtool accepts
//! the configuration. Everything listens and connects on 127.0.0.1.

mod common;

use std::{
    io::{BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    path::Path,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use common::*;

const NS: &str = "automon-remote-write";
const AUTH_SECRET: &str = "thanos-receive-auth";
const USER: &str = "automon-writer";
const PASSWORD: &str = "not-a-real-password";
const TENANT: &str = "team-test";
/// The endpoint's base; the preset adds Thanos Receive's path.
const RECEIVE: &str = "http://thanos-receive.thanos.svc:10908";
/// The first replica's pod, as the operator names it.
const POD: &str = "prometheus-automon-0";

/// The stack enabled once for every test of this binary (removed, and the operator stopped, when
/// it exits); the operator's generated configuration, parsed.
fn generated() -> &'static Value {
    static CONFIG: OnceLock<Value> = OnceLock::new();
    CONFIG.get_or_init(|| {
        operator_start();
        at_exit(|| drop(OperatorStop));
        Cleanup::until_exit(NS);
        let c = cluster();
        // The user's Secrets come first: the operator reads them when it generates the config.
        c.kubectl(&["create", "namespace", NS]).success();
        c.kubectl(&[
            "create",
            "secret",
            "generic",
            AUTH_SECRET,
            "-n",
            NS,
            &format!("--from-literal=username={USER}"),
            &format!("--from-literal=password={PASSWORD}"),
        ])
        .success();
        c.kubectl(&[
            "create",
            "secret",
            "generic",
            "thanos-objstore",
            "-n",
            NS,
            "--from-literal=objstore.yml=type: FILESYSTEM\nconfig:\n  directory: /tmp/thanos\n",
        ])
        .success();
        let (_d, file) = write_temp(
            "automon.yaml",
            &format!(
                r#"prometheus:
  replicas: 2
  externalLabels:
    cluster: test
  remoteWrite:
  - url: {RECEIVE}
    preset: thanos
    basicAuth:
      secret: {AUTH_SECRET}
      usernameKey: username
      passwordKey: password
    headers:
      THANOS-TENANT: {TENANT}
    queue:
      capacity: 2500
      minShards: 1
      maxShards: 10
      maxSamplesPerSend: 500
      batchSendDeadline: 1s
  thanos:
    objectStorageConfig:
      secret: thanos-objstore
      key: objstore.yml
"#
            ),
        );
        enable(NS, &["-f", file.to_str().unwrap()]).success();
        let text = poll(
            90,
            || generated_config(NS, "automon"),
            |t| t.contains("remote_write:"),
        );
        assert!(
            text.contains("remote_write:"),
            "the operator wrote no remote_write:\n{text}"
        );
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"))
    })
}

#[test]
fn the_operators_configuration_carries_endpoint_credentials_queue_and_dedup_labels() {
    let config = generated();
    let writes = config["remote_write"].as_array().expect("remote_write");
    assert_eq!(writes.len(), 1, "{config:#}");
    let w = &writes[0];
    assert_eq!(w["url"], format!("{RECEIVE}/api/v1/receive"));
    // The operator reads the Secret and writes the credentials into the configuration, which
    // it keeps in a Secret of its own: no file paths for basic auth.
    assert_eq!(
        w["basic_auth"],
        json!({"username": USER, "password": PASSWORD})
    );
    assert_eq!(w["headers"]["THANOS-TENANT"], TENANT);
    let q = &w["queue_config"];
    assert_eq!(
        (
            &q["capacity"],
            &q["min_shards"],
            &q["max_shards"],
            &q["max_samples_per_send"],
            &q["batch_send_deadline"]
        ),
        (
            &json!(2500),
            &json!(1),
            &json!(10),
            &json!(500),
            &json!("1s")
        ),
        "{w:#}"
    );
    let labels = &config["global"]["external_labels"];
    assert_eq!(labels["cluster"], "test", "{labels}");
    // Each replica's own value: the config reloader puts the pod's name in.
    assert_eq!(labels["prometheus_replica"], "$(POD_NAME)", "{labels}");
}

#[test]
fn the_operator_runs_the_thanos_sidecar_behind_a_headless_service() {
    generated();
    eventually(60, "the operator's StatefulSet", || {
        exists(&["statefulset", "-n", NS, "prometheus-automon"])
    });
    let sts = get_json(&["get", "statefulset", "-n", NS, "prometheus-automon"]);
    assert_eq!(sts["spec"]["replicas"], 2);
    let containers = sts["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    let sidecar = containers
        .iter()
        .find(|c| c["name"] == "thanos-sidecar")
        .unwrap_or_else(|| panic!("no thanos-sidecar in {containers:#?}"));
    assert_eq!(sidecar["image"], "quay.io/thanos/thanos:v0.42.4");
    assert!(
        sidecar["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "grpc" && p["containerPort"] == 10901),
        "{sidecar:#}"
    );
    let service = get_json(&["get", "service", "-n", NS, "prometheus-thanos"]);
    assert_eq!(service["spec"]["clusterIP"], "None");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "grpc");
}

/// What the receiving end saw: each request's Authorization and tenant headers.
#[derive(Default)]
struct Seen {
    authorized: usize,
    refused: Vec<String>,
}

/// A proxy on 127.0.0.1 playing Thanos Receive in front of a receiver without auth (a
/// Prometheus, which receives on `/api/v1/write`): forwards each request whose basic-auth
/// credentials and tenant header are the expected ones, answers 401 to any other.
fn authenticating_proxy(upstream: u16, seen: Arc<Mutex<Seen>>) -> u16 {
    use base64::Engine as _;
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let (want, seen) = (want.clone(), seen.clone());
            std::thread::spawn(move || {
                if let Err(e) = forward(client, upstream, &want, &seen) {
                    eprintln!("proxy: {e}");
                }
            });
        }
    });
    port
}

/// One request: its head and body read, checked, sent on with `Connection: close`, and the
/// answer copied back.
fn forward(
    client: TcpStream,
    upstream: u16,
    want: &str,
    seen: &Mutex<Seen>,
) -> std::io::Result<()> {
    let Some(request) = HttpRequest::read(&mut BufReader::new(client.try_clone()?))? else {
        return Ok(());
    };
    let mut client = client;
    let auth = request.header("authorization").unwrap_or_default();
    let tenant = request.header("thanos-tenant").unwrap_or_default();
    if auth != want || tenant != TENANT {
        seen.lock()
            .unwrap()
            .refused
            .push(format!("Authorization {auth:?}, THANOS-TENANT {tenant:?}"));
        return client.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    seen.lock().unwrap().authorized += 1;
    let mut server = TcpStream::connect(("127.0.0.1", upstream))?;
    let request_line = request.head[0].replace("/api/v1/receive", "/api/v1/write");
    server.write_all(format!("{request_line}\r\n").as_bytes())?;
    for line in request.head[1..]
        .iter()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
    {
        server.write_all(format!("{line}\r\n").as_bytes())?;
    }
    server.write_all(b"Connection: close\r\n\r\n")?;
    server.write_all(&request.body)?;
    // A server may reset the connection after its answer; the answer still goes back.
    let mut answer = Vec::new();
    let _ = server.read_to_end(&mut answer);
    client.write_all(&answer)
}

/// The generated remote_write section, its URL pointed at `url`.
fn remote_write_to(url: &str) -> Value {
    let mut writes = generated()["remote_write"].clone();
    for w in writes.as_array_mut().unwrap() {
        w["url"] = json!(url);
    }
    writes
}

/// The generated external labels as replica `POD` has them.
fn external_labels() -> Value {
    let mut labels = generated()["global"]["external_labels"].clone();
    for v in labels.as_object_mut().unwrap().values_mut() {
        if v == "$(POD_NAME)" {
            *v = json!(POD);
        }
    }
    labels
}

#[test]
fn a_real_prometheus_sends_node_exporter_series_with_the_labels_and_credentials() {
    let prometheus = built_tool("prometheus", "prometheus");
    let (sender_dir, receiver_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (sender_port, receiver_port) = (free_port(), free_port());
    let (mut exporter, exporter_log, exporter_port) = spawn_node_exporter(sender_dir.path());
    std::fs::write(receiver_dir.path().join("prometheus.yaml"), "global: {}\n").unwrap();
    let (mut receiver, receiver_log) = spawn_prometheus_with(
        &prometheus,
        receiver_dir.path(),
        receiver_port,
        &["--web.enable-remote-write-receiver"],
    );
    let seen = Arc::new(Mutex::new(Seen::default()));
    let proxy_port = authenticating_proxy(receiver_port, seen.clone());

    // JSON is YAML: the sender's configuration, with the operator's external labels and
    // remote_write section, scraping the local exporter.
    let config = json!({
        "global": {"scrape_interval": "1s", "external_labels": external_labels()},
        "scrape_configs": [{
            "job_name": "node-exporter",
            "static_configs": [{"targets": [format!("127.0.0.1:{exporter_port}")]}],
        }],
        "remote_write": remote_write_to(&format!("http://127.0.0.1:{proxy_port}/api/v1/receive")),
    });
    std::fs::write(
        sender_dir.path().join("prometheus.yaml"),
        config.to_string(),
    )
    .unwrap();
    let (mut sender, sender_log) = spawn_prometheus(&prometheus, sender_dir.path(), sender_port);

    let wanted = format!(r#"node_uname_info{{cluster="test",prometheus_replica="{POD}"}}"#);
    let deadline = Instant::now() + Duration::from_secs(90);
    let series = loop {
        exporter.assert_running(&exporter_log);
        receiver.assert_running(&receiver_log);
        sender.assert_running(&sender_log);
        match prometheus_query(receiver_port, &wanted) {
            Ok(r) if !r.is_empty() => break r,
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "no {wanted} at the receiver within 90s; refused: {:?}\nsender:\n{}",
            seen.lock().unwrap().refused,
            std::fs::read_to_string(&sender_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let metric = &series[0]["metric"];
    assert_eq!(metric["job"], "node-exporter", "{metric}");
    assert_eq!(
        metric["prometheus"],
        format!("{NS}/automon"),
        "the operator's own label comes along: {metric}"
    );
    let seen = seen.lock().unwrap();
    assert!(seen.authorized > 0);
    assert!(
        seen.refused.is_empty(),
        "requests without the credentials: {:?}",
        seen.refused
    );
}

/// Paths in the generated configuration that exist in the pod (the service account's token
/// and CA, the rule files) moved under `dir`, where they exist too.
fn with_local_paths(text: &str, dir: &Path) -> String {
    let mut text = text.to_string();
    for prefix in [
        "/var/run/secrets/kubernetes.io/serviceaccount/",
        "/etc/prometheus/",
    ] {
        let local = dir.join(prefix.trim_start_matches('/'));
        for line in text.lines() {
            let Some(at) = line.find(prefix) else {
                continue;
            };
            let path = line[at..].trim_end_matches('"');
            let local_path = local.join(&path[prefix.len()..]);
            if !path.contains('*') {
                std::fs::create_dir_all(local_path.parent().unwrap()).unwrap();
                std::fs::write(&local_path, "").unwrap();
            }
        }
        text = text.replace(prefix, &format!("{}/", local.display()));
    }
    text
}

#[test]
fn promtool_accepts_the_generated_configuration() {
    generated();
    let dir = tempfile::tempdir().unwrap();
    let text = generated_config(NS, "automon");
    let local = with_local_paths(&text, dir.path());
    let out = promtool_with(
        &[("prometheus.yaml", &local)],
        &["check", "config", "prometheus.yaml"],
    );
    assert_eq!(out.code, 0, "promtool check config:\n{out:#?}\n{local}");
}
