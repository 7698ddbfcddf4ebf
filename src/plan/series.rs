//! automon's queries over another stack's series. Beside a stack that already scrapes
//! node-exporter, automon adds no scrape of its own: its rules and dashboards read that stack's
//! series. Those may carry another job name, and no label naming the node (kube-prometheus-stack
//! labels node-exporter's series with the exporter pod's address and name only). automon's node
//! alerts are per node, so each node-exporter selector is then joined to the node its exporter
//! pod runs on, as kube-state-metrics' `kube_pod_info` tells it (the join kubernetes-mixin's
//! recording rules make).
//!
//! Beside a stack that already scrapes kube-state-metrics, automon's own exports only the node
//! labels that stack's does not ([`split_job`]): each selector then names the job of the
//! exporter that has its metric.
//!
//! Pure text rewriting of PromQL that automon itself wrote: every node-exporter selector names its
//! job (`{job="node-exporter", ...}`), which is what is looked for.

use std::sync::LazyLock;

use regex::{Captures, Regex};

/// A vector selector with braces, and the range that may follow it.
static SELECTOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^{}]*)\}(\[[^\]\[]+\])?"#).expect("a valid regex")
});

/// A vector selector whose metric name may be in a `__name__` matcher instead.
static ANY_SELECTOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"([a-zA-Z_:][a-zA-Z0-9_:]*)?\{([^{}]*)\}"#).expect("a valid regex")
});

/// A `__name__` matcher (`__name__=~"kube_pod_owner|kube_replicaset_owner"`).
static NAME_MATCHER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"__name__\s*(=~|=)\s*"([^"]*)""#).expect("a valid regex"));

/// A matcher of the node label within a selector (`node="$node"`, `node=~"a|b"`).
static NODE_MATCHER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(^|,)\s*node\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*"#).expect("a valid regex")
});

/// `expr` with every `job="<from>"` matcher naming `to` instead.
pub fn rename_job(expr: &str, from: &str, to: &str) -> String {
    expr.replace(&format!("job=\"{from}\""), &format!("job=\"{to}\""))
}

/// `expr` with each selector of `from`'s series naming `theirs` when `theirs_has` says the other
/// stack's exporter has every metric it selects, `own` otherwise (one it does not export, a
/// selector that names no metric). Per selector, since one job's series now come from two.
pub fn split_job(
    expr: &str,
    from: &str,
    theirs: &str,
    own: &str,
    theirs_has: impl Fn(&str) -> bool,
) -> String {
    let job_matcher = format!("job=\"{from}\"");
    ANY_SELECTOR
        .replace_all(expr, |c: &Captures| {
            let matchers = &c[2];
            if !matchers.contains(&job_matcher) {
                return c[0].to_string();
            }
            let names: Vec<&str> = match (c.get(1), NAME_MATCHER.captures(matchers)) {
                (Some(metric), _) => vec![metric.as_str()],
                (None, Some(m)) => m.get(2).map_or("", |n| n.as_str()).split('|').collect(),
                (None, None) => Vec::new(),
            };
            let to = if !names.is_empty() && names.iter().all(|n| theirs_has(n)) {
                theirs
            } else {
                own
            };
            let metric = c.get(1).map_or("", |m| m.as_str());
            format!(
                "{metric}{{{}}}",
                matchers.replace(&job_matcher, &format!("job=\"{to}\""))
            )
        })
        .into_owned()
}

/// `expr` with each selector of `job`'s series joined to its node: an instant selector becomes
/// `(<selector> * on (namespace, pod) group_left (node) <the pod's node>)` and a range selector
/// the same as a subquery over that range. A `node` matcher of the selector moves to the
/// pod's node, so a dashboard's one node stays one node. The value is unchanged (`kube_pod_info`
/// is 1). `ksm_job` is the kube-state-metrics job whose `kube_pod_info` is read.
pub fn join_node(expr: &str, job: &str, ksm_job: &str) -> String {
    let job_matcher = format!("job=\"{job}\"");
    SELECTOR
        .replace_all(expr, |c: &Captures| {
            let (metric, matchers) = (&c[1], &c[2]);
            if !matchers.contains(&job_matcher) {
                return c[0].to_string();
            }
            let mut node = String::new();
            let rest = NODE_MATCHER.replace(matchers, |m: &Captures| {
                node = format!(", node{}\"{}\"", &m[2], &m[3]);
                String::new()
            });
            let rest = rest.trim_start_matches(',').trim();
            let joined = format!(
                "({metric}{{{rest}}} * on (namespace, pod) group_left (node) {})",
                pod_node(ksm_job, &node)
            );
            match c.get(3) {
                Some(range) => {
                    let inner = &range.as_str()[1..range.as_str().len() - 1];
                    format!("{joined}[{inner}:]")
                }
                None => joined,
            }
        })
        .into_owned()
}

/// The node of every pod, one series per (namespace, pod).
fn pod_node(ksm_job: &str, node_matcher: &str) -> String {
    format!(
        "max by (namespace, pod, node) (kube_pod_info{{job=\"{ksm_job}\", node!=\"\"{node_matcher}}})"
    )
}

/// A Grafana `label_values(<selector of job's series>, node)` variable query, which needs a
/// series selector and gets no join: the nodes kube-state-metrics knows instead.
pub fn join_node_variable(query: &str, job: &str, ksm_job: &str) -> String {
    let job_matcher = format!("job=\"{job}\"");
    if !query.starts_with("label_values(") || !query.contains(&job_matcher) {
        return query.to_string();
    }
    SELECTOR
        .replace(query, |c: &Captures| {
            if c[2].contains(&job_matcher) {
                format!("kube_node_info{{job=\"{ksm_job}\"}}")
            } else {
                c[0].to_string()
            }
        })
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str =
        r#"max by (namespace, pod, node) (kube_pod_info{job="kube-state-metrics", node!=""})"#;

    #[test]
    fn an_instant_selector_is_joined_to_its_pods_node() {
        assert_eq!(
            join_node(
                r#"max by (node) (up{job="node-exporter"}) == 0"#,
                "node-exporter",
                "kube-state-metrics"
            ),
            format!(
                r#"max by (node) ((up{{job="node-exporter"}} * on (namespace, pod) group_left (node) {INFO})) == 0"#
            )
        );
    }

    #[test]
    fn a_range_selector_becomes_a_subquery_over_the_same_range() {
        assert_eq!(
            join_node(
                r#"avg by (node) (rate(node_cpu_seconds_total{job="node-exporter", mode="idle"}[2m]))"#,
                "node-exporter",
                "kube-state-metrics"
            ),
            format!(
                r#"avg by (node) (rate((node_cpu_seconds_total{{job="node-exporter", mode="idle"}} * on (namespace, pod) group_left (node) {INFO})[2m:]))"#
            )
        );
    }

    #[test]
    fn a_node_matcher_moves_to_the_pods_node() {
        let out = join_node(
            r#"node_load1{job="node-exporter", node="$node"}"#,
            "node-exporter",
            "automon-kube-state-metrics",
        );
        assert_eq!(
            out,
            r#"(node_load1{job="node-exporter"} * on (namespace, pod) group_left (node) max by (namespace, pod, node) (kube_pod_info{job="automon-kube-state-metrics", node!="", node="$node"}))"#
        );
        let out = join_node(
            r#"x{node=~"$node", job="node-exporter"}"#,
            "node-exporter",
            "k",
        );
        assert!(out.starts_with(r#"(x{job="node-exporter"} * on"#), "{out}");
        assert!(out.contains(r#"node!="", node=~"$node"})"#), "{out}");
    }

    #[test]
    fn other_jobs_and_label_values_are_left_alone() {
        let expr = r#"kube_node_info{job="kube-state-metrics"} unless on (node) windows_cs_hostname{job="windows-exporter"}"#;
        assert_eq!(join_node(expr, "node-exporter", "k"), expr);
        assert_eq!(
            join_node_variable(
                r#"label_values(node_uname_info{job="node-exporter"}, node)"#,
                "node-exporter",
                "automon-kube-state-metrics"
            ),
            r#"label_values(kube_node_info{job="automon-kube-state-metrics"}, node)"#
        );
    }

    #[test]
    fn each_selector_names_the_job_whose_exporter_has_its_metric() {
        let theirs_has = |m: &str| m.starts_with("kube_") && m != "kube_node_labels";
        let split =
            |expr: &str| split_job(expr, "kube-state-metrics", "ksm", "automon-ksm", theirs_has);
        for (expr, want) in [
            // The coverage check: node labels from automon's, the nodes from theirs.
            (
                r#"max by (node) (kube_node_labels{job="kube-state-metrics", label_kubernetes_io_os="linux"}) and on (node) kube_node_info{job="kube-state-metrics"}"#,
                r#"max by (node) (kube_node_labels{job="automon-ksm", label_kubernetes_io_os="linux"}) and on (node) kube_node_info{job="ksm"}"#,
            ),
            // automon's own targets.
            (
                r#"absent(up{job="kube-state-metrics"} == 1)"#,
                r#"absent(up{job="automon-ksm"} == 1)"#,
            ),
            // A range, and the job's matcher anywhere among the others.
            (
                r#"changes(kube_deployment_status_replicas_updated{namespace="a", job="kube-state-metrics"}[10m])"#,
                r#"changes(kube_deployment_status_replicas_updated{namespace="a", job="ksm"}[10m])"#,
            ),
            // The metric named by __name__: theirs only when every name is.
            (
                r#"{__name__=~"kube_pod_owner|kube_replicaset_owner", job="kube-state-metrics"}"#,
                r#"{__name__=~"kube_pod_owner|kube_replicaset_owner", job="ksm"}"#,
            ),
            (
                r#"{__name__=~"kube_pod_owner|kube_node_labels", job="kube-state-metrics"}"#,
                r#"{__name__=~"kube_pod_owner|kube_node_labels", job="automon-ksm"}"#,
            ),
            (
                r#"count({job="kube-state-metrics"})"#,
                r#"count({job="automon-ksm"})"#,
            ),
            // Other jobs, and a Grafana variable's selector.
            (
                r#"up{job="node-exporter"} * on (node) kube_node_info{job="kube-state-metrics"}"#,
                r#"up{job="node-exporter"} * on (node) kube_node_info{job="ksm"}"#,
            ),
            (
                r#"label_values(kube_pod_info{job="kube-state-metrics", namespace="$namespace"}, pod)"#,
                r#"label_values(kube_pod_info{job="ksm", namespace="$namespace"}, pod)"#,
            ),
        ] {
            assert_eq!(split(expr), want, "{expr}");
        }
        // Their job may carry automon's name: the node labels still go to automon's.
        assert_eq!(
            split_job(
                r#"kube_node_labels{job="kube-state-metrics"} * kube_node_info{job="kube-state-metrics"}"#,
                "kube-state-metrics",
                "kube-state-metrics",
                "automon-kube-state-metrics",
                theirs_has
            ),
            r#"kube_node_labels{job="automon-kube-state-metrics"} * kube_node_info{job="kube-state-metrics"}"#
        );
    }

    #[test]
    fn a_job_is_renamed_in_its_matchers_only() {
        assert_eq!(
            rename_job(
                r#"up{job="node-exporter"} and node_exporter_build_info"#,
                "node-exporter",
                "nodes"
            ),
            r#"up{job="nodes"} and node_exporter_build_info"#
        );
    }
}
