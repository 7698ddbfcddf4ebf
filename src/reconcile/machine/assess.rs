//! Judging the nodes (pure): each assessment goes to the tracker, whose due Events are written
//! one at a time, by the leader only (a failed write holds the others back until its retry);
//! the first assessment says the loop is synced, and ends a one pass with its verdict.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use k8s_openapi::{
    api::{
        apps::v1::DaemonSet,
        core::v1::{Event as CoreEvent, ObjectReference},
    },
    jiff::Timestamp,
};
use kube::runtime::events::EventType;

use super::{
    Action, Machine, Metric, NodeCounts, Now, Owed, Publication, REQUIRED_SYNCS, RETRY_MAX,
    Request, age, info, labelled, warn,
};
use crate::{
    exit::Verdict,
    model::slim::{SlimNode, SlimPod},
    reconcile::tracker::{Due, Observed},
    render::{self, NodeClasses},
    status::Health,
    status::{self, Coverage, NODE_EXPORTER, NodeStatus},
};

/// What the stores hold at one moment, and the one assessment of it (`status` prints the same).
pub struct Look {
    pub nodes: Vec<Arc<SlimNode>>,
    pub pods: Vec<Arc<SlimPod>>,
    pub assessed: Vec<NodeStatus>,
}

impl Look {
    pub fn of(
        nodes: Vec<Arc<SlimNode>>,
        pods: Vec<Arc<SlimPod>>,
        daemonsets: &[Arc<DaemonSet>],
        refusals: &[Arc<CoreEvent>],
        exclude_label: &str,
        (exporter, namespace, exporter_from): (&str, &str, Option<&str>),
        now: Timestamp,
    ) -> Self {
        let named = |name: &str| {
            daemonsets
                .iter()
                .find(|d| d.metadata.name.as_deref() == Some(name))
                .map(AsRef::as_ref)
        };
        let (failed_create, failed_create_at) =
            status::newest_refusal(refusals.iter().map(AsRef::as_ref));
        let assessed = status::nodes::assess(&status::nodes::Inputs {
            nodes: nodes.iter().map(AsRef::as_ref).collect(),
            daemonset: named(exporter),
            windows: named(render::classes::WINDOWS_EXPORTER),
            pods: pods.iter().map(AsRef::as_ref).collect(),
            failed_create,
            failed_create_at,
            exclude_label,
            namespace,
            exporter_from,
            targets: None,
            now: now.as_millisecond() as f64 / 1000.0,
        });
        Look {
            nodes,
            pods,
            assessed,
        }
    }
}

/// The Events an assessment made due, being written.
pub(super) struct Publishing {
    queue: VecDeque<Outgoing>,
    /// When the assessment was made: the latency, and when an owed Event was due.
    wall: Timestamp,
    first: bool,
    /// The exporter pods in the store, for the `Synced` line.
    exporters: usize,
    /// The Events being written, waiting for their answers: what was due, the log line, the
    /// reason and type of each.
    writing: Vec<(Due, String, &'static str, EventType)>,
}

/// How many due Events are written at once. One at a time, a burst of joins waits on the
/// round trips one behind the other (at 20 joins a second and 50 ms a write, the queue only
/// grows); a burst bounded here keeps the API server's load per assessment bounded too.
const WRITTEN_AT_ONCE: usize = 16;

/// A due Event with what it names: the node (its reference and uid) and, for `ExporterReady`,
/// the exporter pod (its reference and when it turned Ready).
struct Outgoing {
    due: Due,
    node: Option<(ObjectReference, String)>,
    pod: Option<(ObjectReference, Option<Timestamp>)>,
}

impl Machine {
    /// The debounce passed: judge the nodes once every watch has listed.
    pub(super) fn assess_due(&mut self) -> Vec<Action> {
        self.assess_at = None;
        let all_synced = REQUIRED_SYNCS.iter().all(|w| self.synced.contains(w))
            && (self.members == 0 || self.synced.contains("managed objects"));
        if !all_synced {
            return Vec::new();
        }
        self.look(self.first_sync.is_none())
    }

    pub(super) fn look(&mut self, first: bool) -> Vec<Action> {
        self.busy.looking = Some(first);
        let source = &self.source;
        vec![Action::Ask(Request::Assess {
            exclude_label: self.config.node_exporter.exclude_label.clone(),
            exporter: source.name.clone(),
            namespace: self.namespace.clone(),
            exporter_from: source
                .borrowed
                .then(|| format!("{}/{}", source.namespace, source.name)),
        })]
    }

    /// An assessment: who left, the gauges, the classes and size the nodes ask for, and the
    /// Events due.
    pub(super) fn assessed(&mut self, look: Look, now: Now) -> Vec<Action> {
        let first = self.busy.looking.take().unwrap_or(false);
        let node = |name: &str| look.nodes.iter().find(|n| n.name() == name);
        let due = {
            let by_name: std::collections::HashMap<&str, &SlimNode> =
                look.nodes.iter().map(|n| (n.name(), n.as_ref())).collect();
            self.tracker.observe(
                look.assessed.iter().map(|s| {
                    let node = by_name.get(s.name.as_str());
                    Observed {
                        status: s,
                        uid: node
                            .and_then(|n| n.metadata.uid.as_deref())
                            .unwrap_or_default(),
                        created: node.and_then(|n| n.created()).map(|t| t.0),
                    }
                }),
                now.wall,
            )
        };
        let mut out = Vec::new();
        for (node, was) in self.tracker.departed() {
            let was = match was {
                Coverage::Monitored => "it was monitored",
                Coverage::Excluded => "it was excluded",
                Coverage::NotMonitored => "it had no working exporter",
            };
            out.push(info(format!(
                "node {node} left · {was}; {} nodes now",
                look.nodes.len()
            )));
        }
        out.push(Action::Metric(gauges(&look.assessed)));
        let classes = NodeClasses::of_nodes(look.nodes.iter().map(AsRef::as_ref));
        out.extend(self.follow_classes(classes, now));
        let count = u32::try_from(look.nodes.len()).unwrap_or(u32::MAX);
        out.extend(self.follow_size(count, now));
        let queue = due
            .into_iter()
            .map(|due| Outgoing {
                node: node(due.node())
                    .map(|n| (n.reference(), n.metadata.uid.clone().unwrap_or_default())),
                pod: match &due {
                    Due::Ready { pod, .. } => look
                        .pods
                        .iter()
                        .find(|p| p.metadata.name.as_deref() == Some(pod.as_str()))
                        .map(|p| {
                            let ready_since = p.status.ready_since.as_ref().map(|t| t.0);
                            (kube::Resource::object_ref(p.as_ref(), &()), ready_since)
                        }),
                    Due::Missing { .. } => None,
                },
                due,
            })
            .collect();
        let exporters = look
            .pods
            .iter()
            .filter(|p| {
                p.metadata.labels.as_ref().is_some_and(|l| {
                    l.get(crate::model::names::NAME_LABEL).map(String::as_str)
                        == Some(NODE_EXPORTER)
                })
            })
            .count();
        self.last = look.assessed;
        self.busy.publishing = Some(Publishing {
            queue,
            wall: now.wall,
            first,
            exporters,
            writing: Vec::new(),
        });
        out.extend(self.next_event(now));
        out
    }

    /// The next due Events, up to [`WRITTEN_AT_ONCE`] of them written at once when leading,
    /// owed otherwise; after a failed write, nothing is written until the retry (each due Event
    /// stays due: the tracker forgets it was said, and the retry judges the node again). When
    /// none is left, what follows the assessment.
    fn next_event(&mut self, now: Now) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(publishing) = self.busy.publishing.as_mut() else {
            return out;
        };
        let mut batch = Vec::new();
        while batch.len() < WRITTEN_AT_ONCE
            && let Some(o) = publishing.queue.pop_front()
        {
            let blocked = self.retry.is_some_and(|(at, _)| now.at < at);
            if blocked {
                self.tracker.unsay(&o.due);
                continue;
            }
            let Some((regarding, uid)) = o.node else {
                continue;
            };
            let (publication, line) = publication(&o.due, o.pod.as_ref(), &self.source, regarding);
            if let Some(ready_at) = o.pod.and_then(|(_, since)| since) {
                let latency = publishing.wall.duration_since(ready_at);
                let secs = latency.as_secs_f64().max(0.0);
                out.push(Action::Metric(Metric::VerdictLatency(secs)));
            }
            if !self.leader {
                out.push(info(format!("{line} · no Event (another loop leads)")));
                let owed = Owed {
                    due: o.due.clone(),
                    uid,
                    at: publishing.wall,
                };
                self.owed.insert(o.due.node().to_string(), owed);
                continue;
            }
            let (reason, type_) = (publication.reason, publication.type_);
            publishing.writing.push((o.due, line, reason, type_));
            batch.push(publication);
        }
        if !batch.is_empty() {
            out.push(Action::Ask(Request::Publish(batch)));
            return out;
        }
        let done = self.busy.publishing.take();
        if let Some(Publishing {
            first: true,
            exporters,
            ..
        }) = done
        {
            out.extend(self.first_synced(exporters, now));
        }
        out
    }

    /// The answers to the Events written, in their order: each counted, or tried again after
    /// a growing wait (one wait for the burst).
    pub(super) fn published(&mut self, written: Vec<Result<(), String>>, now: Now) -> Vec<Action> {
        let Some(writing) = self
            .busy
            .publishing
            .as_mut()
            .map(|p| std::mem::take(&mut p.writing))
            .filter(|w| !w.is_empty())
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut wait = None;
        for ((due, line, reason, type_), written) in writing.into_iter().zip(written) {
            match written {
                Ok(()) => {
                    out.push(Action::Metric(Metric::Event(reason)));
                    out.push(match type_ {
                        EventType::Normal => info(format!("{line} · Event {reason}")),
                        EventType::Warning => warn(format!("{line} · Event {reason}")),
                    });
                }
                Err(e) => {
                    self.api_errors += 1;
                    out.push(Action::Metric(Metric::ApiError("event")));
                    let wait = *wait.get_or_insert_with(|| {
                        self.retry
                            .map_or(Duration::from_secs(1), |(_, w)| (w * 2).min(RETRY_MAX))
                    });
                    out.push(warn(format!(
                        "{line} · the Event could not be written ({e}); trying again in {}s",
                        wait.as_secs()
                    )));
                    self.tracker.unsay(&due);
                }
            }
        }
        self.retry = wait.map(|w| (now.at + w, w));
        out.extend(self.next_event(now));
        out
    }

    /// Every watch has listed and the nodes are judged: ready, and a one pass repairs what
    /// the listing found drifted (now, not after a debounce) and ends with its verdict.
    fn first_synced(&mut self, exporters: usize, now: Now) -> Vec<Action> {
        self.first_sync = Some(now.at);
        let mut out = vec![
            Action::Metric(Metric::Ready),
            labelled(
                "Synced",
                format!(
                    "{} nodes, {exporters} exporters in {:.1}s · {}",
                    self.last.len(),
                    now.at.saturating_duration_since(self.started).as_secs_f64(),
                    self.counts()
                ),
            ),
        ];
        if !self.options.looping {
            out.extend(self.repair(true, true, now));
        }
        out
    }

    fn counts(&self) -> String {
        let count = |c: Coverage| self.last.iter().filter(|s| s.coverage == c).count();
        let mut parts = vec![format!("{} monitored", count(Coverage::Monitored))];
        let not = count(Coverage::NotMonitored);
        if not > 0 {
            parts.push(format!("{not} not monitored"));
        }
        let excluded = count(Coverage::Excluded);
        if excluded > 0 {
            parts.push(format!("{excluded} excluded"));
        }
        parts.join(" · ")
    }

    pub(super) fn summary_line(&self) -> String {
        let not_monitored = || {
            self.last
                .iter()
                .filter(|s| s.coverage == Coverage::NotMonitored)
        };
        let not: Vec<String> = not_monitored()
            .take(5)
            .map(|s| format!("{}: {}", s.name, cause_name(s)))
            .collect();
        let n_not = not_monitored().count();
        let more = if n_not > not.len() { ", ..." } else { "" };
        let which = if not.is_empty() {
            String::new()
        } else {
            format!(" ({}{more})", not.join(", "))
        };
        format!(
            "summary: {} nodes, {} monitored, {n_not} not{which}, {} API errors",
            self.last.len(),
            self.last
                .iter()
                .filter(|s| s.coverage == Coverage::Monitored)
                .count(),
            self.api_errors
        )
    }

    /// The one pass' exit code: 0 when every node is monitored (or excluded, or still within
    /// `--exporter-deadline` of joining) and nothing drifted that was left so; degraded
    /// otherwise.
    pub(super) fn verdict(&self, now: Now) -> Vec<Action> {
        let deadline = self.options.exporter_deadline;
        let mut out = Vec::new();
        let mut gaps = 0;
        for s in self
            .last
            .iter()
            .filter(|s| s.coverage == Coverage::NotMonitored)
        {
            let reason = s.reason.as_deref().unwrap_or("unknown");
            let waited = self
                .tracker
                .waited(&s.name, now.wall)
                .unwrap_or(Duration::MAX);
            if waited < deadline {
                out.push(info(format!(
                    "node {} has waited {} for its exporter (deadline {}): {reason}",
                    s.name,
                    age(waited),
                    age(deadline)
                )));
            } else {
                out.push(warn(format!("node {} not monitored: {reason}", s.name)));
                gaps += 1;
            }
        }
        let clean = gaps == 0 && self.drift_left.is_empty() && self.pending.is_empty();
        out.push(Action::Exit(if clean {
            Verdict::Done
        } else {
            Verdict::Health(Health::Degraded)
        }));
        out
    }
}

/// The Event for what is due, and the log line that says it.
fn publication(
    due: &Due,
    pod: Option<&(ObjectReference, Option<Timestamp>)>,
    source: &super::ExporterSource,
    regarding: ObjectReference,
) -> (Publication, String) {
    match due {
        Due::Ready {
            node,
            pod: name,
            waited,
            joined,
        } => {
            let (how, after_it) = if *joined {
                ("joined", "joined")
            } else {
                ("fixed", "lost its exporter")
            };
            let after = age(*waited);
            let note = format!(
                "exporter pod {}/{name} is Ready on this node; monitored ({after} after it {after_it})",
                source.namespace
            );
            let publication = Publication {
                regarding,
                type_: EventType::Normal,
                reason: "ExporterReady",
                note,
                secondary: pod.map(|(r, _)| r.clone()),
            };
            (
                publication,
                format!("node {node} {how} · exporter {name} Ready after {after}"),
            )
        }
        Due::Missing {
            node,
            reason,
            waited,
            ..
        } => {
            let after = age(*waited);
            let publication = Publication {
                regarding,
                type_: EventType::Warning,
                reason: "ExporterMissing",
                note: truncate(&format!("not monitored after {after}: {reason}"), 1000),
                // The exporter that should have covered the node.
                secondary: Some(ObjectReference {
                    api_version: Some("apps/v1".into()),
                    kind: Some("DaemonSet".into()),
                    namespace: Some(source.namespace.clone()),
                    name: Some(source.name.clone()),
                    ..Default::default()
                }),
            };
            (
                publication,
                format!("node {node} · not monitored after {after}: {reason}"),
            )
        }
    }
}

fn gauges(assessed: &[NodeStatus]) -> Metric {
    let count = |c: Coverage| assessed.iter().filter(|s| s.coverage == c).count() as i64;
    let mut by_cause = std::collections::BTreeMap::new();
    for s in assessed
        .iter()
        .filter(|s| s.coverage == Coverage::NotMonitored)
    {
        *by_cause.entry(cause_name(s)).or_default() += 1;
    }
    Metric::Nodes(NodeCounts {
        monitored: count(Coverage::Monitored),
        not_monitored: count(Coverage::NotMonitored),
        excluded: count(Coverage::Excluded),
        by_cause,
    })
}

fn cause_name(s: &NodeStatus) -> String {
    s.cause
        .and_then(|c| serde_json::to_value(c).ok())
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max - 3;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        model::slim::SlimNode,
        reconcile::machine::{Input, fixtures::*},
    };

    fn ready(node: &str, after: &str, how: &str) -> Publication {
        Publication {
            regarding: super::super::fixtures::node(node).reference(),
            type_: EventType::Normal,
            reason: "ExporterReady",
            note: format!(
                "exporter pod mon/node-exporter-{node} is Ready on this node; monitored ({after} after it {how})"
            ),
            secondary: Some(kube::Resource::object_ref(&pod(node, 0.0), &())),
        }
    }

    #[test]
    fn nodes_present_at_the_first_sync_are_not_joins_and_the_loop_is_ready() {
        let mut m = machine(options());
        m.handle(Input::Lease(true), at(0.0));
        for input in listings() {
            m.handle(input, at(0.5));
        }
        let mut present = nodes(&["a"], Coverage::Monitored);
        present.extend(nodes(&["b", "c"], Coverage::NotMonitored));
        present.extend(nodes(&["d"], Coverage::Excluded));
        let out = drive(
            &mut m,
            Input::AssessDue,
            at(1.0),
            cluster(|| look(&present)),
        );
        assert_eq!(
            metrics(&out),
            [
                &Metric::Nodes(NodeCounts {
                    monitored: 1,
                    not_monitored: 2,
                    excluded: 1,
                    by_cause: [("taint".to_string(), 2)].into(),
                }),
                &Metric::Ready,
            ]
        );
        assert_eq!(
            lines(&out),
            ["Synced: 4 nodes, 1 exporters in 1.0s · 1 monitored · 2 not monitored · 1 excluded"]
        );
        assert_eq!(requests(&out).len(), 1, "only the assessment: {out:?}");
        assert_eq!(exit(&out), None);
    }

    #[test]
    fn a_joining_node_gets_exporter_ready_once() {
        let mut m = synced(options(), true, &nodes(&["a"], Coverage::Monitored));
        let both = nodes(&["a", "n"], Coverage::Monitored);
        let out = drive(&mut m, Input::AssessDue, at(11.0), cluster(|| look(&both)));
        assert_eq!(
            requests(&out)[1],
            &Request::Publish(vec![ready("n", "11s", "joined")])
        );
        assert_eq!(
            metrics(&out)[1..],
            [
                &Metric::VerdictLatency(11.0),
                &Metric::Event("ExporterReady")
            ]
        );
        assert_eq!(
            lines(&out),
            [
                "info: node n joined · exporter node-exporter-n Ready after 11s · Event ExporterReady"
            ]
        );
        let again = drive(&mut m, Input::AssessDue, at(12.0), cluster(|| look(&both)));
        assert!(lines(&again).is_empty() && requests(&again).len() == 1);
    }

    #[test]
    fn a_node_that_leaves_is_said_with_its_last_verdict() {
        for (coverage, was) in [
            (Coverage::Monitored, "it was monitored"),
            (Coverage::Excluded, "it was excluded"),
            (Coverage::NotMonitored, "it had no working exporter"),
        ] {
            let mut present = nodes(&["a"], Coverage::Monitored);
            present.extend(nodes(&["b"], coverage));
            let mut m = synced(options(), true, &present);
            let left = nodes(&["a"], Coverage::Monitored);
            let out = drive(&mut m, Input::AssessDue, at(5.0), cluster(|| look(&left)));
            assert_eq!(
                lines(&out),
                [format!("info: node b left · {was}; 1 nodes now")]
            );
        }
    }

    #[test]
    fn a_gap_is_a_warning_past_the_deadline_and_ready_once_fixed() {
        let a = |c| nodes(&["a"], c);
        let both = |ca, cn| [a(ca), nodes(&["n"], cn)].concat();
        let mut m = synced(options(), true, &a(Coverage::Monitored));
        use Coverage::{Monitored as M, NotMonitored as N};
        let taint = "taint a=b:NoExecute not tolerated";
        let steps = [
            // n joins without an exporter: it waits for the deadline (2m after its creation).
            (10.0, both(M, N), vec![], Some(120.0)),
            (
                120.0,
                both(M, N),
                vec![format!(
                    "warn: node n · not monitored after 2m0s: {taint} · Event ExporterMissing"
                )],
                None,
            ),
            (150.0, both(M, N), vec![], None),
            (
                200.0,
                both(M, M),
                vec![
                    "info: node n joined · exporter node-exporter-n Ready after 3m20s · Event ExporterReady".into(),
                ],
                None,
            ),
            // a, there from the start, loses its exporter: a new wait.
            (300.0, both(N, M), vec![], Some(420.0)),
            (
                420.0,
                both(N, M),
                vec![format!(
                    "warn: node a · not monitored after 2m0s: {taint} · Event ExporterMissing"
                )],
                None,
            ),
            (
                430.0,
                both(M, M),
                vec![
                    "info: node a fixed · exporter node-exporter-a Ready after 2m10s · Event ExporterReady".into(),
                ],
                None,
            ),
        ];
        for (secs, present, want, deadline) in steps {
            let out = drive(
                &mut m,
                Input::DeadlineDue,
                at(secs),
                cluster(|| look(&present)),
            );
            assert_eq!(lines(&out), want, "at {secs}s");
            let next = m.timers(at(secs)).deadline;
            assert_eq!(next, deadline.map(|s| at(s).at), "at {secs}s");
        }
    }

    #[test]
    fn the_events_name_the_node_and_the_exporter() {
        let mut m = synced(options(), true, &[]);
        let late = nodes(&["n"], Coverage::NotMonitored);
        let out = drive(
            &mut m,
            Input::DeadlineDue,
            at(130.0),
            cluster(|| look(&late)),
        );
        let Request::Publish(missing) = requests(&out)[1] else {
            panic!("{out:?}");
        };
        let missing = &missing[0];
        assert_eq!(missing.regarding, node("n").reference());
        assert_eq!(missing.type_, EventType::Warning);
        assert_eq!(missing.reason, "ExporterMissing");
        assert_eq!(
            missing.note,
            "not monitored after 2m10s: taint a=b:NoExecute not tolerated"
        );
        let ds = missing.secondary.as_ref().expect("the DaemonSet");
        assert_eq!(
            (
                ds.kind.as_deref(),
                ds.namespace.as_deref(),
                ds.name.as_deref()
            ),
            (Some("DaemonSet"), Some(NS), Some("node-exporter"))
        );
        let fixed = nodes(&["n"], Coverage::Monitored);
        let out = drive(
            &mut m,
            Input::DeadlineDue,
            at(140.0),
            cluster(|| look(&fixed)),
        );
        assert_eq!(
            requests(&out)[1],
            &Request::Publish(vec![ready("n", "2m20s", "joined")])
        );
    }

    #[test]
    fn a_follower_writes_no_event_and_owes_it() {
        let mut m = synced(options(), false, &nodes(&["a"], Coverage::Monitored));
        let both = nodes(&["a", "n"], Coverage::Monitored);
        let out = drive(&mut m, Input::AssessDue, at(11.0), cluster(|| look(&both)));
        assert_eq!(
            lines(&out),
            [
                "info: node n joined · exporter node-exporter-n Ready after 11s · no Event (another loop leads)"
            ]
        );
        assert_eq!(requests(&out).len(), 1, "no Event written: {out:?}");
        assert!(metrics(&out).contains(&&Metric::VerdictLatency(11.0)));
        assert!(m.owed.contains_key("n"));
    }

    #[test]
    fn failed_writes_are_tried_again_later_each_time_and_hold_back_what_comes_after() {
        let mut m = synced(options(), true, &[]);
        let joined = nodes(&["n1", "n2"], Coverage::Monitored);
        let failing = |r: &Request| match r {
            Request::Publish(batch) => {
                Input::Published(batch.iter().map(|_| Err("boom".into())).collect())
            }
            r => cluster(|| look(&joined))(r),
        };
        let lines_at = |secs: u64, wait: u64| {
            ["n1", "n2"].map(|n| {
                format!(
                    "warn: node {n} joined · exporter node-exporter-{n} Ready after {secs}s · the Event could not be written (boom); trying again in {wait}s"
                )
            })
        };
        // Both due at once: written at once, both fail, one wait for the burst.
        let out = drive(&mut m, Input::AssessDue, at(10.0), failing);
        assert_eq!(lines(&out), lines_at(10, 1));
        assert_eq!(
            requests(&out).len(),
            2,
            "one assessment, one burst: {out:?}"
        );
        assert!(metrics(&out).contains(&&Metric::ApiError("event")));
        // Judged again before the retry: nothing is written.
        let out = drive(&mut m, Input::DeadlineDue, at(10.5), failing);
        assert_eq!((lines(&out).len(), requests(&out).len()), (0, 1));
        for (secs, wait) in [(11, 2), (13, 4), (17, 8), (25, 16), (41, 30), (71, 30)] {
            assert_eq!(m.timers(at(secs as f64)).deadline, Some(at(secs as f64).at));
            let out = drive(&mut m, Input::DeadlineDue, at(secs as f64), failing);
            assert_eq!(lines(&out), lines_at(secs, wait));
        }
        let out = drive(
            &mut m,
            Input::DeadlineDue,
            at(101.0),
            cluster(|| look(&joined)),
        );
        assert_eq!(
            lines(&out),
            [
                "info: node n1 joined · exporter node-exporter-n1 Ready after 101s · Event ExporterReady",
                "info: node n2 joined · exporter node-exporter-n2 Ready after 101s · Event ExporterReady",
            ]
        );
        assert_eq!(m.timers(at(101.0)).deadline, None);
        assert!(m.summary_line().ends_with("14 API errors"));
    }

    #[test]
    fn a_burst_is_written_at_once_up_to_its_bound_and_a_failure_holds_back_the_rest() {
        // The size of each burst of Events asked to be written.
        let bursts = |out: &[Action]| -> Vec<usize> {
            requests(out)
                .iter()
                .filter_map(|r| match r {
                    Request::Publish(batch) => Some(batch.len()),
                    _ => None,
                })
                .collect()
        };
        let mut m = synced(options(), true, &[]);
        let names: Vec<String> = (0..WRITTEN_AT_ONCE + 3)
            .map(|i| format!("n{i:02}"))
            .collect();
        let joined = nodes(
            &names.iter().map(String::as_str).collect::<Vec<_>>(),
            Coverage::Monitored,
        );
        // The first burst fails: the three beyond the bound are not written until the retry.
        let failing = |r: &Request| match r {
            Request::Publish(batch) => {
                Input::Published(batch.iter().map(|_| Err("boom".into())).collect())
            }
            r => cluster(|| look(&joined))(r),
        };
        let out = drive(&mut m, Input::AssessDue, at(10.0), failing);
        assert_eq!(bursts(&out), [WRITTEN_AT_ONCE]);
        // The retry: all of them, a burst and the rest.
        let out = drive(
            &mut m,
            Input::DeadlineDue,
            at(11.0),
            cluster(|| look(&joined)),
        );
        assert_eq!(bursts(&out), [WRITTEN_AT_ONCE, 3]);
        assert_eq!(lines(&out).len(), WRITTEN_AT_ONCE + 3);
    }

    #[test]
    fn after_a_failed_write_the_next_look_is_at_the_retry_or_a_later_deadline() {
        let failing = |present: Vec<(SlimNode, Coverage)>| {
            move |r: &Request| match r {
                Request::Publish(batch) => {
                    Input::Published(batch.iter().map(|_| Err("boom".into())).collect())
                }
                r => cluster(|| look(&present))(r),
            }
        };
        let joined = nodes(&["n1"], Coverage::Monitored);
        let waiting = [joined.clone(), nodes(&["n2"], Coverage::NotMonitored)].concat();
        for (present, next) in [(joined, 11.0), (waiting, 120.0)] {
            let mut m = synced(options(), true, &[]);
            drive(&mut m, Input::AssessDue, at(10.0), failing(present));
            assert_eq!(m.timers(at(10.0)).deadline, Some(at(next).at));
        }
    }

    #[test]
    fn a_one_pass_ends_with_its_verdict() {
        let taint = "taint a=b:NoExecute not tolerated";
        for (secs, coverage, want, code) in [
            (
                1.0,
                Coverage::Monitored,
                vec!["Synced: 1 nodes, 1 exporters in 1.0s · 1 monitored".to_string()],
                Verdict::Done,
            ),
            (
                1.0,
                Coverage::NotMonitored,
                vec![
                    "Synced: 1 nodes, 0 exporters in 1.0s · 0 monitored · 1 not monitored".into(),
                    format!("info: node n has waited 1s for its exporter (deadline 2m0s): {taint}"),
                ],
                Verdict::Done,
            ),
            (
                200.0,
                Coverage::NotMonitored,
                vec![
                    format!(
                        "warn: node n · not monitored after 3m20s: {taint} · Event ExporterMissing"
                    ),
                    "Synced: 1 nodes, 0 exporters in 200.0s · 0 monitored · 1 not monitored".into(),
                    format!("warn: node n not monitored: {taint}"),
                ],
                Verdict::Health(Health::Degraded),
            ),
        ] {
            let mut m = machine(one_pass());
            m.handle(
                Input::Started {
                    held_by: None,
                    leader: true,
                },
                at(0.0),
            );
            for input in listings() {
                m.handle(input, at(0.5));
            }
            let present = nodes(&["n"], coverage);
            let out = drive(
                &mut m,
                Input::AssessDue,
                at(secs),
                cluster(|| look(&present)),
            );
            assert_eq!(lines(&out), want);
            assert_eq!(out.last(), Some(&Action::Exit(code)));
        }
    }

    #[test]
    fn the_summary_names_the_first_five_not_monitored() {
        let mut present = nodes(&["a"], Coverage::Monitored);
        present.extend(nodes(&["b", "c"], Coverage::NotMonitored));
        let m = synced(options(), true, &present);
        assert_eq!(
            lines(&[info(m.summary_line())]),
            ["info: summary: 3 nodes, 1 monitored, 2 not (b: taint, c: taint), 0 API errors"]
        );
        let many = nodes(&["b", "c", "d", "e", "f", "g"], Coverage::NotMonitored);
        let mut m = synced(options(), true, &many);
        let out = m.handle(Input::Summary, at(60.0));
        assert_eq!(
            lines(&out),
            [
                "info: summary: 6 nodes, 0 monitored, 6 not (b: taint, c: taint, d: taint, e: taint, f: taint, ...), 0 API errors"
            ]
        );
    }

    #[test]
    fn a_long_note_is_cut_on_a_character() {
        assert_eq!(truncate("short", 1000), "short");
        let cut = truncate(&"é".repeat(600), 1000);
        assert_eq!(cut.len(), 999);
        assert!(cut.ends_with("é..."));
    }
}
