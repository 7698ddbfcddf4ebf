//! Drift and the configuration (pure): a managed object another field manager changed, or that
//! is gone, waits for the debounce and is re-applied by the leader (once per object and
//! burst; never more than [`FIGHT_LIMIT`] times in [`FIGHT_WINDOW`]); a change of the parent
//! (an enable ran) makes the plan again before anything is repaired from it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DynamicObject, PartialObjectMeta};

use super::{
    Action, ExporterSource, FIGHT_LIMIT, FIGHT_WINDOW, Machine, Metric, Now, Planned,
    REPAIR_DEBOUNCE, Request, info, warn,
};
use crate::{
    apply::{self, FIELD_MANAGER, Key},
    config::Config,
    plan::Plan,
    reconcile::drift,
    render::{self, Object, meta::APPLYSET_PART_OF_LABEL, meta::CONFIG_KEY},
    resources::{self, Known, display_name},
    status,
};

/// enable's plan, by object, held as compact JSON text: parsed, a stack with its dashboards is
/// ~8 MB of `serde_json` values the loop reads only when an object drifts.
#[derive(Default)]
pub struct Desired {
    objects: HashMap<Key, Box<str>>,
    /// The ApplySet's id, from the members' part-of label.
    pub applyset_id: Option<String>,
}

impl Desired {
    pub fn of(plan: &Plan) -> Self {
        Self::of_members(plan.members.iter())
    }

    /// The members but CRDs (shared, never repaired by the loop).
    pub fn of_members<'a>(members: impl Iterator<Item = &'a Object> + Clone) -> Self {
        let members = members.filter(|o| render::kind(o) != "CustomResourceDefinition");
        Desired {
            applyset_id: members.clone().find_map(|o| {
                o.metadata
                    .labels
                    .as_ref()?
                    .get(APPLYSET_PART_OF_LABEL)
                    .cloned()
            }),
            objects: members
                .map(|o| {
                    let text = serde_json::to_string(o).expect("a rendered object serialises");
                    (apply::key(o), text.into_boxed_str())
                })
                .collect(),
        }
    }

    fn contains_key(&self, key: &Key) -> bool {
        self.objects.contains_key(key)
    }

    fn keys(&self) -> impl Iterator<Item = &Key> {
        self.objects.keys()
    }

    /// The object as enable would apply it.
    fn object(&self, key: &Key) -> Option<Object> {
        let text = self.objects.get(key)?;
        Some(serde_json::from_str(text).expect("written by Desired::of"))
    }

    /// The same, as JSON, for the field comparison.
    fn value(&self, key: &Key) -> Option<serde_json::Value> {
        let text = self.objects.get(key)?;
        Some(serde_json::from_str(text).expect("written by Desired::of"))
    }
}

/// What a watch of managed objects said.
pub enum MemberEvent {
    Applied(PartialObjectMeta<DynamicObject>),
    Deleted(PartialObjectMeta<DynamicObject>),
    /// Listed again: every object present, to compare with the plan.
    Listed(Vec<PartialObjectMeta<DynamicObject>>),
}

/// A repair under way: the objects still to look at, the one being applied (its name, why,
/// its kind), and whether a one pass' verdict follows.
pub(super) struct Repairing {
    keys: VecDeque<Key>,
    applying: Option<(String, String, String)>,
    verdict_after: bool,
}

/// A changed configuration whose plan is being made.
pub(super) struct ParentChange {
    config: Config,
    changed_config: bool,
    source: ExporterSource,
}

impl Machine {
    pub(super) fn member_event(&mut self, known: &Known, e: MemberEvent, now: Now) {
        let key_of = |m: &PartialObjectMeta<DynamicObject>| -> Key {
            let gk = match known.group() {
                "" => known.kind.to_string(),
                g => format!("{}.{g}", known.kind),
            };
            (
                gk,
                m.metadata.namespace.clone().unwrap_or_default(),
                m.metadata.name.clone().unwrap_or_default(),
            )
        };
        match e {
            MemberEvent::Applied(m) => {
                let key = key_of(&m);
                self.check_fields(&key, &m, now);
            }
            MemberEvent::Deleted(m) => {
                let key = key_of(&m);
                if self.desired.contains_key(&key) {
                    self.drifted(key, "deleted".into(), now);
                }
            }
            MemberEvent::Listed(items) => {
                let present: BTreeSet<Key> = items.iter().map(key_of).collect();
                let kind = known.kind;
                let missing: Vec<Key> = self
                    .desired
                    .keys()
                    .filter(|k| {
                        resources::by_group_kind(&k.0).is_some_and(|x| x.kind == kind)
                            && !present.contains(*k)
                    })
                    .cloned()
                    .collect();
                for key in missing {
                    self.drifted(key, "missing".into(), now);
                }
                for m in &items {
                    let key = key_of(m);
                    self.check_fields(&key, m, now);
                }
            }
        }
    }

    fn check_fields(&mut self, key: &Key, m: &PartialObjectMeta<DynamicObject>, now: Now) {
        let Some(desired) = self.desired.value(key) else {
            return;
        };
        let managed = m.metadata.managed_fields.as_deref().unwrap_or_default();
        let taken = drift::taken(&desired, managed, FIELD_MANAGER);
        if taken.is_empty() {
            return;
        }
        let mut by: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for t in &taken {
            by.entry(&t.manager).or_default().push(&t.field);
        }
        let why: Vec<String> = by
            .iter()
            .map(|(m, fields)| format!("changed by {m} ({})", fields.join(", ")))
            .collect();
        self.drifted(key.clone(), why.join("; "), now);
    }

    fn drifted(&mut self, key: Key, why: String, now: Now) {
        self.pending
            .entry(key)
            .and_modify(|(w, _)| *w = why.clone())
            .or_insert((why, now.at));
    }

    /// Re-applies what drifted (`all`: whatever the debounce), once per object and burst, when
    /// leading and allowed. An enable may be running: the parent is read first, and a changed
    /// configuration followed before anything is repaired.
    pub(super) fn repair(&mut self, all: bool, verdict_after: bool, now: Now) -> Vec<Action> {
        let keys: VecDeque<Key> = self
            .pending
            .iter()
            .filter(|(_, (_, at))| all || now.at.saturating_duration_since(*at) >= REPAIR_DEBOUNCE)
            .map(|(k, _)| k.clone())
            .collect();
        if keys.is_empty() {
            return if verdict_after {
                self.verdict(now)
            } else {
                Vec::new()
            };
        }
        self.busy.repairing = Some(Repairing {
            keys,
            applying: None,
            verdict_after,
        });
        vec![Action::Ask(Request::ReadParent)]
    }

    pub(super) fn parent_read(&mut self, parent: Option<ConfigMap>, now: Now) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some(parent) = parent
            && parent.metadata.resource_version != self.parent_version
        {
            out = self.parent_changed(parent);
            if self.busy.planning.is_some() {
                // The repair goes on once the plan is made.
                return out;
            }
        }
        out.extend(self.next_repair(now));
        out
    }

    /// The next object due: left alone (not allowed, not leading, or fought over), or
    /// re-applied. When none is left, the one pass' verdict if it waits.
    fn next_repair(&mut self, now: Now) -> Vec<Action> {
        let mut out = Vec::new();
        loop {
            let Some(repairing) = self.busy.repairing.as_mut() else {
                return out;
            };
            let Some(key) = repairing.keys.pop_front() else {
                let verdict_after = repairing.verdict_after;
                self.busy.repairing = None;
                if verdict_after {
                    out.extend(self.verdict(now));
                }
                return out;
            };
            let Some((why, _)) = self.pending.remove(&key) else {
                continue;
            };
            let Some(object) = self.desired.object(&key) else {
                continue;
            };
            let name = display_name(&object);
            if !self.options.repair || !self.leader {
                let not = if self.options.repair {
                    "not repaired: another loop leads"
                } else {
                    "not repaired (--no-repair)"
                };
                out.push(warn(format!("{name} {why} · {not}")));
                self.drift_left.push(name);
                continue;
            }
            let times = self.repaired.entry(key).or_default();
            times.retain(|t| now.at.saturating_duration_since(*t) < FIGHT_WINDOW);
            if times.len() >= FIGHT_LIMIT {
                if times.len() == FIGHT_LIMIT {
                    out.push(warn(format!(
                        "{name} {why}: repaired {FIGHT_LIMIT} times in {}m and changed back each time; leaving it alone (something else manages it)",
                        FIGHT_WINDOW.as_secs() / 60
                    )));
                    times.push(now.at);
                }
                continue;
            }
            times.push(now.at);
            repairing.applying = Some((name, why, render::kind(&object).to_string()));
            out.push(Action::Ask(Request::Repair(Box::new(object))));
            return out;
        }
    }

    /// The answer to a re-apply. A failure is tried again on the next change, or burst.
    pub(super) fn repaired(&mut self, applied: Result<(), String>, now: Now) -> Vec<Action> {
        let Some((name, why, kind)) = self.busy.repairing.as_mut().and_then(|r| r.applying.take())
        else {
            return Vec::new();
        };
        let mut out = match applied {
            Ok(()) => vec![
                Action::Metric(Metric::Repair(kind)),
                info(format!("{name} {why} · restored")),
            ],
            Err(e) => {
                self.api_errors += 1;
                vec![
                    Action::Metric(Metric::ApiError("repair")),
                    warn(format!("{name} {why} · could not restore it: {e}")),
                ]
            }
        };
        out.extend(self.next_repair(now));
        out
    }

    /// The configuration may have changed: make the plan again (what should exist). The
    /// exporter the nodes rely on is watched as it was at the start: when it moved, say so.
    pub(super) fn parent_changed(&mut self, parent: ConfigMap) -> Vec<Action> {
        if parent.metadata.resource_version == self.parent_version {
            return Vec::new();
        }
        let config = match status::stored_config(&parent) {
            Ok(c) => c,
            Err(e) => {
                return vec![warn(format!(
                    "the stored configuration cannot be read ({e}); keeping the previous one"
                ))];
            }
        };
        let text = config_text(&parent);
        let changed_config = text != self.config_text;
        self.config_text = text;
        self.parent_version = parent.metadata.resource_version.clone();
        // As enable sized it: for the cluster as it is now.
        let request = Request::Plan {
            config: Box::new(config.clone()),
            classes: self.classes,
        };
        self.busy.planning = Some(ParentChange {
            config,
            changed_config,
            source: ExporterSource::of(&parent, &self.namespace),
        });
        vec![Action::Ask(request)]
    }

    /// The plan for a changed configuration; a repair waiting on it goes on.
    pub(super) fn planned(&mut self, plan: Result<Planned, String>, now: Now) -> Vec<Action> {
        let Some(change) = self.busy.planning.take() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match plan {
            Ok(Planned { desired, nodes }) => {
                self.desired = desired;
                self.tier = crate::sizing::tier(nodes);
                self.config = change.config;
                // Whatever was pending is judged again against the new plan.
                self.pending.retain(|k, _| self.desired.contains_key(k));
                if change.changed_config {
                    out.push(info(
                        "the stored configuration changed (an enable ran): following it",
                    ));
                }
            }
            Err(e) => out.push(warn(format!(
                "cannot work out the new plan ({e}); keeping the previous one"
            ))),
        }
        let (was, source) = (&self.source, &change.source);
        if source != was {
            out.push(warn(format!(
                "the node exporter is now {}/{} (was {}/{}); start the loop again to follow it",
                source.namespace, source.name, was.namespace, was.name
            )));
        }
        if self.busy.repairing.is_some() {
            out.extend(self.next_repair(now));
        }
        out
    }
}

pub fn config_text(parent: &ConfigMap) -> Option<String> {
    parent.data.as_ref()?.get(CONFIG_KEY).cloned()
}
