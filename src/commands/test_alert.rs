//! `test-alert`: a synthetic alert through the stack's real Alertmanager, and each receiver's
//! outcome as Alertmanager itself reports it (its router's choice, its notification metrics,
//! its log for the error). gather (I/O) → assess (`alertmanager::outcome`, pure) → print.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, LogParams};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{
    alertmanager::{
        Alertmanager, NotFound,
        outcome::{self, Counters, Progress, Receiver},
    },
    cluster::{Cluster, KubeFlags, inventory},
    exit::{Delivery, Verdict},
    output::{self, Format},
    render::alertmanager::{NAME, TEST_ID_LABEL, TEST_RECEIVER_LABEL},
};

const ALERT_NAME: &str = "AutomonTestAlert";
/// How often the metrics are read while waiting.
const POLL: Duration = Duration::from_secs(1);

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Without --receiver the alert is shaped like a real critical node alert (severity=critical, a node
label) and goes where such an alert would go: to the receivers the configured routes choose, which
may page someone (that is the point of the test). Alertmanager's router chooses them for a probe
alert that a short silence keeps quiet; the alert itself then reaches each chosen receiver through
the stack's test route (no group wait). With --receiver NAME it goes to NAME only, even where no
route would send a real alert. The alert says it is a test, ends by itself 5 minutes after the
timeout and is resolved as soon as the outcome is known. Every question goes to one Alertmanager
pod (replicas do not share the alerts posted to one of them): the user needs list pods, get and
create pods/proxy in the stack's namespace, and get pods/log for the receivers' errors.

Exit status: 0 when every receiver the alert went to delivered it; 11 when one failed (or had no
outcome within --timeout); 12 when it reached no receiver that notifies anyone; 2 for a receiver
the configuration does not have; 8 when Alertmanager does not answer (no ready pod); 9 when automon
is not installed in the namespace; 1 and 3-6 as for every command.")]
pub struct Args {
    /// Send the alert to this receiver only, whatever the routes say
    #[arg(long, value_name = "NAME")]
    receiver: Option<String>,
    /// How long to wait for every receiver's outcome (e.g. 60s, 2m)
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = crate::cluster::parse_request_timeout)]
    timeout: Duration,
    /// Output format: table, json or yaml
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

/// One receiver's line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub receiver: String,
    pub integrations: Vec<String>,
    pub result: Result,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Result {
    Delivered,
    Failed,
    NotRouted,
}

impl Result {
    fn word(self) -> &'static str {
        match self {
            Result::Delivered => "delivered",
            Result::Failed => "failed",
            Result::NotRouted => "not routed",
        }
    }
}

pub async fn run(flags: &KubeFlags, args: Args) -> anyhow::Result<Verdict> {
    let cluster = Cluster::connect(flags).await?;
    let ns = cluster.namespace.clone();
    inventory::ensure_installed(&cluster).await?;
    // One pod for every question: the alert posted and the counters read on the same one.
    let am = Alertmanager::one_pod(&cluster).await;
    let (receivers, test_routes) =
        outcome::receivers(&am.get("status").await?).map_err(anyhow::Error::msg)?;
    let before = outcome::counters(&am.metrics().await?);
    // Without a receiver that notifies, there is nothing to test routes or counters of: the
    // answer is that alerts reach no one (exit 12).
    let notifies = receivers.iter().any(|r| !r.integrations.is_empty());
    if notifies && (!test_routes || !before.named) {
        bail!(
            "the Alertmanager in namespace {ns} does not run the configuration automon renders (it has no test routes, or its metrics name no receivers): an older automon installed the stack (run `kubectl automon enable -n {ns}` first), or something else loads Alertmanager's configuration (on the local cluster: `tests/cluster/localcluster serve {ns} --stack-alertmanager`)"
        );
    }
    let id = run_id();
    let started = Instant::now();
    let chosen = match &args.receiver {
        Some(name) => {
            if !receivers.iter().any(|r| &r.name == name) {
                let names: Vec<&str> = receivers.iter().map(|r| r.name.as_str()).collect();
                return Err(anyhow::Error::new(NotFound(format!(
                    "Alertmanager in namespace {ns} has no receiver {name:?}; it has: {}",
                    names.join(", ")
                ))));
            }
            vec![name.clone()]
        }
        None => routed_like_a_node_alert(&am, &id).await?,
    };
    let notifying: Vec<&Receiver> = receivers
        .iter()
        .filter(|r| chosen.contains(&r.name) && !r.integrations.is_empty())
        .collect();
    let now = jiff::Timestamp::now();
    let ends = now + jiff::SignedDuration::try_from(args.timeout + Duration::from_secs(300))?;
    let alerts: Vec<Value> = notifying
        .iter()
        .map(|r| test_alert(&id, Some(&r.name), ends))
        .collect();
    if !alerts.is_empty() {
        am.post("alerts", &json!(alerts))
            .await
            .context("cannot send the test alert")?;
    }
    let progress = wait_for_outcomes(&am, &before, &notifying, started, args.timeout).await;
    // Done: resolved at once, so that nothing retries or repeats after the test.
    if !alerts.is_empty() {
        let resolved: Vec<Value> = notifying
            .iter()
            .map(|r| test_alert(&id, Some(&r.name), jiff::Timestamp::now()))
            .collect();
        if let Err(e) = am.post("alerts", &json!(resolved)).await {
            output::warning(&format!(
                "the test alert could not be resolved ({e}); it ends by itself at {ends}"
            ));
        }
    }
    let failed: Vec<&str> = progress
        .iter()
        .filter(|(_, p)| !matches!(p, Progress::Delivered))
        .map(|(r, _)| r.name.as_str())
        .collect();
    let log = if failed.is_empty() {
        String::new()
    } else {
        alertmanager_log(&cluster, started.elapsed()).await
    };
    let outcomes = assess(
        &receivers,
        &chosen,
        &progress,
        &log,
        args.receiver.is_some(),
        &ns,
    );
    print(&outcomes, args.output)?;
    Ok(Verdict::TestAlert(delivery(&outcomes)))
}

/// A name unique to this run: its alerts are a group of their own.
fn run_id() -> String {
    let nanos = jiff::Timestamp::now().as_nanosecond();
    format!("{:x}-{:x}", nanos, std::process::id())
}

/// The test alert: shaped like a critical node alert, labelled with the run (and the receiver
/// it is for), saying what it is.
fn test_alert(id: &str, receiver: Option<&str>, ends: jiff::Timestamp) -> Value {
    let mut labels = json!({
        "alertname": ALERT_NAME,
        "severity": "critical",
        "node": "automon-test-alert",
        TEST_ID_LABEL: id,
    });
    if let Some(r) = receiver {
        labels[TEST_RECEIVER_LABEL] = json!(r);
    }
    json!({
        "labels": labels,
        "annotations": {
            "summary": "Test alert from kubectl automon test-alert: nothing is wrong",
            "description": "Sent by `kubectl automon test-alert` to prove that this receiver gets the alerts of the cluster's monitoring. It resolves by itself.",
        },
        "endsAt": ends.to_string(),
    })
}

/// The receivers Alertmanager's router chooses for a critical node alert: a probe alert,
/// silenced for the moment it exists, read back with the receivers the router chose.
async fn routed_like_a_node_alert(am: &Alertmanager<'_>, id: &str) -> anyhow::Result<Vec<String>> {
    let probe_id = format!("{id}-probe");
    let now = jiff::Timestamp::now();
    let silence = json!({
        "matchers": [{"name": TEST_ID_LABEL, "value": probe_id, "isRegex": false, "isEqual": true}],
        "startsAt": now.to_string(),
        "endsAt": (now + jiff::SignedDuration::from_secs(120)).to_string(),
        "createdBy": "kubectl-automon",
        "comment": "test-alert: keeps its routing probe quiet",
    });
    let made = am
        .post("silences", &silence)
        .await
        .context("cannot silence the routing probe")?;
    let silence_id = made["silenceID"].as_str().unwrap_or_default().to_string();
    let ends = now + jiff::SignedDuration::from_secs(120);
    let asked = async {
        am.post("alerts", &json!([test_alert(&probe_id, None, ends)]))
            .await?;
        let filter = format!("{TEST_ID_LABEL}=\"{probe_id}\"");
        am.get(&format!("alerts?filter={}", query_escape(&filter)))
            .await
    }
    .await;
    // The probe goes at once, and its silence with it, whatever the answer was.
    let _ = am
        .post(
            "alerts",
            &json!([test_alert(&probe_id, None, jiff::Timestamp::now())]),
        )
        .await;
    if !silence_id.is_empty() {
        let _ = am.delete(&format!("silence/{silence_id}")).await;
    }
    Ok(outcome::routed_to(
        &asked.context("cannot ask Alertmanager where the alert goes")?,
    ))
}

/// `s` %-encoded for a query string.
fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Reads the notification metrics until every receiver's outcome is known, or `timeout`.
async fn wait_for_outcomes<'r>(
    am: &Alertmanager<'_>,
    before: &Counters,
    receivers: &[&'r Receiver],
    started: Instant,
    timeout: Duration,
) -> Vec<(&'r Receiver, Progress)> {
    let mut last: Vec<(&Receiver, Progress)> = receivers
        .iter()
        .map(|r| (*r, Progress::Pending { retrying: false }))
        .collect();
    while !last.is_empty() {
        tokio::time::sleep(POLL).await;
        if let Ok(text) = am.metrics().await {
            let now = outcome::counters(&text);
            for (r, p) in &mut last {
                if matches!(p, Progress::Pending { .. }) {
                    *p = outcome::progress(before, &now, r);
                }
            }
        }
        let decided = last
            .iter()
            .all(|(_, p)| !matches!(p, Progress::Pending { .. }));
        if decided || started.elapsed() >= timeout {
            break;
        }
    }
    last
}

/// The Alertmanager pods' logs since the test began (best effort: empty when they cannot be
/// read).
async fn alertmanager_log(cluster: &Cluster, since: Duration) -> String {
    let pods: kube::Api<Pod> = kube::Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let Ok(list) = pods
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/name={NAME}")))
        .await
    else {
        return String::new();
    };
    let params = LogParams {
        container: Some(NAME.to_string()),
        since_seconds: Some(since.as_secs() as i64 + 5),
        ..Default::default()
    };
    let mut log = String::new();
    for pod in list.items {
        let name = pod.metadata.name.unwrap_or_default();
        if let Ok(text) = pods.logs(&name, &params).await {
            log.push_str(&text);
        }
    }
    log
}

/// Each receiver's line (pure): the chosen ones by their progress, the others not routed.
fn assess(
    receivers: &[Receiver],
    chosen: &[String],
    progress: &[(&Receiver, Progress)],
    log: &str,
    one: bool,
    namespace: &str,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for r in receivers {
        let integrations: Vec<String> = r
            .integrations
            .iter()
            .map(|(k, n)| {
                if *n > 1 {
                    format!("{k} ×{n}")
                } else {
                    k.clone()
                }
            })
            .collect();
        let line = |result, detail: String| Outcome {
            receiver: r.name.clone(),
            integrations: integrations.clone(),
            result,
            detail,
        };
        let was_chosen = chosen.contains(&r.name);
        if r.integrations.is_empty() {
            if was_chosen {
                outcomes.push(line(
                    Result::NotRouted,
                    format!(
                        "receiver {} notifies no one (the alert stays in Alertmanager's UI)",
                        r.name
                    ),
                ));
            }
            continue;
        }
        if !was_chosen {
            if !one {
                outcomes.push(line(
                    Result::NotRouted,
                    "no route sends a critical node alert here (--receiver sends one)".into(),
                ));
            }
            continue;
        }
        let p = progress
            .iter()
            .find(|(x, _)| x.name == r.name)
            .map(|(_, p)| p.clone())
            .unwrap_or(Progress::Pending { retrying: false });
        outcomes.push(match p {
            Progress::Delivered => line(Result::Delivered, "Alertmanager notified it".into()),
            Progress::Failed {
                integration,
                reason,
            } => {
                let why = outcome::failure_in_log(log, &r.name).unwrap_or_else(|| {
                    format!("{integration}: {reason}{} (Alertmanager's log says more: kubectl logs -n {namespace} -l app.kubernetes.io/name={NAME} -c {NAME})", reason_words(&reason))
                });
                line(Result::Failed, why)
            }
            Progress::Pending { retrying } => {
                let why = outcome::failure_in_log(log, &r.name);
                let detail = match (retrying, why) {
                    (true, Some(why)) => format!("still retrying at the timeout: {why}"),
                    (true, None) => "still retrying at the timeout".into(),
                    (false, _) => "no outcome within the timeout".into(),
                };
                line(Result::Failed, detail)
            }
        });
    }
    outcomes
}

/// Alertmanager's failure reasons (the metrics' `reason` label) in words.
fn reason_words(reason: &str) -> &'static str {
    match reason {
        "authError" => ": the receiver refused the credential (HTTP 401/403)",
        "clientError" => ": the receiver refused the request (HTTP 4xx)",
        "serverError" => ": the receiver failed (HTTP 5xx), retried until the route's timeout",
        _ => "",
    }
}

/// What the run comes to (pure).
fn delivery(outcomes: &[Outcome]) -> Delivery {
    if outcomes.iter().any(|o| o.result == Result::Failed) {
        Delivery::Failed
    } else if outcomes.iter().any(|o| o.result == Result::Delivered) {
        Delivery::Delivered
    } else {
        Delivery::NotRouted
    }
}

fn print(outcomes: &[Outcome], format: Format) -> anyhow::Result<()> {
    let text = match format {
        Format::Json | Format::Yaml => output::structured(format, &outcomes)?,
        _ => {
            let rows: Vec<Vec<String>> = outcomes
                .iter()
                .map(|o| {
                    vec![
                        o.receiver.clone(),
                        o.integrations.join(","),
                        o.result.word().to_string(),
                        o.detail.clone(),
                    ]
                })
                .collect();
            format!(
                "{}\n",
                output::table(&["receiver", "integrations", "result", "detail"], &rows)
            )
        }
    };
    output::print(&text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn receiver(name: &str, kinds: &[&str]) -> Receiver {
        Receiver {
            name: name.into(),
            integrations: kinds
                .iter()
                .map(|k| (k.to_string(), 1))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn each_receiver_gets_its_line_and_the_run_its_verdict() {
        let rs = [
            receiver("ui-only", &[]),
            receiver("team", &["webhook"]),
            receiver("refused", &["webhook"]),
            receiver("quiet", &["slack"]),
        ];
        let chosen = vec!["team".to_string(), "refused".to_string()];
        let progress = [
            (&rs[1], Progress::Delivered),
            (
                &rs[2],
                Progress::Failed {
                    integration: "webhook".into(),
                    reason: "serverError".into(),
                },
            ),
        ];
        let log = r#"level=ERROR msg="Notify for alerts failed" err="refused/webhook[0]: unexpected status code 500""#;
        let out = assess(&rs, &chosen, &progress, log, false, "automon");
        let lines: Vec<(&str, Result, &str)> = out
            .iter()
            .map(|o| (o.receiver.as_str(), o.result, o.detail.as_str()))
            .collect();
        assert_eq!(
            lines,
            [
                ("team", Result::Delivered, "Alertmanager notified it"),
                (
                    "refused",
                    Result::Failed,
                    "webhook[0]: unexpected status code 500"
                ),
                (
                    "quiet",
                    Result::NotRouted,
                    "no route sends a critical node alert here (--receiver sends one)"
                ),
            ]
        );
        assert_eq!(delivery(&out), Delivery::Failed);
        // Without the log, the reason Alertmanager counted.
        let out = assess(&rs, &chosen, &progress, "", false, "automon");
        assert!(
            out[1].detail.starts_with("webhook: serverError"),
            "{}",
            out[1].detail
        );
        // Only the delivered one.
        let out = assess(&rs, &chosen[..1], &progress[..1], "", true, "automon");
        assert_eq!(out.len(), 1);
        assert_eq!(delivery(&out), Delivery::Delivered);
        // Routed only to the receiver that notifies no one.
        let out = assess(&rs, &["ui-only".to_string()], &[], "", false, "automon");
        assert_eq!(out[0].result, Result::NotRouted);
        assert_eq!(delivery(&out), Delivery::NotRouted);
        // No outcome in time is a failure.
        let out = assess(&rs, &chosen[..1], &[], "", true, "automon");
        assert_eq!(
            (out[0].result, out[0].detail.as_str()),
            (Result::Failed, "no outcome within the timeout")
        );
    }

    #[test]
    fn the_alert_says_what_it_is_and_ends_by_itself() {
        let ends: jiff::Timestamp = "2026-12-05T10:06:00Z".parse().unwrap();
        let a = test_alert("x1", Some("team"), ends);
        assert_eq!(a["labels"]["automon_test_receiver"], "team");
        assert_eq!(a["labels"]["automon_test"], "x1");
        assert_eq!(a["labels"]["severity"], "critical");
        assert_eq!(a["endsAt"], "2026-12-05T10:06:00Z");
        assert!(
            test_alert("x1", None, ends)["labels"]
                .get("automon_test_receiver")
                .is_none()
        );
        assert_eq!(query_escape(r#"a="b c""#), "a%3D%22b%20c%22");
    }
}
