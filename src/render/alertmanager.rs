//! Alertmanager: the `Alertmanager` custom resource, its configuration Secret built from the
//! configured receivers, its Service, a self-scrape, a NetworkPolicy and a PodDisruptionBudget
//! with more than one replica. With no receivers, alerts stay visible in the UI only.

use std::collections::BTreeMap;

use k8s_openapi::{
    ByteString,
    api::core::v1::{Secret, ServiceAccount},
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    Context,
    blocks::{place, pod_disruption_budget, self_scrape, volume_claim},
    custom, exposure, meta,
    network::{self, anywhere, pods, tcp, udp},
    object, rules,
    security::operand_pod,
    service,
};

use crate::model::Object;
use crate::{
    config::{self, Severity},
    versions,
};

pub const NAME: &str = "alertmanager";
/// The `Alertmanager` object; the operator names its StatefulSet `alertmanager-automon`.
pub const INSTANCE: &str = "automon";
pub const CONFIG_SECRET: &str = "alertmanager-automon-config";
pub const CONFIG_KEY: &str = "alertmanager.yaml";
pub use crate::config::UI_ONLY_RECEIVER;
/// Alertmanager's web port (the operator's `web`).
pub const PORT: i32 = 9093;
/// `test-alert` reads each receiver's outcome off the notification metrics, which name the
/// receiver only with this feature.
pub const FEATURES: &[&str] = &["receiver-name-in-metrics"];
/// The label that sends a `test-alert` alert to one receiver, whatever the other routes say.
pub const TEST_RECEIVER_LABEL: &str = "automon_test_receiver";
/// The label each `test-alert` run gives its alerts, unique to the run: each is its own group.
pub const TEST_ID_LABEL: &str = "automon_test";
const MESH_PORT: i32 = 9094;

pub fn objects(ctx: &Context) -> Vec<Object> {
    let exposed = || ctx.config.alertmanager.exposure();
    let labels = ctx.labels(NAME, NAME, versions::ALERTMANAGER.version);
    let mut objects = vec![
        object(ServiceAccount {
            metadata: ctx.meta(NAME, &labels),
            // Alertmanager never calls the API server.
            automount_service_account_token: Some(false),
            ..Default::default()
        }),
        object(Secret {
            metadata: ctx.meta(CONFIG_SECRET, &labels),
            data: Some(BTreeMap::from([(
                CONFIG_KEY.to_string(),
                ByteString(config_yaml(&ctx.config.alertmanager).into_bytes()),
            )])),
            type_: Some("Opaque".into()),
            ..Default::default()
        }),
        alertmanager(ctx, &labels),
        // Silences made in the UI show up at once on the replica that made them.
        service::sticky(
            ctx,
            NAME,
            &labels,
            service::spec(ctx, NAME, &[("web", PORT)]),
        ),
        network_policy(ctx, &labels),
        self_scrape(ctx, NAME, &labels, "web", exposed().prefix()),
    ];
    let to = exposure::Backend::of(NAME, "web", PORT);
    objects.extend(exposure::objects(ctx, &labels, exposed(), &to));
    if ctx.config.alertmanager.replicas > 1 {
        objects.push(pod_disruption_budget(ctx, NAME, &labels));
    }
    objects
}

fn alertmanager(ctx: &Context, labels: &BTreeMap<String, String>) -> Object {
    let c = &ctx.config.alertmanager;
    let mut spec = json!({
        "version": versions::ALERTMANAGER.version,
        "image": ctx.image(&versions::ALERTMANAGER),
        "replicas": c.replicas,
        "resources": meta::resources(&c.resources),
        "configSecret": CONFIG_SECRET,
        "serviceAccountName": NAME,
        "automountServiceAccountToken": false,
        "podMetadata": {"labels": labels},
        "securityContext": operand_pod(),
        "enableFeatures": FEATURES,
    });
    place(&mut spec, c.placement(), &ctx.selector(NAME));
    // Served under the path it is exposed at (no rewriting in front of it), its links to it.
    let exposure = c.exposure();
    if !exposure.prefix().is_empty() {
        spec["routePrefix"] = json!(exposure.prefix());
    }
    if let Some(url) = exposure.external_url() {
        spec["externalUrl"] = json!(url);
    }
    // Silences and the notification log outlive the pod only on a claim.
    if let Some(storage) = volume_claim(&c.storage) {
        spec["storage"] = storage;
    }
    if let Some(secrets) = ctx.pull_secrets() {
        spec["imagePullSecrets"] = json!(secrets);
    }
    let mounted = receiver_secrets(c);
    if !mounted.is_empty() {
        spec["secrets"] = json!(mounted);
    }
    custom(json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Alertmanager",
        "metadata": ctx.operated_meta(INSTANCE, labels),
        "spec": spec,
    }))
}

/// Prometheus pushes alerts and Grafana reads them on 9093 (and, while exposed, whatever
/// stands in front of it); replicas gossip on 9094 (TCP and UDP). Out: receivers can be
/// anywhere on any port, so egress stays open.
fn network_policy(ctx: &Context, labels: &BTreeMap<String, String>) -> Object {
    let mut ingress = vec![network::ingress(
        vec![pods(ctx, "prometheus"), pods(ctx, "grafana")],
        vec![tcp(PORT)],
    )];
    ingress.extend(exposure::policy_rule(
        ctx.config.alertmanager.exposure(),
        tcp(PORT),
    ));
    if ctx.config.alertmanager.replicas > 1 {
        ingress.push(network::ingress(
            vec![pods(ctx, NAME)],
            vec![tcp(MESH_PORT), udp(MESH_PORT)],
        ));
    }
    network::policy(ctx, NAME, labels, ingress, Some(vec![anywhere()]))
}

/// Alertmanager's configuration file, the parts automon writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertmanagerConfig {
    pub route: RouteConfig,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inhibit_rules: Vec<InhibitRule>,
    pub receivers: Vec<ReceiverConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteConfig {
    pub receiver: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matchers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_by: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteConfig>,
}

/// Alerts matching `target_matchers` are muted while one matching `source_matchers` fires with
/// the same values of `equal`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InhibitRule {
    pub source_matchers: Vec<String>,
    pub target_matchers: Vec<String>,
    pub equal: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReceiverConfig {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhook_configs: Vec<WebhookConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slack_configs: Vec<SlackConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub email_configs: Vec<EmailConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pagerduty_configs: Vec<PagerdutyConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub opsgenie_configs: Vec<OpsgenieConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub msteamsv2_configs: Vec<MsTeamsV2Config>,
}

/// A webhook: `url_file` (the mounted Secret key) whenever the configuration names one, which
/// after loading is always; `url` only for a configuration stored in the clear by an older
/// plugin. The integrations that came later take their credentials from files only: no plugin
/// ever stored them in the clear, so a value never reaches this file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_file: Option<String>,
    pub send_resolved: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlackConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url_file: Option<String>,
    pub channel: String,
    pub send_resolved: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailConfig {
    pub to: String,
    pub from: String,
    pub smarthost: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_password_file: Option<String>,
    pub require_tls: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    pub send_resolved: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TlsConfig {
    pub insecure_skip_verify: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PagerdutyConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub severity: String,
    pub send_resolved: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpsgenieConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    pub priority: String,
    pub send_resolved: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MsTeamsV2Config {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url_file: Option<String>,
    pub send_resolved: bool,
}

/// PagerDuty's severity (`critical`, `error`, `warning` or `info`) from the alert's own
/// `severity` label; anything else (`none`, no label) is `info`.
pub const PAGERDUTY_SEVERITY: &str = r#"{{ if eq .CommonLabels.severity "critical" }}critical{{ else if eq .CommonLabels.severity "warning" }}warning{{ else }}info{{ end }}"#;
/// Opsgenie's priority (`P1` highest to `P5`) from the alert's `severity` label.
pub const OPSGENIE_PRIORITY: &str = r#"{{ if eq .CommonLabels.severity "critical" }}P1{{ else if eq .CommonLabels.severity "warning" }}P3{{ else }}P5{{ end }}"#;

/// Where the operator mounts each Secret of the `Alertmanager` object's `spec.secrets`.
pub const SECRETS_DIR: &str = "/etc/alertmanager/secrets";

/// The file Alertmanager reads a Secret key from.
pub fn secret_file(s: &config::SecretKey) -> String {
    format!("{SECRETS_DIR}/{}/{}", s.secret, s.key)
}

/// The Secrets the receivers name, each once, in order: the operator mounts them.
pub fn receiver_secrets(c: &config::Alertmanager) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for r in &c.receivers {
        for s in r.credentials().into_iter().filter_map(|c| c.secret) {
            if !names.contains(&s.secret) {
                names.push(s.secret.clone());
            }
        }
    }
    names
}

/// An integration's configurations: none, or the one the receiver gives.
fn each<T, U>(integration: &Option<T>, config: impl Fn(&T) -> U) -> Vec<U> {
    integration.iter().map(config).collect()
}

/// One receiver of the configuration, each integration it has.
fn receiver_config(r: &config::Receiver) -> ReceiverConfig {
    ReceiverConfig {
        name: r.name.clone(),
        webhook_configs: each(&r.webhook, |w| WebhookConfig {
            url: w.url.clone(),
            url_file: w.url_secret.as_ref().map(secret_file),
            send_resolved: true,
        }),
        slack_configs: each(&r.slack, |s| SlackConfig {
            api_url: s.api_url.clone(),
            api_url_file: s.api_url_secret.as_ref().map(secret_file),
            channel: s.channel.clone(),
            send_resolved: true,
        }),
        email_configs: each(&r.email, |e| EmailConfig {
            to: e.to.clone(),
            from: e.from.clone(),
            smarthost: e.smarthost.clone(),
            auth_username: e.auth_username.clone(),
            auth_password_file: e.auth_password_secret.as_ref().map(secret_file),
            require_tls: e.require_tls,
            tls_config: e.insecure_skip_verify.then_some(TlsConfig {
                insecure_skip_verify: true,
            }),
            send_resolved: true,
        }),
        pagerduty_configs: each(&r.pagerduty, |p| PagerdutyConfig {
            routing_key_file: p.routing_key_secret.as_ref().map(secret_file),
            url: p.url.clone(),
            severity: PAGERDUTY_SEVERITY.into(),
            send_resolved: true,
        }),
        opsgenie_configs: each(&r.opsgenie, |o| OpsgenieConfig {
            api_key_file: o.api_key_secret.as_ref().map(secret_file),
            api_url: o.api_url.clone(),
            priority: OPSGENIE_PRIORITY.into(),
            send_resolved: true,
        }),
        msteamsv2_configs: each(&r.msteams, |t| MsTeamsV2Config {
            webhook_url_file: t.webhook_url_secret.as_ref().map(secret_file),
            send_resolved: true,
        }),
    }
}

/// `label="value"`, the value quoted as Alertmanager's matcher syntax reads it.
fn equals(label: &str, value: &str) -> String {
    let quoted = value
        .replace('\\', r"\\")
        .replace('"', r#"\""#)
        .replace('\n', r"\n");
    format!(r#"{label}="{quoted}""#)
}

/// A route to `receiver` for the alerts these matchers select.
fn route_to(receiver: &str, matchers: Vec<String>) -> RouteConfig {
    RouteConfig {
        receiver: receiver.into(),
        matchers,
        ..Default::default()
    }
}

/// The routes below the default one, first match wins: Watchdog (to the UI unless a dead
/// man's switch is named), then each override in order, then a route per severity that
/// names a receiver.
fn child_routes(route: &config::Route) -> Vec<RouteConfig> {
    // Watchdog fires all the time to prove the pipeline works: paging on it would be noise,
    // but a dead man's switch wants it every minute, and pages when it stops coming.
    let mut watchdog = route_to(&route.watchdog, vec![equals("alertname", "Watchdog")]);
    if route.watchdog != UI_ONLY_RECEIVER {
        watchdog.group_wait = Some("0s".into());
        watchdog.group_interval = Some("1m".into());
        watchdog.repeat_interval = Some("1m".into());
    }
    let mut routes = vec![watchdog];
    routes.extend(route.overrides.iter().map(|o| {
        route_to(
            &o.receiver,
            o.labels.iter().map(|(l, v)| equals(l, v)).collect(),
        )
    }));
    let severities = [
        (Severity::Critical, &route.critical),
        (Severity::Warning, &route.warning),
        (Severity::Info, &route.info),
    ];
    for (severity, receiver) in severities {
        if let Some(receiver) = receiver {
            routes.push(route_to(
                receiver,
                vec![equals("severity", &severity.to_string())],
            ));
        }
    }
    routes
}

/// The default inhibitions. Both stay within one node (`equal: [node]`), and the source must
/// name one: with an empty `node` on both sides Alertmanager would count them equal, and a
/// critical alert about no node would mute every warning about no node.
fn inhibit_rules() -> Vec<InhibitRule> {
    let on_a_node = r#"node=~".+""#.to_string();
    let (down, resources) = rules::node_down_and_resources();
    vec![
        // A node's critical alert says what matters about it; its warnings would be noise.
        InhibitRule {
            source_matchers: vec![
                equals("severity", &Severity::Critical.to_string()),
                on_a_node.clone(),
            ],
            target_matchers: vec![equals("severity", &Severity::Warning.to_string())],
            equal: vec!["node".into()],
        },
        // A node that does not answer has no resources to speak of, whatever the severities.
        InhibitRule {
            source_matchers: vec![format!(r#"alertname=~"{}""#, down.join("|")), on_a_node],
            target_matchers: vec![format!(r#"alertname=~"{}""#, resources.join("|"))],
            equal: vec!["node".into()],
        },
    ]
}

/// The configuration for `config.alertmanager`. Receivers were validated with the
/// configuration (each has an integration; the routes name them or `ui-only`).
pub fn alertmanager_config(c: &config::Alertmanager) -> AlertmanagerConfig {
    let default_receiver = c
        .route
        .receiver
        .clone()
        .or_else(|| c.receivers.first().map(|r| r.name.clone()))
        .unwrap_or_else(|| UI_ONLY_RECEIVER.to_string());
    // The configuration reserves the name, so this one is always the empty receiver.
    let mut receivers = vec![ReceiverConfig {
        name: UI_ONLY_RECEIVER.into(),
        ..Default::default()
    }];
    receivers.extend(c.receivers.iter().map(receiver_config));
    AlertmanagerConfig {
        route: RouteConfig {
            receiver: default_receiver,
            matchers: Vec::new(),
            group_by: c.route.group_by.clone(),
            group_wait: Some(c.route.group_wait.0.clone()),
            group_interval: Some(c.route.group_interval.0.clone()),
            repeat_interval: Some(c.route.repeat_interval.0.clone()),
            // `test-alert`'s routes first: a test alert reaches the receiver it names.
            routes: test_routes(c)
                .into_iter()
                .chain(child_routes(&c.route))
                .collect(),
        },
        inhibit_rules: match c.inhibitions {
            true => inhibit_rules(),
            false => Vec::new(),
        },
        receivers,
    }
}

/// First in the tree: one route per receiver that takes only `test-alert`'s alerts labelled
/// with its name, and notifies at once (no group wait), each run in its own group. Failed
/// notifications are given up after 10s (Alertmanager's shortest notification timeout).
fn test_routes(c: &config::Alertmanager) -> Vec<RouteConfig> {
    c.receivers
        .iter()
        .map(|r| RouteConfig {
            receiver: r.name.clone(),
            matchers: vec![equals(TEST_RECEIVER_LABEL, &r.name)],
            group_by: vec![TEST_ID_LABEL.into()],
            group_wait: Some("0s".into()),
            group_interval: Some("10s".into()),
            repeat_interval: Some("1h".into()),
            ..Default::default()
        })
        .collect()
}

/// `alertmanager.yaml` as the Secret holds it.
pub fn config_yaml(c: &config::Alertmanager) -> String {
    serde_saphyr::to_string(&alertmanager_config(c)).expect("Alertmanager configuration serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::model;

    /// The configuration as loaded: its literal credentials sealed.
    fn config(sets: &[&str]) -> Config {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        Config::configured(crate::config::values::Base::Defaults, &sets, None)
            .unwrap()
            .0
    }

    fn sealed_file(path: &str, value: &str) -> Option<String> {
        let key = crate::config::credentials::key_for(path, value);
        Some(format!("{SECRETS_DIR}/automon-credentials/{key}"))
    }

    /// The YAML in the rendered Secret, read back the way Alertmanager would read it.
    fn secret_config(c: &Config) -> AlertmanagerConfig {
        let objects = objects(&Context::new(c));
        let secret = objects
            .iter()
            .find(|o| model::kind(o) == "Secret")
            .expect("a Secret");
        assert_eq!(secret.metadata.name.as_deref(), Some(CONFIG_SECRET));
        let data: BTreeMap<String, ByteString> =
            serde_json::from_value(secret.data["data"].clone()).unwrap();
        let text = String::from_utf8(data[CONFIG_KEY].0.clone()).unwrap();
        serde_saphyr::from_str(&text).unwrap()
    }

    #[test]
    fn no_receivers_routes_everything_to_the_ui_only() {
        let c = secret_config(&config(&[]));
        assert_eq!(c.route.receiver, "ui-only");
        assert_eq!(c.route.group_by, ["alertname", "node"]);
        assert_eq!(c.route.group_wait.as_deref(), Some("30s"));
        assert_eq!(c.route.group_interval.as_deref(), Some("5m"));
        assert_eq!(c.route.repeat_interval.as_deref(), Some("4h"));
        assert_eq!(
            c.receivers,
            [ReceiverConfig {
                name: "ui-only".into(),
                ..Default::default()
            }]
        );
        assert_eq!(c.route.routes[0].receiver, "ui-only");
        assert_eq!(c.route.routes[0].matchers, [r#"alertname="Watchdog""#]);
    }

    #[test]
    fn one_webhook_becomes_the_default_route() {
        let c = secret_config(&config(&[
            "alertmanager.receivers=[{name: team, webhook: {url: 'http://hook.example/alerts'}}]",
        ]));
        assert_eq!(c.route.receiver, "team");
        let team = c.receivers.iter().find(|r| r.name == "team").unwrap();
        assert_eq!(
            team.webhook_configs,
            [WebhookConfig {
                url: None,
                url_file: sealed_file(
                    "alertmanager.receivers[0].webhook.url",
                    "http://hook.example/alerts"
                ),
                send_resolved: true,
            }]
        );
        assert!(team.slack_configs.is_empty() && team.email_configs.is_empty());
        // Watchdog still pages nobody.
        assert_eq!(c.route.routes.last().unwrap().receiver, "ui-only");
    }

    #[test]
    fn slack_and_email_with_an_explicit_route_receiver() {
        let c = secret_config(&config(&[
            "alertmanager.receivers=[{name: chat, slack: {apiUrl: 'https://hooks.slack.example/T0', channel: '#alerts'}}, {name: oncall, email: {to: ops@example.com, from: am@example.com, smarthost: 'smtp.example.com:587'}}]",
            "alertmanager.route.receiver=oncall",
            "alertmanager.route.groupBy=[alertname]",
            "alertmanager.route.repeatInterval=1h",
        ]));
        assert_eq!(c.route.receiver, "oncall");
        assert_eq!(c.route.group_by, ["alertname"]);
        assert_eq!(c.route.repeat_interval.as_deref(), Some("1h"));
        let names: Vec<&str> = c.receivers.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["ui-only", "chat", "oncall"]);
        assert_eq!(
            c.receivers[1].slack_configs,
            [SlackConfig {
                api_url: None,
                api_url_file: sealed_file(
                    "alertmanager.receivers[0].slack.apiUrl",
                    "https://hooks.slack.example/T0"
                ),
                channel: "#alerts".into(),
                send_resolved: true,
            }]
        );
        assert_eq!(
            c.receivers[2].email_configs,
            [EmailConfig {
                to: "ops@example.com".into(),
                from: "am@example.com".into(),
                smarthost: "smtp.example.com:587".into(),
                auth_username: None,
                auth_password_file: None,
                require_tls: true,
                tls_config: None,
                send_resolved: true,
            }]
        );
    }

    /// `test-alert` reaches each receiver through a route of its own, first in the tree, that
    /// no alert of the rules matches, with no group wait; the feature that names receivers in
    /// the metrics is on.
    #[test]
    fn each_receiver_has_a_test_route_first() {
        let c = config(&[
            "alertmanager.receivers=[{name: team, webhook: {url: 'http://hook.example/a'}}, {name: chat, slack: {apiUrl: 'https://hooks.slack.example/T0', channel: '#a'}}]",
        ]);
        let parsed = secret_config(&c);
        let routes = &parsed.route.routes;
        for (route, name) in routes.iter().zip(["team", "chat"]) {
            assert_eq!(route.receiver, name);
            assert_eq!(
                route.matchers,
                [format!("automon_test_receiver=\"{name}\"")]
            );
            assert_eq!(route.group_by, ["automon_test"]);
            assert_eq!(route.group_wait.as_deref(), Some("0s"));
        }
        assert_eq!(routes[2].matchers, [r#"alertname="Watchdog""#]);
        let objects = objects(&Context::new(&c));
        let am = objects
            .iter()
            .find(|o| model::kind(o) == "Alertmanager")
            .unwrap();
        assert_eq!(
            am.data["spec"]["enableFeatures"],
            serde_json::json!(["receiver-name-in-metrics"])
        );
    }

    #[test]
    fn the_ui_only_name_is_reserved() {
        let e = crate::config::Config::default()
            .with_set("alertmanager.receivers=[{name: ui-only, webhook: {url: 'http://hook.example/alerts'}}]")
            .unwrap_err();
        assert!(e.problem.contains("reserved"), "{e}");
    }

    #[test]
    fn yaml_uses_alertmanager_field_names() {
        let text = config_yaml(
            &config(&[
                "alertmanager.receivers=[{name: chat, slack: {apiUrl: 'https://hooks.slack.example/T0', channel: '#alerts'}}]",
            ])
            .alertmanager,
        );
        for key in [
            "api_url_file:",
            "send_resolved:",
            "group_by:",
            "repeat_interval:",
            "slack_configs:",
        ] {
            assert!(text.contains(key), "{key} in\n{text}");
        }
        // No empty integration lists: Alertmanager would accept them, but they read as if
        // something were configured.
        assert!(!text.contains("webhook_configs"), "{text}");
    }

    /// The generated configuration never holds a credential: each is a file of a Secret the
    /// `Alertmanager` object mounts, the user's own or automon's.
    #[test]
    fn credentials_are_files_of_mounted_secrets() {
        let c = config(&[
            "alertmanager.receivers=[{name: own, webhook: {urlSecret: {secret: team-hooks, key: url}}}, {name: chat, slack: {apiUrl: 'https://hooks.slack.example/T0/planted', channel: '#a'}}]",
        ]);
        let objects = objects(&Context::new(&c));
        let text = serde_json::to_string(&objects).unwrap();
        assert!(!text.contains("planted"), "{text}");
        let am = objects
            .iter()
            .find(|o| model::kind(o) == "Alertmanager")
            .unwrap();
        assert_eq!(
            am.data["spec"]["secrets"],
            serde_json::json!(["team-hooks", "automon-credentials"])
        );
        let yaml = config_yaml(&c.alertmanager);
        assert!(
            yaml.contains("url_file: /etc/alertmanager/secrets/team-hooks/url"),
            "{yaml}"
        );
        let parsed = secret_config(&c);
        assert_eq!(
            parsed.receivers[2].slack_configs[0].api_url_file,
            sealed_file(
                "alertmanager.receivers[1].slack.apiUrl",
                "https://hooks.slack.example/T0/planted"
            )
        );
        assert!(!yaml.contains("planted"), "{yaml}");
    }

    /// Every integration, its credentials given literally (sealed at load) or as a Secret key
    /// of the user's: Alertmanager's field names, a `_file` for every credential, each Secret
    /// mounted once, and no value anywhere in the rendered objects.
    #[test]
    fn every_integration_reads_its_credentials_from_files() {
        let c = config(&["alertmanager.receivers=[\
             {name: pager, pagerduty: {routingKey: planted-routing, url: 'http://127.0.0.1:1/v2/enqueue'}}, \
             {name: genie, opsgenie: {apiKeySecret: {secret: genie, key: api-key}, apiUrl: 'https://api.eu.opsgenie.com/'}}, \
             {name: teams, msteams: {webhookUrl: 'https://x.example.com/workflows/planted-teams'}}, \
             {name: mail, email: {to: ops@example.com, from: am@example.com, smarthost: 'smtp.example.com:587', authUsername: am, authPasswordSecret: {secret: smtp, key: password}, insecureSkipVerify: true}}, \
             {name: mail2, email: {to: ops@example.com, from: am@example.com, smarthost: 'smtp.example.com:465', authUsername: am, authPassword: planted-password, requireTls: false}}]"]);
        let objects = objects(&Context::new(&c));
        let text = serde_json::to_string(&objects).unwrap();
        assert!(!text.contains("planted"), "{text}");
        let am = objects
            .iter()
            .find(|o| model::kind(o) == "Alertmanager")
            .unwrap();
        assert_eq!(
            am.data["spec"]["secrets"],
            serde_json::json!(["automon-credentials", "genie", "smtp"])
        );
        let parsed = secret_config(&c);
        let receiver = |name: &str| parsed.receivers.iter().find(|r| r.name == name).unwrap();
        assert_eq!(
            receiver("pager").pagerduty_configs,
            [PagerdutyConfig {
                routing_key_file: sealed_file(
                    "alertmanager.receivers[0].pagerduty.routingKey",
                    "planted-routing"
                ),
                url: Some("http://127.0.0.1:1/v2/enqueue".into()),
                severity: PAGERDUTY_SEVERITY.into(),
                send_resolved: true,
            }]
        );
        assert_eq!(
            receiver("genie").opsgenie_configs,
            [OpsgenieConfig {
                api_key_file: Some("/etc/alertmanager/secrets/genie/api-key".into()),
                api_url: Some("https://api.eu.opsgenie.com/".into()),
                priority: OPSGENIE_PRIORITY.into(),
                send_resolved: true,
            }]
        );
        assert_eq!(
            receiver("teams").msteamsv2_configs,
            [MsTeamsV2Config {
                webhook_url_file: sealed_file(
                    "alertmanager.receivers[2].msteams.webhookUrl",
                    "https://x.example.com/workflows/planted-teams"
                ),
                send_resolved: true,
            }]
        );
        let mail = &receiver("mail").email_configs[0];
        assert_eq!(mail.auth_username.as_deref(), Some("am"));
        assert_eq!(
            mail.auth_password_file.as_deref(),
            Some("/etc/alertmanager/secrets/smtp/password")
        );
        assert!(mail.require_tls);
        assert_eq!(
            mail.tls_config,
            Some(TlsConfig {
                insecure_skip_verify: true
            })
        );
        let mail2 = &receiver("mail2").email_configs[0];
        assert_eq!(
            mail2.auth_password_file,
            sealed_file(
                "alertmanager.receivers[4].email.authPassword",
                "planted-password"
            )
        );
        assert!(!mail2.require_tls && mail2.tls_config.is_none());
        let yaml = config_yaml(&c.alertmanager);
        for key in [
            "routing_key_file:",
            "api_key_file:",
            "webhook_url_file:",
            "auth_password_file:",
            "msteamsv2_configs:",
            "insecure_skip_verify: true",
        ] {
            assert!(yaml.contains(key), "{key} in\n{yaml}");
        }
    }

    /// The matchers of each child route, in order, and its receiver.
    /// The routes that real alerts take: `test-alert`'s own, first, left out.
    fn alert_routes(c: &AlertmanagerConfig) -> impl Iterator<Item = &RouteConfig> {
        let test = format!("{TEST_RECEIVER_LABEL}=");
        c.route
            .routes
            .iter()
            .filter(move |r| !r.matchers.iter().any(|m| m.starts_with(&test)))
    }

    fn routes_of(c: &AlertmanagerConfig) -> Vec<(Vec<String>, String)> {
        alert_routes(c)
            .map(|r| (r.matchers.clone(), r.receiver.clone()))
            .collect()
    }

    fn routes(pairs: &[(&[&str], &str)]) -> Vec<(Vec<String>, String)> {
        pairs
            .iter()
            .map(|(m, r)| (m.iter().map(|m| m.to_string()).collect(), r.to_string()))
            .collect()
    }

    #[test]
    fn routes_by_severity_and_overrides_watchdog_first() {
        const TWO: &str = "alertmanager.receivers=[{name: pager, pagerduty: {routingKey: k}}, {name: team, webhook: {url: 'https://hooks.example.com/t'}}]";
        type Routes<'a> = &'a [(&'a [&'a str], &'a str)];
        let cases: &[(&[&str], &str, Routes)] = &[
            // The defaults: info to the UI, everything else to the default receiver.
            (
                &[],
                "ui-only",
                &[
                    (&[r#"alertname="Watchdog""#], "ui-only"),
                    (&[r#"severity="info""#], "ui-only"),
                ],
            ),
            (
                &[
                    TWO,
                    "alertmanager.route.critical=pager",
                    "alertmanager.route.warning=team",
                    "alertmanager.route.info=team",
                ],
                "pager",
                &[
                    (&[r#"alertname="Watchdog""#], "ui-only"),
                    (&[r#"severity="critical""#], "pager"),
                    (&[r#"severity="warning""#], "team"),
                    (&[r#"severity="info""#], "team"),
                ],
            ),
            // Overrides come before the severities, in the order given; info may go nowhere.
            (
                &[
                    TWO,
                    "alertmanager.route.receiver=ui-only",
                    "alertmanager.route.critical=pager",
                    "alertmanager.route.info=null",
                    r#"alertmanager.route.overrides=[{match: {alertname: DiskSpaceLow}, receiver: team}, {match: {namespace: prod, alertname: 'Say "hi"'}, receiver: ui-only}]"#,
                ],
                "ui-only",
                &[
                    (&[r#"alertname="Watchdog""#], "ui-only"),
                    (&[r#"alertname="DiskSpaceLow""#], "team"),
                    (
                        &[r#"alertname="Say \"hi\"""#, r#"namespace="prod""#],
                        "ui-only",
                    ),
                    (&[r#"severity="critical""#], "pager"),
                ],
            ),
        ];
        for (sets, default, want) in cases {
            let c = secret_config(&config(sets));
            assert_eq!(c.route.receiver, *default, "{sets:?}");
            assert_eq!(routes_of(&c), routes(want), "{sets:?}");
            // Child routes inherit grouping and timing from the default route.
            assert!(alert_routes(&c).all(|r| r.group_by.is_empty()));
        }
    }

    /// Watchdog goes to a dead man's switch when one is named, every minute; to the UI
    /// otherwise, on the default timing.
    #[test]
    fn watchdog_reaches_a_dead_mans_switch_every_minute() {
        let watchdog = |c: &AlertmanagerConfig| {
            alert_routes(c)
                .find(|r| r.matchers == [r#"alertname="Watchdog""#])
                .cloned()
                .unwrap()
        };
        let ui = watchdog(&secret_config(&config(&[])));
        assert_eq!(ui.receiver, "ui-only");
        assert_eq!(ui.repeat_interval, None);
        let c = secret_config(&config(&[
            "alertmanager.receivers=[{name: deadman, webhook: {url: 'https://hc.example/ping'}}]",
            "alertmanager.route.watchdog=deadman",
        ]));
        let w = watchdog(&c);
        assert_eq!(w.receiver, "deadman");
        assert_eq!(
            (w.group_wait, w.group_interval, w.repeat_interval),
            (Some("0s".into()), Some("1m".into()), Some("1m".into()))
        );
        let e = Config::default()
            .with_set("alertmanager.route.watchdog=nobody")
            .unwrap_err();
        assert_eq!(e.key, "alertmanager.route.watchdog");
    }

    #[test]
    fn inhibitions_stay_within_a_node_and_can_be_turned_off() {
        let c = secret_config(&config(&[]));
        assert_eq!(
            c.inhibit_rules,
            [
                InhibitRule {
                    source_matchers: vec![r#"severity="critical""#.into(), r#"node=~".+""#.into()],
                    target_matchers: vec![r#"severity="warning""#.into()],
                    equal: vec!["node".into()],
                },
                InhibitRule {
                    source_matchers: vec![
                        r#"alertname=~"NodeDown|WindowsExporterDown""#.into(),
                        r#"node=~".+""#.into()
                    ],
                    target_matchers: vec![
                        r#"alertname=~"HighCPUUsage|HighMemoryUsage|DiskSpaceLow|NodeFilesystemFillingUp|WindowsHighCPUUsage|WindowsHighMemoryUsage|WindowsDiskSpaceLow""#.into()
                    ],
                    equal: vec!["node".into()],
                },
            ]
        );
        let off = config(&["alertmanager.inhibitions=false"]);
        assert!(secret_config(&off).inhibit_rules.is_empty());
        assert!(!config_yaml(&off.alertmanager).contains("inhibit_rules"));
    }

    #[test]
    fn custom_resource_points_at_the_secret() {
        let objects = objects(&Context::new(&config(&["alertmanager.replicas=3"])));
        let am = objects
            .iter()
            .find(|o| model::kind(o) == "Alertmanager")
            .unwrap();
        assert_eq!(am.metadata.name.as_deref(), Some("automon"));
        assert_eq!(am.data["spec"]["configSecret"], CONFIG_SECRET);
        assert_eq!(am.data["spec"]["replicas"], 3);
        assert_eq!(
            am.data["spec"]["image"],
            "quay.io/prometheus/alertmanager:v0.35.0"
        );
        assert_eq!(am.data["spec"]["securityContext"]["runAsNonRoot"], true);
        assert!(
            objects
                .iter()
                .any(|o| model::kind(o) == "PodDisruptionBudget")
        );
        let policy = objects
            .iter()
            .find(|o| model::kind(o) == "NetworkPolicy")
            .unwrap();
        let ingress = policy.data["spec"]["ingress"].as_array().unwrap();
        assert_eq!(ingress.len(), 2, "web and mesh");
        assert_eq!(ingress[1]["ports"][1]["protocol"], "UDP");
    }

    /// With a size, a claim per replica keeps silences and the notification log across
    /// restarts; without, the operator's emptyDir.
    #[test]
    fn storage_is_a_claim_per_replica_when_sized() {
        let spec = |sets: &[&str]| {
            objects(&Context::new(&config(sets)))
                .into_iter()
                .find(|o| model::kind(o) == "Alertmanager")
                .unwrap()
                .data["spec"]
                .clone()
        };
        assert!(spec(&[]).get("storage").is_none());
        let s = spec(&[
            "alertmanager.storage.size=1Gi",
            "alertmanager.storage.storageClass=fast",
        ]);
        let claim = &s["storage"]["volumeClaimTemplate"]["spec"];
        assert_eq!(claim["resources"]["requests"]["storage"], "1Gi");
        assert_eq!(claim["storageClassName"], "fast");
        assert_eq!(claim["accessModes"], serde_json::json!(["ReadWriteOnce"]));
        for (set, key) in [
            (
                "alertmanager.storage.size=lots",
                "alertmanager.storage.size",
            ),
            (
                "alertmanager.storage.storageClass=Fast_SSD",
                "alertmanager.storage.storageClass",
            ),
            (
                "prometheus.storage.storageClass=Fast_SSD",
                "prometheus.storage.storageClass",
            ),
        ] {
            let e = Config::default().with_set(set).unwrap_err();
            assert_eq!(e.key, key, "{set}: {e}");
        }
    }

    #[test]
    fn one_replica_has_no_mesh_and_no_pdb() {
        let objects = objects(&Context::new(&config(&[])));
        assert!(
            !objects
                .iter()
                .any(|o| model::kind(o) == "PodDisruptionBudget")
        );
        let policy = objects
            .iter()
            .find(|o| model::kind(o) == "NetworkPolicy")
            .unwrap();
        assert_eq!(policy.data["spec"]["ingress"].as_array().unwrap().len(), 1);
    }
}
