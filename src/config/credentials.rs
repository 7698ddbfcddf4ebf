//! Credentials in the configuration. Every credential field can name a key of a Secret in the
//! stack's namespace instead of holding the value ([`SecretKey`]), and [`seal`] moves each
//! literal credential a user gives (`-f`, `--set`) out of the values tree into the Secret automon
//! owns ([`SECRET_NAME`]), leaving a reference to its key: nothing downstream of the load (render,
//! the parent ConfigMap, revisions, status, history) ever holds the value.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// The Secret, in the stack's namespace, that holds the credentials given literally. Written by
/// `enable` beside the stack (not an ApplySet member: render, diff and revisions never carry
/// its values), removed by `disable`.
pub const SECRET_NAME: &str = "automon-credentials";

/// A key of a Secret in the stack's namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct SecretKey {
    pub secret: String,
    pub key: String,
}

/// The credential fields of one receiver: its integration, the literal field, and the field
/// that names a Secret key instead (as `Receiver::credentials` lists them).
const RECEIVER_FIELDS: &[(&str, &str, &str)] = &[
    ("webhook", "url", "urlSecret"),
    ("slack", "apiUrl", "apiUrlSecret"),
    ("email", "authPassword", "authPasswordSecret"),
    ("pagerduty", "routingKey", "routingKeySecret"),
    ("opsgenie", "apiKey", "apiKeySecret"),
    ("msteams", "webhookUrl", "webhookUrlSecret"),
];

/// One credential taken out of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Where it was given: `alertmanager.receivers[0].webhook.url`.
    pub path: String,
    /// Its key in [`SECRET_NAME`].
    pub key: String,
    pub value: String,
}

/// The credentials [`seal`] took out, in the order it met them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials(pub Vec<Sealed>);

impl Credentials {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The Secret's data: key → value.
    pub fn data(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .map(|s| (s.key.clone(), s.value.clone()))
            .collect()
    }

    /// Where each was given, for a line that says what was moved (never the values).
    pub fn paths(&self) -> Vec<&str> {
        self.0.iter().map(|s| s.path.as_str()).collect()
    }

    /// `text` with every sealed value replaced by `(hidden)`.
    pub fn redact(&self, text: &str) -> String {
        // Longest first, so that a value containing another is hidden whole.
        let mut values: Vec<&str> = self.0.iter().map(|s| s.value.as_str()).collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values
            .into_iter()
            .filter(|v| !v.is_empty())
            .fold(text.to_string(), |t, v| t.replace(v, "(hidden)"))
    }
}

/// The key of a credential in [`SECRET_NAME`]: its path and the first 8 hex digits of the
/// value's SHA-256, so that a changed value gets a new key and a revision that names the old
/// one still finds it after a rollback (keys are never pruned while the stack exists).
pub fn key_for(path: &str, value: &str) -> String {
    let name: String = path
        .chars()
        .map(|c| match c {
            '[' | ']' => '.',
            c if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' => c,
            _ => '_',
        })
        .collect::<String>()
        .split('.')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(".");
    let digest = Sha256::digest(value.as_bytes());
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{name}-{hex}")
}

/// Moves every literal credential of a user's values tree (as read from `-f`/`--set`, before
/// or after defaults: only the credential fields are read) into [`Credentials`], and puts in
/// its place a reference to its key of [`SECRET_NAME`]: `webhook.url` becomes
/// `webhook.urlSecret: {secret: automon-credentials, key: …}`, `slack.apiUrl` becomes
/// `slack.apiUrlSecret`, and so on for each of [`RECEIVER_FIELDS`]. A field that already names a Secret is left alone, and so is a literal
/// beside one (validation refuses the pair). Validate the literals (they are URLs) before
/// sealing: once sealed, the configuration holds a reference only.
pub fn seal(tree: &mut Value) -> Credentials {
    let mut sealed = Vec::new();
    for (i, receiver) in receivers(tree).into_iter().enumerate() {
        for (integration, literal, reference) in RECEIVER_FIELDS {
            let Some(section) = receiver
                .get_mut(*integration)
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            if section.contains_key(*reference) {
                continue;
            }
            let Some(Value::String(value)) = section.get(*literal).cloned() else {
                continue;
            };
            let path = format!("alertmanager.receivers[{i}].{integration}.{literal}");
            let key = key_for(&path, &value);
            section.remove(*literal);
            section.insert(
                (*reference).to_string(),
                json!({"secret": SECRET_NAME, "key": key}),
            );
            sealed.push(Sealed { path, key, value });
        }
    }
    Credentials(sealed)
}

/// The receivers of a values tree, each as given.
fn receivers(tree: &mut Value) -> Vec<&mut Value> {
    tree.get_mut("alertmanager")
        .and_then(|a| a.get_mut("receivers"))
        .and_then(Value::as_array_mut)
        .map(|r| r.iter_mut().collect())
        .unwrap_or_default()
}

/// Every section of a receiver that may hold a credential (`webhook`, `slack`, …).
fn receiver_sections(tree: &mut Value) -> Vec<&mut serde_json::Map<String, Value>> {
    receivers(tree)
        .into_iter()
        .filter_map(Value::as_object_mut)
        .flat_map(|r| {
            r.iter_mut()
                .filter(|(k, _)| RECEIVER_FIELDS.iter().any(|(i, _, _)| i == k))
                .filter_map(|(_, v)| v.as_object_mut())
        })
        .collect()
}

/// One `--set path=value` as it may be written down (a revision's change, an error's origin):
/// every credential [`seal`] would take out of it is `(hidden)`; the whole value is when it
/// cannot be read or a credential is not written verbatim (quoted with escapes).
pub fn redact_set(set: &str) -> String {
    let Some((path, raw)) = set.split_once('=') else {
        return set.to_string();
    };
    let hidden = || format!("{path}=(hidden)");
    let value: Value = if raw.trim().is_empty() {
        Value::Null
    } else {
        match serde_saphyr::from_str(raw) {
            Ok(v) => v,
            Err(_) if path.to_ascii_lowercase().contains("receivers") => return hidden(),
            Err(_) => return set.to_string(),
        }
    };
    if path.starts_with("grafana") && super::grafana::holds_secret_value(path, &value) {
        return hidden();
    }
    let mut tree = path
        .rsplit('.')
        .fold(value, |inner, part| json!({ part: inner }));
    // A literal beside a Secret key is refused, and hidden in the error that says so.
    for section in receiver_sections(&mut tree) {
        for (_, _, reference) in RECEIVER_FIELDS {
            section.remove(*reference);
        }
    }
    let credentials = seal(&mut tree);
    let redacted = credentials.redact(set);
    if credentials
        .0
        .iter()
        .any(|s| !s.value.is_empty() && !set.contains(&s.value))
    {
        return hidden();
    }
    hide_userinfo(&redacted)
}

/// `https://user:password@host` as `https://(hidden)@host`: validation refuses such a URL, and
/// the error that says so must not repeat the password.
fn hide_userinfo(text: &str) -> String {
    static USERINFO: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"://[^/@\s'\x22?#]*@").expect("a valid pattern")
    });
    USERINFO.replace_all(text, "://(hidden)@").into_owned()
}

/// A type error's problem without the value it quotes (`…, got "https://…"`) when `key` is
/// where a receiver's credentials are given: the value may be one.
pub fn unquoted(key: &str, problem: String) -> String {
    let credential_bearing = key.starts_with("alertmanager.receivers")
        && RECEIVER_FIELDS
            .iter()
            .any(|(integration, _, _)| key.contains(integration))
        || key == "alertmanager.receivers"
        || key == "alertmanager"
        || super::grafana::may_hold_secret(key);
    // A number, a boolean or a shape is no credential, and says more than nothing.
    let harmless = |got: &str| {
        got.parse::<f64>().is_ok()
            || ["true", "false", "a list", "a section", "nothing"].contains(&got)
    };
    match problem.split_once(", got ") {
        Some((head, got)) if credential_bearing && !harmless(got) => head.to_string(),
        _ => problem,
    }
}

/// A Secret's name: a DNS subdomain.
pub(super) fn check_secret(key: &str, name: &str) -> Result<(), (String, String)> {
    check_secret_name(&format!("{key}.secret"), name)
}

/// A Secret's name given at `key` (the field itself): a DNS subdomain.
pub(super) fn check_secret_name(key: &str, name: &str) -> Result<(), (String, String)> {
    if name.is_empty() {
        return Err((
            key.to_string(),
            "no Secret named; name the Secret in the stack's namespace that holds the value".into(),
        ));
    }
    super::checks::object_name("Secret", name, "team-hooks").map_err(|p| (key.to_string(), p))
}

/// A key of a Secret: letters, digits, `-`, `_` and `.`.
pub(super) fn check_key(key: &str, secret: &str, value: &str) -> Result<(), (String, String)> {
    if value.is_empty() {
        return Err((
            key.into(),
            format!("Secret {secret:?} is named but not its key; say which key holds the value"),
        ));
    }
    // The API server's rule for a Secret's keys; `.`, `..` and `..x` would also climb out of
    // the directory the key is mounted in.
    let valid = value.len() <= 253
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && value != "."
        && !value.starts_with("..");
    if valid {
        Ok(())
    } else {
        Err((
            key.into(),
            format!(
                "{value:?} is not a Secret key (letters, digits, '-', '_' and '.', at most 253, \
                 neither '.' nor starting with '..'), e.g. password"
            ),
        ))
    }
}

/// A Secret and its key, both names Kubernetes accepts.
pub(super) fn check_secret_key(key: &str, s: &SecretKey) -> Result<(), (String, String)> {
    check_secret(key, &s.secret)?;
    check_key(&format!("{key}.key"), &s.secret, &s.key)
}

/// A credential given either as a value (`url`) or as a Secret key (`urlSecret`): exactly one.
/// `key` is the section (`alertmanager.receivers[0].webhook`).
pub(super) fn check_one_of(
    key: &str,
    literal: (&str, Option<&str>),
    reference: (&str, Option<&SecretKey>),
) -> Result<(), (String, String)> {
    let ((literal_name, value), (reference_name, secret)) = (literal, reference);
    match (value, secret) {
        (Some(_), Some(_)) => Err((
            key.into(),
            format!(
                "both {literal_name} and {reference_name}; give the value in {literal_name}, or \
                 name the Secret key that holds it in {reference_name}, not both"
            ),
        )),
        (None, None) => Err((
            format!("{key}.{literal_name}"),
            format!(
                "no {literal_name}; give it, or name the Secret key that holds it: \
                 {reference_name}: {{secret: NAME, key: KEY}}"
            ),
        )),
        (None, Some(s)) => check_secret_key(&format!("{key}.{reference_name}"), s),
        (Some(_), None) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOOK: &str = "https://hooks.example.com/services/T0/B0/planted-token";

    #[test]
    fn literals_move_out_and_references_stay() {
        let mut tree = json!({"alertmanager": {"receivers": [
            {"name": "team", "webhook": {"url": HOOK}},
            {"name": "chat", "slack": {"apiUrl": "https://hooks.slack.com/x", "channel": "#a"}},
            {"name": "own", "webhook": {"urlSecret": {"secret": "hooks", "key": "url"}}},
            {"name": "mail", "email": {"to": "a@b", "from": "c@d", "smarthost": "e:25"}},
        ]}, "prometheus": {"replicas": 2}});
        let c = seal(&mut tree);
        assert_eq!(
            c.paths(),
            [
                "alertmanager.receivers[0].webhook.url",
                "alertmanager.receivers[1].slack.apiUrl"
            ]
        );
        let text = tree.to_string();
        assert!(!text.contains("planted-token") && !text.contains("hooks.slack.com"));
        let r = &tree["alertmanager"]["receivers"];
        assert_eq!(r[0]["webhook"]["urlSecret"]["secret"], SECRET_NAME);
        assert_eq!(r[0]["webhook"]["urlSecret"]["key"], c.0[0].key.as_str());
        assert_eq!(r[1]["slack"]["apiUrlSecret"]["key"], c.0[1].key.as_str());
        assert_eq!(r[1]["slack"]["channel"], "#a");
        assert_eq!(r[2]["webhook"]["urlSecret"]["secret"], "hooks");
        assert_eq!(c.data()[&c.0[0].key], HOOK);
        // Sealing twice takes nothing more: what is left names keys only.
        assert!(seal(&mut tree).is_empty());
    }

    #[test]
    fn keys_name_the_path_and_change_with_the_value() {
        let a = key_for("alertmanager.receivers[0].webhook.url", "https://a");
        assert!(
            a.starts_with("alertmanager.receivers.0.webhook.url-"),
            "{a}"
        );
        assert_eq!(
            a,
            key_for("alertmanager.receivers[0].webhook.url", "https://a")
        );
        assert_ne!(
            a,
            key_for("alertmanager.receivers[0].webhook.url", "https://b")
        );
        assert!(check_key("k", "s", &a).is_ok());
    }

    #[test]
    fn sets_are_written_down_without_their_credentials() {
        let set = format!(
            "alertmanager.receivers=[{{name: x, slack: {{apiUrl: '{HOOK}', channel: '#a'}}}}]"
        );
        assert_eq!(
            redact_set(&set),
            "alertmanager.receivers=[{name: x, slack: {apiUrl: '(hidden)', channel: '#a'}}]"
        );
        // Escaped in the text: the value cannot be found there, so all of it is hidden.
        let escaped = "alertmanager.receivers=[{name: x, webhook: {url: \"https://h/\\x41\"}}]";
        assert_eq!(redact_set(escaped), "alertmanager.receivers=(hidden)");
        assert_eq!(
            redact_set("prometheus.retention=30d"),
            "prometheus.retention=30d"
        );
        assert_eq!(
            redact_set("prometheus.remoteWrite=[{url: 'https://me:pw@store/x'}]"),
            "prometheus.remoteWrite=[{url: 'https://(hidden)@store/x'}]"
        );
        assert_eq!(
            redact_set("alertmanager.receivers=[{name: x, webhook: {url: 'unclosed"),
            "alertmanager.receivers=(hidden)"
        );
    }

    #[test]
    fn type_errors_where_credentials_go_do_not_quote_the_value() {
        let e = crate::config::Config::default()
            .with_set("alertmanager.receivers=[{name: x, webhook: 'https://h/planted'}]")
            .unwrap_err();
        assert!(!e.to_string().contains("planted"), "{e}");
        assert!(e.problem.starts_with("expected a section"), "{e}");
        let e = crate::config::Config::from_yaml(
            "alertmanager:\n  receivers:\n    - name: x\n      webhook: https://h/planted\n",
            "a.yaml",
        )
        .unwrap_err();
        assert!(!e.to_string().contains("planted"), "{e}");
        let e = crate::config::Config::default()
            .with_set("alertmanager.receivers=[{name: x, webhook: {url: 'https://h/planted}]")
            .unwrap_err();
        assert!(!e.to_string().contains("planted"), "{e}");
        assert!(e.problem.contains("unclosed quote"), "{e}");
        // Elsewhere the value is quoted, as it helps.
        assert_eq!(
            unquoted(
                "prometheus.replicas",
                "expected a whole number, got \"x\"".into()
            ),
            "expected a whole number, got \"x\""
        );
    }

    #[test]
    fn a_credential_is_a_value_or_a_secret_key_never_both() {
        let s = SecretKey {
            secret: "hooks".into(),
            key: "url".into(),
        };
        let k = "alertmanager.receivers[0].webhook";
        assert!(check_one_of(k, ("url", Some("x")), ("urlSecret", None)).is_ok());
        assert!(check_one_of(k, ("url", None), ("urlSecret", Some(&s))).is_ok());
        let (key, why) = check_one_of(k, ("url", Some("x")), ("urlSecret", Some(&s))).unwrap_err();
        assert_eq!(key, k);
        assert!(why.contains("not both"), "{why}");
        let (key, _) = check_one_of(k, ("url", None), ("urlSecret", None)).unwrap_err();
        assert_eq!(key, format!("{k}.url"));
        let bad = SecretKey {
            secret: "hooks".into(),
            key: String::new(),
        };
        let (key, _) = check_one_of(k, ("url", None), ("urlSecret", Some(&bad))).unwrap_err();
        assert_eq!(key, format!("{k}.urlSecret.key"));
    }
}
