//! The stack itself: Prometheus (targets, head, ingestion, rules, config, remote write) and
//! Alertmanager (alerts, notifications per integration, config), from their self-scrapes.

use super::{
    ALERTS_OVERVIEW_SLUG, Dashboard, DashboardLink, Kind, Panel, cluster_variable,
    datasource_variable,
};
use crate::config::Config;

pub const PROMETHEUS: &str = "prometheus";
pub const ALERTMANAGER: &str = "alertmanager";

const PROMETHEUS_JOB: &str = r#"job="prometheus", cluster=~"$cluster""#;
const ALERTMANAGER_JOB: &str = r#"job="alertmanager", cluster=~"$cluster""#;
/// Every target of the chosen cluster.
const ANY_TARGET: &str = r#"cluster=~"$cluster""#;

pub fn dashboards(config: &Config) -> Vec<Dashboard> {
    vec![prometheus(config), alertmanager(config)]
}

fn links() -> Vec<DashboardLink> {
    vec![
        DashboardLink {
            title: "Prometheus",
            slug: PROMETHEUS,
            tooltip: "Targets, series, ingestion, rules and remote write",
        },
        DashboardLink {
            title: "Alertmanager",
            slug: ALERTMANAGER,
            tooltip: "Alerts and notifications per integration",
        },
        DashboardLink {
            title: "Alerts overview",
            slug: ALERTS_OVERVIEW_SLUG,
            tooltip: "What is firing now",
        },
    ]
}

/// Per second, summed by `by`, of a counter of `job`.
fn rate(counter: &str, job: &str, by: &str) -> String {
    format!("sum by ({by}) (rate({counter}{{{job}}}[$__rate_interval]))")
}

/// A stat that counts failing things (0 is good, red from 1).
fn failing(title: &str, description: &str, expr: String) -> Panel {
    Panel::new(Kind::Stat, title, description, "none")
        .width(4)
        .query(format!("{expr} or vector(0)"), "failing")
        .red_from(1.0)
}

fn prometheus(config: &Config) -> Dashboard {
    let p = PROMETHEUS_JOB;
    let panels = vec![
        Panel::new(Kind::Stat, "Targets up", "Scrape targets whose last scrape succeeded.", "none")
            .width(4)
            .query(format!("count(up{{{ANY_TARGET}}} == 1) or vector(0)"), "up"),
        failing("Targets down", "Scrape targets whose last scrape failed.", format!("count(up{{{ANY_TARGET}}} == 0)")),
        Panel::new(Kind::Stat, "Head series", "Series in the in-memory head block of all Prometheus servers: what memory follows.", "short")
            .width(4)
            .query(format!("sum(prometheus_tsdb_head_series{{{p}}})"), "series"),
        Panel::new(Kind::Stat, "Samples ingested", "Samples appended per second, all Prometheus servers.", "short")
            .width(4)
            .query(format!("sum({})", rate("prometheus_tsdb_head_samples_appended_total", p, "")), "samples"),
        failing("Config reloads failing", "Prometheus servers whose last configuration reload failed: they run the previous one.", format!("count(prometheus_config_last_reload_successful{{{p}}} == 0)")),
        failing("Rule failures", "Rule evaluations failing per second.", format!("sum({}) > 0", rate("prometheus_rule_evaluation_failures_total", p, ""))),
        Panel::new(Kind::TimeSeries, "Targets up by job", "Scrape targets up per job.", "none")
            .query(format!("count by (job) (up{{{ANY_TARGET}}} == 1)"), "{{job}}"),
        Panel::new(Kind::TimeSeries, "Targets down by job", "Scrape targets down per job: these jobs' metrics are missing.", "none")
            .query(format!("count by (job) (up{{{ANY_TARGET}}} == 0) or count by (job) (up{{{ANY_TARGET}}}) * 0"), "{{job}}"),
        Panel::new(Kind::TimeSeries, "Head series per Prometheus", "Series in each Prometheus' head block.", "short")
            .query(format!("sum by (pod) (prometheus_tsdb_head_series{{{p}}})"), "{{pod}}"),
        Panel::new(Kind::TimeSeries, "Ingestion rate per Prometheus", "Samples each Prometheus appends per second.", "short")
            .query(rate("prometheus_tsdb_head_samples_appended_total", p, "pod"), "{{pod}}"),
        Panel::new(Kind::TimeSeries, "Rule group evaluation duration", "How long each rule group's last evaluation took; past its interval, evaluations are skipped.", "s")
            .query(format!("max by (rule_group) (prometheus_rule_group_last_duration_seconds{{{p}}})"), "{{rule_group}}"),
        Panel::new(Kind::TimeSeries, "Rule evaluation failures", "Failing rule evaluations per second, by rule group, and missed group iterations.", "ops")
            .query(rate("prometheus_rule_evaluation_failures_total", p, "rule_group"), "{{rule_group}} failed")
            .query(rate("prometheus_rule_group_iterations_missed_total", p, "rule_group"), "{{rule_group}} missed"),
        Panel::new(Kind::TimeSeries, "Config reload", "1 when the last configuration reload succeeded, per Prometheus.", "none")
            .query(format!("max by (pod) (prometheus_config_last_reload_successful{{{p}}})"), "{{pod}}"),
        Panel::new(Kind::TimeSeries, "Memory", "Resident memory of each Prometheus.", "bytes")
            .query(format!("sum by (pod) (process_resident_memory_bytes{{{p}}})"), "{{pod}}"),
        Panel::new(Kind::TimeSeries, "Remote write sent", "Samples sent per second to each remote-write endpoint (none without remote write).", "short")
            .query(rate("prometheus_remote_storage_samples_total", p, "pod, remote_name"), "{{pod}} {{remote_name}}"),
        Panel::new(Kind::TimeSeries, "Remote write failed and pending", "Samples failing per second, and samples waiting to be sent, per remote-write endpoint.", "short")
            .query(rate("prometheus_remote_storage_samples_failed_total", p, "pod, remote_name"), "{{pod}} {{remote_name}} failed")
            .query(format!("sum by (pod, remote_name) (prometheus_remote_storage_samples_pending{{{p}}})"), "{{pod}} {{remote_name}} pending"),
    ];
    Dashboard {
        slug: PROMETHEUS,
        title: "Prometheus",
        description: "Prometheus' own health: targets, head series, ingestion, rule evaluation, configuration reloads and remote write.",
        variables: vec![datasource_variable(), cluster_variable(config)],
        panels,
        links: links(),
    }
}

fn alertmanager(config: &Config) -> Dashboard {
    let a = ALERTMANAGER_JOB;
    let panels = vec![
        Panel::new(Kind::Stat, "Alertmanagers up", "Alertmanager instances Prometheus scrapes successfully.", "none")
            .width(4)
            .query(format!("count(up{{{a}}} == 1) or vector(0)"), "up"),
        Panel::new(Kind::Stat, "Active alerts", "Alerts Alertmanager holds and routes now (the Watchdog among them).", "none")
            .width(4)
            .query(format!(r#"max(alertmanager_alerts{{{a}, state="active"}})"#), "active"),
        Panel::new(Kind::Stat, "Suppressed alerts", "Alerts silenced or inhibited now.", "none")
            .width(4)
            .query(format!(r#"max(alertmanager_alerts{{{a}, state="suppressed"}})"#), "suppressed"),
        failing("Notifications failing", "Notifications failing per second, all integrations.", format!("sum({}) > 0", rate("alertmanager_notifications_failed_total", a, ""))),
        failing("Config reloads failing", "Alertmanagers whose last configuration reload failed: they run the previous one.", format!("count(alertmanager_config_last_reload_successful{{{a}}} == 0)")),
        // The operator turns gossip off for a single replica: no cluster, no members metric;
        // that instance is a cluster of one.
        Panel::new(Kind::Stat, "Cluster members", "Alertmanagers each instance sees in its gossip cluster; fewer than the replicas means duplicate notifications. A single replica runs no cluster: 1.", "none")
            .width(4)
            .query(format!("min(alertmanager_cluster_members{{{a}}}) or min(alertmanager_build_info{{{a}}})"), "members"),
        Panel::new(Kind::TimeSeries, "Alerts by state", "Alerts Alertmanager holds, by state.", "none")
            .query(format!("max by (state) (alertmanager_alerts{{{a}}})"), "{{state}}"),
        Panel::new(Kind::TimeSeries, "Alerts received", "Alerts Prometheus sends per second, firing and resolved.", "ops")
            .query(rate("alertmanager_alerts_received_total", a, "status"), "{{status}}"),
        Panel::new(Kind::TimeSeries, "Notifications sent by integration", "Notifications attempted per second, per integration (email, slack, webhook, ...).", "ops")
            .query(rate("alertmanager_notifications_total", a, "integration"), "{{integration}}"),
        Panel::new(Kind::TimeSeries, "Notifications failed by integration", "Notifications failing per second, per integration: these alerts reach no one.", "ops")
            .query(rate("alertmanager_notifications_failed_total", a, "integration"), "{{integration}}"),
        Panel::new(Kind::TimeSeries, "Notification latency p99", "99th percentile of the time a notification takes to send, per integration.", "s")
            .query(format!("histogram_quantile(0.99, {})", rate("alertmanager_notification_latency_seconds_bucket", a, "le, integration")), "{{integration}}"),
        Panel::new(Kind::TimeSeries, "Config reload", "1 when the last configuration reload succeeded, per Alertmanager.", "none")
            .query(format!("max by (pod) (alertmanager_config_last_reload_successful{{{a}}})"), "{{pod}}"),
    ];
    Dashboard {
        slug: ALERTMANAGER,
        title: "Alertmanager",
        description: "Alertmanager's own health: alerts, notifications sent and failed per integration, configuration reloads.",
        variables: vec![datasource_variable(), cluster_variable(config)],
        panels,
        links: links(),
    }
}
