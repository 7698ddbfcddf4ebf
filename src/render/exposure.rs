//! A UI reached from outside the cluster: the Ingress and the Gateway API HTTPRoute to its
//! Service (`<ui>.ingress`, `<ui>.httpRoute`), and the NetworkPolicy rule that lets the
//! controller or Gateway in front of it through. Each UI's module calls it with its own Service.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, NetworkPolicyIngressRule, NetworkPolicyPort,
    ServiceBackendPort,
};
use serde_json::json;

use super::{Context, custom, object};
use crate::{config::exposure::Exposure, model::Object};

/// The Gateway API's group and version the HTTPRoute is written in (its CRDs' `v1`).
pub const GATEWAY_API_VERSION: &str = "gateway.networking.k8s.io/v1";
/// The CRD an HTTPRoute needs in the cluster.
pub const HTTPROUTE_CRD: &str = "httproutes.gateway.networking.k8s.io";

/// The UI's Service, as its Ingress and HTTPRoute name it: the Service, its port's name (the
/// Ingress') and number (the HTTPRoute's, which takes numbers only).
pub struct Backend<'a> {
    pub service: &'a str,
    pub port_name: &'a str,
    pub port: i32,
}

impl<'a> Backend<'a> {
    pub fn of(service: &'a str, port_name: &'a str, port: i32) -> Self {
        Backend {
            service,
            port_name,
            port,
        }
    }
}

/// The UI's Ingress and HTTPRoute, each when enabled, named as its Service.
pub fn objects(
    ctx: &Context,
    labels: &BTreeMap<String, String>,
    exposure: Exposure,
    to: &Backend,
) -> Vec<Object> {
    let mut out = Vec::new();
    if exposure.ingress.enabled {
        out.push(ingress(ctx, labels, exposure, to));
    }
    if exposure.http_route.enabled {
        out.push(http_route(ctx, labels, exposure, to));
    }
    out
}

fn ingress(ctx: &Context, labels: &BTreeMap<String, String>, e: Exposure, to: &Backend) -> Object {
    let i = e.ingress;
    let mut metadata = ctx.meta(to.service, labels);
    if !i.annotations.is_empty() {
        metadata.annotations = Some(i.annotations.clone());
    }
    let path = HTTPIngressPath {
        path: Some(i.path.clone()),
        path_type: "Prefix".into(),
        backend: IngressBackend {
            service: Some(IngressServiceBackend {
                name: to.service.into(),
                port: Some(ServiceBackendPort {
                    name: Some(to.port_name.into()),
                    number: None,
                }),
            }),
            ..Default::default()
        },
    };
    let tls = i.tls.secret_name.as_ref().map(|secret| {
        vec![IngressTLS {
            hosts: i.host.clone().map(|h| vec![h]),
            secret_name: Some(secret.clone()),
        }]
    });
    object(Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: i.class_name.clone(),
            rules: Some(vec![IngressRule {
                host: i.host.clone(),
                http: Some(HTTPIngressRuleValue { paths: vec![path] }),
            }]),
            tls,
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn http_route(
    ctx: &Context,
    labels: &BTreeMap<String, String>,
    e: Exposure,
    to: &Backend,
) -> Object {
    let r = e.http_route;
    let mut spec = json!({
        "parentRefs": r.parent_refs,
        "rules": [{
            "matches": [{"path": {"type": "PathPrefix", "value": e.route_path()}}],
            "backendRefs": [{"name": to.service, "port": to.port}],
        }],
    });
    if !r.hostnames.is_empty() {
        spec["hostnames"] = json!(r.hostnames);
    }
    custom(json!({
        "apiVersion": GATEWAY_API_VERSION,
        "kind": "HTTPRoute",
        "metadata": ctx.meta(to.service, labels),
        "spec": spec,
    }))
}

/// While the UI is exposed, its port from anywhere: the pods of an Ingress controller or a
/// Gateway run in a namespace of their own, on the host network (node addresses) or outside
/// the cluster (a cloud load balancer sending to pod IPs), none of which a rendered peer can
/// name. Whoever reaches the Ingress reaches the UI already.
pub fn policy_rule(e: Exposure, port: NetworkPolicyPort) -> Option<NetworkPolicyIngressRule> {
    e.is_exposed().then(|| NetworkPolicyIngressRule {
        from: None,
        ports: Some(vec![port]),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use crate::config::Config;
    use crate::render::fixtures::as_json;

    fn rendered(sets: &[&str]) -> Vec<Value> {
        let config = sets
            .iter()
            .try_fold(Config::default(), |c, s| c.with_set(s))
            .unwrap();
        as_json(crate::render::render(&config).objects)
    }

    fn of<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    }

    /// Nothing is exposed by default: no Ingress, no HTTPRoute, no URL or prefix anywhere.
    #[test]
    fn nothing_is_exposed_by_default() {
        let objects = rendered(&[]);
        assert!(
            !objects
                .iter()
                .any(|o| o["kind"] == "Ingress" || o["kind"] == "HTTPRoute")
        );
        let text = serde_json::to_string(&objects).unwrap();
        for word in [
            "externalUrl",
            "routePrefix",
            "GF_SERVER_ROOT_URL",
            "pathPrefix",
        ] {
            assert!(!text.contains(word), "{word}");
        }
    }

    /// Each UI's Ingress goes to its Service's named port, with the host, path, class, TLS and
    /// annotations given; its HTTPRoute to the same Service by port number.
    #[test]
    fn each_ui_gets_its_ingress_and_route_to_its_service() {
        let mut sets = Vec::new();
        for (ui, _, _) in UIS {
            sets.extend([
                format!("{ui}.ingress.enabled=true"),
                format!("{ui}.ingress.host={ui}.example.com"),
                format!("{ui}.ingress.path=/{ui}"),
                format!("{ui}.ingress.className=nginx"),
                format!("{ui}.ingress.tls.secretName={ui}-tls"),
                format!("{ui}.ingress.annotations={{cert-manager.io/cluster-issuer: letsencrypt}}"),
                format!("{ui}.httpRoute.parentRefs=[{{name: main, namespace: gateways}}]"),
                format!("{ui}.httpRoute.enabled=true"),
                format!("{ui}.httpRoute.hostnames=[{ui}.example.org]"),
                format!("{ui}.httpRoute.path=/{ui}"),
            ]);
        }
        let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
        let objects = rendered(&sets);
        for (ui, port_name, port) in UIS {
            let ingress = of(&objects, "Ingress", ui).unwrap();
            assert_eq!(ingress["apiVersion"], "networking.k8s.io/v1");
            assert_eq!(
                ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"],
                "letsencrypt"
            );
            let spec = &ingress["spec"];
            assert_eq!(spec["ingressClassName"], "nginx");
            assert_eq!(
                spec["tls"],
                serde_json::json!([{"hosts": [format!("{ui}.example.com")], "secretName": format!("{ui}-tls")}])
            );
            let rule = &spec["rules"][0];
            assert_eq!(rule["host"], format!("{ui}.example.com"));
            let path = &rule["http"]["paths"][0];
            assert_eq!(path["path"], format!("/{ui}"));
            assert_eq!(path["pathType"], "Prefix");
            assert_eq!(
                path["backend"]["service"],
                serde_json::json!({"name": ui, "port": {"name": port_name}})
            );
            // The Service it names is the UI's, with that port.
            let service = of(&objects, "Service", ui).unwrap();
            assert!(
                service["spec"]["ports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["name"] == port_name && p["port"] == port),
                "{ui}"
            );
            let route = of(&objects, "HTTPRoute", ui).unwrap();
            assert_eq!(route["apiVersion"], "gateway.networking.k8s.io/v1");
            assert_eq!(
                route["spec"]["parentRefs"],
                serde_json::json!([{"name": "main", "namespace": "gateways"}])
            );
            assert_eq!(
                route["spec"]["hostnames"],
                serde_json::json!([format!("{ui}.example.org")])
            );
            assert_eq!(
                route["spec"]["rules"][0],
                serde_json::json!({
                    "matches": [{"path": {"type": "PathPrefix", "value": format!("/{ui}")}}],
                    "backendRefs": [{"name": ui, "port": port}],
                })
            );
            // The UI's policy lets whatever stands in front of it in on its port.
            let policy = of(&objects, "NetworkPolicy", ui).unwrap();
            let open = policy["spec"]["ingress"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r.get("from").is_none())
                .collect::<Vec<_>>();
            assert_eq!(open.len(), 1, "{ui}: {policy}");
            assert_eq!(open[0]["ports"][0]["port"], port, "{ui}");
        }
    }

    const UIS: [(&str, &str, i32); 3] = [
        ("grafana", "http", 3000),
        ("prometheus", "web", 9090),
        ("alertmanager", "web", 9093),
    ];

    /// Served under a path, each UI is told its URL and prefix, and every client of it inside
    /// the stack asks under that prefix: Grafana's datasources, Prometheus' alerting, the
    /// self-scrapes and the shards' federation.
    #[test]
    fn a_path_reaches_every_client_inside_the_stack() {
        let objects = rendered(&[
            "prometheus.ingress.enabled=true",
            "prometheus.ingress.host=example.com",
            "prometheus.ingress.path=/prometheus",
            "prometheus.ingress.tls.secretName=tls",
            "prometheus.shards=2",
            "alertmanager.httpRoute.parentRefs=[{name: gw}]",
            "alertmanager.httpRoute.enabled=true",
            "alertmanager.httpRoute.hostnames=[am.example.com]",
            "alertmanager.httpRoute.path=/am",
            "grafana.ingress.enabled=true",
            "grafana.ingress.path=/grafana",
        ]);
        let prometheus = &of(&objects, "Prometheus", "automon").unwrap()["spec"];
        assert_eq!(prometheus["externalUrl"], "https://example.com/prometheus");
        assert_eq!(prometheus["routePrefix"], "/prometheus");
        assert_eq!(
            prometheus["alerting"]["alertmanagers"][0]["pathPrefix"],
            "/am"
        );
        // The ruler serves at / (nothing routes to it) but links to the exposed UI.
        let ruler = &of(&objects, "Prometheus", "automon-ruler").unwrap()["spec"];
        assert_eq!(ruler["externalUrl"], "https://example.com/prometheus");
        assert!(ruler.get("routePrefix").is_none());
        assert_eq!(ruler["alerting"]["alertmanagers"][0]["pathPrefix"], "/am");
        let federate = of(&objects, "ServiceMonitor", "prometheus-federate").unwrap();
        assert_eq!(
            federate["spec"]["endpoints"][0]["path"],
            "/prometheus/federate"
        );
        let alertmanager = &of(&objects, "Alertmanager", "automon").unwrap()["spec"];
        assert_eq!(alertmanager["externalUrl"], "http://am.example.com/am");
        assert_eq!(alertmanager["routePrefix"], "/am");
        for (monitor, path) in [
            ("prometheus", "/prometheus/metrics"),
            ("alertmanager", "/am/metrics"),
        ] {
            let m = of(&objects, "ServiceMonitor", monitor).unwrap();
            assert_eq!(m["spec"]["endpoints"][0]["path"], path, "{monitor}");
        }
        let datasources =
            of(&objects, "ConfigMap", "grafana-datasources").unwrap()["data"]["datasources.yaml"]
                .as_str()
                .unwrap();
        let v: Value = serde_saphyr::from_str(datasources).unwrap();
        // Sharded: Grafana asks Thanos Query, inside the cluster, not under the path.
        assert_eq!(
            v["datasources"][0]["url"],
            "http://thanos-query.automon.svc:9090"
        );
        assert_eq!(
            v["datasources"][1]["url"],
            "http://alertmanager.automon.svc:9093/am"
        );
        // Grafana without a host: its own address, under the path.
        let grafana = of(&objects, "Deployment", "grafana").unwrap();
        let env = &grafana["spec"]["template"]["spec"]["containers"][0]["env"];
        let var = |name: &str| {
            env.as_array()
                .unwrap()
                .iter()
                .find(|e| e["name"] == name)
                .map(|e| e["value"].clone())
        };
        assert_eq!(
            var("GF_SERVER_ROOT_URL"),
            Some("%(protocol)s://%(domain)s:%(http_port)s/grafana/".into())
        );
        assert_eq!(var("GF_SERVER_SERVE_FROM_SUB_PATH"), Some("true".into()));
    }

    /// At `/` with a host: Grafana's root URL is the host's, and it serves from the root.
    #[test]
    fn grafana_at_the_root_of_a_host() {
        let objects = rendered(&[
            "grafana.ingress.enabled=true",
            "grafana.ingress.host=grafana.example.com",
            "grafana.ingress.tls.secretName=grafana-tls",
        ]);
        let grafana = of(&objects, "Deployment", "grafana").unwrap();
        let env = grafana["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .clone();
        let var = |name: &str| env.iter().find(|e| e["name"] == name).cloned();
        assert_eq!(
            var("GF_SERVER_ROOT_URL").unwrap()["value"],
            "https://grafana.example.com/"
        );
        assert!(var("GF_SERVER_SERVE_FROM_SUB_PATH").is_none());
    }
}
