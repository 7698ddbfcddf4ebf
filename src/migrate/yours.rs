//! The user's own monitors and rules that the release's Prometheus selects: ServiceMonitors,
//! PodMonitors, Probes, ScrapeConfigs and PrometheusRules anywhere in the cluster that are not
//! objects of the release (nor automon's). Removing the release leaves them; after the
//! migration they must still be selected. Pure, by the operator's selection rules.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::model::{self, Object, selector};

/// Each kind the Prometheus selects, with its selector and namespace selector keys.
pub const SELECTED_KINDS: &[(&str, &str, &str)] = &[
    (
        "ServiceMonitor",
        "serviceMonitorSelector",
        "serviceMonitorNamespaceSelector",
    ),
    (
        "PodMonitor",
        "podMonitorSelector",
        "podMonitorNamespaceSelector",
    ),
    ("Probe", "probeSelector", "probeNamespaceSelector"),
    (
        "ScrapeConfig",
        "scrapeConfigSelector",
        "scrapeConfigNamespaceSelector",
    ),
    ("PrometheusRule", "ruleSelector", "ruleNamespaceSelector"),
];

/// One object of the user's that the release's Prometheus selects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Yours {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// The labels the Prometheus selects it by (what its selector asks), e.g. `release=kps`.
    pub selected_by: String,
}

/// `(kind, namespace, name)`: how the release's objects are told apart from the user's.
pub type Key = (String, String, String);

/// The objects among `listed` (of the kinds in [`SELECTED_KINDS`]) that one of `prometheuses`
/// selects and that are neither in `release` nor automon's.
pub fn yours(
    prometheuses: &[Object],
    listed: &[Object],
    namespace_labels: &BTreeMap<String, BTreeMap<String, String>>,
    release: &BTreeSet<Key>,
) -> Vec<Yours> {
    let no_labels = BTreeMap::new();
    let mut out: Vec<Yours> = listed
        .iter()
        .filter(|o| !model::is_automons(o.metadata.labels.as_ref()))
        .filter_map(|o| {
            let kind = model::kind(o);
            let (_, sel, ns_sel) = SELECTED_KINDS.iter().find(|(k, _, _)| *k == kind)?;
            let namespace = o.metadata.namespace.clone().unwrap_or_default();
            let name = o.metadata.name.clone().unwrap_or_default();
            if release.contains(&(kind.to_string(), namespace.clone(), name.clone())) {
                return None;
            }
            let labels = o.metadata.labels.clone().unwrap_or_default();
            let ns_labels = namespace_labels.get(&namespace).unwrap_or(&no_labels);
            let by = prometheuses.iter().find(|p| {
                selector::prometheus_selection(p, sel, ns_sel, &labels, &namespace, ns_labels)
                    .is_ok()
            })?;
            Some(Yours {
                kind: kind.to_string(),
                namespace,
                name,
                selected_by: selected_by(by, sel),
            })
        })
        .collect();
    out.sort();
    out
}

/// What a Prometheus' selector asks (`release=kps`), or `every one` for `{}`.
fn selected_by(prometheus: &Object, key: &str) -> String {
    let parsed = serde_json::from_value(prometheus.data["spec"][key].clone());
    match parsed.map(|s| selector::to_query(&s)) {
        Ok(q) if !q.is_empty() => q,
        _ => "every one".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(kind: &str, ns: &str, name: &str, labels: serde_json::Value) -> Object {
        serde_json::from_value(json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": kind,
            "metadata": {"name": name, "namespace": ns, "labels": labels},
        }))
        .unwrap()
    }

    fn prometheus(spec: serde_json::Value) -> Object {
        serde_json::from_value(json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
            "metadata": {"name": "kps-prometheus", "namespace": "monitoring"}, "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn the_users_objects_the_charts_prometheus_selects() {
        let release_label = json!({"release": "kps"});
        let listed = vec![
            object("ServiceMonitor", "team-a", "app", release_label.clone()),
            object("ServiceMonitor", "team-a", "unlabelled", json!({})),
            object("PrometheusRule", "team-a", "rules", release_label.clone()),
            object(
                "ServiceMonitor",
                "monitoring",
                "kps-kubelet",
                release_label.clone(),
            ),
            object(
                "PodMonitor",
                "automon",
                "x",
                json!({"release": "kps", "app.kubernetes.io/part-of": "automon"}),
            ),
        ];
        let release: BTreeSet<Key> = [(
            "ServiceMonitor".to_string(),
            "monitoring".to_string(),
            "kps-kubelet".to_string(),
        )]
        .into();
        let ns = BTreeMap::new();
        // The chart's default: labelled release=kps, in every namespace.
        let kps = prometheus(json!({
            "serviceMonitorSelector": {"matchLabels": {"release": "kps"}}, "serviceMonitorNamespaceSelector": {},
            "ruleSelector": {"matchLabels": {"release": "kps"}}, "ruleNamespaceSelector": {},
            "podMonitorSelector": {"matchLabels": {"release": "kps"}}, "podMonitorNamespaceSelector": {},
        }));
        let found = yours(&[kps], &listed, &ns, &release);
        let names: Vec<(&str, &str, &str)> = found
            .iter()
            .map(|y| (y.kind.as_str(), y.name.as_str(), y.selected_by.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("PrometheusRule", "rules", "release=kps"),
                ("ServiceMonitor", "app", "release=kps")
            ]
        );
        // `*SelectorNilUsesHelmValues: false`: every one, everywhere.
        let all = prometheus(
            json!({"serviceMonitorSelector": {}, "serviceMonitorNamespaceSelector": {}}),
        );
        let found = yours(&[all], &listed, &ns, &release);
        let names: Vec<&str> = found.iter().map(|y| y.name.as_str()).collect();
        assert_eq!(names, ["app", "unlabelled"]);
        assert_eq!(found[1].selected_by, "every one");
        // A namespace selector that team-a does not meet.
        let some = prometheus(
            json!({"serviceMonitorSelector": {}, "serviceMonitorNamespaceSelector": {"matchLabels": {"monitored": "yes"}}}),
        );
        assert!(yours(std::slice::from_ref(&some), &listed, &ns, &release).is_empty());
        let labelled = BTreeMap::from([(
            "team-a".to_string(),
            BTreeMap::from([("monitored".to_string(), "yes".to_string())]),
        )]);
        assert_eq!(yours(&[some], &listed, &labelled, &release).len(), 2);
    }
}
