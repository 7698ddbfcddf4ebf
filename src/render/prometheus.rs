//! Prometheus: the `Prometheus` custom resource the operator turns into StatefulSet
//! `prometheus-automon`, its read-only discovery RBAC, its Service, a self-scrape, a
//! NetworkPolicy and, with more than one replica, a PodDisruptionBudget.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::{Value, json};

use super::{
    Context,
    blocks::{place, pod_disruption_budget, self_scrape, volume_claim},
    custom, exposure, meta,
    network::{self, anywhere, namespace_pods, tcp},
    rbac,
    security::operand_pod,
    service,
};

use crate::model::{
    Object,
    names::{PART_OF, PART_OF_LABEL},
};
use crate::versions;

const NAME: &str = "prometheus";
/// The Service in front of Prometheus, and its port's name.
pub const SERVICE: &str = NAME;
pub const PORT_NAME: &str = "web";
/// The `Prometheus` object; the operator names its StatefulSet `prometheus-automon`.
pub const INSTANCE: &str = "automon";
/// With more than one shard: the `Prometheus` that evaluates the rules that must see every
/// target (StatefulSet `prometheus-automon-ruler`), and its pods' name label.
pub const RULER: &str = "automon-ruler";
const RULER_NAME: &str = "prometheus-ruler";
/// The label that sends a scrape or rule object to the ruler instead of the shards.
pub const SCOPE_LABEL: &str = "automon.io/scope";
pub const CLUSTER_SCOPE: &str = "cluster";
/// What the ruler keeps of the series it federates: enough for an hour's `max_over_time`.
const RULER_RETENTION: &str = "1d";
const PORT: i32 = 9090;

pub fn objects(ctx: &Context) -> Vec<Object> {
    let labels = ctx.labels(NAME, NAME, versions::PROMETHEUS.version);
    let mut objects = rbac::cluster_identity(ctx, NAME, &labels, cluster_rules());
    objects.extend([
        prometheus(ctx, &labels),
        // With several replicas, Grafana keeps seeing one replica's data rather than
        // alternating between two slightly different ones.
        service::sticky(
            ctx,
            NAME,
            &labels,
            service::spec(ctx, NAME, &[(PORT_NAME, PORT)]),
        ),
        network_policy(ctx, NAME, &labels),
        self_scrape(ctx, NAME, &labels, PORT_NAME, prefix(ctx)),
    ]);
    let to = exposure::Backend::of(SERVICE, PORT_NAME, PORT);
    objects.extend(exposure::objects(
        ctx,
        &labels,
        ctx.config.prometheus.exposure(),
        &to,
    ));
    objects.extend(thanos::objects(ctx, &labels));
    if ctx.config.prometheus.replicas > 1 {
        objects.push(pod_disruption_budget(ctx, NAME, &labels));
    }
    if ctx.sizing.shards > 1 {
        objects.extend(ruler(ctx));
    }
    objects.extend(query::objects(ctx));
    objects
}

/// The shards' selectors: [`selector`], and not sent to the ruler.
fn shard_selector(ctx: &Context) -> Value {
    let mut selector = selector(ctx);
    if ctx.sizing.shards > 1 {
        push_expression(
            &mut selector,
            json!({"key": SCOPE_LABEL, "operator": "DoesNotExist"}),
        );
    }
    selector
}

/// The kinds of object a `Prometheus` selects, as its `<kind>Selector` fields name them.
const SELECTED_KINDS: [&str; 5] = [
    "serviceMonitor",
    "podMonitor",
    "probe",
    "scrapeConfig",
    "rule",
];

/// What the stack's Prometheus selects scrape and rule objects by: `prometheus.select.labels`
/// (or every object, `all`) less `exclude`, else automon's own label.
fn selector(ctx: &Context) -> Value {
    let select = &ctx.config.prometheus.select;
    let mut selector = match (select.all, select.labels.is_empty()) {
        (true, _) => json!({}),
        (false, true) => return automon_selector(),
        (false, false) => json!({"matchLabels": select.labels}),
    };
    for (k, v) in &select.exclude {
        push_expression(
            &mut selector,
            json!({"key": k, "operator": "NotIn", "values": [v]}),
        );
    }
    selector
}

fn push_expression(selector: &mut Value, expression: Value) {
    match selector["matchExpressions"].as_array_mut() {
        Some(list) => list.push(expression),
        None => selector["matchExpressions"] = json!([expression]),
    }
}

/// Where it looks for them, beside its own namespace: nowhere else (unset), every namespace
/// (`{}`), or the named ones.
fn namespace_selector(ctx: &Context) -> Option<Value> {
    let select = &ctx.config.prometheus.select;
    if select.all_namespaces() {
        return Some(json!({}));
    }
    if select.namespaces.is_empty() {
        return None;
    }
    let mut names: Vec<&str> = select.namespaces.iter().map(String::as_str).collect();
    names.push(ctx.namespace);
    names.sort_unstable();
    names.dedup();
    Some(json!({"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": names}
    ]}))
}

/// The labels automon's own scrape and rule objects carry for [`selector`] to select them.
pub fn selection_labels<'a>(ctx: &Context<'a>) -> &'a std::collections::BTreeMap<String, String> {
    &ctx.config.prometheus.select.labels
}

/// Sharded, no Prometheus sees every target, yet some rules must (a node Kubernetes knows
/// against the exporter targets that cover it: [`super::rules::reads_across_targets`]). A small
/// Prometheus of the operator's, the ruler, federates from every shard the few series those
/// rules read ([`super::rules::CLUSTER_SERIES`], about ten per node) and evaluates only them;
/// the shards evaluate the rest, each over its own targets.
fn ruler(ctx: &Context) -> Vec<Object> {
    let labels = ctx.labels(RULER_NAME, NAME, versions::PROMETHEUS.version);
    let mut selector = selector(ctx);
    selector["matchLabels"][SCOPE_LABEL] = json!(CLUSTER_SCOPE);
    let mut spec = common_spec(ctx, &labels, &selector);
    spec["replicas"] = json!(ctx.config.prometheus.replicas);
    place(
        &mut spec,
        ctx.config.prometheus.placement(),
        &ctx.selector(RULER_NAME),
    );
    spec["retention"] = json!(RULER_RETENTION);
    spec["resources"] = json!(meta::resources(&ctx.sizing.ruler));
    // Thanos Query reads the ruler's alerts and rules through its sidecar.
    thanos::sidecar(&mut spec, ctx);
    let mut scope_labels = labels.clone();
    scope_labels.insert(SCOPE_LABEL.into(), CLUSTER_SCOPE.into());
    let federate = custom(json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": ctx.meta("prometheus-federate", &scope_labels),
        "spec": {
            // Every shard's pods, through the Service in front of them.
            "selector": {"matchLabels": ctx.selector(NAME)},
            "endpoints": [{
                "port": PORT_NAME,
                "path": format!("{}/federate", prefix(ctx)),
                "params": {"match[]": super::rules::CLUSTER_SERIES},
                // The series keep their own job, node and instance.
                "honorLabels": true,
            }],
        },
    }));
    let mut objects = vec![
        custom(json!({
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "Prometheus",
            "metadata": ctx.operated_meta(RULER, &labels),
            "spec": spec,
        })),
        federate,
        network_policy(ctx, RULER_NAME, &labels),
    ];
    if ctx.config.prometheus.replicas > 1 {
        objects.push(pod_disruption_budget(ctx, RULER_NAME, &labels));
    }
    objects
}

/// The selector every kind of scrape and rule object is chosen by: automon's own label, set
/// explicitly, because a nil selector would select nothing and an empty one everything.
pub fn automon_selector() -> Value {
    json!({"matchLabels": {PART_OF_LABEL: PART_OF}})
}

/// Read-only, and only what it was measured to ask for on real nodes (tests/real_nodes.rs, from
/// the API server's audit log): its service discovery (role `endpointslice`, which also watches
/// the Services and Pods behind the slices), the kubelet's metrics (the kubelet asks the API
/// server whether the token may `get nodes/metrics`), and `/metrics` of the API server. `list`
/// is there for an API server that does not stream the initial list of a watch. No `nodes`,
/// `endpoints` or `configmaps`: no scrape configuration of automon's discovers nodes or the
/// deprecated Endpoints, and the operator, not Prometheus, reads referenced ConfigMaps.
fn cluster_rules() -> Vec<PolicyRule> {
    let discover = &["list", "watch"];
    let rule = |group: &str, resources: &[&str], verbs: &[&str]| PolicyRule {
        api_groups: Some(vec![group.into()]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..Default::default()
    };
    vec![
        rule("", &["services", "pods"], discover),
        rule("discovery.k8s.io", &["endpointslices"], discover),
        rule("", &["nodes/metrics"], &["get"]),
        PolicyRule {
            non_resource_urls: Some(vec!["/metrics".into()]),
            verbs: vec!["get".into()],
            ..Default::default()
        },
    ]
}

fn prometheus(ctx: &Context, labels: &BTreeMap<String, String>) -> Object {
    let c = &ctx.config.prometheus;
    let mut spec = common_spec(ctx, labels, &shard_selector(ctx));
    spec["replicas"] = json!(c.replicas);
    // Every shard's pods spread together: a node lost takes as few of them as can be.
    place(&mut spec, c.placement(), &ctx.selector(NAME));
    spec["retention"] = json!(c.retention.0);
    spec["resources"] = json!(meta::resources(
        &ctx.sizing.prometheus.overlaid(&c.resources)
    ));
    remote_write::extend(&mut spec, c);
    thanos::extend(&mut spec, ctx);
    // The shards' alone: the ruler federates the few series its rules read, nothing more.
    if let Some(s) = &c.additional_scrape_configs {
        spec["additionalScrapeConfigs"] = json!({"name": s.name, "key": s.key});
    }
    if ctx.sizing.shards > 1 {
        spec["shards"] = json!(ctx.sizing.shards);
    }
    // Served under the path it is exposed at: no Ingress controller or Gateway has to rewrite
    // paths, and whatever asks it inside the cluster asks under the same prefix.
    if !prefix(ctx).is_empty() {
        spec["routePrefix"] = json!(prefix(ctx));
    }
    if let Some(size) = ctx.sizing.retention_size(ctx.config) {
        spec["retentionSize"] = json!(size);
    }
    if let Some(storage) = volume_claim(&c.storage) {
        spec["storage"] = storage;
    }
    let mut metadata = ctx.operated_meta(INSTANCE, labels);
    metadata.annotations.get_or_insert_default().extend([
        (
            crate::config::sizing::SIZED_FOR_ANNOTATION.to_string(),
            ctx.sizing.sized_for.to_string(),
        ),
        (
            crate::config::sizing::SERIES_ANNOTATION.to_string(),
            ctx.sizing.series.to_string(),
        ),
    ]);
    custom(json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Prometheus",
        "metadata": metadata,
        "spec": spec,
    }))
}

/// What the shards and the ruler share: version, image, intervals, identity, discovery,
/// alerting, pod labels and security, external labels; and every kind of scrape and rule object
/// chosen by `selector` (namespace selectors stay unset: only the stack's own namespace).
fn common_spec(ctx: &Context, labels: &BTreeMap<String, String>, selector: &Value) -> Value {
    let c = &ctx.config.prometheus;
    let mut spec = json!({
        "version": versions::PROMETHEUS.version,
        "image": ctx.image(&versions::PROMETHEUS),
        "scrapeInterval": c.scrape_interval.0,
        "evaluationInterval": c.evaluation_interval.0,
        "serviceAccountName": NAME,
        // The Endpoints API is deprecated; the operator writes the kubelet's as EndpointSlices.
        "serviceDiscoveryRole": "EndpointSlice",
        "alerting": {"alertmanagers": [{
            "namespace": ctx.namespace,
            "name": super::alertmanager::NAME,
            "port": "web",
            "apiVersion": "v2",
        }]},
        // The operator puts its own labels on the pods too; these are the ones automon's
        // Service, NetworkPolicies and PodDisruptionBudget select.
        "podMetadata": {"labels": labels},
        "securityContext": operand_pod(),
    });
    if !c.external_labels.is_empty() {
        spec["externalLabels"] = json!(c.external_labels);
    }
    // The links in its alerts and UI point where users reach it (the ruler's too, whose
    // alerts link to the UI of the shards).
    if let Some(url) = c.exposure().external_url() {
        spec["externalUrl"] = json!(url);
    }
    let alertmanager_prefix = ctx.config.alertmanager.exposure().prefix();
    if !alertmanager_prefix.is_empty() {
        spec["alerting"]["alertmanagers"][0]["pathPrefix"] = json!(alertmanager_prefix);
    }
    if let Some(secrets) = ctx.pull_secrets() {
        spec["imagePullSecrets"] = json!(secrets);
    }
    let namespaces = namespace_selector(ctx);
    for key in SELECTED_KINDS {
        spec[format!("{key}Selector")] = selector.clone();
        if let Some(n) = &namespaces {
            spec[format!("{key}NamespaceSelector")] = n.clone();
        }
    }
    spec
}

/// The path prefix the shards serve under (empty at the root): where they are exposed.
pub fn prefix<'a>(ctx: &Context<'a>) -> &'a str {
    ctx.config.prometheus.exposure().prefix()
}

/// The UI and API from the stack's namespace (Grafana, its own self-scrape), and from anywhere
/// while exposed; out to every scrape target, which may be any pod or node on any port, so
/// egress stays open.
fn network_policy(ctx: &Context, name: &str, labels: &BTreeMap<String, String>) -> Object {
    let shards = name == NAME;
    // The Thanos sidecar is the ruler's too when Thanos Query asks it; the exposure is the
    // shards' only.
    let ingress = [network::ingress(vec![namespace_pods()], vec![tcp(PORT)])]
        .into_iter()
        .chain(thanos::ingress(ctx).filter(|_| shards || query::enabled(ctx)))
        .chain(
            exposure::policy_rule(ctx.config.prometheus.exposure(), tcp(PORT)).filter(|_| shards),
        )
        .collect();
    network::policy(ctx, name, labels, ingress, Some(vec![anywhere()]))
}

// Remote write and the Thanos sidecar, each its own part of the `Prometheus` object; Thanos
// Query over the shards.
pub mod query;
mod remote_write;
pub mod thanos;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model;

    fn render_with(sets: &[&str]) -> Vec<Object> {
        objects(&Context::new(&crate::render::fixtures::config(sets)))
    }

    fn spec(objects: &[Object]) -> &Value {
        &objects
            .iter()
            .find(|o| model::kind(o) == "Prometheus")
            .expect("a Prometheus")
            .data["spec"]
    }

    #[test]
    fn additional_scrape_configs_go_to_the_shards_not_the_ruler() {
        assert!(
            spec(&render_with(&[]))
                .get("additionalScrapeConfigs")
                .is_none()
        );
        let objects = render_with(&[
            "prometheus.additionalScrapeConfigs={name: extra, key: scrape.yaml}",
            "prometheus.shards=2",
        ]);
        let prometheuses: Vec<&Object> = objects
            .iter()
            .filter(|o| model::kind(o) == "Prometheus")
            .collect();
        assert_eq!(prometheuses.len(), 2);
        for p in prometheuses {
            let got = p.data["spec"].get("additionalScrapeConfigs");
            if p.metadata.name.as_deref() == Some(INSTANCE) {
                assert_eq!(got, Some(&json!({"name": "extra", "key": "scrape.yaml"})));
            } else {
                assert_eq!(got, None, "the ruler");
            }
        }
    }

    #[test]
    fn selectors_are_explicit_and_namespace_selectors_unset() {
        let objects = render_with(&[]);
        let spec = spec(&objects);
        for key in [
            "serviceMonitorSelector",
            "podMonitorSelector",
            "probeSelector",
            "scrapeConfigSelector",
            "ruleSelector",
        ] {
            assert_eq!(
                spec[key],
                json!({"matchLabels": {"app.kubernetes.io/part-of": "automon"}}),
                "{key}"
            );
            let ns_key = key.replace("Selector", "NamespaceSelector");
            assert!(spec.get(&ns_key).is_none(), "{ns_key}");
        }
    }

    #[test]
    fn selection_by_the_users_labels_in_more_namespaces_and_automons_own_carry_them() {
        let sets = [
            "prometheus.select.labels={release: kps}",
            "prometheus.select.exclude={app.kubernetes.io/instance: kps}",
            "prometheus.select.namespaces=[team-a]",
        ];
        let objects = render_with(&sets);
        let spec = spec(&objects);
        let want = json!({
            "matchLabels": {"release": "kps"},
            "matchExpressions": [{"key": "app.kubernetes.io/instance", "operator": "NotIn", "values": ["kps"]}],
        });
        for key in SELECTED_KINDS {
            assert_eq!(spec[format!("{key}Selector")], want, "{key}");
            assert_eq!(
                spec[format!("{key}NamespaceSelector")],
                json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["automon", "team-a"]}]}),
                "{key}"
            );
        }
        let everywhere = render_with(&[
            "prometheus.select.labels={release: kps}",
            "prometheus.select.namespaces=[\"*\"]",
        ]);
        assert_eq!(spec_of(&everywhere)["ruleNamespaceSelector"], json!({}));
        // The whole stack: automon's own scrape and rule objects are selected by those labels.
        let all = crate::render::render(&crate::render::fixtures::config(&sets)).objects;
        let selector: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector =
            serde_json::from_value(want).unwrap();
        let monitors: Vec<&Object> = all
            .iter()
            .filter(|o| {
                matches!(
                    model::kind(o),
                    "ServiceMonitor" | "PodMonitor" | "PrometheusRule"
                )
            })
            .collect();
        assert!(monitors.len() > 5);
        for o in monitors {
            let labels = o.metadata.labels.clone().unwrap_or_default();
            assert!(
                model::selector::matches(&selector, &labels),
                "{:?}",
                o.metadata.name
            );
        }
    }

    fn spec_of(objects: &[Object]) -> Value {
        spec(objects).clone()
    }

    #[test]
    fn defaults_use_empty_dir_and_one_replica_without_pdb() {
        let objects = render_with(&[]);
        let spec = spec(&objects);
        assert!(spec.get("storage").is_none());
        assert!(spec.get("retentionSize").is_none());
        assert_eq!(spec["replicas"], 1);
        assert_eq!(spec["retention"], "15d");
        assert_eq!(spec["version"], "v3.16.0");
        assert_eq!(spec["image"], "quay.io/prometheus/prometheus:v3.16.0");
        assert_eq!(spec["serviceAccountName"], "prometheus");
        assert_eq!(spec["alerting"]["alertmanagers"][0]["name"], "alertmanager");
        assert_eq!(spec["alerting"]["alertmanagers"][0]["port"], "web");
        assert_eq!(spec["resources"]["requests"]["memory"], "1Gi");
        assert!(
            !objects
                .iter()
                .any(|o| model::kind(o) == "PodDisruptionBudget")
        );
    }

    #[test]
    fn configuration_reaches_the_custom_resource() {
        let objects = render_with(&[
            "prometheus.replicas=2",
            "prometheus.retention=30d",
            "prometheus.retentionSize=40GB",
            "prometheus.storage.size=50Gi",
            "prometheus.storage.storageClass=fast",
            "prometheus.externalLabels={cluster: prod}",
        ]);
        let spec = spec(&objects);
        assert_eq!(spec["replicas"], 2);
        assert_eq!(spec["retention"], "30d");
        assert_eq!(spec["retentionSize"], "40GB");
        assert_eq!(spec["externalLabels"]["cluster"], "prod");
        let claim = &spec["storage"]["volumeClaimTemplate"]["spec"];
        assert_eq!(claim["resources"]["requests"]["storage"], "50Gi");
        assert_eq!(claim["storageClassName"], "fast");
        let pdb = objects
            .iter()
            .find(|o| model::kind(o) == "PodDisruptionBudget")
            .expect("a PDB with two replicas");
        assert_eq!(
            pdb.data["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"],
            "prometheus"
        );
    }

    #[test]
    fn service_and_policies_select_the_pods_the_operator_labels() {
        let objects = render_with(&[]);
        let pod_labels = &spec(&objects)["podMetadata"]["labels"];
        for o in objects
            .iter()
            .filter(|o| ["Service", "NetworkPolicy"].contains(&model::kind(o)))
        {
            let selector = if model::kind(o) == "Service" {
                &o.data["spec"]["selector"]
            } else {
                &o.data["spec"]["podSelector"]["matchLabels"]
            };
            for (k, v) in selector.as_object().unwrap() {
                assert_eq!(&pod_labels[k], v, "{} selects {k}", model::kind(o));
            }
        }
    }

    #[test]
    fn sharded_the_shards_leave_the_ruler_its_objects_and_the_ruler_federates() {
        let objects = render_with(&["prometheus.shards=3"]);
        let prometheuses: Vec<&Object> = objects
            .iter()
            .filter(|o| model::kind(o) == "Prometheus")
            .collect();
        assert_eq!(prometheuses.len(), 2);
        let shards = &prometheuses[0].data["spec"];
        assert_eq!(shards["shards"], 3);
        for key in ["serviceMonitorSelector", "ruleSelector"] {
            assert_eq!(
                shards[key]["matchExpressions"],
                json!([{"key": "automon.io/scope", "operator": "DoesNotExist"}]),
                "{key}"
            );
        }
        let ruler = prometheuses[1];
        assert_eq!(ruler.metadata.name.as_deref(), Some("automon-ruler"));
        let spec = &ruler.data["spec"];
        assert!(spec.get("shards").is_none());
        assert_eq!(spec["retention"], "1d");
        assert_eq!(
            spec["ruleSelector"]["matchLabels"]["automon.io/scope"],
            "cluster"
        );
        // The Service in front of the shards does not select the ruler's pods.
        let service = objects
            .iter()
            .find(|o| model::kind(o) == "Service" && o.metadata.name.as_deref() == Some(SERVICE))
            .unwrap();
        let ruler_pods = &spec["podMetadata"]["labels"];
        assert!(
            service.data["spec"]["selector"]
                .as_object()
                .unwrap()
                .iter()
                .any(|(k, v)| &ruler_pods[k] != v)
        );
        let federate = objects
            .iter()
            .find(|o| o.metadata.name.as_deref() == Some("prometheus-federate"))
            .unwrap();
        assert_eq!(
            federate.metadata.labels.as_ref().unwrap()["automon.io/scope"],
            "cluster"
        );
        let endpoint = &federate.data["spec"]["endpoints"][0];
        assert_eq!(endpoint["path"], "/federate");
        assert_eq!(endpoint["honorLabels"], true);
        assert_eq!(endpoint["params"]["match[]"][0], "up");
        // Two replicas: each keeps one up through a drain, the ruler too.
        let pdbs: Vec<String> = render_with(&["prometheus.shards=3", "prometheus.replicas=2"])
            .iter()
            .filter(|o| model::kind(o) == "PodDisruptionBudget")
            .map(|o| {
                o.data["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"].to_string()
            })
            .collect();
        assert!(
            pdbs.contains(&"\"prometheus-ruler\"".to_string()),
            "{pdbs:?}"
        );
    }

    #[test]
    fn unsharded_there_is_no_ruler() {
        let objects = render_with(&["prometheus.shards=1"]);
        assert_eq!(
            objects
                .iter()
                .filter(|o| model::kind(o) == "Prometheus")
                .count(),
            1
        );
        assert!(
            spec(&objects)["serviceMonitorSelector"]
                .get("matchExpressions")
                .is_none()
        );
    }

    #[test]
    fn rbac_is_read_only() {
        let objects = render_with(&[]);
        let role = objects
            .iter()
            .find(|o| model::kind(o) == "ClusterRole")
            .unwrap();
        assert_eq!(role.metadata.name.as_deref(), Some("automon-prometheus"));
        for rule in role.data["rules"].as_array().unwrap() {
            for verb in rule["verbs"].as_array().unwrap() {
                assert!(
                    ["get", "list", "watch"].contains(&verb.as_str().unwrap()),
                    "{rule}"
                );
            }
        }
    }
}
