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
    let terminal = std::io::stderr().is_terminal();
    let mut last = String::new();
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
        let line = format!("Waiting   {}", progress_line(&workloads));
        if line != last {
            let mut err = std::io::stderr().lock();
            if terminal {
                let _ = write!(err, "\r\x1b[2K{line}");
            } else {
                let _ = writeln!(err, "{line}");
            }
            let _ = err.flush();
            last = line;
        }
        workloads.iter().all(Workload::is_ready)
    })
    .await?;
    if terminal {
        crate::output::eprint("");
    }
    if waited.met {
        return Ok(started.elapsed());
    }
    Err(NotReady {
        waited: started.elapsed(),
        not_ready: workloads
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
            .collect(),
    }
    .into())
}

/// Whether a Deployment's rollout is complete, as `kubectl rollout status` decides (pure): the
/// controller has seen the latest spec, every replica is of it and available, and no pod of an
/// older ReplicaSet is left. Readiness alone is not enough: the old pod is ready until it goes.
pub fn rolled_out(d: &Deployment) -> bool {
    let (Some(spec), Some(st)) = (&d.spec, &d.status) else {
        return false;
    };
    let want = spec.replicas.unwrap_or(1);
    let updated = st.updated_replicas.unwrap_or(0);
    st.observed_generation >= d.metadata.generation
        && updated >= want
        && st.replicas.unwrap_or(0) <= updated
        && st.available_replicas.unwrap_or(0) >= updated
}

/// Waits until each named Deployment of `namespace` has rolled out ([`rolled_out`]), asking
/// twice a second, until `deadline`.
pub async fn wait_rolled_out(
    cluster: &Cluster,
    namespace: &str,
    names: &[String],
    deadline: Instant,
) -> anyhow::Result<()> {
    let api: kube::Api<Deployment> = kube::Api::namespaced(cluster.client.clone(), namespace);
    loop {
        let mut pending = Vec::new();
        for name in names {
            let d = api.get(name).await?;
            if !rolled_out(&d) {
                let st = d.status.unwrap_or_default();
                pending.push(format!(
                    "deployment {name}: {} of {} updated, {} available, {} in all",
                    st.updated_replicas.unwrap_or(0),
                    d.spec.and_then(|s| s.replicas).unwrap_or(1),
                    st.available_replicas.unwrap_or(0),
                    st.replicas.unwrap_or(0)
                ));
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!("not rolled out in time: {}", pending.join("; "));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
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
pub async fn wait_first_scrape(cluster: &Cluster, deadline: Instant) -> FirstScrape {
    let started = Instant::now();
    let flag = crate::status::PrometheusFlag { url: None };
    let mut last_why = String::from("no answer yet");
    let mut pending = Vec::new();
    loop {
        match crate::status::gather(cluster, &flag).await {
            Ok(snapshot) => {
                let st = crate::status::assess(&snapshot, jiff::Timestamp::now());
                if let Some(done) = first_scrape(&st) {
                    return done;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(
        generation: i64,
        observed: i64,
        updated: i32,
        available: i32,
        all: i32,
    ) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "prometheus-operator", "generation": generation},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": {"observedGeneration": observed, "updatedReplicas": updated,
                       "availableReplicas": available, "replicas": all, "readyReplicas": available}
        }))
        .unwrap()
    }

    #[test]
    fn a_rollout_is_done_when_the_new_pod_is_available_and_the_old_one_gone() {
        // The controller has not seen the new spec yet.
        assert!(!rolled_out(&deployment(2, 1, 1, 1, 1)));
        // The new pod exists, the old one is still the one ready.
        assert!(!rolled_out(&deployment(2, 2, 1, 1, 2)));
        // The new pod is ready, the old one not gone yet.
        assert!(!rolled_out(&deployment(2, 2, 1, 2, 2)));
        // The new pod is there but not available.
        assert!(!rolled_out(&deployment(2, 2, 1, 0, 1)));
        assert!(rolled_out(&deployment(2, 2, 1, 1, 1)));
    }

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
