//! The Kubernetes API server's metrics: one ServiceMonitor for the `kubernetes` Service in
//! `default`, whose endpoints are every API server of the control plane, as job `apiserver`.
//! It drops, before ingestion, the API server's histogram families nothing automon ships reads
//! ([`API_SERVER_DROPPED`]) and the latency buckets the alerts do not need
//! ([`LATENCY_BUCKETS_DROPPED`]): an API server serves tens of thousands of series, most of them
//! buckets.

use serde_json::json;

use super::{
    Context,
    blocks::service_monitor,
    kubelet::{Dropped, DroppedSeries, TOKEN_FILE, drop_by_name, drop_series},
};

use crate::model::Object;
use crate::versions::PLUGIN_VERSION;

const NAME: &str = "apiserver";
/// The service-account CA, which signed the API server's serving certificate on every
/// distribution automon knows (kubeadm, EKS, GKE, AKS).
const CA_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
/// The name every API server certificate carries, whatever address the endpoint has.
const SERVER_NAME: &str = "kubernetes";
/// The namespace of the `kubernetes` Service, and its labels (set by the API server itself).
const SERVICE_NAMESPACE: &str = "default";
const SERVICE_COMPONENT: &str = "apiserver";
const SERVICE_PROVIDER: &str = "kubernetes";
/// The Service label the job is named after: `component`, i.e. `apiserver`.
const JOB_LABEL: &str = "component";

/// Dropped from the API server's `/metrics`: histogram buckets with many labels each. Their
/// `_count` and `_sum` stay, so rates and mean durations still work.
pub const API_SERVER_DROPPED: &[Dropped] = &[
    Dropped {
        name: "apiserver_request_sl[io]_duration_seconds_bucket",
        why: "the request latency again, less webhook and priority-queue time: 24 buckets per verb, resource, subresource and scope, as many as apiserver_request_duration_seconds_bucket (kept, in part)",
    },
    Dropped {
        name: "apiserver_response_sizes_bucket",
        why: "response sizes: buckets per verb, resource, subresource and scope",
    },
    Dropped {
        name: "apiserver_request_body_size_bytes_bucket",
        why: "request body sizes: buckets per resource and verb",
    },
    Dropped {
        name: "apiserver_watch_events_sizes_bucket",
        why: "watch event sizes: buckets per group, version and kind",
    },
    Dropped {
        name: "apiserver_watch_list_duration_seconds_bucket",
        why: "watch-list latency: buckets per group, version, resource and scope",
    },
    Dropped {
        name: "apiserver_watch_cache_read_wait_seconds_bucket",
        why: "how long reads wait for the watch cache to be fresh: buckets per group, resource and type",
    },
    Dropped {
        name: "etcd_request_duration_seconds_bucket",
        why: "the API server's etcd latency: buckets per operation and object type, hundreds of types",
    },
    Dropped {
        name: "apiserver_admission_(step|controller|webhook)_admission_duration_seconds_bucket",
        why: "admission latency: buckets per admission plugin or webhook, operation and phase",
    },
    Dropped {
        name: "apiserver_flowcontrol_.+_bucket",
        why: "API priority and fairness: buckets per priority level and flow schema",
    },
    Dropped {
        name: "rest_client_.+_bucket",
        why: "the API server's own loopback client: latency, rate-limiter and size buckets per verb and host",
    },
    Dropped {
        name: "workqueue_(queue|work)_duration_seconds_bucket",
        why: "buckets per queue of the API server's controllers",
    },
    Dropped {
        name: "kubernetes_feature_enabled",
        why: "one constant series per feature gate, hundreds per API server",
    },
];

/// The buckets of `apiserver_request_duration_seconds` dropped by their `le`: 16 of its 24, so
/// that 0.1, 0.2, 0.4, 1, 2, 5, 10 s and +Inf remain. KubeAPILatencyHigh compares the 99th
/// percentile with 1 s, which the `1` bucket decides exactly; a dashboard's quantile is coarser.
/// `(\.0)?` because Prometheus 3 writes whole `le` values as `1.0`.
pub const LATENCY_BUCKETS_DROPPED: DroppedSeries = DroppedSeries {
    source_labels: &["__name__", "le"],
    regex: r"apiserver_request_duration_seconds_bucket;(0\.005|0\.025|0\.05|0\.6|0\.8|1\.25|1\.5|3|4|6|8|15|20|30|45|60)(\.0)?",
    why: "16 of the 24 latency buckets per verb, resource, subresource and scope; 0.1, 0.2, 0.4, 1, 2, 5, 10 s and +Inf stay",
};

/// What the alerts read from the API server: none of it may be dropped (a unit test holds
/// [`API_SERVER_DROPPED`] to that).
#[cfg_attr(not(test), allow(dead_code))]
pub const KEPT: &[&str] = &[
    "apiserver_request_total",
    "apiserver_request_duration_seconds_bucket",
    "apiserver_request_duration_seconds_count",
    "apiserver_request_duration_seconds_sum",
    "apiserver_client_certificate_expiration_seconds_bucket",
    "apiserver_client_certificate_expiration_seconds_count",
    "up",
];

pub fn objects(ctx: &Context) -> Vec<Object> {
    if !ctx.config.api_server.enabled {
        return Vec::new();
    }
    let labels = ctx.labels(NAME, NAME, PLUGIN_VERSION);
    let spec = json!({
            "jobLabel": JOB_LABEL,
            "namespaceSelector": {"matchNames": [SERVICE_NAMESPACE]},
            "selector": {"matchLabels": {
                JOB_LABEL: SERVICE_COMPONENT,
                "provider": SERVICE_PROVIDER,
            }},
            "endpoints": [{
                "port": "https",
                "scheme": "https",
                // The API server authorizes the scrape with the Prometheus service account's
                // token (nonResourceURLs /metrics, in the Prometheus ClusterRole).
                "bearerTokenFile": TOKEN_FILE,
                "tlsConfig": {"caFile": CA_FILE, "serverName": SERVER_NAME},
                "metricRelabelings": [
                    drop_by_name(API_SERVER_DROPPED),
                    drop_series(&LATENCY_BUCKETS_DROPPED),
                ],
            }],
    });
    vec![service_monitor(ctx, NAME, &labels, spec)]
}

#[cfg(test)]
mod tests {
    use crate::model;
    use regex::Regex;

    use super::*;
    use crate::{config::Config, render};

    fn service_monitor(config: &Config) -> Option<Object> {
        objects(&Context::new(config)).into_iter().next()
    }

    #[test]
    fn scrapes_the_kubernetes_service_over_https_as_job_apiserver() {
        let sm = service_monitor(&Config::default()).unwrap();
        assert_eq!(model::kind(&sm), "ServiceMonitor");
        assert_eq!(sm.metadata.name.as_deref(), Some("apiserver"));
        assert_eq!(sm.metadata.namespace.as_deref(), Some("automon"));
        let spec = &sm.data["spec"];
        assert_eq!(spec["jobLabel"], "component");
        assert_eq!(spec["namespaceSelector"]["matchNames"], json!(["default"]));
        assert_eq!(
            spec["selector"]["matchLabels"],
            json!({"component": "apiserver", "provider": "kubernetes"})
        );
        let e = &spec["endpoints"][0];
        assert_eq!(e["port"], "https");
        assert_eq!(e["scheme"], "https");
        assert_eq!(e["bearerTokenFile"], TOKEN_FILE);
        assert_eq!(e["tlsConfig"]["caFile"], CA_FILE);
        assert_eq!(e["tlsConfig"]["serverName"], "kubernetes");
        assert!(e["tlsConfig"].get("insecureSkipVerify").is_none());
    }

    #[test]
    fn disabled_renders_nothing() {
        let config = Config::default()
            .with_set("apiServer.enabled=false")
            .unwrap();
        assert!(service_monitor(&config).is_none());
    }

    /// Whether the rendered drops remove a series of this name and `le` (`""` for none), as
    /// Prometheus applies them: source labels joined by `;`, the regex anchored.
    fn dropped(name: &str, le: &str) -> bool {
        let sm = service_monitor(&Config::default()).unwrap();
        sm.data["spec"]["endpoints"][0]["metricRelabelings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| {
                assert_eq!(r["action"], "drop");
                let regex = Regex::new(&format!("^(?s:{})$", r["regex"].as_str().unwrap()));
                let value: Vec<&str> = r["sourceLabels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| match l.as_str().unwrap() {
                        "__name__" => name,
                        "le" => le,
                        other => panic!("{other}"),
                    })
                    .collect();
                regex.unwrap().is_match(&value.join(";"))
            })
    }

    #[test]
    fn heavy_histograms_go_and_what_the_alerts_read_stays() {
        for name in [
            "apiserver_request_sli_duration_seconds_bucket",
            "apiserver_request_slo_duration_seconds_bucket",
            "apiserver_response_sizes_bucket",
            "etcd_request_duration_seconds_bucket",
            "apiserver_admission_webhook_admission_duration_seconds_bucket",
            "apiserver_flowcontrol_request_wait_duration_seconds_bucket",
            "rest_client_request_duration_seconds_bucket",
        ] {
            assert!(dropped(name, "1"), "{name} kept");
        }
        for name in KEPT {
            assert!(!dropped(name, ""), "{name} dropped");
        }
        // The latency buckets the 1 s alert and a coarse quantile need stay, in either
        // spelling of a whole number; the rest go, and only for that family.
        let latency = "apiserver_request_duration_seconds_bucket";
        for le in [
            "0.1", "0.2", "0.4", "1", "1.0", "2", "2.0", "5", "10", "+Inf",
        ] {
            assert!(!dropped(latency, le), "le={le} dropped");
        }
        for le in ["0.005", "0.6", "1.25", "3", "3.0", "60", "60.0"] {
            assert!(dropped(latency, le), "le={le} kept");
        }
        assert!(!dropped(
            "apiserver_client_certificate_expiration_seconds_bucket",
            "3"
        ));
    }

    #[test]
    fn docs_list_what_is_dropped_and_kept() {
        use render::kubelet::tests::{drop_row, drop_table};
        let mut section = drop_table(&[("/metrics", API_SERVER_DROPPED)]);
        section.push_str(&drop_row("/metrics", &LATENCY_BUCKETS_DROPPED));
        let kept: Vec<String> = KEPT.iter().map(|k| format!("`{k}`")).collect();
        section.push_str(&format!(
            "\nKept for the alerts, and checked never to be dropped: {}.\n",
            kept.join(", ")
        ));
        let docs = include_str!("../../docs/dropped-series.md");
        assert!(
            docs.contains(&section),
            "docs/dropped-series.md's list of the API server's dropped families differs from the code; it should read:\n{section}"
        );
    }
}
