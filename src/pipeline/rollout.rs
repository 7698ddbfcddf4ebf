//! `--wait`: until every workload of the stack is ready. One watch per kind (Deployments,
//! DaemonSets, and the Prometheus/Alertmanager objects whose StatefulSets the operator runs),
//! through [`crate::cluster::watch`]; assessing readiness and drawing progress are pure.

use std::{
    io::{IsTerminal, Write},
    time::{Duration, Instant},
};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};

use crate::{
    cluster::Cluster,
    model::{Object, resources},
};

use super::surge;
use crate::status::workloads::{Workload, assess};

/// `prometheus 1/1  grafana 1/1  node-exporter 11/12 nodes`
pub fn progress_line(workloads: &[Workload]) -> String {
    workloads
        .iter()
        .map(|w| {
            let label = match (w.kind.as_str(), w.name.as_str()) {
                ("Prometheus", n) => match n.strip_prefix("automon-") {
                    Some(rest) => format!("prometheus-{rest}"),
                    None => "prometheus".to_string(),
                },
                ("Alertmanager", _) => "alertmanager".to_string(),
                (_, n) => n.to_string(),
            };
            let unit = if w.kind == "DaemonSet" { " nodes" } else { "" };
            format!("{label} {}/{}{unit}", w.ready, w.desired)
        })
        .collect::<Vec<_>>()
        .join("  ")
}

/// A duration as the run's lines show it: `4.1s`.
pub fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// A wait's progress line on stderr: redrawn in place on a terminal; in a pipe printed again
/// only when it changes.
pub struct Progress {
    terminal: bool,
    last: String,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            last: String::new(),
        }
    }
}

impl Progress {
    pub fn show(&mut self, line: String) {
        if line == self.last {
            return;
        }
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
        self.last = line;
    }

    /// Ends the line redrawn in place, so that what follows starts on its own.
    pub fn end(&self) {
        if self.terminal && !self.last.is_empty() {
            crate::output::eprint("");
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("not ready after {}: {}", crate::cluster::error::humantime(*.waited), .not_ready.join(", "))]
pub struct NotReady {
    pub waited: Duration,
    pub not_ready: Vec<String>,
}

/// Watches the stack's Deployments, DaemonSets and Prometheus/Alertmanager objects until every
/// expected workload is ready or `timeout` passes. On a terminal the progress line is redrawn
/// in place; in a pipe it is printed again only when it changes.
pub async fn wait(
    cluster: &Cluster,
    namespace: &str,
    expected: &[(String, String)],
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut progress = Progress::default();
    let watched: Vec<&'static resources::Known> = [
        "Deployment.apps",
        "DaemonSet.apps",
        "Prometheus.monitoring.coreos.com",
        "Alertmanager.monitoring.coreos.com",
    ]
    .iter()
    .map(|gk| resources::by_group_kind(gk).expect("workload kinds are known types"))
    .filter(|k| expected.iter().any(|(kind, _)| kind == k.kind))
    .collect();
    let sources = watched
        .iter()
        .map(|k| crate::cluster::watch::Source {
            api: k.api(&cluster.client, Some(namespace)),
            selection: kube::runtime::watcher::Config::default(),
        })
        .collect();
    let mut workloads = Vec::new();
    let waited = crate::cluster::watch::until(cluster, sources, started + timeout, |seen| {
        workloads = of_objects(expected, &watched, seen);
        progress.show(format!("Waiting   {}", progress_line(&workloads)));
        workloads.iter().all(Workload::is_ready)
    })
    .await?;
    progress.end();
    ended(waited.met, started, || {
        workloads
            .iter()
            .filter(|w| !w.is_ready())
            .map(|w| {
                format!(
                    "{} {} {}/{}",
                    w.kind.to_lowercase(),
                    w.name,
                    w.ready,
                    w.desired
                )
            })
            .collect()
    })
}

/// How a wait that started at `started` ended: its time when `met`, else [`NotReady`] with
/// what `not_ready` names.
fn ended(
    met: bool,
    started: Instant,
    not_ready: impl FnOnce() -> Vec<String>,
) -> anyhow::Result<Duration> {
    if met {
        return Ok(started.elapsed());
    }
    Err(NotReady {
        waited: started.elapsed(),
        not_ready: not_ready(),
    }
    .into())
}

/// How long `--wait` lets Prometheus not answer after its pods are ready (the Service's
/// endpoints follow readiness within seconds) before it stops waiting for the first scrape.
const ANSWER_GRACE: Duration = Duration::from_secs(15);
/// How often the first scrape is asked about.
const SCRAPE_POLL: Duration = Duration::from_secs(2);

/// What the wait for the first scrape ended on.
#[derive(Debug, Clone, PartialEq)]
pub enum FirstScrape {
    /// Prometheus answered and status finds nothing wrong: `status` now exits 0.
    Healthy { targets: usize },
    /// Prometheus did not answer within [`ANSWER_GRACE`] (why).
    NoAnswer(String),
    /// Prometheus answered, and status finds something that waiting does not fix.
    Degraded(Vec<String>),
    /// The deadline came first; what was still not scraped.
    TimedOut(Vec<String>),
}

/// What a status says of the first scrape (pure): `None` while there is reason to wait
/// (targets Prometheus has not scraped yet, a node's target not discovered yet).
pub fn first_scrape(st: &crate::status::Status) -> Option<FirstScrape> {
    use crate::status::Health;
    let Some(view) = st.prometheus.as_ref() else {
        return Some(FirstScrape::NoAnswer(
            "the stack uses another operator's Prometheus".into(),
        ));
    };
    if !view.reachable {
        return None;
    }
    let unscraped = not_scraped(st);
    match st.health {
        Health::Healthy if unscraped.is_empty() => Some(FirstScrape::Healthy {
            targets: view.targets.as_ref().map_or(0, |t| t.up),
        }),
        _ if !unscraped.is_empty() => None,
        Health::Degraded => Some(FirstScrape::Degraded(st.problems.clone())),
        _ => None,
    }
}

/// The targets Prometheus has not scraped yet: node-exporter's by node, the rest counted.
fn not_scraped(st: &crate::status::Status) -> Vec<String> {
    let mut out: Vec<String> = st
        .nodes
        .iter()
        .filter(|n| {
            n.exporter.is_some()
                && n.scrape
                    .as_ref()
                    .is_some_and(|s| matches!(s.health.as_str(), "unknown" | "missing"))
        })
        .map(|n| format!("node-exporter on {}", n.name))
        .collect();
    if let Some(t) = st.prometheus.as_ref().and_then(|v| v.targets.as_ref())
        && t.unknown > 0
    {
        out.push(crate::output::plural(t.unknown, "other target"));
    }
    out
}

/// `--wait`, after the workloads: until Prometheus has scraped every target once, so that the
/// `status` that follows judges scrapes, not a Prometheus that has not looked yet. Reads
/// exactly what `status` reads.
///
/// A target down is waited on for one more scrape (`scrape_interval` and a little): a pod that
/// just replaced another is discovered before it listens, and Prometheus' first scrape of it
/// fails until the next one.
pub async fn wait_first_scrape(
    cluster: &Cluster,
    deadline: Instant,
    scrape_interval: Duration,
) -> FirstScrape {
    let started = Instant::now();
    let rescrape = scrape_interval + 2 * SCRAPE_POLL;
    let flag = crate::status::PrometheusFlag { url: None };
    let mut last_why = String::from("no answer yet");
    let mut pending = Vec::new();
    loop {
        match crate::status::gather(cluster, &flag).await {
            Ok(snapshot) => {
                let st = crate::status::assess(&snapshot, jiff::Timestamp::now());
                let down = st
                    .prometheus
                    .as_ref()
                    .and_then(|v| v.targets.as_ref())
                    .is_some_and(|t| t.down > 0);
                match first_scrape(&st) {
                    Some(FirstScrape::Degraded(_)) if down && started.elapsed() < rescrape => {}
                    Some(done) => return done,
                    None => {}
                }
                pending = not_scraped(&st);
                if let Some(v) = st.prometheus.as_ref().filter(|v| !v.reachable) {
                    last_why = v.error.clone().unwrap_or_else(|| "no answer".into());
                    if started.elapsed() >= ANSWER_GRACE {
                        return FirstScrape::NoAnswer(last_why);
                    }
                }
            }
            Err(e) => last_why = e.to_string(),
        }
        if Instant::now() + SCRAPE_POLL >= deadline {
            return if pending.is_empty() {
                FirstScrape::NoAnswer(last_why)
            } else {
                FirstScrape::TimedOut(pending)
            };
        }
        tokio::time::sleep(SCRAPE_POLL).await;
    }
}

/// The workloads from what each watched kind holds (list items come without their type).
fn of_objects(
    expected: &[(String, String)],
    watched: &[&'static resources::Known],
    seen: &[Vec<Object>],
) -> Vec<Workload> {
    fn typed<T: serde::de::DeserializeOwned>(o: &Object) -> Option<T> {
        serde_json::from_value(serde_json::to_value(o).ok()?).ok()
    }
    let (mut deployments, mut daemonsets, mut custom) = (Vec::new(), Vec::new(), Vec::new());
    for (known, objects) in watched.iter().zip(seen) {
        for o in objects {
            match known.kind {
                "Deployment" => deployments.extend(typed::<Deployment>(o)),
                "DaemonSet" => daemonsets.extend(typed::<DaemonSet>(o)),
                _ => {
                    let mut o = o.clone();
                    o.types = Some(kube::api::TypeMeta {
                        api_version: known.api_version.to_string(),
                        kind: known.kind.to_string(),
                    });
                    custom.push(o);
                }
            }
        }
    }
    assess(expected, &deployments, &daemonsets, &custom)
}

/// The operator's Deployment `name` until its rollout is complete (the new ReplicaSet's pod
/// ready, no pod of the old one left), or `deadline`: what follows it is read by the new
/// operator only.
pub async fn wait_deployment(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    deadline: Instant,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut progress = Progress::default();
    let known = resources::by_group_kind("Deployment.apps").expect("Deployments are known");
    let source = crate::cluster::watch::Source {
        api: known.api(&cluster.client, Some(namespace)),
        selection: kube::runtime::watcher::Config::default()
            .fields(&format!("metadata.name={name}")),
    };
    let mut state = String::from("not found");
    let waited = crate::cluster::watch::until(cluster, vec![source], deadline, |seen| {
        let Some(d) = seen[0].first() else {
            return false;
        };
        let d = serde_json::to_value(d).unwrap_or_default();
        let int = |p: &str| d["status"][p].as_i64().unwrap_or(0);
        let old = (int("replicas") - int("updatedReplicas")).max(0);
        state = format!(
            "{}/{} new ready, {}",
            int("availableReplicas").min(int("updatedReplicas")),
            d["spec"]["replicas"].as_i64().unwrap_or(1),
            crate::output::plural(old as usize, "old pod")
        );
        progress.show(format!("Operator  {name} rolling out: {state} left"));
        surge::deployment_rolled_out(&d)
    })
    .await?;
    progress.end();
    ended(waited.met, started, || {
        vec![format!("deployment {name} ({state} left)")]
    })
}

/// How a wait on the StatefulSets of one Prometheus or Alertmanager ended.
pub struct Rolled {
    /// Every pod updated and ready (else the deadline passed).
    pub met: bool,
    /// The longest time no pod of one of them was ready while it was watched (its own, or one
    /// released from it).
    pub window: Duration,
    /// The StatefulSets as last seen.
    pub sets: Vec<serde_json::Value>,
    /// `1/2 ready`, of each.
    pub state: String,
}

/// The StatefulSets the operator runs for one Prometheus or Alertmanager `owner` until the operator has reconciled the owner's latest
/// spec and each StatefulSet has `want` pods, all at its latest revision and ready, with the
/// config-reloader `reloader` when given; or `deadline`. Meanwhile the times any of them had
/// no ready pod are measured. `label` names it on the progress line.
pub async fn wait_statefulsets(
    cluster: &Cluster,
    owner: &Object,
    want: i64,
    reloader: Option<&str>,
    deadline: Instant,
    label: &str,
) -> anyhow::Result<Rolled> {
    let mut progress = Progress::default();
    let namespace = owner
        .metadata
        .namespace
        .as_deref()
        .unwrap_or(&cluster.namespace);
    let name = owner.metadata.name.as_deref().unwrap_or_default();
    let selector = surge::statefulset_selector(crate::model::kind(owner), name);
    let sets = resources::by_group_kind("StatefulSet.apps").expect("StatefulSets are known");
    let owners = resources::of(owner).expect("Prometheus and Alertmanager are known");
    let pods = resources::by_group_kind("Pod").expect("Pods are known");
    let sources = vec![
        crate::cluster::watch::Source {
            api: sets.api(&cluster.client, Some(namespace)),
            selection: kube::runtime::watcher::Config::default().labels(&selector),
        },
        crate::cluster::watch::Source {
            api: owners.api(&cluster.client, Some(namespace)),
            selection: kube::runtime::watcher::Config::default()
                .fields(&format!("metadata.name={name}")),
        },
        // Its pods, those released from the StatefulSets included.
        crate::cluster::watch::Source {
            api: pods.api(&cluster.client, Some(namespace)),
            selection: kube::runtime::watcher::Config::default().labels(&format!(
                "{}={name}",
                crate::model::kind(owner).to_lowercase()
            )),
        },
    ];
    let mut ready_seen: Vec<(Instant, i64)> = Vec::new();
    let mut sets = Vec::new();
    let mut state = String::new();
    let waited = crate::cluster::watch::until(cluster, sources, deadline, |seen| {
        let reconciled = seen[1].first().is_some_and(surge::reconciled);
        sets = seen[0]
            .iter()
            .map(|o| serde_json::to_value(o).unwrap_or_default())
            .collect();
        let each: Vec<surge::Sts> = sets.iter().map(|s| surge::Sts::of(s, reloader)).collect();
        let pods: Vec<serde_json::Value> = seen[2]
            .iter()
            .map(|o| serde_json::to_value(o).unwrap_or_default())
            .collect();
        let ready = surge::fewest_ready(&sets, &pods);
        if ready_seen.last().is_none_or(|(_, r)| *r != ready) {
            ready_seen.push((Instant::now(), ready));
        }
        state = each
            .iter()
            .map(|s| {
                format!(
                    "{}/{} ready{}",
                    s.ready,
                    s.replicas,
                    if s.updated && s.reloader {
                        ""
                    } else {
                        ", rolling out"
                    }
                )
            })
            .collect::<Vec<_>>()
            .join("  ");
        progress.show(format!("Surge     {label} {state}"));
        reconciled && !each.is_empty() && each.iter().all(|s| s.rolled_out(want))
    })
    .await?;
    progress.end();
    Ok(Rolled {
        met: waited.met,
        window: surge::longest_window(&ready_seen, Instant::now()),
        sets,
        state,
    })
}

/// Why the pods behind `selector` are not ready: the first condition of a pod not ready that
/// says so (`0/1 nodes are available: 1 Insufficient cpu`), else their phases.
pub async fn not_ready_why(cluster: &Cluster, namespace: &str, selector: &str) -> String {
    use k8s_openapi::api::core::v1::Pod;
    let api: kube::Api<Pod> = kube::Api::namespaced(cluster.client.clone(), namespace);
    let Ok(pods) = api
        .list(&kube::api::ListParams::default().labels(selector))
        .await
    else {
        return "its pods could not be read".into();
    };
    let mut phases = Vec::new();
    for pod in &pods.items {
        let status = pod.status.clone().unwrap_or_default();
        let conditions = status.conditions.unwrap_or_default();
        if conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
        {
            continue;
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        if let Some(c) = conditions
            .iter()
            .find(|c| c.status == "False" && c.message.is_some())
        {
            return format!("pod {name}: {}", c.message.clone().unwrap_or_default());
        }
        phases.push(format!("pod {name} {}", status.phase.unwrap_or_default()));
    }
    if phases.is_empty() {
        "no pod of it was created".into()
    } else {
        phases.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(kind: &str, name: &str, ready: i64, desired: i64, current: bool) -> Workload {
        Workload {
            kind: kind.into(),
            name: name.into(),
            ready,
            desired,
            current,
        }
    }

    #[test]
    fn progress_reads_like_the_ux_sketch() {
        let line = progress_line(&[
            w("Prometheus", "automon", 1, 1, true),
            w("Deployment", "grafana", 0, 1, true),
            w("DaemonSet", "node-exporter", 11, 12, true),
        ]);
        assert_eq!(
            line,
            "prometheus 1/1  grafana 0/1  node-exporter 11/12 nodes"
        );
    }

    #[test]
    fn watched_list_items_count_without_their_type() {
        // List items come without apiVersion/kind: the watched kind says what they are.
        let untyped = |v: serde_json::Value| -> Object { serde_json::from_value(v).unwrap() };
        let deployment = untyped(serde_json::json!({
            "metadata": {"name": "grafana", "generation": 2},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": {"observedGeneration": 2, "readyReplicas": 1, "updatedReplicas": 1}
        }));
        let prometheus = untyped(serde_json::json!({
            "metadata": {"name": "automon"},
            "spec": {"replicas": 1},
            "status": {"availableReplicas": 1, "conditions": [{"type": "Available", "status": "True"}]}
        }));
        let watched: Vec<&'static resources::Known> =
            ["Deployment.apps", "Prometheus.monitoring.coreos.com"]
                .iter()
                .map(|gk| resources::by_group_kind(gk).unwrap())
                .collect();
        let expected = vec![
            ("Deployment".to_string(), "grafana".to_string()),
            ("Prometheus".to_string(), "automon".to_string()),
        ];
        let w = of_objects(&expected, &watched, &[vec![deployment], vec![prometheus]]);
        assert!(w.iter().all(Workload::is_ready), "{w:?}");
        let none = of_objects(&expected, &watched, &[vec![], vec![]]);
        assert!(none.iter().all(|w| !w.is_ready()), "{none:?}");
    }

    #[test]
    fn ready_needs_the_rollout_to_catch_up() {
        assert!(w("Deployment", "g", 1, 1, true).is_ready());
        assert!(!w("Deployment", "g", 1, 1, false).is_ready());
        assert!(!w("DaemonSet", "n", 2, 3, true).is_ready());
    }

    #[test]
    fn expected_workloads_come_from_the_render() {
        let objects = crate::render::render(&crate::config::Config::default()).objects;
        let e = crate::status::workloads::expected(&objects);
        for (k, n) in [
            ("Deployment", "grafana"),
            ("Deployment", "kube-state-metrics"),
            ("Deployment", "prometheus-operator"),
            ("DaemonSet", "node-exporter"),
            ("Prometheus", "automon"),
            ("Alertmanager", "automon"),
        ] {
            assert!(
                e.contains(&(k.to_string(), n.to_string())),
                "{k}/{n} in {e:?}"
            );
        }
    }
}
