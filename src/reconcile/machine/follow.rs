//! The stack follows the nodes (pure): a new class of node (Windows, GPU) is deployed for at
//! once, one whose last node left is removed after `--class-grace`; the stack is sized up soon
//! after the cluster outgrows its tier ([`SIZE_SETTLE`]) and down only after the grace period.
//! The leader applies enable's plan for it; another loop only takes note.

use std::time::Duration;

use super::{Action, Machine, Now, Request, SIZE_HOLD_MAX, SIZE_SETTLE, info, warn};
use crate::render::NodeClasses;

/// enable's plan being applied for these classes and this tier; `failed` says what could not
/// be done when it fails.
pub(super) struct Following {
    classes: NodeClasses,
    tier: u32,
    failed: &'static str,
}

impl Machine {
    /// The classes of node the cluster has now: a new one is deployed for at once; one whose
    /// last node left is removed after `--class-grace` (a node replaced by another of its kind
    /// changes nothing).
    pub(super) fn follow_classes(&mut self, seen: NodeClasses, now: Now) -> Vec<Action> {
        let have = self.classes;
        let added = (seen.windows && !have.windows) || (seen.gpu && !have.gpu);
        let removed = (have.windows && !seen.windows) || (have.gpu && !seen.gpu);
        let mut out = Vec::new();
        self.class_change = if added {
            // Keep what is leaving until its grace period is over.
            let keep = NodeClasses {
                windows: seen.windows || have.windows,
                gpu: seen.gpu || have.gpu,
            };
            Some((now.at, keep))
        } else if removed {
            match self.class_change {
                Some((at, to)) if to == seen => Some((at, to)),
                _ => {
                    out.push(info(format!(
                        "the last of the cluster's {} left; their exporters go in {}s unless one joins",
                        gone(have, seen),
                        self.options.class_grace.as_secs()
                    )));
                    Some((now.at + self.options.class_grace, seen))
                }
            }
        } else {
            None
        };
        out
    }

    /// The size the cluster's node count asks for: a larger tier soon after the cluster grows
    /// past its own (nodes join in bursts: one apply for the burst); a smaller one only once the
    /// cluster is a fifth below the tier under it, and after `--class-grace`, so that a cluster
    /// hovering at a boundary does not resize Prometheus back and forth.
    pub(super) fn follow_size(&mut self, nodes: u32, now: Now) -> Vec<Action> {
        let mut out = Vec::new();
        self.size_change = match crate::config::sizing::next_tier(self.tier, nodes) {
            None => None,
            Some(want) => match self.size_change.filter(|(_, to)| *to == want) {
                Some(pending) => Some(pending),
                None if want > self.tier => Some((now.at + SIZE_SETTLE, want)),
                None => {
                    out.push(info(format!(
                        "the cluster has {nodes} nodes: the stack is sized down to up to {want} in {}s unless it grows again",
                        self.options.class_grace.as_secs()
                    )));
                    Some((now.at + self.options.class_grace, want))
                }
            },
        };
        if self.size_change.is_none() {
            self.size_held_since = None;
        }
        out
    }

    /// Applies enable's plan for the classes due, and records a revision.
    pub(super) fn class_due(&mut self) -> Vec<Action> {
        let Some((_, to)) = self.class_change.take() else {
            return Vec::new();
        };
        if !self.leader {
            self.classes = to;
            return vec![info(format!(
                "node classes changed ({}); the loop that leads follows them",
                to.describe()
            ))];
        }
        let have = self.classes;
        let change = if (to.windows && !have.windows) || (to.gpu && !have.gpu) {
            format!("reconcile: {} joined", to.describe())
        } else {
            format!("reconcile: the last of the {} left", gone(have, to))
        };
        self.apply(to, self.tier, change, "could not follow the node classes")
    }

    /// Applies enable's plan sized for the tier due, and records a revision. The apply holds
    /// the loop for seconds (planning lists the cluster again; the operator rolls out): while a
    /// node that joined or lost its exporter still waits to be judged, the resize waits for it,
    /// a second at a time, for at most [`SIZE_HOLD_MAX`] after it was due, so that a burst of
    /// joins that crosses a tier gets its Events before the stack is resized.
    pub(super) fn size_due(&mut self, now: Now) -> Vec<Action> {
        let Some((due, to)) = self.size_change.take() else {
            return Vec::new();
        };
        let held_since = *self.size_held_since.get_or_insert(due);
        let waiting = self.tracker.next_deadline().is_some();
        if self.leader && waiting && now.at < held_since + SIZE_HOLD_MAX {
            self.size_change = Some((now.at + Duration::from_secs(1), to));
            return Vec::new();
        }
        self.size_held_since = None;
        if !self.leader {
            self.tier = to;
            return vec![info(format!(
                "the cluster's size changed (sized for up to {to} nodes); the loop that leads follows it"
            ))];
        }
        let change = format!("reconcile: sized for up to {to} nodes (was {})", self.tier);
        self.apply(self.classes, to, change, "could not resize the stack")
    }

    /// enable's plan for `classes` and a cluster of `tier` nodes, applied through enable's own
    /// engine (its lines go to the log), recorded as a revision saying `change`.
    fn apply(
        &mut self,
        classes: NodeClasses,
        tier: u32,
        change: String,
        failed: &'static str,
    ) -> Vec<Action> {
        self.busy.following = Some(Following {
            classes,
            tier,
            failed,
        });
        vec![
            info(format!("{change}: applying enable's plan")),
            Action::Ask(Request::Apply {
                config: Box::new(self.config.clone()),
                classes,
                tier,
                change,
            }),
        ]
    }

    /// The plan applied: the loop now holds it. A failure is tried again on the next change.
    pub(super) fn applied(&mut self, applied: Result<super::Applied, String>) -> Vec<Action> {
        let Some(following) = self.busy.following.take() else {
            return Vec::new();
        };
        match applied {
            Ok(applied) => {
                self.desired = applied.desired;
                self.classes = following.classes;
                self.tier = following.tier;
                // The parent moved under this loop's own hand.
                if let Some(version) = applied.parent_version {
                    self.parent_version = version;
                }
                Vec::new()
            }
            Err(e) => {
                self.api_errors += 1;
                vec![warn(format!(
                    "{}: {e}; trying again on the next change",
                    following.failed
                ))]
            }
        }
    }
}

/// The classes `have` has and `now` has not.
fn gone(have: NodeClasses, now: NodeClasses) -> String {
    NodeClasses {
        windows: have.windows && !now.windows,
        gpu: have.gpu && !now.gpu,
    }
    .describe()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        model::slim::SlimNode,
        reconcile::machine::{Applied, Input, Request, fixtures::*},
        status::Coverage,
    };

    const GPU: NodeClasses = NodeClasses {
        windows: false,
        gpu: true,
    };
    const WINDOWS: NodeClasses = NodeClasses {
        windows: true,
        gpu: false,
    };
    const BOTH: NodeClasses = NodeClasses {
        windows: true,
        gpu: true,
    };

    fn linux() -> Vec<(SlimNode, Coverage)> {
        nodes(&["a"], Coverage::Excluded)
    }

    fn with(extra: &[SlimNode]) -> Vec<(SlimNode, Coverage)> {
        let mut all = linux();
        all.extend(extra.iter().map(|n| (n.clone(), Coverage::Excluded)));
        all
    }

    fn assess(m: &mut Machine, secs: f64, present: &[(SlimNode, Coverage)]) -> Vec<String> {
        lines(&drive(
            m,
            Input::AssessDue,
            at(secs),
            cluster(|| look(present)),
        ))
    }

    fn apply(classes: NodeClasses, tier: u32, change: &str) -> Request {
        Request::Apply {
            config: Box::default(),
            classes,
            tier,
            change: change.into(),
        }
    }

    #[test]
    fn a_new_class_is_deployed_for_at_once_and_removed_after_the_grace_period() {
        let mut m = synced(options(), true, &linux());
        assert!(assess(&mut m, 10.0, &with(&[gpu("g")])).is_empty());
        assert_eq!(m.timers(at(10.0)).classes, Some(at(10.0).at));
        let out = drive(&mut m, Input::ClassDue, at(10.0), cluster(|| look(&[])));
        assert_eq!(
            lines(&out),
            ["info: reconcile: GPU nodes joined: applying enable's plan"]
        );
        assert_eq!(
            requests(&out),
            [&apply(GPU, 50, "reconcile: GPU nodes joined")]
        );
        assert!(assess(&mut m, 20.0, &with(&[gpu("g")])).is_empty());
        assert_eq!(m.timers(at(20.0)).classes, None);

        assert_eq!(
            assess(&mut m, 30.0, &linux()),
            [
                "info: node g left · it was excluded; 1 nodes now",
                "info: the last of the cluster's GPU nodes left; their exporters go in 600s unless one joins",
            ]
        );
        assert_eq!(m.timers(at(30.0)).classes, Some(at(630.0).at));
        // Said once, and the time holds.
        assert!(assess(&mut m, 40.0, &linux()).is_empty());
        assert_eq!(m.timers(at(40.0)).classes, Some(at(630.0).at));
        let out = drive(&mut m, Input::ClassDue, at(630.0), cluster(|| look(&[])));
        assert_eq!(
            lines(&out),
            ["info: reconcile: the last of the GPU nodes left: applying enable's plan"]
        );
        assert_eq!(
            requests(&out),
            [&apply(
                NodeClasses::default(),
                50,
                "reconcile: the last of the GPU nodes left"
            )]
        );
    }

    #[test]
    fn a_node_replaced_by_another_of_its_class_changes_nothing() {
        let mut m = synced(options(), true, &with(&[gpu("g")]));
        m.classes = GPU;
        assess(&mut m, 30.0, &linux());
        assert_eq!(m.timers(at(30.0)).classes, Some(at(630.0).at));
        assert!(assess(&mut m, 40.0, &with(&[gpu("g2")])).is_empty());
        assert_eq!(m.timers(at(40.0)).classes, None);
    }

    #[test]
    fn a_class_leaving_as_another_joins_stays_until_its_grace_period_is_over() {
        let mut m = synced(options(), true, &with(&[gpu("g")]));
        m.classes = GPU;
        assess(&mut m, 10.0, &with(&[windows("w")]));
        let out = drive(&mut m, Input::ClassDue, at(10.0), cluster(|| look(&[])));
        assert_eq!(
            requests(&out),
            [&apply(BOTH, 50, "reconcile: Windows and GPU nodes joined")]
        );
        assert_eq!(
            assess(&mut m, 11.0, &with(&[windows("w")])),
            [
                "info: the last of the cluster's GPU nodes left; their exporters go in 600s unless one joins"
            ]
        );
        let out = drive(&mut m, Input::ClassDue, at(611.0), cluster(|| look(&[])));
        assert_eq!(
            requests(&out),
            [&apply(
                WINDOWS,
                50,
                "reconcile: the last of the GPU nodes left"
            )]
        );
    }

    #[test]
    fn a_follower_notes_the_classes_and_a_failed_apply_is_tried_on_the_next_change() {
        let mut m = synced(options(), false, &linux());
        assess(&mut m, 10.0, &with(&[gpu("g")]));
        let out = m.handle(Input::ClassDue, at(10.0));
        assert_eq!(
            lines(&out),
            ["info: node classes changed (GPU nodes); the loop that leads follows them"]
        );
        assert!(requests(&out).is_empty());
        assess(&mut m, 20.0, &with(&[gpu("g")]));
        assert_eq!(m.timers(at(20.0)).classes, None);

        let mut m = synced(options(), true, &linux());
        assess(&mut m, 10.0, &with(&[gpu("g")]));
        m.handle(Input::ClassDue, at(10.0));
        let out = m.handle(Input::Applied(Err("boom".into())), at(11.0));
        assert_eq!(
            lines(&out),
            ["warn: could not follow the node classes: boom; trying again on the next change"]
        );
        assert!(m.summary_line().ends_with("1 API errors"));
        assess(&mut m, 20.0, &with(&[gpu("g")]));
        assert_eq!(m.timers(at(20.0)).classes, Some(at(20.0).at));
    }

    #[test]
    fn the_classes_that_left() {
        for (have, now, want) in [
            (BOTH, WINDOWS, "GPU nodes"),
            (BOTH, GPU, "Windows nodes"),
            (BOTH, NodeClasses::default(), "Windows and GPU nodes"),
            (GPU, NodeClasses::default(), "GPU nodes"),
        ] {
            assert_eq!(gone(have, now), want);
        }
    }

    #[test]
    fn a_growing_cluster_is_sized_up_once_the_burst_settles() {
        let mut m = synced(options(), true, &many(1));
        assert!(assess(&mut m, 10.0, &many(51)).is_empty());
        assert_eq!(m.timers(at(10.0)).size, Some(at(15.0).at));
        // More of the same burst: the same tier, the same time.
        assess(&mut m, 12.0, &many(60));
        assert_eq!(m.timers(at(12.0)).size, Some(at(15.0).at));
        // Past the next tier too: settled again.
        assess(&mut m, 13.0, &many(120));
        assert_eq!(m.timers(at(13.0)).size, Some(at(18.0).at));
        let out = drive(&mut m, Input::SizeDue, at(18.0), cluster(|| look(&[])));
        assert_eq!(
            lines(&out),
            ["info: reconcile: sized for up to 250 nodes (was 50): applying enable's plan"]
        );
        assert_eq!(
            requests(&out),
            [&apply(
                NodeClasses::default(),
                250,
                "reconcile: sized for up to 250 nodes (was 50)"
            )]
        );
        assess(&mut m, 20.0, &many(120));
        assert_eq!(m.timers(at(20.0)).size, None);
        // The parent moved under the loop's own hand: not a change of configuration.
        let parent = k8s_openapi::api::core::v1::ConfigMap {
            metadata: kube::api::ObjectMeta {
                resource_version: Some("2".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(m.handle(Input::Parent(Some(parent)), at(21.0)).is_empty());
    }

    #[test]
    fn a_resize_waits_for_the_joins_still_waiting_for_their_exporter_at_most_a_minute() {
        let mut m = synced(options(), true, &many(1));
        let mut joined = many(51);
        joined.push((node("late"), Coverage::NotMonitored));
        assess(&mut m, 10.0, &joined);
        assert_eq!(m.timers(at(10.0)).size, Some(at(15.0).at));
        // `late` waits for its exporter: no resize yet, asked again a second later.
        let out = drive(&mut m, Input::SizeDue, at(15.0), cluster(|| look(&joined)));
        assert!(requests(&out).is_empty(), "{out:?}");
        assert_eq!(m.timers(at(15.0)).size, Some(at(16.0).at));
        // Its exporter is Ready (its Event written): the resize goes ahead.
        let settled: Vec<_> = joined
            .iter()
            .map(|(n, _)| (n.clone(), Coverage::Excluded))
            .collect();
        assess(&mut m, 15.5, &settled);
        let out = drive(&mut m, Input::SizeDue, at(16.0), cluster(|| look(&settled)));
        assert_eq!(requests(&out).len(), 1, "{out:?}");
        // A node that never gets one holds a resize a minute at most.
        let mut m = synced(options(), true, &many(1));
        assess(&mut m, 10.0, &joined);
        for secs in 15..75 {
            let out = drive(
                &mut m,
                Input::SizeDue,
                at(f64::from(secs)),
                cluster(|| look(&joined)),
            );
            assert!(requests(&out).is_empty(), "at {secs}s: {out:?}");
        }
        let out = drive(&mut m, Input::SizeDue, at(75.0), cluster(|| look(&joined)));
        assert!(
            requests(&out)
                .iter()
                .any(|r| matches!(r, Request::Apply { .. })),
            "{out:?}"
        );
    }

    #[test]
    fn a_shrinking_cluster_is_sized_down_after_the_grace_period_only_well_below_its_tier() {
        for (tier, count, want) in [
            (100, 90, None),
            // A fifth below the tier under it is needed.
            (100, 45, None),
            (100, 40, Some(50)),
            (250, 10, Some(50)),
        ] {
            let mut m = synced(options(), true, &many(1));
            m.tier = tier;
            let said = assess(&mut m, 10.0, &many(count));
            match want {
                None => {
                    assert!(said.is_empty());
                    assert_eq!(m.timers(at(10.0)).size, None);
                }
                Some(to) => {
                    assert_eq!(
                        said,
                        [format!(
                            "info: the cluster has {count} nodes: the stack is sized down to up to {to} in 600s unless it grows again"
                        )]
                    );
                    assert_eq!(m.timers(at(10.0)).size, Some(at(610.0).at));
                    assert!(assess(&mut m, 20.0, &many(count)).is_empty());
                    assert_eq!(m.timers(at(20.0)).size, Some(at(610.0).at));
                }
            }
        }
        // Grown back before the grace period is over: nothing to do.
        let mut m = synced(options(), true, &many(1));
        m.tier = 250;
        assess(&mut m, 10.0, &many(10));
        assess(&mut m, 20.0, &many(200));
        assert_eq!(m.timers(at(20.0)).size, None);
    }

    #[test]
    fn a_follower_notes_the_size_and_a_failed_resize_is_tried_on_the_next_change() {
        let mut m = synced(options(), false, &many(1));
        assess(&mut m, 10.0, &many(51));
        let out = m.handle(Input::SizeDue, at(15.0));
        assert_eq!(
            lines(&out),
            [
                "info: the cluster's size changed (sized for up to 100 nodes); the loop that leads follows it"
            ]
        );
        assert_eq!(m.tier, 100);

        let mut m = synced(options(), true, &many(1));
        assess(&mut m, 10.0, &many(51));
        m.handle(Input::SizeDue, at(15.0));
        let out = m.handle(Input::Applied(Err("boom".into())), at(16.0));
        assert_eq!(
            lines(&out),
            ["warn: could not resize the stack: boom; trying again on the next change"]
        );
        assert_eq!(m.tier, 50);
        let applied = Applied {
            desired: desired(),
            parent_version: None,
        };
        // An answer nobody waits for changes nothing.
        assert!(m.handle(Input::Applied(Ok(applied)), at(17.0)).is_empty());
        assert_eq!(m.tier, 50);
    }
}
