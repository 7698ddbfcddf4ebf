//! The stack follows the nodes (pure): a new class of node (Windows, GPU) is deployed for at
//! once, one whose last node left is removed after `--class-grace`; the stack is sized up soon
//! after the cluster outgrows its tier ([`SIZE_SETTLE`]) and down only after the grace period.
//! The leader applies enable's plan for it; another loop only takes note.

use super::{Action, Machine, Now, Request, SIZE_SETTLE, info, warn};
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
        self.size_change = match crate::sizing::next_tier(self.tier, nodes) {
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

    /// Applies enable's plan sized for the tier due, and records a revision.
    pub(super) fn size_due(&mut self) -> Vec<Action> {
        let Some((_, to)) = self.size_change.take() else {
            return Vec::new();
        };
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
