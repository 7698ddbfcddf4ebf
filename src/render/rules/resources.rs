//! Resource alerts: CPU throttling, memory near the limit, namespaces over their quota,
//! PersistentVolumes filling up or predicted to, PersistentVolumeClaims pending. From cAdvisor,
//! the kubelet's volume stats and kube-state-metrics.

use super::{AlertRule, CONTAINER, KUBE_STATE_METRICS, PERCENT, Row, Settings::Fixed, build};
use crate::{
    config::{
        Config,
        Severity::{Critical, Info, Warning},
    },
    render::NodeClasses,
};

/// cAdvisor's and the kubelet's own series, as the kubelet ServiceMonitor labels them.
const CADVISOR: &str = r#"job="kubelet", metrics_path="/metrics/cadvisor""#;
const KUBELET: &str = r#"job="kubelet", metrics_path="/metrics""#;

// Alert templates.
const QUOTA: &str = "{{ $labels.namespace }}/{{ $labels.resourcequota }}";
const PVC: &str = "{{ $labels.namespace }}/{{ $labels.persistentvolumeclaim }}";

/// CPUThrottlingHigh: the share of CFS periods a container was throttled in.
const THROTTLED_PERCENT: u32 = 25;
/// KubeContainerMemoryNearLimit: working set as a share of the memory limit.
const MEMORY_LIMIT_PERCENT: u32 = 90;
/// KubeQuotaAlmostFull: used as a share of the quota's hard limit.
const QUOTA_ALMOST_FULL_PERCENT: u32 = 90;
/// KubePersistentVolume(Inodes)FillingUp: free below this is critical...
const VOLUME_CRITICAL_FREE_PERCENT: u32 = 3;
/// ...and free below this while the last 6 hours' trend fills it within 4 days, a warning.
const VOLUME_WARNING_FREE_PERCENT: u32 = 15;
const VOLUME_PREDICT_SECONDS: u32 = 4 * 24 * 3600;

/// A quota's use of one resource, in percent of its hard limit. A hard limit of 0 (a resource
/// forbidden in the namespace) is left out: it is full by design.
const QUOTA_USED: &str = "100 * max by (namespace, resourcequota, resource) (kube_resourcequota{{KUBE_STATE_METRICS}, type=\"used\"})\n  \
    / on (namespace, resourcequota, resource) (max by (namespace, resourcequota, resource) (kube_resourcequota{{KUBE_STATE_METRICS}, type=\"hard\"}) > 0)";
/// What every quota alert says first and last.
const QUOTA_USE: &str = "Namespace {{ $labels.namespace }} has used {PERCENT} of the \
    {{ $labels.resource }} its ResourceQuota {{ $labels.resourcequota }} allows, for 15 minutes.";
const QUOTA_DETAILS: &str = "`kubectl -n {{ $labels.namespace }} describe resourcequota \
    {{ $labels.resourcequota }}` shows every resource's use.";

/// The free space and free inodes of a claim's volume, in percent.
const SPACE_FREE: &str = "100 * max by (namespace, persistentvolumeclaim) (kubelet_volume_stats_available_bytes{{KUBELET}})\n  \
    / on (namespace, persistentvolumeclaim) max by (namespace, persistentvolumeclaim) (kubelet_volume_stats_capacity_bytes{{KUBELET}})";
const INODES_FREE: &str = "100 * max by (namespace, persistentvolumeclaim) (kubelet_volume_stats_inodes_free{{KUBELET}})\n  \
    / on (namespace, persistentvolumeclaim) max by (namespace, persistentvolumeclaim) (kubelet_volume_stats_inodes{{KUBELET}})";
/// Volumes mounted read-only by every pod (ReadOnlyMany claims) cannot fill from here and are
/// left out; that reads kube-state-metrics beside the kubelet, so under sharding the ruler
/// evaluates the volume alerts.
const NOT_READ_ONLY: &str = "unless on (namespace, persistentvolumeclaim) max by (namespace, persistentvolumeclaim) (kube_persistentvolumeclaim_access_mode{{KUBE_STATE_METRICS}, access_mode=\"ReadOnlyMany\"}) == 1";
/// Where to look when a volume is full.
const SPACE_LOOK: &str = "`du -sh` in the pod shows what grows; expand the claim if its \
    StorageClass allows it (allowVolumeExpansion) or free space.";
const INODES_LOOK: &str = "Many small files use them up while space remains; `find <dir> \
    -xdev | wc -l` in the pod shows where.";

pub(super) fn rules(config: &Config, _: NodeClasses) -> Vec<AlertRule> {
    let values = values![
        KUBE_STATE_METRICS,
        CADVISOR,
        KUBELET,
        CONTAINER,
        PERCENT,
        QUOTA,
        PVC,
        THROTTLED_PERCENT,
        MEMORY_LIMIT_PERCENT,
        QUOTA_ALMOST_FULL_PERCENT,
        VOLUME_CRITICAL_FREE_PERCENT,
        VOLUME_WARNING_FREE_PERCENT,
        VOLUME_PREDICT_SECONDS,
        QUOTA_USED,
        QUOTA_USE,
        QUOTA_DETAILS,
        SPACE_FREE,
        INODES_FREE,
        NOT_READ_ONLY,
        SPACE_LOOK,
        INODES_LOOK,
    ];
    build(ALERTS, config, &values)
}

// A volume has two alerts for space and two for inodes: critical when almost nothing is free,
// warning when little is free and the trend fills it within 4 days.
const ALERTS: &[Row] = &[
    Row {
        alert: "CPUThrottlingHigh",
        // Per container, not per container instance: a restart's new cgroup continues the same
        // alert. Containers that never hit their CPU limit have no throttled periods; those
        // without a limit have no periods at all, and the division gives nothing.
        expr: "100 * sum by (namespace, pod, container) (rate(container_cpu_cfs_throttled_periods_total{{CADVISOR}, container!=\"\"}[5m]))\n  \
            / on (namespace, pod, container) sum by (namespace, pod, container) (rate(container_cpu_cfs_periods_total{{CADVISOR}, container!=\"\"}[5m]))\n\
            > {THROTTLED_PERCENT}",
        settings: Fixed("15m", Info),
        summary: "Container {CONTAINER} is CPU-throttled {PERCENT} of the time",
        description: "Container {CONTAINER} was throttled in {PERCENT} of its CPU periods over \
            the last 5 minutes, above {THROTTLED_PERCENT}% for 15 minutes: its CPU limit is \
            lower than what it tries to use, so it runs slower (higher latency) than it could.",
    },
    Row {
        alert: "KubeContainerMemoryNearLimit",
        // cAdvisor's working set against the limit kube-state-metrics reads from the pod spec:
        // two jobs, so under sharding the ruler evaluates it.
        expr: "100 * max by (namespace, pod, container) (container_memory_working_set_bytes{{CADVISOR}, container!=\"\"})\n  \
            / on (namespace, pod, container) max by (namespace, pod, container) (kube_pod_container_resource_limits{{KUBE_STATE_METRICS}, resource=\"memory\"})\n\
            > {MEMORY_LIMIT_PERCENT}",
        settings: Fixed("15m", Warning),
        summary: "Container {CONTAINER} is using {PERCENT} of its memory limit",
        description: "Container {CONTAINER} has used more than {MEMORY_LIMIT_PERCENT}% of its \
            memory limit for 15 minutes (now {PERCENT}). At the limit the kernel kills it \
            (OOMKilled); raise the limit or find what grows.",
    },
    Row {
        alert: "KubeQuotaAlmostFull",
        expr: "{QUOTA_USED}\n> {QUOTA_ALMOST_FULL_PERCENT} < 100",
        settings: Fixed("15m", Info),
        summary: "Quota {QUOTA} is almost full ({{ $labels.resource }})",
        description: "{QUOTA_USE} New pods or objects will soon be refused. {QUOTA_DETAILS}",
    },
    Row {
        alert: "KubeQuotaFullyUsed",
        expr: "{QUOTA_USED}\n== 100",
        settings: Fixed("15m", Info),
        summary: "Quota {QUOTA} is fully used ({{ $labels.resource }})",
        description: "{QUOTA_USE} The next pod or object that needs more is refused. \
            {QUOTA_DETAILS}",
    },
    Row {
        alert: "KubeQuotaExceeded",
        expr: "{QUOTA_USED}\n> 100",
        settings: Fixed("15m", Warning),
        summary: "Quota {QUOTA} is exceeded ({{ $labels.resource }})",
        description: "{QUOTA_USE} The quota was lowered below what already runs: nothing that \
            needs more is admitted until use falls below it. {QUOTA_DETAILS}",
    },
    Row {
        alert: "KubePersistentVolumeFillingUp",
        expr: "{SPACE_FREE}\n< {VOLUME_CRITICAL_FREE_PERCENT}\n{NOT_READ_ONLY}",
        settings: Fixed("1m", Critical),
        summary: "Volume of claim {PVC} has {PERCENT} space left",
        description: "The volume of PersistentVolumeClaim {PVC} has only {PERCENT} of its space \
            free, below {VOLUME_CRITICAL_FREE_PERCENT}%: writes will soon fail. {SPACE_LOOK}",
    },
    Row {
        alert: "KubePersistentVolumeFillingUp",
        expr: "{SPACE_FREE}\n< {VOLUME_WARNING_FREE_PERCENT}\n\
            and on (namespace, persistentvolumeclaim) max by (namespace, persistentvolumeclaim) (predict_linear(kubelet_volume_stats_available_bytes{{KUBELET}}[6h], {VOLUME_PREDICT_SECONDS})) < 0\n\
            {NOT_READ_ONLY}",
        settings: Fixed("1h", Warning),
        summary: "Volume of claim {PVC} is predicted to run out of space within 4 days",
        description: "The volume of PersistentVolumeClaim {PVC} has {PERCENT} of its space free, \
            below {VOLUME_WARNING_FREE_PERCENT}%, and at the rate of the last 6 hours will have \
            none left within 4 days. {SPACE_LOOK}",
    },
    Row {
        alert: "KubePersistentVolumeInodesFillingUp",
        expr: "{INODES_FREE}\n< {VOLUME_CRITICAL_FREE_PERCENT}\n{NOT_READ_ONLY}",
        settings: Fixed("1m", Critical),
        summary: "Volume of claim {PVC} has {PERCENT} inodes left",
        description: "The volume of PersistentVolumeClaim {PVC} has only {PERCENT} of its inodes \
            free, below {VOLUME_CRITICAL_FREE_PERCENT}%: writes will soon fail. {INODES_LOOK}",
    },
    Row {
        alert: "KubePersistentVolumeInodesFillingUp",
        expr: "{INODES_FREE}\n< {VOLUME_WARNING_FREE_PERCENT}\n\
            and on (namespace, persistentvolumeclaim) max by (namespace, persistentvolumeclaim) (predict_linear(kubelet_volume_stats_inodes_free{{KUBELET}}[6h], {VOLUME_PREDICT_SECONDS})) < 0\n\
            {NOT_READ_ONLY}",
        settings: Fixed("1h", Warning),
        summary: "Volume of claim {PVC} is predicted to run out of inodes within 4 days",
        description: "The volume of PersistentVolumeClaim {PVC} has {PERCENT} of its inodes \
            free, below {VOLUME_WARNING_FREE_PERCENT}%, and at the rate of the last 6 hours will \
            have none left within 4 days. {INODES_LOOK}",
    },
    Row {
        alert: "KubePersistentVolumeErrors",
        expr: r#"max by (persistentvolume, phase) (kube_persistentvolume_status_phase{{KUBE_STATE_METRICS}, phase=~"Failed|Pending"}) == 1"#,
        settings: Fixed("5m", Critical),
        summary: "PersistentVolume {{ $labels.persistentvolume }} is {{ $labels.phase }}",
        description: "PersistentVolume {{ $labels.persistentvolume }} has been in phase \
            {{ $labels.phase }} for 5 minutes: its provisioner or reclaim failed (Failed), or it \
            is not available (Pending). `kubectl describe pv {{ $labels.persistentvolume }}` \
            shows the events.",
    },
    Row {
        alert: "KubePersistentVolumeClaimPending",
        expr: r#"max by (namespace, persistentvolumeclaim) (kube_persistentvolumeclaim_status_phase{{KUBE_STATE_METRICS}, phase="Pending"}) == 1"#,
        settings: Fixed("15m", Warning),
        summary: "PersistentVolumeClaim {PVC} has been pending for 15 minutes",
        description: "PersistentVolumeClaim {PVC} has not been bound for 15 minutes: no volume \
            matches it and its StorageClass cannot provision one, or (WaitForFirstConsumer) no \
            pod that uses it has been scheduled. `kubectl -n {{ $labels.namespace }} describe \
            pvc {{ $labels.persistentvolumeclaim }}` shows the provisioner's events.",
    },
];
