//! The typed configuration: defaults for everything, a YAML file (`-f`) and `--set path=value`
//! on top, and validation that names the key (and the line, for a file) before anything else
//! happens. The effective configuration is what `render` renders; what the cluster stores is
//! only the values the user gave ([`Values`]), so that a newer plugin's defaults reach it.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    path::Path,
};

use serde::{Deserialize, Serialize};

/// A configuration error, naming where the bad value came from.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {key}: {problem}")]
pub struct ConfigError {
    /// `automon.yaml line 12`, `--set prometheus.replicas=x`, ...
    pub origin: String,
    /// The dotted key, e.g. `alerts.highCpu.thresholdPercent`.
    pub key: String,
    pub problem: String,
}

/// The file given to `-f` cannot be read at all: its path, the system's reason, what to do.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {reason}; {}", path.display(), advice(reason))]
pub struct UnreadableFile {
    pub path: std::path::PathBuf,
    pub reason: std::io::Error,
}

fn advice(reason: &std::io::Error) -> &'static str {
    match reason.kind() {
        std::io::ErrorKind::NotFound => "check the path given to -f/--filename",
        std::io::ErrorKind::PermissionDenied => "make it readable, or copy it somewhere that is",
        std::io::ErrorKind::IsADirectory => "-f/--filename takes one YAML file, not a directory",
        _ => "give -f/--filename a readable YAML file",
    }
}

impl UnreadableFile {
    /// Reads the configuration file's text.
    pub fn read(path: &Path) -> Result<String, UnreadableFile> {
        std::fs::read_to_string(path).map_err(|reason| UnreadableFile {
            path: path.to_path_buf(),
            reason,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Config {
    /// The values this configuration was made of (file and `--set`, or the stored ones):
    /// what the ApplySet parent stores. Not a setting itself.
    #[serde(skip)]
    pub given: Values,
    /// Namespace of the stack; `-n` overrides it.
    pub namespace: String,
    pub images: Images,
    pub prometheus: Prometheus,
    pub alertmanager: Alertmanager,
    pub grafana: Grafana,
    pub node_exporter: NodeExporter,
    pub kube_state_metrics: KubeStateMetrics,
    pub operator: Operator,
    pub kubelet: Kubelet,
    pub api_server: ApiServer,
    pub alerts: Alerts,
    pub dashboards: Dashboards,
    /// Set by `migrate` while the stack runs beside the Helm release it replaces, until the
    /// release is removed: see [`Migration`]. Not a setting of the user's: absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration: Option<Migration>,
}

/// Beside a kube-prometheus-stack release that is being replaced (`kubectl automon migrate`):
/// automon runs its whole stack, none of the release's reused, and its operator reconciles only
/// the Prometheus and Alertmanager annotated with its controller id, which the release's
/// operator (that watches every namespace) leaves alone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Migration {
    /// The Helm release being replaced.
    pub release: String,
    /// Its namespace.
    pub namespace: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            given: Values::default(),
            namespace: crate::model::names::DEFAULT_NAMESPACE.into(),
            images: Images::default(),
            prometheus: Prometheus::default(),
            alertmanager: Alertmanager::default(),
            grafana: Grafana::default(),
            node_exporter: NodeExporter::default(),
            kube_state_metrics: KubeStateMetrics::default(),
            operator: Operator::default(),
            kubelet: Kubelet::default(),
            api_server: ApiServer::default(),
            alerts: Alerts::default(),
            dashboards: Dashboards::default(),
            migration: None,
        }
    }
}

/// Two configurations are equal when their settings are, whatever values they were made of
/// (a file that names every default is the defaults).
impl PartialEq for Config {
    fn eq(&self, other: &Config) -> bool {
        serde_json::to_value(self).ok() == serde_json::to_value(other).ok()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Images {
    /// A mirror registry that replaces the registry of every image (air-gapped clusters).
    pub registry: Option<String>,
    /// Names of image pull Secrets in the namespace, for a private mirror.
    pub pull_secrets: Vec<String>,
}

/// CPU and memory requests and limits of one container, as Kubernetes quantities.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Resources {
    pub requests: Amounts,
    pub limits: Amounts,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Amounts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
}

impl Resources {
    /// Requests for both; a memory limit (a CPU limit only throttles, so none by default).
    pub fn new(cpu: &str, memory: &str, memory_limit: &str) -> Self {
        Resources {
            requests: Amounts {
                cpu: Some(Quantity(cpu.into())),
                memory: Some(Quantity(memory.into())),
            },
            limits: Amounts {
                cpu: None,
                memory: Some(Quantity(memory_limit.into())),
            },
        }
    }

    /// These amounts with every one set in `explicit` replaced by it: what a user wrote wins,
    /// amount by amount, over what automon works out.
    pub fn overlaid(&self, explicit: &Resources) -> Resources {
        let pick = |ours: &Option<Quantity>, theirs: &Option<Quantity>| {
            theirs.clone().or_else(|| ours.clone())
        };
        let mut r = Resources {
            requests: Amounts {
                cpu: pick(&self.requests.cpu, &explicit.requests.cpu),
                memory: pick(&self.requests.memory, &explicit.requests.memory),
            },
            limits: Amounts {
                cpu: pick(&self.limits.cpu, &explicit.limits.cpu),
                memory: pick(&self.limits.memory, &explicit.limits.memory),
            },
        };
        checks::keep_within_limits(&mut r, explicit);
        r
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Prometheus {
    pub replicas: u32,
    /// Scrape targets split over this many Prometheus StatefulSets (the operator's sharding),
    /// or `auto`: as many as the sizing's series budget per shard asks for.
    pub shards: Shards,
    /// How long samples are kept (Prometheus duration: 15d, 12h).
    pub retention: PromDuration,
    /// Optional cap on the TSDB size (e.g. 40GB); oldest data goes first.
    pub retention_size: Option<String>,
    pub scrape_interval: PromDuration,
    pub evaluation_interval: PromDuration,
    pub storage: Storage,
    /// Requests and limits; any amount left out is sized from the cluster (see `sizing`).
    pub resources: Resources,
    /// Labels added to every series and alert leaving this Prometheus (e.g. cluster: prod).
    pub external_labels: BTreeMap<String, String>,
    /// Remote-write endpoints (remote_write.rs); none by default.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remote_write: Vec<RemoteWrite>,
    /// The Thanos sidecar (remote_write.rs); off by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thanos: Option<Thanos>,
    /// Which ServiceMonitors, PodMonitors, Probes, ScrapeConfigs and PrometheusRules it selects.
    pub select: Select,
    /// Reached from outside the cluster through an Ingress and/or an HTTPRoute
    /// (config/exposure.rs checks each).
    pub ingress: Ingress,
    pub http_route: HttpRoute,
    /// A key of a Secret in the stack's namespace holding a YAML list of Prometheus scrape
    /// configurations, appended to those the operator generates (`spec.additionalScrapeConfigs`).
    pub additional_scrape_configs: Option<SecretKeySelector>,
    /// Where its pods may run, as in a pod spec (config/placement.rs checks each).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affinity: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<serde_json::Value>,
}

/// Which scrape and rule objects the stack's Prometheus selects: by default automon's own in its
/// namespace. With `labels`, those labelled so (automon's own carry them too: a team's monitors
/// labelled `release: kps` for kube-prometheus-stack stay selected), less those carrying any of
/// `exclude`, in the stack's namespace and `namespaces` (`["*"]`: every namespace).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Select {
    /// Every object, whatever its labels (less `exclude`): as a kube-prometheus-stack whose
    /// selectors select everything.
    pub all: bool,
    pub labels: BTreeMap<String, String>,
    pub exclude: BTreeMap<String, String>,
    pub namespaces: Vec<String>,
}

/// A key of a Secret in the stack's namespace, named as Kubernetes' `SecretKeySelector` names
/// one (and kube-prometheus-stack's `additionalScrapeConfigsSecret`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct SecretKeySelector {
    pub name: String,
    pub key: String,
}

impl Select {
    /// Every namespace.
    pub const ALL: &'static str = "*";

    pub fn all_namespaces(&self) -> bool {
        self.namespaces.iter().any(|n| n == Self::ALL)
    }
}

impl Default for Prometheus {
    fn default() -> Self {
        Prometheus {
            replicas: 1,
            shards: Shards::Auto,
            retention: PromDuration("15d".into()),
            retention_size: None,
            scrape_interval: PromDuration("30s".into()),
            evaluation_interval: PromDuration("30s".into()),
            storage: Storage::default(),
            resources: Resources::default(),
            external_labels: BTreeMap::new(),
            remote_write: Vec::new(),
            thanos: None,
            select: Select::default(),
            ingress: Ingress::default(),
            http_route: HttpRoute::default(),
            additional_scrape_configs: None,
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            affinity: None,
            priority_class_name: None,
            topology_spread_constraints: Vec::new(),
        }
    }
}

/// How many Prometheus shards: a number, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shards {
    Auto,
    Count(u32),
}

impl Serialize for Shards {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Shards::Auto => s.serialize_str("auto"),
            Shards::Count(n) => s.serialize_u32(*n),
        }
    }
}

impl<'de> Deserialize<'de> for Shards {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bad = |what: &dyn fmt::Display| {
            serde::de::Error::custom(format!(
                "{what} is not a number of shards; use a number (1, 3) or auto"
            ))
        };
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Number(n) => match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) => Ok(Shards::Count(n)),
                None => Err(bad(&n)),
            },
            serde_json::Value::String(w) if w == "auto" => Ok(Shards::Auto),
            // `--set prometheus.shards=3` over `auto` arrives as the text "3".
            serde_json::Value::String(w) => w
                .parse()
                .map(Shards::Count)
                .map_err(|_| bad(&format!("{w:?}"))),
            other => Err(bad(&other)),
        }
    }
}

/// Where Prometheus keeps its data: an emptyDir unless a size is given, then a
/// PersistentVolumeClaim per replica.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Storage {
    pub size: Option<Quantity>,
    /// StorageClass of the claim; the cluster's default when unset.
    pub storage_class: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Alertmanager {
    pub replicas: u32,
    pub resources: Resources,
    /// Where alerts go. With none, alerts are only visible in Alertmanager's UI and `status`
    /// says so.
    pub receivers: Vec<Receiver>,
    pub route: Route,
    /// The default inhibitions: a node's critical alert mutes that node's warnings, a node
    /// that is down mutes its resource alerts.
    pub inhibitions: bool,
    /// Where it keeps silences and its notification log: an emptyDir (lost with the pod) unless
    /// a size is given, then a PersistentVolumeClaim per replica.
    pub storage: Storage,
    /// Reached from outside the cluster through an Ingress and/or an HTTPRoute
    /// (config/exposure.rs checks each).
    pub ingress: Ingress,
    pub http_route: HttpRoute,
    /// Where its pods may run, as in a pod spec (config/placement.rs checks each).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affinity: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<serde_json::Value>,
}

impl Default for Alertmanager {
    fn default() -> Self {
        Alertmanager {
            replicas: 1,
            resources: Resources::new("10m", "64Mi", "128Mi"),
            receivers: Vec::new(),
            route: Route::default(),
            inhibitions: true,
            storage: Storage::default(),
            ingress: Ingress::default(),
            http_route: HttpRoute::default(),
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            affinity: None,
            priority_class_name: None,
            topology_spread_constraints: Vec::new(),
        }
    }
}

/// The receiver alerts go to when none is configured: no integrations, so they stay visible in
/// Alertmanager's UI only. Reserved, so that the name always means "nothing leaves the cluster".
pub const UI_ONLY_RECEIVER: &str = "ui-only";

/// One Alertmanager receiver with at most one of each integration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Receiver {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookReceiver>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackReceiver>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailReceiver>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagerduty: Option<PagerdutyReceiver>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opsgenie: Option<OpsgenieReceiver>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msteams: Option<MsTeamsReceiver>,
}

/// One credential of a receiver: where it is given (the integration's key and the names of
/// its two fields) and how: a value (sealed at load) or a key of a Secret.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReceiverCredential<'a> {
    pub integration: &'static str,
    pub literal: &'static str,
    pub value: Option<&'a str>,
    pub reference: &'static str,
    pub secret: Option<&'a SecretKey>,
    /// A URL, checked as one; otherwise a token.
    pub url: bool,
}

impl<'a> ReceiverCredential<'a> {
    fn of(
        integration: &'static str,
        (literal, value): (&'static str, &'a Option<String>),
        (reference, secret): (&'static str, &'a Option<SecretKey>),
        url: bool,
    ) -> Self {
        ReceiverCredential {
            integration,
            literal,
            value: value.as_deref(),
            reference,
            secret: secret.as_ref(),
            url,
        }
    }
}

impl Receiver {
    /// Every credential this receiver's integrations need, in the order of its fields. An
    /// email's password is one only with `authUsername`: without, the SMTP server is reached
    /// without authentication.
    pub fn credentials(&self) -> Vec<ReceiverCredential<'_>> {
        let credential = ReceiverCredential::of;
        let mut out = Vec::new();
        if let Some(w) = &self.webhook {
            out.push(credential(
                "webhook",
                ("url", &w.url),
                ("urlSecret", &w.url_secret),
                true,
            ));
        }
        if let Some(s) = &self.slack {
            out.push(credential(
                "slack",
                ("apiUrl", &s.api_url),
                ("apiUrlSecret", &s.api_url_secret),
                true,
            ));
        }
        if let Some(e) = self.email.as_ref().filter(|e| e.auth_username.is_some()) {
            out.push(credential(
                "email",
                ("authPassword", &e.auth_password),
                ("authPasswordSecret", &e.auth_password_secret),
                false,
            ));
        }
        if let Some(p) = &self.pagerduty {
            out.push(credential(
                "pagerduty",
                ("routingKey", &p.routing_key),
                ("routingKeySecret", &p.routing_key_secret),
                false,
            ));
        }
        if let Some(o) = &self.opsgenie {
            out.push(credential(
                "opsgenie",
                ("apiKey", &o.api_key),
                ("apiKeySecret", &o.api_key_secret),
                false,
            ));
        }
        if let Some(t) = &self.msteams {
            out.push(credential(
                "msteams",
                ("webhookUrl", &t.webhook_url),
                ("webhookUrlSecret", &t.webhook_url_secret),
                true,
            ));
        }
        out
    }
}

/// A webhook: its URL carries its token, so it is a credential, given as `url` (sealed into
/// `automon-credentials` at load) or as `urlSecret`, a key of the user's own Secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookReceiver {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_secret: Option<SecretKey>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SlackReceiver {
    /// The incoming-webhook URL (its path is the token), or `apiUrlSecret` naming a Secret key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url_secret: Option<SecretKey>,
    pub channel: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EmailReceiver {
    pub to: String,
    pub from: String,
    /// host:port of the SMTP server.
    pub smarthost: String,
    /// SMTP authentication: the user, and its password as `authPassword` (sealed at load) or
    /// `authPasswordSecret`. Without, the server is reached without authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_password_secret: Option<SecretKey>,
    /// STARTTLS is required, as Alertmanager's default is.
    #[serde(default = "yes")]
    pub require_tls: bool,
    /// Accept any certificate of the server: only for a server on a trusted network.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// PagerDuty's Events API v2: its integration (routing) key is the credential.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PagerdutyReceiver {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key_secret: Option<SecretKey>,
    /// The events endpoint; PagerDuty's own (Alertmanager's default) when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Opsgenie's alert API: its API key is the credential.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OpsgenieReceiver {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret: Option<SecretKey>,
    /// The API's base URL (`https://api.eu.opsgenie.com/` in Europe); Opsgenie's own when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
}

/// Microsoft Teams through a Workflows webhook (Alertmanager's `msteamsv2`): the webhook URL
/// carries its signature, so it is the credential.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MsTeamsReceiver {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url_secret: Option<SecretKey>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Route {
    /// The receiver every alert goes to unless a more specific route matches; the first
    /// receiver when unset.
    pub receiver: Option<String>,
    /// Where the alerts of each severity go; unset, the default receiver.
    pub critical: Option<String>,
    pub warning: Option<String>,
    /// `ui-only` by default: an info alert is for the UI, not for a person.
    pub info: Option<String>,
    /// Alerts that go elsewhere than their severity says, tried in order before the severities.
    pub overrides: Vec<RouteOverride>,
    /// Where Watchdog (always firing while alerting works) goes: `ui-only` by default; a dead
    /// man's switch (a receiver that pages when the pings stop) gets it every minute.
    pub watchdog: String,
    pub group_by: Vec<String>,
    pub group_wait: PromDuration,
    pub group_interval: PromDuration,
    pub repeat_interval: PromDuration,
}

/// The alerts whose labels have every one of these values go to `receiver`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouteOverride {
    #[serde(rename = "match")]
    pub labels: BTreeMap<String, String>,
    pub receiver: String,
}

impl Default for Route {
    fn default() -> Self {
        Route {
            receiver: None,
            critical: None,
            warning: None,
            info: Some(UI_ONLY_RECEIVER.into()),
            overrides: Vec::new(),
            watchdog: UI_ONLY_RECEIVER.into(),
            group_by: vec!["alertname".into(), "node".into()],
            group_wait: PromDuration("30s".into()),
            group_interval: PromDuration("5m".into()),
            repeat_interval: PromDuration("4h".into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Grafana {
    pub enabled: bool,
    pub resources: Resources,
    pub sidecar_resources: Resources,
    /// Load dashboards (ConfigMaps labelled grafana_dashboard: "1") from every namespace, or
    /// only from the stack's own (which needs no cluster-wide read of ConfigMaps).
    pub dashboards_from_all_namespaces: bool,
    /// Reached from outside the cluster through an Ingress and/or an HTTPRoute
    /// (config/exposure.rs checks each).
    pub ingress: Ingress,
    pub http_route: HttpRoute,
    /// Where its pods may run, as in a pod spec (config/placement.rs checks each).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affinity: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<serde_json::Value>,
    /// A PersistentVolumeClaim for its database and plugins instead of an emptyDir.
    pub persistence: grafana::Persistence,
    /// Sign-in with an OAuth2 / OpenID Connect provider; none by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oidc: Option<grafana::Oidc>,
    /// Visitors who are not signed in, with a role (Viewer by default); off by default.
    pub anonymous: grafana::Anonymous,
    /// grafana.ini settings, section → key → value (config/grafana.rs checks them).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub ini: BTreeMap<String, serde_json::Value>,
    /// Datasources provisioned beside automon's Prometheus and Alertmanager.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub additional_data_sources: Vec<grafana::DataSource>,
}

impl Default for Grafana {
    fn default() -> Self {
        Grafana {
            enabled: true,
            resources: Resources::new("50m", "128Mi", "256Mi"),
            sidecar_resources: Resources::new("10m", "64Mi", "128Mi"),
            dashboards_from_all_namespaces: true,
            ingress: Ingress::default(),
            http_route: HttpRoute::default(),
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            affinity: None,
            priority_class_name: None,
            topology_spread_constraints: Vec::new(),
            persistence: grafana::Persistence::default(),
            oidc: None,
            anonymous: grafana::Anonymous::default(),
            ini: BTreeMap::new(),
            additional_data_sources: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct NodeExporter {
    /// `all` tolerates every taint (every node gets an exporter), `none` tolerates none.
    pub tolerations: TolerationPolicy,
    /// Nodes labelled `<excludeLabel>: "true"` get no exporter.
    pub exclude_label: String,
    /// The port node-exporter listens on in the host's network.
    pub port: u16,
    /// When another DaemonSet already serves `port` on the nodes (another stack's exporter),
    /// scrape that one instead of deploying a second; `false` asks for automon's own, and
    /// preflight refuses while the port is taken.
    pub reuse_existing: bool,
    pub resources: Resources,
}

impl Default for NodeExporter {
    fn default() -> Self {
        NodeExporter {
            tolerations: TolerationPolicy::All,
            exclude_label: "automon.io/exclude".into(),
            port: 9100,
            reuse_existing: true,
            resources: Resources::new("10m", "32Mi", "64Mi"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TolerationPolicy {
    All,
    None,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct KubeStateMetrics {
    /// Requests and limits; any amount left out is sized from the cluster (see `sizing`).
    pub resources: Resources,
    /// Where its pods may run, as in a pod spec (config/placement.rs checks each).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affinity: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<serde_json::Value>,
}

/// The prometheus-operator Deployment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Operator {
    /// Where its pods may run, as in a pod spec (config/placement.rs checks each).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affinity: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Kubelet {
    /// Scrape the kubelet's and cAdvisor's metrics.
    pub enabled: bool,
    /// Scrape the kubelet's `/metrics/probes` too (a series per container probe and result).
    pub probes: bool,
    /// Drop the kubelet and cAdvisor series no shipped dashboard or rule reads
    /// (`render::kubelet::CADVISOR_DROPPED`, `KUBELET_DROPPED`); `false` keeps them all.
    pub drop_unused_series: bool,
}

impl Default for Kubelet {
    fn default() -> Self {
        Kubelet {
            enabled: true,
            probes: false,
            drop_unused_series: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ApiServer {
    /// Scrape the Kubernetes API server's metrics (the `kubernetes` Service in `default`).
    /// Managed control planes (EKS, GKE, AKS) serve `/metrics` to authorised clients too.
    pub enabled: bool,
}

impl Default for ApiServer {
    fn default() -> Self {
        ApiServer { enabled: true }
    }
}

/// Alert thresholds and durations. Percentages are 0 < p <= 100.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Alerts {
    pub node_down: Alert,
    pub high_cpu: ThresholdAlert,
    pub high_memory: ThresholdAlert,
    /// Fires when free space falls below `thresholdPercent`.
    pub disk_space_low: ThresholdAlert,
    pub exporter_down: Alert,
    pub node_not_ready: Alert,
    pub filesystem_filling_up: FillingUpAlert,
    pub coverage_gap: Alert,
    pub watchdog: Alert,
    /// Whole groups of alerts beyond the nodes, each on by default.
    pub groups: AlertGroups,
}

/// The alert groups beyond the nodes (kubernetes-mixin's names and meanings, our rules). Their
/// thresholds and durations are fixed and documented in docs/runbooks.md; a group can
/// only be turned off as a whole (a single alert is silenced in Alertmanager).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct AlertGroups {
    /// Pods crash-looping or not ready, containers waiting, workloads short of replicas or
    /// stuck in a rollout, Jobs failed, CronJobs missed, HPAs at their maximum.
    pub workloads: bool,
    /// CPU throttling, memory near the limit, quotas, PersistentVolumes filling up, PVCs pending.
    pub resources: bool,
    /// The API server's errors and latency, client certificates expiring, kubelets down, nodes
    /// full of pods.
    pub kubernetes: bool,
    /// The monitoring stack itself: Prometheus, Alertmanager and the operator.
    pub stack: bool,
}

impl Default for AlertGroups {
    fn default() -> Self {
        AlertGroups {
            workloads: true,
            resources: true,
            kubernetes: true,
            stack: true,
        }
    }
}

impl Default for Alerts {
    fn default() -> Self {
        let alert = |for_: &str, severity| Alert {
            enabled: true,
            for_: PromDuration(for_.into()),
            severity,
        };
        let threshold = |percent, for_: &str| ThresholdAlert {
            enabled: true,
            threshold_percent: percent,
            for_: PromDuration(for_.into()),
            severity: Severity::Warning,
        };
        Alerts {
            node_down: alert("5m", Severity::Critical),
            high_cpu: threshold(80.0, "15m"),
            high_memory: threshold(80.0, "15m"),
            disk_space_low: threshold(20.0, "10m"),
            exporter_down: alert("5m", Severity::Warning),
            node_not_ready: alert("5m", Severity::Critical),
            filesystem_filling_up: FillingUpAlert {
                enabled: true,
                hours: 24,
                for_: PromDuration("1h".into()),
                severity: Severity::Warning,
            },
            coverage_gap: alert("10m", Severity::Warning),
            watchdog: alert("0m", Severity::None),
            groups: AlertGroups::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Alert {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(rename = "for")]
    pub for_: PromDuration,
    pub severity: Severity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ThresholdAlert {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub threshold_percent: f64,
    #[serde(rename = "for")]
    pub for_: PromDuration,
    pub severity: Severity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FillingUpAlert {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Fires when linear prediction says the filesystem is full within this many hours.
    pub hours: u32,
    #[serde(rename = "for")]
    pub for_: PromDuration,
    pub severity: Severity,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Info,
    /// For Watchdog: an always-firing alert that no one is paged for.
    None,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
            Severity::None => "none",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Dashboards {
    pub cluster_overview: bool,
    pub node_detail: bool,
    pub alerts_overview: bool,
    /// Cluster compute resources, namespace, workload, pod and persistent volumes, linked from
    /// cluster to pod and on to node detail.
    pub workloads: bool,
    /// The Kubernetes API server and the kubelets.
    pub kubernetes: bool,
    /// Prometheus' and Alertmanager's own health.
    pub stack: bool,
}

impl Default for Dashboards {
    fn default() -> Self {
        Dashboards {
            cluster_overview: true,
            node_detail: true,
            alerts_overview: true,
            workloads: true,
            kubernetes: true,
            stack: true,
        }
    }
}

/// A Prometheus duration such as `30s`, `5m`, `1h30m`, `15d`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PromDuration(pub String);

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "a duration such as 30s or 5m").map(PromDuration)
    }
}

/// A string-valued setting whose type error names what it is in the user's words (`expected
/// a duration such as 30s or 5m`), not `a string`.
fn text<'de, D: serde::Deserializer<'de>>(d: D, what: &'static str) -> Result<String, D::Error> {
    struct Text(&'static str);
    impl serde::de::Visitor<'_> for Text {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<String, E> {
            Ok(s.to_string())
        }
    }
    d.deserialize_str(Text(what))
}

impl PromDuration {
    /// The length in whole seconds, or why it is not a duration.
    pub fn seconds(&self) -> Result<u64, String> {
        self.millis().map(|ms| ms / 1000)
    }

    /// The length in milliseconds, or why Prometheus would not read it as a duration.
    pub fn millis(&self) -> Result<u64, String> {
        checks::prometheus_duration_millis(&self.0)
    }
}

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Kubernetes resource quantity such as `500m`, `1Gi`, `2`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Quantity(pub String);

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "a Kubernetes quantity such as 500m or 2Gi").map(Quantity)
    }
}

impl Config {
    /// The running binary's defaults with `values` over them, key by key as Helm merges values;
    /// errors name the key and its line in the values' YAML, from `origin`.
    pub fn from_values(values: Values, origin: &str) -> Result<Config, ConfigError> {
        let mut config = Config::from_yaml(&values.to_yaml(), origin)?;
        config.given = values;
        Ok(config)
    }

    /// Parses a configuration file's text over the defaults, key by key as Helm merges values
    /// (a file that sets only `prometheus.resources.requests.cpu` keeps every other default;
    /// lists replace); errors carry the key and line.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let file: serde_json::Value =
            serde_saphyr::from_str(text).map_err(|e| located(text, origin, e))?;
        let given = Values::from_tree(file.clone());
        let mut tree = serde_json::to_value(Config::default()).expect("defaults serialise");
        merge_values(&mut tree, file);
        let mut config = match serde_json::from_value::<Config>(tree) {
            Ok(config) => config,
            // The merged tree is wrong only where the file is: reading the file alone says
            // where (an unknown key, a wrong type), with its line.
            Err(merged) => match serde_saphyr::from_str::<Config>(text) {
                Ok(config) => config,
                Err(e) if !e.to_string().contains("missing field") => {
                    return Err(located(text, origin, e));
                }
                Err(_) => {
                    return Err(ConfigError {
                        origin: origin.to_string(),
                        key: "(document)".into(),
                        problem: user_words(&merged.to_string()),
                    });
                }
            },
        };
        config.given = given;
        config.validate(Some(origin), Some(text))?;
        Ok(config)
    }

    /// Applies one `--set path=value`; the value is read as YAML (`2`, `true`, `[a, b]`).
    pub fn with_set(&self, set: &str) -> Result<Config, ConfigError> {
        let (path, value) = parse_set(set)?;
        // Errors quote the flag, never a credential in it.
        let origin = format!("--set {}", credentials::redact_set(set));
        let err = |problem: String| {
            let unquoted = credentials::unquoted(path, problem.clone());
            ConfigError {
                // A value that may be a credential is not repeated in the origin either.
                origin: match unquoted == problem {
                    true => origin.clone(),
                    false => format!("--set {path}=(hidden)"),
                },
                key: path.into(),
                problem: unquoted,
            }
        };
        let mut tree = serde_json::to_value(self).map_err(|e| err(e.to_string()))?;
        let mut node = &mut tree;
        let parts: Vec<&str> = path.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let map = node
                .as_object_mut()
                .ok_or_else(|| err(format!("{} is not a section", parts[..i].join("."))))?;
            if i + 1 == parts.len() {
                let slot = map
                    .entry((*part).to_string())
                    .or_insert(serde_json::Value::Null);
                *slot = scalar_for(slot, value.clone());
                break;
            }
            node = map
                .entry((*part).to_string())
                .or_insert_with(|| serde_json::Value::Object(Default::default()));
            if node.is_null() {
                *node = serde_json::Value::Object(Default::default());
            }
        }
        let mut config: Config =
            serde_json::from_value(tree).map_err(|e| err(user_words(&e.to_string())))?;
        config.validate(Some(&origin), None)?;
        config.given = self.given.clone();
        config.given.set(path, value);
        Ok(config)
    }

    /// Range and format checks serde cannot express: the first that fails, at its key (and
    /// its line in `text`, the file it was read from).
    fn validate(&self, origin: Option<&str>, text: Option<&str>) -> Result<(), ConfigError> {
        self.first_invalid().map_err(|(key, problem)| {
            let line = text.and_then(|t| line_of_key(t, &key));
            ConfigError {
                origin: match (origin, line) {
                    (Some(o), Some(l)) => format!("{o} line {l}"),
                    (Some(o), None) => o.to_string(),
                    (None, _) => "configuration".into(),
                },
                key,
                problem,
            }
        })
    }

    /// Each kind of check in turn; the order decides which problem is reported first.
    fn first_invalid(&self) -> Result<(), Invalid> {
        self.check_durations()?;
        self.check_alert_thresholds()?;
        self.check_counts()?;
        self.check_names()?;
        self.check_sizes()?;
        checks::check(self)?;
        placement::check(self)?;
        exposure::check(self)?;
        grafana::check(&self.grafana)?;
        let receivers = self.check_receivers()?;
        remote_write::check(&self.prometheus)?;
        self.check_route(&receivers)
    }

    /// Every duration parses; scrape, evaluation and retention are longer than 0.
    fn check_durations(&self) -> Result<(), Invalid> {
        let durations = [
            ("prometheus.retention", &self.prometheus.retention),
            (
                "prometheus.scrapeInterval",
                &self.prometheus.scrape_interval,
            ),
            (
                "prometheus.evaluationInterval",
                &self.prometheus.evaluation_interval,
            ),
            (
                "alertmanager.route.groupWait",
                &self.alertmanager.route.group_wait,
            ),
            (
                "alertmanager.route.groupInterval",
                &self.alertmanager.route.group_interval,
            ),
            (
                "alertmanager.route.repeatInterval",
                &self.alertmanager.route.repeat_interval,
            ),
            ("alerts.nodeDown.for", &self.alerts.node_down.for_),
            ("alerts.highCpu.for", &self.alerts.high_cpu.for_),
            ("alerts.highMemory.for", &self.alerts.high_memory.for_),
            ("alerts.diskSpaceLow.for", &self.alerts.disk_space_low.for_),
            ("alerts.exporterDown.for", &self.alerts.exporter_down.for_),
            ("alerts.nodeNotReady.for", &self.alerts.node_not_ready.for_),
            (
                "alerts.filesystemFillingUp.for",
                &self.alerts.filesystem_filling_up.for_,
            ),
            ("alerts.coverageGap.for", &self.alerts.coverage_gap.for_),
            ("alerts.watchdog.for", &self.alerts.watchdog.for_),
        ];
        for (key, d) in durations {
            d.seconds().map_err(|p| invalid(key, p))?;
        }
        for (key, d) in [
            (
                "prometheus.scrapeInterval",
                &self.prometheus.scrape_interval,
            ),
            (
                "prometheus.evaluationInterval",
                &self.prometheus.evaluation_interval,
            ),
            ("prometheus.retention", &self.prometheus.retention),
        ] {
            if d.millis() == Ok(0) {
                return Err(invalid(key, format!("{d} must be longer than 0")));
            }
        }
        Ok(())
    }

    /// Percentages above 0 and at most 100; a filling-up prediction at least an hour ahead.
    fn check_alert_thresholds(&self) -> Result<(), Invalid> {
        for (key, a) in [
            ("alerts.highCpu.thresholdPercent", &self.alerts.high_cpu),
            (
                "alerts.highMemory.thresholdPercent",
                &self.alerts.high_memory,
            ),
            (
                "alerts.diskSpaceLow.thresholdPercent",
                &self.alerts.disk_space_low,
            ),
        ] {
            let p = a.threshold_percent;
            if !(p > 0.0 && p <= 100.0) {
                return Err(invalid(
                    key,
                    format!("{p} is out of range; a percentage must be above 0 and at most 100"),
                ));
            }
        }
        if self.alerts.filesystem_filling_up.hours == 0 {
            return Err(invalid(
                "alerts.filesystemFillingUp.hours",
                "must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Replicas, shards and the exporter's port within their ranges.
    fn check_counts(&self) -> Result<(), Invalid> {
        for (key, n) in [
            ("prometheus.replicas", self.prometheus.replicas),
            ("alertmanager.replicas", self.alertmanager.replicas),
        ] {
            if !(1..=10).contains(&n) {
                return Err(invalid(key, format!("{n} is out of range (1 to 10)")));
            }
        }
        if let Shards::Count(n) = self.prometheus.shards
            && !(1..=100).contains(&n)
        {
            return Err(invalid(
                "prometheus.shards",
                format!("{n} is out of range (1 to 100, or auto)"),
            ));
        }
        if self.node_exporter.port < 1024 {
            return Err(invalid(
                "nodeExporter.port",
                format!(
                    "{} is a privileged port; use 1024 or above (default 9100)",
                    self.node_exporter.port
                ),
            ));
        }
        Ok(())
    }

    /// The namespace and the exclude label are names Kubernetes accepts.
    fn check_names(&self) -> Result<(), Invalid> {
        checks::stack_namespace(&self.namespace).map_err(|p| invalid("namespace", p))?;
        checks::label_key(&self.node_exporter.exclude_label)
            .map_err(|p| invalid("nodeExporter.excludeLabel", p))?;
        self.check_select()?;
        self.check_additional_scrape_configs()
    }

    /// `prometheus.additionalScrapeConfigs`: a Secret name and key Kubernetes accepts (what
    /// the key holds is read by `enable`'s preflight, which can reach the cluster).
    fn check_additional_scrape_configs(&self) -> Result<(), Invalid> {
        let Some(s) = &self.prometheus.additional_scrape_configs else {
            return Ok(());
        };
        let key = "prometheus.additionalScrapeConfigs";
        credentials::check_secret_name(&format!("{key}.name"), &s.name)?;
        credentials::check_key(&format!("{key}.key"), &s.name, &s.key)
    }

    /// `prometheus.select`: label keys and values Kubernetes accepts, none of automon's own
    /// (they say what an object is, not whether it is selected), namespace names or `*`.
    fn check_select(&self) -> Result<(), Invalid> {
        let select = &self.prometheus.select;
        for (field, labels) in [("labels", &select.labels), ("exclude", &select.exclude)] {
            check_labels(&format!("prometheus.select.{field}"), labels)?;
            for k in labels.keys() {
                let key = format!("prometheus.select.{field}.{k}");
                if crate::model::names::OWN_LABELS.contains(&k.as_str()) {
                    return Err(invalid(
                        &key,
                        format!(
                            "{k} is a label automon sets on its own objects; select by a label of yours"
                        ),
                    ));
                }
            }
        }
        if let Some((k, _)) = select
            .labels
            .iter()
            .find(|(k, v)| select.exclude.get(*k) == Some(v))
        {
            return Err(invalid(
                &format!("prometheus.select.exclude.{k}"),
                "excludes every object that `labels` selects".to_string(),
            ));
        }
        if select.all && !select.labels.is_empty() {
            return Err(invalid(
                "prometheus.select.all",
                "selects every object whatever its labels: set it or prometheus.select.labels, not both".to_string(),
            ));
        }
        for n in &select.namespaces {
            if n != Select::ALL {
                checks::namespace_name(n).map_err(|p| {
                    invalid(
                        "prometheus.select.namespaces",
                        format!("{p} (or \"*\" for every namespace)"),
                    )
                })?;
            }
        }
        Ok(())
    }

    /// Every resource quantity, the volume's size and the retention size.
    fn check_sizes(&self) -> Result<(), Invalid> {
        let resources = [
            ("prometheus.resources", &self.prometheus.resources),
            ("alertmanager.resources", &self.alertmanager.resources),
            ("grafana.resources", &self.grafana.resources),
            ("grafana.sidecarResources", &self.grafana.sidecar_resources),
            ("nodeExporter.resources", &self.node_exporter.resources),
            (
                "kubeStateMetrics.resources",
                &self.kube_state_metrics.resources,
            ),
        ];
        for (key, r) in resources {
            checks::resources(key, r)?;
        }
        for (section, storage) in [
            ("prometheus", &self.prometheus.storage),
            ("alertmanager", &self.alertmanager.storage),
        ] {
            if let Some(size) = &storage.size {
                checks::volume_size(&size.0)
                    .map_err(|p| invalid(&format!("{section}.storage.size"), p))?;
            }
            if let Some(class) = storage.storage_class.as_deref() {
                check_storage_class(&format!("{section}.storage.storageClass"), class)?;
            }
        }
        if let Some(size) = &self.prometheus.retention_size {
            checks::prometheus_byte_size(size)
                .map_err(|p| invalid("prometheus.retentionSize", p))?;
        }
        Ok(())
    }

    /// Each receiver has a name of its own and an integration Alertmanager accepts; their
    /// names, for the route.
    fn check_receivers(&self) -> Result<BTreeSet<&str>, Invalid> {
        let mut names = BTreeSet::new();
        for (i, r) in self.alertmanager.receivers.iter().enumerate() {
            let key = format!("alertmanager.receivers[{i}]");
            if r.name.trim().is_empty() {
                return Err(invalid(&key, "a receiver needs a name".into()));
            }
            if r.name == UI_ONLY_RECEIVER {
                return Err(invalid(
                    &key,
                    format!(
                        "the receiver name {UI_ONLY_RECEIVER:?} is reserved for alerts that go nowhere but the UI; choose another"
                    ),
                ));
            }
            if !names.insert(r.name.as_str()) {
                return Err(invalid(
                    &key,
                    format!("receiver name {:?} is used twice", r.name),
                ));
            }
            check_receiver(&key, r)?;
        }
        Ok(names)
    }

    /// Every receiver a route names is one of `receivers` or `ui-only`; each override matches
    /// on label names Alertmanager accepts.
    fn check_route(&self, receivers: &BTreeSet<&str>) -> Result<(), Invalid> {
        let route = &self.alertmanager.route;
        let known = |key: &str, name: &str| {
            if name == UI_ONLY_RECEIVER || receivers.contains(name) {
                return Ok(());
            }
            let problem = match receivers.is_empty() {
                true => format!(
                    "{name:?} is not one of the receivers: none is configured; add it to alertmanager.receivers, or name {UI_ONLY_RECEIVER:?}"
                ),
                false => format!(
                    "{name:?} is not one of the receivers ({}) nor {UI_ONLY_RECEIVER:?}",
                    receivers.iter().copied().collect::<Vec<_>>().join(", ")
                ),
            };
            Err(invalid(key, problem))
        };
        let by_severity = [
            ("receiver", &route.receiver),
            ("critical", &route.critical),
            ("warning", &route.warning),
            ("info", &route.info),
        ];
        for (field, name) in by_severity {
            if let Some(name) = name {
                known(&format!("alertmanager.route.{field}"), name)?;
            }
        }
        known("alertmanager.route.watchdog", &route.watchdog)?;
        for (i, o) in route.overrides.iter().enumerate() {
            let key = format!("alertmanager.route.overrides[{i}]");
            if o.labels.is_empty() {
                return Err(invalid(
                    &format!("{key}.match"),
                    "no label to match, so it would take every alert; give at least one, e.g. match: {alertname: HighCPUUsage}".into(),
                ));
            }
            for label in o.labels.keys() {
                checks::prometheus_label_name(label)
                    .map_err(|p| invalid(&format!("{key}.match"), p))?;
            }
            known(&format!("{key}.receiver"), &o.receiver)?;
        }
        Ok(())
    }

    /// The effective configuration as YAML, every default included (docs/configuration.md
    /// shows it); what the cluster stores is only [`Config::given`].
    #[cfg(test)]
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).expect("configuration serialises")
    }
}

/// The key a check fails at and what is wrong there.
type Invalid = (String, String);

/// A StorageClass name, as the API server validates one.
fn check_storage_class(key: &str, class: &str) -> Result<(), Invalid> {
    checks::object_name("StorageClass", class, "standard")
        .map_err(|p| invalid(key, format!("{p}; `kubectl get storageclass` lists them")))
}

/// A serde-saphyr error in `text` (read from `origin`) as the user reads it: the line, the
/// dotted key there, and the problem in the user's words with the value it found.
fn located(text: &str, origin: &str, e: serde_saphyr::Error) -> ConfigError {
    let line = e.location().map(|l| l.line() as usize);
    let problem = e
        .to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string();
    // "line 3 column 15: invalid u32" -> "expected a whole number (0 or more)"
    let problem = user_words(
        &problem
            .split_once(": ")
            .filter(|(head, _)| head.starts_with("line "))
            .map_or(problem.clone(), |(_, p)| p.to_string()),
    );
    // serde-saphyr does not quote the value; the line does.
    let value = line
        .and_then(|l| text.lines().nth(l.checked_sub(1)?))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.split(" #").next().unwrap_or_default().trim())
        .filter(|v| !v.is_empty());
    let problem = match value {
        Some(v) if problem.starts_with("expected ") && !problem.contains(", got ") => {
            format!("{problem}, got {v}")
        }
        _ => problem,
    };
    let key = line
        .and_then(|l| key_path_at(text, l))
        .unwrap_or_else(|| "(document)".into());
    ConfigError {
        origin: match line {
            Some(l) => format!("{origin} line {l}"),
            None => origin.to_string(),
        },
        problem: credentials::unquoted(&key, problem),
        key,
    }
}

/// One `--set path=value`: the dotted path and the value read as YAML (nothing is null).
fn parse_set(set: &str) -> Result<(&str, serde_json::Value), ConfigError> {
    // Errors quote the flag, never a credential in it.
    let origin = || format!("--set {}", credentials::redact_set(set));
    let Some((path, raw)) = set.split_once('=') else {
        return Err(ConfigError {
            origin: origin(),
            key: set.into(),
            problem: "expected path=value, e.g. --set prometheus.replicas=2".into(),
        });
    };
    if raw.trim().is_empty() {
        return Ok((path, serde_json::Value::Null));
    }
    let value = serde_saphyr::from_str(raw).map_err(|e| {
        // Its excerpt of the value would show a credential that could not be read.
        let e = e.to_string();
        let e = match origin().contains("(hidden)") {
            true => e.lines().next().unwrap_or_default().to_string(),
            false => e,
        };
        ConfigError {
            origin: origin(),
            key: path.into(),
            problem: credentials::unquoted(path, format!("value is not valid YAML: {e}")),
        }
    })?;
    Ok((path, value))
}

fn invalid(key: &str, problem: String) -> Invalid {
    (key.to_string(), problem)
}

/// A receiver's integrations: what Alertmanager refuses (or, for a URL, fails at runtime on),
/// and none at all, which would drop every alert.
fn check_receiver(key: &str, r: &Receiver) -> Result<(), Invalid> {
    // Each credential: a value or a Secret key, exactly one; a value is a URL or a token.
    for c in r.credentials() {
        let k = format!("{key}.{}", c.integration);
        credentials::check_one_of(&k, (c.literal, c.value), (c.reference, c.secret))?;
        if let Some(value) = c.value {
            let checked = match c.url {
                true => check_url(value),
                false => check_token(value),
            };
            checked.map_err(|p| invalid(&format!("{k}.{}", c.literal), p))?;
        }
    }
    if let Some(email) = &r.email {
        for (field, address) in [("to", &email.to), ("from", &email.from)] {
            check_email(address).map_err(|p| invalid(&format!("{key}.email.{field}"), p))?;
        }
        check_host_port(&email.smarthost)
            .map_err(|p| invalid(&format!("{key}.email.smarthost"), p))?;
        match &email.auth_username {
            Some(user) if user.trim().is_empty() => {
                return Err(invalid(
                    &format!("{key}.email.authUsername"),
                    "empty; give the SMTP user, or leave authUsername out to send without authentication".into(),
                ));
            }
            None if email.auth_password.is_some() || email.auth_password_secret.is_some() => {
                return Err(invalid(
                    &format!("{key}.email.authUsername"),
                    "a password is given but no user; give authUsername too, or leave the password out to send without authentication".into(),
                ));
            }
            _ => {}
        }
    }
    let endpoints = [
        r.pagerduty.as_ref().and_then(|p| {
            let example = "https://events.pagerduty.com/v2/enqueue";
            Some(("pagerduty.url", p.url.as_deref()?, example))
        }),
        r.opsgenie.as_ref().and_then(|o| {
            let example = "https://api.eu.opsgenie.com/";
            Some(("opsgenie.apiUrl", o.api_url.as_deref()?, example))
        }),
    ];
    for (field, url, example) in endpoints.into_iter().flatten() {
        check_url_for(url, "Alertmanager", example, true)
            .map_err(|p| invalid(&format!("{key}.{field}"), p))?;
    }
    let integrations = [
        r.webhook.is_some(),
        r.slack.is_some(),
        r.email.is_some(),
        r.pagerduty.is_some(),
        r.opsgenie.is_some(),
        r.msteams.is_some(),
    ];
    if !integrations.contains(&true) {
        return Err(invalid(
            key,
            format!(
                "receiver {:?} has no webhook, slack, email, pagerduty, opsgenie or msteams; it would drop every alert",
                r.name
            ),
        ));
    }
    Ok(())
}

/// A key or password given as a value: something, and nothing around it (a line end copied
/// with it would be sent too). The error never repeats it.
fn check_token(s: &str) -> Result<(), String> {
    if s.is_empty() {
        Err("empty; give the value, or name the Secret key that holds it".into())
    } else if s.trim() != s {
        Err("the value starts or ends with spaces or a line break; give it without them".into())
    } else {
        Ok(())
    }
}

/// A type or parse error from serde or serde-saphyr in the user's words: `invalid type: string
/// "x", expected u32` is `expected a whole number (0 or more), got "x"`, never a Rust type name.
fn user_words(problem: &str) -> String {
    let mismatch = problem
        .strip_prefix("invalid type: ")
        .or_else(|| problem.strip_prefix("invalid value: "))
        .and_then(|rest| rest.rsplit_once(", expected "));
    if let Some((found, expected)) = mismatch {
        return format!(
            "expected {}, got {}",
            expected_words(expected),
            found_words(found)
        );
    }
    if problem.starts_with("cannot deserialize null") {
        return "expected a value, got nothing (leave the key out to keep the default)".into();
    }
    // serde-saphyr: `invalid u32`, `invalid boolean`, `expected string scalar`.
    let named = problem
        .strip_prefix("invalid ")
        .or_else(|| problem.strip_prefix("expected "));
    match named.map(expected_words) {
        Some(words) if Some(words.as_str()) != named => format!("expected {words}"),
        _ => problem.to_string(),
    }
}

/// What serde expected (`u32`, `a boolean`, `struct Prometheus`), in words.
fn expected_words(t: &str) -> String {
    match t.trim() {
        "u8" => "a whole number from 0 to 255",
        "u16" => "a whole number from 0 to 65535",
        "u32" | "u64" | "u128" | "usize" => "a whole number (0 or more)",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "f32" | "f64" | "floating point" => "a number",
        "a boolean" | "boolean" | "bool" => "true or false",
        "a string" | "a borrowed string" | "string scalar" | "string" => "a single value",
        "a sequence" | "sequence start" | "sequence" => "a list",
        "a map" | "mapping start" | "map" => "a section (keys indented under it)",
        t if t.starts_with("struct ") => "a section (keys indented under it)",
        t => return t.to_string(),
    }
    .to_string()
}

/// What serde found (`integer `3``, `string "x"`, `sequence`), in words.
fn found_words(v: &str) -> String {
    let v = v.trim();
    for prefix in ["integer ", "floating point ", "boolean ", "character "] {
        if let Some(value) = v.strip_prefix(prefix) {
            return value.trim_matches('`').to_string();
        }
    }
    if let Some(quoted) = v.strip_prefix("string ") {
        return quoted.to_string();
    }
    match v {
        "sequence" => "a list",
        "map" => "a section",
        "null" | "unit value" => "nothing",
        other => other,
    }
    .to_string()
}

/// Helm's rule for values: maps merge key by key, anything else replaces, and a null leaves a
/// section as it is.
fn merge_values(base: &mut serde_json::Value, over: serde_json::Value) {
    use serde_json::Value;
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(slot) => merge_values(slot, value),
                    // Keys the defaults leave out are unset optional strings or sections.
                    None => {
                        base.insert(key, scalar_for(&Value::Null, value));
                    }
                }
            }
        }
        (Value::Object(_), Value::Null) => {}
        (slot, over) => *slot = scalar_for(slot, over),
    }
}

/// `over`, read as YAML reads a scalar for a string field: `cpu: 1` or `--set
/// prometheus.storage.size=10` mean the string where a string (or an unset optional one) is.
fn scalar_for(existing: &serde_json::Value, over: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match (existing, over) {
        (Value::String(_) | Value::Null, Value::Number(n)) => Value::String(n.to_string()),
        (Value::String(_) | Value::Null, Value::Bool(b)) => Value::String(b.to_string()),
        (_, over) => over,
    }
}

/// An absolute http(s) URL with a host, as Alertmanager's webhook and Slack configurations need.
/// The URL is a credential (its path or query is the token): the error never repeats it.
fn check_url(s: &str) -> Result<(), String> {
    check_url_for(s, "Alertmanager", "https://hooks.example.com/alerts", false)
}

/// An absolute http(s) URL with a host that `client` can send to; `example` is one that works.
/// `show`: the error may quote the URL (it is no credential).
fn check_url_for(s: &str, client: &str, example: &str, show: bool) -> Result<(), String> {
    let shown = if show {
        format!("{s:?}")
    } else {
        "the URL".to_string()
    };
    let bad = |why: &str| {
        format!("{shown} is not a URL {client} can send to ({why}); use e.g. {example}")
    };
    if s.trim() != s || s.contains(char::is_whitespace) {
        return Err(bad("it contains spaces"));
    }
    let uri: http::Uri = s.parse().map_err(|_| bad("it does not parse"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => return Err(bad(&format!("scheme {other:?}, not http or https"))),
        None => return Err(bad("no http:// or https://")),
    }
    match uri.host() {
        Some(h) if !h.is_empty() => Ok(()),
        _ => Err(bad("no host")),
    }
}

fn check_email(s: &str) -> Result<(), String> {
    match s.split_once('@') {
        Some((user, domain))
            if !user.is_empty() && !domain.is_empty() && !s.contains(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => Err(format!("{s:?} is not an email address")),
    }
}

/// `host:port`, as Alertmanager's `smarthost`.
fn check_host_port(s: &str) -> Result<(), String> {
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(())
        }
        _ => Err(format!(
            "{s:?} is not host:port; use e.g. smtp.example.com:587"
        )),
    }
}

/// A label value: empty, or at most 63 characters, alphanumeric at both ends, `-`, `_` and `.`
/// between.
fn is_label_value(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= 63
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
}

/// Labels as Kubernetes accepts them (keys and values), each at `<at>.<key>`.
fn check_labels(at: &str, labels: &BTreeMap<String, String>) -> Result<(), Invalid> {
    for (k, v) in labels {
        let key = format!("{at}.{k}");
        checks::label_key(k).map_err(|p| invalid(&key, p))?;
        if !is_label_value(v) {
            return Err(invalid(
                &key,
                format!(
                    "{v:?} is not a valid label value (empty, or at most 63 letters, digits, '-', '_' or '.', alphanumeric at both ends, e.g. prod)"
                ),
            ));
        }
    }
    Ok(())
}

fn is_label_key(s: &str) -> bool {
    checks::label_key_fault(s).is_none()
}

/// The dotted key of a block-style YAML line, from the indentation of the lines above it.
fn key_path_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let target = lines.get(line.checked_sub(1)?)?;
    let indent_of = |l: &str| l.len() - l.trim_start().len();
    let key_of = |l: &str| {
        let t = l.trim_start().trim_start_matches("- ");
        t.split_once(':')
            .map(|(k, _)| k.trim().trim_matches('"').to_string())
    };
    let mut path = vec![key_of(target)?];
    let mut indent = indent_of(target);
    for l in lines[..line - 1].iter().rev() {
        if l.trim().is_empty() || l.trim_start().starts_with('#') {
            continue;
        }
        let i = indent_of(l);
        if i < indent {
            if let Some(k) = key_of(l) {
                path.push(k);
            }
            indent = i;
            if i == 0 {
                break;
            }
        }
    }
    path.reverse();
    Some(path.join("."))
}

/// The 1-based line where a dotted key is set in block-style YAML, if it is.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    let key = key.split('[').next().unwrap_or(key);
    (1..=text.lines().count()).find(|&n| key_path_at(text, n).as_deref() == Some(key))
}

mod checks;
pub mod credentials;
pub mod exposure;
pub mod grafana;
pub mod placement;
mod remote_write;
pub mod sizing;
pub mod values;
pub use credentials::SecretKey;
pub use exposure::{HttpRoute, Ingress};
pub use remote_write::{CLUSTER_LABEL, RemoteWrite, Thanos};
pub use values::Values;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_spec() {
        let c = Config::default();
        c.validate(None, None).unwrap();
        assert_eq!(c.namespace, "automon");
        assert_eq!(c.alerts.high_cpu.threshold_percent, 80.0);
        assert_eq!(c.alerts.high_memory.threshold_percent, 80.0);
        assert_eq!(c.alerts.disk_space_low.threshold_percent, 20.0);
        assert_eq!(c.node_exporter.tolerations, TolerationPolicy::All);
    }

    #[test]
    fn file_overrides_only_what_it_names() {
        let c = Config::from_yaml(
            "prometheus:\n  retention: 30d\nalerts:\n  highCpu:\n    thresholdPercent: 90\n    for: 10m\n    severity: critical\n",
            "a.yaml",
        )
        .unwrap();
        assert_eq!(c.prometheus.retention.0, "30d");
        assert_eq!(c.prometheus.scrape_interval.0, "30s");
        assert_eq!(c.alerts.high_cpu.threshold_percent, 90.0);
        assert_eq!(c.alerts.high_memory.threshold_percent, 80.0);
    }

    #[test]
    fn file_errors_name_key_and_line() {
        let cases = [
            (
                "prometheus:\n  retenton: 30d\n",
                "a.yaml line 2",
                "prometheus.retenton",
                "unknown field",
            ),
            (
                "prometheus:\n  replicas: many\n",
                "a.yaml line 2",
                "prometheus.replicas",
                "expected a whole number (0 or more), got many",
            ),
            (
                "alerts:\n  highCpu:\n    thresholdPercent: 180\n    for: 5m\n    severity: warning\n",
                "a.yaml line 3",
                "alerts.highCpu.thresholdPercent",
                "out of range",
            ),
            (
                "alerts:\n  nodeDown:\n    for: -5m\n    severity: critical\n",
                "a.yaml line 3",
                "alerts.nodeDown.for",
                "negative",
            ),
            (
                "nodeExporter:\n  tolerations: some\n",
                "a.yaml line 2",
                "nodeExporter.tolerations",
                "unknown variant",
            ),
            (
                "prometheus:\n  resources:\n    requests: {cpu: lots}\n    limits: {}\n",
                "a.yaml",
                "prometheus.resources.requests.cpu",
                "quantity",
            ),
        ];
        for (text, origin, key, problem) in cases {
            let e = Config::from_yaml(text, "a.yaml").unwrap_err();
            assert!(
                e.origin.starts_with(origin),
                "{text}: origin {:?}",
                e.origin
            );
            assert_eq!(e.key, key, "{text}");
            assert!(e.problem.contains(problem), "{text}: {e}");
        }
    }

    #[test]
    fn set_overrides_and_errors_name_the_flag() {
        let c = Config::default()
            .with_set("prometheus.replicas=2")
            .unwrap()
            .with_set("alerts.highCpu.thresholdPercent=95")
            .unwrap()
            .with_set("images.registry=mirror.local:5000")
            .unwrap()
            .with_set("nodeExporter.tolerations=none")
            .unwrap();
        assert_eq!(c.prometheus.replicas, 2);
        assert_eq!(c.alerts.high_cpu.threshold_percent, 95.0);
        assert_eq!(c.images.registry.as_deref(), Some("mirror.local:5000"));
        assert_eq!(c.node_exporter.tolerations, TolerationPolicy::None);

        let e = Config::default()
            .with_set("prometheus.replica=2")
            .unwrap_err();
        assert_eq!(e.origin, "--set prometheus.replica=2");
        assert!(e.problem.contains("unknown field"), "{e}");
        let e = Config::default()
            .with_set("alerts.diskSpaceLow.thresholdPercent=180")
            .unwrap_err();
        assert_eq!(e.key, "alerts.diskSpaceLow.thresholdPercent");
        assert!(e.problem.contains("out of range"), "{e}");
        let e = Config::default()
            .with_set("prometheus.replicas")
            .unwrap_err();
        assert!(e.problem.contains("path=value"), "{e}");
    }

    #[test]
    fn wrong_types_are_named_in_the_users_words() {
        let cases = [
            (
                "prometheus.replicas=many",
                "expected a whole number (0 or more), got \"many\"",
            ),
            (
                "prometheus.replicas=-1",
                "expected a whole number (0 or more), got -1",
            ),
            (
                "prometheus.replicas=1.5",
                "expected a whole number (0 or more), got 1.5",
            ),
            (
                "prometheus.replicas=",
                "expected a whole number (0 or more), got nothing",
            ),
            (
                "nodeExporter.port=99999",
                "expected a whole number from 0 to 65535, got 99999",
            ),
            (
                "alerts.highCpu.thresholdPercent=lots",
                "expected a number, got \"lots\"",
            ),
            (
                "dashboards.stack=maybe",
                "expected true or false, got \"maybe\"",
            ),
            ("grafana.enabled=3", "expected true or false, got 3"),
            (
                "prometheus.retention=[30d]",
                "expected a duration such as 30s or 5m, got a list",
            ),
            (
                "prometheus.resources.requests.cpu=[1]",
                "expected a Kubernetes quantity such as 500m or 2Gi, got a list",
            ),
            ("images.registry=[a]", "expected a single value, got a list"),
            (
                "prometheus=3",
                "expected a section (keys indented under it), got 3",
            ),
        ];
        for (set, problem) in cases {
            let e = Config::default().with_set(set).unwrap_err();
            assert_eq!(e.key, set.split('=').next().unwrap(), "{set}");
            assert_eq!(e.problem, problem, "{set}");
        }
    }

    #[test]
    fn wrong_types_in_a_file_are_named_in_the_users_words() {
        let cases = [
            (
                "prometheus:\n  replicas: 1.5\n",
                "prometheus.replicas",
                "expected a whole number (0 or more), got 1.5",
            ),
            (
                "nodeExporter:\n  port: 70000  # too high\n",
                "nodeExporter.port",
                "expected a whole number from 0 to 65535, got 70000",
            ),
            (
                "dashboards:\n  stack: maybe\n",
                "dashboards.stack",
                "expected true or false, got maybe",
            ),
            (
                "alerts:\n  highCpu:\n    thresholdPercent: lots\n",
                "alerts.highCpu.thresholdPercent",
                "expected a number, got lots",
            ),
            (
                "prometheus: 3\n",
                "prometheus",
                "expected a section (keys indented under it), got 3",
            ),
            (
                "alertmanager:\n  receivers: 3\n",
                "alertmanager.receivers",
                "expected a list, got 3",
            ),
            (
                "prometheus:\n  retention: ~\n",
                "prometheus.retention",
                "expected a value, got nothing (leave the key out to keep the default)",
            ),
        ];
        for (text, key, problem) in cases {
            let e = Config::from_yaml(text, "a.yaml").unwrap_err();
            assert_eq!(
                (e.key.as_str(), e.problem.as_str()),
                (key, problem),
                "{text}"
            );
        }
    }

    #[test]
    fn an_unreadable_file_is_named_with_the_systems_reason() {
        let e = UnreadableFile::read(Path::new("/nonexistent.yaml")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot read /nonexistent.yaml: No such file or directory (os error 2); \
             check the path given to -f/--filename"
        );
        let dir = std::env::temp_dir();
        let e = UnreadableFile::read(&dir).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
    }

    #[test]
    fn receivers_must_lead_somewhere() {
        let e = Config::default()
            .with_set("alertmanager.receivers=[{name: team}]")
            .unwrap_err();
        assert!(e.problem.contains("no webhook"), "{e}");
        let e = Config::default()
            .with_set("alertmanager.route.receiver=nobody")
            .unwrap_err();
        assert!(e.problem.contains("not one of the receivers"), "{e}");
        let c = Config::default()
            .with_set("alertmanager.receivers=[{name: team, webhook: {url: 'http://hook.example/alerts'}}]")
            .unwrap();
        assert_eq!(c.alertmanager.receivers[0].name, "team");
    }

    /// Each integration's credentials: a value or a Secret key, exactly one; the other fields as
    /// Alertmanager needs them. Refused at the key, never quoting a credential.
    #[test]
    fn integrations_and_their_credentials_are_checked() {
        const R: &str = "alertmanager.receivers[0]";
        let cases: &[(&str, Option<&str>, &str)] = &[
            ("pagerduty: {routingKey: planted-key}", None, ""),
            (
                "pagerduty: {routingKeySecret: {secret: pd, key: key}, url: 'http://127.0.0.1:9/v2/enqueue'}",
                None,
                "",
            ),
            (
                "pagerduty: {}",
                Some("pagerduty.routingKey"),
                "routingKeySecret",
            ),
            (
                "pagerduty: {routingKey: planted-key, routingKeySecret: {secret: pd, key: k}}",
                Some("pagerduty"),
                "not both",
            ),
            (
                "pagerduty: {routingKey: ' planted-key'}",
                Some("pagerduty.routingKey"),
                "spaces",
            ),
            (
                "pagerduty: {routingKey: ''}",
                Some("pagerduty.routingKey"),
                "empty",
            ),
            (
                "pagerduty: {routingKey: k, url: 'events.pagerduty.com'}",
                Some("pagerduty.url"),
                "e.g. https://events.pagerduty.com/v2/enqueue",
            ),
            (
                "opsgenie: {apiKey: planted-key, apiUrl: 'https://api.eu.opsgenie.com/'}",
                None,
                "",
            ),
            (
                "opsgenie: {apiKeySecret: {secret: genie, key: ''}}",
                Some("opsgenie.apiKeySecret.key"),
                "say which key",
            ),
            (
                "opsgenie: {apiKey: k, apiUrl: 'ftp://x/'}",
                Some("opsgenie.apiUrl"),
                "scheme",
            ),
            (
                "msteams: {webhookUrl: 'https://x.example.com/workflows/planted-key'}",
                None,
                "",
            ),
            (
                "msteams: {webhookUrl: 'x.example.com/planted-key'}",
                Some("msteams.webhookUrl"),
                "not a URL",
            ),
            (
                "msteams: {webhookUrlSecret: {secret: Teams, key: url}}",
                Some("msteams.webhookUrlSecret.secret"),
                "not a Secret name",
            ),
            (
                "email: {to: a@b.c, from: d@e.f, smarthost: 'h:587', authUsername: am, authPassword: planted-key, requireTls: true}",
                None,
                "",
            ),
            (
                "email: {to: a@b.c, from: d@e.f, smarthost: 'h:587', authUsername: am, authPasswordSecret: {secret: smtp, key: pw}, insecureSkipVerify: true}",
                None,
                "",
            ),
            (
                "email: {to: a@b.c, from: d@e.f, smarthost: 'h:587', authUsername: am}",
                Some("email.authPassword"),
                "authPasswordSecret",
            ),
            (
                "email: {to: a@b.c, from: d@e.f, smarthost: 'h:587', authPassword: planted-key}",
                Some("email.authUsername"),
                "no user",
            ),
            (
                "email: {to: a@b.c, from: d@e.f, smarthost: 'h:587', authUsername: ' ', authPassword: planted-key}",
                Some("email.authUsername"),
                "empty",
            ),
        ];
        for (integration, key, problem) in cases {
            let set = format!("alertmanager.receivers=[{{name: r, {integration}}}]");
            match (Config::default().with_set(&set), key) {
                (Ok(_), None) => {}
                (Err(e), Some(key)) => {
                    assert_eq!(e.key, format!("{R}.{key}"), "{integration}: {e}");
                    assert!(e.problem.contains(problem), "{integration}: {e}");
                    assert!(!e.to_string().contains("planted"), "{integration}: {e}");
                }
                (got, _) => panic!("{integration}: {got:?}"),
            }
        }
        let e = Config::default()
            .with_set("alertmanager.receivers=[{name: r}]")
            .unwrap_err();
        assert!(e.problem.contains("pagerduty, opsgenie or msteams"), "{e}");
        let e = Config::default()
            .with_set("alertmanager.receivers=[{name: r, email: {to: a@b.c, from: d@e.f, smarthost: 'h:587', requireTls: maybe}}]")
            .unwrap_err();
        assert!(e.problem.contains("true or false"), "{e}");
    }

    /// The routes name receivers (or `ui-only`), and overrides match on label names.
    #[test]
    fn routes_name_receivers_and_overrides_name_labels() {
        const TEAM: &str =
            "alertmanager.receivers=[{name: team, webhook: {url: 'https://hooks.example.com/t'}}]";
        let cases: &[(&[&str], Option<&str>, &str)] = &[
            (
                &[
                    TEAM,
                    "alertmanager.route.critical=team",
                    "alertmanager.route.warning=ui-only",
                ],
                None,
                "",
            ),
            (
                &[
                    "alertmanager.route.receiver=ui-only",
                    "alertmanager.route.info=ui-only",
                ],
                None,
                "",
            ),
            (
                &[
                    TEAM,
                    "alertmanager.route.overrides=[{match: {alertname: Watchdog2, team_name: a}, receiver: team}]",
                ],
                None,
                "",
            ),
            (
                &[TEAM, "alertmanager.route.critical=pager"],
                Some("alertmanager.route.critical"),
                "not one of the receivers (team) nor \"ui-only\"",
            ),
            (
                &["alertmanager.route.warning=team"],
                Some("alertmanager.route.warning"),
                "none is configured",
            ),
            (
                &[
                    TEAM,
                    "alertmanager.route.overrides=[{match: {alertname: X}, receiver: pager}]",
                ],
                Some("alertmanager.route.overrides[0].receiver"),
                "not one of the receivers",
            ),
            (
                &[
                    TEAM,
                    "alertmanager.route.overrides=[{match: {}, receiver: team}]",
                ],
                Some("alertmanager.route.overrides[0].match"),
                "every alert",
            ),
            (
                &[
                    TEAM,
                    "alertmanager.route.overrides=[{match: {'1x': z}, receiver: team}]",
                ],
                Some("alertmanager.route.overrides[0].match"),
                "not a label name",
            ),
            (
                &[TEAM, "alertmanager.route.overrides=[{receiver: team}]"],
                Some("alertmanager.route.overrides"),
                "match",
            ),
        ];
        for (sets, key, problem) in cases {
            let got = sets
                .iter()
                .try_fold(Config::default(), |c, s| c.with_set(s));
            match (got, key) {
                (Ok(_), None) => {}
                (Err(e), Some(key)) => {
                    assert!(e.key.starts_with(key), "{sets:?}: {e}");
                    assert!(e.problem.contains(problem), "{sets:?}: {e}");
                }
                (got, _) => panic!("{sets:?}: {got:?}"),
            }
        }
    }

    /// What Alertmanager and Prometheus would refuse (or fail on at runtime) is refused here,
    /// naming the key, before anything reaches the cluster.
    #[test]
    fn sizes_urls_and_addresses_are_checked_as_their_component_would() {
        for good in ["0", "40GB", "512MB", "1.5TB", "100B", "512MiB", "2EiB"] {
            assert_eq!(checks::prometheus_byte_size(good), Ok(()), "{good}");
        }
        for bad in [
            "40 gigs", "40", "40G", "GB", "-1GB", "1.GB", "40gb", "40iB", "",
        ] {
            assert!(checks::prometheus_byte_size(bad).is_err(), "{bad}");
        }
        let e = Config::default()
            .with_set("prometheus.retentionSize=40 gigs")
            .unwrap_err();
        assert_eq!(e.key, "prometheus.retentionSize", "{e}");
        assert!(e.problem.contains("e.g. 40GB"), "{e}");

        for good in ["https://hooks.example.com/alerts", "http://10.0.0.1:8080/x"] {
            assert_eq!(check_url(good), Ok(()), "{good}");
        }
        for bad in [
            "not a url",
            "hooks.example.com/alerts",
            "ftp://x/y",
            "https://",
            " https://x",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        let e = Config::default()
            .with_set("alertmanager.receivers=[{name: team, webhook: {url: 'not a url'}}]")
            .unwrap_err();
        assert_eq!(e.key, "alertmanager.receivers[0].webhook.url", "{e}");
        let e = Config::default()
            .with_set(
                "alertmanager.receivers=[{name: team, slack: {apiUrl: 'slack', channel: '#a'}}]",
            )
            .unwrap_err();
        assert_eq!(e.key, "alertmanager.receivers[0].slack.apiUrl", "{e}");
        let email = |to: &str, smarthost: &str| {
            Config::default().with_set(&format!(
                "alertmanager.receivers=[{{name: ops, email: {{to: '{to}', from: 'am@example.com', smarthost: '{smarthost}'}}}}]"
            ))
        };
        assert!(email("ops@example.com", "smtp.example.com:587").is_ok());
        assert_eq!(
            email("ops", "smtp.example.com:587").unwrap_err().key,
            "alertmanager.receivers[0].email.to"
        );
        assert_eq!(
            email("ops@example.com", "smtp.example.com")
                .unwrap_err()
                .key,
            "alertmanager.receivers[0].email.smarthost"
        );
    }

    /// A file is merged over the defaults as Helm merges values: what it leaves out keeps its
    /// default, maps merge, lists replace, a number where a string belongs is that string.
    #[test]
    fn a_file_sets_only_what_it_names() {
        let c = Config::from_yaml(
            "prometheus:\n  resources:\n    requests: {cpu: 1}\n    limits: {cpu: 2}\n  storage: {size: 10}\nalertmanager:\n  route:\n    groupBy: [alertname]\n",
            "a.yaml",
        )
        .unwrap();
        let d = Config::default();
        let r = &c.prometheus.resources;
        assert_eq!(r.requests.cpu, Some(Quantity("1".into())));
        assert_eq!(r.requests.memory, d.prometheus.resources.requests.memory);
        assert_eq!(r.limits.cpu, Some(Quantity("2".into())));
        assert_eq!(r.limits.memory, d.prometheus.resources.limits.memory);
        assert_eq!(c.prometheus.storage.size, Some(Quantity("10".into())));
        assert_eq!(c.prometheus.retention, d.prometheus.retention);
        assert_eq!(c.alertmanager.route.group_by, ["alertname"]);
        assert_eq!(c.alerts, d.alerts);
        // An alert's threshold alone keeps its duration and severity.
        let c =
            Config::from_yaml("alerts:\n  highCpu:\n    thresholdPercent: 90\n", "a.yaml").unwrap();
        assert_eq!(c.alerts.high_cpu.threshold_percent, 90.0);
        assert_eq!(c.alerts.high_cpu.for_, d.alerts.high_cpu.for_);
        // An empty section is the defaults.
        assert_eq!(Config::from_yaml("prometheus:\n", "a.yaml").unwrap(), d);
        // --set reads a number where a string belongs as that string.
        let c = d.with_set("prometheus.storage.size=10").unwrap();
        assert_eq!(c.prometheus.storage.size, Some(Quantity("10".into())));
    }

    /// docs/configuration.md shows every key with its default; it must not drift from them.
    /// (The parent stores only the user's values, so the defaults are read here, not there.)
    #[test]
    fn docs_document_the_default_configuration() {
        let docs = include_str!("../docs/configuration.md");
        let defaults = Config::default().to_yaml();
        assert!(
            docs.contains(&format!("```yaml\n{defaults}```")),
            "docs/configuration.md's configuration block differs from the defaults:\n{defaults}"
        );
    }

    #[test]
    fn durations() {
        for (s, want) in [
            ("30s", Ok(30)),
            ("5m", Ok(300)),
            ("1h30m", Ok(5400)),
            ("15d", Ok(1_296_000)),
            ("0m", Ok(0)),
        ] {
            assert_eq!(PromDuration(s.into()).seconds(), want, "{s}");
        }
        for bad in ["", "5", "m5", "5x", "-1m", "1.5h"] {
            assert!(PromDuration(bad.into()).seconds().is_err(), "{bad}");
        }
    }

    #[test]
    fn effective_configuration_round_trips() {
        let c = Config::default()
            .with_set("prometheus.retention=30d")
            .unwrap();
        let back = Config::from_yaml(&c.to_yaml(), "stored").unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn label_keys() {
        for ok in ["automon.io/exclude", "exclude", "a.b-c/d_e.f"] {
            assert!(is_label_key(ok), "{ok}");
        }
        for bad in ["", "/x", "a/", "-a", "a b", "Upper.Case/x"] {
            assert!(!is_label_key(bad), "{bad}");
        }
    }

    #[test]
    fn shards_are_a_number_or_auto() {
        let file = |text: &str| Config::from_yaml(text, "automon.yaml");
        assert_eq!(
            file("prometheus:\n  shards: 3\n")
                .unwrap()
                .prometheus
                .shards,
            Shards::Count(3)
        );
        assert_eq!(
            file("prometheus:\n  shards: auto\n")
                .unwrap()
                .prometheus
                .shards,
            Shards::Auto
        );
        let set = Config::default().with_set("prometheus.shards=4").unwrap();
        assert_eq!(set.prometheus.shards, Shards::Count(4));
        for (text, says) in [
            (
                "prometheus:\n  shards: -2\n",
                "-2 is not a number of shards",
            ),
            (
                "prometheus:\n  shards: three\n",
                "\"three\" is not a number of shards",
            ),
            (
                "prometheus:\n  shards: 0\n",
                "0 is out of range (1 to 100, or auto)",
            ),
        ] {
            let e = file(text).unwrap_err();
            assert_eq!(e.key, "prometheus.shards", "{e}");
            assert!(e.to_string().contains(says), "{e}");
        }
    }

    #[test]
    fn additional_scrape_configs_name_a_secret_key_kubernetes_accepts() {
        for accepted in [
            "{name: extra-scrapes, key: scrape.yaml}",
            "{name: team.scrapes, key: jobs_1-A.yml}",
        ] {
            let c = Config::default()
                .with_set(&format!("prometheus.additionalScrapeConfigs={accepted}"))
                .unwrap_or_else(|e| panic!("{accepted}: {e}"));
            assert!(c.prometheus.additional_scrape_configs.is_some());
        }
        for (value, key, says) in [
            (
                "{key: scrape.yaml}",
                "prometheus.additionalScrapeConfigs.name",
                "no Secret named",
            ),
            (
                "{name: Extra, key: k}",
                "prometheus.additionalScrapeConfigs.name",
                "not a Secret name",
            ),
            (
                "{name: a_b, key: k}",
                "prometheus.additionalScrapeConfigs.name",
                "not a Secret name",
            ),
            (
                "{name: extra}",
                "prometheus.additionalScrapeConfigs.key",
                "say which key",
            ),
            (
                "{name: extra, key: \"a/b\"}",
                "prometheus.additionalScrapeConfigs.key",
                "not a Secret key",
            ),
            (
                "{name: extra, key: k, secret: x}",
                "prometheus.additionalScrapeConfigs",
                "unknown field `secret`",
            ),
            ("extra", "prometheus.additionalScrapeConfigs", ""),
        ] {
            let set = format!("prometheus.additionalScrapeConfigs={value}");
            let e = Config::default().with_set(&set).unwrap_err();
            assert_eq!(e.key, key, "{set}: {e}");
            assert!(e.to_string().contains(says), "{set}: {e}");
        }
    }

    #[test]
    fn selection_labels_and_namespaces_are_checked() {
        let ok = Config::default()
            .with_set("prometheus.select.labels={release: kps}")
            .and_then(|c| c.with_set("prometheus.select.namespaces=[\"*\"]"));
        assert!(ok.is_ok(), "{ok:?}");
        for (set, key, says) in [
            (
                "prometheus.select.labels={release: \"a b\"}",
                "prometheus.select.labels.release",
                "not a valid label value",
            ),
            (
                "prometheus.select.labels={\"app.kubernetes.io/part-of\": x}",
                "prometheus.select.labels.app.kubernetes.io/part-of",
                "a label automon sets",
            ),
            (
                "prometheus.select.exclude={\"bad key!\": x}",
                "prometheus.select.exclude.bad key!",
                "not a valid label key",
            ),
            (
                "prometheus.select.namespaces=[Team_A]",
                "prometheus.select.namespaces",
                "not a namespace name",
            ),
        ] {
            let e = Config::default().with_set(set).unwrap_err();
            assert_eq!(e.key, key, "{set}");
            assert!(e.to_string().contains(says), "{set}: {e}");
        }
        let both = Config::default()
            .with_set("prometheus.select.labels={release: kps}")
            .unwrap()
            .with_set("prometheus.select.exclude={release: kps}")
            .unwrap_err();
        assert_eq!(both.key, "prometheus.select.exclude.release");
    }
}
