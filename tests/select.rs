//! `prometheus.select`: the stack's Prometheus selects the monitors a team labelled for another
//! stack (`release: kps`) in the namespaces named, automon's own with them, and not those it
//! excludes; proved by the configuration the real operator generates for it.

mod common;

use common::*;

const NS: &str = "automon-select";
const TEAM: &str = "automon-select-team";

fn monitor(name: &str, labels: &str) -> String {
    format!(
        r#"apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {{name: {name}, namespace: {TEAM}, labels: {labels}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  endpoints: [{{port: metrics}}]
"#
    )
}

#[test]
fn the_users_labelled_monitors_in_named_namespaces_are_selected_with_automons_own() {
    let _ns = Cleanup::fresh(NS);
    let _team = Cleanup::created(TEAM);
    apply(
        &[
            monitor("theirs", "{release: kps}"),
            monitor(
                "excluded",
                "{release: kps, app.kubernetes.io/instance: kps}",
            ),
            monitor("unlabelled", "{team: a}"),
        ]
        .join("---\n"),
    );
    ensure_operator();
    let namespaces = format!("prometheus.select.namespaces=[{TEAM}]");
    let sets = [
        "--set",
        "prometheus.select.labels={release: kps}",
        "--set",
        "prometheus.select.exclude={app.kubernetes.io/instance: kps}",
        "--set",
        &namespaces,
    ];
    enable(NS, &sets).success();
    // The operator writes the configuration as it reconciles each one: both, in time.
    operator_config(NS, "automon", &format!("serviceMonitor/{TEAM}/theirs/0"));
    let config = operator_config(
        NS,
        "automon",
        &format!("serviceMonitor/{NS}/kube-state-metrics/0"),
    );
    let pools = scrape_pools(&config);
    assert!(
        pools.contains(&format!("serviceMonitor/{TEAM}/theirs/0")),
        "{pools:?}"
    );
    for not in ["excluded", "unlabelled"] {
        assert!(
            !pools.iter().any(|p| p.contains(&format!("/{TEAM}/{not}/"))),
            "{not}: {pools:?}"
        );
    }
    let diff = run(automon_admin()
        .args(["diff", "-n", NS])
        .args(sets)
        .args(port_for(NS)))
    .success();
    assert_eq!(diff.stdout, "", "{diff:#?}");
}
