//! Nodes of a test's own: kwok-managed Node objects (Linux, Windows, with a label or a taint),
//! created Ready and deleted with the pods bound to them; and the lock the tests of one binary
//! take around the nodes they add.

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::{Value, json};

use super::{cluster, write_list};

/// A kwok-managed Linux/amd64 Node object, as `localcluster` makes its own; a test adds the
/// labels and taints its situation needs before [`KwokNodes::create`].
pub fn kwok_node(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "type": "kwok",
            },
        },
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux",
                "kubeletVersion": "fake", "kernelVersion": "fake", "osImage": "kwok"},
        },
    })
}

/// A kwok node with one more label.
pub fn labelled(name: &str, key: &str, value: &str) -> Value {
    let mut node = kwok_node(name);
    node["metadata"]["labels"][key] = json!(value);
    node
}

/// A kwok node with one taint.
pub fn tainted(name: &str, key: &str, value: &str, effect: &str) -> Value {
    let mut node = kwok_node(name);
    node["spec"] = json!({"taints": [{"key": key, "value": value, "effect": effect}]});
    node
}

/// A kwok node that says it runs Windows, as a Windows kubelet labels and reports it.
pub fn windows_node(name: &str) -> Value {
    let mut node = labelled(name, "kubernetes.io/os", "windows");
    node["status"]["nodeInfo"]["operatingSystem"] = json!("windows");
    node
}

/// A test's own kwok nodes (other tests share the cluster and its `automon-node-N` nodes):
/// created Ready, deleted when the guard drops, whatever the test did.
pub struct KwokNodes(pub Vec<String>);

impl KwokNodes {
    /// Creates the nodes (after deleting any an earlier run left under the same names) and
    /// waits until kwok has made them Ready.
    pub fn create(nodes: Vec<Value>) -> KwokNodes {
        let names: Vec<String> = nodes
            .iter()
            .map(|n| {
                n["metadata"]["name"]
                    .as_str()
                    .expect("a node name")
                    .to_string()
            })
            .collect();
        let guard = KwokNodes(names);
        let c = cluster();
        let named = guard.names();
        let existing = c.kubectl(&["get", "nodes", "-o", "name"]).stdout;
        let leftovers: Vec<String> = existing
            .lines()
            .filter_map(|l| l.strip_prefix("node/"))
            .filter(|n| named.contains(n))
            .map(str::to_string)
            .collect();
        if !leftovers.is_empty() {
            drop(KwokNodes(leftovers));
        }
        let (_dir, file) = write_list("nodes.json", &nodes);
        // The status is kwok's to write; the schema wants a kubelet's nodeInfo in it.
        c.kubectl(&["create", "--validate=false", "-f", file.to_str().unwrap()])
            .success();
        let nodes: Vec<String> = named.iter().map(|n| format!("node/{n}")).collect();
        let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
        c.kubectl(
            &[
                &["wait", "--for=condition=Ready", "--timeout=60s"],
                &nodes[..],
            ]
            .concat(),
        )
        .success();
        guard
    }

    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(String::as_str).collect()
    }
}

impl Drop for KwokNodes {
    /// Deletes the nodes, then the pods bound to them: with the node gone, nothing finishes
    /// their graceful deletion until the pod garbage collector's quarantine (40s and more)
    /// ends, and every namespace with a DaemonSet pod on them would be stuck terminating.
    fn drop(&mut self) {
        let c = cluster();
        let names = self.names();
        c.kubectl(
            &[
                &["delete", "node", "--ignore-not-found", "--wait=false"],
                &names[..],
            ]
            .concat(),
        );
        let pods = c.kubectl(&[
            "get",
            "pods",
            "--all-namespaces",
            "-o",
            r#"jsonpath={range .items[*]}{.metadata.namespace} {.metadata.name} {.spec.nodeName}{"\n"}{end}"#,
        ]);
        let mut by_namespace: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for line in pods.stdout.lines() {
            if let [ns, pod, node] = line.split_whitespace().collect::<Vec<_>>()[..]
                && names.contains(&node)
            {
                by_namespace.entry(ns).or_default().push(pod);
            }
        }
        std::thread::scope(|scope| {
            for (ns, pods) in by_namespace {
                let args = [
                    &[
                        "delete",
                        "pods",
                        "-n",
                        ns,
                        "--force",
                        "--grace-period=0",
                        "--wait=false",
                    ],
                    &pods[..],
                ]
                .concat();
                scope.spawn(move || c.kubectl(&args));
            }
        });
    }
}

/// A node a test adds counts in every stack's verdict, and a test may count every node: the
/// tests of a binary that add nodes beside each other share this lock; one that needs the
/// nodes to stay as they are, or changes what every test sees, holds it alone.
static NODES: RwLock<()> = RwLock::new(());

/// The nodes lock, shared: this test adds nodes of its own beside other tests'.
pub fn nodes_shared() -> RwLockReadGuard<'static, ()> {
    NODES.read().unwrap_or_else(PoisonError::into_inner)
}

/// The nodes lock, alone: no other test of this binary adds or takes away a node meanwhile.
pub fn nodes_alone() -> RwLockWriteGuard<'static, ()> {
    NODES.write().unwrap_or_else(PoisonError::into_inner)
}
