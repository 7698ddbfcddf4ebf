//! A test's own stack in the shared cluster: `enable` into a namespace of its own (with a host
//! port of its own), the guard that removes it whatever the test did, and reading it back: the
//! ApplySet parent, its pods, what the operator generated from it, `status` and `history`.

use std::path::Path;

use serde_json::{Value, json};

use super::{Run, at_exit, automon_admin, cluster, get_json, run};

/// `enable` into a test's own namespace, the CRDs already in the cluster. Cluster-scoped
/// objects carry the namespace in their names, and its node-exporter gets a host port of its
/// own (stacks in one cluster would otherwise compete for port 9100 on every node, as `doctor`
/// will tell a user).
pub fn enable(ns: &str, extra: &[&str]) -> Run {
    // The CRDs come from the cluster (installed here unless the test names its own source):
    // without them enable would download the pinned release, and no test leaves loopback.
    if !extra.iter().any(|a| a.starts_with("--crds-from")) {
        cluster().ensure_crds();
    }
    run(automon_admin()
        .args(["enable", "-n", ns])
        .args(port_for(ns))
        .args(extra))
}

/// The host port node-exporter of the stack in `ns` listens on (see [`enable`]).
pub fn node_exporter_port(ns: &str) -> u16 {
    let hash = ns
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    (20000 + hash % 20000) as u16
}

/// `--set nodeExporter.port=<the namespace's own port>`.
pub fn port_for(ns: &str) -> [String; 2] {
    [
        "--set".into(),
        format!("nodeExporter.port={}", node_exporter_port(ns)),
    ]
}

/// Removes a test's namespace and its cluster-scoped objects (`<ns>-*`), whatever the test did.
pub struct Cleanup {
    ns: &'static str,
    wait: bool,
}

impl Cleanup {
    /// Starts from nothing: a namespace an earlier run left behind is gone before the test.
    pub fn fresh(ns: &'static str) -> Cleanup {
        drop(Cleanup { ns, wait: false });
        cluster().kubectl(&[
            "wait",
            "--for=delete",
            &format!("namespace/{ns}"),
            "--timeout=120s",
        ]);
        Cleanup { ns, wait: false }
    }

    /// [`Cleanup::fresh`], then the namespace created, empty.
    pub fn created(ns: &'static str) -> Cleanup {
        let cleanup = Cleanup::fresh(ns);
        cluster().kubectl(&["create", "namespace", ns]).success();
        cleanup
    }

    /// [`Cleanup::fresh`], removed when the test binary exits: a stack its tests share.
    pub fn until_exit(ns: &'static str) {
        let cleanup = Cleanup::fresh(ns);
        at_exit(move || drop(cleanup));
    }

    /// Waits until the namespace is gone when dropped: what runs in it (another Prometheus
    /// Operator) must not outlive the test, or the next test binary's enable would find it.
    pub fn waited(mut self) -> Cleanup {
        self.wait = true;
        self
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let c = cluster();
        c.kubectl(&[
            "delete",
            "namespace",
            self.ns,
            &format!("--wait={}", self.wait),
            "--timeout=60s",
            "--ignore-not-found",
        ]);
        for kind in ["clusterrole", "clusterrolebinding"] {
            let out = c.kubectl(&["get", kind, "-o", "name"]);
            let names: Vec<&str> = out
                .stdout
                .lines()
                .filter(|l| l.contains(&format!("/{}-", self.ns)))
                .collect();
            if !names.is_empty() {
                let mut args = vec!["delete", "--ignore-not-found"];
                args.extend(names);
                c.kubectl(&args);
            }
        }
    }
}

/// `kubectl patch` of the stack's `Prometheus` in `ns` with a merge patch, as another tool
/// (or a test's fault) changes it; it must succeed.
#[track_caller]
pub fn patch_prometheus(ns: &str, patch: &str) {
    cluster()
        .kubectl(&[
            "patch",
            "prometheus",
            "automon",
            "-n",
            ns,
            "--type=merge",
            "-p",
            patch,
        ])
        .success();
}

/// The ServiceMonitor `node-exporter` of the stack in `ns`: automon's own exporter's, or the
/// one through which it scrapes another stack's.
pub fn exporter_scrape_object(ns: &str) -> Value {
    get_json(&["get", "servicemonitor", "node-exporter", "-n", ns])
}

/// A field of the ApplySet parent (ConfigMap `automon`) in `ns`, by kubectl's jsonpath
/// (`{.metadata.labels.applyset\\.kubernetes\\.io/id}`).
pub fn parent_field(ns: &str, jsonpath: &str) -> String {
    cluster()
        .kubectl(&[
            "get",
            "configmap",
            "automon",
            "-n",
            ns,
            "-o",
            &format!("jsonpath={jsonpath}"),
        ])
        .success()
        .stdout
}

/// The kinds the parent in `ns` lists.
pub fn parent_kinds(ns: &str) -> String {
    parent_field(
        ns,
        r"{.metadata.annotations.applyset\.kubernetes\.io/contains-group-kinds}",
    )
}

/// The first pod of `ns` labelled `app.kubernetes.io/name=<app>` (say, the operator's
/// `prometheus-automon-0`), if there is one yet.
pub fn pod_of(ns: &str, app: &str) -> Option<String> {
    let out = cluster().kubectl(&[
        "get",
        "pods",
        "-n",
        ns,
        "-l",
        &format!("app.kubernetes.io/name={app}"),
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    let name = out.stdout.trim();
    (out.code == 0 && !name.is_empty()).then(|| name.to_string())
}

/// The Prometheus configuration the operator generated for the `Prometheus` `name` in `ns`
/// (Secret `prometheus-<name>`, key `prometheus.yaml.gz`), or "" while it has written none.
pub fn generated_config(ns: &str, name: &str) -> String {
    use base64::Engine as _;
    use std::io::Read as _;
    let out = cluster().kubectl(&[
        "get",
        "secret",
        "-n",
        ns,
        &format!("prometheus-{name}"),
        "-o",
        r"jsonpath={.data.prometheus\.yaml\.gz}",
    ]);
    if out.code != 0 {
        return String::new();
    }
    let Ok(gz) = base64::engine::general_purpose::STANDARD.decode(out.stdout.trim()) else {
        return String::new();
    };
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .map(|_| text)
        .unwrap_or_default()
}

/// The rule files the operator mounts into the `Prometheus` `name` in `ns` (its first
/// ConfigMap's data, as JSON text: a rule file's newlines are `\n` in it), or "" while it has
/// written none.
pub fn rule_files(ns: &str, name: &str) -> String {
    let out = cluster().kubectl(&[
        "get",
        "configmap",
        "-n",
        ns,
        &format!("prometheus-{name}-rulefiles-0"),
        "-o",
        "json",
    ]);
    serde_json::from_str::<Value>(&out.stdout)
        .map(|cm| cm["data"].to_string())
        .unwrap_or_default()
}

/// A node's entry in `status -o json` (null when status lists no such node).
pub fn status_node<'a>(st: &'a Value, name: &str) -> &'a Value {
    st["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["name"] == name))
        .unwrap_or(&Value::Null)
}

/// `status -n <ns> -o json <extra>`: the run, and what it printed, which must be JSON.
#[track_caller]
pub fn status_json(ns: &str, extra: &[&str]) -> (Run, Value) {
    let out = run(automon_admin()
        .args(["status", "-n", ns])
        .args(extra)
        .args(["-o", "json"]));
    let json = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("status -o json is not JSON ({e}):\n{out:#?}"));
    (out, json)
}

/// The revisions `history -n <ns> -o json` lists, oldest first.
#[track_caller]
pub fn history_json(ns: &str) -> Vec<Value> {
    let out = run(automon_admin().args(["history", "-n", ns, "-o", "json"])).success();
    let list: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("history -o json is not JSON ({e}):\n{out:#?}"));
    list.as_array().expect("a list of revisions").clone()
}

/// [`generated_config`], once it holds a scrape pool whose name contains `pool` (a
/// ServiceMonitor's is `serviceMonitor/<ns>/<name>/<endpoint>`), parsed, as the config reloader
/// fills it in inside the pod (`$(SHARD)` 0, `$(POD_NAME)` the first pod).
pub fn operator_config(ns: &str, name: &str, pool: &str) -> Value {
    let config = super::poll(
        120,
        || generated_config(ns, name),
        |text| text.contains(pool),
    );
    assert!(
        config.contains(pool),
        "the operator generated no scrape pool {pool} for {ns}/{name}:\n{config}"
    );
    let config = config
        .replace("$(SHARD)", "0")
        .replace("$(POD_NAME)", &format!("prometheus-{name}-0"));
    serde_saphyr::from_str(&config).expect("the generated configuration is YAML")
}

/// The scrape pools (`job_name`s) of a generated configuration.
pub fn scrape_pools(config: &Value) -> Vec<String> {
    config["scrape_configs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|j| j["job_name"].as_str().map(str::to_string))
        .collect()
}

/// `config` as a Prometheus out of the cluster can load it: service discovery through the
/// local cluster's kubeconfig, no in-pod credentials, rules or Alertmanagers, and every target
/// dialed at a closed port of 127.0.0.1 (the relabeling that decides which targets are kept
/// runs unchanged before that).
pub fn outside_the_cluster(mut config: Value, kubeconfig: &Path) -> Value {
    let map = config.as_object_mut().unwrap();
    for key in ["rule_files", "alerting", "remote_write", "storage"] {
        map.remove(key);
    }
    for job in config["scrape_configs"].as_array_mut().unwrap() {
        let job = job.as_object_mut().unwrap();
        for key in [
            "authorization",
            "tls_config",
            "bearer_token_file",
            "basic_auth",
            "oauth2",
        ] {
            job.remove(key);
        }
        for sd in job
            .get_mut("kubernetes_sd_configs")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            sd["kubeconfig_file"] = json!(kubeconfig.display().to_string());
        }
        let relabel = job.entry("relabel_configs").or_insert_with(|| json!([]));
        relabel
            .as_array_mut()
            .unwrap()
            .push(json!({"target_label": "__address__", "replacement": "127.0.0.1:1"}));
    }
    config
}

/// A real Prometheus (from [`super::built_tool`]) on a free port of 127.0.0.1, loaded with an
/// operator-generated configuration made loadable out of the cluster
/// ([`outside_the_cluster`]): its service discovery reads the local cluster, every scrape goes
/// to a closed port. Stops when dropped.
pub struct OutsidePrometheus {
    pub port: u16,
    pub log: std::path::PathBuf,
    _process: super::Process,
    _dir: tempfile::TempDir,
}

impl OutsidePrometheus {
    pub fn start(config: Value) -> OutsidePrometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = outside_the_cluster(config, &cluster().kubeconfig);
        std::fs::write(
            dir.path().join("prometheus.yaml"),
            serde_json::to_string(&config).unwrap(),
        )
        .unwrap();
        let port = super::free_port();
        let (process, log) = super::spawn_prometheus(
            &super::built_tool("prometheus", "prometheus"),
            dir.path(),
            port,
        );
        OutsidePrometheus {
            port,
            log,
            _process: process,
            _dir: dir,
        }
    }

    /// Its active targets once discovery has settled (two answers a few seconds apart agree).
    pub fn settled_targets(&self) -> Vec<Value> {
        let mut last = String::new();
        let targets = super::poll(
            90,
            || {
                std::thread::sleep(std::time::Duration::from_secs(3));
                let active = super::http_get(self.port, "/api/v1/targets?state=active")
                    .ok()
                    .and_then(|a| serde_json::from_str::<Value>(&a).ok())
                    .and_then(|v| v["data"]["activeTargets"].as_array().cloned())
                    .unwrap_or_default();
                let key = serde_json::to_string(
                    &active
                        .iter()
                        .map(|t| (&t["scrapePool"], &t["discoveredLabels"]["__address__"]))
                        .collect::<Vec<_>>(),
                )
                .unwrap();
                let settled = !active.is_empty() && key == last;
                last = key;
                (settled, active)
            },
            |(settled, _)| *settled,
        );
        assert!(
            targets.0,
            "the real Prometheus kept no targets that settled:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
        targets.1
    }
}

/// Each target (its pod or node and address, its path) with the scrape pools that keep it
/// (`serviceMonitor/<ns>/<name>/<n> (job <job>)`).
pub type Kept = std::collections::BTreeMap<(String, String), std::collections::BTreeSet<String>>;

/// The targets a real Prometheus keeps with `config` (the operator's, made loadable here), and
/// every target's labels and node.
pub fn kept_targets(config: Value) -> (Kept, Vec<(Value, String)>) {
    kept_targets_of(&OutsidePrometheus::start(config).settled_targets())
}

/// [`kept_targets`] of a Prometheus' active targets.
pub fn kept_targets_of(targets: &[Value]) -> (Kept, Vec<(Value, String)>) {
    let mut by_target: std::collections::BTreeMap<
        (String, String),
        std::collections::BTreeSet<String>,
    > = std::collections::BTreeMap::new();
    let mut labelled = Vec::new();
    for t in targets {
        let d = &t["discoveredLabels"];
        // kwok's nodes share one address: the pod (or node) behind it tells targets apart.
        let key = (
            format!(
                "{} {}",
                d["__meta_kubernetes_endpoint_address_target_name"]
                    .as_str()
                    .or(d["__meta_kubernetes_pod_name"].as_str())
                    .unwrap_or_default(),
                d["__address__"].as_str().unwrap_or_default()
            ),
            d["__metrics_path__"]
                .as_str()
                .unwrap_or("/metrics")
                .to_string(),
        );
        // Two scrape pools under one job name are still two scrapes.
        let pool = format!(
            "{} (job {})",
            t["scrapePool"].as_str().unwrap_or_default(),
            t["labels"]["job"].as_str().unwrap_or_default()
        );
        by_target.entry(key).or_default().insert(pool);
        let node = d["__meta_kubernetes_pod_node_name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        labelled.push((t["labels"].clone(), node));
    }
    (by_target, labelled)
}

pub fn twice(by_target: &Kept) -> Vec<String> {
    by_target
        .iter()
        .filter(|(_, jobs)| jobs.len() > 1)
        .map(|((address, path), jobs)| format!("{address}{path}: {jobs:?}"))
        .collect()
}
