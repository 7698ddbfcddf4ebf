//! Kubernetes itself: the API server (`job="apiserver"`) and the kubelets (`job="kubelet"`,
//! their own `/metrics`): how much they serve, how fast, and what fails.

use super::{
    Dashboard, DashboardLink, Kind, Panel, cluster_variable, datasource_variable, node_variable,
};
use crate::config::Config;

pub const API_SERVER: &str = "k8s-apiserver";
pub const KUBELET: &str = "k8s-kubelet";

const APISERVER_JOB: &str = r#"job="apiserver", cluster=~"$cluster""#;
/// The kubelet's own endpoint, on the nodes the `node` variable picks.
const KUBELETS: &str =
    r#"job="kubelet", metrics_path="/metrics", cluster=~"$cluster", node=~"$node""#;
/// Requests that stay open by design (watches, exec, port-forward) and would swamp latency.
const SHORT_REQUESTS: &str = r#"verb!~"WATCH|CONNECT""#;

pub fn dashboards(config: &Config) -> Vec<Dashboard> {
    vec![api_server(config), kubelet(config)]
}

fn links() -> Vec<DashboardLink> {
    vec![
        DashboardLink {
            title: "API server",
            slug: API_SERVER,
            tooltip: "Requests, errors and latency of the Kubernetes API server",
        },
        DashboardLink {
            title: "Kubelet",
            slug: KUBELET,
            tooltip: "Pods, PLEG, pod start and runtime operations of each kubelet",
        },
        DashboardLink {
            title: "Cluster",
            slug: super::workloads::CLUSTER,
            tooltip: "Compute resources of the whole cluster, by namespace",
        },
    ]
}

/// Requests per second to the API server, summed by `by`, of those `extra` selects.
fn requests(extra: &str, by: &str) -> String {
    format!(
        "sum by ({by}) (rate(apiserver_request_total{{{APISERVER_JOB}{extra}}}[$__rate_interval]))"
    )
}

/// The 99th percentile of request latency, by `by`, of requests that are not long-running.
fn latency_p99(by: &str) -> String {
    format!(
        "histogram_quantile(0.99, sum by ({by}) (rate(apiserver_request_duration_seconds_bucket{{{APISERVER_JOB}, {SHORT_REQUESTS}}}[$__rate_interval])))"
    )
}

fn api_server(config: &Config) -> Dashboard {
    let errors = r#", code=~"5..""#;
    let panels = vec![
        Panel::new(Kind::Stat, "API servers up", "API server instances Prometheus scrapes successfully.", "none")
            .width(4)
            .query(format!("count(up{{{APISERVER_JOB}}} == 1) or vector(0)"), "up"),
        Panel::new(Kind::Stat, "Requests", "Requests per second to all API servers.", "reqps")
            .width(5)
            .query(requests("", ""), "requests"),
        Panel::new(Kind::Stat, "Error ratio", "Share of requests answered with a 5xx code.", "percentunit")
            .width(5)
            .query(format!("{} / {}", requests(errors, ""), requests("", "")), "errors")
            .red_from(0.01),
        Panel::new(Kind::Stat, "Latency p99", "99th percentile of request latency, watches and connects left out.", "s")
            .width(5)
            .query(latency_p99("le"), "p99")
            .red_from(1.0),
        Panel::new(Kind::Stat, "In flight", "Requests being served now, by all API servers.", "none")
            .width(5)
            .query(format!("sum(apiserver_current_inflight_requests{{{APISERVER_JOB}}})"), "in flight"),
        Panel::new(Kind::TimeSeries, "Requests by code", "Requests per second by HTTP status code.", "reqps")
            .stacked()
            .query(requests("", "code"), "{{code}}"),
        Panel::new(Kind::TimeSeries, "Requests by verb", "Requests per second by verb.", "reqps")
            .stacked()
            .query(requests("", "verb"), "{{verb}}"),
        Panel::new(Kind::TimeSeries, "Error ratio by verb", "Share of each verb's requests answered with a 5xx code.", "percentunit")
            .query(format!("{} / {}", requests(errors, "verb"), requests("", "verb")), "{{verb}}")
            .red_from(0.01),
        Panel::new(Kind::TimeSeries, "Latency p99 by verb", "99th percentile of request latency per verb, watches and connects left out.", "s")
            .query(latency_p99("le, verb"), "{{verb}}")
            .red_from(1.0),
        Panel::new(Kind::TimeSeries, "In-flight requests", "Requests being served per API server and kind (mutating or read-only); at the max-in-flight limits the API server answers 429.", "none")
            .width(24)
            .query(format!("sum by (instance, request_kind) (apiserver_current_inflight_requests{{{APISERVER_JOB}}})"), "{{instance}} {{request_kind}}"),
    ];
    Dashboard {
        slug: API_SERVER,
        title: "Kubernetes / API server",
        description: "Requests to the Kubernetes API server by code and verb, errors, latency and requests in flight.",
        variables: vec![datasource_variable(), cluster_variable(config)],
        panels,
        links: links(),
    }
}

/// The 99th percentile of a kubelet histogram per node.
fn p99_per_node(histogram: &str) -> String {
    format!(
        "histogram_quantile(0.99, sum by (node, le) (rate({histogram}_bucket{{{KUBELETS}}}[$__rate_interval])))"
    )
}

fn kubelet(config: &Config) -> Dashboard {
    let k = KUBELETS;
    let panels = vec![
        Panel::new(Kind::Stat, "Kubelets up", "Kubelets Prometheus scrapes successfully.", "none")
            .width(5)
            .query(format!("count(up{{{k}}} == 1) or vector(0)"), "up"),
        Panel::new(Kind::Stat, "Running pods", "Pods with a running sandbox, on the chosen nodes.", "none")
            .width(5)
            .query(format!("sum(kubelet_running_pods{{{k}}})"), "pods"),
        Panel::new(Kind::Stat, "Running containers", "Containers running, on the chosen nodes.", "none")
            .width(5)
            .query(format!(r#"sum(kubelet_running_containers{{{k}, container_state="running"}})"#), "containers"),
        Panel::new(Kind::Stat, "Volumes with stats", "Mounted volumes the kubelets report space and inodes for.", "none")
            .width(4)
            .query(format!("count(kubelet_volume_stats_capacity_bytes{{{k}}}) or vector(0)"), "volumes"),
        Panel::new(Kind::Stat, "Runtime errors", "Container runtime (CRI) operations failing per second.", "ops")
            .width(5)
            .query(format!("sum(rate(kubelet_runtime_operations_errors_total{{{k}}}[$__rate_interval])) or vector(0)"), "errors")
            .red_from(0.1),
        Panel::new(Kind::TimeSeries, "Running pods per node", "Pods with a running sandbox on each node.", "none")
            .query(format!("sum by (node) (kubelet_running_pods{{{k}}})"), "{{node}}"),
        Panel::new(Kind::TimeSeries, "Running containers per node", "Containers running on each node.", "none")
            .query(format!(r#"sum by (node) (kubelet_running_containers{{{k}, container_state="running"}})"#), "{{node}}"),
        Panel::new(Kind::TimeSeries, "PLEG relist duration p99", "How long the kubelet takes to list the runtime's containers; past a few seconds it reports the node not Ready.", "s")
            .query(p99_per_node("kubelet_pleg_relist_duration_seconds"), "{{node}}")
            .red_from(10.0),
        Panel::new(Kind::TimeSeries, "Pod start duration p99", "From the kubelet seeing a pod to its containers running, image pulls included.", "s")
            .query(p99_per_node("kubelet_pod_start_duration_seconds"), "{{node}}"),
        Panel::new(Kind::TimeSeries, "Runtime operations", "Container runtime (CRI) operations per second, by type.", "ops")
            .query(format!("sum by (operation_type) (rate(kubelet_runtime_operations_total{{{k}}}[$__rate_interval]))"), "{{operation_type}}"),
        Panel::new(Kind::TimeSeries, "Runtime operation errors", "Failing container runtime operations per second, by node and type.", "ops")
            .query(format!("sum by (node, operation_type) (rate(kubelet_runtime_operations_errors_total{{{k}}}[$__rate_interval]))"), "{{node}} {{operation_type}}"),
        Panel::new(Kind::TimeSeries, "Volumes with stats per node", "Mounted volumes each kubelet reports space and inodes for.", "none")
            .width(24)
            .query(format!("count by (node) (kubelet_volume_stats_capacity_bytes{{{k}}})"), "{{node}}"),
    ];
    Dashboard {
        slug: KUBELET,
        title: "Kubernetes / Kubelet",
        description: "The kubelets of the chosen nodes: pods and containers, PLEG, pod start, runtime operations and volumes.",
        variables: vec![
            datasource_variable(),
            cluster_variable(config),
            node_variable(
                r#"kubelet_node_name{job="kubelet", metrics_path="/metrics", cluster=~"$cluster"}"#,
                true,
            ),
        ],
        panels,
        links: links(),
    }
}
