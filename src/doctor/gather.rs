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
    /// Aggregated APIs the API server cannot reach; `None` when they could not be listed.
    pub unavailable_apis: Option<Vec<crate::cluster::blocker::Unavailable>>,
}

/// At most this many nodes are searched for the pod that holds the host port.
const PORT_SEARCH_NODES: usize = 5;

pub async fn gather(
    cluster: &Cluster,
    snapshot: &Snapshot,
    status: &Status,
    port: u16,
) -> Result<Extra, ClusterError> {
    let client = &cluster.client;
    let ns = &cluster.namespace;
    let classify = |e| cluster.target.classify(e);
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
        crd_list,
        deployment_list,
        kubelet,
        vwcs,
        mwcs,
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
    )
    .map_err(classify)?;

    let crds = crd_list
        .items
        .iter()
        .filter(|c: &&PartialObjectMeta<CustomResourceDefinition>| {
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
        .collect();
    let operators = deployment_list
        .items
        .iter()
        .filter_map(|d| {
            let args: Vec<String> = d
                .spec
                .as_ref()?
                .template
                .spec
                .as_ref()?
                .containers
                .iter()
                .flat_map(|c| c.args.iter().flatten().cloned())
                .collect();
            let ours = d.metadata.namespace.as_deref() == Some(ns.as_str())
                && d.metadata.name.as_deref() == Some("prometheus-operator");
            let version = if ours {
                d.spec
                    .as_ref()?
                    .template
                    .spec
                    .as_ref()?
                    .containers
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
        .collect();
    let kubelet_services = kubelet
        .items
        .iter()
        .filter(|s| {
            s.metadata.labels.as_ref().is_some_and(|l| {
                l.get("app.kubernetes.io/name").map(String::as_str) == Some("kubelet")
                    || l.get("k8s-app").map(String::as_str) == Some("kubelet")
            })
        })
        .filter_map(|s| s.metadata.name.clone())
        .collect();

    // Validating and mutating webhooks have the same fields but no common type.
    macro_rules! webhooks_of {
        ($list:expr, $kind:literal) => {
            $list.items.iter().flat_map(|c| {
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
    let mut webhooks: Vec<Webhook> = webhooks_of!(vwcs, "ValidatingWebhookConfiguration")
        .chain(webhooks_of!(mwcs, "MutatingWebhookConfiguration"))
        .collect();
    let services: BTreeSet<(String, String)> = webhooks.iter().map(|w| w.service.clone()).collect();
    let mut missing = BTreeSet::new();
    for (sns, sname) in services {
        let api: Api<Service> = Api::namespaced(client.clone(), &sns);
        if api.get_opt(&sname).await.map_err(classify)?.is_none() {
            missing.insert((sns, sname));
        }
    }
    for w in &mut webhooks {
        w.service_exists = !missing.contains(&w.service);
    }

    let alertmanager_config =
        if status::reuses_operator(snapshot.parent.as_ref().expect("installed")) {
            Ok(None)
        } else {
            let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
            match secrets.get_opt(CONFIG_SECRET).await {
                Ok(Some(s)) => s
                    .data
                    .as_ref()
                    .and_then(|d| d.get("alertmanager.yaml"))
                    .ok_or_else(|| format!("Secret {ns}/{CONFIG_SECRET} has no alertmanager.yaml"))
                    .and_then(|b| {
                        serde_saphyr::from_slice::<Value>(&b.0).map_err(|e| {
                            format!(
                                "Secret {ns}/{CONFIG_SECRET}: alertmanager.yaml does not parse: {e}"
                            )
                        })
                    })
                    .map(Some),
                Ok(None) => Err(format!("Secret {ns}/{CONFIG_SECRET} is missing")),
                Err(kube::Error::Api(s)) if s.code == 403 => Ok(None),
                Err(e) => return Err(classify(e)),
            }
        };

    let blocked: Vec<&str> = status
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
        .collect();
    let mut port_holders = Vec::new();
    for node in blocked {
        let pods: Api<Pod> = Api::all(client.clone());
        let on_node = pods
            .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
            .await
            .map_err(classify)?;
        for p in &on_node.items {
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

    Ok(Extra {
        namespace_labels: namespace
            .and_then(|n| n.metadata.labels)
            .unwrap_or_default(),
        prometheuses,
        service_monitors,
        crds,
        operators,
        kubelet_services,
        webhooks,
        alertmanager_config,
        port_holders,
        unavailable_apis: api_services.map(|l| crate::cluster::blocker::unavailable(&l.items)),
    })
}

fn holds_port(p: &Pod, port: u16) -> bool {
    p.spec
        .as_ref()
        .is_some_and(|s| crate::preflight::exporter::serves_port(s, port).is_some())
}
