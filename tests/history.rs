//! Revisions on the local cluster: every `enable` that changes something records one; `history`
//! lists them; `rollback` restores a revision's exact objects (byte-equal after the fields the
//! server writes), also across a plugin version that rendered other images; a damaged or
//! missing revision stops with a clear error before anything is applied.

mod common;

use std::{collections::BTreeMap, io::Read as _, io::Write as _};

use base64::Engine as _;
use common::*;
use serde_json::Value;

const NS: &str = "automon-history";

const NAMESPACED: &str = "deployments,daemonsets,services,serviceaccounts,configmaps,secrets,\
    prometheuses,alertmanagers,servicemonitors,prometheusrules,networkpolicies,\
    poddisruptionbudgets,roles,rolebindings";

/// Every object of the stack as the cluster holds it, without what the server and the
/// controllers write (metadata they keep, status, the Deployment controller's revision).
fn live() -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let selector = "app.kubernetes.io/part-of=automon";
    for (kinds, ns) in [
        (NAMESPACED, Some(NS)),
        ("clusterroles,clusterrolebindings", None),
    ] {
        let mut args = vec!["get", kinds, "-l", selector];
        if let Some(ns) = ns {
            args.extend(["-n", ns]);
        }
        let list = get_json(&args);
        for mut o in list["items"].as_array().unwrap().clone() {
            let name = o["metadata"]["name"].as_str().unwrap().to_string();
            if ns.is_none() && !name.starts_with(&format!("{NS}-")) {
                continue;
            }
            // Revisions and the generated Grafana password are not objects of a revision.
            if o["kind"] == "Secret" {
                continue;
            }
            let m = o["metadata"].as_object_mut().unwrap();
            for k in [
                "managedFields",
                "resourceVersion",
                "generation",
                "uid",
                "creationTimestamp",
            ] {
                m.remove(k);
            }
            if let Some(a) = m.get_mut("annotations").and_then(Value::as_object_mut) {
                a.remove("deployment.kubernetes.io/revision");
                a.remove("deprecated.daemonset.template.generation");
            }
            o.as_object_mut().unwrap().remove("status");
            out.insert(format!("{}/{name}", o["kind"].as_str().unwrap()), o);
        }
    }
    out
}

fn image(kind: &str, name: &str) -> String {
    cluster()
        .kubectl(&[
            "get",
            kind,
            name,
            "-n",
            NS,
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ])
        .success()
        .stdout
}

/// The objects of a revision Secret, decoded as automon stores them (gzip'd JSON).
fn revision_objects(n: u32) -> Value {
    let secret = get_json(&["get", "secret", "-n", NS, &format!("automon-revision-{n}")]);
    let gz = base64::engine::general_purpose::STANDARD
        .decode(secret["data"]["revision.json.gz"].as_str().unwrap())
        .unwrap();
    let mut json = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut json)
        .unwrap();
    serde_json::from_str(&json).unwrap()
}

/// Writes revision `n` by hand, as another plugin version (or damage) would have left it.
fn write_revision(n: u32, payload: &[u8], plugin: &str) {
    let c = cluster();
    let (_d, file) = write_temp("revision.json.gz", "");
    std::fs::write(&file, payload).unwrap();
    let name = format!("automon-revision-{n}");
    c.kubectl(&[
        "create",
        "secret",
        "generic",
        &name,
        "-n",
        NS,
        "--type=automon.io/revision.v1",
        &format!("--from-file=revision.json.gz={}", file.display()),
    ])
    .success();
    c.kubectl(&[
        "label",
        "secret",
        &name,
        "-n",
        NS,
        &format!("automon.io/revision={n}"),
    ])
    .success();
    c.kubectl(&[
        "annotate",
        "secret",
        &name,
        "-n",
        NS,
        &format!("automon.io/plugin-version={plugin}"),
        "automon.io/change=install",
        "automon.io/by=someone-else",
        "automon.io/updated=2026-01-01T00:00:00Z",
    ])
    .success();
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

#[test]
fn revisions_are_recorded_listed_and_rolled_back_exactly() {
    let _cleanup = Cleanup::fresh(NS);

    // Install: revision 1. A second enable changes nothing and records nothing.
    enable(NS, &[])
        .success()
        .stdout_has("Revision  1 recorded (install; set nodeExporter.port=");
    let first = live();
    assert!(
        first.contains_key("Prometheus/automon"),
        "{:?}",
        first.keys()
    );
    let again = enable(NS, &[]).success();
    assert_lacks(&again.stdout, "Revision");

    // A change: revision 2, listed with who and what.
    enable(NS, &["--set", "prometheus.retention=30d"])
        .success()
        .stdout_has(", prometheus.retention=30d)");
    assert_ne!(live(), first);
    let table = run(automon_admin().args(["history", "-n", NS])).success();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(
        lines[0].starts_with("REVISION   UPDATED") && lines[0].ends_with("CHANGE"),
        "{}",
        table.stdout
    );
    assert!(lines[1].contains("   install; set "), "{}", table.stdout);
    assert!(
        lines[2].ends_with(", prometheus.retention=30d"),
        "{}",
        table.stdout
    );
    let h = history_json(NS);
    assert_eq!(h.len(), 2);
    // The user the API server authenticated (the test kubeconfig's admin).
    assert_eq!(h[1]["by"], "admin", "{h:?}");
    assert_eq!(
        h[1]["plugin"],
        concat!("v", env!("CARGO_PKG_VERSION")),
        "{h:?}"
    );

    // Previewed: diff --revision and a dry run change nothing.
    run(automon_admin().args(["diff", "-n", NS, "--revision", "1"]))
        .code(1)
        .stdout_has("-  retention: 30d\n+  retention: 15d\n");
    run(automon_admin().args(["rollback", "1", "-n", NS, "--dry-run"]))
        .success()
        .stdout_has("prometheus.monitoring.coreos.com/automon configured (dry run)");
    assert_eq!(history_json(NS).len(), 2);

    // Rollback to 1: exactly revision 1's objects, recorded as revision 3.
    run(automon_admin().args(["rollback", "1", "-n", NS]))
        .success()
        .stdout_has("Revision  3 recorded (rollback to 1)");
    let rolled = live();
    assert_eq!(
        rolled.keys().collect::<Vec<_>>(),
        first.keys().collect::<Vec<_>>()
    );
    for (k, v) in &first {
        assert_eq!(&rolled[k], v, "{k} differs from revision 1");
    }
    // Nothing is left to change for the configuration revision 1 had.
    run(automon_admin().args(["diff", "-n", NS])).success();

    // A revision recorded by another plugin version, with other images: rollback applies
    // those, not what this binary would render.
    let mut old = revision_objects(1);
    for o in old["objects"].as_array_mut().unwrap() {
        if o["kind"] == "DaemonSet" || o["kind"] == "Deployment" {
            for c in o["spec"]["template"]["spec"]["containers"]
                .as_array_mut()
                .unwrap()
            {
                let image = c["image"].as_str().unwrap();
                let repo = image.rsplit_once(':').map_or(image, |(r, _)| r);
                c["image"] = format!("{repo}:v0.0.1-old").into();
            }
        }
    }
    write_revision(4, &gzip(old.to_string().as_bytes()), "v0.0.9");
    run(automon_admin().args(["rollback", "4", "-n", NS]))
        .success()
        .stdout_has("plugin v0.0.9, by someone-else")
        .stdout_has("daemonset.apps/node-exporter configured")
        .stdout_has("Revision  5 recorded (rollback to 4)");
    assert!(
        image("daemonset", "node-exporter").ends_with(":v0.0.1-old"),
        "{}",
        image("daemonset", "node-exporter")
    );
    assert!(image("deployment", "grafana").ends_with(":v0.0.1-old"));
    // And back to what this binary renders with a plain rollback to 1.
    run(automon_admin().args(["rollback", "1", "-n", NS])).success();
    assert!(!image("daemonset", "node-exporter").ends_with(":v0.0.1-old"));

    // Damaged and missing revisions: a clear error, nothing applied, nothing recorded.
    let before = live();
    let count = history_json(NS).len();
    write_revision(7, b"this is not gzip", "v0.1.0");
    run(automon_admin().args(["rollback", "7", "-n", NS]))
        .code(1)
        .stderr_has("revision 7 (Secret automon-history/automon-revision-7) cannot be read: its data is not gzip")
        .stderr_has("nothing was applied");
    write_revision(8, &gzip(br#"{"objects": []}"#), "v0.1.0");
    run(automon_admin().args(["rollback", "8", "-n", NS]))
        .code(1)
        .stderr_has("it has no ApplySet parent among its objects");
    run(automon_admin().args(["rollback", "99", "-n", NS]))
        .code(1)
        .stderr_has("revision 99 does not exist in namespace \"automon-history\"");
    assert_eq!(live(), before);
    assert_eq!(
        history_json(NS).len(),
        count + 2,
        "only the two written by hand"
    );

    // What is as the last run left it is not sent again; what was written since is. Here the
    // datasources ConfigMap is changed under automon's own field manager (as a stale copy of
    // the plugin would): the next enable sees the new resourceVersion and puts it back.
    let mut datasources = get_json(&["get", "configmap", "grafana-datasources", "-n", NS]);
    datasources["metadata"]
        .as_object_mut()
        .unwrap()
        .retain(|k, _| k == "name" || k == "namespace" || k == "labels");
    datasources["data"] = serde_json::json!({"datasources.yaml": "drifted"});
    let (_d, drifted) = write_temp("drifted.json", &datasources.to_string());
    cluster()
        .kubectl(&[
            "apply",
            "--server-side",
            "--field-manager=kubectl-automon",
            "--force-conflicts",
            "-f",
            drifted.to_str().unwrap(),
        ])
        .success();
    enable(NS, &[])
        .success()
        .stdout_has("configmap/grafana-datasources configured");
    let restored = get_json(&["get", "configmap", "grafana-datasources", "-n", NS]);
    assert_ne!(restored["data"]["datasources.yaml"], "drifted");
    assert_eq!(live(), before, "restored exactly");

    // --history-max keeps the newest.
    enable(
        NS,
        &["--set", "prometheus.retention=20d", "--history-max", "3"],
    )
    .success();
    let h = history_json(NS);
    assert_eq!(h.len(), 3, "{h:?}");
    assert!(
        h[2]["change"]
            .as_str()
            .unwrap()
            .ends_with(", prometheus.retention=20d"),
        "{h:?}"
    );

    // disable takes the history with the stack.
    run(automon_admin().args(["disable", "-n", NS, "--yes"])).success();
    let not_installed = format!(
        "automon is not installed in namespace {NS}; install it with `kubectl automon enable -n {NS}`"
    );
    run(automon_admin().args(["history", "-n", NS]))
        .code(9)
        .stderr_has(&not_installed);
    run(automon_admin().args(["rollback", "-n", NS]))
        .code(9)
        .stderr_has(&not_installed);
    run(automon_admin().args(["diff", "-n", NS, "--revision", "1"]))
        .code(9)
        .stderr_has(&not_installed);
}
