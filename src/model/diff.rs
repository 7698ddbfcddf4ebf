//! What `diff` compares and how it prints it, pure: objects cleaned of what the server alone
//! writes (managedFields, resourceVersion, status, ...), as YAML with a stable key order, and a
//! unified diff between the live object and what `enable` would make of it, like `kubectl diff`.

use similar::TextDiff;

use crate::{
    model::{Object, to_yaml},
    output::Palette,
};

/// The annotation client-side apply writes; noise for a server-side tool.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// An object without the fields the server writes on its own, so that a diff shows only what
/// `enable` changes.
pub fn clean(o: &Object) -> Object {
    let mut o = o.clone();
    let m = &mut o.metadata;
    m.managed_fields = None;
    m.resource_version = None;
    m.generation = None;
    m.uid = None;
    m.creation_timestamp = None;
    m.self_link = None;
    if let Some(a) = &mut m.annotations {
        a.remove(LAST_APPLIED);
        if a.is_empty() {
            m.annotations = None;
        }
    }
    if let Some(data) = o.data.as_object_mut() {
        data.remove("status");
    }
    o
}

/// The cleaned object as YAML (apiVersion, kind, metadata, then the rest with keys sorted);
/// an absent object is the empty text, as `diff -N` treats a missing file.
pub fn yaml_of(o: Option<&Object>) -> String {
    o.map(|o| to_yaml(&clean(o))).unwrap_or_default()
}

/// `Deployment/automon/grafana`, `ClusterRole/automon-prometheus`: the name of one object in
/// a diff header.
pub fn path_of(o: &Object) -> String {
    let kind = super::kind(o);
    let name = o.metadata.name.as_deref().unwrap_or("");
    match o.metadata.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{kind}/{ns}/{name}"),
        _ => format!("{kind}/{name}"),
    }
}

/// The unified diff from the live object to what `enable` would store, or `None` when they
/// are the same. Either side may be absent: a new object, or one `enable` would prune.
pub fn object_diff(path: &str, live: Option<&Object>, merged: Option<&Object>) -> Option<String> {
    let (live, merged) = masked(live, merged);
    unified(path, &yaml_of(live.as_ref()), &yaml_of(merged.as_ref()))
}

/// A Secret's values masked as `kubectl diff` masks them: `***` where both sides agree (or only
/// one has the key), `*** (before)` and `*** (after)` where the value changes. The keys show.
fn masked(live: Option<&Object>, merged: Option<&Object>) -> (Option<Object>, Option<Object>) {
    let (mut live, mut merged) = (live.cloned(), merged.cloned());
    let is_secret = |o: &Option<Object>| o.as_ref().is_some_and(|o| super::kind(o) == "Secret");
    if !is_secret(&live) && !is_secret(&merged) {
        return (live, merged);
    }
    for field in ["data", "stringData"] {
        let before = live.as_ref().and_then(|o| o.data.get(field)).cloned();
        let after = merged.as_ref().and_then(|o| o.data.get(field)).cloned();
        let value = |map: &Option<serde_json::Value>, key: &str| {
            map.as_ref().and_then(|m| m.get(key)).cloned()
        };
        let mask = |side: &mut Option<Object>, other: &Option<serde_json::Value>, label: &str| {
            let Some(map) = side
                .as_mut()
                .and_then(|o| o.data.get_mut(field))
                .and_then(serde_json::Value::as_object_mut)
            else {
                return;
            };
            for (key, v) in map.iter_mut() {
                let changed = value(other, key).is_some_and(|o| &o != v);
                *v = serde_json::Value::String(if changed {
                    format!("*** ({label})")
                } else {
                    "***".into()
                });
            }
        };
        mask(&mut live, &after, "before");
        mask(&mut merged, &before, "after");
    }
    (live, merged)
}

/// `diff -u -N live/<path> enable/<path>`, the headers and the hunks; `None` when equal.
pub fn unified(path: &str, live: &str, merged: &str) -> Option<String> {
    if live == merged {
        return None;
    }
    let (from, to) = (format!("live/{path}"), format!("enable/{path}"));
    let hunks = TextDiff::from_lines(live, merged)
        .unified_diff()
        .context_radius(3)
        .header(&from, &to)
        .to_string();
    Some(format!("diff -u -N {from} {to}\n{hunks}"))
}

/// Added lines green, removed lines red, when the palette has colour; headers stay plain.
pub fn paint(diff: &str, palette: &Palette) -> String {
    let mut out = String::with_capacity(diff.len());
    for line in diff.split_inclusive('\n') {
        let (text, nl) = match line.strip_suffix('\n') {
            Some(t) => (t, "\n"),
            None => (line, ""),
        };
        let painted = if text.starts_with("+++") || text.starts_with("---") {
            text.to_string()
        } else if text.starts_with('+') {
            palette.added(text)
        } else if text.starts_with('-') {
            palette.removed(text)
        } else {
            text.to_string()
        };
        out.push_str(&painted);
        out.push_str(nl);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: serde_json::Value) -> Object {
        crate::render::custom(v)
    }

    fn live_deployment(replicas: u32) -> Object {
        obj(json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "grafana",
                "namespace": "mon",
                "uid": "0b5c6a1e",
                "resourceVersion": "4711",
                "generation": 3,
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "selfLink": "/apis/apps/v1/namespaces/mon/deployments/grafana",
                "labels": {"app.kubernetes.io/name": "grafana"},
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": "{}",
                    "deployment.kubernetes.io/revision": "1"
                },
                "managedFields": [{"manager": "kubectl-automon", "operation": "Apply"}]
            },
            "spec": {"replicas": replicas, "template": {"spec": {"containers": []}}},
            "status": {"replicas": 1, "readyReplicas": 1}
        }))
    }

    #[test]
    fn cleaning_drops_what_the_server_writes_and_keeps_the_rest() {
        let yaml = yaml_of(Some(&live_deployment(1)));
        for gone in [
            "managedFields",
            "resourceVersion",
            "generation",
            "uid",
            "creationTimestamp",
            "selfLink",
            "last-applied-configuration",
            "status",
            "readyReplicas",
        ] {
            assert!(!yaml.contains(gone), "{gone} left in\n{yaml}");
        }
        for kept in [
            "apiVersion: apps/v1",
            "kind: Deployment",
            "name: grafana",
            "namespace: mon",
            "deployment.kubernetes.io/revision",
            "app.kubernetes.io/name: grafana",
            "replicas: 1",
        ] {
            assert!(yaml.contains(kept), "{kept} missing from\n{yaml}");
        }
    }

    #[test]
    fn cleaning_removes_an_annotation_map_left_empty() {
        let o = obj(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{}"}}
        }));
        assert!(!yaml_of(Some(&o)).contains("annotations"));
    }

    #[test]
    fn equal_after_cleaning_is_no_diff() {
        let a = live_deployment(1);
        let mut b = live_deployment(1);
        b.metadata.resource_version = Some("4712".into());
        b.data["status"] = json!({"replicas": 7});
        assert_eq!(
            object_diff("Deployment/mon/grafana", Some(&a), Some(&b)),
            None
        );
    }

    #[test]
    fn a_changed_field_is_one_hunk_with_kubectl_headers() {
        let d = object_diff(
            "Deployment/mon/grafana",
            Some(&live_deployment(3)),
            Some(&live_deployment(1)),
        )
        .unwrap();
        let lines: Vec<&str> = d.lines().collect();
        assert_eq!(
            lines[..3],
            [
                "diff -u -N live/Deployment/mon/grafana enable/Deployment/mon/grafana",
                "--- live/Deployment/mon/grafana",
                "+++ enable/Deployment/mon/grafana",
            ]
        );
        assert!(lines[3].starts_with("@@ -"), "{d}");
        assert!(lines.contains(&"-  replicas: 3"), "{d}");
        assert!(lines.contains(&"+  replicas: 1"), "{d}");
        let changed = lines[3..]
            .iter()
            .filter(|l| l.starts_with('+') || l.starts_with('-'))
            .count();
        assert_eq!(changed, 2, "{d}");
        assert_eq!(lines.iter().filter(|l| l.starts_with("@@")).count(), 1);
    }

    #[test]
    fn a_new_object_is_all_additions_and_a_pruned_one_all_deletions() {
        let o = live_deployment(1);
        let new = object_diff("Deployment/mon/grafana", None, Some(&o)).unwrap();
        let body: Vec<&str> = new.lines().skip(4).collect();
        assert!(
            new.lines().nth(3).unwrap().starts_with("@@ -0,0 +1,"),
            "{new}"
        );
        assert!(body.iter().all(|l| l.starts_with('+')), "{new}");
        assert!(body.contains(&"+kind: Deployment"), "{new}");

        let gone = object_diff("Deployment/mon/grafana", Some(&o), None).unwrap();
        let body: Vec<&str> = gone.lines().skip(4).collect();
        assert!(body.iter().all(|l| l.starts_with('-')), "{gone}");
        assert!(gone.lines().nth(3).unwrap().ends_with("+0,0 @@"), "{gone}");
    }

    /// No Secret value is printed, as `kubectl diff` masks them; a changed one says so.
    #[test]
    fn secret_values_are_masked() {
        let secret = |data: serde_json::Value| {
            obj(json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "s", "namespace": "automon"}, "data": data}))
        };
        let live = secret(json!({"same": "c2VjcmV0LXNhbWU=", "changed": "b2xkLXRva2Vu"}));
        let merged = secret(
            json!({"same": "c2VjcmV0LXNhbWU=", "changed": "bmV3LXRva2Vu", "added": "YWRkZWQ="}),
        );
        let d = object_diff("Secret/automon/s", Some(&live), Some(&merged)).unwrap();
        for value in [
            "c2VjcmV0LXNhbWU=",
            "b2xkLXRva2Vu",
            "bmV3LXRva2Vu",
            "YWRkZWQ=",
        ] {
            assert!(!d.contains(value), "{d}");
        }
        assert!(
            d.contains("-  changed: '*** (before)'") || d.contains("-  changed: \"*** (before)\""),
            "{d}"
        );
        assert!(d.contains("*** (after)"), "{d}");
        assert!(
            d.contains("+  added: '***'") || d.contains("+  added: \"***\""),
            "{d}"
        );
        // Equal values mask equal: no diff at all.
        assert_eq!(
            object_diff("Secret/automon/s", Some(&live), Some(&live)),
            None
        );
    }

    #[test]
    fn yaml_key_order_is_stable() {
        let a = obj(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x"}, "data": {"b": "2", "a": "1"}}));
        let b = obj(json!({"kind": "ConfigMap", "data": {"a": "1", "b": "2"},
            "metadata": {"name": "x"}, "apiVersion": "v1"}));
        assert_eq!(yaml_of(Some(&a)), yaml_of(Some(&b)));
        assert!(yaml_of(Some(&a)).starts_with("apiVersion: v1\nkind: ConfigMap\n"));
    }

    #[test]
    fn paths_name_kind_namespace_and_name() {
        assert_eq!(path_of(&live_deployment(1)), "Deployment/mon/grafana");
        let cr = obj(json!({"apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole", "metadata": {"name": "mon-prometheus"}}));
        assert_eq!(path_of(&cr), "ClusterRole/mon-prometheus");
    }

    #[test]
    fn colour_marks_only_changed_lines() {
        let d = "diff -u -N live/a enable/a\n--- live/a\n+++ enable/a\n@@ -1 +1 @@\n-x\n+y\n";
        assert_eq!(paint(d, &Palette::with_color(false)), d);
        let c = paint(d, &Palette::with_color(true));
        assert!(c.contains("--- live/a\n+++ enable/a\n"), "{c:?}");
        assert!(c.contains("\u{1b}[31m-x\u{1b}[39m\n"), "{c:?}");
        assert!(c.contains("\u{1b}[32m+y\u{1b}[39m\n"), "{c:?}");
    }
}
