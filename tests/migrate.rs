//! `migrate --dry-run` against kube-prometheus-stack as its users install it (the real helm, the
//! real chart from ../shared/peers), and the removal the migration ends with: afterwards the
//! real `helm list` and `helm status` no longer know the release, every object the chart made
//! is gone, and the CRDs, the volumes and the user's own objects are still there.
//! A test binary of its own: another operator is cluster-wide news. Run it holding
//! /tmp/automon-test.lock when the cluster is shared.

mod common;

use std::{
    collections::BTreeMap,
    path::PathBuf,
    process::Command,
    sync::{Mutex, OnceLock},
};

use common::*;
use serde_json::Value;

/// The chart, read where the peers live (never copied into the repository).
fn chart() -> PathBuf {
    repo_root().join("../shared/peers/kube-prometheus-stack-88.5.3")
}

/// One chart installed at a time: each brings an operator and webhooks.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The real helm against the local cluster, with its caches in a directory of the test's.
fn helm(args: &[&str]) -> Run {
    static HOME: OnceLock<tempfile::TempDir> = OnceLock::new();
    let home = HOME.get_or_init(|| tempfile::tempdir().unwrap()).path();
    let mut cmd = Command::new(built_tool("helm", "helm"));
    cmd.env("KUBECONFIG", &cluster().kubeconfig)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .args(args);
    Run::from(cmd.output().expect("run helm"))
}

/// A release of the chart installed as users install it, uninstalled (or, when the test
/// removed its records, what it left deleted) and its namespaces deleted when dropped.
struct Release {
    name: &'static str,
    namespace: &'static str,
    others: Vec<&'static str>,
}

impl Release {
    /// `helm install NAME CHART -n NS --create-namespace [-f values]`, with the CRDs the cluster
    /// has (the pinned operator's, which other tests rely on) kept as they are.
    fn install(
        name: &'static str,
        namespace: &'static str,
        chart: &std::path::Path,
        values: Option<&str>,
    ) -> Release {
        let release = Release {
            name,
            namespace,
            others: Vec::new(),
        };
        release.clean();
        let (_dir, file) = write_temp("values.yaml", values.unwrap_or(""));
        let out = helm(&[
            "install",
            name,
            chart.to_str().unwrap(),
            "-n",
            namespace,
            "--create-namespace",
            "--skip-crds",
            "-f",
            file.to_str().unwrap(),
        ]);
        assert_eq!(out.code, 0, "helm install {name}:\n{out:#?}");
        release
    }

    /// Also delete `ns` when dropped (the user's objects).
    fn with_namespace(mut self, ns: &'static str) -> Release {
        self.others.push(ns);
        cluster().kubectl(&[
            "delete",
            "namespace",
            ns,
            "--ignore-not-found",
            "--wait=true",
        ]);
        self
    }

    fn clean(&self) {
        let c = cluster();
        helm(&[
            "uninstall",
            self.name,
            "-n",
            self.namespace,
            "--ignore-not-found",
            "--wait",
        ]);
        // What a removal that stopped half-way may have left outside the namespace.
        for selector in [
            format!("release={}", self.name),
            format!("app.kubernetes.io/instance={}", self.name),
        ] {
            c.kubectl(&[
                "delete",
                "clusterrole,clusterrolebinding,mutatingwebhookconfiguration,validatingwebhookconfiguration",
                "-l",
                &selector,
                "--ignore-not-found",
            ]);
            c.kubectl(&[
                "delete",
                "service",
                "-n",
                "kube-system",
                "-l",
                &selector,
                "--ignore-not-found",
            ]);
        }
        for ns in std::iter::once(&self.namespace).chain(&self.others) {
            c.kubectl(&[
                "delete",
                "namespace",
                ns,
                "--ignore-not-found",
                "--wait=true",
                "--timeout=120s",
            ]);
        }
    }

    /// `helm get manifest`: the objects of the release, as (kind, namespace, name).
    fn manifest(&self) -> Vec<(String, String, String)> {
        let out = helm(&["get", "manifest", self.name, "-n", self.namespace]).success();
        out.stdout
            .split("\n---")
            .filter_map(|doc| {
                let kind = top_level(doc, "kind")?;
                let name = metadata_field(doc, "name")?;
                let ns = metadata_field(doc, "namespace").unwrap_or_default();
                Some((kind, ns, name))
            })
            .collect()
    }

    fn migrate(&self, args: &[&str]) -> Run {
        run(automon_admin()
            .args(["migrate", self.name, "--from-namespace", self.namespace])
            .args(args))
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        self.clean();
    }
}

fn top_level(doc: &str, key: &str) -> Option<String> {
    doc.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .map(|v| v.trim().trim_matches('"').to_string())
}

fn metadata_field(doc: &str, key: &str) -> Option<String> {
    let meta = doc.split("\nmetadata:\n").nth(1)?;
    meta.lines()
        .take_while(|l| l.starts_with(' ') || l.is_empty())
        .find_map(|l| l.strip_prefix(&format!("  {key}: ")))
        .map(|v| v.trim().trim_matches('"').to_string())
}

/// The name of the release's Prometheus, from its manifest.
fn prometheus_of(manifest: &[(String, String, String)]) -> String {
    manifest
        .iter()
        .find(|(k, _, _)| k == "Prometheus")
        .map(|(_, _, n)| n.clone())
        .expect("a Prometheus in the manifest")
}

/// How many objects of each kind, as the report's table counts them.
fn counts(objects: &[(String, String, String)]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (kind, _, _) in objects {
        *out.entry(kind.clone()).or_default() += 1;
    }
    out
}

/// Whether `kubectl get KIND NAME [-n NS]` finds it.
fn present(kind: &str, namespace: &str, name: &str) -> bool {
    let mut args = vec!["get", kind, name, "-o", "name"];
    if !namespace.is_empty() {
        args.extend(["-n", namespace]);
    }
    let out = cluster().kubectl(&args);
    assert!(
        out.code == 0
            || out.stderr.contains("NotFound")
            || out
                .stderr
                .contains("the server doesn't have a resource type"),
        "kubectl {args:?}:\n{out:#?}"
    );
    out.code == 0
}

/// A ServiceMonitor and a PrometheusRule of the user's, in a namespace of their own.
fn users_objects(ns: &str, labels: &str) {
    apply(&format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: {ns}}}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {{name: my-app, namespace: {ns}, labels: {labels}}}
spec:
  selector: {{matchLabels: {{app: my-app}}}}
  endpoints: [{{port: http}}]
---
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {{name: my-rules, namespace: {ns}, labels: {labels}}}
spec:
  groups:
  - name: mine
    rules:
    - {{alert: MyAppDown, expr: "up{{job=\"my-app\"}} == 0", for: 5m}}
"#
    ));
}

/// The user's app behind their ServiceMonitor: a Deployment and its Service, so that the
/// release's Prometheus has a target of the user's that automon's must keep.
fn users_app(ns: &str) {
    apply(&format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: my-app, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: my-app}}}}
  template:
    metadata: {{labels: {{app: my-app}}}}
    spec:
      containers: [{{name: app, image: my-app:1, ports: [{{name: http, containerPort: 8080}}]}}]
---
apiVersion: v1
kind: Service
metadata: {{name: my-app, namespace: {ns}, labels: {{app: my-app}}}}
spec:
  selector: {{app: my-app}}
  ports: [{{name: http, port: 8080}}]
"#
    ));
}

/// automon's operator as the migration deployed it, run out of the cluster with its
/// Deployment's own arguments (the controller id among them): the local cluster's shared
/// operator, without one, leaves automon's Prometheus to it.
fn automons_operator(ns: &str, dir: &std::path::Path) -> Process {
    let deployment = get_json(&["get", "deployment", "prometheus-operator", "-n", ns]);
    let args: Vec<String> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("the operator's arguments")
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .filter(|a| !a.starts_with("--web.listen-address"))
        .collect();
    let binary = built_tool(
        "operator",
        &format!(
            "prometheus-operator-{}",
            pinned("PROMETHEUS_OPERATOR_VERSION")
        ),
    );
    Process::spawn(
        "automon's prometheus-operator",
        Command::new(binary)
            .args(&args)
            .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
            .env("KUBECONFIG", cluster().dir.join("pki/operator.kubeconfig")),
        &dir.join("operator.log"),
    )
}

/// Deletes the kubelet Service an operator of the test's made in kube-system, when dropped.
struct KubeletService(String);

impl Drop for KubeletService {
    fn drop(&mut self) {
        cluster().kubectl(&[
            "delete",
            "service",
            "-n",
            "kube-system",
            &self.0,
            "--ignore-not-found",
        ]);
    }
}

/// How many targets of each job a Prometheus keeps, for the report of a migration.
fn jobs(targets: &[Value]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for t in targets {
        *out.entry(t["labels"]["job"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    out
}

/// The migration of `release` into automon's namespace `ns`, as a user runs it in two steps:
/// `--keep-old` (automon beside the release, nothing scraped twice by either Prometheus),
/// then the run that proves coverage from both Prometheus' target APIs (real Prometheus
/// processes loaded with what each operator generated, answering for each one's pod) and
/// removes the release. Returns the targets of the release's Prometheus and of automon's.
fn migrate_in_two_steps(
    release: &Release,
    ns: &'static str,
    prometheus: &str,
    lose_the_users_app_first: bool,
) -> (Vec<Value>, Vec<Value>, Run) {
    let beside = release.migrate(&["-n", ns, "--keep-old"]).success();
    assert_has(&beside.stdout, "Step 1/3  automon beside release");
    assert_has(
        &beside.stdout,
        &format!(
            "prometheus {}/{prometheus} patched to select none of automon's objects",
            release.namespace
        ),
    );
    assert_has(&beside.stdout, "Both run side by side");
    assert_lacks(&beside.stdout, "Step 2/3");
    // Each operator reconciles its own: automon's Prometheus carries the controller id, which
    // the shared operator (the release's stand-in, without one) leaves alone.
    let automons = get_json(&["get", "prometheus", "automon", "-n", ns]);
    assert_eq!(
        automons["metadata"]["annotations"]["operator.prometheus.io/controller-id"],
        format!("automon-{ns}"),
        "{automons}"
    );
    let daemonset = get_json(&["get", "daemonset", "node-exporter", "-n", ns]);
    assert_eq!(
        daemonset["spec"]["template"]["spec"]["containers"][0]["ports"][0]["hostPort"], 9101,
        "automon's node-exporter leaves the release's port 9100 alone"
    );
    let dir = tempfile::tempdir().unwrap();
    let _operator = automons_operator(ns, dir.path());
    // The kubelet Service that operator keeps in kube-system outlives automon's namespace.
    let _kubelet = KubeletService(format!("{ns}-kubelet"));
    let theirs = OutsidePrometheus::start(operator_config(
        release.namespace,
        prometheus,
        &format!("serviceMonitor/{}/", release.namespace),
    ));
    let ours = OutsidePrometheus::start(operator_config(ns, "automon", "serviceMonitor/"));
    let (their_targets, our_targets) = (theirs.settled_targets(), ours.settled_targets());
    for (whose, targets) in [
        ("the release's", &their_targets),
        ("automon's", &our_targets),
    ] {
        let (kept, _) = kept_targets_of(targets);
        assert_eq!(
            twice(&kept),
            Vec::<String>::new(),
            "{whose} Prometheus scrapes these twice"
        );
    }
    // Only the release's Prometheus scrapes the release's exporters; automon's scrapes its own.
    let user_target = |targets: &[Value]| {
        targets
            .iter()
            .any(|t| t["discoveredLabels"]["__meta_kubernetes_service_name"] == "my-app")
    };
    assert!(user_target(&their_targets), "{their_targets:#?}");
    assert!(
        user_target(&our_targets),
        "automon's Prometheus does not scrape the user's app"
    );
    let _theirs_exposed = expose(
        release.namespace,
        &format!("prometheus-{prometheus}-0"),
        9090,
        theirs.port,
    );
    let ours_exposed = expose(ns, "prometheus-automon-0", 9090, ours.port);
    let _ours_exposed = if lose_the_users_app_first {
        // automon's Prometheus without the user's monitor: the migration stops, says which
        // target it would lose, and removes nothing.
        let mut config = operator_config(ns, "automon", "serviceMonitor/");
        config["scrape_configs"]
            .as_array_mut()
            .unwrap()
            .retain(|job| !job["job_name"].as_str().unwrap().contains("/my-app/"));
        let short = OutsidePrometheus::start(config);
        short.settled_targets();
        let ours_exposed = ours_exposed.to(9090, short.port);
        let stopped = release.migrate(&["-n", ns, "--timeout", "20s"]).code(1);
        eprintln!("{}{}", stopped.stdout, stopped.stderr);
        assert_has(&stopped.stdout, ", 1 lost");
        assert_has(&stopped.stdout, "/pod/my-app-");
        assert_has(
            &stopped.stderr,
            "automon's Prometheus does not scrape 1 target that release",
        );
        assert_lacks(&stopped.stdout, "Step 3/3");
        helm(&["status", release.name, "-n", release.namespace])
            .success()
            .stdout_has("STATUS: deployed");
        ours_exposed.to(9090, ours.port)
    } else {
        ours_exposed
    };

    let done = release.migrate(&["-n", ns, "--timeout", "3m"]).success();
    eprintln!("{}", done.stdout);
    assert_has(&done.stdout, "Step 2/3  coverage");
    assert_has(&done.stdout, ", 0 lost");
    assert_has(&done.stdout, "Step 3/3  release");
    assert_has(
        &done.stdout,
        &format!(
            "Migrated from release {} in namespace {}",
            release.name, release.namespace
        ),
    );
    // Settled: no controller id, the release's selection kept.
    let settled = get_json(&["get", "prometheus", "automon", "-n", ns]);
    assert!(
        settled["metadata"]["annotations"]
            .get("operator.prometheus.io/controller-id")
            .is_none(),
        "{settled}"
    );
    let operator = get_json(&["get", "deployment", "prometheus-operator", "-n", ns]);
    assert_lacks(
        &operator["spec"]["template"]["spec"]["containers"][0]["args"].to_string(),
        "--controller-id",
    );
    assert_eq!(
        settled["spec"]["serviceMonitorNamespaceSelector"],
        serde_json::json!({}),
        "{settled}"
    );
    // A second run finds nothing left to do.
    release
        .migrate(&["-n", ns])
        .code(1)
        .stderr_has(&format!("no Helm release \"{}\"", release.name));
    (their_targets, our_targets, done)
}

/// After the removal: `helm` knows no release, only what the chart did not make (or keeps) is
/// left, and the second run has nothing to do.
fn assert_removed(
    release: &Release,
    manifest: &[(String, String, String)],
    kept: &[(&str, &str, &str)],
) {
    let list = helm(&[
        "list",
        "-n",
        release.namespace,
        "-q",
        "--uninstalling",
        "--uninstalled",
    ])
    .success();
    assert_eq!(
        list.stdout.trim(),
        "",
        "helm list still shows:\n{}",
        list.stdout
    );
    let status = helm(&["status", release.name, "-n", release.namespace]);
    assert_ne!(status.code, 0, "{status:#?}");
    assert_has(&status.stderr, "not found");
    let secrets = cluster()
        .kubectl(&[
            "get",
            "secrets",
            "-n",
            release.namespace,
            "-l",
            "owner=helm",
            "-o",
            "name",
        ])
        .success();
    assert_eq!(secrets.stdout.trim(), "");
    for (kind, ns, name) in manifest {
        let ns = if ns.is_empty() && !cluster_scoped(kind) {
            release.namespace
        } else {
            ns.as_str()
        };
        let should_stay = kept
            .iter()
            .any(|(k, n, m)| k == kind && *n == ns && m == name);
        assert_eq!(
            present(kind, ns, name),
            should_stay,
            "{kind} {ns}/{name} is {} after the removal",
            if should_stay { "gone" } else { "still there" }
        );
    }
    for (kind, ns, name) in kept {
        assert!(present(kind, ns, name), "{kind} {ns}/{name} was deleted");
    }
    for crd in [
        "prometheuses.monitoring.coreos.com",
        "servicemonitors.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
    ] {
        assert!(present("crd", "", crd), "{crd} was deleted");
    }
    release
        .migrate(&["--only-remove-release"])
        .success()
        .stdout_has(&format!(
            "no Helm release \"{}\" in namespace {}: nothing to remove",
            release.name, release.namespace
        ));
}

/// `n` PersistentVolumes of `class` (5Gi, a host path that no pod here really mounts), for
/// claims of that class to bind; deleted when dropped.
struct Volumes(Vec<String>);

impl Volumes {
    fn new(class: &str, n: usize) -> Volumes {
        let names: Vec<String> = (0..n).map(|i| format!("{class}-{i}")).collect();
        for name in &names {
            apply(&format!(
                "apiVersion: v1\nkind: PersistentVolume\nmetadata: {{name: {name}}}\nspec:\n  storageClassName: {class}\n  capacity: {{storage: 5Gi}}\n  accessModes: [ReadWriteOnce]\n  hostPath: {{path: /tmp/{name}}}\n"
            ));
        }
        Volumes(names)
    }
}

impl Drop for Volumes {
    fn drop(&mut self) {
        for name in &self.0 {
            cluster().kubectl(&["delete", "pv", name, "--ignore-not-found", "--wait=false"]);
        }
    }
}

/// A StorageClass of the test's, deleted when dropped.
struct StorageClass(&'static str);

impl StorageClass {
    fn new(name: &'static str) -> StorageClass {
        apply(&format!(
            "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {{name: {name}}}\nprovisioner: kubernetes.io/no-provisioner\nvolumeBindingMode: WaitForFirstConsumer\n"
        ));
        StorageClass(name)
    }
}

impl Drop for StorageClass {
    fn drop(&mut self) {
        cluster().kubectl(&["delete", "storageclass", self.0, "--ignore-not-found"]);
    }
}

fn cluster_scoped(kind: &str) -> bool {
    kind.starts_with("Cluster") || kind.ends_with("WebhookConfiguration")
}

#[test]
fn the_default_release_reported_then_removed_as_helm_uninstall_would() {
    let _one = one_at_a_time();
    let c = cluster();
    c.ensure_crds();
    let release = Release::install("mig-kps", "mig-kps-monitoring", &chart(), None)
        .with_namespace("mig-kps-team");
    users_objects("mig-kps-team", "{release: mig-kps}");
    let manifest = release.manifest();
    assert!(manifest.len() > 100, "{manifest:?}");

    let out = release.migrate(&["--dry-run"]).success();
    let text = &out.stdout;
    assert_has(
        text,
        "Release   mig-kps in namespace mig-kps-monitoring: kube-prometheus-stack 88.5.3, revision 1, deployed ",
    );
    assert_has(
        text,
        "Values    none given: the chart's defaults were in use, automon's take their place (-o yaml: the values for `kubectl automon enable -n automon -f`)",
    );
    assert_has(
        text,
        "Yours     2 objects of yours that the release's Prometheus selects, outside the release",
    );
    for (kind, name) in [("PrometheusRule", "my-rules"), ("ServiceMonitor", "my-app")] {
        let row = text
            .lines()
            .find(|l| l.starts_with(kind) && l.contains(name))
            .unwrap_or_else(|| panic!("no row for {kind} {name}:\n{text}"));
        assert_eq!(
            row.split_whitespace().collect::<Vec<_>>(),
            [kind, "mig-kps-team", name, "release=mig-kps"],
            "{text}"
        );
    }
    assert_has(
        text,
        &format!(
            "Removal   deletes {} objects of the release as `helm uninstall` would, then its 1 record",
            manifest.len()
        ),
    );
    for (kind, n) in counts(&manifest) {
        let row = text
            .lines()
            .find(|l| {
                l.split_whitespace().next() == Some(kind.as_str())
                    && l.split_whitespace().count() == 2
            })
            .unwrap_or_else(|| panic!("no count for {kind}:\n{text}"));
        assert_eq!(
            row.split_whitespace().nth(1),
            Some(n.to_string().as_str()),
            "{kind}: {text}"
        );
    }
    assert_has(
        text,
        "Keeps     10 CRDs (monitoring.coreos.com); no PersistentVolumeClaim of the release's Prometheus or Alertmanager",
    );
    assert_has(text, "Nothing was changed (--dry-run).");
    assert_eq!(
        release.manifest(),
        manifest,
        "the dry run changed the release"
    );

    // The values as a file enable takes: none were given.
    let yaml = release.migrate(&["--dry-run", "-o", "yaml"]).success();
    let (head, values) = yaml.stdout.split_once('\n').unwrap();
    assert_eq!(
        head,
        "# automon's values for Helm release mig-kps (kube-prometheus-stack 88.5.3, revision 1) in namespace mig-kps-monitoring"
    );
    // No value of the user's; what automon needs to do what the release did.
    assert_eq!(
        serde_saphyr::from_str::<Value>(values).unwrap(),
        serde_json::json!({
            "kubelet": {"probes": true},
            "nodeExporter": {"port": 9101},
            "prometheus": {"select": {
                "exclude": {"app.kubernetes.io/instance": "mig-kps"},
                "labels": {"release": "mig-kps"},
                "namespaces": ["*"],
            }},
        })
    );

    // Errors say what is wrong, with their code.
    release
        .migrate(&["-o", "yaml"])
        .code(EXIT_USAGE)
        .stderr_has("-o is for --dry-run");
    run(automon_admin().args(["migrate", "nope", "--from-namespace", release.namespace, "--dry-run"]))
        .code(1)
        .stderr_has("no Helm release \"nope\" in namespace mig-kps-monitoring (releases there: mig-kps); `helm list -A` lists every release");
    run(automon()
        .args(["--kubeconfig", c.limited_kubeconfig.to_str().unwrap()])
        .args([
            "migrate",
            release.name,
            "--from-namespace",
            release.namespace,
            "--dry-run",
        ]))
    .code(EXIT_FORBIDDEN)
    .stderr_has("may not list secrets in namespace \"mig-kps-monitoring\"");
    {
        let grafana = Release::install(
            "mig-grafana",
            "mig-kps-monitoring-2",
            &chart().join("charts/grafana"),
            None,
        );
        grafana
            .migrate(&["--dry-run"])
            .code(EXIT_USAGE)
            .stderr_has("Helm release \"mig-grafana\" in namespace mig-kps-monitoring-2 is chart grafana 12.11.1, not kube-prometheus-stack: migrate moves from kube-prometheus-stack only");
    }

    // The removal, after an interrupted one deleted a Deployment already.
    let (_, _, operator) = manifest
        .iter()
        .find(|(k, _, n)| k == "Deployment" && n.ends_with("-operator"))
        .expect("the operator's Deployment")
        .clone();
    kubectl(&["delete", "deployment", &operator, "-n", release.namespace]);
    let removed = release.migrate(&["--only-remove-release"]).success();
    assert_has(
        &removed.stdout,
        &format!(
            "release mig-kps (revision 1) removed from namespace mig-kps-monitoring: {} objects deleted, 0 kept, 1 already gone, 1 record deleted",
            manifest.len() - 1
        ),
    );
    assert_has(
        &removed.stdout,
        "secret/sh.helm.release.v1.mig-kps.v1 deleted",
    );
    assert_removed(
        &release,
        &manifest,
        &[
            ("ServiceMonitor", "mig-kps-team", "my-app"),
            ("PrometheusRule", "mig-kps-team", "my-rules"),
        ],
    );
}

#[test]
fn the_default_release_migrated_with_no_gap_and_the_users_monitors_kept() {
    let _one = one_at_a_time();
    let c = cluster();
    c.ensure_crds();
    // The local cluster's operator stands in for the release's (its pod does not run here).
    ensure_operator();
    let ns = "mig-all-automon";
    let _automon = Cleanup::fresh(ns).waited();
    let release = Release::install("mig-all", "mig-all-monitoring", &chart(), None)
        .with_namespace("mig-all-team");
    users_objects("mig-all-team", "{release: mig-all}");
    users_app("mig-all-team");
    let manifest = release.manifest();
    let prometheus = prometheus_of(&manifest);

    let plan = release.migrate(&["-n", ns, "--dry-run"]).success();
    assert_has(&plan.stdout, "Beside    4 settings the migration adds");
    for (setting, value) in [
        (
            "migration",
            r#"{"namespace":"mig-all-monitoring","release":"mig-all"}"#,
        ),
        ("nodeExporter.port", "9101"),
        ("kubelet.probes", "true"),
        (
            "prometheus.select",
            r#"{"exclude":{"app.kubernetes.io/instance":"mig-all"},"labels":{"release":"mig-all"},"namespaces":["*"]}"#,
        ),
    ] {
        let row = plan
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(setting))
            .unwrap_or_else(|| panic!("no setting {setting}:\n{}", plan.stdout));
        assert_eq!(row.split_whitespace().nth(1), Some(value), "{row}");
    }
    assert!(
        !present("namespace", "", ns),
        "the dry run created automon's namespace"
    );

    let (theirs, ours, _) = migrate_in_two_steps(&release, ns, &prometheus, true);
    eprintln!(
        "targets of the release's Prometheus before the migration, by job: {:?}\ntargets of automon's after it: {:?}",
        jobs(&theirs),
        jobs(&ours)
    );
    assert_removed(
        &release,
        &manifest,
        &[
            ("ServiceMonitor", "mig-all-team", "my-app"),
            ("PrometheusRule", "mig-all-team", "my-rules"),
        ],
    );
    // The user's monitor and rule stay selected by automon's Prometheus.
    let generated = operator_config(ns, "automon", "serviceMonitor/mig-all-team/my-app/");
    assert!(
        scrape_pools(&generated)
            .iter()
            .any(|p| p.starts_with("serviceMonitor/mig-all-team/my-app/")),
        "{generated}"
    );
    eventually(60, "the user's rule among automon's rule files", || {
        rule_files(ns, "automon").contains("MyAppDown")
    });
}

const VALUES: &str = r#"
prometheus:
  prometheusSpec:
    serviceMonitorSelectorNilUsesHelmValues: false
    podMonitorSelectorNilUsesHelmValues: false
    ruleSelectorNilUsesHelmValues: false
    probeSelectorNilUsesHelmValues: false
    retention: 30d
    replicas: 2
    externalLabels: {cluster: prod}
    storageSpec:
      volumeClaimTemplate:
        spec:
          storageClassName: mig-mon-standard
          resources: {requests: {storage: 5Gi}}
alertmanager:
  alertmanagerSpec:
    replicas: 2
    secrets: [mig-hooks]
  config:
    route:
      receiver: team
      group_by: [alertname, cluster]
      routes:
        - receiver: literal
          matchers: ["severity = critical"]
    receivers:
      - name: team
        webhook_configs:
          - url_file: /etc/alertmanager/secrets/mig-hooks/url
      - name: literal
        webhook_configs:
          - url: https://hooks.example.com/planted-secret-token
kubeEtcd:
  enabled: false
kubeDns:
  enabled: true
"#;

#[test]
fn values_of_its_own_mapped_and_the_users_objects_and_data_kept() {
    let _one = one_at_a_time();
    let c = cluster();
    c.ensure_crds();
    // The operator makes the StatefulSets, whose controller makes the volume claims (of a
    // StorageClass that exists: the operator checks).
    ensure_operator();
    let _class = StorageClass::new("mig-mon-standard");
    let release = Release::install("mig-mon", "mig-mon-obs", &chart(), Some(VALUES))
        .with_namespace("mig-mon-team");
    kubectl(&[
        "create",
        "secret",
        "generic",
        "mig-hooks",
        "-n",
        "mig-mon-obs",
        "--from-literal=url=https://hooks.example.com/from-a-secret",
    ]);
    // A second revision: the removal reads the latest and deletes every record.
    let (_values_dir, values_file) = write_temp("values.yaml", VALUES);
    helm(&[
        "upgrade",
        release.name,
        chart().to_str().unwrap(),
        "-n",
        release.namespace,
        "--skip-crds",
        "-f",
        values_file.to_str().unwrap(),
    ])
    .success();
    // Not labelled for the release: a Prometheus that selects every ServiceMonitor takes it.
    users_objects("mig-mon-team", "{team: a}");
    users_app("mig-mon-team");
    let manifest = release.manifest();
    let prometheus = prometheus_of(&manifest);
    let claims: Vec<String> = (0..2)
        .map(|i| format!("prometheus-{prometheus}-db-prometheus-{prometheus}-{i}"))
        .collect();
    eventually(120, "the StatefulSet's volume claims", || {
        claims
            .iter()
            .all(|claim| present("pvc", "mig-mon-obs", claim))
    });
    // A manifest object another release has taken over: not this release's to delete.
    let (_, _, taken) = manifest
        .iter()
        .find(|(k, _, n)| k == "ConfigMap" && n.contains("grafana"))
        .expect("a Grafana ConfigMap")
        .clone();
    kubectl(&[
        "annotate",
        "configmap",
        &taken,
        "-n",
        "mig-mon-obs",
        "meta.helm.sh/release-name=someone-else",
        "--overwrite",
    ]);

    let out = release.migrate(&["--dry-run", "-n", "automon"]).success();
    assert_has(
        &out.stdout,
        "Release   mig-mon in namespace mig-mon-obs: kube-prometheus-stack 88.5.3, revision 2, deployed ",
    );
    assert_has(&out.stdout, " (2 records)\n");
    let text = format!("{}{}", out.stdout, out.stderr);
    assert_lacks(&text, "planted-secret-token");
    let row = |chart: &str| -> Vec<String> {
        out.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(chart))
            .unwrap_or_else(|| panic!("no row {chart}:\n{}", out.stdout))
            .split("   ")
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect()
    };
    assert_eq!(
        row("prometheus.prometheusSpec.retention"),
        [
            "prometheus.prometheusSpec.retention",
            "30d",
            "prometheus.retention: 30d"
        ]
    );
    assert_eq!(
        row("prometheus.prometheusSpec.replicas"),
        [
            "prometheus.prometheusSpec.replicas",
            "2",
            "prometheus.replicas: 2"
        ]
    );
    assert_eq!(
        row("prometheus.prometheusSpec.externalLabels.cluster")[2],
        "prometheus.externalLabels.cluster: prod"
    );
    assert_eq!(
        row(
            "prometheus.prometheusSpec.storageSpec.volumeClaimTemplate.spec.resources.requests.storage"
        )[2],
        "prometheus.storage.size: 5Gi"
    );
    assert_eq!(
        row("alertmanager.alertmanagerSpec.replicas")[2],
        "alertmanager.replicas: 2"
    );
    assert_eq!(
        row("alertmanager.config.receivers[0]")[2],
        "alertmanager.receivers[0]: team (webhook from Secret mig-hooks key url)"
    );
    assert_eq!(
        row("alertmanager.config.route.receiver")[2],
        "alertmanager.route.receiver: team"
    );
    for (chart, says) in [
        (
            "prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues",
            "by the migration: the chart's Prometheus selects every ServiceMonitor, not only those labelled release: mig-mon",
        ),
        (
            "kubeEtcd.enabled",
            "nothing to carry: automon does not scrape etcd either",
        ),
        (
            "alertmanager.config.receivers[1]",
            "its url is a credential written in the chart's values, which automon never copies",
        ),
        ("alertmanager.config.route.routes", "no child routes"),
        ("kubeDns.enabled", "automon does not scrape kube-dns"),
    ] {
        assert_has(&row(chart)[2], says);
    }
    assert_eq!(
        row("alertmanager.config.receivers[1]")[1],
        "literal (webhook)"
    );
    assert_has(
        &out.stdout,
        "Note      copy Secret mig-hooks from namespace mig-mon-obs to automon: automon reads Secrets in its own namespace",
    );
    for (kind, name) in [("PrometheusRule", "my-rules"), ("ServiceMonitor", "my-app")] {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(kind) && l.contains(" my-"))
            .filter(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{kind} {name} not among yours:\n{}", out.stdout));
        assert!(line.ends_with("every one"), "{line}");
    }
    assert_has(
        &out.stdout,
        "2 PersistentVolumeClaims, where the old data is",
    );
    for claim in &claims {
        assert_has(
            &out.stdout,
            &format!("persistentvolumeclaim mig-mon-obs/{claim}"),
        );
    }
    assert_has(&out.stdout, &format!("configmap/{taken}"));
    assert_has(
        &out.stdout,
        "not this release's: meta.helm.sh/release-name is \"someone-else\"",
    );

    // -o yaml: a file enable takes (render reads it offline), credentials never in it.
    let yaml = release.migrate(&["--dry-run", "-o", "yaml"]).success();
    assert_lacks(&yaml.stdout, "planted-secret-token");
    assert_has(
        &yaml.stdout,
        "# 3 values not carried over: see kubectl automon migrate mig-mon --from-namespace mig-mon-obs --dry-run\n",
    );
    let values: Value = serde_json::from_str(
        &release
            .migrate(&["--dry-run", "-o", "json"])
            .success()
            .stdout,
    )
    .unwrap();
    assert_eq!(
        values,
        serde_json::json!({
            "alertmanager": {
                "receivers": [{"name": "team", "webhook": {"urlSecret": {"secret": "mig-hooks", "key": "url"}}}],
                "replicas": 2,
                "route": {"groupBy": ["alertname", "cluster"], "receiver": "team"},
            },
            "prometheus": {
                "externalLabels": {"cluster": "prod"},
                "replicas": 2,
                "retention": "30d",
                "storage": {"size": "5Gi", "storageClass": "mig-mon-standard"},
                "select": {
                    "all": true,
                    "exclude": {"app.kubernetes.io/instance": "mig-mon"},
                    "namespaces": ["*"],
                },
            },
            "kubelet": {"probes": true},
            "nodeExporter": {"port": 9101},
        })
    );
    let (_dir, file) = write_temp("automon.yaml", &yaml.stdout);
    run(automon().args(["render", "-f", file.to_str().unwrap()])).success();

    // The migration itself: automon's Prometheus on volumes of the same class (each claim
    // finds one here), the Secret its receiver reads copied as the report says.
    let automon_ns = "mig-mon-automon";
    let _automon = Cleanup::created(automon_ns).waited();
    let _volumes = Volumes::new("mig-mon-standard", 4);
    kubectl(&[
        "create",
        "secret",
        "generic",
        "mig-hooks",
        "-n",
        automon_ns,
        "--from-literal=url=https://hooks.example.com/from-a-secret",
    ]);
    let (theirs, ours, done) = migrate_in_two_steps(&release, automon_ns, &prometheus, false);
    eprintln!(
        "targets of the release's Prometheus before the migration, by job: {:?}\ntargets of automon's after it: {:?}",
        jobs(&theirs),
        jobs(&ours)
    );
    assert_has(&done.stdout, "2 release records deleted");
    // A run interrupted after the removal left automon holding the migration's settings: the
    // next run only settles.
    run(automon_admin().args([
        "enable",
        "-n",
        automon_ns,
        "--set",
        "migration.release=mig-mon",
        "--set",
        "migration.namespace=mig-mon-obs",
    ]))
    .success();
    let settled = release.migrate(&["-n", automon_ns]).success();
    assert_has(
        &settled.stdout,
        "Release   mig-mon in namespace mig-mon-obs: removed already; automon drops the migration's settings",
    );
    assert_has(&settled.stdout, "Migrated from release mig-mon");
    let prometheus_object = get_json(&["get", "prometheus", "automon", "-n", automon_ns]);
    assert!(
        prometheus_object["metadata"]["annotations"]
            .get("operator.prometheus.io/controller-id")
            .is_none(),
        "{prometheus_object}"
    );
    let mut kept: Vec<(&str, &str, &str)> = vec![
        ("ServiceMonitor", "mig-mon-team", "my-app"),
        ("PrometheusRule", "mig-mon-team", "my-rules"),
        ("ConfigMap", "mig-mon-obs", taken.as_str()),
        ("Secret", "mig-mon-obs", "mig-hooks"),
    ];
    kept.extend(
        claims
            .iter()
            .map(|c| ("PersistentVolumeClaim", "mig-mon-obs", c.as_str())),
    );
    assert_removed(&release, &manifest, &kept);
    // Selected without the release's label: automon's Prometheus selects every monitor, as
    // the release's did.
    let generated = operator_config(automon_ns, "automon", "serviceMonitor/mig-mon-team/my-app/");
    assert!(
        scrape_pools(&generated)
            .iter()
            .any(|p| p.starts_with("serviceMonitor/mig-mon-team/my-app/")),
        "{generated}"
    );
}
