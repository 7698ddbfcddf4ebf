//! The alerts beyond the nodes, proved on real metrics: the test makes each situation in the
//! local cluster (a Deployment whose pods cannot be scheduled, a pod crash-looping, a Job past
//! its deadline, a claim no volume binds, a quota exceeded, a node full of pods, a volume almost
//! full, a throttled container ...), the real kube-state-metrics reads it with exactly the
//! arguments `render` gives it, kwok serves the kubelet's and cAdvisor's series for its pods
//! (`tests/kwok/kubelet.yaml`), the real API server is scraped with a client certificate that
//! expires tomorrow, and a real Prometheus with the rendered rules and a real Alertmanager whose
//! receiver cannot be reached put the alerts pending. Healthy objects beside the broken ones
//! raise nothing.

mod common;

use std::{
    collections::BTreeMap,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use common::{
    Cleanup, KwokNodes, apply_objects, built_tool, cluster, free_port, prometheus_query,
    rendered_objects, rendered_rule_file, repo_root, spawn_alertmanager, spawn_kube_state_metrics,
    spawn_prometheus, tainted, write_temp,
};
use serde_json::{Value, json};

const WORKLOADS: &str = "bn-workloads";
const RESOURCES: &str = "bn-resources";
/// A kwok node for the test's pods, tainted so that no other test's pods land on it.
const NODE: &str = "bn-node";
/// A kwok node with room for three pods, which the test fills.
const FULL_NODE: &str = "bn-full";
const TAINT: &str = "automon.test/beyond-nodes";
/// The volume the test binds (cluster-scoped, so deleted by hand).
const VOLUME: &str = "bn-data-volume";
/// The `cluster` external label the stack is rendered with.
const CLUSTER: &str = "automon-test";

/// The test's nodes: tainted, one of them with room for three pods only, both excluded from
/// the coverage check.
fn nodes() -> Vec<Value> {
    [NODE, FULL_NODE]
        .iter()
        .map(|name| {
            let mut node = tainted(name, TAINT, "true", "NoSchedule");
            // No node-exporter runs here: opted out of the coverage check, which has its own
            // test (tests/coverage_gap.rs).
            node["metadata"]["labels"]["automon.io/exclude"] = json!("true");
            if *name == FULL_NODE {
                for field in ["allocatable", "capacity"] {
                    node["status"][field]["pods"] = json!("3");
                }
            }
            node
        })
        .collect()
}

/// A pod template on `node` (tolerating the test's taint), with these annotations for kwok's
/// simulated kubelet and these resources.
fn pod_spec(node: &str, resources: Value) -> Value {
    json!({
        "nodeSelector": {"kubernetes.io/hostname": node},
        "tolerations": [{"key": TAINT, "operator": "Exists"}],
        "containers": [{"name": "app", "image": "registry.example.test/app:1", "resources": resources}],
    })
}

/// A pod template no node can take: its pods stay Pending.
fn unschedulable_spec() -> Value {
    let mut spec = pod_spec(NODE, json!({}));
    spec["nodeSelector"] = json!({"automon.test/nowhere": "true"});
    spec
}

fn deployment(ns: &str, name: &str, replicas: u32, spec: Value, annotations: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": 10,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}, "annotations": annotations}, "spec": spec},
        },
    })
}

fn pod(ns: &str, name: &str, spec: Value, annotations: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations},
        "spec": spec,
    })
}

/// Every situation, and the healthy objects beside them.
fn situations() -> Vec<Value> {
    let none = json!({});
    let mut objects = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": WORKLOADS}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": RESOURCES}}),
        // Workloads.
        deployment(
            WORKLOADS,
            "healthy",
            2,
            pod_spec(
                NODE,
                json!({
                    "requests": {"cpu": "100m", "memory": "64Mi"},
                    "limits": {"cpu": "200m", "memory": "128Mi"},
                }),
            ),
            json!({"automon.test/cpu": "50m", "automon.test/memory": "40Mi"}),
        ),
        deployment(
            WORKLOADS,
            "unschedulable",
            2,
            unschedulable_spec(),
            none.clone(),
        ),
        deployment(
            WORKLOADS,
            "crashloop",
            1,
            pod_spec(NODE, none.clone()),
            none.clone(),
        ),
        pod(
            WORKLOADS,
            "pull",
            pod_spec(NODE, none.clone()),
            none.clone(),
        ),
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "stuck", "namespace": WORKLOADS},
            "spec": {
                "replicas": 1, "serviceName": "stuck",
                "selector": {"matchLabels": {"app": "stuck"}},
                "template": {"metadata": {"labels": {"app": "stuck"}}, "spec": unschedulable_spec()},
            },
        }),
        json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "fails", "namespace": WORKLOADS},
            "spec": {
                "activeDeadlineSeconds": 1, "backoffLimit": 0,
                "template": {"spec": {
                    "restartPolicy": "Never",
                    "nodeSelector": {"automon.test/nowhere": "true"},
                    "containers": [{"name": "app", "image": "registry.example.test/app:1"}],
                }},
            },
        }),
        // Hourly, half an hour away from now, last run two hours ago (see `cronjob_missed`):
        // the runs since were missed, and the controller has none to start while the test runs.
        json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "missed", "namespace": WORKLOADS},
            "spec": {
                "schedule": hourly_half_an_hour_away(), "startingDeadlineSeconds": 60,
                "jobTemplate": {"spec": {"template": {"spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "app", "image": "registry.example.test/app:1"}],
                }}}},
            },
        }),
        deployment(
            WORKLOADS,
            "scaled",
            2,
            pod_spec(NODE, none.clone()),
            none.clone(),
        ),
        json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "maxed", "namespace": WORKLOADS},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "scaled"},
                "minReplicas": 1, "maxReplicas": 2,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80}}}],
            },
        }),
        // Resources.
        json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "unbound", "namespace": RESOURCES},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "automon-test-none",
                "resources": {"requests": {"storage": "1Gi"}}},
        }),
        json!({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": VOLUME},
            "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
                "storageClassName": "automon-test-manual", "hostPath": {"path": "/automon-test"},
                "claimRef": {"namespace": RESOURCES, "name": "data"}},
        }),
        json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": RESOURCES},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "automon-test-manual",
                "volumeName": VOLUME, "resources": {"requests": {"storage": "10Gi"}}},
        }),
        pod(
            RESOURCES,
            "writer",
            {
                let mut spec = pod_spec(NODE, none.clone());
                spec["volumes"] =
                    json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]);
                spec
            },
            json!({"automon.test/claim": "data", "automon.test/volume-used": "0.99"}),
        ),
        pod(
            RESOURCES,
            "throttled",
            pod_spec(NODE, json!({"limits": {"cpu": "100m"}})),
            json!({"automon.test/cpu": "100m", "automon.test/throttled": "0.6"}),
        ),
        pod(
            RESOURCES,
            "near-limit",
            pod_spec(NODE, json!({"limits": {"memory": "100Mi"}})),
            json!({"automon.test/memory": "97Mi"}),
        ),
        pod(
            RESOURCES,
            "relaxed",
            pod_spec(NODE, json!({"limits": {"cpu": "1", "memory": "1Gi"}})),
            json!({"automon.test/cpu": "10m", "automon.test/memory": "64Mi"}),
        ),
    ];
    // A node full of pods: three pods for its three.
    for i in 0..3 {
        objects.push(pod(
            WORKLOADS,
            &format!("fill-{i}"),
            pod_spec(FULL_NODE, json!({})),
            json!({}),
        ));
    }
    objects
}

/// Made once the pods it counts exist (admission would refuse them otherwise): four pods
/// against a quota of two.
fn exceeded_quota() -> Value {
    json!({
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "pods", "namespace": RESOURCES},
        "spec": {"hard": {"pods": "2"}},
    })
}

/// The one pod of the Deployment `app` in `ns`, once kwok has made it Ready.
fn ready_pod(ns: &str, app: &str) -> String {
    let c = cluster();
    let selector = format!("app={app}");
    common::eventually(60, &format!("{ns}/{app}'s pod Ready"), || {
        c.kubectl(&[
            "wait",
            "--for=condition=Ready",
            "pod",
            "-n",
            ns,
            "-l",
            &selector,
            "--timeout=5s",
        ])
        .code
            == 0
    });
    c.kubectl(&[
        "get",
        "pod",
        "-n",
        ns,
        "-l",
        &selector,
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ])
    .stdout
    .trim()
    .to_string()
}

/// Writes what a kubelet would report for a container that cannot run: waiting for `reason`,
/// restarted `restarts` times, the pod not Ready.
fn container_waiting(ns: &str, pod: &str, reason: &str, restarts: u32) {
    let not_ready =
        |kind: &str| json!({"type": kind, "status": "False", "reason": "ContainersNotReady"});
    let patch = json!({"status": {
        "conditions": [not_ready("Ready"), not_ready("ContainersReady")],
        "containerStatuses": [{
            "name": "app", "image": "registry.example.test/app:1", "imageID": "",
            "ready": false, "started": false, "restartCount": restarts,
            "state": {"waiting": {"reason": reason, "message": format!("automon test: {reason}")}},
        }],
    }});
    cluster()
        .kubectl(&[
            "patch",
            "pod",
            "-n",
            ns,
            pod,
            "--subresource=status",
            "--type=strategic",
            "-p",
            &patch.to_string(),
        ])
        .success();
}

/// An hourly schedule whose next run is half an hour away or more: never due during the test.
fn hourly_half_an_hour_away() -> String {
    let minute = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::UTC)
        .minute();
    format!("{} * * * *", (minute + 30) % 60)
}

/// What the CronJob controller leaves behind when it was down for two hours: the last run two
/// hours ago, and (past `startingDeadlineSeconds`) no run since.
fn cronjob_missed(ns: &str, name: &str) {
    let two_hours_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(2);
    let patch = json!({"status": {"lastScheduleTime": two_hours_ago.round(jiff::Unit::Second).unwrap().to_string()}});
    cluster()
        .kubectl(&[
            "patch",
            "cronjob",
            "-n",
            ns,
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch.to_string(),
        ])
        .success();
}

/// A client certificate for the API server, signed by the local cluster's CA, that expires
/// within a day: (certificate, key) files in `dir`. Its group may read `/metrics`.
fn expiring_client_certificate(dir: &Path) -> (String, String) {
    let ca = cluster().dir.join("pki");
    let (key, csr, cert) = (
        dir.join("client.key"),
        dir.join("client.csr"),
        dir.join("client.crt"),
    );
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let path = |p: &Path| p.to_str().unwrap().to_string();
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=automon-test-scraper/O=system:monitoring",
        "-keyout",
        &path(&key),
        "-out",
        &path(&csr),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &path(&csr),
        "-CA",
        &path(&ca.join("ca.crt")),
        "-CAkey",
        &path(&ca.join("ca.key")),
        "-CAcreateserial",
        "-CAserial",
        &path(&dir.join("ca.srl")),
        "-days",
        "1",
        "-out",
        &path(&cert),
    ]);
    (path(&cert), path(&key))
}

/// An Alertmanager configuration whose only receiver is a webhook nothing answers: every
/// notification fails.
fn unreachable_receiver() -> String {
    let config = json!({
        "route": {"receiver": "unreachable", "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1m"},
        "receivers": [{"name": "unreachable",
            "webhook_configs": [{"url": format!("http://127.0.0.1:{}/hook", free_port())}]}],
    });
    serde_saphyr::to_string(&config).unwrap()
}

/// A rule that fails at every evaluation: every `up` series gets the same labels.
const BROKEN_RULES: &str = r#"groups:
- name: automon-test-broken
  rules:
  - record: automon_test:up
    expr: up
    labels: {instance: same, job: same}
"#;

/// Prometheus' configuration: kube-state-metrics, kwok's kubelet and cAdvisor endpoints for the
/// test's nodes (labelled as the kubelet ServiceMonitor labels them), the API server, Prometheus
/// itself and the Alertmanager, which it also sends its alerts to.
fn prometheus_config(ports: &Ports, cert: &(String, String)) -> Value {
    let kwok = |path: &str| {
        let targets: Vec<Value> = [NODE, FULL_NODE]
            .iter()
            .map(|node| json!({
                "targets": [format!("127.0.0.1:{}", ports.kwok)],
                "labels": {"node": node, "__metrics_path__": format!("/metrics/nodes/{node}{path}")},
            }))
            .collect();
        json!({
            "job_name": format!("kubelet{}", path.replace('/', "-")),
            "scheme": "https",
            "tls_config": {"insecure_skip_verify": true},
            "static_configs": targets,
            "relabel_configs": [
                {"target_label": "job", "replacement": "kubelet"},
                {"target_label": "metrics_path", "replacement": path},
            ],
            // kwok evaluates the volume series for every pod; a kubelet reports only claims.
            "metric_relabel_configs": [{
                "source_labels": ["__name__", "persistentvolumeclaim"],
                "regex": "kubelet_volume_stats_.+;",
                "action": "drop",
            }],
        })
    };
    let local = |job: &str, port: u16| json!({"job_name": job, "static_configs": [{"targets": [format!("127.0.0.1:{port}")]}]});
    json!({
        "global": {
            "scrape_interval": "1s", "evaluation_interval": "1s",
            "external_labels": {"cluster": CLUSTER},
        },
        "remote_write": [{"url": format!("http://127.0.0.1:{}/api/v1/write", ports.remote_write)}],
        "rule_files": ["rules.yaml", "broken.yaml"],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [format!("127.0.0.1:{}", ports.alertmanager)]}]}]},
        "scrape_configs": [
            local("kube-state-metrics", ports.kube_state_metrics),
            kwok("/metrics"),
            kwok("/metrics/cadvisor"),
            {
                "job_name": "apiserver",
                "scheme": "https",
                "tls_config": {
                    "ca_file": cluster().dir.join("pki/ca.crt"),
                    "cert_file": cert.0, "key_file": cert.1,
                },
                "static_configs": [{"targets": [ports.api_server.clone()]}],
            },
            local("prometheus", ports.prometheus),
            local("alertmanager", ports.alertmanager),
        ],
    })
}

struct Ports {
    remote_write: u16,
    kwok: u16,
    kube_state_metrics: u16,
    prometheus: u16,
    alertmanager: u16,
    api_server: String,
}

/// The alerts pending or firing, each with its labels.
fn alerts(port: u16) -> Vec<BTreeMap<String, String>> {
    prometheus_query(port, "ALERTS")
        .unwrap_or_default()
        .iter()
        .map(|s| serde_json::from_value(s["metric"].clone()).unwrap())
        .collect()
}

/// Whether an alert `name` is pending or firing with these labels (a value ending in `*` is a
/// prefix: a pod's generated name).
fn raised(alerts: &[BTreeMap<String, String>], name: &str, labels: &[(&str, &str)]) -> bool {
    alerts.iter().any(|a| {
        a.get("alertname").map(String::as_str) == Some(name)
            && labels.iter().all(|(k, v)| match v.strip_suffix('*') {
                Some(prefix) => a.get(*k).is_some_and(|got| got.starts_with(prefix)),
                None => a.get(*k).map(String::as_str) == Some(*v),
            })
    })
}

/// The dashboards the node dashboards' own test (tests/dashboards.rs) proves on node-exporter.
const NODE_DASHBOARDS: &[&str] = &[
    "automon-cluster-overview",
    "automon-node-detail",
    "automon-alerts-overview",
];

/// The queries (panels' and variables') of the dashboards beyond the nodes that return nothing,
/// with their variables set as a user who followed the links would have them: the healthy
/// Deployment's namespace, workload and pod, the test's node, every cluster.
fn silent_dashboard_queries(port: u16, objects: &[Value]) -> Vec<String> {
    let pod = cluster()
        .kubectl(&[
            "get",
            "pod",
            "-n",
            WORKLOADS,
            "-l",
            "app=healthy",
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ])
        .stdout;
    let queries = common::dashboard_queries(objects);
    assert!(queries.len() > 100, "{} queries", queries.len());
    let beyond: Vec<_> = queries
        .iter()
        .filter(|q| !NODE_DASHBOARDS.contains(&q.dashboard_uid.as_str()))
        .collect();
    eprintln!(
        "{} queries of the dashboards beyond the nodes",
        beyond.len()
    );
    beyond
        .into_iter()
        .filter_map(|q| {
            let namespace = if q.dashboard_uid == "automon-k8s-persistent-volumes" {
                RESOURCES
            } else {
                WORKLOADS
            };
            let values = BTreeMap::from([
                ("cluster", ".*"),
                ("namespace", namespace),
                ("type", "Deployment"),
                ("workload", "healthy"),
                ("pod", pod.trim()),
                ("node", NODE),
                ("__rate_interval", "30s"),
                ("__range", "5m"),
            ]);
            let expr = common::substitute(&q.expr, &values);
            match prometheus_query(port, &expr) {
                Ok(series) if !series.is_empty() => None,
                Ok(_) => Some(format!("{}: {expr}", q.at())),
                Err(e) => Some(format!("{}: {expr}: {e}", q.at())),
            }
        })
        .collect()
}

/// What must be raised, and for what: (alert, labels that identify the object).
const EXPECTED: &[(&str, &[(&str, &str)])] = &[
    // Workloads.
    (
        "KubePodCrashLooping",
        &[("namespace", WORKLOADS), ("pod", "crashloop-*")],
    ),
    (
        "KubePodNotReady",
        &[("namespace", WORKLOADS), ("pod", "unschedulable-*")],
    ),
    (
        "KubeContainerWaiting",
        &[("namespace", WORKLOADS), ("pod", "pull")],
    ),
    (
        "KubeDeploymentReplicasMismatch",
        &[("namespace", WORKLOADS), ("deployment", "unschedulable")],
    ),
    (
        "KubeDeploymentRolloutStuck",
        &[("namespace", WORKLOADS), ("deployment", "unschedulable")],
    ),
    (
        "KubeStatefulSetReplicasMismatch",
        &[("namespace", WORKLOADS), ("statefulset", "stuck")],
    ),
    (
        "KubeJobFailed",
        &[("namespace", WORKLOADS), ("job_name", "fails")],
    ),
    (
        "KubeCronJobScheduleMissed",
        &[("namespace", WORKLOADS), ("cronjob", "missed")],
    ),
    (
        "KubeHpaMaxedOut",
        &[
            ("namespace", WORKLOADS),
            ("horizontalpodautoscaler", "maxed"),
        ],
    ),
    // Resources.
    (
        "KubePersistentVolumeClaimPending",
        &[
            ("namespace", RESOURCES),
            ("persistentvolumeclaim", "unbound"),
        ],
    ),
    (
        "KubeQuotaExceeded",
        &[("namespace", RESOURCES), ("resourcequota", "pods")],
    ),
    (
        "KubePersistentVolumeFillingUp",
        &[("namespace", RESOURCES), ("persistentvolumeclaim", "data")],
    ),
    (
        "CPUThrottlingHigh",
        &[("namespace", RESOURCES), ("pod", "throttled")],
    ),
    (
        "KubeContainerMemoryNearLimit",
        &[("namespace", RESOURCES), ("pod", "near-limit")],
    ),
    // Kubernetes itself.
    ("KubeletTooManyPods", &[("node", FULL_NODE)]),
    (
        "KubeClientCertificateExpiration",
        &[("severity", "warning")],
    ),
    (
        "KubeClientCertificateExpiration",
        &[("severity", "critical")],
    ),
    // The stack itself.
    ("PrometheusRuleFailures", &[]),
    (
        "AlertmanagerFailedToSendAlerts",
        &[("integration", "webhook")],
    ),
    ("PrometheusRemoteStorageFailures", &[]),
    ("PrometheusRemoteWriteBehind", &[]),
];

/// Objects nothing may alert about: label values that name them.
const HEALTHY: &[&str] = &["healthy", "relaxed", NODE];

#[test]
fn alerts_beyond_nodes_go_pending_for_situations_made_in_the_cluster() {
    let c = cluster();
    let _nodes = KwokNodes::create(nodes());
    let _namespaces = (Cleanup::fresh(WORKLOADS), Cleanup::fresh(RESOURCES));
    common::at_exit(|| {
        cluster().kubectl(&["delete", "pv", VOLUME, "--ignore-not-found", "--wait=false"]);
    });
    c.kubectl(&[
        "apply",
        "-f",
        repo_root()
            .join("tests/kwok/kubelet.yaml")
            .to_str()
            .unwrap(),
    ])
    .success();
    apply_objects(&situations());
    let crashloop = ready_pod(WORKLOADS, "crashloop");
    c.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod",
        "-n",
        WORKLOADS,
        "pull",
        "--timeout=60s",
    ])
    .success();
    container_waiting(WORKLOADS, "pull", "ImagePullBackOff", 0);
    for pod in ["writer", "throttled", "near-limit", "relaxed"] {
        c.kubectl(&[
            "wait",
            "--for=condition=Ready",
            "pod",
            "-n",
            RESOURCES,
            pod,
            "--timeout=60s",
        ])
        .success();
    }
    apply_objects(&[exceeded_quota()]);
    cronjob_missed(WORKLOADS, "missed");

    // The stack as rendered with remote write (to an endpoint nothing answers) and a cluster
    // label: the remote-write alerts and panels, and the dashboards' cluster variable, are in.
    let remote_write_port = free_port();
    let (_config_dir, config) = write_temp(
        "automon.yaml",
        &format!(
            "prometheus:\n  externalLabels: {{cluster: {CLUSTER}}}\n  remoteWrite:\n  - url: http://127.0.0.1:{remote_write_port}/api/v1/write\n"
        ),
    );
    let objects = rendered_objects(&["-f", config.to_str().unwrap()]);
    let dir = tempfile::tempdir().unwrap();
    let (mut ksm, ksm_log, ksm_port) = spawn_kube_state_metrics(&objects, dir.path());
    let (mut alertmanager, alertmanager_log, alertmanager_port) =
        spawn_alertmanager(dir.path(), &unreachable_receiver());
    let ports = Ports {
        remote_write: remote_write_port,
        kwok: c.kwok_port,
        kube_state_metrics: ksm_port,
        prometheus: free_port(),
        alertmanager: alertmanager_port,
        api_server: c.server.trim_start_matches("https://").to_string(),
    };
    let cert = expiring_client_certificate(dir.path());
    std::fs::write(dir.path().join("rules.yaml"), rendered_rule_file(&objects)).unwrap();
    std::fs::write(dir.path().join("broken.yaml"), BROKEN_RULES).unwrap();
    std::fs::write(
        dir.path().join("prometheus.yaml"),
        serde_saphyr::to_string(&prometheus_config(&ports, &cert)).unwrap(),
    )
    .unwrap();
    let (mut prometheus, prometheus_log) = spawn_prometheus(
        &built_tool("prometheus", "prometheus"),
        dir.path(),
        ports.prometheus,
    );

    eprintln!(
        "Prometheus on 127.0.0.1:{}, kube-state-metrics on :{}, Alertmanager on :{}",
        ports.prometheus, ports.kube_state_metrics, ports.alertmanager
    );

    // The crash-looping container keeps restarting, as a kubelet would report it.
    let started = Instant::now();
    let mut restarts = 1;
    let missing = loop {
        ksm.assert_running(&ksm_log);
        alertmanager.assert_running(&alertmanager_log);
        prometheus.assert_running(&prometheus_log);
        container_waiting(WORKLOADS, &crashloop, "CrashLoopBackOff", restarts);
        restarts += 1;
        let now = alerts(ports.prometheus);
        let missing: Vec<&str> = EXPECTED
            .iter()
            .filter(|(name, labels)| !raised(&now, name, labels))
            .map(|(name, _)| *name)
            .collect();
        if missing.is_empty() || started.elapsed() > Duration::from_secs(180) {
            break missing;
        }
        std::thread::sleep(Duration::from_secs(3));
    };
    let now = alerts(ports.prometheus);
    assert!(
        missing.is_empty(),
        "not raised after {:?}: {missing:?}\nraised: {now:#?}",
        started.elapsed()
    );
    eprintln!("every expected alert raised after {:?}", started.elapsed());
    let wrong: Vec<_> = now
        .iter()
        .filter(|a| {
            a.iter()
                .any(|(k, v)| k != "alertname" && HEALTHY.iter().any(|h| v.starts_with(h)))
        })
        .collect();
    assert!(wrong.is_empty(), "alerts about healthy objects: {wrong:#?}");

    // The time each group takes to evaluate, at this size (for the figures in docs/kube-prometheus-stack.md).
    for s in prometheus_query(
        ports.prometheus,
        "prometheus_rule_group_last_duration_seconds",
    )
    .unwrap()
    {
        eprintln!(
            "rule group {}: {:.3} ms",
            s["metric"]["rule_group"].as_str().unwrap_or_default(),
            s["value"][1]
                .as_str()
                .unwrap_or("0")
                .parse::<f64>()
                .unwrap_or(0.0)
                * 1000.0
        );
    }

    // Every query of the dashboards beyond the nodes answers, for the objects made here.
    let silent = silent_dashboard_queries(ports.prometheus, &objects);
    assert!(
        silent.is_empty(),
        "queries that return nothing:\n{}",
        silent.join("\n")
    );
}
