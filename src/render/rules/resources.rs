//! Resource alerts: CPU throttling, memory near the limit, namespaces over their quota,
//! PersistentVolumes filling up or predicted to, PersistentVolumeClaims pending. From cAdvisor,
//! the kubelet's volume stats and kube-state-metrics.

use super::{AlertRule, CONTAINER, CONTAINER_LABELS, PERCENT, fixed, ksm_series, max_by};
use crate::config::{Config, Severity};

/// cAdvisor's and the kubelet's own series, as the kubelet ServiceMonitor labels them.
const CADVISOR: &str = r#"job="kubelet", metrics_path="/metrics/cadvisor""#;
const KUBELET: &str = r#"job="kubelet", metrics_path="/metrics""#;

const QUOTA_LABELS: &str = "namespace, resourcequota, resource";
const PVC_LABELS: &str = "namespace, persistentvolumeclaim";

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

pub(super) fn rules(_config: &Config) -> Vec<AlertRule> {
    let mut rules = vec![cpu_throttling_high(), container_memory_near_limit()];
    rules.extend(quota_alerts());
    rules.extend(volume_filling_up(&VolumeStat::SPACE));
    rules.extend(volume_filling_up(&VolumeStat::INODES));
    rules.push(persistent_volume_errors());
    rules.push(persistent_volume_claim_pending());
    rules
}

/// `part` as a percentage of `whole`, matched on the labels `by` that both are aggregated to.
fn percent(by: &str, part: &str, whole: &str) -> String {
    format!("100 * {part}\n  / on ({by}) {whole}")
}

fn cpu_throttling_high() -> AlertRule {
    // Per container, not per container instance: a restart's new cgroup continues the same
    // alert. Containers that never hit their CPU limit have no throttled periods; those without
    // a limit have no periods at all, and the division gives nothing.
    let periods = |metric: &str| {
        format!("sum by ({CONTAINER_LABELS}) (rate({metric}{{{CADVISOR}, container!=\"\"}}[5m]))")
    };
    fixed(
        "CPUThrottlingHigh",
        format!(
            "{}\n> {THROTTLED_PERCENT}",
            percent(
                CONTAINER_LABELS,
                &periods("container_cpu_cfs_throttled_periods_total"),
                &periods("container_cpu_cfs_periods_total"),
            )
        ),
        "15m",
        Severity::Info,
        format!("Container {CONTAINER} is CPU-throttled {PERCENT} of the time"),
        format!(
            "Container {CONTAINER} was throttled in {PERCENT} of its CPU periods over the last \
             5 minutes, above {THROTTLED_PERCENT}% for 15 minutes: its CPU limit is lower than \
             what it tries to use, so it runs slower (higher latency) than it could."
        ),
    )
}

fn container_memory_near_limit() -> AlertRule {
    fixed(
        "KubeContainerMemoryNearLimit",
        // cAdvisor's working set against the limit kube-state-metrics reads from the pod spec:
        // two jobs, so under sharding the ruler evaluates it.
        format!(
            "{}\n> {MEMORY_LIMIT_PERCENT}",
            percent(
                CONTAINER_LABELS,
                &max_by(
                    CONTAINER_LABELS,
                    "container_memory_working_set_bytes",
                    &format!("{CADVISOR}, container!=\"\"")
                ),
                &ksm_series(
                    CONTAINER_LABELS,
                    "kube_pod_container_resource_limits",
                    r#"resource="memory""#
                ),
            )
        ),
        "15m",
        Severity::Warning,
        format!("Container {CONTAINER} is using {PERCENT} of its memory limit"),
        format!(
            "Container {CONTAINER} has used more than {MEMORY_LIMIT_PERCENT}% of its memory \
             limit for 15 minutes (now {PERCENT}). At the limit the kernel kills it \
             (OOMKilled); raise the limit or find what grows."
        ),
    )
}

/// The three quota alerts: used against hard, per quota and resource. A hard limit of 0 (a
/// resource forbidden in the namespace) is left out: it is full by design.
fn quota_alerts() -> Vec<AlertRule> {
    let used = || {
        percent(
            QUOTA_LABELS,
            &ksm_series(QUOTA_LABELS, "kube_resourcequota", r#"type="used""#),
            &format!(
                "({} > 0)",
                ksm_series(QUOTA_LABELS, "kube_resourcequota", r#"type="hard""#)
            ),
        )
    };
    let what = "{{ $labels.resource }}";
    let quota = |name: &str, condition: String, severity: Severity, summary: &str, says: &str| {
        fixed(
            name,
            format!("{}\n{condition}", used()),
            "15m",
            severity,
            format!("Quota {QUOTA} {summary} ({what})"),
            format!(
                "Namespace {{{{ $labels.namespace }}}} has used {PERCENT} of the {what} its \
                 ResourceQuota {{{{ $labels.resourcequota }}}} allows, for 15 minutes. {says} \
                 `kubectl -n {{{{ $labels.namespace }}}} describe resourcequota \
                 {{{{ $labels.resourcequota }}}}` shows every resource's use."
            ),
        )
    };
    vec![
        quota(
            "KubeQuotaAlmostFull",
            format!("> {QUOTA_ALMOST_FULL_PERCENT} < 100"),
            Severity::Info,
            "is almost full",
            "New pods or objects will soon be refused.",
        ),
        quota(
            "KubeQuotaFullyUsed",
            "== 100".into(),
            Severity::Info,
            "is fully used",
            "The next pod or object that needs more is refused.",
        ),
        quota(
            "KubeQuotaExceeded",
            "> 100".into(),
            Severity::Warning,
            "is exceeded",
            "The quota was lowered below what already runs: nothing that needs more is \
             admitted until use falls below it.",
        ),
    ]
}

/// What a volume runs out of, as the kubelet's volume stats count it.
struct VolumeStat {
    alert: &'static str,
    what: &'static str,
    free: &'static str,
    capacity: &'static str,
    /// Where to look when it is full.
    look: &'static str,
}

impl VolumeStat {
    const SPACE: VolumeStat = VolumeStat {
        alert: "KubePersistentVolumeFillingUp",
        what: "space",
        free: "kubelet_volume_stats_available_bytes",
        capacity: "kubelet_volume_stats_capacity_bytes",
        look: "`du -sh` in the pod shows what grows; expand the claim if its StorageClass \
               allows it (allowVolumeExpansion) or free space.",
    };
    const INODES: VolumeStat = VolumeStat {
        alert: "KubePersistentVolumeInodesFillingUp",
        what: "inodes",
        free: "kubelet_volume_stats_inodes_free",
        capacity: "kubelet_volume_stats_inodes",
        look: "Many small files use them up while space remains; `find <dir> -xdev | wc -l` \
               in the pod shows where.",
    };
}

/// Two alerts for one kind of volume stat: critical when almost nothing is free, warning when
/// little is free and the trend fills it within 4 days. Volumes mounted read-only by every
/// pod (ReadOnlyMany claims) cannot fill from here and are left out; that reads
/// kube-state-metrics beside the kubelet, so under sharding the ruler evaluates them.
fn volume_filling_up(stat: &VolumeStat) -> [AlertRule; 2] {
    let VolumeStat {
        alert,
        what,
        free,
        capacity,
        look,
    } = stat;
    let free_percent = percent(
        PVC_LABELS,
        &max_by(PVC_LABELS, free, KUBELET),
        &max_by(PVC_LABELS, capacity, KUBELET),
    );
    let read_only = format!(
        "unless on ({PVC_LABELS}) {} == 1",
        ksm_series(
            PVC_LABELS,
            "kube_persistentvolumeclaim_access_mode",
            r#"access_mode="ReadOnlyMany""#
        )
    );
    let critical = fixed(
        alert,
        format!("{free_percent}\n< {VOLUME_CRITICAL_FREE_PERCENT}\n{read_only}"),
        "1m",
        Severity::Critical,
        format!("Volume of claim {PVC} has {PERCENT} {what} left"),
        format!(
            "The volume of PersistentVolumeClaim {PVC} has only {PERCENT} of its {what} free, \
             below {VOLUME_CRITICAL_FREE_PERCENT}%: writes will soon fail. {look}"
        ),
    );
    let warning = fixed(
        alert,
        format!(
            "{free_percent}\n< {VOLUME_WARNING_FREE_PERCENT}\n\
             and on ({PVC_LABELS}) max by ({PVC_LABELS}) (predict_linear({free}{{{KUBELET}}}[6h], {VOLUME_PREDICT_SECONDS})) < 0\n\
             {read_only}"
        ),
        "1h",
        Severity::Warning,
        format!("Volume of claim {PVC} is predicted to run out of {what} within 4 days"),
        format!(
            "The volume of PersistentVolumeClaim {PVC} has {PERCENT} of its {what} free, below \
             {VOLUME_WARNING_FREE_PERCENT}%, and at the rate of the last 6 hours will have none \
             left within 4 days. {look}"
        ),
    );
    [critical, warning]
}

fn persistent_volume_errors() -> AlertRule {
    fixed(
        "KubePersistentVolumeErrors",
        format!(
            "{} == 1",
            ksm_series(
                "persistentvolume, phase",
                "kube_persistentvolume_status_phase",
                r#"phase=~"Failed|Pending""#
            )
        ),
        "5m",
        Severity::Critical,
        "PersistentVolume {{ $labels.persistentvolume }} is {{ $labels.phase }}".into(),
        "PersistentVolume {{ $labels.persistentvolume }} has been in phase {{ $labels.phase }} \
         for 5 minutes: its provisioner or reclaim failed (Failed), or it is not available \
         (Pending). `kubectl describe pv {{ $labels.persistentvolume }}` shows the events."
            .into(),
    )
}

fn persistent_volume_claim_pending() -> AlertRule {
    fixed(
        "KubePersistentVolumeClaimPending",
        format!(
            "{} == 1",
            ksm_series(
                PVC_LABELS,
                "kube_persistentvolumeclaim_status_phase",
                r#"phase="Pending""#
            )
        ),
        "15m",
        Severity::Warning,
        format!("PersistentVolumeClaim {PVC} has been pending for 15 minutes"),
        format!(
            "PersistentVolumeClaim {PVC} has not been bound for 15 minutes: no volume matches \
             it and its StorageClass cannot provision one, or (WaitForFirstConsumer) no pod \
             that uses it has been scheduled. `kubectl -n {{{{ $labels.namespace }}}} describe \
             pvc {{{{ $labels.persistentvolumeclaim }}}}` shows the provisioner's events."
        ),
    )
}
