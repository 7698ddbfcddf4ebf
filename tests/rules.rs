//! The alert rules, proved by the real tools: the rule file `kubectl-automon render` puts in its
//! PrometheusRules passes `promtool check rules`; the unit tests in `tests/rules/` show every
//! alert firing and not firing, with the thresholds the configuration sets; the objects pass the
//! real CRD's schema; and a real Prometheus evaluates them against a real node-exporter. The
//! rules of a cluster with Windows and GPU nodes get the same promtool checks, with their own
//! unit tests in `tests/rules/classes/`.

mod common;

use std::{
    collections::BTreeMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use common::{
    Run, built_tool, cluster, free_port, http_get, node_class_objects, prometheus_query,
    promtool_with, rendered_objects, repo_root, rule_file, rule_groups, set_args,
    spawn_node_exporter, spawn_prometheus, write_list,
};
use serde_json::{Value, json};

/// The Prometheus rule file held by the rendered PrometheusRules, for these `--set`s.
fn rendered_rule_file(sets: &[&str]) -> String {
    rule_file(rendered_groups(sets))
}

/// The rule groups of a cluster with every node class: `render`'s, with those the classes
/// change replaced and the classes' own added (from their reviewed snapshots, see
/// `node_class_objects`).
fn class_groups() -> Vec<Value> {
    let mut groups = rendered_groups(&[]);
    for changed in rule_groups(&node_class_objects()) {
        match groups.iter_mut().find(|g| g["name"] == changed["name"]) {
            Some(g) => *g = changed,
            None => groups.push(changed),
        }
    }
    groups
}

/// The alerts of these groups by name, each with its rule.
fn alerts(groups: &[Value]) -> BTreeMap<String, Value> {
    groups
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| Some((r["alert"].as_str()?.to_string(), r)))
        .collect()
}

/// The rule groups of the rendered PrometheusRules, for these `--set`s.
fn rendered_groups(sets: &[&str]) -> Vec<Value> {
    let groups = rule_groups(&rendered_objects(&set_args(sets)));
    assert!(!groups.is_empty(), "no PrometheusRule rendered");
    groups
}

/// `promtool <args>` in a fresh directory holding `rules.yaml` and copies of `test_files`,
/// which refer to the rule file by that relative name.
fn promtool_with_rules(rules: &str, test_files: &[PathBuf], args: &[&str]) -> Run {
    let tests: Vec<(String, String)> = test_files
        .iter()
        .map(|f| {
            let name = f.file_name().unwrap().to_str().unwrap().to_string();
            (name, std::fs::read_to_string(f).unwrap())
        })
        .collect();
    let mut files = vec![("rules.yaml", rules)];
    files.extend(
        tests
            .iter()
            .map(|(name, text)| (name.as_str(), text.as_str())),
    );
    let names = tests.iter().map(|(name, _)| name.as_str());
    promtool_with(&files, &[args.to_vec(), names.collect()].concat())
}

/// The promtool unit-test files in a directory, sorted.
fn test_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no test files in {dir}");
    files
}

const DEFAULT_TESTS: &str = "tests/rules";
const OVERRIDE_TESTS: &str = "tests/rules/overrides";
/// Unit tests of the rules node classes add or change, against [`class_groups`].
const CLASS_TESTS: &str = "tests/rules/classes";
/// What the files in tests/rules/overrides were written for.
const OVERRIDES: &[&str] = &[
    "alerts.highCpu.thresholdPercent=95",
    "alerts.watchdog.enabled=false",
];
/// Unit tests of the alerts only a remote-write endpoint brings, against the rules rendered
/// with [`REMOTE_WRITE`].
const REMOTE_WRITE_TESTS: &str = "tests/rules/remote-write";
const REMOTE_WRITE: &[&str] = &[
    "prometheus.externalLabels={cluster: test}",
    "prometheus.remoteWrite=[{url: \"https://store.example.com/api/v1/write\"}]",
];

#[test]
fn rendered_rules_pass_promtool_check() {
    for sets in [&[][..], OVERRIDES, REMOTE_WRITE] {
        let rules = rendered_rule_file(sets);
        let out = promtool_with_rules(&rules, &[], &["check", "rules", "rules.yaml"]).success();
        assert!(out.stdout.contains("SUCCESS"), "{out:#?}");
    }
}

#[test]
fn default_rules_pass_their_unit_tests() {
    let rules = rendered_rule_file(&[]);
    let files = test_files(DEFAULT_TESTS);
    promtool_with_rules(&rules, &files, &["test", "rules"]).success();
}

#[test]
fn thresholds_from_config_change_what_fires() {
    // With the overrides, the 90% busy node is quiet and the Watchdog gone...
    let files = test_files(OVERRIDE_TESTS);
    promtool_with_rules(&rendered_rule_file(OVERRIDES), &files, &["test", "rules"]).success();
    // ...while the default rules fail the very same tests: the 90% node fires at 80%.
    let out = promtool_with_rules(&rendered_rule_file(&[]), &files, &["test", "rules"]);
    assert_ne!(out.code, 0, "{out:#?}");
    let failures = format!("{}{}", out.stdout, out.stderr);
    assert!(
        failures.contains(r#"alertname="HighCPUUsage", node="n1""#),
        "{failures}"
    );
    assert!(failures.contains("alertname: Watchdog"), "{failures}");
}

/// alert -> (fires in some case, is quiet in some case), over these promtool test files.
fn fire_and_quiet_cases(files: &[PathBuf]) -> BTreeMap<String, (bool, bool)> {
    let mut cases: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        let doc: Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(doc["rule_files"], json!(["rules.yaml"]), "{file:?}");
        for test in doc["tests"].as_array().unwrap() {
            for case in test["alert_rule_test"].as_array().unwrap() {
                let name = case["alertname"].as_str().unwrap().to_string();
                let fires = case["exp_alerts"].as_array().is_some_and(|a| !a.is_empty());
                let entry = cases.entry(name).or_default();
                if fires {
                    entry.0 = true;
                } else {
                    entry.1 = true;
                }
            }
        }
    }
    cases
}

/// Every alert the default configuration renders has a promtool case where it fires and one
/// where it does not (for the Watchdog, which always fires, that case is with it disabled).
#[test]
fn every_alert_is_tested_firing_and_not_firing() {
    let rules: Value = serde_saphyr::from_str(&rendered_rule_file(&[])).unwrap();
    let alerts: Vec<String> = rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .filter_map(|r| r["alert"].as_str().map(str::to_string))
        .collect();
    assert_eq!(alerts.len(), 55, "{alerts:?}");

    let cases =
        fire_and_quiet_cases(&[test_files(DEFAULT_TESTS), test_files(OVERRIDE_TESTS)].concat());
    for alert in &alerts {
        assert_eq!(
            cases.get(alert),
            Some(&(true, true)),
            "{alert}: (fires, quiet) cases"
        );
    }
}

/// Every alert, of every group and node class, links the section of docs/runbooks.md that says
/// what to do about it.
#[test]
fn every_alert_has_its_runbook_in_the_docs() {
    let runbooks = std::fs::read_to_string(repo_root().join("docs/runbooks.md")).unwrap();
    let headings: Vec<&str> = runbooks
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .collect();
    let repository = env!("CARGO_PKG_REPOSITORY");
    let mut all = alerts(&class_groups());
    all.extend(alerts(&rendered_groups(REMOTE_WRITE)));
    for (name, rule) in all {
        let url = rule["annotations"]["runbook_url"].as_str();
        assert_eq!(
            url,
            Some(
                format!(
                    "{repository}/blob/main/docs/runbooks.md#{}",
                    name.to_ascii_lowercase()
                )
                .as_str()
            ),
            "{name}: runbook_url"
        );
        assert!(
            headings.contains(&name.as_str()),
            "{name}: no `### {name}` section in docs/runbooks.md"
        );
    }
}

/// The alerts a remote-write endpoint brings fire and stay quiet in the cases of
/// tests/rules/remote-write/, against the rules rendered with one; the default rules, which do
/// not have them, fail those very cases.
#[test]
fn remote_write_alerts_come_with_remote_write_and_are_tested() {
    let before = alerts(&rendered_groups(&[]));
    let after = alerts(&rendered_groups(REMOTE_WRITE));
    let added: Vec<&String> = after.keys().filter(|a| !before.contains_key(*a)).collect();
    assert_eq!(
        added,
        [
            "PrometheusRemoteStorageFailures",
            "PrometheusRemoteWriteBehind"
        ]
    );
    assert!(before.keys().all(|a| after.contains_key(a)));
    let files = test_files(REMOTE_WRITE_TESTS);
    promtool_with_rules(
        &rendered_rule_file(REMOTE_WRITE),
        &files,
        &["test", "rules"],
    )
    .success();
    let cases = fire_and_quiet_cases(&files);
    for alert in added {
        assert_eq!(
            cases.get(alert),
            Some(&(true, true)),
            "{alert}: (fires, quiet) cases"
        );
    }
    let out = promtool_with_rules(&rendered_rule_file(&[]), &files, &["test", "rules"]);
    assert_ne!(out.code, 0, "{out:#?}");
    let failures = format!("{}{}", out.stdout, out.stderr);
    assert!(
        failures.contains("alertname: PrometheusRemoteWriteBehind"),
        "{failures}"
    );
}

#[test]
fn class_rules_pass_promtool_check() {
    let out = promtool_with_rules(
        &rule_file(class_groups()),
        &[],
        &["check", "rules", "rules.yaml"],
    )
    .success();
    assert!(out.stdout.contains("SUCCESS"), "{out:#?}");
}

#[test]
fn class_rules_pass_their_unit_tests() {
    let files = test_files(CLASS_TESTS);
    promtool_with_rules(&rule_file(class_groups()), &files, &["test", "rules"]).success();
}

/// Every alert that node classes add, or whose rule they change (the coverage gap, which then
/// counts windows-exporter), fires and stays quiet in a case of tests/rules/classes/.
#[test]
fn every_class_alert_is_tested_firing_and_not_firing() {
    let before = alerts(&rendered_groups(&[]));
    let after = alerts(&class_groups());
    let new_or_changed: Vec<&String> = after
        .iter()
        .filter(|(name, rule)| before.get(*name) != Some(rule))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        new_or_changed,
        [
            "GPUExporterDown",
            "GPUTemperatureHigh",
            "GPUXidError",
            "NodeMonitoringCoverageGap",
            "WindowsDiskSpaceLow",
            "WindowsExporterDown",
            "WindowsHighCPUUsage",
            "WindowsHighMemoryUsage",
        ]
    );
    // Node classes take nothing away.
    for name in before.keys() {
        assert!(after.contains_key(name), "{name} is gone with node classes");
    }
    let cases = fire_and_quiet_cases(&test_files(CLASS_TESTS));
    for alert in new_or_changed {
        assert_eq!(
            cases.get(alert),
            Some(&(true, true)),
            "{alert}: (fires, quiet) cases"
        );
    }
}

/// The coverage-gap cases written for a cluster without Windows nodes still hold there; the
/// rule that counts windows-exporter turns their Windows node without it into a gap, which
/// is the difference the class makes.
#[test]
fn windows_nodes_are_expected_to_be_covered_only_with_the_class() {
    let coverage = repo_root().join("tests/rules/coverage.yaml");
    promtool_with_rules(
        &rendered_rule_file(&[]),
        std::slice::from_ref(&coverage),
        &["test", "rules"],
    )
    .success();
    let out = promtool_with_rules(&rule_file(class_groups()), &[coverage], &["test", "rules"]);
    assert_ne!(out.code, 0, "{out:#?}");
    let failures = format!("{}{}", out.stdout, out.stderr);
    assert!(failures.contains(r#"node="w1""#), "{failures}");
}

/// The rendered PrometheusRules are valid for the real CRD (its schema checks e.g. `for:`
/// durations): a server-side dry run against the local cluster accepts all of them, and
/// rejects a broken one, which shows the check has teeth.
#[test]
fn prometheus_rules_pass_the_crd_schema() {
    let cluster = cluster();
    // The CRD as `enable` would apply it: server-side, by the plugin's field manager.
    let crd = cluster
        .crds_dir()
        .join("prometheusrules.monitoring.coreos.com.yaml");
    cluster
        .kubectl(&[
            "apply",
            "--server-side",
            "--field-manager=kubectl-automon",
            "-f",
            crd.to_str().unwrap(),
        ])
        .success();
    cluster
        .kubectl(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/prometheusrules.monitoring.coreos.com",
        ])
        .success();

    // In `default`, which always exists, so that nothing else needs to be installed.
    let mut rules = rendered_objects(&["--set", "namespace=default"]);
    rules.retain(|o| o["kind"] == "PrometheusRule");
    let dry_run = |rules: &[Value]| {
        let (_dir, path) = write_list("rules.json", rules);
        cluster.kubectl(&[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--field-manager=kubectl-automon",
            "-f",
            path.to_str().unwrap(),
        ])
    };
    let ok = dry_run(&rules).success();
    assert_eq!(
        ok.stdout
            .matches("serverside-applied (server dry run)")
            .count(),
        9,
        "{ok:#?}"
    );

    rules[0]["spec"]["groups"][0]["rules"][0]["for"] = json!("5 minutes");
    let bad = dry_run(&rules);
    assert_ne!(bad.code, 0, "{bad:#?}");
    assert!(
        bad.stderr
            .contains("spec.groups[0].rules[0].for: Invalid value"),
        "{bad:#?}"
    );
}

/// The rules' metric names and labels are the real ones: a real Prometheus scraping a real
/// node-exporter (labelled as automon's ServiceMonitor labels it) evaluates the rendered rules,
/// with thresholds lowered so that a healthy machine crosses them, and the node alerts go
/// pending for that node, their summaries naming it. A second, dead target goes NodeDown.
#[test]
fn node_alerts_work_against_a_real_node_exporter() {
    let dir = tempfile::tempdir().unwrap();
    let (prometheus_port, dead_port) = (free_port(), free_port());
    let (_exporter, _, exporter_port) = spawn_node_exporter(dir.path());

    let rules = rendered_rule_file(&[
        "alerts.highCpu.thresholdPercent=0.0001",
        "alerts.highMemory.thresholdPercent=0.0001",
        "alerts.diskSpaceLow.thresholdPercent=100",
    ]);
    std::fs::write(dir.path().join("rules.yaml"), rules).unwrap();
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [rules.yaml]
scrape_configs:
  - job_name: node-exporter
    static_configs:
      - targets: ['127.0.0.1:{exporter_port}']
        labels: {{node: testnode}}
      - targets: ['127.0.0.1:{dead_port}']
        labels: {{node: ghost}}
"
    );
    std::fs::write(dir.path().join("prometheus.yaml"), config).unwrap();
    let (_prometheus, prometheus_log) = spawn_prometheus(
        &built_tool("prometheus", "prometheus"),
        dir.path(),
        prometheus_port,
    );

    // A real read-write disk filesystem (not so in some containers) must show DiskSpaceLow.
    let mut want = vec![
        ("HighCPUUsage", "testnode"),
        ("HighMemoryUsage", "testnode"),
        ("NodeDown", "ghost"),
    ];
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = Value::Null;
    loop {
        if want.len() == 3
            && prometheus_query(
                prometheus_port,
                r#"node_filesystem_readonly{fstype=~"ext4|xfs|btrfs"}==0"#,
            )
            .is_ok_and(|r| !r.is_empty())
        {
            want.push(("DiskSpaceLow", "testnode"));
        }
        if let Some(alerts) = http_get(prometheus_port, "/api/v1/alerts")
            .ok()
            .and_then(|b| serde_json::from_str::<Value>(&b).ok())
        {
            let have = |(name, node): &(&str, &str)| {
                alerts["data"]["alerts"].as_array().is_some_and(|a| {
                    a.iter().any(|x| {
                        x["labels"]["alertname"] == *name
                            && x["labels"]["node"] == *node
                            && x["annotations"]["summary"]
                                .as_str()
                                .is_some_and(|s| s.contains(node))
                    })
                })
            };
            if want.iter().all(have) {
                // None of them may fire for a node that does not exist.
                let nodes: Vec<&str> = alerts["data"]["alerts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|x| x["labels"]["node"].as_str())
                    .collect();
                assert!(
                    nodes.iter().all(|n| *n == "testnode" || *n == "ghost"),
                    "{nodes:?}"
                );
                eprintln!("pending as expected: {want:?}");
                return;
            }
            last = alerts;
        }
        assert!(
            Instant::now() < deadline,
            "wanted {want:?} pending; Prometheus has {last:#}\n{}",
            std::fs::read_to_string(&prometheus_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The rule groups of the rendered PrometheusRules for these `--set`s, split as sharding splits
/// them: (the shards', the ruler's), by the `automon.io/scope` label.
fn sharded_groups(sets: &[&str]) -> (Vec<Value>, Vec<Value>) {
    let (mut shard, mut ruler) = (Vec::new(), Vec::new());
    for o in &rendered_objects(&set_args(sets)) {
        if o["kind"] != "PrometheusRule" {
            continue;
        }
        let groups = o["spec"]["groups"].as_array().cloned().unwrap_or_default();
        match o["metadata"]["labels"]["automon.io/scope"].as_str() {
            Some("cluster") => ruler.extend(groups),
            None => shard.extend(groups),
            Some(other) => panic!("unknown scope {other}"),
        }
    }
    (shard, ruler)
}

const SHARDED_TESTS: &str = "tests/rules/sharded";

/// With `prometheus.shards: 3`, each shard evaluates its rules over the targets it scrapes and
/// the ruler the rules that need every target, over what it federates: promtool proves both
/// views, proves that the unsharded rule set would be wrong in a shard's view, and that the two
/// halves together still pass every default unit test.
#[test]
fn sharded_rules_are_right_in_each_shard_and_in_the_ruler() {
    let sets = ["prometheus.shards=3"];
    let (shard, ruler) = sharded_groups(&sets);
    assert!(!ruler.is_empty() && !shard.is_empty());
    let file = |name: &str| repo_root().join(SHARDED_TESTS).join(name);
    promtool_with_rules(
        &rule_file(shard.clone()),
        &[file("shard.yaml")],
        &["test", "rules"],
    )
    .success();
    promtool_with_rules(
        &rule_file(ruler.clone()),
        &[file("ruler.yaml")],
        &["test", "rules"],
    )
    .success();
    // Unsharded, the same shard views raise false alerts: the split is what makes them right.
    let out = promtool_with_rules(
        &rendered_rule_file(&[]),
        &[file("shard.yaml")],
        &["test", "rules"],
    );
    assert_ne!(out.code, 0, "{out:#?}");
    let failures = format!("{}{}", out.stdout, out.stderr);
    for wrong in [
        r#"alertname="NodeMonitoringCoverageGap", node="n2""#,
        r#"alertname="NodeMonitoringCoverageGap", node="n3""#,
        r#"alertname="KubeStateMetricsDown""#,
        r#"alertname="KubeAPIDown""#,
        r#"alertname="KubeletDown""#,
    ] {
        assert!(failures.contains(wrong), "{wrong} not in {failures}");
    }
    // Nothing is lost: the two halves are the whole rule set, and pass its unit tests. A group
    // split between them (its cross-target rules in the ruler, the rest in the shards) is one
    // group again, as a rule file may name a group only once.
    let mut both: Vec<Value> = Vec::new();
    for group in [shard, ruler].concat() {
        match both.iter_mut().find(|g| g["name"] == group["name"]) {
            Some(g) => g["rules"]
                .as_array_mut()
                .expect("rules")
                .extend(group["rules"].as_array().cloned().unwrap_or_default()),
            None => both.push(group),
        }
    }
    assert_eq!(alerts(&both).len(), alerts(&rendered_groups(&[])).len());
    let files = test_files(DEFAULT_TESTS);
    promtool_with_rules(&rule_file(both.clone()), &files, &["test", "rules"]).success();
    promtool_with_rules(&rule_file(both), &[], &["check", "rules", "rules.yaml"]).success();
}
