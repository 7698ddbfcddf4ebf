//! Silences as `silence` makes and lists them (pure): a node's matcher, how long, the rows of
//! `--list`, and which silences are a node's.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

/// Every node alert of the stack's rules carries the node's name in this label.
pub const NODE_LABEL: &str = "node";

/// `--for`: a whole number with a unit, or several (`2h`, `90m`, `1h30m`, `1d`, `1w`).
pub fn parse_for(s: &str) -> Result<Duration, String> {
    let bad =
        || format!("invalid duration {s:?}: use a number with a unit such as 30m, 2h, 1h30m or 1d");
    let mut secs: u64 = 0;
    let mut digits = String::new();
    let text = s.trim();
    if text.is_empty() {
        return Err(bad());
    }
    for ch in text.chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
            continue;
        }
        let unit = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        secs = n
            .checked_mul(unit)
            .and_then(|v| secs.checked_add(v))
            .ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() || secs == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(secs))
}

/// The silence `silence NODE` posts: every alert labelled with the node, from now for `length`.
pub fn for_node(
    node: &str,
    now: jiff::Timestamp,
    length: Duration,
    created_by: &str,
    comment: &str,
) -> Result<Value, String> {
    let span = jiff::SignedDuration::try_from(length).map_err(|e| e.to_string())?;
    let ends = now.checked_add(span).map_err(|e| e.to_string())?;
    Ok(json!({
        "matchers": [{"name": NODE_LABEL, "value": node, "isRegex": false, "isEqual": true}],
        "startsAt": now.to_string(),
        "endsAt": ends.to_string(),
        "createdBy": created_by,
        "comment": comment,
    }))
}

/// One silence as `--list` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    pub id: String,
    pub state: String,
    pub matchers: String,
    pub starts_at: String,
    pub ends_at: String,
    pub created_by: String,
    pub comment: String,
}

/// The silences in force or to come (expired ones are history), soonest end first.
pub fn current(silences: &Value) -> Vec<Silence> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut rows: Vec<Silence> = silences
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| matches!(s["status"]["state"].as_str(), Some("active" | "pending")))
        .map(|s| Silence {
            id: text(&s["id"]),
            state: text(&s["status"]["state"]),
            matchers: matchers_text(&s["matchers"]),
            starts_at: text(&s["startsAt"]),
            ends_at: text(&s["endsAt"]),
            created_by: text(&s["createdBy"]),
            comment: text(&s["comment"]),
        })
        .collect();
    rows.sort_by(|a, b| (&a.ends_at, &a.id).cmp(&(&b.ends_at, &b.id)));
    rows
}

/// Matchers as Alertmanager writes them: `node="n1"`, `job=~"a|b"`, `env!="dev"`.
pub fn matchers_text(matchers: &Value) -> String {
    matchers
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let equal = m["isEqual"].as_bool().unwrap_or(true);
            let op = match (m["isRegex"].as_bool().unwrap_or(false), equal) {
                (false, true) => "=",
                (false, false) => "!=",
                (true, true) => "=~",
                (true, false) => "!~",
            };
            format!(
                "{}{op}{:?}",
                m["name"].as_str().unwrap_or_default(),
                m["value"].as_str().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The ids of the current silences `silence NODE` would have made: one matcher, `node="NODE"`.
pub fn of_node(silences: &[Silence], node: &str) -> Vec<String> {
    let wanted = format!("{NODE_LABEL}={node:?}");
    silences
        .iter()
        .filter(|s| s.matchers == wanted)
        .map(|s| s.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_for_a_silence() {
        let cases = [
            ("2h", Some(7200)),
            ("90m", Some(5400)),
            ("1h30m", Some(5400)),
            ("1d", Some(86_400)),
            ("1w", Some(604_800)),
            ("45s", Some(45)),
            (" 2h ", Some(7200)),
            ("0h", None),
            ("2", None),
            ("h", None),
            ("2x", None),
            ("-1h", None),
            ("", None),
            ("99999999999999999999w", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_for(text).ok().map(|d| d.as_secs()), want, "{text}");
        }
        assert!(parse_for("2x").unwrap_err().contains("such as 30m"));
    }

    #[test]
    fn a_nodes_silence_matches_its_node_label_for_the_length_asked() {
        let now: jiff::Timestamp = "2026-12-05T10:00:00Z".parse().unwrap();
        let s = for_node("n1", now, Duration::from_secs(7200), "ana", "kernel").unwrap();
        assert_eq!(
            s["matchers"],
            json!([{"name": "node", "value": "n1", "isRegex": false, "isEqual": true}])
        );
        assert_eq!(s["startsAt"], "2026-12-05T10:00:00Z");
        assert_eq!(s["endsAt"], "2026-12-05T12:00:00Z");
        assert_eq!(
            (s["createdBy"].as_str(), s["comment"].as_str()),
            (Some("ana"), Some("kernel"))
        );
    }

    #[test]
    fn lists_current_silences_and_finds_a_nodes() {
        let answer = json!([
            {"id": "b", "status": {"state": "active"}, "matchers": [{"name": "node", "value": "n1", "isRegex": false, "isEqual": true}],
             "startsAt": "2026-12-05T10:00:00Z", "endsAt": "2026-12-05T12:00:00Z", "createdBy": "ana", "comment": "kernel"},
            {"id": "a", "status": {"state": "expired"}, "matchers": [{"name": "node", "value": "n1", "isRegex": false, "isEqual": true}],
             "startsAt": "2026-12-05T08:00:00Z", "endsAt": "2026-12-05T09:00:00Z", "createdBy": "ana", "comment": ""},
            {"id": "c", "status": {"state": "pending"}, "matchers": [
                {"name": "job", "value": "a|b", "isRegex": true, "isEqual": true},
                {"name": "env", "value": "dev", "isRegex": false, "isEqual": false}],
             "startsAt": "2026-12-06T10:00:00Z", "endsAt": "2026-12-06T11:00:00Z", "createdBy": "bob", "comment": "x"},
        ]);
        let rows = current(&answer);
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["b", "c"]);
        assert_eq!(rows[0].matchers, r#"node="n1""#);
        assert_eq!(rows[1].matchers, r#"job=~"a|b",env!="dev""#);
        assert_eq!(of_node(&rows, "n1"), ["b"]);
        assert!(of_node(&rows, "n2").is_empty());
    }
}
