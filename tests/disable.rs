//! `disable` removes exactly what automon installed, waits for it, and keeps what others still
//! use (CRDs) or what holds data (volume claims). The stack is installed the way GitOps would:
//! `render -o json | kubectl apply --server-side`. Each test uses its own namespace.

mod common;

use std::process::Command;

use common::*;

const SERVICEMONITORS_CRD: &str = "servicemonitors.monitoring.coreos.com";

/// Every type the rendered stack has, as `kubectl get` names it.
const MEMBER_TYPES: &[&str] = &[
    "namespaces",
    "serviceaccounts",
    "secrets",
    "configmaps",
    "services",
    "deployments.apps",
    "daemonsets.apps",
    "clusterroles.rbac.authorization.k8s.io",
    "clusterrolebindings.rbac.authorization.k8s.io",
    "roles.rbac.authorization.k8s.io",
    "rolebindings.rbac.authorization.k8s.io",
    "networkpolicies.networking.k8s.io",
    "poddisruptionbudgets.policy",
    "prometheuses.monitoring.coreos.com",
    "alertmanagers.monitoring.coreos.com",
    "servicemonitors.monitoring.coreos.com",
    "prometheusrules.monitoring.coreos.com",
];

/// Installs the stack in `ns` (and the shared CRDs if they are missing); returns its ApplySet ID.
fn install(ns: &str) -> String {
    let c = cluster();
    c.ensure_crds();
    let rendered = run(automon().args(["render", "-n", ns, "-o", "json"])).success();
    let applied = c.kubectl_with_input(
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "kubectl-automon",
            "--force-conflicts",
            "-f",
            "-",
        ],
        &rendered.stdout,
    );
    assert_eq!(applied.code, 0, "{applied:#?}");
    let list: serde_json::Value = serde_json::from_str(&rendered.stdout).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|o| o["metadata"]["labels"]["applyset.kubernetes.io/id"].as_str())
        .expect("the parent has an ApplySet ID")
        .to_string()
}

/// `kind/name` of everything labelled as a member of the ApplySet, in any namespace.
fn members_left(id: &str) -> Vec<String> {
    let c = cluster();
    let selector = format!("applyset.kubernetes.io/part-of={id}");
    MEMBER_TYPES
        .iter()
        .flat_map(|t| {
            let out = c.kubectl(&["get", t, "-A", "-l", &selector, "-o", "name"]);
            assert_eq!(out.code, 0, "{out:#?}");
            out.stdout.lines().map(str::to_string).collect::<Vec<_>>()
        })
        .collect()
}

fn disable(ns: &str, extra: &[&str]) -> Run {
    let mut cmd = automon_admin();
    cmd.args(["disable", "-n", ns]).args(extra);
    run(&mut cmd)
}

#[test]
fn disable_removes_exactly_the_inventory_then_says_nothing_is_installed() {
    let ns = "automon-disable-all";
    let id = install(ns);
    assert!(members_left(&id).len() > 30, "installed");
    // Not ours: a ConfigMap in another namespace that only looks like automon's.
    let other = "automon-disable-all-other";
    cluster().kubectl(&["create", "namespace", other]);
    cluster().kubectl(&["create", "configmap", "grafana-datasources", "-n", other]);

    let out = disable(ns, &["--yes"]).success();
    assert!(
        out.stdout.contains(r#"deployment.apps "grafana" deleted"#),
        "{out:#?}"
    );
    assert!(
        out.stdout
            .contains(r#"prometheus.monitoring.coreos.com "automon" deleted"#),
        "{out:#?}"
    );
    assert!(
        out.stdout.contains(&format!(r#"namespace "{ns}" deleted"#)),
        "{out:#?}"
    );
    // Reverse order: custom resources before the operator, the namespace last.
    let at = |s: &str| {
        out.stdout
            .find(s)
            .unwrap_or_else(|| panic!("{s}: {out:#?}"))
    };
    assert!(
        at(r#"prometheus.monitoring.coreos.com "automon""#)
            < at(r#"deployment.apps "prometheus-operator""#)
    );
    assert!(at(r#"deployment.apps "prometheus-operator""#) < at(r#"configmap "automon" deleted"#));
    assert!(at(r#"configmap "automon" deleted"#) < at(&format!(r#"namespace "{ns}""#)));
    let summary = out.stdout.lines().last().unwrap();
    assert!(
        summary.starts_with(&format!(r#"automon disabled in namespace "{ns}": "#))
            && summary.contains(" objects deleted in "),
        "{summary}"
    );

    // Waited: everything is gone when the command returns.
    assert_eq!(members_left(&id), Vec::<String>::new());
    assert!(!exists(&["namespace", ns]));
    assert!(exists(&["configmap", "grafana-datasources", "-n", other]));
    assert!(
        exists(&["crd", SERVICEMONITORS_CRD]),
        "CRDs are not members here"
    );

    let again = disable(ns, &["--yes"]).success();
    assert!(again.stderr.contains("not installed"), "{again:#?}");
    assert!(again.stdout.is_empty(), "{again:#?}");
    cluster().kubectl(&["delete", "namespace", other, "--wait=false"]);
}

#[test]
fn without_yes_and_no_terminal_it_refuses_and_deletes_nothing() {
    let ns = "automon-disable-refuse";
    let id = install(ns);
    let before = members_left(&id).len();

    let out = disable(ns, &[]).code(2).stderr_has("--yes");
    assert!(out.stdout.is_empty(), "{out:#?}");
    assert_eq!(members_left(&id).len(), before);

    // A dry run needs no confirmation and deletes nothing either.
    let dry = disable(ns, &["--dry-run"]).success();
    assert!(
        dry.stdout
            .contains(r#"deployment.apps "grafana" deleted (dry run)"#),
        "{dry:#?}"
    );
    let server = disable(ns, &["--dry-run=server"]).success();
    assert!(server.stdout.contains("(server dry run)"), "{server:#?}");
    assert_eq!(members_left(&id).len(), before);
    assert!(exists(&["configmap", "automon", "-n", ns]));

    disable(ns, &["--yes"]).success();
}

#[test]
fn crds_used_outside_the_inventory_are_kept_and_named() {
    let ns = "automon-disable-crd";
    let other = "automon-disable-crd-other";
    let c = cluster();
    let id = install(ns);
    // Make the ServiceMonitor CRD a member of this stack, as enable does.
    c.kubectl(&["create", "namespace", other]);
    let (_dir, sm) = write_temp(
        "sm.yaml",
        &format!(
            "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: foreign\n  namespace: {other}\nspec:\n  selector: {{}}\n  endpoints: [{{port: web}}]\n"
        ),
    );
    let created = c.kubectl(&["apply", "-f", sm.to_str().unwrap()]);
    assert_eq!(created.code, 0, "{created:#?}");
    let listed = parent_kinds(ns);
    let kinds = format!(
        "applyset.kubernetes.io/contains-group-kinds={},CustomResourceDefinition.apiextensions.k8s.io",
        listed.trim()
    );
    c.kubectl(&[
        "annotate",
        "--overwrite",
        "configmap",
        "automon",
        "-n",
        ns,
        &kinds,
    ]);
    let label = format!("applyset.kubernetes.io/part-of={id}");
    c.kubectl(&["label", "--overwrite", "crd", SERVICEMONITORS_CRD, &label]);

    let dry = disable(ns, &["--dry-run"]).success();
    assert!(
        dry.stderr.contains(&format!(
            r#"kept customresourcedefinition "{SERVICEMONITORS_CRD}""#
        )),
        "{dry:#?}"
    );
    // Other engineers' stacks may own ServiceMonitors too: at least ours is counted.
    assert!(
        dry.stderr.contains("outside automon still use it"),
        "{dry:#?}"
    );
    assert!(!dry.stdout.contains("customresourcedefinition"), "{dry:#?}");

    let out = disable(ns, &["--yes"]).success();
    assert!(
        out.stderr.contains(&format!(
            r#"kept customresourcedefinition "{SERVICEMONITORS_CRD}""#
        )),
        "{out:#?}"
    );
    assert!(!out.stdout.contains("customresourcedefinition"), "{out:#?}");
    let crd_kept = exists(&["crd", SERVICEMONITORS_CRD]);

    // Leave the shared CRD as it was (re-applied should anything have gone wrong).
    c.kubectl(&[
        "label",
        "crd",
        SERVICEMONITORS_CRD,
        "applyset.kubernetes.io/part-of-",
    ]);
    if !crd_kept {
        let file = c.crds_dir().join(format!("{SERVICEMONITORS_CRD}.yaml"));
        c.kubectl(&[
            "apply",
            "--server-side",
            "--field-manager",
            "kubectl-automon",
            "-f",
            file.to_str().unwrap(),
        ]);
    }
    c.kubectl(&["delete", "namespace", other, "--wait=false"]);
    assert!(
        crd_kept,
        "the CRD was deleted although {other}/foreign uses it"
    );
    assert!(!exists(&["namespace", ns]));
}

#[test]
fn data_claims_are_kept_without_delete_data_and_deleted_with_it() {
    let ns = "automon-disable-pvc";
    let c = cluster();
    install(ns);
    let claim = "prometheus-automon-db-prometheus-automon-0";
    // Labelled as the StatefulSet controller labels the claims of the operator's StatefulSet.
    let (_dir, pvc) = write_temp(
        "pvc.yaml",
        &format!(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: {claim}\n  namespace: {ns}\n  labels:\n    app.kubernetes.io/name: prometheus\n    operator.prometheus.io/name: automon\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n"
        ),
    );
    let created = c.kubectl(&["apply", "-f", pvc.to_str().unwrap()]);
    assert_eq!(created.code, 0, "{created:#?}");

    let out = disable(ns, &["--yes"]).success();
    assert!(
        out.stderr.contains("kept 1 persistentvolumeclaim"),
        "{out:#?}"
    );
    assert!(out.stderr.contains(claim), "{out:#?}");
    assert!(out.stderr.contains("--delete-data"), "{out:#?}");
    assert!(
        out.stderr.contains(&format!("kept namespace \"{ns}\"")),
        "{out:#?}"
    );
    assert!(
        !out.stdout.contains(&format!(r#"namespace "{ns}" deleted"#)),
        "{out:#?}"
    );
    assert!(exists(&["pvc", claim, "-n", ns]));
    assert!(exists(&["namespace", ns]));
    assert!(!exists(&["configmap", "automon", "-n", ns]));

    // Installed again over the kept data, then removed with it.
    let id = install(ns);
    let out = disable(ns, &["--yes", "--delete-data"]).success();
    assert!(
        out.stdout
            .contains(&format!(r#"persistentvolumeclaim "{claim}" deleted"#)),
        "{out:#?}"
    );
    assert!(!exists(&["pvc", claim, "-n", ns]));
    assert!(!exists(&["namespace", ns]));
    assert_eq!(members_left(&id), Vec::<String>::new());
}

/// Runs `disable` on a pseudo-terminal (util-linux `script`), typing `answer` at the prompt.
fn disable_on_terminal(ns: &str, answer: &str) -> Run {
    let bin = env!("CARGO_BIN_EXE_kubectl-automon");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "(sleep 2; echo {answer}) | script -qec '{bin} disable -n {ns}' /dev/null"
        ))
        .env("KUBECONFIG", &cluster().kubeconfig)
        .env("NO_COLOR", "1");
    run(&mut cmd)
}

#[test]
fn on_a_terminal_it_lists_what_goes_and_asks_first() {
    let ns = "automon-disable-tty";
    let id = install(ns);
    let before = members_left(&id).len();

    let no = disable_on_terminal(ns, "n").success();
    // script merges the terminal's output into its stdout.
    for line in ["KIND", "Prometheus ", "Deployment ", "Namespace ", "[y/N]"] {
        assert!(no.stdout.contains(line), "{line}: {no:#?}");
    }
    assert!(no.stdout.contains("nothing deleted"), "{no:#?}");
    assert_eq!(members_left(&id).len(), before);

    let yes = disable_on_terminal(ns, "y").success();
    assert!(
        yes.stdout.contains(&format!(r#"namespace "{ns}" deleted"#)),
        "{yes:#?}"
    );
    assert_eq!(members_left(&id), Vec::<String>::new());
}

#[test]
fn a_user_without_permissions_is_told_which_one_is_missing() {
    let mut cmd = automon();
    cmd.env("KUBECONFIG", &cluster().limited_kubeconfig).args([
        "disable",
        "-n",
        "automon-disable-forbidden",
        "--yes",
    ]);
    run(&mut cmd)
        .code(6)
        .stderr_has(r#"may not get configmaps in namespace "automon-disable-forbidden""#);
}

#[test]
fn what_a_finalizer_holds_past_the_timeout_is_named_and_a_rerun_finishes() {
    let ns = "automon-disable-timeout";
    let c = cluster();
    let id = install(ns);
    let hold = c.kubectl(&[
        "patch",
        "configmap",
        "grafana-datasources",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["automon.test/hold"]}}"#,
    ]);
    assert_eq!(hold.code, 0, "{hold:#?}");

    let out = disable(ns, &["--yes", "--timeout=3s"]).code(1);
    assert!(out.stderr.contains("timed out after 3s"), "{out:#?}");
    assert!(
        out.stderr.contains("configmap/grafana-datasources"),
        "{out:#?}"
    );
    // It stopped before the parent: the stack is still known, and a second run picks it up.
    assert!(exists(&["configmap", "automon", "-n", ns]));
    c.kubectl(&[
        "patch",
        "configmap",
        "grafana-datasources",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    disable(ns, &["--yes"]).success();
    assert_eq!(members_left(&id), Vec::<String>::new());
    assert!(!exists(&["namespace", ns]));
}
