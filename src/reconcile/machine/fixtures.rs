//! Fixtures for the machine's tests: a clock, a machine past its first sync, nodes with their
//! verdicts, managed objects with their field managers, a driver that answers requests from a
//! script, and readings of the actions (log lines, requests, metrics, exit code).

use std::{
    sync::{Arc, LazyLock},
    time::{Duration, Instant},
};

use k8s_openapi::{
    apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, Time},
    jiff::Timestamp,
};
use kube::api::{DynamicObject, PartialObjectMeta};
use serde_json::{Value, json};

pub(in crate::reconcile) use crate::reconcile::tracker::tests::status;

use super::{
    Action, Desired, ExporterSource, Input, Level, Look, Machine, MemberEvent, Metric, Now,
    REQUIRED_SYNCS, Request, Start,
};
use crate::exit::Verdict;
use crate::{
    config::Config,
    model::{
        Object,
        resources::{self, Known},
        slim::{SlimNode, SlimPod},
    },
    reconcile::Options,
    status::Coverage,
};

pub const NS: &str = "mon";
pub const DEADLINE: Duration = Duration::from_secs(120);
pub const GRACE: Duration = Duration::from_secs(600);

static T0: LazyLock<Instant> = LazyLock::new(Instant::now);

fn wall0() -> Timestamp {
    Timestamp::from_second(1_800_000_000).expect("a valid time")
}

/// The wall clock `secs` after (or before) the test's start.
pub fn wall(secs: f64) -> Timestamp {
    let d = k8s_openapi::jiff::SignedDuration::from_secs_f64(secs);
    wall0().checked_add(d).expect("a valid time")
}

/// `secs` after the test's start, on both clocks.
pub fn at(secs: f64) -> Now {
    let d = Duration::from_secs_f64(secs);
    Now {
        at: *T0 + d,
        wall: wall0().checked_add(d).expect("a valid time"),
    }
}

pub fn options() -> Options {
    Options {
        looping: true,
        exporter_deadline: DEADLINE,
        class_grace: GRACE,
        repair: true,
        metrics_addr: None,
        summary_interval: Duration::from_secs(60),
        lease_duration: Duration::from_secs(15),
        identity: "loop-a".into(),
    }
}

pub fn one_pass() -> Options {
    Options {
        looping: false,
        ..options()
    }
}

pub fn source() -> ExporterSource {
    ExporterSource {
        namespace: NS.into(),
        name: "node-exporter".into(),
        borrowed: false,
    }
}

/// The two managed objects of the tests' plan: a ConfigMap `dash` and a PrometheusRule `rules`.
pub fn objects() -> Vec<Object> {
    let object = |v: Value| serde_json::from_value::<Object>(v).expect("an object");
    vec![
        object(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "dash", "namespace": NS,
                "labels": {"applyset.kubernetes.io/part-of": "applyset-1"}},
            "data": {"board.json": "{}"},
        })),
        object(json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": "rules", "namespace": NS},
            "spec": {"groups": [{"name": "node", "rules": []}]},
        })),
    ]
}

pub fn desired() -> Desired {
    Desired::of_members(objects().iter())
}

pub fn config_map() -> &'static Known {
    resources::by_group_kind("ConfigMap").expect("a known kind")
}

pub fn prometheus_rule() -> &'static Known {
    resources::by_group_kind("PrometheusRule.monitoring.coreos.com").expect("a known kind")
}

pub fn start(options: Options) -> Start {
    Start {
        options,
        namespace: NS.into(),
        started: at(0.0).at,
        config: Config::default(),
        config_text: Some("namespace: mon\n".into()),
        parent_version: Some("1".into()),
        source: source(),
        desired: desired(),
        classes: Default::default(),
        tier: 50,
        members: 2,
    }
}

pub fn machine(options: Options) -> Machine {
    Machine::new(start(options))
}

/// A managed object's metadata as a watch reports it, with its field managers.
pub fn meta(name: &str, managers: &[(&str, Value)]) -> PartialObjectMeta<DynamicObject> {
    let managed: Vec<ManagedFieldsEntry> = managers
        .iter()
        .map(|(manager, fields)| ManagedFieldsEntry {
            manager: Some(manager.to_string()),
            operation: Some("Apply".into()),
            fields_v1: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1(
                fields.clone(),
            )),
            ..Default::default()
        })
        .collect();
    let mut m: PartialObjectMeta<DynamicObject> =
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": NS}}))
            .expect("metadata");
    m.metadata.managed_fields = Some(managed);
    m
}

/// Metadata of a managed object automon alone manages.
pub fn ours(name: &str) -> PartialObjectMeta<DynamicObject> {
    meta(name, &[("kubectl-automon", json!({"f:data": {}}))])
}

/// Every watch listed, both managed objects present as applied.
pub fn listings() -> Vec<Input> {
    let mut inputs: Vec<Input> = REQUIRED_SYNCS.iter().map(|w| Input::Synced(w)).collect();
    inputs.push(Input::Member(
        config_map(),
        MemberEvent::Listed(vec![ours("dash")]),
    ));
    inputs.push(Input::Member(
        prometheus_rule(),
        MemberEvent::Listed(vec![ours("rules")]),
    ));
    inputs
}

pub fn node(name: &str) -> SlimNode {
    let mut n = SlimNode::default();
    n.metadata.name = Some(name.into());
    n.metadata.uid = Some(format!("uid-{name}"));
    n.metadata.creation_timestamp = Some(Time(wall0()));
    n
}

/// A node labelled as an NVIDIA GPU node.
pub fn gpu(name: &str) -> SlimNode {
    let mut n = node(name);
    n.metadata.labels = Some(
        [("nvidia.com/gpu.present".to_string(), "true".to_string())]
            .into_iter()
            .collect(),
    );
    n
}

/// A Windows node.
pub fn windows(name: &str) -> SlimNode {
    let mut n = node(name);
    n.metadata.labels = Some(
        [("kubernetes.io/os".to_string(), "windows".to_string())]
            .into_iter()
            .collect(),
    );
    n
}

/// `count` excluded Linux nodes (no Events: only their number and classes count).
pub fn many(count: usize) -> Vec<(SlimNode, Coverage)> {
    (0..count)
        .map(|i| (node(&format!("n{i}")), Coverage::Excluded))
        .collect()
}

/// The exporter pod on `node`, Ready since the test's start plus `ready` seconds.
pub fn pod(node: &str, ready: f64) -> SlimPod {
    let mut p = SlimPod::default();
    p.metadata.name = Some(format!("node-exporter-{node}"));
    p.metadata.namespace = Some(NS.into());
    p.metadata.labels = Some(
        [(
            crate::model::names::NAME_LABEL.to_string(),
            "node-exporter".to_string(),
        )]
        .into_iter()
        .collect(),
    );
    p.spec.node_name = Some(node.into());
    p.status.ready_since = Some(Time(at(ready).wall));
    p
}

/// The stores with these nodes and verdicts (a monitored node has its exporter pod, Ready
/// since the start).
pub fn look(nodes: &[(SlimNode, Coverage)]) -> Look {
    Look {
        nodes: nodes.iter().map(|(n, _)| Arc::new(n.clone())).collect(),
        pods: nodes
            .iter()
            .filter(|(_, c)| *c == Coverage::Monitored)
            .map(|(n, _)| Arc::new(pod(n.name(), 0.0)))
            .collect(),
        assessed: nodes.iter().map(|(n, c)| status(n.name(), *c)).collect(),
    }
}

/// Linux nodes `names`, all with the same verdict.
pub fn nodes(names: &[&str], coverage: Coverage) -> Vec<(SlimNode, Coverage)> {
    names.iter().map(|n| (node(n), coverage)).collect()
}

/// Handles `input` as the driver does: each request answered by `answer`, until the machine
/// waits. Returns every action, the requests included.
pub fn drive(
    m: &mut Machine,
    input: Input,
    now: Now,
    mut answer: impl FnMut(&Request) -> Input,
) -> Vec<Action> {
    let mut all = Vec::new();
    let mut next = Some(input);
    while let Some(input) = next.take() {
        for action in m.handle(input, now) {
            if let Action::Ask(request) = &action {
                assert!(next.is_none(), "two requests in one step");
                next = Some(answer(request));
            }
            let exit = matches!(action, Action::Exit(_));
            all.push(action);
            if exit {
                return all;
            }
        }
    }
    all
}

/// Answers as a cluster that does all it is asked: the stores hold `look`, writes succeed, the
/// parent has not moved, plans and applies work.
pub fn cluster(look: impl Fn() -> Look) -> impl FnMut(&Request) -> Input {
    move |request| match request {
        Request::Assess { .. } => Input::Assessed(look()),
        Request::Publish(batch) => Input::Published(batch.iter().map(|_| Ok(())).collect()),
        Request::ReadOwed => Input::OwedRead(Ok(Vec::new())),
        Request::ReadParent => Input::ParentRead(None),
        Request::Plan { .. } => Input::Planned(Ok(super::Planned {
            desired: desired(),
            nodes: 3,
        })),
        Request::Repair(_) => Input::Repaired(Ok(())),
        Request::Apply { .. } => Input::Applied(Ok(super::Applied {
            desired: desired(),
            parent_version: Some(Some("2".into())),
        })),
    }
}

/// A machine past its first sync at 1s with these nodes (leading when `leader`); the actions
/// of the sync are dropped.
pub fn synced(options: Options, leader: bool, nodes: &[(SlimNode, Coverage)]) -> Machine {
    let mut m = machine(options);
    m.handle(
        Input::Started {
            held_by: None,
            leader: false,
        },
        at(0.0),
    );
    if leader {
        m.handle(Input::Lease(true), at(0.0));
    }
    for input in listings() {
        m.handle(input, at(0.5));
    }
    let nodes = nodes.to_vec();
    drive(&mut m, Input::AssessDue, at(1.0), cluster(|| look(&nodes)));
    m
}

/// The log lines, as `info: text`, `warn: text` or `Label: text`.
pub fn lines(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Log(l) => Some(match (l.label, l.level) {
                (Some(label), _) => format!("{label}: {}", l.text),
                (None, Level::Info) => format!("info: {}", l.text),
                (None, Level::Warn) => format!("warn: {}", l.text),
            }),
            _ => None,
        })
        .collect()
}

pub fn requests(actions: &[Action]) -> Vec<&Request> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Ask(r) => Some(r),
            _ => None,
        })
        .collect()
}

pub fn metrics(actions: &[Action]) -> Vec<&Metric> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Metric(m) => Some(m),
            _ => None,
        })
        .collect()
}

pub fn exit(actions: &[Action]) -> Option<Verdict> {
    actions.iter().find_map(|a| match a {
        Action::Exit(code) => Some(*code),
        _ => None,
    })
}
