//! What the loop says about each node, and when (pure). The verdicts come from the one
//! assessment (`status::nodes::assess`); the tracker adds time: when a node joined or lost its
//! exporter, how long it has waited, and which Event is due. A node present at the first sync is
//! not a join: only a gap past the deadline is reported for it. A node that joins later gets
//! `ExporterReady` when its exporter is ready, or `ExporterMissing` once it has waited past the
//! deadline, then `ExporterReady` when that is fixed. Each outcome is said once per episode.

use std::{collections::HashMap, time::Duration};

use k8s_openapi::jiff::Timestamp;

use crate::status::{Cause, Coverage, NodeStatus};

/// An Event due on a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Due {
    /// Its exporter is ready (`ExporterReady`, Normal).
    Ready {
        node: String,
        pod: String,
        /// Since the node joined or lost its exporter.
        waited: Duration,
        /// The node joined after the first sync (a new node, not a repaired one).
        joined: bool,
    },
    /// Past the deadline without a working exporter (`ExporterMissing`, Warning).
    Missing {
        node: String,
        cause: Option<Cause>,
        reason: String,
        waited: Duration,
    },
}

impl Due {
    pub fn node(&self) -> &str {
        match self {
            Due::Ready { node, .. } | Due::Missing { node, .. } => node,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Said {
    Nothing,
    Ready,
    Missing,
}

#[derive(Debug, Clone)]
struct Seen {
    uid: String,
    /// When the current wait began: the node's creation, or when it lost its exporter.
    since: Timestamp,
    /// Joined after the first sync.
    joined: bool,
    said: Said,
    coverage: Coverage,
}

/// One node as the tracker needs it: its verdict, its uid and when it was created.
pub struct Observed<'a> {
    pub status: &'a NodeStatus,
    pub uid: &'a str,
    pub created: Option<Timestamp>,
}

#[derive(Debug)]
pub struct Tracker {
    deadline: Duration,
    nodes: HashMap<String, Seen>,
    synced: bool,
    /// The nodes gone since the last [`Tracker::departed`], with their last verdict.
    left: Vec<(String, Coverage)>,
}

impl Tracker {
    pub fn new(deadline: Duration) -> Self {
        Tracker {
            deadline,
            nodes: HashMap::new(),
            synced: false,
            left: Vec::new(),
        }
    }

    /// Takes one assessment of every node, at `now`; returns the Events due, in node order.
    /// The first call is the first sync.
    pub fn observe<'a>(
        &mut self,
        observed: impl IntoIterator<Item = Observed<'a>>,
        now: Timestamp,
    ) -> Vec<Due> {
        let first = !self.synced;
        self.synced = true;
        let mut due = Vec::new();
        let mut present = std::collections::HashSet::new();
        for o in observed {
            let s = o.status;
            present.insert(s.name.clone());
            let created = o.created.unwrap_or(now).min(now);
            let seen = match self.nodes.get_mut(&s.name) {
                // The same name with another uid is another node.
                Some(seen) if seen.uid == o.uid => seen,
                _ => {
                    self.nodes.insert(
                        s.name.clone(),
                        Seen {
                            uid: o.uid.to_string(),
                            since: created,
                            joined: !first,
                            said: Said::Nothing,
                            coverage: s.coverage,
                        },
                    );
                    self.nodes.get_mut(&s.name).expect("just inserted")
                }
            };
            let waited = now
                .duration_since(seen.since)
                .try_into()
                .unwrap_or(Duration::ZERO);
            match s.coverage {
                Coverage::Monitored => {
                    // Present and fine at the first sync: nothing to say.
                    let tell =
                        seen.said == Said::Missing || (seen.said == Said::Nothing && seen.joined);
                    if tell {
                        due.push(Due::Ready {
                            node: s.name.clone(),
                            pod: s
                                .exporter
                                .as_ref()
                                .map(|e| e.name.clone())
                                .unwrap_or_default(),
                            waited,
                            joined: seen.joined,
                        });
                    }
                    seen.said = Said::Ready;
                }
                Coverage::Excluded => seen.said = Said::Nothing,
                Coverage::NotMonitored => {
                    if seen.coverage != Coverage::NotMonitored && seen.said != Said::Nothing {
                        // Had a working exporter and lost it: a new wait starts now.
                        seen.since = now;
                        seen.said = Said::Nothing;
                    }
                    let waited = now
                        .duration_since(seen.since)
                        .try_into()
                        .unwrap_or(Duration::ZERO);
                    if seen.said != Said::Missing && waited >= self.deadline {
                        due.push(Due::Missing {
                            node: s.name.clone(),
                            cause: s.cause,
                            reason: s.reason.clone().unwrap_or_else(|| "not monitored".into()),
                            waited,
                        });
                        seen.said = Said::Missing;
                    }
                }
            }
            seen.coverage = s.coverage;
        }
        let left = &mut self.left;
        self.nodes.retain(|name, seen| {
            let here = present.contains(name);
            if !here {
                left.push((name.clone(), seen.coverage));
            }
            here
        });
        left.sort_by(|a, b| a.0.cmp(&b.0));
        due.sort_by(|a, b| a.node().cmp(b.node()));
        due
    }

    /// The nodes that left since the last call, by name, each with its last verdict: the loop
    /// says so (no Event: the Node is gone).
    pub fn departed(&mut self) -> Vec<(String, Coverage)> {
        std::mem::take(&mut self.left)
    }

    /// The Event due could not be written: it is due again at the next look (if still true).
    pub fn unsay(&mut self, due: &Due) {
        if let Some(seen) = self.nodes.get_mut(due.node()) {
            seen.said = match due {
                // As if the gap had been said: the next look says it is fixed.
                Due::Ready { .. } => Said::Missing,
                Due::Missing { .. } => Said::Nothing,
            };
        }
    }

    /// How long `node` has waited for a working exporter (since it joined or lost it).
    pub fn waited(&self, node: &str, now: Timestamp) -> Option<Duration> {
        let seen = self.nodes.get(node)?;
        now.duration_since(seen.since).try_into().ok()
    }

    /// When the next deadline passes for a node that is still waiting, if any: the loop looks
    /// again then even if nothing changes in the cluster.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.nodes
            .values()
            .filter(|s| s.coverage == Coverage::NotMonitored && s.said != Said::Missing)
            .filter_map(|s| s.since.checked_add(self.deadline).ok())
            .min()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::status::nodes::ExporterPod;

    /// A node's verdict: monitored by `node-exporter-<name>`, or not (a taint not tolerated).
    pub(in crate::reconcile) fn status(name: &str, coverage: Coverage) -> NodeStatus {
        NodeStatus {
            name: name.into(),
            ready: "True".into(),
            os: "linux".into(),
            arch: "amd64".into(),
            coverage,
            exporter: (coverage == Coverage::Monitored).then(|| ExporterPod {
                name: format!("node-exporter-{name}"),
                state: "Running".into(),
                ready: true,
                restarts: 0,
            }),
            scrape: None,
            cause: (coverage == Coverage::NotMonitored).then_some(Cause::Taint),
            reason: (coverage == Coverage::NotMonitored)
                .then(|| "taint a=b:NoExecute not tolerated".into()),
        }
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn observe(t: &mut Tracker, nodes: &[(&str, Coverage, i64)], now: i64) -> Vec<Due> {
        let statuses: Vec<(NodeStatus, i64)> = nodes
            .iter()
            .map(|(n, c, created)| (status(n, *c), *created))
            .collect();
        t.observe(
            statuses.iter().map(|(s, created)| Observed {
                status: s,
                uid: "u",
                created: Some(at(*created)),
            }),
            at(now),
        )
    }

    const DEADLINE: Duration = Duration::from_secs(120);

    #[test]
    fn nodes_at_the_first_sync_are_not_joins() {
        let mut t = Tracker::new(DEADLINE);
        let due = observe(
            &mut t,
            &[("a", Coverage::Monitored, 0), ("b", Coverage::Excluded, 0)],
            1000,
        );
        assert!(due.is_empty(), "{due:?}");
    }

    #[test]
    fn an_old_gap_is_reported_at_the_first_sync() {
        let mut t = Tracker::new(DEADLINE);
        let due = observe(&mut t, &[("a", Coverage::NotMonitored, 0)], 1000);
        assert!(matches!(&due[..], [Due::Missing { node, waited, .. }]
            if node == "a" && *waited == Duration::from_secs(1000)));
        // Said once.
        assert!(observe(&mut t, &[("a", Coverage::NotMonitored, 0)], 2000).is_empty());
    }

    #[test]
    fn a_join_is_ready_once() {
        let mut t = Tracker::new(DEADLINE);
        observe(&mut t, &[], 0);
        assert!(observe(&mut t, &[("n", Coverage::NotMonitored, 10)], 12).is_empty());
        let due = observe(&mut t, &[("n", Coverage::Monitored, 10)], 24);
        assert_eq!(
            due,
            [Due::Ready {
                node: "n".into(),
                pod: "node-exporter-n".into(),
                waited: Duration::from_secs(14),
                joined: true,
            }]
        );
        assert!(observe(&mut t, &[("n", Coverage::Monitored, 10)], 30).is_empty());
    }

    #[test]
    fn missing_after_the_deadline_then_ready_when_fixed() {
        let mut t = Tracker::new(DEADLINE);
        observe(&mut t, &[], 0);
        assert!(observe(&mut t, &[("n", Coverage::NotMonitored, 10)], 100).is_empty());
        assert_eq!(t.next_deadline(), Some(at(130)));
        let due = observe(&mut t, &[("n", Coverage::NotMonitored, 10)], 130);
        assert!(
            matches!(&due[..], [Due::Missing { cause: Some(Cause::Taint), reason, .. }]
            if reason.contains("taint"))
        );
        assert_eq!(t.next_deadline(), None);
        assert!(observe(&mut t, &[("n", Coverage::NotMonitored, 10)], 200).is_empty());
        let due = observe(&mut t, &[("n", Coverage::Monitored, 10)], 210);
        assert!(matches!(&due[..], [Due::Ready { .. }]));
    }

    #[test]
    fn losing_the_exporter_starts_a_new_wait() {
        let mut t = Tracker::new(DEADLINE);
        observe(&mut t, &[("n", Coverage::Monitored, 0)], 1000);
        assert!(observe(&mut t, &[("n", Coverage::NotMonitored, 0)], 1010).is_empty());
        assert!(observe(&mut t, &[("n", Coverage::NotMonitored, 0)], 1100).is_empty());
        assert_eq!(
            observe(&mut t, &[("n", Coverage::NotMonitored, 0)], 1130).len(),
            1
        );
    }

    #[test]
    fn an_event_that_could_not_be_written_is_due_again() {
        let mut t = Tracker::new(DEADLINE);
        observe(&mut t, &[], 0);
        let due = observe(&mut t, &[("n", Coverage::NotMonitored, 0)], 200);
        t.unsay(&due[0]);
        assert_eq!(
            observe(&mut t, &[("n", Coverage::NotMonitored, 0)], 201).len(),
            1
        );
        let due = observe(&mut t, &[("n", Coverage::Monitored, 0)], 202);
        t.unsay(&due[0]);
        assert!(matches!(
            &observe(&mut t, &[("n", Coverage::Monitored, 0)], 203)[..],
            [Due::Ready { .. }]
        ));
        assert!(observe(&mut t, &[("n", Coverage::Monitored, 0)], 204).is_empty());
    }

    #[test]
    fn a_node_recreated_under_its_name_joins_again() {
        let mut t = Tracker::new(DEADLINE);
        observe(&mut t, &[("n", Coverage::Monitored, 0)], 100);
        let s = status("n", Coverage::Monitored);
        let due = t.observe(
            [Observed {
                status: &s,
                uid: "other",
                created: Some(at(150)),
            }],
            at(160),
        );
        assert!(matches!(&due[..], [Due::Ready { joined: true, .. }]));
    }

    #[test]
    fn a_node_that_leaves_is_said_once() {
        let mut t = Tracker::new(Duration::from_secs(60));
        observe(
            &mut t,
            &[
                ("a", Coverage::Monitored, 0),
                ("b", Coverage::NotMonitored, 0),
            ],
            10,
        );
        assert!(t.departed().is_empty());
        observe(&mut t, &[("a", Coverage::Monitored, 0)], 20);
        assert_eq!(t.departed(), [("b".to_string(), Coverage::NotMonitored)]);
        observe(&mut t, &[("a", Coverage::Monitored, 0)], 30);
        assert!(t.departed().is_empty());
    }
}
