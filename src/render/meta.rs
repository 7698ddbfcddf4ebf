//! What every object shares: names, labels, images, and ApplySet membership (KEP-3659), so
//! that `disable`, upgrades and `kubectl apply --prune` all see the same inventory.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::{
    api::core::v1::{ConfigMap, LocalObjectReference, ResourceRequirements},
    apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::ObjectMeta},
};
use sha2::{Digest, Sha256};

use crate::model::exporter::Holder;
use crate::model::{
    Object, group_kind,
    names::{
        APPLYSET_GROUP_KINDS, APPLYSET_ID_LABEL, APPLYSET_PART_OF_LABEL, APPLYSET_TOOLING,
        COMPONENT_LABEL, CONFIG_KEY, MANAGED_BY, MANAGED_BY_LABEL, NAME_LABEL, PARENT_NAME,
        PART_OF, PART_OF_LABEL, VERSION_LABEL,
    },
};

use super::{classes::NodeClasses, object};
use crate::{
    config::{self, Config},
    versions::{Component, PLUGIN_VERSION},
};

/// The annotation by which an operator started with `--controller-id` picks its Prometheus
/// and Alertmanager, and every operator without one leaves them alone.
pub const CONTROLLER_ID_ANNOTATION: &str = "operator.prometheus.io/controller-id";

/// What a component needs to render itself.
pub struct Context<'a> {
    pub config: &'a Config,
    pub namespace: &'a str,
    /// Another exporter that serves node-exporter's port on the nodes: scraped, not duplicated.
    pub exporter: Option<&'a Holder>,
    /// The classes of node the cluster has, each adding the exporters, rules and dashboards
    /// it needs; none by default.
    pub classes: NodeClasses,
    /// The sizes for the cluster's node count; the floors when it is not known.
    pub sizing: crate::config::sizing::Estimate,
}

/// Labels that select the pods of the component `name`; stable across versions (selectors are
/// immutable).
pub fn selector(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME_LABEL.to_string(), name.to_string()),
        (PART_OF_LABEL.to_string(), PART_OF.to_string()),
    ])
}

impl<'a> Context<'a> {
    pub fn new(config: &'a Config) -> Self {
        Context {
            config,
            namespace: &config.namespace,
            exporter: None,
            classes: NodeClasses::default(),
            sizing: crate::config::sizing::estimate(config, None),
        }
    }

    /// Labels that select one component's pods; stable across versions (selectors are immutable).
    pub fn selector(&self, name: &str) -> BTreeMap<String, String> {
        selector(name)
    }

    /// The selector labels plus component, version and manager.
    pub fn labels(&self, name: &str, component: &str, version: &str) -> BTreeMap<String, String> {
        let mut l = self.selector(name);
        l.insert(COMPONENT_LABEL.into(), component.into());
        l.insert(VERSION_LABEL.into(), version.trim_start_matches('v').into());
        l.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
        l
    }

    /// Metadata of a namespaced object of the stack.
    pub fn meta(&self, name: &str, labels: &BTreeMap<String, String>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(self.namespace.to_string()),
            labels: Some(labels.clone()),
            ..Default::default()
        }
    }

    /// Metadata of a Prometheus or Alertmanager: beside a release being replaced
    /// ([`crate::config::Migration`]), annotated with the controller id that only automon's
    /// operator answers to.
    pub fn operated_meta(&self, name: &str, labels: &BTreeMap<String, String>) -> ObjectMeta {
        let mut meta = self.meta(name, labels);
        if let Some(id) = self.controller_id() {
            meta.annotations = Some(BTreeMap::from([(CONTROLLER_ID_ANNOTATION.to_string(), id)]));
        }
        meta
    }

    /// The operator's `--controller-id` beside a release being replaced, else none (it
    /// reconciles every Prometheus and Alertmanager of the namespace).
    pub fn controller_id(&self) -> Option<String> {
        self.config
            .migration
            .as_ref()
            .map(|_| format!("automon-{}", self.namespace))
    }

    /// Metadata of a cluster-scoped object; its name carries the namespace so that two stacks
    /// in two namespaces never share one.
    pub fn cluster_meta(&self, name: &str, labels: &BTreeMap<String, String>) -> ObjectMeta {
        ObjectMeta {
            name: Some(self.cluster_name(name)),
            labels: Some(labels.clone()),
            ..Default::default()
        }
    }

    /// Cluster-scoped names start with the namespace: `automon-prometheus` by default.
    pub fn cluster_name(&self, name: &str) -> String {
        format!("{}-{name}", self.namespace)
    }

    /// The image of a pinned component, under `images.registry` when set.
    pub fn image(&self, c: &Component) -> String {
        c.image(self.config.images.registry.as_deref())
    }

    pub fn pull_secrets(&self) -> Option<Vec<LocalObjectReference>> {
        let s = &self.config.images.pull_secrets;
        (!s.is_empty()).then(|| {
            s.iter()
                .map(|n| LocalObjectReference { name: n.clone() })
                .collect()
        })
    }
}

/// Kubernetes resources from the configuration's.
pub fn resources(r: &config::Resources) -> ResourceRequirements {
    let amounts = |a: &config::Amounts| {
        let mut m = BTreeMap::new();
        if let Some(cpu) = &a.cpu {
            m.insert("cpu".to_string(), Quantity(cpu.0.clone()));
        }
        if let Some(mem) = &a.memory {
            m.insert("memory".to_string(), Quantity(mem.0.clone()));
        }
        (!m.is_empty()).then_some(m)
    };
    ResourceRequirements {
        requests: amounts(&r.requests),
        limits: amounts(&r.limits),
        ..Default::default()
    }
}

/// The ApplySet ID of a parent: `applyset-<base64url(sha256(name.namespace.Kind.group))>-v1`.
pub fn applyset_id(name: &str, namespace: &str, kind: &str, group: &str) -> String {
    let digest = Sha256::digest(format!("{name}.{namespace}.{kind}.{group}"));
    format!(
        "applyset-{}-v1",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
}

fn parent_id(ctx: &Context) -> String {
    applyset_id(PARENT_NAME, ctx.namespace, "ConfigMap", "")
}

/// The parent ConfigMap: the ApplySet's ID, the kinds its members have, and the values the
/// user gave (with the stack's namespace; never the defaults), which `status`, `doctor`,
/// `reconcile` and the next `enable` read over their own defaults.
pub fn applyset_parent(ctx: &Context, members: &[Object]) -> Object {
    let mut kinds: Vec<String> = members.iter().map(group_kind).collect();
    kinds.sort();
    kinds.dedup();
    let mut labels = ctx.labels("automon", "config", PLUGIN_VERSION);
    labels.insert(APPLYSET_ID_LABEL.into(), parent_id(ctx));
    let mut meta = ctx.meta(PARENT_NAME, &labels);
    let mut annotations = BTreeMap::from([
        (
            APPLYSET_TOOLING.to_string(),
            format!("{MANAGED_BY}/{PLUGIN_VERSION}"),
        ),
        (APPLYSET_GROUP_KINDS.to_string(), kinds.join(",")),
    ]);
    if let Some(holder) = ctx.exporter {
        annotations.insert(
            crate::model::names::EXPORTER_FROM.to_string(),
            holder.reference(),
        );
    }
    meta.annotations = Some(annotations);
    object(ConfigMap {
        metadata: meta,
        data: Some(BTreeMap::from([(
            CONFIG_KEY.to_string(),
            ctx.config
                .given
                .with_namespace(&ctx.config.namespace)
                .to_yaml(),
        )])),
        ..Default::default()
    })
}

/// Labels every member with the stack's common labels and its ApplySet.
pub fn label_member(ctx: &Context, o: &mut Object) {
    let selected = matches!(
        crate::model::kind(o),
        "ServiceMonitor" | "PodMonitor" | "Probe" | "ScrapeConfig" | "PrometheusRule"
    );
    let labels = o.metadata.labels.get_or_insert_with(Default::default);
    // What the stack's Prometheus selects them by (`prometheus.select.labels`).
    if selected {
        for (k, v) in super::prometheus::selection_labels(ctx) {
            labels.insert(k.clone(), v.clone());
        }
    }
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    labels.insert(PART_OF_LABEL.into(), PART_OF.into());
    labels.insert(APPLYSET_PART_OF_LABEL.into(), parent_id(ctx));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applyset_id_matches_kubectl() {
        // kubectl's own test vector (staging/src/k8s.io/kubectl/pkg/cmd/apply/applyset_test.go).
        assert_eq!(
            applyset_id("test-foo", "test-ns", "Foo", "foo.bar"),
            "applyset-f9Rk5tKHoB72oV1tU2iFKxDwL8MBZTjMHFQ8V9WNNlA-v1"
        );
    }
}
