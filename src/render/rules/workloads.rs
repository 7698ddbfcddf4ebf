//! Workload alerts: pods crash-looping or not ready, containers waiting, Deployments,
//! StatefulSets and DaemonSets short of replicas or stuck in a rollout, Jobs failed, CronJobs
//! missed, HorizontalPodAutoscalers at their maximum. From kube-state-metrics; every rule
//! aggregates by the object's own labels, so a restart of kube-state-metrics (a new `instance`)
//! or a pod's new `uid` does not raise a second alert.

use super::{AlertRule, CONTAINER, CONTAINER_LABELS, KUBE_STATE_METRICS, fixed, ksm_series};
use crate::config::{Config, Severity};

// Alert templates: every alert names its object.
const POD: &str = "{{ $labels.namespace }}/{{ $labels.pod }}";
const DEPLOYMENT: &str = "{{ $labels.namespace }}/{{ $labels.deployment }}";
const STATEFULSET: &str = "{{ $labels.namespace }}/{{ $labels.statefulset }}";
const DAEMONSET: &str = "{{ $labels.namespace }}/{{ $labels.daemonset }}";
const JOB: &str = "{{ $labels.namespace }}/{{ $labels.job_name }}";
const CRONJOB: &str = "{{ $labels.namespace }}/{{ $labels.cronjob }}";
const HPA: &str = "{{ $labels.namespace }}/{{ $labels.horizontalpodautoscaler }}";
const VALUE: &str = "{{ $value }}";
const DURATION: &str = "{{ $value | humanizeDuration }}";

/// How long a Job may run before KubeJobNotCompleted, in seconds (12 hours).
const JOB_RUNTIME_LIMIT: u64 = 12 * 3600;
/// How far past its next scheduled time a CronJob may be before KubeCronJobScheduleMissed, in
/// seconds (15 minutes).
const CRONJOB_LATENESS: u64 = 15 * 60;

pub(super) fn rules(_config: &Config) -> Vec<AlertRule> {
    vec![
        pod_crash_looping(),
        pod_not_ready(),
        container_waiting(),
        replicas_mismatch(Workload::DEPLOYMENT),
        deployment_rollout_stuck(),
        replicas_mismatch(Workload::STATEFULSET),
        statefulset_update_not_rolled_out(),
        daemonset_rollout_stuck(),
        daemonset_not_scheduled(),
        daemonset_mis_scheduled(),
        job_failed(),
        job_not_completed(),
        cronjob_schedule_missed(),
        hpa_maxed_out(),
        hpa_replicas_mismatch(),
    ]
}

const POD_LABELS: &str = "namespace, pod";

fn pod_crash_looping() -> AlertRule {
    fixed(
        "KubePodCrashLooping",
        // Between two back-offs the container runs for a moment and the waiting series goes
        // away; looking back 5m (the longest back-off) keeps the alert from resetting.
        format!(
            "max by ({CONTAINER_LABELS}) (max_over_time(kube_pod_container_status_waiting_reason{{{KUBE_STATE_METRICS}, reason=\"CrashLoopBackOff\"}}[5m])) == 1"
        ),
        "15m",
        Severity::Warning,
        format!("Container {CONTAINER} is crash-looping"),
        format!(
            "Container {CONTAINER} has been restarting and waiting in CrashLoopBackOff for 15 \
             minutes: it exits soon after it starts. `kubectl -n {{{{ $labels.namespace }}}} \
             logs {{{{ $labels.pod }}}} -c {{{{ $labels.container }}}} --previous` shows why."
        ),
    )
}

fn pod_not_ready() -> AlertRule {
    fixed(
        "KubePodNotReady",
        // Pods that should be serving (not Succeeded or Failed) and have no Ready condition
        // that is true: a Pending pod has no Ready condition at all. Job pods are left to the
        // Job alerts: they are not meant to stay Ready.
        format!(
            "{phase} == 1\nunless on ({POD_LABELS}) {ready} == 1\nunless on ({POD_LABELS}) {owner}",
            phase = ksm_series(
                POD_LABELS,
                "kube_pod_status_phase",
                r#"phase=~"Pending|Running|Unknown""#
            ),
            ready = ksm_series(POD_LABELS, "kube_pod_status_ready", r#"condition="true""#),
            owner = ksm_series(POD_LABELS, "kube_pod_owner", r#"owner_kind="Job""#),
        ),
        "15m",
        Severity::Warning,
        format!("Pod {POD} has not been Ready for 15 minutes"),
        format!(
            "Pod {POD} has been pending, or running without passing its readiness probe, for \
             15 minutes, so it receives no traffic from its Services. `kubectl -n \
             {{{{ $labels.namespace }}}} describe pod {{{{ $labels.pod }}}}` shows its \
             conditions and events (unschedulable, image pull, failing probe)."
        ),
    )
}

fn container_waiting() -> AlertRule {
    fixed(
        "KubeContainerWaiting",
        // Any reason but CrashLoopBackOff, which has its own alert. The reason is aggregated
        // away because a failing pull alternates between ErrImagePull and ImagePullBackOff.
        format!(
            "{} == 1",
            ksm_series(
                CONTAINER_LABELS,
                "kube_pod_container_status_waiting_reason",
                r#"reason!="CrashLoopBackOff""#
            )
        ),
        "1h",
        Severity::Warning,
        format!("Container {CONTAINER} has been waiting for an hour"),
        format!(
            "Container {CONTAINER} has not started for an hour: it is waiting on its image \
             (ImagePullBackOff, ErrImagePull), its configuration (CreateContainerConfigError: a \
             missing ConfigMap or Secret) or the runtime. `kubectl -n {{{{ $labels.namespace }}}} \
             describe pod {{{{ $labels.pod }}}}` shows the reason."
        ),
    )
}

/// A kind of workload with desired replicas, as kube-state-metrics names its series.
struct Workload {
    alert: &'static str,
    kind: &'static str,
    label: &'static str,
    template: &'static str,
    desired: &'static str,
    /// The replicas that count as serving.
    serving: &'static str,
    updated: &'static str,
}

impl Workload {
    const DEPLOYMENT: Workload = Workload {
        alert: "KubeDeploymentReplicasMismatch",
        kind: "Deployment",
        label: "namespace, deployment",
        template: DEPLOYMENT,
        desired: "kube_deployment_spec_replicas",
        serving: "kube_deployment_status_replicas_available",
        updated: "kube_deployment_status_replicas_updated",
    };
    const STATEFULSET: Workload = Workload {
        alert: "KubeStatefulSetReplicasMismatch",
        kind: "StatefulSet",
        label: "namespace, statefulset",
        template: STATEFULSET,
        desired: "kube_statefulset_replicas",
        serving: "kube_statefulset_status_replicas_ready",
        updated: "kube_statefulset_status_replicas_updated",
    };
}

/// `unless` the workload's rollout has moved in the last 10 minutes: a rollout in progress is
/// short of replicas by design.
fn unless_progressing(by: &str, updated: &str) -> String {
    format!("unless on ({by}) max by ({by}) (changes({updated}{{{KUBE_STATE_METRICS}}}[10m])) > 0")
}

fn replicas_mismatch(w: Workload) -> AlertRule {
    let Workload {
        alert,
        kind,
        label,
        template,
        desired,
        serving,
        updated,
    } = w;
    fixed(
        alert,
        format!(
            "{} < on ({label}) {}\n{}",
            ksm_series(label, serving, ""),
            ksm_series(label, desired, ""),
            unless_progressing(label, updated)
        ),
        "15m",
        Severity::Warning,
        format!("{kind} {template} is short of replicas"),
        format!(
            "{kind} {template} has had only {VALUE} replicas available, fewer than it wants, \
             for 15 minutes, and no rollout is moving. `kubectl -n {{{{ $labels.namespace }}}} \
             describe {object} {{{{ $labels.{object} }}}}` and its pods' events say why \
             (unschedulable, crashing, not ready).",
            object = kind.to_ascii_lowercase()
        ),
    )
}

fn deployment_rollout_stuck() -> AlertRule {
    fixed(
        "KubeDeploymentRolloutStuck",
        format!(
            "{} == 1",
            ksm_series(
                "namespace, deployment",
                "kube_deployment_status_condition",
                r#"condition="Progressing", status="false", reason="ProgressDeadlineExceeded""#
            )
        ),
        "15m",
        Severity::Warning,
        format!("Deployment {DEPLOYMENT} rollout is stuck"),
        format!(
            "Deployment {DEPLOYMENT} has exceeded its progress deadline: its new ReplicaSet's \
             pods have not become available. `kubectl -n {{{{ $labels.namespace }}}} rollout \
             status deployment {{{{ $labels.deployment }}}}` and the new pods' events say why; \
             `kubectl rollout undo` goes back."
        ),
    )
}

fn statefulset_update_not_rolled_out() -> AlertRule {
    let by = "namespace, statefulset";
    fixed(
        "KubeStatefulSetUpdateNotRolledOut",
        // The current revision differs from the update revision and not every replica runs
        // the update: a rollout that has begun and stopped moving.
        format!(
            "max by ({by}) (\n  kube_statefulset_status_current_revision{{{KUBE_STATE_METRICS}}}\n  \
             unless on ({by}, revision) kube_statefulset_status_update_revision{{{KUBE_STATE_METRICS}}}\n)\n\
             and on ({by}) {} < on ({by}) {}\n{}",
            ksm_series(by, "kube_statefulset_status_replicas_updated", ""),
            ksm_series(by, "kube_statefulset_replicas", ""),
            unless_progressing(by, "kube_statefulset_status_replicas_updated"),
        ),
        "15m",
        Severity::Warning,
        format!("StatefulSet {STATEFULSET} update has not been rolled out"),
        format!(
            "StatefulSet {STATEFULSET} has a new revision that not all of its replicas run, and \
             the rollout has not moved for 15 minutes: a pod of the new revision does not become \
             ready, or the update strategy is OnDelete. `kubectl -n {{{{ $labels.namespace }}}} \
             rollout status statefulset {{{{ $labels.statefulset }}}}`."
        ),
    )
}

const DAEMONSET_LABELS: &str = "namespace, daemonset";

/// The DaemonSet's desired pods less one of its status counts: the value is how many it lacks.
fn daemonset_short(status: &str) -> String {
    format!(
        "{} - on ({DAEMONSET_LABELS}) {} > 0",
        ksm_series(
            DAEMONSET_LABELS,
            "kube_daemonset_status_desired_number_scheduled",
            ""
        ),
        ksm_series(DAEMONSET_LABELS, status, ""),
    )
}

fn daemonset_rollout_stuck() -> AlertRule {
    fixed(
        "KubeDaemonSetRolloutStuck",
        format!(
            "(\n  {}\n  or\n  {}\n)\n{}",
            daemonset_short("kube_daemonset_status_updated_number_scheduled"),
            daemonset_short("kube_daemonset_status_number_available"),
            unless_progressing(
                DAEMONSET_LABELS,
                "kube_daemonset_status_updated_number_scheduled"
            ),
        ),
        "15m",
        Severity::Warning,
        format!("DaemonSet {DAEMONSET} rollout is stuck"),
        format!(
            "DaemonSet {DAEMONSET} has had {VALUE} pods not updated or not available for 15 \
             minutes, and its rollout is not moving. `kubectl -n {{{{ $labels.namespace }}}} \
             rollout status daemonset {{{{ $labels.daemonset }}}}` and the failing pods' \
             events say why."
        ),
    )
}

fn daemonset_not_scheduled() -> AlertRule {
    fixed(
        "KubeDaemonSetNotScheduled",
        daemonset_short("kube_daemonset_status_current_number_scheduled"),
        "10m",
        Severity::Warning,
        format!("DaemonSet {DAEMONSET} has pods not scheduled"),
        format!(
            "{VALUE} nodes that DaemonSet {DAEMONSET} should run on have had no pod of it for 10 \
             minutes. The DaemonSet's events and `kubectl describe node` of those nodes say why \
             (resources, a host port in use)."
        ),
    )
}

fn daemonset_mis_scheduled() -> AlertRule {
    fixed(
        "KubeDaemonSetMisScheduled",
        format!(
            "{} > 0",
            ksm_series(
                DAEMONSET_LABELS,
                "kube_daemonset_status_number_misscheduled",
                ""
            )
        ),
        "15m",
        Severity::Warning,
        format!("DaemonSet {DAEMONSET} runs pods where it should not"),
        format!(
            "{VALUE} pods of DaemonSet {DAEMONSET} have run for 15 minutes on nodes its node \
             selector, affinity or tolerations no longer allow, usually after a node's labels \
             or taints changed."
        ),
    )
}

const JOB_LABELS: &str = "namespace, job_name";

/// More than `seconds` have passed since a kube-state-metrics timestamp, for the objects that
/// `filter` (an `and` or `unless`) keeps. The value is the time passed.
fn seconds_since(by: &str, timestamp: &str, seconds: u64, filter: &str) -> String {
    format!(
        "time() - {} > {seconds}\n{filter}",
        ksm_series(by, timestamp, "")
    )
}

fn job_failed() -> AlertRule {
    fixed(
        "KubeJobFailed",
        format!(
            "{} == 1",
            ksm_series(JOB_LABELS, "kube_job_failed", r#"condition="true""#)
        ),
        "15m",
        Severity::Warning,
        format!("Job {JOB} failed"),
        format!(
            "Job {JOB} has failed: its pods failed more often than its backoffLimit allows or \
             it ran past its activeDeadlineSeconds. `kubectl -n {{{{ $labels.namespace }}}} \
             describe job {{{{ $labels.job_name }}}}` and its pods' logs say why; delete the \
             Job to clear the alert."
        ),
    )
}

fn job_not_completed() -> AlertRule {
    fixed(
        "KubeJobNotCompleted",
        seconds_since(
            JOB_LABELS,
            "kube_job_status_start_time",
            JOB_RUNTIME_LIMIT,
            &format!(
                "and on ({JOB_LABELS}) {} > 0",
                ksm_series(JOB_LABELS, "kube_job_status_active", "")
            ),
        ),
        "15m",
        Severity::Warning,
        format!("Job {JOB} has been running for {DURATION}"),
        format!(
            "Job {JOB} started {DURATION} ago, more than 12 hours, and still has active pods. \
             A pod that hangs, or a Job whose work grew, keeps CronJobs with a Forbid \
             concurrency policy from starting the next run."
        ),
    )
}

fn cronjob_schedule_missed() -> AlertRule {
    let by = "namespace, cronjob";
    fixed(
        "KubeCronJobScheduleMissed",
        // kube-state-metrics computes the next run from the schedule and the last run; when
        // that time is long past, the controller has not started the run.
        seconds_since(
            by,
            "kube_cronjob_next_schedule_time",
            CRONJOB_LATENESS,
            &format!(
                "unless on ({by}) {} == 1",
                ksm_series(by, "kube_cronjob_spec_suspend", "")
            ),
        ),
        "15m",
        Severity::Warning,
        format!("CronJob {CRONJOB} missed its schedule"),
        format!(
            "CronJob {CRONJOB} was due to start a Job {DURATION} ago and has not: the previous \
             run is still going under a Forbid concurrency policy, the startingDeadlineSeconds \
             passed, or the controller is not running. `kubectl -n {{{{ $labels.namespace }}}} \
             describe cronjob {{{{ $labels.cronjob }}}}` shows its events."
        ),
    )
}

const HPA_LABELS: &str = "namespace, horizontalpodautoscaler";

fn hpa_maxed_out() -> AlertRule {
    let series = |m: &str| ksm_series(HPA_LABELS, m, "");
    fixed(
        "KubeHpaMaxedOut",
        // An HPA whose minimum is its maximum is pinned on purpose.
        format!(
            "{current} >= on ({HPA_LABELS}) {max}\nand on ({HPA_LABELS}) {max} > on ({HPA_LABELS}) {min}",
            current = series("kube_horizontalpodautoscaler_status_current_replicas"),
            max = series("kube_horizontalpodautoscaler_spec_max_replicas"),
            min = series("kube_horizontalpodautoscaler_spec_min_replicas"),
        ),
        "15m",
        Severity::Warning,
        format!("HPA {HPA} has been at its maximum of {VALUE} replicas for 15 minutes"),
        format!(
            "HorizontalPodAutoscaler {HPA} has run its maximum, {VALUE} replicas, for 15 \
             minutes: the load may need more than it is allowed. Raise maxReplicas if the \
             cluster has room, or find out what drives the metric it scales on."
        ),
    )
}

fn hpa_replicas_mismatch() -> AlertRule {
    fixed(
        "KubeHpaReplicasMismatch",
        format!(
            "{} != on ({HPA_LABELS}) {}",
            ksm_series(
                HPA_LABELS,
                "kube_horizontalpodautoscaler_status_desired_replicas",
                ""
            ),
            ksm_series(
                HPA_LABELS,
                "kube_horizontalpodautoscaler_status_current_replicas",
                ""
            ),
        ),
        "15m",
        Severity::Warning,
        format!("HPA {HPA} has not reached its desired replicas"),
        format!(
            "HorizontalPodAutoscaler {HPA} has wanted {VALUE} replicas for 15 minutes and does \
             not have them: new pods do not schedule or do not become ready. `kubectl -n \
             {{{{ $labels.namespace }}}} describe hpa {{{{ $labels.horizontalpodautoscaler }}}}` \
             and the target's pods' events say why."
        ),
    )
}
