//! The release's manifest as objects, and what removing the release does with each, as
//! `helm uninstall` decides it: every object is deleted in Helm's uninstall order, except one
//! annotated `helm.sh/resource-policy: keep`, one whose live copy is not the release's (Helm's
//! ownership label and annotations), and here also every CustomResourceDefinition and
//! PersistentVolumeClaim (the data and the types other objects use stay). Pure.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use crate::model::{self, Object};

/// `helm.sh/resource-policy: keep`: Helm leaves the object when it uninstalls.
pub const RESOURCE_POLICY: &str = "helm.sh/resource-policy";
/// Helm's ownership marks, set on every object it installs.
pub const RELEASE_NAME: &str = "meta.helm.sh/release-name";
pub const RELEASE_NAMESPACE: &str = "meta.helm.sh/release-namespace";
const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// The manifest's documents as objects, as Helm splits them (a line `---` between documents);
/// an empty document is none, a `List` its items. An error names the document and its template.
pub fn objects(manifest: &str) -> Result<Vec<Object>, String> {
    let mut out = Vec::new();
    for (i, doc) in documents(manifest).into_iter().enumerate() {
        let source = doc
            .lines()
            .find_map(|l| l.trim().strip_prefix("# Source: "))
            .map(str::to_string);
        let value: Value = serde_saphyr::from_str(doc).map_err(|e| {
            let at = source.as_deref().unwrap_or("no source");
            format!("document {} ({at}) is not YAML: {e}", i + 1)
        })?;
        if value.is_null() {
            continue;
        }
        let items = match value["kind"].as_str() {
            Some(k) if k.ends_with("List") && value["items"].is_array() => {
                value["items"].as_array().cloned().unwrap_or_default()
            }
            _ => vec![value],
        };
        for item in items {
            let object: Object = serde_json::from_value(item).map_err(|e| {
                let at = source.as_deref().unwrap_or("no source");
                format!("document {} ({at}) is not an object: {e}", i + 1)
            })?;
            if object.types.is_none() || object.metadata.name.is_none() {
                let at = source.as_deref().unwrap_or("no source");
                return Err(format!(
                    "document {} ({at}) has no apiVersion, kind or name",
                    i + 1
                ));
            }
            out.push(object);
        }
    }
    Ok(out)
}

/// The text between lines that are `---`.
fn documents(manifest: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut at = 0;
    for line in manifest.split_inclusive('\n') {
        let is_separator = line.trim_end() == "---" || line.starts_with("--- ");
        if is_separator {
            out.push(&manifest[start..at]);
            start = at + line.len();
        }
        at += line.len();
    }
    out.push(&manifest[start..]);
    out.into_iter().filter(|d| !d.trim().is_empty()).collect()
}

/// Helm's uninstall order (`releaseutil.UninstallOrder`): webhooks first so that they block no
/// deletion, workloads before what they use; kinds it does not list come last, by name.
const UNINSTALL_ORDER: &[&str] = &[
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "APIService",
    "Ingress",
    "IngressClass",
    "Service",
    "CronJob",
    "Job",
    "StatefulSet",
    "HorizontalPodAutoscaler",
    "Deployment",
    "ReplicaSet",
    "ReplicationController",
    "Pod",
    "DaemonSet",
    "RoleBindingList",
    "RoleBinding",
    "RoleList",
    "Role",
    "ClusterRoleBindingList",
    "ClusterRoleBinding",
    "ClusterRoleList",
    "ClusterRole",
    "CustomResourceDefinition",
    "PersistentVolumeClaim",
    "PersistentVolume",
    "StorageClass",
    "ConfigMap",
    "SecretList",
    "Secret",
    "ServiceAccount",
    "PodDisruptionBudget",
    "PodSecurityPolicy",
    "LimitRange",
    "ResourceQuota",
    "NetworkPolicy",
    "Namespace",
    "PriorityClass",
];

/// Where a kind stands in Helm's uninstall order: its place, or after all listed kinds.
pub fn uninstall_rank(kind: &str) -> (usize, String) {
    match UNINSTALL_ORDER.iter().position(|k| *k == kind) {
        Some(i) => (i, String::new()),
        None => (UNINSTALL_ORDER.len(), kind.to_string()),
    }
}

/// What the cluster holds for one object of the manifest.
#[derive(Debug, Clone)]
pub enum Live {
    /// Not there, or its type is no longer served.
    Gone,
    Present(Box<ObjectMeta>),
    /// It could not be read (the reason): whose it is is unknown.
    Unknown(String),
}

/// Why the removal leaves an object of the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// A CustomResourceDefinition: other objects (the user's) are of its type.
    Crd,
    /// A PersistentVolumeClaim: data.
    Claim,
    /// `helm.sh/resource-policy: keep`.
    Policy,
    /// Its live copy is not this release's (what its marks say instead).
    NotOwned(String),
    /// It could not be read, so whose it is is unknown.
    Unverified(String),
}

impl Kept {
    pub fn reason(&self) -> String {
        match self {
            Kept::Crd => "a CustomResourceDefinition: never deleted".into(),
            Kept::Claim => "a PersistentVolumeClaim: data, never deleted".into(),
            Kept::Policy => format!("{RESOURCE_POLICY}: keep"),
            Kept::NotOwned(why) => format!("not this release's: {why}"),
            Kept::Unverified(why) => format!("cannot be read, so whose it is is unknown: {why}"),
        }
    }
}

/// What the removal does with one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Deleted (this uid: an object recreated under its name by someone else is not).
    Delete {
        uid: Option<String>,
    },
    /// Already gone.
    Gone,
    Keep(Kept),
}

/// Whether the live object carries Helm's marks for this release (Helm's `checkOwnership`):
/// `app.kubernetes.io/managed-by: Helm` and the release's name and namespace annotations.
pub fn ownership(meta: &ObjectMeta, release: &str, namespace: &str) -> Result<(), String> {
    let empty = BTreeMap::new();
    let labels = meta.labels.as_ref().unwrap_or(&empty);
    let annotations = meta.annotations.as_ref().unwrap_or(&empty);
    let mut wrong = Vec::new();
    for (map, key, want) in [
        (labels, MANAGED_BY, "Helm"),
        (annotations, RELEASE_NAME, release),
        (annotations, RELEASE_NAMESPACE, namespace),
    ] {
        match map.get(key) {
            Some(v) if v == want => {}
            Some(v) => wrong.push(format!("{key} is {v:?}")),
            None => wrong.push(format!("no {key}")),
        }
    }
    match wrong.is_empty() {
        true => Ok(()),
        false => Err(wrong.join(", ")),
    }
}

/// What the removal does with `object` of release `release` in `namespace`, given what the
/// cluster holds for it.
pub fn fate(object: &Object, release: &str, namespace: &str, live: &Live) -> Fate {
    match model::kind(object) {
        "CustomResourceDefinition" => return Fate::Keep(Kept::Crd),
        "PersistentVolumeClaim" => return Fate::Keep(Kept::Claim),
        _ => {}
    }
    let policy = object
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(RESOURCE_POLICY))
        .map(|p| p.trim().to_ascii_lowercase());
    if policy.as_deref() == Some("keep") {
        return Fate::Keep(Kept::Policy);
    }
    match live {
        Live::Gone => Fate::Gone,
        Live::Unknown(why) => Fate::Keep(Kept::Unverified(why.clone())),
        Live::Present(meta) => match ownership(meta, release, namespace) {
            Ok(()) => Fate::Delete {
                uid: meta.uid.clone(),
            },
            Err(why) => Fate::Keep(Kept::NotOwned(why)),
        },
    }
}

/// The PersistentVolumeClaims among `claims` (names in one namespace) that the StatefulSets of
/// these `Prometheus`/`Alertmanager` objects (kind, name) made: `<volume>-prometheus-<name>-<n>`
/// (`…-shard-<s>-<n>` for a shard), `<volume>-alertmanager-<name>-<n>`.
pub fn data_claims(claims: &[String], owners: &[(String, String)]) -> Vec<String> {
    let made_by = |claim: &str, kind: &str, name: &str| {
        let workload = format!("-{}-{name}", kind.to_ascii_lowercase());
        let Some(at) = claim.rfind(&workload) else {
            return false;
        };
        let rest = &claim[at + workload.len()..];
        let ordinal = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        match rest.strip_prefix('-') {
            Some(n) if ordinal(n) => true,
            Some(shard) => shard
                .strip_prefix("shard-")
                .and_then(|s| s.split_once('-'))
                .is_some_and(|(s, n)| ordinal(s) && ordinal(n)),
            None => false,
        }
    };
    claims
        .iter()
        .filter(|c| owners.iter().any(|(kind, name)| made_by(c, kind, name)))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MANIFEST: &str = "---
# Source: kube-prometheus-stack/templates/a.yaml
apiVersion: v1
kind: ServiceAccount
metadata:
  name: kps-operator
  namespace: monitoring

---
# Source: kube-prometheus-stack/templates/empty.yaml
---
# Source: kube-prometheus-stack/templates/keep.yaml
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: kps-grafana
  annotations:
    helm.sh/resource-policy: keep
---
# Source: kube-prometheus-stack/templates/list.yaml
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: b, annotations: {helm.sh/resource-policy: Keep}}}
";

    fn meta(labels: Value, annotations: Value) -> ObjectMeta {
        serde_json::from_value(json!({"labels": labels, "annotations": annotations, "uid": "u1"}))
            .unwrap()
    }

    #[test]
    fn the_manifest_splits_as_helm_splits_it() {
        let objects = objects(MANIFEST).unwrap();
        let names: Vec<(&str, &str)> = objects
            .iter()
            .map(|o| (model::kind(o), o.metadata.name.as_deref().unwrap()))
            .collect();
        assert_eq!(
            names,
            [
                ("ServiceAccount", "kps-operator"),
                ("PersistentVolumeClaim", "kps-grafana"),
                ("ConfigMap", "a"),
                ("ConfigMap", "b"),
            ]
        );
        let e = objects_err("---\n# Source: x.yaml\nkind: [\n");
        assert!(e.contains("document 1 (x.yaml) is not YAML"), "{e}");
        let e = objects_err("---\n# Source: y.yaml\nmetadata: {name: a}\n");
        assert!(
            e.contains("document 1 (y.yaml) has no apiVersion, kind or name"),
            "{e}"
        );
    }

    fn objects_err(text: &str) -> String {
        match objects(text) {
            Ok(o) => panic!("{o:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn each_object_meets_the_fate_helm_uninstall_gives_it_without_crds_or_data() {
        let objects = objects(MANIFEST).unwrap();
        let ours = meta(
            json!({"app.kubernetes.io/managed-by": "Helm"}),
            json!({RELEASE_NAME: "kps", RELEASE_NAMESPACE: "monitoring"}),
        );
        let sa = &objects[0];
        let fate_of = |o, live: &Live| fate(o, "kps", "monitoring", live);
        assert_eq!(
            fate_of(sa, &Live::Present(Box::new(ours.clone()))),
            Fate::Delete {
                uid: Some("u1".into())
            }
        );
        assert_eq!(fate_of(sa, &Live::Gone), Fate::Gone);
        assert_eq!(
            fate_of(sa, &Live::Unknown("403".into())),
            Fate::Keep(Kept::Unverified("403".into()))
        );
        // Taken over by another release, or never Helm's.
        let theirs = meta(
            json!({"app.kubernetes.io/managed-by": "Helm"}),
            json!({RELEASE_NAME: "other", RELEASE_NAMESPACE: "monitoring"}),
        );
        assert_eq!(
            fate_of(sa, &Live::Present(Box::new(theirs))),
            Fate::Keep(Kept::NotOwned(
                "meta.helm.sh/release-name is \"other\"".into()
            ))
        );
        let bare = meta(json!({}), json!({}));
        let Fate::Keep(Kept::NotOwned(why)) = fate_of(sa, &Live::Present(Box::new(bare))) else {
            panic!()
        };
        assert_eq!(
            why,
            "no app.kubernetes.io/managed-by, no meta.helm.sh/release-name, no meta.helm.sh/release-namespace"
        );
        // Never a claim (kept by policy or not), never a CRD; keep is read as Helm reads it.
        assert_eq!(
            fate_of(&objects[1], &Live::Present(Box::new(ours.clone()))),
            Fate::Keep(Kept::Claim)
        );
        let crd: Object = serde_json::from_value(json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "x.example.com"}})).unwrap();
        assert_eq!(
            fate_of(&crd, &Live::Present(Box::new(ours.clone()))),
            Fate::Keep(Kept::Crd)
        );
        assert!(matches!(
            fate_of(&objects[2], &Live::Present(Box::new(ours.clone()))),
            Fate::Delete { .. }
        ));
        assert_eq!(
            fate_of(&objects[3], &Live::Present(Box::new(ours))),
            Fate::Keep(Kept::Policy)
        );
    }

    #[test]
    fn webhooks_go_first_and_unknown_kinds_last() {
        let mut kinds = vec![
            "PrometheusRule",
            "ConfigMap",
            "Deployment",
            "ValidatingWebhookConfiguration",
            "Alertmanager",
            "Service",
            "ClusterRole",
        ];
        kinds.sort_by_key(|k| uninstall_rank(k));
        assert_eq!(
            kinds,
            [
                "ValidatingWebhookConfiguration",
                "Service",
                "Deployment",
                "ClusterRole",
                "ConfigMap",
                "Alertmanager",
                "PrometheusRule",
            ]
        );
    }

    #[test]
    fn the_claims_of_the_releases_prometheus_and_alertmanager() {
        let claims: Vec<String> = [
            "prometheus-kps-prometheus-db-prometheus-kps-prometheus-0",
            "prometheus-kps-prometheus-db-prometheus-kps-prometheus-shard-1-0",
            "alertmanager-kps-alertmanager-db-alertmanager-kps-alertmanager-1",
            "data-prometheus-kps-prometheus-other-0",
            "prometheus-kps-prometheus-db-prometheus-kps-prometheus-x",
            "mydata",
        ]
        .map(String::from)
        .into();
        let owners = [
            ("Prometheus".to_string(), "kps-prometheus".to_string()),
            ("Alertmanager".to_string(), "kps-alertmanager".to_string()),
        ];
        assert_eq!(data_claims(&claims, &owners), claims[..3]);
    }
}
