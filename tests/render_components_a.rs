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
        "alertmanager.storage.size=1Gi",
        "alertmanager.storage.storageClass=standard",
        "alertmanager.receivers=[{name: team, webhook: {url: 'http://hook.example/alerts'}, slack: {apiUrl: 'https://hooks.slack.example/T0', channel: '#alerts'}}]",
        "images.pullSecrets=[mirror-credentials]",
    ]);
    let alertmanager = objects
        .iter()
        .find(|o| o["kind"] == "Alertmanager")
        .expect("an Alertmanager");
    assert_eq!(
        alertmanager["spec"]["storage"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"],
        "1Gi"
    );
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
    // A dead man's switch named: Watchdog, and only Watchdog, goes to it.
    check_alertmanager(
        &[
            "alertmanager.receivers=[{name: team, webhook: {url: 'http://hook.example/alerts'}}, {name: deadman, webhook: {url: 'http://hc.example/ping'}}]",
            "alertmanager.route.watchdog=deadman",
        ],
        &[
            (&["alertname=Watchdog", "severity=none"], "deadman"),
            (&["alertname=NodeDown", "severity=critical"], "team"),
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

/// A real Alertmanager on 127.0.0.1 (no cluster, no gossip) with a rendered configuration. Each
/// `_file` it names under the Secrets' mount path is a file of a directory of the test's,
/// holding the value of the first `(part of the path, value)` that matches, as the operator
/// would mount the Secret key.
struct LocalAlertmanager {
    port: u16,
    log: std::path::PathBuf,
    _process: Process,
    _dir: tempfile::TempDir,
}

impl LocalAlertmanager {
    fn start(yaml: &str, files: &[(&str, &str)]) -> LocalAlertmanager {
        const MOUNTS: &str = "/etc/alertmanager/secrets/";
        let dir = tempfile::tempdir().unwrap();
        let mounts = format!("{}/", dir.path().join("secrets").display());
        let file: Value = serde_saphyr::from_str(yaml).unwrap();
        for path in file_settings(&file) {
            let (_, value) = files
                .iter()
                .find(|(part, _)| path.contains(part))
                .unwrap_or_else(|| panic!("no value for {path}"));
            let mounted = std::path::PathBuf::from(path.replace(MOUNTS, &mounts));
            std::fs::create_dir_all(mounted.parent().unwrap()).unwrap();
            std::fs::write(mounted, value).unwrap();
        }
        let config = dir.path().join("alertmanager.yaml");
        std::fs::write(&config, yaml.replace(MOUNTS, &mounts)).unwrap();
        let port = free_port();
        let log = dir.path().join("alertmanager.log");
        let amtool = built_tool("amtool", "amtool");
        let process = Process::spawn(
            "alertmanager",
            std::process::Command::new(amtool.with_file_name("alertmanager")).args([
                &format!("--config.file={}", config.display()),
                &format!("--storage.path={}", dir.path().join("data").display()),
                &format!("--web.listen-address=127.0.0.1:{port}"),
                "--cluster.listen-address=",
            ]),
            &log,
        );
        LocalAlertmanager {
            port,
            log,
            _process: process,
            _dir: dir,
        }
    }

    /// Posts alerts (each a map of labels) until Alertmanager takes them.
    fn post(&self, alerts: &[Value]) {
        let body = Value::Array(
            alerts
                .iter()
                .map(|labels| json!({"labels": labels}))
                .collect(),
        )
        .to_string();
        self.wait("the alerts to be taken", || {
            run(std::process::Command::new("curl").args([
                "-sf",
                "--noproxy",
                "*",
                "-XPOST",
                "-H",
                "content-type: application/json",
                "-d",
                &body,
                &format!("http://127.0.0.1:{}/api/v2/alerts", self.port),
            ]))
            .code
                == 0
        });
    }

    /// The alerts as its API shows them.
    fn alerts(&self) -> Vec<Value> {
        let body = common::curl(&format!("http://127.0.0.1:{}/api/v2/alerts", self.port))
            .unwrap_or_else(|e| panic!("GET /api/v2/alerts: {e}"));
        serde_json::from_str(&body).unwrap()
    }

    /// Waits up to 60s for `done`, or fails with what Alertmanager logged.
    fn wait(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !done() {
            assert!(
                std::time::Instant::now() < deadline,
                "no {what} in 60s; alertmanager said:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    }
}

/// Every `*_file` setting of an Alertmanager configuration: the paths it reads credentials from.
fn file_settings(v: &Value) -> Vec<String> {
    match v {
        Value::Object(map) => map
            .iter()
            .flat_map(|(k, child)| match (k.ends_with("_file"), child.as_str()) {
                (true, Some(path)) => vec![path.to_string()],
                _ => file_settings(child),
            })
            .collect(),
        Value::Array(items) => items.iter().flat_map(file_settings).collect(),
        _ => Vec::new(),
    }
}

/// A real Alertmanager sends through `url_file`: the rendered configuration, its mount path
/// pointed at a directory holding the sealed key as the operator would mount it, delivers an
/// alert to a webhook on loopback whose URL (and token) only that file holds.
#[test]
fn a_real_alertmanager_delivers_through_the_sealed_url_file() {
    let recorder = common::Recorder::start(200);
    let hook = recorder.url("/hook/sealed-token");
    let receivers = format!("alertmanager.receivers=[{{name: team, webhook: {{url: '{hook}'}}}}]");
    let yaml = alertmanager_yaml(&[&receivers, "alertmanager.route.groupWait=1s"]);
    assert_lacks(&yaml, "sealed-token");
    let am = LocalAlertmanager::start(&yaml, &[("webhook.url", &hook)]);
    am.post(&[json!({"alertname": "NodeDown", "severity": "critical", "node": "n1"})]);
    am.wait("notification", || !recorder.requests().is_empty());
    let (path, body) = recorder.requests().remove(0);
    assert_eq!(path, "/hook/sealed-token");
    assert_has(&body.to_string(), "NodeDown");
}

/// Every integration, with its credentials given literally (sealed) and as Secret keys of the
/// user's, passes Alertmanager's own loader; every alert goes where its severity, an override or
/// Watchdog's exception says. The example.com addresses here are only ever read, never sent to.
#[test]
fn every_receiver_type_and_route_passes_alertmanagers_checks() {
    let sets = [
        "alertmanager.receivers=[\
         {name: team, webhook: {url: 'https://hooks.example.com/alerts'}}, \
         {name: chat, slack: {apiUrlSecret: {secret: chat, key: url}, channel: '#alerts'}}, \
         {name: mail, email: {to: ops@example.com, from: am@example.com, smarthost: 'smtp.example.com:587', authUsername: am, authPassword: sealed-password, insecureSkipVerify: true}}, \
         {name: mail-own, email: {to: ops@example.com, from: am@example.com, smarthost: 'smtp.example.com:465', authUsername: am, authPasswordSecret: {secret: smtp, key: password}, requireTls: false}}, \
         {name: pager, pagerduty: {routingKey: sealed-routing-key}}, \
         {name: pager-eu, pagerduty: {routingKeySecret: {secret: pd, key: key}, url: 'https://events.eu.pagerduty.com/v2/enqueue'}}, \
         {name: genie, opsgenie: {apiKey: sealed-api-key, apiUrl: 'https://api.eu.opsgenie.com/'}}, \
         {name: genie-own, opsgenie: {apiKeySecret: {secret: genie, key: key}}}, \
         {name: teams, msteams: {webhookUrl: 'https://example.com/workflows/sealed'}}, \
         {name: teams-own, msteams: {webhookUrlSecret: {secret: teams, key: url}}}]",
        "alertmanager.route.receiver=team",
        "alertmanager.route.critical=pager",
        "alertmanager.route.warning=teams",
        "alertmanager.route.overrides=[{match: {alertname: DiskSpaceLow}, receiver: mail}, {match: {alertname: NodeDown, node: db-1}, receiver: genie}]",
    ];
    let yaml = alertmanager_yaml(&sets);
    assert_lacks(&yaml, "sealed");
    for setting in [
        "url_file:",
        "api_url_file:",
        "auth_password_file:",
        "routing_key_file:",
        "api_key_file:",
        "webhook_url_file:",
        "inhibit_rules:",
    ] {
        assert_has(&yaml, setting);
    }
    check_alertmanager(
        &sets,
        &[
            (
                &["alertname=NodeDown", "severity=critical", "node=n1"],
                "pager",
            ),
            (
                &["alertname=HighCPUUsage", "severity=warning", "node=n1"],
                "teams",
            ),
            (
                &["alertname=KubeQuotaAlmostFull", "severity=info"],
                "ui-only",
            ),
            (&["alertname=Watchdog", "severity=none"], "ui-only"),
            (
                &["alertname=DiskSpaceLow", "severity=warning", "node=n1"],
                "mail",
            ),
            (
                &["alertname=NodeDown", "severity=critical", "node=db-1"],
                "genie",
            ),
            (&["alertname=SomethingElse"], "team"),
        ],
    );
    // info to a receiver, and every severity's default left alone.
    check_alertmanager(
        &[sets[0], "alertmanager.route.info=chat"],
        &[
            (&["alertname=KubeQuotaAlmostFull", "severity=info"], "chat"),
            (&["alertname=NodeDown", "severity=critical"], "team"),
            (&["alertname=Watchdog", "severity=none"], "ui-only"),
        ],
    );
}

/// Routes and inhibitions in a real Alertmanager, every receiver on loopback: a critical alert
/// pages through PagerDuty's Events API v2 (its routing key read from the sealed file), a
/// warning goes to Teams (msteamsv2, its URL read from the sealed file), an override to a
/// webhook, info nowhere; NodeDown of n1 mutes n1's warnings, never n2's.
#[test]
fn a_real_alertmanager_routes_by_severity_and_inhibits_within_a_node() {
    let recorder = common::Recorder::start(200);
    let (pager, teams, hook) = (
        recorder.url("/pagerduty/v2/enqueue"),
        recorder.url("/teams/workflow-token"),
        recorder.url("/hook"),
    );
    let receivers = format!(
        "alertmanager.receivers=[\
         {{name: team, webhook: {{url: '{hook}'}}}}, \
         {{name: pager, pagerduty: {{routingKey: sealed-routing-key, url: '{pager}'}}}}, \
         {{name: teams, msteams: {{webhookUrl: '{teams}'}}}}]"
    );
    let yaml = alertmanager_yaml(&[
        &receivers,
        "alertmanager.route.critical=pager",
        "alertmanager.route.warning=teams",
        "alertmanager.route.overrides=[{match: {alertname: DiskSpaceLow}, receiver: team}]",
        "alertmanager.route.groupWait=1s",
        "alertmanager.route.groupInterval=1s",
    ]);
    assert_lacks(&yaml, "sealed-routing-key");
    assert_lacks(&yaml, "workflow-token");
    let am = LocalAlertmanager::start(
        &yaml,
        &[
            ("webhook.url", &hook),
            ("pagerduty.routingKey", "sealed-routing-key"),
            ("msteams.webhookUrl", &teams),
        ],
    );
    let alert = |name: &str, severity: &str, node: &str| json!({"alertname": name, "severity": severity, "node": node});
    am.post(&[
        alert("NodeDown", "critical", "n1"),
        alert("HighCPUUsage", "warning", "n1"),
        alert("HighCPUUsage", "warning", "n2"),
        alert("DiskSpaceLow", "warning", "n2"),
        alert("NodeInfoOnly", "info", "n2"),
    ]);
    let sent_to = |prefix: &str| -> Vec<String> {
        recorder
            .requests()
            .into_iter()
            .filter(|(path, _)| path.starts_with(prefix))
            .map(|(_, body)| body.to_string())
            .collect()
    };
    am.wait("page, Teams message and webhook call", || {
        !sent_to("/pagerduty").is_empty()
            && !sent_to("/teams").is_empty()
            && !sent_to("/hook").is_empty()
    });
    // A group of n1's warning would have gone out with the others (groupWait 1s): give it
    // three more seconds to show that it does not.
    std::thread::sleep(std::time::Duration::from_secs(3));

    let pages = sent_to("/pagerduty");
    assert_eq!(pages.len(), 1, "{pages:?}");
    let page: Value = serde_json::from_str(&pages[0]).unwrap();
    assert_eq!(page["routing_key"], "sealed-routing-key");
    assert_eq!(page["event_action"], "trigger");
    assert_eq!(page["payload"]["severity"], "critical");
    assert_has(&pages[0], "NodeDown");

    let messages = sent_to("/teams");
    assert_eq!(messages.len(), 1, "only n2's warning: {messages:?}");
    assert_has(&messages[0], "HighCPUUsage");
    assert_has(&messages[0], "node = n2");
    assert_lacks(&messages[0], "node = n1");

    let hooks = sent_to("/hook");
    assert!(
        hooks.iter().all(|h| h.contains("DiskSpaceLow")),
        "{hooks:?}"
    );
    assert!(recorder.requests().iter().all(|(path, _)| {
        ["/pagerduty", "/teams", "/hook"]
            .iter()
            .any(|p| path.starts_with(p))
    }));
    for (path, body) in recorder.requests() {
        assert!(!body.to_string().contains("NodeInfoOnly"), "{path}: {body}");
    }

    // The API says why n1's warning was not sent.
    let alerts = am.alerts();
    let state = |name: &str, node: &str| {
        alerts
            .iter()
            .find(|a| a["labels"]["alertname"] == name && a["labels"]["node"] == node)
            .map(|a| a["status"].clone())
            .unwrap_or_else(|| panic!("no {name} of {node} in {alerts:?}"))
    };
    let muted = state("HighCPUUsage", "n1");
    assert_eq!(muted["state"], "suppressed", "{muted}");
    assert_eq!(
        muted["inhibitedBy"].as_array().map(Vec::len),
        Some(1),
        "{muted}"
    );
    assert_eq!(state("HighCPUUsage", "n2")["state"], "active");
    assert_eq!(state("NodeDown", "n1")["state"], "active");
}

/// With `alertmanager.inhibitions: false` nothing is muted: n1's warning is sent beside its
/// NodeDown.
#[test]
fn without_inhibitions_a_nodes_warnings_are_sent_beside_its_critical_alert() {
    let recorder = common::Recorder::start(200);
    let hook = recorder.url("/hook");
    let yaml = alertmanager_yaml(&[
        &format!("alertmanager.receivers=[{{name: team, webhook: {{url: '{hook}'}}}}]"),
        "alertmanager.inhibitions=false",
        "alertmanager.route.groupWait=1s",
    ]);
    assert_lacks(&yaml, "inhibit_rules");
    let am = LocalAlertmanager::start(&yaml, &[("webhook.url", &hook)]);
    am.post(&[
        json!({"alertname": "NodeDown", "severity": "critical", "node": "n1"}),
        json!({"alertname": "HighCPUUsage", "severity": "warning", "node": "n1"}),
    ]);
    am.wait("two notifications", || recorder.requests().len() >= 2);
    let bodies: String = recorder
        .requests()
        .iter()
        .map(|(_, b)| b.to_string())
        .collect();
    assert_has(&bodies, "HighCPUUsage");
    assert_has(&bodies, "NodeDown");
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
