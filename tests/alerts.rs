//! `test-alert` and `silence` as a user runs them, against the real Alertmanager running the
//! stack's own configuration (`localcluster serve --stack-alertmanager`), reached through the
//! API server's service proxy. Every receiver is a Recorder on 127.0.0.1: one accepts, one
//! refuses (500), one refuses the credential (401), and one no route reaches.

mod common;

use common::*;

const NS: &str = "automon-alerts";

/// The bodies a Recorder got that carry a test alert for `receiver`.
fn test_alerts_for(r: &Recorder, receiver: &str) -> usize {
    r.requests()
        .iter()
        .filter(|(_, body)| {
            body["alerts"].as_array().into_iter().flatten().any(|a| {
                a["labels"]["automon_test_receiver"] == receiver
                    && a["labels"]["alertname"] == "AutomonTestAlert"
            })
        })
        .count()
}

/// The plugin run with `args`, its output shown as a user would see it (for docs/commands.md).
fn said(args: &[&str]) -> Run {
    let out = run(automon_admin().args(args));
    eprintln!(
        "$ kubectl automon {}\n{}{}",
        args.join(" "),
        out.stdout,
        out.stderr
    );
    out
}

fn line_of<'a>(stdout: &'a str, receiver: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(receiver))
        .unwrap_or_else(|| panic!("no line for {receiver}:\n{stdout}"))
}

#[test]
fn test_alert_reports_each_receiver_and_silence_silences_a_node() {
    let _cleanup = Cleanup::fresh(NS);
    ensure_operator();
    let team = Recorder::start(200);
    let refused = Recorder::start(500);
    let badcred = Recorder::start(401);
    let unrouted = Recorder::start(200);
    let receivers = format!(
        "alertmanager.receivers=[{{name: team, webhook: {{url: '{}'}}}}, {{name: refused, webhook: {{url: '{}'}}}}, {{name: badcred, webhook: {{url: '{}'}}}}, {{name: unrouted, webhook: {{url: '{}'}}}}]",
        team.url("/team"),
        refused.url("/refused"),
        badcred.url("/badcred?token=wrong"),
        unrouted.url("/unrouted"),
    );
    enable(
        NS,
        &[
            "--set",
            &receivers,
            "--set",
            "alertmanager.route.receiver=team",
            // A real alert for every node from the real node_exporter's memory figures, kept
            // away from the receivers (their counters are test-alert's outcome).
            "--set",
            "alerts.highMemory.thresholdPercent=1",
            "--set",
            "alerts.highMemory.for=0m",
            "--set",
            "alertmanager.route.overrides=[{match: {alertname: HighMemoryUsage}, receiver: ui-only}]",
            "--wait",
            "--timeout",
            "3m",
        ],
    )
    .success();
    let _served = serve_stack_alertmanager(NS);

    // Where a critical node alert goes: team only; the others are no route's.
    let out = said(&["test-alert", "-n", NS]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        line_of(&out.stdout, "team").contains("delivered"),
        "{}",
        out.stdout
    );
    for r in ["refused", "badcred", "unrouted"] {
        assert!(
            line_of(&out.stdout, r).contains("not routed"),
            "{}",
            out.stdout
        );
    }
    assert_eq!(test_alerts_for(&team, "team"), 1, "{:?}", team.requests());
    assert_eq!(test_alerts_for(&refused, "refused"), 0);
    assert_eq!(test_alerts_for(&unrouted, "unrouted"), 0);

    // A receiver that answers 500, and one that refuses the credential (401, not retried):
    // failed, with Alertmanager's reason.
    for (receiver, recorder, words) in [
        ("refused", &refused, &["serverError"][..]),
        ("badcred", &badcred, &["authError", "credential"][..]),
    ] {
        let out = said(&["test-alert", "-n", NS, "--receiver", receiver]);
        assert_eq!(out.code, 11, "{out:#?}");
        let line = line_of(&out.stdout, receiver);
        assert!(line.contains("failed"), "{line}");
        for w in words {
            assert!(line.contains(w), "{w}: {line}");
        }
        assert!(test_alerts_for(recorder, receiver) >= 1);
    }

    // No route reaches it, yet --receiver does.
    let out = said(&[
        "test-alert",
        "-n",
        NS,
        "--receiver",
        "unrouted",
        "-o",
        "json",
    ]);
    assert_eq!(out.code, 0, "{out:#?}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v[0]["result"], "delivered");
    assert_eq!(test_alerts_for(&unrouted, "unrouted"), 1);

    // A receiver the configuration does not have.
    let out = said(&["test-alert", "-n", NS, "--receiver", "nobody"]);
    assert_eq!(out.code, EXIT_USAGE, "{out:#?}");
    assert!(
        out.stderr.contains("no receiver \"nobody\""),
        "{}",
        out.stderr
    );

    // silence: a node whose alert fires, listed, set apart by status, refused for a node
    // that is not there, expired.
    let alerts_of = |st: &serde_json::Value, list: &str| -> Vec<String> {
        st["prometheus"][list]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["name"] == "HighMemoryUsage")
            .filter_map(|a| a["node"].as_str().map(str::to_string))
            .collect()
    };
    let firing = until("HighMemoryUsage firing for a node", || {
        let (out, st) = status_json(NS, &[]);
        let nodes = alerts_of(&st, "firing");
        match nodes.is_empty() {
            true => Err(format!("{out:#?}")),
            false => Ok(nodes),
        }
    });
    let node = firing[0].clone();
    let out = said(&[
        "silence",
        &node,
        "-n",
        NS,
        "--for",
        "1h",
        "--comment",
        "kernel upgrade",
    ]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.stdout
            .starts_with(&format!("Silenced  alerts of node {node} until ")),
        "{}",
        out.stdout
    );
    let out = said(&["silence", "--list", "-n", NS]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(out.stdout.starts_with("ID "), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("node=\"{node}\"")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("kernel upgrade"), "{}", out.stdout);
    assert!(
        out.stdout.contains("admin") || out.stdout.contains("kubectl-automon"),
        "{}",
        out.stdout
    );

    // status: that node's alert is silenced, apart from the ones still firing.
    let st = until("status to set the silenced alert apart", || {
        let (out, st) = status_json(NS, &[]);
        match alerts_of(&st, "silenced") == [node.clone()] {
            true => Ok(st),
            false => Err(format!("{out:#?}")),
        }
    });
    assert!(!alerts_of(&st, "firing").contains(&node), "{st:#}");
    let table = said(&["status", "-n", NS]);
    assert!(table.stdout.contains(" silenced · "), "{}", table.stdout);
    let silenced = table.stdout.split("SILENCED").nth(1).unwrap_or_default();
    assert!(
        silenced
            .lines()
            .any(|l| l.starts_with("HighMemoryUsage") && l.contains(&node)),
        "{}",
        table.stdout
    );

    let out = said(&["silence", "no-such-node", "-n", NS]);
    assert_eq!(out.code, EXIT_USAGE, "{out:#?}");
    assert!(
        out.stderr.contains("node \"no-such-node\" not found")
            && out.stderr.contains("kubectl get nodes"),
        "{}",
        out.stderr
    );

    let out = said(&["silence", "--expire", &node, "-n", NS]);
    assert_eq!(out.code, 0, "{out:#?}");
    let out = said(&["silence", "--list", "-n", NS, "-o", "json"]);
    assert_eq!(out.stdout.trim(), "[]", "{out:#?}");
    // Expired, the node's alert fires again.
    until("the node's alert firing again", || {
        let (out, st) = status_json(NS, &[]);
        match alerts_of(&st, "firing").contains(&node) && alerts_of(&st, "silenced").is_empty() {
            true => Ok(()),
            false => Err(format!("{out:#?}")),
        }
    });
}
