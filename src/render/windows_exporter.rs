//! windows-exporter: node-exporter's counterpart on Windows nodes, where no Linux container
//! runs. A HostProcess pod (Windows' form of a host agent: a process on the host, as SYSTEM, in
//! the host's network) reads the host's performance counters; one ServiceMonitor names every
//! series after its node, exactly as node-exporter's does, so coverage joins them alike.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{
        Container, ContainerPort, EnvVar, EnvVarSource, ObjectFieldSelector, PodOS,
        PodSecurityContext, PodSpec, Probe, TCPSocketAction, WindowsSecurityContextOptions,
    },
    apimachinery::pkg::util::intstr::IntOrString,
};

use super::{
    Context,
    classes::{COMPONENT, OS_LABEL, WINDOWS, WINDOWS_EXPORTER as NAME, WINDOWS_EXPORTER_PORT},
    meta,
    per_node::{self, headless_service, node_affinity, not_excluded, scrape_only, tolerations},
};

use crate::model::Object;
use crate::{config::Resources, versions};

const PORT_NAME: &str = "metrics";
/// What the rules and dashboards read, and nothing else: every collector costs the node
/// performance-counter queries on each scrape.
const COLLECTORS: &str = "cpu,logical_disk,memory,net,os,system";
/// HostProcess containers run as a Windows account of the host, not a UID. SYSTEM reads every
/// performance counter; the less privileged LocalService cannot read all of them.
const RUN_AS: &str = "NT AUTHORITY\\system";
/// The Windows Firewall rule that admits Prometheus on the exporter's port, by a name that
/// says who made it. Windows nodes block inbound connections by default, and a HostProcess
/// pod's port is the host's.
const FIREWALL_RULE: &str = "automon-windows-exporter";

pub fn objects(ctx: &Context) -> Vec<Object> {
    if !ctx.classes.windows {
        return Vec::new();
    }
    let labels = ctx.labels(NAME, COMPONENT, versions::WINDOWS_EXPORTER.version);
    vec![
        per_node::service_account(ctx, NAME, &labels),
        daemon_set(ctx, &labels),
        headless_service(ctx, NAME, &labels, (PORT_NAME, port())),
        per_node::service_monitor(ctx, NAME, &labels, PORT_NAME),
        scrape_only(ctx, NAME, &labels, PORT_NAME),
    ]
}

fn port() -> i32 {
    i32::from(WINDOWS_EXPORTER_PORT)
}

fn daemon_set(ctx: &Context, labels: &BTreeMap<String, String>) -> Object {
    let cfg = &ctx.config.node_exporter;
    let port = port();
    let image = ctx.image(&versions::WINDOWS_EXPORTER);
    // The firewall rule, made once per node (it survives the pod); a HostProcess container runs
    // the host's PowerShell whatever image it comes from, so the exporter's own image serves.
    let firewall = Container {
        name: "firewall".into(),
        image: Some(image.clone()),
        command: Some(vec![
            "powershell.exe".into(),
            "-NoLogo".into(),
            "-NoProfile".into(),
            "-NonInteractive".into(),
            "-Command".into(),
            format!(
                "if (-not (Get-NetFirewallRule -Name '{FIREWALL_RULE}' -ErrorAction SilentlyContinue)) \
                 {{ New-NetFirewallRule -Name '{FIREWALL_RULE}' -DisplayName 'automon windows-exporter' \
                 -Direction Inbound -Action Allow -Protocol TCP -LocalPort {port} | Out-Null }}"
            ),
        ]),
        resources: Some(meta::resources(&Resources::new("10m", "32Mi", "128Mi"))),
        ..Default::default()
    };
    let exporter = Container {
        name: NAME.into(),
        image: Some(image),
        args: Some(vec![
            // Listen on the node's address only, as node-exporter does.
            format!("--web.listen-address=[$(HOST_IP)]:{port}"),
            format!("--collectors.enabled={COLLECTORS}"),
        ]),
        env: Some(vec![EnvVar {
            name: "HOST_IP".into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "status.hostIP".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        ports: Some(vec![ContainerPort {
            name: Some(PORT_NAME.into()),
            container_port: port,
            host_port: Some(port),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        // Ready once it listens on the node's address; an HTTP probe would make it collect
        // every counter for nothing.
        readiness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::String(PORT_NAME.into()),
                ..Default::default()
            }),
            timeout_seconds: Some(5),
            ..Default::default()
        }),
        // Performance-counter queries make it larger than node-exporter.
        resources: Some(meta::resources(&Resources::new("50m", "64Mi", "256Mi"))),
        ..Default::default()
    };
    let pod = PodSpec {
        // Declares the pod Windows' so that the API server checks it as such (no Linux
        // security fields) and Pod Security judges it by the Windows rules.
        os: Some(PodOS {
            name: WINDOWS.into(),
        }),
        // HostProcess pods must be in the host's network: the exporter's port is the node's.
        host_network: Some(true),
        security_context: Some(PodSecurityContext {
            windows_options: Some(WindowsSecurityContextOptions {
                host_process: Some(true),
                run_as_user_name: Some(RUN_AS.into()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        node_selector: Some(BTreeMap::from([(OS_LABEL.into(), WINDOWS.into())])),
        affinity: Some(node_affinity(vec![not_excluded(&cfg.exclude_label)])),
        tolerations: tolerations(cfg.tolerations),
        init_containers: Some(vec![firewall]),
        containers: vec![exporter],
        ..Default::default()
    };
    per_node::daemon_set(ctx, NAME, labels, pod)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::{
        config::Config,
        render::{NodeClasses, fixtures::find},
    };

    fn rendered(config: &Config, windows: bool) -> Vec<Value> {
        let ctx = Context {
            classes: NodeClasses {
                windows,
                gpu: false,
            },
            ..Context::new(config)
        };
        crate::render::fixtures::as_json(objects(&ctx))
    }

    fn pod(objects: &[Value]) -> &Value {
        &find(objects, "DaemonSet")["spec"]["template"]["spec"]
    }

    #[test]
    fn nothing_without_windows_nodes() {
        assert!(rendered(&Config::default(), false).is_empty());
        let kinds: Vec<_> = rendered(&Config::default(), true)
            .iter()
            .map(|o| o["kind"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(
            kinds,
            [
                "ServiceAccount",
                "DaemonSet",
                "Service",
                "ServiceMonitor",
                "NetworkPolicy"
            ]
        );
    }

    #[test]
    fn a_host_process_pod_on_windows_nodes_only() {
        let objs = rendered(&Config::default(), true);
        let p = pod(&objs);
        assert_eq!(p["os"], json!({"name": "windows"}));
        assert_eq!(p["nodeSelector"], json!({"kubernetes.io/os": "windows"}));
        assert_eq!(p["hostNetwork"], true);
        assert_eq!(
            p["securityContext"],
            json!({"windowsOptions": {"hostProcess": true, "runAsUserName": "NT AUTHORITY\\system"}})
        );
        // No Linux-only security field anywhere: the API server refuses them on Windows pods.
        for c in [&p["initContainers"][0], &p["containers"][0]] {
            assert!(c.get("securityContext").is_none(), "{c}");
        }
        assert_eq!(p["automountServiceAccountToken"], false);
        assert_eq!(p["priorityClassName"], "system-node-critical");
        assert_eq!(
            p["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
                [0]["matchExpressions"],
            json!([{"key": "automon.io/exclude", "operator": "NotIn", "values": ["true"]}])
        );
    }

    #[test]
    fn tolerations_follow_node_exporters_configuration() {
        let all = rendered(&Config::default(), true);
        assert_eq!(pod(&all)["tolerations"], json!([{"operator": "Exists"}]));
        let none = rendered(
            &Config::default()
                .with_set("nodeExporter.tolerations=none")
                .unwrap(),
            true,
        );
        assert!(pod(&none).get("tolerations").is_none());
    }

    #[test]
    fn serves_9182_on_the_nodes_address_and_opens_the_firewall_for_it() {
        let objs = rendered(&Config::default(), true);
        let p = pod(&objs);
        let c = &p["containers"][0];
        assert_eq!(
            c["image"],
            "ghcr.io/prometheus-community/windows-exporter:0.31.6"
        );
        assert_eq!(
            c["ports"][0],
            json!({"name": "metrics", "containerPort": 9182, "hostPort": 9182, "protocol": "TCP"})
        );
        assert!(
            c["args"]
                .as_array()
                .unwrap()
                .contains(&json!("--web.listen-address=[$(HOST_IP)]:9182"))
        );
        assert!(c["resources"]["requests"]["cpu"].is_string());
        assert!(c["resources"]["limits"]["memory"].is_string());
        let firewall = p["initContainers"][0]["command"].to_string();
        assert!(firewall.contains("-LocalPort 9182"), "{firewall}");
        assert!(firewall.contains("automon-windows-exporter"), "{firewall}");
        assert_eq!(find(&objs, "Service")["spec"]["clusterIP"], "None");
        assert_eq!(find(&objs, "Service")["spec"]["ports"][0]["port"], 9182);
    }

    #[test]
    fn images_follow_the_mirror() {
        let objs = rendered(
            &Config::default()
                .with_set("images.registry=mirror.example.com")
                .unwrap(),
            true,
        );
        let p = pod(&objs);
        for c in [&p["initContainers"][0], &p["containers"][0]] {
            assert_eq!(
                c["image"],
                "mirror.example.com/prometheus-community/windows-exporter:0.31.6"
            );
        }
    }

    #[test]
    fn series_are_job_windows_exporter_named_after_their_node() {
        let objs = rendered(&Config::default(), true);
        let sm = find(&objs, "ServiceMonitor");
        assert_eq!(sm["metadata"]["name"], "windows-exporter");
        assert_eq!(sm["spec"]["jobLabel"], "app.kubernetes.io/name");
        assert_eq!(
            sm["metadata"]["labels"]["app.kubernetes.io/name"],
            "windows-exporter"
        );
        let targets: Vec<_> = sm["spec"]["endpoints"][0]["relabelings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["targetLabel"].as_str().unwrap())
            .collect();
        assert_eq!(targets, ["node", "instance"]);
    }
}
