//! Version skew of the cluster. The oldest Kubernetes the stack supports
//! (`versions::MIN_KUBERNETES_MINOR`; `MIN_KUBERNETES_VERSION` in tests/cluster/versions.env is
//! the newest patch of it the Go module proxy serves) takes the whole stack: preflight passes,
//! the server accepts every object `enable` applies (and dry-runs them), the CRDs are
//! Established. One minor older is refused before anything is written.

mod common;

use common::*;
use serde_json::Value;

/// The stack's namespace: the `min` cluster starts from nothing for each test binary.
const NS: &str = "automon";

#[test]
fn the_oldest_supported_kubernetes_takes_the_whole_stack() {
    let c = min_cluster();
    let release = pinned_version("MIN_KUBERNETES_VERSION");
    let automon = |args: &[&str]| run(c.automon().args(args));

    // The server is that release, inside the supported window: no warning.
    let v = automon(&["version", "-o", "json"]).success();
    let version: Value = serde_json::from_str(&v.stdout).unwrap();
    assert_eq!(version["server"]["gitVersion"], release.as_str(), "{v:?}");
    assert!(v.stderr.is_empty(), "{v:?}");

    let pre = automon(&["preflight", "-n", NS]).success();
    assert_has(&pre.stderr, "✓ version supported");

    let crds = c.crds_dir();
    let crds = crds.to_str().unwrap();
    let enable = |extra: &[&str]| {
        automon(&[&["enable", "-n", NS, "--crds-from", crds], extra].concat()).success()
    };
    // Before anything is there: the CRDs and the namespace are the server's dry run; what
    // lives in them cannot be, and is said to be shown as the client's.
    let first_dry = enable(&["--dry-run=server"]);
    assert_has(&first_dry.stdout, "(server dry run)");
    assert!(first_dry.stderr.contains("cannot dry-run"), "{first_dry:?}");
    assert!(
        c.kubectl(&["get", "namespace", NS]).code != 0,
        "a dry run made the namespace"
    );
    // A namespace that is there already, CRDs that are not: their custom resources cannot be
    // the server's dry run either, and that is said instead of a 404 at the first of them.
    let mine = "skew-mine";
    c.kubectl(&["create", "namespace", mine]).success();
    let crds_dry = automon(&[
        "enable",
        "-n",
        mine,
        "--crds-from",
        crds,
        "--dry-run=server",
    ])
    .success();
    assert_has(
        &crds_dry.stderr,
        "10 CRDs are not in the cluster yet, so the server cannot dry-run the custom resources of them",
    );
    assert_has(
        &crds_dry.stdout,
        "servicemonitor.monitoring.coreos.com/prometheus-operator created",
    );

    let installed = enable(&[]);
    assert_has(&installed.stdout, &format!("({}, {release})", c.server));
    assert_lacks(&installed.stdout, "unchanged");

    // Every object the stack renders for this namespace is there, as the server took it.
    let objects = rendered_objects(&["-n", NS]);
    assert!(objects.len() > 50, "{} objects rendered", objects.len());
    let (_dir, rendered) = write_list("stack.json", &objects);
    let found = c
        .kubectl(&["get", "-f", rendered.to_str().unwrap(), "-o", "name"])
        .success();
    assert_eq!(found.stdout.lines().count(), objects.len(), "{found:?}");

    // Every CRD Established, as this API server's own controller judged it.
    let listed: Value =
        serde_json::from_str(&c.kubectl(&["get", "crd", "-o", "json"]).success().stdout).unwrap();
    let monitoring: Vec<&Value> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|crd| crd["spec"]["group"] == "monitoring.coreos.com")
        .collect();
    assert_eq!(monitoring.len(), 10, "{listed:#}");
    for crd in monitoring {
        let established = crd["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|cond| cond["type"] == "Established" && cond["status"] == "True");
        assert!(established, "{:#}", crd["status"]);
    }

    // Now that its namespace and CRDs are there, a change is the server's dry run throughout:
    // every object judged by this API server again, nothing written.
    let dry = enable(&["--dry-run=server", "--set", "prometheus.retention=3d"]);
    assert!(!dry.stderr.contains("cannot dry-run"), "{dry:?}");
    assert_has(
        &dry.stdout,
        "prometheus.monitoring.coreos.com/automon configured (server dry run)",
    );
    let retention = c
        .kubectl(&[
            "get",
            "prometheus",
            "automon",
            "-n",
            NS,
            "-o",
            "jsonpath={.spec.retention}",
        ])
        .success();
    assert_ne!(retention.stdout, "3d", "the dry run wrote");
}

/// One minor below the oldest supported: `/version` says so (the proxy rewrites the real
/// server's answer), and everything else is the real `min` cluster's.
#[test]
fn one_minor_older_is_refused_before_any_write() {
    let c = min_cluster();
    let min = pinned_version("MIN_KUBERNETES_VERSION");
    let minor: u32 = min.split('.').nth(1).unwrap().parse().unwrap();
    let older = format!("v1.{}.9", minor - 1);
    let dir = tempfile::tempdir().unwrap();
    let (_proxy, kubeconfig, log) =
        c.rules_review_proxy(dir.path(), &c.kubeconfig, &["--server-version", &older]);
    let automon = |args: &[&str]| {
        let mut cmd = automon();
        cmd.env("KUBECONFIG", &kubeconfig).args(args);
        run(&mut cmd)
    };
    let refusal = format!("Kubernetes {older} is not supported (1.{minor} or newer is)");

    let pre = automon(&["preflight", "-n", NS]).code(1);
    assert_has(&pre.stderr, &refusal);
    let enable = automon(&[
        "enable",
        "-n",
        NS,
        "--crds-from",
        c.crds_dir().to_str().unwrap(),
    ]);
    assert_eq!(enable.code, 1, "{enable:?}");
    assert_has(&format!("{}{}", enable.stdout, enable.stderr), &refusal);
    // Reviews of who may do what are questions, not writes.
    let requests = std::fs::read_to_string(&log).unwrap();
    let writes: Vec<&str> = requests
        .lines()
        .filter(|l| !l.starts_with("GET "))
        .filter(|l| {
            !l.contains("/apis/authorization.k8s.io/")
                && !l.contains("/apis/authentication.k8s.io/")
        })
        .collect();
    assert!(writes.is_empty(), "enable wrote: {writes:?}");

    // `version` answers, and warns.
    let v = automon(&["version"]).success();
    assert_has(&v.stdout, &format!("Server Version: {older}"));
    assert_has(&v.stderr, &refusal);
}
