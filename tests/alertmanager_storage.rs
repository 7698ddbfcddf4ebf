//! Alertmanager's storage on a real node (tests/cluster/real-nodes: a kubelet with containerd and
//! runc): with `alertmanager.storage.size`, a silence made for a node's maintenance outlives the
//! Alertmanager pod. The claim binds to a hostPath volume of the test's own StorageClass, the
//! pod is deleted, the StatefulSet's next pod mounts the same claim, and the silence is still
//! there, as `kubectl automon silence --list` reads it through the API server.

mod common;

use common::*;
use serde_json::Value;

const NS: &str = "automon-am-data";
const CLASS: &str = "automon-am-data";

/// The real cluster's kubectl, succeeding.
fn kubectl_real(args: &[&str]) -> Run {
    real_cluster().kubectl(args).success()
}

/// The test's StorageClass (no provisioner, bound on first use) and one hostPath volume of it,
/// world-writable (Alertmanager runs as nobody), removed with the namespace at the end.
struct Storage {
    dir: std::path::PathBuf,
}

impl Storage {
    fn new() -> Storage {
        let dir = std::path::PathBuf::from(format!("/tmp/{CLASS}-0"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let manifest = format!(
            "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {{name: {CLASS}}}\nprovisioner: kubernetes.io/no-provisioner\nvolumeBindingMode: WaitForFirstConsumer\n---\napiVersion: v1\nkind: PersistentVolume\nmetadata: {{name: {CLASS}-0}}\nspec:\n  storageClassName: {CLASS}\n  capacity: {{storage: 1Gi}}\n  accessModes: [ReadWriteOnce]\n  persistentVolumeReclaimPolicy: Delete\n  hostPath: {{path: {}, type: Directory}}\n",
            dir.display()
        );
        real_cluster()
            .kubectl_with_input(&["apply", "-f", "-"], &manifest)
            .success();
        Storage { dir }
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        let c = real_cluster();
        // As a user removes it, the claims too; then whatever a failed run left.
        run(c.automon().args([
            "disable",
            "-n",
            NS,
            "--yes",
            "--delete-data",
            "--timeout",
            "2m",
        ]));
        c.delete_storage(NS, CLASS);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn silences() -> Vec<Value> {
    let out = run(real_cluster()
        .automon()
        .args(["silence", "--list", "-n", NS, "-o", "json"]))
    .success();
    serde_json::from_str(&out.stdout).unwrap_or_default()
}

#[test]
fn a_silence_outlives_the_alertmanager_pod_on_its_claim() {
    let c = real_cluster();
    let _storage = Storage::new();
    let port = port_for(NS);
    run(c
        .automon()
        .args(["enable", "-n", NS, "--crds-from"])
        .arg(c.crds_dir())
        .args(&port)
        .args([
            "--set",
            "grafana.enabled=false",
            "--set",
            "alertmanager.storage.size=1Gi",
            "--set",
            &format!("alertmanager.storage.storageClass={CLASS}"),
            "--wait",
            "--timeout",
            "5m",
        ]))
    .success();
    let claim = c.get_json(&[
        "get",
        "pvc",
        "-n",
        NS,
        "alertmanager-automon-db-alertmanager-automon-0",
    ]);
    assert_eq!(claim["status"]["phase"], "Bound", "{claim:#}");
    assert_eq!(claim["spec"]["volumeName"], format!("{CLASS}-0"));

    let node = kubectl_real(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"]).stdout;
    let made = run(c.automon().args([
        "silence",
        &node,
        "-n",
        NS,
        "--for",
        "1h",
        "--comment",
        "kernel upgrade",
    ]))
    .success();
    let id = made
        .stdout
        .split("(silence ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no silence id in {made:#?}"))
        .to_string();
    assert!(silences().iter().any(|s| s["id"] == id.as_str()));

    // The pod goes; the StatefulSet's next one mounts the same claim.
    let before =
        c.get_json(&["get", "pod", "-n", NS, "alertmanager-automon-0"])["metadata"]["uid"].clone();
    kubectl_real(&[
        "delete",
        "pod",
        "-n",
        NS,
        "alertmanager-automon-0",
        "--wait=true",
    ]);
    until("the next Alertmanager pod ready", || {
        let pod = c.get_json(&[
            "get",
            "pod",
            "-n",
            NS,
            "alertmanager-automon-0",
            "--ignore-not-found",
        ]);
        let ready = pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        match pod["metadata"]["uid"] != before && ready {
            true => Ok(()),
            false => Err(format!("{pod:#}")),
        }
    });
    // Asked until Alertmanager answers again (its Service follows the pod's readiness).
    let kept = poll(
        60,
        || silences().into_iter().find(|s| s["id"] == id.as_str()),
        Option::is_some,
    );
    let kept = kept.unwrap_or_else(|| panic!("silence {id} lost with the pod"));
    assert_eq!(kept["comment"], "kernel upgrade", "{kept:#}");
}
