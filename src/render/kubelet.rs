//! The kubelet's and cAdvisor's metrics: one ServiceMonitor for every node's kubelet, through
//! the Service and EndpointSlices in kube-system that the operator keeps in step with the nodes
//! (`--kubelet-service`), so there is one scrape object for the job and never one per node.

use serde_json::json;

use super::{Context, Object, custom, operator};
use crate::versions;

const NAME: &str = "kubelet";
/// The label the operator puts on the kubelet Service it maintains (as `k8s-app` too).
const SERVICE_NAME_LABEL: &str = "app.kubernetes.io/name";
const TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

pub fn objects(ctx: &Context) -> Vec<Object> {
    if !ctx.config.kubelet.enabled {
        return Vec::new();
    }
    let labels = ctx.labels(NAME, NAME, versions::PROMETHEUS_OPERATOR.version);
    let endpoint = |path: &str| {
        json!({
            "port": "https-metrics",
            "path": path,
            "scheme": "https",
            // The kubelet authorizes scrapes with the Prometheus service account's token
            // (nodes/metrics). `authorization` only takes a Secret, not the projected token.
            "bearerTokenFile": TOKEN_FILE,
            // Kubelet serving certificates are self-signed on most clusters (serverTLSBootstrap
            // is off by default), so there is no CA to verify them against.
            "tlsConfig": {"insecureSkipVerify": true},
            // cAdvisor's series carry their own namespace/pod/container labels.
            "honorLabels": true,
            "relabelings": [
                {
                    "sourceLabels": ["__meta_kubernetes_endpointslice_endpoint_node_name"],
                    "targetLabel": "node",
                },
                // Both endpoints share job and instance; this tells their `up` series apart.
                {"sourceLabels": ["__metrics_path__"], "targetLabel": "metrics_path"},
            ],
        })
    };
    vec![custom(json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": ctx.meta(NAME, &labels),
        "spec": {
            // The Service is `<namespace>-kubelet`; the job is `kubelet` from its name label.
            "jobLabel": SERVICE_NAME_LABEL,
            "namespaceSelector": {"matchNames": ["kube-system"]},
            // Only the Service this stack's operator maintains, not one another stack's
            // operator keeps beside it in kube-system.
            "selector": {"matchLabels": {
                SERVICE_NAME_LABEL: NAME,
                operator::STACK_LABEL: ctx.namespace,
            }},
            "endpoints": [endpoint("/metrics"), endpoint("/metrics/cadvisor")],
        },
    }))]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config::Config, render};

    #[test]
    fn scrapes_both_kubelet_paths_over_https_as_job_kubelet() {
        let objects = objects(&Context::new(&Config::default()));
        assert_eq!(objects.len(), 1);
        let sm = &objects[0];
        assert_eq!(render::kind(sm), "ServiceMonitor");
        assert_eq!(sm.metadata.name.as_deref(), Some("kubelet"));
        assert_eq!(sm.metadata.namespace.as_deref(), Some("automon"));
        let spec = &sm.data["spec"];
        assert_eq!(spec["jobLabel"], "app.kubernetes.io/name");
        assert_eq!(spec["namespaceSelector"]["matchNames"][0], "kube-system");
        assert_eq!(
            spec["selector"]["matchLabels"]["app.kubernetes.io/name"],
            "kubelet"
        );
        assert_eq!(
            spec["selector"]["matchLabels"]["automon.io/stack"],
            "automon"
        );
        let paths: Vec<&str> = spec["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert_eq!(e["scheme"], "https");
                assert_eq!(e["port"], "https-metrics");
                assert_eq!(e["honorLabels"], true);
                assert_eq!(e["relabelings"][0]["targetLabel"], "node");
                e["path"].as_str().unwrap()
            })
            .collect();
        assert_eq!(paths, ["/metrics", "/metrics/cadvisor"]);
    }

    #[test]
    fn disabled_renders_nothing() {
        let config = Config::default().with_set("kubelet.enabled=false").unwrap();
        assert!(objects(&Context::new(&config)).is_empty());
    }
}
