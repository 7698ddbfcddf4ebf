//! Grafana: the UI, with Prometheus and Alertmanager provisioned as datasources and a sidecar
//! that loads every ConfigMap labelled `grafana_dashboard: "1"`. The admin credentials live in
//! the Secret `grafana-admin`, which `enable` creates once; nothing rendered here holds them.

use crate::model::names;
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::{
    api::{
        core::v1::{
            ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
            EnvVar, EnvVarSource, HTTPGetAction, PersistentVolumeClaim, PersistentVolumeClaimSpec,
            PersistentVolumeClaimVolumeSource, PodSpec, Probe, SecretKeySelector, ServiceAccount,
            Volume, VolumeMount, VolumeResourceRequirements,
        },
        networking::v1::NetworkPolicyEgressRule,
        rbac::v1::{
            ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
        },
    },
    apimachinery::pkg::{api::resource::Quantity, util::intstr::IntOrString},
};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{
    Context, deployment, exposure, meta,
    network::{self, api_server_egress, dns_egress, namespace_pods, pods, tcp},
    object, prometheus,
    security::{restricted_container, restricted_pod},
    service,
};

use crate::config::grafana::{DataSource, Oidc};
use crate::model::Object;
use crate::versions;

pub const NAME: &str = "grafana";
pub const COMPONENT: &str = "grafana";
/// Created by `enable` at install time with a random password; never rendered.
pub const ADMIN_SECRET: &str = "grafana-admin";
pub const ADMIN_USER_KEY: &str = "admin-user";
pub const ADMIN_PASSWORD_KEY: &str = "admin-password";
/// The label (and value) that makes a ConfigMap a dashboard.
pub const DASHBOARD_LABEL: &str = "grafana_dashboard";
pub const DASHBOARD_LABEL_VALUE: &str = "1";
const PORT: i32 = 3000;
const PORT_NAME: &str = "http";
const DATASOURCES: &str = "grafana-datasources";
/// grafana.ini from `grafana.ini`, rendered only when that has settings.
const CONFIG: &str = "grafana-config";
/// The image's own configuration file, replaced by [`CONFIG`]'s.
const CONFIG_FILE: &str = "/etc/grafana/grafana.ini";
/// The claim of `grafana.persistence`.
pub const CLAIM: &str = "grafana";
const DASHBOARD_PROVIDER: &str = "grafana-dashboard-provider";
const PROVISIONING: &str = "/etc/grafana/provisioning";
const DASHBOARDS_DIR: &str = "/var/lib/grafana/dashboards";
/// The uid the Grafana image runs as.
const GRAFANA_UID: i64 = 472;

pub fn objects(ctx: &Context) -> Vec<Object> {
    if !ctx.config.grafana.enabled {
        return Vec::new();
    }
    let labels = ctx.labels(NAME, COMPONENT, versions::GRAFANA.version);
    let datasources = datasources(ctx);
    let provider = dashboard_provider();
    let ini = grafana_ini(ctx);
    // Grafana reads provisioning and grafana.ini only at start: a changed file must roll the pod.
    // Without settings of the user's, the same text as before grafana.ini existed: an upgrade
    // does not restart Grafana for nothing.
    let mut files = format!("{datasources}\n{provider}");
    if let Some(ini) = &ini {
        files.push_str(&format!("\n{ini}"));
    }
    let checksum = hex(&Sha256::digest(files));
    let mut objects = vec![
        object(ServiceAccount {
            metadata: ctx.meta(NAME, &labels),
            ..Default::default()
        }),
        config_map(ctx, &labels, DATASOURCES, "datasources.yaml", datasources),
        config_map(
            ctx,
            &labels,
            DASHBOARD_PROVIDER,
            "dashboards.yaml",
            provider,
        ),
        deployment(ctx, &labels, &checksum),
        service(ctx, &labels),
        network_policy(ctx, &labels),
    ];
    let to = exposure::Backend::of(NAME, PORT_NAME, PORT);
    objects.extend(exposure::objects(
        ctx,
        &labels,
        ctx.config.grafana.exposure(),
        &to,
    ));
    if let Some(ini) = ini {
        objects.push(config_map(ctx, &labels, CONFIG, "grafana.ini", ini));
    }
    if ctx.config.grafana.persistence.enabled {
        objects.push(claim(ctx, &labels));
    }
    objects.extend(sidecar_rbac(ctx, &labels));
    objects
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn config_map(
    ctx: &Context,
    labels: &BTreeMap<String, String>,
    name: &str,
    key: &str,
    text: String,
) -> Object {
    object(ConfigMap {
        metadata: ctx.meta(name, labels),
        data: Some(BTreeMap::from([(key.to_string(), text)])),
        ..Default::default()
    })
}

/// Prometheus (the default, unless one of `grafana.additionalDataSources` is) and
/// Alertmanager, by the Services the stack renders, with fixed uids so that dashboards can name
/// them; then the additional ones, in the order given.
fn datasources(ctx: &Context) -> String {
    let ns = ctx.namespace;
    let extra = &ctx.config.grafana.additional_data_sources;
    let mut list = vec![
        json!({
            "name": "Prometheus",
            "type": "prometheus",
            "uid": "prometheus",
            "access": "proxy",
            "url": prometheus_url(ctx),
            "isDefault": !extra.iter().any(|d| d.is_default),
            "editable": false,
            // Lets $__rate_interval fit the real scrape interval.
            "jsonData": {"timeInterval": ctx.config.prometheus.scrape_interval.0},
        }),
        json!({
            "name": "Alertmanager",
            "type": "alertmanager",
            "uid": "alertmanager",
            "access": "proxy",
            "url": format!(
                "http://alertmanager.{ns}.svc:9093{}",
                ctx.config.alertmanager.exposure().prefix()
            ),
            "editable": false,
            "jsonData": {
                "implementation": "prometheus",
                "handleGrafanaManagedAlerts": false,
            },
        }),
    ];
    list.extend(
        extra
            .iter()
            .enumerate()
            .map(|(i, d)| additional_datasource(i, d)),
    );
    to_yaml(&json!({"apiVersion": 1, "datasources": list}))
}

/// Where Grafana asks for series: Thanos Query over the shards when there are several, else
/// the one Prometheus (under the path it is exposed at).
fn prometheus_url(ctx: &Context) -> String {
    let ns = ctx.namespace;
    if prometheus::query::enabled(ctx) {
        let (name, port) = (prometheus::query::NAME, prometheus::query::PORT);
        return format!("http://{name}.{ns}.svc:{port}");
    }
    format!(
        "http://prometheus.{ns}.svc:9090{}",
        ctx.config.prometheus.exposure().prefix()
    )
}

/// One of `grafana.additionalDataSources` as Grafana provisions it. Grafana expands `$NAME` and
/// `${NAME}` in provisioning files from its environment: each secure field is such a reference
/// to a variable set from the Secret key ([`secure_env`]), and every `$` of the user's own text
/// is doubled, which Grafana reads as a literal `$`.
fn additional_datasource(i: usize, d: &DataSource) -> serde_json::Value {
    let mut v = json!({
        "name": literal(&d.name),
        "type": d.kind,
        "access": d.access.as_deref().unwrap_or("proxy"),
        "url": literal(&d.url),
        "isDefault": d.is_default,
        "editable": false,
    });
    if let Some(uid) = &d.uid {
        v["uid"] = json!(uid);
    }
    if d.basic_auth {
        v["basicAuth"] = json!(true);
    }
    if let Some(user) = &d.basic_auth_user {
        v["basicAuthUser"] = json!(literal(user));
    }
    if !d.json_data.is_empty() {
        v["jsonData"] = literal_json(&json!(d.json_data));
    }
    if !d.secure_json_data.is_empty() {
        v["secureJsonData"] = d
            .secure_json_data
            .keys()
            .map(|field| {
                (
                    field.clone(),
                    json!(format!("${{{}}}", secure_env(i, field))),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    v
}

/// The environment variable that carries secure field `field` of additional datasource `i`.
/// Not `GF_…`: those are Grafana's own settings.
fn secure_env(i: usize, field: &str) -> String {
    format!("AUTOMON_DATASOURCE_{i}_{}", field.to_ascii_uppercase())
}

/// Text Grafana's provisioning would expand (`$NAME`), kept as written.
fn literal(s: &str) -> String {
    s.replace('$', "$$")
}

fn literal_json(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(literal(s)),
        Value::Array(items) => Value::Array(items.iter().map(literal_json).collect()),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), literal_json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        other => other.clone(),
    }
}

/// grafana.ini from `grafana.ini`, or none when it has no settings. A value Grafana's ini reader
/// would cut (at `#` or `;`, which start a comment) or trim is written between triple quotes, as
/// Grafana's documentation says for such passwords.
fn grafana_ini(ctx: &Context) -> Option<String> {
    let sections = ctx.config.grafana.ini_sections();
    if sections.is_empty() {
        return None;
    }
    let mut out = String::from(
        "# Written by kubectl-automon from grafana.ini in its configuration: edits here are replaced.\n",
    );
    for (section, settings) in sections {
        out.push_str(&format!("\n[{section}]\n"));
        for (key, value) in settings {
            let plain = !value.contains(['#', ';', '"', '\'', '`'])
                && value.trim() == value
                && !value.ends_with('\\');
            match plain {
                true => out.push_str(&format!("{key} = {value}\n")),
                false => out.push_str(&format!("{key} = \"\"\"{value}\"\"\"\n")),
            }
        }
    }
    Some(out)
}

/// The claim of `grafana.persistence`: ReadWriteOnce, so one pod at a time (the Deployment
/// stops the old pod before it starts the new one).
fn claim(ctx: &Context, labels: &BTreeMap<String, String>) -> Object {
    let p = &ctx.config.grafana.persistence;
    object(PersistentVolumeClaim {
        metadata: ctx.meta(CLAIM, labels),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(p.size.0.clone()),
                )])),
                ..Default::default()
            }),
            storage_class_name: p.storage_class.clone(),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// A file provider over the folder the sidecar fills; the ConfigMaps are the source of truth,
/// so edits in the UI are refused rather than silently lost on the next restart.
fn dashboard_provider() -> String {
    to_yaml(&json!({
        "apiVersion": 1,
        "providers": [{
            "name": "automon",
            "orgId": 1,
            "type": "file",
            "disableDeletion": true,
            "allowUiUpdates": false,
            "updateIntervalSeconds": 30,
            "options": {"path": DASHBOARDS_DIR, "foldersFromFilesStructure": false},
        }],
    }))
}

fn to_yaml(v: &serde_json::Value) -> String {
    serde_saphyr::to_string(v).expect("provisioning files serialise as YAML")
}

fn deployment(ctx: &Context, labels: &BTreeMap<String, String>, checksum: &str) -> Object {
    let empty_dir = |name: &str| Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    };
    let config_volume = |name: &str| Volume {
        name: name.into(),
        config_map: Some(ConfigMapVolumeSource {
            name: name.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let cfg = &ctx.config.grafana;
    let storage = match cfg.persistence.enabled {
        true => Volume {
            name: "storage".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: CLAIM.into(),
                read_only: None,
            }),
            ..Default::default()
        },
        false => empty_dir("storage"),
    };
    let mut volumes = vec![
        storage,
        empty_dir("dashboards"),
        empty_dir("tmp"),
        config_volume(DATASOURCES),
        config_volume(DASHBOARD_PROVIDER),
    ];
    if !cfg.ini.is_empty() {
        volumes.push(config_volume(CONFIG));
    }
    let mut d = deployment::deployment(
        ctx,
        NAME,
        labels,
        cfg.placement(),
        Some(BTreeMap::from([(
            "automon.io/provisioning-checksum".to_string(),
            checksum.to_string(),
        )])),
        PodSpec {
            // The shared dashboards folder is group-owned by Grafana's group, so the sidecar
            // (another user) writes what Grafana reads.
            security_context: Some(restricted_pod(GRAFANA_UID, Some(GRAFANA_UID))),
            containers: vec![grafana_container(ctx), dashboards_sidecar(ctx)],
            volumes: Some(volumes),
            ..Default::default()
        },
    );
    // A ReadWriteOnce claim is held by the running pod: a rolling update that starts the new
    // pod first (maxSurge) would leave it waiting for the claim, on another node forever. With
    // one replica, no surge and one unavailable, the old pod is stopped first, as `Recreate`
    // does. Not `Recreate` itself: the API server refuses it over the rolling-update parameters
    // it defaulted onto a Deployment made without persistence (server-side apply cannot clear
    // fields it does not own), so turning persistence on later would fail.
    if cfg.persistence.enabled {
        d.data["spec"]["strategy"] = json!({
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
        });
    }
    d
}

/// Grafana: its admin from the Secret, nothing fetched or reported over the network, the
/// provisioning files and the sidecar's dashboards mounted where it reads them.
fn grafana_container(ctx: &Context) -> Container {
    let cfg = &ctx.config.grafana;
    let mut mounts = vec![
        mount("storage", "/var/lib/grafana", false),
        mount("dashboards", DASHBOARDS_DIR, true),
        mount("tmp", "/tmp", false),
        mount(DATASOURCES, &format!("{PROVISIONING}/datasources"), true),
        mount(
            DASHBOARD_PROVIDER,
            &format!("{PROVISIONING}/dashboards"),
            true,
        ),
    ];
    if !cfg.ini.is_empty() {
        mounts.push(VolumeMount {
            sub_path: Some("grafana.ini".into()),
            ..mount(CONFIG, CONFIG_FILE, true)
        });
    }
    let probe = |initial_delay| Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/api/health".into()),
            port: IntOrString::String(PORT_NAME.into()),
            ..Default::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        timeout_seconds: Some(5),
        ..Default::default()
    };
    let mut vars = grafana_env(ctx);
    vars.extend(root_url(ctx));
    Container {
        name: NAME.into(),
        image: Some(ctx.image(&versions::GRAFANA)),
        env: Some(vars),
        ports: Some(vec![ContainerPort {
            name: Some(PORT_NAME.into()),
            container_port: PORT,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        readiness_probe: Some(probe(5)),
        liveness_probe: Some(probe(60)),
        resources: Some(meta::resources(&cfg.resources)),
        security_context: Some(restricted_container(GRAFANA_UID)),
        volume_mounts: Some(mounts),
        ..Default::default()
    }
}

/// Grafana's settings that automon owns, as environment variables (which win over grafana.ini,
/// so `grafana.ini` refuses them): the admin, the client secret and the secure fields of the
/// datasources from Secret keys, never as values.
fn grafana_env(ctx: &Context) -> Vec<EnvVar> {
    let cfg = &ctx.config.grafana;
    let mut out = vec![
        secret_env("GF_SECURITY_ADMIN_USER", ADMIN_SECRET, ADMIN_USER_KEY),
        secret_env(
            "GF_SECURITY_ADMIN_PASSWORD",
            ADMIN_SECRET,
            ADMIN_PASSWORD_KEY,
        ),
        env(
            "GF_AUTH_ANONYMOUS_ENABLED",
            &cfg.anonymous.enabled.to_string(),
        ),
    ];
    if cfg.anonymous.enabled {
        out.push(env(
            "GF_AUTH_ANONYMOUS_ORG_ROLE",
            cfg.anonymous.role.as_str(),
        ));
    }
    out.extend([
        env("GF_ANALYTICS_REPORTING_ENABLED", "false"),
        env("GF_ANALYTICS_CHECK_FOR_UPDATES", "false"),
        env("GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES", "false"),
        // No downloads at start: air-gapped clusters and the egress policy forbid them.
        env("GF_PLUGINS_PREINSTALL_DISABLED", "true"),
        env("GF_PATHS_PROVISIONING", PROVISIONING),
        env("GF_PATHS_DATA", "/var/lib/grafana"),
        // The root filesystem is read-only; log to stdout only.
        env("GF_LOG_MODE", "console"),
    ]);
    if let Some(oidc) = &cfg.oidc {
        out.extend(oidc_env(oidc));
    }
    for (i, d) in cfg.additional_data_sources.iter().enumerate() {
        for (field, s) in &d.secure_json_data {
            out.push(secret_env(&secure_env(i, field), &s.name, &s.key));
        }
    }
    out
}

/// Grafana's `[auth.generic_oauth]`, the client secret from its Secret key.
fn oidc_env(o: &Oidc) -> Vec<EnvVar> {
    let var = |name: &str| format!("GF_AUTH_GENERIC_OAUTH_{name}");
    let mut out = vec![
        env(&var("ENABLED"), "true"),
        env(&var("NAME"), &o.name),
        env(&var("CLIENT_ID"), &o.client_id),
        secret_env(
            &var("CLIENT_SECRET"),
            &o.client_secret.name,
            &o.client_secret.key,
        ),
        env(&var("AUTH_URL"), &o.auth_url),
        env(&var("TOKEN_URL"), &o.token_url),
        env(&var("API_URL"), &o.api_url),
        env(&var("SCOPES"), &o.scopes.join(" ")),
        env(&var("ALLOW_SIGN_UP"), &o.allow_sign_up.to_string()),
    ];
    if let Some(path) = &o.role_attribute_path {
        out.push(env(&var("ROLE_ATTRIBUTE_PATH"), path));
    }
    out
}

/// A variable from a Secret's key, which must exist (preflight checks it before any write).
fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Where Grafana is reached, for its links and redirects: the exposed URL, or (exposed under a
/// path without a host) its own address under the path. Under a path it serves from it too
/// (and still answers at `/`: the probes, `open`).
fn root_url(ctx: &Context) -> Vec<EnvVar> {
    let exposure = ctx.config.grafana.exposure();
    let sub_path = !exposure.prefix().is_empty();
    let url = match exposure.external_url() {
        Some(url) if sub_path => format!("{url}/"),
        Some(url) => url,
        None if sub_path => format!(
            "%(protocol)s://%(domain)s:%(http_port)s{}/",
            exposure.prefix()
        ),
        None => return Vec::new(),
    };
    let mut vars = vec![env("GF_SERVER_ROOT_URL", &url)];
    if sub_path {
        vars.push(env("GF_SERVER_SERVE_FROM_SUB_PATH", "true"));
    }
    vars
}

/// The sidecar that copies the labelled dashboard ConfigMaps (of the stack's namespace, or of
/// every namespace) into the folder Grafana reads them from.
fn dashboards_sidecar(ctx: &Context) -> Container {
    let cfg = &ctx.config.grafana;
    let namespace = if cfg.dashboards_from_all_namespaces {
        "ALL"
    } else {
        ctx.namespace
    };
    Container {
        name: "dashboards".into(),
        image: Some(ctx.image(&versions::GRAFANA_SIDECAR)),
        env: Some(vec![
            env("LABEL", DASHBOARD_LABEL),
            env("LABEL_VALUE", DASHBOARD_LABEL_VALUE),
            env("FOLDER", DASHBOARDS_DIR),
            env("RESOURCE", "configmap"),
            env("NAMESPACE", namespace),
            env("METHOD", "WATCH"),
        ]),
        resources: Some(meta::resources(&cfg.sidecar_resources)),
        security_context: Some(restricted_container(65534)),
        volume_mounts: Some(vec![mount("dashboards", DASHBOARDS_DIR, false)]),
        ..Default::default()
    }
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

fn service(ctx: &Context, labels: &BTreeMap<String, String>) -> Object {
    service::service(
        ctx,
        NAME,
        labels,
        service::spec(ctx, NAME, &[(PORT_NAME, PORT)]),
    )
}

/// The sidecar reads ConfigMaps: cluster-wide only when dashboards come from every namespace.
fn sidecar_rbac(ctx: &Context, labels: &BTreeMap<String, String>) -> Vec<Object> {
    let rules = vec![PolicyRule {
        api_groups: Some(vec![String::new()]),
        resources: Some(vec!["configmaps".into()]),
        verbs: vec!["get".into(), "list".into(), "watch".into()],
        ..Default::default()
    }];
    let subjects = Some(vec![Subject {
        kind: "ServiceAccount".into(),
        name: NAME.into(),
        namespace: Some(ctx.namespace.into()),
        ..Default::default()
    }]);
    let role_ref = |kind: &str, name: String| RoleRef {
        api_group: "rbac.authorization.k8s.io".into(),
        kind: kind.into(),
        name,
    };
    if ctx.config.grafana.dashboards_from_all_namespaces {
        vec![
            object(ClusterRole {
                metadata: ctx.cluster_meta(NAME, labels),
                rules: Some(rules),
                ..Default::default()
            }),
            object(ClusterRoleBinding {
                metadata: ctx.cluster_meta(NAME, labels),
                role_ref: role_ref("ClusterRole", ctx.cluster_name(NAME)),
                subjects,
            }),
        ]
    } else {
        vec![
            object(Role {
                metadata: ctx.meta(NAME, labels),
                rules: Some(rules),
            }),
            object(RoleBinding {
                metadata: ctx.meta(NAME, labels),
                role_ref: role_ref("Role", NAME.into()),
                subjects,
            }),
        ]
    }
}

/// The UI is open to the namespace (port-forwards come on top), and to anywhere while exposed;
/// Grafana talks only to the stack's Prometheus and Alertmanager (and Thanos Query over the
/// shards), DNS, (the sidecar) the API server, and, on their URLs' ports, the OAuth provider and
/// the additional datasources Grafana's server calls (their addresses are not known when
/// rendering).
fn network_policy(ctx: &Context, labels: &BTreeMap<String, String>) -> Object {
    let to_pods = |name: &str, port: i32| NetworkPolicyEgressRule {
        to: Some(vec![pods(ctx, name)]),
        ports: Some(vec![tcp(port)]),
    };
    let mut egress = vec![
        to_pods("prometheus", 9090),
        to_pods("alertmanager", 9093),
        dns_egress(),
        api_server_egress(),
    ];
    if prometheus::query::enabled(ctx) {
        egress.push(to_pods(
            prometheus::query::NAME,
            prometheus::query::HTTP_PORT,
        ));
    }
    let ports = egress_ports(&ctx.config.grafana);
    if !ports.is_empty() {
        egress.push(NetworkPolicyEgressRule {
            to: None,
            ports: Some(ports.into_iter().map(tcp).collect()),
        });
    }
    network::policy(
        ctx,
        NAME,
        labels,
        [network::ingress(vec![namespace_pods()], vec![tcp(PORT)])]
            .into_iter()
            .chain(exposure::policy_rule(
                ctx.config.grafana.exposure(),
                tcp(PORT),
            ))
            .collect(),
        Some(egress),
    )
}

/// The ports Grafana's server connects to beyond the stack: the OAuth provider's token and
/// user-info endpoints (the browser opens its sign-in page) and the datasources it proxies;
/// 443 and 6443 are open already (the API server's).
pub fn egress_ports(cfg: &crate::config::Grafana) -> BTreeSet<i32> {
    let oidc = cfg
        .oidc
        .iter()
        .flat_map(|o| [o.token_url.as_str(), o.api_url.as_str()]);
    let sources = cfg
        .additional_data_sources
        .iter()
        .filter(|d| d.proxied())
        .map(|d| d.url.as_str());
    oidc.chain(sources)
        .filter_map(|url| {
            let uri: http::Uri = url.parse().ok()?;
            let default = match uri.scheme_str()? {
                "https" => 443,
                _ => 80,
            };
            Some(uri.port_u16().map_or(default, i32::from))
        })
        .filter(|p| !matches!(p, 443 | 6443))
        .collect()
}

/// The Grafana admin Secret with `password`: not rendered (a render is deterministic and may be
/// committed; a password must be neither), created once by `enable` with a random password.
/// It joins the parent's ApplySet so that `disable` removes it with the rest.
pub fn admin_secret(parent: &Object, password: &str) -> k8s_openapi::api::core::v1::Secret {
    let mut labels = parent.metadata.labels.clone().unwrap_or_default();
    let id = labels.remove(names::APPLYSET_ID_LABEL);
    labels.insert(names::NAME_LABEL.into(), NAME.into());
    labels.insert(names::COMPONENT_LABEL.into(), NAME.into());
    if let Some(id) = id {
        labels.insert(names::APPLYSET_PART_OF_LABEL.into(), id);
    }
    k8s_openapi::api::core::v1::Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(ADMIN_SECRET.into()),
            namespace: parent.metadata.namespace.clone(),
            labels: Some(labels),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            (
                "admin-user".to_string(),
                k8s_openapi::ByteString(b"admin".to_vec()),
            ),
            (
                "admin-password".to_string(),
                k8s_openapi::ByteString(password.as_bytes().to_vec()),
            ),
        ])),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::{config::Config, render::fixtures::find};

    fn rendered(config: &Config) -> Vec<Value> {
        crate::render::fixtures::as_json(objects(&Context::new(config)))
    }

    fn container<'a>(objects: &'a [Value], name: &str) -> &'a Value {
        find(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
    }

    fn env<'a>(c: &'a Value, name: &str) -> &'a Value {
        c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no env {name}"))
    }

    #[test]
    fn disabled_renders_nothing() {
        assert!(rendered(&Config::default().with_set("grafana.enabled=false").unwrap()).is_empty());
    }

    #[test]
    fn admin_credentials_come_only_from_the_secret() {
        let objs = rendered(&Config::default());
        assert!(!objs.iter().any(|o| o["kind"] == "Secret"));
        let g = container(&objs, "grafana");
        for (var, key) in [
            ("GF_SECURITY_ADMIN_USER", "admin-user"),
            ("GF_SECURITY_ADMIN_PASSWORD", "admin-password"),
        ] {
            let e = env(g, var);
            assert!(e.get("value").is_none(), "{e}");
            assert_eq!(
                e["valueFrom"]["secretKeyRef"],
                json!({"name": "grafana-admin", "key": key, "optional": false})
            );
        }
        // No other place carries a password or Grafana's well-known default one.
        let text = serde_json::to_string(&objs).unwrap();
        assert_eq!(text.matches("admin-password").count(), 1, "{text}");
        assert!(!text.contains("\"admin\""), "{text}");
        assert_eq!(env(g, "GF_AUTH_ANONYMOUS_ENABLED")["value"], "false");
    }

    #[test]
    fn datasources_point_at_the_stack_services() {
        let objs = rendered(&Config::default().with_set("namespace=mon").unwrap());
        let cm = objs
            .iter()
            .find(|o| o["metadata"]["name"] == "grafana-datasources")
            .unwrap();
        let text = cm["data"]["datasources.yaml"].as_str().unwrap();
        let v: Value = serde_saphyr::from_str(text).unwrap();
        let ds = v["datasources"].as_array().unwrap();
        assert_eq!(ds[0]["uid"], "prometheus");
        assert_eq!(ds[0]["url"], "http://prometheus.mon.svc:9090");
        assert_eq!(ds[0]["isDefault"], true);
        assert_eq!(ds[1]["uid"], "alertmanager");
        assert_eq!(ds[1]["type"], "alertmanager");
        assert_eq!(ds[1]["url"], "http://alertmanager.mon.svc:9093");
        assert_eq!(ds[1]["jsonData"]["implementation"], "prometheus");
    }

    #[test]
    fn sidecar_reads_dashboards_cluster_wide_only_when_asked() {
        let all = rendered(&Config::default());
        let s = container(&all, "dashboards");
        assert_eq!(env(s, "LABEL")["value"], "grafana_dashboard");
        assert_eq!(env(s, "LABEL_VALUE")["value"], "1");
        assert_eq!(env(s, "NAMESPACE")["value"], "ALL");
        let role = find(&all, "ClusterRole");
        assert_eq!(role["metadata"]["name"], "automon-grafana");
        assert_eq!(role["rules"][0]["resources"], json!(["configmaps"]));
        assert_eq!(role["rules"][0]["verbs"], json!(["get", "list", "watch"]));
        assert!(!all.iter().any(|o| o["kind"] == "Role"));

        let own = rendered(
            &Config::default()
                .with_set("grafana.dashboardsFromAllNamespaces=false")
                .unwrap(),
        );
        assert_eq!(
            env(container(&own, "dashboards"), "NAMESPACE")["value"],
            "automon"
        );
        assert!(!own.iter().any(|o| o["kind"] == "ClusterRole"));
        assert_eq!(find(&own, "RoleBinding")["roleRef"]["name"], "grafana");
    }

    #[test]
    fn containers_are_restricted_and_sized() {
        let objs = rendered(&Config::default());
        for (name, uid) in [("grafana", 472), ("dashboards", 65534)] {
            let c = container(&objs, name);
            let sc = &c["securityContext"];
            assert_eq!(sc["runAsUser"], uid, "{name}");
            assert_eq!(sc["runAsNonRoot"], true, "{name}");
            assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
            assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
            assert!(c["resources"]["requests"]["memory"].is_string(), "{name}");
            assert!(c["resources"]["limits"]["memory"].is_string(), "{name}");
        }
        let g = container(&objs, "grafana");
        assert_eq!(g["readinessProbe"]["httpGet"]["path"], "/api/health");
    }

    fn with(sets: &[&str]) -> Vec<Value> {
        let c = sets.iter().fold(Config::default(), |c, s| {
            c.with_set(s).unwrap_or_else(|e| panic!("{s}: {e}"))
        });
        rendered(&c)
    }

    fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    }

    fn volume<'a>(objects: &'a [Value], name: &str) -> &'a Value {
        find(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap()
    }

    #[test]
    fn persistence_puts_the_data_on_a_claim_and_stops_the_old_pod_first() {
        let none = rendered(&Config::default());
        assert!(!none.iter().any(|o| o["kind"] == "PersistentVolumeClaim"));
        assert_eq!(volume(&none, "storage")["emptyDir"], json!({}));
        assert!(find(&none, "Deployment")["spec"].get("strategy").is_none());

        let objs = with(&[
            "grafana.persistence.enabled=true",
            "grafana.persistence.size=20Gi",
            "grafana.persistence.storageClass=fast",
        ]);
        let claim = named(&objs, "PersistentVolumeClaim", "grafana").unwrap();
        assert_eq!(claim["spec"]["accessModes"], json!(["ReadWriteOnce"]));
        assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "20Gi");
        assert_eq!(claim["spec"]["storageClassName"], "fast");
        assert_eq!(claim["metadata"]["namespace"], "automon");
        let storage = volume(&objs, "storage");
        assert_eq!(storage["persistentVolumeClaim"]["claimName"], "grafana");
        assert!(storage.get("emptyDir").is_none());
        assert_eq!(
            find(&objs, "Deployment")["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}})
        );
        let g = container(&objs, "grafana");
        let data = g["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "storage")
            .unwrap();
        assert_eq!(data["mountPath"], "/var/lib/grafana");
        // No class given: the cluster's default StorageClass.
        let objs = with(&["grafana.persistence.enabled=true"]);
        let claim = named(&objs, "PersistentVolumeClaim", "grafana").unwrap();
        assert!(claim["spec"].get("storageClassName").is_none());
        assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "10Gi");
    }

    const OIDC: &str = "grafana.oidc={name: Keycloak, clientId: grafana, clientSecret: {name: sso, key: client-secret}, authUrl: 'https://sso.example.com/auth', tokenUrl: 'http://keycloak.auth.svc:8080/token', apiUrl: 'https://sso.example.com:8443/userinfo', scopes: [openid, email], roleAttributePath: \"contains(groups[*], 'admins') && 'Admin' || 'Viewer'\"}";

    #[test]
    fn oidc_is_grafanas_generic_oauth_with_the_secret_from_its_key() {
        let objs = with(&[OIDC]);
        let g = container(&objs, "grafana");
        for (var, value) in [
            ("GF_AUTH_GENERIC_OAUTH_ENABLED", "true"),
            ("GF_AUTH_GENERIC_OAUTH_NAME", "Keycloak"),
            ("GF_AUTH_GENERIC_OAUTH_CLIENT_ID", "grafana"),
            (
                "GF_AUTH_GENERIC_OAUTH_AUTH_URL",
                "https://sso.example.com/auth",
            ),
            (
                "GF_AUTH_GENERIC_OAUTH_TOKEN_URL",
                "http://keycloak.auth.svc:8080/token",
            ),
            (
                "GF_AUTH_GENERIC_OAUTH_API_URL",
                "https://sso.example.com:8443/userinfo",
            ),
            ("GF_AUTH_GENERIC_OAUTH_SCOPES", "openid email"),
            (
                "GF_AUTH_GENERIC_OAUTH_ROLE_ATTRIBUTE_PATH",
                "contains(groups[*], 'admins') && 'Admin' || 'Viewer'",
            ),
            ("GF_AUTH_GENERIC_OAUTH_ALLOW_SIGN_UP", "false"),
        ] {
            assert_eq!(env(g, var)["value"], value, "{var}");
        }
        let secret = env(g, "GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET");
        assert!(secret.get("value").is_none(), "{secret}");
        assert_eq!(
            secret["valueFrom"]["secretKeyRef"],
            json!({"name": "sso", "key": "client-secret", "optional": false})
        );
        // The token and user-info endpoints' ports are open; 443 is already (the API server's).
        let egress = find(&objs, "NetworkPolicy")["spec"]["egress"]
            .as_array()
            .unwrap()
            .clone();
        let last = egress.last().unwrap();
        assert!(last.get("to").is_none(), "{last}");
        assert_eq!(
            last["ports"],
            json!([{"port": 8080, "protocol": "TCP"}, {"port": 8443, "protocol": "TCP"}])
        );
        // Without OIDC nothing of it, and the egress is what it was.
        let plain = rendered(&Config::default());
        let g = container(&plain, "grafana");
        assert!(!g["env"].to_string().contains("GENERIC_OAUTH"));
        assert_eq!(
            find(&plain, "NetworkPolicy")["spec"]["egress"]
                .as_array()
                .unwrap()
                .len(),
            4
        );
    }

    #[test]
    fn anonymous_visitors_get_the_role_asked_for() {
        let g = rendered(&Config::default());
        let g = container(&g, "grafana");
        assert_eq!(env(g, "GF_AUTH_ANONYMOUS_ENABLED")["value"], "false");
        assert!(!g["env"].to_string().contains("GF_AUTH_ANONYMOUS_ORG_ROLE"));
        for (sets, role) in [
            (vec!["grafana.anonymous.enabled=true"], "Viewer"),
            (
                vec![
                    "grafana.anonymous.enabled=true",
                    "grafana.anonymous.role=Editor",
                ],
                "Editor",
            ),
        ] {
            let objs = with(&sets);
            let g = container(&objs, "grafana");
            assert_eq!(env(g, "GF_AUTH_ANONYMOUS_ENABLED")["value"], "true");
            assert_eq!(env(g, "GF_AUTH_ANONYMOUS_ORG_ROLE")["value"], role);
        }
    }

    /// grafana.ini read as Grafana's ini reader reads it: `[section]`, `key = value`, a `#` or `;`
    /// starting a comment, a value between triple quotes taken as it is.
    fn read_ini(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
        let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut section = String::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with(['#', ';']) {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_string();
                continue;
            }
            let (key, raw) = line.split_once('=').unwrap();
            let raw = raw.trim();
            let value = match raw.strip_prefix("\"\"\"") {
                Some(rest) => rest[..rest.rfind("\"\"\"").unwrap()].to_string(),
                None => raw.split(['#', ';']).next().unwrap().trim().to_string(),
            };
            out.entry(section.clone())
                .or_default()
                .insert(key.trim().to_string(), value);
        }
        out
    }

    #[test]
    fn ini_settings_become_grafanas_config_file() {
        let none = rendered(&Config::default());
        assert!(named(&none, "ConfigMap", "grafana-config").is_none());
        let objs = with(&[
            "grafana.ini={server: {root_url: 'https://grafana.example.com/'}, 'auth.generic_oauth': {use_pkce: true}, users: {default_theme: light}, dashboards: {default_home_dashboard_path: ' /x#y;z '}}",
        ]);
        let cm = named(&objs, "ConfigMap", "grafana-config").unwrap();
        let text = cm["data"]["grafana.ini"].as_str().unwrap();
        let ini = read_ini(text);
        assert_eq!(ini["server"]["root_url"], "https://grafana.example.com/");
        assert_eq!(ini["auth.generic_oauth"]["use_pkce"], "true");
        assert_eq!(ini["users"]["default_theme"], "light");
        // A value with comment characters or spaces at its ends is kept whole.
        assert_eq!(ini["dashboards"]["default_home_dashboard_path"], " /x#y;z ");
        let g = container(&objs, "grafana");
        let m = g["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "grafana-config")
            .unwrap();
        assert_eq!(m["mountPath"], "/etc/grafana/grafana.ini");
        assert_eq!(m["subPath"], "grafana.ini");
        assert_eq!(m["readOnly"], true);
        assert_eq!(
            volume(&objs, "grafana-config")["configMap"]["name"],
            "grafana-config"
        );
        // A changed setting restarts Grafana, which reads its file only at start.
        let checksum = |objs: &[Value]| {
            find(objs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
                ["automon.io/provisioning-checksum"]
                .clone()
        };
        let other = with(&["grafana.ini.users.default_theme=dark"]);
        let same = with(&["grafana.ini.users.default_theme=dark"]);
        assert_eq!(checksum(&other), checksum(&same));
        assert_ne!(checksum(&other), checksum(&objs));
        assert_ne!(checksum(&other), checksum(&none));
    }

    fn datasource_list(objs: &[Value]) -> Vec<Value> {
        let cm = named(objs, "ConfigMap", "grafana-datasources").unwrap();
        let v: Value =
            serde_saphyr::from_str(cm["data"]["datasources.yaml"].as_str().unwrap()).unwrap();
        v["datasources"].as_array().unwrap().clone()
    }

    #[test]
    fn additional_datasources_join_the_provisioning_file() {
        let objs = with(&[
            "grafana.additionalDataSources=[{name: Loki, type: loki, uid: loki, url: 'http://loki.logging.svc:3100', basicAuth: true, basicAuthUser: 'g$1', jsonData: {maxLines: 1000, derivedFields: [{name: trace, matcherRegex: 'traceID=(\\w+)$'}]}, secureJsonData: {basicAuthPassword: {name: loki, key: password}}}, {name: Tempo, type: tempo, url: 'https://tempo.example.com', access: direct}]",
        ]);
        let ds = datasource_list(&objs);
        assert_eq!(ds.len(), 4);
        assert_eq!(ds[0]["uid"], "prometheus");
        assert_eq!(ds[0]["isDefault"], true);
        let loki = &ds[2];
        assert_eq!(loki["name"], "Loki");
        assert_eq!(loki["type"], "loki");
        assert_eq!(loki["uid"], "loki");
        assert_eq!(loki["access"], "proxy");
        assert_eq!(loki["isDefault"], false);
        assert_eq!(loki["basicAuth"], true);
        // Grafana expands $NAME in provisioning: the user's own `$` is doubled, read back as one.
        assert_eq!(loki["basicAuthUser"], "g$$1");
        assert_eq!(loki["jsonData"]["maxLines"], 1000);
        assert_eq!(
            loki["jsonData"]["derivedFields"][0]["matcherRegex"],
            "traceID=(\\w+)$$"
        );
        // The password is a reference to a variable that comes from the Secret's key.
        assert_eq!(
            loki["secureJsonData"],
            json!({"basicAuthPassword": "${AUTOMON_DATASOURCE_0_BASICAUTHPASSWORD}"})
        );
        let g = container(&objs, "grafana");
        assert_eq!(
            env(g, "AUTOMON_DATASOURCE_0_BASICAUTHPASSWORD")["valueFrom"]["secretKeyRef"],
            json!({"name": "loki", "key": "password", "optional": false})
        );
        assert_eq!(ds[3]["access"], "direct");
        // Grafana's server calls Loki (3100): open; the browser calls Tempo: nothing to open.
        let egress = find(&objs, "NetworkPolicy")["spec"]["egress"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(
            egress.last().unwrap()["ports"],
            json!([{"port": 3100, "protocol": "TCP"}])
        );

        let objs = with(&[
            "grafana.additionalDataSources=[{name: Loki, type: loki, url: 'http://loki:3100', isDefault: true}]",
        ]);
        let ds = datasource_list(&objs);
        assert_eq!(ds[0]["isDefault"], false);
        assert_eq!(ds[2]["isDefault"], true);
        assert_eq!(ds.iter().filter(|d| d["isDefault"] == true).count(), 1);
    }

    #[test]
    fn a_changed_datasource_rolls_the_pod() {
        let checksum = |c: &Config| {
            find(&rendered(c), "Deployment")["spec"]["template"]["metadata"]["annotations"]
                ["automon.io/provisioning-checksum"]
                .clone()
        };
        let a = checksum(&Config::default());
        assert_eq!(a, checksum(&Config::default()));
        assert_ne!(
            a,
            checksum(&Config::default().with_set("namespace=other").unwrap())
        );
    }
}
