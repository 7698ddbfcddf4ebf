//! Whether every workload of the stack is ready: its Deployments, DaemonSets, and the
//! Prometheus/Alertmanager objects whose StatefulSets the operator runs (pure). `status` reports
//! it; `enable --wait` waits for it.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};

use crate::model::{Object, kind};

/// One workload and how many of its replicas (or nodes) are ready.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Workload {
    pub kind: String,
    pub name: String,
    pub ready: i64,
    pub desired: i64,
    /// The rollout has caught up with the latest spec (observedGeneration, updated replicas).
    pub current: bool,
}

impl Workload {
    pub fn is_ready(&self) -> bool {
        self.current && self.ready >= self.desired
    }
}

/// The workloads a rendered stack waits for: its Deployments, DaemonSets, Prometheus and
/// Alertmanager, by kind and name.
pub fn expected(objects: &[Object]) -> Vec<(String, String)> {
    objects
        .iter()
        .filter(|o| {
            matches!(
                kind(o),
                "Deployment" | "DaemonSet" | "Prometheus" | "Alertmanager"
            )
        })
        .map(|o| {
            (
                kind(o).to_string(),
                o.metadata.name.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn int(v: &serde_json::Value, path: &[&str]) -> i64 {
    path.iter().fold(v, |v, p| &v[p]).as_i64().unwrap_or(0)
}

/// The state of every expected workload from listed objects (pure); one that does not exist
/// counts as 0 ready.
pub fn assess(
    expected: &[(String, String)],
    deployments: &[Deployment],
    daemonsets: &[DaemonSet],
    custom: &[Object],
) -> Vec<Workload> {
    let mut out = Vec::new();
    for (k, name) in expected {
        let w = match k.as_str() {
            "Deployment" => deployments
                .iter()
                .find(|d| d.metadata.name.as_ref() == Some(name))
                .map(|d| {
                    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1) as i64;
                    let st = d.status.clone().unwrap_or_default();
                    Workload {
                        kind: k.clone(),
                        name: name.clone(),
                        ready: st.ready_replicas.unwrap_or(0) as i64,
                        desired,
                        current: st.observed_generation >= d.metadata.generation
                            && st.updated_replicas.unwrap_or(0) as i64 >= desired,
                    }
                }),
            "DaemonSet" => daemonsets
                .iter()
                .find(|d| d.metadata.name.as_ref() == Some(name))
                .map(|d| {
                    let st = d.status.clone().unwrap_or_default();
                    let desired = st.desired_number_scheduled as i64;
                    Workload {
                        kind: k.clone(),
                        name: name.clone(),
                        ready: st.number_ready as i64,
                        desired,
                        current: st.observed_generation >= d.metadata.generation
                            && st.updated_number_scheduled.unwrap_or(0) as i64 >= desired,
                    }
                }),
            _ => custom
                .iter()
                .find(|o| kind(o) == k && o.metadata.name.as_ref() == Some(name))
                .map(|o| {
                    // The operator counts every shard's pods in the status.
                    let desired = int(&o.data, &["spec", "replicas"]).max(1)
                        * int(&o.data, &["spec", "shards"]).max(1);
                    let available = o.data["status"]["conditions"].as_array().is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c["type"] == "Available" && c["status"] == "True")
                    });
                    Workload {
                        kind: k.clone(),
                        name: name.clone(),
                        ready: int(&o.data, &["status", "availableReplicas"]),
                        desired,
                        current: available,
                    }
                }),
        };
        out.push(w.unwrap_or(Workload {
            kind: k.clone(),
            name: name.clone(),
            ready: 0,
            desired: 1,
            current: false,
        }));
    }
    out
}
