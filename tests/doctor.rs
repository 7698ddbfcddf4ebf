//! `doctor` as a user runs it, against the local cluster: each broken situation built for real
//! (a `Prometheus` whose selectors miss automon's label, a component whose image cannot be
//! pulled, a kwok node with an untolerated NoExecute taint, PodSecurity `restricted` on the
//! namespace, another pod on the exporter's host port, an admission webhook whose Service is
//! gone, a kubelet Service another stack left behind), the verdict and the fix it names; a
//! healthy stack where every check passes; and a namespace without automon.
//!
//! The cluster is shared with other test binaries: every test has a namespace, a host port and
//! nodes of its own, and asserts only about them.

mod common;
mod doctor_support;

use common::*;
use doctor_support::*;
use serde_json::Value;

// A node a test adds shows in every stack's doctor until an exporter runs there: the tests
// that add nodes share the nodes lock, the one that expects "All checks passed." holds it alone.

const RECEIVER: &str = "\
alertmanager:
  receivers:
  - name: team
    webhook:
      url: http://example.invalid/
  route:
    receiver: team
";

/// Every check doctor makes of a stack of its own (scrapes needs a Prometheus that answers:
/// the real one, `localcluster serve`).
const CHECKS: &[&str] = &[
    "installed",
    "version",
    "components",
    "selectors",
    "nodes",
    "podSecurity",
    "hostPort",
    "crds",
    "kubeletService",
    "webhooks",
    "alertmanager",
    "scrapes",
];

/// A healthy stack passes every check; then the leftovers of another stack, one after the
/// other on the same stack: a kubelet Service no operator maintains (a warning), an admission
/// webhook whose Service is gone (fails closed, then open), each gone again with the fix doctor
/// names; last, the default configuration, which routes alerts to no one (a warning).
#[test]
fn healthy_stack_passes_then_leftovers_of_other_stacks_are_found() {
    let ns = "dr-healthy";
    let _cleanup = Cleanup::fresh(ns);
    let (_dir, config) = write_temp("automon.yaml", RECEIVER);
    enable_ready(ns, &["-f", config.to_str().unwrap()]);
    let _served = serve(ns);
    let _alone = nodes_alone();

    // Nodes come and go with other test binaries on this cluster: a gap on one of those is
    // theirs, not this stack's (`problems` leaves them out; it never does in CI).
    let d = doctor_until(ns, "every check ok", |d| d.problems().is_empty());
    d.passes();
    let foreign: Vec<&Value> = d.checks().iter().filter(|f| d.foreign_node(f)).collect();
    for check in CHECKS {
        if *check != "nodes" || foreign.is_empty() {
            d.ok(check);
        }
    }
    assert_eq!(
        d.ok("installed"),
        format!("stack installed (namespace {ns})")
    );
    assert_eq!(
        d.ok("alertmanager"),
        "Alertmanager sends alerts to \"team\""
    );
    assert!(d.ok("podSecurity").contains("\"privileged\""), "{d}");
    assert!(
        d.ok("hostPort")
            .contains(&format!("host port {} is free", node_exporter_port(ns))),
        "{d}"
    );
    assert_summary(&doctor_text(ns), "All checks passed.");

    // A kubelet Service in kube-system that no running operator maintains.
    let service = "dr-kps-kubelet";
    let stale = stale_kubelet_service(service);
    let stale_service = format!("Service kube-system/{service}");
    let d = doctor_until(ns, "the stale kubelet Service, and no failure", |d| {
        d.has("kubeletService", "warn", &stale_service) && d.fails_nothing()
    });
    let f = d.expect(
        "kubeletService",
        "warn",
        &[&stale_service],
        &[&format!("kubectl delete service -n kube-system {service}")],
    );
    assert_eq!(d.of("kubeletService").len(), 1, "{d}");
    d.passes();
    shows(ns, f);
    run_kubectl_fix(f["fix"].as_str().unwrap());
    doctor_until(ns, "no stale kubelet Service", |d| {
        d.is_ok("kubeletService")
    });
    drop(stale);

    // A validating webhook on PrometheusRules in this namespace, calling a Service that is gone.
    let configuration = format!("{ns}-gone");
    let webhook = |policy: &str| gone_webhook(&configuration, ns, policy);
    let gone = Object::apply(
        "validatingwebhookconfiguration",
        &configuration,
        None,
        &webhook("Fail"),
    );
    // It is real: it rejects a write to the stack's rules.
    let rejected = cluster().kubectl(&[
        "annotate",
        "prometheusrule",
        "-n",
        ns,
        "node-alerts",
        "automon.io/doctor-test=1",
    ]);
    assert_ne!(rejected.code, 0, "{rejected:#?}");
    assert!(
        rejected.stderr.contains("failed calling webhook"),
        "{rejected:#?}"
    );
    let fix = format!("kubectl delete validatingwebhookconfiguration {configuration}");
    let names = [
        configuration.as_str(),
        &format!("Service {ns}/gone-webhook, which does not exist"),
        "prometheusrules",
    ];
    let d = doctor(ns);
    let f = d.expect("webhooks", "fail", &names, &[&fix]);
    assert_eq!(d.code, 8, "{d}");
    shows(ns, f);
    apply(&webhook("Ignore"));
    let d = doctor_until(ns, "the webhook failing open, and no failure", |d| {
        d.has("webhooks", "warn", &configuration) && d.fails_nothing()
    });
    d.expect("webhooks", "warn", &names[..2], &[&fix]);
    d.passes();
    run_kubectl_fix(&fix);
    doctor_until(ns, "no webhook", |d| d.is_ok("webhooks"));
    drop(gone);

    // The default configuration (an empty file: without -f, enable would keep the stored
    // receiver): every alert goes to "ui-only", which tells no one.
    let (_empty_dir, empty) = write_temp("defaults.yaml", "");
    enable(ns, &["-f", empty.to_str().unwrap()]).success();
    let d = doctor_until(ns, "alerts to no one, and nothing else", |d| {
        d.has("alertmanager", "warn", "ui-only") && d.problems().len() == 1
    });
    let f = d.expect(
        "alertmanager",
        "warn",
        &["\"ui-only\"", "notifies no one"],
        &[
            "alertmanager.receivers",
            &format!("kubectl automon enable -n {ns} --set 'alertmanager.receivers=["),
            "--set alertmanager.route.receiver=team",
        ],
    );
    assert_eq!(d.problems().len(), 1, "{d}");
    d.passes();
    assert_summary(&shows(ns, f), "0 failures, 1 warning");
}

/// A namespace without automon: exit 9 and how to install it, in text and JSON; a namespace
/// that does not exist says the same.
#[test]
fn not_installed_says_how_to_install() {
    let ns = "dr-empty";
    let _cleanup = Cleanup::created(ns);
    for ns in [ns, "dr-no-such-namespace"] {
        let d = doctor(ns);
        assert_eq!(d.code, 9, "{d}");
        assert_eq!(d.checks().len(), 1, "{d}");
        assert_eq!(d.report["failures"], 1, "{d}");
        let f = d.expect(
            "installed",
            "fail",
            &[&format!("automon is not installed in namespace {ns}")],
            &[&format!("kubectl automon enable -n {ns}")],
        );
        let text = shows(ns, f);
        assert_eq!(text.code, 9, "{text:#?}");
        assert_summary(&text, "1 failure, 0 warnings");
    }
}

/// A Prometheus whose selectors another tool changed picks up none of the stack's
/// ServiceMonitors, then none of its rules; `enable --force-conflicts` restores them. Then a
/// Grafana container that cannot pull its image.
#[test]
fn selector_misses_and_a_component_not_ready() {
    let ns = "dr-select";
    let _cleanup = Cleanup::fresh(ns);
    enable_ready(ns, &[]);
    let fix = format!("kubectl automon enable -n {ns} --force-conflicts");
    for (selector, kind, objects) in [
        (
            "serviceMonitorSelector",
            "ServiceMonitors",
            &[
                "kube-state-metrics",
                "kubelet",
                "node-exporter",
                "prometheus-operator",
            ][..],
        ),
        (
            "ruleSelector",
            "PrometheusRules",
            &["automon-coverage", "node-alerts"][..],
        ),
    ] {
        patch_prometheus(
            ns,
            &format!(r#"{{"spec":{{"{selector}":{{"matchLabels":{{"release":"kps"}}}}}}}}"#),
        );
        let d = doctor(ns);
        assert_eq!(d.code, 8, "{d}");
        assert_eq!(d.of("selectors").len(), 1, "only the {kind}:\n{d}");
        let names = [
            &[
                kind,
                "selected by no Prometheus",
                "ignores them: missing label release=kps",
            ][..],
            objects,
        ]
        .concat();
        let f = d.expect("selectors", "fail", &names, &[&fix]);
        shows(ns, f);
        // The fix, as doctor gives it (with this test's own port).
        enable(ns, &["--force-conflicts"]).success();
        let d = doctor_until(ns, "every object selected", |d| d.is_ok("selectors"));
        assert!(d.ok("selectors").contains("selects all"), "{d}");
    }

    // Grafana's container waits on an image it cannot pull.
    let pod = grafana_cannot_pull(ns);
    let d = doctor_until(ns, "grafana not ready", |d| {
        d.has("components", "fail", "Deployment grafana is not ready")
            && d.of("components").len() == 1
    });
    let f = d.expect(
        "components",
        "fail",
        &["Deployment grafana is not ready", &pod, "ImagePullBackOff"],
        &[&format!("kubectl describe pod -n {ns} {pod}")],
    );
    assert_eq!(d.of("components").len(), 1, "only grafana:\n{d}");
    assert_eq!(d.code, 8, "{d}");
    shows(ns, f);
}

/// An exporter that tolerates no taint, and a node with a NoExecute one: the node and the
/// taint are named, and the setting doctor names puts an exporter there.
#[test]
fn node_with_an_untolerated_taint_has_no_exporter() {
    let _nodes = nodes_shared();
    let ns = "dr-taint";
    let _cleanup = Cleanup::fresh(ns);
    // The CRDs from the cluster, never a download: this test may run first.
    cluster().ensure_crds();
    enable(ns, &["--set", "nodeExporter.tolerations=none"]).success();
    let node = "dr-node-gpu";
    let _node = tainted_node(node, Some(("nvidia.com/gpu", "present", "NoExecute")));
    // Until kwok has made it Ready, the node is tainted not-ready as well.
    let reason = format!(
        "node {node} has no working exporter: taint nvidia.com/gpu=present:NoExecute not tolerated"
    );
    let d = doctor_until(ns, "the tainted node", |d| {
        d.find("nodes", &reason).is_some()
    });
    let f = d.expect(
        "nodes",
        "fail",
        &[&reason],
        &[&format!(
            "kubectl automon enable -n {ns} --set nodeExporter.tolerations=all"
        )],
    );
    assert_eq!(d.code, 8, "{d}");
    shows(ns, f);

    enable(ns, &["--set", "nodeExporter.tolerations=all"]).success();
    doctor_until(ns, "an exporter on the tainted node", |d| {
        d.find("nodes", node).is_none()
    });
}

/// PodSecurity `restricted` on the namespace: doctor names the label to set; a new node gets
/// no exporter because its creation is refused; the fix lets the DaemonSet create it.
#[test]
fn pod_security_restricted_refuses_the_exporter() {
    let _nodes = nodes_shared();
    let ns = "dr-psa";
    let _cleanup = Cleanup::fresh(ns);
    enable_ready(ns, &[]);
    kubectl(&[
        "label",
        "ns",
        ns,
        "pod-security.kubernetes.io/enforce=restricted",
        "--overwrite",
    ]);
    let fix = format!(
        "kubectl label namespace {ns} pod-security.kubernetes.io/enforce=privileged --overwrite"
    );
    let d = doctor(ns);
    let psa = d.expect(
        "podSecurity",
        "fail",
        &[&format!(
            "namespace {ns} enforces PodSecurity \"restricted\""
        )],
        &[&fix],
    );
    assert_eq!(psa["fix"], fix.as_str(), "{psa:#}");
    shows(ns, psa);

    // The DaemonSet controller tries to put an exporter on a new node, and is refused.
    let node = "dr-node-psa";
    let _node = tainted_node(node, None);
    let refused = format!("node {node} has no working exporter: pod creation refused");
    let d = doctor_until(ns, "the refused exporter", |d| {
        d.find("nodes", &refused).is_some()
    });
    d.expect(
        "nodes",
        "fail",
        &[&refused, "violates PodSecurity"],
        &[&format!("kubectl describe daemonset -n {ns} node-exporter")],
    );
    d.expect("podSecurity", "fail", &[ns], &[&fix]);

    run_kubectl_fix(&fix);
    let d = doctor_until(ns, "an exporter on the new node", |d| {
        d.find("nodes", node).is_none()
    });
    d.ok("podSecurity");
}

/// Another exporter holds the host port on a node before automon's comes: automon's stays
/// Pending, and doctor names the node, the pod that holds the port and the setting to move it.
/// (The other pod is there first, as on a real node: the scheduler keeps a node's host ports as
/// a set, so two pods bound to one port, which only `nodeName` can do, free it when either
/// goes.)
#[test]
fn host_port_taken_by_another_exporter() {
    let _nodes = nodes_shared();
    let ns = "dr-port";
    let holder_ns = "dr-port-holder";
    let _cleanup = Cleanup::fresh(ns);
    let _holder_cleanup = Cleanup::created(holder_ns);
    cluster().ensure_crds();
    enable(ns, &[]).success();
    let port = node_exporter_port(ns);
    let node = "dr-node-port";
    let _node = node_with_port_held(tainted_kwok_node(node, None), holder_ns, port);
    let d = doctor_until(ns, "the host port taken", |d| {
        d.of("hostPort").iter().any(|f| f["level"] == "fail")
    });
    let f = d.expect(
        "hostPort",
        "fail",
        &[
            &format!("host port {port} is taken on 1 node ({node})"),
            &format!("held by {holder_ns}/other-exporter on {node}"),
        ],
        &[&format!(
            "kubectl automon enable -n {ns} --set nodeExporter.port="
        )],
    );
    assert_eq!(d.code, 8, "{d}");
    shows(ns, f);
    d.expect(
        "nodes",
        "fail",
        &[node, "Pending", "free ports"],
        &["(see the host port check)"],
    );

    // The other exporter goes: automon's is scheduled.
    kubectl(&[
        "delete",
        "pod",
        "-n",
        holder_ns,
        "other-exporter",
        "--wait=false",
    ]);
    let d = doctor_until(ns, "the port free again", |d| {
        d.find("nodes", node).is_none()
    });
    d.ok("hostPort");
}
