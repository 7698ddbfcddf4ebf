//! `preflight` answers "can I install here?" with exactly the checks `enable` runs before its
//! first write. Every test runs the real binary against the local control plane, then looks at
//! the cluster.

mod common;

use common::*;

#[test]
fn admin_passes_every_check() {
    let out = run(automon_admin().args(["preflight", "-n", "automon-preflight-admin"])).success();
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("Preflight ✓ reachable  ✓ version supported  ✓ "),
        "{out:#?}"
    );
    assert!(first.contains(" permissions"), "{out:#?}");
    assert!(!out.stderr.contains("missing"), "{out:#?}");

    let json =
        run(automon_admin().args(["preflight", "-n", "automon-preflight-admin", "-o", "json"]))
            .success();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["passed"], true, "{v:#}");
    assert_eq!(v["missing"], serde_json::json!([]), "{v:#}");
    assert!(v["permissionsChecked"].as_u64().unwrap() > 40, "{v:#}");
    assert!(
        v["serverVersion"]["gitVersion"]
            .as_str()
            .unwrap()
            .starts_with("v1.36."),
        "{v:#}"
    );
}

#[test]
fn a_user_without_rbac_gets_every_missing_permission_at_once_and_nothing_is_written() {
    let c = cluster();
    let ns = "automon-preflight-limited";
    let out = run(automon()
        .env("KUBECONFIG", &c.limited_kubeconfig)
        .args(["preflight", "-n", ns]))
    .code(EXIT_FORBIDDEN);
    // One line per resource and place, its verbs first: `get, create  configmaps  in namespace x`.
    let grants: Vec<(Vec<&str>, &str, &str)> = out
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("  ✗ "))
        .filter_map(|l| {
            let cols: Vec<&str> = l
                .split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            match cols.as_slice() {
                [verbs, resource, scope] => Some((verbs.split(", ").collect(), *resource, *scope)),
                _ => None,
            }
        })
        .collect();
    let in_ns = format!("in namespace {ns}");
    for (verb, resource, scope) in [
        ("create", "namespaces", "cluster-wide"),
        ("create", "daemonsets.apps", in_ns.as_str()),
        ("create", "prometheuses.monitoring.coreos.com", &in_ns),
        ("patch", "deployments.apps", &in_ns),
        ("watch", "deployments.apps", &in_ns),
        ("delete", "configmaps", &in_ns),
        (
            "create",
            "clusterroles.rbac.authorization.k8s.io",
            "cluster-wide",
        ),
        (
            "create",
            "clusterrolebindings.rbac.authorization.k8s.io",
            "cluster-wide",
        ),
        (
            "create",
            "customresourcedefinitions.apiextensions.k8s.io",
            "cluster-wide",
        ),
        (
            "watch",
            "customresourcedefinitions.apiextensions.k8s.io",
            "cluster-wide",
        ),
    ] {
        assert!(
            grants
                .iter()
                .any(|(verbs, r, s)| verbs.contains(&verb) && *r == resource && *s == scope),
            "no line for {verb} {resource} {scope}:\n{}",
            out.stderr
        );
    }
    // Each resource in each place once; the cluster-wide ones first.
    let places: std::collections::BTreeSet<(&str, &str)> =
        grants.iter().map(|(_, r, s)| (*r, *s)).collect();
    assert_eq!(places.len(), grants.len(), "{}", out.stderr);
    let cluster_wide: Vec<bool> = grants
        .iter()
        .map(|(_, _, s)| *s == "cluster-wide")
        .collect();
    assert!(
        cluster_wide.windows(2).all(|w| w[0] >= w[1]),
        "{}",
        out.stderr
    );
    // Then what grants them all, bound to the user the server authenticated.
    for line in [
        "To grant them, a cluster administrator runs:".to_string(),
        "kubectl apply -f - <<'EOF'".to_string(),
        "kind: ClusterRole".to_string(),
        "kind: Role".to_string(),
        format!("  namespace: {ns}"),
        "kubectl create clusterrolebinding automon-installer --clusterrole=automon-installer --user=limited".to_string(),
        format!("kubectl create rolebinding automon-installer --namespace={ns} --role=automon-installer --user=limited"),
    ] {
        assert!(
            out.stderr.lines().any(|l| l == line),
            "no line {line:?}:\n{}",
            out.stderr
        );
    }
    // Every permission checked is missing for a user with no bindings, and each is one line.
    let json = run(automon().env("KUBECONFIG", &c.limited_kubeconfig).args([
        "preflight",
        "-n",
        ns,
        "-o",
        "json",
    ]))
    .code(EXIT_FORBIDDEN);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let missing = v["missing"].as_array().unwrap().len();
    assert_eq!(
        Some(missing as u64),
        v["permissionsChecked"].as_u64(),
        "{v:#}"
    );
    assert_eq!(
        grants
            .iter()
            .map(|(verbs, _, _)| verbs.len())
            .sum::<usize>(),
        missing,
        "{}",
        out.stderr
    );
    assert_eq!(v["passed"], false);
    // It could not look for another operator, and says so instead of claiming there is none.
    assert_has(
        &out.stderr,
        "! cannot tell whether another Prometheus Operator is installed",
    );

    // Nothing was created: not the namespace, not the cluster-scoped objects.
    let get_ns = c.kubectl(&["get", "namespace", ns]);
    assert_ne!(get_ns.code, 0, "{get_ns:#?}");
    assert!(get_ns.stderr.contains("NotFound"), "{get_ns:#?}");
    let roles = c
        .kubectl(&["get", "clusterroles,clusterrolebindings", "-o", "name"])
        .success();
    assert_lacks(&roles.stdout, ns);
}

#[test]
fn an_existing_operator_is_found_with_its_version_and_selectors() {
    let c = cluster();
    c.ensure_crds();
    let ns = "automon-preflight-existing";
    // A foreign operator in it must not outlive the test.
    let _ns = Cleanup::created(ns).waited();
    let manifest = format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: prometheus-operator
  namespace: {ns}
spec:
  replicas: 0
  selector:
    matchLabels: {{app: other-operator}}
  template:
    metadata:
      labels: {{app: other-operator}}
    spec:
      containers:
      - name: prometheus-operator
        image: quay.io/prometheus-operator/prometheus-operator:v0.80.0
---
apiVersion: monitoring.coreos.com/v1
kind: Prometheus
metadata:
  name: k8s
  namespace: {ns}
spec:
  replicas: 0
  serviceMonitorSelector:
    matchLabels: {{release: kps}}
  ruleSelector:
    matchLabels: {{role: alert-rules}}
  ruleNamespaceSelector: {{}}
"#
    );
    apply(&manifest);

    let out = run(automon_admin().args(["preflight", "-n", ns])).success();
    assert_has(
        &out.stderr,
        "! another Prometheus Operator is installed; enable will reuse it",
    );
    assert_has(
        &out.stderr,
        &format!(
            "operator deployment {ns}/prometheus-operator (quay.io/prometheus-operator/prometheus-operator:v0.80.0), version v0.80.0"
        ),
    );
    assert_has(
        &out.stderr,
        &format!("prometheus {ns}/k8s: selects labels release=kps,role=alert-rules"),
    );

    let json = run(automon_admin().args(["preflight", "-n", ns, "-o", "json"])).success();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let existing = &v["existingOperator"];
    assert_eq!(existing["crdsInstalled"], true);
    let deployment = existing["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["namespace"] == ns)
        .unwrap_or_else(|| panic!("{existing:#}"));
    assert_eq!(deployment["name"], "prometheus-operator");
    assert_eq!(deployment["version"], "v0.80.0");
    let prometheus = existing["prometheuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["namespace"] == ns)
        .unwrap_or_else(|| panic!("{existing:#}"));
    assert_eq!(prometheus["name"], "k8s");
    assert_eq!(
        prometheus["serviceMonitorSelector"]["matchLabels"]["release"],
        "kps"
    );
    assert_eq!(
        prometheus["ruleSelector"]["matchLabels"]["role"],
        "alert-rules"
    );
    assert_eq!(prometheus["ruleNamespaceSelector"], serde_json::json!({}));
}

#[test]
fn an_unreachable_server_or_rejected_credentials_stop_before_any_check() {
    let c = cluster();
    let (_d, kc) = c.kubeconfig_to(free_port());
    let out = run(automon().arg("preflight").arg("--kubeconfig").arg(&kc))
        .code(EXIT_UNREACHABLE)
        .stderr_has("cannot reach the API server");
    assert!(!out.stderr.contains("Preflight"), "{out:#?}");

    let token = c.admin_token();
    let (_d, kc) = c.kubeconfig_with(|text| text.replace(&token, "not-a-valid-token"));
    run(automon().arg("preflight").arg("--kubeconfig").arg(&kc))
        .code(EXIT_UNAUTHORIZED)
        .stderr_has("rejected the credentials");
}

/// How many reviews of each kind the log shows: (rules reviews, access reviews).
fn reviews(log: &std::path::Path) -> (usize, usize) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let count = |path: &str| {
        text.lines()
            .filter(|l| {
                l.split('?').next() == Some(&format!("POST /apis/authorization.k8s.io/v1/{path}"))
            })
            .count()
    };
    (
        count("selfsubjectrulesreviews"),
        count("selfsubjectaccessreviews"),
    )
}

/// Whether the rules review is complete (Node,RBAC: it is here) or not (a webhook authorizer;
/// injected by a proxy), preflight finds the same missing permissions for a user who may edit
/// the namespace and nothing else; complete, it asks access reviews only for cluster-scoped
/// permissions, incomplete, for every permission no rule grants.
#[test]
fn complete_or_incomplete_rules_reviews_give_the_same_answer() {
    let c = cluster();
    let ns = "automon-preflight-rules";
    let _ns = Cleanup::created(ns).waited();
    c.kubectl(&[
        "create",
        "rolebinding",
        "limited-edit",
        "-n",
        ns,
        "--clusterrole=edit",
        "--user=limited",
    ])
    .success();
    let preflight = |kubeconfig: &std::path::Path| {
        let out = run(automon().env("KUBECONFIG", kubeconfig).args([
            "preflight",
            "-n",
            ns,
            "-o",
            "json",
        ]))
        .code(EXIT_FORBIDDEN);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        v
    };
    let direct = preflight(&c.limited_kubeconfig);
    let missing = direct["missing"].as_array().unwrap();
    let checked = direct["permissionsChecked"].as_u64().unwrap() as usize;
    let cluster_wide = missing.iter().filter(|p| p["namespace"].is_null()).count();
    // `edit` grants some of what the stack needs in the namespace, and nothing cluster-wide.
    assert!(missing.len() < checked, "{direct:#}");
    assert!(missing.iter().any(|p| p["namespace"] == ns), "{direct:#}");
    assert!(
        !missing
            .iter()
            .any(|p| p["resource"] == "configmaps" && p["namespace"] == ns),
        "edit may write configmaps: {direct:#}"
    );

    let complete_dir = tempfile::tempdir().unwrap();
    let (_proxy, kubeconfig, log) =
        c.rules_review_proxy(complete_dir.path(), &c.limited_kubeconfig, &[]);
    assert_eq!(preflight(&kubeconfig)["missing"], direct["missing"]);
    assert_eq!(
        reviews(&log),
        (1, cluster_wide),
        "one rules review; cluster-wide access reviews"
    );

    let incomplete_dir = tempfile::tempdir().unwrap();
    let (_proxy, kubeconfig, log) = c.rules_review_proxy(
        incomplete_dir.path(),
        &c.limited_kubeconfig,
        &["--incomplete"],
    );
    assert_eq!(preflight(&kubeconfig)["missing"], direct["missing"]);
    assert_eq!(
        reviews(&log),
        (1, checked),
        "no rule to go by: an access review for every permission"
    );
}
