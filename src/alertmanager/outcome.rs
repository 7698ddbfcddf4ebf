//! What became of a test alert, from what Alertmanager says (pure): the receivers its
//! configuration has, the receivers its router chose for an alert, and each receiver's
//! notifications as its metrics count them (`receiver-name-in-metrics`) and its log tells why
//! one failed.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::render::alertmanager::TEST_RECEIVER_LABEL;

/// A receiver of the running configuration and its integrations (`webhook` × 1, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receiver {
    pub name: String,
    /// Each integration kind as the metrics name it (`webhook`, `slack`, `email`), with how
    /// many of it the receiver has.
    pub integrations: BTreeMap<String, usize>,
}

/// The receivers of the configuration Alertmanager runs (`/api/v2/status`' `config.original`),
/// and whether it has `test-alert`'s routes.
pub fn receivers(status: &Value) -> Result<(Vec<Receiver>, bool), String> {
    let text = status["config"]["original"]
        .as_str()
        .ok_or("Alertmanager's status has no configuration")?;
    let config: Value = serde_saphyr::from_str(text)
        .map_err(|e| format!("Alertmanager's configuration cannot be read: {e}"))?;
    let receivers = config["receivers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| Receiver {
            name: r["name"].as_str().unwrap_or_default().to_string(),
            integrations: r
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| {
                    let kind = k.strip_suffix("_configs")?;
                    let n = v.as_array().map_or(0, Vec::len);
                    (n > 0).then(|| (kind.to_string(), n))
                })
                .collect(),
        })
        .collect();
    let needle = format!("{TEST_RECEIVER_LABEL}=");
    let test_routes = config["route"]["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r.to_string().contains(&needle));
    Ok((receivers, test_routes))
}

/// The receivers Alertmanager's router chose for the alerts of `/api/v2/alerts`, each once.
pub fn routed_to(alerts: &Value) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for a in alerts.as_array().into_iter().flatten() {
        for r in a["receivers"].as_array().into_iter().flatten() {
            // v0.35 writes {"name": …}; older versions a bare name.
            let name = r["name"]
                .as_str()
                .or_else(|| r.as_str())
                .unwrap_or_default();
            if !name.is_empty() && !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
    }
    names
}

/// One receiver's and integration's notification counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    /// Notifications begun (`alertmanager_notifications_total`).
    pub notifications: u64,
    /// Notifications given up (`alertmanager_notifications_failed_total`, every reason).
    pub failed: u64,
    /// Attempts (`alertmanager_notification_requests_total`).
    pub requests: u64,
    /// Attempts that failed (`alertmanager_notification_requests_failed_total`).
    pub requests_failed: u64,
}

/// The counters by (receiver, integration), and the last reason a notification failed for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub by: BTreeMap<(String, String), Count>,
    /// The `reason` label of each failed-notification series with a count, by (receiver,
    /// integration): `serverError`, `clientError`, `other`.
    pub reasons: BTreeMap<(String, String), BTreeMap<String, u64>>,
    /// Whether the series name their receiver (the feature is on).
    pub named: bool,
}

/// Reads the notification counters out of Alertmanager's `/metrics`.
pub fn counters(metrics: &str) -> Counters {
    let mut c = Counters::default();
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Some((name, labels)) = series.split_once('{') else {
            continue;
        };
        let labels = labels_of(labels.trim_end_matches('}'));
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let value = value as u64;
        let field: fn(&mut Count) -> &mut u64 = match name {
            "alertmanager_notifications_total" => |c| &mut c.notifications,
            "alertmanager_notifications_failed_total" => |c| &mut c.failed,
            "alertmanager_notification_requests_total" => |c| &mut c.requests,
            "alertmanager_notification_requests_failed_total" => |c| &mut c.requests_failed,
            _ => continue,
        };
        let Some(receiver) = labels.get("receiver_name") else {
            continue;
        };
        c.named = true;
        let key = (
            receiver.clone(),
            labels.get("integration").cloned().unwrap_or_default(),
        );
        *field(c.by.entry(key.clone()).or_default()) += value;
        if name == "alertmanager_notifications_failed_total" && value > 0 {
            let reason = labels.get("reason").cloned().unwrap_or_default();
            *c.reasons.entry(key).or_default().entry(reason).or_default() += value;
        }
    }
    c
}

/// `a="x",b="y"` as a map (values unescaped).
fn labels_of(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, ch)) = chars.next() {
            match ch {
                '\\' => {
                    if let Some((_, next)) = chars.next() {
                        value.push(if next == 'n' { '\n' } else { next });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                ch => value.push(ch),
            }
        }
        labels.insert(key.trim_start_matches(',').trim().to_string(), value);
        rest = &after[end..];
    }
    labels
}

/// Where one receiver's test notification stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum Progress {
    /// Nothing decided yet; `retrying` when an attempt has failed already.
    Pending { retrying: bool },
    /// Every integration of the receiver sent it.
    Delivered,
    /// An integration gave up: which, and the reason label Alertmanager gave.
    Failed { integration: String, reason: String },
}

/// How `receiver`'s notifications went between two readings of the counters (pure).
pub fn progress(before: &Counters, now: &Counters, receiver: &Receiver) -> Progress {
    let mut delivered = 0;
    let mut retrying = false;
    for (kind, n) in &receiver.integrations {
        let key = (receiver.name.clone(), kind.clone());
        let was = before.by.get(&key).copied().unwrap_or_default();
        let is = now.by.get(&key).copied().unwrap_or_default();
        if is.failed > was.failed {
            let reason = changed_reason(before.reasons.get(&key), now.reasons.get(&key));
            return Progress::Failed {
                integration: kind.clone(),
                reason,
            };
        }
        let succeeded = (is.requests - is.requests_failed.min(is.requests))
            .saturating_sub(was.requests - was.requests_failed.min(was.requests));
        if succeeded >= *n as u64 {
            delivered += 1;
        }
        retrying |= is.requests_failed > was.requests_failed;
    }
    if delivered == receiver.integrations.len() && delivered > 0 {
        Progress::Delivered
    } else {
        Progress::Pending { retrying }
    }
}

fn changed_reason(
    before: Option<&BTreeMap<String, u64>>,
    now: Option<&BTreeMap<String, u64>>,
) -> String {
    now.into_iter()
        .flatten()
        .find(|(reason, n)| before.and_then(|b| b.get(*reason)).copied().unwrap_or(0) < **n)
        .map(|(reason, _)| reason.clone())
        .unwrap_or_default()
}

/// Why `receiver`'s notification failed, from Alertmanager's log: the error of the last
/// `Notify for alerts failed` (or, while it retries, `Notify attempt failed`) line about it,
/// in Alertmanager's words (it redacts URLs that may hold a credential).
pub fn failure_in_log(log: &str, receiver: &str) -> Option<String> {
    let prefix = format!("{receiver}/");
    log.lines()
        .rev()
        .filter(|l| l.contains("Notify for alerts failed") || l.contains("Notify attempt failed"))
        .find_map(|l| {
            let err = logfmt_value(l, "err")?;
            let named = logfmt_value(l, "receiver").as_deref() == Some(receiver)
                || err.starts_with(&prefix);
            named.then_some(err)
        })
        .map(|err| {
            // `team/webhook[0]: notify retry canceled …: unexpected status code 401: …`
            err.strip_prefix(&prefix).map(str::to_string).unwrap_or(err)
        })
}

/// The value of `key` on a logfmt line, unquoted.
fn logfmt_value(line: &str, key: &str) -> Option<String> {
    let start = line
        .match_indices(&format!("{key}="))
        .find(|(i, _)| *i == 0 || line.as_bytes()[i - 1] == b' ')?
        .0
        + key.len()
        + 1;
    let rest = &line[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.chars();
        while let Some(ch) = chars.next() {
            match ch {
                '\\' => value.push(chars.next()?),
                '"' => return Some(value),
                ch => value.push(ch),
            }
        }
        None
    } else {
        Some(rest.split(' ').next().unwrap_or_default().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const METRICS: &str = r#"# HELP alertmanager_notifications_total The total number of attempted notifications.
# TYPE alertmanager_notifications_total counter
alertmanager_notifications_total{integration="webhook",receiver_name="team"} 3
alertmanager_notifications_total{integration="webhook",receiver_name="refused"} 1
alertmanager_notifications_total{integration="slack",receiver_name="chat"} 0
alertmanager_notifications_failed_total{integration="webhook",reason="serverError",receiver_name="refused"} 1
alertmanager_notifications_failed_total{integration="webhook",reason="clientError",receiver_name="refused"} 0
alertmanager_notification_requests_total{integration="webhook",receiver_name="team"} 3
alertmanager_notification_requests_total{integration="webhook",receiver_name="refused"} 4
alertmanager_notification_requests_failed_total{integration="webhook",receiver_name="refused"} 4
alertmanager_notification_requests_failed_total{integration="webhook",receiver_name="team"} 0
alertmanager_alerts{state="active"} 2
"#;

    fn receiver(name: &str, kinds: &[&str]) -> Receiver {
        Receiver {
            name: name.into(),
            integrations: kinds.iter().map(|k| (k.to_string(), 1)).collect(),
        }
    }

    #[test]
    fn reads_the_notification_counters_by_receiver() {
        let c = counters(METRICS);
        assert!(c.named);
        let team = c.by[&("team".to_string(), "webhook".to_string())];
        assert_eq!((team.notifications, team.requests, team.failed), (3, 3, 0));
        let refused = c.by[&("refused".to_string(), "webhook".to_string())];
        assert_eq!((refused.failed, refused.requests_failed), (1, 4));
        assert_eq!(
            c.reasons[&("refused".to_string(), "webhook".to_string())],
            BTreeMap::from([("serverError".to_string(), 1)])
        );
        // Without the feature the series name no receiver.
        let unnamed = counters(r#"alertmanager_notifications_total{integration="webhook"} 3"#);
        assert!(!unnamed.named && unnamed.by.is_empty());
    }

    #[test]
    fn assesses_each_receiver_from_the_counters_before_and_after() {
        let zero = Counters::default();
        let now = counters(METRICS);
        let cases = [
            (receiver("team", &["webhook"]), Progress::Delivered),
            (
                receiver("refused", &["webhook"]),
                Progress::Failed {
                    integration: "webhook".into(),
                    reason: "serverError".into(),
                },
            ),
            (
                receiver("chat", &["slack"]),
                Progress::Pending { retrying: false },
            ),
            // One integration of two sent it: not yet delivered.
            (
                receiver("team", &["webhook", "email"]),
                Progress::Pending { retrying: false },
            ),
            (
                receiver("ui-only", &[]),
                Progress::Pending { retrying: false },
            ),
        ];
        for (r, want) in cases {
            assert_eq!(progress(&zero, &now, &r), want, "{}", r.name);
        }
        // Nothing new since the first reading: nothing decided.
        assert_eq!(
            progress(&now, &now, &receiver("team", &["webhook"])),
            Progress::Pending { retrying: false }
        );
        // An attempt failed, none given up yet: retrying.
        let mut retry = now.clone();
        retry
            .by
            .get_mut(&("team".to_string(), "webhook".to_string()))
            .unwrap()
            .requests_failed += 1;
        retry
            .by
            .get_mut(&("team".to_string(), "webhook".to_string()))
            .unwrap()
            .requests += 1;
        assert_eq!(
            progress(&now, &retry, &receiver("team", &["webhook"])),
            Progress::Pending { retrying: true }
        );
    }

    #[test]
    fn finds_the_receivers_error_in_the_log() {
        let log = r#"time=2026-12-05T10:00:00.000Z level=INFO source=main.go:1 msg="Starting Alertmanager"
time=2026-12-05T10:00:01.000Z level=WARN source=notify.go:1 msg="Notify attempt failed, will retry later" component=dispatcher receiver=refused integration=webhook[0] aggrGroup="{}/{automon_test_receiver=\"refused\"}:{automon_test=\"x1\"}" attempts=1 err="unexpected status code 500: http://127.0.0.1:4000/refused: refused by the test"
time=2026-12-05T10:00:02.000Z level=ERROR source=dispatch.go:1 msg="Notify for alerts failed" component=dispatcher num_alerts=1 err="badcred/webhook[0]: notify retry canceled due to unrecoverable error after 1 attempts: unexpected status code 401: http://127.0.0.1:4001/badcred"
"#;
        assert_eq!(
            failure_in_log(log, "badcred").as_deref(),
            Some(
                "webhook[0]: notify retry canceled due to unrecoverable error after 1 attempts: unexpected status code 401: http://127.0.0.1:4001/badcred"
            )
        );
        assert_eq!(
            failure_in_log(log, "refused").as_deref(),
            Some("unexpected status code 500: http://127.0.0.1:4000/refused: refused by the test")
        );
        assert_eq!(failure_in_log(log, "team"), None);
        assert_eq!(failure_in_log(log, "bad"), None);
    }

    #[test]
    fn reads_receivers_routes_and_the_routers_choice() {
        let status = json!({"config": {"original": "route:\n  receiver: team\n  routes:\n  - receiver: team\n    matchers:\n    - automon_test_receiver=\"team\"\nreceivers:\n- name: ui-only\n- name: team\n  webhook_configs:\n  - url_file: /x\n  - url_file: /y\n  email_configs:\n  - to: a@b\n"}});
        let (rs, test_routes) = receivers(&status).unwrap();
        assert!(test_routes);
        assert_eq!(rs[0], receiver("ui-only", &[]));
        assert_eq!(
            rs[1].integrations,
            BTreeMap::from([("email".to_string(), 1), ("webhook".to_string(), 2)])
        );
        let older =
            json!({"config": {"original": "route:\n  receiver: team\nreceivers:\n- name: team\n"}});
        assert!(!receivers(&older).unwrap().1);
        assert!(receivers(&json!({})).is_err());

        let alerts = json!([
            {"labels": {"alertname": "A"}, "receivers": [{"name": "team"}, {"name": "chat"}]},
            {"labels": {"alertname": "A"}, "receivers": [{"name": "team"}]},
        ]);
        assert_eq!(routed_to(&alerts), ["team", "chat"]);
        assert!(routed_to(&json!([])).is_empty());
    }
}
