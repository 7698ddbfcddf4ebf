//! The loop's decisions (pure): an [`Input`] (what a watch, a timer or the Lease said, or the
//! answer to a [`Request`]) and the state in, the [`Action`]s out. No client and no clock: the
//! time comes with each input ([`Now`]). The driver turns watches, timers and the Lease into
//! inputs, performs the actions in order, and answers a request (always the last action of a
//! step) at once with the input it names, before anything else is heard.

mod assess;
#[cfg(test)]
mod fixtures;
mod follow;
mod repair;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::{
        coordination::v1::Lease,
        core::v1::{ConfigMap, ObjectReference},
        events::v1::Event as NodeEvent,
    },
    jiff::Timestamp,
};
use kube::runtime::events::EventType;

pub use assess::Look;
pub use repair::{Desired, MemberEvent, config_text};

use crate::model::names::LEASE_NAME;

use super::{
    Options,
    tracker::{Due, Tracker},
};
use crate::{
    cluster::apply::Key,
    config::Config,
    exit::Verdict,
    model::{Object, resources::Known},
    render::NodeClasses,
    status::Health,
    status::{self, NODE_EXPORTER, NodeStatus},
};

/// A burst of changes to managed objects is repaired once, this long after it started.
const REPAIR_DEBOUNCE: Duration = Duration::from_millis(500);
/// Changes arriving together are assessed together.
const ASSESS_DEBOUNCE: Duration = Duration::from_millis(50);
/// An object repaired this many times within [`FIGHT_WINDOW`] is left alone after: something
/// keeps changing it back, and fighting it forever helps no one.
const FIGHT_LIMIT: usize = 5;
const FIGHT_WINDOW: Duration = Duration::from_secs(300);
/// How long the loop lets a burst of joining nodes settle before it sizes the stack up.
const SIZE_SETTLE: Duration = Duration::from_secs(5);
/// How long a resize waits at most for the nodes still waiting for their exporter.
const SIZE_HOLD_MAX: Duration = Duration::from_secs(60);
/// The watches that must have listed before the first verdict (and the managed objects').
const REQUIRED_SYNCS: [&str; 5] = ["nodes", "pods", "daemonsets", "events", "parent"];
/// A failed Event write is tried again after 1s, then twice as long each time, up to this.
const RETRY_MAX: Duration = Duration::from_secs(30);

/// When an input is handled: the monotonic clock for the loop's own waits, the wall clock for
/// what is compared with the cluster's timestamps.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub at: Instant,
    pub wall: Timestamp,
}

/// Something the loop heard.
pub enum Input {
    /// The loop starts: who else holds the Lease (identity, seconds since its renewal), and
    /// whether this one pass took it.
    Started {
        held_by: Option<(String, i64)>,
        leader: bool,
    },
    /// SIGINT or SIGTERM.
    Shutdown,
    /// The Lease manager says whether this loop leads now.
    Lease(bool),
    /// The Lease manager stopped.
    LeaseStopped,
    /// A store changed (nodes, pods, DaemonSets, refusals).
    Changed,
    /// A watch finished its (re)list.
    Synced(&'static str),
    /// The ApplySet parent changed (the configuration) or went away.
    Parent(Option<ConfigMap>),
    /// A managed object changed, was deleted, or a member list finished.
    Member(&'static Known, MemberEvent),
    /// A watch failed; it starts again after a backoff. `expired`: the API server said 410.
    Failed {
        what: &'static str,
        error: String,
        expired: bool,
    },
    /// Every watch stream ended.
    WatchesEnded,
    /// The timers of [`Timers`], and the summary's interval.
    AssessDue,
    DeadlineDue,
    RepairDue,
    ClassDue,
    SizeDue,
    Summary,
    /// The loop stopped and gave the Lease back.
    Released,
    /// Answers, one per [`Request`].
    Assessed(Look),
    Published(Vec<Result<(), String>>),
    OwedRead(Result<Vec<NodeEvent>, String>),
    ParentRead(Option<ConfigMap>),
    Planned(Result<Planned, String>),
    Repaired(Result<(), String>),
    Applied(Result<Applied, String>),
}

/// enable's plan for a configuration, as the loop keeps it.
pub struct Planned {
    pub desired: Desired,
    /// The cluster's node count when it was made.
    pub nodes: u32,
}

/// enable's plan, applied and recorded.
pub struct Applied {
    pub desired: Desired,
    /// The parent's resourceVersion after the apply, when it could be read.
    pub parent_version: Option<Option<String>>,
}

/// What the driver does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Log(Line),
    Metric(Metric),
    /// I/O whose answer is the next input.
    Ask(Request),
    /// The loop ends with this exit code.
    Exit(Verdict),
}

/// I/O the machine waits for; each is answered by the [`Input`] named.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Assess the stores' contents ([`Input::Assessed`]).
    Assess {
        exclude_label: String,
        exporter: String,
        /// The stack's namespace, and the other stack's exporter it scrapes (`namespace/name`):
        /// what the reasons name.
        namespace: String,
        exporter_from: Option<String>,
    },
    /// Write these Events on Nodes, at once ([`Input::Published`], an answer each in their order).
    Publish(Vec<Publication>),
    /// The Events this controller wrote on Nodes ([`Input::OwedRead`]).
    ReadOwed,
    /// The ApplySet parent as it is now ([`Input::ParentRead`]).
    ReadParent,
    /// enable's plan for a configuration ([`Input::Planned`]).
    Plan {
        config: Box<Config>,
        classes: NodeClasses,
    },
    /// Re-apply one object of the plan ([`Input::Repaired`]).
    Repair(Box<Object>),
    /// Apply enable's plan for these classes and tier, recorded as a revision saying `change`
    /// ([`Input::Applied`]).
    Apply {
        config: Box<Config>,
        classes: NodeClasses,
        tier: u32,
        change: String,
    },
}

/// An Event on a Node.
#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    pub regarding: ObjectReference,
    pub type_: EventType,
    pub reason: &'static str,
    pub note: String,
    pub secondary: Option<ObjectReference>,
}

/// A line of the loop's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub level: Level,
    /// A header line's label (`Lease`, `Synced`, `Stopped`).
    pub label: Option<&'static str>,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
}

/// A change to the loop's own metrics.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    Leader(bool),
    /// A watch of this resource restarted.
    WatchRestart(&'static str),
    /// A request of this kind failed.
    ApiError(&'static str),
    /// An Event with this reason was written.
    Event(&'static str),
    /// An object of this kind was repaired.
    Repair(String),
    /// Seconds from an exporter turning Ready to its Event.
    VerdictLatency(f64),
    Nodes(NodeCounts),
    /// The first sync is done (`/readyz`).
    Ready,
}

/// The nodes by verdict, and the not monitored ones by cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCounts {
    pub monitored: i64,
    pub not_monitored: i64,
    pub excluded: i64,
    pub by_cause: BTreeMap<String, i64>,
}

/// When the loop should look again without being told: each is an input when it passes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timers {
    pub assess: Option<Instant>,
    pub deadline: Option<Instant>,
    pub repair: Option<Instant>,
    pub classes: Option<Instant>,
    pub size: Option<Instant>,
}

/// Where the exporter whose pods cover the nodes lives: automon's own, or another stack's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExporterSource {
    pub namespace: String,
    pub name: String,
    pub borrowed: bool,
}

impl ExporterSource {
    pub fn of(parent: &ConfigMap, namespace: &str) -> Self {
        match status::exporter_from(parent)
            .as_deref()
            .and_then(|f| f.split_once('/'))
        {
            Some((ns, name)) => ExporterSource {
                namespace: ns.to_string(),
                name: name.to_string(),
                borrowed: true,
            },
            None => ExporterSource {
                namespace: namespace.to_string(),
                name: NODE_EXPORTER.to_string(),
                borrowed: false,
            },
        }
    }
}

/// What the loop starts from: the stored configuration and enable's plan for it.
pub struct Start {
    pub options: Options,
    /// The stack's namespace.
    pub namespace: String,
    /// When the command started (the `Synced` line says how long the first sync took).
    pub started: Instant,
    pub config: Config,
    pub config_text: Option<String>,
    pub parent_version: Option<String>,
    pub source: ExporterSource,
    pub desired: Desired,
    pub classes: NodeClasses,
    pub tier: u32,
    /// How many member types are watched.
    pub members: usize,
}

/// An Event this loop saw due while another led: the node's uid, and when.
#[derive(Debug, Clone)]
struct Owed {
    due: Due,
    uid: String,
    at: Timestamp,
}

pub struct Machine {
    options: Options,
    namespace: String,
    started: Instant,
    members: usize,
    config: Config,
    /// The stored configuration as text, to tell an enable that changed it apart.
    config_text: Option<String>,
    /// The parent's resourceVersion the plan was made from.
    parent_version: Option<String>,
    source: ExporterSource,
    /// enable's plan, by object.
    desired: Desired,
    /// The node classes the plan was made for.
    classes: NodeClasses,
    /// When the stack should follow the classes the nodes have now (at once for a new class,
    /// after the grace period for one whose last node left), and to which.
    class_change: Option<(Instant, NodeClasses)>,
    /// The node count tier the plan is sized for (`sizing::tier`).
    tier: u32,
    /// When the stack should be sized for another tier (soon after the cluster grows past its
    /// tier; after the grace period once it has shrunk well below it), and which.
    size_change: Option<(Instant, u32)>,
    /// Since when the resize due has waited for nodes still waiting for their exporter.
    size_held_since: Option<Instant>,
    tracker: Tracker,
    leader: bool,
    /// Since when this loop leads (or runs).
    lease_since: Instant,
    /// Drifted objects waiting for the debounce: why, and since when.
    pending: BTreeMap<Key, (String, Instant)>,
    /// When each object was repaired, to stop fighting another writer.
    repaired: HashMap<Key, Vec<Instant>>,
    /// The latest assessment.
    last: Vec<NodeStatus>,
    api_errors: u64,
    /// After an Event could not be written: when to try again, and the wait that led there.
    retry: Option<(Instant, Duration)>,
    /// Drift seen but not repaired (`--no-repair`, not the leader), for the one pass' verdict.
    drift_left: Vec<String>,
    /// Events this loop saw due while another led, by node: on taking over, those the leader
    /// did not write (it may have died first) are due again.
    owed: BTreeMap<String, Owed>,
    /// The watches that have listed.
    synced: BTreeSet<&'static str>,
    members_listed: usize,
    first_sync: Option<Instant>,
    assess_at: Option<Instant>,
    outage: Outage,
    /// What the machine is in the middle of, waiting for the answer to its request.
    busy: Busy,
}

/// The steps under way; each waits for one answer, and some wait on another (a repair on the
/// plan for a changed configuration, a one pass' repair on its first assessment).
#[derive(Default)]
struct Busy {
    /// An assessment was asked for: whether it is the first.
    looking: Option<bool>,
    publishing: Option<assess::Publishing>,
    repairing: Option<repair::Repairing>,
    planning: Option<repair::ParentChange>,
    following: Option<follow::Following>,
    replaying: Option<BTreeMap<String, Owed>>,
}

impl Machine {
    pub fn new(start: Start) -> Self {
        Machine {
            tracker: Tracker::new(start.options.exporter_deadline),
            options: start.options,
            namespace: start.namespace,
            started: start.started,
            members: start.members,
            config: start.config,
            config_text: start.config_text,
            parent_version: start.parent_version,
            source: start.source,
            desired: start.desired,
            classes: start.classes,
            class_change: None,
            tier: start.tier,
            size_change: None,
            size_held_since: None,
            leader: false,
            lease_since: start.started,
            pending: BTreeMap::new(),
            repaired: HashMap::new(),
            last: Vec::new(),
            api_errors: 0,
            retry: None,
            drift_left: Vec::new(),
            owed: BTreeMap::new(),
            synced: BTreeSet::new(),
            members_listed: 0,
            first_sync: None,
            assess_at: None,
            outage: Outage::default(),
            busy: Busy::default(),
        }
    }

    /// Whether this loop writes (a one pass gives the Lease back only if it took it).
    pub fn leader(&self) -> bool {
        self.leader
    }

    /// The transition: one input, at `now`, to the actions it calls for.
    pub fn handle(&mut self, input: Input, now: Now) -> Vec<Action> {
        match input {
            Input::Started { held_by, leader } => self.started(held_by, leader, now),
            Input::Shutdown => vec![Action::Exit(Verdict::Done)],
            Input::Lease(leader) => self.lease(leader, now),
            Input::LeaseStopped => {
                self.leader = false;
                vec![warn(
                    "the lease manager stopped; this loop no longer writes",
                )]
            }
            Input::OwedRead(written) => self.owed_read(written, now),
            Input::Changed | Input::Synced(_) | Input::Member(..) | Input::Failed { .. } => {
                self.watched(input, now)
            }
            Input::Parent(Some(parent)) => self.parent_changed(parent),
            Input::Parent(None) => vec![
                warn(format!(
                    "the ApplySet parent {}/{} was deleted: automon was disabled here; stopping",
                    self.namespace,
                    crate::model::names::PARENT_NAME
                )),
                Action::Exit(Verdict::Health(Health::NotInstalled)),
            ],
            Input::WatchesEnded => vec![Action::Exit(Verdict::Stopped)],
            Input::AssessDue => self.assess_due(),
            Input::DeadlineDue => self.look(false),
            Input::Assessed(look) => self.assessed(look, now),
            Input::Published(written) => self.published(written, now),
            Input::RepairDue => self.repair(false, false, now),
            Input::ParentRead(parent) => self.parent_read(parent, now),
            Input::Planned(plan) => self.planned(plan, now),
            Input::Repaired(applied) => self.repaired(applied, now),
            Input::ClassDue => self.class_due(),
            Input::SizeDue => self.size_due(now),
            Input::Applied(applied) => self.applied(applied),
            Input::Summary => vec![info(self.summary_line())],
            Input::Released if self.options.looping => vec![labelled(
                "Stopped",
                format!(
                    "Lease released after {}.",
                    age(now.at.saturating_duration_since(self.lease_since))
                ),
            )],
            Input::Released => Vec::new(),
        }
    }

    /// When each timer passes, seen at `now`.
    pub fn timers(&self, now: Now) -> Timers {
        let deadline = self.first_sync.and(self.tracker.next_deadline()).map(|t| {
            let wait: Duration = t.duration_since(now.wall).try_into().unwrap_or_default();
            now.at + wait
        });
        // A failed write is tried again (by judging again) at its time, never before.
        let deadline = match (deadline, self.retry) {
            (Some(d), Some((r, _))) => Some(d.max(r)),
            (None, Some((r, _))) => Some(r),
            (d, None) => d,
        };
        Timers {
            assess: self.assess_at,
            deadline,
            repair: self
                .pending
                .values()
                .map(|(_, at)| *at + REPAIR_DEBOUNCE)
                .min(),
            classes: self.class_change.map(|(at, _)| at),
            size: self.size_change.map(|(at, _)| at),
        }
    }

    fn started(&mut self, held_by: Option<(String, i64)>, leader: bool, now: Now) -> Vec<Action> {
        self.leader = leader;
        self.lease_since = now.at;
        let ns = &self.namespace;
        let line = match (held_by, self.options.looping) {
            (Some((who, ago)), true) => {
                format!("{ns}/{LEASE_NAME} held by {who} (renewed {ago}s ago); waiting")
            }
            (Some((who, _)), false) => {
                format!(
                    "{ns}/{LEASE_NAME} held by {who}: a loop is running; this pass only reports"
                )
            }
            (None, _) => return Vec::new(),
        };
        vec![labelled("Lease", line)]
    }

    /// Leading or not: a new leader first looks for the Events owed while another led.
    fn lease(&mut self, leader: bool, now: Now) -> Vec<Action> {
        self.leader = leader;
        let mut out = vec![Action::Metric(Metric::Leader(leader))];
        if !leader {
            out.push(warn(format!(
                "lost the Lease {}/{LEASE_NAME}; waiting to lead again",
                self.namespace
            )));
            return out;
        }
        self.lease_since = now.at;
        out.push(labelled(
            "Lease",
            format!(
                "{}/{LEASE_NAME} acquired (this loop: {})",
                self.namespace, self.options.identity
            ),
        ));
        if !self.owed.is_empty() {
            self.busy.replaying = Some(std::mem::take(&mut self.owed));
            out.push(Action::Ask(Request::ReadOwed));
        }
        out
    }

    /// On taking over: the Events owed while another loop led that it did not write (none on
    /// the node, from this controller about this exporter, with that reason since it was due)
    /// are due again, and judged at once.
    fn owed_read(&mut self, written: Result<Vec<NodeEvent>, String>, now: Now) -> Vec<Action> {
        let owed = self.busy.replaying.take().unwrap_or_default();
        let mut out = Vec::new();
        let written = written.unwrap_or_else(|e| {
            self.api_errors += 1;
            out.push(warn(format!(
                "cannot read the Events the last leader wrote ({e}); writing what was owed"
            )));
            Vec::new()
        });
        let mut again = 0;
        for (node, Owed { due, uid, at }) in owed {
            let reason = match due {
                Due::Ready { .. } => "ExporterReady",
                Due::Missing { .. } => "ExporterMissing",
            };
            // The leader saw it at about the same moment: a minute of slack.
            let since = at - Duration::from_secs(60);
            let said = written.iter().any(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.regarding.as_ref().and_then(|r| r.uid.as_deref()) == Some(uid.as_str())
                    // Another stack's loop writes about the same node: its related object (the
                    // exporter pod, or DaemonSet) is in its own exporter's namespace.
                    && e.related.as_ref().and_then(|r| r.namespace.as_deref())
                        == Some(self.source.namespace.as_str())
                    && event_time(e).is_some_and(|t| t >= since)
            });
            if !said {
                out.push(info(format!(
                    "node {node} · {reason} was due while another loop led and it did not write it"
                )));
                self.tracker.unsay(&due);
                again += 1;
            }
        }
        if again > 0 {
            self.assess_at = Some(now.at);
        }
        out
    }

    /// What the watches said: a change to judge (soon, with what else arrives), a list done,
    /// a managed object to compare with the plan, a failure.
    fn watched(&mut self, input: Input, now: Now) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Changed => {
                if self.outage.since.is_some() {
                    out.extend(self.outage.over(now.at));
                }
                self.debounce_assess(now);
            }
            Input::Synced(name) => {
                out.extend(self.outage.over(now.at));
                self.synced.insert(name);
                self.debounce_assess(now);
            }
            Input::Member(known, event) => {
                if let MemberEvent::Listed(_) = &event {
                    self.members_listed += 1;
                    if self.members_listed == self.members {
                        self.synced.insert("managed objects");
                        self.debounce_assess(now);
                    }
                }
                self.member_event(known, event, now);
            }
            Input::Failed {
                what,
                error,
                expired,
            } => {
                self.api_errors += 1;
                out.push(Action::Metric(Metric::WatchRestart(what)));
                out.push(Action::Metric(Metric::ApiError("watch")));
                out.extend(self.outage.failed(what, &error, expired, now.at));
            }
            _ => {}
        }
        out
    }

    fn debounce_assess(&mut self, now: Now) {
        self.assess_at.get_or_insert(now.at + ASSESS_DEBOUNCE);
    }
}

/// Who holds `lease`, when another live loop does: (identity, seconds since renewal).
pub fn live_holder(lease: Lease, identity: &str, now: Timestamp) -> Option<(String, i64)> {
    let spec = lease.spec?;
    let who = spec.holder_identity.filter(|h| !h.is_empty())?;
    if who == identity {
        return None;
    }
    let renewed = spec.renew_time?.0;
    let ago = now.as_second() - renewed.as_second();
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    (ago <= duration).then_some((who, ago))
}

/// Watch failures, said once per outage (every watch fails when the API server goes away, and
/// each retries on its own backoff), then every 30s while it lasts, and when it ends.
#[derive(Default)]
struct Outage {
    since: Option<Instant>,
    errors: usize,
    said: Option<Instant>,
}

impl Outage {
    fn failed(&mut self, what: &str, e: &str, expired: bool, now: Instant) -> Option<Action> {
        // A watch that is too old is re-listed by the watcher: routine after a restart.
        if expired && self.since.is_none() {
            return None;
        }
        self.errors += 1;
        let since = *self.since.get_or_insert(now);
        let due = self
            .said
            .is_none_or(|at| now.saturating_duration_since(at) >= Duration::from_secs(30));
        if !due {
            return None;
        }
        self.said = Some(now);
        Some(if self.errors == 1 {
            warn(format!(
                "watch of {what} failed ({e}); every watch starts again with backoff"
            ))
        } else {
            warn(format!(
                "the API server has failed for {}s ({} watch errors; latest: {what}: {e}); still trying",
                now.saturating_duration_since(since).as_secs(),
                self.errors
            ))
        })
    }

    fn over(&mut self, now: Instant) -> Option<Action> {
        let line = self.since.take().map(|since| {
            info(format!(
                "watches resumed after {}s ({} errors); every node is judged again",
                now.saturating_duration_since(since).as_secs(),
                self.errors
            ))
        });
        self.errors = 0;
        self.said = None;
        line
    }
}

fn line(level: Level, label: Option<&'static str>, text: impl Into<String>) -> Action {
    Action::Log(Line {
        level,
        label,
        text: text.into(),
    })
}

fn info(text: impl Into<String>) -> Action {
    line(Level::Info, None, text)
}

fn warn(text: impl Into<String>) -> Action {
    line(Level::Warn, None, text)
}

fn labelled(label: &'static str, text: impl Into<String>) -> Action {
    line(Level::Info, Some(label), text)
}

/// kubectl's AGE of a wait: `45s`, `5m12s`, `3h4m`.
fn age(d: Duration) -> String {
    crate::output::age(d.as_secs() as i64)
}

/// When an Event was last observed: its series' last observation, else its time.
fn event_time(e: &NodeEvent) -> Option<Timestamp> {
    e.series
        .as_ref()
        .map(|s| s.last_observed_time.0)
        .or(e.event_time.as_ref().map(|t| t.0))
        .or(e.deprecated_last_timestamp.as_ref().map(|t| t.0))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{
        api::coordination::v1::LeaseSpec,
        apimachinery::pkg::apis::meta::v1::{MicroTime, Time},
    };

    use super::{fixtures::*, *};
    use crate::status::Coverage;

    #[test]
    fn a_loop_says_who_holds_the_lease_at_its_start() {
        let held = Some(("loop-b".to_string(), 3));
        for (options, held_by, want) in [
            (
                options(),
                held.clone(),
                vec!["Lease: mon/automon-reconcile held by loop-b (renewed 3s ago); waiting"],
            ),
            (
                one_pass(),
                held,
                vec![
                    "Lease: mon/automon-reconcile held by loop-b: a loop is running; this pass only reports",
                ],
            ),
            (options(), None, vec![]),
        ] {
            let mut m = machine(options);
            let out = m.handle(
                Input::Started {
                    held_by,
                    leader: false,
                },
                at(0.0),
            );
            assert_eq!(lines(&out), want);
        }
    }

    #[test]
    fn the_lease_won_lost_and_its_manager_stopped() {
        let mut m = machine(options());
        let out = m.handle(Input::Lease(true), at(1.0));
        assert_eq!(metrics(&out), [&Metric::Leader(true)]);
        assert_eq!(
            lines(&out),
            ["Lease: mon/automon-reconcile acquired (this loop: loop-a)"]
        );
        assert!(m.leader() && requests(&out).is_empty());

        let out = m.handle(Input::Lease(false), at(2.0));
        assert_eq!(metrics(&out), [&Metric::Leader(false)]);
        assert_eq!(
            lines(&out),
            ["warn: lost the Lease mon/automon-reconcile; waiting to lead again"]
        );
        assert!(!m.leader());

        m.handle(Input::Lease(true), at(3.0));
        let out = m.handle(Input::LeaseStopped, at(4.0));
        assert_eq!(
            lines(&out),
            ["warn: the lease manager stopped; this loop no longer writes"]
        );
        assert!(!m.leader() && metrics(&out).is_empty());
    }

    #[test]
    fn a_stopped_loop_says_how_long_it_held_the_lease() {
        let mut m = machine(options());
        m.handle(Input::Lease(true), at(10.0));
        let out = m.handle(Input::Released, at(110.0));
        assert_eq!(lines(&out), ["Stopped: Lease released after 100s."]);
        let mut pass = machine(one_pass());
        assert!(pass.handle(Input::Released, at(5.0)).is_empty());
    }

    #[test]
    fn what_ends_the_loop() {
        for (input, code, line) in [
            (Input::Shutdown, Verdict::Done, None),
            (Input::WatchesEnded, Verdict::Stopped, None),
            (
                Input::Parent(None),
                Verdict::Health(Health::NotInstalled),
                Some(
                    "warn: the ApplySet parent mon/automon was deleted: automon was disabled here; stopping",
                ),
            ),
        ] {
            let out = machine(options()).handle(input, at(1.0));
            assert_eq!(out.last(), Some(&Action::Exit(code)));
            assert_eq!(lines(&out), line.into_iter().collect::<Vec<_>>());
        }
    }

    /// A node that joined while another loop led: its Event is owed, and written on taking
    /// over unless the last leader wrote it.
    fn owing() -> Machine {
        let mut m = synced(options(), false, &[]);
        let joined = look(&nodes(&["n"], Coverage::Monitored));
        let out = m.handle(Input::Assessed(joined), at(10.0));
        assert_eq!(
            lines(&out),
            [
                "info: node n joined · exporter node-exporter-n Ready after 10s · no Event (another loop leads)"
            ]
        );
        m
    }

    fn written(reason: &str, uid: &str, related_ns: &str, secs: f64) -> NodeEvent {
        NodeEvent {
            reason: Some(reason.into()),
            regarding: Some(ObjectReference {
                uid: Some(uid.into()),
                ..Default::default()
            }),
            related: Some(ObjectReference {
                namespace: Some(related_ns.into()),
                ..Default::default()
            }),
            event_time: Some(MicroTime(wall(secs))),
            ..Default::default()
        }
    }

    #[test]
    fn a_new_leader_writes_only_what_the_last_one_did_not() {
        for (written, owed) in [
            (vec![], true),
            (vec![written("ExporterReady", "uid-n", NS, 10.0)], false),
            // Written a little before this loop saw it due: the same Event.
            (vec![written("ExporterReady", "uid-n", NS, -50.0)], false),
            (vec![written("ExporterReady", "uid-n", NS, -70.0)], true),
            (vec![written("ExporterMissing", "uid-n", NS, 10.0)], true),
            (vec![written("ExporterReady", "uid-other", NS, 10.0)], true),
            // Another stack's loop, about its own exporter.
            (vec![written("ExporterReady", "uid-n", "other", 10.0)], true),
        ] {
            let mut m = owing();
            let out = m.handle(Input::Lease(true), at(20.0));
            assert_eq!(requests(&out), [&Request::ReadOwed]);
            let out = m.handle(Input::OwedRead(Ok(written)), at(20.0));
            let line = "info: node n · ExporterReady was due while another loop led and it did not write it";
            assert_eq!(lines(&out), if owed { vec![line] } else { vec![] });
            let judge = m.timers(at(20.0)).assess;
            assert_eq!(judge, owed.then_some(at(20.0).at));
            if owed {
                let out = drive(
                    &mut m,
                    Input::AssessDue,
                    at(20.0),
                    cluster(|| look(&nodes(&["n"], Coverage::Monitored))),
                );
                assert_eq!(
                    lines(&out),
                    [
                        "info: node n joined · exporter node-exporter-n Ready after 20s · Event ExporterReady"
                    ]
                );
            }
        }
    }

    #[test]
    fn a_new_leader_that_cannot_read_the_events_writes_what_was_owed() {
        let mut m = owing();
        m.handle(Input::Lease(true), at(20.0));
        let out = m.handle(Input::OwedRead(Err("forbidden".into())), at(20.0));
        assert_eq!(
            lines(&out),
            [
                "warn: cannot read the Events the last leader wrote (forbidden); writing what was owed",
                "info: node n · ExporterReady was due while another loop led and it did not write it",
            ]
        );
        assert!(m.summary_line().ends_with("1 API errors"));
        // Owed once: the next leadership has nothing to look for.
        m.handle(Input::Lease(false), at(30.0));
        assert!(requests(&m.handle(Input::Lease(true), at(31.0))).is_empty());
    }

    #[test]
    fn changes_are_judged_together_once_every_watch_has_listed() {
        let mut m = machine(options());
        assert!(m.handle(Input::Changed, at(1.0)).is_empty());
        assert_eq!(m.timers(at(1.0)).assess, Some(at(1.05).at));
        // Another change in the burst does not move the time.
        m.handle(Input::Changed, at(1.02));
        assert_eq!(m.timers(at(1.02)).assess, Some(at(1.05).at));
        // Before every watch has listed: nothing judged, nothing waiting.
        assert!(m.handle(Input::AssessDue, at(1.05)).is_empty());
        assert_eq!(m.timers(at(1.05)).assess, None);

        let all: Vec<&str> = REQUIRED_SYNCS
            .iter()
            .copied()
            .chain(["managed objects"])
            .collect();
        for missing in all {
            let mut m = machine(options());
            for input in listings() {
                let skip = match &input {
                    Input::Synced(w) => *w == missing,
                    Input::Member(..) => missing == "managed objects",
                    _ => false,
                };
                if !skip {
                    m.handle(input, at(1.0));
                }
            }
            let out = m.handle(Input::AssessDue, at(1.05));
            assert!(out.is_empty(), "judged without {missing}: {out:?}");
        }
        let mut m = machine(options());
        for input in listings() {
            m.handle(input, at(1.0));
        }
        assert_eq!(m.timers(at(1.0)).assess, Some(at(1.05).at));
        let out = m.handle(Input::AssessDue, at(1.05));
        assert_eq!(
            requests(&out),
            [&Request::Assess {
                exclude_label: Config::default().node_exporter.exclude_label,
                exporter: "node-exporter".into(),
                namespace: NS.into(),
                exporter_from: None,
            }]
        );
    }

    fn failed(what: &'static str, expired: bool) -> Input {
        Input::Failed {
            what,
            error: "connection refused".into(),
            expired,
        }
    }

    #[test]
    fn an_outage_is_said_once_then_every_30s_and_when_it_ends() {
        let mut m = machine(options());
        let steps = [
            (
                failed("nodes", false),
                0.0,
                vec![
                    "warn: watch of nodes failed (connection refused); every watch starts again with backoff",
                ],
            ),
            (failed("pods", false), 10.0, vec![]),
            (
                failed("pods", false),
                31.0,
                vec![
                    "warn: the API server has failed for 31s (3 watch errors; latest: pods: connection refused); still trying",
                ],
            ),
            (failed("parent", false), 40.0, vec![]),
            (
                Input::Changed,
                45.0,
                vec!["info: watches resumed after 45s (4 errors); every node is judged again"],
            ),
            (Input::Changed, 46.0, vec![]),
            // A watch too old is re-listed: routine, not an outage.
            (failed("nodes", true), 50.0, vec![]),
            (Input::Synced("nodes"), 51.0, vec![]),
            (
                failed("pods", false),
                60.0,
                vec![
                    "warn: watch of pods failed (connection refused); every watch starts again with backoff",
                ],
            ),
            (
                Input::Synced("pods"),
                62.0,
                vec!["info: watches resumed after 2s (1 errors); every node is judged again"],
            ),
        ];
        for (input, secs, want) in steps {
            let failure = match &input {
                Input::Failed { what, .. } => Some(*what),
                _ => None,
            };
            let out = m.handle(input, at(secs));
            assert_eq!(lines(&out), want, "at {secs}s");
            if let Some(what) = failure {
                assert_eq!(
                    metrics(&out),
                    [&Metric::WatchRestart(what), &Metric::ApiError("watch")]
                );
            }
        }
        assert!(m.summary_line().ends_with("6 API errors"));
    }

    fn lease(holder: Option<&str>, renewed_ago: i64, duration: Option<i32>) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_string),
                renew_time: Some(MicroTime(
                    at(100.0)
                        .wall
                        .checked_sub(Duration::from_secs(renewed_ago as u64))
                        .expect("a valid time"),
                )),
                lease_duration_seconds: duration,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn who_else_holds_the_lease() {
        for (lease, want) in [
            (
                lease(Some("loop-b"), 5, Some(15)),
                Some(("loop-b".to_string(), 5)),
            ),
            (
                lease(Some("loop-b"), 15, Some(15)),
                Some(("loop-b".into(), 15)),
            ),
            // Not renewed in time: its loop is gone.
            (lease(Some("loop-b"), 16, Some(15)), None),
            (lease(Some("loop-b"), 10, None), Some(("loop-b".into(), 10))),
            (lease(Some("loop-b"), 20, None), None),
            // This loop's own, from before a restart under the same identity.
            (lease(Some("loop-a"), 5, Some(15)), None),
            (lease(Some(""), 5, Some(15)), None),
            (lease(None, 5, Some(15)), None),
            (Lease::default(), None),
        ] {
            assert_eq!(live_holder(lease, "loop-a", at(100.0).wall), want);
        }
    }

    #[test]
    fn the_exporter_a_stack_scrapes() {
        let parent = |annotation: Option<&str>| ConfigMap {
            metadata: kube::api::ObjectMeta {
                annotations: annotation.map(|a| {
                    [(
                        crate::model::names::EXPORTER_FROM.to_string(),
                        a.to_string(),
                    )]
                    .into()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(ExporterSource::of(&parent(None), NS), source());
        assert_eq!(
            ExporterSource::of(&parent(Some("kube-system/node-exporter-x")), NS),
            ExporterSource {
                namespace: "kube-system".into(),
                name: "node-exporter-x".into(),
                borrowed: true,
            }
        );
    }

    #[test]
    fn event_times_from_a_series_then_the_event_then_the_old_field() {
        let mut e = written("ExporterReady", "u", NS, 5.0);
        assert_eq!(event_time(&e), Some(at(5.0).wall));
        e.series = Some(k8s_openapi::api::events::v1::EventSeries {
            count: 2,
            last_observed_time: MicroTime(at(9.0).wall),
        });
        assert_eq!(event_time(&e), Some(at(9.0).wall));
        let old = NodeEvent {
            deprecated_last_timestamp: Some(Time(at(3.0).wall)),
            ..Default::default()
        };
        assert_eq!(event_time(&old), Some(at(3.0).wall));
    }
}
