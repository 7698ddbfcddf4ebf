//! node-exporter: one pod on every Linux node, in the host's network and PID namespaces with
//! read-only views of `/proc`, `/sys` and `/`, scraped through one ServiceMonitor whose series
//! all carry `node="<node name>"`. This is the heart of coverage: a node without it is unmonitored.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{
        Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, HostPathVolumeSource,
        ObjectFieldSelector, PodSpec, Probe, Volume, VolumeMount,
    },
    apimachinery::pkg::util::intstr::IntOrString,
};
use serde_json::json;

use super::{
    Context, custom, meta,
    per_node::{
        self, headless_service, node_affinity, node_name_relabelings, not_excluded, scrape_only,
        tolerations,
    },
    security::restricted_container,
};

use crate::model::Object;
use crate::versions;

pub const NAME: &str = "node-exporter";
pub const COMPONENT: &str = "exporter";
const PORT_NAME: &str = "metrics";

/// Mounts that belong to containers and pods, not to the node: counting them would report
/// every container's overlay as a filesystem of the node.
const MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|sys|run/k3s/containerd/.+|var/lib/docker/.+|var/lib/kubelet/pods/.+)($|/)";
/// Pseudo and container filesystems that have no capacity worth alerting on.
const FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";
/// Per-pod virtual interfaces (veth pairs, Calico's hashed names): one series set per pod churns.
const NET_DEVICES_EXCLUDE: &str = "^(veth.*|cali.*|[a-f0-9]{15})$";

pub fn objects(ctx: &Context) -> Vec<Object> {
    let labels = ctx.labels(NAME, COMPONENT, versions::NODE_EXPORTER.version);
    if let Some(holder) = ctx.exporter {
        return vec![scrape_existing(ctx, &labels, holder)];
    }
    let port = i32::from(ctx.config.node_exporter.port);
    vec![
        per_node::service_account(ctx, NAME, &labels),
        daemon_set(ctx, &labels),
        headless_service(ctx, NAME, &labels, (PORT_NAME, port)),
        per_node::service_monitor(ctx, NAME, &labels, PORT_NAME),
        scrape_only(ctx, NAME, &labels, PORT_NAME),
    ]
}

fn daemon_set(ctx: &Context, labels: &BTreeMap<String, String>) -> Object {
    let cfg = &ctx.config.node_exporter;
    let port = i32::from(cfg.port);
    let host_mount = |name: &str, path: &str| VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(true),
        // Mounts made on the host after the pod started (new volumes) show up too.
        mount_propagation: Some("HostToContainer".into()),
        ..Default::default()
    };
    let host_volume = |name: &str, path: &str| Volume {
        name: name.into(),
        host_path: Some(HostPathVolumeSource {
            path: path.into(),
            type_: None,
        }),
        ..Default::default()
    };
    let container = Container {
        name: NAME.into(),
        image: Some(ctx.image(&versions::NODE_EXPORTER)),
        args: Some(vec![
            "--path.procfs=/host/proc".into(),
            "--path.sysfs=/host/sys".into(),
            "--path.rootfs=/host/root".into(),
            // Listen on the node's address only, not on every interface of the host.
            format!("--web.listen-address=[$(HOST_IP)]:{port}"),
            format!("--collector.filesystem.mount-points-exclude={MOUNT_POINTS_EXCLUDE}"),
            format!("--collector.filesystem.fs-types-exclude={FS_TYPES_EXCLUDE}"),
            format!("--collector.netclass.ignored-devices={NET_DEVICES_EXCLUDE}"),
            format!("--collector.netdev.device-exclude={NET_DEVICES_EXCLUDE}"),
        ]),
        env: Some(vec![EnvVar {
            name: "HOST_IP".into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "status.hostIP".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        ports: Some(vec![ContainerPort {
            name: Some(PORT_NAME.into()),
            container_port: port,
            host_port: Some(port),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        // Ready means serving on the node's address, which is what Prometheus scrapes.
        readiness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/".into()),
                port: IntOrString::String(PORT_NAME.into()),
                ..Default::default()
            }),
            timeout_seconds: Some(5),
            ..Default::default()
        }),
        resources: Some(meta::resources(&cfg.resources)),
        security_context: Some(restricted_container(65534)),
        volume_mounts: Some(vec![
            host_mount("proc", "/host/proc"),
            host_mount("sys", "/host/sys"),
            host_mount("root", "/host/root"),
        ]),
        ..Default::default()
    };
    let pod = PodSpec {
        host_network: Some(true),
        host_pid: Some(true),
        // Resolve cluster names despite the host network (none needed today; cheap insurance).
        dns_policy: Some("ClusterFirstWithHostNet".into()),
        node_selector: Some(BTreeMap::from([(
            "kubernetes.io/os".into(),
            "linux".into(),
        )])),
        affinity: Some(node_affinity(vec![not_excluded(&cfg.exclude_label)])),
        tolerations: tolerations(cfg.tolerations),
        containers: vec![container],
        volumes: Some(vec![
            host_volume("proc", "/proc"),
            host_volume("sys", "/sys"),
            host_volume("root", "/"),
        ]),
        ..Default::default()
    };
    per_node::daemon_set(ctx, NAME, labels, pod)
}

/// The scrape object for an exporter another stack runs (`holder`): a ServiceMonitor through
/// its Service when it has one (it can present Prometheus' own token to a kube-rbac-proxy),
/// else a PodMonitor on its pods. Its series look exactly like those of automon's own exporter
/// (`job="node-exporter"`, `node` and `instance` the node's name), so every rule and dashboard
/// works unchanged; the `node` label also keeps them apart from the other stack's own series.
fn scrape_existing(
    ctx: &Context,
    labels: &BTreeMap<String, String>,
    holder: &crate::model::exporter::Holder,
) -> Object {
    let mut relabelings = node_name_relabelings();
    relabelings.push(json!({
        "action": "replace",
        "targetLabel": "job",
        "replacement": NAME,
    }));
    let mut endpoint = json!({
        "scheme": holder.scheme,
        "interval": ctx.config.prometheus.scrape_interval.0,
        "relabelings": relabelings,
    });
    if holder.scheme == "https" {
        // A kube-rbac-proxy's certificate is its own, self-signed; what it checks is the token.
        endpoint["tlsConfig"] = json!({"insecureSkipVerify": true});
    }
    let namespaces = json!({"matchNames": [holder.namespace]});
    let (kind, spec) = match &holder.service {
        Some(service) => {
            match &service.port_name {
                Some(name) => endpoint["port"] = json!(name),
                None => endpoint["targetPort"] = json!(holder.port),
            }
            if holder.scheme == "https" {
                endpoint["bearerTokenFile"] =
                    json!("/var/run/secrets/kubernetes.io/serviceaccount/token");
            }
            (
                "ServiceMonitor",
                json!({
                    "namespaceSelector": namespaces,
                    "selector": {"matchLabels": service.labels},
                    "endpoints": [endpoint],
                }),
            )
        }
        None => {
            match &holder.port_name {
                Some(name) => endpoint["port"] = json!(name),
                None => endpoint["portNumber"] = json!(holder.port),
            }
            (
                "PodMonitor",
                json!({
                    "namespaceSelector": namespaces,
                    "selector": holder.selector,
                    "podMetricsEndpoints": [endpoint],
                }),
            )
        }
    };
    custom(json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": kind,
        "metadata": ctx.meta(NAME, labels),
        "spec": spec,
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::{config::Config, render::fixtures::find};

    fn rendered(config: &Config) -> Vec<Value> {
        crate::render::fixtures::as_json(objects(&Context::new(config)))
    }

    fn holder(port: &str, scheme: &'static str, service: bool) -> crate::model::exporter::Holder {
        crate::model::exporter::Holder {
            namespace: "monitoring".into(),
            name: "node-exporter".into(),
            port: 9100,
            port_name: Some(port.into()),
            scheme,
            selector: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                match_labels: Some(BTreeMap::from([("app".into(), "ne".into())])),
                ..Default::default()
            },
            priority_class: None,
            automon: false,
            service: service.then(|| crate::model::exporter::HolderService {
                name: "node-exporter".into(),
                labels: BTreeMap::from([("app".into(), "ne".into())]),
                all_labels: BTreeMap::from([("app".into(), "ne".into())]),
                port_name: Some(port.into()),
            }),
            pod_labels: BTreeMap::new(),
        }
    }

    #[test]
    fn next_to_another_exporter_only_a_scrape_object_for_it() {
        let config = Config::default();
        let https = holder("https", "https", true);
        let ctx = Context {
            exporter: Some(&https),
            ..Context::new(&config)
        };
        let objs = crate::render::fixtures::as_json(objects(&ctx));
        assert_eq!(objs.len(), 1, "{objs:#?}");
        let sm = find(&objs, "ServiceMonitor");
        assert_eq!(sm["metadata"]["name"], "node-exporter");
        assert_eq!(
            sm["spec"]["namespaceSelector"],
            json!({"matchNames": ["monitoring"]})
        );
        assert_eq!(
            sm["spec"]["selector"],
            json!({"matchLabels": {"app": "ne"}})
        );
        let ep = &sm["spec"]["endpoints"][0];
        assert_eq!(ep["port"], "https");
        assert_eq!(ep["scheme"], "https");
        assert_eq!(ep["tlsConfig"]["insecureSkipVerify"], true);
        assert!(ep["bearerTokenFile"].is_string());
        // The same labels as automon's own exporter's series.
        let targets: Vec<&str> = ep["relabelings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["targetLabel"].as_str().unwrap())
            .collect();
        assert_eq!(targets, ["node", "instance", "job"]);

        let http = holder("http-metrics", "http", false);
        let ctx = Context {
            exporter: Some(&http),
            ..Context::new(&config)
        };
        let objs = crate::render::fixtures::as_json(objects(&ctx));
        let pm = find(&objs, "PodMonitor");
        assert_eq!(
            pm["spec"]["selector"],
            json!({"matchLabels": {"app": "ne"}})
        );
        let ep = &pm["spec"]["podMetricsEndpoints"][0];
        assert_eq!(
            (ep["port"].as_str(), ep["scheme"].as_str()),
            (Some("http-metrics"), Some("http"))
        );
        assert!(ep.get("tlsConfig").is_none());
    }

    fn pod(objects: &[Value]) -> &Value {
        &find(objects, "DaemonSet")["spec"]["template"]["spec"]
    }

    #[test]
    fn tolerates_every_taint_by_default_and_none_when_asked() {
        let all = rendered(&Config::default());
        assert_eq!(pod(&all)["tolerations"], json!([{"operator": "Exists"}]));

        let none = rendered(
            &Config::default()
                .with_set("nodeExporter.tolerations=none")
                .unwrap(),
        );
        assert!(pod(&none).get("tolerations").is_none(), "{}", pod(&none));
    }

    #[test]
    fn excluded_nodes_and_non_linux_nodes_get_no_exporter() {
        let objs = rendered(&Config::default());
        let p = pod(&objs);
        assert_eq!(p["nodeSelector"], json!({"kubernetes.io/os": "linux"}));
        assert_eq!(
            p["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
                [0]["matchExpressions"],
            json!([{"key": "automon.io/exclude", "operator": "NotIn", "values": ["true"]}])
        );
        let custom = rendered(
            &Config::default()
                .with_set("nodeExporter.excludeLabel=example.com/no-monitoring")
                .unwrap(),
        );
        assert!(
            pod(&custom)
                .to_string()
                .contains("example.com/no-monitoring")
        );
    }

    #[test]
    fn host_mounts_are_read_only_and_nothing_is_privileged() {
        let objs = rendered(&Config::default());
        let p = pod(&objs);
        assert_eq!(p["hostNetwork"], true);
        assert_eq!(p["hostPID"], true);
        let c = &p["containers"][0];
        let mounts = c["volumeMounts"].as_array().unwrap();
        assert_eq!(mounts.len(), 3);
        for m in mounts {
            assert_eq!(m["readOnly"], true, "{m}");
            assert_eq!(m["mountPropagation"], "HostToContainer", "{m}");
        }
        let sc = &c["securityContext"];
        assert_eq!(sc["privileged"], false);
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["runAsNonRoot"], true);
        assert_eq!(sc["runAsUser"], 65534);
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(sc["capabilities"], json!({"drop": ["ALL"]}));
        assert!(sc["capabilities"].get("add").is_none());
        assert!(c["resources"]["requests"]["cpu"].is_string());
        assert!(c["resources"]["limits"]["memory"].is_string());
    }

    #[test]
    fn port_follows_configuration_everywhere() {
        let objs = rendered(
            &Config::default()
                .with_set("nodeExporter.port=9200")
                .unwrap(),
        );
        let c = &pod(&objs)["containers"][0];
        assert_eq!(c["ports"][0]["containerPort"], 9200);
        assert_eq!(c["ports"][0]["hostPort"], 9200);
        assert!(
            c["args"]
                .as_array()
                .unwrap()
                .contains(&json!("--web.listen-address=[$(HOST_IP)]:9200"))
        );
        assert_eq!(find(&objs, "Service")["spec"]["ports"][0]["port"], 9200);
    }

    #[test]
    fn every_series_names_its_node() {
        let objs = rendered(&Config::default());
        let sm = find(&objs, "ServiceMonitor");
        assert_eq!(sm["spec"]["jobLabel"], "app.kubernetes.io/name");
        assert_eq!(
            sm["metadata"]["labels"]["app.kubernetes.io/name"],
            "node-exporter"
        );
        let ep = &sm["spec"]["endpoints"][0];
        assert_eq!(ep["interval"], "30s");
        let targets: Vec<_> = ep["relabelings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["sourceLabels"] == json!(["__meta_kubernetes_pod_node_name"]))
            .map(|r| r["targetLabel"].as_str().unwrap())
            .collect();
        assert_eq!(targets, ["node", "instance"]);
        assert_eq!(find(&objs, "Service")["spec"]["clusterIP"], "None");
    }
}
