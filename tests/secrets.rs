//! No credential is ever stored or shown in the clear. A unique value is planted as the token
//! of a webhook URL, a Slack URL and a Teams URL, in an SMTP password, a PagerDuty routing key
//! and an Opsgenie API key (given literally, the documented `--set` form) and in a Secret of the
//! user's own (`urlSecret`); then every object automon writes in the cluster
//! (every kind in the namespace, the cluster-scoped ones it manages, every Event; revision
//! Secrets decompressed) and everything each command prints is searched for it. Only the
//! Secrets meant to hold it may.

mod common;

use std::io::Read as _;

use base64::Engine as _;
use common::*;
use serde_json::Value;

const NS: &str = "automon-secrets";
/// The Secrets meant to hold the planted value: automon's and the user's.
const HOLDERS: [&str; 2] = ["automon-credentials", "team-hooks"];

/// A value no other run, test or default could contain.
fn planted() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("planted{}x{nanos}", std::process::id())
}

fn receivers(token: &str, webhook: &str) -> String {
    format!(
        "alertmanager.receivers=[{{name: team, webhook: {{url: 'https://hooks.example.invalid/{webhook}/{token}'}}}}, \
         {{name: chat, slack: {{apiUrl: 'https://hooks.slack.example.invalid/services/T0/B0/{token}', channel: '#alerts'}}}}, \
         {{name: own, webhook: {{urlSecret: {{secret: team-hooks, key: url}}}}}}, \
         {{name: mail, email: {{to: ops@example.invalid, from: am@example.invalid, smarthost: 'smtp.example.invalid:587', authUsername: am, authPassword: 'smtp-{webhook}-{token}'}}}}, \
         {{name: pager, pagerduty: {{routingKey: 'pd-{webhook}-{token}'}}}}, \
         {{name: genie, opsgenie: {{apiKey: 'og-{webhook}-{token}'}}}}, \
         {{name: teams, msteams: {{webhookUrl: 'https://teams.example.invalid/{webhook}/{token}'}}}}]"
    )
}

/// What a command printed, both streams, with the command for the failure message.
fn printed(what: &str, r: &Run) -> (String, String) {
    (what.to_string(), format!("{}\n{}", r.stdout, r.stderr))
}

/// Every value of a Secret's data, decoded (and decompressed when gzip'd, as revisions are).
fn secret_text(o: &Value) -> String {
    let mut out = String::new();
    for v in o["data"].as_object().into_iter().flatten().map(|(_, v)| v) {
        let Some(bytes) = v
            .as_str()
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        else {
            continue;
        };
        let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_end(&mut plain)
                .unwrap();
            plain
        } else {
            bytes
        };
        out.push_str(&String::from_utf8_lossy(&bytes));
        out.push('\n');
    }
    out
}

/// Every object in the namespace (every kind that can be listed) and every cluster-scoped one
/// automon manages, as text (Secrets decoded), but the Secrets meant to hold the credential.
fn everything_written() -> Vec<(String, String)> {
    let kinds = |namespaced: bool| -> String {
        kubectl(&[
            "api-resources",
            "--verbs=list",
            &format!("--namespaced={namespaced}"),
            "-o",
            "name",
        ])
        .success()
        .stdout
        .lines()
        // Events are searched on their own, in every namespace.
        .filter(|k| !k.starts_with("events"))
        .collect::<Vec<_>>()
        .join(",")
    };
    let namespaced = get_json(&["get", &kinds(true), "-n", NS]);
    let cluster_scoped = get_json(&[
        "get",
        &kinds(false),
        "-l",
        "app.kubernetes.io/managed-by=kubectl-automon",
    ]);
    let mut out = Vec::new();
    for o in namespaced["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(cluster_scoped["items"].as_array().unwrap())
    {
        let name = o["metadata"]["name"].as_str().unwrap_or_default();
        if o["kind"] == "Secret" && o["metadata"]["namespace"] == NS && HOLDERS.contains(&name) {
            continue;
        }
        let mut text = o.to_string();
        if o["kind"] == "Secret" {
            text.push_str(&secret_text(o));
        }
        out.push((format!("{}/{name}", o["kind"].as_str().unwrap()), text));
    }
    let events = get_json(&["get", "events", "-A"]);
    out.push(("events".into(), events.to_string()));
    out
}

#[track_caller]
fn assert_nowhere(token: &str, places: &[(String, String)]) {
    let leaks: Vec<&str> = places
        .iter()
        .filter(|(_, text)| text.contains(token))
        .map(|(what, _)| what.as_str())
        .collect();
    assert!(leaks.is_empty(), "the planted credential is in: {leaks:?}");
}

#[test]
fn a_planted_credential_is_never_stored_or_shown() {
    let _cleanup = Cleanup::created(NS);
    let token = planted();
    let mut outputs = Vec::new();
    let set = receivers(&token, "first");
    let sets = ["--set", &set, "--set", "alertmanager.route.receiver=team"];

    // A bad URL is refused without repeating it.
    let bad = format!(
        "alertmanager.receivers=[{{name: team, webhook: {{url: 'hooks.example.invalid/{token}'}}}}]"
    );
    let refused = run(automon().args(["render", "--set", &bad]));
    assert_ne!(refused.code, 0, "{refused:#?}");
    assert_has(&refused.stderr, "alertmanager.receivers[0].webhook.url");
    outputs.push(printed("render with a bad URL", &refused));
    // So is a key that could not be sent as it is, and one given both ways.
    for (what, pagerduty, key) in [
        (
            "a bad routing key",
            format!("{{routingKey: '{token} '}}"),
            "alertmanager.receivers[0].pagerduty.routingKey",
        ),
        (
            "a routing key given twice",
            format!("{{routingKey: '{token}', routingKeySecret: {{secret: pd, key: key}}}}"),
            "alertmanager.receivers[0].pagerduty",
        ),
    ] {
        let bad = format!("alertmanager.receivers=[{{name: pager, pagerduty: {pagerduty}}}]");
        let refused = run(automon().args(["render", "--set", &bad]));
        assert_ne!(refused.code, 0, "{refused:#?}");
        assert_has(&refused.stderr, key);
        outputs.push(printed(&format!("render with {what}"), &refused));
    }

    // The user's Secret is missing: preflight says so before anything is written.
    let missing = enable(NS, &sets);
    assert_ne!(missing.code, 0, "{missing:#?}");
    assert_has(
        &format!("{}{}", missing.stdout, missing.stderr),
        "Secret automon-secrets/team-hooks does not exist",
    );
    assert!(!exists(&["get", "alertmanager", "automon", "-n", NS]));
    outputs.push(printed("enable, the user's Secret missing", &missing));
    kubectl(&[
        "create",
        "secret",
        "generic",
        "team-hooks",
        "-n",
        NS,
        &format!("--from-literal=url=https://own.example.invalid/hook/{token}"),
    ])
    .success();

    // render leaves the credentials Secret out and says how to provide it.
    let rendered = run(automon().args(["render", "-n", NS]).args(sets)).success();
    assert_has(
        &rendered.stderr,
        "left out Secret automon-secrets/automon-credentials",
    );
    // The Alertmanager mounts it (and the user's), reading the keys as files.
    assert_has(&rendered.stdout, "- automon-credentials");
    outputs.push(printed("render", &rendered));

    // A file is sealed as --set is.
    let file = format!(
        "alertmanager:\n  receivers:\n    - name: team\n      webhook:\n        url: https://hooks.example.invalid/file/{token}\n"
    );
    let (_dir, path) = write_temp("automon.yaml", &file);
    let from_file =
        run(automon().args(["render", "-n", NS, "-f", path.to_str().unwrap()])).success();
    assert_has(&from_file.stderr, "alertmanager.receivers[0].webhook.url");
    outputs.push(printed("render -f", &from_file));

    let enabled = enable(NS, &sets).success();
    assert_has(
        &enabled.stdout,
        "Credentials Secret automon-secrets/automon-credentials",
    );
    outputs.push(printed("enable", &enabled));

    // The credentials are where they belong, and only there.
    let stored = get_json(&["get", "secret", "automon-credentials", "-n", NS]);
    let held = secret_text(&stored);
    // The webhook, Slack, SMTP password, PagerDuty, Opsgenie and Teams credentials.
    assert_eq!(held.matches(&token).count(), 6, "{stored}");
    let am = get_json(&["get", "alertmanager", "automon", "-n", NS]);
    assert_eq!(
        am["spec"]["secrets"],
        serde_json::json!(["automon-credentials", "team-hooks"])
    );
    let config = secret_text(&get_json(&[
        "get",
        "secret",
        "alertmanager-automon-config",
        "-n",
        NS,
    ]));
    assert_has(
        &config,
        "url_file: /etc/alertmanager/secrets/team-hooks/url",
    );
    assert_has(&config, "/etc/alertmanager/secrets/automon-credentials/");
    for setting in [
        "auth_password_file:",
        "routing_key_file:",
        "api_key_file:",
        "webhook_url_file:",
    ] {
        assert_has(&config, setting);
    }
    let keys_before: Vec<String> = stored["data"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();

    // A change without the receivers keeps every key; a diff of a new URL masks the Secret.
    let again =
        run(automon_admin().args(["enable", "-n", NS, "--set", "prometheus.retention=20d"]))
            .success();
    outputs.push(printed("enable --set", &again));
    let stored = get_json(&["get", "secret", "automon-credentials", "-n", NS]);
    let keys_after: Vec<String> = stored["data"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys_after, keys_before);
    let changed = receivers(&token, "second");
    let diff = run(automon_admin().args(["diff", "-n", NS, "--set", &changed]));
    assert_eq!(diff.code, 1, "{diff:#?}");
    assert_has(
        &diff.stdout,
        "Secret/automon-secrets/alertmanager-automon-config",
    );
    assert_has(&diff.stdout, "*** (after)");
    outputs.push(printed("diff", &diff));

    for (what, args) in [
        ("status", vec!["status", "-n", NS]),
        ("status -o json", vec!["status", "-n", NS, "-o", "json"]),
        ("doctor", vec!["doctor", "-n", NS]),
        ("history", vec!["history", "-n", NS]),
        ("reconcile", vec!["reconcile", "-n", NS]),
    ] {
        let r = run(automon_admin().args(&args));
        outputs.push(printed(what, &r));
    }
    let history = &outputs.iter().find(|(w, _)| w == "history").unwrap().1;
    assert_has(history, "apiUrl: '(hidden)'");
    assert_has(history, "routingKey: '(hidden)'");

    assert_nowhere(&token, &everything_written());

    let disabled = run(automon_admin().args(["disable", "-n", NS, "--yes"])).success();
    assert_has(&disabled.stdout, "automon-credentials");
    outputs.push(printed("disable", &disabled));
    assert!(!exists(&["get", "secret", "automon-credentials", "-n", NS]));
    assert_nowhere(&token, &outputs);
}
