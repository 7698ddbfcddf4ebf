//! What doctor reads beyond status' snapshot: every `Prometheus` and its selectors, the
//! namespace's PodSecurity labels, the CRDs, the operators, kubelet Services and webhooks left
//! by other stacks, the live Alertmanager configuration.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::{
    api::{
        admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration},
        apps::v1::Deployment,
        core::v1::{Namespace, Pod, Secret, Service},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    apimachinery::pkg::apis::meta::v1::LabelSelector,
    kube_aggregator::pkg::apis::apiregistration::v1::APIService,
};
use kube::api::{Api, ListParams, PartialObjectMeta};
use serde_json::Value;

use crate::{
    cluster::{Cluster, crds, error::ClusterError},
    model::{Object, resources},
    preflight,
    render::alertmanager::CONFIG_SECRET,
    status::{self, Snapshot, Status},
};

/// A webhook and the Service it calls.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub configuration: String,
    /// `ValidatingWebhookConfiguration` or `MutatingWebhookConfiguration`.
    pub kind: &'static str,
    pub name: String,
    pub service: (String, String),
    pub service_exists: bool,
    pub fail_closed: bool,
    pub groups: Vec<String>,
    pub resources: Vec<String>,
    pub namespace_selector: Option<LabelSelector>,
}

/// What doctor reads beyond status' snapshot.
pub struct Extra {
    pub namespace_labels: BTreeMap<String, String>,
    /// Every `Prometheus` in the cluster.
    pub prometheuses: Vec<Object>,
    pub service_monitors: Vec<Object>,
    /// Monitoring CRDs: name and the operator version that generated them.
    pub crds: Vec<(String, Option<String>)>,
    /// Every Deployment that runs a Prometheus Operator: (namespace/name, version, args).
    pub operators: Vec<(String, Option<String>, Vec<String>)>,
    /// kube-system Services a Prometheus Operator maintains for the kubelet.
    pub kubelet_services: Vec<String>,
    pub webhooks: Vec<Webhook>,
    /// The live Alertmanager configuration, or why it could not be read.
    pub alertmanager_config: Result<Option<Value>, String>,
    /// Pods holding the exporter's host port, by node, for nodes whose exporter cannot
    /// schedule: (node, pod namespace/name).
    pub port_holders: Vec<(String, String)>,
    /// The first port above the exporter's that no pod holds on those nodes.
    pub free_port: Option<u16>,
    /// The namespace of another stack's exporter the stack scrapes, and its labels.
    pub exporter_namespace: Option<(String, BTreeMap<String, String>)>,
    /// The object that scrapes each exporter DaemonSet (namespace, name) on whose nodes
    /// Prometheus has no target, as (kind, namespace, name): the stack's own first.
    pub exporter_scrapes: BTreeMap<(String, String), ScrapeObject>,
    /// Aggregated APIs the API server cannot reach; `None` when they could not be listed.
    pub unavailable_apis: Option<Vec<crate::cluster::blocker::Unavailable>>,
}

/// A ServiceMonitor or PodMonitor: (kind, namespace, name).
pub type ScrapeObject = (&'static str, String, String);

/// At most this many nodes are searched for the pod that holds the host port.
const PORT_SEARCH_NODES: usize = 5;

/// Reads what doctor needs beyond status' snapshot: the cluster-wide lists at once, then
/// the webhooks' Services, the live Alertmanager configuration and the pods holding the
/// exporter's port.
pub async fn gather(
    cluster: &Cluster,
    snapshot: &Snapshot,
    status: &Status,
    port: u16,
) -> Result<Extra, ClusterError> {
    let listed = list(cluster)
        .await
        .map_err(|e| cluster.target.classify(e))?;
    let mut webhooks = webhooks(&listed.validating, &listed.mutating);
    mark_missing_services(cluster, &mut webhooks).await?;
    let alertmanager_config = alertmanager_config(cluster, snapshot).await?;
    let (port_holders, free_port) = port_holders(cluster, blocked_nodes(status), port).await?;
    let exporter_namespace = exporter_namespace(cluster, snapshot).await?;
    let exporter_scrapes = exporter_scrapes(cluster, snapshot, status).await?;
    Ok(Extra {
        namespace_labels: listed
            .namespace
            .and_then(|n| n.metadata.labels)
            .unwrap_or_default(),
        prometheuses: listed.prometheuses,
        service_monitors: listed.service_monitors,
        crds: monitoring_crds(&listed.crds),
        operators: operators(&listed.deployments, &cluster.namespace),
        kubelet_services: kubelet_services(&listed.kubelet),
        webhooks,
        alertmanager_config,
        port_holders,
        free_port,
        exporter_namespace,
        exporter_scrapes,
        unavailable_apis: listed
            .api_services
            .map(|l| crate::cluster::blocker::unavailable(&l)),
    })
}

/// What the lists of [`list`] returned, as the cluster has it.
struct Listed {
    namespace: Option<Namespace>,
    prometheuses: Vec<Object>,
    service_monitors: Vec<Object>,
    crds: Vec<PartialObjectMeta<CustomResourceDefinition>>,
    deployments: Vec<Deployment>,
    kubelet: Vec<Service>,
    validating: Vec<ValidatingWebhookConfiguration>,
    mutating: Vec<MutatingWebhookConfiguration>,
    /// `None` when they may not be listed.
    api_services: Option<Vec<APIService>>,
}

/// Every list doctor needs, at once.
async fn list(cluster: &Cluster) -> Result<Listed, kube::Error> {
    let client = &cluster.client;
    let ns = &cluster.namespace;
    let all = ListParams::default();
    let monitoring = |kind: &str| {
        resources::by_group_kind(&format!("{kind}.monitoring.coreos.com")).expect("known kind")
    };
    let list_or_none = |api: Api<Object>, lp: ListParams| async move {
        match api.list(&lp).await {
            Ok(l) => Ok(l.items),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    };
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let crd_api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let deployments: Api<Deployment> = Api::all(client.clone());
    let kubelet_api: Api<Service> = Api::namespaced(client.clone(), "kube-system");
    let kubelet_lp =
        ListParams::default().labels("app.kubernetes.io/managed-by=prometheus-operator");
    let vwc: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let mwc: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let api_services: Api<APIService> = Api::all(client.clone());
    let (
        namespace,
        prometheuses,
        service_monitors,
        crds,
        deployments,
        kubelet,
        validating,
        mutating,
        api_services,
    ) = tokio::try_join!(
        namespaces.get_opt(ns),
        list_or_none(monitoring("Prometheus").api(client, None), all.clone()),
        list_or_none(
            monitoring("ServiceMonitor").api(client, Some(ns)),
            ListParams::default().labels(&format!(
                "{}={}",
                crate::model::names::PART_OF_LABEL,
                crate::model::names::PART_OF
            )),
        ),
        crd_api.list_metadata(&all),
        deployments.list(&all),
        kubelet_api.list(&kubelet_lp),
        vwc.list(&all),
        mwc.list(&all),
        // Best effort: a user who may not list them gets no verdict on them.
        async { Ok(api_services.list(&all).await.ok()) },
    )?;
    Ok(Listed {
        namespace,
        prometheuses,
        service_monitors,
        crds: crds.items,
        deployments: deployments.items,
        kubelet: kubelet.items,
        validating: validating.items,
        mutating: mutating.items,
        api_services: api_services.map(|l| l.items),
    })
}

/// The monitoring CRDs, each with the operator version that generated it (pure).
fn monitoring_crds(
    crds: &[PartialObjectMeta<CustomResourceDefinition>],
) -> Vec<(String, Option<String>)> {
    crds.iter()
        .filter(|c| {
            c.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.ends_with(&format!(".{}", crds::GROUP)))
        })
        .map(|c| {
            (
                c.metadata.name.clone().unwrap_or_default(),
                crds::installed_version(&c.metadata),
            )
        })
        .collect()
}

/// Every Deployment that runs a Prometheus Operator, as (namespace/name, version, args):
/// the stack's own (in `ns`) by its image's tag, another by what preflight recognises (pure).
fn operators(deployments: &[Deployment], ns: &str) -> Vec<(String, Option<String>, Vec<String>)> {
    deployments
        .iter()
        .filter_map(|d| {
            let containers = &d.spec.as_ref()?.template.spec.as_ref()?.containers;
            let args: Vec<String> = containers
                .iter()
                .flat_map(|c| c.args.iter().flatten().cloned())
                .collect();
            let ours = d.metadata.namespace.as_deref() == Some(ns)
                && d.metadata.name.as_deref() == Some("prometheus-operator");
            let version = if ours {
                containers
                    .first()?
                    .image
                    .as_deref()
                    .and_then(preflight::image_tag)
                    .map(str::to_string)
            } else {
                preflight::operator_deployment(d)?.version
            };
            Some((
                format!(
                    "{}/{}",
                    d.metadata.namespace.as_deref().unwrap_or_default(),
                    d.metadata.name.as_deref().unwrap_or_default()
                ),
                version,
                args,
            ))
        })
        .collect()
}

/// The names of the kube-system Services an operator keeps for the kubelet (pure).
fn kubelet_services(services: &[Service]) -> Vec<String> {
    services
        .iter()
        .filter(|s| {
            s.metadata.labels.as_ref().is_some_and(|l| {
                l.get("app.kubernetes.io/name").map(String::as_str) == Some("kubelet")
                    || l.get("k8s-app").map(String::as_str) == Some("kubelet")
            })
        })
        .filter_map(|s| s.metadata.name.clone())
        .collect()
}

/// Every webhook that calls a Service, validating ones first; each Service assumed to exist
/// until [`mark_missing_services`] looked (pure).
fn webhooks(
    validating: &[ValidatingWebhookConfiguration],
    mutating: &[MutatingWebhookConfiguration],
) -> Vec<Webhook> {
    // Validating and mutating webhooks have the same fields but no common type.
    macro_rules! webhooks_of {
        ($list:expr, $kind:literal) => {
            $list.iter().flat_map(|c| {
                c.webhooks.iter().flatten().filter_map(move |w| {
                    let svc = w.client_config.service.as_ref()?;
                    let rules = w.rules.as_deref().unwrap_or_default();
                    Some(Webhook {
                        configuration: c.metadata.name.clone().unwrap_or_default(),
                        kind: $kind,
                        name: w.name.clone(),
                        service: (svc.namespace.clone(), svc.name.clone()),
                        service_exists: true,
                        fail_closed: w.failure_policy.as_deref() != Some("Ignore"),
                        groups: rules
                            .iter()
                            .flat_map(|r| r.api_groups.iter().flatten().cloned())
                            .collect(),
                        resources: rules
                            .iter()
                            .flat_map(|r| r.resources.iter().flatten().cloned())
                            .collect(),
                        namespace_selector: w.namespace_selector.clone(),
                    })
                })
            })
        };
    }
    webhooks_of!(validating, "ValidatingWebhookConfiguration")
        .chain(webhooks_of!(mutating, "MutatingWebhookConfiguration"))
        .collect()
}

/// Looks up each Service the webhooks call, once, and marks the webhooks whose is gone.
async fn mark_missing_services(
    cluster: &Cluster,
    webhooks: &mut [Webhook],
) -> Result<(), ClusterError> {
    let services: BTreeSet<(String, String)> = webhooks.iter().map(|w| w.service.clone()).collect();
    let mut missing = BTreeSet::new();
    for (sns, sname) in services {
        let api: Api<Service> = Api::namespaced(cluster.client.clone(), &sns);
        if api
            .get_opt(&sname)
            .await
            .map_err(|e| cluster.target.classify(e))?
            .is_none()
        {
            missing.insert((sns, sname));
        }
    }
    for w in webhooks {
        w.service_exists = !missing.contains(&w.service);
    }
    Ok(())
}

/// The live Alertmanager configuration: none when another operator's stack is reused or the
/// Secret may not be read, why when it is missing or does not parse.
async fn alertmanager_config(
    cluster: &Cluster,
    snapshot: &Snapshot,
) -> Result<Result<Option<Value>, String>, ClusterError> {
    if status::reuses_operator(snapshot.parent.as_ref().expect("installed")) {
        return Ok(Ok(None));
    }
    let ns = &cluster.namespace;
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), ns);
    Ok(match secrets.get_opt(CONFIG_SECRET).await {
        Ok(Some(s)) => alertmanager_yaml(&s, ns).map(Some),
        Ok(None) => Err(format!("Secret {ns}/{CONFIG_SECRET} is missing")),
        Err(kube::Error::Api(s)) if s.code == 403 => Ok(None),
        Err(e) => return Err(cluster.target.classify(e)),
    })
}

/// The configuration in Alertmanager's Secret, or why it cannot be read (pure).
fn alertmanager_yaml(secret: &Secret, ns: &str) -> Result<Value, String> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get("alertmanager.yaml"))
        .ok_or_else(|| format!("Secret {ns}/{CONFIG_SECRET} has no alertmanager.yaml"))
        .and_then(|b| {
            serde_saphyr::from_slice::<Value>(&b.0).map_err(|e| {
                format!("Secret {ns}/{CONFIG_SECRET}: alertmanager.yaml does not parse: {e}")
            })
        })
}

/// The nodes where the exporter waits for a free host port, the first few (pure).
fn blocked_nodes(status: &Status) -> Vec<&str> {
    status
        .nodes
        .iter()
        .filter(|n| {
            n.exporter.as_ref().is_some_and(|e| e.state == "Pending")
                && n.reason
                    .as_deref()
                    .is_some_and(|r| r.contains("free ports"))
        })
        .map(|n| n.name.as_str())
        .take(PORT_SEARCH_NODES)
        .collect()
}

/// The pods holding `port` on each of `nodes`, as (node, pod namespace/name), and the first
/// port above it that no pod there holds (`None` without nodes).
async fn port_holders(
    cluster: &Cluster,
    nodes: Vec<&str>,
    port: u16,
) -> Result<(Vec<(String, String)>, Option<u16>), ClusterError> {
    let mut port_holders = Vec::new();
    let mut taken = BTreeSet::new();
    let searched = !nodes.is_empty();
    for node in nodes {
        let pods: Api<Pod> = Api::all(cluster.client.clone());
        let on_node = pods
            .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
            .await
            .map_err(|e| cluster.target.classify(e))?;
        for p in &on_node.items {
            taken.extend(host_ports(p));
            if holds_port(p, port) {
                port_holders.push((
                    node.to_string(),
                    format!(
                        "{}/{}",
                        p.metadata.namespace.as_deref().unwrap_or_default(),
                        p.metadata.name.as_deref().unwrap_or_default()
                    ),
                ));
            }
        }
    }
    let free = searched
        .then(|| (port.saturating_add(1)..u16::MAX).find(|p| !taken.contains(p)))
        .flatten();
    Ok((port_holders, free))
}

fn holds_port(p: &Pod, port: u16) -> bool {
    p.spec
        .as_ref()
        .is_some_and(|s| crate::preflight::exporter::serves_port(s, port).is_some())
}

/// The ports a pod holds on its node: its declared host ports, and every container port in
/// the host's network (pure).
fn host_ports(p: &Pod) -> Vec<u16> {
    let Some(spec) = p.spec.as_ref() else {
        return Vec::new();
    };
    let host_network = spec.host_network == Some(true);
    spec.containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|cp| {
            cp.host_port
                .or(host_network.then_some(cp.container_port))
                .and_then(|p| u16::try_from(p).ok())
        })
        .collect()
}

/// The namespace of another stack's exporter the stack scrapes, with its labels (its
/// PodSecurity decides whether that exporter may run); `None` when the stack runs its own.
async fn exporter_namespace(
    cluster: &Cluster,
    snapshot: &Snapshot,
) -> Result<Option<(String, BTreeMap<String, String>)>, ClusterError> {
    let Some((ns, _)) = snapshot
        .exporter_from
        .as_deref()
        .and_then(|f| f.split_once('/'))
    else {
        return Ok(None);
    };
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    let found = namespaces
        .get_opt(ns)
        .await
        .map_err(|e| cluster.target.classify(e))?;
    Ok(found.map(|n| (ns.to_string(), n.metadata.labels.unwrap_or_default())))
}

/// For each exporter DaemonSet on whose nodes Prometheus has no target, the ServiceMonitor
/// (through a Service in front of its pods) or PodMonitor that selects its pods, if any.
async fn exporter_scrapes(
    cluster: &Cluster,
    snapshot: &Snapshot,
    status: &Status,
) -> Result<BTreeMap<(String, String), ScrapeObject>, ClusterError> {
    let classify = |e| cluster.target.classify(e);
    let wanted: BTreeSet<(String, String)> = status
        .nodes
        .iter()
        .filter(|n| n.cause == Some(status::Cause::NoScrapeTarget))
        .map(|n| snapshot.exporter_for(&n.os))
        .collect();
    let mut out = BTreeMap::new();
    if wanted.is_empty() {
        return Ok(out);
    }
    let client = &cluster.client;
    let all = ListParams::default();
    let monitors = |kind: &str| {
        let api = resources::by_group_kind(&format!("{kind}.monitoring.coreos.com"))
            .expect("known kind")
            .api(client, None);
        let all = all.clone();
        async move {
            match api.list(&all).await {
                Ok(l) => Ok(l.items),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
                Err(e) => Err(e),
            }
        }
    };
    let (service_monitors, pod_monitors) =
        tokio::try_join!(monitors("ServiceMonitor"), monitors("PodMonitor")).map_err(classify)?;
    for (dns, dname) in wanted {
        let daemonset = snapshot
            .daemonsets
            .iter()
            .chain(snapshot.exporter.iter())
            .find(|d| {
                d.metadata.namespace.as_deref() == Some(dns.as_str())
                    && d.metadata.name.as_deref() == Some(dname.as_str())
            });
        let Some(pod_labels) =
            daemonset.and_then(|d| d.spec.as_ref()?.template.metadata.as_ref()?.labels.clone())
        else {
            continue;
        };
        let services: Api<Service> = Api::namespaced(client.clone(), &dns);
        let services = services.list(&all).await.map_err(classify)?.items;
        let found = scrape_object(
            (&dns, &pod_labels),
            &services,
            &service_monitors,
            &pod_monitors,
            &snapshot.namespace,
        );
        if let Some(found) = found {
            out.insert((dns, dname), found);
        }
    }
    Ok(out)
}

/// The ServiceMonitor or PodMonitor that selects pods labelled `pod_labels` in namespace `ns`,
/// a ServiceMonitor through one of `services` that selects those pods; the one in `prefer`
/// (the stack's namespace) first (pure).
fn scrape_object(
    (ns, pod_labels): (&str, &BTreeMap<String, String>),
    services: &[Service],
    service_monitors: &[Object],
    pod_monitors: &[Object],
    prefer: &str,
) -> Option<ScrapeObject> {
    let in_namespace = |m: &Object| {
        let own = m.metadata.namespace.as_deref() == Some(ns);
        match m.data["spec"].get("namespaceSelector") {
            Some(sel) if sel["any"] == true => true,
            Some(sel) => match sel["matchNames"].as_array() {
                Some(names) => names.iter().any(|n| n == ns),
                None => own,
            },
            None => own,
        }
    };
    let selects = |m: &Object, labels: &BTreeMap<String, String>| {
        serde_json::from_value::<LabelSelector>(m.data["spec"]["selector"].clone())
            .is_ok_and(|sel| crate::model::selector::matches(&sel, labels))
    };
    let service_labels: Vec<BTreeMap<String, String>> = services
        .iter()
        .filter(|s| {
            s.spec
                .as_ref()
                .and_then(|spec| spec.selector.as_ref())
                .is_some_and(|sel| {
                    !sel.is_empty() && sel.iter().all(|(k, v)| pod_labels.get(k) == Some(v))
                })
        })
        .map(|s| s.metadata.labels.clone().unwrap_or_default())
        .collect();
    let found = service_monitors
        .iter()
        .filter(|m| in_namespace(m) && service_labels.iter().any(|l| selects(m, l)))
        .map(|m| ("servicemonitor", m))
        .chain(
            pod_monitors
                .iter()
                .filter(|m| in_namespace(m) && selects(m, pod_labels))
                .map(|m| ("podmonitor", m)),
        )
        .map(|(kind, m)| {
            (
                kind,
                m.metadata.namespace.clone().unwrap_or_default(),
                m.metadata.name.clone().unwrap_or_default(),
            )
        });
    let (ours, others): (Vec<ScrapeObject>, Vec<ScrapeObject>) =
        found.partition(|(_, n, _)| n == prefer);
    ours.into_iter().chain(others).next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn monitoring_crds_are_those_of_the_group_with_their_version() {
        let crd =
            |name: &str, version: Option<&str>| -> PartialObjectMeta<CustomResourceDefinition> {
                let mut m = PartialObjectMeta::<CustomResourceDefinition>::default();
                m.metadata.name = Some(name.into());
                if let Some(v) = version {
                    m.metadata.annotations =
                        Some([(crds::VERSION_ANNOTATION.to_string(), v.to_string())].into());
                }
                m
            };
        let found = monitoring_crds(&[
            crd("prometheuses.monitoring.coreos.com", Some("v0.90.0")),
            crd("certificates.cert-manager.io", Some("v1")),
            crd("alertmanagers.monitoring.coreos.com", None),
        ]);
        assert_eq!(
            found,
            [
                (
                    "prometheuses.monitoring.coreos.com".to_string(),
                    Some("v0.90.0".to_string())
                ),
                ("alertmanagers.monitoring.coreos.com".to_string(), None),
            ]
        );
    }

    #[test]
    fn operators_are_the_stacks_own_by_its_tag_and_others_as_preflight_sees_them() {
        let deployment = |ns: &str, name: &str, image: &str| -> Deployment {
            from(json!({
                "metadata": {"namespace": ns, "name": name},
                "spec": {"selector": {}, "template": {"spec": {"containers": [
                    {"name": "c", "image": image, "args": ["--a=1"]}
                ]}}},
            }))
        };
        let cases = [
            (
                deployment(
                    "automon",
                    "prometheus-operator",
                    "quay.io/x/operator:v0.90.0",
                ),
                Some(("automon/prometheus-operator", Some("v0.90.0"))),
            ),
            (
                deployment(
                    "monitoring",
                    "kps-operator",
                    "quay.io/prometheus-operator/prometheus-operator:v0.75.1",
                ),
                Some(("monitoring/kps-operator", Some("v0.75.1"))),
            ),
            (deployment("web", "nginx", "nginx:1.27"), None),
        ];
        for (d, want) in cases {
            let got = operators(std::slice::from_ref(&d), "automon");
            let got: Vec<(&str, Option<&str>)> = got
                .iter()
                .map(|(n, v, args)| {
                    assert_eq!(args, &["--a=1"]);
                    (n.as_str(), v.as_deref())
                })
                .collect();
            assert_eq!(got, want.into_iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn kubelet_services_are_found_by_either_label() {
        let service = |name: &str, labels: Value| -> Service {
            from(json!({"metadata": {"name": name, "labels": labels}}))
        };
        let found = kubelet_services(&[
            service("kps-kubelet", json!({"app.kubernetes.io/name": "kubelet"})),
            service("old-kubelet", json!({"k8s-app": "kubelet"})),
            service("other", json!({"k8s-app": "coredns"})),
        ]);
        assert_eq!(found, ["kps-kubelet", "old-kubelet"]);
    }

    #[test]
    fn webhooks_that_call_a_service_validating_first() {
        let configuration = |name: &str, policy: &str, service: bool| {
            let client = if service {
                json!({"service": {"namespace": "cm", "name": "webhook"}})
            } else {
                json!({"url": "https://example.test"})
            };
            json!({
                "metadata": {"name": name},
                "webhooks": [{
                    "name": format!("{name}.example.test"),
                    "clientConfig": client,
                    "failurePolicy": policy,
                    "rules": [{"apiGroups": ["apps"], "resources": ["deployments"]}],
                    "sideEffects": "None", "admissionReviewVersions": ["v1"],
                }],
            })
        };
        let found = webhooks(
            &[
                from(configuration("v", "Fail", true)),
                from(configuration("by-url", "Fail", false)),
            ],
            &[from(configuration("m", "Ignore", true))],
        );
        let seen: Vec<(&str, &str, bool, bool)> = found
            .iter()
            .map(|w| {
                (
                    w.configuration.as_str(),
                    w.kind,
                    w.fail_closed,
                    w.service_exists,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("v", "ValidatingWebhookConfiguration", true, true),
                ("m", "MutatingWebhookConfiguration", false, true),
            ]
        );
        assert_eq!(found[0].service, ("cm".to_string(), "webhook".to_string()));
        assert_eq!(found[0].groups, ["apps"]);
        assert_eq!(found[0].resources, ["deployments"]);
    }

    #[test]
    fn alertmanager_yaml_or_why_not() {
        let secret = |data: Value| -> Secret { from(json!({"data": data})) };
        let encoded = |s: &str| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(s)
        };
        let cases = [
            (
                secret(json!({"alertmanager.yaml": encoded("route: {receiver: a}")})),
                Ok(json!({"route": {"receiver": "a"}})),
            ),
            (
                secret(json!({})),
                Err("Secret automon/alertmanager-automon-config has no alertmanager.yaml"),
            ),
            (
                secret(json!({"alertmanager.yaml": encoded("route: [")})),
                Err("Secret automon/alertmanager-automon-config: alertmanager.yaml does not parse"),
            ),
        ];
        for (s, want) in cases {
            match (alertmanager_yaml(&s, "automon"), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want),
                (Err(got), Err(want)) => assert!(got.starts_with(want), "{got}"),
                (got, want) => panic!("{got:?}, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn the_scrape_object_of_an_exporter_selects_its_pods_the_stacks_own_first() {
        let pods = BTreeMap::from([("app".to_string(), "node-exporter".to_string())]);
        let service: Service = from(json!({
            "metadata": {"name": "kps-ne", "namespace": "monitoring", "labels": {"release": "kps"}},
            "spec": {"selector": {"app": "node-exporter"}},
        }));
        let monitor = |kind: &str, ns: &str, name: &str, spec: Value| -> Object {
            from(json!({
                "apiVersion": "monitoring.coreos.com/v1", "kind": kind,
                "metadata": {"name": name, "namespace": ns}, "spec": spec,
            }))
        };
        let theirs = monitor(
            "ServiceMonitor",
            "monitoring",
            "kps-ne",
            json!({"selector": {"matchLabels": {"release": "kps"}}}),
        );
        let ours = monitor(
            "ServiceMonitor",
            "automon",
            "node-exporter",
            json!({"selector": {"matchLabels": {"release": "kps"}}, "namespaceSelector": {"matchNames": ["monitoring"]}}),
        );
        // Elsewhere, and not told to look in monitoring: it does not scrape them.
        let blind = monitor(
            "ServiceMonitor",
            "automon",
            "blind",
            json!({"selector": {"matchLabels": {"release": "kps"}}}),
        );
        let pod_monitor = monitor(
            "PodMonitor",
            "other",
            "pm",
            json!({"selector": {"matchLabels": {"app": "node-exporter"}}, "namespaceSelector": {"any": true}}),
        );
        let found = |sms: &[Object], pms: &[Object]| {
            scrape_object(
                ("monitoring", &pods),
                std::slice::from_ref(&service),
                sms,
                pms,
                "automon",
            )
        };
        let named = |kind, ns: &str, name: &str| Some((kind, ns.to_string(), name.to_string()));
        assert_eq!(
            found(&[theirs.clone(), ours], &[]),
            named("servicemonitor", "automon", "node-exporter")
        );
        assert_eq!(
            found(&[blind.clone(), theirs], &[]),
            named("servicemonitor", "monitoring", "kps-ne")
        );
        assert_eq!(
            found(&[blind], std::slice::from_ref(&pod_monitor)),
            named("podmonitor", "other", "pm")
        );
        assert_eq!(found(&[], &[]), None);
    }

    #[test]
    fn blocked_nodes_are_those_whose_exporter_waits_for_the_port() {
        let node = |name: &str, state: Option<&str>, reason: Option<&str>| status::NodeStatus {
            name: name.into(),
            ready: "True".into(),
            os: "linux".into(),
            arch: "amd64".into(),
            coverage: status::Coverage::NotMonitored,
            exporter: state.map(|s| status::nodes::ExporterPod {
                name: format!("node-exporter-{name}"),
                state: s.into(),
                ready: false,
                restarts: 0,
            }),
            scrape: None,
            cause: None,
            reason: reason.map(str::to_string),
        };
        let taken = Some("0/1 nodes are available: 1 node(s) didn't have free ports");
        let mut st = Status::not_installed("automon");
        st.nodes = vec![
            node("a", Some("Pending"), taken),
            node("b", Some("CrashLoopBackOff"), taken),
            node("c", Some("Pending"), Some("Insufficient cpu")),
            node("d", None, taken),
        ];
        st.nodes
            .extend((0..6).map(|i| node(&format!("n{i}"), Some("Pending"), taken)));
        assert_eq!(blocked_nodes(&st), ["a", "n0", "n1", "n2", "n3"]);
    }
}
