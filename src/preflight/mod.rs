//! `enable`'s preflight, run before the first write: the server answers and runs a supported
//! version, every permission the install needs is granted (one SelfSubjectRulesReview per
//! namespace, SelfSubjectAccessReviews where the rules cannot answer; all missing ones listed at
//! once), and whether a Prometheus Operator not installed by automon is already there. Gather (`Preflight::run`, I/O) → assess (`Report::assess`, pure) → print (`Report::human`).

pub mod exporter;
pub mod gateway;
pub mod monitors;
pub mod scrape_configs;
pub mod secrets;

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        authentication::v1::SelfSubjectReview,
        authorization::v1::{
            ResourceAttributes, ResourceRule, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
            SelfSubjectRulesReview, SelfSubjectRulesReviewSpec,
        },
        rbac::v1::{ClusterRole, PolicyRule, Role},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta},
};
use kube::{
    Api,
    api::{DynamicObject, ListParams, PostParams},
};
use serde::Serialize;

use crate::model::exporter::Holder;
use crate::model::names::NAME_LABEL;
use crate::output::shell_word;
use crate::{
    cluster::{Cluster, error::ClusterError},
    model::{
        Object, api_version, kind,
        resources::{self, Scope},
    },
    output::Palette,
    versions,
};

/// The CRD whose presence means "a Prometheus Operator's API is installed".
pub const PROMETHEUS_CRD: &str = "prometheuses.monitoring.coreos.com";
const MONITORING_GROUP: &str = "monitoring.coreos.com";
const OPERATOR_NAME: &str = "prometheus-operator";
/// SelfSubjectAccessReviews in flight at once.
const CONCURRENT_REVIEWS: usize = 16;

/// One RBAC permission: a verb on a resource, in a namespace or cluster-wide (`None`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Permission {
    pub verb: String,
    /// API group; empty for the core group.
    pub group: String,
    /// Plural resource name, as RBAC names it.
    pub resource: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl Permission {
    pub fn new(verb: &str, group: &str, resource: &str, namespace: Option<&str>) -> Self {
        Permission {
            verb: verb.to_string(),
            group: group.to_string(),
            resource: resource.to_string(),
            namespace: namespace.map(str::to_string),
        }
    }

    /// `prometheuses.monitoring.coreos.com`, or `configmaps` for the core group.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

impl fmt::Display for Permission {
    /// `create prometheuses.monitoring.coreos.com in namespace "automon"`, `create namespaces cluster-wide`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb, self.qualified_resource())?;
        match &self.namespace {
            Some(ns) => write!(f, " in namespace {ns:?}"),
            None => write!(f, " cluster-wide"),
        }
    }
}

/// The denied verbs on one resource in one place: one line of the report, one RBAC rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingGrant {
    /// `None` cluster-wide.
    pub namespace: Option<String>,
    pub group: String,
    /// As RBAC names it, `pods/portforward` for a subresource.
    pub resource: String,
    /// In [`VERB_ORDER`].
    pub verbs: Vec<String>,
}

/// The order verbs are listed in, kubectl's (`kubectl create role --verb`); others after, sorted.
const VERB_ORDER: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

fn verb_rank(verb: &str) -> (usize, &str) {
    (
        VERB_ORDER
            .iter()
            .position(|v| *v == verb)
            .unwrap_or(VERB_ORDER.len()),
        verb,
    )
}

impl MissingGrant {
    /// `deployments.apps`, `configmaps` for the core group.
    pub fn qualified_resource(&self) -> String {
        Permission::new("", &self.group, &self.resource, None).qualified_resource()
    }

    /// `cluster-wide`, `in namespace automon`.
    pub fn scope(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("in namespace {ns}"),
            None => "cluster-wide".to_string(),
        }
    }
}

/// Denied permissions grouped by resource and namespace (pure): the cluster-wide ones first,
/// then each namespace's, each sorted by resource, verbs in kubectl's order.
pub fn group_missing(missing: &[Permission]) -> Vec<MissingGrant> {
    // Keyed by the name the user reads: `configmaps`, `deployments.apps`, `namespaces`.
    type Place<'a> = (Option<&'a str>, String, &'a str, &'a str);
    let mut by_place: BTreeMap<Place, BTreeSet<(usize, &str)>> = BTreeMap::new();
    for p in missing {
        by_place
            .entry((
                p.namespace.as_deref(),
                p.qualified_resource(),
                &p.group,
                &p.resource,
            ))
            .or_default()
            .insert(verb_rank(&p.verb));
    }
    by_place
        .into_iter()
        .map(|((namespace, _, group, resource), verbs)| MissingGrant {
            namespace: namespace.map(str::to_string),
            group: group.to_string(),
            resource: resource.to_string(),
            verbs: verbs.into_iter().map(|(_, v)| v.to_string()).collect(),
        })
        .collect()
}

/// One line per grant, the columns aligned (pure):
/// `get, list, create, patch, delete  deployments.apps  in namespace automon`.
pub fn missing_lines(grants: &[MissingGrant]) -> Vec<String> {
    let verbs: Vec<String> = grants.iter().map(|g| g.verbs.join(", ")).collect();
    let resources: Vec<String> = grants
        .iter()
        .map(MissingGrant::qualified_resource)
        .collect();
    let width = |l: &[String]| l.iter().map(|s| s.chars().count()).max().unwrap_or(0);
    let (vw, rw) = (width(&verbs), width(&resources));
    grants
        .iter()
        .zip(verbs.iter().zip(&resources))
        .map(|(g, (v, r))| format!("{v:vw$}  {r:rw$}  {}", g.scope()))
        .collect()
}

/// The name of the ClusterRole (and Roles) the grant creates, and of their bindings.
pub const INSTALLER_ROLE: &str = "automon-installer";

/// RBAC rules for grants of one place (pure): one rule per API group and set of verbs, listing
/// its resources, so that types enable treats alike share a rule.
fn policy_rules<'a>(grants: impl Iterator<Item = &'a MissingGrant>) -> Vec<PolicyRule> {
    // (API group, ranked verbs) → resources.
    type Rule<'a> = (&'a str, Vec<(usize, &'a str)>);
    let mut by_rule: BTreeMap<Rule, Vec<String>> = BTreeMap::new();
    for g in grants {
        let verbs = g.verbs.iter().map(|v| verb_rank(v)).collect();
        by_rule
            .entry((&g.group, verbs))
            .or_default()
            .push(g.resource.clone());
    }
    by_rule
        .into_iter()
        .map(|((group, verbs), resources)| PolicyRule {
            api_groups: Some(vec![group.to_string()]),
            resources: Some(resources),
            verbs: verbs.into_iter().map(|(_, v)| v.to_string()).collect(),
            ..Default::default()
        })
        .collect()
}

/// What grants every missing permission (pure): a ClusterRole with the cluster-wide rules, and a
/// Role per namespace with that namespace's (kept there rather than granted everywhere).
pub fn installer_roles(grants: &[MissingGrant]) -> (Option<ClusterRole>, Vec<Role>) {
    let cluster_wide: Vec<&MissingGrant> =
        grants.iter().filter(|g| g.namespace.is_none()).collect();
    let cluster_role = (!cluster_wide.is_empty()).then(|| ClusterRole {
        metadata: ObjectMeta {
            name: Some(INSTALLER_ROLE.to_string()),
            ..Default::default()
        },
        rules: Some(policy_rules(cluster_wide.into_iter())),
        ..Default::default()
    });
    let namespaces: BTreeSet<&str> = grants
        .iter()
        .filter_map(|g| g.namespace.as_deref())
        .collect();
    let roles = namespaces
        .into_iter()
        .map(|ns| Role {
            metadata: ObjectMeta {
                name: Some(INSTALLER_ROLE.to_string()),
                namespace: Some(ns.to_string()),
                ..Default::default()
            },
            rules: Some(policy_rules(
                grants.iter().filter(|g| g.namespace.as_deref() == Some(ns)),
            )),
        })
        .collect();
    (cluster_role, roles)
}

/// What a cluster administrator runs to grant every missing permission to `user` (pure): the
/// roles as YAML for `kubectl apply`, then one binding each. `user` is the name the API server
/// authenticated; a service account is bound as one; unknown, a placeholder to fill in.
pub fn grant_snippet(missing: &[Permission], user: Option<&str>) -> String {
    let grants = group_missing(missing);
    let (cluster_role, roles) = installer_roles(&grants);
    let mut documents: Vec<String> = Vec::new();
    // k8s-openapi writes apiVersion and kind itself.
    let yaml = |doc: Result<String, serde_saphyr::SerializeError>| {
        doc.unwrap_or_else(|e| format!("# cannot write this role as YAML: {e}\n"))
    };
    if let Some(role) = &cluster_role {
        documents.push(yaml(serde_saphyr::to_string(role)));
    }
    for role in &roles {
        documents.push(yaml(serde_saphyr::to_string(role)));
    }
    let subject = match user {
        Some(u) => match u
            .strip_prefix("system:serviceaccount:")
            .filter(|sa| sa.contains(':'))
        {
            Some(sa) => format!("--serviceaccount={}", shell_word(sa)),
            None => format!("--user={}", shell_word(u)),
        },
        None => "--user=USER".to_string(),
    };
    let mut out = String::new();
    if user.is_none() {
        out.push_str(
            "# USER: the name `kubectl auth whoami` prints for the user who runs enable\n",
        );
    }
    if missing
        .iter()
        .any(|p| p.verb == "create" && p.resource == "clusterroles")
    {
        // RBAC lets a user create a role only with permissions it holds (or `escalate`).
        out.push_str("# creating the stack's ClusterRoles also takes the permissions they grant, or escalate and bind on clusterroles\n");
    }
    for role in &roles {
        let ns = role.metadata.namespace.as_deref().unwrap_or_default();
        out.push_str(&format!(
            "# a Role needs its namespace: kubectl create namespace {}, if it is not there yet\n",
            shell_word(ns)
        ));
    }
    out.push_str("kubectl apply -f - <<'EOF'\n");
    out.push_str(&documents.join("---\n"));
    out.push_str("EOF\n");
    if cluster_role.is_some() {
        out.push_str(&format!(
            "kubectl create clusterrolebinding {INSTALLER_ROLE} --clusterrole={INSTALLER_ROLE} {subject}\n"
        ));
    }
    for role in &roles {
        let ns = role.metadata.namespace.as_deref().unwrap_or_default();
        out.push_str(&format!(
            "kubectl create rolebinding {INSTALLER_ROLE} --namespace={} --role={INSTALLER_ROLE} {subject}\n",
            shell_word(ns)
        ));
    }
    out
}

/// Verbs for every type enable writes: `get` (is it there? diff), `list` (ApplySet pruning
/// finds members by label), `create` and `patch` (server-side apply is a PATCH, and of an
/// object that does not exist yet also a create), `delete` (pruning).
const WRITE_VERBS: &[&str] = &["get", "list", "create", "patch", "delete"];
/// Types enable waits on with a watch: workloads until ready, CRDs until Established.
const WATCHED: &[(&str, &str)] = &[
    ("apps", "deployments"),
    ("apps", "daemonsets"),
    ("apps", "statefulsets"),
    ("apiextensions.k8s.io", "customresourcedefinitions"),
];

/// Every permission installing `objects` into `namespace` needs, exactly:
/// - for each object's type, in its namespace (cluster-wide for cluster-scoped types):
///   `get`, `list`, `create`, `patch`, `delete`, and `watch` for the types enable waits on
///   (Deployments, DaemonSets, StatefulSets, CRDs);
/// - the CRDs, always: enable reads them to decide whether to install them, installs them when
///   missing and waits for `Established`;
/// - `get`/`list`/`watch` on StatefulSets in the namespace of each `Prometheus` and
///   `Alertmanager`: the operator creates those and `--wait` waits for them; and for the second
///   replica an upgrade lends each while it replaces their pods (docs/commands.md, enable): `list`,
///   `watch`, `patch` and `deletecollection` Pods (released from the StatefulSet, then
///   deleted), `list` and `delete` PersistentVolumeClaims (the ones the second replica made);
/// - the ApplySet parent ConfigMap in `namespace` (get/create/patch) even when absent from `objects`;
/// - the revision Secrets in `namespace` (list/create/delete);
/// - what preflight itself reads to find another Prometheus Operator: `list` Deployments and
///   Prometheuses cluster-wide; and another exporter on node-exporter's port: `list`
///   DaemonSets and Services cluster-wide;
/// - `list` Nodes: the classes of node (Windows, GPU) that bring an exporter of their own.
///
/// Not covered (SelfSubjectAccessReview cannot ask it): RBAC's escalation check, which also
/// requires the user to hold every permission a ClusterRole it creates grants (or `escalate`/`bind`).
pub fn required_permissions(objects: &[Object], namespace: &str) -> BTreeSet<Permission> {
    let mut out = BTreeSet::new();
    let mut add_type = |group: &str, resource: &str, ns: Option<&str>| {
        for verb in WRITE_VERBS {
            out.insert(Permission::new(verb, group, resource, ns));
        }
        if WATCHED.contains(&(group, resource)) {
            out.insert(Permission::new("watch", group, resource, ns));
        }
    };
    add_type("apiextensions.k8s.io", "customresourcedefinitions", None);
    let mut operand_namespaces = BTreeSet::new();
    for o in objects {
        let (group, plural, scope) = match resources::of(o) {
            Some(k) => (k.group().to_string(), k.plural.to_string(), k.scope),
            // Every rendered type is known (a resources test says so); anything else is named
            // the way RBAC conventionally names it rather than dropped.
            None => (
                api_version(o)
                    .rsplit_once('/')
                    .map_or("", |(g, _)| g)
                    .to_string(),
                format!("{}s", kind(o).to_lowercase()),
                if o.metadata.namespace.is_some() {
                    Scope::Namespaced
                } else {
                    Scope::Cluster
                },
            ),
        };
        let ns = match scope {
            Scope::Namespaced => Some(o.metadata.namespace.as_deref().unwrap_or(namespace)),
            Scope::Cluster => None,
        };
        add_type(&group, &plural, ns);
        if group == MONITORING_GROUP && (plural == "prometheuses" || plural == "alertmanagers") {
            operand_namespaces.insert(ns.unwrap_or(namespace).to_string());
        }
    }
    for ns in &operand_namespaces {
        for verb in ["get", "list", "watch"] {
            out.insert(Permission::new(verb, "apps", "statefulsets", Some(ns)));
        }
        for verb in ["list", "watch", "patch", "deletecollection"] {
            out.insert(Permission::new(verb, "", "pods", Some(ns)));
        }
        for verb in ["list", "delete"] {
            out.insert(Permission::new(
                verb,
                "",
                "persistentvolumeclaims",
                Some(ns),
            ));
        }
    }
    for verb in ["get", "create", "patch"] {
        out.insert(Permission::new(verb, "", "configmaps", Some(namespace)));
    }
    // Revisions: listed to number the next, created, and the oldest deleted.
    for verb in ["list", "create", "delete"] {
        out.insert(Permission::new(verb, "", "secrets", Some(namespace)));
    }
    out.insert(Permission::new("list", "apps", "deployments", None));
    out.insert(Permission::new(
        "list",
        MONITORING_GROUP,
        "prometheuses",
        None,
    ));
    out.insert(Permission::new("list", "apps", "daemonsets", None));
    out.insert(Permission::new("list", "", "services", None));
    // Which classes of node the cluster has (Windows, GPU): each brings its exporter.
    out.insert(Permission::new("list", "", "nodes", None));
    out
}

/// The server's version, as `/version` reports it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerVersion {
    pub git_version: String,
    pub major: String,
    pub minor: String,
}

/// A Deployment that runs a Prometheus Operator and is not automon's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OperatorDeployment {
    pub namespace: String,
    pub name: String,
    pub image: String,
    /// The image tag, e.g. `v0.80.0`; `None` for an untagged or digest-only image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// A `Prometheus` object that is not automon's, with the selectors enable's objects must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusInfo {
    pub namespace: String,
    pub name: String,
    pub service_monitor_selector: Option<LabelSelector>,
    pub service_monitor_namespace_selector: Option<LabelSelector>,
    pub rule_selector: Option<LabelSelector>,
    pub rule_namespace_selector: Option<LabelSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_monitor_selector: Option<LabelSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_monitor_namespace_selector: Option<LabelSelector>,
}

/// What preflight found of another Prometheus Operator.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExistingOperator {
    /// Why the search was not done (the user may not read CRDs, Deployments or Prometheuses).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_checked: Option<String>,
    /// Whether `prometheuses.monitoring.coreos.com` exists.
    pub crds_installed: bool,
    pub deployments: Vec<OperatorDeployment>,
    pub prometheuses: Vec<PrometheusInfo>,
    /// What that stack's own rules and ServiceMonitors already do of automon's.
    pub already: AlreadyThere,
}

/// What another stack's own objects already do that automon would do a second time beside it:
/// the Prometheus automon reuses would evaluate both rule sets (every alert twice, paged twice)
/// and scrape both ServiceMonitors (every series twice, every sum doubled). Found from
/// PrometheusRules and ServiceMonitors that are not automon's, anywhere in the cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlreadyThere {
    /// Alert names those rules define, each with the first PrometheusRule (`ns/name`) that does.
    pub alerts: BTreeMap<String, String>,
    /// The scrapes automon has that a ServiceMonitor of theirs already does (`kubelet`,
    /// `apiserver`, `kube-state-metrics`), each with that ServiceMonitor (`ns/name`).
    pub scrapes: BTreeMap<String, String>,
    /// Why they were not looked for (the user may not list them cluster-wide).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_checked: Option<String>,
    /// Their ServiceMonitors and PodMonitors: which targets their Prometheus keeps, and under
    /// which job and labels ([`monitors`]).
    #[serde(skip)]
    pub monitors: Vec<monitors::Monitor>,
    /// The job names of `scrapes` their ServiceMonitor's selector does not tell, read from the
    /// Services it selects.
    #[serde(skip)]
    pub jobs: BTreeMap<String, String>,
}

impl AlreadyThere {
    /// Adds what one PrometheusRule or ServiceMonitor that is not automon's does (pure).
    pub fn add(&mut self, o: &DynamicObject) {
        if crate::model::is_automons(o.metadata.labels.as_ref()) {
            return;
        }
        self.monitors.extend(monitors::Monitor::of(o));
        let name = format!(
            "{}/{}",
            o.metadata.namespace.as_deref().unwrap_or_default(),
            o.metadata.name.as_deref().unwrap_or_default()
        );
        let spec = o.data.get("spec");
        let groups = spec
            .and_then(|s| s.get("groups"))
            .and_then(|g| g.as_array());
        for rule in groups
            .into_iter()
            .flatten()
            .filter_map(|g| g.get("rules").and_then(|r| r.as_array()))
            .flatten()
        {
            if let Some(alert) = rule.get("alert").and_then(|a| a.as_str()) {
                self.alerts
                    .entry(alert.to_string())
                    .or_insert_with(|| name.clone());
            }
        }
        let selected = |key: &str, value: &str| {
            spec.and_then(|s| {
                s.pointer(&format!("/selector/matchLabels/{}", key.replace('/', "~1")))
            })
            .and_then(|v| v.as_str())
                == Some(value)
        };
        // The Services kube-prometheus and kube-prometheus-stack scrape these from: the
        // operator's kubelet Service, the API server's `kubernetes` Service.
        let scrape = if selected("k8s-app", "kubelet") || selected(NAME_LABEL, "kubelet") {
            Some("kubelet")
        } else if selected("component", "apiserver") {
            Some("apiserver")
        } else if selected(NAME_LABEL, "kube-state-metrics") {
            Some("kube-state-metrics")
        } else {
            None
        };
        if let Some(scrape) = scrape {
            self.scrapes.entry(scrape.to_string()).or_insert(name);
        }
    }
}

impl ExistingOperator {
    /// An operator counts as installed when its CRDs exist and something runs or uses it.
    pub fn is_installed(&self) -> bool {
        self.crds_installed && !(self.deployments.is_empty() && self.prometheuses.is_empty())
    }
}

/// The labels an object must carry to be selected by `existing`'s ServiceMonitor and rule
/// selectors: the union of their `matchLabels` (ServiceMonitors and rules are different objects,
/// but enable labels both alike). `matchExpressions` are not turned into labels; `status`
/// and `doctor` name selectors that still do not match.
pub fn labels_to_match(existing: &PrometheusInfo) -> BTreeMap<String, String> {
    [&existing.service_monitor_selector, &existing.rule_selector]
        .into_iter()
        .flatten()
        .filter_map(|s| s.match_labels.clone())
        .flatten()
        .collect()
}

/// Everything preflight gathered. Unreachable servers and rejected credentials are not in a
/// report: `Preflight::run` returns them as `ClusterError`s (exit 4/5).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub server: String,
    pub server_version: ServerVersion,
    /// How many distinct permissions were checked.
    pub permissions_checked: usize,
    /// The ones the server denied, sorted.
    pub missing: Vec<Permission>,
    /// Who the server says is asking (a SelfSubjectReview), when permissions are missing: the
    /// subject to bind the grant to. `None` when it could not tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub existing_operator: ExistingOperator,
    pub existing_exporter: ExistingExporter,
    /// The Secret keys the stack reads credentials from.
    pub secret_keys: secrets::SecretKeys,
    /// Whether the cluster serves the HTTPRoutes to apply.
    pub gateway_api: gateway::GatewayApi,
    /// What `prometheus.additionalScrapeConfigs` names, when it does and the key exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_configs: Option<scrape_configs::ScrapeConfigs>,
    /// The controller id automon's own operator runs with beside a release being replaced
    /// (`migrate`): another operator is then not reused, but left to its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beside_with: Option<String>,
}

/// What preflight found on node-exporter's port.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExistingExporter {
    /// Why the search was not done (the user may not list DaemonSets or Services).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_checked: Option<String>,
    /// The port the stack's exporter would listen on.
    pub port: u16,
    /// `nodeExporter.reuseExisting`: scrape a holder rather than refuse.
    pub reuse: bool,
    /// The DaemonSet that already serves the port on the nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<Holder>,
}

impl ExistingExporter {
    /// Free, scraped where it is, or (automon's own asked for) refused with the way out.
    pub fn assess(&self) -> Finding {
        let port = self.port;
        if let Some(why) = &self.not_checked {
            return Finding::new(
                "exporter",
                Level::Warn,
                format!("cannot tell whether another exporter serves port {port}"),
            )
            .with_details(vec![why.clone()]);
        }
        let Some(h) = &self.holder else {
            return Finding::new(
                "exporter",
                Level::Ok,
                format!("port {port} free for node-exporter"),
            );
        };
        let whose = if h.automon {
            format!("automon's stack in namespace {}", h.namespace)
        } else {
            "another stack".to_string()
        };
        let priority = h
            .priority_class
            .as_deref()
            .map(|p| format!(", priority class {p}"))
            .unwrap_or_default();
        let held = format!(
            "{} ({whose}{priority}) serves port {port} on the nodes",
            h.describe()
        );
        if self.reuse {
            Finding::new(
                "exporter",
                Level::Warn,
                format!("another exporter serves port {port}; enable will use it"),
            )
            .with_details(vec![format!(
                "{held}: automon uses it (scraping it unless that stack's Prometheus, which automon reuses, already does) and deploys no node-exporter of its own"
            )])
        } else {
            Finding::new(
                "exporter",
                Level::Fail,
                format!("port {port} is taken by another exporter"),
            )
            .with_details(vec![
                format!(
                    "{held}; automon's own (nodeExporter.reuseExisting=false) could not listen there"
                ),
                format!(
                    "fix: scrape it (--set nodeExporter.reuseExisting=true), or give automon's its own port (--set nodeExporter.port={})",
                    port.saturating_add(1)
                ),
            ])
        }
    }
}

/// The gathering half: talks to the cluster, decides nothing.
pub struct Preflight;

impl Preflight {
    /// Runs every check `enable` runs before its first write. Writes nothing (a
    /// SelfSubjectAccessReview is not stored).
    pub async fn run(cluster: &Cluster, objects: &[Object]) -> Result<Report, ClusterError> {
        let wanted = required_permissions(objects, &cluster.namespace);
        let permissions_checked = wanted.len();
        let exporter = crate::preflight::exporter::Wanted::of(objects);
        let secret_keys = secrets::wanted(objects);
        let routes = gateway::wanted(objects);
        let scrape_configs = scrape_configs::Wanted::of(objects);
        // All at once; each search counts only if its reads are allowed.
        let (info, missing, searched, holder, secret_keys, served, scrape_configs) = futures::join!(
            cluster.server_version(),
            denied(cluster, wanted),
            search_operator(cluster),
            crate::preflight::exporter::search(cluster, exporter.port),
            secrets::search(cluster, &secret_keys),
            gateway::search(cluster, &routes),
            scrape_configs::search(cluster, scrape_configs.as_ref())
        );
        let (info, missing) = (info?, missing?);
        // Only needed to name the subject of the grant; a server that cannot say leaves it open.
        let user = if missing.is_empty() {
            None
        } else {
            who_am_i(cluster).await
        };
        let existing_operator = match unreadable(&missing, OPERATOR_READS) {
            Some(why) => ExistingOperator {
                not_checked: Some(why),
                ..Default::default()
            },
            None => searched?,
        };
        let mut existing_exporter = ExistingExporter {
            port: exporter.port,
            reuse: exporter.reuse,
            ..Default::default()
        };
        match unreadable(&missing, EXPORTER_READS) {
            Some(why) => existing_exporter.not_checked = Some(why),
            None => existing_exporter.holder = holder?,
        }
        let mut gateway_api = gateway::GatewayApi {
            routes,
            ..Default::default()
        };
        match unreadable(&missing, &[("get", "customresourcedefinitions")]) {
            Some(why) => gateway_api.not_checked = Some(why),
            None => gateway_api.served = served?,
        }
        Ok(Report {
            server: cluster.target.server.clone(),
            server_version: ServerVersion {
                git_version: info.git_version,
                major: info.major,
                minor: info.minor,
            },
            permissions_checked,
            missing,
            user,
            existing_operator,
            existing_exporter,
            secret_keys: secret_keys?,
            gateway_api,
            scrape_configs: scrape_configs?,
            beside_with: controller_id(objects),
        })
    }
}

/// The `--controller-id` of the operator among `objects`, when it has one.
fn controller_id(objects: &[Object]) -> Option<String> {
    objects
        .iter()
        .filter(|o| crate::model::kind(o) == "Deployment")
        .flat_map(|o| {
            o.data["spec"]["template"]["spec"]["containers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|c| c["args"].as_array().cloned().unwrap_or_default())
        .find_map(|a| {
            a.as_str()
                .and_then(|a| a.strip_prefix("--controller-id="))
                .map(str::to_string)
        })
}

/// The user name the API server authenticated (a SelfSubjectReview, which every authenticated
/// user may create; it reflects `--as`). `None` when the server cannot say (before 1.28, or an
/// authenticator that does not report it): the grant then names a placeholder.
pub(crate) async fn who_am_i(cluster: &Cluster) -> Option<String> {
    let reviews: Api<SelfSubjectReview> = Api::all(cluster.client.clone());
    let answer = reviews
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .ok()?;
    answer.status?.user_info?.username.filter(|u| !u.is_empty())
}

/// Asks the server about every permission; returns the denied ones, sorted. A subresource is
/// written as RBAC writes it, `pods/portforward`.
///
/// Namespaced permissions are read off one SelfSubjectRulesReview per namespace: RBAC is
/// additive, so a permission a rule grants is granted. One no rule grants is asked again with a
/// SelfSubjectAccessReview when the review says its rules are incomplete (an authorizer that
/// cannot list rules: a webhook, the Node authorizer), and is missing otherwise. Cluster-scoped
/// permissions are always access reviews: a namespace's rules include what a RoleBinding grants
/// there, which is no permission at the cluster scope.
pub async fn denied(
    cluster: &Cluster,
    wanted: BTreeSet<Permission>,
) -> Result<Vec<Permission>, ClusterError> {
    let mut by_namespace: BTreeMap<String, Vec<Permission>> = BTreeMap::new();
    let mut ask = Vec::new();
    for p in wanted {
        match &p.namespace {
            Some(ns) => by_namespace.entry(ns.clone()).or_default().push(p),
            None => ask.push(p),
        }
    }
    // The cluster-scoped access reviews and the namespaces' rules reviews, all at once.
    let reviews: Api<SelfSubjectRulesReview> = Api::all(cluster.client.clone());
    let namespaced = futures::stream::iter(by_namespace)
        .map(|(namespace, permissions)| {
            let reviews = reviews.clone();
            async move {
                let review = SelfSubjectRulesReview {
                    spec: SelfSubjectRulesReviewSpec {
                        namespace: Some(namespace),
                    },
                    ..Default::default()
                };
                let answer = reviews
                    .create(&PostParams::default(), &review)
                    .await
                    .map_err(|e| cluster.target.classify(e))?;
                let (rules, incomplete) = answer
                    .status
                    .map_or((Vec::new(), true), |s| (s.resource_rules, s.incomplete));
                // What no rule grants: missing, or to ask when the review is incomplete.
                let ungranted: Vec<Permission> = permissions
                    .into_iter()
                    .filter(|p| !rules.iter().any(|r| rule_grants(r, p)))
                    .collect();
                Ok::<_, ClusterError>((ungranted, incomplete))
            }
        })
        .buffer_unordered(CONCURRENT_REVIEWS)
        .try_collect::<Vec<_>>();
    let (namespaced, mut missing) = futures::try_join!(namespaced, access_reviews(cluster, ask))?;
    let mut ask_again = Vec::new();
    for (ungranted, incomplete) in namespaced {
        if incomplete {
            ask_again.extend(ungranted);
        } else {
            missing.extend(ungranted);
        }
    }
    missing.extend(access_reviews(cluster, ask_again).await?);
    missing.sort();
    Ok(missing)
}

/// Whether an RBAC rule grants a permission, as RBAC matches (pure): the verb, the group and
/// the resource (`*`, the resource, `resource/subresource` or `*/subresource`), and no
/// resourceNames (automon asks for no object by name).
pub fn rule_grants(rule: &ResourceRule, p: &Permission) -> bool {
    let has = |list: Option<&Vec<String>>, want: &str| {
        list.is_some_and(|l| l.iter().any(|x| x == "*" || x == want))
    };
    let resource_matches = rule.resources.as_ref().is_some_and(|resources| {
        resources.iter().any(|r| {
            r == "*"
                || *r == p.resource
                || p.resource
                    .split_once('/')
                    .is_some_and(|(_, sub)| r.strip_prefix("*/") == Some(sub))
        })
    });
    has(Some(&rule.verbs), &p.verb)
        && has(rule.api_groups.as_ref(), &p.group)
        && resource_matches
        && rule.resource_names.as_ref().is_none_or(Vec::is_empty)
}

/// SelfSubjectAccessReviews for `wanted`, concurrently; the denied ones.
async fn access_reviews(
    cluster: &Cluster,
    wanted: Vec<Permission>,
) -> Result<Vec<Permission>, ClusterError> {
    let api: Api<SelfSubjectAccessReview> = Api::all(cluster.client.clone());
    let results: Vec<(Permission, bool)> = futures::stream::iter(wanted)
        .map(|p| {
            let api = api.clone();
            async move {
                let (resource, subresource) = match p.resource.split_once('/') {
                    Some((r, sub)) => (r, Some(sub.to_string())),
                    None => (p.resource.as_str(), None),
                };
                let review = SelfSubjectAccessReview {
                    spec: SelfSubjectAccessReviewSpec {
                        resource_attributes: Some(ResourceAttributes {
                            verb: Some(p.verb.clone()),
                            group: Some(p.group.clone()),
                            resource: Some(resource.to_string()),
                            subresource,
                            namespace: p.namespace.clone(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                let answer = api
                    .create(&PostParams::default(), &review)
                    .await
                    .map_err(|e| cluster.target.classify(e))?;
                let allowed = answer.status.is_some_and(|s| s.allowed);
                Ok::<_, ClusterError>((p, allowed))
            }
        })
        .buffer_unordered(CONCURRENT_REVIEWS)
        .try_collect()
        .await?;
    Ok(results
        .into_iter()
        .filter_map(|(p, allowed)| (!allowed).then_some(p))
        .collect())
}

/// The cluster-wide reads of the search for another operator: verb, resource.
const OPERATOR_READS: &[(&str, &str)] = &[
    ("get", "customresourcedefinitions"),
    ("list", "deployments"),
    ("list", "prometheuses"),
];
/// The cluster-wide reads of the search for another exporter.
const EXPORTER_READS: &[(&str, &str)] = &[("list", "daemonsets"), ("list", "services")];

/// Why a search cannot be done, when the user may not do its `reads` (they are listed as
/// missing already): the report says so rather than failing twice.
fn unreadable(missing: &[Permission], reads: &[(&str, &str)]) -> Option<String> {
    let may = |verb: &str, resource: &str| {
        !missing
            .iter()
            .any(|p| p.verb == verb && p.resource == resource && p.namespace.is_none())
    };
    let unreadable: Vec<String> = reads
        .iter()
        .filter(|(verb, resource)| !may(verb, resource))
        .map(|(verb, resource)| format!("{verb} {resource}"))
        .collect();
    (!unreadable.is_empty()).then(|| format!("may not {} cluster-wide", unreadable.join(", ")))
}

/// Looks for another Prometheus Operator: the `prometheuses` CRD, Deployments that run a
/// `prometheus-operator` image, are labelled `app.kubernetes.io/name=prometheus-operator` or
/// are named `*prometheus-operator*` (operators are labelled inconsistently; the image is the
/// most reliable sign), and `Prometheus` objects, all outside automon's inventory; the three
/// reads at once. Preflight discards it (see [`unreadable`]) when the user may not do them.
async fn search_operator(cluster: &Cluster) -> Result<ExistingOperator, ClusterError> {
    let classify = |e| cluster.target.classify(e);
    let mut found = ExistingOperator::default();
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
    let deployments: Api<Deployment> = Api::all(cluster.client.clone());
    let prometheuses = resources::by_group_kind("Prometheus.monitoring.coreos.com")
        .expect("Prometheus is a known type")
        .api(&cluster.client, None);
    let lp = ListParams::default();
    let (crd, deployments, prometheuses) = futures::try_join!(
        crds.get_metadata_opt(PROMETHEUS_CRD),
        deployments.list(&lp),
        async {
            match crate::cluster::list_paged(&prometheuses, &lp).await {
                Ok(items) => Ok(items),
                // No CRD, no such objects.
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
                Err(e) => Err(e),
            }
        }
    )
    .map_err(classify)?;
    found.crds_installed = crd.is_some();
    if !found.crds_installed {
        return Ok(found);
    }
    found.deployments = deployments
        .items
        .iter()
        .filter_map(operator_deployment)
        .collect();
    found.prometheuses = prometheuses.iter().filter_map(prometheus_info).collect();
    if found.is_installed() {
        found.already = search_already_there(cluster).await?;
    }
    Ok(found)
}

/// The PrometheusRules and ServiceMonitors of the cluster that are not automon's: what they
/// already do ([`AlreadyThere`]). A user who may not list them learns that nothing was left out.
async fn search_already_there(cluster: &Cluster) -> Result<AlreadyThere, ClusterError> {
    let mut already = AlreadyThere::default();
    let lp = ListParams::default();
    let mut forbidden = Vec::new();
    for group_kind in [
        "PrometheusRule.monitoring.coreos.com",
        "ServiceMonitor.monitoring.coreos.com",
        "PodMonitor.monitoring.coreos.com",
    ] {
        let known = resources::by_group_kind(group_kind).expect("a known type");
        match crate::cluster::list_paged(&known.api(&cluster.client, None), &lp).await {
            Ok(items) => items.iter().for_each(|o| already.add(o)),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(kube::Error::Api(s)) if s.code == 403 => forbidden.push(known.plural),
            Err(e) => return Err(cluster.target.classify(e)),
        }
    }
    if !forbidden.is_empty() {
        already.not_checked = Some(format!(
            "may not list {} cluster-wide",
            forbidden.join(", ")
        ));
    }
    service_jobs(cluster, &mut already).await;
    Ok(already)
}

/// The job names of the scrapes automon would leave out whose ServiceMonitor's selector does not
/// tell them: the job is then its Service's (a label `jobLabel` names, or its name), read from
/// the Services it selects. Best effort: a Service that cannot be read leaves the job untold.
async fn service_jobs(cluster: &Cluster, already: &mut AlreadyThere) {
    let untold: Vec<(String, monitors::Monitor)> = already
        .scrapes
        .iter()
        .filter_map(|(scrape, by)| {
            let m = already
                .monitors
                .iter()
                .find(|m| format!("{}/{}", m.namespace, m.name) == *by)?;
            let e = m.endpoints.first()?;
            m.job_from_selector(e)
                .is_none()
                .then(|| (scrape.clone(), m.clone()))
        })
        .collect();
    for (scrape, m) in untold {
        let query = crate::model::selector::to_query(&m.selector);
        let namespaces = match &m.namespaces {
            monitors::Namespaces::Names(names) => names.clone(),
            monitors::Namespaces::Any => vec![String::new()],
        };
        for ns in namespaces {
            let api: Api<k8s_openapi::api::core::v1::Service> = if ns.is_empty() {
                Api::all(cluster.client.clone())
            } else {
                Api::namespaced(cluster.client.clone(), &ns)
            };
            let Ok(list) = api
                .list_metadata(&ListParams::default().labels(&query))
                .await
            else {
                continue;
            };
            if let Some(service) = list.items.first() {
                let name = service.metadata.name.clone().unwrap_or_default();
                let labels = service.metadata.labels.clone().unwrap_or_default();
                let job = m.job(&m.endpoints[0], &name, &labels);
                already.jobs.insert(scrape, job);
                break;
            }
        }
    }
}

/// A Deployment that runs a Prometheus Operator and is not automon's (pure).
pub fn operator_deployment(d: &Deployment) -> Option<OperatorDeployment> {
    let meta = &d.metadata;
    if crate::model::is_automons(meta.labels.as_ref()) {
        return None;
    }
    let name = meta.name.clone().unwrap_or_default();
    let labelled = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(NAME_LABEL))
        .is_some_and(|v| v == OPERATOR_NAME);
    let containers = d
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    let images: Vec<&str> = containers
        .iter()
        .filter_map(|c| c.image.as_deref())
        .collect();
    let operator_image = images
        .iter()
        .find(|i| image_repository(i).ends_with(OPERATOR_NAME));
    if operator_image.is_none() && !labelled && !name.contains(OPERATOR_NAME) {
        return None;
    }
    let image = operator_image
        .or(images.first())
        .copied()
        .unwrap_or_default();
    Some(OperatorDeployment {
        namespace: meta.namespace.clone().unwrap_or_default(),
        name,
        image: image.to_string(),
        version: image_tag(image).map(str::to_string),
    })
}

/// `quay.io/prometheus-operator/prometheus-operator` of `…:v0.80.0@sha256:…`.
fn image_repository(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    match without_digest.rsplit_once(':') {
        // A colon after the last slash is a tag; before it, a registry port.
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => without_digest,
    }
}

/// The tag of an image reference, if it has one.
pub fn image_tag(image: &str) -> Option<&str> {
    let without_digest = image.split('@').next().unwrap_or(image);
    without_digest
        .rsplit_once(':')
        .map(|(_, tag)| tag)
        .filter(|tag| !tag.contains('/') && !tag.is_empty())
}

/// A `Prometheus` object that is not automon's, with its selectors (pure).
pub fn prometheus_info(p: &DynamicObject) -> Option<PrometheusInfo> {
    if crate::model::is_automons(p.metadata.labels.as_ref()) {
        return None;
    }
    let selector = |key: &str| -> Option<LabelSelector> {
        p.data
            .get("spec")
            .and_then(|s| s.get(key))
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    };
    Some(PrometheusInfo {
        namespace: p.metadata.namespace.clone().unwrap_or_default(),
        name: p.metadata.name.clone().unwrap_or_default(),
        service_monitor_selector: selector("serviceMonitorSelector"),
        service_monitor_namespace_selector: selector("serviceMonitorNamespaceSelector"),
        rule_selector: selector("ruleSelector"),
        rule_namespace_selector: selector("ruleNamespaceSelector"),
        pod_monitor_selector: selector("podMonitorSelector"),
        pod_monitor_namespace_selector: selector("podMonitorNamespaceSelector"),
    })
}

pub use crate::model::finding::{Finding, Level};

/// The server version against the supported window; managed clusters report minors like "36+".
pub fn assess_version(v: &ServerVersion) -> Finding {
    let check = |level, message: String| Finding::new("version", level, message);
    // Some distributions leave major/minor empty; gitVersion ("v1.36.3") still says it.
    let from_git = || {
        let mut parts = v.git_version.trim_start_matches('v').split('.');
        Some((parts.next()?.to_string(), parts.next()?.to_string()))
    };
    let (major, minor) = if v.minor.is_empty() {
        from_git().unwrap_or_default()
    } else {
        (v.major.clone(), v.minor.clone())
    };
    let Ok(minor_n) = minor.trim_end_matches('+').parse::<u32>() else {
        return check(
            Level::Warn,
            format!("cannot tell the server's version ({:?})", v.git_version),
        );
    };
    let (min, max) = (
        versions::MIN_KUBERNETES_MINOR,
        versions::MAX_TESTED_KUBERNETES_MINOR,
    );
    if major != "1" || minor_n < min {
        check(
            Level::Fail,
            format!(
                "Kubernetes {} is not supported (1.{min} or newer is)",
                v.git_version
            ),
        )
    } else if minor_n > max {
        check(
            Level::Warn,
            format!(
                "Kubernetes {} is newer than the newest tested (1.{max})",
                v.git_version
            ),
        )
    } else {
        check(Level::Ok, "version supported".to_string())
    }
}

/// What preflight comes to, for enable and for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// Permissions enable needs are missing.
    MissingPermissions,
    /// Another exporter serves node-exporter's port and automon's own is asked for.
    ExporterConflict,
    /// Another check failed (the server is unreachable or unsupported).
    Failed,
}

impl Report {
    /// The checks, in the order they are printed (pure).
    pub fn assess(&self) -> Vec<Finding> {
        let reachable = Finding::new("reachable", Level::Ok, "reachable".to_string());
        let permissions = if self.missing.is_empty() {
            Finding::new(
                "permissions",
                Level::Ok,
                format!("{} permissions", self.permissions_checked),
            )
        } else {
            Finding::new(
                "permissions",
                Level::Fail,
                format!(
                    "{} of {} permissions missing",
                    self.missing.len(),
                    self.permissions_checked
                ),
            )
            .with_details(missing_lines(&group_missing(&self.missing)))
        };
        let existing = &self.existing_operator;
        let operator = if let Some(why) = &existing.not_checked {
            Finding::new(
                "operator",
                Level::Warn,
                "cannot tell whether another Prometheus Operator is installed".to_string(),
            )
            .with_details(vec![why.clone()])
        } else if existing.is_installed() {
            let mut details: Vec<String> = existing
                .deployments
                .iter()
                .map(|d| {
                    format!(
                        "operator deployment {}/{} ({}), version {}",
                        d.namespace,
                        d.name,
                        d.image,
                        d.version.as_deref().unwrap_or("unknown")
                    )
                })
                .collect();
            details.extend(existing.prometheuses.iter().map(|p| {
                let labels = labels_to_match(p);
                let labels = if labels.is_empty() {
                    "selects every ServiceMonitor and rule (or none, if unset)".to_string()
                } else {
                    let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!("selects labels {}", l.join(","))
                };
                format!("prometheus {}/{}: {labels}", p.namespace, p.name)
            }));
            match &self.beside_with {
                Some(id) => Finding::new(
                    "operator",
                    Level::Ok,
                    format!(
                        "another Prometheus Operator is installed; automon runs its own beside it, answering only to controller id {id}"
                    ),
                ),
                None => Finding::new(
                    "operator",
                    Level::Warn,
                    "another Prometheus Operator is installed; enable will reuse it".to_string(),
                ),
            }
            .with_details(details)
        } else {
            Finding::new(
                "operator",
                Level::Ok,
                "no other Prometheus Operator".to_string(),
            )
        };
        let mut checks = vec![
            reachable,
            assess_version(&self.server_version),
            permissions,
            operator,
            self.existing_exporter.assess(),
        ];
        checks.extend(self.secret_keys.assess());
        checks.extend(self.gateway_api.assess());
        checks.extend(self.scrape_configs.as_ref().and_then(|s| s.assess()));
        checks
    }

    /// Whether enable may go ahead, and what stops it when not: missing permissions first,
    /// then another exporter on the port, then any other failed check.
    pub fn outcome(&self) -> Outcome {
        let checks = self.assess();
        let failed = |name| {
            checks
                .iter()
                .any(|c| c.check == name && c.level == Level::Fail)
        };
        if failed("permissions") {
            Outcome::MissingPermissions
        } else if failed("exporter") {
            Outcome::ExporterConflict
        } else if checks.iter().any(|c| c.level == Level::Fail) {
            Outcome::Failed
        } else {
            Outcome::Passed
        }
    }

    pub fn passed(&self) -> bool {
        self.outcome() == Outcome::Passed
    }

    /// `Preflight ✓ reachable  ✓ version supported  ✓ 41 permissions  ✓ no other Prometheus
    /// Operator`, then one line per detail (the missing verbs of each resource in each place,
    /// what was found), then what grants the missing permissions, ready to paste.
    pub fn human(&self, p: &Palette) -> String {
        let checks = self.assess();
        let mark = |l: Level| l.mark(p);
        let summary: Vec<String> = checks
            .iter()
            .map(|c| format!("{} {}", mark(c.level), c.message))
            .collect();
        let mut out = format!("Preflight {}\n", summary.join("  "));
        for c in &checks {
            for d in &c.details {
                out.push_str(&format!("  {} {d}\n", mark(c.level)));
            }
        }
        if !self.missing.is_empty() {
            out.push_str("To grant them, a cluster administrator runs:\n");
            out.push_str(&grant_snippet(&self.missing, self.user.as_deref()));
        }
        out
    }
}

/// Permissions the loop needs and the credentials lack: said at start, before any write, one
/// line per resource and scope with its verbs.
#[derive(Debug, thiserror::Error)]
#[error(
    "reconcile cannot run with these credentials; nothing was written. Missing:\n{}\n{}",
    grouped(missing),
    if *repair {
        "(--no-repair needs only the reads, Events and the Lease; an admin grants the rest with a Role or ClusterRole and a binding)"
    } else {
        "(an admin grants them with a Role or ClusterRole and a binding)"
    }
)]
pub struct Denied {
    pub missing: Vec<Permission>,
    pub repair: bool,
}

/// `  list, watch nodes cluster-wide`, one line per resource and scope.
fn grouped(missing: &[Permission]) -> String {
    let mut by: BTreeMap<(Option<&str>, String), Vec<&str>> = BTreeMap::new();
    for p in missing {
        by.entry((p.namespace.as_deref(), p.qualified_resource()))
            .or_default()
            .push(&p.verb);
    }
    by.into_iter()
        .map(|((ns, resource), verbs)| {
            let scope = match ns {
                Some(ns) => format!("in namespace {ns:?}"),
                None => "cluster-wide".into(),
            };
            format!("  {} {resource} {scope}", verbs.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config::Config, render};

    use crate::output::strip_ansi as strip;

    fn perm(verb: &str, group: &str, resource: &str, ns: Option<&str>) -> Permission {
        Permission::new(verb, group, resource, ns)
    }

    #[test]
    fn rbac_rules_grant_as_rbac_matches() {
        let rule = |verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]| {
            let strings = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            ResourceRule {
                verbs: strings(verbs),
                api_groups: Some(strings(groups)),
                resources: Some(strings(resources)),
                resource_names: (!names.is_empty()).then(|| strings(names)),
            }
        };
        let create_cm = perm("create", "", "configmaps", Some("automon"));
        let portforward = perm("create", "", "pods/portforward", Some("automon"));
        let prometheus = perm(
            "patch",
            "monitoring.coreos.com",
            "prometheuses",
            Some("automon"),
        );
        let cases = [
            // (rule, permission, granted)
            (rule(&["*"], &["*"], &["*"], &[]), &create_cm, true),
            (rule(&["*"], &["*"], &["*"], &[]), &portforward, true),
            (
                rule(&["create"], &[""], &["configmaps"], &[]),
                &create_cm,
                true,
            ),
            (
                rule(&["get", "list"], &[""], &["configmaps"], &[]),
                &create_cm,
                false,
            ),
            (
                rule(&["create"], &["apps"], &["configmaps"], &[]),
                &create_cm,
                false,
            ),
            // A resource does not grant its subresources, nor they it.
            (
                rule(&["create"], &[""], &["pods"], &[]),
                &portforward,
                false,
            ),
            (
                rule(&["create"], &[""], &["pods/portforward"], &[]),
                &portforward,
                true,
            ),
            (
                rule(&["create"], &[""], &["*/portforward"], &[]),
                &portforward,
                true,
            ),
            (
                rule(&["create"], &[""], &["pods/portforward"], &[]),
                &create_cm,
                false,
            ),
            // Named objects only: not a permission to create or list any.
            (
                rule(&["create"], &[""], &["configmaps"], &["automon"]),
                &create_cm,
                false,
            ),
            (
                rule(&["patch"], &["monitoring.coreos.com"], &["*"], &[]),
                &prometheus,
                true,
            ),
            (
                rule(&["patch"], &["*"], &["prometheuses"], &[]),
                &prometheus,
                true,
            ),
        ];
        for (i, (r, p, want)) in cases.iter().enumerate() {
            assert_eq!(rule_grants(r, p), *want, "case {i}: {r:?} for {p}");
        }
    }

    #[test]
    fn permissions_of_the_default_stack() {
        let objects = render::render(&Config::default()).objects;
        let perms = required_permissions(&objects, "automon");
        let ns = Some("automon");
        for want in [
            perm("create", "", "namespaces", None),
            perm("patch", "", "namespaces", None),
            perm("create", "apps", "daemonsets", ns),
            perm("watch", "apps", "daemonsets", ns),
            perm("watch", "apps", "deployments", ns),
            perm("watch", "apps", "statefulsets", ns),
            perm("delete", "apps", "deployments", ns),
            perm("list", "", "configmaps", ns),
            perm("create", "rbac.authorization.k8s.io", "clusterroles", None),
            perm(
                "create",
                "rbac.authorization.k8s.io",
                "clusterrolebindings",
                None,
            ),
            perm("create", MONITORING_GROUP, "prometheuses", ns),
            perm("patch", MONITORING_GROUP, "servicemonitors", ns),
            perm(
                "watch",
                "apiextensions.k8s.io",
                "customresourcedefinitions",
                None,
            ),
            perm(
                "create",
                "apiextensions.k8s.io",
                "customresourcedefinitions",
                None,
            ),
            perm("list", "apps", "deployments", None),
            perm("list", MONITORING_GROUP, "prometheuses", None),
        ] {
            assert!(perms.contains(&want), "missing {want}");
        }
        // Exact: no watch where enable does not wait, nothing cluster-wide that is namespaced
        // except preflight's own reads, and nothing in another namespace.
        assert!(!perms.contains(&perm("watch", "", "configmaps", ns)));
        assert!(!perms.contains(&perm("create", "apps", "daemonsets", None)));
        assert!(!perms.contains(&perm("update", "apps", "daemonsets", ns)));
        for p in &perms {
            assert!(p.namespace.is_none() || p.namespace.as_deref() == ns, "{p}");
        }
    }

    #[test]
    fn permissions_follow_the_namespace_and_deduplicate() {
        let config = Config::default().with_set("namespace=mon").unwrap();
        let objects = render::render(&config).objects;
        let perms = required_permissions(&objects, "mon");
        assert!(perms.contains(&perm("create", "apps", "daemonsets", Some("mon"))));
        assert!(
            !perms
                .iter()
                .any(|p| p.namespace.as_deref() == Some("automon"))
        );
        // Twice the objects, the same permissions.
        let doubled: Vec<Object> = objects.iter().chain(objects.iter()).cloned().collect();
        assert_eq!(required_permissions(&doubled, "mon"), perms);
    }

    #[test]
    fn only_crds_parent_revisions_and_discovery_for_no_objects() {
        let perms = required_permissions(&[], "automon");
        let crd = perms
            .iter()
            .filter(|p| p.resource == "customresourcedefinitions")
            .count();
        assert_eq!(crd, 6, "{perms:?}"); // get list create patch delete watch
        // CRDs, the parent ConfigMap, revision Secrets, the searches for another operator and
        // another exporter, the nodes' classes.
        assert_eq!(perms.len(), 6 + 3 + 3 + 2 + 2 + 1, "{perms:?}");
    }

    #[test]
    fn permissions_read_like_kubectl() {
        assert_eq!(
            perm("create", MONITORING_GROUP, "prometheuses", Some("automon")).to_string(),
            r#"create prometheuses.monitoring.coreos.com in namespace "automon""#
        );
        assert_eq!(
            perm("create", "", "namespaces", None).to_string(),
            "create namespaces cluster-wide"
        );
    }

    fn report() -> Report {
        Report {
            server: "https://x".into(),
            server_version: ServerVersion {
                git_version: "v1.36.3".into(),
                major: "1".into(),
                minor: "36".into(),
            },
            permissions_checked: 41,
            missing: Vec::new(),
            user: None,
            existing_operator: ExistingOperator::default(),
            existing_exporter: ExistingExporter {
                port: 9100,
                reuse: true,
                ..Default::default()
            },
            secret_keys: secrets::SecretKeys::default(),
            gateway_api: gateway::GatewayApi::default(),
            scrape_configs: None,
            beside_with: None,
        }
    }

    #[test]
    fn all_good_is_one_line() {
        let r = report();
        assert_eq!(r.outcome(), Outcome::Passed);
        let p = Palette::stderr();
        assert_eq!(
            strip(&r.human(&p)),
            "Preflight ✓ reachable  ✓ version supported  ✓ 41 permissions  ✓ no other Prometheus Operator  ✓ port 9100 free for node-exporter\n"
        );
    }

    #[test]
    fn missing_permissions_fail_with_one_line_per_resource_and_place() {
        let mut r = report();
        r.missing = vec![
            perm("create", "", "namespaces", None),
            perm("create", MONITORING_GROUP, "prometheuses", Some("automon")),
            perm("delete", MONITORING_GROUP, "prometheuses", Some("automon")),
            perm("get", MONITORING_GROUP, "prometheuses", Some("automon")),
        ];
        r.user = Some("alice".into());
        assert_eq!(r.outcome(), Outcome::MissingPermissions);
        let text = strip(&r.human(&Palette::stderr()));
        let want = r#"Preflight ✓ reachable  ✓ version supported  ✗ 4 of 41 permissions missing  ✓ no other Prometheus Operator  ✓ port 9100 free for node-exporter
  ✗ create               namespaces                          cluster-wide
  ✗ get, create, delete  prometheuses.monitoring.coreos.com  in namespace automon
To grant them, a cluster administrator runs:
# a Role needs its namespace: kubectl create namespace automon, if it is not there yet
kubectl apply -f - <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: automon-installer
rules:
- apiGroups:
  - ""
  resources:
  - namespaces
  verbs:
  - create
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: automon-installer
  namespace: automon
rules:
- apiGroups:
  - monitoring.coreos.com
  resources:
  - prometheuses
  verbs:
  - get
  - create
  - delete
EOF
kubectl create clusterrolebinding automon-installer --clusterrole=automon-installer --user=alice
kubectl create rolebinding automon-installer --namespace=automon --role=automon-installer --user=alice
"#;
        assert_eq!(text, want, "{text}");
    }

    #[test]
    fn denied_permissions_group_by_resource_and_namespace() {
        type Case<'a> = (&'a [Permission], &'a [&'a str]);
        let one = [perm("list", "apps", "deployments", None)];
        let mixed = [
            // Unsorted, with the same resource cluster-wide and in two namespaces.
            perm("delete", "apps", "deployments", Some("mon")),
            perm("list", "apps", "deployments", None),
            perm("create", "apps", "deployments", Some("mon")),
            perm("get", "apps", "deployments", Some("mon")),
            perm("patch", "apps", "deployments", Some("mon")),
            perm("get", "", "configmaps", Some("a")),
            perm("create", "", "pods/portforward", Some("mon")),
            perm("create", "", "namespaces", None),
            perm(
                "escalate",
                "rbac.authorization.k8s.io",
                "clusterroles",
                None,
            ),
            perm("create", "rbac.authorization.k8s.io", "clusterroles", None),
        ];
        let cases: [Case; 3] = [
            (&[], &[]),
            (&one, &["list  deployments.apps  cluster-wide"]),
            (
                &mixed,
                &[
                    "create, escalate  clusterroles.rbac.authorization.k8s.io  cluster-wide",
                    "list  deployments.apps  cluster-wide",
                    "create  namespaces  cluster-wide",
                    "get  configmaps  in namespace a",
                    "get, create, patch, delete    deployments.apps                   in namespace mon",
                    "create                        pods/portforward                   in namespace mon",
                ],
            ),
        ];
        for (i, (missing, want)) in cases.iter().enumerate() {
            let lines = missing_lines(&group_missing(missing));
            // Columns as computed; compare with the padding squeezed to two spaces.
            let squeeze = |l: &str| {
                l.split("  ")
                    .map(str::trim)
                    .filter(|w| !w.is_empty())
                    .collect::<Vec<_>>()
                    .join("  ")
            };
            let got: Vec<String> = lines.iter().map(|l| squeeze(l)).collect();
            let want: Vec<String> = want.iter().map(|l| squeeze(l)).collect();
            assert_eq!(got, want, "case {i}");
            // Aligned: every line's resource starts in the same column.
            let starts: BTreeSet<usize> = lines
                .iter()
                .zip(group_missing(missing))
                .filter_map(|(l, g)| l.find(&format!("  {}  ", g.qualified_resource())))
                .collect();
            assert!(starts.len() <= 1, "case {i}: {lines:#?}");
        }
    }

    /// The YAML documents between `<<'EOF'` and `EOF`.
    fn applied(snippet: &str) -> Vec<String> {
        let body = snippet
            .split_once("<<'EOF'\n")
            .and_then(|(_, rest)| rest.split_once("\nEOF\n"))
            .map(|(yaml, _)| yaml)
            .unwrap_or_else(|| panic!("no heredoc in {snippet}"));
        body.split("\n---\n").map(|d| format!("{d}\n")).collect()
    }

    /// Every permission the rules grant, as RBAC would match them.
    fn granted_by(rules: &[PolicyRule], namespace: Option<&str>) -> BTreeSet<Permission> {
        let mut out = BTreeSet::new();
        for r in rules {
            assert!(
                r.resource_names.is_none() && r.non_resource_urls.is_none(),
                "{r:?}"
            );
            for g in r.api_groups.iter().flatten() {
                for res in r.resources.iter().flatten() {
                    for v in &r.verbs {
                        assert_ne!(v, "*");
                        out.insert(perm(v, g, res, namespace));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn the_grant_is_valid_rbac_with_exactly_the_missing_rules() {
        let everything =
            required_permissions(&render::render(&Config::default()).objects, "automon");
        let mut with_subresource: Vec<Permission> = everything.iter().cloned().collect();
        with_subresource.push(perm("create", "", "pods/portforward", Some("automon")));
        with_subresource.push(perm("get", "", "services/proxy", Some("other")));
        with_subresource.sort();
        let cases: [Vec<Permission>; 4] = [
            with_subresource,
            vec![perm("create", "", "namespaces", None)],
            vec![perm("get", "", "configmaps", Some("automon"))],
            everything
                .into_iter()
                .filter(|p| p.namespace.is_none())
                .collect(),
        ];
        for (i, missing) in cases.iter().enumerate() {
            let snippet = grant_snippet(missing, Some("alice"));
            let mut granted = BTreeSet::new();
            let mut cluster_roles = 0;
            let mut namespaces = BTreeSet::new();
            for doc in applied(&snippet) {
                if doc.contains("\nkind: ClusterRole\n") {
                    let role: ClusterRole = serde_saphyr::from_str(&doc).expect(&doc);
                    assert_eq!(role.metadata.name.as_deref(), Some(INSTALLER_ROLE));
                    granted.extend(granted_by(role.rules.as_deref().unwrap_or_default(), None));
                    cluster_roles += 1;
                } else {
                    let role: Role = serde_saphyr::from_str(&doc).expect(&doc);
                    assert!(doc.contains("\nkind: Role\n"), "{doc}");
                    let ns = role.metadata.namespace.clone().expect("a Role's namespace");
                    granted.extend(granted_by(
                        role.rules.as_deref().unwrap_or_default(),
                        Some(&ns),
                    ));
                    namespaces.insert(ns);
                }
            }
            let want: BTreeSet<Permission> = missing.iter().cloned().collect();
            assert_eq!(
                granted, want,
                "case {i}: exactly the missing ones\n{snippet}"
            );
            let cluster_wide = missing.iter().any(|p| p.namespace.is_none());
            assert_eq!(cluster_roles, usize::from(cluster_wide), "case {i}");
            // One binding per role, to the user.
            let bindings: Vec<&str> = snippet
                .lines()
                .filter(|l| l.starts_with("kubectl create "))
                .collect();
            assert_eq!(
                bindings.len(),
                cluster_roles + namespaces.len(),
                "{snippet}"
            );
            assert!(
                bindings.iter().all(|b| b.ends_with(" --user=alice")),
                "{snippet}"
            );
            if cluster_wide {
                assert!(snippet.contains("kubectl create clusterrolebinding automon-installer --clusterrole=automon-installer --user=alice\n"), "{snippet}");
            }
            for ns in &namespaces {
                assert!(snippet.contains(&format!("kubectl create rolebinding automon-installer --namespace={ns} --role=automon-installer --user=alice\n")), "{snippet}");
            }
        }
    }

    #[test]
    fn the_grant_binds_who_the_server_named() {
        let missing = [perm("create", "", "namespaces", None)];
        let binding = |user: Option<&str>| {
            grant_snippet(&missing, user)
                .lines()
                .find(|l| l.starts_with("kubectl create clusterrolebinding"))
                .and_then(|l| l.rsplit_once(' ').map(|(_, s)| s.to_string()))
                .unwrap_or_default()
        };
        assert_eq!(
            binding(Some("alice@example.com")),
            "--user=alice@example.com"
        );
        assert_eq!(
            binding(Some("system:serviceaccount:ci:deployer")),
            "--serviceaccount=ci:deployer"
        );
        assert_eq!(
            binding(Some("https://issuer#me")),
            "--user='https://issuer#me'"
        );
        assert_eq!(binding(None), "--user=USER");
        assert!(grant_snippet(&missing, None).starts_with("# USER: "));
        assert!(!grant_snippet(&missing, Some("a")).contains("USER"));
    }

    #[test]
    fn a_user_without_any_permission_reads_a_line_per_resource_not_per_verb() {
        let everything =
            required_permissions(&render::render(&Config::default()).objects, "automon");
        let mut r = report();
        r.permissions_checked = everything.len();
        r.missing = everything.iter().cloned().collect();
        let text = strip(&r.human(&Palette::stderr()));
        let lines = text.lines().filter(|l| l.starts_with("  ✗ ")).count();
        let resources: BTreeSet<(Option<&str>, &str, &str)> = everything
            .iter()
            .map(|p| {
                (
                    p.namespace.as_deref(),
                    p.group.as_str(),
                    p.resource.as_str(),
                )
            })
            .collect();
        assert_eq!(lines, resources.len(), "{text}");
        assert!(
            lines * 3 < everything.len(),
            "{lines} lines for {} permissions",
            everything.len()
        );
        assert!(
            text.contains("  ✗ get, list, watch, create, patch, delete  customresourcedefinitions.apiextensions.k8s.io  cluster-wide\n")
                || text.lines().any(|l| l.starts_with("  ✗ get, list, watch, create, patch, delete")
                    && l.contains(" customresourcedefinitions.apiextensions.k8s.io ")
                    && l.ends_with("  cluster-wide")),
            "{text}"
        );
        // Cluster-wide lines first, then the namespace's.
        let scopes: Vec<bool> = text
            .lines()
            .filter(|l| l.starts_with("  ✗ "))
            .map(|l| l.ends_with("cluster-wide"))
            .collect();
        assert!(scopes.windows(2).all(|w| w[0] >= w[1]), "{text}");
    }

    #[test]
    fn version_window() {
        let level = |major: &str, minor: &str, git: &str| {
            assess_version(&ServerVersion {
                git_version: git.into(),
                major: major.into(),
                minor: minor.into(),
            })
            .level
        };
        assert_eq!(level("1", "36", "v1.36.3"), Level::Ok);
        assert_eq!(level("1", "31+", "v1.31.2-eks"), Level::Ok);
        assert_eq!(level("1", "30", "v1.30.0"), Level::Ok);
        assert_eq!(level("1", "29", "v1.29.9"), Level::Fail);
        assert_eq!(level("1", "40", "v1.40.0"), Level::Warn);
        assert_eq!(level("", "", "v1.35.1"), Level::Ok);
        assert_eq!(level("", "", "weird"), Level::Warn);
        let mut r = report();
        r.server_version.minor = "29".into();
        assert_eq!(r.outcome(), Outcome::Failed);
    }

    fn selector(labels: &[(&str, &str)]) -> Option<LabelSelector> {
        Some(LabelSelector {
            match_labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            match_expressions: None,
        })
    }

    #[test]
    fn a_taken_port_is_scraped_or_with_our_own_asked_for_refused_with_the_way_out() {
        let mut r = report();
        assert_eq!(r.outcome(), Outcome::Passed);
        assert!(strip(&r.human(&Palette::stderr())).contains("port 9100 free for node-exporter"));
        let d: k8s_openapi::api::apps::v1::DaemonSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "node-exporter", "namespace": "monitoring"},
            "spec": {"selector": {}, "template": {"spec": {"priorityClassName": "system-cluster-critical",
                "containers": [{"name": "x", "ports": [{"name": "https", "containerPort": 9100, "hostPort": 9100}]}]}}}
        }))
        .unwrap();
        r.existing_exporter.holder = crate::preflight::exporter::holder(&[d], 9100, "automon");
        assert_eq!(r.outcome(), Outcome::Passed, "scraped, not an error");
        let text = strip(&r.human(&Palette::stderr()));
        assert!(
            text.contains("another exporter serves port 9100; enable will use it"),
            "{text}"
        );
        assert!(
            text.contains("daemonset monitoring/node-exporter (another stack, priority class system-cluster-critical) serves port 9100"),
            "{text}"
        );
        r.existing_exporter.reuse = false;
        assert_eq!(r.outcome(), Outcome::ExporterConflict);
        let text = strip(&r.human(&Palette::stderr()));
        assert!(
            text.contains("port 9100 is taken by another exporter"),
            "{text}"
        );
        assert!(text.contains("--set nodeExporter.port=9101"), "{text}");
    }

    #[test]
    fn existing_operator_warns_and_names_what_to_match() {
        let mut r = report();
        r.existing_operator = ExistingOperator {
            not_checked: None,
            crds_installed: true,
            deployments: vec![OperatorDeployment {
                namespace: "monitoring".into(),
                name: "prometheus-operator".into(),
                image: "quay.io/prometheus-operator/prometheus-operator:v0.80.0".into(),
                version: Some("v0.80.0".into()),
            }],
            prometheuses: vec![PrometheusInfo {
                namespace: "monitoring".into(),
                name: "k8s".into(),
                service_monitor_selector: selector(&[("release", "kps")]),
                rule_selector: selector(&[("role", "alert-rules")]),
                ..Default::default()
            }],
            already: Default::default(),
        };
        assert_eq!(
            r.outcome(),
            Outcome::Passed,
            "an existing operator is reused, not an error"
        );
        let text = strip(&r.human(&Palette::stderr()));
        assert!(text.contains("! another Prometheus Operator"), "{text}");
        assert!(
            text.contains("operator deployment monitoring/prometheus-operator"),
            "{text}"
        );
        assert!(text.contains("version v0.80.0"), "{text}");
        assert!(
            text.contains("prometheus monitoring/k8s: selects labels release=kps,role=alert-rules"),
            "{text}"
        );
    }

    #[test]
    fn an_unchecked_operator_is_not_reported_absent() {
        let mut r = report();
        r.existing_operator.not_checked = Some("may not list deployments cluster-wide".into());
        let text = strip(&r.human(&Palette::stderr()));
        assert!(!text.contains("no other Prometheus Operator"), "{text}");
        assert!(
            text.contains("! cannot tell whether another Prometheus Operator"),
            "{text}"
        );
        assert!(
            text.contains("  ! may not list deployments cluster-wide\n"),
            "{text}"
        );
    }

    #[test]
    fn crds_alone_are_not_an_operator() {
        let e = ExistingOperator {
            crds_installed: true,
            ..Default::default()
        };
        assert!(!e.is_installed());
    }

    #[test]
    fn labels_to_match_unions_match_labels() {
        let p = PrometheusInfo {
            service_monitor_selector: selector(&[("release", "kps")]),
            rule_selector: selector(&[("release", "kps"), ("role", "rules")]),
            ..Default::default()
        };
        assert_eq!(
            labels_to_match(&p),
            BTreeMap::from([
                ("release".to_string(), "kps".to_string()),
                ("role".to_string(), "rules".to_string())
            ])
        );
        assert!(labels_to_match(&PrometheusInfo::default()).is_empty());
    }

    fn deployment(name: &str, labels: &[(&str, &str)], image: &str) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "ns", "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()},
            "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "image": image}]}}}
        }))
        .unwrap()
    }

    #[test]
    fn operator_deployments_are_found_by_image_label_or_name() {
        let by_image = operator_deployment(&deployment(
            "po",
            &[],
            "registry.local:5000/prometheus-operator/prometheus-operator:v0.80.0",
        ))
        .unwrap();
        assert_eq!(by_image.version.as_deref(), Some("v0.80.0"));
        assert!(
            operator_deployment(&deployment(
                "x",
                &[(NAME_LABEL, OPERATOR_NAME)],
                "mirror/op@sha256:abc"
            ))
            .is_some_and(|d| d.version.is_none())
        );
        assert!(
            operator_deployment(&deployment("kps-prometheus-operator", &[], "a/b:1")).is_some()
        );
        assert!(operator_deployment(&deployment("grafana", &[], "grafana/grafana:13")).is_none());
        // automon's own operator is not "another" one.
        assert!(
            operator_deployment(&deployment(
                "prometheus-operator",
                &[(
                    crate::model::names::PART_OF_LABEL,
                    crate::model::names::PART_OF
                )],
                "quay.io/prometheus-operator/prometheus-operator:v0.93.1"
            ))
            .is_none()
        );
    }

    #[test]
    fn image_parts() {
        assert_eq!(image_tag("localhost:5000/a/b"), None);
        assert_eq!(image_repository("localhost:5000/a/b"), "localhost:5000/a/b");
        assert_eq!(image_tag("a/b:v1@sha256:ff"), Some("v1"));
        assert_eq!(image_repository("a/b:v1@sha256:ff"), "a/b");
    }

    #[test]
    fn prometheus_selectors_are_read() {
        let p: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
            "metadata": {"name": "k8s", "namespace": "monitoring"},
            "spec": {"serviceMonitorSelector": {"matchLabels": {"release": "kps"}},
                     "ruleNamespaceSelector": {}}
        }))
        .unwrap();
        let info = prometheus_info(&p).unwrap();
        assert_eq!(
            info.service_monitor_selector,
            selector(&[("release", "kps")])
        );
        assert_eq!(info.rule_namespace_selector, Some(LabelSelector::default()));
        assert_eq!(info.rule_selector, None);
    }
}
