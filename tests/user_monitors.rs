//! The user's own monitoring: `status` counts the ServiceMonitors, PodMonitors and
//! PrometheusRules of theirs that the stack's Prometheus selects, and from where; `doctor` names
//! those that look meant for the stack but are left out, why, and a fix that, run as printed,
//! gets them selected (the operator then generates their scrape). And
//! `prometheus.additionalScrapeConfigs`: a missing or bad Secret key is refused before anything
//! is written, without its content; a good one ends in the configuration the operator generates,
//! which a real Prometheus loads.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

const NS: &str = "automon-yours";
const TEAM_A: &str = "automon-yours-a";
const TEAM_B: &str = "automon-yours-b";
const LABEL: &str = "automon-yours/stack";

fn object(kind: &str, ns: &str, name: &str, labels: &str) -> String {
    let spec = match kind {
        "ServiceMonitor" => "{selector: {matchLabels: {app: x}}, endpoints: [{port: metrics}]}",
        "PodMonitor" => {
            "{selector: {matchLabels: {app: x}}, podMetricsEndpoints: [{port: metrics}]}"
        }
        _ => "{groups: [{name: g, rules: [{record: 'x:up', expr: 'up'}]}]}",
    };
    format!(
        "apiVersion: monitoring.coreos.com/v1\nkind: {kind}\nmetadata: {{name: {name}, namespace: {ns}, labels: {labels}}}\nspec: {spec}\n"
    )
}

/// `doctor -n NS -o json`'s findings of the yourMonitors check.
fn your_findings() -> Vec<Value> {
    let out = run(automon_admin().args(["doctor", "-n", NS, "-o", "json"]));
    let report: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor -o json ({e}):\n{out:#?}"));
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|f| f["check"] == "yourMonitors")
        .cloned()
        .collect()
}

/// The finding whose message contains `needle`, with its fix: the command as printed, less the
/// prose after it.
#[track_caller]
fn finding<'a>(findings: &'a [Value], needle: &str) -> (&'a str, String) {
    let f = findings
        .iter()
        .find(|f| f["message"].as_str().is_some_and(|m| m.contains(needle)))
        .unwrap_or_else(|| panic!("no yourMonitors finding naming {needle}: {findings:#?}"));
    assert_eq!(f["level"], "warn", "{f:#}");
    let fix = f["fix"].as_str().expect("a fix");
    let command = fix.split(" (or ").next().unwrap().to_string();
    (f["message"].as_str().unwrap(), command)
}

/// Runs a printed command in a shell, with the cluster's kubeconfig and kubectl, and the plugin
/// under test as `kubectl automon`.
#[track_caller]
fn run_as_printed(command: &str) {
    let c = cluster();
    let plugin = Path::new(env!("CARGO_BIN_EXE_kubectl-automon"))
        .parent()
        .unwrap();
    let out = run(automon_build(Path::new("/bin/sh"))
        .args(["-c", command])
        .env("KUBECONFIG", &c.kubeconfig)
        .env(
            "PATH",
            format!(
                "{}:{}:/usr/bin:/bin",
                c.tools_bin.display(),
                plugin.display()
            ),
        ));
    assert_eq!(out.code, 0, "$ {command}\n{out:#?}");
}

#[test]
fn your_monitors_are_counted_and_those_left_out_are_explained_with_a_fix_that_works() {
    let _ns = Cleanup::fresh(NS);
    let _a = Cleanup::created(TEAM_A);
    let _b = Cleanup::created(TEAM_B);
    ensure_operator();
    let selected = format!("{{{LABEL}: {NS}}}");
    let muted = format!("{{{LABEL}: {NS}, muted: \"true\"}}");
    enable(
        NS,
        &[
            "--set",
            &format!("prometheus.select.labels={selected}"),
            "--set",
            "prometheus.select.exclude={muted: \"true\"}",
            "--set",
            &format!("prometheus.select.namespaces=[{TEAM_A}]"),
        ],
    )
    .success();
    apply(
        &[
            object("ServiceMonitor", TEAM_A, "api", &selected),
            object("ServiceMonitor", TEAM_A, "web", &selected),
            object("PodMonitor", TEAM_A, "jobs", &selected),
            object("PrometheusRule", TEAM_A, "slo", &selected),
            // Excluded; in a namespace not looked in; in the stack's namespace without the label.
            object("ServiceMonitor", TEAM_A, "quiet", &muted),
            object("ServiceMonitor", TEAM_B, "far", &selected),
            object("PrometheusRule", NS, "bare", "{team: a}"),
        ]
        .join("---\n"),
    );

    let (_, st) = status_json(NS, &[]);
    let y = &st["yourMonitors"];
    assert_eq!(y["prometheus"], format!("{NS}/automon"), "{y:#}");
    assert_eq!(
        (
            &y["serviceMonitors"],
            &y["podMonitors"],
            &y["probes"],
            &y["scrapeConfigs"],
            &y["prometheusRules"]
        ),
        (&2.into(), &1.into(), &0.into(), &0.into(), &1.into()),
        "{y:#}"
    );
    assert_eq!(y["namespaces"], serde_json::json!([TEAM_A]), "{y:#}");
    let text = run(automon_admin().args(["status", "-n", NS])).stdout;
    assert!(
        text.contains(&format!(
            "Your monitors: 2 ServiceMonitors, 1 PodMonitor, 1 PrometheusRule selected (namespace: {TEAM_A})\n"
        )),
        "{text}"
    );

    let findings = your_findings();
    let (message, namespaces_fix) = finding(&findings, &format!("servicemonitor {TEAM_B}/far"));
    assert!(message.contains("does not look in"), "{message}");
    // Other tests' monitors labelled `release` in namespaces of theirs may be named beside it.
    assert!(
        namespaces_fix.starts_with(&format!(
            "kubectl automon enable -n {NS} --set 'prometheus.select.namespaces=["
        )) && namespaces_fix.contains(&format!("{TEAM_A}, {TEAM_B}")),
        "{namespaces_fix}"
    );
    let (message, exclude_fix) = finding(&findings, ": quiet");
    assert!(
        message.contains("carries muted=true, which prometheus.select.exclude leaves out"),
        "{message}"
    );
    assert_eq!(
        exclude_fix,
        format!("kubectl label servicemonitor -n {TEAM_A} quiet muted-")
    );
    let (message, label_fix) = finding(&findings, ": bare");
    assert!(
        message.contains(&format!("lacks {LABEL}={NS}")),
        "{message}"
    );
    assert_eq!(
        label_fix,
        format!("kubectl label prometheusrule -n {NS} bare {LABEL}={NS}")
    );

    for fix in [&namespaces_fix, &exclude_fix, &label_fix] {
        run_as_printed(fix);
    }
    let findings = your_findings();
    let ours = |f: &&Value| {
        let m = f["message"].as_str().unwrap_or_default();
        [NS, TEAM_A, TEAM_B]
            .iter()
            .any(|ns| m.contains(&format!(" {ns}/")) || m.contains(&format!("namespace {ns} ")))
    };
    assert!(
        findings.iter().filter(ours).all(|f| f["level"] == "ok"),
        "{findings:#?}"
    );
    if findings.iter().all(|f| f["level"] == "ok") {
        assert_eq!(findings.len(), 1, "{findings:#?}");
    }
    let (_, st) = status_json(NS, &[]);
    let y = &st["yourMonitors"];
    assert_eq!(
        (&y["serviceMonitors"], &y["prometheusRules"]),
        (&4.into(), &2.into()),
        "{y:#}"
    );
    assert_eq!(
        y["namespaces"],
        serde_json::json!([NS, TEAM_A, TEAM_B]),
        "{y:#}"
    );
    // Selected is what the operator does with them: it generates their scrapes.
    let config = operator_config(NS, "automon", &format!("serviceMonitor/{TEAM_B}/far/0"));
    let pools = scrape_pools(&config);
    for pool in [
        format!("serviceMonitor/{TEAM_A}/quiet/0"),
        format!("serviceMonitor/{TEAM_A}/api/0"),
        format!("podMonitor/{TEAM_A}/jobs/0"),
    ] {
        assert!(pools.contains(&pool), "{pool}: {pools:?}");
    }
}

const EXTRA_NS: &str = "automon-yours-extra";
const SECRET: &str = "extra-scrapes";
/// A password in the key's content: nothing automon prints may hold it.
const MARKER: &str = "s3cret-scrape-marker";

fn secret_with(content: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scrape.yaml");
    std::fs::write(&file, content).unwrap();
    let manifest = cluster()
        .kubectl(&[
            "create",
            "secret",
            "generic",
            SECRET,
            "-n",
            EXTRA_NS,
            &format!("--from-file=scrape.yaml={}", file.display()),
            "--dry-run=client",
            "-o",
            "yaml",
        ])
        .success()
        .stdout;
    cluster()
        .kubectl_with_input(&["apply", "-f", "-"], &manifest)
        .success();
}

#[track_caller]
fn nothing_written() {
    assert!(
        !exists(&["configmap", "automon", "-n", EXTRA_NS]),
        "enable wrote its parent"
    );
    assert!(
        !exists(&["prometheus", "automon", "-n", EXTRA_NS]),
        "enable wrote the Prometheus"
    );
}

#[test]
fn additional_scrape_configs_are_checked_before_any_write_and_end_in_the_generated_configuration() {
    let set = format!("prometheus.additionalScrapeConfigs={{name: {SECRET}, key: scrape.yaml}}");
    // The API server accepts what render makes of it, strictly.
    let objects = rendered_objects(&["-n", EXTRA_NS, "--set", &set]);
    let prometheus: Vec<Value> = objects
        .into_iter()
        .filter(|o| o["kind"] == "Prometheus")
        .collect();
    assert_eq!(
        prometheus[0]["spec"]["additionalScrapeConfigs"],
        serde_json::json!({"name": SECRET, "key": "scrape.yaml"})
    );
    let _ns = Cleanup::created(EXTRA_NS);
    cluster().ensure_crds();
    cluster().accepts_strictly(&prometheus);

    // No Secret: refused, nothing written.
    let out = enable(EXTRA_NS, &["--set", &set]).code(1);
    assert!(
        out.stdout
            .contains(&format!("Secret {EXTRA_NS}/{SECRET} does not exist"))
            || out
                .stderr
                .contains(&format!("Secret {EXTRA_NS}/{SECRET} does not exist")),
        "{out:#?}"
    );
    nothing_written();

    // A job of the stack's own name: refused, the content never printed.
    secret_with(&format!(
        "- job_name: node-exporter\n  static_configs: [{{targets: ['127.0.0.1:1']}}]\n  basic_auth: {{username: u, password: {MARKER}}}\n"
    ));
    let out = enable(EXTRA_NS, &["--set", &set]).code(1);
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains("prometheus.additionalScrapeConfigs")
            && said.contains("item 0's job_name \"node-exporter\" is a job of the stack's own"),
        "{out:#?}"
    );
    assert!(!said.contains(MARKER), "{out:#?}");
    nothing_written();

    // A good one: enable goes ahead, and the operator puts the job into the configuration.
    secret_with(&format!(
        "- job_name: automon-yours-static\n  static_configs: [{{targets: ['127.0.0.1:1']}}]\n  basic_auth: {{username: u, password: {MARKER}}}\n"
    ));
    ensure_operator();
    let out = enable(EXTRA_NS, &["--set", &set]).success();
    assert!(!format!("{}{}", out.stdout, out.stderr).contains(MARKER));
    let config = operator_config(EXTRA_NS, "automon", "automon-yours-static");
    assert!(
        scrape_pools(&config).contains(&"automon-yours-static".to_string()),
        "{:?}",
        scrape_pools(&config)
    );
    // A real Prometheus loads that configuration and scrapes the job.
    let prometheus = OutsidePrometheus::start(config);
    let targets = prometheus.settled_targets();
    assert!(
        targets
            .iter()
            .any(|t| t["scrapePool"] == "automon-yours-static"),
        "{targets:#?}"
    );
    let (_, st) = status_json(EXTRA_NS, &[]);
    assert!(!st.to_string().contains(MARKER));
}
