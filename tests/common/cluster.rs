//! The local cluster the tests run against (`tests/cluster/localcluster`): started once per
//! test binary and reused if already up; its kubeconfig and variants of it; kubectl and the
//! binary against it; the operator's CRDs; and what `localcluster` runs beside it (the
//! out-of-cluster operator, real processes answering for a stack's pods).

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Once, OnceLock},
};

use serde_json::Value;

use super::{Process, Run, at_exit, automon, write_list, write_temp, yaml_value};

pub struct LocalCluster {
    /// `test` (kwok nodes), `real` (real nodes) or `min` (the oldest supported API server
    /// alone): `LOCALCLUSTER_INSTANCE`.
    pub instance: &'static str,
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

/// `tests/cluster/localcluster` for one instance: `test` (kwok nodes) or `real` (real nodes).
/// Each has its own state directory and ports, so that the try-it cluster a user started is
/// never touched by a test.
pub fn localcluster_instance(instance: &str) -> Command {
    let mut cmd = Command::new(repo_root().join("tests/cluster/localcluster"));
    cmd.env("LOCALCLUSTER_INSTANCE", instance);
    // `localcluster serve`'s Prometheus: a new node's exporter is scraped within a second.
    cmd.env("LOCALCLUSTER_SCRAPE_INTERVAL", "1s");
    cmd
}

/// `localcluster <args>` for the test run's own cluster (`LOCALCLUSTER_INSTANCE=test`).
pub fn localcluster(args: &[&str]) -> Run {
    localcluster_in("test", args)
}

/// `localcluster <args>` for one instance.
pub fn localcluster_in(instance: &str, args: &[&str]) -> Run {
    Run::from(
        localcluster_instance(instance)
            .args(args)
            .output()
            .expect("run tests/cluster/localcluster"),
    )
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

/// The oldest Kubernetes the stack supports (`LOCALCLUSTER_INSTANCE=min`): etcd and the API
/// server of `MIN_KUBERNETES_VERSION` (tests/cluster/versions.env) alone, no node, no controller.
/// Started from nothing by the first test of a binary that asks for it (seconds): without a
/// namespace controller nothing a test made there is ever deleted. tests/run stops it.
pub fn min_cluster() -> &'static LocalCluster {
    static CLUSTER: OnceLock<LocalCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        localcluster_in("min", &["down"]);
        LocalCluster::up("min", &[])
    })
}

/// A pinned version from tests/cluster/versions.env (`MIN_KUBERNETES_VERSION`, ...).
pub fn pinned_version(name: &str) -> String {
    let env = std::fs::read_to_string(repo_root().join("tests/cluster/versions.env")).unwrap();
    env.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("versions.env has no {name}"))
        .trim()
        .to_string()
}

impl LocalCluster {
    fn up(instance: &'static str, args: &[&str]) -> LocalCluster {
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
        let env = localcluster_in(instance, &["env"]).stdout;
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
        let kwok_port = var("AUTOMON_LOCALCLUSTER_KWOK_PORT")
            .parse()
            .expect("kwok's port");
        LocalCluster {
            instance,
            kwok_port,
            limited_kubeconfig: dir.join("limited.kubeconfig"),
            server: yaml_value(&text, "server"),
            dir,
            kubeconfig,
            tools_bin,
        }
    }

    /// The admin kubeconfig's text, for tests that write variants of it.
    pub fn kubeconfig_text(&self) -> String {
        std::fs::read_to_string(&self.kubeconfig).unwrap()
    }

    /// The admin's bearer token.
    pub fn admin_token(&self) -> String {
        yaml_value(&self.kubeconfig_text(), "token")
    }

    /// A variant of the admin kubeconfig, `change` made to its text, in a temp dir that lives
    /// as long as the guard.
    pub fn kubeconfig_with(
        &self,
        change: impl FnOnce(String) -> String,
    ) -> (tempfile::TempDir, PathBuf) {
        write_temp("kubeconfig", &change(self.kubeconfig_text()))
    }

    /// The admin kubeconfig pointed at `https://127.0.0.1:<port>` (a port nothing listens on,
    /// a proxy of the test's) instead of the API server.
    pub fn kubeconfig_to(&self, port: u16) -> (tempfile::TempDir, PathBuf) {
        self.kubeconfig_with(|text| {
            text.replace(&self.server, &format!("https://127.0.0.1:{port}"))
        })
    }

    /// kubectl from the tools, against the admin kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> Run {
        Run::from(self.kubectl_command(args).output().expect("run kubectl"))
    }

    /// [`LocalCluster::kubectl`] with `input` on stdin (`apply -f -`).
    pub fn kubectl_with_input(&self, args: &[&str], input: &str) -> Run {
        let mut child = self
            .kubectl_command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        Run::from(child.wait_with_output().unwrap())
    }

    fn kubectl_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.tools_bin.join("kubectl"));
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        cmd
    }

    /// `kubectl <args> -o json`, which must succeed, parsed.
    #[track_caller]
    pub fn get_json(&self, args: &[&str]) -> Value {
        let out = self.kubectl(&[args, &["-o", "json"]].concat());
        assert_eq!(out.code, 0, "{out:#?}");
        serde_json::from_str(&out.stdout).unwrap()
    }

    /// The binary against this cluster's admin kubeconfig.
    pub fn automon(&self) -> Command {
        let mut cmd = automon();
        cmd.env("KUBECONFIG", &self.kubeconfig);
        cmd
    }

    /// The operator's CRDs as the local cluster's operator build gives them: one file per CRD.
    pub fn crds_dir(&self) -> PathBuf {
        self.dir.join("crds")
    }

    /// `enable --wait` as the real nodes' tests run it: the pinned CRDs from the cluster's own
    /// directory, Grafana off (its image cannot be built here), then each of `sets` as a
    /// `--set`; its exit, time and output on stderr.
    pub fn enable_waiting(&self, sets: &[&str]) -> Run {
        let crds = self.crds_dir();
        let started = std::time::Instant::now();
        let out = super::run(
            self.automon()
                .args(["enable", "--wait", "--timeout", "10m", "--crds-from"])
                .arg(&crds)
                .args(
                    ["grafana.enabled=false"]
                        .iter()
                        .chain(sets)
                        .flat_map(|s| ["--set", s]),
                ),
        );
        eprintln!(
            "enable --wait {sets:?}: exit {} in {:.1}s\n{}\n{}",
            out.code,
            started.elapsed().as_secs_f64(),
            out.stdout,
            out.stderr
        );
        out
    }

    /// The prometheus-operator CRDs, installed once into the shared cluster and Established.
    /// Idempotent.
    pub fn ensure_crds(&self) {
        let dir = self.crds_dir();
        // Each file is named after its CRD. Applying them all again costs seconds: only when
        // one is missing (another test's `disable` may have removed the unused ones) or of
        // another release than the pinned operator's (a cluster that ran an older build).
        let crds: Vec<String> = std::fs::read_dir(&dir)
            .expect("the cluster's crds directory")
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                Some(format!("crd/{}", name.strip_suffix(".yaml")?))
            })
            .collect();
        let crds: Vec<&str> = crds.iter().map(String::as_str).collect();
        let pinned = super::pinned("PROMETHEUS_OPERATOR_VERSION");
        let got = self.kubectl(&[&["get", "-o", "json"], &crds[..]].concat());
        let current = got.code == 0
            && serde_json::from_str::<Value>(&got.stdout).is_ok_and(|list| {
                list["items"].as_array().into_iter().flatten().all(|c| {
                    c["metadata"]["annotations"]["operator.prometheus.io/version"]
                        == pinned.trim_start_matches('v')
                })
            });
        if !current {
            self.server_side_apply(&dir, &["--force-conflicts"])
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

    /// `kubectl apply --server-side --field-manager automon-test <flags> -f <path>`: objects a
    /// test puts in place itself, as their owner.
    pub fn server_side_apply(&self, path: &Path, flags: &[&str]) -> Run {
        let path = path.to_str().unwrap();
        let apply = ["apply", "--server-side", "--field-manager", "automon-test"];
        self.kubectl(&[&apply[..], flags, &["-f", path]].concat())
    }

    /// `tests/cluster/rules-review-proxy` in front of this cluster's API server, with `flags`
    /// (`--incomplete`, `--server-version v1.X.Y`: the faults it injects). Returns the process,
    /// a kubeconfig of `user_kubeconfig`'s user pointed at it, and its request log.
    pub fn rules_review_proxy(
        &self,
        dir: &Path,
        user_kubeconfig: &Path,
        flags: &[&str],
    ) -> (Process, PathBuf, PathBuf) {
        let (port_file, log) = (dir.join("port"), dir.join("requests.log"));
        let mut cmd = Command::new(repo_root().join("tests/cluster/rules-review-proxy"));
        cmd.arg("--upstream")
            .arg(&self.server)
            .arg("--pki")
            .arg(self.dir.join("pki"))
            .arg("--port-file")
            .arg(&port_file)
            .arg("--log")
            .arg(&log)
            .args(flags);
        let mut process = Process::spawn("rules-review-proxy", &mut cmd, &dir.join("proxy.out"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                break p;
            }
            process.assert_running(&dir.join("proxy.out"));
            assert!(
                std::time::Instant::now() < deadline,
                "the proxy did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        let text = std::fs::read_to_string(user_kubeconfig)
            .unwrap()
            .replace(&self.server, &format!("https://127.0.0.1:{port}"));
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(&kubeconfig, text).unwrap();
        (process, kubeconfig, log)
    }

    /// Removes a test's namespace, then its volume `<class>-0` and StorageClass `class`
    /// (whatever a failed run left of them).
    pub fn delete_storage(&self, namespace: &str, class: &str) {
        self.kubectl(&[
            "delete",
            "namespace",
            namespace,
            "--ignore-not-found",
            "--timeout=120s",
        ]);
        self.kubectl(&[
            "delete",
            "pv",
            &format!("{class}-0"),
            "--ignore-not-found",
            "--wait=false",
        ]);
        self.kubectl(&["delete", "storageclass", class, "--ignore-not-found"]);
    }

    /// What the API server would say to these objects: a server-side dry run with strict
    /// field validation.
    pub fn server_dry_run(&self, path: &Path) -> Run {
        self.server_side_apply(path, &["--dry-run=server", "--validate=strict"])
    }

    /// The API server accepts every one of `objects` in a strict server-side dry run, and warns
    /// of no field it does not know.
    pub fn accepts_strictly(&self, objects: &[Value]) {
        let (_dir, file) = write_list("objects.json", objects);
        let out = self.server_dry_run(&file).success();
        let accepted = out
            .stdout
            .lines()
            .filter(|l| l.ends_with("(server dry run)"))
            .count();
        assert_eq!(accepted, objects.len(), "{out:#?}");
        assert!(!out.stderr.contains("unknown field"), "{out:#?}");
    }
}

/// The binary against the local cluster's admin kubeconfig.
pub fn automon_admin() -> Command {
    cluster().automon()
}

/// `kubectl <args>` against the local cluster, which must succeed.
#[track_caller]
pub fn kubectl(args: &[&str]) -> Run {
    let out = cluster().kubectl(args);
    assert_eq!(out.code, 0, "kubectl {args:?} failed:\n{out:#?}");
    out
}

/// `kubectl get … -o json` against the local cluster; it must succeed.
#[track_caller]
pub fn get_json(args: &[&str]) -> Value {
    cluster().get_json(args)
}

/// The parent of the stack in `ns` as automon `version` would have left it: the same
/// server-side apply by the same field manager, its ApplySet tooling annotation and its version
/// label (which has no `v`) saying that version, and `config` as its `config.yaml` when given. A
/// later `enable` takes it over without a conflict, as it would.
pub fn parent_written_by(ns: &str, version: &str, config: Option<&str>) {
    let mut parent = get_json(&["get", "configmap", "automon", "-n", ns]);
    parent["metadata"]["annotations"]["applyset.kubernetes.io/tooling"] =
        format!("kubectl-automon/{version}").into();
    parent["metadata"]["labels"]["app.kubernetes.io/version"] =
        version.trim_start_matches('v').into();
    if let Some(config) = config {
        parent["data"]["config.yaml"] = config.into();
    }
    apply_as_automon(parent);
}

/// `object`, as read from the cluster and changed by a test, applied as automon applies: a
/// server-side apply of the whole object by its field manager (what the server keeps for
/// itself left out), so that a later `enable` takes it over without a conflict.
pub fn apply_as_automon(mut object: Value) {
    let meta = object["metadata"].as_object_mut().unwrap();
    for server_side in [
        "managedFields",
        "resourceVersion",
        "uid",
        "creationTimestamp",
    ] {
        meta.remove(server_side);
    }
    object.as_object_mut().unwrap().remove("status");
    cluster()
        .kubectl_with_input(
            &[
                "apply",
                "--server-side",
                "--field-manager=kubectl-automon",
                "--force-conflicts",
                "-f",
                "-",
            ],
            &object.to_string(),
        )
        .success();
}

/// Whether `kubectl get <args>` finds it.
pub fn exists(args: &[&str]) -> bool {
    cluster().kubectl(&[&["get"], args].concat()).code == 0
}

/// `kubectl apply` of a manifest (YAML or JSON), which must succeed.
#[track_caller]
pub fn apply(manifest: &str) {
    let (_dir, path) = write_temp("objects.yaml", manifest);
    let out = cluster().kubectl(&["apply", "-f", path.to_str().unwrap()]);
    assert_eq!(out.code, 0, "kubectl apply failed:\n{out:#?}\n{manifest}");
}

/// `kubectl apply` of these objects as one List, which must succeed.
#[track_caller]
pub fn apply_objects(objects: &[Value]) {
    let (_dir, path) = write_list("objects.json", objects);
    cluster()
        .kubectl(&["apply", "-f", path.to_str().unwrap()])
        .success();
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

/// Stops the out-of-cluster operator that `localcluster operator start` runs, once no test of
/// this binary that needs it ([`operator_needed`]) is still running.
pub struct OperatorStop;

impl Drop for OperatorStop {
    fn drop(&mut self) {
        let _alone = OPERATOR_USERS
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        localcluster(&["operator", "stop"]);
    }
}

/// Tests that need the operator running until they end, beside a test that stops it when it
/// ends (its [`OperatorStop`] waits for them).
static OPERATOR_USERS: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// [`ensure_operator`], and no [`OperatorStop`] of this binary stops it until the guard drops.
pub fn operator_needed() -> std::sync::RwLockReadGuard<'static, ()> {
    let guard = OPERATOR_USERS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    ensure_operator();
    guard
}

/// The out-of-cluster operator running: started unless it runs already (this binary's or
/// another's), and then stopped when the test binary exits.
pub fn ensure_operator() {
    if !operator_running() {
        static STOP: Once = Once::new();
        STOP.call_once(|| at_exit(|| drop(OperatorStop)));
        operator_start();
    }
}

/// The real Prometheus, Alertmanager and node_exporter answer for the stack's pods in `ns`
/// (`localcluster serve`) until the guard drops: what asks a stack's Prometheus needs one.
pub struct Served(&'static str);

pub fn serve(ns: &'static str) -> Served {
    localcluster(&["serve", ns]).success();
    Served(ns)
}

/// [`serve`], with Alertmanager running the stack's own configuration (its receivers, which
/// must be on loopback, and the Alertmanager object's feature flags).
pub fn serve_stack_alertmanager(ns: &'static str) -> Served {
    localcluster(&["serve", ns, "--stack-alertmanager"]).success();
    Served(ns)
}

impl Drop for Served {
    fn drop(&mut self) {
        localcluster(&["unserve", self.0]);
    }
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
