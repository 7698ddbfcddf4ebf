//! `render` as a user runs it: offline, deterministic, every object labelled and in an ApplySet,
//! bad configuration refused with the key and line named, and the whole stack accepted by the
//! real API server (server-side dry run, strict field validation) with the operator's CRDs.

mod common;

use std::collections::BTreeMap;

use common::*;

#[test]
fn render_needs_no_cluster_and_is_deterministic() {
    // No kubeconfig at all in this environment: render must not try to reach a cluster.
    let a = run(automon().arg("render")).success();
    let b = run(automon().arg("render")).success();
    assert_eq!(a.stdout, b.stdout, "same input, same bytes");
    assert!(
        a.stdout
            .starts_with("---\napiVersion: v1\nkind: Namespace\n"),
        "{}",
        &a.stdout[..200]
    );
}

#[test]
fn every_object_is_labelled_and_in_the_applyset() {
    let items = rendered_objects(&[]);
    let parent = items
        .iter()
        .find(|o| o["metadata"]["labels"]["applyset.kubernetes.io/id"].is_string())
        .expect("an ApplySet parent");
    assert_eq!(kind_name(parent), "ConfigMap/automon");
    let id = parent["metadata"]["labels"]["applyset.kubernetes.io/id"]
        .as_str()
        .unwrap();
    let kinds = parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"]
        .as_str()
        .unwrap();
    for o in &items {
        let labels = &o["metadata"]["labels"];
        assert_eq!(
            labels["app.kubernetes.io/managed-by"],
            "kubectl-automon",
            "{}",
            kind_name(o)
        );
        assert_eq!(
            labels["app.kubernetes.io/part-of"],
            "automon",
            "{}",
            kind_name(o)
        );
        if o == parent {
            continue;
        }
        assert_eq!(
            labels["applyset.kubernetes.io/part-of"],
            id,
            "{}",
            kind_name(o)
        );
        let api = o["apiVersion"].as_str().unwrap();
        let gk = match api.rsplit_once('/') {
            Some((group, _)) => format!("{}.{group}", o["kind"].as_str().unwrap()),
            None => o["kind"].as_str().unwrap().to_string(),
        };
        assert!(
            kinds.split(',').any(|k| k == gk),
            "{gk} missing from {kinds}"
        );
        if o["kind"] != "Namespace" && !o["kind"].as_str().unwrap().starts_with("Cluster") {
            assert_eq!(o["metadata"]["namespace"], "automon", "{}", kind_name(o));
        }
    }
    // The parent carries the values given (none but the namespace), never the defaults.
    let stored = parent["data"]["config.yaml"].as_str().unwrap();
    assert_eq!(stored, "namespace: automon\n");
}

#[test]
fn namespace_flag_and_set_reach_the_objects() {
    let items = rendered_objects(&["-n", "monitoring", "--set", "prometheus.retention=30d"]);
    for o in &items {
        if let Some(ns) = o["metadata"]["namespace"].as_str() {
            assert_eq!(ns, "monitoring", "{}", kind_name(o));
        }
    }
    let ns: Vec<_> = items.iter().filter(|o| o["kind"] == "Namespace").collect();
    assert_eq!(ns.len(), 1);
    assert_eq!(ns[0]["metadata"]["name"], "monitoring");
    // The parent stores what was given, keys sorted, and no default.
    let parent = items
        .iter()
        .find(|o| kind_name(o) == "ConfigMap/automon")
        .unwrap();
    assert_eq!(
        parent["data"]["config.yaml"],
        "namespace: monitoring\nprometheus:\n  retention: 30d\n"
    );
}

#[test]
fn bad_configuration_names_the_key_and_line_and_prints_nothing() {
    let (_d, file) = write_temp(
        "automon.yaml",
        "prometheus:\n  retention: 30d\nalerts:\n  highCpu:\n    thresholdPercent: 180\n    for: 5m\n    severity: warning\n",
    );
    let out = run(automon().arg("render").arg("-f").arg(&file)).code(2);
    assert!(out.stdout.is_empty(), "nothing rendered: {}", out.stdout);
    assert_has(&out.stderr, "automon.yaml line 5");
    assert_has(&out.stderr, "alerts.highCpu.thresholdPercent");
    assert_has(&out.stderr, "180 is out of range");

    let (_d, file) = write_temp("automon.yaml", "grafana:\n  enabled: true\n  theme: dark\n");
    run(automon().arg("render").arg("-f").arg(&file))
        .code(2)
        .stderr_has("line 3")
        .stderr_has("grafana.theme")
        .stderr_has("unknown field");

    run(automon().args(["render", "--set", "alerts.nodeDown.for=-5m"]))
        .code(2)
        .stderr_has("--set alerts.nodeDown.for=-5m")
        .stderr_has("negative");
    run(automon().args(["render", "--set", "prometheus.replicas=two"]))
        .code(2)
        .stderr_has("prometheus.replicas");
    run(automon().args(["render", "-f", "/nonexistent/automon.yaml"]))
        .code(2)
        .stderr_has("/nonexistent/automon.yaml");
}

#[test]
fn rendered_stack_passes_strict_server_side_dry_run() {
    let c = cluster();
    c.ensure_crds();

    // A namespace of its own so the dry run meets no other test's objects.
    let ns = "automon-dryrun";
    let items = rendered_objects(&["-n", ns]);
    let namespace = items.iter().find(|o| o["kind"] == "Namespace").unwrap();
    let (_d, nsfile) = write_temp("ns.json", &namespace.to_string());
    c.server_side_apply(&nsfile, &[]).success();

    let rest: Vec<_> = items
        .iter()
        .filter(|o| o["kind"] != "Namespace")
        .cloned()
        .collect();
    let (_d, file) = write_list("stack.json", &rest);
    let out = c.server_dry_run(&file);
    assert_eq!(
        out.code, 0,
        "the API server rejected part of the stack:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.is_empty() || !out.stderr.contains("Warning"),
        "warnings:\n{}",
        out.stderr
    );
    let accepted = out
        .stdout
        .lines()
        .filter(|l| l.contains("(server dry run)"))
        .count();
    assert_eq!(accepted, rest.len(), "{}", out.stdout);
    c.kubectl(&["delete", "namespace", ns, "--wait=false"]);
}

/// `render`'s YAML documents, each with its `kind-name` key, in order.
fn rendered_docs(args: &[&str]) -> Vec<(String, String)> {
    let out = run(automon().arg("render").args(args)).success();
    out.stdout
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|doc| {
            let name = doc
                .lines()
                .skip_while(|l| *l != "metadata:")
                .find_map(|l| l.strip_prefix("  name: "))
                .unwrap();
            let key = format!("{}-{name}", yaml_value(doc, "kind").to_lowercase());
            (key, doc.to_string())
        })
        .collect()
}

#[test]
fn default_render_snapshot() {
    // One snapshot per object, named kind-name, so a reviewer reads each object on its own.
    let mut seen = BTreeMap::new();
    for (key, doc) in rendered_docs(&[]) {
        assert!(seen.insert(key.clone(), ()).is_none(), "{key} twice");
        insta::assert_snapshot!(key, doc);
    }
}

/// Remote write to Mimir (basic auth from a Secret, a tenant header, queue tuning) beside the
/// Thanos sidecar, two replicas: the objects that differ from the default render, one snapshot
/// each (`remote_write__<kind>-<name>`), for a reviewer to read on their own.
#[test]
fn remote_write_and_thanos_render_snapshot() {
    let (_d, file) = write_temp(
        "automon.yaml",
        r#"prometheus:
  replicas: 2
  externalLabels:
    cluster: prod-eu1
  remoteWrite:
  - url: https://mimir.example.com
    preset: mimir
    basicAuth:
      secret: mimir-remote-write
      usernameKey: username
      passwordKey: password
    headers:
      X-Scope-OrgID: platform
    queue:
      capacity: 10000
      maxShards: 50
      maxSamplesPerSend: 2000
      batchSendDeadline: 5s
  thanos:
    objectStorageConfig:
      secret: thanos-objstore
      key: objstore.yml
"#,
    );
    let before: BTreeMap<_, _> = rendered_docs(&[]).into_iter().collect();
    let after: BTreeMap<_, _> = rendered_docs(&["-f", file.to_str().unwrap()])
        .into_iter()
        .collect();
    let mut changed = Vec::new();
    for (key, doc) in &after {
        if before.get(key) == Some(doc) {
            continue;
        }
        let name = format!("remote_write__{key}");
        insta::with_settings!({prepend_module_to_snapshot => false, omit_expression => true}, {
            insta::assert_snapshot!(name.clone(), doc);
        });
        changed.push(name);
    }
    assert_eq!(
        changed,
        [
            "remote_write__configmap-automon",
            // The cluster label now exists: the dashboards show their cluster variable.
            "remote_write__configmap-grafana-dashboard-alertmanager",
            "remote_write__configmap-grafana-dashboard-k8s-apiserver",
            "remote_write__configmap-grafana-dashboard-k8s-compute-cluster",
            "remote_write__configmap-grafana-dashboard-k8s-compute-namespace",
            "remote_write__configmap-grafana-dashboard-k8s-compute-pod",
            "remote_write__configmap-grafana-dashboard-k8s-compute-workload",
            "remote_write__configmap-grafana-dashboard-k8s-kubelet",
            "remote_write__configmap-grafana-dashboard-k8s-persistent-volumes",
            "remote_write__configmap-grafana-dashboard-prometheus",
            "remote_write__networkpolicy-prometheus",
            "remote_write__poddisruptionbudget-prometheus",
            "remote_write__prometheus-automon",
            "remote_write__prometheusrule-stack-alerts",
            "remote_write__service-prometheus-thanos",
        ]
    );
}

/// `render --nodes N`: what sizing changes from the default render, one snapshot per changed
/// object, for 3, 1,000 and 5,000 nodes. Up to 50 nodes nothing changes; past them requests
/// grow, and past a shard's series budget the stack shards with a ruler beside the shards.
#[test]
fn sized_render_snapshots() {
    // Past 50 nodes requests grow; past a shard's series budget the stack shards with a ruler
    // beside the shards (its Prometheus, federation ServiceMonitor, NetworkPolicy and the
    // cross-target rules, which leave automon-coverage, resource-alerts and kubernetes-alerts); at
    // 5,000 the operator grows too. Thanos Query reads the shards and the ruler through their
    // sidecars (headless Services, the StoreAPI let in), and Grafana asks it.
    const SHARDED: &[&str] = &[
        "configmap-grafana-datasources",
        "deployment-grafana",
        "deployment-kube-state-metrics",
        "deployment-thanos-query",
        "networkpolicy-grafana",
        "networkpolicy-prometheus",
        "networkpolicy-prometheus-ruler",
        "networkpolicy-thanos-query",
        "prometheus-automon",
        "prometheus-automon-ruler",
        "prometheusrule-automon-coverage-cluster",
        "prometheusrule-kubernetes-alerts",
        "prometheusrule-kubernetes-alerts-cluster",
        "prometheusrule-resource-alerts",
        "prometheusrule-resource-alerts-cluster",
        "service-prometheus-ruler-thanos",
        "service-prometheus-thanos",
        "service-thanos-query",
        "serviceaccount-thanos-query",
        "servicemonitor-prometheus-federate",
    ];
    let before: BTreeMap<_, _> = rendered_docs(&[]).into_iter().collect();
    for nodes in ["3", "1000", "5000"] {
        let (mut want_changed, want_removed): (Vec<&str>, &[&str]) = match nodes {
            "3" => (Vec::new(), &[]),
            _ => (SHARDED.to_vec(), &["prometheusrule-automon-coverage"]),
        };
        if nodes == "5000" {
            want_changed.push("deployment-prometheus-operator");
            want_changed.sort();
        }
        let after: BTreeMap<_, _> = rendered_docs(&["--nodes", nodes]).into_iter().collect();
        let mut changed = Vec::new();
        for (key, doc) in &after {
            // The parent lists its members: it changes with them, and says nothing of sizes.
            if before.get(key) == Some(doc) || key == "configmap-automon" {
                continue;
            }
            insta::with_settings!({prepend_module_to_snapshot => false, omit_expression => true}, {
                insta::assert_snapshot!(format!("sized_{nodes}__{key}"), doc);
            });
            changed.push(key.as_str());
        }
        let removed: Vec<&str> = before
            .keys()
            .filter(|k| !after.contains_key(*k))
            .map(String::as_str)
            .collect();
        assert_eq!(changed, want_changed, "{nodes} nodes");
        assert_eq!(removed, want_removed, "{nodes} nodes");
    }
}
