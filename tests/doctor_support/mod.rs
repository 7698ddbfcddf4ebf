//! What the `doctor` test binaries share beyond `common`: a ready stack, `doctor` run as a user
//! runs it and its verdicts read from `-o json`, and guards that remove what a test added to the
//! shared cluster, even when it panics.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

/// `enable --wait` with the real operator running, so that Prometheus and Alertmanager become
/// Available: started unless it runs already, and then stopped when the binary exits.
pub fn enable_ready(ns: &str, extra: &[&str]) -> Run {
    ensure_operator();
    enable(ns, &[&["--wait", "--timeout", "2m"], extra].concat()).success()
}

/// Applies an object and deletes it when dropped: `kind` and `name` (and `-n ns`) as kubectl
/// takes them.
pub struct Object(Vec<String>);

impl Object {
    #[track_caller]
    pub fn apply(kind: &str, name: &str, namespace: Option<&str>, yaml: &str) -> Object {
        let mut args = vec![kind.to_string(), name.to_string()];
        if let Some(ns) = namespace {
            args.extend(["-n".to_string(), ns.to_string()]);
        }
        let guard = Object(args);
        apply(yaml);
        guard
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        let mut args = vec!["delete", "--ignore-not-found", "--wait=false"];
        args.extend(self.0.iter().map(String::as_str));
        cluster().kubectl(&args);
    }
}

/// A kwok node of a test's own with a taint: a NoSchedule one by default, which every
/// node-exporter tolerates and keeps other stacks' Deployments off a node that goes away at the
/// end of the test.
pub fn tainted_node(name: &str, taint: Option<(&str, &str, &str)>) -> KwokNodes {
    KwokNodes::create(vec![tainted_kwok_node(name, taint)])
}

/// The node [`tainted_node`] creates.
pub fn tainted_kwok_node(name: &str, taint: Option<(&str, &str, &str)>) -> serde_json::Value {
    let (key, value, effect) = taint.unwrap_or(("automon.io/doctor-test", "true", "NoSchedule"));
    tainted(name, key, value, effect)
}

/// A kubelet Service in kube-system that no running operator maintains, as a removed stack
/// leaves it; deleted when the guard drops.
pub fn stale_kubelet_service(name: &str) -> Object {
    Object::apply(
        "service",
        name,
        Some("kube-system"),
        &format!(
            "apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: kube-system
  labels:
    app.kubernetes.io/managed-by: prometheus-operator
    app.kubernetes.io/name: kubelet
    k8s-app: kubelet
spec:
  clusterIP: None
  ports: [{{name: https-metrics, port: 10250}}]
"
        ),
    )
}

/// A validating webhook `configuration` on the PrometheusRules of namespace `ns` alone, with
/// failure policy `policy`, calling a Service that is gone.
pub fn gone_webhook(configuration: &str, ns: &str, policy: &str) -> String {
    format!(
        "apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: {configuration}
webhooks:
- name: rules.{ns}.example.com
  failurePolicy: {policy}
  sideEffects: None
  admissionReviewVersions: [v1]
  rules:
  - apiGroups: [monitoring.coreos.com]
    apiVersions: [\"*\"]
    operations: [CREATE, UPDATE]
    resources: [prometheusrules]
  clientConfig:
    service: {{namespace: {ns}, name: gone-webhook, port: 443}}
  namespaceSelector:
    matchLabels: {{kubernetes.io/metadata.name: {ns}}}
"
    )
}

/// The Grafana pod of the stack in `ns`, its container made to wait on an image it cannot
/// pull; its name.
pub fn grafana_cannot_pull(ns: &str) -> String {
    let pod = pod_of(ns, "grafana").expect("the grafana pod");
    cannot_pull(ns, &pod, "grafana");
    pod
}

/// The container `container` (every one: `*`) of pod `ns/pod` made to wait on an image it
/// cannot pull, and the pod not ready (kwok leaves a pod's status alone once it has an IP).
pub fn cannot_pull(ns: &str, pod: &str, container: &str) {
    let mut status = get_json(&["get", "pod", "-n", ns, pod])["status"].clone();
    for c in status["containerStatuses"].as_array_mut().unwrap() {
        if container == "*" || c["name"] == container {
            c["ready"] = false.into();
            c["started"] = false.into();
            c["state"] = serde_json::json!({"waiting": {
                "reason": "ImagePullBackOff",
                "message": "Back-off pulling image \"docker.io/grafana/grafana\"",
            }});
        }
    }
    for c in status["conditions"].as_array_mut().unwrap() {
        if c["type"] == "Ready" || c["type"] == "ContainersReady" {
            c["status"] = "False".into();
        }
    }
    kubectl(&[
        "patch",
        "pod",
        "-n",
        ns,
        pod,
        "--subresource=status",
        "--type=merge",
        "-p",
        &serde_json::json!({ "status": status }).to_string(),
    ]);
}

/// `node`, a node of a test's own, on which a pod of `holder_ns` holds host port `port` before
/// any exporter comes. The pod is bound to it before it exists (any node of that name an
/// earlier run left goes first), at the exporter's own priority (a lower one would be
/// preempted).
pub fn node_with_port_held(node: serde_json::Value, holder_ns: &str, port: u16) -> KwokNodes {
    let name = node["metadata"]["name"].as_str().expect("a node name");
    drop(KwokNodes(vec![name.to_string()]));
    apply(&format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: other-exporter
  namespace: {holder_ns}
spec:
  nodeName: {name}
  hostNetwork: true
  priorityClassName: system-node-critical
  tolerations: [{{operator: Exists}}]
  containers:
  - name: exporter
    image: quay.io/prometheus/node-exporter:v1.9.0
    ports: [{{containerPort: {port}, hostPort: {port}}}]
"
    ));
    KwokNodes::create(vec![node])
}

/// Nodes the cluster starts with, and the ones these tests add; any other node belongs to a test
/// binary that runs beside this one on the shared cluster.
pub fn ours(node: &str) -> bool {
    node.starts_with("automon-node-") || node.starts_with("dr-")
}

/// What `doctor -o json` said, and its exit code.
#[derive(Debug)]
pub struct Doctor {
    pub code: i32,
    pub report: Value,
}

impl Doctor {
    pub fn checks(&self) -> &[Value] {
        self.report["checks"].as_array().expect("checks")
    }

    /// Every finding of a check.
    pub fn of(&self, check: &str) -> Vec<&Value> {
        self.checks()
            .iter()
            .filter(|f| f["check"] == check)
            .collect()
    }

    /// The finding of `check` whose message contains `needle`.
    pub fn find(&self, check: &str, needle: &str) -> Option<&Value> {
        self.of(check).into_iter().find(|f| {
            f["message"]
                .as_str()
                .is_some_and(|message| message.contains(needle))
        })
    }

    /// Like `find`, and asserts the level, that the message names every one of `names` and
    /// that the fix contains every one of `fix`.
    #[track_caller]
    pub fn expect(&self, check: &str, level: &str, names: &[&str], fix: &[&str]) -> &Value {
        let f = self
            .find(check, names[0])
            .unwrap_or_else(|| panic!("no {check} finding naming {:?}:\n{self:#}", names[0]));
        assert_eq!(f["level"], level, "{f:#}");
        let message = f["message"].as_str().unwrap();
        for name in names {
            assert!(
                message.contains(name),
                "{check}: {name:?} not named:\n{f:#}"
            );
        }
        let got = f["fix"].as_str().unwrap_or_default();
        for fix in fix {
            assert!(got.contains(fix), "{check}: fix lacks {fix:?}:\n{f:#}");
        }
        f
    }

    /// Whether a finding of `check` names `needle` at `level`.
    pub fn has(&self, check: &str, level: &str, needle: &str) -> bool {
        self.find(check, needle)
            .is_some_and(|f| f["level"] == level)
    }

    /// Whether `check` has one finding and it is ok.
    pub fn is_ok(&self, check: &str) -> bool {
        let found = self.of(check);
        found.len() == 1 && found[0]["level"] == "ok"
    }

    /// Whether nothing of ours fails (warnings may be there).
    pub fn fails_nothing(&self) -> bool {
        !self.problems().iter().any(|f| f["level"] == "fail")
    }

    /// Warnings fail nothing: exit 0, unless a node of another test binary fails.
    #[track_caller]
    pub fn passes(&self) {
        assert!(self.fails_nothing(), "{self}");
        if !self.checks().iter().any(|f| f["level"] == "fail") {
            assert_eq!(self.code, 0, "{self}");
        }
    }

    /// The only finding of `check`, which must be ok.
    #[track_caller]
    pub fn ok(&self, check: &str) -> &str {
        assert!(self.is_ok(check), "{check} is not ok:\n{self:#}");
        self.of(check)[0]["message"].as_str().unwrap()
    }

    /// The findings that are not ok, apart from nodes another test binary added.
    pub fn problems(&self) -> Vec<&Value> {
        self.checks()
            .iter()
            .filter(|f| f["level"] != "ok" && !self.foreign_node(f))
            .collect()
    }

    /// A `nodes` finding about a node that is not ours.
    pub fn foreign_node(&self, f: &Value) -> bool {
        f["check"] == "nodes"
            && f["message"]
                .as_str()
                .and_then(|m| m.strip_prefix("node "))
                .and_then(|m| m.split_whitespace().next())
                .is_some_and(|node| !ours(node))
    }
}

impl std::fmt::Display for Doctor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n{}",
            self.code,
            serde_json::to_string_pretty(&self.report).unwrap()
        )
    }
}

/// `doctor -n <ns> -o json`; its exit code must agree with its count of failures.
#[track_caller]
pub fn doctor(ns: &str) -> Doctor {
    let out = run(automon_admin().args(["doctor", "-n", ns, "-o", "json"]));
    let report: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor -o json is not JSON ({e}):\n{out:#?}"));
    assert_eq!(report["kind"], "Doctor", "{report:#}");
    assert_eq!(report["namespace"], ns, "{report:#}");
    let failures = report["failures"].as_u64().unwrap();
    let installed =
        report["checks"][0]["check"] == "installed" && report["checks"][0]["level"] == "ok";
    let expected = match (installed, failures) {
        (false, _) => 9,
        (true, 0) => 0,
        (true, _) => 8,
    };
    assert_eq!(out.code, expected, "exit code:\n{out:#?}");
    Doctor {
        code: out.code,
        report,
    }
}

/// `doctor -n <ns>` as text.
pub fn doctor_text(ns: &str) -> Run {
    run(automon_admin().args(["doctor", "-n", ns]))
}

/// Runs doctor until `done` holds: controllers and kwok catch up in their own time.
#[track_caller]
pub fn doctor_until(ns: &str, what: &str, done: impl Fn(&Doctor) -> bool) -> Doctor {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = doctor(ns);
        if done(&d) {
            return d;
        }
        assert!(Instant::now() < deadline, "{what}: not within 60s:\n{d:#}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `doctor -n <ns>` as text shows the finding with its mark, and its fix on the line below.
#[track_caller]
pub fn shows(ns: &str, finding: &Value) -> Run {
    let text = doctor_text(ns);
    let mark = match finding["level"].as_str() {
        Some("fail") => "✗",
        Some("warn") => "!",
        _ => "✓",
    };
    let line = format!("{mark} {}\n", finding["message"].as_str().unwrap());
    assert!(
        text.stdout.contains(&line),
        "{line:?} not shown:\n{text:#?}"
    );
    if let Some(fix) = finding["fix"].as_str() {
        let fix = format!("{line}    fix: {fix}\n");
        assert!(text.stdout.contains(&fix), "{fix:?} not shown:\n{text:#?}");
    }
    text
}

/// The text form ends with the count of failures and warnings (or "All checks passed."),
/// unless a node of another test binary shows (then the count is theirs too).
#[track_caller]
pub fn assert_summary(text: &Run, summary: &str) {
    let foreign = text.stdout.lines().any(|l| {
        l.strip_prefix("✗ node ")
            .and_then(|l| l.split_whitespace().next())
            .is_some_and(|node| !ours(node))
    });
    assert!(
        foreign || text.stdout.ends_with(&format!("{summary}\n")),
        "{summary:?} not last:\n{text:#?}"
    );
}

/// Runs a kubectl fix as a user copies it: the command up to the first parenthesis.
#[track_caller]
pub fn run_kubectl_fix(fix: &str) {
    let command = fix.split(" (").next().unwrap();
    let args: Vec<&str> = command
        .strip_prefix("kubectl ")
        .unwrap_or_else(|| panic!("not a kubectl command: {fix:?}"))
        .split_whitespace()
        .collect();
    kubectl(&args);
}
