//! Alertmanager: the `Alertmanager` custom resource, its configuration Secret built from the
//! configured receivers, its Service, a self-scrape, a NetworkPolicy and a PodDisruptionBudget
//! with more than one replica. With no receivers, alerts stay visible in the UI only.

use std::collections::BTreeMap;

use k8s_openapi::{
    ByteString,
    api::core::v1::{Secret, ServiceAccount, ServiceSpec},
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    Context,
    blocks::{pod_disruption_budget, self_scrape},
    custom, meta,
    network::{self, anywhere, pods, tcp, udp},
    object,
    security::operand_pod,
    service,
};

use crate::model::Object;
use crate::{config, versions};

pub const NAME: &str = "alertmanager";
/// The `Alertmanager` object; the operator names its StatefulSet `alertmanager-automon`.
pub const INSTANCE: &str = "automon";
pub const CONFIG_SECRET: &str = "alertmanager-automon-config";
pub const CONFIG_KEY: &str = "alertmanager.yaml";
pub use crate::config::UI_ONLY_RECEIVER;
const PORT: i32 = 9093;
/// `test-alert` reads each receiver's outcome off the notification metrics, which name the
/// receiver only with this feature.
pub const FEATURES: &[&str] = &["receiver-name-in-metrics"];
/// The label that sends a `test-alert` alert to one receiver, whatever the other routes say.
pub const TEST_RECEIVER_LABEL: &str = "automon_test_receiver";
/// The label each `test-alert` run gives its alerts, unique to the run: each is its own group.
pub const TEST_ID_LABEL: &str = "automon_test";
const MESH_PORT: i32 = 9094;

pub fn objects(ctx: &Context) -> Vec<Object> {
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
        service::service(
            ctx,
            NAME,
            &labels,
            ServiceSpec {
                // Silences made in the UI show up at once on the replica that made them.
                session_affinity: Some("ClientIP".into()),
                ..service::spec(ctx, NAME, &[("web", PORT)])
            },
        ),
        network_policy(ctx, &labels),
        self_scrape(ctx, NAME, &labels, "web"),
    ];
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
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "enableFeatures": FEATURES,
    });
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

/// Prometheus pushes alerts and Grafana reads them on 9093; replicas gossip on 9094 (TCP and
/// UDP). Out: receivers can be anywhere on any port, so egress stays open.
fn network_policy(ctx: &Context, labels: &BTreeMap<String, String>) -> Object {
    let mut ingress = vec![network::ingress(
        vec![pods(ctx, "prometheus"), pods(ctx, "grafana")],
        vec![tcp(PORT)],
    )];
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReceiverConfig {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhook_configs: Vec<WebhookConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slack_configs: Vec<SlackConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub email_configs: Vec<EmailConfig>,
}

/// A webhook: `url_file` (the mounted Secret key) whenever the configuration names one, which
/// after loading is always; `url` only for a configuration stored in the clear by an older
/// plugin.
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
        let named = [
            r.webhook.as_ref().and_then(|w| w.url_secret.as_ref()),
            r.slack.as_ref().and_then(|s| s.api_url_secret.as_ref()),
        ];
        for s in named.into_iter().flatten() {
            if !names.contains(&s.secret) {
                names.push(s.secret.clone());
            }
        }
    }
    names
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailConfig {
    pub to: String,
    pub from: String,
    pub smarthost: String,
    pub send_resolved: bool,
}

/// The configuration for `config.alertmanager`. Receivers were validated with the
/// configuration (each has an integration; the route names one of them).
pub fn alertmanager_config(c: &config::Alertmanager) -> AlertmanagerConfig {
    let default_receiver = c
        .route
        .receiver
        .clone()
        .or_else(|| c.receivers.first().map(|r| r.name.clone()))
        .unwrap_or_else(|| UI_ONLY_RECEIVER.to_string());
    // Watchdog fires all the time to prove the pipeline works; paging on it would be noise.
    let watchdog = RouteConfig {
        receiver: UI_ONLY_RECEIVER.into(),
        matchers: vec![r#"alertname="Watchdog""#.into()],
        ..Default::default()
    };
    // The configuration reserves the name, so this one is always the empty receiver.
    let mut receivers = vec![ReceiverConfig {
        name: UI_ONLY_RECEIVER.into(),
        ..Default::default()
    }];
    receivers.extend(c.receivers.iter().map(|r| {
        ReceiverConfig {
            name: r.name.clone(),
            webhook_configs: r
                .webhook
                .iter()
                .map(|w| WebhookConfig {
                    url: w.url.clone(),
                    url_file: w.url_secret.as_ref().map(secret_file),
                    send_resolved: true,
                })
                .collect(),
            slack_configs: r
                .slack
                .iter()
                .map(|s| SlackConfig {
                    api_url: s.api_url.clone(),
                    api_url_file: s.api_url_secret.as_ref().map(secret_file),
                    channel: s.channel.clone(),
                    send_resolved: true,
                })
                .collect(),
            email_configs: r
                .email
                .iter()
                .map(|e| EmailConfig {
                    to: e.to.clone(),
                    from: e.from.clone(),
                    smarthost: e.smarthost.clone(),
                    send_resolved: true,
                })
                .collect(),
        }
    }));
    AlertmanagerConfig {
        route: RouteConfig {
            receiver: default_receiver,
            matchers: Vec::new(),
            group_by: c.route.group_by.clone(),
            group_wait: Some(c.route.group_wait.0.clone()),
            group_interval: Some(c.route.group_interval.0.clone()),
            repeat_interval: Some(c.route.repeat_interval.0.clone()),
            routes: test_routes(c).into_iter().chain([watchdog]).collect(),
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
            matchers: vec![format!("{TEST_RECEIVER_LABEL}={:?}", r.name)],
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
        assert_eq!(routes.len(), 3);
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
