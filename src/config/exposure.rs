//! How a UI (Grafana, Prometheus, Alertmanager) is reached from outside the cluster: an Ingress
//! (`<ui>.ingress`) and a Gateway API HTTPRoute (`<ui>.httpRoute`), named as
//! kube-prometheus-stack's values name them; the URL and path prefix they give the UI; and the
//! checks that refuse, by key, what the API server (or the Gateway API's schema) would.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Config, Invalid, checks, invalid, is_label_key};

/// `<ui>.ingress`: an `networking.k8s.io/v1` Ingress to the UI's Service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Ingress {
    pub enabled: bool,
    /// The IngressClass; the cluster's default class when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    /// The host it answers for (`*.example.com` allowed); every host when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The path prefix (pathType Prefix); the UI serves under it.
    pub path: String,
    /// Annotations of the Ingress: the controller's settings, a cert-manager issuer.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    pub tls: IngressTls,
}

impl Default for Ingress {
    fn default() -> Self {
        Ingress {
            enabled: false,
            class_name: None,
            host: None,
            path: ROOT.into(),
            annotations: BTreeMap::new(),
            tls: IngressTls::default(),
        }
    }
}

/// TLS for the Ingress' host: the certificate in this Secret (made by the user, or by
/// cert-manager from an issuer annotation).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct IngressTls {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
}

/// `<ui>.httpRoute`: a `gateway.networking.k8s.io/v1` HTTPRoute to the UI's Service, attached to
/// the Gateways of `parentRefs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct HttpRoute {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parent_refs: Vec<ParentRef>,
    /// The hostnames it answers for (`*.example.com` allowed); the Gateway's when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    /// The path prefix (PathPrefix); the Ingress' `path` when unset (with the Ingress on too,
    /// the two must be the same).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// A Gateway (or a listener of one) an HTTPRoute attaches to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ParentRef {
    #[serde(default)]
    pub name: String,
    /// The Gateway's namespace; the stack's when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// A listener of the Gateway, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

const ROOT: &str = "/";

/// One UI's exposure, borrowed from its section of the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Exposure<'a> {
    pub ingress: &'a Ingress,
    pub http_route: &'a HttpRoute,
}

/// The sections that have an exposure.
macro_rules! exposure_of {
    ($($section:ident),*) => {$(
        impl super::$section {
            pub fn exposure(&self) -> Exposure<'_> {
                Exposure { ingress: &self.ingress, http_route: &self.http_route }
            }
        }
    )*};
}
exposure_of!(Grafana, Prometheus, Alertmanager);

impl<'a> Exposure<'a> {
    pub fn is_exposed(&self) -> bool {
        self.ingress.enabled || self.http_route.enabled
    }

    /// The HTTPRoute's path: its own, else the Ingress'.
    pub fn route_path(&self) -> &'a str {
        self.http_route
            .path
            .as_deref()
            .unwrap_or(&self.ingress.path)
    }

    /// The path the UI is reached at, when it is exposed: the Ingress', else the HTTPRoute's
    /// (both the same when both are on).
    fn path(&self) -> Option<&'a str> {
        match (self.ingress.enabled, self.http_route.enabled) {
            (true, _) => Some(&self.ingress.path),
            (false, true) => Some(self.route_path()),
            (false, false) => None,
        }
    }

    /// The path prefix the UI serves under: none at `/` (or unexposed), else the path, e.g.
    /// `/prometheus`. What every client inside the cluster puts before the UI's own paths.
    pub fn prefix(&self) -> &'a str {
        self.path().filter(|p| *p != ROOT).unwrap_or("")
    }

    /// The URL users reach the UI at, for the links it makes (alerts, dashboards, redirects):
    /// the Ingress' host (https with TLS), else the HTTPRoute's first hostname (http: the TLS
    /// of a Gateway's listener is the Gateway's, not known here). None without a host, or with
    /// a wildcard one.
    pub fn external_url(&self) -> Option<String> {
        let concrete = |h: &&String| !h.starts_with('*');
        let (scheme, host) = match (self.ingress.enabled, self.ingress.host.as_ref()) {
            (true, Some(host)) if concrete(&host) => {
                let tls = self.ingress.tls.secret_name.is_some();
                (if tls { "https" } else { "http" }, host)
            }
            _ if self.http_route.enabled => ("http", self.http_route.hostnames.first()?),
            _ => return None,
        };
        if !concrete(&host) {
            return None;
        }
        Some(format!("{scheme}://{host}{}", self.path().unwrap_or(ROOT)))
    }
}

/// Each UI's exposure, at its keys.
pub(super) fn check(config: &Config) -> Result<(), Invalid> {
    let sections = [
        ("grafana", config.grafana.exposure()),
        ("prometheus", config.prometheus.exposure()),
        ("alertmanager", config.alertmanager.exposure()),
    ];
    for (section, e) in sections {
        check_ingress(&format!("{section}.ingress"), e.ingress)?;
        check_http_route(&format!("{section}.httpRoute"), e.http_route)?;
        if e.ingress.enabled && e.http_route.enabled && e.ingress.path != e.route_path() {
            return Err(invalid(
                &format!("{section}.httpRoute.path"),
                format!(
                    "{:?} differs from {section}.ingress.path {:?}; the UI serves under one path: give both the same (or leave httpRoute.path out: it is the Ingress' then)",
                    e.route_path(),
                    e.ingress.path
                ),
            ));
        }
    }
    if !config.grafana.enabled && config.grafana.exposure().is_exposed() {
        let key = match config.grafana.ingress.enabled {
            true => "grafana.ingress.enabled",
            false => "grafana.httpRoute.enabled",
        };
        return Err(invalid(
            key,
            "Grafana is off (grafana.enabled=false): there is nothing to expose; turn one of them around".into(),
        ));
    }
    Ok(())
}

fn check_ingress(key: &str, i: &Ingress) -> Result<(), Invalid> {
    if let Some(class) = &i.class_name
        && checks::subdomain_fault(class, 253).is_some()
    {
        return Err(invalid(
            &format!("{key}.className"),
            format!(
                "{class:?} is not an IngressClass name (lower-case letters, digits, '-' and '.'); `kubectl get ingressclass` lists them"
            ),
        ));
    }
    if let Some(host) = &i.host {
        check_host(host).map_err(|p| invalid(&format!("{key}.host"), p))?;
    }
    check_path(&i.path).map_err(|p| invalid(&format!("{key}.path"), p))?;
    for k in i.annotations.keys() {
        if !is_label_key(k) {
            return Err(invalid(
                &format!("{key}.annotations.{k}"),
                format!(
                    "{k:?} is not an annotation key (a name of letters, digits, '-', '_' and '.', optionally after a DNS prefix and '/', e.g. cert-manager.io/cluster-issuer)"
                ),
            ));
        }
    }
    if let Some(secret) = &i.tls.secret_name {
        if checks::subdomain_fault(secret, 253).is_some() {
            return Err(invalid(
                &format!("{key}.tls.secretName"),
                format!(
                    "{secret:?} is not a Secret name (lower-case letters, digits, '-' and '.')"
                ),
            ));
        }
        if i.host.is_none() {
            return Err(invalid(
                &format!("{key}.tls.secretName"),
                format!(
                    "a certificate is for a host: set {key}.host too (the name the certificate is for)"
                ),
            ));
        }
    }
    Ok(())
}

fn check_http_route(key: &str, r: &HttpRoute) -> Result<(), Invalid> {
    if r.enabled && r.parent_refs.is_empty() {
        return Err(invalid(
            &format!("{key}.parentRefs"),
            "an HTTPRoute attaches to a Gateway: name it, e.g. parentRefs: [{name: GATEWAY, namespace: NAMESPACE}]".into(),
        ));
    }
    for (i, p) in r.parent_refs.iter().enumerate() {
        let at = format!("{key}.parentRefs[{i}]");
        if checks::subdomain_fault(&p.name, 253).is_some() {
            let problem = match p.name.is_empty() {
                true => "a Gateway is named by `name`; give it".to_string(),
                false => format!(
                    "{:?} is not a Gateway name (lower-case letters, digits, '-' and '.')",
                    p.name
                ),
            };
            return Err(invalid(&format!("{at}.name"), problem));
        }
        if let Some(ns) = p
            .namespace
            .as_deref()
            .filter(|n| checks::namespace_name(n).is_err())
        {
            return Err(invalid(
                &format!("{at}.namespace"),
                format!("{ns:?} is not a namespace name"),
            ));
        }
        if let Some(s) = p
            .section_name
            .as_deref()
            .filter(|s| checks::subdomain_fault(s, 253).is_some())
        {
            return Err(invalid(
                &format!("{at}.sectionName"),
                format!("{s:?} is not a listener name (lower-case letters, digits, '-' and '.')"),
            ));
        }
        if p.port == Some(0) {
            return Err(invalid(
                &format!("{at}.port"),
                "0 is not a port (1 to 65535)".into(),
            ));
        }
    }
    for (i, h) in r.hostnames.iter().enumerate() {
        check_host(h).map_err(|p| invalid(&format!("{key}.hostnames[{i}]"), p))?;
    }
    match &r.path {
        Some(path) => check_path(path).map_err(|p| invalid(&format!("{key}.path"), p)),
        None => Ok(()),
    }
}

/// A host as an Ingress rule and an HTTPRoute take one: a DNS name (a subdomain, RFC 1123), its
/// first label `*` for a wildcard; not an IP address.
fn check_host(host: &str) -> Result<(), String> {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!(
            "{host:?} is an IP address; a host is a DNS name, e.g. grafana.example.com"
        ));
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    if checks::subdomain_fault(name, 253).is_none() {
        Ok(())
    } else {
        Err(format!(
            "{host:?} is not a host name (lower-case letters, digits, '-' and '.', optionally after '*.'), e.g. grafana.example.com"
        ))
    }
}

/// A path prefix the UI can serve under and every Ingress controller and Gateway matches alike:
/// `/`, or `/` and segments of letters, digits, `-`, `.`, `_` and `~`, without a trailing `/`.
fn check_path(path: &str) -> Result<(), String> {
    if path == ROOT {
        return Ok(());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!(
            "{path:?} does not start with '/'; use e.g. /grafana (or / for the whole host)"
        ));
    };
    if rest.ends_with('/') {
        return Err(format!(
            "{path:?} ends with '/'; leave it out: {}",
            path.trim_end_matches('/')
        ));
    }
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    };
    if rest.split('/').all(segment_ok) {
        Ok(())
    } else {
        Err(format!(
            "{path:?} is not a path prefix: '/' and segments of letters, digits, '-', '.', '_' and '~', e.g. /grafana or /monitoring/grafana"
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn with(sets: &[&str]) -> Result<Config, String> {
        sets.iter()
            .try_fold(Config::default(), |c, s| c.with_set(s))
            .map_err(|e| format!("{}: {}", e.key, e.problem))
    }

    /// Per key: the values refused (with the key and words the error names) and accepted.
    #[test]
    fn each_key_refuses_what_the_api_server_would() {
        let refusals: &[(&[&str], &str)] = &[
            (
                &["grafana.ingress.host=Grafana.Example.com"],
                "grafana.ingress.host: \"Grafana.Example.com\" is not a host name",
            ),
            (
                &["grafana.ingress.host=10.0.0.1"],
                "grafana.ingress.host: \"10.0.0.1\" is an IP address",
            ),
            (
                &["prometheus.ingress.host=a.*.example.com"],
                "prometheus.ingress.host: \"a.*.example.com\" is not a host name",
            ),
            (
                &["prometheus.ingress.host=under_score.example.com"],
                "is not a host name",
            ),
            (
                &["prometheus.ingress.path=prometheus"],
                "prometheus.ingress.path: \"prometheus\" does not start with '/'",
            ),
            (
                &["prometheus.ingress.path=/prometheus/"],
                "prometheus.ingress.path: \"/prometheus/\" ends with '/'; leave it out: /prometheus",
            ),
            (
                &["alertmanager.ingress.path=/a//b"],
                "alertmanager.ingress.path: \"/a//b\" is not a path prefix",
            ),
            (
                &["alertmanager.ingress.path=/a/../b"],
                "is not a path prefix",
            ),
            (&["alertmanager.ingress.path=/a b"], "is not a path prefix"),
            (
                &["alertmanager.ingress.path=/a%2fb"],
                "is not a path prefix",
            ),
            (
                &["grafana.ingress.className=Nginx"],
                "grafana.ingress.className: \"Nginx\" is not an IngressClass name",
            ),
            (
                &[
                    "grafana.ingress.tls.secretName=Grafana_TLS",
                    "grafana.ingress.host=g.example.com",
                ],
                "grafana.ingress.tls.secretName: \"Grafana_TLS\" is not a Secret name",
            ),
            (
                &["grafana.ingress.tls.secretName=grafana-tls"],
                "grafana.ingress.tls.secretName: a certificate is for a host: set grafana.ingress.host too",
            ),
            (
                &["grafana.ingress.annotations={'bad key!': x}"],
                "grafana.ingress.annotations.bad key!: \"bad key!\" is not an annotation key",
            ),
            (
                &["grafana.ingress.annotations={'cert-manager.io/': x}"],
                "is not an annotation key",
            ),
            (
                &["grafana.ingress.hots=g.example.com"],
                "grafana.ingress.hots: ",
            ),
            (
                &["prometheus.httpRoute.enabled=true"],
                "prometheus.httpRoute.parentRefs: an HTTPRoute attaches to a Gateway",
            ),
            (
                &["prometheus.httpRoute.parentRefs=[{namespace: gateways}]"],
                "prometheus.httpRoute.parentRefs[0].name: a Gateway is named by `name`",
            ),
            (
                &["prometheus.httpRoute.parentRefs=[{name: Main}]"],
                "prometheus.httpRoute.parentRefs[0].name: \"Main\" is not a Gateway name",
            ),
            (
                &["prometheus.httpRoute.parentRefs=[{name: gw, namespace: Gateways}]"],
                "prometheus.httpRoute.parentRefs[0].namespace: \"Gateways\" is not a namespace name",
            ),
            (
                &["prometheus.httpRoute.parentRefs=[{name: gw, sectionName: HTTPS}]"],
                "prometheus.httpRoute.parentRefs[0].sectionName: \"HTTPS\" is not a listener name",
            ),
            (
                &["prometheus.httpRoute.parentRefs=[{name: gw, port: 0}]"],
                "prometheus.httpRoute.parentRefs[0].port: 0 is not a port",
            ),
            (
                &["prometheus.httpRoute.parentRefs=[{name: gw, port: 70000}]"],
                "prometheus.httpRoute.parentRefs",
            ),
            (
                &["prometheus.httpRoute.parentRefs=[{name: gw, kind: Service}]"],
                "prometheus.httpRoute.parentRefs",
            ),
            (
                &["alertmanager.httpRoute.hostnames=[am.example.com, 'AM.example.com']"],
                "alertmanager.httpRoute.hostnames[1]: \"AM.example.com\" is not a host name",
            ),
            (
                &["alertmanager.httpRoute.path=/alert manager"],
                "alertmanager.httpRoute.path: \"/alert manager\" is not a path prefix",
            ),
            (
                &[
                    "alertmanager.ingress.enabled=true",
                    "alertmanager.ingress.path=/alertmanager",
                    "alertmanager.httpRoute.parentRefs=[{name: gw}]",
                    "alertmanager.httpRoute.enabled=true",
                    "alertmanager.httpRoute.path=/am",
                ],
                "alertmanager.httpRoute.path: \"/am\" differs from alertmanager.ingress.path \"/alertmanager\"",
            ),
            (
                &["grafana.ingress.enabled=true", "grafana.enabled=false"],
                "grafana.ingress.enabled: Grafana is off",
            ),
        ];
        for (sets, words) in refusals {
            match with(sets) {
                Ok(_) => panic!("{sets:?} was accepted"),
                Err(e) => assert!(e.contains(words), "{sets:?}:\n  {e}\n  expected {words}"),
            }
        }
        let acceptances: &[&[&str]] = &[
            &[
                "grafana.ingress.enabled=true",
                "grafana.ingress.host=grafana.example.com",
                "grafana.ingress.className=nginx",
                "grafana.ingress.tls.secretName=grafana-tls",
                "grafana.ingress.annotations={cert-manager.io/cluster-issuer: letsencrypt, nginx.ingress.kubernetes.io/proxy-body-size: 8m}",
            ],
            &[
                "prometheus.ingress.enabled=true",
                "prometheus.ingress.host='*.example.com'",
            ],
            &[
                "prometheus.ingress.enabled=true",
                "prometheus.ingress.path=/monitoring/prometheus",
            ],
            &["alertmanager.ingress.path=/a.b_c~d-e"],
            &[
                "alertmanager.httpRoute.parentRefs=[{name: main, namespace: gateways, sectionName: https, port: 443}, {name: other}]",
                "alertmanager.httpRoute.enabled=true",
                "alertmanager.httpRoute.hostnames=[am.example.com, '*.example.com']",
                "alertmanager.httpRoute.path=/alertmanager",
                "alertmanager.ingress.path=/alertmanager",
                "alertmanager.ingress.enabled=true",
            ],
            // Without a path of its own, the HTTPRoute's is the Ingress'.
            &[
                "grafana.ingress.path=/grafana",
                "grafana.ingress.enabled=true",
                "grafana.httpRoute.parentRefs=[{name: gw}]",
                "grafana.httpRoute.enabled=true",
            ],
            // Off, the settings are kept for later and need nothing else.
            &[
                "grafana.enabled=false",
                "grafana.ingress.host=grafana.example.com",
            ],
        ];
        for sets in acceptances {
            with(sets).unwrap_or_else(|e| panic!("{sets:?}: {e}"));
        }
    }

    /// The URL and prefix each combination gives the UI.
    #[test]
    fn the_url_follows_the_host_path_and_tls() {
        let cases: &[(&[&str], Option<&str>, &str)] = &[
            (&[], None, ""),
            // Set but off: not exposed.
            (&["grafana.ingress.host=g.example.com"], None, ""),
            (
                &[
                    "grafana.ingress.enabled=true",
                    "grafana.ingress.host=g.example.com",
                ],
                Some("http://g.example.com/"),
                "",
            ),
            (
                &[
                    "grafana.ingress.enabled=true",
                    "grafana.ingress.host=example.com",
                    "grafana.ingress.path=/grafana",
                    "grafana.ingress.tls.secretName=tls",
                ],
                Some("https://example.com/grafana"),
                "/grafana",
            ),
            (
                &[
                    "grafana.ingress.enabled=true",
                    "grafana.ingress.path=/grafana",
                ],
                None,
                "/grafana",
            ),
            (
                &[
                    "grafana.ingress.enabled=true",
                    "grafana.ingress.host='*.example.com'",
                ],
                None,
                "",
            ),
            (
                &[
                    "grafana.httpRoute.parentRefs=[{name: gw}]",
                    "grafana.httpRoute.enabled=true",
                    "grafana.httpRoute.hostnames=[g.example.com, h.example.com]",
                    "grafana.httpRoute.path=/g",
                ],
                Some("http://g.example.com/g"),
                "/g",
            ),
            // The Ingress' host first; the HTTPRoute's when the Ingress has none.
            (
                &[
                    "grafana.ingress.enabled=true",
                    "grafana.ingress.host=i.example.com",
                    "grafana.ingress.tls.secretName=tls",
                    "grafana.httpRoute.parentRefs=[{name: gw}]",
                    "grafana.httpRoute.enabled=true",
                    "grafana.httpRoute.hostnames=[r.example.com]",
                ],
                Some("https://i.example.com/"),
                "",
            ),
            (
                &[
                    "grafana.ingress.enabled=true",
                    "grafana.httpRoute.parentRefs=[{name: gw}]",
                    "grafana.httpRoute.enabled=true",
                    "grafana.httpRoute.hostnames=[r.example.com]",
                ],
                Some("http://r.example.com/"),
                "",
            ),
        ];
        for (sets, url, prefix) in cases {
            let c = with(sets).unwrap();
            let e = c.grafana.exposure();
            assert_eq!(e.external_url().as_deref(), *url, "{sets:?}");
            assert_eq!(e.prefix(), *prefix, "{sets:?}");
        }
    }
}
