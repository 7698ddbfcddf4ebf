//! `status` and `doctor` across kubeconfig contexts, as a user with several clusters runs them:
//! one kubeconfig whose contexts are the local cluster with a stack of the test's own, the same
//! cluster with a token it refuses, a stopped cluster (a loopback port nobody listens on) and a
//! silent one (a loopback port that accepts and never answers). One row each, with the verdict
//! single-cluster status gives or the reason it could not ask; the exit status is the worst;
//! the silent cluster's timeout leaves every other row as it would be alone.

mod common;

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    sync::OnceLock,
};

use serde_json::Value;

use common::*;

/// The namespace of the test's stack.
const NS: &str = "ctx-stack";
/// A namespace with no stack (never created: nothing is there).
const EMPTY: &str = "ctx-empty";
const TIMEOUT: &str = "3s";

/// The stack, enabled once for the tests of this binary and removed when it exits.
fn stack() -> &'static str {
    static SLOT: OnceLock<&'static str> = OnceLock::new();
    SLOT.get_or_init(|| {
        Cleanup::until_exit(NS);
        enable(NS, &[]).success();
        NS
    })
}

/// A loopback port that accepts connections and never answers (held for the binary's life).
fn silent_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming().flatten() {
                held.push(conn);
            }
        });
        port
    })
}

/// The kubeconfig of four contexts (sorted as `--all-contexts` asks them): `a-healthy` (the
/// local cluster, admin), `b-refused` (the same with a token it does not know), `c-stopped`
/// (https://127.0.0.1:1) and `d-silent` ([`silent_port`]).
fn kubeconfig() -> &'static Path {
    static FILE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &FILE
        .get_or_init(|| {
            let c = cluster();
            let text = c.kubeconfig_text();
            let ca = yaml_value(&text, "certificate-authority-data");
            let token = c.admin_token();
            let server = &c.server;
            let port = silent_port();
            write_temp(
                "kubeconfig",
                &format!(
                    "apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {{server: \"{server}\", certificate-authority-data: \"{ca}\"}}
- name: stopped
  cluster: {{server: \"https://127.0.0.1:1\", certificate-authority-data: \"{ca}\"}}
- name: silent
  cluster: {{server: \"https://127.0.0.1:{port}\", certificate-authority-data: \"{ca}\"}}
users:
- name: admin
  user: {{token: \"{token}\"}}
- name: bogus
  user: {{token: \"not-a-token-the-cluster-knows\"}}
contexts:
- {{name: d-silent, context: {{cluster: silent, user: admin}}}}
- {{name: c-stopped, context: {{cluster: stopped, user: admin}}}}
- {{name: b-refused, context: {{cluster: local, user: bogus}}}}
- {{name: a-healthy, context: {{cluster: local, user: admin}}}}
current-context: a-healthy
"
                ),
            )
        })
        .1
}

/// The binary with [`kubeconfig`] as KUBECONFIG, and `args`.
fn across(args: &[&str]) -> Run {
    run(automon()
        .env("KUBECONFIG", kubeconfig())
        .args(["--request-timeout", TIMEOUT])
        .args(args))
}

fn json(out: &Run) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:#?}"))
}

/// The table row whose first column is `context`.
#[track_caller]
fn row<'a>(text: &'a str, context: &str) -> &'a str {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(context))
        .unwrap_or_else(|| panic!("no row {context}:\n{text}"))
}

/// What single-cluster status's health says in the table's VERDICT column.
fn verdict_word(health: &str) -> &'static str {
    match health {
        "Healthy" => "Healthy",
        "Degraded" => "Degraded: ",
        "Unverified" => "Unverified: ",
        "NotInstalled" => "Not installed",
        h => panic!("no such health {h}"),
    }
}

#[test]
fn status_asks_every_context_at_once_one_row_each_and_exits_with_the_worst() {
    let ns = stack();
    // The healthy context's row is what `status` says of that cluster alone, asked at the same
    // moment (the operator and other tests' nodes may change it between two looks).
    let (list, table, alone) = until("the row of a-healthy agrees with status alone", || {
        let list = across(&["status", "--all-contexts", "-n", ns, "-o", "json"]);
        let table = across(&["status", "--all-contexts", "-n", ns]);
        let alone = run(automon_admin().args(["status", "-n", ns, "-o", "json"]));
        let (l, a) = (json(&list), json(&alone));
        let health = &l["items"][0]["status"]["health"];
        let row_agrees = row(&table.stdout, "a-healthy")
            .contains(verdict_word(a["health"].as_str().unwrap_or_default()));
        if *health == a["health"] && row_agrees && list.code == table.code {
            Ok((list, table, alone))
        } else {
            Err(format!("{list:#?}\n{table:#?}\n{alone:#?}"))
        }
    });
    let (l, a) = (json(&list), json(&alone));

    // One row each, in the order `kubectl config get-contexts` lists them; the silent cluster's
    // timeout cut no other context short: each row says what that cluster says.
    let contexts: Vec<&str> = table
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        contexts,
        ["a-healthy", "b-refused", "c-stopped", "d-silent"],
        "{table:#?}"
    );
    let headers: Vec<&str> = table
        .stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        headers,
        [
            "CONTEXT",
            "SERVER",
            "VERSION",
            "STACK",
            "NODES",
            "COMPONENTS",
            "ALERTS",
            "VERDICT"
        ]
    );
    let healthy = row(&table.stdout, "a-healthy");
    let nodes = format!("{}/{}", a["summary"]["monitored"], a["summary"]["nodes"]);
    assert!(healthy.contains(&nodes), "{healthy} lacks {nodes}");
    assert!(
        healthy.contains(&format!("v{}", env!("CARGO_PKG_VERSION"))),
        "the stack's version: {healthy}"
    );
    assert!(
        row(&table.stdout, "b-refused").contains("Unauthorized: ")
            && row(&table.stdout, "b-refused")
                .contains("rejected the credentials of user \"bogus\" (401)"),
        "{table:#?}"
    );
    assert!(
        row(&table.stdout, "c-stopped")
            .contains("Unreachable: https://127.0.0.1:1: connection refused"),
        "{table:#?}"
    );
    let silent = format!(
        "Unreachable: the API server at https://127.0.0.1:{} did not answer within {TIMEOUT} (--request-timeout)",
        silent_port()
    );
    assert!(
        row(&table.stdout, "d-silent").contains(&silent),
        "{table:#?}"
    );

    // The worst: credentials refused (5) over unreachable (4) over any verdict of a stack.
    assert_eq!(table.code, EXIT_UNAUTHORIZED, "{table:#?}");
    assert_eq!(list.code, EXIT_UNAUTHORIZED);

    // -o json: the same facts, a list of one object per context.
    assert_eq!(l["kind"], "StatusList");
    assert_eq!(l["exitCode"], EXIT_UNAUTHORIZED);
    let items = l["items"].as_array().unwrap();
    let names: Vec<&str> = items
        .iter()
        .map(|i| i["context"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a-healthy", "b-refused", "c-stopped", "d-silent"]);
    let first = &items[0];
    assert_eq!(first["server"], cluster().server.as_str());
    assert!(
        first["serverVersion"].as_str().unwrap().starts_with("v1."),
        "{first}"
    );
    assert_eq!(first["status"]["namespace"], ns);
    assert_eq!(first["status"]["summary"], a["summary"]);
    assert_eq!(
        first["status"]["components"].as_array().map(Vec::len),
        a["components"].as_array().map(Vec::len)
    );
    let alone_code = match a["health"].as_str().unwrap() {
        "Healthy" => 0,
        "Degraded" => 8,
        "Unverified" => 10,
        h => panic!("{h}"),
    };
    assert_eq!(first["exitCode"], alone_code);
    assert!(first.get("error").is_none(), "{first}");
    let errors: Vec<(&Value, &Value)> = items[1..]
        .iter()
        .map(|i| (&i["error"]["kind"], &i["exitCode"]))
        .collect();
    assert_eq!(
        errors,
        [
            (
                &Value::from("Unauthorized"),
                &Value::from(EXIT_UNAUTHORIZED)
            ),
            (&Value::from("Unreachable"), &Value::from(EXIT_UNREACHABLE)),
            (&Value::from("Unreachable"), &Value::from(EXIT_UNREACHABLE)),
        ]
    );
    for item in &items[1..] {
        assert!(item.get("status").is_none(), "{item}");
        assert!(
            !item["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&cluster().admin_token()),
            "a token printed: {item}"
        );
    }
    assert!(!table.stdout.contains(&cluster().admin_token()));
}

#[test]
fn a_context_without_the_stack_has_its_row_and_ranks_below_an_unreachable_one() {
    // -n is the stack's namespace in every context, as for one context.
    let out = across(&["status", "--contexts", "c-stopped,a-healthy", "-n", EMPTY]);
    let rows: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert!(rows[0].starts_with("c-stopped "), "{out:#?}");
    let empty = row(&out.stdout, "a-healthy");
    assert!(
        empty.ends_with(&format!("Not installed in namespace {EMPTY}")),
        "{out:#?}"
    );
    assert!(empty.contains(" none "), "STACK none: {out:#?}");
    out.code(EXIT_UNREACHABLE);
    across(&["status", "--contexts", "a-healthy", "-n", EMPTY]).code(EXIT_NOT_INSTALLED);
    // A context the kubeconfig does not define is a row of its own too.
    let out = across(&[
        "status",
        "--contexts",
        "a-healthy,nope",
        "-n",
        EMPTY,
        "-o",
        "yaml",
    ]);
    out.code(EXIT_KUBECONFIG)
        .stdout_has("kind: StatusList")
        .stdout_has("context: nope")
        .stdout_has("kind: Kubeconfig")
        .stdout_has("health: NotInstalled");
}

#[test]
fn wide_puts_each_clusters_detail_under_its_heading_naming_its_context() {
    let ns = stack();
    let out = across(&[
        "status",
        "--contexts",
        "a-healthy,c-stopped",
        "-n",
        ns,
        "-o",
        "wide",
    ]);
    let heading = format!("\nContext   a-healthy ({}, v1.", cluster().server);
    let detail = out
        .stdout
        .split(&heading)
        .nth(1)
        .unwrap_or_else(|| panic!("no heading {heading:?}:\n{out:#?}"));
    let detail = detail.split("\nContext   c-stopped").next().unwrap();
    assert!(detail.contains("\nCOMPONENT "), "{out:#?}");
    assert!(detail.contains("\nNODE "), "{out:#?}");
    // Every command it prints (the verdict's doctor, a fix) is for that context.
    for (i, _) in detail.match_indices("kubectl automon ") {
        assert!(
            detail[i..].starts_with("kubectl automon --context a-healthy "),
            "{}",
            &detail[i..]
        );
    }
    assert_has(
        &out.stdout,
        "\nContext   c-stopped (https://127.0.0.1:1)\nerror: cannot reach the API server at https://127.0.0.1:1: connection refused",
    );
    out.code(EXIT_UNREACHABLE);
}

#[test]
fn doctor_groups_each_contexts_failing_checks_and_its_fixes_name_the_context() {
    let ns = stack();
    let c = cluster();
    let (grouped, alone) = until("doctor across contexts agrees with doctor alone", || {
        let alone = run(automon_admin().args(["doctor", "-n", ns, "-o", "json"]));
        let grouped = run(automon().arg("--kubeconfig").arg(kubeconfig()).args([
            "doctor",
            "--contexts",
            "a-healthy,c-stopped,b-refused",
            "-n",
            ns,
        ]));
        let again = run(automon_admin().args(["doctor", "-n", ns, "-o", "json"]));
        if alone.stdout == again.stdout {
            Ok((grouped, alone))
        } else {
            Err(format!("{alone:#?}\n{again:#?}"))
        }
    });
    let report = json(&alone);
    let text = &grouped.stdout;
    let sections: Vec<&str> = text.split("\n\n").collect();
    assert_eq!(sections.len(), 3, "{grouped:#?}");
    assert!(
        sections[0].starts_with(&format!("Context   a-healthy ({}, v1.", c.server)),
        "{grouped:#?}"
    );
    // Its failures and warnings, each with its fix for that context; the checks that passed
    // counted, not listed.
    for check in report["checks"].as_array().unwrap() {
        let message = check["message"].as_str().unwrap();
        match check["level"].as_str().unwrap() {
            "ok" => assert_lacks(sections[0], &format!("✓ {message}\n")),
            _ => {
                assert_has(sections[0], message.split("kubectl ").next().unwrap());
                if let Some(fix) = check["fix"].as_str() {
                    let mut named =
                        fix.replace("kubectl automon ", "kubectl automon --context a-healthy ");
                    for verb in [
                        "label", "create", "delete", "patch", "get", "describe", "apply",
                    ] {
                        named = named.replace(
                            &format!("kubectl {verb} "),
                            &format!("kubectl --context a-healthy {verb} "),
                        );
                    }
                    assert_has(sections[0], &format!("    fix: {named}"));
                }
            }
        }
    }
    for (i, _) in sections[0].match_indices("kubectl automon ") {
        assert!(
            sections[0][i..].starts_with("kubectl automon --context a-healthy "),
            "{}",
            &sections[0][i..]
        );
    }
    assert_eq!(
        sections[1],
        "Context   c-stopped (https://127.0.0.1:1)\n✗ Unreachable: https://127.0.0.1:1: connection refused (is the cluster running, and is the server address in the kubeconfig right?)"
    );
    assert!(
        sections[2].starts_with(&format!(
            "Context   b-refused ({})\n✗ Unauthorized: ",
            c.server
        )),
        "{grouped:#?}"
    );
    assert_eq!(grouped.code, EXIT_UNAUTHORIZED, "{grouped:#?}");
    // -o json: a list; the healthy context's report is the one doctor alone gives.
    let list = run(automon().arg("--kubeconfig").arg(kubeconfig()).args([
        "doctor",
        "--contexts",
        "a-healthy,c-stopped",
        "-n",
        ns,
        "-o",
        "json",
    ]));
    let l = json(&list);
    assert_eq!(l["kind"], "DoctorList");
    assert_eq!(l["items"][0]["doctor"]["namespace"], ns);
    assert_eq!(
        l["items"][0]["doctor"]["checks"].as_array().map(Vec::len),
        report["checks"].as_array().map(Vec::len)
    );
    assert_eq!(l["items"][1]["error"]["kind"], "Unreachable");
    list.code(EXIT_UNREACHABLE);
}
