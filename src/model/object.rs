//! An object of the Kubernetes API as automon handles it, whatever its type: its apiVersion and
//! kind, and whether it is the stack's ApplySet parent or carries the stack's label.

use std::collections::BTreeMap;

use kube::api::{DynamicObject, ObjectMeta, TypeMeta};

use super::names::{PARENT_NAME, PART_OF, PART_OF_LABEL};

/// One rendered object. Typed k8s-openapi objects and custom resources alike end up here.
pub type Object = DynamicObject;

pub fn kind(o: &Object) -> &str {
    o.types.as_ref().map_or("", |t| t.kind.as_str())
}

pub fn api_version(o: &Object) -> &str {
    o.types.as_ref().map_or("", |t| t.api_version.as_str())
}

/// `Kind.group` (or `Kind` for the core group), as ApplySets and `kubectl` name types.
pub fn group_kind(o: &Object) -> String {
    let kind = kind(o);
    match api_version(o).rsplit_once('/') {
        Some((group, _)) => format!("{kind}.{group}"),
        None => kind.to_string(),
    }
}

pub fn is_parent(o: &Object) -> bool {
    o.metadata.name.as_deref() == Some(PARENT_NAME) && kind(o) == "ConfigMap"
}

/// Whether an object carries automon's `app.kubernetes.io/part-of` label.
pub fn is_automons(labels: Option<&BTreeMap<String, String>>) -> bool {
    labels
        .and_then(|l| l.get(PART_OF_LABEL))
        .is_some_and(|v| v == PART_OF)
}

/// An object known by its metadata alone (what a metadata-only list or get returns), with its
/// type: nothing of its body is read.
pub fn metadata_only(api_version: &str, kind: &str, metadata: ObjectMeta) -> Object {
    Object {
        types: Some(TypeMeta {
            api_version: api_version.into(),
            kind: kind.into(),
        }),
        metadata,
        data: serde_json::Value::Object(Default::default()),
    }
}

/// One object as YAML: apiVersion, kind, metadata, then the rest with keys sorted.
pub fn to_yaml(o: &Object) -> String {
    serde_saphyr::to_string(o).expect("objects serialise as YAML")
}
