//! kube-state-metrics: the API server's view of nodes, pods and workloads as metrics (node
//! conditions, node labels for the exclusion and coverage checks, pod phases). It lists and
//! watches exactly the resources it exports, and never Secrets. Beside another stack's
//! kube-state-metrics it exports only what that one does not: `kube_node_labels` with automon's
//! node-label allowlist ([`node_labels_only`]).

use crate::model::names;
use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        core::v1::{
            Container, ContainerPort, HTTPGetAction, PodSpec, Probe, ServicePort, ServiceSpec,
        },
        rbac::v1::PolicyRule,
    },
    apimachinery::pkg::util::intstr::IntOrString,
};
use serde_json::json;

use super::{
    Context, classes, custom, deployment, meta,
    network::{self, tcp},
    rbac,
    security::{restricted_container, restricted_pod},
    service,
};

use crate::model::Object;
use crate::versions;

pub const NAME: &str = "kube-state-metrics";
pub const COMPONENT: &str = "exporter";
const METRICS_PORT: i32 = 8080;
const METRICS_PORT_NAME: &str = "http-metrics";
const TELEMETRY_PORT: i32 = 8081;
const TELEMETRY_PORT_NAME: &str = "telemetry";

/// The collectors it runs, by API group. `--resources` and the ClusterRole are both made from
/// this one list, so that it can never be granted more than it exports (or export what it may
/// not read).
const COLLECTORS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "endpoints",
            "namespaces",
            "nodes",
            "persistentvolumeclaims",
            "persistentvolumes",
            "pods",
            "resourcequotas",
            "services",
        ],
    ),
    (
        "apps",
        &["daemonsets", "deployments", "replicasets", "statefulsets"],
    ),
    ("autoscaling", &["horizontalpodautoscalers"]),
    ("batch", &["cronjobs", "jobs"]),
];

/// The one series automon's own kube-state-metrics exports beside another stack's: the node
/// labels its allowlist names, which the coverage checks read and that stack's does not carry.
pub const NODE_LABELS: &str = "kube_node_labels";

/// Whether automon reads `metric` from its own kube-state-metrics beside another's: the node
/// labels, and what describes no object of the cluster (`up`, the exporter's own
/// `kube_state_metrics_*`).
pub fn only_its_own(metric: &str) -> bool {
    metric == NODE_LABELS
        || !metric.starts_with("kube_")
        || metric.starts_with("kube_state_metrics_")
}

/// The collectors [`NODE_LABELS`] needs.
const NODE_LABELS_COLLECTORS: &[(&str, &[&str])] = &[("", &["nodes"])];

pub fn objects(ctx: &Context) -> Vec<Object> {
    let labels = ctx.labels(NAME, COMPONENT, versions::KUBE_STATE_METRICS.version);
    let mut objects = rbac::cluster_identity(ctx, NAME, &labels, cluster_rules(COLLECTORS));
    objects.extend([
        deployment(ctx, &labels),
        service(ctx, &labels),
        service_monitor(ctx, &labels),
        network::scraped_api_client(
            ctx,
            NAME,
            &labels,
            vec![tcp(METRICS_PORT), tcp(TELEMETRY_PORT)],
        ),
    ]);
    objects
}

/// The node labels `kube_node_labels` carries. A GPU node class adds the label the GPU
/// exporter is scheduled by, so that the GPU alerts know where it should run.
fn node_labels<'a>(ctx: &'a Context) -> Vec<&'a str> {
    let mut labels = vec![
        classes::OS_LABEL,
        ctx.config.node_exporter.exclude_label.as_str(),
    ];
    if ctx.classes.gpu {
        labels.push(classes::GPU_PRESENT_LABEL);
    }
    labels
}

/// `--resources=` value: every one of `collectors`, sorted.
fn resources_flag(collectors: &[(&str, &[&str])]) -> String {
    let mut all: Vec<&str> = collectors
        .iter()
        .flat_map(|(_, r)| r.iter().copied())
        .collect();
    all.sort_unstable();
    all.join(",")
}

/// List and watch of exactly what `--resources` collects.
fn cluster_rules(collectors: &[(&str, &[&str])]) -> Vec<PolicyRule> {
    collectors
        .iter()
        .map(|(group, resources)| PolicyRule {
            api_groups: Some(vec![(*group).into()]),
            resources: Some(resources.iter().map(|r| (*r).into()).collect()),
            verbs: vec!["list".into(), "watch".into()],
            ..Default::default()
        })
        .collect()
}

/// `o` as it runs beside another stack's kube-state-metrics, which exports every other series:
/// its Deployment collecting nodes and exporting [`NODE_LABELS`] alone, its ClusterRole reading
/// nodes alone. Any other object is returned as it is.
pub fn node_labels_only(mut o: Object) -> Object {
    let types = o.types.as_ref().map(|t| t.kind.as_str());
    let ours = (o.metadata.labels.as_ref())
        .and_then(|l| l.get(names::NAME_LABEL))
        .is_some_and(|n| n == NAME);
    match types {
        Some("Deployment") if ours => {
            let resources = format!("--resources={}", resources_flag(NODE_LABELS_COLLECTORS));
            for c in o.data["spec"]["template"]["spec"]["containers"]
                .as_array_mut()
                .into_iter()
                .flatten()
                .filter(|c| c["name"] == NAME)
            {
                if let Some(args) = c["args"].as_array_mut() {
                    for a in args.iter_mut() {
                        if a.as_str().is_some_and(|a| a.starts_with("--resources=")) {
                            *a = resources.clone().into();
                        }
                    }
                    args.push(format!("--metric-allowlist={NODE_LABELS}").into());
                }
            }
        }
        Some("ClusterRole") if ours => {
            o.data["rules"] = serde_json::to_value(cluster_rules(NODE_LABELS_COLLECTORS))
                .expect("policy rules serialise");
        }
        _ => {}
    }
    o
}

fn deployment(ctx: &Context, labels: &BTreeMap<String, String>) -> Object {
    let probe = |path: &str, port: &str| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(port.into()),
            scheme: Some("HTTP".into()),
            ..Default::default()
        }),
        initial_delay_seconds: Some(5),
        timeout_seconds: Some(5),
        ..Default::default()
    };
    let port = |name: &str, number: i32| ContainerPort {
        name: Some(name.into()),
        container_port: number,
        protocol: Some("TCP".into()),
        ..Default::default()
    };
    let container = Container {
        name: NAME.into(),
        image: Some(ctx.image(&versions::KUBE_STATE_METRICS)),
        args: Some(vec![
            format!("--port={METRICS_PORT}"),
            format!("--telemetry-port={TELEMETRY_PORT}"),
            format!("--resources={}", resources_flag(COLLECTORS)),
            // The OS label tells Linux nodes (which get node-exporter) from the rest; the
            // exclusion label tells deliberately unmonitored nodes from coverage gaps. On
            // `kube_node_labels` they become `label_` + the key with every non-alphanumeric
            // character replaced by `_`: label_kubernetes_io_os, label_automon_io_exclude.
            format!(
                "--metric-labels-allowlist=nodes=[{}]",
                node_labels(ctx).join(",")
            ),
        ]),
        ports: Some(vec![
            port(METRICS_PORT_NAME, METRICS_PORT),
            port(TELEMETRY_PORT_NAME, TELEMETRY_PORT),
        ]),
        // /livez on the metrics port fails when it loses the API server; /readyz on the
        // telemetry port once its informers have synced.
        liveness_probe: Some(probe("/livez", METRICS_PORT_NAME)),
        readiness_probe: Some(probe("/readyz", TELEMETRY_PORT_NAME)),
        resources: Some(meta::resources(
            &ctx.sizing
                .kube_state_metrics
                .overlaid(&ctx.config.kube_state_metrics.resources),
        )),
        security_context: Some(restricted_container(65534)),
        ..Default::default()
    };
    deployment::deployment(
        ctx,
        NAME,
        labels,
        ctx.config.kube_state_metrics.placement(),
        None,
        PodSpec {
            security_context: Some(restricted_pod(65534, None)),
            containers: vec![container],
            ..Default::default()
        },
    )
}

fn service(ctx: &Context, labels: &BTreeMap<String, String>) -> Object {
    let _port = |name: &str, number: i32| ServicePort {
        name: Some(name.into()),
        port: number,
        target_port: Some(IntOrString::String(name.into())),
        protocol: Some("TCP".into()),
        ..Default::default()
    };
    service::service(
        ctx,
        NAME,
        labels,
        ServiceSpec {
            cluster_ip: Some("None".into()),
            ..service::spec(
                ctx,
                NAME,
                &[
                    (METRICS_PORT_NAME, METRICS_PORT),
                    (TELEMETRY_PORT_NAME, TELEMETRY_PORT),
                ],
            )
        },
    )
}

/// `honorLabels` keeps the `namespace`, `pod` and `node` labels of the objects it describes
/// instead of renaming them to `exported_*` in favour of its own pod's.
fn service_monitor(ctx: &Context, labels: &BTreeMap<String, String>) -> Object {
    let interval = &ctx.config.prometheus.scrape_interval.0;
    custom(json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": ctx.meta(NAME, labels),
        "spec": {
            "jobLabel": names::NAME_LABEL,
            "selector": {"matchLabels": ctx.selector(NAME)},
            "endpoints": [
                {
                    "port": METRICS_PORT_NAME,
                    "scheme": "http",
                    "interval": interval,
                    "honorLabels": true,
                },
                {
                    "port": TELEMETRY_PORT_NAME,
                    "scheme": "http",
                    "interval": interval,
                },
            ],
        },
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::{config::Config, render::fixtures::find};

    fn rendered(config: &Config) -> Vec<Value> {
        crate::render::fixtures::as_json(objects(&Context::new(config)))
    }

    fn args(objects: &[Value]) -> Vec<String> {
        crate::render::fixtures::deployment_args(objects)
    }

    #[test]
    fn cluster_role_reads_only_what_it_exports_and_never_secrets() {
        let objs = rendered(&Config::default());
        let rules = find(&objs, "ClusterRole")["rules"]
            .as_array()
            .unwrap()
            .clone();
        let mut granted = Vec::new();
        for r in &rules {
            assert_eq!(r["verbs"], json!(["list", "watch"]), "{r}");
            for res in r["resources"].as_array().unwrap() {
                granted.push(res.as_str().unwrap().to_string());
            }
        }
        assert!(
            !granted.iter().any(|r| r == "secrets" || r == "*"),
            "{granted:?}"
        );
        granted.sort();
        let flag = args(&objs)
            .into_iter()
            .find_map(|a| a.strip_prefix("--resources=").map(str::to_string))
            .unwrap();
        assert_eq!(flag.split(',').collect::<Vec<_>>(), granted);
        for needed in ["nodes", "pods", "deployments", "daemonsets"] {
            assert!(granted.iter().any(|g| g == needed), "{needed}");
        }
    }

    #[test]
    fn node_labels_for_os_and_exclusion_are_exported() {
        let objs = rendered(&Config::default());
        assert!(
            args(&objs).contains(
                &"--metric-labels-allowlist=nodes=[kubernetes.io/os,automon.io/exclude]".into()
            ),
            "{:?}",
            args(&objs)
        );
        let config = Config::default();
        let gpu = crate::render::fixtures::as_json(objects(&Context {
            classes: crate::render::NodeClasses {
                windows: true,
                gpu: true,
            },
            ..Context::new(&config)
        }));
        assert!(
            args(&gpu).contains(
                &"--metric-labels-allowlist=nodes=[kubernetes.io/os,automon.io/exclude,nvidia.com/gpu.present]"
                    .into()
            ),
            "{:?}",
            args(&gpu)
        );
    }

    #[test]
    fn beside_another_it_collects_nodes_and_exports_node_labels_alone() {
        let config = Config::default();
        let full = objects(&Context::new(&config));
        let narrowed =
            crate::render::fixtures::as_json(full.iter().cloned().map(node_labels_only).collect());
        assert_eq!(
            args(&narrowed),
            [
                "--port=8080",
                "--telemetry-port=8081",
                "--resources=nodes",
                "--metric-labels-allowlist=nodes=[kubernetes.io/os,automon.io/exclude]",
                "--metric-allowlist=kube_node_labels",
            ]
        );
        assert_eq!(
            find(&narrowed, "ClusterRole")["rules"],
            json!([{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch"]}])
        );
        // Everything else as it was.
        let full = crate::render::fixtures::as_json(full);
        for kind in [
            "Service",
            "ServiceMonitor",
            "ServiceAccount",
            "ClusterRoleBinding",
        ] {
            assert_eq!(find(&narrowed, kind), find(&full, kind), "{kind}");
        }
    }

    #[test]
    fn service_monitor_honours_labels_on_the_metrics_port() {
        let objs = rendered(&Config::default());
        let sm = find(&objs, "ServiceMonitor");
        let eps = sm["spec"]["endpoints"].as_array().unwrap();
        assert_eq!(eps[0]["port"], "http-metrics");
        assert_eq!(eps[0]["honorLabels"], true);
        assert_eq!(eps[1]["port"], "telemetry");
        let svc_ports: Vec<_> = find(&objs, "Service")["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["name"].clone(), p["port"].clone()))
            .collect();
        assert_eq!(
            svc_ports,
            [
                (json!("http-metrics"), json!(8080)),
                (json!("telemetry"), json!(8081))
            ]
        );
    }

    #[test]
    fn binding_names_the_service_account_in_the_stack_namespace() {
        let objs = rendered(&Config::default().with_set("namespace=mon").unwrap());
        let b = find(&objs, "ClusterRoleBinding");
        assert_eq!(b["metadata"]["name"], "mon-kube-state-metrics");
        assert_eq!(b["roleRef"]["name"], "mon-kube-state-metrics");
        assert_eq!(
            b["subjects"],
            json!([{"kind": "ServiceAccount", "name": "kube-state-metrics", "namespace": "mon"}])
        );
    }
}
