//! One view over every shard, with real processes on 127.0.0.1: three Prometheus shards (each
//! scraping its own real node-exporter and its node's cAdvisor, as hashmod keeps each target on
//! one shard, and evaluating the stack's recording rules), the ruler federating
//! `rules::CLUSTER_SERIES` from them, a real Thanos sidecar beside each, and Thanos Query with
//! the arguments `render` gives its Deployment (its endpoints the sidecars' addresses here
//! instead of the headless Services' DNS). Beside them, one unsharded Prometheus scraping the
//! same exporters with the same rules, the answer every query through Query must equal.
//!
//! The external labels are the operator's (`prometheus`: `<ns>/<Prometheus>`,
//! `prometheus_replica`: the pod), which Query deduplicates by.

mod common;

use std::{
    collections::BTreeSet,
    path::Path,
    process::Command,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use common::{
    Cleanup, KwokNodes, Process, built_tool, dashboard_queries, enable, eventually, expose,
    fake_http_server, free_port, http_get, kwok_node, nodes_shared, pod_of,
    prometheus_query as query, rendered_objects, rule_file, rule_groups, spawn_node_exporter,
    spawn_prometheus, status_json, status_node, substitute, until, url_encode,
};

const NODES: [&str; 3] = ["node-a", "node-b", "node-c"];
/// The local cluster's nodes the status test adds, one per shard.
const KWOK_NODES: [&str; 3] = ["tq-node-a", "tq-node-b", "tq-node-c"];

/// kube-state-metrics' view of the three nodes (one target, on the first shard, as hashmod
/// puts its one target on one shard).
fn kube_state_metrics(nodes: [&str; 3]) -> String {
    let mut text = String::from(
        "# TYPE kube_node_info gauge\n# TYPE kube_node_status_condition gauge\n\
         # TYPE kube_node_labels gauge\n# TYPE kube_node_status_allocatable gauge\n",
    );
    for n in nodes {
        text.push_str(&format!(
            "kube_node_info{{node=\"{n}\",kernel_version=\"6.1\",os_image=\"test\",container_runtime_version=\"containerd://2.4.2\",kubelet_version=\"v1.36.3\",internal_ip=\"127.0.0.1\"}} 1\n\
             kube_node_status_condition{{node=\"{n}\",condition=\"Ready\",status=\"true\"}} 1\n\
             kube_node_status_condition{{node=\"{n}\",condition=\"Ready\",status=\"false\"}} 0\n\
             kube_node_status_condition{{node=\"{n}\",condition=\"Ready\",status=\"unknown\"}} 0\n\
             kube_node_labels{{node=\"{n}\",label_kubernetes_io_os=\"linux\"}} 1\n\
             kube_node_status_allocatable{{node=\"{n}\",resource=\"cpu\",unit=\"core\"}} 4\n\
             kube_node_status_allocatable{{node=\"{n}\",resource=\"memory\",unit=\"byte\"}} 8589934592\n"
        ));
    }
    // The pods of `cadvisor`'s containers (requests and limits of one container each, Running),
    // and a finished pod whose requests do not count.
    text.push_str(
        "# TYPE kube_pod_info gauge\n# TYPE kube_pod_status_phase gauge\n\
         # TYPE kube_pod_container_resource_requests gauge\n\
         # TYPE kube_pod_container_resource_limits gauge\n",
    );
    let mut pods: Vec<(String, String)> = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        pods.push(("shared".into(), format!("web-{n}")));
        pods.push((format!("own-{i}"), format!("own-{n}")));
    }
    for (ns, pod) in &pods {
        text.push_str(&format!(
            "kube_pod_info{{namespace=\"{ns}\",pod=\"{pod}\"}} 1\n\
             kube_pod_status_phase{{namespace=\"{ns}\",pod=\"{pod}\",phase=\"Running\"}} 1\n\
             kube_pod_status_phase{{namespace=\"{ns}\",pod=\"{pod}\",phase=\"Succeeded\"}} 0\n\
             kube_pod_container_resource_requests{{namespace=\"{ns}\",pod=\"{pod}\",container=\"app\",resource=\"cpu\",unit=\"core\"}} 0.5\n\
             kube_pod_container_resource_requests{{namespace=\"{ns}\",pod=\"{pod}\",container=\"app\",resource=\"memory\",unit=\"byte\"}} 268435456\n\
             kube_pod_container_resource_limits{{namespace=\"{ns}\",pod=\"{pod}\",container=\"app\",resource=\"cpu\",unit=\"core\"}} 1\n\
             kube_pod_container_resource_limits{{namespace=\"{ns}\",pod=\"{pod}\",container=\"app\",resource=\"memory\",unit=\"byte\"}} 536870912\n"
        ));
    }
    text.push_str(
        "kube_pod_info{namespace=\"shared\",pod=\"migrate\"} 1\n\
         kube_pod_status_phase{namespace=\"shared\",pod=\"migrate\",phase=\"Running\"} 0\n\
         kube_pod_status_phase{namespace=\"shared\",pod=\"migrate\",phase=\"Succeeded\"} 1\n\
         kube_pod_container_resource_requests{namespace=\"shared\",pod=\"migrate\",container=\"app\",resource=\"cpu\",unit=\"core\"} 2\n",
    );
    text
}

/// Working set of `SHARED_BYTES` in namespace `shared` on every node: one view must sum them.
const SHARED_BYTES: u64 = 100 << 20;

/// cAdvisor's view of node `i`: a container in namespace `shared` (every node has one) and one in
/// a namespace of the node's own, beside the pod's own cgroup (no container name), which the
/// sums leave out. The CPU counters stand still: their rates are 0 on every Prometheus alike.
fn cadvisor(i: usize, node: &str) -> String {
    let mut text = String::from(
        "# TYPE container_memory_working_set_bytes gauge\n\
         # TYPE container_cpu_usage_seconds_total counter\n",
    );
    for (ns, pod, bytes) in [
        ("shared".to_string(), format!("web-{node}"), SHARED_BYTES),
        (format!("own-{i}"), format!("own-{node}"), 50 << 20),
    ] {
        text.push_str(&format!(
            "container_memory_working_set_bytes{{container=\"app\",image=\"app:1\",namespace=\"{ns}\",pod=\"{pod}\",id=\"/kubepods/{pod}/app\"}} {bytes}\n\
             container_memory_working_set_bytes{{container=\"\",image=\"\",namespace=\"{ns}\",pod=\"{pod}\",id=\"/kubepods/{pod}\"}} {}\n\
             container_cpu_usage_seconds_total{{container=\"app\",image=\"app:1\",namespace=\"{ns}\",pod=\"{pod}\",id=\"/kubepods/{pod}/app\"}} 100\n",
            bytes * 2
        ));
    }
    text
}

/// The kubelet's cAdvisor scrape of `targets` (address, node), labelled as the kubelet
/// ServiceMonitor labels it.
fn cadvisor_job(targets: &[(u16, &str)]) -> String {
    let mut job =
        String::from("  - job_name: kubelet\n    honor_labels: true\n    static_configs:\n");
    for (port, node) in targets {
        job.push_str(&format!(
            "      - targets: [\"127.0.0.1:{port}\"]\n        labels: {{node: {node}, metrics_path: /metrics/cadvisor}}\n"
        ));
    }
    job
}

fn serve_kube_state_metrics(nodes: [&str; 3]) -> u16 {
    serve_metrics(&kube_state_metrics(nodes))
}

/// A scrape target that always answers `body`.
fn serve_metrics(body: &str) -> u16 {
    fake_http_server(Some(&format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )))
}

/// A node-exporter scrape of `targets` (address, node), labelled as the node-exporter
/// ServiceMonitor labels it: job node-exporter, the node in `node` and `instance`.
fn node_exporter_job(targets: &[(u16, &str)]) -> String {
    let mut job = String::from("  - job_name: node-exporter\n    static_configs:\n");
    for (port, node) in targets {
        job.push_str(&format!(
            "      - targets: [\"127.0.0.1:{port}\"]\n        labels: {{node: {node}, instance: {node}}}\n"
        ));
    }
    job
}

fn kube_state_metrics_job(port: u16) -> String {
    format!(
        "  - job_name: kube-state-metrics\n    honor_labels: true\n    static_configs:\n      - targets: [\"127.0.0.1:{port}\"]\n"
    )
}

/// A Prometheus with the operator's external labels for pod `pod` of `prometheus`, these jobs
/// and rules, in a directory of its own under `dir`.
struct Instance {
    port: u16,
    log: std::path::PathBuf,
    process: Process,
}

fn prometheus(
    dir: &Path,
    name: &str,
    external: Option<(&str, &str)>,
    jobs: &str,
    rules: &str,
) -> Instance {
    // The same rules at the same path for every shard, as the operator mounts them in each
    // shard's pods: Query takes rule groups of one name and file for one group.
    let rule_file = dir.join(format!("rules-{:x}.yaml", {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        rules.hash(&mut h);
        h.finish()
    }));
    std::fs::write(&rule_file, rules).unwrap();
    let dir = dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let labels = external
        .map(|(prometheus, pod)| {
            format!("  external_labels: {{prometheus: \"automon/{prometheus}\", prometheus_replica: \"{pod}\"}}\n")
        })
        .unwrap_or_default();
    std::fs::write(
        dir.join("prometheus.yaml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n{labels}rule_files: [{}]\nscrape_configs:\n{jobs}",
            rule_file.display()
        ),
    )
    .unwrap();
    let port = free_port();
    let (process, log) = spawn_prometheus(&built_tool("prometheus", "prometheus"), &dir, port);
    Instance { port, log, process }
}

/// A group of one alert that always fires.
fn always(alert: &str) -> Value {
    serde_json::json!({
        "name": alert,
        "rules": [{"alert": alert, "expr": "vector(1)", "labels": {"severity": "none"}}],
    })
}

/// A real Thanos sidecar beside the Prometheus on `prometheus`: its StoreAPI's port.
fn sidecar(dir: &Path, name: &str, prometheus: u16) -> (Process, std::path::PathBuf, u16) {
    // A sidecar binds its ports only once Prometheus answers, and asks again only every 30 s:
    // ports picked long before they are bound can be taken meanwhile (Prometheus' scrapes use
    // ephemeral source ports; CI once lost a sidecar to that). Pick them when Prometheus is up.
    eventually(60, "Prometheus ready for its sidecar", || {
        http_get(prometheus, "/-/ready").is_ok()
    });
    let (grpc, http) = (free_port(), free_port());
    let log = dir.join(format!("sidecar-{name}.log"));
    let process = Process::spawn(
        "thanos sidecar",
        Command::new(built_tool("thanos", "thanos"))
            .arg("sidecar")
            .arg(format!("--prometheus.url=http://127.0.0.1:{prometheus}"))
            .arg(format!("--grpc-address=127.0.0.1:{grpc}"))
            .arg(format!("--http-address=127.0.0.1:{http}"))
            .arg(format!(
                "--tsdb.path={}",
                dir.join(name).join("data").display()
            )),
        &log,
    );
    (process, log, grpc)
}

/// `render`'s Thanos Query arguments for a sharded stack, with its addresses on 127.0.0.1 and
/// its endpoints the sidecars' ports.
fn query_args(objects: &[Value], http: u16, grpc: u16, stores: &[u16]) -> Vec<String> {
    let deployment = objects
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "thanos-query")
        .expect("a sharded stack renders Deployment thanos-query");
    let args: Vec<String> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("Thanos Query's arguments")
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let endpoints = args.iter().filter(|a| a.starts_with("--endpoint=")).count();
    assert_eq!(
        endpoints, 2,
        "the shards' and the ruler's sidecars: {args:?}"
    );
    let mut out: Vec<String> = args
        .into_iter()
        .filter(|a| !a.starts_with("--endpoint="))
        .map(|a| {
            if a.starts_with("--http-address=") {
                format!("--http-address=127.0.0.1:{http}")
            } else if a.starts_with("--grpc-address=") {
                format!("--grpc-address=127.0.0.1:{grpc}")
            } else {
                a
            }
        })
        .collect();
    out.extend(stores.iter().map(|p| format!("--endpoint=127.0.0.1:{p}")));
    out
}

/// An instant query through Query with deduplication off: what Query would answer without
/// its replica labels.
fn query_undeduplicated(port: u16, expr: &str) -> Vec<Value> {
    let body = http_get(
        port,
        &format!("/api/v1/query?dedup=false&query={}", url_encode(expr)),
    )
    .unwrap_or_else(|e| panic!("{expr}: {e}"));
    let v: Value = serde_json::from_str(&body).unwrap();
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// The value of a one-sample answer.
fn scalar(result: &[Value]) -> f64 {
    assert_eq!(result.len(), 1, "one sample: {result:?}");
    result[0]["value"][1].as_str().unwrap().parse().unwrap()
}

/// A dashboard query with Grafana's variables filled in: every cluster, a 15 s rate interval
/// (the shards scrape every second), and `chosen` (a node, a namespace).
fn as_grafana_sends(expr: &str, chosen: (&str, &str)) -> String {
    let values = std::collections::BTreeMap::from([
        ("__rate_interval", "15s"),
        ("__range", "1h"),
        ("datasource", "prometheus"),
        ("cluster", ".*"),
        chosen,
    ]);
    substitute(expr, &values)
}

/// Each sample's labels (as JSON text) and value, sorted.
fn samples(result: &[Value]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = result
        .iter()
        .map(|s| {
            (
                s["metric"].to_string(),
                s["value"][1].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Three shards of one node each, the ruler, their sidecars, Query and the one unsharded
/// Prometheus, all running and scraped a few times; stopped when dropped.
struct Sharded {
    objects: Vec<Value>,
    /// Query's HTTP port.
    http: u16,
    shards: Vec<Instance>,
    whole: Instance,
    query_log: std::path::PathBuf,
    sidecar_logs: Vec<std::path::PathBuf>,
    _processes: Vec<Process>,
    _dir: tempfile::TempDir,
}

impl Sharded {
    fn start(nodes: [&'static str; 3]) -> Sharded {
        let objects = rendered_objects(&["--set", "prometheus.shards=3"]);
        let federate = objects
            .iter()
            .find(|o| {
                o["kind"] == "ServiceMonitor" && o["metadata"]["name"] == "prometheus-federate"
            })
            .expect("the ruler's federation");
        let matches: Vec<String> = federate["spec"]["endpoints"][0]["params"]["match[]"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_string())
            .collect();

        let dir = tempfile::tempdir().unwrap();
        let ksm = serve_kube_state_metrics(nodes);
        let mut exporters = Vec::new();
        for node in nodes {
            let d = dir.path().join(node);
            std::fs::create_dir_all(&d).unwrap();
            let (process, log, port) = spawn_node_exporter(&d);
            exporters.push((process, log, port, node));
        }
        let kubelets: Vec<(u16, &str)> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (serve_metrics(&cadvisor(i, n)), *n))
            .collect();
        // The recording rules every shard evaluates, as the operator gives each shard the
        // stack's PrometheusRules.
        let recording: Vec<Value> = rule_groups(&objects)
            .into_iter()
            .filter(|g| {
                g["rules"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["record"].is_string())
            })
            .collect();
        assert!(!recording.is_empty(), "no recording rules rendered");
        let with_recording = |alerts: &[&str]| {
            rule_file(
                recording
                    .iter()
                    .cloned()
                    .chain(alerts.iter().map(|a| always(a)))
                    .collect(),
            )
        };
        // Shard i scrapes node i (its exporter and kubelet); the first shard also
        // kube-state-metrics.
        let mut shards = Vec::new();
        for (i, (_, _, port, node)) in exporters.iter().enumerate() {
            let mut jobs = node_exporter_job(&[(*port, node)]);
            jobs.push_str(&cadvisor_job(&kubelets[i..=i]));
            if i == 0 {
                jobs.push_str(&kube_state_metrics_job(ksm));
            }
            let pod = match i {
                0 => "prometheus-automon-0".to_string(),
                _ => format!("prometheus-automon-shard-{i}-0"),
            };
            shards.push(prometheus(
                dir.path(),
                &format!("shard-{i}"),
                Some(("automon", &pod)),
                &jobs,
                &with_recording(&["Watchdog"]),
            ));
        }
        // The ruler: the federation the ServiceMonitor renders, with honor_labels, from each shard.
        let mut federation = String::from(
            "  - job_name: prometheus-federate\n    honor_labels: true\n    metrics_path: /federate\n    params:\n      match[]:\n",
        );
        for m in &matches {
            federation.push_str(&format!(
                "        - {}\n",
                serde_json::to_string(m).unwrap()
            ));
        }
        federation.push_str("    static_configs:\n      - targets: [");
        federation.push_str(
            &shards
                .iter()
                .map(|s| format!("\"127.0.0.1:{}\"", s.port))
                .collect::<Vec<_>>()
                .join(", "),
        );
        federation.push_str("]\n");
        let ruler = prometheus(
            dir.path(),
            "ruler",
            Some(("automon-ruler", "prometheus-automon-ruler-0")),
            &federation,
            &rule_file(vec![always("ClusterScope")]),
        );
        // One unsharded Prometheus of the same targets: what one view must answer.
        let all: Vec<(u16, &str)> = exporters.iter().map(|(_, _, p, n)| (*p, *n)).collect();
        let mut whole = prometheus(
            dir.path(),
            "whole",
            Some(("automon", "prometheus-automon-0")),
            &format!(
                "{}{}{}",
                node_exporter_job(&all),
                cadvisor_job(&kubelets),
                kube_state_metrics_job(ksm)
            ),
            &with_recording(&["Watchdog", "ClusterScope"]),
        );

        let mut sidecars = Vec::new();
        for (i, s) in shards.iter().enumerate() {
            sidecars.push(sidecar(dir.path(), &format!("shard-{i}"), s.port));
        }
        sidecars.push(sidecar(dir.path(), "ruler", ruler.port));
        let stores: Vec<u16> = sidecars.iter().map(|(_, _, p)| *p).collect();
        let (http, grpc) = (free_port(), free_port());
        let query_log = dir.path().join("query.log");
        let mut thanos_query = Process::spawn(
            "thanos query",
            Command::new(built_tool("thanos", "thanos"))
                .args(query_args(&objects, http, grpc, &stores)),
            &query_log,
        );

        // Every shard scraped a few times, the ruler federated them, and Query sees all four stores.
        // (At least: how many Query counts is the test's to judge, with a clear message.)
        let ready = r#"count(count_over_time(up{job="node-exporter"}[1m]) >= 5) >= 3 and on () count(count_over_time(up{job="kube-state-metrics"}[1m]) >= 5) >= 1"#;
        let deadline = Instant::now() + Duration::from_secs(120);
        let sidecar_logs: Vec<std::path::PathBuf> =
            sidecars.iter().map(|(_, l, _)| l.clone()).collect();
        let logs = |extra: &str| {
            let mut out = format!(
                "{extra}\nquery:\n{}",
                std::fs::read_to_string(&query_log).unwrap_or_default()
            );
            for log in &sidecar_logs {
                out.push_str(&format!(
                    "\n{}:\n{}",
                    log.display(),
                    std::fs::read_to_string(log).unwrap_or_default()
                ));
            }
            out
        };
        loop {
            thanos_query.assert_running(&query_log);
            for (p, log, _) in sidecars.iter_mut() {
                p.assert_running(log);
            }
            for s in shards.iter_mut().chain([&mut whole]) {
                s.process.assert_running(&s.log);
            }
            let stores_up = http_get(http, "/api/v1/stores")
                .ok()
                .and_then(|b| serde_json::from_str::<Value>(&b).ok())
                .map(|v| v["data"]["sidecar"].as_array().map_or(0, Vec::len))
                .unwrap_or(0);
            let federated = query(ruler.port, r#"count(up{job="node-exporter"})"#)
                .is_ok_and(|r| r.first().is_some_and(|s| s["value"][1] == "3"));
            if stores_up == 4
                && federated
                && query(http, ready).is_ok_and(|r| !r.is_empty())
                && query(whole.port, ready).is_ok_and(|r| !r.is_empty())
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{}",
                logs(&format!(
                    "not ready within 120s: {stores_up} of 4 stores up, ruler federated: {federated}"
                ))
            );
            thread::sleep(Duration::from_millis(500));
        }
        let mut processes: Vec<Process> = exporters.into_iter().map(|(p, ..)| p).collect();
        processes.extend(sidecars.into_iter().map(|(p, ..)| p));
        processes.push(thanos_query);
        processes.push(ruler.process);
        Sharded {
            objects,
            http,
            shards,
            whole,
            query_log,
            sidecar_logs,
            _processes: processes,
            _dir: dir,
        }
    }

    /// Query's and the sidecars' logs after `extra`, for a failure.
    fn logs(&self, extra: &str) -> String {
        let mut out = format!(
            "{extra}\nquery:\n{}",
            std::fs::read_to_string(&self.query_log).unwrap_or_default()
        );
        for log in &self.sidecar_logs {
            out.push_str(&format!(
                "\n{}:\n{}",
                log.display(),
                std::fs::read_to_string(log).unwrap_or_default()
            ));
        }
        out
    }
}

#[test]
fn thanos_query_over_three_shards_and_the_ruler_counts_every_node_once() {
    let set = Sharded::start(NODES);
    let (http, objects, whole) = (set.http, &set.objects, &set.whole);
    let logs = |extra: &str| set.logs(extra);
    // Every node once: the ruler's federated copies and the shards' own are one series each.
    let counted = r#"count by (node) (up{job="node-exporter"})"#;
    let through_query = query(http, counted).unwrap();
    assert_eq!(
        samples(&through_query),
        samples(&query(whole.port, counted).unwrap()),
        "through Query against one unsharded Prometheus"
    );
    assert_eq!(through_query.len(), 3, "{through_query:?}");
    assert_eq!(
        scalar(&query(http, r#"count(up{job="node-exporter"})"#).unwrap()),
        3.0
    );
    // Without the replica labels the ruler's copies count twice: deduplication is what makes
    // one view right (and this test able to fail).
    let raw = query_undeduplicated(http, r#"count(up{job="node-exporter"})"#);
    assert_eq!(scalar(&raw), 6.0, "{raw:?}");
    // The shards' three Watchdogs are one, as on one Prometheus; the ruler's alert is there.
    assert_eq!(
        scalar(
            &query(
                http,
                r#"count(ALERTS{alertname="Watchdog", alertstate="firing"})"#
            )
            .unwrap()
        ),
        1.0
    );
    assert_eq!(
        scalar(
            &query(
                http,
                r#"count(ALERTS{alertname="ClusterScope", alertstate="firing"})"#
            )
            .unwrap()
        ),
        1.0
    );
    // Series per node, through Query and on the one Prometheus: the same.
    let per_node = r#"count by (node) ({job="node-exporter", __name__=~"node_.+"})"#;
    let started = Instant::now();
    let a = query(http, per_node).unwrap();
    let query_time = started.elapsed();
    let started = Instant::now();
    let b = query(whole.port, per_node).unwrap();
    let whole_time = started.elapsed();
    assert_eq!(samples(&a), samples(&b), "series per node");
    eprintln!(
        "series per node: {} through Query in {query_time:?}, {} on one Prometheus in {whole_time:?}",
        samples(&a)
            .iter()
            .map(|(m, v)| format!("{m}={v}"))
            .collect::<Vec<_>>()
            .join(" "),
        samples(&b)
            .iter()
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    );

    // Every node dashboard's query answers for each node through Query.
    let mut no_data = Vec::new();
    let queries: Vec<_> = dashboard_queries(objects)
        .into_iter()
        .filter(|q| {
            [
                "automon-cluster-overview",
                "automon-node-detail",
                "automon-alerts-overview",
            ]
            .contains(&q.dashboard_uid.as_str())
        })
        .collect();
    assert!(queries.len() > 20, "{}", queries.len());
    let mut differ = Vec::new();
    for node in NODES {
        for q in &queries {
            let expr = as_grafana_sends(&q.expr, ("node", node));
            match query(http, &expr) {
                Ok(r) if r.is_empty() => {
                    no_data.push(format!("{node}: {}: No data: {expr}", q.at()))
                }
                Ok(r) => {
                    // A per-node answer names the node asked for, or every node.
                    let nodes: BTreeSet<&str> = r
                        .iter()
                        .filter_map(|s| s["metric"]["node"].as_str())
                        .collect();
                    if !nodes.is_empty() && !nodes.contains(node) {
                        no_data.push(format!("{node}: {}: only {nodes:?}: {expr}", q.at()));
                    }
                    // The same series as the one Prometheus answers with; the same values
                    // where they count (rates differ: the two scrape at other moments).
                    let whole_answer = query(whole.port, &expr).unwrap_or_default();
                    let series = |r: &[Value]| -> BTreeSet<String> {
                        r.iter().map(|s| s["metric"].to_string()).collect()
                    };
                    if series(&r) != series(&whole_answer) {
                        differ.push(format!(
                            "{node}: {}: {expr}\n  through Query: {:?}\n  one Prometheus: {:?}",
                            q.at(),
                            series(&r),
                            series(&whole_answer)
                        ));
                    } else if expr.starts_with("count") && samples(&r) != samples(&whole_answer) {
                        differ.push(format!(
                            "{node}: {}: {expr}\n  through Query: {:?}\n  one Prometheus: {:?}",
                            q.at(),
                            samples(&r),
                            samples(&whole_answer)
                        ));
                    }
                }
                Err(e) => no_data.push(format!("{node}: {}: {e}: {expr}", q.at())),
            }
        }
    }
    assert!(
        no_data.is_empty(),
        "{}",
        logs(&format!("through Query:\n{}", no_data.join("\n")))
    );
    assert!(
        differ.is_empty(),
        "through Query and on one Prometheus:\n{}",
        differ.join("\n")
    );
}

/// The compute dashboards' totals read the recorded sums (`rules::recording`): each shard
/// records its own nodes' part, and through Query they add up to what one unsharded Prometheus
/// with the same rules answers, on every panel of the cluster dashboard and the namespace
/// dashboard's totals. Namespace `shared` has a container on every shard's node: Query must sum
/// the three shards' partial sums, not take one of them for replicas of the others.
#[test]
fn compute_dashboards_totals_from_the_shards_recorded_sums_equal_one_prometheus() {
    let set = Sharded::start(NODES);
    let (http, whole) = (set.http, &set.whole);
    // Both have evaluated the recording rules over every target (one shard's sum per node).
    let recorded = r#"count(node_namespace:container_memory_working_set_bytes:sum) >= 6 and on () count(namespace_resource:kube_pod_container_resource_requests:sum_active) >= 8"#;
    until(
        "the recorded sums through Query and on one Prometheus",
        || {
            let through_query = query(http, recorded).map_err(|e| e.to_string())?;
            let on_one = query(whole.port, recorded).map_err(|e| e.to_string())?;
            match through_query.is_empty() || on_one.is_empty() {
                true => Err(set.logs(&format!("{through_query:?} {on_one:?}"))),
                false => Ok(()),
            }
        },
    );
    // The sum of the three shards' parts, not one of them.
    let shared = r#"sum by (namespace) (node_namespace:container_memory_working_set_bytes:sum{namespace="shared"})"#;
    assert_eq!(
        scalar(&query(http, shared).unwrap()),
        (3 * SHARED_BYTES) as f64
    );
    // Requests of the Running pods only: 3 in `shared` at 0.5 cores, the finished pod's 2 left
    // out.
    let requested = r#"sum(namespace_resource:kube_pod_container_resource_requests:sum_active{namespace="shared", resource="cpu"})"#;
    assert_eq!(scalar(&query(http, requested).unwrap()), 1.5);

    let queries: Vec<_> = dashboard_queries(&set.objects)
        .into_iter()
        // The panels (the `cluster` variable's `up` rightly differs: the ruler's federation
        // targets are not the one Prometheus').
        .filter(|q| !q.panel_title.starts_with("variable "))
        .filter(|q| {
            q.dashboard_uid == "automon-k8s-compute-cluster"
                || (q.dashboard_uid == "automon-k8s-compute-namespace" && q.expr.contains(":sum"))
        })
        .collect();
    assert!(queries.len() >= 20, "{}", queries.len());
    let (mut no_data, mut differ) = (Vec::new(), Vec::new());
    for q in &queries {
        let expr = as_grafana_sends(&q.expr, ("namespace", "shared"));
        let (a, b) = (
            query(http, &expr).unwrap(),
            query(whole.port, &expr).unwrap(),
        );
        if a.is_empty() {
            no_data.push(format!("{}: {expr}", q.at()));
        }
        // The same series with the same values (the CPU counters stand still, so even the
        // rates agree).
        let close = samples(&a).len() == samples(&b).len()
            && samples(&a)
                .iter()
                .zip(samples(&b))
                .all(|((la, va), (lb, vb))| {
                    let (x, y): (f64, f64) = (va.parse().unwrap(), vb.parse().unwrap());
                    *la == lb && (x - y).abs() <= 1e-9 * x.abs().max(1.0)
                });
        if !close {
            differ.push(format!(
                "{}: {expr}\n  through Query: {:?}\n  one Prometheus: {:?}",
                q.at(),
                samples(&a),
                samples(&b)
            ));
        }
    }
    assert!(
        no_data.is_empty(),
        "No data through Query:\n{}",
        no_data.join("\n")
    );
    assert!(
        differ.is_empty(),
        "through Query and on one Prometheus:\n{}",
        differ.join("\n")
    );
}

fn node<'a>(st: &'a Value, name: &str) -> &'a Value {
    status_node(st, name)
}

/// `status` of a sharded stack asks Thanos Query (through the API server's service proxy, as
/// for one Prometheus) and so sees every shard's scrapes; one shard alone sees its own node.
#[test]
fn status_of_a_sharded_stack_asks_thanos_query_and_sees_every_shards_nodes() {
    let ns = "automon-thanos-query";
    let _cleanup = Cleanup::fresh(ns);
    let _sharing = nodes_shared();
    let _nodes = KwokNodes::create(KWOK_NODES.iter().map(|n| kwok_node(n)).collect());
    enable(ns, &["--set", "prometheus.shards=3"]).success();
    let set = Sharded::start(KWOK_NODES);
    // kwok runs Query's pod; the API server's proxy reaches the Query running here in its place.
    let pod = until("Thanos Query's pod", || {
        pod_of(ns, "thanos-query").ok_or_else(|| "not yet".to_string())
    });
    let _exposed = expose(ns, &pod, 10902, set.http);
    let st = until(
        "status counts the three nodes' scrapes through Query",
        || {
            let (out, st) = status_json(ns, &[]);
            if KWOK_NODES
                .iter()
                .all(|n| node(&st, n)["scrape"]["health"] == "up")
            {
                Ok(st)
            } else {
                Err(set.logs(&format!("{out:#?}")))
            }
        },
    );
    assert_eq!(
        st["prometheus"]["via"],
        format!("service {ns}/thanos-query:web through the API server"),
        "{st}"
    );
    // The shards' rules (the recording group and Watchdog) and the ruler's, each group once.
    assert_eq!(
        st["prometheus"]["rulesLoaded"],
        serde_json::json!({"groups": 3, "alerts": 2}),
        "{st}"
    );
    // One shard alone answers for its own node only: Query is what makes every node counted.
    let one = format!("http://127.0.0.1:{}", set.shards[1].port);
    let (_, alone) = status_json(ns, &["--prometheus-url", &one]);
    assert_eq!(
        node(&alone, KWOK_NODES[1])["scrape"]["health"],
        "up",
        "{alone}"
    );
    for n in [KWOK_NODES[0], KWOK_NODES[2]] {
        assert_eq!(
            node(&alone, n)["scrape"]["health"],
            "missing",
            "{n}: {alone}"
        );
        assert_eq!(node(&alone, n)["coverage"], "notMonitored", "{n}: {alone}");
    }
    for n in KWOK_NODES {
        assert_eq!(node(&st, n)["coverage"], "monitored", "{n}: {st}");
    }
}
