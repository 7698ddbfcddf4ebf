//! How automon runs beside the release it replaces, until the release is gone: its whole stack
//! of its own (none of the release's reused), an operator that answers only to its controller
//! id, node-exporter on a port the release's exporter leaves free, the kubelet's probes scraped
//! when the release scraped them, and the release's selection of the user's monitors and rules
//! (less the release's own). What the release's manifest says decides each; pure.

use serde_json::{Value, json};

use super::survey::Survey;
use crate::{
    config::{Config, Values},
    model::names::{PART_OF, PART_OF_LABEL},
};

/// The label every object of a Helm release of kube-prometheus-stack (and of its dependency
/// charts) carries with the release's name.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";

/// The kinds a Prometheus selects, by the prefix of their selector's key.
const SELECTORS: [&str; 5] = [
    "serviceMonitor",
    "podMonitor",
    "probe",
    "scrapeConfig",
    "rule",
];

/// One setting the migration adds to the mapped values, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub key: String,
    pub value: String,
    pub why: String,
}

/// The values automon runs with beside the release, and the settings the migration added.
#[derive(Debug, Clone)]
pub struct Beside {
    pub values: Values,
    pub settings: Vec<Setting>,
}

/// The mapped values (`survey.mapping.values`) with what running beside the release needs.
pub fn beside(survey: &Survey) -> Beside {
    let r = &survey.release;
    let mut values = survey.mapping.values.clone();
    let mut settings = Vec::new();
    let mut set = |values: &mut Values, key: &str, value: Value, why: String| {
        settings.push(Setting {
            key: key.to_string(),
            value: shown(&value),
            why,
        });
        values.set(key, value);
    };
    set(
        &mut values,
        "migration",
        json!({"release": r.name, "namespace": r.namespace}),
        format!(
            "until release {} is removed: automon runs its own operator, Prometheus, Alertmanager and exporters, and each operator reconciles only its own",
            r.name
        ),
    );
    let ours = Config::from_values(values.clone(), "the mapped values")
        .map(|c| c.node_exporter.port)
        .unwrap_or(9100);
    let taken = host_ports(&survey.planned);
    if taken.contains(&ours) {
        let free = (ours..=u16::MAX)
            .find(|p| !taken.contains(p))
            .unwrap_or(ours);
        set(
            &mut values,
            "nodeExporter.port",
            json!(free),
            format!(
                "the release's node-exporter holds port {ours} on every node until it is removed"
            ),
        );
    }
    if survey
        .planned
        .iter()
        .filter(|p| p.kind() == "ServiceMonitor")
        .any(|p| {
            p.object.data["spec"]["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| e["path"] == "/metrics/probes")
        })
    {
        set(
            &mut values,
            "kubelet.probes",
            json!(true),
            "the release's Prometheus scrapes the kubelet's /metrics/probes".to_string(),
        );
    }
    if let Some(select) = selection(&survey.planned, &r.name, &r.namespace) {
        set(&mut values, "prometheus.select", select.value, select.why);
    }
    Beside { values, settings }
}

/// The values once the release is gone: those beside it, less the migration itself.
pub fn settled(values: &Values) -> Values {
    values.without("migration")
}

/// What automon's Prometheus selects: what the release's Prometheus selected (its selectors'
/// labels, or every object; in every namespace, or its own), less the release's own objects.
struct Selection {
    value: Value,
    why: String,
}

fn selection(
    planned: &[super::survey::Planned],
    release: &str,
    namespace: &str,
) -> Option<Selection> {
    let prometheus = planned.iter().find(|p| p.kind() == "Prometheus")?;
    let spec = &prometheus.object.data["spec"];
    let mut all = false;
    let mut labels = serde_json::Map::new();
    let mut every_namespace = false;
    let mut unusual = Vec::new();
    for kind in SELECTORS {
        let selector = &spec[format!("{kind}Selector")];
        match selector.as_object() {
            // A nil selector selects nothing of that kind.
            None => continue,
            Some(s) if s.is_empty() => all = true,
            Some(s) => {
                if let Some(m) = s.get("matchLabels").and_then(Value::as_object) {
                    labels.extend(m.clone());
                }
                if s.get("matchExpressions")
                    .and_then(Value::as_array)
                    .is_some_and(|e| !e.is_empty())
                {
                    unusual.push(format!("{kind}Selector's matchExpressions"));
                }
            }
        }
        // A nil namespace selector is the Prometheus' own namespace; any other, automon reads
        // as every namespace.
        if spec[format!("{kind}NamespaceSelector")].is_object() {
            every_namespace = true;
        }
    }
    if !all && labels.is_empty() {
        return None;
    }
    let mut value = json!({"exclude": {INSTANCE_LABEL: release}});
    if all {
        value["all"] = json!(true);
    } else {
        value["labels"] = Value::Object(labels.clone());
    }
    value["namespaces"] = if every_namespace {
        json!(["*"])
    } else {
        json!([namespace])
    };
    let what = if all {
        "every ServiceMonitor, PodMonitor, Probe, ScrapeConfig and PrometheusRule".to_string()
    } else {
        format!(
            "those labelled {}",
            labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    let r#where = if every_namespace {
        "in every namespace".to_string()
    } else {
        format!("in namespace {namespace}")
    };
    let mut why = format!(
        "as the release's Prometheus, automon's selects {what} {where}, less the release's own ({INSTANCE_LABEL}={release})",
        r#where = r#where
    );
    if !unusual.is_empty() {
        why.push_str(&format!(
            "; not carried over: {} (automon selects by labels)",
            unusual.join(", ")
        ));
    }
    Some(Selection { value, why })
}

/// Every host port the release's DaemonSets hold on the nodes.
fn host_ports(planned: &[super::survey::Planned]) -> Vec<u16> {
    planned
        .iter()
        .filter(|p| p.kind() == "DaemonSet")
        .flat_map(|p| {
            let pod = &p.object.data["spec"]["template"]["spec"];
            // On the host's network every container port is a host port (the API server
            // defaults hostPort to it).
            let host_network = pod["hostNetwork"] == true;
            pod["containers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
                .filter_map(move |port| {
                    port["hostPort"]
                        .as_u64()
                        .or(port["containerPort"].as_u64().filter(|_| host_network))
                })
        })
        .filter_map(|p| u16::try_from(p).ok())
        .collect()
}

/// The expression that keeps automon's own objects out of another Prometheus' selector.
pub fn not_automons() -> Value {
    json!({"key": PART_OF_LABEL, "operator": "NotIn", "values": [PART_OF]})
}

/// The release's Prometheus `spec` patched so that none of its selectors selects automon's
/// objects (a release that selects every object, or those labelled as automon's are while the
/// two run side by side, would scrape automon's exporters a second time); `None` when it is
/// so already.
pub fn excluding_automon(spec: &Value) -> Option<Value> {
    let mut patch = serde_json::Map::new();
    for kind in SELECTORS {
        let key = format!("{kind}Selector");
        let Some(selector) = spec[&key].as_object() else {
            continue;
        };
        let mut selector = selector.clone();
        let expressions = selector
            .entry("matchExpressions")
            .or_insert_with(|| json!([]));
        let Some(list) = expressions.as_array_mut() else {
            continue;
        };
        if list.contains(&not_automons()) {
            continue;
        }
        list.push(not_automons());
        patch.insert(key, Value::Object(selector));
    }
    (!patch.is_empty()).then(|| json!({"spec": patch}))
}

/// A value as the report shows it: text bare, anything else as compact JSON.
fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::{manifest::Fate, survey::Planned};

    fn planned(object: Value) -> Planned {
        Planned {
            object: serde_json::from_value(object).unwrap(),
            resource: None,
            fate: Fate::Gone,
        }
    }

    fn prometheus(spec: Value) -> Planned {
        planned(json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
            "metadata": {"name": "kps-prometheus", "namespace": "monitoring"},
            "spec": spec,
        }))
    }

    #[test]
    fn a_host_network_exporter_holds_its_container_port() {
        let exporter = |host_network: bool| {
            planned(json!({
                "apiVersion": "apps/v1", "kind": "DaemonSet",
                "metadata": {"name": "kps-node-exporter", "namespace": "monitoring"},
                "spec": {"template": {"spec": {"hostNetwork": host_network, "containers": [
                    {"name": "e", "ports": [{"containerPort": 9100}, {"containerPort": 9200, "hostPort": 9300}]},
                ]}}},
            }))
        };
        assert_eq!(host_ports(&[exporter(true)]), [9100, 9300]);
        assert_eq!(host_ports(&[exporter(false)]), [9300]);
    }

    #[test]
    fn the_release_selection_less_its_own_objects() {
        let by_label = selection(
            &[prometheus(json!({
                "serviceMonitorSelector": {"matchLabels": {"release": "kps"}},
                "serviceMonitorNamespaceSelector": {},
                "ruleSelector": {"matchLabels": {"release": "kps"}},
                "probeSelector": null,
            }))],
            "kps",
            "monitoring",
        )
        .unwrap();
        assert_eq!(
            by_label.value,
            json!({"labels": {"release": "kps"}, "exclude": {INSTANCE_LABEL: "kps"}, "namespaces": ["*"]})
        );
        // One selector that selects everything makes automon's select everything; nil
        // namespace selectors keep it to the release's namespace.
        let every = selection(
            &[prometheus(json!({
                "serviceMonitorSelector": {},
                "ruleSelector": {"matchLabels": {"release": "kps"}, "matchExpressions": [{"key": "x", "operator": "Exists"}]},
            }))],
            "kps",
            "monitoring",
        )
        .unwrap();
        assert_eq!(
            every.value,
            json!({"all": true, "exclude": {INSTANCE_LABEL: "kps"}, "namespaces": ["monitoring"]})
        );
        assert!(
            every
                .why
                .contains("not carried over: ruleSelector's matchExpressions"),
            "{}",
            every.why
        );
        // A Prometheus that selects nothing: automon keeps its own selection.
        assert!(selection(&[prometheus(json!({}))], "kps", "monitoring").is_none());
    }

    #[test]
    fn the_release_selectors_gain_one_expression_once() {
        let spec = json!({
            "serviceMonitorSelector": {"matchLabels": {"release": "kps"}},
            "podMonitorSelector": {},
            "ruleSelector": {"matchExpressions": [{"key": "team", "operator": "Exists"}]},
            "probeSelector": null,
        });
        let patch = excluding_automon(&spec).unwrap();
        assert_eq!(
            patch["spec"]["serviceMonitorSelector"],
            json!({"matchLabels": {"release": "kps"}, "matchExpressions": [not_automons()]})
        );
        assert_eq!(
            patch["spec"]["podMonitorSelector"],
            json!({"matchExpressions": [not_automons()]})
        );
        assert_eq!(
            patch["spec"]["ruleSelector"]["matchExpressions"],
            json!([{"key": "team", "operator": "Exists"}, not_automons()])
        );
        assert!(patch["spec"].get("probeSelector").is_none());
        let mut patched = spec.clone();
        for (k, v) in patch["spec"].as_object().unwrap() {
            patched[k] = v.clone();
        }
        assert_eq!(excluding_automon(&patched), None);
    }
}
