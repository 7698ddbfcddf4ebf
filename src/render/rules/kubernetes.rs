//! Kubernetes' own alerts: the API server's error ratio and latency, client certificates about
//! to expire, kubelets down, nodes running out of pod capacity or cut off from the control
//! plane. The API server's alerts come with its scrape (`apiServer.enabled`), the kubelet's
//! with the kubelet's (`kubelet.enabled`): without the job they could only say "absent".

use super::{AlertRule, KUBE_STATE_METRICS, NODE, PERCENT, fixed};
use crate::config::{Config, Severity};

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
/// Remaining certificate lifetimes: warning below a week, critical below a day.
const CERT_WARNING: (u32, &str) = (7 * 24 * 3600, "7 days");
const CERT_CRITICAL: (u32, &str) = (24 * 3600, "24 hours");

/// A duration value, as an alert's template writes it.
const DURATION: &str = "{{ $value | humanizeDuration }}";

pub(super) fn rules(config: &Config) -> Vec<AlertRule> {
    let mut rules = Vec::new();
    if config.api_server.enabled {
        rules.extend([api_down(), api_errors(), api_latency()]);
        rules.extend(client_certificate_expiration());
    }
    if config.kubelet.enabled {
        rules.push(kubelet_down());
        rules.extend(kubelet_certificate_expiration());
    }
    rules.extend([too_many_pods(), node_unreachable()]);
    rules
}

fn api_down() -> AlertRule {
    fixed(
        "KubeAPIDown",
        // `absent`: no target at all is as bad as every target down.
        format!("absent(up{{{API_SERVER}}} == 1)"),
        "15m",
        Severity::Critical,
        "The Kubernetes API server is not being scraped".into(),
        "No API server target has been up for 15 minutes: the API server is down or \
         Prometheus cannot reach it (network policy, RBAC on /metrics, the `kubernetes` \
         Service's endpoints). If kubectl still works, the problem is the scrape."
            .into(),
    )
}

fn api_errors() -> AlertRule {
    fixed(
        "KubeAPIErrorsHigh",
        format!(
            "100 * sum(rate(apiserver_request_total{{{API_SERVER}, code=~\"5..\"}}[10m]))\n  \
             / sum(rate(apiserver_request_total{{{API_SERVER}}}[10m]))\n\
             > {API_ERROR_PERCENT}"
        ),
        "10m",
        Severity::Warning,
        format!("The Kubernetes API server answers {PERCENT} of requests with a server error"),
        format!(
            "Over the last 10 minutes {PERCENT} of the API server's requests ended in a 5xx \
             response, more than {API_ERROR_PERCENT}% for 10 minutes: controllers and kubectl \
             retry and slow down. Look at the API server's log and at etcd's health."
        ),
    )
}

fn api_latency() -> AlertRule {
    fixed(
        "KubeAPILatencyHigh",
        // WATCH and CONNECT (exec, logs, port-forward) stay open by design.
        format!(
            "histogram_quantile(0.99, sum by (verb, le) (\n  \
             rate(apiserver_request_duration_seconds_bucket{{{API_SERVER}, verb!~\"WATCH|CONNECT\"}}[5m])\n\
             )) > {API_LATENCY_SECONDS}"
        ),
        "10m",
        Severity::Warning,
        "The Kubernetes API server is slow to answer {{ $labels.verb }} requests".into(),
        format!(
            "The 99th percentile of the API server's {{{{ $labels.verb }}}} requests has taken \
             {{{{ $value | humanizeDuration }}}}, more than {API_LATENCY_SECONDS}s for 10 \
             minutes: etcd is slow, the API server is short of CPU or memory, or a client \
             lists large collections."
        ),
    )
}

/// Both severities of one certificate alert: `ttl` is an expression of the remaining lifetime
/// in seconds (`{limit}` stands for the threshold).
fn certificate_rules(name: &str, ttl: &str, summary: &str, description: &str) -> Vec<AlertRule> {
    [
        (CERT_WARNING, Severity::Warning),
        (CERT_CRITICAL, Severity::Critical),
    ]
    .into_iter()
    .map(move |((seconds, words), severity)| {
        fixed(
            name,
            ttl.replace("{limit}", &seconds.to_string()),
            "5m",
            severity,
            summary.replace("{limit}", words),
            description.replace("{limit}", words),
        )
    })
    .collect()
}

fn client_certificate_expiration() -> Vec<AlertRule> {
    // The 1% shortest remaining lifetimes of the client certificates presented to the API
    // server in the last 5 minutes; no certificate presented, no value.
    let ttl = format!(
        "histogram_quantile(0.01, sum by (job, instance, le) (\n  \
         rate(apiserver_client_certificate_expiration_seconds_bucket{{{API_SERVER}}}[5m])\n\
         )) < {{limit}}"
    );
    certificate_rules(
        "KubeClientCertificateExpiration",
        &ttl,
        "A client certificate used against the Kubernetes API server expires within {limit}",
        &format!(
            "Clients authenticate to the API server at {{{{ $labels.instance }}}} with a \
             certificate that expires in {DURATION}, within {{limit}}. When it expires they \
             are refused: renew it (kubelets rotate theirs; kubeadm's are renewed with \
             `kubeadm certs renew`)."
        ),
    )
}

fn kubelet_down() -> AlertRule {
    fixed(
        "KubeletDown",
        format!(
            "max by (node) (up{{{KUBELET}}}) == 0\n\
             or\n\
             absent(up{{{KUBELET}}} == 1)"
        ),
        "15m",
        Severity::Critical,
        "Prometheus cannot scrape the kubelet{{ if $labels.node }} on node {{ $labels.node }}{{ else }} on any node{{ end }}".into(),
        "For 15 minutes Prometheus has not scraped the kubelet{{ if $labels.node }} on node \
         {{ $labels.node }}{{ else }} on any node{{ end }}: its metrics, cAdvisor's container \
         metrics and the volume statistics are missing. A node that is down also raises NodeNotReady; \
         on every node at once, look at the operator's kubelet Service in kube-system and at \
         the Prometheus ClusterRole (nodes/metrics)."
            .into(),
    )
}

fn kubelet_certificate_expiration() -> Vec<AlertRule> {
    let ttl = format!("kubelet_certificate_manager_client_ttl_seconds{{{KUBELET}}} < {{limit}}");
    certificate_rules(
        "KubeletClientCertificateExpiration",
        &ttl,
        &format!("The kubelet's client certificate on node {NODE} expires within {{limit}}"),
        &format!(
            "The certificate the kubelet on node {NODE} uses to talk to the API server \
             expires in {DURATION}, within {{limit}}, and has not been rotated. When it \
             expires the node goes NotReady: check the kubelet's certificate rotation and \
             the CertificateSigningRequests (`kubectl get csr`)."
        ),
    )
}

fn too_many_pods() -> AlertRule {
    // From kube-state-metrics alone, so that it stays on the shards when sharded: the pods
    // bound to the node and not finished, against the pods it can hold.
    fixed(
        "KubeletTooManyPods",
        format!(
            "100 * count by (node) (\n  \
             kube_pod_info{{{KUBE_STATE_METRICS}, node!=\"\"}}\n  \
             unless on (namespace, pod)\n  \
             (kube_pod_status_phase{{{KUBE_STATE_METRICS}, phase=~\"Succeeded|Failed\"}} == 1)\n\
             )\n\
             / on (node) max by (node) (kube_node_status_capacity{{{KUBE_STATE_METRICS}, resource=\"pods\"}})\n\
             > {PODS_PERCENT}"
        ),
        "15m",
        Severity::Warning,
        format!("Node {NODE} is running {PERCENT} of the pods it can hold"),
        format!(
            "Node {NODE} has {PERCENT} of its pod capacity in use, more than {PODS_PERCENT}% \
             for 15 minutes: new pods will not be scheduled on it. Add nodes, or raise the \
             kubelet's maxPods if the node has the CPU, memory and IP addresses for more."
        ),
    )
}

fn node_unreachable() -> AlertRule {
    fixed(
        "KubeNodeUnreachable",
        format!(
            "max by (node) (kube_node_spec_taint{{{KUBE_STATE_METRICS}, key=\"node.kubernetes.io/unreachable\"}}) == 1"
        ),
        "15m",
        Severity::Warning,
        format!("Node {NODE} is unreachable"),
        format!(
            "The node controller has tainted node {NODE} unreachable for 15 minutes: its \
             kubelet has stopped posting status. Pods that do not tolerate the taint are \
             evicted and rescheduled; StatefulSet pods stay bound to the node until it comes \
             back or is deleted."
        ),
    )
}

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
            let pair: Vec<AlertRule> = rules(&Config::default())
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
        let r = too_many_pods();
        assert!(!super::super::reads_across_targets(&r.expr), "{}", r.expr);
        assert!(!r.expr.contains("kubelet"), "{}", r.expr);
    }
}
