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
    error::exit,
    reconcile::tracker::{Due, Observed},
    render::{self, NodeClasses},
    slim::{SlimNode, SlimPod},
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
        exporter: &str,
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
    /// The Event written, waiting for its answer: what was due, the log line, its reason.
    writing: Option<(Due, String, &'static str, EventType)>,
}

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
        vec![Action::Ask(Request::Assess {
            exclude_label: self.config.node_exporter.exclude_label.clone(),
            exporter: self.source.name.clone(),
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
                    l.get(render::meta::NAME_LABEL).map(String::as_str) == Some(NODE_EXPORTER)
                })
            })
            .count();
        self.last = look.assessed;
        self.busy.publishing = Some(Publishing {
            queue,
            wall: now.wall,
            first,
            exporters,
            writing: None,
        });
        out.extend(self.next_event(now));
        out
    }

    /// The next due Event: written when leading, owed otherwise; after a failed write, nothing
    /// is written until the retry (each due Event stays due: the tracker forgets it was said,
    /// and the retry judges the node again). When none is left, what follows the assessment.
    fn next_event(&mut self, now: Now) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(publishing) = self.busy.publishing.as_mut() else {
            return out;
        };
        while let Some(o) = publishing.queue.pop_front() {
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
            publishing.writing = Some((o.due, line, publication.reason, publication.type_));
            out.push(Action::Ask(Request::Publish(Box::new(publication))));
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

    /// The answer to an Event written: counted, or tried again after a growing wait.
    pub(super) fn published(&mut self, written: Result<(), String>, now: Now) -> Vec<Action> {
        let Some((due, line, reason, type_)) =
            self.busy.publishing.as_mut().and_then(|p| p.writing.take())
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match written {
            Ok(()) => {
                self.retry = None;
                out.push(Action::Metric(Metric::Event(reason)));
                out.push(match type_ {
                    EventType::Normal => info(format!("{line} · Event {reason}")),
                    EventType::Warning => warn(format!("{line} · Event {reason}")),
                });
            }
            Err(e) => {
                self.api_errors += 1;
                out.push(Action::Metric(Metric::ApiError("event")));
                let wait = self
                    .retry
                    .map_or(Duration::from_secs(1), |(_, w)| (w * 2).min(RETRY_MAX));
                self.retry = Some((now.at + wait, wait));
                out.push(warn(format!(
                    "{line} · the Event could not be written ({e}); trying again in {}s",
                    wait.as_secs()
                )));
                self.tracker.unsay(&due);
            }
        }
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
        out.push(Action::Exit(if clean { 0 } else { exit::DEGRADED }));
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
