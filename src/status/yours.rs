//! The user's own monitoring: the ServiceMonitors, PodMonitors, Probes, ScrapeConfigs and
//! PrometheusRules that are not the stack's, which of them the stack's Prometheus selects (as
//! the operator decides it, from the live object's selectors) and from which namespaces, and
//! why it leaves out those that look meant for it. Listing is [`list`]; the rest is pure.

use std::collections::{BTreeMap, BTreeSet};

use kube::api::ListParams;
use serde::Serialize;

use crate::model::{
    Object,
    names::{APPLYSET_PART_OF_LABEL, MANAGED_BY, MANAGED_BY_LABEL},
    resources,
    selector::{self, Unmet},
};

type Labels = BTreeMap<String, String>;

/// The kinds of object a `Prometheus` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Kind {
    ServiceMonitor,
    PodMonitor,
    Probe,
    ScrapeConfig,
    PrometheusRule,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::ServiceMonitor,
        Kind::PodMonitor,
        Kind::Probe,
        Kind::ScrapeConfig,
        Kind::PrometheusRule,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::ServiceMonitor => "ServiceMonitor",
            Kind::PodMonitor => "PodMonitor",
            Kind::Probe => "Probe",
            Kind::ScrapeConfig => "ScrapeConfig",
            Kind::PrometheusRule => "PrometheusRule",
        }
    }

    /// The field of the `Prometheus` spec that selects this kind, without `Selector`.
    fn field(self) -> &'static str {
        match self {
            Kind::ServiceMonitor => "serviceMonitor",
            Kind::PodMonitor => "podMonitor",
            Kind::Probe => "probe",
            Kind::ScrapeConfig => "scrapeConfig",
            Kind::PrometheusRule => "rule",
        }
    }

    pub fn selector_key(self) -> String {
        format!("{}Selector", self.field())
    }

    pub fn namespace_key(self) -> String {
        format!("{}NamespaceSelector", self.field())
    }

    /// As kubectl names the resource: `servicemonitor`.
    pub fn resource(self) -> String {
        self.name().to_lowercase()
    }
}

/// One object of a selected kind, by its metadata.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Watched {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
}

impl Watched {
    /// `servicemonitor team-a/api`
    pub fn describe(&self) -> String {
        format!("{} {}/{}", self.kind.resource(), self.namespace, self.name)
    }
}

/// What [`list`] read: every object of the selected kinds in the cluster, the namespaces'
/// labels (for namespace selectors), and what could not be read.
#[derive(Debug, Clone, Default)]
pub struct Listed {
    pub objects: Vec<Watched>,
    /// `None` when the namespaces could not be listed: each is then known by its name label.
    pub namespaces: Option<BTreeMap<String, Labels>>,
    /// Kinds (or `namespaces`) the user may not list, with the server's reason.
    pub unreadable: Vec<String>,
}

/// Lists, at once and by metadata only, every object of the selected kinds in the cluster and
/// the namespaces. A kind whose CRD is missing has none; one the user may not list is said in
/// `unreadable` rather than failing status.
pub async fn list(client: &kube::Client) -> Result<Listed, kube::Error> {
    let all = ListParams::default();
    let kinds = Kind::ALL.map(|kind| {
        let all = all.clone();
        async move {
            let api = resources::by_group_kind(&format!("{}.monitoring.coreos.com", kind.name()))
                .expect("monitoring kinds are known")
                .api(client, None);
            (kind, api.list_metadata(&all).await)
        }
    });
    let namespaces = async {
        kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
            .list_metadata(&all)
            .await
    };
    let (kinds, namespaces) = tokio::join!(futures::future::join_all(kinds), namespaces);
    let mut out = Listed::default();
    let forbidden = |what: &str, message: &str| format!("{what}: {message}");
    for (kind, listed) in kinds {
        match listed {
            Ok(l) => out.objects.extend(l.items.into_iter().map(|o| Watched {
                kind,
                namespace: o.metadata.namespace.unwrap_or_default(),
                name: o.metadata.name.unwrap_or_default(),
                labels: o.metadata.labels.unwrap_or_default(),
            })),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(kube::Error::Api(s)) if s.code == 403 => {
                out.unreadable.push(forbidden(kind.name(), &s.message))
            }
            Err(e) => return Err(e),
        }
    }
    match namespaces {
        Ok(l) => {
            out.namespaces = Some(
                l.items
                    .into_iter()
                    .map(|n| {
                        (
                            n.metadata.name.unwrap_or_default(),
                            n.metadata.labels.unwrap_or_default(),
                        )
                    })
                    .collect(),
            )
        }
        Err(kube::Error::Api(s)) if s.code == 403 => {
            out.unreadable.push(forbidden("namespaces", &s.message))
        }
        Err(e) => return Err(e),
    }
    out.objects.sort();
    Ok(out)
}

/// The labels of namespace `ns`: as listed, else the name label every namespace carries.
fn namespace_labels(listed: &Listed, ns: &str) -> Labels {
    listed
        .namespaces
        .as_ref()
        .and_then(|n| n.get(ns).cloned())
        .unwrap_or_else(|| Labels::from([("kubernetes.io/metadata.name".into(), ns.into())]))
}

/// Whether `prometheus` selects `o`, as the operator decides it (pure).
pub fn selects(prometheus: &Object, o: &Watched, listed: &Listed) -> Result<(), Unmet> {
    selector::prometheus_selection(
        prometheus,
        &o.kind.selector_key(),
        &o.kind.namespace_key(),
        &o.labels,
        &o.namespace,
        &namespace_labels(listed, &o.namespace),
    )
}

/// The user's objects: neither the stack's own (members of the ApplySet `applyset_id`) nor
/// another automon stack's (members of an ApplySet, managed by this plugin): a second stack's
/// rules are that stack's business, whatever its Prometheus selects.
fn theirs<'a: 'b, 'b>(
    listed: &'a Listed,
    applyset_id: &'b str,
) -> impl Iterator<Item = &'a Watched> + 'b {
    listed.objects.iter().filter(move |o| {
        let part_of = o.labels.get(APPLYSET_PART_OF_LABEL).map(String::as_str);
        let automons = part_of.is_some()
            && o.labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY);
        part_of != Some(applyset_id) && !automons
    })
}

/// `status`' line on the user's own monitoring: how many of each kind the stack's Prometheus
/// selects, and from where.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct YourMonitors {
    /// The `Prometheus` that selects them (`namespace/name`).
    pub prometheus: String,
    pub service_monitors: usize,
    pub pod_monitors: usize,
    pub probes: usize,
    pub scrape_configs: usize,
    pub prometheus_rules: usize,
    /// The namespaces the selected ones are in, sorted.
    pub namespaces: Vec<String>,
    /// What could not be listed, and why: the counts leave those out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
}

impl YourMonitors {
    /// `(count, kind)` for every kind, in [`Kind::ALL`]'s order.
    pub fn counts(&self) -> [(usize, Kind); 5] {
        [
            (self.service_monitors, Kind::ServiceMonitor),
            (self.pod_monitors, Kind::PodMonitor),
            (self.probes, Kind::Probe),
            (self.scrape_configs, Kind::ScrapeConfig),
            (self.prometheus_rules, Kind::PrometheusRule),
        ]
    }
}

/// What `prometheus` selects of the objects that are not the stack's own (pure).
pub fn selected(prometheus: &Object, listed: &Listed, applyset_id: &str) -> YourMonitors {
    let mut out = YourMonitors {
        prometheus: format!(
            "{}/{}",
            prometheus.metadata.namespace.as_deref().unwrap_or_default(),
            prometheus.metadata.name.as_deref().unwrap_or_default()
        ),
        unreadable: listed.unreadable.clone(),
        ..Default::default()
    };
    let mut namespaces = BTreeSet::new();
    for o in theirs(listed, applyset_id).filter(|o| selects(prometheus, o, listed).is_ok()) {
        *match o.kind {
            Kind::ServiceMonitor => &mut out.service_monitors,
            Kind::PodMonitor => &mut out.pod_monitors,
            Kind::Probe => &mut out.probes,
            Kind::ScrapeConfig => &mut out.scrape_configs,
            Kind::PrometheusRule => &mut out.prometheus_rules,
        } += 1;
        namespaces.insert(o.namespace.clone());
    }
    out.namespaces = namespaces.into_iter().collect();
    out
}

/// Why the stack's Prometheus leaves out an object that looks meant for it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Why {
    /// Its namespace is not one the Prometheus looks in.
    Namespace(Unmet),
    /// It carries a label `prometheus.select.exclude` leaves out (`k=v`).
    Excluded(String),
    /// It lacks labels the selector asks for (`k=v`, or an expression).
    Labels(Vec<String>),
    /// The selector for its kind is unset.
    SelectorUnset,
}

/// The label kube-prometheus-stack's Prometheus selects its users' objects by.
pub const RELEASE_LABEL: &str = "release";

/// What `o` lacks of the selector `prometheus` picks its kind by, wherever it is (pure): an
/// object in a namespace not looked in may need a label too.
pub fn labels_unmet(prometheus: &Object, o: &Watched) -> Vec<String> {
    serde_json::from_value::<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>(
        prometheus.data["spec"][o.kind.selector_key()].clone(),
    )
    .map(|s| selector::unmet(&s, &o.labels))
    .unwrap_or_default()
}

/// Whether an object that is not selected still looks meant for the stack: it sits in the
/// stack's namespace, carries a `release` label (as kube-prometheus-stack's users label theirs),
/// or carries one of the labels the selector asks for (pure).
fn looks_meant(prometheus: &Object, o: &Watched, stack_namespace: &str) -> bool {
    let asked: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector> =
        serde_json::from_value(prometheus.data["spec"][o.kind.selector_key()].clone()).ok();
    let carries_asked = asked.is_some_and(|s| {
        s.match_labels
            .iter()
            .flatten()
            .any(|(k, v)| o.labels.get(k) == Some(v))
            || s.match_expressions.iter().flatten().any(|e| {
                e.operator == "In"
                    && o.labels
                        .get(&e.key)
                        .is_some_and(|v| e.values.iter().flatten().any(|w| w == v))
            })
    });
    o.namespace == stack_namespace || o.labels.contains_key(RELEASE_LABEL) || carries_asked
}

/// The objects not the stack's own that look meant for it and that `prometheus` leaves out,
/// with why; those another `Prometheus` of `others` selects are that one's (pure).
pub fn unselected<'a>(
    prometheus: &Object,
    others: &[Object],
    listed: &'a Listed,
    applyset_id: &str,
    exclude: &BTreeMap<String, String>,
) -> Vec<(&'a Watched, Why)> {
    let stack_namespace = prometheus.metadata.namespace.as_deref().unwrap_or_default();
    let is_it = |p: &Object| {
        p.metadata.namespace == prometheus.metadata.namespace
            && p.metadata.name == prometheus.metadata.name
    };
    theirs(listed, applyset_id)
        .filter_map(|o| {
            let unmet = selects(prometheus, o, listed).err()?;
            if !looks_meant(prometheus, o, stack_namespace)
                || others
                    .iter()
                    .filter(|p| !is_it(p))
                    .any(|p| selects(p, o, listed).is_ok())
            {
                return None;
            }
            let why = match unmet {
                u @ (Unmet::OwnNamespaceOnly(_) | Unmet::NamespaceLabels(_)) => Why::Namespace(u),
                Unmet::SelectorUnset => Why::SelectorUnset,
                Unmet::Labels(missing) => {
                    match exclude.iter().find(|(k, v)| o.labels.get(*k) == Some(*v)) {
                        Some((k, v)) => Why::Excluded(format!("{k}={v}")),
                        None => Why::Labels(missing),
                    }
                }
            };
            Some((o, why))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn prometheus(spec: serde_json::Value) -> Object {
        serde_json::from_value(json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
            "metadata": {"name": "automon", "namespace": "automon"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn watched(kind: Kind, ns: &str, name: &str, labels: &[(&str, &str)]) -> Watched {
        Watched {
            kind,
            namespace: ns.into(),
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// As automon renders `prometheus.select` with labels `{release: kps}`, exclude
    /// `{skip: "yes"}`, namespaces `[team-a]`: every kind alike.
    fn rendered() -> Object {
        let sel = json!({"matchLabels": {"release": "kps"},
                         "matchExpressions": [{"key": "skip", "operator": "NotIn", "values": ["yes"]}]});
        let ns = json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["automon", "team-a"]}]});
        let mut spec = json!({});
        for k in Kind::ALL {
            spec[k.selector_key()] = sel.clone();
            spec[k.namespace_key()] = ns.clone();
        }
        prometheus(spec)
    }

    fn listed(mut objects: Vec<Watched>) -> Listed {
        // As list() returns them.
        objects.sort();
        Listed {
            objects,
            namespaces: None,
            unreadable: Vec::new(),
        }
    }

    const OWN: &str = "applyset-abc";

    #[test]
    fn counts_what_the_selectors_select_by_kind_and_namespace_and_leaves_the_stacks_own_out() {
        let l = listed(vec![
            watched(Kind::ServiceMonitor, "team-a", "api", &[("release", "kps")]),
            watched(
                Kind::ServiceMonitor,
                "automon",
                "db",
                &[("release", "kps"), ("x", "1")],
            ),
            watched(Kind::PodMonitor, "team-a", "jobs", &[("release", "kps")]),
            watched(Kind::Probe, "team-a", "site", &[("release", "kps")]),
            watched(
                Kind::ScrapeConfig,
                "team-a",
                "static",
                &[("release", "kps")],
            ),
            watched(
                Kind::PrometheusRule,
                "automon",
                "slo",
                &[("release", "kps")],
            ),
            // Not selected: no label, another namespace, excluded.
            watched(Kind::ServiceMonitor, "team-a", "bare", &[]),
            watched(Kind::ServiceMonitor, "team-b", "far", &[("release", "kps")]),
            watched(
                Kind::PrometheusRule,
                "team-a",
                "muted",
                &[("release", "kps"), ("skip", "yes")],
            ),
            // The stack's own, selected but not the user's.
            watched(
                Kind::ServiceMonitor,
                "automon",
                "node-exporter",
                &[("release", "kps"), (APPLYSET_PART_OF_LABEL, OWN)],
            ),
            // Another automon stack's own, selected but not the user's either.
            watched(
                Kind::PrometheusRule,
                "automon",
                "node-alerts",
                &[
                    ("release", "kps"),
                    (APPLYSET_PART_OF_LABEL, "applyset-other"),
                    (MANAGED_BY_LABEL, MANAGED_BY),
                ],
            ),
        ]);
        let y = selected(&rendered(), &l, OWN);
        assert_eq!(
            (
                y.service_monitors,
                y.pod_monitors,
                y.probes,
                y.scrape_configs,
                y.prometheus_rules
            ),
            (2, 1, 1, 1, 1)
        );
        assert_eq!(y.namespaces, ["automon", "team-a"]);
        assert_eq!(y.prometheus, "automon/automon");
    }

    #[test]
    fn namespace_selectors_follow_the_operator_unset_any_and_labelled() {
        let team_b = || watched(Kind::ServiceMonitor, "team-b", "far", &[("release", "kps")]);
        let home = || {
            watched(
                Kind::ServiceMonitor,
                "automon",
                "near",
                &[("release", "kps")],
            )
        };
        let sel = json!({"matchLabels": {"release": "kps"}});
        // Unset: the Prometheus' own namespace only.
        let own = prometheus(json!({"serviceMonitorSelector": sel}));
        let l = listed(vec![team_b(), home()]);
        assert_eq!(selected(&own, &l, OWN).service_monitors, 1);
        // `{}` (prometheus.select.namespaces=["*"]): every namespace.
        let any = prometheus(
            json!({"serviceMonitorSelector": sel, "serviceMonitorNamespaceSelector": {}}),
        );
        assert_eq!(selected(&any, &l, OWN).service_monitors, 2);
        // By the namespace's labels, when the namespaces were listed.
        let labelled = prometheus(json!({"serviceMonitorSelector": sel,
            "serviceMonitorNamespaceSelector": {"matchLabels": {"monitoring": "on"}}}));
        let mut l = l;
        l.namespaces = Some(BTreeMap::from([
            (
                "team-b".to_string(),
                Labels::from([("monitoring".to_string(), "on".to_string())]),
            ),
            ("automon".to_string(), Labels::new()),
        ]));
        let y = selected(&labelled, &l, OWN);
        assert_eq!(
            (y.service_monitors, y.namespaces),
            (1, vec!["team-b".to_string()])
        );
        // An unset selector selects nothing, wherever the object is.
        let unset = prometheus(json!({"serviceMonitorNamespaceSelector": {}}));
        assert_eq!(selected(&unset, &l, OWN).service_monitors, 0);
        // `{}` selects every object whatever its labels.
        let all = prometheus(json!({"serviceMonitorSelector": {}}));
        let bare = listed(vec![watched(Kind::ServiceMonitor, "automon", "bare", &[])]);
        assert_eq!(selected(&all, &bare, OWN).service_monitors, 1);
    }

    #[test]
    fn each_object_left_out_that_looks_meant_for_the_stack_has_its_reason() {
        let exclude = BTreeMap::from([("skip".to_string(), "yes".to_string())]);
        let l = listed(vec![
            watched(Kind::ServiceMonitor, "team-b", "far", &[("release", "kps")]),
            watched(
                Kind::PodMonitor,
                "team-a",
                "muted",
                &[("release", "kps"), ("skip", "yes")],
            ),
            watched(
                Kind::PrometheusRule,
                "automon",
                "unlabelled",
                &[("team", "a")],
            ),
            watched(
                Kind::ServiceMonitor,
                "team-a",
                "other-release",
                &[("release", "prod")],
            ),
            // Looks meant for nothing: not in the stack's namespace, no selector label, no release.
            watched(
                Kind::ServiceMonitor,
                "team-a",
                "someone-elses",
                &[("team", "a")],
            ),
            // Selected: no reason.
            watched(
                Kind::ServiceMonitor,
                "team-a",
                "fine",
                &[("release", "kps")],
            ),
            // A second automon stack's rule its own Prometheus no longer selects: that stack's
            // doctor says so, not this one's.
            watched(
                Kind::PrometheusRule,
                "team-b",
                "node-alerts",
                &[
                    ("release", "kps"),
                    (APPLYSET_PART_OF_LABEL, "applyset-other"),
                    (MANAGED_BY_LABEL, MANAGED_BY),
                ],
            ),
        ]);
        let got: Vec<(String, Why)> = unselected(&rendered(), &[], &l, OWN, &exclude)
            .into_iter()
            .map(|(o, w)| (o.describe(), w))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "servicemonitor team-a/other-release".to_string(),
                    Why::Labels(vec!["release=kps".into()])
                ),
                (
                    "servicemonitor team-b/far".to_string(),
                    Why::Namespace(Unmet::NamespaceLabels(vec![
                        "kubernetes.io/metadata.name in (automon,team-a)".into()
                    ]))
                ),
                (
                    "podmonitor team-a/muted".to_string(),
                    Why::Excluded("skip=yes".into())
                ),
                (
                    "prometheusrule automon/unlabelled".to_string(),
                    Why::Labels(vec!["release=kps".into()])
                ),
            ]
        );
    }

    #[test]
    fn an_object_another_prometheus_selects_is_that_ones() {
        let l = listed(vec![watched(
            Kind::ServiceMonitor,
            "team-b",
            "far",
            &[("release", "kps")],
        )]);
        let mut kps =
            prometheus(json!({"serviceMonitorSelector": {"matchLabels": {"release": "kps"}}}));
        kps.metadata.namespace = Some("team-b".into());
        kps.metadata.name = Some("kps".into());
        let it = rendered();
        assert_eq!(
            unselected(&it, std::slice::from_ref(&it), &l, OWN, &BTreeMap::new()).len(),
            1
        );
        assert!(unselected(&it, &[it.clone(), kps], &l, OWN, &BTreeMap::new()).is_empty());
    }
}
