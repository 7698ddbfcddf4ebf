//! The plan: what `enable` does, worked out once and purely from the objects to apply (a render,
//! or a recorded revision's objects) and what the cluster has. `enable` and `rollback` execute a
//! plan, `diff` prints one, `status` compares the cluster with the objects one keeps.
//!
//! Pure: the pipeline reads the cluster state; everything that
//! decides is a function of it, table-tested below.

pub mod removal;
pub mod series;

use crate::model;
use crate::model::exporter::Holder;
use crate::model::names;
use std::collections::{BTreeMap, BTreeSet};

use kube::api::ObjectMeta;
use sha2::{Digest as _, Sha256};

use crate::{
    cluster::{
        crds,
        inventory::{self, Inventory},
    },
    model::{
        Object, kind,
        resources::{self, Known, Scope},
    },
    preflight::{self, ExistingOperator, monitors::ForeignScrape},
    render::{self, Phase},
};

/// On the ApplySet parent of a stack that reuses another operator: `<namespace>/<name>` of
/// the `Prometheus` whose selectors it matched, the one `status` asks.
pub const PROMETHEUS_FROM: &str = "automon.io/prometheus-from";
/// Beside it: `<namespace>/<name>` of the Deployment that runs the reused operator.
pub const OPERATOR_FROM: &str = "automon.io/operator-from";

/// On the parent of a stack beside another: what automon left out because that stack already
/// does it (`alert:KubePodCrashLooping,servicemonitor:kubelet`), so that `status` and `doctor`
/// expect exactly what was applied.
pub const LEFT_OUT: &str = "automon.io/left-out";

/// What automon leaves out beside another stack whose Prometheus it reuses: the alerts that
/// stack's rules already define (the same names mean the same alerts, kubernetes-mixin's), and
/// the ServiceMonitors whose targets it already scrapes. That Prometheus would otherwise evaluate
/// each such alert twice and count each such series twice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeftOut {
    pub alerts: BTreeSet<String>,
    pub service_monitors: BTreeSet<String>,
    /// Jobs automon keeps scraping under a name of its own (`automon-<job>`), its rules and
    /// dashboards with them: kube-state-metrics, whose node labels the coverage check needs,
    /// runs beside theirs, and that stack's sums over `job="kube-state-metrics"` must not count
    /// it.
    pub own_jobs: BTreeSet<String>,
    /// Of [`Self::own_jobs`], those whose other series another stack's scrape provides: automon's
    /// job → theirs. automon's exporter then exports only what theirs does not
    /// (kube-state-metrics: `kube_node_labels` with automon's node labels), and its rules and
    /// dashboards read every other series of the job from theirs ([`series::split_job`]).
    pub reads_theirs: BTreeMap<String, String>,
    /// Jobs whose series another stack's scrape provides under another name: automon's job →
    /// theirs. Its rules and dashboards select theirs.
    pub jobs_as: BTreeMap<String, String>,
    /// node-exporter's series come from another stack's scrape whose series name no node:
    /// automon's rules and dashboards find each series' node through `kube_pod_info`
    /// ([`series::join_node`]).
    pub node_join: bool,
    /// Who does each scrape left out that is not in `AlreadyThere::scrapes` (node-exporter's),
    /// for `enable`'s words: `servicemonitor monitoring/kps-prometheus-node-exporter`.
    pub scraped_by: BTreeMap<String, String>,
}

/// The job a scrape automon keeps beside another stack's is renamed to.
pub fn own_job(job: &str) -> String {
    format!("automon-{job}")
}

impl LeftOut {
    /// What of `objects` the other stack already does.
    pub fn of(objects: &[Object], already: &preflight::AlreadyThere) -> LeftOut {
        let mut left = LeftOut::default();
        for o in objects {
            match kind(o) {
                "PrometheusRule" => left
                    .alerts
                    .extend(alert_names(o).filter(|a| already.alerts.contains_key(a.as_str()))),
                "ServiceMonitor" => {
                    if let Some(name) = &o.metadata.name
                        && already.scrapes.contains_key(name.as_str())
                    {
                        if name == render::kube_state_metrics::NAME {
                            left.own_jobs.insert(name.clone());
                        } else {
                            left.service_monitors.insert(name.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        left
    }

    /// Beside another stack whose Prometheus already scrapes the node-exporter automon reuses
    /// (`scrape`): automon's scrape object of it is left out, and its series are read as that
    /// stack labels them.
    pub fn beside_exporter(&mut self, scrape: &ForeignScrape) {
        let job = render::node_exporter::NAME;
        self.service_monitors.insert(job.to_string());
        self.scraped_by.insert(job.to_string(), scrape.by.clone());
        if scrape.job != job {
            self.jobs_as.insert(job.to_string(), scrape.job.clone());
        }
        // Another label than `node` is as good as none: automon's queries say `node`.
        self.node_join = scrape.node_label.as_deref() != Some("node");
    }

    /// The job names of the scrapes left out (`kubelet`, `apiserver`) as the other stack's
    /// ServiceMonitors name them; a warning for each it cannot tell.
    pub fn their_jobs(&mut self, already: &preflight::AlreadyThere) -> Vec<String> {
        let mut warnings = Vec::new();
        for scrape in &self.service_monitors {
            match their_job(scrape, already) {
                Some((_, Some(job))) if job != *scrape => {
                    self.jobs_as.insert(scrape.clone(), job);
                }
                Some((m, None)) => warnings.push(format!(
                    "could not tell the job name of {}'s series (its Service's name): automon's rules select job=\"{scrape}\"",
                    m.describe()
                )),
                _ => {}
            }
        }
        // Beside their kube-state-metrics, automon's exports only the node labels, and its
        // rules read the rest from theirs: known by its job name, or automon's keeps it all.
        for scrape in &self.own_jobs {
            match their_job(scrape, already) {
                Some((_, Some(job))) => {
                    self.reads_theirs.insert(scrape.clone(), job);
                }
                Some((m, None)) => warnings.push(format!(
                    "could not tell the job name of {}'s series (its Service's name): automon's own {scrape} keeps exporting all of its series, as job {}",
                    m.describe(),
                    own_job(scrape)
                )),
                None => {}
            }
        }
        warnings
    }

    /// The kube-state-metrics job whose pods and nodes (`kube_pod_info`, `kube_node_info`)
    /// automon's rules read: theirs beside another that has them, else its own (renamed
    /// beside another).
    fn ksm_job(&self) -> String {
        let ksm = render::kube_state_metrics::NAME;
        if let Some(theirs) = self.reads_theirs.get(ksm) {
            theirs.clone()
        } else if self.own_jobs.contains(ksm) {
            own_job(ksm)
        } else {
            ksm.to_string()
        }
    }

    /// The job automon's queries name for `job` after [`Self::apply`].
    pub fn job_name(&self, job: &str) -> String {
        if self.own_jobs.contains(job) {
            own_job(job)
        } else {
            self.jobs_as
                .get(job)
                .cloned()
                .unwrap_or_else(|| job.to_string())
        }
    }

    /// As the parent's annotation records it; `None` when nothing is left out.
    pub fn annotation(&self) -> Option<String> {
        let items: Vec<String> = (self.alerts.iter().map(|a| format!("alert:{a}")))
            .chain(
                self.service_monitors
                    .iter()
                    .map(|m| format!("servicemonitor:{m}")),
            )
            .chain(self.own_jobs.iter().map(|j| format!("job:{j}")))
            .chain(self.jobs_as.iter().map(|(j, to)| format!("as:{j}={to}")))
            .chain((self.reads_theirs.iter()).map(|(j, theirs)| format!("theirs:{j}={theirs}")))
            .chain(self.node_join.then(|| "join:node".to_string()))
            .collect();
        (!items.is_empty()).then(|| items.join(","))
    }

    /// What a parent records as left out.
    pub fn of_parent(
        parent: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    ) -> LeftOut {
        let mut left = LeftOut::default();
        let recorded = parent.annotations.as_ref().and_then(|a| a.get(LEFT_OUT));
        for item in recorded.into_iter().flat_map(|r| r.split(',')) {
            match item.split_once(':') {
                Some(("alert", a)) => {
                    left.alerts.insert(a.to_string());
                }
                Some(("servicemonitor", m)) => {
                    left.service_monitors.insert(m.to_string());
                }
                Some(("job", j)) => {
                    left.own_jobs.insert(j.to_string());
                }
                Some(("as", pair)) => {
                    if let Some((j, to)) = pair.split_once('=') {
                        left.jobs_as.insert(j.to_string(), to.to_string());
                    }
                }
                Some(("theirs", pair)) => {
                    if let Some((j, theirs)) = pair.split_once('=') {
                        left.reads_theirs.insert(j.to_string(), theirs.to_string());
                    }
                }
                Some(("join", "node")) => left.node_join = true,
                _ => {}
            }
        }
        left
    }

    /// `objects` without what is left out: the alerts out of their groups, a group with none
    /// left out of its PrometheusRule, a PrometheusRule with no group left out altogether.
    pub fn apply(&self, objects: Vec<Object>) -> Vec<Object> {
        let ksm_narrowed = self
            .reads_theirs
            .contains_key(render::kube_state_metrics::NAME);
        objects
            .into_iter()
            .map(|o| self.rename_jobs(o))
            .map(|o| {
                if ksm_narrowed {
                    render::kube_state_metrics::node_labels_only(o)
                } else {
                    o
                }
            })
            .filter_map(|mut o| match kind(&o) {
                "ServiceMonitor" | "PodMonitor"
                    if o.metadata
                        .name
                        .as_ref()
                        .is_some_and(|n| self.service_monitors.contains(n)) =>
                {
                    None
                }
                "PrometheusRule" if !self.alerts.is_empty() => {
                    let groups = o.data["spec"]["groups"].as_array_mut()?;
                    for g in groups.iter_mut() {
                        if let Some(rules) = g["rules"].as_array_mut() {
                            rules.retain(|r| {
                                r["alert"].as_str().is_none_or(|a| !self.alerts.contains(a))
                            });
                        }
                    }
                    groups.retain(|g| g["rules"].as_array().is_some_and(|r| !r.is_empty()));
                    (!groups.is_empty()).then_some(o)
                }
                _ => Some(o),
            })
            .collect()
    }

    /// Every job of [`Self::own_jobs`] under its own name: the ServiceMonitor relabels it, the
    /// rules' expressions and the dashboards' queries select it.
    fn rename_jobs(&self, mut o: Object) -> Object {
        match kind(&o) {
            "ServiceMonitor" => {
                let Some(job) = o
                    .metadata
                    .name
                    .clone()
                    .filter(|n| self.own_jobs.contains(n))
                else {
                    return o;
                };
                let relabel = serde_json::json!({
                    "action": "replace", "targetLabel": "job", "replacement": own_job(&job),
                });
                for e in o.data["spec"]["endpoints"]
                    .as_array_mut()
                    .into_iter()
                    .flatten()
                {
                    match e["relabelings"].as_array_mut() {
                        Some(r) => r.push(relabel.clone()),
                        None => e["relabelings"] = serde_json::json!([relabel]),
                    }
                }
            }
            "PrometheusRule" => {
                for rule in o.data["spec"]["groups"]
                    .as_array_mut()
                    .into_iter()
                    .flatten()
                    .filter_map(|g| g["rules"].as_array_mut())
                    .flatten()
                {
                    if let Some(expr) = rule["expr"].as_str() {
                        rule["expr"] = self.query(expr).into();
                    }
                }
            }
            // Dashboards: PromQL in the panels' targets (`expr`) and the variables' queries.
            "ConfigMap" if self.changes_queries() => {
                if let Some(data) = o.data["data"].as_object_mut() {
                    for v in data.values_mut() {
                        let Some(mut dashboard) = v
                            .as_str()
                            .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
                            .filter(|d| d.get("panels").is_some())
                        else {
                            continue;
                        };
                        self.dashboard_queries(&mut dashboard, None);
                        *v = serde_json::to_string_pretty(&dashboard)
                            .expect("dashboard JSON serialises")
                            .into();
                    }
                }
            }
            _ => {}
        }
        o
    }

    fn changes_queries(&self) -> bool {
        !self.own_jobs.is_empty() || !self.jobs_as.is_empty() || self.node_join
    }

    /// One of automon's PromQL expressions as it reads beside the other stack: the jobs renamed,
    /// node-exporter's series joined to their node where they name none.
    pub fn query(&self, expr: &str) -> String {
        let out = self.renamed(expr);
        if !self.node_join {
            return out;
        }
        series::join_node(
            &out,
            &self.job_name(render::node_exporter::NAME),
            &self.ksm_job(),
        )
    }

    fn renamed(&self, expr: &str) -> String {
        let mut out = expr.to_string();
        for job in &self.own_jobs {
            out = match self.reads_theirs.get(job) {
                Some(theirs) => series::split_job(&out, job, theirs, &own_job(job), |m| {
                    !render::kube_state_metrics::only_its_own(m)
                }),
                None => series::rename_job(&out, job, &own_job(job)),
            };
        }
        for (job, to) in &self.jobs_as {
            out = series::rename_job(&out, job, to);
        }
        out
    }

    /// Every query string of a dashboard, in place: `expr` (a panel's), `query` and
    /// `definition` (a variable's, `label_values(...)`, which takes a selector, never a join).
    fn dashboard_queries(&self, v: &mut serde_json::Value, key: Option<&str>) {
        match v {
            serde_json::Value::String(text) => match key {
                Some("expr") => *text = self.query(text),
                Some("query" | "definition") if text.starts_with("label_values(") => {
                    let q = self.renamed(text);
                    *text = if self.node_join {
                        series::join_node_variable(
                            &q,
                            &self.job_name(render::node_exporter::NAME),
                            &self.ksm_job(),
                        )
                    } else {
                        q
                    };
                }
                _ => {}
            },
            serde_json::Value::Array(items) => {
                for item in items {
                    self.dashboard_queries(item, key);
                }
            }
            serde_json::Value::Object(map) => {
                for (k, item) in map.iter_mut() {
                    self.dashboard_queries(item, Some(k.as_str()));
                }
            }
            _ => {}
        }
    }

    /// `enable`'s warning: what is left out and why.
    pub fn describe(&self, already: &preflight::AlreadyThere) -> Option<String> {
        let mut parts = Vec::new();
        if !self.alerts.is_empty() {
            let mut from: Vec<&str> = self
                .alerts
                .iter()
                .filter_map(|a| already.alerts.get(a).map(String::as_str))
                .collect();
            from.sort_unstable();
            from.dedup();
            parts.push(format!(
                "{} alert{} its rules already define ({}; in {})",
                self.alerts.len(),
                if self.alerts.len() == 1 { "" } else { "s" },
                abbreviated(self.alerts.iter().map(String::as_str), 4),
                abbreviated(from.into_iter(), 2),
            ));
        }
        for m in &self.service_monitors {
            let by = match (self.scraped_by.get(m), already.scrapes.get(m)) {
                (Some(by), _) => by.clone(),
                (None, by) => format!("servicemonitor {}", by.map_or("", String::as_str)),
            };
            let job = match self.jobs_as.get(m) {
                Some(theirs) => format!(", under job {theirs}"),
                None => String::new(),
            };
            let join = if self.node_join && m == render::node_exporter::NAME {
                "; its series name no node, so automon's rules and dashboards find each one's node through kube_pod_info"
            } else {
                ""
            };
            parts.push(format!("the {m} scrape ({by} does it{job}{join})"));
        }
        for j in &self.own_jobs {
            let by = already.scrapes.get(j).map_or("", String::as_str);
            parts.push(match self.reads_theirs.get(j) {
                Some(theirs) => format!(
                    "every {j} series but {} (servicemonitor {by} scrapes theirs, as job {theirs}, which automon's rules and dashboards read; automon's own {j} exports only {}, the node labels its coverage check reads, as job {})",
                    render::kube_state_metrics::NODE_LABELS,
                    render::kube_state_metrics::NODE_LABELS,
                    own_job(j)
                ),
                None => format!(
                    "the job name {j} (servicemonitor {by} scrapes theirs under it; automon's own {j} is job {})",
                    own_job(j)
                ),
            });
        }
        (!parts.is_empty()).then(|| {
            format!(
                "beside the existing stack automon leaves out {}, so its Prometheus evaluates and scrapes each once",
                parts.join(" and ")
            )
        })
    }
}

/// The monitor of `already` that does `scrape`, and the job name its series carry when it can
/// tell (its selector, a relabeling, or the Service it selects); `None` without one.
fn their_job<'a>(
    scrape: &str,
    already: &'a preflight::AlreadyThere,
) -> Option<(&'a preflight::monitors::Monitor, Option<String>)> {
    let by = already.scrapes.get(scrape)?;
    let m = already
        .monitors
        .iter()
        .find(|m| format!("{}/{}", m.namespace, m.name) == *by)?;
    let job = (m.endpoints.first().and_then(|e| m.job_from_selector(e)))
        .or_else(|| already.jobs.get(scrape).cloned());
    Some((m, job))
}

/// The alert names of a PrometheusRule object.
fn alert_names(o: &Object) -> impl Iterator<Item = String> + '_ {
    o.data["spec"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g["rules"].as_array())
        .flatten()
        .filter_map(|r| r["alert"].as_str().map(str::to_string))
}

/// `a, b, c and 3 more`.
fn abbreviated<'a>(items: impl Iterator<Item = &'a str>, shown: usize) -> String {
    let items: Vec<&str> = items.collect();
    if items.len() <= shown {
        return items.join(", ");
    }
    format!(
        "{} and {} more",
        items[..shown].join(", "),
        items.len() - shown
    )
}

/// On the parent of a stack installed into a namespace that was there before `enable`: the
/// namespace is the user's. automon labels it for node-exporter's PodSecurity level but never
/// makes it a member, so `disable` keeps it (and everything in it that is not automon's) and
/// takes back only the labels it added.
pub const NAMESPACE_EXISTED: &str = "automon.io/namespace-existed";

/// The annotation with the SHA-256 of a CRD as automon sent it: an identical CRD is not sent
/// again (the operator's ten are 4.3 MB, and the API server re-validates every one).
pub const APPLIED_DIGEST: &str = "automon.io/applied-sha256";

const CRD_KIND: &str = "CustomResourceDefinition.apiextensions.k8s.io";

/// What the cluster has that the plan depends on.
#[derive(Debug, Clone, Default)]
pub struct ClusterState {
    pub namespace_exists: bool,
    /// The namespace exists but is being deleted (an earlier `disable`).
    pub namespace_terminating: bool,
    /// The live Namespace (metadata), when it exists.
    pub namespace: Option<Object>,
    /// automon's ApplySet in the namespace, when it is installed there.
    pub inventory: Option<Inventory>,
    /// Another Prometheus Operator that automon reuses instead of installing its own.
    pub existing: Option<ExistingOperator>,
    /// The prometheus-operator CRDs in the cluster, by name.
    pub crds: BTreeMap<String, InstalledCrd>,
    /// Another exporter serving node-exporter's port on the nodes, which the stack scrapes
    /// instead of deploying its own (`nodeExporter.reuseExisting`).
    pub exporter: Option<Holder>,
    /// The classes of node the cluster has (Windows, GPU): each brings its exporter.
    pub classes: render::NodeClasses,
    /// How many nodes the cluster has: the stack is sized for it.
    pub nodes: u32,
}

/// What the plan reads of an installed CRD: two annotations, no schema.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstalledCrd {
    /// The operator release it came from (`operator.prometheus.io/version`).
    pub version: Option<String>,
    /// What automon sent, when automon sent it ([`APPLIED_DIGEST`]).
    pub digest: Option<String>,
}

impl InstalledCrd {
    pub fn of(meta: &ObjectMeta) -> Self {
        InstalledCrd {
            version: crds::installed_version(meta),
            digest: meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(APPLIED_DIGEST))
                .cloned(),
        }
    }
}

/// Where this run's CRDs come from; decided before rendering, as loading them is a download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrdSource {
    /// Another operator is reused: its CRDs are its own, left as they are.
    Existing,
    /// Every pinned CRD is in the cluster at a compatible version: left as they are.
    Kept,
    /// Loaded (`--crds-from`, or the pinned release files) and sent unless identical.
    Load,
    /// A rollback: a revision records no CRDs, and the ones in the cluster stay as they are.
    Untouched,
}

/// Decides where the CRDs come from. `--crds-from` loads unless another operator is reused.
pub fn crd_source(state: &ClusterState, crds_from: bool) -> CrdSource {
    if state.existing.is_some() {
        return CrdSource::Existing;
    }
    if crds_from {
        return CrdSource::Load;
    }
    let wanted = crate::versions::PROMETHEUS_OPERATOR.version;
    let all_compatible = crds::PINNED_CRDS.iter().all(|p| {
        state
            .crds
            .get(&p.name())
            .and_then(|c| c.version.as_deref())
            .is_some_and(|v| crds::compatible(v, wanted))
    });
    if all_compatible {
        CrdSource::Kept
    } else {
        CrdSource::Load
    }
}

/// Where a rollback's CRDs come from: nowhere, they stay as they are.
pub fn rollback_source(state: &ClusterState) -> CrdSource {
    if state.existing.is_some() {
        CrdSource::Existing
    } else {
        CrdSource::Untouched
    }
}

/// A rollback to a revision whose operator is older than the CRDs in the cluster (pure): the
/// CRDs stay as they are, and the note that says so, naming both versions. `None` when the
/// revision has no operator of its own (another one is reused) or the CRDs are not newer.
pub fn crds_kept_newer(objects: &[Object], state: &ClusterState) -> Option<String> {
    let operator = objects
        .iter()
        .filter(|o| kind(o) == "Deployment")
        .filter_map(|o| o.data["spec"]["template"]["spec"]["containers"].as_array())
        .flatten()
        .filter_map(|c| c["image"].as_str())
        .find(|image| image.contains("/prometheus-operator:"))
        .and_then(preflight::image_tag)?;
    let installed = state
        .crds
        .values()
        .filter_map(|c| c.version.as_deref())
        .filter(|v| crds::newer(v, operator))
        .reduce(|a, b| if crds::newer(b, a) { b } else { a })?;
    Some(format!(
        "the CRDs stay at {installed}, newer than this revision's operator {operator}: CRDs are never downgraded (a newer schema serves an older operator; an older one could drop fields the objects in the cluster use)"
    ))
}

/// Reusing another operator: what it is and the labels its selectors want.
#[derive(Debug, Clone, PartialEq)]
pub struct Reuse {
    /// `deployment monitoring/prometheus-operator v0.80.0, prometheus monitoring/k8s`
    pub operator: String,
    pub labels: BTreeMap<String, String>,
}

/// What `enable` does, in order.
#[derive(Debug, Clone)]
pub struct Plan {
    pub namespace: String,
    pub reuse: Option<Reuse>,
    /// Where the CRDs come from and what happens to them, for the `CRDs` line.
    pub crds: String,
    /// The CRDs sent, to wait for until Established.
    pub wait_for: Vec<String>,
    /// The parent as the first write leaves it: every kind old and new (KEP-3659), so that an
    /// interrupted run leaves members a later one can still find and prune.
    pub first_parent: Object,
    /// The parent as the run leaves it: exactly the kinds its members have.
    pub final_parent: Object,
    /// Every member to apply, in phase order.
    pub members: Vec<Object>,
    /// The namespace when it was there before automon (the user's): applied first with only
    /// the PodSecurity labels node-exporter needs, and never a member (see [`NAMESPACE_EXISTED`]).
    pub adopted_namespace: Option<Object>,
    /// Members the inventory has and the plan has not, in the order to delete them.
    pub prune: Vec<Object>,
    /// What the user should know before it runs.
    pub warnings: Vec<String>,
}

impl Plan {
    /// What one phase applies, in order: the members, and first of all the user's namespace
    /// when it is labelled (not a member, see [`NAMESPACE_EXISTED`]).
    pub fn phase(&self, phase: Phase) -> impl Iterator<Item = &Object> {
        let adopted = self
            .adopted_namespace
            .iter()
            .filter(move |_| phase == Phase::Foundation);
        adopted.chain(
            self.members
                .iter()
                .filter(move |o| render::phase(o) == phase),
        )
    }

    /// Every object the cluster holds when the plan has run: the members and the final parent.
    pub fn objects(&self) -> impl Iterator<Item = &Object> {
        self.members
            .iter()
            .chain(std::iter::once(&self.final_parent))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "the objects to apply have no ApplySet parent (ConfigMap {:?})",
        names::PARENT_NAME
    )]
    NoParent,
    #[error(
        "the objects to apply belong in namespace {found:?}, not {namespace:?}; give -n {found}"
    )]
    OtherNamespace { namespace: String, found: String },
    #[error(
        "these objects deploy automon's own node-exporter, but {holder} now serves its port on the nodes and the two cannot both listen there; `kubectl automon enable` scrapes that one instead"
    )]
    ExporterTaken { holder: String },
}

/// Works out what `enable` does with `objects` in a cluster in `state`. `source` says where
/// the CRDs among `objects` came from, `origin` names it (`prometheus-operator v0.90.0 (sha256
/// verified)`, a path or URL).
pub fn plan(
    objects: Vec<Object>,
    state: &ClusterState,
    source: CrdSource,
    origin: &str,
) -> Result<Plan, PlanError> {
    let (mut parent, members) = parent_and_members(objects, state)?;
    let namespace = parent.metadata.namespace.clone().unwrap_or_default();
    if let Some(holder) = &state.exporter
        && members.iter().any(|o| {
            kind(o) == "DaemonSet"
                && o.metadata.name.as_deref() == Some(render::node_exporter::NAME)
        })
    {
        return Err(PlanError::ExporterTaken {
            holder: holder.describe(),
        });
    }
    let mut warnings = Vec::new();
    let reuse = state.existing.as_ref().map(|found| {
        warnings.extend(selector_warnings(found, &namespace));
        Reuse {
            operator: describe_operator(found),
            labels: found
                .prometheuses
                .first()
                .map(preflight::labels_to_match)
                .unwrap_or_default(),
        }
    });
    let (mut members, adopted_namespace) = adopt_namespace(members, state, &mut parent);
    if let Some(r) = &reuse {
        members = beside_existing_operator(members, r, state, &mut parent, &mut warnings);
    }
    let (mut members, crds_sent, identical) = crds_to_send(members, state);
    let crds = crds_line(source, origin, crds_sent.len(), identical);
    members.sort_by_key(render::phase);
    // The parent lists exactly its members' kinds; CRDs that stay members (identical ones not
    // sent, or those an earlier --crds-from made members) stay listed for disable to find.
    let mut kinds: BTreeSet<String> = members.iter().map(model::group_kind).collect();
    if identical > 0 {
        kinds.insert(CRD_KIND.to_string());
    }
    let (first_parent, final_parent, prune) =
        parents_and_prune(&inventory::listing(&parent, kinds), &members, state);
    warnings.extend(kept_claim_warnings(state, &members, &namespace));
    Ok(Plan {
        namespace,
        reuse,
        crds,
        wait_for: crds_sent,
        first_parent,
        final_parent,
        members,
        adopted_namespace,
        prune,
        warnings,
    })
}

/// The ApplySet parent among `objects`, and the rest; refused without a parent, or with one
/// in another namespace than the stack the cluster has.
fn parent_and_members(
    objects: Vec<Object>,
    state: &ClusterState,
) -> Result<(Object, Vec<Object>), PlanError> {
    let (parents, members): (Vec<Object>, Vec<Object>) =
        objects.into_iter().partition(model::is_parent);
    let parent = parents.into_iter().next().ok_or(PlanError::NoParent)?;
    let namespace = parent.metadata.namespace.clone().unwrap_or_default();
    if let Some(found) = &state.inventory
        && let Some(ns) = &found.parent.metadata.namespace
        && *ns != namespace
    {
        return Err(PlanError::OtherNamespace {
            namespace: ns.clone(),
            found: namespace,
        });
    }
    Ok((parent, members))
}

/// The user's namespace, when it was there before automon, taken out of the members to be
/// applied apart (and the parent says so); the members unchanged otherwise.
fn adopt_namespace(
    mut members: Vec<Object>,
    state: &ClusterState,
    parent: &mut Object,
) -> (Vec<Object>, Option<Object>) {
    let adopted_namespace = namespace_existed(state)
        .then(|| {
            let at = members.iter().position(|o| kind(o) == "Namespace")?;
            Some(adopted(members.remove(at)))
        })
        .flatten();
    if adopted_namespace.is_some() {
        parent
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(NAMESPACE_EXISTED.to_string(), "true".to_string());
    }
    (members, adopted_namespace)
}

/// The members beside another operator: without what it replaces or already does, labelled
/// for its selectors; the parent records what was left out and whose Prometheus and operator
/// are relied on.
fn beside_existing_operator(
    members: Vec<Object>,
    reuse: &Reuse,
    state: &ClusterState,
    parent: &mut Object,
    warnings: &mut Vec<String>,
) -> Vec<Object> {
    let members = reuse_existing_operator(members, &reuse.labels);
    let found = state.existing.as_ref();
    let already = found.map(|f| f.already.clone()).unwrap_or_default();
    let mut left_out = LeftOut::of(&members, &already);
    // The exporter automon reuses, when their Prometheus already scrapes it.
    let exporter_scrape = state
        .exporter
        .as_ref()
        .zip(found.and_then(|f| f.prometheuses.first()));
    if let Some(scrape) = exporter_scrape
        .and_then(|(h, p)| preflight::monitors::scraping_holder(h, p, &already.monitors))
    {
        left_out.beside_exporter(&scrape);
    }
    warnings.extend(left_out.their_jobs(&already));
    let members = left_out.apply(members);
    warnings.extend(left_out.describe(&already));
    if let Some(why) = &already.not_checked {
        warnings.push(format!(
            "could not tell which alerts and scrapes the existing stack already has ({why}): if it has kubernetes-mixin's, its Prometheus evaluates some alerts twice"
        ));
    }
    let annotations = parent
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    if let Some(recorded) = left_out.annotation() {
        annotations.insert(LEFT_OUT.to_string(), recorded);
    }
    if let Some(p) = found.and_then(|f| f.prometheuses.first()) {
        annotations.insert(
            PROMETHEUS_FROM.to_string(),
            format!("{}/{}", p.namespace, p.name),
        );
    }
    if let Some(d) = found.and_then(|f| f.deployments.first()) {
        annotations.insert(
            OPERATOR_FROM.to_string(),
            format!("{}/{}", d.namespace, d.name),
        );
    }
    members
}

/// The members with each CRD digested, less the CRDs the cluster has exactly (as the
/// digest says); the names of those sent, and how many were identical.
fn crds_to_send(members: Vec<Object>, state: &ClusterState) -> (Vec<Object>, Vec<String>, usize) {
    let mut identical = 0;
    let mut sent = Vec::new();
    let members = members
        .into_iter()
        .filter_map(|o| {
            if kind(&o) != "CustomResourceDefinition" {
                return Some(o);
            }
            let name = o.metadata.name.clone().unwrap_or_default();
            let digest = digest_of(&o);
            let same = state.crds.get(&name).and_then(|c| c.digest.as_deref()) == digest.as_deref();
            let o = with(o, digest);
            if same {
                identical += 1;
                None
            } else {
                sent.push(name);
                Some(o)
            }
        })
        .collect();
    (members, sent, identical)
}

/// Where the CRDs come from and what happens to them, for the `CRDs` line (pure).
fn crds_line(source: CrdSource, origin: &str, sent: usize, identical: usize) -> String {
    match source {
        CrdSource::Existing => {
            "those of the Prometheus Operator already installed, as they are".to_string()
        }
        CrdSource::Kept => format!(
            "{} in the cluster at a compatible version, kept as they are",
            crds::PINNED_CRDS.len()
        ),
        CrdSource::Untouched => "left as they are (a revision does not record CRDs)".to_string(),
        CrdSource::Load => match (sent, identical) {
            (n, 0) => format!("{n} from {origin}"),
            (0, same) => format!("{same} from {origin}, identical to the cluster's: not sent"),
            (n, same) => format!("{} from {origin}, {same} identical: {n} sent", n + same),
        },
    }
}

/// The parent as the first write leaves it and as the run leaves it, from `listed` (the
/// parent listing the members' kinds), and the members of the earlier run to prune, in order.
fn parents_and_prune(
    listed: &Object,
    members: &[Object],
    state: &ClusterState,
) -> (Object, Object, Vec<Object>) {
    let Some(before) = &state.inventory else {
        return (listed.clone(), listed.clone(), Vec::new());
    };
    let final_parent = inventory::final_parent(listed, &before.members);
    let mut first = inventory::with_kinds(
        &final_parent,
        inventory::group_kinds(&before.parent.metadata),
    );
    // The stored configuration changes with the last write, once every member has
    // been applied: a run that stops half-way leaves the configuration that is live.
    if let Some(stored) = before.parent.data.get("data") {
        first.data["data"] = stored.clone();
    }
    let mut keep = members.to_vec();
    keep.push(final_parent.clone());
    let prune = inventory::stale(&before.members, &keep)
        .into_iter()
        .cloned()
        .collect();
    (first, final_parent, prune)
}

/// A warning for each volume claim of the stack that this configuration no longer uses (e.g.
/// `grafana.persistence` turned off): it is kept with its data, never pruned, and stays a member
/// until `disable --delete-data` or the user deletes it.
fn kept_claim_warnings(state: &ClusterState, members: &[Object], namespace: &str) -> Vec<String> {
    let Some(before) = &state.inventory else {
        return Vec::new();
    };
    inventory::kept_claims(&before.members, members)
        .into_iter()
        .filter_map(|c| c.metadata.name.as_deref())
        .map(|name| {
            format!(
                "kept persistentvolumeclaim {name:?} and its data, which the configuration no longer uses; to use it again, turn its storage back on (grafana.persistence.enabled=true); to delete the data: kubectl delete pvc -n {namespace} {name}"
            )
        })
        .collect()
}

/// Whether the stack's namespace is the user's: it exists and is not a member of automon's
/// ApplySet (it was there before the first `enable`).
pub fn namespace_existed(state: &ClusterState) -> bool {
    let member = state
        .inventory
        .as_ref()
        .is_some_and(|i| i.members.iter().any(|m| kind(m) == "Namespace"));
    state.namespace_exists && !member
}

/// The user's namespace as automon applies it: its name and the PodSecurity labels, nothing
/// that would make it automon's.
fn adopted(namespace: Object) -> Object {
    let labels = render::namespace::pod_security_labels();
    let mut o = namespace;
    o.metadata = ObjectMeta {
        name: o.metadata.name.clone(),
        labels: Some(labels),
        ..Default::default()
    };
    o
}

/// The members that are exactly as automon left them and that it would send unchanged: the
/// latest revision (`accepted`) has the same object and the resourceVersion it had then, and
/// the object in the cluster still has that resourceVersion, so nobody (no user, no
/// controller) has written it since. Applying them would change nothing; they are not sent.
/// Keys as [`crate::cluster::apply::key`].
pub fn untouched(
    plan: &Plan,
    state: &ClusterState,
    accepted: &crate::cluster::revision::Payload,
) -> BTreeSet<crate::cluster::apply::Key> {
    let Some(inventory) = &state.inventory else {
        return BTreeSet::new();
    };
    let live: BTreeMap<crate::cluster::apply::Key, &str> = inventory
        .members
        .iter()
        .filter_map(|m| {
            Some((
                crate::cluster::apply::key(m),
                m.metadata.resource_version.as_deref()?,
            ))
        })
        .collect();
    plan.members
        .iter()
        .filter(|o| accepted.objects.contains(o))
        .filter(|o| {
            let then = accepted
                .resource_versions
                .get(&crate::cluster::revision::key(o));
            let now = live.get(&crate::cluster::apply::key(o));
            then.is_some_and(|then| now == Some(&then.as_str()))
        })
        .map(crate::cluster::apply::key)
        .collect()
}

/// The objects automon keeps in a cluster where it reuses another operator (`reuse`), or all.
/// `status` and `doctor` expect exactly these.
pub fn kept(objects: Vec<Object>, reuse: bool, left_out: &LeftOut) -> Vec<Object> {
    if reuse {
        left_out.apply(reuse_existing_operator(objects, &BTreeMap::new()))
    } else {
        objects
    }
}

/// With another Prometheus Operator in charge: leave out our operator, Prometheus and
/// Alertmanager (and the CRDs, which are the other operator's), and label the scrape and rule
/// objects so that its selectors pick them up.
fn reuse_existing_operator(objects: Vec<Object>, labels: &BTreeMap<String, String>) -> Vec<Object> {
    objects
        .into_iter()
        .filter(|o| !render::replaced_by_existing_operator(o))
        .map(|mut o| {
            if matches!(kind(&o), "ServiceMonitor" | "PodMonitor" | "PrometheusRule")
                && !labels.is_empty()
            {
                o.metadata
                    .labels
                    .get_or_insert_with(Default::default)
                    .extend(labels.clone());
            }
            o
        })
        .collect()
}

/// An unset namespace selector means "my own namespace only": ours would not be picked up.
fn selector_warnings(found: &ExistingOperator, namespace: &str) -> Vec<String> {
    let Some(prom) = found.prometheuses.first() else {
        return Vec::new();
    };
    if prom.namespace == namespace {
        return Vec::new();
    }
    [
        ("ServiceMonitors", &prom.service_monitor_namespace_selector),
        ("PrometheusRules", &prom.rule_namespace_selector),
    ]
    .into_iter()
    .filter(|(_, selector)| selector.is_none())
    .map(|(what, _)| {
        format!(
            "prometheus {}/{} selects {what} only in its own namespace: set its namespace selector to include {namespace:?}, or enable with -n {}",
            prom.namespace, prom.name, prom.namespace
        )
    })
    .collect()
}

/// `deployment monitoring/prometheus-operator v0.80.0, prometheus monitoring/k8s`.
fn describe_operator(found: &ExistingOperator) -> String {
    let mut parts: Vec<String> = found
        .deployments
        .iter()
        .map(|d| {
            format!(
                "deployment {}/{}{}",
                d.namespace,
                d.name,
                d.version
                    .as_deref()
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    parts.extend(
        found
            .prometheuses
            .iter()
            .map(|p| format!("prometheus {}/{}", p.namespace, p.name)),
    );
    parts.join(", ")
}

/// The SHA-256 of an object as it would be sent, without the digest annotation itself.
fn digest_of(o: &Object) -> Option<String> {
    let annotations = o.metadata.annotations.as_ref();
    let to_clean = annotations.is_some_and(|a| a.is_empty() || a.contains_key(APPLIED_DIGEST));
    // A CRD is hundreds of KB: copied only when there is something to take out.
    let bare = if to_clean {
        let mut bare = o.clone();
        if let Some(a) = bare.metadata.annotations.as_mut() {
            a.remove(APPLIED_DIGEST);
            if a.is_empty() {
                bare.metadata.annotations = None;
            }
        }
        std::borrow::Cow::Owned(bare)
    } else {
        std::borrow::Cow::Borrowed(o)
    };
    // serde_json's maps are sorted: the same object gives the same bytes.
    let bytes = serde_json::to_vec(&*bare).ok()?;
    Some(format!("{:x}", Sha256::digest(bytes)))
}

/// `o` annotated with its `digest`.
fn with(mut o: Object, digest: Option<String>) -> Object {
    if let Some(d) = digest {
        o.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(APPLIED_DIGEST.into(), d);
    }
    o
}

/// A custom resource's type: served through a CRD, not built in. Built-in groups are either
/// single words (`apps`, `policy`) or end in `.k8s.io`.
pub fn is_custom(k: &Known) -> bool {
    let g = k.group();
    g.contains('.') && !g.ends_with(".k8s.io")
}

pub fn crd_name(k: &Known) -> String {
    format!("{}.{}", k.plural, k.group())
}

/// The custom resource types among `objects` whose CRD the cluster does not have yet.
pub fn missing_crds<'a>(
    state: &ClusterState,
    objects: impl Iterator<Item = &'a Object>,
) -> Vec<&'static Known> {
    let mut types: Vec<&'static Known> = objects
        .filter_map(resources::of)
        .filter(|k| is_custom(k) && !state.crds.contains_key(&crd_name(k)))
        .collect();
    types.sort_by_key(|k| crd_name(k));
    types.dedup();
    types
}

/// Whether the server can dry-run an apply of `o` now: its namespace and its CRD exist.
pub fn can_dry_run(o: &Object, namespace_exists: bool, missing_crds: &[&'static Known]) -> bool {
    let Some(k) = resources::of(o) else {
        return false;
    };
    let namespace_ok = k.scope == Scope::Cluster || namespace_exists;
    namespace_ok && !missing_crds.contains(&k)
}

// ---------------------------------------------------------------------------------------------
#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::Config,
        model::resources::display_name,
        preflight::{OperatorDeployment, PrometheusInfo},
    };

    fn rendered(config: &Config) -> Vec<Object> {
        render::render(config).objects
    }

    fn with_crds(config: &Config, crds: &[&str]) -> Vec<Object> {
        let crds = crds
            .iter()
            .map(|name| {
                render::custom(serde_json::json!({
                    "apiVersion": "apiextensions.k8s.io/v1",
                    "kind": "CustomResourceDefinition",
                    "metadata": {"name": name},
                    "spec": {"group": "monitoring.coreos.com"}
                }))
            })
            .collect();
        render::render_with(config, crds).objects
    }

    fn installed(config: &Config) -> Inventory {
        let p = plan(
            rendered(config),
            &ClusterState::default(),
            CrdSource::Kept,
            "",
        )
        .unwrap();
        Inventory {
            parent: p.final_parent.clone(),
            members: p.members.clone(),
        }
    }

    #[test]
    fn the_crds_line_says_where_they_come_from_and_what_is_sent() {
        let pinned = crds::PINNED_CRDS.len();
        let cases = [
            (
                CrdSource::Existing,
                0,
                0,
                "those of the Prometheus Operator already installed, as they are".to_string(),
            ),
            (
                CrdSource::Kept,
                0,
                0,
                format!("{pinned} in the cluster at a compatible version, kept as they are"),
            ),
            (
                CrdSource::Untouched,
                0,
                0,
                "left as they are (a revision does not record CRDs)".to_string(),
            ),
            (CrdSource::Load, 10, 0, "10 from ./crds".to_string()),
            (
                CrdSource::Load,
                0,
                10,
                "10 from ./crds, identical to the cluster's: not sent".to_string(),
            ),
            (
                CrdSource::Load,
                2,
                8,
                "10 from ./crds, 8 identical: 2 sent".to_string(),
            ),
        ];
        for (source, sent, identical, want) in cases {
            assert_eq!(crds_line(source, "./crds", sent, identical), want);
        }
    }

    #[test]
    fn a_namespace_that_was_there_is_labelled_never_owned() {
        let state = ClusterState {
            namespace_exists: true,
            ..Default::default()
        };
        let p = plan(rendered(&Config::default()), &state, CrdSource::Kept, "").unwrap();
        let ns = p
            .adopted_namespace
            .as_ref()
            .expect("the namespace is labelled");
        assert_eq!(
            ns.metadata.labels.as_ref(),
            Some(&render::namespace::pod_security_labels()),
            "only the PodSecurity labels: no ApplySet membership, no managed-by"
        );
        assert!(p.members.iter().all(|o| kind(o) != "Namespace"));
        assert_eq!(p.phase(Phase::Foundation).next(), Some(ns));
        let annotations = p.final_parent.metadata.annotations.clone().unwrap();
        assert_eq!(
            annotations.get(NAMESPACE_EXISTED).map(String::as_str),
            Some("true")
        );
        // The next run finds it still not a member, and says the same.
        let again = ClusterState {
            namespace_exists: true,
            inventory: Some(Inventory {
                parent: p.final_parent.clone(),
                members: p.members.clone(),
            }),
            ..Default::default()
        };
        let p2 = plan(rendered(&Config::default()), &again, CrdSource::Kept, "").unwrap();
        assert_eq!(p2.adopted_namespace, p.adopted_namespace);
        // A namespace automon created stays a member.
        let ours = ClusterState {
            namespace_exists: true,
            inventory: Some(installed(&Config::default())),
            ..Default::default()
        };
        let p3 = plan(rendered(&Config::default()), &ours, CrdSource::Kept, "").unwrap();
        assert!(p3.adopted_namespace.is_none());
        assert!(p3.members.iter().any(|o| kind(o) == "Namespace"));
    }

    #[test]
    fn the_stored_configuration_changes_with_the_last_write() {
        let before = installed(&Config::default());
        // A value given (the parent stores values, not settings changed in place).
        let config = Config::default()
            .with_set("prometheus.retention=7d")
            .unwrap();
        let state = ClusterState {
            namespace_exists: true,
            inventory: Some(before.clone()),
            ..Default::default()
        };
        let p = plan(rendered(&config), &state, CrdSource::Kept, "").unwrap();
        assert_eq!(p.first_parent.data["data"], before.parent.data["data"]);
        assert_ne!(p.final_parent.data["data"], before.parent.data["data"]);
    }

    /// The default stack's plan beside another operator.
    fn plan_beside(found: ExistingOperator) -> Plan {
        let state = ClusterState {
            existing: Some(found),
            ..Default::default()
        };
        plan(
            rendered(&Config::default()),
            &state,
            CrdSource::Existing,
            "",
        )
        .unwrap()
    }

    fn existing() -> ExistingOperator {
        ExistingOperator {
            not_checked: None,
            crds_installed: true,
            deployments: vec![OperatorDeployment {
                namespace: "monitoring".into(),
                name: "prometheus-operator".into(),
                version: Some("v0.80.0".into()),
                ..Default::default()
            }],
            prometheuses: vec![PrometheusInfo {
                namespace: "monitoring".into(),
                name: "k8s".into(),
                service_monitor_selector: Some(
                    serde_json::from_value(serde_json::json!({"matchLabels": {"release": "kps"}}))
                        .unwrap(),
                ),
                service_monitor_namespace_selector: None,
                rule_selector: None,
                rule_namespace_selector: Some(Default::default()),
                ..Default::default()
            }],
            already: Default::default(),
        }
    }

    fn names<'a>(objects: impl IntoIterator<Item = &'a Object>) -> Vec<String> {
        objects.into_iter().map(display_name).collect()
    }

    fn kinds_of(parent: &Object) -> BTreeSet<String> {
        inventory::group_kinds(&parent.metadata)
    }

    #[test]
    fn a_first_install_applies_everything_and_prunes_nothing() {
        let config = Config::default();
        let p = plan(
            rendered(&config),
            &ClusterState::default(),
            CrdSource::Kept,
            "",
        )
        .unwrap();
        assert_eq!(p.members.len() + 1, rendered(&config).len());
        assert!(p.prune.is_empty());
        assert!(p.reuse.is_none());
        assert_eq!(kinds_of(&p.first_parent), kinds_of(&p.final_parent));
        let phases: Vec<Phase> = p.members.iter().map(render::phase).collect();
        assert!(phases.is_sorted(), "members in phase order");
        assert!(p.crds.contains("kept as they are"), "{}", p.crds);
    }

    #[test]
    fn objects_with_automons_own_exporter_are_refused_next_to_another() {
        let holder: Holder =
            serde_json::from_value::<k8s_openapi::api::apps::v1::DaemonSet>(serde_json::json!({
                "metadata": {"name": "node-exporter", "namespace": "monitoring"},
                "spec": {"selector": {}, "template": {"spec": {"hostNetwork": true,
                    "containers": [{"name": "x", "ports": [{"containerPort": 9100}]}]}}}
            }))
            .map(|d| crate::preflight::exporter::holder(&[d], 9100, "automon").unwrap())
            .unwrap();
        let state = ClusterState {
            exporter: Some(holder.clone()),
            ..Default::default()
        };
        // A revision (or render) with automon's own DaemonSet: refused, naming the holder.
        let err = plan(rendered(&Config::default()), &state, CrdSource::Kept, "").unwrap_err();
        assert!(
            err.to_string()
                .contains("daemonset monitoring/node-exporter now serves its port"),
            "{err}"
        );
        // What enable renders there: no DaemonSet, a scrape object, and the parent records it.
        let config = Config::default();
        let objects = render::render_beside(&config, Vec::new(), Some(&holder)).objects;
        let p = plan(objects, &state, CrdSource::Kept, "").unwrap();
        let names = names(&p.members);
        assert!(
            !names.iter().any(|n| n.starts_with("daemonset")),
            "{names:?}"
        );
        assert!(
            names
                .iter()
                .any(|n| n == "podmonitor.monitoring.coreos.com/node-exporter"),
            "{names:?}"
        );
        assert_eq!(
            p.final_parent.metadata.annotations.as_ref().unwrap()
                [crate::model::names::EXPORTER_FROM],
            "monitoring/node-exporter"
        );
    }

    #[test]
    fn reusing_an_operator_leaves_out_its_parts_and_lists_only_what_is_kept() {
        let p = plan_beside(existing());
        let names = names(&p.members);
        for gone in [
            "deployment.apps/prometheus-operator",
            "prometheus.monitoring.coreos.com/automon",
            "alertmanager.monitoring.coreos.com/automon",
        ] {
            assert!(!names.contains(&gone.to_string()), "{gone} in {names:?}");
        }
        assert!(names.contains(&"daemonset.apps/node-exporter".to_string()));
        // status tells reuse from the parent: it must not list the kinds left out.
        let kinds = kinds_of(&p.final_parent);
        assert!(
            !kinds.contains("Prometheus.monitoring.coreos.com"),
            "{kinds:?}"
        );
        assert!(
            !kinds.contains("Alertmanager.monitoring.coreos.com"),
            "{kinds:?}"
        );
        assert!(kinds.contains("ServiceMonitor.monitoring.coreos.com"));
        for o in p
            .members
            .iter()
            .filter(|o| matches!(kind(o), "ServiceMonitor" | "PrometheusRule"))
        {
            assert_eq!(o.metadata.labels.as_ref().unwrap()["release"], "kps");
        }
        let r = p.reuse.unwrap();
        assert_eq!(
            r.operator,
            "deployment monitoring/prometheus-operator v0.80.0, prometheus monitoring/k8s"
        );
        // Its ServiceMonitor namespace selector is unset (own namespace only); rules are fine.
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
        assert!(p.warnings[0].contains("selects ServiceMonitors only in its own namespace"));
        // What status expects in reuse mode is what the plan applies.
        let expected = kept(rendered(&Config::default()), true, &LeftOut::default());
        assert_eq!(
            expected.len(),
            p.members.len() + 1,
            "kept() and plan() disagree"
        );
    }

    /// Beside kube-prometheus-stack: the alerts its rules define and the kubelet it scrapes are
    /// left out, recorded on the parent, and what status expects from that record agrees.
    #[test]
    fn the_kubelets_job_is_theirs_from_the_selector_or_the_service() {
        let kubelet = |job_label: Option<&str>| {
            let mut found = existing();
            let mut spec = serde_json::json!({
                "selector": {"matchLabels": {"k8s-app": "kubelet"}},
                "namespaceSelector": {"matchNames": ["kube-system"]},
                "endpoints": [{"port": "https-metrics"}, {"port": "https-metrics", "path": "/metrics/cadvisor"}],
            });
            if let Some(l) = job_label {
                spec["jobLabel"] = l.into();
            }
            found.already.add(&render::custom(serde_json::json!({
                "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
                "metadata": {"name": "kps-kubelet", "namespace": "monitoring"}, "spec": spec,
            })));
            found
        };
        let cadvisor = |p: &Plan| {
            rule_exprs(&p.members)
                .into_iter()
                .find(|e| e.contains("metrics_path=\"/metrics/cadvisor\""))
                .unwrap()
        };
        // `jobLabel: k8s-app` among the selector's labels: the job is `kubelet`, as automon's.
        let p = plan_beside(kubelet(Some("k8s-app")));
        assert!(cadvisor(&p).contains("job=\"kubelet\""));
        assert!(!p.warnings.iter().any(|w| w.contains("could not tell")));
        // No jobLabel: the Service's name, when preflight read it.
        let mut found = kubelet(None);
        found
            .already
            .jobs
            .insert("kubelet".into(), "kps-kube-prometheus-stack-kubelet".into());
        let p = plan_beside(found);
        assert!(
            cadvisor(&p).contains("job=\"kps-kube-prometheus-stack-kubelet\""),
            "{}",
            cadvisor(&p)
        );
        // Not read: said, and automon's name kept.
        let p = plan_beside(kubelet(None));
        assert!(
            p.warnings.iter().any(|w| w
                .contains("could not tell the job name of servicemonitor monitoring/kps-kubelet")),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn beside_a_stack_that_scrapes_the_exporter_it_is_read_not_scraped_again() {
        let mut found = existing();
        // kube-prometheus-stack's node-exporter ServiceMonitor: the job from the Service's
        // `jobLabel` label, no relabeling that names the node.
        found.already.add(&render::custom(serde_json::json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
            "metadata": {"name": "kps-prometheus-node-exporter", "namespace": "monitoring",
                         "labels": {"release": "kps"}},
            "spec": {"jobLabel": "jobLabel",
                     "selector": {"matchLabels": {"app.kubernetes.io/name": "prometheus-node-exporter"}},
                     "endpoints": [{"port": "http-metrics"}]},
        })));
        let holder: Holder =
            serde_json::from_value::<k8s_openapi::api::apps::v1::DaemonSet>(serde_json::json!({
                "metadata": {"name": "kps-prometheus-node-exporter", "namespace": "monitoring"},
                "spec": {"selector": {}, "template": {"spec": {"hostNetwork": true,
                    "containers": [{"name": "x", "ports": [{"name": "http-metrics", "containerPort": 9100}]}]}}}
            }))
            .map(|d| crate::preflight::exporter::holder(&[d], 9100, "automon").unwrap())
            .unwrap();
        let service: k8s_openapi::api::core::v1::Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "kps-prometheus-node-exporter", "namespace": "monitoring",
                         "labels": {"app.kubernetes.io/name": "prometheus-node-exporter", "jobLabel": "nodes"}},
            "spec": {"selector": {"app": "ne"}, "ports": [{"name": "http-metrics", "port": 9100, "targetPort": 9100}]},
        }))
        .unwrap();
        let pod_labels = BTreeMap::from([("app".to_string(), "ne".to_string())]);
        let holder = Holder {
            service: crate::preflight::exporter::service_of(&holder, &pod_labels, &[service]),
            ..holder
        };
        let state = ClusterState {
            existing: Some(found),
            exporter: Some(holder.clone()),
            ..Default::default()
        };
        let objects = render::render_beside(&Config::default(), Vec::new(), Some(&holder)).objects;
        let p = plan(objects, &state, CrdSource::Existing, "").unwrap();
        let names = names(&p.members);
        assert!(
            !names
                .iter()
                .any(|n| n.ends_with("monitor.monitoring.coreos.com/node-exporter")),
            "{names:?}"
        );
        let exprs = rule_exprs(&p.members);
        let node_down = exprs
            .iter()
            .find(|e| e.starts_with("max by (node) ((up{"))
            .unwrap();
        assert_eq!(
            node_down,
            r#"max by (node) ((up{job="nodes"} * on (namespace, pod) group_left (node) max by (namespace, pod, node) (kube_pod_info{job="kube-state-metrics", node!=""}))) == 0"#
        );
        assert!(
            !exprs.iter().any(|e| e.contains(r#"job="node-exporter""#)),
            "{exprs:?}"
        );
        // The dashboards' queries too, and their node variable lists kube-state-metrics' nodes.
        let detail = p
            .members
            .iter()
            .find(|o| o.metadata.name.as_deref() == Some("grafana-dashboard-node-detail"))
            .unwrap();
        let text = detail.data["data"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .as_str()
            .unwrap();
        assert!(!text.contains(r#"job=\"node-exporter\""#), "{text}");
        assert!(
            text.contains(r#"label_values(kube_node_info{job=\"kube-state-metrics\"}, node)"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"kube_pod_info{job=\"kube-state-metrics\", node!=\"\", node=\"$node\"}"#
            ),
            "{text}"
        );
        let recorded = &p.final_parent.metadata.annotations.as_ref().unwrap()[LEFT_OUT];
        assert!(
            recorded.contains("servicemonitor:node-exporter"),
            "{recorded}"
        );
        assert!(recorded.contains("as:node-exporter=nodes"), "{recorded}");
        assert!(recorded.contains("join:node"), "{recorded}");
        let left_out = LeftOut::of_parent(&p.final_parent.metadata);
        assert_eq!(left_out.job_name("node-exporter"), "nodes");
        assert!(left_out.node_join);
        // What status expects is what was applied.
        let expected = kept(
            render::render_beside(&Config::default(), Vec::new(), Some(&holder)).objects,
            true,
            &left_out,
        );
        status_expects(&expected, &p.members);
    }

    #[test]
    fn beside_a_stack_what_it_already_does_is_left_out_and_recorded() {
        let mut found = existing();
        for (kind, name, spec) in [
            (
                "PrometheusRule",
                "kps-node",
                serde_json::json!({"groups": [{"name": "node", "rules": [
                    {"alert": "NodeDown", "expr": "up == 0"},
                    {"record": "instance:x", "expr": "up"},
                ]}]}),
            ),
            (
                "PrometheusRule",
                "kps-general",
                serde_json::json!({"groups": [{"name": "general", "rules": [
                    {"alert": "Watchdog", "expr": "vector(1)"},
                ]}]}),
            ),
            (
                "ServiceMonitor",
                "kps-kubelet",
                serde_json::json!({"selector": {"matchLabels": {"k8s-app": "kubelet"}}}),
            ),
            (
                "ServiceMonitor",
                "kps-kube-state-metrics",
                serde_json::json!({"selector": {"matchLabels": {
                    "app.kubernetes.io/name": "kube-state-metrics",
                    "app.kubernetes.io/instance": "kps",
                }}}),
            ),
            (
                "ServiceMonitor",
                "kps-grafana",
                serde_json::json!({"selector": {"matchLabels": {"app.kubernetes.io/name": "grafana"}}}),
            ),
        ] {
            found.already.add(&render::custom(serde_json::json!({
                "apiVersion": "monitoring.coreos.com/v1", "kind": kind,
                "metadata": {"name": name, "namespace": "monitoring"}, "spec": spec,
            })));
        }
        // automon's own objects count for nothing.
        found.already.add(&render::custom(serde_json::json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": "node-alerts", "namespace": "other",
                "labels": {"app.kubernetes.io/part-of": "automon"}},
            "spec": {"groups": [{"name": "n", "rules": [{"alert": "HighCPUUsage", "expr": "1"}]}]},
        })));
        assert_eq!(
            found.already.alerts.keys().collect::<Vec<_>>(),
            ["NodeDown", "Watchdog"]
        );
        assert_eq!(found.already.scrapes["kubelet"], "monitoring/kps-kubelet");
        assert_eq!(
            found.already.scrapes["kube-state-metrics"],
            "monitoring/kps-kube-state-metrics"
        );
        assert_eq!(found.already.scrapes.len(), 2);

        let p = plan_beside(found);
        let alerts: Vec<String> = p.members.iter().flat_map(alert_names).collect();
        assert!(!alerts.contains(&"NodeDown".to_string()), "{alerts:?}");
        assert!(!alerts.contains(&"Watchdog".to_string()), "{alerts:?}");
        assert!(alerts.contains(&"HighCPUUsage".to_string()), "{alerts:?}");
        let names = names(&p.members);
        // Watchdog was automon-meta's only alert: the PrometheusRule goes with it.
        assert!(
            !names.contains(&"prometheusrule.monitoring.coreos.com/automon-meta".to_string()),
            "{names:?}"
        );
        assert!(!names.contains(&"servicemonitor.monitoring.coreos.com/kubelet".to_string()));
        assert!(
            names.contains(&"servicemonitor.monitoring.coreos.com/kube-state-metrics".to_string())
        );
        let warning = left_out_warning(&p);
        assert!(
            warning.contains("2 alerts its rules already define (NodeDown, Watchdog; in monitoring/kps-general, monitoring/kps-node)")
                && warning.contains("the kubelet scrape (servicemonitor monitoring/kps-kubelet does it)")
                && warning.contains("the job name kube-state-metrics (servicemonitor monitoring/kps-kube-state-metrics scrapes theirs under it; automon's own kube-state-metrics is job automon-kube-state-metrics)"),
            "{warning}"
        );
        let left_out = LeftOut::of_parent(&p.final_parent.metadata);
        assert_eq!(
            left_out,
            LeftOut {
                alerts: ["NodeDown".to_string(), "Watchdog".to_string()].into(),
                service_monitors: ["kubelet".to_string()].into(),
                own_jobs: ["kube-state-metrics".to_string()].into(),
                ..Default::default()
            }
        );
        // automon's kube-state-metrics keeps running (the coverage check reads its node labels),
        // under a job of its own: that stack's sums over job="kube-state-metrics" count theirs
        // only, and automon's rules and dashboards read automon's.
        let ksm = p
            .members
            .iter()
            .find(|o| {
                kind(o) == "ServiceMonitor"
                    && o.metadata.name.as_deref() == Some("kube-state-metrics")
            })
            .unwrap();
        for e in ksm.data["spec"]["endpoints"].as_array().unwrap() {
            assert_eq!(
                e["relabelings"].as_array().unwrap().last().unwrap()["replacement"],
                "automon-kube-state-metrics"
            );
        }
        let text: String = p
            .members
            .iter()
            .filter(|o| matches!(kind(o), "PrometheusRule" | "ConfigMap"))
            .map(|o| o.data.to_string())
            .collect();
        assert!(text.contains(r#"job=\"automon-kube-state-metrics\""#));
        assert!(
            text.contains(r#"job=\\\"automon-kube-state-metrics\\\""#),
            "dashboards"
        );
        assert!(!text.contains(r#"job=\"kube-state-metrics\""#));
        assert!(
            !text.contains(r#"job=\\\"kube-state-metrics\\\""#),
            "dashboards"
        );
        let expected = kept(rendered(&Config::default()), true, &left_out);
        assert_eq!(
            expected.len(),
            p.members.len() + 1,
            "kept() and plan() disagree"
        );
    }

    #[test]
    fn beside_their_kube_state_metrics_automon_s_exports_node_labels_alone_and_reads_theirs() {
        let mut found = existing();
        // As kube-prometheus-stack's: the job is the Service's `app.kubernetes.io/name`, which
        // the selector names; here relabeled, so that the two jobs differ.
        found.already.add(&render::custom(serde_json::json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
            "metadata": {"name": "kps-kube-state-metrics", "namespace": "monitoring"},
            "spec": {
                "jobLabel": "app.kubernetes.io/name",
                "selector": {"matchLabels": {"app.kubernetes.io/name": "kube-state-metrics"}},
                "endpoints": [{"port": "http", "relabelings": [
                    {"targetLabel": "job", "replacement": "ksm"},
                ]}],
            },
        })));
        let p = plan_beside(found.clone());
        let left_out = LeftOut::of_parent(&p.final_parent.metadata);
        assert_eq!(
            left_out.reads_theirs,
            [("kube-state-metrics".to_string(), "ksm".to_string())].into()
        );
        assert!(left_out.own_jobs.contains("kube-state-metrics"));
        let warning = left_out_warning(&p);
        assert!(
            warning.contains("every kube-state-metrics series but kube_node_labels (servicemonitor monitoring/kps-kube-state-metrics scrapes theirs, as job ksm, which automon's rules and dashboards read; automon's own kube-state-metrics exports only kube_node_labels, the node labels its coverage check reads, as job automon-kube-state-metrics)"),
            "{warning}"
        );
        // automon's own: nodes collected, node labels exported, nodes read; still scraped
        // under its own job.
        let find = |k: &str, name: &str| {
            p.members
                .iter()
                .find(|o| kind(o) == k && o.metadata.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("{k} {name}"))
        };
        let args = &find("Deployment", "kube-state-metrics").data["spec"]["template"]["spec"]["containers"]
            [0]["args"];
        assert!(
            args.as_array()
                .unwrap()
                .contains(&"--resources=nodes".into())
                && args
                    .as_array()
                    .unwrap()
                    .contains(&"--metric-allowlist=kube_node_labels".into()),
            "{args}"
        );
        assert_eq!(
            find("ClusterRole", "automon-kube-state-metrics").data["rules"],
            serde_json::json!([{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch"]}])
        );
        let sm = find("ServiceMonitor", "kube-state-metrics");
        assert_eq!(
            sm.data["spec"]["endpoints"][0]["relabelings"][0]["replacement"],
            "automon-kube-state-metrics"
        );
        // Every rule and dashboard selector of automon's job reads the node labels or its own
        // targets; every other kube-state-metrics series is read from theirs.
        let mut queries = rule_exprs(&p.members);
        for o in p.members.iter().filter(|o| kind(o) == "ConfigMap") {
            for v in o.data["data"].as_object().into_iter().flatten() {
                if let Some(d) =
                    v.1.as_str()
                        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
                {
                    collect_queries(&d, &mut queries);
                }
            }
        }
        let selector = regex::Regex::new(r#"([a-zA-Z_:][a-zA-Z0-9_:]*)?\{([^{}]*)\}"#).unwrap();
        let (mut own, mut theirs) = (BTreeSet::new(), BTreeSet::new());
        for q in &queries {
            assert!(!q.contains(r#"job="kube-state-metrics""#), "{q}");
            for c in selector.captures_iter(q) {
                let metric = c.get(1).map_or("", |m| m.as_str()).to_string();
                if c[2].contains(r#"job="automon-kube-state-metrics""#) {
                    own.insert(metric);
                } else if c[2].contains(r#"job="ksm""#) {
                    theirs.insert(metric);
                }
            }
        }
        assert_eq!(
            own,
            ["kube_node_labels".to_string(), "up".to_string()].into()
        );
        for m in [
            "kube_node_info",
            "kube_pod_info",
            "kube_deployment_spec_replicas",
            "",
        ] {
            assert!(theirs.contains(m), "{m}: {theirs:?}");
        }
        assert!(
            theirs
                .iter()
                .all(|m| m.is_empty() || m.starts_with("kube_")),
            "{theirs:?}"
        );
        // What status expects is what was applied.
        let expected = kept(rendered(&Config::default()), true, &left_out);
        status_expects(&expected, &p.members);

        // Their job untold: automon's keeps every series, and says why.
        found.already.monitors[0].endpoints[0].job = None;
        found.already.monitors[0].job_label = None;
        let p = plan_beside(found);
        assert!(
            LeftOut::of_parent(&p.final_parent.metadata)
                .reads_theirs
                .is_empty()
        );
        assert!(
            p.warnings.iter().any(|w| w.contains("could not tell the job name of servicemonitor monitoring/kps-kube-state-metrics's series (its Service's name): automon's own kube-state-metrics keeps exporting all of its series, as job automon-kube-state-metrics")),
            "{:?}",
            p.warnings
        );
        let args = &p
            .members
            .iter()
            .find(|o| {
                kind(o) == "Deployment" && o.metadata.name.as_deref() == Some("kube-state-metrics")
            })
            .unwrap()
            .data["spec"]["template"]["spec"]["containers"][0]["args"];
        assert!(!args.to_string().contains("--metric-allowlist"), "{args}");
    }

    /// `enable`'s warning of what it leaves out.
    fn left_out_warning(p: &Plan) -> &str {
        p.warnings
            .iter()
            .find(|w| w.contains("leaves out"))
            .unwrap()
    }

    /// The expressions of every rule among `members`.
    fn rule_exprs(members: &[Object]) -> Vec<String> {
        members
            .iter()
            .filter(|o| kind(o) == "PrometheusRule")
            .flat_map(|o| o.data["spec"]["groups"].as_array().unwrap().clone())
            .flat_map(|g| g["rules"].as_array().unwrap().clone())
            .map(|r| r["expr"].as_str().unwrap().to_string())
            .collect()
    }

    /// Each applied member is, to the letter, one that `status` expects.
    fn status_expects(expected: &[Object], members: &[Object]) {
        for m in members {
            let same = expected
                .iter()
                .find(|o| o.metadata.name == m.metadata.name && kind(o) == kind(m))
                .unwrap_or_else(|| panic!("status does not expect {:?}", m.metadata.name));
            assert_eq!(same.data, m.data, "{:?}", m.metadata.name);
        }
    }

    /// Every PromQL string of a dashboard (`expr`, and a variable's `query`).
    fn collect_queries(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, item) in map {
                    match (k.as_str(), item.as_str()) {
                        ("expr", Some(q)) => out.push(q.to_string()),
                        ("query", Some(q)) if q.starts_with("label_values(") => {
                            out.push(q.to_string())
                        }
                        _ => collect_queries(item, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| collect_queries(i, out)),
            _ => {}
        }
    }

    #[test]
    fn what_a_render_no_longer_has_is_pruned_and_stays_listed_until_then() {
        let before = installed(&Config::default());
        let off = Config::default().with_set("grafana.enabled=false").unwrap();
        let state = ClusterState {
            namespace_exists: true,
            inventory: Some(before),
            ..Default::default()
        };
        let p = plan(rendered(&off), &state, CrdSource::Kept, "").unwrap();
        let pruned = names(&p.prune);
        assert!(
            pruned.contains(&"deployment.apps/grafana".to_string()),
            "{pruned:?}"
        );
        assert!(!pruned.iter().any(|n| n.starts_with("namespace/")));
        // Deleting runs in reverse phase order.
        let phases: Vec<Phase> = p.prune.iter().map(render::phase).collect();
        assert!(phases.is_sorted_by(|a, b| a >= b));
        // The first write still lists every kind; the last lists only what is left.
        let (first, last) = (kinds_of(&p.first_parent), kinds_of(&p.final_parent));
        assert!(last.is_subset(&first));
        let left: BTreeSet<String> = p.members.iter().map(model::group_kind).collect();
        assert!(left.is_subset(&last));
    }

    #[test]
    fn grafanas_claim_is_never_pruned_and_its_keeping_is_said() {
        let on = Config::default()
            .with_set("grafana.persistence.enabled=true")
            .unwrap();
        let state = ClusterState {
            namespace_exists: true,
            inventory: Some(installed(&on)),
            ..Default::default()
        };
        // Persistence off, or Grafana off altogether: the claim stays, listed for disable.
        for off in ["grafana.persistence.enabled=false", "grafana.enabled=false"] {
            let config = Config::default().with_set(off).unwrap();
            let p = plan(rendered(&config), &state, CrdSource::Kept, "").unwrap();
            let pruned = names(&p.prune);
            assert!(
                !pruned
                    .iter()
                    .any(|n| n.starts_with("persistentvolumeclaim/")),
                "{off}: {pruned:?}"
            );
            assert!(
                kinds_of(&p.final_parent).contains("PersistentVolumeClaim"),
                "{off}"
            );
            let warned: Vec<_> = p
                .warnings
                .iter()
                .filter(|w| w.contains("kept persistentvolumeclaim \"grafana\""))
                .collect();
            assert_eq!(warned.len(), 1, "{off}: {:?}", p.warnings);
            assert!(
                warned[0].contains("kubectl delete pvc -n automon grafana"),
                "{warned:?}"
            );
        }
        // Still on: nothing said, the claim applied as a member.
        let p = plan(rendered(&on), &state, CrdSource::Kept, "").unwrap();
        assert!(
            p.prune.is_empty() && p.warnings.is_empty(),
            "{:?}",
            p.warnings
        );
        assert!(names(&p.members).contains(&"persistentvolumeclaim/grafana".to_string()));
    }

    #[test]
    fn the_same_render_twice_plans_no_prune_and_the_same_parent() {
        let config = Config::default();
        let state = ClusterState {
            namespace_exists: true,
            inventory: Some(installed(&config)),
            ..Default::default()
        };
        let p = plan(rendered(&config), &state, CrdSource::Kept, "").unwrap();
        assert!(p.prune.is_empty(), "{:?}", names(&p.prune));
        assert_eq!(p.first_parent, p.final_parent);
        assert_eq!(p.final_parent, state.inventory.unwrap().parent);
    }

    #[test]
    fn identical_crds_are_not_sent_again() {
        let config = Config::default();
        let objects = with_crds(
            &config,
            &["a.monitoring.coreos.com", "b.monitoring.coreos.com"],
        );
        let first = plan(
            objects.clone(),
            &ClusterState::default(),
            CrdSource::Load,
            "x",
        )
        .unwrap();
        assert_eq!(first.wait_for.len(), 2);
        assert_eq!(first.crds, "2 from x");
        // What the cluster holds after the first run: the digest annotation as sent.
        let mut crds: BTreeMap<String, InstalledCrd> = first
            .members
            .iter()
            .filter(|o| kind(o) == "CustomResourceDefinition")
            .map(|o| {
                (
                    o.metadata.name.clone().unwrap(),
                    InstalledCrd::of(&o.metadata),
                )
            })
            .collect();
        let state = ClusterState {
            namespace_exists: true,
            namespace_terminating: false,
            namespace: None,
            inventory: Some(Inventory {
                parent: first.final_parent.clone(),
                members: first.members.clone(),
            }),
            existing: None,
            crds: crds.clone(),
            exporter: None,
            classes: Default::default(),
            nodes: 3,
        };
        let again = plan(objects.clone(), &state, CrdSource::Load, "x").unwrap();
        assert!(again.wait_for.is_empty());
        assert_eq!(again.crds, "2 from x, identical to the cluster's: not sent");
        assert!(again.prune.is_empty());
        assert!(
            kinds_of(&again.final_parent).contains(CRD_KIND),
            "still members"
        );
        assert_eq!(again.final_parent, first.final_parent);

        // One changed in the cluster: only that one is sent.
        crds.get_mut("b.monitoring.coreos.com").unwrap().digest = Some("0".into());
        let state = ClusterState { crds, ..state };
        let one = plan(objects, &state, CrdSource::Load, "x").unwrap();
        assert_eq!(one.wait_for, ["b.monitoring.coreos.com"]);
        assert_eq!(one.crds, "2 from x, 1 identical: 1 sent");
    }

    #[test]
    fn only_what_is_as_automon_left_it_is_not_sent() {
        let config = Config::default();
        let mut before = installed(&config);
        for (i, m) in before.members.iter_mut().enumerate() {
            m.metadata.resource_version = Some(format!("{}", 100 + i));
        }
        let state = ClusterState {
            namespace_exists: true,
            inventory: Some(before.clone()),
            ..Default::default()
        };
        let p = plan(rendered(&config), &state, CrdSource::Kept, "").unwrap();
        let recorded = |objects: &[Object]| crate::cluster::revision::Payload {
            objects: p.objects().cloned().collect(),
            resource_versions: objects
                .iter()
                .filter_map(|m| {
                    Some((
                        crate::cluster::revision::key(m),
                        m.metadata.resource_version.clone()?,
                    ))
                })
                .collect(),
        };
        // As left: nothing is sent.
        let all = untouched(&p, &state, &recorded(&before.members));
        assert_eq!(all.len(), p.members.len());
        // Written since (a controller, a user): that one is sent.
        let mut moved = before.members.clone();
        moved[3].metadata.resource_version = Some("999".into());
        let some = untouched(&p, &state, &recorded(&moved));
        assert_eq!(some.len(), p.members.len() - 1);
        assert!(!some.contains(&crate::cluster::apply::key(&moved[3])));
        // A revision without versions (recorded before they were): everything is sent.
        let none = crate::cluster::revision::Payload {
            objects: p.objects().cloned().collect(),
            resource_versions: BTreeMap::new(),
        };
        assert!(untouched(&p, &state, &none).is_empty());
        // What this run would send differently is sent.
        let changed = plan(
            rendered(&config.clone().with_set("prometheus.retention=30d").unwrap()),
            &state,
            CrdSource::Kept,
            "",
        )
        .unwrap();
        let kept = untouched(&changed, &state, &recorded(&before.members));
        assert!(
            !kept
                .iter()
                .any(|(gk, _, name)| gk == "Prometheus.monitoring.coreos.com" && name == "automon")
        );
    }

    #[test]
    fn a_rollback_to_an_older_operator_says_the_newer_crds_stay() {
        let objects = rendered(&Config::default());
        let ours = crate::versions::PROMETHEUS_OPERATOR
            .version
            .trim_start_matches('v');
        let at = |version: &str| ClusterState {
            crds: crds::PINNED_CRDS
                .iter()
                .map(|p| {
                    let crd = InstalledCrd {
                        version: Some(version.into()),
                        digest: None,
                    };
                    (p.name(), crd)
                })
                .collect(),
            ..Default::default()
        };
        // The revision's operator is the rendered one: CRDs of its release or older say nothing.
        assert_eq!(crds_kept_newer(&objects, &at(ours)), None);
        assert_eq!(crds_kept_newer(&objects, &at("0.1.0")), None);
        let note = crds_kept_newer(&objects, &at("99.0.0")).expect("newer CRDs are named");
        assert!(
            note.starts_with(&format!(
                "the CRDs stay at 99.0.0, newer than this revision's operator v{ours}: CRDs are never downgraded"
            )),
            "{note}"
        );
        // A revision that reuses another operator has none of its own to compare.
        let without: Vec<Object> = objects
            .into_iter()
            .filter(|o| kind(o) != "Deployment")
            .collect();
        assert_eq!(crds_kept_newer(&without, &at("99.0.0")), None);
    }

    #[test]
    fn where_the_crds_come_from() {
        let pinned = |version: &str| -> BTreeMap<String, InstalledCrd> {
            crds::PINNED_CRDS
                .iter()
                .map(|p| {
                    (
                        p.name(),
                        InstalledCrd {
                            version: Some(version.into()),
                            digest: None,
                        },
                    )
                })
                .collect()
        };
        let wanted = crate::versions::PROMETHEUS_OPERATOR.version;
        let state = |crds| ClusterState {
            crds,
            ..Default::default()
        };
        let cases = [
            (state(BTreeMap::new()), false, CrdSource::Load),
            (state(pinned(wanted)), false, CrdSource::Kept),
            (state(pinned(wanted)), true, CrdSource::Load),
            (state(pinned("0.1.0")), false, CrdSource::Load),
            (
                ClusterState {
                    existing: Some(existing()),
                    ..Default::default()
                },
                true,
                CrdSource::Existing,
            ),
        ];
        for (i, (state, from, want)) in cases.into_iter().enumerate() {
            assert_eq!(crd_source(&state, from), want, "case {i}");
        }
        // One missing is enough to load them.
        let mut some = pinned(wanted);
        some.pop_first();
        assert_eq!(crd_source(&state(some), false), CrdSource::Load);
    }

    #[test]
    fn a_plan_for_another_namespace_is_refused() {
        let before = installed(&Config::default());
        let other = Config::default().with_set("namespace=elsewhere").unwrap();
        let state = ClusterState {
            inventory: Some(before),
            ..Default::default()
        };
        let e = plan(rendered(&other), &state, CrdSource::Kept, "").unwrap_err();
        assert!(e.to_string().contains("give -n elsewhere"), "{e}");
        let none = plan(Vec::new(), &ClusterState::default(), CrdSource::Kept, "");
        assert!(matches!(none, Err(PlanError::NoParent)));
    }
}
