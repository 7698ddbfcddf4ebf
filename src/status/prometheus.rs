//! What Prometheus itself says: firing alerts, scrape target health, rules loaded. Asked
//! through the API server's service proxy (the kubeconfig's credentials, no port-forward) or at
//! `--prometheus-url`; when it cannot be reached, the answer says why and status carries on.

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use serde::Serialize;
use serde_json::Value;

/// How long status waits for Prometheus before carrying on without it.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The job node-exporter's targets carry (its ServiceMonitor's `jobLabel` is the Service name).
#[cfg(test)]
pub const NODE_EXPORTER_JOB: &str = "node-exporter";

use crate::cluster::service_proxy::Failure;
pub use crate::cluster::service_proxy::Source;

impl Source<'_> {
    /// One question's `data` within `wait`, or why there is none: where it was asked, then why
    /// in a few words (the same words as status').
    pub(crate) async fn get_within(&self, path: &str, wait: Duration) -> Result<Value, String> {
        let why = match tokio::time::timeout(wait, self.get(path)).await {
            Ok(Ok(data)) => return Ok(data),
            Ok(Err(e)) if !e.timed_out => e.reason,
            // The client's own read timeout (the same --request-timeout) may fire first.
            _ => format!(
                "no answer within {}",
                crate::cluster::error::humantime(wait)
            ),
        };
        Err(format!("{}: {why}", self.describe()))
    }

    async fn get(&self, path: &str) -> Result<Value, Failure> {
        let body = self.exchange(http::Method::GET, path, None).await?;
        let v: Value = serde_json::from_str(&body)
            .map_err(|_| Failure::other("the answer is not Prometheus' JSON API".to_string()))?;
        if v["status"] != "success" {
            return Err(Failure::other(format!(
                "Prometheus answered {}: {}",
                v["status"],
                v["error"].as_str().unwrap_or_default()
            )));
        }
        Ok(v["data"].clone())
    }
}

/// One scrape target.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub health: String,
    /// Seconds since the epoch.
    pub last_scrape: Option<f64>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_at: Option<String>,
    /// Every label, to find it among the alerts Alertmanager holds.
    #[serde(skip)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DownTarget {
    pub job: String,
    pub instance: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A node-exporter target: its node's own line says it.
    #[serde(skip)]
    pub per_node: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Targets {
    pub up: usize,
    pub down: usize,
    pub unknown: usize,
    /// The ones down, with Prometheus' error, so that a script need not ask again. A target
    /// not scraped yet (`unknown`: just discovered) is counted, not listed: it is no failure.
    pub unhealthy: Vec<DownTarget>,
}

/// What status tells about Prometheus.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusView {
    pub reachable: bool,
    pub via: String,
    /// Why it did not answer, in a few words (`502 Bad Gateway`, `no answer within 5s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What answered instead, in its own words (the API server's message, which may quote
    /// every proxy on the way), for a bug report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Firing alerts (pending ones are not yet news), less the silenced ones.
    pub firing: Vec<Alert>,
    /// Firing alerts that Alertmanager holds silenced (`kubectl automon silence`): no one is
    /// notified of them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub silenced: Vec<Alert>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets: Option<Targets>,
    /// Rule groups (alerting and recording) and alerting rules Prometheus has loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules_loaded: Option<RulesLoaded>,
    /// The series in the answering Prometheus' head block (`/api/v1/status/tsdb`): with
    /// shards, the one shard that answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_series: Option<u64>,
    /// The largest resident memory among the Prometheus pods it scrapes (its own self-scrape).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resident_memory_bytes: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RulesLoaded {
    pub groups: usize,
    pub alerts: usize,
}

/// The view, and node-exporter's targets by node name for node coverage.
pub struct Answer {
    pub view: PrometheusView,
    pub node_targets: Option<HashMap<String, Target>>,
}

impl Answer {
    pub fn unreachable(via: String, error: String, detail: Option<String>) -> Answer {
        Answer {
            view: PrometheusView {
                reachable: false,
                via,
                error: Some(error),
                detail,
                firing: Vec::new(),
                silenced: Vec::new(),
                targets: None,
                rules_loaded: None,
                head_series: None,
                resident_memory_bytes: None,
            },
            node_targets: None,
        }
    }
}

/// The query of the largest resident memory of the stack's Prometheus pods, URL-encoded:
/// `max(process_resident_memory_bytes{job="prometheus"})`.
const RESIDENT_MEMORY: &str = "max%28process_resident_memory_bytes%7Bjob%3D%22prometheus%22%7D%29";

/// Asks for alerts, targets and rules at once, within `wait` (`--request-timeout`, else
/// [`TIMEOUT`]).
/// `node_exporter_job` is the job of the node-exporter targets (another stack's name for it,
/// when its scrape is the one the stack relies on).
pub async fn ask(source: Source<'_>, wait: Duration, node_exporter_job: &str) -> Answer {
    let via = source.describe();
    let query = format!("/api/v1/query?query={RESIDENT_MEMORY}");
    let all = async {
        // The load is extra: a Prometheus that cannot tell it still answers the rest.
        let (answers, tsdb, memory) = tokio::join!(
            async {
                tokio::try_join!(
                    source.get("/api/v1/alerts"),
                    source.get("/api/v1/targets?state=active"),
                    // Every group, the recording ones too: what the dashboards read is
                    // loaded or not as much as the alerts.
                    source.get("/api/v1/rules"),
                )
            },
            source.get("/api/v1/status/tsdb"),
            source.get(&query),
        );
        answers.map(|a| (a, tsdb.ok(), memory.ok()))
    };
    let no_answer = || {
        format!(
            "no answer within {}",
            crate::cluster::error::humantime(wait)
        )
    };
    match tokio::time::timeout(wait, all).await {
        Err(_) => Answer::unreachable(via, no_answer(), None),
        // The client's own read timeout (the same --request-timeout) may fire first.
        Ok(Err(e)) if e.timed_out => Answer::unreachable(via, no_answer(), None),
        Ok(Err(e)) => Answer::unreachable(via, e.reason, e.detail),
        Ok(Ok(((alerts, targets, rules), tsdb, memory))) => {
            let mut answer = read(via, &alerts, &targets, &rules, node_exporter_job);
            answer.view.head_series = tsdb.as_ref().and_then(head_series);
            answer.view.resident_memory_bytes = memory.as_ref().and_then(scalar_of_vector);
            answer
        }
    }
}

/// The head block's series from `/api/v1/status/tsdb`'s data.
fn head_series(tsdb: &Value) -> Option<u64> {
    tsdb["headStats"]["numSeries"].as_u64()
}

/// The value of a query's one-sample vector (`[{"value": [t, "123"]}]`).
fn scalar_of_vector(data: &Value) -> Option<u64> {
    let value = data["result"].as_array()?.first()?["value"][1].as_str()?;
    value.parse::<f64>().ok().map(|v| v as u64)
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string).filter(|s| !s.is_empty())
}

/// Reads the three answers of Prometheus' HTTP API (pure). A node-exporter target's node is its
/// `node` label, else the node its pod runs on (another stack's scrape may name none).
pub fn read(
    via: String,
    alerts: &Value,
    targets: &Value,
    rules: &Value,
    node_exporter_job: &str,
) -> Answer {
    let mut firing: Vec<Alert> = alerts["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["state"] == "firing")
        .map(|a| Alert {
            name: text(&a["labels"]["alertname"]).unwrap_or_default(),
            severity: text(&a["labels"]["severity"]),
            node: text(&a["labels"]["node"]),
            summary: text(&a["annotations"]["summary"]),
            active_at: text(&a["activeAt"]),
            labels: a["labels"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect(),
        })
        .collect();
    firing.sort_by(|a, b| (&a.name, &a.node).cmp(&(&b.name, &b.node)));
    let mut counts = Targets::default();
    let mut node_targets = HashMap::new();
    for t in targets["activeTargets"].as_array().into_iter().flatten() {
        let health = text(&t["health"]).unwrap_or_else(|| "unknown".into());
        match health.as_str() {
            "up" => counts.up += 1,
            "down" => counts.down += 1,
            _ => counts.unknown += 1,
        }
        let job = text(&t["labels"]["job"]).unwrap_or_default();
        let error = text(&t["lastError"]);
        let per_node = job == node_exporter_job;
        if health == "down" {
            counts.unhealthy.push(DownTarget {
                job: job.clone(),
                instance: text(&t["labels"]["instance"]).unwrap_or_default(),
                error: error.clone(),
                per_node,
            });
        }
        if per_node
            && let Some(node) = text(&t["labels"]["node"])
                .or_else(|| text(&t["discoveredLabels"]["__meta_kubernetes_pod_node_name"]))
        {
            let last_scrape = t["lastScrape"]
                .as_str()
                .and_then(|s| s.parse::<k8s_openapi::jiff::Timestamp>().ok())
                // Prometheus writes the zero time for a target never scraped yet.
                .filter(|ts| ts.as_second() > 0)
                .map(|ts| ts.as_millisecond() as f64 / 1000.0);
            node_targets.insert(
                node,
                Target {
                    health,
                    last_scrape,
                    last_error: error,
                },
            );
        }
    }
    counts
        .unhealthy
        .sort_by(|a, b| (&a.job, &a.instance).cmp(&(&b.job, &b.instance)));
    let groups = rules["groups"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let rules_loaded = RulesLoaded {
        groups: groups.len(),
        alerts: groups
            .iter()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .filter(|r| r["type"] == "alerting")
            .count(),
    };
    Answer {
        view: PrometheusView {
            reachable: true,
            via,
            error: None,
            detail: None,
            firing,
            silenced: Vec::new(),
            targets: Some(counts),
            rules_loaded: Some(rules_loaded),
            head_series: None,
            resident_memory_bytes: None,
        },
        node_targets: Some(node_targets),
    }
}

impl PrometheusView {
    /// Sets apart the firing alerts that Alertmanager holds silenced (pure). `held` is its
    /// `/api/v2/alerts?silenced=true&active=false&inhibited=false` answer: an alert of
    /// Prometheus' is one of those when every label of it is among that alert's (Alertmanager
    /// holds Prometheus' external labels too).
    pub fn set_apart_silenced(&mut self, held: &Value) {
        let silenced: Vec<&serde_json::Map<String, Value>> = held
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["status"]["state"] == "suppressed")
            .filter(|a| {
                a["status"]["silencedBy"]
                    .as_array()
                    .is_some_and(|s| !s.is_empty())
            })
            .filter_map(|a| a["labels"].as_object())
            .collect();
        let is_silenced = |alert: &Alert| {
            silenced.iter().any(|labels| {
                !alert.labels.is_empty()
                    && alert
                        .labels
                        .iter()
                        .all(|(k, v)| labels.get(k).and_then(Value::as_str) == Some(v))
            })
        };
        let (quiet, loud): (Vec<Alert>, Vec<Alert>) = std::mem::take(&mut self.firing)
            .into_iter()
            .partition(is_silenced);
        self.firing = loud;
        self.silenced = quiet;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn silenced_alerts_are_set_apart_from_firing_ones() {
        let alerts = json!({"alerts": [
            {"labels": {"alertname": "NodeDown", "severity": "critical", "node": "n1"}, "state": "firing"},
            {"labels": {"alertname": "NodeDown", "severity": "critical", "node": "n2"}, "state": "firing"},
            {"labels": {"alertname": "HighCPUUsage", "severity": "warning", "node": "n1"}, "state": "firing"},
        ]});
        let fresh = || {
            read(
                "x".into(),
                &alerts,
                &json!({}),
                &json!({}),
                NODE_EXPORTER_JOB,
            )
            .view
        };
        let mut view = fresh();
        // Alertmanager holds n1's NodeDown silenced (with Prometheus' external label), and
        // n1's warning inhibited, which is not a silence.
        view.set_apart_silenced(&json!([
            {"labels": {"alertname": "NodeDown", "severity": "critical", "node": "n1", "cluster": "prod"},
             "status": {"state": "suppressed", "silencedBy": ["a1b2"], "inhibitedBy": []}},
            {"labels": {"alertname": "HighCPUUsage", "severity": "warning", "node": "n1"},
             "status": {"state": "suppressed", "silencedBy": [], "inhibitedBy": ["f00"]}},
        ]));
        let names = |v: &[Alert]| -> Vec<String> {
            v.iter()
                .map(|a| format!("{}/{}", a.name, a.node.as_deref().unwrap_or("")))
                .collect()
        };
        assert_eq!(names(&view.silenced), ["NodeDown/n1"]);
        assert_eq!(names(&view.firing), ["HighCPUUsage/n1", "NodeDown/n2"]);
        // Nothing held: nothing set apart.
        let mut view = fresh();
        view.set_apart_silenced(&json!([]));
        assert!(view.silenced.is_empty());
        assert_eq!(view.firing.len(), 3);
    }

    #[test]
    fn reads_the_head_and_the_memory() {
        assert_eq!(
            head_series(&json!({"headStats": {"numSeries": 1234, "chunkCount": 9}})),
            Some(1234)
        );
        assert_eq!(head_series(&json!({})), None);
        let vector = json!({"resultType": "vector", "result": [{"metric": {}, "value": [1.5, "2147483648"]}]});
        assert_eq!(scalar_of_vector(&vector), Some(2_147_483_648));
        assert_eq!(scalar_of_vector(&json!({"result": []})), None);
    }

    #[test]
    fn reads_alerts_targets_and_rules() {
        let alerts = json!({"alerts": [
            {"labels": {"alertname": "Watchdog", "severity": "none"}, "state": "firing", "activeAt": "2026-11-25T10:00:00Z"},
            {"labels": {"alertname": "HighCPUUsage", "node": "n1", "severity": "warning"}, "state": "pending"},
            {"labels": {"alertname": "NodeDown", "node": "n2", "severity": "critical"},
             "annotations": {"summary": "Node n2 is down"}, "state": "firing"},
        ]});
        let targets = json!({"activeTargets": [
            {"labels": {"job": "node-exporter", "node": "n1", "instance": "n1"}, "health": "up",
             "lastScrape": "2026-11-25T10:00:05Z", "lastError": ""},
            {"labels": {"job": "node-exporter", "node": "n2", "instance": "n2"}, "health": "down",
             "lastScrape": "0001-01-01T00:00:00Z", "lastError": "connection refused"},
            {"labels": {"job": "kube-state-metrics", "instance": "10.0.0.1:8080"}, "health": "up"},
            {"labels": {"job": "prometheus", "instance": "10.0.0.2:9090"}, "health": "unknown"},
        ]});
        let rules = json!({"groups": [
            {"name": "node", "rules": [{"type": "alerting"}, {"type": "alerting"}]},
            {"name": "watchdog", "rules": [{"type": "alerting"}, {"type": "recording"}]},
        ]});
        let a = read("x".into(), &alerts, &targets, &rules, NODE_EXPORTER_JOB);
        let names: Vec<&str> = a.view.firing.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["NodeDown", "Watchdog"]);
        assert_eq!(a.view.firing[0].node.as_deref(), Some("n2"));
        let t = a.view.targets.unwrap();
        assert_eq!((t.up, t.down, t.unknown), (2, 1, 1));
        // Not scraped yet is no failure: only the target down is listed.
        assert_eq!(t.unhealthy.len(), 1);
        assert_eq!(t.unhealthy[0].error.as_deref(), Some("connection refused"));
        assert_eq!(
            a.view.rules_loaded,
            Some(RulesLoaded {
                groups: 2,
                alerts: 3
            })
        );
        let nodes = a.node_targets.unwrap();
        assert_eq!(nodes["n1"].health, "up");
        assert!(nodes["n1"].last_scrape.is_some());
        assert_eq!(nodes["n2"].last_scrape, None);
    }

    #[test]
    fn another_stacks_node_exporter_targets_are_found_by_job_and_their_pods_node() {
        // kube-prometheus-stack's: the chart's job, the exporter's address, no node label.
        let targets = json!({"activeTargets": [
            {"labels": {"job": "node-exporter", "instance": "10.0.0.7:9100", "pod": "kps-prometheus-node-exporter-x1"},
             "discoveredLabels": {"__meta_kubernetes_pod_node_name": "n1"}, "health": "down", "lastError": "refused"},
            {"labels": {"job": "kubelet", "instance": "10.0.0.7:10250", "node": "n1"}, "health": "down"},
        ]});
        let a = read(
            "x".into(),
            &json!({}),
            &targets,
            &json!({}),
            "node-exporter",
        );
        assert_eq!(a.node_targets.unwrap()["n1"].health, "down");
        let t = a.view.targets.unwrap();
        let per_node: Vec<bool> = t.unhealthy.iter().map(|d| d.per_node).collect();
        assert_eq!(per_node, [false, true], "{:?}", t.unhealthy);
        // Under another job name, the same targets are the nodes' too.
        let a = read("x".into(), &json!({}), &targets, &json!({}), "nodes");
        assert!(a.node_targets.unwrap().is_empty());
    }
}
