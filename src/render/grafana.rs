//! Grafana: the UI, with Prometheus and Alertmanager provisioned as datasources and a sidecar
//! that loads every ConfigMap labelled `grafana_dashboard: "1"`. The admin credentials live in
//! the Secret `grafana-admin`, which `enable` creates once; nothing rendered here holds them.

use crate::model::names;
use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        core::v1::{
            ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
            EnvVar, EnvVarSource, HTTPGetAction, PodSpec, Probe, SecretKeySelector, ServiceAccount,
            Volume, VolumeMount,
        },
        networking::v1::NetworkPolicyEgressRule,
        rbac::v1::{
            ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
        },
    },
    apimachinery::pkg::util::intstr::IntOrString,
};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{
    Context, deployment, exposure, meta,
    network::{self, api_server_egress, dns_egress, namespace_pods, pods, tcp},
    object,
    security::{restricted_container, restricted_pod},
    service,
};

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
    // Grafana reads provisioning only at start: a changed file must roll the pod.
    let checksum = hex(&Sha256::digest(format!("{datasources}\n{provider}")));
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

/// Prometheus (the default) and Alertmanager, by the Services the stack renders, with fixed
/// uids so that dashboards can name them.
fn datasources(ctx: &Context) -> String {
    let ns = ctx.namespace;
    to_yaml(&json!({
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "type": "prometheus",
                "uid": "prometheus",
                "access": "proxy",
                "url": format!(
                    "http://prometheus.{ns}.svc:9090{}",
                    ctx.config.prometheus.exposure().prefix()
                ),
                "isDefault": true,
                "editable": false,
                // Lets $__rate_interval fit the real scrape interval.
                "jsonData": {"timeInterval": ctx.config.prometheus.scrape_interval.0},
            },
            {
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
            },
        ],
    }))
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
    deployment::deployment(
        ctx,
        NAME,
        labels,
        ctx.config.grafana.placement(),
        Some(BTreeMap::from([(
            "automon.io/provisioning-checksum".to_string(),
            checksum.to_string(),
        )])),
        PodSpec {
            // The shared dashboards folder is group-owned by Grafana's group, so the sidecar
            // (another user) writes what Grafana reads.
            security_context: Some(restricted_pod(GRAFANA_UID, Some(GRAFANA_UID))),
            containers: vec![grafana_container(ctx), dashboards_sidecar(ctx)],
            volumes: Some(vec![
                empty_dir("storage"),
                empty_dir("dashboards"),
                empty_dir("tmp"),
                config_volume(DATASOURCES),
                config_volume(DASHBOARD_PROVIDER),
            ]),
            ..Default::default()
        },
    )
}

/// Grafana: its admin from the Secret, nothing fetched or reported over the network, the
/// provisioning files and the sidecar's dashboards mounted where it reads them.
fn grafana_container(ctx: &Context) -> Container {
    let secret_env = |name: &str, key: &str| EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: ADMIN_SECRET.into(),
                key: key.into(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
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
    let mut vars = vec![
        secret_env("GF_SECURITY_ADMIN_USER", ADMIN_USER_KEY),
        secret_env("GF_SECURITY_ADMIN_PASSWORD", ADMIN_PASSWORD_KEY),
        env("GF_AUTH_ANONYMOUS_ENABLED", "false"),
        env("GF_ANALYTICS_REPORTING_ENABLED", "false"),
        env("GF_ANALYTICS_CHECK_FOR_UPDATES", "false"),
        env("GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES", "false"),
        // No downloads at start: air-gapped clusters and the egress policy forbid them.
        env("GF_PLUGINS_PREINSTALL_DISABLED", "true"),
        env("GF_PATHS_PROVISIONING", PROVISIONING),
        env("GF_PATHS_DATA", "/var/lib/grafana"),
        // The root filesystem is read-only; log to stdout only.
        env("GF_LOG_MODE", "console"),
    ];
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
        resources: Some(meta::resources(&ctx.config.grafana.resources)),
        security_context: Some(restricted_container(GRAFANA_UID)),
        volume_mounts: Some(vec![
            mount("storage", "/var/lib/grafana", false),
            mount("dashboards", DASHBOARDS_DIR, true),
            mount("tmp", "/tmp", false),
            mount(DATASOURCES, &format!("{PROVISIONING}/datasources"), true),
            mount(
                DASHBOARD_PROVIDER,
                &format!("{PROVISIONING}/dashboards"),
                true,
            ),
        ]),
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
/// Grafana talks only to the stack's Prometheus and Alertmanager, DNS, and
/// (the sidecar) the API server.
fn network_policy(ctx: &Context, labels: &BTreeMap<String, String>) -> Object {
    let to_pods = |name: &str, port: i32| NetworkPolicyEgressRule {
        to: Some(vec![pods(ctx, name)]),
        ports: Some(vec![tcp(port)]),
    };
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
        Some(vec![
            to_pods("prometheus", 9090),
            to_pods("alertmanager", 9093),
            dns_egress(),
            api_server_egress(),
        ]),
    )
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
