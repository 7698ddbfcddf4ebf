//! The prometheus-operator: the controller that turns the stack's `Prometheus`, `Alertmanager`,
//! `ServiceMonitor` and `PrometheusRule` objects into StatefulSets and scrape configuration, and
//! keeps the kubelet Service in kube-system that the kubelet ServiceMonitor scrapes.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        core::v1::{Container, ContainerPort, HTTPGetAction, PodSpec, Probe},
        rbac::v1::PolicyRule,
    },
    apimachinery::pkg::util::intstr::IntOrString,
};

use super::{
    Context,
    blocks::self_scrape,
    deployment, meta,
    network::{self, tcp},
    rbac,
    security::{restricted_container, restricted_pod},
    service,
};

use crate::model::Object;
use crate::versions;

pub const COMPONENT: &str = "operator";
const NAME: &str = "prometheus-operator";
/// The operator puts this label, valued with the stack's namespace, on everything it creates,
/// so that the kubelet ServiceMonitor selects this stack's kubelet Service and no other's.
pub const STACK_LABEL: &str = "automon.io/stack";
const PORT: i32 = 8080;

pub fn objects(ctx: &Context) -> Vec<Object> {
    let labels = ctx.labels(NAME, COMPONENT, versions::PROMETHEUS_OPERATOR.version);
    let mut objects = rbac::cluster_identity(ctx, NAME, &labels, cluster_rules());
    objects.extend([
        deployment(ctx, &labels),
        service::service(
            ctx,
            NAME,
            &labels,
            service::spec(ctx, NAME, &[("http", PORT)]),
        ),
        network::scraped_api_client(ctx, NAME, &labels, vec![tcp(PORT)]),
        self_scrape(ctx, NAME, &labels, "http", ""),
    ]);
    objects
}

/// What prometheus-operator v0.93 and v0.94 call, measured on real nodes from the API server's
/// audit log (tests/real_nodes.rs, which names the reason for every grant the measured run did not
/// use; tests/upgrade.rs, which finds nothing of v0.94.1's refused).
/// `list` beside `watch` is for an API server that does not stream the initial list of a watch.
fn cluster_rules() -> Vec<PolicyRule> {
    let rule = |group: &str, resources: &[&str], verbs: &[&str]| PolicyRule {
        api_groups: Some(vec![group.into()]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..Default::default()
    };
    // Informers read them; its start-up check (SelfSubjectAccessReviews) asks for get too and
    // turns a controller off without it (measured: "missing permission", no StatefulSet).
    const READ: &[&str] = &["get", "list", "watch"];
    // What it generates and owns: written with update, removed when no longer needed.
    const OWN: &[&str] = &["get", "list", "watch", "create", "update", "delete"];
    const SERVERS: &[&str] = &[
        "alertmanagers",
        "prometheuses",
        "prometheusagents",
        "thanosrulers",
    ];
    vec![
        // Its custom resources: read, never written (a user or automon writes them).
        rule("monitoring.coreos.com", SERVERS, READ),
        rule(
            "monitoring.coreos.com",
            &[
                "alertmanagerconfigs",
                "servicemonitors",
                "podmonitors",
                "probes",
                "scrapeconfigs",
                "prometheusrules",
            ],
            READ,
        ),
        // The conditions it reports on the servers it runs (server-side apply: patch; update is
        // what its start-up check asks for).
        rule(
            "monitoring.coreos.com",
            &[
                "alertmanagers/status",
                "prometheuses/status",
                "prometheusagents/status",
                "thanosrulers/status",
            ],
            &["patch", "update"],
        ),
        // Owner references with blockOwnerDeletion on what it creates for them need update on
        // the owner's finalizers where the OwnerReferencesPermissionEnforcement admission
        // plugin runs.
        rule(
            "monitoring.coreos.com",
            &[
                "alertmanagers/finalizers",
                "prometheuses/finalizers",
                "prometheusagents/finalizers",
                "thanosrulers/finalizers",
            ],
            &["update"],
        ),
        rule("apps", &["statefulsets"], OWN),
        // Generated configuration, web and TLS material of the servers it runs.
        rule("", &["configmaps", "secrets"], OWN),
        // Deletes pods stuck on an old StatefulSet revision.
        rule("", &["pods"], &["list", "delete"]),
        // The governing `prometheus-operated` Services and the kubelet Service; the kubelet
        // EndpointSlices it writes are owned by that Service (blockOwnerDeletion: finalizers).
        rule("", &["services"], &["get", "create", "update", "delete"]),
        rule("", &["services/finalizers"], &["update"]),
        // Kubelet targets are written as EndpointSlices only (`--kubelet-endpoints=false`), so
        // the deprecated core Endpoints need no permission.
        rule(
            "discovery.k8s.io",
            &["endpointslices"],
            &["get", "list", "create", "update", "delete"],
        ),
        rule("", &["nodes"], &["list"]),
        rule("", &["namespaces"], &["list", "watch"]),
        // Validates storageClassName of volume claim templates when it may read them.
        rule("storage.k8s.io", &["storageclasses"], &["get"]),
        // It records events through the events.k8s.io API only.
        rule("events.k8s.io", &["events"], &["create", "patch"]),
    ]
}

/// Where the operator looks. Its Prometheus and Alertmanager are in the stack's own namespace
/// only: another operator elsewhere in the cluster keeps its own, and two operators never
/// reconcile the same `Prometheus`. The scrape and rule objects its Prometheus selects are
/// there too, unless `prometheus.select.namespaces` names more (or every one, `*`): then it
/// watches those for them, the instances still in its own namespace alone.
fn watched_namespaces(ctx: &Context) -> Vec<String> {
    let select = &ctx.config.prometheus.select;
    if select.namespaces.is_empty() {
        return vec![format!("--namespaces={}", ctx.namespace)];
    }
    let mut args = Vec::new();
    if !select.all_namespaces() {
        let mut names: Vec<&str> = select.namespaces.iter().map(String::as_str).collect();
        names.push(ctx.namespace);
        names.sort_unstable();
        names.dedup();
        args.push(format!("--namespaces={}", names.join(",")));
    }
    for kind in ["prometheus", "alertmanager", "thanos-ruler"] {
        args.push(format!("--{kind}-instance-namespaces={}", ctx.namespace));
    }
    args.push(format!(
        "--alertmanager-config-namespaces={}",
        ctx.namespace
    ));
    args
}

fn deployment(ctx: &Context, labels: &BTreeMap<String, String>) -> Object {
    let mut args = watched_namespaces(ctx);
    args.extend([
        format!(
            "--kubelet-service=kube-system/{}",
            ctx.cluster_name("kubelet")
        ),
        format!("--labels={STACK_LABEL}={}", ctx.namespace),
        // EndpointSlices, not the Endpoints API deprecated since Kubernetes 1.33.
        "--kubelet-endpointslice=true".into(),
        "--kubelet-endpoints=false".into(),
        // The read-only port 10255 is off on most clusters and automon scrapes 10250 only.
        "--kubelet-http-metrics=false".into(),
        format!(
            "--prometheus-config-reloader={}",
            ctx.image(&versions::PROMETHEUS_CONFIG_RELOADER)
        ),
        format!("--web.listen-address=:{PORT}"),
    ]);
    // Beside a release being replaced, whose operator watches every namespace: each operator
    // reconciles only its own Prometheus and Alertmanager.
    let args: Vec<String> = args
        .into_iter()
        .chain(
            ctx.controller_id()
                .map(|id| format!("--controller-id={id}")),
        )
        .collect();
    let health = |initial| Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/healthz".into()),
            port: IntOrString::String("http".into()),
            ..Default::default()
        }),
        initial_delay_seconds: Some(initial),
        period_seconds: Some(10),
        ..Default::default()
    };
    let container = Container {
        name: NAME.into(),
        image: Some(ctx.image(&versions::PROMETHEUS_OPERATOR)),
        args: Some(args),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: PORT,
            ..Default::default()
        }]),
        resources: Some(meta::resources(&ctx.sizing.operator)),
        liveness_probe: Some(health(10)),
        readiness_probe: Some(health(2)),
        security_context: Some(restricted_container(65534)),
        ..Default::default()
    };
    deployment::deployment(
        ctx,
        NAME,
        labels,
        ctx.config.operator.placement(),
        None,
        PodSpec {
            // It talks to the API server: it needs its token.
            automount_service_account_token: Some(true),
            containers: vec![container],
            security_context: Some(restricted_pod(65534, None)),
            ..Default::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model;
    use crate::{config::Config, render};

    fn rendered() -> Vec<Object> {
        objects(&Context::new(&Config::default()))
    }

    fn find<'a>(objects: &'a [Object], kind: &str) -> &'a Object {
        objects
            .iter()
            .find(|o| model::kind(o) == kind)
            .unwrap_or_else(|| panic!("no {kind}"))
    }

    #[test]
    fn every_object_is_in_the_operator_phase() {
        for o in rendered() {
            assert_eq!(render::phase(&o), render::Phase::Operator, "{o:?}");
        }
    }

    #[test]
    fn operator_maintains_the_kubelet_service_the_monitor_scrapes() {
        let objects = rendered();
        let d = &find(&objects, "Deployment").data;
        let args = &d["spec"]["template"]["spec"]["containers"][0]["args"];
        let args: Vec<&str> = args
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(args.contains(&"--kubelet-service=kube-system/automon-kubelet"));
        assert!(args.contains(&"--kubelet-endpointslice=true"));
        assert!(args.contains(&"--namespaces=automon"));
        assert!(args.contains(&"--labels=automon.io/stack=automon"));
        assert!(args.contains(
            &"--prometheus-config-reloader=quay.io/prometheus-operator/prometheus-config-reloader:v0.94.1"
        ));
    }

    fn args_with(sets: &[&str]) -> Vec<String> {
        let config = render::fixtures::config(sets);
        render::fixtures::deployment_args(&render::fixtures::as_json(objects(&Context::new(
            &config,
        ))))
    }

    #[test]
    fn it_watches_the_namespaces_its_prometheus_selects_in_and_its_instances_only_at_home() {
        let home = [
            "--prometheus-instance-namespaces=automon",
            "--alertmanager-instance-namespaces=automon",
            "--thanos-ruler-instance-namespaces=automon",
            "--alertmanager-config-namespaces=automon",
        ];
        let named = args_with(&["prometheus.select.namespaces=[team-b, team-a]"]);
        assert!(named.contains(&"--namespaces=automon,team-a,team-b".to_string()));
        let every = args_with(&["prometheus.select.namespaces=[\"*\"]"]);
        assert!(
            !every.iter().any(|a| a.starts_with("--namespaces")),
            "{every:?}"
        );
        for args in [&named, &every] {
            for flag in home {
                assert!(args.contains(&flag.to_string()), "{flag}: {args:?}");
            }
        }
        let alone = args_with(&[]);
        assert!(alone.contains(&"--namespaces=automon".to_string()));
        assert!(!alone.iter().any(|a| a.contains("instance-namespaces")));
        assert!(!alone.iter().any(|a| a.starts_with("--controller-id")));
        let beside = args_with(&["migration={release: kps, namespace: monitoring}"]);
        assert!(beside.contains(&"--controller-id=automon-automon".to_string()));
    }

    #[test]
    fn images_follow_the_mirror_registry() {
        let config = Config::default()
            .with_set("images.registry=mirror.local:5000")
            .unwrap();
        let objects = objects(&Context::new(&config));
        let text = serde_json::to_string(find(&objects, "Deployment")).unwrap();
        assert!(text.contains("mirror.local:5000/prometheus-operator/prometheus-operator:v0.94.1"));
        assert!(text.contains(
            "--prometheus-config-reloader=mirror.local:5000/prometheus-operator/prometheus-config-reloader"
        ));
        assert!(!text.contains("quay.io"));
    }

    #[test]
    fn pod_is_restricted_and_has_resources() {
        let objects = rendered();
        let pod = &find(&objects, "Deployment").data["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        let c = &pod["containers"][0];
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
        assert!(c["resources"]["requests"]["cpu"].is_string());
        assert!(c["resources"]["limits"]["memory"].is_string());
    }

    #[test]
    fn rbac_grants_no_wildcards_and_binds_the_service_account() {
        let objects = rendered();
        let role = &find(&objects, "ClusterRole");
        assert_eq!(
            role.metadata.name.as_deref(),
            Some("automon-prometheus-operator")
        );
        let text = serde_json::to_string(&role.data["rules"]).unwrap();
        assert!(!text.contains('*'), "{text}");
        let binding = &find(&objects, "ClusterRoleBinding").data;
        assert_eq!(binding["roleRef"]["name"], "automon-prometheus-operator");
        assert_eq!(binding["subjects"][0]["name"], "prometheus-operator");
        assert_eq!(binding["subjects"][0]["namespace"], "automon");
    }
}
