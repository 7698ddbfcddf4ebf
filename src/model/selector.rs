//! Kubernetes' matching rules, as the scheduler, the DaemonSet controller and the Prometheus
//! Operator apply them: label selectors, node selector requirements and tolerations. Pure; each
//! returns what is unmet in words a user can act on, not just a boolean.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{NodeSelectorRequirement, Taint, Toleration},
    apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement},
};

use serde_json::Value;

use super::Object;

type Labels = BTreeMap<String, String>;

/// The requirements of `selector` that `labels` do not meet, as `key=value`, `key in (a,b)`,
/// `key notin (a)`, `key` or `!key`. Empty when the selector matches. An empty selector (`{}`)
/// matches everything; whether a missing selector matches nothing or everything is the
/// caller's rule, not this function's.
pub fn unmet(selector: &LabelSelector, labels: &Labels) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in selector.match_labels.iter().flatten() {
        if labels.get(k) != Some(v) {
            out.push(format!("{k}={v}"));
        }
    }
    for r in selector.match_expressions.iter().flatten() {
        if !expression_holds(r, labels) {
            out.push(describe_expression(r));
        }
    }
    out
}

/// Why a `Prometheus` does not pick an object up.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unmet {
    /// Its namespace selector is unset: it looks only in its own namespace.
    OwnNamespaceOnly(String),
    /// The object's namespace lacks what the namespace selector asks (`k=v`, `k in (a,b)`).
    NamespaceLabels(Vec<String>),
    /// Its selector is unset, which selects nothing.
    SelectorUnset,
    /// The object lacks what the selector asks.
    Labels(Vec<String>),
}

impl Unmet {
    pub fn describe(&self, selector_key: &str, namespace_key: &str, namespace: &str) -> String {
        match self {
            Unmet::OwnNamespaceOnly(own) => {
                format!("it only looks in its own namespace {own} ({namespace_key} is unset)")
            }
            Unmet::NamespaceLabels(l) => format!(
                "namespace {namespace} needs label {} ({namespace_key})",
                l.join(",")
            ),
            Unmet::SelectorUnset => format!("its {selector_key} is unset, which selects nothing"),
            Unmet::Labels(l) => format!("missing label {}", l.join(",")),
        }
    }
}

/// Whether a `Prometheus` picks an object up: its selector matches the object's labels (an
/// unset selector selects nothing, `{}` everything) and its namespace selector the object's
/// namespace (unset: only the Prometheus' own namespace). Returns what is unmet.
pub fn prometheus_selection(
    prometheus: &Object,
    selector_key: &str,
    namespace_key: &str,
    labels: &Labels,
    namespace: &str,
    namespace_labels: &Labels,
) -> Result<(), Unmet> {
    let spec = &prometheus.data["spec"];
    let parse = |v: &Value| serde_json::from_value::<LabelSelector>(v.clone()).ok();
    let own_ns = prometheus.metadata.namespace.as_deref().unwrap_or_default();
    match spec.get(namespace_key).and_then(parse) {
        None if own_ns != namespace => return Err(Unmet::OwnNamespaceOnly(own_ns.to_string())),
        Some(sel) => {
            let missing = unmet(&sel, namespace_labels);
            if !missing.is_empty() {
                return Err(Unmet::NamespaceLabels(missing));
            }
        }
        None => {}
    }
    let Some(sel) = spec.get(selector_key).and_then(parse) else {
        return Err(Unmet::SelectorUnset);
    };
    let missing = unmet(&sel, labels);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Unmet::Labels(missing))
    }
}

/// The selector as a list call's `labelSelector` query (`a=b,c in (d,e),!f`).
pub fn to_query(selector: &LabelSelector) -> String {
    let labels = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"));
    let expressions = selector
        .match_expressions
        .iter()
        .flatten()
        .map(describe_expression);
    labels.chain(expressions).collect::<Vec<_>>().join(",")
}

pub fn matches(selector: &LabelSelector, labels: &Labels) -> bool {
    unmet(selector, labels).is_empty()
}

fn expression_holds(r: &LabelSelectorRequirement, labels: &Labels) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    let value = labels.get(&r.key);
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        // An operator the API server would have refused; it matches nothing.
        _ => false,
    }
}

fn describe_expression(r: &LabelSelectorRequirement) -> String {
    let values = r.values.as_deref().unwrap_or_default().join(",");
    match r.operator.as_str() {
        "In" => format!("{} in ({values})", r.key),
        "NotIn" => format!("{} notin ({values})", r.key),
        "Exists" => r.key.clone(),
        "DoesNotExist" => format!("!{}", r.key),
        op => format!("{} {op} ({values})", r.key),
    }
}

/// Whether a node's labels meet one node-affinity requirement (`In`, `NotIn`, `Exists`,
/// `DoesNotExist`, `Gt`, `Lt`), as the scheduler decides it.
pub fn node_requirement_holds(r: &NodeSelectorRequirement, labels: &Labels) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    let value = labels.get(&r.key);
    let number = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(have), Some(bound)) = (
                value.and_then(|v| number(v)),
                values.first().and_then(|v| number(v)),
            ) else {
                return false;
            };
            if r.operator == "Gt" {
                have > bound
            } else {
                have < bound
            }
        }
        _ => false,
    }
}

/// `key=value:Effect`, or `key:Effect` for a taint without a value, as kubectl prints taints.
pub fn describe_taint(t: &Taint) -> String {
    match t.value.as_deref() {
        Some(v) if !v.is_empty() => format!("{}={v}:{}", t.key, t.effect),
        _ => format!("{}:{}", t.key, t.effect),
    }
}

/// Whether `toleration` tolerates `taint`, by Kubernetes' rule: an empty key with `Exists`
/// tolerates everything; otherwise the keys match, and the value matches for `Equal` (the
/// default operator); an empty effect tolerates every effect.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref().filter(|e| !e.is_empty())
        && effect != taint.effect
    {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    let exists = toleration.operator.as_deref() == Some("Exists");
    if key.is_empty() {
        return exists;
    }
    if key != taint.key {
        return false;
    }
    exists
        || toleration.value.as_deref().unwrap_or_default()
            == taint.value.as_deref().unwrap_or_default()
}

/// The tolerations the DaemonSet controller adds to every pod it creates, whatever the
/// template says (pkg/controller/daemon/util): a node that is not ready, unreachable, short
/// of memory, disk or PIDs, or cordoned still runs its DaemonSet pods. Host-network pods also
/// tolerate `network-unavailable`.
pub fn daemonset_default_tolerations(host_network: bool) -> Vec<Toleration> {
    let exists = |key: &str, effect: &str| Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Default::default()
    };
    let mut out = vec![
        exists("node.kubernetes.io/not-ready", "NoExecute"),
        exists("node.kubernetes.io/unreachable", "NoExecute"),
        exists("node.kubernetes.io/disk-pressure", "NoSchedule"),
        exists("node.kubernetes.io/memory-pressure", "NoSchedule"),
        exists("node.kubernetes.io/pid-pressure", "NoSchedule"),
        exists("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        out.push(exists(
            "node.kubernetes.io/network-unavailable",
            "NoSchedule",
        ));
    }
    out
}

/// The taints that keep a pod with these tolerations off a node: `NoSchedule` and `NoExecute`
/// ones that no toleration tolerates (`PreferNoSchedule` only steers).
pub fn untolerated<'a>(taints: &'a [Taint], tolerations: &[Toleration]) -> Vec<&'a Taint> {
    taints
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .filter(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn taint(key: &str, value: Option<&str>, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: value.map(Into::into),
            effect: effect.into(),
            ..Default::default()
        }
    }

    fn toleration(
        key: Option<&str>,
        op: Option<&str>,
        value: Option<&str>,
        effect: Option<&str>,
    ) -> Toleration {
        Toleration {
            key: key.map(Into::into),
            operator: op.map(Into::into),
            value: value.map(Into::into),
            effect: effect.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn unmet_names_each_missing_requirement() {
        let sel: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"release": "kps", "team": "ops"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "legacy", "operator": "DoesNotExist"},
            ],
        }))
        .unwrap();
        let have = labels(&[("team", "ops"), ("tier", "c"), ("legacy", "1")]);
        assert_eq!(
            unmet(&sel, &have),
            ["release=kps", "tier in (a,b)", "!legacy"]
        );
        let ok = labels(&[("team", "ops"), ("tier", "a"), ("release", "kps")]);
        assert!(matches(&sel, &ok));
        assert!(matches(&LabelSelector::default(), &Labels::new()));
    }

    #[test]
    fn not_in_matches_an_absent_label() {
        let r = NodeSelectorRequirement {
            key: "automon.io/exclude".into(),
            operator: "NotIn".into(),
            values: Some(vec!["true".into()]),
        };
        assert!(node_requirement_holds(&r, &Labels::new()));
        assert!(node_requirement_holds(
            &r,
            &labels(&[("automon.io/exclude", "no")])
        ));
        assert!(!node_requirement_holds(
            &r,
            &labels(&[("automon.io/exclude", "true")])
        ));
        let gt = NodeSelectorRequirement {
            key: "cores".into(),
            operator: "Gt".into(),
            values: Some(vec!["4".into()]),
        };
        assert!(node_requirement_holds(&gt, &labels(&[("cores", "8")])));
        assert!(!node_requirement_holds(&gt, &labels(&[("cores", "two")])));
    }

    #[test]
    fn tolerations_follow_the_scheduler() {
        let gpu = taint("nvidia.com/gpu", Some("present"), "NoExecute");
        // Exists with no key tolerates everything.
        assert!(tolerates(
            &toleration(None, Some("Exists"), None, None),
            &gpu
        ));
        // Equal (the default) needs the value.
        assert!(tolerates(
            &toleration(Some("nvidia.com/gpu"), None, Some("present"), None),
            &gpu
        ));
        assert!(!tolerates(
            &toleration(Some("nvidia.com/gpu"), None, Some("absent"), None),
            &gpu
        ));
        // The effect, when given, must match.
        assert!(!tolerates(
            &toleration(
                Some("nvidia.com/gpu"),
                Some("Exists"),
                None,
                Some("NoSchedule")
            ),
            &gpu
        ));
        // An empty key with Equal tolerates nothing.
        assert!(!tolerates(&toleration(None, None, None, None), &gpu));
    }

    #[test]
    fn daemonsets_ride_out_node_conditions_but_not_other_taints() {
        let defaults = daemonset_default_tolerations(true);
        let taints = vec![
            taint("node.kubernetes.io/unschedulable", None, "NoSchedule"),
            taint("node.kubernetes.io/not-ready", None, "NoExecute"),
            taint("dedicated", Some("db"), "NoSchedule"),
            taint("soft", None, "PreferNoSchedule"),
        ];
        let left: Vec<String> = untolerated(&taints, &defaults)
            .into_iter()
            .map(describe_taint)
            .collect();
        assert_eq!(left, ["dedicated=db:NoSchedule"]);
    }
}
