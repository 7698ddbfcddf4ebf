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
    cluster::apply::{self, FIELD_MANAGER, Key},
    config::Config,
    model::{
        Object,
        names::{APPLYSET_PART_OF_LABEL, CONFIG_KEY},
        resources::{self, Known, display_name},
    },
    plan::Plan,
    reconcile::drift,
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
        let members = members.filter(|o| crate::model::kind(o) != "CustomResourceDefinition");
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
            repairing.applying = Some((name, why, crate::model::kind(&object).to_string()));
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
        let config = match crate::cluster::inventory::stored_config(&parent) {
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
                self.tier = crate::config::sizing::tier(nodes);
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{exit::Verdict, status::Health};

    use super::*;
    use crate::reconcile::{
        Options,
        machine::{Input, fixtures::*},
    };

    fn edited(manager: &str) -> MemberEvent {
        MemberEvent::Applied(meta(
            "rules",
            &[
                ("kubectl-automon", json!({"f:metadata": {"f:labels": {}}})),
                (manager, json!({"f:spec": {"f:groups": {}}})),
            ],
        ))
    }

    /// `event` at 10s, and the repair it leads to.
    fn repair_after(m: &mut Machine, known: &'static Known, event: MemberEvent) -> Vec<Action> {
        assert!(m.handle(Input::Member(known, event), at(10.0)).is_empty());
        assert_eq!(m.timers(at(10.0)).repair, Some(at(10.5).at));
        // The burst's debounce is not over.
        assert!(m.handle(Input::RepairDue, at(10.2)).is_empty());
        drive(m, Input::RepairDue, at(10.5), cluster(|| look(&[])))
    }

    #[test]
    fn drift_is_put_back_after_the_debounce() {
        for (known, event, kind, line) in [
            (
                prometheus_rule(),
                edited("kubectl-edit"),
                "PrometheusRule",
                "prometheusrule.monitoring.coreos.com/rules changed by kubectl-edit (spec.groups)",
            ),
            (
                config_map(),
                MemberEvent::Deleted(ours("dash")),
                "ConfigMap",
                "configmap/dash deleted",
            ),
            (
                config_map(),
                MemberEvent::Listed(vec![]),
                "ConfigMap",
                "configmap/dash missing",
            ),
            // Changed while the watch was away: seen in the listing.
            (
                prometheus_rule(),
                MemberEvent::Listed(vec![meta(
                    "rules",
                    &[("helm", json!({"f:spec": {"f:groups": {}}}))],
                )]),
                "PrometheusRule",
                "prometheusrule.monitoring.coreos.com/rules changed by helm (spec.groups)",
            ),
        ] {
            let mut m = synced(options(), true, &[]);
            let out = repair_after(&mut m, known, event);
            assert!(matches!(
                requests(&out)[..],
                [Request::ReadParent, Request::Repair(_)]
            ));
            assert_eq!(metrics(&out), [&Metric::Repair(kind.into())]);
            assert_eq!(lines(&out), [format!("info: {line} · restored")]);
            assert_eq!(m.timers(at(10.5)).repair, None);
        }
    }

    #[test]
    fn the_plan_kept_is_the_members_but_crds_with_the_applyset_id() {
        let crd: Object = serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "prometheuses.monitoring.coreos.com"},
        }))
        .expect("an object");
        let all = [objects(), vec![crd]].concat();
        let d = Desired::of_members(all.iter());
        assert_eq!(d.applyset_id.as_deref(), Some("applyset-1"));
        let mut keys: Vec<&Key> = d.keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                &("ConfigMap".into(), NS.into(), "dash".into()),
                &(
                    "PrometheusRule.monitoring.coreos.com".into(),
                    NS.into(),
                    "rules".into()
                ),
            ]
        );
        let key = ("ConfigMap".into(), NS.into(), "dash".into());
        assert_eq!(d.object(&key).as_ref(), Some(&objects()[0]));
    }

    #[test]
    fn what_is_not_drift() {
        for (known, event) in [
            // automon's own fields, as it applied them.
            (prometheus_rule(), MemberEvent::Applied(ours("rules"))),
            // Not in the plan.
            (config_map(), MemberEvent::Applied(ours("other"))),
            (config_map(), MemberEvent::Deleted(ours("other"))),
            (config_map(), MemberEvent::Listed(vec![ours("dash")])),
        ] {
            let mut m = synced(options(), true, &[]);
            m.handle(Input::Member(known, event), at(10.0));
            assert_eq!(m.timers(at(10.0)).repair, None);
        }
    }

    #[test]
    fn a_burst_of_changes_is_one_repair_saying_the_latest() {
        let mut m = synced(options(), true, &[]);
        m.handle(Input::Member(prometheus_rule(), edited("a")), at(10.0));
        m.handle(Input::Member(prometheus_rule(), edited("b")), at(10.3));
        assert_eq!(m.timers(at(10.3)).repair, Some(at(10.5).at));
        let out = drive(&mut m, Input::RepairDue, at(10.5), cluster(|| look(&[])));
        assert_eq!(
            lines(&out),
            [
                "info: prometheusrule.monitoring.coreos.com/rules changed by b (spec.groups) · restored"
            ]
        );
    }

    #[test]
    fn drift_is_left_alone_without_the_lease_or_with_no_repair() {
        let no_repair = Options {
            repair: false,
            ..options()
        };
        for (options, leader, not) in [
            (no_repair, true, "not repaired (--no-repair)"),
            (options(), false, "not repaired: another loop leads"),
        ] {
            let mut m = synced(options, leader, &[]);
            let out = repair_after(&mut m, config_map(), MemberEvent::Deleted(ours("dash")));
            assert_eq!(requests(&out), [&Request::ReadParent]);
            assert_eq!(
                lines(&out),
                [format!("warn: configmap/dash deleted · {not}")]
            );
            assert_eq!(m.drift_left, ["configmap/dash"]);
        }
    }

    #[test]
    fn an_object_changed_back_each_time_is_left_alone_after_five_repairs() {
        let mut m = synced(options(), true, &[]);
        let restored = vec!["info: configmap/dash deleted · restored".to_string()];
        let left = vec![
            "warn: configmap/dash deleted: repaired 5 times in 5m and changed back each time; leaving it alone (something else manages it)".to_string(),
        ];
        for (secs, want) in [
            (0.0, &restored),
            (10.0, &restored),
            (20.0, &restored),
            (30.0, &restored),
            (40.0, &restored),
            (50.0, &left),
            (60.0, &vec![]),
            // Five minutes after the last repair, the window is clear.
            (360.0, &restored),
        ] {
            m.handle(
                Input::Member(config_map(), MemberEvent::Deleted(ours("dash"))),
                at(secs),
            );
            let out = drive(
                &mut m,
                Input::RepairDue,
                at(secs + 0.5),
                cluster(|| look(&[])),
            );
            assert_eq!(&lines(&out), want, "at {secs}s");
            let repaired = requests(&out).len() == 2;
            assert_eq!(repaired, *want == restored, "at {secs}s");
        }
    }

    #[test]
    fn a_failed_repair_is_counted_and_tried_again_on_the_next_change() {
        let mut m = synced(options(), true, &[]);
        m.handle(
            Input::Member(config_map(), MemberEvent::Deleted(ours("dash"))),
            at(10.0),
        );
        let out = drive(&mut m, Input::RepairDue, at(10.5), |r| match r {
            Request::Repair(_) => Input::Repaired(Err("conflict".into())),
            r => cluster(|| look(&[]))(r),
        });
        assert_eq!(metrics(&out), [&Metric::ApiError("repair")]);
        assert_eq!(
            lines(&out),
            ["warn: configmap/dash deleted · could not restore it: conflict"]
        );
        assert_eq!(m.timers(at(11.0)).repair, None);
        assert!(m.summary_line().ends_with("1 API errors"));
        let out = repair_after(&mut m, config_map(), MemberEvent::Deleted(ours("dash")));
        assert_eq!(lines(&out), ["info: configmap/dash deleted · restored"]);
    }

    fn parent(version: &str, text: &str, exporter: Option<&str>) -> ConfigMap {
        ConfigMap {
            metadata: kube::api::ObjectMeta {
                namespace: Some(NS.into()),
                resource_version: Some(version.into()),
                annotations: exporter.map(|e| {
                    [(
                        crate::model::names::EXPORTER_FROM.to_string(),
                        e.to_string(),
                    )]
                    .into()
                }),
                ..Default::default()
            },
            data: Some([(CONFIG_KEY.to_string(), text.to_string())].into()),
            ..Default::default()
        }
    }

    fn planned(desired: Desired, nodes: u32) -> Input {
        Input::Planned(Ok(Planned { desired, nodes }))
    }

    #[test]
    fn a_changed_configuration_is_followed() {
        let changed = "info: the stored configuration changed (an enable ran): following it";
        let moved = "warn: the node exporter is now kube-system/ne (was mon/node-exporter); start the loop again to follow it";
        let skip = "nodeExporter:\n  excludeLabel: skip\n";
        for (parent, answer, want, exclude) in [
            // Only the resourceVersion moved: the same configuration, planned again quietly.
            (
                parent("2", "namespace: mon\n", None),
                Some(planned(desired(), 3)),
                vec![],
                "",
            ),
            (
                parent("2", skip, None),
                Some(planned(desired(), 3)),
                vec![changed],
                "skip",
            ),
            (
                parent("2", skip, None),
                Some(Input::Planned(Err("boom".into()))),
                vec!["warn: cannot work out the new plan (boom); keeping the previous one"],
                "",
            ),
            (
                parent("2", "namespace: mon\n", Some("kube-system/ne")),
                Some(planned(desired(), 3)),
                vec![moved],
                "",
            ),
            // The version the plan was made from.
            (parent("1", skip, None), None, vec![], ""),
        ] {
            let mut m = synced(options(), true, &[]);
            let out = m.handle(Input::Parent(Some(parent)), at(10.0));
            match answer {
                Some(answer) => {
                    assert!(matches!(requests(&out)[..], [Request::Plan { .. }]));
                    assert_eq!(lines(&m.handle(answer, at(11.0))), want);
                }
                None => assert!(out.is_empty()),
            }
            let out = m.handle(Input::AssessDue, at(12.0));
            // "": the default, still in force.
            let exclude_label = match exclude {
                "" => Config::default().node_exporter.exclude_label,
                label => label.into(),
            };
            let asked = Request::Assess {
                exclude_label,
                exporter: "node-exporter".into(),
                namespace: NS.into(),
                exporter_from: None,
            };
            assert_eq!(requests(&out), [&asked]);
        }
    }

    #[test]
    fn a_configuration_that_cannot_be_read_is_not_followed() {
        let mut m = synced(options(), true, &[]);
        let out = m.handle(Input::Parent(Some(parent("2", "nope: [", None))), at(10.0));
        let said = lines(&out);
        assert!(requests(&out).is_empty());
        assert!(
            said.len() == 1
                && said[0].starts_with("warn: the stored configuration cannot be read (")
                && said[0].ends_with("); keeping the previous one"),
            "{said:?}"
        );
    }

    #[test]
    fn the_plan_for_a_changed_configuration_sizes_the_stack_for_the_cluster_now() {
        let mut m = synced(options(), true, &[]);
        m.handle(
            Input::Parent(Some(parent("2", "namespace: mon\n", None))),
            at(10.0),
        );
        m.handle(planned(desired(), 60), at(10.0));
        assert_eq!(m.tier, 100);
    }

    #[test]
    fn a_repair_follows_a_configuration_changed_meanwhile() {
        let without_dash = || Desired::of_members(objects()[1..].iter());
        for (plan, want) in [
            (
                desired(),
                vec![
                    "info: the stored configuration changed (an enable ran): following it",
                    "info: configmap/dash deleted · restored",
                ],
            ),
            // The new plan has no such object: nothing to put back.
            (
                without_dash(),
                vec!["info: the stored configuration changed (an enable ran): following it"],
            ),
        ] {
            let mut m = synced(options(), true, &[]);
            let mut plan = Some(plan);
            m.handle(
                Input::Member(config_map(), MemberEvent::Deleted(ours("dash"))),
                at(10.0),
            );
            let out = drive(&mut m, Input::RepairDue, at(10.5), |r| match r {
                Request::ReadParent => Input::ParentRead(Some(parent(
                    "2",
                    "nodeExporter:\n  excludeLabel: skip\n",
                    None,
                ))),
                Request::Plan { .. } => planned(plan.take().expect("one plan"), 3),
                r => cluster(|| look(&[]))(r),
            });
            assert_eq!(lines(&out), want);
            // Planned once: the parent is now at the version the plan was made from.
            let again = m.handle(Input::Parent(Some(parent("2", "", None))), at(11.0));
            assert!(again.is_empty());
        }
    }

    #[test]
    fn a_one_pass_repairs_what_the_listing_found_at_once() {
        let no_repair = Options {
            repair: false,
            ..one_pass()
        };
        for (options, line, code) in [
            (
                one_pass(),
                "info: configmap/dash missing · restored",
                Verdict::Done,
            ),
            (
                no_repair,
                "warn: configmap/dash missing · not repaired (--no-repair)",
                Verdict::Health(Health::Degraded),
            ),
        ] {
            let mut m = machine(options);
            let started = Input::Started {
                held_by: None,
                leader: true,
            };
            m.handle(started, at(0.0));
            for input in listings() {
                let input = match input {
                    Input::Member(known, _) if known == config_map() => {
                        Input::Member(known, MemberEvent::Listed(vec![]))
                    }
                    input => input,
                };
                m.handle(input, at(0.9));
            }
            let out = drive(&mut m, Input::AssessDue, at(1.0), cluster(|| look(&[])));
            assert_eq!(
                lines(&out),
                ["Synced: 0 nodes, 0 exporters in 1.0s · 0 monitored", line]
            );
            assert_eq!(out.last(), Some(&Action::Exit(code)));
        }
    }
}
