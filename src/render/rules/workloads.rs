//! Workload alerts: pods crash-looping or not ready, containers waiting, Deployments,
//! StatefulSets and DaemonSets short of replicas or stuck in a rollout, Jobs failed, CronJobs
//! missed, HorizontalPodAutoscalers at their maximum. From kube-state-metrics; every rule
//! aggregates by the object's own labels, so a restart of kube-state-metrics (a new `instance`)
//! or a pod's new `uid` does not raise a second alert.

use super::{AlertRule, CONTAINER, KUBE_STATE_METRICS, Row, Settings::Fixed, build};
use crate::{
    config::{Config, Severity::Warning},
    render::NodeClasses,
};

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

pub(super) fn rules(config: &Config, _: NodeClasses) -> Vec<AlertRule> {
    let values = values![
        KUBE_STATE_METRICS,
        CONTAINER,
        POD,
        DEPLOYMENT,
        STATEFULSET,
        DAEMONSET,
        JOB,
        CRONJOB,
        HPA,
        VALUE,
        DURATION,
        JOB_RUNTIME_LIMIT,
        CRONJOB_LATENESS,
    ];
    build(ALERTS, config, &values)
}

// Workloads short of replicas leave out those whose rollout has moved in the last 10 minutes
// (`unless ... changes(...[10m]) > 0`): a rollout in progress is short of replicas by design.
const ALERTS: &[Row] = &[
    Row {
        alert: "KubePodCrashLooping",
        // Between two back-offs the container runs for a moment and the waiting series goes
        // away; looking back 5m (the longest back-off) keeps the alert from resetting.
        expr: r#"max by (namespace, pod, container) (max_over_time(kube_pod_container_status_waiting_reason{{KUBE_STATE_METRICS}, reason="CrashLoopBackOff"}[5m])) == 1"#,
        settings: Fixed("15m", Warning),
        summary: "Container {CONTAINER} is crash-looping",
        description: "Container {CONTAINER} has been restarting and waiting in CrashLoopBackOff \
            for 15 minutes: it exits soon after it starts. `kubectl -n {{ $labels.namespace }} \
            logs {{ $labels.pod }} -c {{ $labels.container }} --previous` shows why.",
    },
    Row {
        alert: "KubePodNotReady",
        // Pods that should be serving (not Succeeded or Failed) and have no Ready condition
        // that is true: a Pending pod has no Ready condition at all. Job pods are left to the
        // Job alerts: they are not meant to stay Ready.
        expr: "max by (namespace, pod) (kube_pod_status_phase{{KUBE_STATE_METRICS}, phase=~\"Pending|Running|Unknown\"}) == 1\n\
            unless on (namespace, pod) max by (namespace, pod) (kube_pod_status_ready{{KUBE_STATE_METRICS}, condition=\"true\"}) == 1\n\
            unless on (namespace, pod) max by (namespace, pod) (kube_pod_owner{{KUBE_STATE_METRICS}, owner_kind=\"Job\"})",
        settings: Fixed("15m", Warning),
        summary: "Pod {POD} has not been Ready for 15 minutes",
        description: "Pod {POD} has been pending, or running without passing its readiness \
            probe, for 15 minutes, so it receives no traffic from its Services. `kubectl -n \
            {{ $labels.namespace }} describe pod {{ $labels.pod }}` shows its conditions and \
            events (unschedulable, image pull, failing probe).",
    },
    Row {
        alert: "KubeContainerWaiting",
        // Any reason but CrashLoopBackOff, which has its own alert. The reason is aggregated
        // away because a failing pull alternates between ErrImagePull and ImagePullBackOff.
        expr: r#"max by (namespace, pod, container) (kube_pod_container_status_waiting_reason{{KUBE_STATE_METRICS}, reason!="CrashLoopBackOff"}) == 1"#,
        settings: Fixed("1h", Warning),
        summary: "Container {CONTAINER} has been waiting for an hour",
        description: "Container {CONTAINER} has not started for an hour: it is waiting on its \
            image (ImagePullBackOff, ErrImagePull), its configuration \
            (CreateContainerConfigError: a missing ConfigMap or Secret) or the runtime. \
            `kubectl -n {{ $labels.namespace }} describe pod {{ $labels.pod }}` shows the \
            reason.",
    },
    Row {
        alert: "KubeDeploymentReplicasMismatch",
        expr: "max by (namespace, deployment) (kube_deployment_status_replicas_available{{KUBE_STATE_METRICS}}) < on (namespace, deployment) max by (namespace, deployment) (kube_deployment_spec_replicas{{KUBE_STATE_METRICS}})\n\
            unless on (namespace, deployment) max by (namespace, deployment) (changes(kube_deployment_status_replicas_updated{{KUBE_STATE_METRICS}}[10m])) > 0",
        settings: Fixed("15m", Warning),
        summary: "Deployment {DEPLOYMENT} is short of replicas",
        description: "Deployment {DEPLOYMENT} has had only {VALUE} replicas available, fewer \
            than it wants, for 15 minutes, and no rollout is moving. `kubectl -n \
            {{ $labels.namespace }} describe deployment {{ $labels.deployment }}` and its pods' \
            events say why (unschedulable, crashing, not ready).",
    },
    Row {
        alert: "KubeDeploymentRolloutStuck",
        expr: r#"max by (namespace, deployment) (kube_deployment_status_condition{{KUBE_STATE_METRICS}, condition="Progressing", status="false", reason="ProgressDeadlineExceeded"}) == 1"#,
        settings: Fixed("15m", Warning),
        summary: "Deployment {DEPLOYMENT} rollout is stuck",
        description: "Deployment {DEPLOYMENT} has exceeded its progress deadline: its new \
            ReplicaSet's pods have not become available. `kubectl -n {{ $labels.namespace }} \
            rollout status deployment {{ $labels.deployment }}` and the new pods' events say \
            why; `kubectl rollout undo` goes back.",
    },
    Row {
        alert: "KubeStatefulSetReplicasMismatch",
        expr: "max by (namespace, statefulset) (kube_statefulset_status_replicas_ready{{KUBE_STATE_METRICS}}) < on (namespace, statefulset) max by (namespace, statefulset) (kube_statefulset_replicas{{KUBE_STATE_METRICS}})\n\
            unless on (namespace, statefulset) max by (namespace, statefulset) (changes(kube_statefulset_status_replicas_updated{{KUBE_STATE_METRICS}}[10m])) > 0",
        settings: Fixed("15m", Warning),
        summary: "StatefulSet {STATEFULSET} is short of replicas",
        description: "StatefulSet {STATEFULSET} has had only {VALUE} replicas available, fewer \
            than it wants, for 15 minutes, and no rollout is moving. `kubectl -n \
            {{ $labels.namespace }} describe statefulset {{ $labels.statefulset }}` and its \
            pods' events say why (unschedulable, crashing, not ready).",
    },
    Row {
        alert: "KubeStatefulSetUpdateNotRolledOut",
        // The current revision differs from the update revision and not every replica runs
        // the update: a rollout that has begun and stopped moving.
        expr: "max by (namespace, statefulset) (\n  \
            kube_statefulset_status_current_revision{{KUBE_STATE_METRICS}}\n  \
            unless on (namespace, statefulset, revision) kube_statefulset_status_update_revision{{KUBE_STATE_METRICS}}\n\
            )\n\
            and on (namespace, statefulset) max by (namespace, statefulset) (kube_statefulset_status_replicas_updated{{KUBE_STATE_METRICS}}) < on (namespace, statefulset) max by (namespace, statefulset) (kube_statefulset_replicas{{KUBE_STATE_METRICS}})\n\
            unless on (namespace, statefulset) max by (namespace, statefulset) (changes(kube_statefulset_status_replicas_updated{{KUBE_STATE_METRICS}}[10m])) > 0",
        settings: Fixed("15m", Warning),
        summary: "StatefulSet {STATEFULSET} update has not been rolled out",
        description: "StatefulSet {STATEFULSET} has a new revision that not all of its replicas \
            run, and the rollout has not moved for 15 minutes: a pod of the new revision does \
            not become ready, or the update strategy is OnDelete. `kubectl -n \
            {{ $labels.namespace }} rollout status statefulset {{ $labels.statefulset }}`.",
    },
    Row {
        alert: "KubeDaemonSetRolloutStuck",
        // The value is how many pods the DaemonSet lacks, not updated or not available.
        expr: "(\n  \
            max by (namespace, daemonset) (kube_daemonset_status_desired_number_scheduled{{KUBE_STATE_METRICS}}) - on (namespace, daemonset) max by (namespace, daemonset) (kube_daemonset_status_updated_number_scheduled{{KUBE_STATE_METRICS}}) > 0\n  \
            or\n  \
            max by (namespace, daemonset) (kube_daemonset_status_desired_number_scheduled{{KUBE_STATE_METRICS}}) - on (namespace, daemonset) max by (namespace, daemonset) (kube_daemonset_status_number_available{{KUBE_STATE_METRICS}}) > 0\n\
            )\n\
            unless on (namespace, daemonset) max by (namespace, daemonset) (changes(kube_daemonset_status_updated_number_scheduled{{KUBE_STATE_METRICS}}[10m])) > 0",
        settings: Fixed("15m", Warning),
        summary: "DaemonSet {DAEMONSET} rollout is stuck",
        description: "DaemonSet {DAEMONSET} has had {VALUE} pods not updated or not available \
            for 15 minutes, and its rollout is not moving. `kubectl -n {{ $labels.namespace }} \
            rollout status daemonset {{ $labels.daemonset }}` and the failing pods' events say \
            why.",
    },
    Row {
        alert: "KubeDaemonSetNotScheduled",
        expr: "max by (namespace, daemonset) (kube_daemonset_status_desired_number_scheduled{{KUBE_STATE_METRICS}}) - on (namespace, daemonset) max by (namespace, daemonset) (kube_daemonset_status_current_number_scheduled{{KUBE_STATE_METRICS}}) > 0",
        settings: Fixed("10m", Warning),
        summary: "DaemonSet {DAEMONSET} has pods not scheduled",
        description: "{VALUE} nodes that DaemonSet {DAEMONSET} should run on have had no pod of \
            it for 10 minutes. The DaemonSet's events and `kubectl describe node` of those \
            nodes say why (resources, a host port in use).",
    },
    Row {
        alert: "KubeDaemonSetMisScheduled",
        expr: "max by (namespace, daemonset) (kube_daemonset_status_number_misscheduled{{KUBE_STATE_METRICS}}) > 0",
        settings: Fixed("15m", Warning),
        summary: "DaemonSet {DAEMONSET} runs pods where it should not",
        description: "{VALUE} pods of DaemonSet {DAEMONSET} have run for 15 minutes on nodes \
            its node selector, affinity or tolerations no longer allow, usually after a node's \
            labels or taints changed.",
    },
    Row {
        alert: "KubeJobFailed",
        expr: r#"max by (namespace, job_name) (kube_job_failed{{KUBE_STATE_METRICS}, condition="true"}) == 1"#,
        settings: Fixed("15m", Warning),
        summary: "Job {JOB} failed",
        description: "Job {JOB} has failed: its pods failed more often than its backoffLimit \
            allows or it ran past its activeDeadlineSeconds. `kubectl -n \
            {{ $labels.namespace }} describe job {{ $labels.job_name }}` and its pods' logs say \
            why; delete the Job to clear the alert.",
    },
    Row {
        alert: "KubeJobNotCompleted",
        // The value is how long the Job has run.
        expr: "time() - max by (namespace, job_name) (kube_job_status_start_time{{KUBE_STATE_METRICS}}) > {JOB_RUNTIME_LIMIT}\n\
            and on (namespace, job_name) max by (namespace, job_name) (kube_job_status_active{{KUBE_STATE_METRICS}}) > 0",
        settings: Fixed("15m", Warning),
        summary: "Job {JOB} has been running for {DURATION}",
        description: "Job {JOB} started {DURATION} ago, more than 12 hours, and still has active \
            pods. A pod that hangs, or a Job whose work grew, keeps CronJobs with a Forbid \
            concurrency policy from starting the next run.",
    },
    Row {
        alert: "KubeCronJobScheduleMissed",
        // kube-state-metrics computes the next run from the schedule and the last run; when
        // that time is long past, the controller has not started the run.
        expr: "time() - max by (namespace, cronjob) (kube_cronjob_next_schedule_time{{KUBE_STATE_METRICS}}) > {CRONJOB_LATENESS}\n\
            unless on (namespace, cronjob) max by (namespace, cronjob) (kube_cronjob_spec_suspend{{KUBE_STATE_METRICS}}) == 1",
        settings: Fixed("15m", Warning),
        summary: "CronJob {CRONJOB} missed its schedule",
        description: "CronJob {CRONJOB} was due to start a Job {DURATION} ago and has not: the \
            previous run is still going under a Forbid concurrency policy, the \
            startingDeadlineSeconds passed, or the controller is not running. `kubectl -n \
            {{ $labels.namespace }} describe cronjob {{ $labels.cronjob }}` shows its events.",
    },
    Row {
        alert: "KubeHpaMaxedOut",
        // An HPA whose minimum is its maximum is pinned on purpose.
        expr: "max by (namespace, horizontalpodautoscaler) (kube_horizontalpodautoscaler_status_current_replicas{{KUBE_STATE_METRICS}}) >= on (namespace, horizontalpodautoscaler) max by (namespace, horizontalpodautoscaler) (kube_horizontalpodautoscaler_spec_max_replicas{{KUBE_STATE_METRICS}})\n\
            and on (namespace, horizontalpodautoscaler) max by (namespace, horizontalpodautoscaler) (kube_horizontalpodautoscaler_spec_max_replicas{{KUBE_STATE_METRICS}}) > on (namespace, horizontalpodautoscaler) max by (namespace, horizontalpodautoscaler) (kube_horizontalpodautoscaler_spec_min_replicas{{KUBE_STATE_METRICS}})",
        settings: Fixed("15m", Warning),
        summary: "HPA {HPA} has been at its maximum of {VALUE} replicas for 15 minutes",
        description: "HorizontalPodAutoscaler {HPA} has run its maximum, {VALUE} replicas, for \
            15 minutes: the load may need more than it is allowed. Raise maxReplicas if the \
            cluster has room, or find out what drives the metric it scales on.",
    },
    Row {
        alert: "KubeHpaReplicasMismatch",
        expr: "max by (namespace, horizontalpodautoscaler) (kube_horizontalpodautoscaler_status_desired_replicas{{KUBE_STATE_METRICS}}) != on (namespace, horizontalpodautoscaler) max by (namespace, horizontalpodautoscaler) (kube_horizontalpodautoscaler_status_current_replicas{{KUBE_STATE_METRICS}})",
        settings: Fixed("15m", Warning),
        summary: "HPA {HPA} has not reached its desired replicas",
        description: "HorizontalPodAutoscaler {HPA} has wanted {VALUE} replicas for 15 minutes \
            and does not have them: new pods do not schedule or do not become ready. `kubectl \
            -n {{ $labels.namespace }} describe hpa {{ $labels.horizontalpodautoscaler }}` and \
            the target's pods' events say why.",
    },
];
