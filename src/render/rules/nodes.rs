//! The alerts about nodes, and those about the monitoring itself (is every node covered, does
//! the pipeline work): the ones `alerts.*` configures one by one. Windows nodes get the node
//! alerts from windows-exporter with the same settings; GPU nodes get theirs, fixed.

use super::{
    AlertRule, DCGM_EXPORTER, KUBE_STATE_METRICS, NODE, NODE_EXPORTER, PERCENT, RATE_WINDOW,
    REAL_FILESYSTEMS, Row,
    Settings::{Configured, Fixed},
    WINDOWS_EXPORTER, WINDOWS_VOLUMES, build, ksm_label, ksm_name,
};
use crate::{
    config::{Config, Severity},
    render::{
        NodeClasses,
        classes::{GPU_PRESENT_LABEL, GPU_RESOURCE, WINDOWS_EXPORTER_PORT},
    },
};

/// GPU temperature from which the GPU alert fires: most NVIDIA data-centre GPUs begin slowing
/// their clocks in the high 80s °C, so ten minutes above this is cooling that is not keeping up.
const GPU_TEMPERATURE_CELSIUS: u32 = 85;
const GPU: &str = "{{ $labels.gpu }}";

/// The rules of these rows, with the values every node alert may name.
fn rules<'r>(rows: impl IntoIterator<Item = &'r Row>, config: &Config) -> Vec<AlertRule> {
    let mut values = values![
        NODE,
        PERCENT,
        NODE_EXPORTER,
        KUBE_STATE_METRICS,
        WINDOWS_EXPORTER,
        DCGM_EXPORTER,
        WINDOWS_VOLUMES,
        REAL_FILESYSTEMS,
        RATE_WINDOW,
        WINDOWS_EXPORTER_PORT,
        GPU,
        GPU_TEMPERATURE_CELSIUS,
        GPU_PRESENT_LABEL,
        GPU_RESOURCE,
    ];
    // As kube-state-metrics names the labels and resources in its series.
    values.extend([
        ("EXCLUDE", ksm_label(&config.node_exporter.exclude_label)),
        ("GPU_PRESENT", ksm_label(GPU_PRESENT_LABEL)),
        ("GPU_RESOURCE_NAME", ksm_name(GPU_RESOURCE)),
        ("NAMESPACE", config.namespace.clone()),
    ]);
    build(rows, config, &values)
}

pub(super) fn node(config: &Config, _: NodeClasses) -> Vec<AlertRule> {
    rules(NODE_ALERTS, config)
}

pub(super) fn windows(config: &Config, _: NodeClasses) -> Vec<AlertRule> {
    rules(WINDOWS_ALERTS, config)
}

pub(super) fn gpu(config: &Config, _: NodeClasses) -> Vec<AlertRule> {
    rules(GPU_ALERTS, config)
}

pub(super) fn kubernetes_node(config: &Config, _: NodeClasses) -> Vec<AlertRule> {
    rules([&NODE_NOT_READY], config)
}

pub(super) fn coverage(config: &Config, classes: NodeClasses) -> Vec<AlertRule> {
    // Windows nodes count as covered by windows-exporter, as Linux ones by node-exporter.
    let gap = if classes.windows {
        &COVERAGE_GAP_WITH_WINDOWS
    } else {
        &COVERAGE_GAP
    };
    rules([&NODE_EXPORTER_DOWN, gap, &KUBE_STATE_METRICS_DOWN], config)
}

pub(super) fn meta(config: &Config, _: NodeClasses) -> Vec<AlertRule> {
    rules([&WATCHDOG], config)
}

/// The alerts that say a node's exporter does not answer, and the resource alerts of the same
/// nodes they make moot (Alertmanager inhibits those by these). Each list starts with its
/// down alert.
pub(super) fn down_and_resources() -> (Vec<&'static str>, Vec<&'static str>) {
    let (mut down, mut resources) = (Vec::new(), Vec::new());
    for rows in [NODE_ALERTS, WINDOWS_ALERTS] {
        if let Some((first, rest)) = rows.split_first() {
            down.push(first.alert);
            resources.extend(rest.iter().map(|r| r.alert));
        }
    }
    (down, resources)
}

const NODE_ALERTS: &[Row] = &[
    Row {
        alert: "NodeDown",
        expr: "max by (node) (up{{NODE_EXPORTER}}) == 0",
        settings: Configured(|a| (&a.node_down).into()),
        summary: "Node {NODE} is down or unreachable",
        description: "Prometheus has been unable to scrape node-exporter on node {NODE} for {FOR}. \
            The target exists, so the exporter pod is scheduled there, but it does not answer: \
            the node is down, its network is unreachable, or the exporter is failing.",
    },
    Row {
        alert: "HighCPUUsage",
        expr: "100 * (1 - avg by (node) (rate(node_cpu_seconds_total{{NODE_EXPORTER}, mode=\"idle\"}[{RATE_WINDOW}]))) > {THRESHOLD}",
        settings: Configured(|a| (&a.high_cpu).into()),
        summary: "CPU usage on node {NODE} is above {THRESHOLD}%",
        description: "CPU on node {NODE} has been more than {THRESHOLD}% busy for {FOR} \
            (currently {PERCENT}).",
    },
    Row {
        alert: "HighMemoryUsage",
        expr: "100 * (1 - node_memory_MemAvailable_bytes{{NODE_EXPORTER}} / node_memory_MemTotal_bytes{{NODE_EXPORTER}}) > {THRESHOLD}",
        settings: Configured(|a| (&a.high_memory).into()),
        summary: "Memory usage on node {NODE} is above {THRESHOLD}%",
        description: "Node {NODE} has used more than {THRESHOLD}% of its memory for {FOR} \
            (currently {PERCENT}); pods on it risk eviction or the OOM killer.",
    },
    Row {
        alert: "DiskSpaceLow",
        expr: "100 * node_filesystem_avail_bytes{{REAL_FILESYSTEMS}} / node_filesystem_size_bytes{{REAL_FILESYSTEMS}} < {THRESHOLD}\n\
            and node_filesystem_readonly{{REAL_FILESYSTEMS}} == 0",
        settings: Configured(|a| (&a.disk_space_low).into()),
        summary: "Disk space low on node {NODE} ({{ $labels.mountpoint }})",
        description: "Filesystem {{ $labels.mountpoint }} ({{ $labels.device }}) on node {NODE} \
            has only {PERCENT} space left, below {THRESHOLD}%.",
    },
    Row {
        alert: "NodeFilesystemFillingUp",
        // The 6h trend smooths out log rotation and compaction; requiring less than 40% free
        // keeps a fast-growing but nearly empty disk from paging anyone.
        expr: "100 * node_filesystem_avail_bytes{{REAL_FILESYSTEMS}} / node_filesystem_size_bytes{{REAL_FILESYSTEMS}} < 40\n\
            and predict_linear(node_filesystem_avail_bytes{{REAL_FILESYSTEMS}}[6h], {SECONDS}) < 0\n\
            and node_filesystem_readonly{{REAL_FILESYSTEMS}} == 0",
        settings: Configured(|a| (&a.filesystem_filling_up).into()),
        summary: "Filesystem on node {NODE} is predicted to fill up within {HOURS}h",
        description: "Filesystem {{ $labels.mountpoint }} ({{ $labels.device }}) on node {NODE} \
            has {PERCENT} space left and, at the rate of the last 6 hours, will be full within \
            {HOURS} hours.",
    },
];

/// The node alerts the configuration asks for, from windows-exporter's metrics, with the same
/// thresholds, durations and severities as their Linux counterparts.
const WINDOWS_ALERTS: &[Row] = &[
    Row {
        alert: "WindowsExporterDown",
        expr: "max by (node) (up{{WINDOWS_EXPORTER}}) == 0",
        settings: Configured(|a| (&a.node_down).into()),
        summary: "Windows node {NODE} is down or unreachable",
        description: "Prometheus has been unable to scrape windows-exporter on Windows node \
            {NODE} for {FOR}. The exporter pod is scheduled there but does not answer on port \
            {WINDOWS_EXPORTER_PORT}: the node is down or unreachable, the Windows Firewall \
            blocks the port, or the exporter is failing.",
    },
    Row {
        alert: "WindowsHighCPUUsage",
        expr: "100 * (1 - avg by (node) (rate(windows_cpu_time_total{{WINDOWS_EXPORTER}, mode=\"idle\"}[{RATE_WINDOW}]))) > {THRESHOLD}",
        settings: Configured(|a| (&a.high_cpu).into()),
        summary: "CPU usage on Windows node {NODE} is above {THRESHOLD}%",
        description: "The processors of Windows node {NODE} have been more than {THRESHOLD}% \
            busy for {FOR} (currently {PERCENT}).",
    },
    Row {
        alert: "WindowsHighMemoryUsage",
        expr: "100 * (1 - windows_memory_available_bytes{{WINDOWS_EXPORTER}} / windows_memory_physical_total_bytes{{WINDOWS_EXPORTER}}) > {THRESHOLD}",
        settings: Configured(|a| (&a.high_memory).into()),
        summary: "Memory usage on Windows node {NODE} is above {THRESHOLD}%",
        description: "Less than {FREE}% of the physical memory of Windows node {NODE} has been \
            available for {FOR} (currently {PERCENT} in use); Windows pages to disk and the \
            pods on it slow down.",
    },
    Row {
        alert: "WindowsDiskSpaceLow",
        expr: "100 * windows_logical_disk_free_bytes{{WINDOWS_VOLUMES}} / windows_logical_disk_size_bytes{{WINDOWS_VOLUMES}} < {THRESHOLD}",
        settings: Configured(|a| (&a.disk_space_low).into()),
        summary: "Disk space low on Windows node {NODE} ({{ $labels.volume }})",
        description: "Volume {{ $labels.volume }} of Windows node {NODE} has only {PERCENT} of \
            its space free, below {THRESHOLD}%.",
    },
];

/// The GPU alerts have no settings of their own yet: their durations and severities are fixed.
/// A GPU's series carry the pod that holds it, so they change with every pod; the alerts are
/// about the GPU and keep only node and GPU index.
const GPU_ALERTS: &[Row] = &[
    Row {
        alert: "GPUTemperatureHigh",
        expr: "max by (node, gpu) (DCGM_FI_DEV_GPU_TEMP{{DCGM_EXPORTER}}) > {GPU_TEMPERATURE_CELSIUS}",
        settings: Fixed("10m", Severity::Warning),
        summary: "GPU {GPU} on node {NODE} is running hot",
        description: "GPU {GPU} on node {NODE} has been above {GPU_TEMPERATURE_CELSIUS} °C for \
            {FOR} (currently {{ $value }} °C). Close to its slowdown temperature a GPU lowers \
            its clocks and the work on it slows down; check the node's cooling and airflow.",
    },
    Row {
        alert: "GPUXidError",
        // DCGM reports the latest XID a GPU raised (0: none). No `for`: the error has happened.
        expr: "max by (node, gpu) (DCGM_FI_DEV_XID_ERRORS{{DCGM_EXPORTER}}) > 0",
        settings: Fixed("0m", Severity::Warning),
        summary: "GPU {GPU} on node {NODE} reported XID error {{ $value }}",
        description: "The NVIDIA driver reported XID {{ $value }} for GPU {GPU} on node {NODE}: \
            a fault of the driver, the GPU or the program using it. Look the code up in \
            NVIDIA's XID catalogue: some point at the application, others (79: the GPU has \
            fallen off the bus; 48: an uncorrectable ECC error) mean the GPU needs a reset and \
            the node should be drained.",
    },
    Row {
        alert: "GPUExporterDown",
        // Nodes with GPUs, by NVIDIA's label or by advertised GPUs, that are not opted out and
        // have no dcgm-exporter target up. A node that advertises GPUs without the label gets
        // no exporter (it is scheduled by the label): the alert says so rather than let it go
        // unwatched.
        expr: "(\n  (\n    \
            max by (node) (kube_node_labels{{KUBE_STATE_METRICS}, {GPU_PRESENT}=\"true\"})\n    \
            or\n    \
            max by (node) (kube_node_status_allocatable{{KUBE_STATE_METRICS}, resource=\"{GPU_RESOURCE_NAME}\"} > 0)\n  \
            )\n  \
            unless on (node) kube_node_labels{{KUBE_STATE_METRICS}, {EXCLUDE}=\"true\"}\n\
            )\n\
            unless on (node) (up{{DCGM_EXPORTER}} == 1)",
        settings: Fixed("10m", Severity::Warning),
        summary: "GPU node {NODE} has no GPU metrics",
        description: "Kubernetes knows GPU node {NODE}, which is not excluded from monitoring, \
            but no dcgm-exporter target on it has been up for {FOR}: the temperature, errors \
            and use of its GPUs are not watched. The exporter runs on nodes labelled \
            {GPU_PRESENT_LABEL}=true (NVIDIA's GPU feature discovery sets it); a node that only \
            advertises {GPU_RESOURCE} needs that label. `kubectl -n {NAMESPACE} get pods -l \
            app.kubernetes.io/name=dcgm-exporter -o wide` shows the exporter's pods.",
    },
];

const NODE_NOT_READY: Row = Row {
    alert: "NodeNotReady",
    expr: "kube_node_status_condition{{KUBE_STATE_METRICS}, condition=\"Ready\", status=\"true\"} == 0",
    settings: Configured(|a| (&a.node_not_ready).into()),
    summary: "Node {NODE} is not Ready",
    description: "Kubernetes has reported node {NODE} as not Ready for more than {FOR}; its \
        kubelet is not posting status, or it reports a problem (disk, memory, network).",
};

const NODE_EXPORTER_DOWN: Row = Row {
    alert: "NodeExporterDown",
    // A node that had a node-exporter target within the last hour and has none now, while
    // Kubernetes still has the node: the target vanished (pod deleted, evicted, DaemonSet
    // changed) rather than failing to answer, which is NodeDown.
    expr: "(\n  max by (node) (max_over_time(up{{NODE_EXPORTER}}[1h]))\n  \
        unless on (node) up{{NODE_EXPORTER}}\n)\n\
        and on (node) kube_node_info{{KUBE_STATE_METRICS}}",
    settings: Configured(|a| (&a.exporter_down).into()),
    summary: "node-exporter on node {NODE} has disappeared",
    description: "Node {NODE} had a node-exporter target within the last hour and has had none \
        for {FOR}, while the node itself still exists. Unlike NodeDown (the target is there but \
        cannot be scraped), here there is nothing left to scrape: the exporter pod was deleted, \
        evicted or no longer fits the node. After an hour NodeMonitoringCoverageGap keeps \
        reporting the node.",
};

/// Every Linux node Kubernetes knows and that is not opted out must have a node-exporter
/// target that is up.
const COVERAGE_GAP: Row = Row {
    alert: "NodeMonitoringCoverageGap",
    expr: "(\n  \
        max by (node) (kube_node_labels{{KUBE_STATE_METRICS}, label_kubernetes_io_os=\"linux\", {EXCLUDE}!=\"true\"})\n  \
        and on (node) kube_node_info{{KUBE_STATE_METRICS}}\n\
        )\n\
        unless on (node) (up{{NODE_EXPORTER}} == 1)",
    settings: Configured(|a| (&a.coverage_gap).into()),
    summary: "Node {NODE} is not monitored",
    description: "Kubernetes knows Linux node {NODE}, which is not excluded from monitoring, \
        but no node-exporter target on it has been up for {FOR}: its CPU, memory and disks are \
        not watched. `kubectl automon status` shows why (untolerated taint, pod pending or \
        crashing).",
};

/// [`COVERAGE_GAP`] for the Linux nodes, or the same for the Windows nodes and windows-exporter.
const COVERAGE_GAP_WITH_WINDOWS: Row = Row {
    expr: "(\n  \
        (\n    \
        max by (node) (kube_node_labels{{KUBE_STATE_METRICS}, label_kubernetes_io_os=\"linux\", {EXCLUDE}!=\"true\"})\n    \
        and on (node) kube_node_info{{KUBE_STATE_METRICS}}\n  \
        )\n  \
        unless on (node) (up{{NODE_EXPORTER}} == 1)\n\
        )\n\
        or\n\
        (\n  \
        (\n    \
        max by (node) (kube_node_labels{{KUBE_STATE_METRICS}, label_kubernetes_io_os=\"windows\", {EXCLUDE}!=\"true\"})\n    \
        and on (node) kube_node_info{{KUBE_STATE_METRICS}}\n  \
        )\n  \
        unless on (node) (up{{WINDOWS_EXPORTER}} == 1)\n\
        )",
    description: "Kubernetes knows node {NODE}, which is not excluded from monitoring, but no \
        exporter target on it (node-exporter on Linux, windows-exporter on Windows) has been up \
        for {FOR}: its CPU, memory and disks are not watched. `kubectl automon status` shows \
        why (untolerated taint, pod pending or crashing).",
    ..COVERAGE_GAP
};

/// The coverage-gap alert compares what kube-state-metrics knows with what node-exporter
/// reports; without kube-state-metrics it sees no node at all and stays silent. Say so, with
/// the coverage-gap alert's own settings, so that silence never means "covered".
const KUBE_STATE_METRICS_DOWN: Row = Row {
    alert: "KubeStateMetricsDown",
    expr: "absent(up{{KUBE_STATE_METRICS}} == 1)",
    settings: Configured(|a| (&a.coverage_gap).into()),
    summary: "kube-state-metrics is not being scraped",
    description: "No kube-state-metrics target has been up for {FOR}: Prometheus does not know \
        which nodes exist, so NodeMonitoringCoverageGap and NodeNotReady cannot fire. `kubectl \
        automon status` shows the kube-state-metrics Deployment's state.",
};

const WATCHDOG: Row = Row {
    alert: "Watchdog",
    expr: "vector(1)",
    settings: Configured(|a| (&a.watchdog).into()),
    summary: "Always firing: the alerting pipeline works",
    description: "This alert fires all the time to prove that Prometheus evaluates rules and \
        Alertmanager receives alerts. If it stops arriving, alerting itself is broken.",
};
