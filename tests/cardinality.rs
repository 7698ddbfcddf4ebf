//! What the scrape configuration drops before ingestion (`metricRelabelings`, today the kubelet's
//! and cAdvisor's unused families) costs nothing automon ships: every PromQL expression of every
//! rule and dashboard, `render`'s and the node classes', reads only metric names no drop matches,
//! with the regexes applied as Prometheus applies them (anchored). And promtool accepts the drops
//! as Prometheus' own `metric_relabel_configs`, so the regexes are valid RE2 and not only valid
//! for Rust's `regex`.

mod common;

use std::collections::BTreeSet;

use regex::Regex;
use serde_json::{Value, json};

use common::{Run, dashboard_queries, node_class_objects, promtool_with, rendered_objects};

/// Every object a cluster with every node class may hold: `render`'s and the classes' own.
fn all_objects() -> Vec<Value> {
    let mut objects = rendered_objects(&[]);
    objects.extend(node_class_objects());
    objects
}

/// A PromQL expression automon ships, and where.
struct Query {
    at: String,
    expr: String,
}

/// Every rule expression and every dashboard query (panels and variables) in these objects, and
/// the names the recording rules among them produce.
fn shipped_queries(objects: &[Value]) -> (Vec<Query>, BTreeSet<String>) {
    let mut queries = Vec::new();
    let mut produced = BTreeSet::new();
    for o in objects.iter().filter(|o| o["kind"] == "PrometheusRule") {
        for g in o["spec"]["groups"].as_array().expect("groups") {
            for r in g["rules"].as_array().expect("rules") {
                if let Some(record) = r["record"].as_str() {
                    produced.insert(record.to_string());
                }
                let name = r["alert"]
                    .as_str()
                    .or(r["record"].as_str())
                    .expect("a name");
                queries.push(Query {
                    at: format!("{} / {}", g["name"], name),
                    expr: r["expr"].as_str().expect("expr").to_string(),
                });
            }
        }
    }
    for q in dashboard_queries(objects) {
        queries.push(Query {
            at: q.at(),
            expr: q.expr,
        });
    }
    (queries, produced)
}

/// Label lists follow these, in parentheses: `sum by (node) (…)`, `on (node)`, `group_left (a)`.
const LABEL_LIST_KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
/// Words that are neither a metric nor a function.
const KEYWORDS: &[&str] = &[
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "Inf", "NaN",
];

/// The metric names a PromQL expression reads: selectors' names and `__name__` matchers.
fn metric_names(expr: &str) -> Vec<String> {
    metric_reads(expr).into_iter().map(|r| r.name).collect()
}

/// A metric a query reads, and the job its selector names (`job="…"`), if it names one.
struct Read {
    name: String,
    job: Option<String>,
}

/// The metrics a PromQL expression reads, each with its selector's job. A small tokenizer, not
/// a parser: strings, label matchers, ranges, numbers, durations and Grafana's `$variables` are
/// skipped; an identifier followed by `(` is a function; label lists after `by`, `on`, … are
/// skipped.
fn metric_reads(expr: &str) -> Vec<Read> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names: Vec<Read> = Vec::new();
    // The name just read and where it ended: the matchers right after it are its own.
    let mut last_name: Option<(usize, usize)> = None;
    let mut i = 0;
    let ident_start = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':';
    let ident_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '{' {
            let first = names.len();
            let (end, job) = matchers(&chars, i, &mut names);
            if let Some((at, ended)) = last_name
                && chars[ended..i].iter().all(|c| c.is_whitespace())
            {
                names[at].job.clone_from(&job);
            }
            for read in &mut names[first..] {
                read.job.clone_from(&job);
            }
            i = end;
        } else if c == '[' {
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            // Numbers, hex, exponents and durations (`5m`, `1h30m`).
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                let exponent =
                    matches!(chars[i], 'e' | 'E') && matches!(chars.get(i + 1), Some('+' | '-'));
                i += if exponent { 2 } else { 1 };
            }
        } else if c == '$' {
            // Grafana's variables: `$node`, `$__rate_interval`, `${node}`.
            i += 1;
            while i < chars.len() && (ident_char(chars[i]) || matches!(chars[i], '{' | '}')) {
                i += 1;
            }
        } else if ident_start(c) {
            let start = i;
            while i < chars.len() && ident_char(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let call = chars.get(next) == Some(&'(');
            // `sum by (…) (…)`: an aggregation with its grouping first.
            let rest: String = chars[next..].iter().take(8).collect();
            let grouped = ["by", "without"].iter().any(|k| {
                rest.strip_prefix(k)
                    .is_some_and(|after| after.starts_with(|c: char| !ident_char(c)))
            });
            if LABEL_LIST_KEYWORDS.contains(&word.as_str()) {
                if call {
                    i = skip_parens(&chars, next);
                }
            } else if !KEYWORDS.contains(&word.as_str()) && !call && !grouped {
                last_name = Some((names.len(), i));
                names.push(Read {
                    name: word,
                    job: None,
                });
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Past the string starting at `i` (its quote), escapes included.
fn skip_string(chars: &[char], i: usize) -> usize {
    let quote = chars[i];
    let mut j = i + 1;
    while j < chars.len() && chars[j] != quote {
        j += if chars[j] == '\\' && quote != '`' {
            2
        } else {
            1
        };
    }
    j + 1
}

/// Past the parenthesised list starting at `i`.
fn skip_parens(chars: &[char], i: usize) -> usize {
    let mut depth = 0;
    let mut j = i;
    while j < chars.len() {
        match chars[j] {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    j
}

/// Past the label matchers starting at `i` (`{`), and the job they select (`job="…"`), adding
/// the names `__name__` matchers select: `="name"`, or `=~"a|b"` when that regex is a list of
/// plain names (anything else cannot be checked name by name, and fails loudly rather than
/// pass unchecked).
fn matchers(chars: &[char], i: usize, names: &mut Vec<Read>) -> (usize, Option<String>) {
    let mut job = None;
    let mut j = i + 1;
    let mut label = String::new();
    let mut op = String::new();
    while j < chars.len() && chars[j] != '}' {
        let c = chars[j];
        if c == '"' || c == '\'' || c == '`' {
            let end = skip_string(chars, j);
            let value: String = chars[j + 1..end - 1].iter().collect();
            if label == "__name__" {
                match op.as_str() {
                    "=" => names.push(Read {
                        name: value.clone(),
                        job: None,
                    }),
                    "=~" => {
                        for name in value.split('|') {
                            let plain = name.starts_with(|c: char| !c.is_ascii_digit())
                                && name
                                    .chars()
                                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
                            assert!(
                                plain && !name.is_empty(),
                                "__name__=~\"{value}\" is not a list of names; check it by hand"
                            );
                            names.push(Read {
                                name: name.to_string(),
                                job: None,
                            });
                        }
                    }
                    _ => {}
                }
            }
            // A Grafana variable could be any job: as good as none.
            if label == "job" && op == "=" && !value.contains('$') {
                job = Some(value);
            }
            label.clear();
            op.clear();
            j = end;
        } else if matches!(c, '=' | '!' | '~') {
            op.push(c);
            j += 1;
        } else if c.is_ascii_alphanumeric() || c == '_' {
            label.push(c);
            j += 1;
        } else {
            j += 1;
        }
    }
    (j + 1, job)
}

/// A `drop` by metric name: where it is, the job whose series it drops, and the regex as
/// Prometheus runs it.
struct NameDrop {
    at: String,
    job: String,
    regex: String,
    anchored: Regex,
}

/// Prometheus' relabel regexes match whole values: `^(?s:regex)$`.
fn anchored(regex: &str) -> Regex {
    Regex::new(&format!("^(?s:{regex})$")).unwrap_or_else(|e| panic!("{regex}: {e}"))
}

/// Every endpoint's `metricRelabelings` in these objects' ServiceMonitors and PodMonitors, as
/// (`kind/name path`, job, relabelings). Every automon scrape object is named after its job.
fn metric_relabelings(objects: &[Value]) -> Vec<(String, String, Vec<Value>)> {
    let mut out = Vec::new();
    for o in objects
        .iter()
        .filter(|o| o["kind"] == "ServiceMonitor" || o["kind"] == "PodMonitor")
    {
        let endpoints = o["spec"]["endpoints"]
            .as_array()
            .or(o["spec"]["podMetricsEndpoints"].as_array())
            .expect("endpoints");
        for e in endpoints {
            let at = format!(
                "{}/{} {}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap(),
                e["path"].as_str().unwrap_or("/metrics")
            );
            let relabelings = e["metricRelabelings"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let job = o["metadata"]["name"].as_str().unwrap().to_string();
            out.push((at, job, relabelings));
        }
    }
    out
}

/// The drops by name among these objects' metric relabelings. Any other metric relabeling must
/// be one of the two documented drops by label: cgroups that belong to no pod, which by
/// construction keeps every pod's series and the node's root cgroup, and the API server's
/// latency buckets, which keep the ones KubeAPILatencyHigh reads. A new kind fails here until it
/// is thought through.
fn name_drops(objects: &[Value]) -> Vec<NameDrop> {
    let mut drops = Vec::new();
    for (at, job, relabelings) in metric_relabelings(objects) {
        for r in relabelings {
            assert_eq!(r["action"], "drop", "{at}: only drops are expected: {r}");
            let regex = r["regex"].as_str().expect("a regex").to_string();
            let labels: Vec<&str> = r["sourceLabels"]
                .as_array()
                .expect("sourceLabels")
                .iter()
                .map(|l| l.as_str().unwrap())
                .collect();
            if labels == ["__name__"] {
                drops.push(NameDrop {
                    at: at.clone(),
                    job: job.clone(),
                    anchored: anchored(&regex),
                    regex,
                });
                continue;
            }
            if labels == ["__name__", "le"] {
                assert_eq!(job, "apiserver", "{at}: {r}");
                let re = anchored(&regex);
                let latency = "apiserver_request_duration_seconds_bucket";
                assert!(re.is_match(&format!("{latency};0.005")), "{r}");
                // The 1 s threshold and the total, in both spellings of a whole number.
                for kept in ["1", "1.0", "+Inf"] {
                    assert!(
                        !re.is_match(&format!("{latency};{kept}")),
                        "{r} drops {kept}"
                    );
                }
                // Only that family: any other's buckets (a 0.005 one) stay.
                assert!(
                    !re.is_match("apiserver_client_certificate_expiration_seconds_bucket;0.005"),
                    "{r}"
                );
                continue;
            }
            assert_eq!(
                labels,
                ["id", "pod"],
                "{at}: an unexpected kind of drop: {r}"
            );
            assert!(at.ends_with("/metrics/cadvisor"), "{at}: {r}");
            let re = anchored(&regex);
            assert!(re.is_match("/system.slice/containerd.service;"), "{r}");
            for kept in ["/;", "/kubepods.slice/kubepods-pod1.slice;web-0", ";"] {
                assert!(!re.is_match(kept), "{r} drops {kept}");
            }
        }
    }
    drops
}

/// (where, name, the drop that removes it) for every name a query reads that a drop removes.
fn dropped_reads(
    queries: &[Query],
    produced: &BTreeSet<String>,
    drops: &[NameDrop],
) -> Vec<String> {
    let mut found = Vec::new();
    for q in queries {
        for Read { name, job } in metric_reads(&q.expr) {
            if produced.contains(&name) {
                continue;
            }
            // A selector that names its job reads only that job's series; one that does not
            // may read any job's.
            let applies = |d: &&NameDrop| job.as_ref().is_none_or(|j| *j == d.job);
            for d in drops
                .iter()
                .filter(applies)
                .filter(|d| d.anchored.is_match(&name))
            {
                found.push(format!(
                    "{}: reads {name}, which {} drops ({})",
                    q.at, d.at, d.regex
                ));
            }
        }
    }
    found
}

#[test]
fn tokenizer_finds_the_metric_names_of_an_expression() {
    for (expr, names) in [
        ("up", &["up"][..]),
        (
            r#"max by (node) (max_over_time(up{job="node-exporter"}[1h])) unless on (node) up{job="node-exporter"}"#,
            &["up", "up"],
        ),
        (
            r#"1 - avg(rate(node_cpu_seconds_total{job="node-exporter", node="$node", mode="idle"}[$__rate_interval]))"#,
            &["node_cpu_seconds_total"],
        ),
        (
            r#"predict_linear(node_filesystem_avail_bytes{fstype!~"tmpfs|fuse\\..*"}[6h], 24 * 3600) < 0 and node_filesystem_readonly == 0"#,
            &["node_filesystem_avail_bytes", "node_filesystem_readonly"],
        ),
        (
            r#"sum(rate(container_cpu_usage_seconds_total{container!=""}[5m])) by (namespace, pod) / on (namespace, pod) group_left (node) kube_pod_info"#,
            &["container_cpu_usage_seconds_total", "kube_pod_info"],
        ),
        (
            r#"count(ALERTS{alertstate="firing"}) or vector(0)"#,
            &["ALERTS"],
        ),
        (
            r#"{__name__="kubelet_running_pods"} + {__name__=~"a_total|b_total"} offset 5m"#,
            &["kubelet_running_pods", "a_total", "b_total"],
        ),
        (
            r#"label_replace(node_uname_info, "host", "$1", "nodename", "(.*)") * on (host) group_left () kube_node_info"#,
            &["node_uname_info", "kube_node_info"],
        ),
        (
            r#"histogram_quantile(0.99, sum by (le) (rate(kubelet_pleg_relist_duration_seconds_bucket[5m]))) >= bool 1e-3"#,
            &["kubelet_pleg_relist_duration_seconds_bucket"],
        ),
        (
            "time() - node_boot_time_seconds",
            &["node_boot_time_seconds"],
        ),
    ] {
        assert_eq!(metric_names(expr), names, "{expr}");
    }
    // Each read carries its own selector's job, `__name__` matchers included.
    let jobs: Vec<(String, Option<String>)> = metric_reads(
        r#"a{job="x"} / on (node) b {le="1", job="y"} + c + {__name__="d", job="z"} + e{job="$job"}"#,
    )
    .into_iter()
    .map(|r| (r.name, r.job))
    .collect();
    let some = |j: &str| Some(j.to_string());
    assert_eq!(
        jobs,
        [
            ("a".into(), some("x")),
            ("b".into(), some("y")),
            ("c".into(), None),
            ("d".into(), some("z")),
            ("e".into(), None),
        ]
    );
}

#[test]
fn a_query_that_reads_a_dropped_family_is_caught() {
    let drops = name_drops(&all_objects());
    assert!(!drops.is_empty(), "no drops rendered");
    let queries = [
        Query {
            at: "example / a dropped family".into(),
            expr: r#"sum by (pod) (container_tasks_state{state="running"})"#.into(),
        },
        Query {
            at: "example / a dropped bucket".into(),
            expr: "histogram_quantile(0.9, rate(rest_client_request_duration_seconds_bucket[5m]))"
                .into(),
        },
        Query {
            at: "example / a kept family".into(),
            expr: "rate(container_cpu_usage_seconds_total[5m])".into(),
        },
    ];
    let found = dropped_reads(&queries, &BTreeSet::new(), &drops);
    // The kubelet and the API server both drop their API clients' buckets.
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(
        found[0].contains("reads container_tasks_state"),
        "{found:#?}"
    );
    assert!(found[0].contains("/metrics/cadvisor"), "{found:#?}");
    for at in [
        "ServiceMonitor/kubelet /metrics",
        "ServiceMonitor/apiserver /metrics",
    ] {
        assert!(
            found[1..].iter().any(|f| f.contains(at)
                && f.contains("reads rest_client_request_duration_seconds_bucket")),
            "{at}: {found:#?}"
        );
    }
    // A selector that names its job meets only that job's drops: the kubelet drops the
    // certificate buckets the API server's alert reads, and keeps.
    let certificates = |selector: &str| Query {
        at: format!("example / certificates{selector}"),
        expr: format!("apiserver_client_certificate_expiration_seconds_bucket{selector}"),
    };
    for (selector, caught) in [
        (r#"{job="apiserver"}"#, false),
        (r#"{job="kubelet", le="1"}"#, true),
        (r#"{job="$job"}"#, true),
        ("", true),
    ] {
        let found = dropped_reads(&[certificates(selector)], &BTreeSet::new(), &drops);
        assert_eq!(found.len(), usize::from(caught), "{selector}: {found:#?}");
    }
    // A name a recording rule produces is not scraped, so no scrape-time drop touches it.
    let produced = BTreeSet::from(["container_tasks_state".to_string()]);
    assert_eq!(
        dropped_reads(&queries[..1], &produced, &drops),
        Vec::<String>::new()
    );
}

#[test]
fn every_shipped_query_reads_only_series_that_are_kept() {
    let objects = all_objects();
    let drops = name_drops(&objects);
    // Both kubelet endpoints drop something by default.
    for path in [
        "ServiceMonitor/kubelet /metrics",
        "ServiceMonitor/kubelet /metrics/cadvisor",
    ] {
        assert!(drops.iter().any(|d| d.at == path), "no drops on {path}");
    }
    let (queries, produced) = shipped_queries(&objects);
    let read: BTreeSet<String> = queries.iter().flat_map(|q| metric_names(&q.expr)).collect();
    // The tokenizer saw the queries: names from each exporter and from Prometheus itself.
    for name in [
        "up",
        "ALERTS",
        "node_cpu_seconds_total",
        "kube_node_info",
        "windows_cpu_time_total",
        "DCGM_FI_DEV_GPU_UTIL",
    ] {
        assert!(read.contains(name), "{name} not among {read:?}");
    }
    assert!(queries.len() > 60, "too few queries: {}", queries.len());
    let found = dropped_reads(&queries, &produced, &drops);
    assert!(
        found.is_empty(),
        "shipped queries read dropped series:\n{}",
        found.join("\n")
    );
}

/// A RelabelConfig's fields in the operator's CRDs and in Prometheus' configuration.
const RELABEL_KEYS: &[(&str, &str)] = &[
    ("sourceLabels", "source_labels"),
    ("separator", "separator"),
    ("regex", "regex"),
    ("action", "action"),
    ("targetLabel", "target_label"),
    ("replacement", "replacement"),
    ("modulus", "modulus"),
];

/// The ServiceMonitors' `metricRelabelings` as Prometheus' `metric_relabel_configs`, one scrape
/// job per endpoint, in a configuration promtool checks.
fn prometheus_config(objects: &[Value]) -> String {
    let mut jobs = Vec::new();
    for (i, (at, _, relabelings)) in metric_relabelings(objects).into_iter().enumerate() {
        if relabelings.is_empty() {
            continue;
        }
        let configs: Vec<Value> = relabelings
            .iter()
            .map(|r| {
                let mut c = serde_json::Map::new();
                for (field, value) in r.as_object().expect("a relabeling") {
                    let (_, key) = RELABEL_KEYS
                        .iter()
                        .find(|(crd, _)| crd == field)
                        .unwrap_or_else(|| panic!("{at}: no translation for {field}"));
                    c.insert(key.to_string(), value.clone());
                }
                Value::Object(c)
            })
            .collect();
        jobs.push(json!({
            "job_name": format!("endpoint-{i}"),
            "static_configs": [{"targets": ["127.0.0.1:10250"], "labels": {"at": at}}],
            "metric_relabel_configs": configs,
        }));
    }
    assert!(!jobs.is_empty(), "no metricRelabelings rendered");
    serde_saphyr::to_string(&json!({ "scrape_configs": jobs })).unwrap()
}

fn promtool_check_config(config: &str) -> Run {
    promtool_with(
        &[("prometheus.yaml", config)],
        &["check", "config", "prometheus.yaml"],
    )
}

#[test]
fn promtool_accepts_the_drops_as_prometheus_relabel_configs() {
    let config = prometheus_config(&all_objects());
    let out = promtool_check_config(&config);
    assert_eq!(
        out.code, 0,
        "promtool rejects the drops:\n{out:#?}\n{config}"
    );
    assert!(out.stdout.contains("SUCCESS"), "{out:#?}");

    // The check can fail where Rust's regex and Go's RE2 part: Rust accepts a repeat over 1000,
    // RE2 does not.
    let rust_only = "kubelet_x{1001}";
    anchored(rust_only);
    let broken = config.replacen("container_tasks_state", rust_only, 1);
    assert_ne!(broken, config);
    let out = promtool_check_config(&broken);
    assert_ne!(out.code, 0, "promtool accepted {rust_only}:\n{out:#?}");
}
