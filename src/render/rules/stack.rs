//! The stack's alerts about itself: Prometheus failing to reload its configuration, to evaluate
//! rules, to compact its TSDB, to reach Alertmanager or to keep up with remote write;
//! Alertmanager failing to notify or to reload; the operator failing to reconcile. Each reads
//! the stack's own job: next to a reused operator, whose Prometheus is not ours, they stay quiet.

use super::{AlertRule, PERCENT, Row, Settings::Fixed, build};
use crate::{
    config::{
        Config,
        Severity::{Critical, Warning},
    },
    render::NodeClasses,
};

const PROMETHEUS: &str = r#"job="prometheus""#;
const ALERTMANAGER: &str = r#"job="alertmanager""#;
const OPERATOR: &str = r#"job="prometheus-operator""#;

/// The Prometheus pod an alert is about.
const POD: &str = "{{ $labels.namespace }}/{{ $labels.pod }}";

/// Failure ratios, in percent, above which the stack alerts.
const NOTIFICATION_ERROR_PERCENT: u32 = 3;
const ALERTMANAGER_FAILED_PERCENT: u32 = 1;
const RECONCILE_ERROR_PERCENT: u32 = 10;
const REMOTE_WRITE_FAILED_PERCENT: u32 = 1;
/// How far, in seconds, remote write may fall behind what Prometheus has ingested.
const REMOTE_WRITE_BEHIND_SECONDS: u32 = 120;

pub(super) fn rules(config: &Config, _: NodeClasses) -> Vec<AlertRule> {
    let values = values![
        PROMETHEUS,
        ALERTMANAGER,
        OPERATOR,
        POD,
        PERCENT,
        NOTIFICATION_ERROR_PERCENT,
        ALERTMANAGER_FAILED_PERCENT,
        RECONCILE_ERROR_PERCENT,
        REMOTE_WRITE_FAILED_PERCENT,
        REMOTE_WRITE_BEHIND_SECONDS,
    ];
    // Without remote write these series do not exist: nothing to watch.
    let remote_write = if config.prometheus.remote_write.is_empty() {
        &[]
    } else {
        REMOTE_WRITE
    };
    build(ALERTS.iter().chain(remote_write), config, &values)
}

const ALERTS: &[Row] = &[
    Row {
        alert: "PrometheusBadConfig",
        expr: "max_over_time(prometheus_config_last_reload_successful{{PROMETHEUS}}[5m]) == 0",
        settings: Fixed("10m", Critical),
        summary: "Prometheus {POD} cannot load its configuration",
        description: "Prometheus {POD} has failed to reload its configuration for 10 minutes and \
            runs on the last one it loaded: new ServiceMonitors, rules and targets are not \
            picked up. Its log (`kubectl logs -n {{ $labels.namespace }} {{ $labels.pod }} -c \
            prometheus`) names the error; the operator's log says which object produced it.",
    },
    Row {
        alert: "PrometheusRuleFailures",
        expr: "increase(prometheus_rule_evaluation_failures_total{{PROMETHEUS}}[5m]) > 0",
        settings: Fixed("15m", Critical),
        summary: "Prometheus {POD} fails to evaluate rules of group {{ $labels.rule_group }}",
        description: "Prometheus {POD} has failed {{ $value | printf \"%.0f\" }} evaluations of \
            the rule group {{ $labels.rule_group }} in the last 5 minutes, for 15 minutes: those \
            alerts cannot fire. The Rules page of Prometheus' UI (`kubectl automon open \
            prometheus`) shows each rule's last error.",
    },
    Row {
        alert: "PrometheusTSDBCompactionsFailing",
        expr: "increase(prometheus_tsdb_compactions_failed_total{{PROMETHEUS}}[3h]) > 0",
        settings: Fixed("15m", Warning),
        summary: "Prometheus {POD} fails to compact its storage",
        description: "Prometheus {POD} has had {{ $value | printf \"%.0f\" }} failed compactions \
            in the last 3 hours. Uncompacted blocks use more disk and memory, and retention stops \
            freeing space: look for disk-full or corrupt-block errors in its log.",
    },
    Row {
        alert: "PrometheusNotConnectedToAlertmanagers",
        expr: "max_over_time(prometheus_notifications_alertmanagers_discovered{{PROMETHEUS}}[5m]) < 1",
        settings: Fixed("10m", Warning),
        summary: "Prometheus {POD} knows no Alertmanager",
        description: "Prometheus {POD} has discovered no Alertmanager for 10 minutes: alerts fire \
            and are sent nowhere. Check that the Alertmanager pods are ready and that the \
            `alertmanager-operated` Service has endpoints.",
    },
    Row {
        alert: "PrometheusErrorSendingAlertsToAnyAlertmanager",
        // The Alertmanager that works best: when even it fails, no alert gets through.
        expr: "min without (alertmanager) (\n  \
            100 * rate(prometheus_notifications_errors_total{{PROMETHEUS}}[5m])\n  \
            / rate(prometheus_notifications_sent_total{{PROMETHEUS}}[5m])\n\
            ) > {NOTIFICATION_ERROR_PERCENT}",
        settings: Fixed("15m", Critical),
        summary: "Prometheus {POD} fails to send alerts to every Alertmanager",
        description: "{PERCENT} of the alerts Prometheus {POD} sends fail, to every Alertmanager \
            it knows, more than {NOTIFICATION_ERROR_PERCENT}% for 15 minutes: alerts are lost. \
            Check the Alertmanager pods and the network policies between the two.",
    },
    Row {
        alert: "AlertmanagerFailedToSendAlerts",
        expr: "100 * sum by (namespace, pod, integration) (rate(alertmanager_notifications_failed_total{{ALERTMANAGER}}[5m]))\n  \
            / sum by (namespace, pod, integration) (rate(alertmanager_notifications_total{{ALERTMANAGER}}[5m]))\n\
            > {ALERTMANAGER_FAILED_PERCENT}",
        settings: Fixed("5m", Warning),
        summary: "Alertmanager {POD} fails to send {PERCENT} of its {{ $labels.integration }} notifications",
        description: "Alertmanager {POD} has failed {PERCENT} of its notifications through \
            {{ $labels.integration }} for 5 minutes: a receiver's URL, credentials or network \
            path is wrong. Its log names the receiver and the error (`kubectl logs -n \
            {{ $labels.namespace }} {{ $labels.pod }} -c alertmanager`).",
    },
    Row {
        alert: "AlertmanagerFailedReload",
        expr: "max_over_time(alertmanager_config_last_reload_successful{{ALERTMANAGER}}[5m]) == 0",
        settings: Fixed("10m", Critical),
        summary: "Alertmanager {POD} cannot load its configuration",
        description: "Alertmanager {POD} has failed to reload its configuration for 10 minutes \
            and routes with the last one it loaded. Its log names the error; the configuration \
            comes from `alertmanager.receivers` and `alertmanager.route`.",
    },
    Row {
        alert: "PrometheusOperatorReconcileErrors",
        expr: "100 * sum by (controller, namespace) (rate(prometheus_operator_reconcile_errors_total{{OPERATOR}}[5m]))\n  \
            / sum by (controller, namespace) (rate(prometheus_operator_reconcile_operations_total{{OPERATOR}}[5m]))\n\
            > {RECONCILE_ERROR_PERCENT}",
        settings: Fixed("10m", Warning),
        summary: "The Prometheus Operator fails {PERCENT} of its {{ $labels.controller }} reconciliations",
        description: "{PERCENT} of the operator's reconciliations of {{ $labels.controller }} \
            objects have failed for 10 minutes, more than {RECONCILE_ERROR_PERCENT}%: changes to \
            them do not reach the running pods. The operator's log says why.",
    },
    Row {
        alert: "PrometheusOperatorSyncFailed",
        expr: "min_over_time(prometheus_operator_syncs{{OPERATOR}, status=\"failed\"}[5m]) > 0",
        settings: Fixed("10m", Warning),
        summary: "The Prometheus Operator cannot sync {{ $value }} {{ $labels.controller }} objects",
        description: "The operator has failed to sync {{ $value }} {{ $labels.controller }} \
            objects for 10 minutes: their configuration is invalid or refers to something \
            missing. `kubectl get prometheus,alertmanager -A` shows their conditions, and the \
            operator's log the reason.",
    },
];

const REMOTE_WRITE: &[Row] = &[
    Row {
        alert: "PrometheusRemoteWriteBehind",
        // What Prometheus has ingested less what it has sent, per endpoint; nothing ever sent
        // counts from zero, i.e. behind.
        expr: "max_over_time(prometheus_remote_storage_highest_timestamp_in_seconds{{PROMETHEUS}}[5m])\n\
            - ignoring (remote_name, url) group_right\n\
            max_over_time(prometheus_remote_storage_queue_highest_sent_timestamp_seconds{{PROMETHEUS}}[5m])\n\
            > {REMOTE_WRITE_BEHIND_SECONDS}",
        settings: Fixed("15m", Critical),
        summary: "Prometheus {POD} is behind in remote write to {{ $labels.url }}",
        description: "Prometheus {POD} has sent {{ $labels.url }} samples up to \
            {{ $value | humanizeDuration }} older than what it ingested, more than \
            {REMOTE_WRITE_BEHIND_SECONDS}s for 15 minutes: the store is unreachable, slow or \
            refusing samples. Past the WAL's two hours, samples are lost.",
    },
    Row {
        alert: "PrometheusRemoteStorageFailures",
        // Every attempt counts in samples_total; a failed one counts again as retried (the
        // store may recover: a 5xx, a refused connection) or failed (it will not: a 4xx).
        expr: "100 * (\n  \
            rate(prometheus_remote_storage_samples_failed_total{{PROMETHEUS}}[5m])\n  \
            + rate(prometheus_remote_storage_samples_retried_total{{PROMETHEUS}}[5m])\n\
            )\n\
            / rate(prometheus_remote_storage_samples_total{{PROMETHEUS}}[5m])\n\
            > {REMOTE_WRITE_FAILED_PERCENT}",
        settings: Fixed("15m", Critical),
        summary: "Prometheus {POD} fails to send {PERCENT} of its samples to {{ $labels.url }}",
        description: "{PERCENT} of Prometheus {POD}'s attempts to send samples to \
            {{ $labels.url }} have failed for 15 minutes, more than \
            {REMOTE_WRITE_FAILED_PERCENT}%. Its log gives the status the store answers: 401/403 \
            are the credentials, 404 the URL (or the preset's path), 429 the store's limits, a \
            refused connection the address or a network policy.",
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::rules::{group_alerts, with_remote_write};

    fn stack_alerts(sets: &[&str]) -> Option<Vec<String>> {
        group_alerts("stack-alerts", sets)
    }

    #[test]
    fn remote_write_alerts_come_only_with_remote_write() {
        let plain = stack_alerts(&[]).unwrap();
        assert!(!plain.iter().any(|a| a.contains("Remote")), "{plain:?}");
        let with = stack_alerts(&[
            "prometheus.externalLabels={cluster: a}",
            "prometheus.remoteWrite=[{url: \"https://store.example.com/api/v1/write\"}]",
        ])
        .unwrap();
        assert_eq!(
            with[plain.len()..],
            [
                "PrometheusRemoteWriteBehind",
                "PrometheusRemoteStorageFailures"
            ]
        );
        assert_eq!(with[..plain.len()], plain[..]);
    }

    #[test]
    fn the_group_can_be_turned_off() {
        assert!(stack_alerts(&["alerts.groups.stack=false"]).is_none());
    }

    #[test]
    fn every_rule_reads_only_the_stack_s_own_jobs() {
        let config = with_remote_write();
        let selector = regex::Regex::new(r"[a-z_]+\{([^}]*)\}").unwrap();
        for r in rules(&config, NodeClasses::default()) {
            let selectors: Vec<_> = selector.captures_iter(&r.expr).collect();
            assert!(!selectors.is_empty(), "{}", r.alert);
            for s in selectors {
                assert!(
                    [PROMETHEUS, ALERTMANAGER, OPERATOR]
                        .iter()
                        .any(|job| s[1].starts_with(job)),
                    "{}: {}",
                    r.alert,
                    &s[0]
                );
            }
        }
    }
}
