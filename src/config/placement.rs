//! Where a component's pods may run: `nodeSelector`, `tolerations`, `affinity`,
//! `priorityClassName` and `topologySpreadConstraints` of `prometheus`, `alertmanager`,
//! `grafana`, `kubeStateMetrics` and `operator`, named and shaped as in a pod spec (and as
//! kube-prometheus-stack's values name them). Each is checked at load as the API server would
//! check it, so that a bad value is refused by its key before anything is written.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, Toleration, TopologySpreadConstraint};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use super::{Config, Invalid, check_labels, invalid, is_label_key, is_label_value};

/// One component's placement, borrowed from its section of the configuration. The scheduling
/// fields stay as given (JSON) until they are checked: a key Kubernetes does not know would
/// otherwise vanish silently in the typed pod spec.
#[derive(Debug, Clone, Copy)]
pub struct Placement<'a> {
    pub node_selector: &'a BTreeMap<String, String>,
    pub tolerations: &'a [Value],
    pub affinity: Option<&'a Value>,
    pub priority_class_name: Option<&'a str>,
    pub topology_spread_constraints: &'a [Value],
}

/// The sections that have a placement, with their keys.
macro_rules! placement_of {
    ($($section:ident),*) => {$(
        impl super::$section {
            pub fn placement(&self) -> Placement<'_> {
                Placement {
                    node_selector: &self.node_selector,
                    tolerations: &self.tolerations,
                    affinity: self.affinity.as_ref(),
                    priority_class_name: self.priority_class_name.as_deref(),
                    topology_spread_constraints: &self.topology_spread_constraints,
                }
            }
        }
    )*};
}
placement_of!(
    Prometheus,
    Alertmanager,
    Grafana,
    KubeStateMetrics,
    Operator
);

impl Placement<'_> {
    /// The tolerations as the pod spec takes them (checked at load).
    pub fn tolerations(&self) -> Vec<Toleration> {
        self.tolerations.iter().filter_map(typed).collect()
    }

    pub fn affinity(&self) -> Option<Affinity> {
        self.affinity.and_then(typed)
    }

    pub fn topology_spread_constraints(&self) -> Vec<TopologySpreadConstraint> {
        self.topology_spread_constraints
            .iter()
            .filter_map(typed)
            .collect()
    }

    /// Linux nodes (every component's images are Linux ones), and the user's selector.
    pub fn node_selector(&self) -> BTreeMap<String, String> {
        let mut selector = BTreeMap::from([("kubernetes.io/os".to_string(), "linux".to_string())]);
        selector.extend(self.node_selector.clone());
        selector
    }

    /// Whether the user said anything about how replicas are spread: then automon adds no
    /// spread of its own.
    pub fn spreads(&self) -> bool {
        self.affinity.is_some() || !self.topology_spread_constraints.is_empty()
    }
}

fn typed<T: DeserializeOwned>(v: &Value) -> Option<T> {
    serde_json::from_value(v.clone()).ok()
}

/// Each section's placement, at its keys.
pub(super) fn check(config: &Config) -> Result<(), Invalid> {
    let sections = [
        ("prometheus", config.prometheus.placement()),
        ("alertmanager", config.alertmanager.placement()),
        ("grafana", config.grafana.placement()),
        ("kubeStateMetrics", config.kube_state_metrics.placement()),
        ("operator", config.operator.placement()),
    ];
    for (section, p) in sections {
        check_one(section, &p)?;
    }
    Ok(())
}

fn check_one(section: &str, p: &Placement) -> Result<(), Invalid> {
    check_labels(&format!("{section}.nodeSelector"), p.node_selector)?;
    for (i, t) in p.tolerations.iter().enumerate() {
        let key = format!("{section}.tolerations[{i}]");
        let t: Toleration = exactly(
            &key,
            t,
            "a toleration: {key, operator, value, effect, tolerationSeconds}",
        )?;
        check_toleration(&key, &t)?;
    }
    if let Some(a) = p.affinity {
        exactly::<Affinity>(
            &format!("{section}.affinity"),
            a,
            "an affinity: {nodeAffinity, podAffinity, podAntiAffinity}",
        )?;
    }
    if let Some(name) = p.priority_class_name {
        super::checks::object_name("PriorityClass", name, "system-cluster-critical")
            .map_err(|e| invalid(&format!("{section}.priorityClassName"), e))?;
    }
    for (i, c) in p.topology_spread_constraints.iter().enumerate() {
        let key = format!("{section}.topologySpreadConstraints[{i}]");
        let c: TopologySpreadConstraint = exactly(
            &key,
            c,
            "a topology spread constraint: {maxSkew, topologyKey, whenUnsatisfiable, labelSelector}",
        )?;
        check_spread(&key, &c)?;
    }
    Ok(())
}

/// `given` read as a `T`, refused when it does not fit or when a key of it is not one of
/// `T`'s (the typed value would drop it without a word): the first such key is named.
fn exactly<T: DeserializeOwned + Serialize>(
    key: &str,
    given: &Value,
    shape: &str,
) -> Result<T, Invalid> {
    let typed: T = serde_json::from_value(given.clone()).map_err(|e| {
        invalid(
            key,
            format!("{}; expected {shape}", super::user_words(&e.to_string())),
        )
    })?;
    let back = serde_json::to_value(&typed).unwrap_or(Value::Null);
    if let Some(path) = dropped(given, &back, "") {
        return Err(invalid(
            &format!("{key}{path}"),
            format!("not a field of {shape}"),
        ));
    }
    Ok(typed)
}

/// The first key of `given` that `kept` lacks, as `.a.b[2].c`.
fn dropped(given: &Value, kept: &Value, at: &str) -> Option<String> {
    match (given, kept) {
        (Value::Object(g), Value::Object(k)) => g.iter().find_map(|(name, v)| match k.get(name) {
            // A null comes back absent: it says nothing.
            None if v.is_null() => None,
            None => Some(format!("{at}.{name}")),
            Some(kv) => dropped(v, kv, &format!("{at}.{name}")),
        }),
        (Value::Array(g), Value::Array(k)) => g
            .iter()
            .zip(k)
            .enumerate()
            .find_map(|(i, (g, k))| dropped(g, k, &format!("{at}[{i}]"))),
        _ => None,
    }
}

/// What the API server refuses in a toleration (core validation of `Toleration`).
fn check_toleration(key: &str, t: &Toleration) -> Result<(), Invalid> {
    let operator = t.operator.as_deref().unwrap_or("Equal");
    if !matches!(operator, "Equal" | "Exists") {
        return Err(invalid(
            &format!("{key}.operator"),
            format!("{operator:?} is not a toleration operator; use Equal or Exists"),
        ));
    }
    if let Some(k) = t.key.as_deref().filter(|k| !k.is_empty()) {
        if !is_label_key(k) {
            return Err(invalid(
                &format!("{key}.key"),
                format!("{k:?} is not a valid taint key"),
            ));
        }
    } else if operator != "Exists" {
        return Err(invalid(
            &format!("{key}.operator"),
            "a toleration without a key tolerates every taint only with operator Exists".into(),
        ));
    }
    if operator == "Exists" && t.value.as_deref().is_some_and(|v| !v.is_empty()) {
        return Err(invalid(
            &format!("{key}.value"),
            "a toleration with operator Exists takes no value".into(),
        ));
    }
    if let Some(v) = t.value.as_deref()
        && !is_label_value(v)
    {
        return Err(invalid(
            &format!("{key}.value"),
            format!("{v:?} is not a valid taint value"),
        ));
    }
    let effect = t.effect.as_deref().unwrap_or("");
    if !matches!(effect, "" | "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        return Err(invalid(
            &format!("{key}.effect"),
            format!(
                "{effect:?} is not a taint effect; use NoSchedule, PreferNoSchedule or NoExecute (or leave it out for all three)"
            ),
        ));
    }
    if t.toleration_seconds.is_some() && effect != "NoExecute" {
        return Err(invalid(
            &format!("{key}.tolerationSeconds"),
            "only a toleration of effect NoExecute has tolerationSeconds".into(),
        ));
    }
    Ok(())
}

/// What the API server refuses in a topology spread constraint.
fn check_spread(key: &str, c: &TopologySpreadConstraint) -> Result<(), Invalid> {
    if c.max_skew < 1 {
        return Err(invalid(
            &format!("{key}.maxSkew"),
            format!("{} is not a skew; it is 1 or more", c.max_skew),
        ));
    }
    if !is_label_key(&c.topology_key) {
        return Err(invalid(
            &format!("{key}.topologyKey"),
            format!(
                "{:?} is not a node label key; e.g. kubernetes.io/hostname or topology.kubernetes.io/zone",
                c.topology_key
            ),
        ));
    }
    if !matches!(
        c.when_unsatisfiable.as_str(),
        "DoNotSchedule" | "ScheduleAnyway"
    ) {
        return Err(invalid(
            &format!("{key}.whenUnsatisfiable"),
            format!(
                "{:?} is not a choice; use DoNotSchedule or ScheduleAnyway",
                c.when_unsatisfiable
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn refused(set: &str) -> String {
        match Config::default().with_set(set) {
            Ok(_) => panic!("{set} was accepted"),
            Err(e) => format!("{}: {}", e.key, e.problem),
        }
    }

    fn accepted(set: &str) -> Config {
        Config::default()
            .with_set(set)
            .unwrap_or_else(|e| panic!("{set}: {e}"))
    }

    /// Per key: the values refused (with the key and words the error names) and accepted.
    #[test]
    fn each_key_refuses_what_the_api_server_would() {
        let refusals = [
            (
                "grafana.nodeSelector={'bad key!': x}",
                "grafana.nodeSelector.bad key!: \"bad key!\" is not a valid label key",
            ),
            (
                "grafana.nodeSelector={pool: 'a b'}",
                "grafana.nodeSelector.pool: \"a b\" is not a valid label value",
            ),
            (
                "prometheus.tolerations=[{key: k, operator: Maybe}]",
                "prometheus.tolerations[0].operator: \"Maybe\" is not a toleration operator",
            ),
            (
                "prometheus.tolerations=[{key: k, operator: Exists, value: v}]",
                "prometheus.tolerations[0].value: a toleration with operator Exists takes no value",
            ),
            (
                "prometheus.tolerations=[{value: v}]",
                "prometheus.tolerations[0].operator: a toleration without a key",
            ),
            (
                "alertmanager.tolerations=[{key: k, effect: NoScheduling}]",
                "alertmanager.tolerations[0].effect: \"NoScheduling\" is not a taint effect",
            ),
            (
                "alertmanager.tolerations=[{key: k, effect: NoSchedule, tolerationSeconds: 30}]",
                "alertmanager.tolerations[0].tolerationSeconds: only a toleration of effect NoExecute",
            ),
            (
                "operator.tolerations=[{key: k, efect: NoSchedule}]",
                "operator.tolerations[0].efect: not a field of a toleration",
            ),
            (
                "kubeStateMetrics.tolerations=[{key: k, tolerationSeconds: soon, effect: NoExecute}]",
                "kubeStateMetrics.tolerations[0]: expected",
            ),
            (
                "prometheus.affinity={nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpresions: [{key: a, operator: In}]}]}}}",
                "prometheus.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpresions: not a field of an affinity",
            ),
            (
                "prometheus.affinity={podAntiAfinity: {}}",
                "prometheus.affinity.podAntiAfinity: not a field",
            ),
            (
                "grafana.priorityClassName=Critical",
                "grafana.priorityClassName: \"Critical\" is not a PriorityClass name",
            ),
            (
                "alertmanager.topologySpreadConstraints=[{maxSkew: 0, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway}]",
                "alertmanager.topologySpreadConstraints[0].maxSkew: 0 is not a skew",
            ),
            (
                "alertmanager.topologySpreadConstraints=[{maxSkew: 1, topologyKey: 'zone!', whenUnsatisfiable: ScheduleAnyway}]",
                "alertmanager.topologySpreadConstraints[0].topologyKey: \"zone!\" is not a node label key",
            ),
            (
                "alertmanager.topologySpreadConstraints=[{maxSkew: 1, topologyKey: zone, whenUnsatisfiable: Whenever}]",
                "alertmanager.topologySpreadConstraints[0].whenUnsatisfiable: \"Whenever\" is not a choice",
            ),
            (
                "alertmanager.topologySpreadConstraints=[{maxSkew: 1, whenUnsatisfiable: ScheduleAnyway}]",
                "alertmanager.topologySpreadConstraints[0].topologyKey: \"\" is not a node label key",
            ),
            ("operator.nodeSelecter={a: b}", "operator.nodeSelecter: "),
        ];
        for (set, words) in refusals {
            let e = refused(set);
            assert!(
                e.starts_with(words) || e.contains(words),
                "{set}:\n  {e}\n  expected {words}"
            );
        }
        let acceptances = [
            "grafana.nodeSelector={node-role.kubernetes.io/infra: ''}",
            "prometheus.tolerations=[{key: dedicated, operator: Equal, value: monitoring, effect: NoSchedule}]",
            "prometheus.tolerations=[{operator: Exists}]",
            "alertmanager.tolerations=[{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 30}]",
            "prometheus.affinity={nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: pool, operator: In, values: [infra]}]}]}}}",
            "operator.priorityClassName=system-cluster-critical",
            "kubeStateMetrics.topologySpreadConstraints=[{maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: x}}}]",
        ];
        for set in acceptances {
            accepted(set);
        }
    }

    #[test]
    fn linux_nodes_always_and_the_users_selector_beside() {
        let c = accepted("grafana.nodeSelector={pool: infra}");
        let selector = c.grafana.placement().node_selector();
        assert_eq!(selector["kubernetes.io/os"], "linux");
        assert_eq!(selector["pool"], "infra");
        assert!(!c.grafana.placement().spreads());
        assert!(
            accepted("grafana.affinity={podAntiAffinity: {}}")
                .grafana
                .placement()
                .spreads()
        );
    }
}
