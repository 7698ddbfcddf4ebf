//! `status`: the truth about the stack and every node. Gather is a handful of list calls, all
//! at once, each filtered by the stack's namespace or label (never one call per node, never
//! every pod of the cluster); assessing is pure; printing is the command's.

pub mod nodes;
pub mod prometheus;
pub mod version;
pub mod workloads;
pub mod yours;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{
    api::{
        apps::v1::{DaemonSet, Deployment},
        core::v1::{ConfigMap, Event},
    },
    jiff::Timestamp,
};
use kube::api::{Api, ListParams};
use serde::Serialize;
use serde_json::Value;

use crate::{
    cluster::{
        Cluster, error::ClusterError, inventory::stored_config, service_proxy::route_prefix,
    },
    config::Config,
    model::slim::SlimPod,
    model::{
        self, Object,
        names::{PART_OF, PART_OF_LABEL},
        resources,
    },
    preflight::image_tag,
    render::{self, grafana},
};
pub use nodes::{Cause, Coverage, NodeStatus};
pub use prometheus::PrometheusView;
pub use version::StackVersion;

/// The node-exporter DaemonSet's name.
pub const NODE_EXPORTER: &str = "node-exporter";

/// Everything status reads, as the cluster returned it.
pub struct Snapshot {
    pub namespace: String,
    /// The ApplySet parent: `None` when the stack is not installed in the namespace.
    pub parent: Option<ConfigMap>,
    pub deployments: Vec<Deployment>,
    pub daemonsets: Vec<DaemonSet>,
    /// The stack's `Prometheus` and `Alertmanager` objects.
    pub custom: Vec<Object>,
    pub rules: Vec<Object>,
    pub dashboards: Vec<String>,
    pub pods: Vec<crate::model::slim::SlimPod>,
    pub nodes: Vec<crate::model::slim::SlimNode>,
    /// `FailedCreate` events of the node-exporter DaemonSet.
    pub events: Vec<Event>,
    pub prometheus: Option<prometheus::Answer>,
    /// Another stack's exporter the stack scrapes instead of its own (`namespace/name`, from
    /// the parent), and that DaemonSet when it exists; its pods are in `pods`.
    pub exporter_from: Option<String>,
    pub exporter: Option<DaemonSet>,
    /// The other stack's operator, Prometheus and Alertmanagers a stack reusing its operator
    /// relies on, as found (a missing one has neither object).
    pub reused: Vec<ReusedPart>,
    /// The Lease `reconcile --loop` holds, when one was ever taken here (and readable).
    pub lease: Option<k8s_openapi::api::coordination::v1::Lease>,
    /// Every ServiceMonitor, PodMonitor, Probe, ScrapeConfig and PrometheusRule of the cluster
    /// by its metadata, and the namespaces' labels: what the stack's Prometheus selects.
    pub yours: Option<yours::Listed>,
}

/// One part of another stack that a stack reusing its operator relies on.
pub struct ReusedPart {
    /// `prometheus-operator`, `prometheus` or `alertmanager`.
    pub name: &'static str,
    /// `Deployment`, `Prometheus` or `Alertmanager`.
    pub kind: &'static str,
    /// `namespace/name`.
    pub from: String,
    pub deployment: Option<Deployment>,
    pub custom: Option<Object>,
}

/// Where status asks Prometheus.
#[derive(Debug, Clone, Default)]
pub struct PrometheusFlag {
    pub url: Option<String>,
}

fn part_of() -> ListParams {
    ListParams::default().labels(&format!("{PART_OF_LABEL}={PART_OF}"))
}

/// Reads the stack and the nodes. The parent first (one GET): nothing else is read when the
/// stack is not installed. Then every list and the questions to Prometheus at once.
pub async fn gather(cluster: &Cluster, prom: &PrometheusFlag) -> Result<Snapshot, ClusterError> {
    let classify = |e| cluster.target.classify(e);
    let parent = crate::cluster::inventory::parent_configmap(&cluster.client, &cluster.namespace)
        .await
        .map_err(classify)?;
    let Some(parent) = parent else {
        return Ok(Snapshot::empty(&cluster.namespace));
    };
    let reused = reused_prometheus(&parent);
    let reuse = reuses_operator(&parent);
    let node_exporter_job = crate::plan::LeftOut::of_parent(&parent.metadata)
        .job_name(crate::render::node_exporter::NAME);
    // Prometheus is asked beside the lists, after one GET of the Prometheus asked (none with
    // --prometheus-url): the name of its web port (kube-prometheus-stack's is `http-web`) and
    // the path its pods serve under (`spec.routePrefix`, set when the stack's is exposed under
    // a path).
    let ask = async {
        let web = match (&prom.url, &reused) {
            (Some(_), _) => Web::default(),
            (None, Some((ns, name))) if reuse => web_of(cluster, ns, name).await,
            (None, _) => web_of(cluster, &cluster.namespace, render::prometheus::INSTANCE).await,
        };
        let reused_at = reused.map(|(ns, _)| (ns, web.port.clone()));
        match prometheus_source(cluster, prom, reuse, reused_at.as_ref(), web) {
            Some(s) => {
                let wait = cluster.target.timeout.unwrap_or(prometheus::TIMEOUT);
                Some(prometheus::ask(s, wait, &node_exporter_job).await)
            }
            None => None,
        }
    };
    // Best effort: credentials that cannot read Leases still get the rest of status.
    let lease = async {
        Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(
            cluster.client.clone(),
            &cluster.namespace,
        )
        .get_opt(crate::model::names::LEASE_NAME)
        .await
        .ok()
        .flatten()
    };
    let (listed, mut answer, lease) = tokio::join!(list(cluster, parent), ask, lease);
    let mut snapshot = listed.map_err(classify)?;
    // Best effort too, and only when something fires (Watchdog aside): the alerts the stack's
    // Alertmanager holds silenced, to tell them apart from the firing ones. Another stack's
    // Alertmanager is not asked.
    let fires = |a: &prometheus::Answer| a.view.firing.iter().any(|f| f.name != "Watchdog");
    if let Some(a) = answer.as_mut().filter(|a| !reuse && fires(a)) {
        let wait = cluster.target.timeout.unwrap_or(prometheus::TIMEOUT);
        let alertmanager = crate::alertmanager::Alertmanager::of_stack(cluster).await;
        let asked = alertmanager.get("alerts?silenced=true&active=false&inhibited=false");
        if let Ok(Ok(held)) = tokio::time::timeout(wait, asked).await {
            a.view.set_apart_silenced(&held);
        }
    }
    snapshot.prometheus = answer;
    snapshot.lease = lease;
    Ok(snapshot)
}

impl Snapshot {
    /// A namespace without the stack: nothing read.
    fn empty(namespace: &str) -> Snapshot {
        Snapshot {
            namespace: namespace.to_string(),
            parent: None,
            deployments: Vec::new(),
            daemonsets: Vec::new(),
            custom: Vec::new(),
            rules: Vec::new(),
            dashboards: Vec::new(),
            pods: Vec::new(),
            nodes: Vec::new(),
            events: Vec::new(),
            prometheus: None,
            exporter_from: None,
            exporter: None,
            reused: Vec::new(),
            lease: None,
            yours: None,
        }
    }
}

/// The port name the operator gives a Prometheus' web port when its spec names none.
const DEFAULT_WEB_PORT: &str = "web";

/// How to reach a Prometheus' web API.
struct Web {
    /// The name of its web port (`spec.portName`), which the operator's `prometheus-operated`
    /// Service carries.
    port: String,
    /// The path prefix its pods serve under ([`route_prefix`]).
    prefix: String,
    /// More than one shard (`spec.shards`): each holds a part of the series, and the stack's
    /// Thanos Query answers for all of them.
    sharded: bool,
}

impl Default for Web {
    fn default() -> Self {
        Web {
            port: DEFAULT_WEB_PORT.to_string(),
            prefix: String::new(),
            sharded: false,
        }
    }
}

/// [`Web`] of the `Prometheus` `ns/name`; the defaults when it cannot be read.
async fn web_of(cluster: &Cluster, ns: &str, name: &str) -> Web {
    let api = resources::by_group_kind("Prometheus.monitoring.coreos.com")
        .expect("monitoring kinds are known")
        .api(&cluster.client, Some(ns));
    let Some(object) = api.get_opt(name).await.ok().flatten() else {
        return Web::default();
    };
    Web {
        port: (object.data["spec"]["portName"].as_str())
            .filter(|n| !n.is_empty())
            .unwrap_or(DEFAULT_WEB_PORT)
            .to_string(),
        prefix: route_prefix(&object),
        sharded: sharded(&object),
    }
}

/// Whether a `Prometheus` has more than one shard (`spec.shards`).
fn sharded(prometheus: &Object) -> bool {
    prometheus.data["spec"]["shards"]
        .as_u64()
        .is_some_and(|s| s > 1)
}

/// The Prometheus that scrapes the stack: `--prometheus-url`, its own (Thanos Query over its
/// shards when it has several), or the reused one (through the `prometheus-operated` Service
/// its operator keeps in front of every Prometheus, at its web port's name: `reused_at`, as
/// (namespace, port name)); `None` when there is none to ask.
fn prometheus_source<'a>(
    cluster: &'a Cluster,
    prom: &'a PrometheusFlag,
    reuses_operator: bool,
    reused_at: Option<&'a (String, String)>,
    web: Web,
) -> Option<prometheus::Source<'a>> {
    match (&prom.url, reused_at) {
        (Some(url), _) => Some(prometheus::Source::Url(url)),
        (None, _) if !reuses_operator && web.sharded => Some(prometheus::Source::ServiceProxy {
            cluster,
            namespace: &cluster.namespace,
            service: render::prometheus::query::NAME,
            port: render::prometheus::query::PORT_NAME,
            prefix: String::new(),
        }),
        (None, _) if !reuses_operator => Some(prometheus::Source::ServiceProxy {
            cluster,
            namespace: &cluster.namespace,
            service: render::prometheus::SERVICE,
            port: render::prometheus::PORT_NAME,
            prefix: web.prefix,
        }),
        (None, Some((namespace, port))) => Some(prometheus::Source::ServiceProxy {
            cluster,
            namespace,
            service: OPERATED_SERVICE,
            port,
            prefix: web.prefix,
        }),
        (None, None) => None,
    }
}

/// Every list of the stack under `parent`, at once: its workloads, custom resources, rules,
/// dashboards, pods, the nodes, the exporter's refusals, and the other stack's parts it
/// relies on. Prometheus' answer and the Lease are left to the caller.
async fn list(cluster: &Cluster, parent: ConfigMap) -> Result<Snapshot, kube::Error> {
    let client = &cluster.client;
    let ns = &cluster.namespace;
    let exporter_from = exporter_from(&parent);
    let (exporter_ns, exporter_name) = exporter_daemonset(exporter_from.as_deref(), ns);
    let events = ListParams::default().fields(&format!(
        "involvedObject.kind=DaemonSet,involvedObject.name={exporter_name},reason=FailedCreate"
    ));
    let dashboards = ListParams::default().labels(&format!(
        "{}={}",
        grafana::DASHBOARD_LABEL,
        grafana::DASHBOARD_LABEL_VALUE
    ));
    let borrowed = async {
        if exporter_from.is_none() {
            return Ok((None, Vec::new()));
        }
        borrowed_exporter_pods(client, &exporter_ns, &exporter_name).await
    };
    let deployments_api = Api::<Deployment>::namespaced(client.clone(), ns);
    let daemonsets_api = Api::<DaemonSet>::namespaced(client.clone(), ns);
    let configmaps_api = Api::<ConfigMap>::namespaced(client.clone(), ns);
    let pods_api = Api::<SlimPod>::namespaced(client.clone(), ns);
    let events_api = Api::<Event>::namespaced(client.clone(), &exporter_ns);
    let (labelled, all) = (part_of(), ListParams::default());
    let (
        reused,
        (exporter, exporter_pods),
        deployments,
        daemonsets,
        proms,
        alertmanagers,
        rules,
        dashboards,
        mut pods,
        nodes,
        events,
        yours,
    ) = tokio::try_join!(
        reused_parts(client, &parent),
        borrowed,
        deployments_api.list(&labelled),
        daemonsets_api.list(&labelled),
        custom_objects(client, ns, "Prometheus.monitoring.coreos.com"),
        custom_objects(client, ns, "Alertmanager.monitoring.coreos.com"),
        custom_objects(client, ns, "PrometheusRule.monitoring.coreos.com"),
        configmaps_api.list_metadata(&dashboards),
        stack_pods(&pods_api, ns),
        crate::cluster::list_nodes(client, &all),
        events_api.list(&events),
        yours::list(client),
    )?;
    pods.extend(exporter_pods);
    Ok(Snapshot {
        namespace: ns.clone(),
        parent: Some(parent),
        deployments: deployments.items,
        daemonsets: daemonsets.items,
        custom: proms.into_iter().chain(alertmanagers).collect(),
        rules,
        dashboards: dashboards
            .items
            .into_iter()
            .filter_map(|m| m.metadata.name)
            .collect(),
        pods,
        nodes,
        events: events.items,
        prometheus: None,
        exporter_from,
        exporter,
        reused,
        lease: None,
        yours: Some(yours),
    })
}

impl Snapshot {
    /// The DaemonSet that puts the exporter on nodes of `os`, as (namespace, name): automon's
    /// windows-exporter on Windows nodes when the stack runs one (as node coverage judges
    /// them), else the node-exporter, automon's own or the other stack's it scrapes (pure).
    pub fn exporter_for(&self, os: &str) -> (String, String) {
        let windows = os == render::classes::WINDOWS
            && self
                .daemonsets
                .iter()
                .any(|d| d.metadata.name.as_deref() == Some(render::classes::WINDOWS_EXPORTER));
        if windows {
            (
                self.namespace.clone(),
                render::classes::WINDOWS_EXPORTER.to_string(),
            )
        } else {
            exporter_daemonset(self.exporter_from.as_deref(), &self.namespace)
        }
    }

    /// The `Prometheus` that scrapes the stack, as (namespace, name): automon's own, or the
    /// other stack's its parent names; `None` when not installed or the parent names none.
    pub fn scraping_prometheus(&self) -> Option<(String, String)> {
        let parent = self.parent.as_ref()?;
        if reuses_operator(parent) {
            reused_prometheus(parent)
        } else {
            Some((
                self.namespace.clone(),
                render::prometheus::INSTANCE.to_string(),
            ))
        }
    }

    /// The live [`Snapshot::scraping_prometheus`], as read; `None` when it is not there.
    pub fn scraping_prometheus_object(&self) -> Option<&Object> {
        let (ns, name) = self.scraping_prometheus()?;
        self.custom
            .iter()
            .chain(self.reused.iter().filter_map(|r| r.custom.as_ref()))
            .find(|o| {
                model::kind(o) == "Prometheus"
                    && o.metadata.namespace.as_deref() == Some(ns.as_str())
                    && o.metadata.name.as_deref() == Some(name.as_str())
            })
    }

    /// Whether status asked the stack's Thanos Query (its own Prometheus, sharded) rather than
    /// a Prometheus.
    pub fn asks_query(&self) -> bool {
        let own = self.parent.as_ref().is_some_and(|p| !reuses_operator(p));
        own && self.scraping_prometheus_object().is_some_and(sharded)
    }

    /// What the stack's Prometheus selects of the user's own monitors and rules (pure).
    fn your_monitors(&self) -> Option<yours::YourMonitors> {
        let id = crate::cluster::inventory::applyset_id(&self.parent.as_ref()?.metadata)?;
        Some(yours::selected(
            self.scraping_prometheus_object()?,
            self.yours.as_ref()?,
            id,
        ))
    }
}

/// The labels the Prometheus Operator gives every pod (every shard's) of the `Prometheus` or
/// `Alertmanager` `name`, automon's own or another stack's, as a label selector (pure).
pub fn operator_pod_selector(kind: &str, name: &str) -> String {
    format!(
        "app.kubernetes.io/name={},app.kubernetes.io/instance={name}",
        kind.to_lowercase()
    )
}

/// Whether a pod is one of those [`operator_pod_selector`] selects (pure).
fn operator_pod(labels: &BTreeMap<String, String>, kind: &str, name: &str) -> bool {
    operator_pod_selector(kind, name).split(',').all(|pair| {
        pair.split_once('=')
            .is_some_and(|(k, v)| labels.get(k).map(String::as_str) == Some(v))
    })
}

/// The exporter's DaemonSet as (namespace, name): automon's own in `ns`, or the one of
/// another stack it scrapes (`namespace/name`, from the parent) (pure).
fn exporter_daemonset(exporter_from: Option<&str>, ns: &str) -> (String, String) {
    match exporter_from.and_then(|f| f.split_once('/')) {
        Some((ns, name)) => (ns.to_string(), name.to_string()),
        None => (ns.to_string(), NODE_EXPORTER.to_string()),
    }
}

/// The stack's objects of a monitoring kind in `ns`; none when its CRD is gone.
async fn custom_objects(
    client: &kube::Client,
    ns: &str,
    group_kind: &str,
) -> Result<Vec<Object>, kube::Error> {
    let api = resources::by_group_kind(group_kind)
        .expect("monitoring kinds are known")
        .api(client, Some(ns));
    match api.list(&part_of()).await {
        Ok(l) => Ok(l.items),
        // CRDs removed under the stack: none of those objects, not an error.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Another stack's exporter: that DaemonSet, then its pods (by its selector); none when the
/// DaemonSet is gone.
async fn borrowed_exporter_pods(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<(Option<DaemonSet>, Vec<crate::model::slim::SlimPod>), kube::Error> {
    let api = Api::<DaemonSet>::namespaced(client.clone(), namespace);
    let Some(ds) = api.get_opt(name).await? else {
        return Ok((None, Vec::new()));
    };
    let api = Api::<SlimPod>::namespaced(client.clone(), namespace);
    let pods = match ds.spec.as_ref() {
        Some(spec) => exporter_pods(&api, namespace, &spec.selector).await?,
        None => Vec::new(),
    };
    Ok((Some(ds), pods))
}

/// The pods of the stack's namespace: the node-exporter's by [`exporter_pods`], the rest
/// (a few) whole, a pod labelled as the exporter but not the stack's among them.
async fn stack_pods(api: &Api<SlimPod>, ns: &str) -> Result<Vec<SlimPod>, kube::Error> {
    use model::names::NAME_LABEL;
    let exporter = render::meta::selector(NODE_EXPORTER);
    let selector = k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
        match_labels: Some(exporter),
        ..Default::default()
    };
    let others = ListParams::default().labels(&format!("{NAME_LABEL}!={NODE_EXPORTER}"));
    let lookalikes = ListParams::default().labels(&format!(
        "{NAME_LABEL}={NODE_EXPORTER},{PART_OF_LABEL}!={PART_OF}"
    ));
    let (mut pods, others, lookalikes) = tokio::try_join!(
        exporter_pods(api, ns, &selector),
        crate::cluster::list_paged(api, &others),
        crate::cluster::list_paged(api, &lookalikes),
    )?;
    pods.extend(others.into_iter().chain(lookalikes));
    Ok(pods)
}

/// How many pods not plainly Running and Ready are read whole at once.
const READ_WHOLE_AT_ONCE: usize = 8;

/// The pods an exporter's DaemonSet selects in `ns`, one a node: read as the API server's
/// Table, and whole only those its row does not show plainly Running and Ready on a node. At
/// 5,000 nodes the JSON of 5,000 pods costs the API server a second to encode (40 MB) and
/// their rows 0.07 s (0.7 MB); what status reads of a healthy exporter pod (its node, its
/// state, its restarts) is in the row. A selector with expressions cannot be given to the
/// rows as labels: those pods are read whole.
async fn exporter_pods(
    api: &Api<SlimPod>,
    ns: &str,
    selector: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
) -> Result<Vec<SlimPod>, kube::Error> {
    use futures::{StreamExt, TryStreamExt};
    let params = ListParams::default().labels(&crate::model::selector::to_query(selector));
    let labels = match (&selector.match_labels, &selector.match_expressions) {
        (Some(labels), expressions)
            if !labels.is_empty() && expressions.as_ref().is_none_or(Vec::is_empty) =>
        {
            labels
        }
        _ => return crate::cluster::list_paged(api, &params).await,
    };
    let Some(table) = crate::cluster::list_table(api, &params).await? else {
        return crate::cluster::list_paged(api, &params).await;
    };
    let (mut pods, unclear) = pods_of_rows(&table, ns, labels);
    let whole: Vec<Option<SlimPod>> = futures::stream::iter(unclear)
        .map(|name| async move { api.get_opt(&name).await })
        .buffer_unordered(READ_WHOLE_AT_ONCE)
        .try_collect()
        .await?;
    pods.extend(whole.into_iter().flatten());
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(pods)
}

/// The pods a Table's rows show plainly Running and Ready on a node (`Status` Running, every
/// container ready, every readiness gate met), as a `SlimPod` with `labels` (the selector the
/// rows were listed by); and the names of the others, to be read whole (pure).
fn pods_of_rows(
    table: &crate::cluster::Table,
    ns: &str,
    labels: &BTreeMap<String, String>,
) -> (Vec<SlimPod>, Vec<String>) {
    let all_of = |cell: Option<String>| {
        cell.as_deref()
            .and_then(|c| c.split_once('/'))
            .is_some_and(|(a, b)| a == b && a.parse::<u32>().is_ok_and(|n| n > 0))
    };
    let (mut plain, mut unclear) = (Vec::new(), Vec::new());
    for row in &table.rows {
        let Some(name) = table.cell(row, "Name") else {
            continue;
        };
        let node = table
            .cell(row, "Node")
            .filter(|n| !n.is_empty() && n != "<none>");
        let gates_met = table
            .cell(row, "Readiness Gates")
            .is_none_or(|g| g == "<none>" || all_of(Some(g)));
        let running = table.cell(row, "Status").as_deref() == Some("Running");
        let restarts = table.cell(row, "Restarts").and_then(|r| {
            let digits: String = r.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<i32>().ok()
        });
        match (node, restarts) {
            (Some(node), Some(restarts))
                if running && gates_met && all_of(table.cell(row, "Ready")) =>
            {
                plain.push(SlimPod {
                    metadata: ObjectMeta {
                        name: Some(name),
                        namespace: Some(ns.to_string()),
                        labels: Some(labels.clone()),
                        ..Default::default()
                    },
                    spec: crate::model::slim::SlimPodSpec {
                        node_name: Some(node),
                        pinned_node: None,
                    },
                    status: crate::model::slim::PodSummary {
                        state: "Running".into(),
                        message: None,
                        ready_since: None,
                        restarts,
                    },
                })
            }
            _ => unclear.push(name),
        }
    }
    (plain, unclear)
}

/// A stack installed beside another Prometheus Operator has no Prometheus of its own: its
/// parent does not list the kind.
pub fn reuses_operator(parent: &ConfigMap) -> bool {
    !crate::cluster::inventory::group_kinds(&parent.metadata)
        .contains("Prometheus.monitoring.coreos.com")
}

/// The other stack's exporter a stack scrapes instead of its own (`namespace/name`), as its
/// parent records it.
pub fn exporter_from(parent: &ConfigMap) -> Option<String> {
    parent
        .metadata
        .annotations
        .as_ref()?
        .get(crate::model::names::EXPORTER_FROM)
        .cloned()
}

/// Reads the other stack's operator Deployment and Prometheus the parent names, and the
/// Alertmanagers beside that Prometheus; nothing when the stack runs its own operator.
async fn reused_parts(
    client: &kube::Client,
    parent: &ConfigMap,
) -> Result<Vec<ReusedPart>, kube::Error> {
    let annotation = |key: &str| {
        parent
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .and_then(|v| v.split_once('/'))
            .map(|(ns, name)| (ns.to_string(), name.to_string()))
    };
    let custom = |kind: &str, ns: &str| {
        resources::by_group_kind(&format!("{kind}.monitoring.coreos.com"))
            .expect("monitoring kinds are known")
            .api(client, Some(ns))
    };
    let mut out = Vec::new();
    if let Some((ns, name)) = annotation(crate::plan::OPERATOR_FROM) {
        let deployment = Api::<Deployment>::namespaced(client.clone(), &ns)
            .get_opt(&name)
            .await?;
        out.push(ReusedPart {
            name: "prometheus-operator",
            kind: "Deployment",
            from: format!("{ns}/{name}"),
            deployment,
            custom: None,
        });
    }
    if let Some((ns, name)) = reused_prometheus(parent) {
        let gone = |e: kube::Error| match e {
            kube::Error::Api(s) if s.code == 404 => Ok(None),
            e => Err(e),
        };
        let prometheus = custom("Prometheus", &ns)
            .get_opt(&name)
            .await
            .or_else(gone)?;
        out.push(ReusedPart {
            name: "prometheus",
            kind: "Prometheus",
            from: format!("{ns}/{name}"),
            deployment: None,
            custom: prometheus,
        });
        let alertmanagers = custom("Alertmanager", &ns)
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .or_else(|e| gone(e).map(|_| Vec::new()))?;
        out.extend(alertmanagers.into_iter().map(|a| ReusedPart {
            name: "alertmanager",
            kind: "Alertmanager",
            from: format!("{ns}/{}", a.metadata.name.as_deref().unwrap_or_default()),
            deployment: None,
            custom: Some(a),
        }));
    }
    Ok(out)
}

/// A reused part as a component: its health as its own rollout says, and where it is.
fn reused_component(part: &ReusedPart, namespace: &str) -> Component {
    let name = part.from.split_once('/').map_or("", |(_, n)| n).to_string();
    let expected = [(part.kind.to_string(), name.clone())];
    let deployments: Vec<Deployment> = part.deployment.iter().cloned().collect();
    let custom: Vec<Object> = part.custom.iter().cloned().collect();
    let w = workloads::assess(&expected, &deployments, &[], &custom)
        .pop()
        .expect("one expected, one assessed");
    let (version, created) = match (&part.deployment, &part.custom) {
        (Some(d), _) => (
            first_image(d.spec.as_ref().and_then(|s| s.template.spec.as_ref())),
            created(&d.metadata),
        ),
        (None, Some(o)) => (
            o.data["spec"]["version"].as_str().map(str::to_string),
            created(&o.metadata),
        ),
        (None, None) => (None, None),
    };
    let found = part.deployment.is_some() || part.custom.is_some();
    Component {
        name: part.name.to_string(),
        kind: part.kind.to_string(),
        object: part.from.clone(),
        ready: w.ready,
        desired: w.desired,
        version,
        created,
        healthy: found && w.is_ready(),
        message: if !found {
            Some(format!(
                "{} {}, which this stack relies on, is gone (`kubectl automon enable -n {namespace}` installs automon's own)",
                part.kind.to_lowercase(),
                part.from
            ))
        } else if !w.is_ready() {
            // As for the stack's own: a rollout that has not caught up says so.
            Some(if w.current {
                format!("{}/{} ready", w.ready, w.desired)
            } else {
                "rolling out".to_string()
            })
        } else {
            None
        },
        reused: Some(part.from.clone()),
    }
}

/// The Service a Prometheus Operator keeps in front of every Prometheus in a namespace.
const OPERATED_SERVICE: &str = "prometheus-operated";

/// The other stack's Prometheus a stack reusing its operator was labelled for, as
/// (namespace, name).
pub fn reused_prometheus(parent: &ConfigMap) -> Option<(String, String)> {
    let value = parent
        .metadata
        .annotations
        .as_ref()?
        .get(crate::plan::PROMETHEUS_FROM)?;
    let (ns, name) = value.split_once('/')?;
    Some((ns.to_string(), name.to_string()))
}

/// The newest `FailedCreate` event of the exporter's DaemonSet: its message and when.
pub fn newest_refusal<'a>(
    events: impl Iterator<Item = &'a Event>,
) -> (Option<&'a str>, Option<Timestamp>) {
    let event_time = |e: &Event| {
        e.last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or(e.event_time.as_ref().map(|t| t.0))
            .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
    };
    let newest = events.max_by_key(|e| event_time(e));
    (
        newest.and_then(|e| e.message.as_deref()),
        newest.and_then(event_time),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Health {
    /// Nothing wrong, and Prometheus answered: its scrape targets are up (firing alerts are
    /// listed, they are about the cluster, not the stack).
    Healthy,
    /// Nothing wrong as far as the API server shows; Prometheus did not answer, so scrape
    /// health and firing alerts are unknown. Never called healthy.
    Unverified,
    Degraded,
    NotInstalled,
}

/// One part of the stack.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    /// `prometheus-operator`, `prometheus`, `alertmanager`, `grafana`, `kube-state-metrics`,
    /// `node-exporter`.
    pub name: String,
    pub kind: String,
    /// The object's name.
    pub object: String,
    pub ready: i64,
    pub desired: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// RFC 3339; `None` when the object is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    pub healthy: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Another stack's object that stands in for automon's own (`namespace/name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reused: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub nodes: usize,
    pub monitored: usize,
    pub excluded: usize,
    pub not_monitored: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rules {
    /// PrometheusRule objects of the stack.
    pub objects: usize,
    pub groups: usize,
    pub alerts: usize,
    /// What Prometheus has loaded, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loaded: Option<prometheus::RulesLoaded>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Dashboards {
    pub count: usize,
    pub names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alerting {
    /// The receiver every alert goes to unless a more specific route matches.
    pub receiver: String,
    /// Whether that receiver notifies anyone (has a webhook, Slack or email).
    pub notifies: bool,
}

/// `status -o json|yaml`; the README documents every field.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub namespace: String,
    pub health: Health,
    /// One line per reason the stack is degraded.
    pub problems: Vec<String>,
    /// What could not be checked (Prometheus did not answer, or was not asked), one line each.
    pub unknown: Vec<String>,
    pub components: Vec<Component>,
    pub summary: Summary,
    pub nodes: Vec<NodeStatus>,
    pub rules: Rules,
    pub dashboards: Dashboards,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerting: Option<Alerting>,
    /// `None` when Prometheus was not asked (another operator's, and no `--prometheus-url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusView>,
    /// The `reconcile --loop` that holds the Lease, when one ever ran here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<LoopLease>,
    /// What the stack is sized for beside what Prometheus holds; none when another
    /// operator's Prometheus is reused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sizing: Option<SizingView>,
    /// Which automon installed the stack, beside this plugin; none when it is not installed.
    /// A difference is said, never counted as a problem: the stack works either way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack_version: Option<StackVersion>,
    /// The user's own ServiceMonitors, PodMonitors, Probes, ScrapeConfigs and PrometheusRules
    /// the stack's Prometheus selects; none when that Prometheus was not found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub your_monitors: Option<yours::YourMonitors>,
}

/// The sizing estimate for the cluster as it is now, beside Prometheus' own figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SizingView {
    /// Nodes the cluster has now.
    pub nodes: u32,
    /// The node count the stack in the cluster was sized for (its `Prometheus`' annotation),
    /// else the tier the cluster falls in now.
    pub sized_for: u32,
    /// The tier the cluster falls in now, when `enable` would size the stack differently.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resize_for: Option<u32>,
    pub series_per_node: u64,
    /// Estimated series, all shards together.
    pub estimated_series: u64,
    /// Shards the stack's Prometheus runs with.
    pub shards: u32,
    /// Estimated series of one shard.
    pub estimated_series_per_shard: u64,
    /// Prometheus' head series (of the shard that answered), when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_series: Option<u64>,
    /// The Prometheus container's memory limit, as the cluster has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_limit_bytes: Option<u64>,
    /// The largest resident memory of its pods, when Prometheus answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resident_memory_bytes: Option<u64>,
}

/// The sizing view of a stack whose stored configuration is `config`, on a cluster of `nodes`
/// nodes, with the live `Prometheus` object and what Prometheus said (pure).
pub fn sizing_view(
    config: &Config,
    nodes: u32,
    live: Option<&Object>,
    view: Option<&prometheus::PrometheusView>,
) -> SizingView {
    let estimate = crate::config::sizing::estimate(config, Some(nodes));
    let spec = live.map(|o| &o.data["spec"]);
    let shards = spec
        .and_then(|s| s["shards"].as_u64())
        .map_or(estimate.shards, |n| n.max(1) as u32);
    let sized_for = live
        .and_then(|o| o.metadata.annotations.as_ref())
        .and_then(|a| a.get(crate::config::sizing::SIZED_FOR_ANNOTATION))
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(estimate.sized_for);
    let memory_limit_bytes = spec
        .and_then(|s| s["resources"]["limits"]["memory"].as_str())
        .and_then(|q| crate::config::sizing::bytes_of(&crate::config::Quantity(q.into())));
    SizingView {
        nodes,
        sized_for,
        resize_for: (sized_for != estimate.sized_for).then_some(estimate.sized_for),
        series_per_node: estimate.series_per_node,
        estimated_series: estimate.series,
        shards,
        estimated_series_per_shard: estimate.series.div_ceil(u64::from(shards)),
        head_series: view.and_then(|v| v.head_series),
        memory_limit_bytes,
        resident_memory_bytes: view.and_then(|v| v.resident_memory_bytes),
    }
}

/// Who holds the Lease `reconcile --loop` takes, and since when it renewed it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoopLease {
    /// The holding loop's identity (`host-pid`, or `--identity`); empty when none holds it.
    pub holder: String,
    /// When it last renewed the Lease (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renewed: Option<String>,
    /// Held, and renewed within its duration: a loop is running.
    pub active: bool,
}

/// What the Lease says about the loop (pure).
pub fn loop_lease(lease: &k8s_openapi::api::coordination::v1::Lease, now: Timestamp) -> LoopLease {
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.unwrap_or_default();
    let renewed = spec.renew_time.map(|t| t.0);
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    let active =
        !holder.is_empty() && renewed.is_some_and(|r| now.as_second() - r.as_second() <= duration);
    LoopLease {
        holder,
        renewed: renewed.map(|r| r.to_string()),
        active,
    }
}

pub const API_VERSION: &str = "automon.io/v1alpha1";

impl Status {
    pub fn not_installed(namespace: &str) -> Status {
        Status {
            api_version: API_VERSION,
            kind: "Status",
            namespace: namespace.to_string(),
            health: Health::NotInstalled,
            problems: vec![format!(
                "automon is not installed in namespace {namespace} (install it with `kubectl automon enable -n {namespace}`)"
            )],
            unknown: Vec::new(),
            components: Vec::new(),
            summary: Summary::default(),
            nodes: Vec::new(),
            rules: Rules::default(),
            dashboards: Dashboards::default(),
            alerting: None,
            prometheus: None,
            reconcile: None,
            sizing: None,
            stack_version: None,
            your_monitors: None,
        }
    }
}

/// The receiver a rendered or live Alertmanager configuration sends every alert to, and
/// whether it has any integration (pure; the same rule for the stored and the live one).
pub fn default_route(config: &Value) -> Option<Alerting> {
    let receiver = config["route"]["receiver"].as_str()?.to_string();
    let notifies = config["receivers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["name"] == receiver.as_str())
        .any(|r| {
            r.as_object().is_some_and(|o| {
                o.iter().any(|(k, v)| {
                    k.ends_with("_configs") && v.as_array().is_some_and(|a| !a.is_empty())
                })
            })
        });
    Some(Alerting { receiver, notifies })
}

fn created(meta: &kube::api::ObjectMeta) -> Option<String> {
    meta.creation_timestamp.as_ref().map(|t| t.0.to_string())
}

fn first_image(spec: Option<&k8s_openapi::api::core::v1::PodSpec>) -> Option<String> {
    let image = spec?.containers.first()?.image.as_deref()?;
    image_tag(image).map(str::to_string)
}

/// The first pod of a workload that is not Running and ready, with what it says.
fn pod_problem<'a>(pods: impl Iterator<Item = &'a crate::model::slim::SlimPod>) -> Option<String> {
    pods.filter_map(|p| {
        let (state, message) = nodes::pod_state(p);
        (state != "Running").then(|| {
            let name = p.metadata.name.as_deref().unwrap_or_default();
            match message {
                Some(m) => format!("pod {name} {state}: {m}"),
                None => format!("pod {name} {state}"),
            }
        })
    })
    .next()
}

fn labels_of(p: &crate::model::slim::SlimPod) -> BTreeMap<String, String> {
    p.metadata.labels.clone().unwrap_or_default()
}

/// Judges the snapshot (pure). `now` is for nothing but a scrape's age.
pub fn assess(s: &Snapshot, now: Timestamp) -> Status {
    let Some(parent) = &s.parent else {
        return Status::not_installed(&s.namespace);
    };
    let mut problems = Vec::new();
    let config = stored_config(parent).unwrap_or_else(|e| {
        problems.push(format!(
            "the stored configuration cannot be read ({e}); defaults assumed"
        ));
        Config::default()
    });
    let reuse = reuses_operator(parent);
    let node_count = u32::try_from(s.nodes.len()).unwrap_or(u32::MAX);
    let workloads = rollouts(s, parent, &config, node_count);
    let nodes = assess_nodes(s, &config, now);
    let summary = Summary::of(&nodes);
    let components = components(s, &workloads, &summary);
    problems.extend(component_problems(&components, &summary));
    let view = s.prometheus.as_ref().map(|a| a.view.clone());
    problems.extend(scrape_problem(view.as_ref()));
    let unknown = unknown(view.as_ref(), &s.namespace);
    let mut names = s.dashboards.clone();
    names.sort();
    Status {
        api_version: API_VERSION,
        kind: "Status",
        namespace: s.namespace.clone(),
        health: Health::of(&problems, &unknown),
        problems,
        unknown,
        components,
        summary,
        nodes,
        rules: rules(&s.rules, view.as_ref()),
        dashboards: Dashboards {
            count: names.len(),
            names,
        },
        alerting: (!reuse).then(|| alerting(&config)).flatten(),
        sizing: (!reuse).then(|| {
            let live = s.custom.iter().find(|o| {
                model::kind(o) == "Prometheus"
                    && o.metadata.name.as_deref() == Some(render::prometheus::INSTANCE)
            });
            sizing_view(&config, node_count, live, view.as_ref())
        }),
        prometheus: view,
        reconcile: s.lease.as_ref().map(|l| loop_lease(l, now)),
        stack_version: Some(StackVersion::of_parent(parent)),
        your_monitors: s.your_monitors(),
    }
}

/// The stack's workloads as their rollouts say: those `config` renders for these nodes, less
/// what the parent records as left out (another operator's parts), less automon's exporter
/// when another stack's stands in for it.
fn rollouts(
    s: &Snapshot,
    parent: &ConfigMap,
    config: &Config,
    node_count: u32,
) -> Vec<workloads::Workload> {
    let classes = render::NodeClasses::of_nodes(&s.nodes);
    let rendered =
        render::render_classes(config, Vec::new(), None, classes, Some(node_count)).objects;
    let left_out = crate::plan::LeftOut::of_parent(&parent.metadata);
    let objects = crate::plan::kept(rendered, reuses_operator(parent), &left_out);
    let mut expected = workloads::expected(&objects);
    if s.exporter_from.is_some() {
        // Another stack's exporter stands in for automon's own: judged as its DaemonSet.
        expected.retain(|(k, n)| !(k == "DaemonSet" && n == NODE_EXPORTER));
    }
    workloads::assess(&expected, &s.deployments, &s.daemonsets, &s.custom)
}

/// Every node's coverage, against the exporter's DaemonSet (automon's own or the one it
/// scrapes), its pods and refusals, and Prometheus' targets.
fn assess_nodes(s: &Snapshot, config: &Config, now: Timestamp) -> Vec<NodeStatus> {
    let daemonset = if s.exporter_from.is_some() {
        s.exporter.as_ref()
    } else {
        s.daemonsets
            .iter()
            .find(|d| d.metadata.name.as_deref() == Some(NODE_EXPORTER))
    };
    let (failed_create, failed_create_at) = newest_refusal(s.events.iter());
    nodes::assess(&nodes::Inputs {
        nodes: s.nodes.iter().collect(),
        daemonset,
        windows: s
            .daemonsets
            .iter()
            .find(|d| d.metadata.name.as_deref() == Some(render::classes::WINDOWS_EXPORTER)),
        pods: s.pods.iter().collect(),
        failed_create,
        failed_create_at,
        exclude_label: &config.node_exporter.exclude_label,
        namespace: &s.namespace,
        exporter_from: s.exporter_from.as_deref(),
        targets: s.prometheus.as_ref().and_then(|a| a.node_targets.as_ref()),
        now: now.as_millisecond() as f64 / 1000.0,
    })
}

impl Summary {
    /// The nodes counted by coverage.
    fn of(nodes: &[NodeStatus]) -> Summary {
        let count = |c: Coverage| nodes.iter().filter(|n| n.coverage == c).count();
        Summary {
            nodes: nodes.len(),
            monitored: count(Coverage::Monitored),
            excluded: count(Coverage::Excluded),
            not_monitored: count(Coverage::NotMonitored),
        }
    }
}

/// The components: the stack's workloads, the other stack's parts it relies on and the
/// exporter it scrapes, in the order a reader follows the data: operator, where it is stored
/// and sent, what shows it, what produces it.
fn components(
    s: &Snapshot,
    workloads: &[workloads::Workload],
    summary: &Summary,
) -> Vec<Component> {
    let mut components: Vec<Component> =
        workloads.iter().map(|w| component(w, s, summary)).collect();
    components.extend(s.reused.iter().map(|p| reused_component(p, &s.namespace)));
    if let Some(from) = &s.exporter_from {
        components.push(borrowed_exporter(
            from,
            s.exporter.as_ref(),
            &s.namespace,
            summary,
        ));
    }
    const ORDER: &[&str] = &[
        "prometheus-operator",
        "prometheus",
        "alertmanager",
        "grafana",
        "kube-state-metrics",
        NODE_EXPORTER,
    ];
    components.sort_by_key(|c| {
        ORDER
            .iter()
            .position(|n| *n == c.name)
            .unwrap_or(ORDER.len())
    });
    components
}

/// A line per component that is not healthy, and one for nodes without a working exporter
/// unless the exporter's own line says so (pure).
fn component_problems(components: &[Component], summary: &Summary) -> Vec<String> {
    let mut problems: Vec<String> = components
        .iter()
        .filter(|c| !c.healthy)
        .map(|c| {
            format!(
                "{}: {}",
                c.name,
                c.message.as_deref().unwrap_or("not ready")
            )
        })
        .collect();
    if summary.not_monitored > 0 && !problems.iter().any(|p| p.starts_with(NODE_EXPORTER)) {
        problems.push(format!(
            "{} of {} nodes have no working exporter",
            summary.not_monitored, summary.nodes
        ));
    }
    problems
}

/// The scrape targets down other than node-exporter's (those are the nodes' own lines), by
/// job (pure).
fn scrape_problem(view: Option<&PrometheusView>) -> Option<String> {
    let t = view?.targets.as_ref()?;
    let others: Vec<&prometheus::DownTarget> = t.unhealthy.iter().filter(|d| !d.per_node).collect();
    if others.is_empty() {
        return None;
    }
    let jobs: std::collections::BTreeSet<&str> = others.iter().map(|d| d.job.as_str()).collect();
    Some(format!(
        "{} scrape target{} down (job {})",
        others.len(),
        if others.len() == 1 { "" } else { "s" },
        jobs.into_iter().collect::<Vec<_>>().join(", ")
    ))
}

/// The stack's rule groups and alerts, and what Prometheus loaded of them (pure).
fn rules(objects: &[Object], view: Option<&PrometheusView>) -> Rules {
    let mut rules = Rules {
        objects: objects.len(),
        loaded: view.and_then(|v| v.rules_loaded),
        ..Default::default()
    };
    for r in objects {
        for g in r.data["spec"]["groups"].as_array().into_iter().flatten() {
            rules.groups += 1;
            rules.alerts += g["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r.get("alert").is_some())
                .count();
        }
    }
    rules
}

/// Where the stored configuration sends alerts, as its rendered Alertmanager configuration
/// routes them.
fn alerting(config: &Config) -> Option<Alerting> {
    let rendered = render::alertmanager::alertmanager_config(&config.alertmanager);
    serde_json::to_value(rendered)
        .ok()
        .and_then(|v| default_route(&v))
}

impl Health {
    /// Degraded with any problem; else unverified while anything is unknown (pure).
    fn of(problems: &[String], unknown: &[String]) -> Health {
        match (problems.is_empty(), unknown.is_empty()) {
            (false, _) => Health::Degraded,
            (true, false) => Health::Unverified,
            (true, true) => Health::Healthy,
        }
    }
}

/// What status could not check because Prometheus did not answer or was not asked (pure).
fn unknown(view: Option<&PrometheusView>, namespace: &str) -> Vec<String> {
    match view {
        Some(v) if v.reachable => Vec::new(),
        Some(v) => vec![format!(
            "scrape health and firing alerts (Prometheus did not answer at {}: {}; `kubectl automon doctor -n {namespace}` tells more)",
            v.via,
            v.error.as_deref().unwrap_or("no answer")
        )],
        None => vec![
            "scrape health and firing alerts (the stack uses another operator's Prometheus; \
             ask it with --prometheus-url)"
                .to_string(),
        ],
    }
}

/// The exporter of another stack that this one scrapes, judged by the nodes it covers.
fn borrowed_exporter(
    from: &str,
    ds: Option<&DaemonSet>,
    namespace: &str,
    summary: &Summary,
) -> Component {
    let covered = summary.not_monitored == 0;
    Component {
        name: NODE_EXPORTER.to_string(),
        kind: "DaemonSet".to_string(),
        object: from.to_string(),
        ready: summary.monitored as i64,
        desired: (summary.nodes - summary.excluded) as i64,
        version: ds
            .and_then(|d| first_image(d.spec.as_ref().and_then(|s| s.template.spec.as_ref()))),
        created: ds.and_then(|d| created(&d.metadata)),
        healthy: ds.is_some() && covered,
        message: match ds {
            None => Some(format!(
                "daemonset {from}, the exporter this stack scrapes, is gone (`kubectl automon enable -n {namespace}` deploys automon's own)"
            )),
            Some(_) if !covered => Some(format!(
                "{} node{} not covered",
                summary.not_monitored,
                if summary.not_monitored == 1 { "" } else { "s" }
            )),
            Some(_) => None,
        },
        reused: Some(from.to_string()),
    }
}

fn component(w: &workloads::Workload, s: &Snapshot, summary: &Summary) -> Component {
    let display = match w.kind.as_str() {
        "Prometheus" => "prometheus".to_string(),
        "Alertmanager" => "alertmanager".to_string(),
        _ => w.name.clone(),
    };
    let named = |m: &kube::api::ObjectMeta| m.name.as_deref() == Some(w.name.as_str());
    let mut c = Component {
        name: display,
        kind: w.kind.clone(),
        object: w.name.clone(),
        ready: w.ready,
        desired: w.desired,
        version: None,
        created: None,
        healthy: w.is_ready(),
        message: None,
        reused: None,
    };
    let found = match w.kind.as_str() {
        "Deployment" => s.deployments.iter().find(|d| named(&d.metadata)).map(|d| {
            c.version = first_image(d.spec.as_ref().and_then(|s| s.template.spec.as_ref()));
            c.created = created(&d.metadata);
            if !c.healthy {
                c.message = d
                    .spec
                    .as_ref()
                    .and_then(|spec| {
                        pod_problem(s.pods.iter().filter(|p| {
                            crate::model::selector::matches(&spec.selector, &labels_of(p))
                        }))
                    })
                    .or_else(|| {
                        d.status
                            .as_ref()
                            .and_then(|st| st.conditions.as_ref())
                            .and_then(|cs| cs.iter().find(|c| c.status == "False"))
                            .and_then(|c| c.message.clone())
                    });
            }
        }),
        "DaemonSet" => s.daemonsets.iter().find(|d| named(&d.metadata)).map(|d| {
            c.version = first_image(d.spec.as_ref().and_then(|s| s.template.spec.as_ref()));
            c.created = created(&d.metadata);
            if w.name == NODE_EXPORTER {
                // Coverage is judged per node: READY counts nodes, excluded ones aside.
                c.ready = summary.monitored as i64;
                c.desired = (summary.nodes - summary.excluded) as i64;
                c.healthy = w.current && summary.not_monitored == 0;
                if summary.not_monitored > 0 {
                    let n = summary.not_monitored;
                    c.message = Some(format!(
                        "{n} node{} not covered",
                        if n == 1 { "" } else { "s" }
                    ));
                }
            }
        }),
        _ => s
            .custom
            .iter()
            .find(|o| model::kind(o) == w.kind && named(&o.metadata))
            .map(|o| {
                c.version = o.data["spec"]["version"]
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| {
                        o.data["spec"]["image"]
                            .as_str()
                            .and_then(image_tag)
                            .map(str::to_string)
                    });
                c.created = created(&o.metadata);
                if !c.healthy {
                    let pods = s
                        .pods
                        .iter()
                        .filter(|p| operator_pod(&labels_of(p), &w.kind, &w.name));
                    c.message = pod_problem(pods).or_else(|| {
                        o.data["status"]["conditions"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .find(|c| c["status"] != "True")
                            .and_then(|c| c["message"].as_str().or(c["reason"].as_str()))
                            .filter(|m| !m.is_empty())
                            .map(str::to_string)
                    });
                }
            }),
    };
    if found.is_none() {
        c.healthy = false;
        c.message = Some(format!(
            "missing (`kubectl automon enable -n {}` restores it)",
            s.namespace
        ));
    } else if !c.healthy && c.message.is_none() {
        c.message = Some(if w.current {
            format!("{}/{} ready", c.ready, c.desired)
        } else {
            "rolling out".to_string()
        });
    }
    c
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The columns the API server prints for pods (v1.36), and a row of them.
    fn pod_table(rows: &[[&str; 5]]) -> crate::cluster::Table {
        crate::cluster::Table {
            columns: [
                "Name",
                "Ready",
                "Status",
                "Restarts",
                "Age",
                "IP",
                "Node",
                "Nominated Node",
                "Readiness Gates",
            ]
            .map(String::from)
            .to_vec(),
            rows: rows
                .iter()
                .map(|[name, ready, status, node, gates]| {
                    let restarts = if *name == "ne-restarted" {
                        json!("3 (5m ago)")
                    } else {
                        json!(0)
                    };
                    let opt = |s: &str| if s.is_empty() { Value::Null } else { json!(s) };
                    vec![
                        json!(name),
                        json!(ready),
                        json!(status),
                        restarts,
                        json!("5m"),
                        json!("10.0.0.1"),
                        opt(node),
                        json!("<none>"),
                        opt(gates),
                    ]
                })
                .collect(),
        }
    }

    #[test]
    fn an_exporter_row_plainly_running_and_ready_is_its_pod_and_the_rest_are_read_whole() {
        let table = pod_table(&[
            ["ne-a", "1/1", "Running", "node-a", "<none>"],
            ["ne-restarted", "1/1", "Running", "node-b", ""],
            ["ne-gated", "1/1", "Running", "node-c", "1/1"],
            // Not plainly Running and Ready: read whole.
            ["ne-not-ready", "0/1", "Running", "node-d", "<none>"],
            ["ne-crashing", "0/1", "CrashLoopBackOff", "node-e", "<none>"],
            ["ne-deleting", "1/1", "Terminating", "node-f", "<none>"],
            ["ne-pending", "0/1", "Pending", "<none>", "<none>"],
            ["ne-unscheduled", "0/1", "Pending", "", ""],
            ["ne-gate-unmet", "1/1", "Running", "node-g", "0/1"],
            ["ne-no-containers", "0/0", "Running", "node-h", "<none>"],
        ]);
        let labels = render::meta::selector(NODE_EXPORTER);
        let (plain, unclear) = pods_of_rows(&table, "automon", &labels);
        let got: Vec<(&str, &str, &str, i32)> = plain
            .iter()
            .map(|p| {
                (
                    p.metadata.name.as_deref().unwrap(),
                    p.spec.node_name.as_deref().unwrap(),
                    p.status.state.as_str(),
                    p.status.restarts,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("ne-a", "node-a", "Running", 0),
                ("ne-restarted", "node-b", "Running", 3),
                ("ne-gated", "node-c", "Running", 0),
            ]
        );
        // As the listed pod would be: in the namespace, with the labels it was selected by,
        // no message, and no other state than the row's.
        let a = &plain[0];
        assert_eq!(a.metadata.namespace.as_deref(), Some("automon"));
        assert_eq!(a.metadata.labels.as_ref(), Some(&labels));
        assert_eq!(a.status.message, None);
        assert!(a.metadata.deletion_timestamp.is_none());
        assert_eq!(
            unclear,
            [
                "ne-not-ready",
                "ne-crashing",
                "ne-deleting",
                "ne-pending",
                "ne-unscheduled",
                "ne-gate-unmet",
                "ne-no-containers"
            ]
        );
    }

    fn view(reachable: bool, error: Option<&str>) -> PrometheusView {
        PrometheusView {
            reachable,
            via: "service automon/prometheus:web through the API server".into(),
            error: error.map(Into::into),
            detail: None,
            firing: Vec::new(),
            silenced: Vec::new(),
            targets: None,
            rules_loaded: None,
            head_series: None,
            resident_memory_bytes: None,
        }
    }

    #[test]
    fn only_an_answer_from_prometheus_leaves_nothing_unknown() {
        assert_eq!(
            unknown(Some(&view(true, None)), "automon"),
            Vec::<String>::new()
        );
        let silent = unknown(Some(&view(false, Some("no answer within 5s"))), "automon");
        assert_eq!(
            silent,
            [
                "scrape health and firing alerts (Prometheus did not answer at service automon/prometheus:web through the API server: no answer within 5s; `kubectl automon doctor -n automon` tells more)"
            ]
        );
        let unasked = unknown(None, "automon");
        assert_eq!(unasked.len(), 1);
        assert!(unasked[0].contains("--prometheus-url"), "{unasked:?}");
    }

    #[test]
    fn the_exporter_is_automons_own_unless_another_stacks_is_scraped() {
        let cases = [
            (None, ("automon", NODE_EXPORTER)),
            (
                Some("monitoring/kps-node-exporter"),
                ("monitoring", "kps-node-exporter"),
            ),
            // Not namespace/name: automon's own.
            (Some("kps-node-exporter"), ("automon", NODE_EXPORTER)),
        ];
        for (from, (ns, name)) in cases {
            assert_eq!(
                exporter_daemonset(from, "automon"),
                (ns.to_string(), name.to_string())
            );
        }
    }

    #[test]
    fn a_problem_degrades_and_an_unknown_leaves_it_unverified() {
        let some = vec!["x".to_string()];
        let none = Vec::new();
        let cases = [
            (&none, &none, Health::Healthy),
            (&none, &some, Health::Unverified),
            (&some, &none, Health::Degraded),
            (&some, &some, Health::Degraded),
        ];
        for (problems, unknown, want) in cases {
            assert_eq!(
                Health::of(problems, unknown),
                want,
                "{problems:?} {unknown:?}"
            );
        }
    }

    #[test]
    fn unhealthy_components_and_uncovered_nodes_are_problems() {
        let component = |name: &str, healthy: bool, message: Option<&str>| Component {
            name: name.into(),
            kind: "Deployment".into(),
            object: name.into(),
            ready: 0,
            desired: 1,
            version: None,
            created: None,
            healthy,
            message: message.map(Into::into),
            reused: None,
        };
        let uncovered = Summary {
            nodes: 3,
            monitored: 1,
            excluded: 0,
            not_monitored: 2,
        };
        let cases = [
            (
                vec![component("grafana", true, None)],
                Summary::default(),
                vec![],
            ),
            (
                vec![component("grafana", false, None)],
                Summary::default(),
                vec!["grafana: not ready"],
            ),
            (
                vec![component("grafana", true, None)],
                uncovered,
                vec!["2 of 3 nodes have no working exporter"],
            ),
            // The exporter's own line says it already.
            (
                vec![component(NODE_EXPORTER, false, Some("2 nodes not covered"))],
                uncovered,
                vec!["node-exporter: 2 nodes not covered"],
            ),
        ];
        for (components, summary, want) in cases {
            assert_eq!(component_problems(&components, &summary), want);
        }
    }

    #[test]
    fn targets_down_other_than_the_nodes_are_one_problem_by_job() {
        let down = |job: &str| prometheus::DownTarget {
            job: job.into(),
            instance: "10.0.0.1:9090".into(),
            error: None,
            per_node: job == prometheus::NODE_EXPORTER_JOB,
        };
        let with = |unhealthy: Vec<prometheus::DownTarget>| {
            let mut v = view(true, None);
            v.targets = Some(prometheus::Targets {
                up: 1,
                down: unhealthy.len(),
                unknown: 0,
                unhealthy,
            });
            v
        };
        let cases = [
            (None, None),
            (Some(view(true, None)), None),
            (Some(with(vec![down(prometheus::NODE_EXPORTER_JOB)])), None),
            (
                Some(with(vec![down("grafana")])),
                Some("1 scrape target down (job grafana)"),
            ),
            (
                Some(with(vec![
                    down("kube-state-metrics"),
                    down("grafana"),
                    down("grafana"),
                ])),
                Some("3 scrape targets down (job grafana, kube-state-metrics)"),
            ),
        ];
        for (v, want) in cases {
            assert_eq!(scrape_problem(v.as_ref()).as_deref(), want);
        }
    }

    #[test]
    fn rules_count_groups_and_alerts_not_recordings() {
        let rule: Object = serde_json::from_value(serde_json::json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": "r"},
            "spec": {"groups": [
                {"name": "a", "rules": [{"alert": "A", "expr": "1"}, {"record": "r", "expr": "1"}]},
                {"name": "b", "rules": [{"alert": "B", "expr": "1"}]},
            ]},
        }))
        .unwrap();
        let counted = rules(&[rule.clone(), rule], None);
        assert_eq!((counted.objects, counted.groups, counted.alerts), (2, 4, 4));
        assert_eq!(counted.loaded, None);
    }
}
