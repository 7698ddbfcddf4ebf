//! The operator, Prometheus, Alertmanager and kubelet objects as `render` prints them, offered to
//! a real API server (server-side dry run, strict field validation) with the real
//! prometheus-operator CRDs installed: every object must be accepted as it is.

mod common;

use common::{
    Cleanup, Process, assert_has, assert_lacks, built_tool, cluster, free_port, generated_config,
    kind_name, pinned, rendered_objects, run, set_args, write_list, write_temp,
};
use serde_json::{Value, json};

/// The components these modules render (the `app.kubernetes.io/component` label).
const COMPONENTS: &[&str] = &["operator", "prometheus", "alertmanager", "kubelet"];
/// A namespace of this test's own, so that it never touches a stack another test installs.
const NAMESPACE: &str = "automon-dryrun-components-a";

/// Whether an object is of one of [`COMPONENTS`].
fn ours(o: &Value) -> bool {
    let component = &o["metadata"]["labels"]["app.kubernetes.io/component"];
    COMPONENTS.iter().any(|c| component == c)
}

fn rendered(sets: &[&str]) -> Vec<Value> {
    let args = [&["-n", NAMESPACE][..], &set_args(sets)].concat();
    rendered_objects(&args).into_iter().filter(ours).collect()
}

/// The CRDs and the namespace, both idempotent; nothing of the stack itself is created.
fn prepare() {
    let c = cluster();
    c.ensure_crds();
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}});
    let (_dir, path) = write_temp("ns.json", &ns.to_string());
    c.server_side_apply(&path, &[]).success();
}

/// Every object through `kubectl apply --dry-run=server --validate=strict`; the rejections.
fn rejections(objects: &[Value]) -> Vec<String> {
    let c = cluster();
    let dir = tempfile::tempdir().unwrap();
    let mut rejected = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        let path = dir.path().join(format!("{i}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(o).unwrap()).unwrap();
        let r = c.server_dry_run(&path);
        let name = kind_name(o);
        if r.code != 0 || !r.stderr.trim().is_empty() {
            // Warnings (unknown or deprecated fields) count too: strict means strict.
            rejected.push(format!("{name}: {}{}", r.stdout, r.stderr));
        }
    }
    rejected
}

fn kinds(objects: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap_or_default().to_string())
        .collect();
    k.sort();
    k.dedup();
    k
}

#[test]
fn default_objects_are_accepted_by_the_api_server() {
    prepare();
    let objects = rendered(&[]);
    for kind in [
        "Alertmanager",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "NetworkPolicy",
        "Prometheus",
        "Secret",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
    ] {
        assert!(kinds(&objects).iter().any(|k| k == kind), "no {kind}");
    }
    let monitors = objects
        .iter()
        .filter(|o| o["kind"] == "ServiceMonitor")
        .count();
    assert_eq!(monitors, 4, "operator, prometheus, alertmanager, kubelet");
    assert_eq!(rejections(&objects), Vec::<String>::new());
}

#[test]
fn replicated_stack_with_storage_and_receivers_is_accepted() {
    prepare();
    let objects = rendered(&[
        "prometheus.replicas=2",
        "prometheus.retentionSize=40GB",
        "prometheus.storage.size=50Gi",
        "prometheus.storage.storageClass=standard",
        "prometheus.externalLabels={cluster: test}",
        "alertmanager.replicas=3",
        "alertmanager.receivers=[{name: team, webhook: {url: 'http://hook.example/alerts'}, slack: {apiUrl: 'https://hooks.slack.example/T0', channel: '#alerts'}}]",
        "images.pullSecrets=[mirror-credentials]",
    ]);
    let pdbs = objects
        .iter()
        .filter(|o| o["kind"] == "PodDisruptionBudget")
        .count();
    assert_eq!(pdbs, 2, "Prometheus and Alertmanager run several replicas");
    assert_eq!(rejections(&objects), Vec::<String>::new());
}

/// The `alertmanager.yaml` of the rendered config Secret.
fn alertmanager_yaml(sets: &[&str]) -> String {
    use base64::Engine;
    let objects = rendered(sets);
    let secret = objects
        .iter()
        .find(|o| o["kind"] == "Secret" && o["metadata"]["name"] == "alertmanager-automon-config")
        .expect("the Alertmanager config Secret");
    let data = secret["data"]["alertmanager.yaml"]
        .as_str()
        .expect("base64 data");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("valid base64");
    String::from_utf8(bytes).expect("UTF-8")
}

/// Alertmanager's own loader accepts the configuration, and its router sends each alert (given
/// as `label=value` pairs) to the expected receiver.
fn check_alertmanager(sets: &[&str], routes: &[(&[&str], &str)]) {
    let amtool = built_tool("amtool", "amtool");
    let (_dir, path) = write_temp("alertmanager.yaml", &alertmanager_yaml(sets));
    let file = format!("--config.file={}", path.display());
    let check =
        run(std::process::Command::new(&amtool).args(["check-config", path.to_str().unwrap()]));
    assert_eq!(check.code, 0, "amtool check-config:\n{check:#?}");
    for (labels, receiver) in routes {
        run(std::process::Command::new(&amtool)
            .args([
                "config",
                "routes",
                "test",
                &file,
                &format!("--verify.receivers={receiver}"),
            ])
            .args(*labels))
        .success();
    }
}

#[test]
fn alertmanager_without_receivers_keeps_alerts_in_its_ui() {
    check_alertmanager(
        &[],
        &[
            (&["alertname=NodeDown", "severity=critical"], "ui-only"),
            (&["alertname=Watchdog"], "ui-only"),
        ],
    );
}

#[test]
fn alertmanager_routes_to_the_configured_receivers_but_never_pages_for_watchdog() {
    check_alertmanager(
        &["alertmanager.receivers=[{name: team, webhook: {url: 'http://hook.example/alerts'}}]"],
        &[
            (&["alertname=NodeDown", "severity=critical"], "team"),
            (&["alertname=Watchdog"], "ui-only"),
        ],
    );
    check_alertmanager(
        &[
            "alertmanager.receivers=[{name: chat, slack: {apiUrl: 'https://hooks.slack.example/T0', channel: '#alerts'}}, {name: oncall, email: {to: ops@example.com, from: am@example.com, smarthost: 'smtp.example.com:587'}}]",
            "alertmanager.route.receiver=oncall",
        ],
        &[
            (&["alertname=HighCPUUsage", "node=n1"], "oncall"),
            (&["alertname=Watchdog"], "ui-only"),
        ],
    );
}

/// Credentials are files of mounted Secrets (`url_file`, `api_url_file`), given literally (and
/// sealed) or named as a Secret key of the user's: Alertmanager's loader accepts them, routes
/// to them, and the configuration holds no URL at all.
#[test]
fn alertmanager_reads_credentials_from_files_of_mounted_secrets() {
    let sets = [
        "alertmanager.receivers=[{name: own, webhook: {urlSecret: {secret: team-hooks, key: url}}}, {name: chat, slack: {apiUrl: 'https://hooks.slack.example/T0/B0/sealed', channel: '#alerts'}}, {name: team, webhook: {url: 'http://hook.example/sealed'}}]",
        "alertmanager.route.receiver=own",
    ];
    let yaml = alertmanager_yaml(&sets);
    assert_has(&yaml, "url_file: /etc/alertmanager/secrets/team-hooks/url");
    assert_has(&yaml, "api_url_file: ");
    assert_lacks(&yaml, "sealed");
    assert_lacks(&yaml, "url: ");
    check_alertmanager(
        &sets,
        &[
            (&["alertname=NodeDown", "severity=critical"], "own"),
            (&["alertname=Watchdog"], "ui-only"),
        ],
    );
}

/// A real Alertmanager sends through `url_file`: the rendered configuration, its mount path
/// pointed at a directory holding the sealed key as the operator would mount it, delivers an
/// alert to a webhook on loopback whose URL (and token) only that file holds.
#[test]
fn a_real_alertmanager_delivers_through_the_sealed_url_file() {
    use std::io::{BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook = format!(
        "http://127.0.0.1:{}/hook/sealed-token",
        listener.local_addr().unwrap().port()
    );
    let (sent, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let Ok(reader) = stream.try_clone() else {
                continue;
            };
            if let Ok(Some(request)) = common::HttpRequest::read(&mut BufReader::new(reader)) {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
                let _ = sent.send((
                    request.path().unwrap_or_default().to_string(),
                    String::from_utf8_lossy(&request.body).into_owned(),
                ));
            }
        }
    });
    let receivers = format!("alertmanager.receivers=[{{name: team, webhook: {{url: '{hook}'}}}}]");
    let yaml = alertmanager_yaml(&[&receivers, "alertmanager.route.groupWait=1s"]);
    assert_lacks(&yaml, "sealed-token");
    let file: Value = serde_saphyr::from_str(&yaml).unwrap();
    let url_file = file["receivers"][1]["webhook_configs"][0]["url_file"]
        .as_str()
        .expect("a url_file")
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let mounted = url_file.replace("/etc/alertmanager/secrets", dir.path().to_str().unwrap());
    let key = std::path::Path::new(&mounted);
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    std::fs::write(key, &hook).unwrap();
    let config = dir.path().join("alertmanager.yaml");
    std::fs::write(&config, yaml.replace(&url_file, &mounted)).unwrap();
    let amtool = built_tool("amtool", "amtool");
    let port = free_port();
    let log = dir.path().join("alertmanager.log");
    let _am = Process::spawn(
        "alertmanager",
        std::process::Command::new(amtool.with_file_name("alertmanager")).args([
            &format!("--config.file={}", config.display()),
            &format!("--storage.path={}", dir.path().join("data").display()),
            &format!("--web.listen-address=127.0.0.1:{port}"),
            "--cluster.listen-address=",
        ]),
        &log,
    );
    let alert = r#"[{"labels": {"alertname": "NodeDown", "severity": "critical", "node": "n1"}}]"#;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let (path, body) = loop {
        // Posted until Alertmanager is up; then it waits groupWait and sends.
        let _ = run(std::process::Command::new("curl").args([
            "-sf",
            "-XPOST",
            "-H",
            "content-type: application/json",
            "-d",
            alert,
            &format!("http://127.0.0.1:{port}/api/v2/alerts"),
        ]));
        if let Ok(got) = received.recv_timeout(std::time::Duration::from_secs(2)) {
            break got;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no notification in 60s; alertmanager said:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    };
    assert_eq!(path, "/hook/sealed-token");
    assert_has(&body, "NodeDown");
}

/// The namespace of the live run, the operator's own.
const LIVE: &str = "automon-live-a";

/// The kubelet Service and EndpointSlices the operator keeps in kube-system for the stack in a
/// namespace, removed when the test ends, pass or fail.
struct KubeletService(&'static str);

impl Drop for KubeletService {
    fn drop(&mut self) {
        cluster().kubectl(&[
            "-n",
            "kube-system",
            "delete",
            "service,endpointslices",
            "-l",
            &format!("automon.io/stack={}", self.0),
            "--ignore-not-found",
        ]);
    }
}

/// The real prometheus-operator, run with the rendered arguments and impersonating the rendered
/// ServiceAccount, so that it has exactly the rendered ClusterRole: it must turn the rendered
/// custom resources into StatefulSets, select every rendered ServiceMonitor, and keep the
/// kubelet Service the kubelet ServiceMonitor selects, without a single permission error.
#[test]
fn operator_reconciles_the_stack_with_only_its_rendered_permissions() {
    prepare();
    let c = cluster();
    let ns = LIVE;
    let _cleanup = Cleanup::fresh(ns);
    let _kubelet = KubeletService(ns);

    let items = rendered_objects(&["-n", ns]);
    let deployment = items
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "prometheus-operator")
        .expect("the operator Deployment");
    // Everything of these components but the operator's Deployment, which runs here instead.
    let apply: Vec<Value> = items
        .iter()
        .filter(|o| o["kind"] == "Namespace" || (ours(o) && o["kind"] != "Deployment"))
        .cloned()
        .collect();
    let (_dir, path) = write_list("stack.json", &apply);
    c.server_side_apply(&path, &[]).success();

    let port = free_port();
    let mut args: Vec<String> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .filter(|a| !a.starts_with("--web.listen-address="))
        .collect();
    args.push(format!("--web.listen-address=127.0.0.1:{port}"));
    args.push(format!(
        "--as=system:serviceaccount:{ns}:prometheus-operator"
    ));
    let log_path = c.dir.join("logs").join(format!("{ns}-operator.log"));
    let _operator = Process::spawn(
        "prometheus-operator",
        std::process::Command::new(c.tools_bin.join(format!(
            "prometheus-operator-{}",
            pinned("PROMETHEUS_OPERATOR_VERSION")
        )))
        .args(&args)
        .env("KUBECONFIG", &c.kubeconfig),
        &log_path,
    );

    let kubelet_service = format!("{ns}-kubelet");
    let stack_selector = format!("automon.io/stack={ns}");
    let ready = || {
        let sts = c.kubectl(&["-n", ns, "get", "statefulsets", "-o", "name"]);
        let kubelet = c.kubectl(&[
            "-n",
            "kube-system",
            "get",
            "services,endpointslices",
            "-l",
            &stack_selector,
            "-o",
            "name",
        ]);
        sts.stdout.contains("statefulset.apps/prometheus-automon")
            && sts.stdout.contains("statefulset.apps/alertmanager-automon")
            && kubelet
                .stdout
                .contains(&format!("service/{kubelet_service}"))
            && kubelet.stdout.contains("endpointslice.discovery.k8s.io/")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "the operator did not reconcile within 90s; log:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_secs(1));
    }

    // Every rendered ServiceMonitor is in the generated configuration: the selector matches.
    let text = generated_config(ns, "automon");
    for job in [
        "prometheus-operator/0",
        "prometheus/0",
        "alertmanager/0",
        "kubelet/0",
        "kubelet/1",
    ] {
        assert!(
            text.contains(&format!("job_name: serviceMonitor/{ns}/{job}")),
            "no {job} in the generated configuration:\n{text}"
        );
    }

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        !log.to_lowercase().contains("forbidden") && !log.contains("level=error"),
        "the operator hit errors with its rendered permissions:\n{log}"
    );
}
