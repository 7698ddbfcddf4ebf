//! Exposure (issue 29, point 1): each UI behind an Ingress and a Gateway API HTTPRoute. The
//! rendered objects pass the real API server's strict validation (the HTTPRoute against the
//! Gateway API's own CRDs, installed from its release), a bad value is refused by its key before
//! anything is written, `enable` exposes the stack under paths with the URLs set to match, and
//! everything automon asks of Prometheus and Alertmanager still reaches them under those paths.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::Value;

/// Each UI exposed both ways: an Ingress (TLS from a Secret cert-manager makes from the issuer
/// annotation) and an HTTPRoute, under its own path of one host.
fn exposed_sets(host: &str) -> Vec<String> {
    let mut sets = Vec::new();
    for ui in ["grafana", "prometheus", "alertmanager"] {
        sets.extend([
            format!("{ui}.ingress.enabled=true"),
            format!("{ui}.ingress.host={host}"),
            format!("{ui}.ingress.path=/{ui}"),
            format!("{ui}.ingress.className=nginx"),
            format!("{ui}.ingress.tls.secretName={ui}-tls"),
            format!("{ui}.ingress.annotations={{cert-manager.io/cluster-issuer: letsencrypt}}"),
            format!("{ui}.httpRoute.parentRefs=[{{name: main, namespace: gateways, sectionName: https}}]"),
            format!("{ui}.httpRoute.enabled=true"),
            format!("{ui}.httpRoute.hostnames=[{host}]"),
            format!("{ui}.httpRoute.path=/{ui}"),
        ]);
    }
    sets
}

fn flags(sets: &[String]) -> Vec<&str> {
    sets.iter().flat_map(|s| ["--set", s.as_str()]).collect()
}

/// The Gateway API's standard-channel CRDs (tests/cluster/build-tools gateway_api, from the
/// release's module), installed into the shared cluster and Established. Idempotent, and never
/// removed: other tests may run beside.
fn ensure_gateway_crds() -> PathBuf {
    let dir = built_tool("gateway_api", "gateway-api-crds");
    let c = cluster();
    let installed = c.kubectl(&["get", "crd", "httproutes.gateway.networking.k8s.io"]);
    if installed.code != 0 {
        c.server_side_apply(&dir, &["--force-conflicts"]).success();
    }
    c.kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/httproutes.gateway.networking.k8s.io",
        "--timeout=60s",
    ])
    .success();
    dir
}

#[test]
fn ingresses_and_routes_pass_the_api_servers_strict_validation() {
    let c = cluster();
    c.ensure_crds();
    ensure_gateway_crds();
    let sets = exposed_sets("monitoring.example.com");
    let objects = rendered_objects(&flags(&sets));
    let exposed: Vec<Value> = objects
        .iter()
        .filter(|o| {
            matches!(
                o["kind"].as_str(),
                Some(
                    "Ingress"
                        | "HTTPRoute"
                        | "NetworkPolicy"
                        | "Prometheus"
                        | "Alertmanager"
                        | "ServiceMonitor"
                        | "Deployment"
                )
            ) || o["metadata"]["name"] == "grafana-datasources"
        })
        .cloned()
        .collect();
    let count = |kind: &str| exposed.iter().filter(|o| o["kind"] == kind).count();
    assert_eq!((count("Ingress"), count("HTTPRoute")), (3, 3));
    let prometheus = exposed.iter().find(|o| o["kind"] == "Prometheus").unwrap();
    assert_eq!(
        prometheus["spec"]["externalUrl"],
        "https://monitoring.example.com/prometheus"
    );
    if !exists(&["namespace", "automon"]) {
        c.kubectl(&["create", "namespace", "automon"]).success();
    }
    c.accepts_strictly(&exposed);

    // The Gateway API's own validation refuses what the configuration's checks refuse too: a
    // path the HTTPRoute's schema does not take, written past them.
    let mut route = exposed
        .iter()
        .find(|o| o["kind"] == "HTTPRoute")
        .unwrap()
        .clone();
    route["spec"]["rules"][0]["matches"][0]["path"]["value"] = "/a//b".into();
    let (_dir, file) = write_list("route.json", &[route]);
    let out = c.server_dry_run(&file);
    assert_ne!(out.code, 0, "{out:#?}");
    assert!(out.stderr.contains("must not contain '//'"), "{out:#?}");
}

#[test]
fn a_bad_exposure_is_refused_by_its_key_before_anything_is_written() {
    for (set, words) in [
        (
            "grafana.ingress.host=Grafana.Example.com",
            "grafana.ingress.host: \"Grafana.Example.com\" is not a host name",
        ),
        (
            "prometheus.ingress.path=/prometheus/",
            "prometheus.ingress.path: \"/prometheus/\" ends with '/'",
        ),
        (
            "alertmanager.ingress.tls.secretName=am-tls",
            "alertmanager.ingress.tls.secretName: a certificate is for a host",
        ),
        (
            "prometheus.httpRoute.enabled=true",
            "prometheus.httpRoute.parentRefs: an HTTPRoute attaches to a Gateway",
        ),
        (
            "grafana.ingress.annotations={'bad key!': x}",
            "grafana.ingress.annotations.bad key!",
        ),
    ] {
        // Offline: render has no cluster to ask.
        let rendered = run(automon_admin().args(["render", "--set", set]))
            .code(EXIT_USAGE)
            .stderr_has(words);
        assert!(rendered.stdout.is_empty(), "{rendered:#?}");
        // enable: nothing written, not even the namespace.
        let ns = "automon-ex-bad";
        enable(ns, &["--set", set])
            .code(EXIT_USAGE)
            .stderr_has(words);
        assert!(!exists(&["namespace", ns]), "enable wrote the namespace");
    }
}

/// `enable` exposes the UIs under paths: the Ingresses are there, Prometheus and Alertmanager
/// serve under their paths with their URLs, Grafana's root URL matches; and status, silence and
/// test-alert reach Prometheus and Alertmanager under those paths through the API server (the
/// real ones, run as the operator runs them: `localcluster serve` passes the route prefix).
#[test]
fn enable_exposes_the_uis_and_every_command_reaches_them_under_their_paths() {
    let ns = "automon-ex-paths";
    let _cleanup = Cleanup::fresh(ns);
    ensure_operator();
    let host = "ex.example.com";
    let mut sets: Vec<String> = Vec::new();
    for ui in ["grafana", "prometheus", "alertmanager"] {
        sets.extend([
            format!("{ui}.ingress.enabled=true"),
            format!("{ui}.ingress.host={host}"),
            format!("{ui}.ingress.path=/{ui}"),
        ]);
    }
    sets.push("prometheus.ingress.tls.secretName=prometheus-tls".to_string());
    // An HTTPRoute too: preflight finds the Gateway API served (the real CRD's discovery).
    ensure_gateway_crds();
    sets.push("alertmanager.httpRoute.parentRefs=[{name: main, namespace: gateways}]".into());
    sets.push("alertmanager.httpRoute.enabled=true".into());
    let mut args = flags(&sets);
    args.extend(["--wait", "--timeout", "3m"]);
    let out = enable(ns, &args).success();
    assert!(
        out.stdout.contains("Gateway API HTTPRoute served"),
        "{}",
        out.stdout
    );
    let route = get_json(&["get", "httproute", "alertmanager", "-n", ns]);
    assert_eq!(
        route["spec"]["rules"][0]["matches"][0]["path"]["value"], "/alertmanager",
        "{route:#}"
    );

    for ui in ["grafana", "prometheus", "alertmanager"] {
        let ingress = get_json(&["get", "ingress", ui, "-n", ns]);
        let path = &ingress["spec"]["rules"][0]["http"]["paths"][0];
        assert_eq!(path["path"], format!("/{ui}"), "{ingress:#}");
        assert_eq!(path["backend"]["service"]["name"], ui, "{ingress:#}");
    }
    let prometheus = get_json(&["get", "prometheus", "automon", "-n", ns]);
    assert_eq!(
        prometheus["spec"]["externalUrl"],
        format!("https://{host}/prometheus")
    );
    assert_eq!(prometheus["spec"]["routePrefix"], "/prometheus");
    let alertmanager = get_json(&["get", "alertmanager", "automon", "-n", ns]);
    assert_eq!(
        alertmanager["spec"]["externalUrl"],
        format!("http://{host}/alertmanager")
    );
    assert_eq!(alertmanager["spec"]["routePrefix"], "/alertmanager");
    // The operator passes the prefix on to the pods it makes.
    let statefulset = until("the operator's Prometheus StatefulSet", || {
        let out = cluster().kubectl(&[
            "get",
            "statefulset",
            "prometheus-automon",
            "-n",
            ns,
            "-o",
            "json",
        ]);
        match out.code {
            0 => Ok(serde_json::from_str::<Value>(&out.stdout).unwrap()),
            _ => Err(out.stderr),
        }
    });
    let text = statefulset.to_string();
    assert!(
        text.contains("--web.route-prefix=/prometheus"),
        "{statefulset:#}"
    );
    let grafana = get_json(&["get", "deployment", "grafana", "-n", ns]);
    let env = grafana["spec"]["template"]["spec"]["containers"][0]["env"].to_string();
    assert!(
        env.contains(&format!("\"http://{host}/grafana/\"")),
        "{env}"
    );
    assert!(env.contains("GF_SERVER_SERVE_FROM_SUB_PATH"), "{env}");

    // The real Prometheus and Alertmanager, under those paths.
    let _served = serve_stack_alertmanager(ns);
    let (out, st) = status_json(ns, &[]);
    let p = &st["prometheus"];
    assert_eq!(p["reachable"], true, "{out:#?}");
    assert_eq!(
        p["via"],
        format!("service {ns}/prometheus:web under /prometheus through the API server"),
        "{st:#}"
    );
    // It answered with the stack's own rules: the real Prometheus, not a 404 under the path.
    assert_eq!(p["rulesLoaded"]["alerts"], st["rules"]["alerts"], "{st:#}");
    let out = run(automon_admin().args(["silence", "--list", "-n", ns, "-o", "json"]));
    assert_eq!(out.code, 0, "silence did not reach Alertmanager:\n{out:#?}");
    assert_eq!(out.stdout.trim(), "[]", "{out:#?}");

    // open: the URL it prints is under the path, and answers.
    for (ui, ready) in [("prometheus", "-/ready"), ("alertmanager", "api/v2/status")] {
        let (url, _open) = opened(ns, ui);
        assert!(url.ends_with(&format!("/{ui}")), "{url}");
        let body = until(&format!("{ui} through open"), || {
            curl(&format!("{url}/{ready}"))
        });
        assert!(!body.is_empty(), "{ui}");
    }
}

/// `open <ui> -n <ns>` running: the URL of its first line, and the process (killed on drop).
fn opened(ns: &str, ui: &str) -> (String, KillOnDrop) {
    use std::io::BufRead;
    let mut child = automon_admin()
        .args(["open", ui, "-n", ns])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start kubectl-automon open");
    let stdout = child.stdout.take().unwrap();
    let guard = KillOnDrop(child);
    let mut reader = std::io::BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    // Whatever it prints later still has a reader.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    (url, guard)
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Without the Gateway API, an HTTPRoute is refused by preflight, naming the CRD and how to
/// install it, before anything is written. Needs a cluster without the CRDs: the `min` one,
/// started fresh here (the shared cluster keeps them for the other tests). Only where
/// LOCALCLUSTER_DIR points every instance at one shared cluster is it left to the unit test of
/// the detection (src/preflight/gateway.rs): starting `min` there would stop the shared one.
#[test]
fn an_httproute_without_the_gateway_api_is_refused_before_anything_is_written() {
    if std::env::var_os("LOCALCLUSTER_DIR").is_some() {
        eprintln!("LOCALCLUSTER_DIR makes `min` the shared cluster: left to the unit test");
        return;
    }
    let min = min_cluster();
    let kubeconfig = min.kubeconfig.clone();
    let kubectl = |args: &[&str]| min.kubectl(args);
    assert_ne!(
        kubectl(&["get", "crd", "httproutes.gateway.networking.k8s.io"]).code,
        0,
        "a fresh min cluster has no Gateway API"
    );
    let ns = "automon-ex-nogw";
    let out = run(automon()
        .env("KUBECONFIG", &kubeconfig)
        .args(["enable", "-n", ns, "--crds-from"])
        .arg(cluster().crds_dir())
        .args([
            "--set",
            "prometheus.httpRoute.parentRefs=[{name: main}]",
            "--set",
            "prometheus.httpRoute.enabled=true",
        ]));
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.stdout
            .contains("CRD httproutes.gateway.networking.k8s.io is not installed")
            && out.stdout.contains("standard-install.yaml"),
        "{out:#?}"
    );
    assert_ne!(
        kubectl(&["get", "namespace", ns]).code,
        0,
        "enable wrote the namespace"
    );
}
