//! Nodes and pods as automon reads them: only what the assessment looks at. A real Node carries
//! its image list (`status.images`, often hundreds of names), `managedFields`, addresses, daemon
//! endpoints and annotations; a real Pod its whole spec (volumes, containers, probes) and
//! `managedFields`. At 5,000 nodes that is hundreds of megabytes nobody reads. These types are
//! read straight from the API server's JSON (unknown fields skipped while parsing, never held),
//! and kube-derive gives them Node's and Pod's API identity, so lists, watches and reflectors
//! work on them as on the full types.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{Affinity, Node, Pod, Taint},
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{ObjectMeta, Time},
    },
};
use kube::Resource;
use serde::{Deserialize, Deserializer};

pub const OS_LABEL: &str = "kubernetes.io/os";
pub const ARCH_LABEL: &str = "kubernetes.io/arch";

/// A Node with labels, taints, the Ready condition, OS/architecture and extended resources.
#[derive(Resource, Deserialize, Clone, Debug, Default, PartialEq)]
#[resource(inherit = "Node")]
pub struct SlimNode {
    #[serde(deserialize_with = "slim_meta")]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "null_default")]
    pub spec: SlimNodeSpec,
    #[serde(default, deserialize_with = "null_default")]
    pub status: SlimNodeStatus,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SlimNodeSpec {
    #[serde(default, deserialize_with = "null_default")]
    pub taints: Vec<Taint>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SlimNodeStatus {
    /// The Ready condition's status (`True`, `False`, `Unknown`); the others are not kept.
    #[serde(default, rename = "conditions", deserialize_with = "ready_condition")]
    pub ready: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub node_info: SlimNodeInfo,
    /// Extended resources only (`nvidia.com/gpu`, ...): names with a domain.
    #[serde(default, deserialize_with = "extended_resources")]
    pub allocatable: BTreeMap<String, Quantity>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SlimNodeInfo {
    #[serde(default)]
    pub operating_system: String,
    #[serde(default)]
    pub architecture: String,
}

impl SlimNode {
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.metadata.labels.as_ref().unwrap_or(&EMPTY)
    }

    /// The OS label, else what the kubelet reported.
    pub fn os(&self) -> &str {
        self.labels()
            .get(OS_LABEL)
            .map(String::as_str)
            .unwrap_or(&self.status.node_info.operating_system)
    }

    pub fn arch(&self) -> &str {
        self.labels()
            .get(ARCH_LABEL)
            .map(String::as_str)
            .unwrap_or(&self.status.node_info.architecture)
    }

    /// `True`, `False` or `Unknown` (no condition yet).
    pub fn ready(&self) -> &str {
        self.status.ready.as_deref().unwrap_or("Unknown")
    }

    pub fn created(&self) -> Option<&Time> {
        self.metadata.creation_timestamp.as_ref()
    }

    /// The reference an Event about this node names.
    pub fn reference(&self) -> k8s_openapi::api::core::v1::ObjectReference {
        self.object_ref(&())
    }
}

/// A Pod with its metadata (no managedFields), the node it runs on or is pinned to, and its
/// status.
#[derive(Resource, Deserialize, Clone, Debug, Default, PartialEq)]
#[resource(inherit = "Pod")]
pub struct SlimPod {
    #[serde(deserialize_with = "slim_meta")]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "null_default")]
    pub spec: SlimPodSpec,
    #[serde(default, deserialize_with = "pod_summary")]
    pub status: PodSummary,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SlimPodSpec {
    #[serde(default)]
    pub node_name: Option<String>,
    /// Where the DaemonSet controller pins a pod before it is scheduled.
    #[serde(default, rename = "affinity", deserialize_with = "pinned_node")]
    pub pinned_node: Option<String>,
}

/// A full Pod cut down to what automon reads (tests and callers holding a `Pod`).
impl From<&Pod> for SlimPod {
    fn from(p: &Pod) -> Self {
        serde_json::from_value(serde_json::to_value(p).expect("a Pod serialises"))
            .expect("a Pod reads as a SlimPod")
    }
}

/// A full Node cut down to what automon reads (tests and callers holding a `Node`).
impl From<&Node> for SlimNode {
    fn from(n: &Node) -> Self {
        // Through JSON: one definition of what is kept, the deserialiser's.
        serde_json::from_value(serde_json::to_value(n).expect("a Node serialises"))
            .expect("a Node reads as a SlimNode")
    }
}

fn null_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The metadata the assessment and the watch need; `managedFields`, annotations and finalizers
/// are skipped while parsing.
fn slim_meta<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Meta {
        name: Option<String>,
        namespace: Option<String>,
        owner_references:
            Option<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>>,
        uid: Option<String>,
        resource_version: Option<String>,
        creation_timestamp: Option<Time>,
        deletion_timestamp: Option<Time>,
        labels: Option<BTreeMap<String, String>>,
    }
    let m = Meta::deserialize(d)?;
    Ok(ObjectMeta {
        name: m.name,
        namespace: m.namespace,
        owner_references: m.owner_references,
        uid: m.uid,
        resource_version: m.resource_version,
        creation_timestamp: m.creation_timestamp,
        deletion_timestamp: m.deletion_timestamp,
        labels: m.labels,
        ..ObjectMeta::default()
    })
}

/// A pod's status as the assessment reads it, worked out while parsing (conditions, container
/// statuses, images and IPs are not kept).
#[derive(Clone, Debug, PartialEq)]
pub struct PodSummary {
    /// The STATUS column of `kubectl get pods`, simplified: Running, NotReady, Pending,
    /// CrashLoopBackOff, ImagePullBackOff, Completed, ...
    pub state: String,
    /// What explains a state other than Running.
    pub message: Option<String>,
    /// When the Ready condition last turned True.
    pub ready_since: Option<Time>,
    /// Restarts of all its containers.
    pub restarts: i32,
}

impl Default for PodSummary {
    /// A pod without a status yet.
    fn default() -> Self {
        summarize(PodStatusFields::default())
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PodStatusFields {
    phase: Option<String>,
    reason: Option<String>,
    message: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    conditions: Vec<PodConditionFields>,
    #[serde(default, deserialize_with = "null_default")]
    container_statuses: Vec<ContainerFields>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodConditionFields {
    #[serde(rename = "type")]
    type_: String,
    status: String,
    reason: Option<String>,
    message: Option<String>,
    last_transition_time: Option<Time>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerFields {
    name: String,
    #[serde(default)]
    ready: bool,
    #[serde(default)]
    restart_count: i32,
    state: Option<ContainerStateFields>,
    last_state: Option<ContainerStateFields>,
}

#[derive(Deserialize)]
struct ContainerStateFields {
    waiting: Option<StateReason>,
    terminated: Option<StateReason>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateReason {
    reason: Option<String>,
    message: Option<String>,
    exit_code: Option<i32>,
}

fn pod_summary<'de, D: Deserializer<'de>>(d: D) -> Result<PodSummary, D::Error> {
    Ok(summarize(
        Option::<PodStatusFields>::deserialize(d)?.unwrap_or_default(),
    ))
}

/// kubectl's reading of a pod's status: a waiting container's reason (other than
/// ContainerCreating) or a terminated one's first, then the phase, told apart by the
/// PodScheduled and Ready conditions.
fn summarize(status: PodStatusFields) -> PodSummary {
    let condition = |type_: &str| status.conditions.iter().find(|c| c.type_ == type_);
    let ready = condition("Ready").filter(|c| c.status == "True");
    let ready_since = ready.and_then(|c| c.last_transition_time.clone());
    let restarts = status
        .container_statuses
        .iter()
        .map(|c| c.restart_count)
        .sum();
    let summary = |state: &str, message: Option<String>| PodSummary {
        state: state.to_string(),
        message,
        ready_since: ready_since.clone(),
        restarts,
    };
    for c in &status.container_statuses {
        let state = c.state.as_ref();
        if let Some(w) = state.and_then(|s| s.waiting.as_ref())
            && let Some(reason) = w.reason.as_deref().filter(|r| *r != "ContainerCreating")
        {
            let last_exit = || {
                let t = c.last_state.as_ref()?.terminated.as_ref()?;
                Some(format!(
                    "last exit code {}{}",
                    t.exit_code.unwrap_or_default(),
                    t.reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                ))
            };
            return summary(reason, w.message.clone().or_else(last_exit));
        }
        if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
            return summary(
                t.reason.as_deref().unwrap_or("Terminated"),
                t.message.clone(),
            );
        }
    }
    match status.phase.as_deref().unwrap_or("Pending") {
        "Pending" => {
            match condition("PodScheduled").filter(|c| c.status == "False") {
                Some(c) => summary(
                    "Pending",
                    Some(c.message.clone().unwrap_or_else(|| {
                        c.reason.clone().unwrap_or_else(|| "Unschedulable".into())
                    })),
                ),
                None => summary("Pending", Some("ContainerCreating".into())),
            }
        }
        "Running" if ready.is_some() => summary("Running", None),
        "Running" => {
            let not_ready: Vec<&str> = status
                .container_statuses
                .iter()
                .filter(|c| !c.ready)
                .map(|c| c.name.as_str())
                .collect();
            summary(
                "NotReady",
                Some(if not_ready.is_empty() {
                    "not ready".to_string()
                } else {
                    format!("container {} not ready", not_ready.join(", "))
                }),
            )
        }
        phase => summary(
            status.reason.as_deref().unwrap_or(phase),
            status.message.clone(),
        ),
    }
}

/// The node a DaemonSet pod is pinned to before it is scheduled: the controller's
/// `metadata.name In [node]` match field in the required node affinity.
fn pinned_node<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let Some(affinity) = Option::<Affinity>::deserialize(d)? else {
        return Ok(None);
    };
    let terms = affinity
        .node_affinity
        .and_then(|a| a.required_during_scheduling_ignored_during_execution)
        .map(|r| r.node_selector_terms)
        .unwrap_or_default();
    Ok(terms.into_iter().find_map(|t| {
        t.match_fields.into_iter().flatten().find_map(|f| {
            (f.key == "metadata.name" && f.operator == "In")
                .then(|| f.values?.into_iter().next())
                .flatten()
        })
    }))
}

fn ready_condition<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct Condition {
        #[serde(rename = "type")]
        type_: String,
        status: String,
    }
    let conditions = Option::<Vec<Condition>>::deserialize(d)?.unwrap_or_default();
    Ok(conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status))
}

fn extended_resources<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Quantity>, D::Error> {
    let all = Option::<BTreeMap<String, Quantity>>::deserialize(d)?.unwrap_or_default();
    Ok(all
        .into_iter()
        .filter(|(k, _)| is_extended_resource(k))
        .collect())
}

/// An extended resource's name has a domain (`nvidia.com/gpu`); `cpu`, `memory`, `pods` do not.
pub fn is_extended_resource(name: &str) -> bool {
    name.contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_the_assessment_reads_and_nothing_else() {
        let json = serde_json::json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {
                "name": "n1", "uid": "u", "resourceVersion": "7",
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "labels": {"kubernetes.io/os": "linux", "kubernetes.io/arch": "arm64"},
                "annotations": {"big": "x"},
                "managedFields": [{"manager": "kubelet", "operation": "Update", "fieldsV1": {"f:status": {}}}],
            },
            "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}], "podCIDR": "10.0.0.0/24"},
            "status": {
                "conditions": [
                    {"type": "MemoryPressure", "status": "False"},
                    {"type": "Ready", "status": "True", "reason": "KubeletReady"},
                ],
                "nodeInfo": {"operatingSystem": "linux", "architecture": "arm64", "kubeletVersion": "v1.33.0"},
                "allocatable": {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": "2"},
                "images": [{"names": ["registry/image:1"], "sizeBytes": 1}],
            },
        });
        let n: SlimNode = serde_json::from_value(json).unwrap();
        assert_eq!(n.name(), "n1");
        assert_eq!(n.ready(), "True");
        assert_eq!((n.os(), n.arch()), ("linux", "arm64"));
        assert_eq!(n.spec.taints.len(), 1);
        assert_eq!(
            n.status.allocatable.keys().collect::<Vec<_>>(),
            ["nvidia.com/gpu"]
        );
        assert!(n.metadata.managed_fields.is_none());
        assert!(n.metadata.annotations.is_none());
        assert_eq!(n.metadata.resource_version.as_deref(), Some("7"));
        let r = n.reference();
        assert_eq!(
            (
                r.kind.as_deref(),
                r.api_version.as_deref(),
                r.uid.as_deref()
            ),
            (Some("Node"), Some("v1"), Some("u"))
        );
    }

    #[test]
    fn a_pod_keeps_its_node_and_status_not_its_spec() {
        let p: SlimPod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "automon", "uid": "u",
                "labels": {"a": "b"}, "managedFields": [{"manager": "kubelet"}]},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}],
                "volumes": [{"name": "v", "hostPath": {"path": "/"}}]},
            "status": {"phase": "Running", "hostIP": "127.0.0.1", "podIP": "127.0.0.2",
                "podIPs": [{"ip": "127.0.0.2"}], "qosClass": "Burstable",
                "startTime": "2026-01-01T00:00:00Z",
                "conditions": [{"type": "Ready", "status": "True",
                    "lastProbeTime": null, "lastTransitionTime": "2026-01-01T00:00:05Z"}],
                "containerStatuses": [{"name": "c", "ready": false, "restartCount": 3,
                    "image": "quay.io/prometheus/node-exporter:v1", "imageID": "sha256:abc",
                    "containerID": "containerd://abc", "started": false,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                    "lastState": {"terminated": {"exitCode": 2, "reason": "Error",
                        "startedAt": "2026-01-01T00:00:01Z", "containerID": "containerd://abc"}},
                    "volumeMounts": [{"name": "v", "mountPath": "/host"}]}]},
        }))
        .unwrap();
        assert_eq!(p.spec.node_name.as_deref(), Some("n1"));
        assert_eq!(p.metadata.namespace.as_deref(), Some("automon"));
        assert!(p.metadata.managed_fields.is_none());
        // The waiting container's reason, with the message that explains it; the restarts and
        // when it was last Ready. Images, IDs, IPs and mounts are not kept anywhere.
        assert_eq!(
            p.status,
            PodSummary {
                state: "CrashLoopBackOff".into(),
                message: Some("back-off".into()),
                ready_since: Some(Time("2026-01-01T00:00:05Z".parse().unwrap())),
                restarts: 3,
            }
        );
        assert_eq!(
            crate::status::nodes::pod_state(&p),
            ("CrashLoopBackOff".into(), Some("back-off".into()))
        );
        assert_eq!(p.object_ref(&()).kind.as_deref(), Some("Pod"));
    }

    #[test]
    fn a_pod_reads_as_kubectl_get_pods_says() {
        let summary = |status: serde_json::Value| {
            serde_json::from_value::<SlimPod>(serde_json::json!({
                "metadata": {"name": "p"}, "status": status,
            }))
            .unwrap()
            .status
        };
        let state = |status| {
            let s = summary(status);
            (s.state, s.message)
        };
        let none = serde_json::Value::Null;
        assert_eq!(
            state(none),
            ("Pending".into(), Some("ContainerCreating".into()))
        );
        assert_eq!(
            state(serde_json::json!({"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]})),
            ("Pending".into(), Some("Unschedulable".into()))
        );
        assert_eq!(
            state(serde_json::json!({"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True"}]})),
            ("Running".into(), None)
        );
        assert_eq!(
            state(serde_json::json!({"phase": "Running", "conditions": [
                {"type": "Ready", "status": "False"}],
                "containerStatuses": [{"name": "a", "ready": true}, {"name": "b", "ready": false}]})),
            ("NotReady".into(), Some("container b not ready".into()))
        );
        // A waiting container says why, with its last exit when there is no message.
        assert_eq!(
            state(
                serde_json::json!({"phase": "Running", "containerStatuses": [
                {"name": "a", "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]})
            ),
            (
                "CrashLoopBackOff".into(),
                Some("last exit code 137 (OOMKilled)".into())
            )
        );
        // ContainerCreating is the phase's to tell.
        assert_eq!(
            state(
                serde_json::json!({"phase": "Pending", "containerStatuses": [
                {"name": "a", "state": {"waiting": {"reason": "ContainerCreating"}}}]})
            ),
            ("Pending".into(), Some("ContainerCreating".into()))
        );
        assert_eq!(
            state(serde_json::json!({"phase": "Failed", "reason": "Evicted",
                "message": "The node was low on resource: memory."})),
            (
                "Evicted".into(),
                Some("The node was low on resource: memory.".into())
            )
        );
        assert_eq!(
            summary(serde_json::json!({"containerStatuses": [
                {"name": "a", "restartCount": 2}, {"name": "b", "restartCount": 1}]}))
            .restarts,
            3
        );
    }

    #[test]
    fn a_pinned_pod_names_its_node() {
        let p: SlimPod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                {"nodeSelectorTerms": [{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": ["n7"]}]}]}}}},
        }))
        .unwrap();
        assert_eq!(p.spec.pinned_node.as_deref(), Some("n7"));
        assert_eq!(p.spec.node_name, None);
    }

    #[test]
    fn a_new_node_without_status_is_unknown() {
        let n: SlimNode = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n"}, "spec": null, "status": {"conditions": null}
        }))
        .unwrap();
        assert_eq!(n.ready(), "Unknown");
        assert_eq!(n.os(), "");
    }
}
