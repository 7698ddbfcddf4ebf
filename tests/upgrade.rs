//! An upgrade as a user lives it, on the real nodes (real pods): the previous build of the plugin
//! (PREVIOUS_PLUGIN_COMMIT in tests/cluster/versions.env, built once by `build-tools plugin`)
//! installs the stack with a value of the user's; the current build's `diff` shows what the
//! upgrade will change, and its `enable --wait` makes exactly those changes: the CRDs first (and
//! Established), then the operator (rolled out), then the stack; the user's value kept, the new
//! images running, `status` healthy. All through it, how long Prometheus and the Alertmanager had
//! no ready pod is measured. Then `rollback` to the old build's revision brings back the old
//! operator and images while the newer CRDs stay (never downgraded), and a last `enable` leaves
//! the cluster on the current build.
//!
//! The real nodes' cluster holds one stack (node-exporter's host port): this test owns it while
//! it runs, in the namespace tests/real_nodes.rs uses, and leaves a healthy current-build stack
//! (without Grafana, whose image cannot be built here) behind.

mod common;

use common::*;
use std::{
    collections::BTreeSet,
    path::PathBuf,
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

const NS: &str = "automon";
/// The user's own value, which the upgrade keeps (the previous build's default is 15d).
const RETENTION: &str = "30d";

/// What build-tools made for the upgrade: both builds' CRD files and the previous plugin.
struct Builds {
    previous_plugin: PathBuf,
    previous_version: String,
    crds_current: PathBuf,
    crds_previous: PathBuf,
}

fn builds() -> Builds {
    let commit = pinned("PREVIOUS_PLUGIN_COMMIT");
    let cargo = Command::new("git")
        .current_dir(repo_root())
        .args(["show", &format!("{commit}:Cargo.toml")])
        .output()
        .expect("run git");
    assert!(
        cargo.status.success(),
        "commit {commit} is not in this repository's history (git fetch --unshallow): {}",
        String::from_utf8_lossy(&cargo.stderr)
    );
    let version = String::from_utf8_lossy(&cargo.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("the commit's Cargo.toml has a version")
        .to_string();
    let started = Instant::now();
    // The images of both builds, then those the running nodes lack imported into them.
    let previous_plugin = built_tool("plugin", &format!("kubectl-automon-{version}"));
    let bin = built_tool("images", "");
    localcluster_in("real", &["real-images"]).success();
    eprintln!(
        "upgrade: builds and images ready in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let crds = bin.parent().unwrap().join("crds");
    Builds {
        previous_plugin,
        previous_version: version,
        crds_current: crds.join(pinned("PROMETHEUS_OPERATOR_VERSION")),
        crds_previous: crds.join(pinned("PREVIOUS_PROMETHEUS_OPERATOR_VERSION")),
    }
}

/// The previous build of the plugin against the real nodes' cluster.
fn previous(b: &Builds) -> Command {
    let mut cmd = automon_build(&b.previous_plugin);
    cmd.env("KUBECONFIG", &real_cluster().kubeconfig);
    cmd
}

/// A step's wall time, printed as it ends and again at the end of the test.
struct Steps(Vec<(String, Duration)>);

impl Steps {
    fn time<T>(&mut self, name: &str, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = f();
        let took = started.elapsed();
        eprintln!("upgrade: {name}: {:.1}s", took.as_secs_f64());
        self.0.push((name.to_string(), took));
        out
    }
}

/// Per component: the longest stretch without a ready pod, and the total.
type Gap = (&'static str, Duration, Duration);

/// Polls the stack's pods and measures, per component, the time no pod of it was ready.
struct Gaps {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Gap>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const WATCHED: [&str; 2] = ["prometheus", "alertmanager"];

impl Gaps {
    fn start() -> Gaps {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(
            WATCHED
                .iter()
                .map(|c| (*c, Duration::ZERO, Duration::ZERO))
                .collect::<Vec<_>>(),
        ));
        let (s, g) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            // Since when each component has had no ready pod.
            let mut without: [Option<Instant>; 2] = [None, None];
            let mut last = Instant::now();
            while !s.load(Ordering::Relaxed) {
                let out = real_cluster().kubectl(&["get", "pods", "-n", NS, "-o", "json"]);
                let now = Instant::now();
                let Ok(pods) = serde_json::from_str::<serde_json::Value>(&out.stdout) else {
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                };
                for (i, component) in WATCHED.iter().enumerate() {
                    let ready = pods["items"].as_array().into_iter().flatten().any(|p| {
                        p["metadata"]["labels"]["app.kubernetes.io/name"] == *component
                            && p["metadata"]["deletionTimestamp"].is_null()
                            && p["status"]["conditions"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    });
                    let mut g = g.lock().unwrap();
                    match (ready, without[i]) {
                        // Not ready since some time between the last poll and this one: the
                        // gap is counted from the last poll that saw it ready.
                        (false, None) => without[i] = Some(last),
                        (true, Some(since)) => {
                            let gap = now - since;
                            g[i].1 = g[i].1.max(gap);
                            g[i].2 += gap;
                            without[i] = None;
                        }
                        (false, Some(since)) => g[i].1 = g[i].1.max(now - since),
                        (true, None) => {}
                    }
                }
                last = now;
                std::thread::sleep(Duration::from_millis(250));
            }
        });
        Gaps {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    /// Stops polling; per component the longest and the total time without a ready pod.
    fn finish(mut self) -> Vec<Gap> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.seen.lock().unwrap().clone()
    }
}

/// The objects a diff's headers name (`+++ enable/Kind/[ns/]name`), as (kind, name).
fn diffed(stdout: &str) -> BTreeSet<(String, String)> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("+++ enable/"))
        .map(|path| {
            let (kind, rest) = path.split_once('/').unwrap();
            let name = rest.rsplit('/').next().unwrap();
            (kind.to_lowercase(), name.to_string())
        })
        .collect()
}

/// The objects an `enable` created, configured or pruned (`kind.group/name configured`), as
/// (kind, name).
fn changed(stdout: &str) -> BTreeSet<(String, String)> {
    stdout
        .lines()
        .filter_map(|l| {
            let (object, what) = l.split_once(' ')?;
            let what = what.trim();
            let changed = what.starts_with("created")
                || what.starts_with("configured")
                || what.starts_with("pruned");
            let (kind, name) = object.split_once('/')?;
            changed.then(|| {
                let kind = kind.split('.').next().unwrap();
                (kind.to_string(), name.to_string())
            })
        })
        .collect()
}

/// The objects an enable lent a second replica (`Surge     KIND.GROUP/NAME: … raised to 2
/// replicas first …` on stderr), as (kind, name).
fn lent(stderr: &str) -> BTreeSet<(String, String)> {
    stderr
        .lines()
        .filter(|l| l.contains("raised to 2 replicas first"))
        .filter_map(|l| {
            let object = l.strip_prefix("Surge")?.trim().split(':').next()?;
            let (kind, name) = object.split_once('/')?;
            Some((kind.split('.').next()?.to_string(), name.to_string()))
        })
        .collect()
}

/// The line of `text` that contains `needle`, by index.
#[track_caller]
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
}

/// Every CRD of the operator's group: (name, operator version annotation, Established).
fn crds() -> Vec<(String, String, bool)> {
    let list = real_cluster().get_json(&["get", "crd", "-o", "json"]);
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["spec"]["group"] == "monitoring.coreos.com")
        .map(|c| {
            (
                c["metadata"]["name"].as_str().unwrap().to_string(),
                c["metadata"]["annotations"]["operator.prometheus.io/version"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                c["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|x| x["type"] == "Established" && x["status"] == "True"),
            )
        })
        .collect()
}

/// The images the stack's running pods run, by container image reference.
fn running_images() -> BTreeSet<String> {
    let pods = real_cluster().get_json(&["get", "pods", "-n", NS, "-o", "json"]);
    pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .flat_map(|p| p["spec"]["containers"].as_array().unwrap().clone())
        .map(|c| c["image"].as_str().unwrap().to_string())
        .collect()
}

/// Waits until every pod of the stack runs one of the images of `want` and none of `gone`
/// (the old ReplicaSets' pods go after the rollout `--wait` waited for).
#[track_caller]
fn wait_images(want: &[String], gone: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let running = running_images();
        let ok =
            want.iter().all(|w| running.contains(w)) && gone.iter().all(|g| !running.contains(g));
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after 120s the stack's pods run {running:#?}; wanted {want:?} and none of {gone:?}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The requests in the audit log of the operator by its user agent (`PrometheusOperator/0.94.1`)
/// since `after`: the first one's time, and every one refused (403, or a permission check the
/// answer to which was no).
fn operator_requests(agent: &str, after: &str) -> (Option<String>, Vec<String>) {
    let log = std::fs::read_to_string(real_cluster().dir.join("logs/audit.log"))
        .expect("the real cluster's audit log");
    let events: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["userAgent"] == agent)
        .filter(|e| {
            e["requestReceivedTimestamp"]
                .as_str()
                .is_some_and(|t| t > after)
        })
        .collect();
    let first = events
        .iter()
        .filter_map(|e| e["requestReceivedTimestamp"].as_str())
        .min()
        .map(String::from);
    let refused = events
        .iter()
        .filter(|e| {
            e["responseStatus"]["code"] == 403
                || (e["objectRef"]["resource"] == "selfsubjectaccessreviews"
                    && e["responseObject"]["status"]["allowed"] == false)
        })
        .map(|e| {
            format!(
                "{} {} {}",
                e["verb"], e["requestURI"], e["requestObject"]["spec"]["resourceAttributes"]
            )
        })
        .collect();
    (first, refused)
}

/// When kubectl-automon last applied an object (its managed fields' time, whole seconds).
fn applied_at(args: &[&str]) -> String {
    let args = [args, &["--show-managed-fields"]].concat();
    let o = real_cluster().get_json(&args);
    o["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["manager"] == "kubectl-automon")
        .filter_map(|m| m["time"].as_str())
        .max()
        .unwrap_or_else(|| panic!("kubectl-automon never applied {args:?}: {o:#}"))
        .to_string()
}

fn utc_now() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%S.%6NZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The current build's `enable --wait` with the current CRDs: the upgrade.
fn upgrade(crds: &str) -> Run {
    run(real_cluster()
        .automon()
        .args(["enable", "--wait", "--timeout", "8m", "--crds-from", crds]))
}

fn image(repository: &str, version: &str) -> String {
    format!("{repository}:{version}")
}

#[test]
fn the_previous_build_installs_the_current_upgrades_and_rollback_returns_the_old_operator() {
    let c = real_cluster();
    let b = builds();
    let mut steps = Steps(Vec::new());
    let operator = pinned("PROMETHEUS_OPERATOR_VERSION");
    let old_operator = pinned("PREVIOUS_PROMETHEUS_OPERATOR_VERSION");
    let ksm = pinned("KUBE_STATE_METRICS_VERSION");
    let old_ksm = pinned("PREVIOUS_KUBE_STATE_METRICS_VERSION");
    let images = |op: &str, k: &str| {
        vec![
            image("quay.io/prometheus-operator/prometheus-operator", op),
            image("quay.io/prometheus-operator/prometheus-config-reloader", op),
            image("registry.k8s.io/kube-state-metrics/kube-state-metrics", k),
        ]
    };
    let (new_images, old_images) = (images(&operator, &ksm), images(&old_operator, &old_ksm));

    // A stack from an earlier run (this test's or tests/real_nodes.rs') goes first: the previous
    // build installs from nothing, as its users did.
    if c.kubectl(&["get", "configmap", "-n", NS, "automon"]).code == 0 {
        steps.time("disable the stack found", || {
            run(c.automon().args(["disable", "--yes"])).success();
        });
    }

    // The previous build installs, with a value of the user's.
    let set = format!("prometheus.retention={RETENTION}");
    let crds_previous = b.crds_previous.to_str().unwrap();
    let crds_current = b.crds_current.to_str().unwrap();
    let old = steps.time(&format!("{} enable --wait", b.previous_version), || {
        run(previous(&b).args([
            "enable",
            "--wait",
            "--timeout",
            "8m",
            "--crds-from",
            crds_previous,
            "--set",
            "grafana.enabled=false",
            "--set",
            &set,
        ]))
    });
    assert_eq!(old.code, 0, "the previous build's enable failed: {old:#?}");
    wait_images(&old_images, &new_images);
    let old_operator_bare = old_operator.trim_start_matches('v');
    assert!(
        crds().iter().all(|(_, v, _)| v == old_operator_bare),
        "{:?}",
        crds()
    );

    // What the upgrade will change.
    let diff = steps.time("diff", || {
        run(c.automon().args(["diff", "--crds-from", crds_current]))
    });
    assert_eq!(diff.code, 1, "diff finds the upgrade's changes: {diff:#?}");
    let will = diffed(&diff.stdout);

    // The upgrade, with the pods watched all through it.
    let before = utc_now();
    let gaps = Gaps::start();
    let up = steps.time("upgrade: enable --wait", || upgrade(crds_current));
    let gaps = gaps.finish();
    eprintln!("upgrade's enable:\n{}\n{}", up.stdout, up.stderr);
    assert_eq!(up.code, 0, "the upgrade failed: {up:#?}");
    // The enable's own phases, as it timed them.
    for l in up.stdout.lines().filter(|l| {
        ["Namespace", "CRDs", "Operator", "Stack", "Scraped"]
            .iter()
            .any(|p| l.starts_with(p))
    }) {
        eprintln!("upgrade phase: {l}");
    }

    // Exactly what diff showed. What was lent a second replica while its pods were replaced
    // (the Surge lines on stderr: the new operator's reloader replaces Prometheus' and the
    // Alertmanager's pods) is applied with two replicas and then set back, so it reads as
    // configured in passing while its final state may be as diff showed it: unchanged.
    let surged = lent(&up.stderr);
    assert_eq!(
        surged,
        BTreeSet::from([
            ("alertmanager".to_string(), "automon".to_string()),
            ("prometheus".to_string(), "automon".to_string()),
        ]),
        "the new operator replaces both pods, each lent a second replica:\n{}",
        up.stderr
    );
    let did: BTreeSet<_> = changed(&up.stdout)
        .into_iter()
        .filter(|o| will.contains(o) || !surged.contains(o))
        .collect();
    assert_eq!(
        will, did,
        "diff showed {will:#?}\nthe upgrade changed {did:#?}"
    );

    // CRDs first and Established, then the operator, rolled out, then the stack.
    let operator_bare = operator.trim_start_matches('v');
    let now_crds = crds();
    assert_eq!(now_crds.len(), 10, "{now_crds:?}");
    assert!(
        now_crds.iter().all(|(_, v, e)| v == operator_bare && *e),
        "every CRD at {operator_bare} and Established: {now_crds:?}"
    );
    let crds_done = line_of(&up.stdout, "CRDs      established");
    let operator_sent = line_of(&up.stdout, "deployment.apps/prometheus-operator configured");
    let rolled_out = line_of(&up.stdout, "Operator  rolled out");
    // The stack's objects after it: kube-state-metrics, whose image the upgrade moves.
    let stack_sent = line_of(&up.stdout, "deployment.apps/kube-state-metrics configured");
    assert!(
        crds_done < operator_sent && operator_sent < rolled_out && rolled_out < stack_sent,
        "CRDs (line {crds_done}) < operator (line {operator_sent}) < its rollout (line {rolled_out}) < the stack (line {stack_sent}):\n{}",
        up.stdout
    );
    // The audit log: the new operator was at work before automon sent the stack's objects.
    let agent = format!("PrometheusOperator/{operator_bare}");
    let (first, refused) = operator_requests(&agent, &before);
    let first =
        first.unwrap_or_else(|| panic!("no request of {agent} in the audit log since {before}"));
    // Its RBAC (src/render/operator.rs) covers what the newer operator calls.
    assert!(refused.is_empty(), "{agent} was refused: {refused:#?}");
    let ksm_applied = applied_at(&[
        "get",
        "deployment",
        "-n",
        NS,
        "kube-state-metrics",
        "-o",
        "json",
    ]);
    eprintln!(
        "upgrade: started {before}; {agent}'s first request {first}; kube-state-metrics applied {ksm_applied}"
    );
    // managedFields carry whole seconds: the operator's first second is not after it.
    assert!(
        first[..19] <= ksm_applied[..19],
        "the new operator ({first}) started after the stack was sent ({ksm_applied})"
    );

    // The user's value kept, the new images running, status healthy.
    let prometheus = c.get_json(&["get", "prometheus", "-n", NS, "automon", "-o", "json"]);
    assert_eq!(prometheus["spec"]["retention"], RETENTION, "{prometheus:#}");
    wait_images(&new_images, &old_images);
    let status = healthy_status(c, "after the upgrade");
    assert_eq!(status.code, 0, "status after the upgrade: {status:#?}");

    for (component, longest, total) in &gaps {
        eprintln!(
            "upgrade: {component} had no ready pod for {:.1}s at most ({:.1}s in all)",
            longest.as_secs_f64(),
            total.as_secs_f64()
        );
    }

    // Rollback to the revision the previous build wrote.
    let history = run(c.automon().args(["history"])).success();
    let revision = history
        .stdout
        .lines()
        .skip(1)
        .find(|l| l.split_whitespace().nth(2) == Some(format!("v{}", b.previous_version).as_str()))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| {
            panic!(
                "no revision of plugin {}:\n{}",
                b.previous_version, history.stdout
            )
        })
        .to_string();
    let back = steps.time("rollback", || {
        run(c
            .automon()
            .args(["rollback", &revision, "--wait", "--timeout", "8m"]))
    });
    eprintln!("rollback:\n{}\n{}", back.stdout, back.stderr);
    assert_eq!(back.code, 0, "rollback failed: {back:#?}");
    assert!(
        back.stderr.contains(&format!(
            "the CRDs stay at {operator_bare}, newer than this revision's operator {old_operator}: CRDs are never downgraded"
        )),
        "{back:#?}"
    );
    wait_images(&old_images, &new_images);
    assert!(
        crds().iter().all(|(_, v, e)| v == operator_bare && *e),
        "the CRDs stay at {operator_bare}: {:?}",
        crds()
    );
    let deployment = c.get_json(&[
        "get",
        "deployment",
        "-n",
        NS,
        "prometheus-operator",
        "-o",
        "json",
    ]);
    assert_eq!(
        deployment["status"]["readyReplicas"], 1,
        "the old operator runs ready against the newer CRDs: {deployment:#}"
    );
    let status = healthy_status(c, "after the rollback");
    assert_eq!(status.code, 0, "status after the rollback: {status:#?}");

    // The cluster is left on the current build.
    let again = steps.time("upgrade again", || upgrade(crds_current));
    assert_eq!(again.code, 0, "the second upgrade failed: {again:#?}");
    wait_images(&new_images, &old_images);
    healthy_status(c, "after the second upgrade").success();

    eprintln!("upgrade: timings");
    for (name, took) in &steps.0 {
        eprintln!("  {name:<28} {:>6.1}s", took.as_secs_f64());
    }
    // Issue 26: no window in which Prometheus or the Alertmanager is gone.
    for (component, longest, _) in &gaps {
        assert_eq!(
            *longest,
            Duration::ZERO,
            "{component} had no ready pod for {:.1}s during the upgrade",
            longest.as_secs_f64()
        );
    }
}

/// `status`, and when it is not healthy, what Prometheus says of the targets down and of the
/// pods (for the failure's message).
fn healthy_status(c: &LocalCluster, when: &str) -> Run {
    let status = run(c.automon().args(["status"]));
    if status.code != 0 {
        let json = run(c.automon().args(["status", "-o", "json"]));
        let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap_or_default();
        eprintln!(
            "status {when}: targets down {:#}\npods:\n{}",
            v["prometheus"]["targets"]["unhealthy"],
            c.kubectl(&["get", "pods", "-n", NS, "-o", "wide"]).stdout
        );
    }
    status
}
