//! Drift (pure): which fields of a managed object another field manager took. Server-side
//! apply records who owns each field (`managedFields`); a field automon sets (it is in the
//! desired object), that another manager now owns and automon no longer does, was changed by
//! that manager: `kubectl edit` (manager `kubectl-edit`), a `kubectl apply`, a controller. A
//! field automon shares with another manager has automon's value and is not drift; fields
//! automon does not set (a controller's annotation, a `rollout restart`) are not its business.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use serde_json::Value;

/// A field of the desired object another manager changed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Taken {
    /// `kubectl-edit`
    pub manager: String,
    /// `spec.groups`, `spec.template.spec.containers[name=grafana].image`
    pub field: String,
}

/// The fields of `desired` that a manager other than `own` changed, per `managed` (the live
/// object's managedFields). Writes through a subresource count (`kubectl scale` and an HPA
/// write `spec.replicas` through `scale`, recorded in the object's own field paths); the
/// status subresource does not (status is the controllers', never in what automon applies).
pub fn taken(desired: &Value, managed: &[ManagedFieldsEntry], own: &str) -> Vec<Taken> {
    let main = |e: &&ManagedFieldsEntry| e.subresource.as_deref() != Some("status");
    let mut ours = BTreeSet::new();
    for e in managed.iter().filter(main) {
        if e.manager.as_deref() == Some(own)
            && let Some(f) = &e.fields_v1
        {
            leaves(&f.0, &mut String::new(), &mut ours);
        }
    }
    let mut out = BTreeSet::new();
    for e in managed.iter().filter(main) {
        let manager = e.manager.as_deref().unwrap_or("unknown");
        if manager == own {
            continue;
        }
        let Some(f) = &e.fields_v1 else { continue };
        let mut found = BTreeSet::new();
        within(&f.0, desired, &mut String::new(), &mut found);
        for field in found.into_iter().filter(|f| !ours.contains(f)) {
            out.insert(Taken {
                manager: manager.to_string(),
                field,
            });
        }
    }
    out.into_iter().collect()
}

/// `f:name` -> `name`; `k:{"name":"x"}` -> `[name=x]`; `v:..`/`i:N` are the list itself.
enum Segment<'a> {
    Field(&'a str),
    Key(serde_json::Map<String, Value>),
    Other,
}

fn segment(key: &str) -> Option<Segment<'_>> {
    if key == "." {
        return None;
    }
    if let Some(name) = key.strip_prefix("f:") {
        return Some(Segment::Field(name));
    }
    if let Some(k) = key.strip_prefix("k:") {
        return match serde_json::from_str::<Value>(k) {
            Ok(Value::Object(m)) => Some(Segment::Key(m)),
            _ => Some(Segment::Other),
        };
    }
    Some(Segment::Other)
}

fn describe_key(m: &serde_json::Map<String, Value>) -> String {
    let parts: Vec<String> = m
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            v => format!("{k}={v}"),
        })
        .collect();
    format!("[{}]", parts.join(","))
}

fn push(path: &mut String, name: &str) -> usize {
    let len = path.len();
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(name);
    len
}

/// Every leaf path of a fieldsV1 tree.
fn leaves(fields: &Value, path: &mut String, out: &mut BTreeSet<String>) {
    let Value::Object(m) = fields else { return };
    let children: Vec<_> = m.iter().filter(|(k, _)| *k != ".").collect();
    if children.is_empty() {
        if !path.is_empty() {
            out.insert(path.clone());
        }
        return;
    }
    for (k, v) in children {
        let len = path.len();
        match segment(k) {
            Some(Segment::Field(name)) => {
                push(path, name);
            }
            Some(Segment::Key(key)) => path.push_str(&describe_key(&key)),
            // A set or an index: the list as a whole.
            _ => {
                out.insert(path.clone());
                continue;
            }
        }
        leaves(v, path, out);
        path.truncate(len);
    }
}

/// The leaf paths of a fieldsV1 tree that `desired` also has.
fn within(fields: &Value, desired: &Value, path: &mut String, out: &mut BTreeSet<String>) {
    let Value::Object(m) = fields else { return };
    let children: Vec<_> = m.iter().filter(|(k, _)| *k != ".").collect();
    if children.is_empty() {
        if !path.is_empty() {
            out.insert(path.clone());
        }
        return;
    }
    for (k, v) in children {
        let len = path.len();
        match (segment(k), desired) {
            (Some(Segment::Field(name)), Value::Object(d)) => {
                let Some(child) = d.get(name) else { continue };
                push(path, name);
                within(v, child, path, out);
            }
            (Some(Segment::Key(key)), Value::Array(items)) => {
                let matching = items.iter().find(|item| {
                    key.iter()
                        .all(|(k, want)| item.get(k).is_some_and(|x| same_key_value(x, want)))
                });
                let Some(item) = matching else { continue };
                path.push_str(&describe_key(&key));
                within(v, item, path, out);
            }
            (Some(Segment::Other), Value::Array(_)) => {
                out.insert(path.clone());
            }
            _ => {}
        }
        path.truncate(len);
    }
}

/// Keys in managedFields are JSON; an integer port may come back as `8080` for `8080`.
fn same_key_value(have: &Value, want: &Value) -> bool {
    have == want
        || have
            .as_f64()
            .zip(want.as_f64())
            .is_some_and(|(a, b)| a == b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1;
    use serde_json::json;

    fn entry(manager: &str, fields: Value, subresource: Option<&str>) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.into()),
            operation: Some("Update".into()),
            fields_v1: Some(FieldsV1(fields)),
            subresource: subresource.map(str::to_string),
            ..Default::default()
        }
    }

    fn desired() -> Value {
        json!({
            "metadata": {"name": "r", "labels": {"app": "x"}, "annotations": {"a": "1"}},
            "spec": {
                "groups": [{"name": "g", "rules": []}],
                "template": {"spec": {"containers": [
                    {"name": "grafana", "image": "grafana:1", "ports": [{"containerPort": 3000}]}
                ]}}
            }
        })
    }

    #[test]
    fn an_edit_of_a_field_automon_sets_is_drift() {
        let managed = [
            entry(
                "kubectl-automon",
                json!({"f:metadata": {"f:labels": {"f:app": {}}}}),
                None,
            ),
            entry("kubectl-edit", json!({"f:spec": {"f:groups": {}}}), None),
        ];
        assert_eq!(
            taken(&desired(), &managed, "kubectl-automon"),
            [Taken {
                manager: "kubectl-edit".into(),
                field: "spec.groups".into()
            }]
        );
    }

    #[test]
    fn keyed_list_items_are_followed() {
        let managed = [entry(
            "kubectl-set",
            json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"grafana\"}": {".": {}, "f:image": {}}
            }}}}}),
            None,
        )];
        assert_eq!(
            taken(&desired(), &managed, "kubectl-automon")[0].field,
            "spec.template.spec.containers[name=grafana].image"
        );
        // A container automon does not run is not its business.
        let other = [entry(
            "kubectl-set",
            json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"sidecar\"}": {"f:image": {}}
            }}}}}),
            None,
        )];
        assert!(taken(&desired(), &other, "kubectl-automon").is_empty());
    }

    #[test]
    fn fields_automon_does_not_set_status_and_shared_fields_are_not_drift() {
        let managed = [
            entry("kubectl-automon", json!({"f:spec": {"f:groups": {}}}), None),
            // Shared: both own it, so it holds automon's value.
            entry("helm", json!({"f:spec": {"f:groups": {}}}), None),
            // A controller's own annotation.
            entry(
                "kube-controller-manager",
                json!({"f:metadata": {"f:annotations": {"f:deployment.kubernetes.io/revision": {}}}}),
                None,
            ),
            // Status is the controller's.
            entry(
                "prometheus-operator",
                json!({"f:spec": {"f:groups": {}}}),
                Some("status"),
            ),
        ];
        assert!(taken(&desired(), &managed, "kubectl-automon").is_empty());
    }

    #[test]
    fn a_write_through_the_scale_subresource_is_drift() {
        let desired = json!({"spec": {"replicas": 1, "template": {}}});
        // `kubectl scale deployment grafana --replicas=2`: the scale subresource's entry takes
        // spec.replicas from automon, which no longer owns it.
        let managed = [
            entry(
                "kubectl-automon",
                json!({"f:spec": {"f:template": {}}}),
                None,
            ),
            entry(
                "kubectl",
                json!({"f:spec": {"f:replicas": {}}}),
                Some("scale"),
            ),
        ];
        assert_eq!(
            taken(&desired, &managed, "kubectl-automon"),
            [Taken {
                manager: "kubectl".into(),
                field: "spec.replicas".into()
            }]
        );
    }
}
