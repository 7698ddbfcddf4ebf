//! Test fixtures: the local cluster (started once per test binary, reused if already up) and
//! the real `kubectl-automon` binary, run the way a user runs it.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::OnceLock,
};

pub struct LocalCluster {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub limited_kubeconfig: PathBuf,
    /// Where kubectl, promtool and the control plane binaries are.
    pub tools_bin: PathBuf,
    pub server: String,
    /// kwok's kubelet server on 127.0.0.1: the nodes' kubelet API and the kubelet series kwok
    /// simulates (`/metrics/nodes/<node>/...`).
    pub kwok_port: u16,
}

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The test run's own local cluster (`LOCALCLUSTER_INSTANCE=test`: its own state directory and
/// ports), so that the try-it cluster a user started is never touched by a test.
pub fn localcluster_command() -> Command {
    localcluster_instance("test")
}

/// `tests/cluster/localcluster` for one instance: `test` (kwok nodes) or `real` (real nodes).
pub fn localcluster_instance(instance: &str) -> Command {
    let mut cmd = Command::new(repo_root().join("tests/cluster/localcluster"));
    cmd.env("LOCALCLUSTER_INSTANCE", instance);
    // `localcluster serve`'s Prometheus: a new node's exporter is scraped within a second.
    cmd.env("LOCALCLUSTER_SCRAPE_INTERVAL", "1s");
    cmd
}

/// Starts the local cluster unless it is up; every test in a binary shares it.
pub fn cluster() -> &'static LocalCluster {
    static CLUSTER: OnceLock<LocalCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| LocalCluster::up("test", &[]))
}

/// The cluster of real nodes (`LOCALCLUSTER_INSTANCE=real`): no kwok node, one real node
/// (kubelet, containerd, runc) at least, whose pods really run. tests/run starts it; a test binary
/// run alone starts it itself.
pub fn real_cluster() -> &'static LocalCluster {
    static CLUSTER: OnceLock<LocalCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| LocalCluster::up("real", &["--nodes", "0"]))
}

impl LocalCluster {
    fn up(instance: &str, args: &[&str]) -> LocalCluster {
        let mut up = localcluster_instance(instance);
        up.arg("up").args(args);
        // The real cluster keeps the real nodes it has; it starts with one.
        if instance == "real" {
            let status = localcluster_instance(instance).arg("status").output();
            let has_real = status
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("kubelet running"));
            if !has_real {
                up.args(["--real-nodes", "1"]);
            }
        }
        let up = up.status().expect("run tests/cluster/localcluster up");
        assert!(up.success(), "localcluster up ({instance}) failed");
        let env = localcluster_instance(instance)
            .arg("env")
            .output()
            .expect("localcluster env");
        let env = String::from_utf8(env.stdout).unwrap();
        let var = |name: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .unwrap_or_else(|| panic!("localcluster env has no {name}"))
                .to_string()
        };
        let dir = PathBuf::from(var("AUTOMON_LOCALCLUSTER"));
        let tools_bin = PathBuf::from(var("PATH").trim_end_matches(":$PATH"));
        let kubeconfig = PathBuf::from(var("KUBECONFIG"));
        let text = std::fs::read_to_string(&kubeconfig).unwrap();
        let server = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("server: "))
            .unwrap()
            .to_string();
        let kwok_port = var("LOCALCLUSTER_KWOK_PORT").parse().expect("kwok's port");
        LocalCluster {
            kwok_port,
            limited_kubeconfig: dir.join("limited.kubeconfig"),
            dir,
            kubeconfig,
            tools_bin,
            server,
        }
    }
}

impl LocalCluster {
    /// The admin kubeconfig's text, for tests that write variants of it.
    pub fn kubeconfig_text(&self) -> String {
        std::fs::read_to_string(&self.kubeconfig).unwrap()
    }

    /// kubectl from the tools, against the admin kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(self.tools_bin.join("kubectl"));
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        Run::from(cmd.output().expect("run kubectl"))
    }
}

/// The binary under test with a clean environment: no user kubeconfig, no colour, no proxy.
pub fn automon() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubectl-automon"));
    for v in [
        "KUBECONFIG",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
        "KUBERNETES_SERVICE_HOST",
    ] {
        cmd.env_remove(v);
    }
    cmd.env("NO_COLOR", "1");
    cmd.env("HOME", scratch_home());
    cmd
}

/// An empty HOME so that a developer's ~/.kube/config never leaks into a test.
fn scratch_home() -> &'static Path {
    static HOME: OnceLock<tempfile::TempDir> = OnceLock::new();
    HOME.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

/// The binary against the local cluster's admin kubeconfig.
pub fn automon_admin() -> Command {
    let mut cmd = automon();
    cmd.env("KUBECONFIG", &cluster().kubeconfig);
    cmd
}

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

pub fn run(cmd: &mut Command) -> Run {
    Run::from(cmd.output().expect("run kubectl-automon"))
}

impl Run {
    #[track_caller]
    pub fn success(self) -> Self {
        assert_eq!(self.code, 0, "expected success:\n{self:#?}");
        self
    }
    #[track_caller]
    pub fn code(self, code: i32) -> Self {
        assert_eq!(self.code, code, "expected exit code {code}:\n{self:#?}");
        self
    }
    #[track_caller]
    pub fn stderr_has(self, needle: &str) -> Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{self:#?}"
        );
        self
    }
    #[track_caller]
    pub fn stdout_has(self, needle: &str) -> Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{self:#?}"
        );
        self
    }
}

/// Writes `text` to a fresh file in a temp dir that lives as long as the returned guard.
pub fn write_temp(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// The value after `key: ` on the first line that has it.
pub fn yaml_value(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in\n{text}"))
        .to_string()
}

/// The objects the renderer adds or changes for a cluster with every node class (Windows and
/// GPU nodes), from their reviewed snapshots (`tests/snapshots/classes__*.snap`). `render` has
/// no flag for node classes (the commands detect them from the nodes), so the tests that check
/// rules and dashboards with real tools read these; the renderer's own snapshot test
/// (`render::tests::node_classes_snapshot`) fails whenever they differ from what it renders.
pub fn node_class_objects() -> Vec<serde_json::Value> {
    let dir = repo_root().join("tests/snapshots");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("classes__") && n.ends_with(".snap"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no classes__*.snap in {}", dir.display());
    files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            // insta's header (`---`, `source: ...`, `---`), then the object's YAML.
            let body = text
                .splitn(3, "---\n")
                .nth(2)
                .unwrap_or_else(|| panic!("{} has no insta header", f.display()));
            serde_saphyr::from_str(body).unwrap_or_else(|e| panic!("{}: {e}", f.display()))
        })
        .collect()
}

/// The objects `kubectl automon render -o json <args>` prints, in order.
pub fn rendered_objects(args: &[&str]) -> Vec<serde_json::Value> {
    let out = run(automon().args(["render", "-o", "json"]).args(args)).success();
    let list: serde_json::Value =
        serde_json::from_str(&out.stdout).expect("render -o json is JSON");
    list["items"].as_array().expect("a List has items").clone()
}

/// The Grafana dashboards these objects hold (the ConfigMaps Grafana's sidecar loads), parsed.
pub fn dashboards_in(objects: &[serde_json::Value]) -> Vec<serde_json::Value> {
    objects
        .iter()
        .filter(|o| o["kind"] == "ConfigMap" && o["metadata"]["labels"]["grafana_dashboard"] == "1")
        .flat_map(|o| {
            o["data"]
                .as_object()
                .expect("data")
                .values()
                .cloned()
                .collect::<Vec<_>>()
        })
        .map(|text| serde_json::from_str(text.as_str().expect("a string")).expect("dashboard JSON"))
        .collect()
}

/// One PromQL query a rendered dashboard runs: a panel's target, or the series selector of a
/// template variable (`label_values(selector, label)`), whose `panel_title` is `variable <name>`.
#[derive(Debug, Clone)]
pub struct DashboardQuery {
    pub dashboard_uid: String,
    pub panel_title: String,
    pub expr: String,
}

impl DashboardQuery {
    /// Where the query is, for messages: `uid / panel title`.
    pub fn at(&self) -> String {
        format!("{} / {}", self.dashboard_uid, self.panel_title)
    }
}

/// Every query of every dashboard these objects hold (see [`dashboards_in`]): each panel
/// target's expr, then each query variable's series selector. Variables of other types (the
/// datasource picker) run no PromQL.
pub fn dashboard_queries(objects: &[serde_json::Value]) -> Vec<DashboardQuery> {
    let mut out = Vec::new();
    for d in dashboards_in(objects) {
        let uid = d["uid"].as_str().expect("uid").to_string();
        let query = |panel_title: String, expr: &str| DashboardQuery {
            dashboard_uid: uid.clone(),
            panel_title,
            expr: expr.to_string(),
        };
        for p in d["panels"].as_array().expect("panels") {
            for t in p["targets"].as_array().expect("targets") {
                let title = p["title"].as_str().expect("title").to_string();
                out.push(query(title, t["expr"].as_str().expect("expr")));
            }
        }
        for v in d["templating"]["list"].as_array().expect("variables") {
            if v["type"] != "query" {
                continue;
            }
            let definition = v["query"]["query"].as_str().expect("variable query");
            let selector = definition
                .strip_prefix("label_values(")
                .and_then(|s| s.strip_suffix(")"))
                .and_then(|s| s.rsplit_once(", "))
                .map(|(selector, _label)| selector)
                .unwrap_or_else(|| panic!("not label_values(selector, label): {definition}"));
            out.push(query(
                format!("variable {}", v["name"].as_str().expect("name")),
                selector,
            ));
        }
    }
    out
}

/// `expr` with Grafana's variables replaced as Grafana would before sending it: `$name`,
/// `${name}` and `${name:format}` take `values[name]`. A variable missing from `values` stays as
/// it is, so that PromQL checks fail on it rather than pass on a guess.
pub fn substitute(expr: &str, values: &std::collections::BTreeMap<&str, &str>) -> String {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = match after.strip_prefix('{') {
            Some(braced) => match braced.find('}') {
                Some(end) => {
                    let inner = &braced[..end];
                    (inner.split(':').next().unwrap_or(inner), end + 2)
                }
                None => ("", 0),
            },
            None => {
                let end = after.find(|c: char| !ident(c)).unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        match values.get(name) {
            Some(value) if !name.is_empty() => {
                out.push_str(value);
                rest = &after[len..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// promtool, built once per test binary (see [`built_tool`]).
pub fn promtool() -> &'static Path {
    static PROMTOOL: OnceLock<PathBuf> = OnceLock::new();
    PROMTOOL.get_or_init(|| built_tool("prometheus", "promtool"))
}

/// A test tool built through `tests/cluster/build-tools <target>` (cached after the first
/// build), e.g. `built_tool("prometheus", "promtool")`, so that tests work on a fresh machine.
pub fn built_tool(target: &str, name: &str) -> PathBuf {
    let out = Command::new(repo_root().join("tests/cluster/build-tools"))
        .arg(target)
        .output()
        .expect("run tests/cluster/build-tools");
    assert!(
        out.status.success(),
        "build-tools {target} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = String::from_utf8(out.stdout).expect("build-tools prints a path");
    PathBuf::from(bin.trim()).join(name)
}

impl LocalCluster {
    /// The prometheus-operator CRDs (as the local cluster's operator build gives them), installed
    /// once into the shared cluster and Established. Idempotent.
    pub fn ensure_crds(&self) {
        let dir = self.dir.join("crds");
        // Each file is named after its CRD. Applying them all again costs seconds: only when
        // one is missing (another test's `disable` may have removed the unused ones).
        let crds: Vec<String> = std::fs::read_dir(&dir)
            .expect("the cluster's crds directory")
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                Some(format!("crd/{}", name.strip_suffix(".yaml")?))
            })
            .collect();
        let crds: Vec<&str> = crds.iter().map(String::as_str).collect();
        if self.kubectl(&[&["get"], &crds[..]].concat()).code != 0 {
            self.kubectl(&[
                "apply",
                "--server-side",
                "--field-manager",
                "automon-test",
                "-f",
                dir.to_str().unwrap(),
            ])
            .success();
        }
        self.kubectl(&[
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=60s",
        ])
        .success();
    }
}

/// `enable` into a test's own namespace, the CRDs already in the cluster. Cluster-scoped objects carry the namespace in their
/// names, and its node-exporter gets a host port of its own (stacks in one cluster would
/// otherwise compete for port 9100 on every node, as `doctor` will tell a user).
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

/// Removes a test's namespace and its cluster-scoped objects, whatever the test did.
pub struct Cleanup(pub &'static str);

impl Cleanup {
    /// Starts from nothing: a namespace an earlier run left behind is gone before the test.
    pub fn fresh(ns: &'static str) -> Cleanup {
        drop(Cleanup(ns));
        cluster().kubectl(&[
            "wait",
            "--for=delete",
            &format!("namespace/{ns}"),
            "--timeout=120s",
        ]);
        Cleanup(ns)
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let c = cluster();
        c.kubectl(&[
            "delete",
            "namespace",
            self.0,
            "--wait=false",
            "--ignore-not-found",
        ]);
        for kind in ["clusterrole", "clusterrolebinding"] {
            let out = c.kubectl(&["get", kind, "-o", "name"]);
            let names: Vec<&str> = out
                .stdout
                .lines()
                .filter(|l| l.contains(&format!("/{}-", self.0)))
                .collect();
            if !names.is_empty() {
                let mut args = vec!["delete", "--ignore-not-found"];
                args.extend(names);
                c.kubectl(&args);
            }
        }
    }
}

pub fn localcluster(args: &[&str]) -> Run {
    Run::from(
        localcluster_command()
            .args(args)
            .output()
            .expect("run tests/cluster/localcluster"),
    )
}

/// A server on loopback that answers every request with `answer`, or, with `None`, accepts
/// connections and never says a word. Lives as long as the test binary.
pub fn fake_http_server(answer: Option<&'static str>) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut silent = Vec::new();
        for mut stream in listener.incoming().map_while(Result::ok) {
            match answer {
                Some(answer) => {
                    let mut head = [0u8; 4096];
                    let _ = stream.read(&mut head);
                    let _ = stream.write_all(answer.as_bytes());
                }
                None => silent.push(stream),
            }
        }
    });
    port
}

/// `localcluster expose NS/POD PORT 127.0.0.1:LOCAL`: the process at `local` answers for the
/// pod's port (the API server's service and pod proxy, port-forward) until the guard drops.
pub struct Exposed(pub String);

#[track_caller]
pub fn expose(ns: &str, pod: &str, port: u16, local: u16) -> Exposed {
    let name = format!("{ns}/{pod}");
    Exposed(name).to(port, local)
}

impl Exposed {
    /// The same pod's port, answered by another local process from now on.
    #[track_caller]
    pub fn to(self, port: u16, local: u16) -> Exposed {
        localcluster(&[
            "expose",
            &self.0,
            &port.to_string(),
            &format!("127.0.0.1:{local}"),
        ])
        .success();
        self
    }
}

impl Drop for Exposed {
    fn drop(&mut self) {
        localcluster(&["unexpose", &self.0]);
    }
}

/// Starts the real prometheus-operator out of cluster (`localcluster operator start`,
/// idempotent). It watches every namespace.
pub fn operator_start() {
    localcluster(&["operator", "start"]).success();
}

/// Whether the out-of-cluster operator runs now (started by this binary or another).
pub fn operator_running() -> bool {
    localcluster(&["status"])
        .stdout
        .contains("prometheus-operator running")
}

/// Stops the out-of-cluster operator that `localcluster operator start` runs.
pub struct OperatorStop;

impl Drop for OperatorStop {
    fn drop(&mut self) {
        localcluster(&["operator", "stop"]);
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

/// `kubectl get … -o json` against the admin kubeconfig; it must succeed.
/// The ServiceMonitor `node-exporter` of the stack in `ns`: automon's own exporter's, or the
/// one through which it scrapes another stack's.
pub fn exporter_scrape_object(ns: &str) -> serde_json::Value {
    get_json(&[
        "get",
        "servicemonitor",
        "node-exporter",
        "-n",
        ns,
        "-o",
        "json",
    ])
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

pub fn get_json(args: &[&str]) -> serde_json::Value {
    let out = cluster().kubectl(&[args, &["-o", "json"]].concat());
    assert_eq!(out.code, 0, "{out:#?}");
    serde_json::from_str(&out.stdout).unwrap()
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

/// A kwok-managed Linux/amd64 Node object, as `localcluster` makes its own; a test adds the
/// labels and taints its situation needs before [`KwokNodes::create`].
pub fn kwok_node(name: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "type": "kwok",
            },
        },
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux",
                "kubeletVersion": "fake", "kernelVersion": "fake", "osImage": "kwok"},
        },
    })
}

/// A test's own kwok nodes (other tests share the cluster and its `automon-node-N` nodes):
/// created Ready, deleted when the guard drops, whatever the test did.
pub struct KwokNodes(pub Vec<String>);

impl KwokNodes {
    /// Creates the nodes (after deleting any an earlier run left under the same names) and
    /// waits until kwok has made them Ready.
    pub fn create(nodes: Vec<serde_json::Value>) -> KwokNodes {
        let names: Vec<String> = nodes
            .iter()
            .map(|n| {
                n["metadata"]["name"]
                    .as_str()
                    .expect("a node name")
                    .to_string()
            })
            .collect();
        let guard = KwokNodes(names);
        let c = cluster();
        let named = guard.names();
        let existing = c.kubectl(&["get", "nodes", "-o", "name"]).stdout;
        let leftovers: Vec<String> = existing
            .lines()
            .filter_map(|l| l.strip_prefix("node/"))
            .filter(|n| named.contains(n))
            .map(str::to_string)
            .collect();
        if !leftovers.is_empty() {
            drop(KwokNodes(leftovers));
        }
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": nodes});
        let (_dir, file) = write_temp("nodes.json", &list.to_string());
        // The status is kwok's to write; the schema wants a kubelet's nodeInfo in it.
        c.kubectl(&["create", "--validate=false", "-f", file.to_str().unwrap()])
            .success();
        let nodes: Vec<String> = named.iter().map(|n| format!("node/{n}")).collect();
        let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
        c.kubectl(
            &[
                &["wait", "--for=condition=Ready", "--timeout=60s"],
                &nodes[..],
            ]
            .concat(),
        )
        .success();
        guard
    }

    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(String::as_str).collect()
    }
}

impl Drop for KwokNodes {
    /// Deletes the nodes, then the pods bound to them: with the node gone, nothing finishes
    /// their graceful deletion until the pod garbage collector's quarantine (40s and more)
    /// ends, and every namespace with a DaemonSet pod on them would be stuck terminating.
    fn drop(&mut self) {
        let c = cluster();
        let names = self.names();
        c.kubectl(
            &[
                &["delete", "node", "--ignore-not-found", "--wait=false"],
                &names[..],
            ]
            .concat(),
        );
        let pods = c.kubectl(&[
            "get",
            "pods",
            "--all-namespaces",
            "-o",
            r#"jsonpath={range .items[*]}{.metadata.namespace} {.metadata.name} {.spec.nodeName}{"\n"}{end}"#,
        ]);
        let mut by_namespace: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for line in pods.stdout.lines() {
            if let [ns, pod, node] = line.split_whitespace().collect::<Vec<_>>()[..]
                && names.contains(&node)
            {
                by_namespace.entry(ns).or_default().push(pod);
            }
        }
        std::thread::scope(|scope| {
            for (ns, pods) in by_namespace {
                let args = [
                    &[
                        "delete",
                        "pods",
                        "-n",
                        ns,
                        "--force",
                        "--grace-period=0",
                        "--wait=false",
                    ],
                    &pods[..],
                ]
                .concat();
                scope.spawn(move || c.kubectl(&args));
            }
        });
    }
}

/// A child process (a real Prometheus, an exporter, a watching `status`) with its output in
/// a log file, killed when the test ends, passed or not.
pub struct Process(pub std::process::Child, pub &'static str);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Process {
    pub fn spawn(name: &'static str, cmd: &mut Command, log: &Path) -> Self {
        let log = std::fs::File::create(log).expect("log file");
        let child = cmd
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Process(child, name)
    }

    pub fn assert_running(&mut self, log: &Path) {
        if let Ok(Some(status)) = self.0.try_wait() {
            panic!(
                "{} exited ({status}):\n{}",
                self.1,
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
    }
}

/// A real node_exporter (from [`built_tool`]) on a free port of 127.0.0.1, logging to
/// `dir`/node_exporter.log: the process, its log and its port.
pub fn spawn_node_exporter(dir: &Path) -> (Process, PathBuf, u16) {
    let port = free_port();
    let log = dir.join("node_exporter.log");
    let process = Process::spawn(
        "node_exporter",
        Command::new(built_tool("node_exporter", "node_exporter"))
            .arg(format!("--web.listen-address=127.0.0.1:{port}")),
        &log,
    );
    (process, log, port)
}

/// The real kube-state-metrics (from [`built_tool`]), run out of cluster against the local
/// cluster with exactly the arguments `render` gives its Deployment in `objects` (its ports
/// chosen here, on 127.0.0.1), logging to `dir`/kube-state-metrics.log: the process, its log
/// and its metrics port.
pub fn spawn_kube_state_metrics(
    objects: &[serde_json::Value],
    dir: &Path,
) -> (Process, PathBuf, u16) {
    let deployment = objects
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "kube-state-metrics")
        .expect("the kube-state-metrics Deployment");
    let args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("kube-state-metrics' arguments")
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .filter(|a| !a.starts_with("--port=") && !a.starts_with("--telemetry-port="));
    let (port, telemetry_port) = (free_port(), free_port());
    let log = dir.join("kube-state-metrics.log");
    let process = Process::spawn(
        "kube-state-metrics",
        Command::new(built_tool("kube_state_metrics", "kube-state-metrics"))
            .args(args)
            .arg(format!("--kubeconfig={}", cluster().kubeconfig.display()))
            .args(["--host=127.0.0.1", "--telemetry-host=127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(format!("--telemetry-port={telemetry_port}")),
        &log,
    );
    (process, log, port)
}

/// The rule groups of the PrometheusRules in `objects`, as one Prometheus rule file.
pub fn rendered_rule_file(objects: &[serde_json::Value]) -> String {
    let groups: Vec<serde_json::Value> = objects
        .iter()
        .filter(|o| o["kind"] == "PrometheusRule")
        .flat_map(|o| o["spec"]["groups"].as_array().cloned().unwrap_or_default())
        .collect();
    serde_saphyr::to_string(&serde_json::json!({ "groups": groups })).unwrap()
}

/// A real Prometheus (`prometheus`, from [`built_tool`]) on 127.0.0.1:`port`, with its
/// configuration in `dir`/prometheus.yaml (rule files beside it) and its data in `dir`/data;
/// its log is the path returned.
pub fn spawn_prometheus(prometheus: &Path, dir: &Path, port: u16) -> (Process, PathBuf) {
    spawn_prometheus_with(prometheus, dir, port, &[])
}

/// [`spawn_prometheus`] with more flags (`--web.enable-remote-write-receiver`).
pub fn spawn_prometheus_with(
    prometheus: &Path,
    dir: &Path,
    port: u16,
    flags: &[&str],
) -> (Process, PathBuf) {
    let log = dir.join("prometheus.log");
    let process = Process::spawn(
        "prometheus",
        Command::new(prometheus)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yaml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(flags),
        &log,
    );
    (process, log)
}

/// An instant query against the HTTP API of a Prometheus on 127.0.0.1:`port`; the result vector.
pub fn prometheus_query(port: u16, expr: &str) -> Result<Vec<serde_json::Value>, String> {
    use std::io::{Read, Write};
    let encoded: String = expr
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    write!(
        conn,
        "GET /api/v1/query?query={encoded} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = String::new();
    conn.read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("{e}: {response}"))?;
    if v["status"] != "success" {
        return Err(body.to_string());
    }
    Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
}

/// The Prometheus configuration the operator generated for the stack in `ns` (Secret
/// `prometheus-automon`, key `prometheus.yaml.gz`), or "" while it has written none.
pub fn operator_generated_config(ns: &str) -> String {
    use base64::Engine as _;
    use std::io::Read as _;
    let out = cluster().kubectl(&[
        "get",
        "secret",
        "-n",
        ns,
        "prometheus-automon",
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

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

type ExitAction = Box<dyn FnOnce() + Send>;
static AT_EXIT: std::sync::Mutex<Vec<ExitAction>> = std::sync::Mutex::new(Vec::new());

/// Runs `f` when the test binary exits, passed or failed, latest first: for what several
/// tests share (a stack, the operator) and no single test's guard can remove.
pub fn at_exit(f: impl FnOnce() + Send + 'static) {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| {
        unsafe extern "C" {
            fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
        }
        extern "C" fn run_all() {
            let actions = std::mem::take(
                &mut *AT_EXIT
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            for action in actions.into_iter().rev() {
                // A panic must not cross into C.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(action));
            }
        }
        // SAFETY: atexit is the C library's; run_all neither unwinds nor calls exit.
        let registered = unsafe { atexit(run_all) };
        assert_eq!(registered, 0, "atexit failed");
    });
    AT_EXIT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(Box::new(f));
}

/// `kubectl automon reconcile --loop` running in the background, its log (stderr) collected as
/// it comes; killed when dropped.
pub struct ReconcileLoop {
    pub child: std::process::Child,
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
    pub identity: String,
}

impl ReconcileLoop {
    /// Starts the loop for the stack in `ns` as `identity`, with `extra` flags, and waits for
    /// its first full sync (or, with another loop leading, for it to say so).
    pub fn start(ns: &str, identity: &str, extra: &[&str]) -> ReconcileLoop {
        ReconcileLoop::start_with(automon_admin(), ns, identity, extra)
    }

    /// [`ReconcileLoop::start`] with the binary already pointed at a cluster (`automon()` with
    /// the real nodes' kubeconfig, say).
    pub fn start_with(mut cmd: Command, ns: &str, identity: &str, extra: &[&str]) -> ReconcileLoop {
        use std::io::BufRead as _;
        let mut child = cmd
            .args(["reconcile", "--loop", "-n", ns, "--identity", identity])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start reconcile --loop");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut l = ReconcileLoop {
            child,
            log,
            identity: identity.to_string(),
        };
        l.wait_for_log("Synced", 60);
        l
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log has `needle`; panics with the log after `secs`.
    #[track_caller]
    pub fn wait_for_log(&mut self, needle: &str, secs: u64) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while !self.log().contains(needle) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the loop exited ({status}) before {needle:?}:\n{}",
                    self.log()
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {needle:?} in the loop's log within {secs}s:\n{}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// The address `--metrics-addr 127.0.0.1:0` was bound to, from the log.
    pub fn metrics_url(&self) -> String {
        let log = self.log();
        let line = log
            .lines()
            .find(|l| l.starts_with("Metrics"))
            .unwrap_or_else(|| panic!("no Metrics line:\n{log}"));
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .trim_end_matches("/metrics")
            .to_string()
    }

    /// Sends SIGTERM and waits for the exit: its code and how long it took.
    pub fn terminate(&mut self) -> (i32, std::time::Duration) {
        let started = std::time::Instant::now();
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        (status.code().unwrap_or(-1), started.elapsed())
    }

    /// SIGKILL: the loop dies without releasing anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ReconcileLoop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Events (events.k8s.io) the loop `identity` published on Nodes: (type, reason, node,
/// related object's name, note).
pub fn node_events(identity: &str) -> Vec<(String, String, String, String, String)> {
    let list = get_json(&["get", "events.events.k8s.io", "-n", "default"]);
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reportingInstance"] == identity && e["regarding"]["kind"] == "Node")
        .map(|e| {
            (
                s(&e["type"]),
                s(&e["reason"]),
                s(&e["regarding"]["name"]),
                s(&e["related"]["name"]),
                s(&e["note"]),
            )
        })
        .collect()
}

/// Reads with `read` every 500ms until `done` holds of what it read, or `secs` pass; the last
/// reading either way, for the caller's assertion to show.
pub fn poll<T>(secs: u64, mut read: impl FnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let mut value = read();
    while !done(&value) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(500));
        value = read();
    }
    value
}

/// Polls `check` every 200ms until it holds; panics with `what` after `secs`.
#[track_caller]
pub fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "not within {secs}s: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
