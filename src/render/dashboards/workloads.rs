//! The workload dashboards, linked as a chain: cluster compute resources -> namespace (pods)
//! -> workload -> pod -> node detail, and the persistent volumes. CPU and memory use come from
//! cAdvisor (through the kubelet), requests, limits, owners and phases from kube-state-metrics;
//! pods are grouped into workloads inline, through `kube_pod_owner` and `kube_replicaset_owner`.
//! The totals of the whole cluster and of one namespace read the sums the stack records
//! ([`recording`]): summed from every container at each step, one viewer of the cluster dashboard
//! cost ~10 MiB and 0.17 s of CPU per node.

use super::{
    Dashboard, DashboardLink, Kind, Panel, cluster_variable, dashboard_url, datasource_variable,
    label_variable, node_detail_url,
};
use crate::{
    config::Config,
    render::rules::recording::{self, CONTAINERS},
};

pub const CLUSTER: &str = "k8s-compute-cluster";
pub const NAMESPACE: &str = "k8s-compute-namespace";
pub const WORKLOAD: &str = "k8s-compute-workload";
pub const POD: &str = "k8s-compute-pod";
pub const VOLUMES: &str = "k8s-persistent-volumes";

/// kube-state-metrics' series (it keeps its own namespace/pod labels) of the chosen cluster.
const KSM: &str = r#"job="kube-state-metrics", cluster=~"$cluster""#;
/// cAdvisor's series of the chosen cluster: per container, and per pod for the network.
const CADVISOR: &str = r#"job="kubelet", metrics_path="/metrics/cadvisor", cluster=~"$cluster""#;
/// The kubelet's own series (volume stats).
const KUBELET: &str = r#"job="kubelet", metrics_path="/metrics", cluster=~"$cluster""#;
const ONE_NAMESPACE: &str = r#"namespace="$namespace""#;
const ONE_POD: &str = r#"namespace="$namespace", pod="$pod""#;
/// Pods and ReplicaSets owned by the chosen workload (the final owner's kind and name).
const ONE_WORKLOAD: &str = r#"owner_kind="$type", owner_name="$workload""#;
/// The kinds the workload dashboard shows: the final owners of pods.
const WORKLOAD_KINDS: &str = "Deployment|StatefulSet|DaemonSet|Job";
/// The labels that name a pod in any cluster.
const POD_KEY: &str = "cluster, namespace, pod";

pub fn dashboards(config: &Config) -> Vec<Dashboard> {
    vec![
        cluster(config),
        namespace(config),
        workload(config),
        pod(config),
        volumes(config),
    ]
}

/// The links row every workload dashboard carries.
fn links() -> Vec<DashboardLink> {
    vec![
        DashboardLink {
            title: "Cluster",
            slug: CLUSTER,
            tooltip: "Compute resources of the whole cluster, by namespace",
        },
        DashboardLink {
            title: "Namespace",
            slug: NAMESPACE,
            tooltip: "The pods and workloads of one namespace",
        },
        DashboardLink {
            title: "Workload",
            slug: WORKLOAD,
            tooltip: "One Deployment, StatefulSet, DaemonSet or Job",
        },
        DashboardLink {
            title: "Pod",
            slug: POD,
            tooltip: "One pod, container by container",
        },
        DashboardLink {
            title: "Persistent volumes",
            slug: VOLUMES,
            tooltip: "Space and inodes of each PersistentVolumeClaim",
        },
    ]
}

/// `a, b, c` of the non-empty matchers.
fn matchers(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(", ")
}

/// CPU cores used by the containers `scope` selects, summed by `by`.
fn cpu_usage(scope: &str, by: &str) -> String {
    format!(
        "sum by ({by}) (rate(container_cpu_usage_seconds_total{{{}}}[$__rate_interval]))",
        matchers(&[CADVISOR, CONTAINERS, scope])
    )
}

/// Memory working set (what the kubelet evicts and the kernel OOM-kills by) of the containers
/// `scope` selects, summed by `by`.
fn memory_usage(scope: &str, by: &str) -> String {
    format!(
        "sum by ({by}) (container_memory_working_set_bytes{{{}}})",
        matchers(&[CADVISOR, CONTAINERS, scope])
    )
}

/// Requests or limits (`kind`) of `resource`, summed by `by`, of the pods that hold them now:
/// Pending or Running, not finished ones, whose spec kube-state-metrics still reports.
fn committed(kind: &str, resource: &str, scope: &str, by: &str) -> String {
    format!(
        r#"sum by ({by}) (kube_pod_container_resource_{kind}{{{}}} * on ({POD_KEY}) group_left () max by ({POD_KEY}) (kube_pod_status_phase{{{}}} == 1))"#,
        matchers(&[KSM, &format!(r#"resource="{resource}""#), scope]),
        matchers(&[KSM, r#"phase=~"Pending|Running""#, scope]),
    )
}

/// A sum the stack records ([`recording`]) of the chosen cluster, narrowed by `scope`, summed
/// further by `by`.
fn recorded(record: &str, scope: &str, by: &str) -> String {
    format!(
        "sum by ({by}) ({record}{{{}}})",
        matchers(&[r#"cluster=~"$cluster""#, scope])
    )
}

/// [`committed`] from the recorded sums ([`recording::REQUESTS`] or [`recording::LIMITS`]).
fn recorded_committed(record: &str, resource: &str, scope: &str, by: &str) -> String {
    recorded(
        record,
        &matchers(&[&format!(r#"resource="{resource}""#), scope]),
        by,
    )
}

/// Bytes per second a pod's network interfaces receive or transmit (`direction`), by `by`.
fn network(direction: &str, scope: &str, by: &str) -> String {
    format!(
        "sum by ({by}) (rate(container_network_{direction}_bytes_total{{{}}}[$__rate_interval]))",
        matchers(&[CADVISOR, scope])
    )
}

/// One series per pod of `scope` with the final owner as `workload` and `workload_type`: the
/// pod's owner, or for a pod of a ReplicaSet, the ReplicaSet's owner (a Deployment). `owner`
/// narrows to one final owner. Pods without an owner, and bare ReplicaSets', have none.
fn pod_owners(scope: &str, owner: &str) -> String {
    let direct = format!(
        r#"kube_pod_owner{{{}}}"#,
        matchers(&[
            KSM,
            scope,
            &format!(r#"owner_kind=~"{WORKLOAD_KINDS}""#),
            owner
        ])
    );
    let through_replicaset = format!(
        r#"label_replace(kube_pod_owner{{{}}}, "replicaset", "$1", "owner_name", "(.+)") * on (cluster, namespace, replicaset) group_left (owner_kind, owner_name) kube_replicaset_owner{{{}}}"#,
        matchers(&[KSM, scope, r#"owner_kind="ReplicaSet""#]),
        matchers(&[KSM, scope, r#"owner_kind="Deployment""#, owner]),
    );
    format!(
        r#"max by ({POD_KEY}, workload, workload_type) (label_replace(label_replace({direct} or {through_replicaset}, "workload", "$1", "owner_name", "(.+)"), "workload_type", "$1", "owner_kind", "(.+)"))"#
    )
}

/// `per_pod` (a vector by [`POD_KEY`]) for the pods `owners` ([`pod_owners`]) names, summed by
/// `by` (which may name `workload` and `workload_type`).
fn by_owner(per_pod: &str, owners: &str, by: &str) -> String {
    format!(
        "sum by ({by}) ({per_pod} * on ({POD_KEY}) group_left (workload, workload_type) {owners})"
    )
}

fn namespace_variable() -> serde_json::Value {
    label_variable(
        "namespace",
        "Namespace",
        &format!("kube_namespace_status_phase{{{KSM}}}"),
        "namespace",
    )
}

fn pod_variable(scope: &str) -> serde_json::Value {
    label_variable(
        "pod",
        "Pod",
        &format!("kube_pod_info{{{}}}", matchers(&[KSM, scope])),
        "pod",
    )
}

/// The link to the namespace dashboard from a panel showing `namespace` (a table column or a
/// series label).
fn to_namespace(namespace: &str) -> String {
    dashboard_url(NAMESPACE, &[("namespace", namespace)])
}

fn to_pod(namespace: &str, pod: &str) -> String {
    dashboard_url(POD, &[("namespace", namespace), ("pod", pod)])
}

fn cluster(config: &Config) -> Dashboard {
    let by = "namespace";
    let allocatable = |resource: &str| {
        format!(r#"sum(kube_node_status_allocatable{{{KSM}, resource="{resource}"}})"#)
    };
    let (cpu, memory) = (allocatable("cpu"), allocatable("memory"));
    let share = |title: &str, description: &str, expr: String| {
        Panel::new(Kind::Stat, title, description, "percentunit")
            .width(4)
            .query(expr, "share")
    };
    let panels = vec![
        share("CPU utilisation", "CPU the containers use, of what the nodes can allocate to pods.", format!("{} / {cpu}", recorded(recording::CPU_USAGE, "", ""))),
        share("CPU requests commitment", "CPU the running pods request, of what the nodes can allocate; above 100% some pods cannot be scheduled.", format!("{} / {cpu}", recorded_committed(recording::REQUESTS, "cpu", "", ""))),
        share("CPU limits commitment", "CPU the running pods may use at most, of what the nodes can allocate; above 100% the nodes are overcommitted.", format!("{} / {cpu}", recorded_committed(recording::LIMITS, "cpu", "", ""))),
        share("Memory utilisation", "Memory working set of the containers, of what the nodes can allocate to pods.", format!("{} / {memory}", recorded(recording::MEMORY_USAGE, "", ""))),
        share("Memory requests commitment", "Memory the running pods request, of what the nodes can allocate.", format!("{} / {memory}", recorded_committed(recording::REQUESTS, "memory", "", ""))),
        share("Memory limits commitment", "Memory the running pods may use at most, of what the nodes can allocate; above 100% a busy node OOM-kills.", format!("{} / {memory}", recorded_committed(recording::LIMITS, "memory", "", ""))),
        Panel::new(Kind::TimeSeries, "CPU usage by namespace", "CPU cores the containers of each namespace use. Click a line for the namespace.", "none")
            .stacked()
            .query(recorded(recording::CPU_USAGE, "", by), "{{namespace}}")
            .link(None, "Namespace ${__field.labels.namespace}", to_namespace("${__field.labels.namespace}")),
        Panel::new(Kind::TimeSeries, "Memory usage by namespace", "Memory working set of the containers of each namespace. Click a line for the namespace.", "bytes")
            .stacked()
            .query(recorded(recording::MEMORY_USAGE, "", by), "{{namespace}}")
            .link(None, "Namespace ${__field.labels.namespace}", to_namespace("${__field.labels.namespace}")),
        Panel::new(Kind::Table, "Namespaces", "Pods, CPU and memory of each namespace: used, requested, limited, and used of requested. Click a namespace for its pods.", "none")
            .height(10)
            .column(format!("count by ({by}) (kube_pod_info{{{KSM}}})"), "Pods", "none")
            .column(recorded(recording::CPU_USAGE, "", by), "CPU used", "none")
            .column(recorded_committed(recording::REQUESTS, "cpu", "", by), "CPU requests", "none")
            .column(format!("{} / {}", recorded(recording::CPU_USAGE, "", by), recorded_committed(recording::REQUESTS, "cpu", "", by)), "CPU used of requests", "percentunit")
            .column(recorded_committed(recording::LIMITS, "cpu", "", by), "CPU limits", "none")
            .column(recorded(recording::MEMORY_USAGE, "", by), "Memory used", "bytes")
            .column(recorded_committed(recording::REQUESTS, "memory", "", by), "Memory requests", "bytes")
            .column(format!("{} / {}", recorded(recording::MEMORY_USAGE, "", by), recorded_committed(recording::REQUESTS, "memory", "", by)), "Memory used of requests", "percentunit")
            .column(recorded_committed(recording::LIMITS, "memory", "", by), "Memory limits", "bytes")
            .link(Some("namespace"), "Namespace ${__data.fields.namespace}", to_namespace("${__data.fields.namespace}")),
    ];
    Dashboard {
        slug: CLUSTER,
        title: "Kubernetes / Compute resources / Cluster",
        description: "CPU and memory of the whole cluster: used, requested and limited, by namespace.",
        variables: vec![datasource_variable(), cluster_variable(config)],
        panels,
        links: links(),
    }
}

fn namespace(config: &Config) -> Dashboard {
    let ns = ONE_NAMESPACE;
    let by = POD_KEY;
    let to_pod_series = to_pod("${__field.labels.namespace}", "${__field.labels.pod}");
    let per_pod = |kind: Kind, title: &str, description: &str, unit: &'static str, expr: String| {
        Panel::new(kind, title, description, unit)
            .query(expr, "{{pod}}")
            .link(None, "Pod ${__field.labels.pod}", to_pod_series.clone())
    };
    let owners = pod_owners(ns, "");
    let total = |title: &str, description: &str, unit: &'static str, expr: String| {
        Panel::new(Kind::Stat, title, description, unit)
            .width(4)
            .query(expr, "total")
    };
    let panels = vec![
        total("CPU used", "CPU cores the namespace's containers use.", "none", recorded(recording::CPU_USAGE, ns, "")),
        total("CPU requests", "CPU cores the namespace's running pods request.", "none", recorded_committed(recording::REQUESTS, "cpu", ns, "")),
        total("CPU limits", "CPU cores the namespace's running pods may use at most.", "none", recorded_committed(recording::LIMITS, "cpu", ns, "")),
        total("Memory used", "Memory working set of the namespace's containers.", "bytes", recorded(recording::MEMORY_USAGE, ns, "")),
        total("Memory requests", "Memory the namespace's running pods request.", "bytes", recorded_committed(recording::REQUESTS, "memory", ns, "")),
        total("Memory limits", "Memory the namespace's running pods may use at most.", "bytes", recorded_committed(recording::LIMITS, "memory", ns, "")),
        per_pod(Kind::TimeSeries, "CPU usage per pod", "CPU cores each pod's containers use. Click a line for the pod.", "none", cpu_usage(ns, by)).stacked(),
        per_pod(Kind::TimeSeries, "Memory usage per pod", "Memory working set of each pod's containers. Click a line for the pod.", "bytes", memory_usage(ns, by)).stacked(),
        per_pod(Kind::TimeSeries, "Network received per pod", "Bytes each pod receives per second.", "Bps", network("receive", ns, by)),
        per_pod(Kind::TimeSeries, "Network transmitted per pod", "Bytes each pod sends per second.", "Bps", network("transmit", ns, by)),
        Panel::new(Kind::Table, "Pods", "CPU and memory of each pod: used, requested, limited. Click a pod for its containers.", "none")
            .height(10)
            .column(cpu_usage(ns, by), "CPU used", "none")
            .column(committed("requests", "cpu", ns, by), "CPU requests", "none")
            .column(committed("limits", "cpu", ns, by), "CPU limits", "none")
            .column(memory_usage(ns, by), "Memory used", "bytes")
            .column(committed("requests", "memory", ns, by), "Memory requests", "bytes")
            .column(committed("limits", "memory", ns, by), "Memory limits", "bytes")
            .link(Some("pod"), "Pod ${__data.fields.pod}", to_pod("${__data.fields.namespace}", "${__data.fields.pod}")),
        Panel::new(Kind::Table, "Workloads", "Each Deployment, StatefulSet, DaemonSet and Job with its pods and what they use. Click a workload for it.", "none")
            .height(10)
            .column(format!("count by (workload, workload_type) ({owners})"), "Pods", "none")
            .column(by_owner(&cpu_usage(ns, by), &owners, "workload, workload_type"), "CPU used", "none")
            .column(by_owner(&memory_usage(ns, by), &owners, "workload, workload_type"), "Memory used", "bytes")
            .link(
                Some("workload"),
                "${__data.fields.workload_type} ${__data.fields.workload}",
                dashboard_url(WORKLOAD, &[
                    ("namespace", "${namespace}"),
                    ("type", "${__data.fields.workload_type}"),
                    ("workload", "${__data.fields.workload}"),
                ]),
            ),
    ];
    Dashboard {
        slug: NAMESPACE,
        title: "Kubernetes / Compute resources / Namespace (pods)",
        description: "One namespace: CPU, memory and network of each pod, against requests and limits, and its workloads.",
        variables: vec![
            datasource_variable(),
            cluster_variable(config),
            namespace_variable(),
        ],
        panels,
        links: links(),
    }
}

/// The value of one of the four workload kinds' metrics (`metric`, naming the workload in
/// `label`), for the chosen workload, whatever its kind: each kind's series carries its kind as
/// `workload_type`, and only the chosen type's survive the `and`.
fn of_chosen_workload(metrics: [(&str, &str, &str); 4]) -> String {
    let each: Vec<String> = metrics
        .iter()
        .map(|(kind, metric, label)| {
            format!(
                r#"label_replace(sum by ({label}) ({metric}{{{KSM}, {ONE_NAMESPACE}, {label}="$workload"}}), "workload_type", "{kind}", "", "")"#
            )
        })
        .collect();
    format!(
        r#"sum by (workload_type) ({}) and on (workload_type) label_replace(vector(1), "workload_type", "$type", "", "")"#,
        each.join(" or ")
    )
}

fn workload(config: &Config) -> Dashboard {
    let ns = ONE_NAMESPACE;
    let by = POD_KEY;
    let owners = pod_owners(ns, ONE_WORKLOAD);
    let of_workload = |per_pod: String| by_owner(&per_pod, &owners, by);
    let desired = of_chosen_workload([
        ("Deployment", "kube_deployment_spec_replicas", "deployment"),
        ("StatefulSet", "kube_statefulset_replicas", "statefulset"),
        (
            "DaemonSet",
            "kube_daemonset_status_desired_number_scheduled",
            "daemonset",
        ),
        ("Job", "kube_job_spec_parallelism", "job_name"),
    ]);
    let available = of_chosen_workload([
        (
            "Deployment",
            "kube_deployment_status_replicas_available",
            "deployment",
        ),
        (
            "StatefulSet",
            "kube_statefulset_status_replicas_available",
            "statefulset",
        ),
        (
            "DaemonSet",
            "kube_daemonset_status_number_available",
            "daemonset",
        ),
        ("Job", "kube_job_status_active", "job_name"),
    ]);
    let to_pod_series = to_pod("${__field.labels.namespace}", "${__field.labels.pod}");
    let panels = vec![
        Panel::new(Kind::Stat, "Desired replicas", "Pods the workload wants: replicas (Deployment, StatefulSet), nodes to run on (DaemonSet), parallelism (Job).", "none")
            .width(6)
            .query(desired.clone(), "desired"),
        Panel::new(Kind::Stat, "Available replicas", "Pods available for at least minReadySeconds (for a Job: active pods).", "none")
            .width(6)
            .query(available.clone(), "available"),
        Panel::new(Kind::Stat, "CPU used", "CPU cores the workload's containers use.", "none")
            .width(6)
            .query(format!("sum({})", of_workload(cpu_usage(ns, by))), "cpu"),
        Panel::new(Kind::Stat, "Memory used", "Memory working set of the workload's containers.", "bytes")
            .width(6)
            .query(format!("sum({})", of_workload(memory_usage(ns, by))), "memory"),
        Panel::new(Kind::TimeSeries, "Replicas", "Desired against available pods; a gap that stays is a rollout or scheduling problem.", "none")
            .width(24)
            .query(desired, "desired")
            .query(available, "available"),
        Panel::new(Kind::TimeSeries, "CPU usage per pod", "CPU cores each of the workload's pods uses. Click a line for the pod.", "none")
            .query(of_workload(cpu_usage(ns, by)), "{{pod}}")
            .link(None, "Pod ${__field.labels.pod}", to_pod_series.clone()),
        Panel::new(Kind::TimeSeries, "Memory usage per pod", "Memory working set of each of the workload's pods. Click a line for the pod.", "bytes")
            .query(of_workload(memory_usage(ns, by)), "{{pod}}")
            .link(None, "Pod ${__field.labels.pod}", to_pod_series.clone()),
        Panel::new(Kind::TimeSeries, "Network received per pod", "Bytes each of the workload's pods receives per second.", "Bps")
            .query(of_workload(network("receive", ns, by)), "{{pod}}"),
        Panel::new(Kind::TimeSeries, "Network transmitted per pod", "Bytes each of the workload's pods sends per second.", "Bps")
            .query(of_workload(network("transmit", ns, by)), "{{pod}}"),
        Panel::new(Kind::Table, "Pods", "The workload's pods: CPU and memory used against requests, and container restarts. Click a pod for its containers.", "none")
            .height(10)
            .column(of_workload(cpu_usage(ns, by)), "CPU used", "none")
            .column(of_workload(committed("requests", "cpu", ns, by)), "CPU requests", "none")
            .column(of_workload(memory_usage(ns, by)), "Memory used", "bytes")
            .column(of_workload(committed("requests", "memory", ns, by)), "Memory requests", "bytes")
            .column(of_workload(format!("sum by ({by}) (kube_pod_container_status_restarts_total{{{KSM}, {ns}}})")), "Restarts", "none")
            .link(Some("pod"), "Pod ${__data.fields.pod}", to_pod("${__data.fields.namespace}", "${__data.fields.pod}")),
    ];
    let owner_series = |owner_kind: &str| {
        format!(
            r#"{{__name__=~"kube_pod_owner|kube_replicaset_owner", {KSM}, {ns}, owner_kind{owner_kind}}}"#
        )
    };
    Dashboard {
        slug: WORKLOAD,
        title: "Kubernetes / Compute resources / Workload",
        description: "One Deployment, StatefulSet, DaemonSet or Job: replicas, and what its pods use.",
        variables: vec![
            datasource_variable(),
            cluster_variable(config),
            namespace_variable(),
            // Owners of pods (StatefulSet, DaemonSet, Job) and of ReplicaSets (Deployment).
            label_variable(
                "type",
                "Kind",
                &owner_series(&format!(r#"=~"{WORKLOAD_KINDS}""#)),
                "owner_kind",
            ),
            label_variable(
                "workload",
                "Workload",
                &owner_series(r#"="$type""#),
                "owner_name",
            ),
        ],
        panels,
        links: links(),
    }
}

fn pod(config: &Config) -> Dashboard {
    let p = ONE_POD;
    let by = "container";
    let throttled = |what: &str| {
        format!(
            "sum by (container) (rate(container_cpu_cfs_{what}_total{{{}}}[$__rate_interval]))",
            matchers(&[CADVISOR, CONTAINERS, p])
        )
    };
    let panels = vec![
        Panel::new(Kind::Table, "Pod", "Where the pod runs and who created it. Click the node for its detail.", "none")
            .height(5)
            .query(format!("max by (node, host_ip, pod_ip, created_by_kind, created_by_name) (kube_pod_info{{{KSM}, {p}}})"), "")
            .link(Some("node"), "Node ${__data.fields.node}", node_detail_url("${__data.fields.node}")),
        Panel::new(Kind::TimeSeries, "CPU usage per container", "CPU cores each container uses, against its request and limit.", "none")
            .query(cpu_usage(p, by), "{{container}}")
            .query(committed("requests", "cpu", p, by), "{{container}} request")
            .query(committed("limits", "cpu", p, by), "{{container}} limit"),
        Panel::new(Kind::TimeSeries, "CPU throttling per container", "Share of scheduling periods in which the container hit its CPU limit and was paused; latency suffers long before usage reaches the limit.", "percentunit")
            .query(format!("{} / {}", throttled("throttled_periods"), throttled("periods")), "{{container}}")
            .red_from(0.25),
        Panel::new(Kind::TimeSeries, "Memory working set per container", "Memory each container uses that the kernel cannot reclaim, against its request and limit; at the limit it is OOM-killed.", "bytes")
            .query(memory_usage(p, by), "{{container}}")
            .query(committed("requests", "memory", p, by), "{{container}} request")
            .query(committed("limits", "memory", p, by), "{{container}} limit"),
        Panel::new(Kind::TimeSeries, "Restarts per container", "Times each container has restarted; a rising line is a crash loop.", "none")
            .query(format!("sum by (container) (kube_pod_container_status_restarts_total{{{KSM}, {p}}})"), "{{container}}"),
        Panel::new(Kind::TimeSeries, "Network received", "Bytes the pod receives per second, per interface.", "Bps")
            .query(network("receive", p, "interface"), "{{interface}}"),
        Panel::new(Kind::TimeSeries, "Network transmitted", "Bytes the pod sends per second, per interface.", "Bps")
            .query(network("transmit", p, "interface"), "{{interface}}"),
    ];
    Dashboard {
        slug: POD,
        title: "Kubernetes / Compute resources / Pod",
        description: "One pod, container by container: CPU and throttling, memory against requests and limits, restarts, network.",
        variables: vec![
            datasource_variable(),
            cluster_variable(config),
            namespace_variable(),
            pod_variable(ONE_NAMESPACE),
        ],
        panels,
        links: links(),
    }
}

fn volumes(config: &Config) -> Dashboard {
    let ns = r#"namespace=~"$namespace""#;
    let by = "cluster, namespace, persistentvolumeclaim";
    let stat = |name: &str| {
        format!(
            "max by ({by}) (kubelet_volume_stats_{name}{{{}}})",
            matchers(&[KUBELET, ns])
        )
    };
    let used = format!("{} / {}", stat("used_bytes"), stat("capacity_bytes"));
    let inodes = format!("{} / {}", stat("inodes_used"), stat("inodes"));
    let legend = "{{namespace}}/{{persistentvolumeclaim}}";
    let mut namespaces = namespace_variable();
    // Any choice of namespaces, all by default: volumes are few and worth seeing together.
    namespaces["multi"] = true.into();
    namespaces["includeAll"] = true.into();
    namespaces["allValue"] = ".+".into();
    namespaces["current"] =
        serde_json::json!({"selected": true, "text": ["All"], "value": ["$__all"]});
    let panels = vec![
        Panel::new(Kind::Stat, "Claims in total", "PersistentVolumeClaims in the chosen namespaces.", "none")
            .width(6)
            .query(format!("count(kube_persistentvolumeclaim_info{{{KSM}, {ns}}}) or vector(0)"), "claims"),
        Panel::new(Kind::Stat, "Claims not bound", "PersistentVolumeClaims Pending or Lost: their pods cannot start.", "none")
            .width(6)
            .query(format!(r#"count(kube_persistentvolumeclaim_status_phase{{{KSM}, {ns}, phase!="Bound"}} == 1) or vector(0)"#), "not bound")
            .red_from(1.0),
        Panel::new(Kind::Stat, "Fullest volume", "Share of the fullest mounted volume in use.", "percentunit")
            .width(6)
            .query(format!("max({used})"), "fullest")
            .red_from(0.85),
        Panel::new(Kind::Stat, "Volumes failed or released", "PersistentVolumes Failed (reclaim failed) or Released (their claim deleted, the data still there).", "none")
            .width(6)
            .query(format!(r#"count(kube_persistentvolume_status_phase{{{KSM}, phase=~"Failed|Released"}} == 1) or vector(0)"#), "volumes"),
        Panel::new(Kind::TimeSeries, "Space used per claim", "Share of each mounted claim's volume in use, as the kubelet sees it.", "percentunit")
            .query(used.clone(), legend)
            .red_from(0.85),
        Panel::new(Kind::TimeSeries, "Inodes used per claim", "Share of each mounted claim's inodes in use; a volume out of inodes is full whatever its free space.", "percentunit")
            .query(inodes.clone(), legend)
            .red_from(0.85),
        Panel::new(Kind::Table, "Claims", "Each mounted claim's size, use and inodes. Click a namespace for its pods.", "none")
            .height(10)
            .column(stat("capacity_bytes"), "Capacity", "bytes")
            .column(stat("used_bytes"), "Used", "bytes")
            .column(used, "Space used", "percentunit")
            .column(inodes, "Inodes used", "percentunit")
            .link(Some("namespace"), "Namespace ${__data.fields.namespace}", to_namespace("${__data.fields.namespace}")),
        Panel::new(Kind::BarGauge, "Claims by phase", "PersistentVolumeClaims per phase (Bound, Pending, Lost).", "none")
            .width(24)
            .query(format!("count by (phase) (kube_persistentvolumeclaim_status_phase{{{KSM}, {ns}}} == 1)"), "{{phase}}"),
    ];
    Dashboard {
        slug: VOLUMES,
        title: "Kubernetes / Persistent volumes",
        description: "Space and inodes of each mounted PersistentVolumeClaim, and the claims' phases.",
        variables: vec![datasource_variable(), cluster_variable(config), namespaces],
        panels,
        links: links(),
    }
}
