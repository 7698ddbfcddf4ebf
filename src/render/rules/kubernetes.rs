//! Kubernetes' own alerts: the API server's error ratio and latency, client certificates about
//! to expire, kubelets down, nodes running out of pod capacity or cut off from the control
//! plane. The API server's alerts come with its scrape (`apiServer.enabled`), the kubelet's
//! with the kubelet's (`kubelet.enabled`): without the job they could only say "absent".

use super::{AlertRule, KUBE_STATE_METRICS, NODE, PERCENT, Row, Settings::Fixed, build};
use crate::{
    config::{
        Config,
        Severity::{Critical, Warning},
    },
    render::NodeClasses,
};

/// The API server's series, as its ServiceMonitor labels them.
const API_SERVER: &str = r#"job="apiserver""#;
/// The kubelet's own `/metrics` endpoint (not cAdvisor's, which shares the job).
const KUBELET: &str = r#"job="kubelet", metrics_path="/metrics""#;

/// Error ratio (percent of requests answered 5xx) and the 99th percentile latency, in seconds,
/// above which the API server alerts.
const API_ERROR_PERCENT: u32 = 3;
const API_LATENCY_SECONDS: u32 = 1;
/// Pods running on a node, as a percentage of its pod capacity, above which it alerts.
const PODS_PERCENT: u32 = 95;

/// A duration value, as an alert's template writes it.
const DURATION: &str = "{{ $value | humanizeDuration }}";

/// The 1% shortest remaining lifetimes, in seconds, of the client certificates presented to
/// the API server in the last 5 minutes; no certificate presented, no value.
const CLIENT_CERTIFICATE_TTL: &str = "histogram_quantile(0.01, sum by (job, instance, le) (\n  \
    rate(apiserver_client_certificate_expiration_seconds_bucket{{API_SERVER}}[5m])\n\
    ))";
const CLIENT_CERTIFICATE_RENEW: &str = "When it expires they are refused: renew it (kubelets \
    rotate theirs; kubeadm's are renewed with `kubeadm certs renew`).";
const KUBELET_CERTIFICATE_ROTATE: &str = "When it expires the node goes NotReady: check the \
    kubelet's certificate rotation and the CertificateSigningRequests (`kubectl get csr`).";

pub(super) fn rules(config: &Config, _: NodeClasses) -> Vec<AlertRule> {
    let values = values![
        KUBE_STATE_METRICS,
        API_SERVER,
        KUBELET,
        NODE,
        PERCENT,
        DURATION,
        API_ERROR_PERCENT,
        API_LATENCY_SECONDS,
        PODS_PERCENT,
        CLIENT_CERTIFICATE_TTL,
        CLIENT_CERTIFICATE_RENEW,
        KUBELET_CERTIFICATE_ROTATE,
    ];
    let tables = [
        (config.api_server.enabled, FROM_API_SERVER),
        (config.kubelet.enabled, FROM_KUBELET),
        (true, FROM_KUBE_STATE_METRICS),
    ];
    let rows = tables
        .into_iter()
        .filter(|(on, _)| *on)
        .flat_map(|(_, rows)| rows);
    build(rows, config, &values)
}

// Certificates about to expire warn within a week (604800 seconds) and page within a day.
const FROM_API_SERVER: &[Row] = &[
    Row {
        alert: "KubeAPIDown",
        // `absent`: no target at all is as bad as every target down.
        expr: "absent(up{{API_SERVER}} == 1)",
        settings: Fixed("15m", Critical),
        summary: "The Kubernetes API server is not being scraped",
        description: "No API server target has been up for 15 minutes: the API server is down \
            or Prometheus cannot reach it (network policy, RBAC on /metrics, the `kubernetes` \
            Service's endpoints). If kubectl still works, the problem is the scrape.",
    },
    Row {
        alert: "KubeAPIErrorsHigh",
        expr: "100 * sum(rate(apiserver_request_total{{API_SERVER}, code=~\"5..\"}[10m]))\n  \
            / sum(rate(apiserver_request_total{{API_SERVER}}[10m]))\n\
            > {API_ERROR_PERCENT}",
        settings: Fixed("10m", Warning),
        summary: "The Kubernetes API server answers {PERCENT} of requests with a server error",
        description: "Over the last 10 minutes {PERCENT} of the API server's requests ended in a \
            5xx response, more than {API_ERROR_PERCENT}% for 10 minutes: controllers and \
            kubectl retry and slow down. Look at the API server's log and at etcd's health.",
    },
    Row {
        alert: "KubeAPILatencyHigh",
        // WATCH and CONNECT (exec, logs, port-forward) stay open by design.
        expr: "histogram_quantile(0.99, sum by (verb, le) (\n  \
            rate(apiserver_request_duration_seconds_bucket{{API_SERVER}, verb!~\"WATCH|CONNECT\"}[5m])\n\
            )) > {API_LATENCY_SECONDS}",
        settings: Fixed("10m", Warning),
        summary: "The Kubernetes API server is slow to answer {{ $labels.verb }} requests",
        description: "The 99th percentile of the API server's {{ $labels.verb }} requests has \
            taken {{ $value | humanizeDuration }}, more than {API_LATENCY_SECONDS}s for 10 \
            minutes: etcd is slow, the API server is short of CPU or memory, or a client lists \
            large collections.",
    },
    Row {
        alert: "KubeClientCertificateExpiration",
        expr: "{CLIENT_CERTIFICATE_TTL} < 604800",
        settings: Fixed("5m", Warning),
        summary: "A client certificate used against the Kubernetes API server expires within 7 days",
        description: "Clients authenticate to the API server at {{ $labels.instance }} with a \
            certificate that expires in {DURATION}, within 7 days. {CLIENT_CERTIFICATE_RENEW}",
    },
    Row {
        alert: "KubeClientCertificateExpiration",
        expr: "{CLIENT_CERTIFICATE_TTL} < 86400",
        settings: Fixed("5m", Critical),
        summary: "A client certificate used against the Kubernetes API server expires within 24 hours",
        description: "Clients authenticate to the API server at {{ $labels.instance }} with a \
            certificate that expires in {DURATION}, within 24 hours. {CLIENT_CERTIFICATE_RENEW}",
    },
];

const FROM_KUBELET: &[Row] = &[
    Row {
        alert: "KubeletDown",
        expr: "max by (node) (up{{KUBELET}}) == 0\nor\nabsent(up{{KUBELET}} == 1)",
        settings: Fixed("15m", Critical),
        summary: "Prometheus cannot scrape the kubelet{{ if $labels.node }} on node {{ $labels.node }}{{ else }} on any node{{ end }}",
        description: "For 15 minutes Prometheus has not scraped the kubelet{{ if $labels.node }} \
            on node {{ $labels.node }}{{ else }} on any node{{ end }}: its metrics, cAdvisor's \
            container metrics and the volume statistics are missing. A node that is down also \
            raises NodeNotReady; on every node at once, look at the operator's kubelet Service \
            in kube-system and at the Prometheus ClusterRole (nodes/metrics).",
    },
    Row {
        alert: "KubeletClientCertificateExpiration",
        expr: "kubelet_certificate_manager_client_ttl_seconds{{KUBELET}} < 604800",
        settings: Fixed("5m", Warning),
        summary: "The kubelet's client certificate on node {NODE} expires within 7 days",
        description: "The certificate the kubelet on node {NODE} uses to talk to the API server \
            expires in {DURATION}, within 7 days, and has not been rotated. \
            {KUBELET_CERTIFICATE_ROTATE}",
    },
    Row {
        alert: "KubeletClientCertificateExpiration",
        expr: "kubelet_certificate_manager_client_ttl_seconds{{KUBELET}} < 86400",
        settings: Fixed("5m", Critical),
        summary: "The kubelet's client certificate on node {NODE} expires within 24 hours",
        description: "The certificate the kubelet on node {NODE} uses to talk to the API server \
            expires in {DURATION}, within 24 hours, and has not been rotated. \
            {KUBELET_CERTIFICATE_ROTATE}",
    },
];

const FROM_KUBE_STATE_METRICS: &[Row] = &[
    Row {
        alert: "KubeletTooManyPods",
        // From kube-state-metrics alone, so that it stays on the shards when sharded: the pods
        // bound to the node and not finished, against the pods it can hold.
        expr: "100 * count by (node) (\n  \
            kube_pod_info{{KUBE_STATE_METRICS}, node!=\"\"}\n  \
            unless on (namespace, pod)\n  \
            (kube_pod_status_phase{{KUBE_STATE_METRICS}, phase=~\"Succeeded|Failed\"} == 1)\n\
            )\n\
            / on (node) max by (node) (kube_node_status_capacity{{KUBE_STATE_METRICS}, resource=\"pods\"})\n\
            > {PODS_PERCENT}",
        settings: Fixed("15m", Warning),
        summary: "Node {NODE} is running {PERCENT} of the pods it can hold",
        description: "Node {NODE} has {PERCENT} of its pod capacity in use, more than \
            {PODS_PERCENT}% for 15 minutes: new pods will not be scheduled on it. Add nodes, or \
            raise the kubelet's maxPods if the node has the CPU, memory and IP addresses for \
            more.",
    },
    Row {
        alert: "KubeNodeUnreachable",
        expr: r#"max by (node) (kube_node_spec_taint{{KUBE_STATE_METRICS}, key="node.kubernetes.io/unreachable"}) == 1"#,
        settings: Fixed("15m", Warning),
        summary: "Node {NODE} is unreachable",
        description: "The node controller has tainted node {NODE} unreachable for 15 minutes: \
            its kubelet has stopped posting status. Pods that do not tolerate the taint are \
            evicted and rescheduled; StatefulSet pods stay bound to the node until it comes back \
            or is deleted.",
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::rules::group_alerts;

    fn kubernetes_alerts(sets: &[&str]) -> Option<Vec<String>> {
        group_alerts("kubernetes-alerts", sets)
    }

    #[test]
    fn each_alert_comes_with_the_scrape_it_reads() {
        let all = kubernetes_alerts(&[]).unwrap();
        let api = [
            "KubeAPIDown",
            "KubeAPIErrorsHigh",
            "KubeAPILatencyHigh",
            "KubeClientCertificateExpiration",
        ];
        let kubelet = ["KubeletDown", "KubeletClientCertificateExpiration"];
        for name in api.iter().chain(&kubelet) {
            assert!(all.iter().any(|a| a == name), "{name} missing");
        }
        // Without the API server's scrape, KubeAPIDown would fire for ever.
        let no_api = kubernetes_alerts(&["apiServer.enabled=false"]).unwrap();
        assert!(
            no_api.iter().all(|a| !api.contains(&a.as_str())),
            "{no_api:?}"
        );
        assert!(no_api.iter().any(|a| a == "KubeletDown"));
        let no_kubelet = kubernetes_alerts(&["kubelet.enabled=false"]).unwrap();
        assert!(
            no_kubelet.iter().all(|a| !kubelet.contains(&a.as_str())),
            "{no_kubelet:?}"
        );
        assert!(no_kubelet.iter().any(|a| a == "KubeAPIDown"));
        // kube-state-metrics' alerts need neither.
        let neither =
            kubernetes_alerts(&["apiServer.enabled=false", "kubelet.enabled=false"]).unwrap();
        assert_eq!(neither, ["KubeletTooManyPods", "KubeNodeUnreachable"]);
        assert!(kubernetes_alerts(&["alerts.groups.kubernetes=false"]).is_none());
    }

    #[test]
    fn certificates_warn_within_a_week_and_page_within_a_day() {
        for name in [
            "KubeClientCertificateExpiration",
            "KubeletClientCertificateExpiration",
        ] {
            let pair: Vec<AlertRule> = rules(&Config::default(), NodeClasses::default())
                .into_iter()
                .filter(|r| r.alert == name)
                .collect();
            assert_eq!(pair.len(), 2, "{name}");
            assert!(pair[0].expr.ends_with("< 604800"), "{}", pair[0].expr);
            assert_eq!(pair[0].labels["severity"], "warning");
            assert!(pair[1].expr.ends_with("< 86400"), "{}", pair[1].expr);
            assert_eq!(pair[1].labels["severity"], "critical");
            assert!(pair[1].annotations["summary"].contains("24 hours"));
        }
    }

    #[test]
    fn too_many_pods_reads_kube_state_metrics_alone_and_stays_on_the_shards() {
        let all = rules(&Config::default(), NodeClasses::default());
        let r = all
            .iter()
            .find(|r| r.alert == "KubeletTooManyPods")
            .unwrap();
        assert!(!super::super::reads_across_targets(&r.expr), "{}", r.expr);
        assert!(!r.expr.contains("kubelet"), "{}", r.expr);
    }
}
