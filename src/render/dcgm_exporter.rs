//! dcgm-exporter: NVIDIA's GPU exporter, beside node-exporter on every GPU node. It reads each
//! GPU through DCGM (utilisation, memory, temperature, power, XID errors) and, through the
//! kubelet's pod-resources socket, which pod holds which GPU. One ServiceMonitor names every
//! series after its node, as node-exporter's does.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction,
    HostPathVolumeSource, NodeSelectorRequirement, ObjectFieldSelector, PodSpec, Probe,
    SeccompProfile, SecurityContext, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{
    Context,
    classes::{
        COMPONENT, DCGM_EXPORTER as NAME, DCGM_EXPORTER_PORT, GPU_PRESENT_LABEL, GPU_RESOURCE,
        OS_LABEL,
    },
    meta, network,
    per_node::{self, headless_service, node_affinity, not_excluded, scrape_ingress, tolerations},
};

use crate::model::Object;
use crate::{config::Resources, versions};

const PORT_NAME: &str = "metrics";
/// Where the kubelet serves its pod-resources API (which container holds which device).
const POD_RESOURCES: &str = "/var/lib/kubelet/pod-resources";

pub fn objects(ctx: &Context) -> Vec<Object> {
    if !ctx.classes.gpu {
        return Vec::new();
    }
    let labels = ctx.labels(NAME, COMPONENT, versions::DCGM_EXPORTER.version);
    // In the pod network, unlike the host-network exporters, so the policy holds; it talks to
    // nothing (the kubelet's socket is a file), so no egress at all.
    let ingress = vec![scrape_ingress(ctx, PORT_NAME)];
    let policy = network::policy(ctx, NAME, &labels, ingress, Some(Vec::new()));
    vec![
        per_node::service_account(ctx, NAME, &labels),
        daemon_set(ctx, &labels),
        headless_service(ctx, NAME, &labels, (PORT_NAME, port())),
        per_node::service_monitor(ctx, NAME, &labels, PORT_NAME),
        policy,
    ]
}

fn port() -> i32 {
    i32::from(DCGM_EXPORTER_PORT)
}

/// Runs as root with SYS_ADMIN and nothing else. NVIDIA documents SYS_ADMIN as what DCGM's
/// profiling metrics (`DCGM_FI_PROF_*`, in the exporter's default counters) need; a capability
/// added to a container only takes effect for root, and without it the exporter still starts
/// but leaves those metrics out. Everything else of the restricted profile holds: every other
/// capability dropped, no escalation, not privileged, the runtime's seccomp profile. The root
/// filesystem stays writable: NVIDIA's manifests do not say where DCGM's embedded host engine
/// writes, so a read-only one waits until that is tested on a GPU node.
fn security_context() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(false),
        run_as_user: Some(0),
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        capabilities: Some(Capabilities {
            add: Some(vec!["SYS_ADMIN".into()]),
            drop: Some(vec!["ALL".into()]),
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn daemon_set(ctx: &Context, labels: &BTreeMap<String, String>) -> Object {
    let cfg = &ctx.config.node_exporter;
    let env = |name: &str, value: &str| EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    };
    let container = Container {
        name: NAME.into(),
        image: Some(ctx.image(&versions::DCGM_EXPORTER)),
        env: Some(vec![
            env("DCGM_EXPORTER_LISTEN", &format!(":{}", port())),
            // Label GPU series with the pod that holds the GPU (from pod-resources).
            env("DCGM_EXPORTER_KUBERNETES", "true"),
            // The NVIDIA container runtime gives the container every GPU of the node (the
            // image asks for them too; said here so the dependency is visible).
            env("NVIDIA_VISIBLE_DEVICES", "all"),
            // The `Hostname` label: the node, not the pod's name.
            EnvVar {
                name: "NODE_NAME".into(),
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        field_path: "spec.nodeName".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ]),
        ports: Some(vec![ContainerPort {
            name: Some(PORT_NAME.into()),
            container_port: port(),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        // DCGM takes a while to find the GPUs; ready once it answers its health check.
        readiness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/health".into()),
                port: IntOrString::String(PORT_NAME.into()),
                ..Default::default()
            }),
            initial_delay_seconds: Some(10),
            timeout_seconds: Some(5),
            ..Default::default()
        }),
        // DCGM's host engine runs inside the exporter and grows with the GPUs it watches.
        resources: Some(meta::resources(&Resources::new("100m", "256Mi", "1Gi"))),
        security_context: Some(security_context()),
        volume_mounts: Some(vec![VolumeMount {
            name: "pod-resources".into(),
            mount_path: POD_RESOURCES.into(),
            read_only: Some(true),
            ..Default::default()
        }]),
        ..Default::default()
    };
    // GPU nodes are usually tainted nvidia.com/gpu so that only GPU workloads land there: the
    // exporter tolerates that taint whatever the configured policy, plus what the policy adds.
    let mut tolerate = vec![Toleration {
        key: Some(GPU_RESOURCE.into()),
        operator: Some("Exists".into()),
        ..Default::default()
    }];
    tolerate.extend(tolerations(cfg.tolerations).unwrap_or_default());
    let pod = PodSpec {
        node_selector: Some(BTreeMap::from([(OS_LABEL.into(), "linux".into())])),
        affinity: Some(node_affinity(vec![
            NodeSelectorRequirement {
                key: GPU_PRESENT_LABEL.into(),
                operator: "In".into(),
                values: Some(vec!["true".into()]),
            },
            not_excluded(&cfg.exclude_label),
        ])),
        tolerations: Some(tolerate),
        containers: vec![container],
        volumes: Some(vec![Volume {
            name: "pod-resources".into(),
            host_path: Some(HostPathVolumeSource {
                path: POD_RESOURCES.into(),
                type_: Some("Directory".into()),
            }),
            ..Default::default()
        }]),
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

    fn rendered(config: &Config, gpu: bool) -> Vec<Value> {
        let ctx = Context {
            classes: NodeClasses {
                windows: false,
                gpu,
            },
            ..Context::new(config)
        };
        crate::render::fixtures::as_json(objects(&ctx))
    }

    fn pod(objects: &[Value]) -> &Value {
        &find(objects, "DaemonSet")["spec"]["template"]["spec"]
    }

    #[test]
    fn nothing_without_gpu_nodes() {
        assert!(rendered(&Config::default(), false).is_empty());
        assert_eq!(rendered(&Config::default(), true).len(), 5);
    }

    #[test]
    fn runs_on_gpu_nodes_despite_their_taint() {
        let objs = rendered(&Config::default(), true);
        let p = pod(&objs);
        assert_eq!(
            p["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"],
            json!([{"matchExpressions": [
                {"key": "nvidia.com/gpu.present", "operator": "In", "values": ["true"]},
                {"key": "automon.io/exclude", "operator": "NotIn", "values": ["true"]},
            ]}])
        );
        assert_eq!(
            p["tolerations"],
            json!([{"key": "nvidia.com/gpu", "operator": "Exists"}, {"operator": "Exists"}])
        );
        // With no blanket toleration configured, the GPU taint is still tolerated.
        let none = rendered(
            &Config::default()
                .with_set("nodeExporter.tolerations=none")
                .unwrap(),
            true,
        );
        assert_eq!(
            pod(&none)["tolerations"],
            json!([{"key": "nvidia.com/gpu", "operator": "Exists"}])
        );
    }

    #[test]
    fn sys_admin_is_the_only_capability_and_the_socket_is_read_only() {
        let objs = rendered(&Config::default(), true);
        let p = pod(&objs);
        assert!(p.get("hostNetwork").is_none());
        assert!(p.get("hostPID").is_none());
        let c = &p["containers"][0];
        let sc = &c["securityContext"];
        assert_eq!(
            sc["capabilities"],
            json!({"add": ["SYS_ADMIN"], "drop": ["ALL"]})
        );
        assert_eq!(sc["privileged"], false);
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
        assert_eq!(
            c["volumeMounts"],
            json!([{"name": "pod-resources", "mountPath": "/var/lib/kubelet/pod-resources", "readOnly": true}])
        );
        assert_eq!(
            p["volumes"][0]["hostPath"]["path"],
            "/var/lib/kubelet/pod-resources"
        );
        assert_eq!(c["ports"][0]["containerPort"], 9400);
        assert!(c["ports"][0].get("hostPort").is_none());
        assert_eq!(
            c["image"],
            "nvcr.io/nvidia/k8s/dcgm-exporter:4.6.1-4.8.4-distroless"
        );
        assert!(c["resources"]["requests"]["memory"].is_string());
        assert!(c["resources"]["limits"]["memory"].is_string());
        assert_eq!(p["automountServiceAccountToken"], false);
    }

    #[test]
    fn only_prometheus_reaches_it_and_it_reaches_nothing() {
        let objs = rendered(&Config::default(), true);
        let np = find(&objs, "NetworkPolicy");
        assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(np["spec"]["egress"], json!([]));
        assert_eq!(np["spec"]["ingress"][0]["ports"][0]["port"], "metrics");
        let sm = find(&objs, "ServiceMonitor");
        assert_eq!(
            sm["metadata"]["labels"]["app.kubernetes.io/name"],
            "dcgm-exporter"
        );
        assert_eq!(find(&objs, "Service")["spec"]["clusterIP"], "None");
    }
}
