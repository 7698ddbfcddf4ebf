//! The kubelet's and cAdvisor's metrics: one ServiceMonitor for every node's kubelet, through
//! the Service and EndpointSlices in kube-system that the operator keeps in step with the nodes
//! (`--kubelet-service`), so there is one scrape object for the job and never one per node.
//! Both endpoints drop, before ingestion, the series families nothing automon ships reads
//! ([`CADVISOR_DROPPED`], [`KUBELET_DROPPED`], [`SYSTEM_CGROUPS`]) unless
//! `kubelet.dropUnusedSeries` is off.

use serde_json::{Value, json};

use super::{Context, blocks::service_monitor, operator};

use crate::model::Object;
use crate::versions;

const NAME: &str = "kubelet";
/// The label the operator puts on the kubelet Service it maintains (as `k8s-app` too).
const SERVICE_NAME_LABEL: &str = "app.kubernetes.io/name";
/// The Prometheus service account's token, which the operator's pods mount.
pub(super) const TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// A metric family dropped by name, every series of it, and why nobody misses it.
pub struct Dropped {
    /// An RE2 pattern for the metric name, anchored at both ends as Prometheus anchors it.
    pub name: &'static str,
    /// Read by the test that keeps docs/dropped-series.md's list in step.
    #[cfg_attr(not(test), allow(dead_code))]
    pub why: &'static str,
}

/// Dropped from `/metrics/cadvisor`. A drop list, not a keep list: a user's own dashboard that
/// reads another cAdvisor family keeps working. Counts are per container unless said otherwise.
pub const CADVISOR_DROPPED: &[Dropped] = &[
    Dropped {
        name: "container_tasks_state",
        why: "5 series per container (one per task state), always 0: the kubelet's cAdvisor runs without the netlink load reader",
    },
    Dropped {
        name: "container_cpu_load_average_10s",
        why: "always 0, for the same reason",
    },
    Dropped {
        name: "container_memory_failures_total",
        why: "4 series per container (pgfault/pgmajfault x container/hierarchy): page faults, not failures; OOM kills are container_oom_events_total (kept)",
    },
    Dropped {
        name: "container_blkio_device_usage_total",
        why: "one series per container, block device and operation; container_fs_reads/writes(_bytes)_total (kept) carry the I/O",
    },
    Dropped {
        name: "container_cpu_(user|system)_seconds_total",
        why: "container_cpu_usage_seconds_total (kept) split in two",
    },
    Dropped {
        name: "container_cpu_cfs_throttled_seconds_total",
        why: "throttling is read as throttled/total periods (both kept); the seconds repeat it",
    },
    Dropped {
        name: "container_memory_mapped_file",
        why: "a part of container_memory_cache (kept)",
    },
    Dropped {
        name: "container_fs_(io_current|io_time_seconds_total|io_time_weighted_seconds_total)",
        why: "per container and device, and zero for most containers (kube-prometheus-stack drops them for that)",
    },
    Dropped {
        name: "container_fs_(reads|writes)_merged_total",
        why: "per container and device, zero for most containers likewise",
    },
    Dropped {
        name: "container_fs_sector_(reads|writes)_total",
        why: "per container and device, zero for most containers likewise; the byte totals (kept) say what they would",
    },
    Dropped {
        name: "container_threads_max",
        why: "the pids limit, static and 0 (unlimited) unless set",
    },
    Dropped {
        name: "container_spec_.+",
        why: "about 6 per container (cpu period/quota/shares, memory limits): the pod spec, which kube-state-metrics reports as kube_pod_container_resource_*",
    },
];

/// Dropped from the kubelet's `/metrics`: histogram buckets with several labels each (15
/// buckets per label set for the kubelet's own histograms). Their `_count` and `_sum` stay, so
/// rates and mean durations still work; only quantiles go.
pub const KUBELET_DROPPED: &[Dropped] = &[
    Dropped {
        name: "kubelet_runtime_operations_duration_seconds_bucket",
        why: "15 buckets per CRI operation type (about 20 types)",
    },
    Dropped {
        name: "kubelet_http_requests_duration_seconds_bucket",
        why: "the kubelet's own HTTP server: buckets per method, path and server type",
    },
    Dropped {
        name: "kubelet_(pod_worker|pod_worker_start|cgroup_manager)_duration_seconds_bucket",
        why: "buckets per operation type; read only by kubernetes-mixin's kubelet dashboard, which automon does not ship",
    },
    Dropped {
        name: "kubelet_pleg_relist_interval_seconds_bucket",
        why: "the relist interval; the relist duration (kept) is what a PLEG alert reads",
    },
    Dropped {
        name: "kubelet_image_pull_duration_seconds_bucket",
        why: "buckets per image size bucket",
    },
    Dropped {
        name: "rest_client_.+_bucket",
        why: "the kubelet's API client: latency, rate-limiter and size buckets per verb and host",
    },
    Dropped {
        name: "(storage_operation_duration|volume_operation_total)_seconds_bucket",
        why: "buckets per volume plugin, operation and status",
    },
    Dropped {
        name: "csi_operations_seconds_bucket",
        why: "buckets per CSI driver, method and gRPC status",
    },
    Dropped {
        name: "workqueue_(queue|work)_duration_seconds_bucket",
        why: "buckets per queue of the kubelet's informers and certificate controllers",
    },
    Dropped {
        name: "apiserver_client_certificate_expiration_seconds_bucket",
        why: "the client certificate's remaining lifetime as buckets; kubelet_certificate_manager_client_ttl_seconds (kept) is the same as one gauge",
    },
    Dropped {
        name: "kubernetes_feature_enabled",
        why: "one constant series per feature gate, hundreds per node",
    },
];

/// Dropped from `/metrics/cadvisor` by labels: `source_labels` joined by `;` matching `regex`.
pub struct DroppedSeries {
    pub source_labels: &'static [&'static str],
    pub regex: &'static str,
    #[cfg_attr(not(test), allow(dead_code))]
    pub why: &'static str,
}

/// The cgroups that are no pod's: systemd services and slices, the kubepods QoS slices. Each
/// one carries every container_* family, and a node has dozens. The node's root cgroup (`id`
/// `/`, the whole node as the kubelet sees it) stays.
pub const SYSTEM_CGROUPS: DroppedSeries = DroppedSeries {
    source_labels: &["id", "pod"],
    regex: "/.+;",
    why: "cgroups that belong to no pod (system services, QoS slices): every container_* family for each, dozens per node; the node's root cgroup (id=\"/\") stays",
};

/// What the workload alerts and dashboards (issue 15) and the sizing read from these two
/// endpoints: none of it may be dropped (a unit test holds [`CADVISOR_DROPPED`] and
/// [`KUBELET_DROPPED`] to that, and docs/dropped-series.md lists it).
#[cfg_attr(not(test), allow(dead_code))]
pub const KEPT: &[&str] = &[
    "container_cpu_usage_seconds_total",
    "container_cpu_cfs_throttled_periods_total",
    "container_cpu_cfs_periods_total",
    "container_memory_working_set_bytes",
    "container_memory_rss",
    "container_memory_cache",
    "container_memory_swap",
    "container_memory_usage_bytes",
    "container_oom_events_total",
    "container_network_receive_bytes_total",
    "container_network_transmit_bytes_total",
    "container_network_receive_packets_total",
    "container_network_transmit_packets_total",
    "container_network_receive_packets_dropped_total",
    "container_network_transmit_packets_dropped_total",
    "container_fs_reads_bytes_total",
    "container_fs_writes_bytes_total",
    "container_fs_reads_total",
    "container_fs_writes_total",
    "container_fs_usage_bytes",
    "container_fs_limit_bytes",
    "container_processes",
    "container_start_time_seconds",
    "container_last_seen",
    "machine_cpu_cores",
    "machine_memory_bytes",
    "kubelet_volume_stats_available_bytes",
    "kubelet_volume_stats_capacity_bytes",
    "kubelet_volume_stats_inodes",
    "kubelet_volume_stats_inodes_free",
    "kubelet_volume_stats_inodes_used",
    "kubelet_volume_stats_used_bytes",
    "kubelet_running_pods",
    "kubelet_running_containers",
    "kubelet_pleg_relist_duration_seconds_bucket",
    "kubelet_pleg_relist_duration_seconds_count",
    "kubelet_pod_start_duration_seconds_bucket",
    "kubelet_pod_start_duration_seconds_count",
    "kubelet_runtime_operations_total",
    "kubelet_runtime_operations_errors_total",
    "kubelet_runtime_operations_duration_seconds_count",
    "kubelet_runtime_operations_duration_seconds_sum",
    "kubelet_certificate_manager_client_ttl_seconds",
    "kubelet_certificate_manager_client_expiration_renew_errors",
    "kubelet_certificate_manager_server_ttl_seconds",
    "kubelet_server_expiration_renew_errors",
    "kubelet_evictions",
    "kubelet_node_name",
    "rest_client_requests_total",
    "storage_operation_duration_seconds_count",
    "up",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "go_goroutines",
];

/// One `drop` by `__name__` of every family in `families`, as a single alternation (one regex
/// for Prometheus to run per sample, not one per family).
pub(super) fn drop_by_name(families: &[Dropped]) -> Value {
    let names: Vec<&str> = families.iter().map(|f| f.name).collect();
    json!({
        "sourceLabels": ["__name__"],
        "regex": names.join("|"),
        "action": "drop",
    })
}

pub(super) fn drop_series(series: &DroppedSeries) -> Value {
    json!({
        "sourceLabels": series.source_labels,
        "regex": series.regex,
        "action": "drop",
    })
}

/// The `metricRelabelings` of an endpoint: what it drops, or nothing when drops are off.
fn metric_relabelings(path: &str, drop_unused: bool) -> Vec<Value> {
    match (drop_unused, path) {
        (false, _) => Vec::new(),
        (true, CADVISOR_PATH) => vec![drop_by_name(CADVISOR_DROPPED), drop_series(&SYSTEM_CGROUPS)],
        (true, PROBES_PATH) => Vec::new(),
        (true, _) => vec![drop_by_name(KUBELET_DROPPED)],
    }
}

const METRICS_PATH: &str = "/metrics";
const CADVISOR_PATH: &str = "/metrics/cadvisor";
/// Each container probe's results (`prober_probe_total`), with `kubelet.probes`.
const PROBES_PATH: &str = "/metrics/probes";

pub fn objects(ctx: &Context) -> Vec<Object> {
    let kubelet = &ctx.config.kubelet;
    if !kubelet.enabled {
        return Vec::new();
    }
    let labels = ctx.labels(NAME, NAME, versions::PROMETHEUS_OPERATOR.version);
    let endpoint = |path: &str| {
        let mut endpoint = json!({
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
        });
        let drops = metric_relabelings(path, kubelet.drop_unused_series);
        if !drops.is_empty() {
            endpoint["metricRelabelings"] = drops.into();
        }
        endpoint
    };
    let mut endpoints = vec![endpoint(METRICS_PATH), endpoint(CADVISOR_PATH)];
    if kubelet.probes {
        endpoints.push(endpoint(PROBES_PATH));
    }
    let spec = json!({
            // The Service is `<namespace>-kubelet`; the job is `kubelet` from its name label.
            "jobLabel": SERVICE_NAME_LABEL,
            "namespaceSelector": {"matchNames": ["kube-system"]},
            // Only the Service this stack's operator maintains, not one another stack's
            // operator keeps beside it in kube-system.
            "selector": {"matchLabels": {
                SERVICE_NAME_LABEL: NAME,
                operator::STACK_LABEL: ctx.namespace,
            }},
            "endpoints": endpoints,
    });
    vec![service_monitor(ctx, NAME, &labels, spec)]
}

#[cfg(test)]
pub(super) mod tests {
    use crate::model;
    use regex::Regex;

    use super::*;
    use crate::config::Config;

    #[test]
    fn scrapes_both_kubelet_paths_over_https_as_job_kubelet() {
        let objects = objects(&Context::new(&Config::default()));
        assert_eq!(objects.len(), 1);
        let sm = &objects[0];
        assert_eq!(model::kind(sm), "ServiceMonitor");
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

    /// The drops each endpoint renders, as Prometheus applies them: `regex` anchored.
    fn rendered_drops(config: &Config) -> Vec<(String, Vec<String>, Regex)> {
        let sm = &objects(&Context::new(config))[0];
        let mut drops = Vec::new();
        for e in sm.data["spec"]["endpoints"].as_array().unwrap() {
            for r in e["metricRelabelings"].as_array().into_iter().flatten() {
                assert_eq!(r["action"], "drop", "{r}");
                let labels = r["sourceLabels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l.as_str().unwrap().to_string())
                    .collect();
                let regex = r["regex"].as_str().unwrap();
                let anchored = Regex::new(&format!("^(?s:{regex})$")).unwrap();
                drops.push((e["path"].as_str().unwrap().to_string(), labels, anchored));
            }
        }
        drops
    }

    fn dropped_names(drops: &[(String, Vec<String>, Regex)], path: &str, name: &str) -> bool {
        drops
            .iter()
            .any(|(p, labels, re)| p == path && labels == &["__name__"] && re.is_match(name))
    }

    #[test]
    fn each_endpoint_drops_its_own_families_and_nothing_kept() {
        let drops = rendered_drops(&Config::default());
        for f in CADVISOR_DROPPED.iter().chain(KUBELET_DROPPED) {
            // Each pattern stands alone: no group left open for the next one to close.
            Regex::new(&format!("^(?s:{})$", f.name)).unwrap();
            assert!(!f.why.is_empty() && !f.why.contains('\n'), "{}", f.name);
        }
        for (name, path) in [
            ("container_tasks_state", CADVISOR_PATH),
            ("container_cpu_system_seconds_total", CADVISOR_PATH),
            ("container_spec_memory_limit_bytes", CADVISOR_PATH),
            ("container_fs_sector_writes_total", CADVISOR_PATH),
            ("rest_client_request_duration_seconds_bucket", METRICS_PATH),
            ("kubelet_pod_worker_duration_seconds_bucket", METRICS_PATH),
            ("volume_operation_total_seconds_bucket", METRICS_PATH),
            ("kubernetes_feature_enabled", METRICS_PATH),
        ] {
            assert!(dropped_names(&drops, path, name), "{name} kept on {path}");
        }
        // Anchored: a longer name that merely starts like a dropped one is kept.
        assert!(!dropped_names(
            &drops,
            CADVISOR_PATH,
            "container_tasks_state_x"
        ));
        assert!(!dropped_names(
            &drops,
            METRICS_PATH,
            "rest_client_requests_total"
        ));
        // Each endpoint's list applies to that endpoint only.
        assert!(!dropped_names(
            &drops,
            METRICS_PATH,
            "container_tasks_state"
        ));
        for name in KEPT {
            for path in [METRICS_PATH, CADVISOR_PATH] {
                assert!(
                    !dropped_names(&drops, path, name),
                    "{name} dropped on {path}"
                );
            }
        }
    }

    #[test]
    fn system_cgroups_go_and_pods_and_the_node_root_stay() {
        let drops = rendered_drops(&Config::default());
        let (_, labels, re) = drops
            .iter()
            .find(|(p, labels, _)| p == CADVISOR_PATH && labels != &["__name__"])
            .unwrap();
        assert_eq!(labels, &["id", "pod"]);
        // Prometheus joins the source labels with `;`; an absent label is empty.
        for (id, pod, dropped) in [
            ("/system.slice/containerd.service", "", true),
            ("/kubepods.slice/kubepods-burstable.slice", "", true),
            ("/", "", false),
            ("/kubepods.slice/kubepods-pod1.slice", "web-0", false),
            (
                "/kubepods.slice/kubepods-pod1.slice/cri-containerd-ab.scope",
                "web-0",
                false,
            ),
            ("", "", false),
        ] {
            assert_eq!(re.is_match(&format!("{id};{pod}")), dropped, "{id};{pod}");
        }
    }

    #[test]
    fn drops_can_be_turned_off() {
        let config = Config::default()
            .with_set("kubelet.dropUnusedSeries=false")
            .unwrap();
        assert!(rendered_drops(&config).is_empty());
        let sm = &objects(&Context::new(&config))[0];
        for e in sm.data["spec"]["endpoints"].as_array().unwrap() {
            assert!(e.get("metricRelabelings").is_none(), "{e}");
        }
    }

    /// A `|` inside a table cell, even in code, must be escaped.
    fn cell(s: &str) -> String {
        s.replace('|', "\\|")
    }

    /// docs/dropped-series.md's table of families dropped by name, endpoint by endpoint.
    pub(in crate::render) fn drop_table(endpoints: &[(&str, &[Dropped])]) -> String {
        let mut out = String::from("| endpoint | dropped | why |\n| --- | --- | --- |\n");
        for (path, families) in endpoints {
            for f in *families {
                out.push_str(&format!("| `{path}` | `{}` | {} |\n", cell(f.name), f.why));
            }
        }
        out
    }

    /// docs/dropped-series.md's row for a drop by labels.
    pub(in crate::render) fn drop_row(path: &str, series: &DroppedSeries) -> String {
        format!(
            "| `{path}` | `{}` matching `{}` | {} |\n",
            series.source_labels.join(";"),
            cell(series.regex),
            series.why
        )
    }

    /// docs/dropped-series.md's section on what is dropped, as [`CADVISOR_DROPPED`],
    /// [`KUBELET_DROPPED`], [`SYSTEM_CGROUPS`] and [`KEPT`] say it.
    fn docs_section() -> String {
        let mut out = drop_table(&[
            (CADVISOR_PATH, CADVISOR_DROPPED),
            (METRICS_PATH, KUBELET_DROPPED),
        ]);
        out.push_str(&drop_row(CADVISOR_PATH, &SYSTEM_CGROUPS));
        out.push_str(
            "\nKept for the workload alerts and dashboards, and checked never to be dropped: ",
        );
        let kept: Vec<String> = KEPT.iter().map(|k| format!("`{k}`")).collect();
        out.push_str(&kept.join(", "));
        out.push_str(".\n");
        out
    }

    #[test]
    fn docs_list_what_is_dropped_and_kept() {
        let docs = include_str!("../../docs/dropped-series.md");
        let section = docs_section();
        assert!(
            docs.contains(&section),
            "docs/dropped-series.md's list of dropped families differs from the code; it should read:\n{section}"
        );
    }
}
