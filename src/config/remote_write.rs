//! `prometheus.remoteWrite` and `prometheus.thanos`: where series go beyond this Prometheus (a
//! distributed store by remote write, object storage by the Thanos sidecar), with credentials
//! from Secrets the user names, and the checks that refuse what Prometheus or the store would.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use super::credentials::SecretKey;
use super::{
    PromDuration, Prometheus, Resources, check_url_for,
    credentials::{check_key, check_secret, check_secret_key},
};

/// The external label the remote stores tell clusters apart by (Mimir's HA tracker's default
/// `ha_cluster_label`); required with remote write.
pub const CLUSTER_LABEL: &str = "cluster";

/// One remote-write endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RemoteWrite {
    /// The endpoint; with a `preset`, its base (`https://mimir.example.com`) is enough.
    #[serde(default)]
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// Sent as `Authorization: Bearer <token>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<SecretKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    /// Extra HTTP headers, e.g. `X-Scope-OrgID` (Mimir's tenant) or `THANOS-TENANT`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<Queue>,
}

/// The distributed stores automon knows: each fills the write path and the replica label its
/// deduplication expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    Thanos,
    Mimir,
    #[serde(rename = "victoriametrics")]
    VictoriaMetrics,
}

impl Preset {
    /// The path the store receives remote write on, appended to a base URL.
    pub fn path(self) -> &'static str {
        match self {
            // Thanos Receive's remote-write listener (port 10908 by default).
            Preset::Thanos => "/api/v1/receive",
            // Mimir's distributor (or its gateway).
            Preset::Mimir => "/api/v1/push",
            // Single-node VictoriaMetrics; for the cluster version the base is vminsert's
            // `/insert/<tenant>/prometheus`.
            Preset::VictoriaMetrics => "/api/v1/write",
        }
    }

    /// The external label that names each replica of an HA pair (the `Prometheus` object's
    /// `replicaExternalLabelName`); empty for none.
    pub fn replica_label(self) -> &'static str {
        match self {
            // The operator's own default; Thanos Query deduplicates with
            // `--query.replica-label=prometheus_replica`.
            Preset::Thanos => "prometheus_replica",
            // Mimir's HA tracker: `ha_replica_label` defaults to `__replica__` (and
            // `ha_cluster_label` to `cluster`); it keeps one replica's samples and drops the label.
            Preset::Mimir => "__replica__",
            // VictoriaMetrics deduplicates identical series (`-dedup.minScrapeInterval`): the
            // replicas must send the same labels, so no replica label at all.
            Preset::VictoriaMetrics => "",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Preset::Thanos => "thanos",
            Preset::Mimir => "mimir",
            Preset::VictoriaMetrics => "victoriametrics",
        }
    }
}

/// A user name and a password, two keys of one Secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct BasicAuth {
    pub secret: String,
    pub username_key: String,
    pub password_key: String,
}

/// TLS from keys of one Secret: a CA to verify the endpoint by, and a client certificate and
/// key for mutual TLS.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Tls {
    pub secret: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_key: Option<String>,
}

/// Prometheus' remote-write queue; what is unset keeps Prometheus' default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Queue {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_shards: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_shards: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_samples_per_send: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_send_deadline: Option<PromDuration>,
}

/// The operator's Thanos sidecar: uploads blocks to object storage and serves the StoreAPI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Thanos {
    /// The Secret key holding Thanos' object storage configuration (`type`, `config`).
    pub object_storage_config: SecretKey,
    pub resources: Resources,
}

impl Default for Thanos {
    fn default() -> Self {
        Thanos {
            object_storage_config: SecretKey::default(),
            resources: Resources::new("10m", "64Mi", "256Mi"),
        }
    }
}

impl RemoteWrite {
    /// The URL Prometheus writes to: `url` as given, or, with a preset, the base and the
    /// preset's path (unless `url` already ends with it).
    pub fn endpoint(&self) -> String {
        match self.preset {
            Some(p) if !self.url.trim_end_matches('/').ends_with(p.path()) => {
                format!("{}{}", self.url.trim_end_matches('/'), p.path())
            }
            _ => self.url.clone(),
        }
    }
}

impl Prometheus {
    /// The replica label the endpoints' presets ask for (`""`: none), when one does;
    /// validation has made sure they agree.
    pub fn preset_replica_label(&self) -> Option<&'static str> {
        self.remote_write
            .iter()
            .find_map(|w| w.preset.map(Preset::replica_label))
    }
}

/// Headers Prometheus sets itself and refuses in `headers`; Authorization comes from
/// `basicAuth` or `bearerToken`.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "accept-encoding",
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
];

/// What Prometheus, the operator or the store would refuse (or silently get wrong), as
/// (key, problem) for the caller's error.
pub(super) fn check(p: &Prometheus) -> Result<(), (String, String)> {
    for (i, w) in p.remote_write.iter().enumerate() {
        check_endpoint(&format!("prometheus.remoteWrite[{i}]"), w)?;
    }
    if !p.remote_write.is_empty()
        && p.external_labels
            .get(CLUSTER_LABEL)
            .is_none_or(|v| v.trim().is_empty())
    {
        return Err((
            format!("prometheus.externalLabels.{CLUSTER_LABEL}"),
            "remoteWrite needs a `cluster` external label, so that the remote store tells this \
             cluster's series from others' (and deduplicates its replicas); set one, e.g. \
             --set prometheus.externalLabels.cluster=prod"
                .into(),
        ));
    }
    // One Prometheus has one replica label: every preset must want the same one.
    let mut wanted: Option<(usize, Preset)> = None;
    for (i, w) in p.remote_write.iter().enumerate() {
        let Some(preset) = w.preset else { continue };
        match wanted {
            Some((first, other)) if other.replica_label() != preset.replica_label() => {
                let label = |p: Preset| match p.replica_label() {
                    "" => "no replica label".to_string(),
                    l => format!("replica label {l:?}"),
                };
                return Err((
                    format!("prometheus.remoteWrite[{i}].preset"),
                    format!(
                        "{} deduplicates by {}, but remoteWrite[{first}] ({}) by {}; one \
                         Prometheus has one replica label: send to stores that agree, or use \
                         the plain url (no preset) for one of them",
                        preset.name(),
                        label(preset),
                        other.name(),
                        label(other),
                    ),
                ));
            }
            Some(_) => {}
            None => wanted = Some((i, preset)),
        }
    }
    if let Some(t) = &p.thanos {
        check_secret_key(
            "prometheus.thanos.objectStorageConfig",
            &t.object_storage_config,
        )?;
        super::checks::resources("prometheus.thanos.resources", &t.resources)?;
        // Replicas that upload blocks under the same external labels overlap, and Thanos'
        // compactor halts on overlapping blocks.
        if p.replicas > 1 && p.preset_replica_label() == Some("") {
            return Err((
                "prometheus.thanos".into(),
                format!(
                    "{} replicas would upload blocks with identical external labels (the \
                     victoriametrics preset drops the replica label), which Thanos' compactor \
                     refuses; use one replica, or no victoriametrics preset with the sidecar",
                    p.replicas
                ),
            ));
        }
    }
    Ok(())
}

fn check_endpoint(key: &str, w: &RemoteWrite) -> Result<(), (String, String)> {
    check_endpoint_url(key, w)?;
    check_authorization(key, w)?;
    if let Some(t) = &w.tls {
        check_tls(&format!("{key}.tls"), t)?;
    }
    check_headers(key, w)?;
    if let Some(q) = &w.queue {
        check_queue(&format!("{key}.queue"), q)?;
    }
    Ok(())
}

/// The endpoint's URL: given, with no user or password in it, one Prometheus accepts.
fn check_endpoint_url(key: &str, w: &RemoteWrite) -> Result<(), (String, String)> {
    let url_key = format!("{key}.url");
    if w.url.trim().is_empty() {
        return Err((
            url_key,
            "no url; give the endpoint, or with a preset its base, e.g. https://mimir.example.com"
                .into(),
        ));
    }
    // The Prometheus object holds the URL in the clear: no password may ride in it.
    if has_userinfo(&w.url) {
        return Err((
            url_key,
            "the url carries a user name or password (user:password@host), which would be \
             stored in the clear; give them in basicAuth, from a Secret"
                .into(),
        ));
    }
    check_url_for(
        &w.endpoint(),
        "Prometheus",
        "https://mimir.example.com/api/v1/push",
        true,
    )
    .map_err(|e| (url_key, e))?;
    Ok(())
}

/// One Authorization header at most, each from a Secret key.
fn check_authorization(key: &str, w: &RemoteWrite) -> Result<(), (String, String)> {
    if w.basic_auth.is_some() && w.bearer_token.is_some() {
        return Err((
            key.into(),
            "both basicAuth and bearerToken; Prometheus sends one Authorization header: keep one"
                .into(),
        ));
    }
    if let Some(b) = &w.basic_auth {
        let k = format!("{key}.basicAuth");
        check_secret(&k, &b.secret)?;
        check_key(&format!("{k}.usernameKey"), &b.secret, &b.username_key)?;
        check_key(&format!("{k}.passwordKey"), &b.secret, &b.password_key)?;
    }
    if let Some(t) = &w.bearer_token {
        check_secret_key(&format!("{key}.bearerToken"), t)?;
    }
    Ok(())
}

/// TLS from keys of one Secret: a CA, a client certificate and its key, or both.
fn check_tls(k: &str, t: &Tls) -> Result<(), (String, String)> {
    check_secret(k, &t.secret)?;
    let keys = [
        ("caKey", &t.ca_key),
        ("certKey", &t.cert_key),
        ("keyKey", &t.key_key),
    ];
    for (name, value) in keys {
        if let Some(value) = value {
            check_key(&format!("{k}.{name}"), &t.secret, value)?;
        }
    }
    match (&t.cert_key, &t.key_key) {
        (Some(_), None) | (None, Some(_)) => {
            return Err((
                k.into(),
                "mutual TLS needs both certKey and keyKey (the client certificate and its key)"
                    .into(),
            ));
        }
        (None, None) if t.ca_key.is_none() => {
            return Err((
                k.into(),
                format!(
                    "names Secret {:?} but none of caKey, certKey and keyKey",
                    t.secret
                ),
            ));
        }
        _ => {}
    }
    Ok(())
}

/// Header names HTTP allows, that Prometheus does not set itself, and that carry no credential
/// (they are stored in the clear).
fn check_headers(key: &str, w: &RemoteWrite) -> Result<(), (String, String)> {
    for name in w.headers.keys() {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !valid {
            return Err((
                format!("{key}.headers"),
                format!("{name:?} is not an HTTP header name"),
            ));
        }
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err((
                format!("{key}.headers"),
                format!(
                    "{name:?} is set by Prometheus itself (credentials go in basicAuth or \
                     bearerToken)"
                ),
            ));
        }
        if looks_like_credential(name) {
            return Err((
                format!("{key}.headers"),
                format!(
                    "{name:?} looks like a credential, and headers are stored in the clear in \
                     the Prometheus object; send credentials with basicAuth or bearerToken \
                     (from a Secret)"
                ),
            ));
        }
    }
    Ok(())
}

/// The queue's counts at least 1, its shards in order, its deadline above 0.
fn check_queue(k: &str, q: &Queue) -> Result<(), (String, String)> {
    for (name, n) in [
        ("capacity", q.capacity),
        ("minShards", q.min_shards),
        ("maxShards", q.max_shards),
        ("maxSamplesPerSend", q.max_samples_per_send),
    ] {
        if n == Some(0) {
            return Err((format!("{k}.{name}"), "must be at least 1".into()));
        }
    }
    if let (Some(min), Some(max)) = (q.min_shards, q.max_shards)
        && min > max
    {
        return Err((
            format!("{k}.minShards"),
            format!("{min} is above maxShards ({max})"),
        ));
    }
    if let Some(d) = &q.batch_send_deadline {
        match d.seconds() {
            Ok(0) => {
                return Err((
                    format!("{k}.batchSendDeadline"),
                    format!("{d} must be longer than 0"),
                ));
            }
            Ok(_) => {}
            Err(e) => return Err((format!("{k}.batchSendDeadline"), e)),
        }
    }
    Ok(())
}

/// Whether a URL has `user:password@` before its host.
fn has_userinfo(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?', '#'])
        .next()
        .is_some_and(|authority| authority.contains('@'))
}

/// Header names that carry credentials by convention (`X-Api-Key`, `X-Auth-Token`, a
/// cookie). Headers are plain strings of the `Prometheus` object, readable by anyone who reads
/// it; a tenant (`X-Scope-OrgID`, `THANOS-TENANT`) is not a credential and stays allowed.
fn looks_like_credential(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "token",
        "secret",
        "password",
        "passwd",
        "apikey",
        "api-key",
        "api_key",
        "auth",
        "cookie",
        "session",
        "signature",
    ]
    .iter()
    .any(|word| name.contains(word))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn with(sets: &[&str]) -> Result<Config, crate::config::ConfigError> {
        let mut c = Config::default()
            .with_set("prometheus.externalLabels={cluster: prod}")
            .unwrap();
        for s in sets {
            c = c.with_set(s)?;
        }
        Ok(c)
    }

    #[test]
    fn presets_fill_the_path_of_a_base_url() {
        let cases = [
            (
                "thanos",
                "http://receive.thanos:10908",
                "http://receive.thanos:10908/api/v1/receive",
            ),
            (
                "mimir",
                "https://mimir.example.com/",
                "https://mimir.example.com/api/v1/push",
            ),
            (
                "mimir",
                "https://mimir.example.com/api/v1/push",
                "https://mimir.example.com/api/v1/push",
            ),
            (
                "victoriametrics",
                "http://vminsert:8480/insert/0/prometheus",
                "http://vminsert:8480/insert/0/prometheus/api/v1/write",
            ),
        ];
        for (preset, url, want) in cases {
            let c = with(&[&format!(
                "prometheus.remoteWrite=[{{url: '{url}', preset: {preset}}}]"
            )])
            .unwrap();
            assert_eq!(
                c.prometheus.remote_write[0].endpoint(),
                want,
                "{preset} {url}"
            );
        }
        // Without a preset the url is the endpoint, as given.
        let c = with(&["prometheus.remoteWrite=[{url: 'https://x.example/write'}]"]).unwrap();
        assert_eq!(
            c.prometheus.remote_write[0].endpoint(),
            "https://x.example/write"
        );
    }

    /// Each mistake names its key and says what to do.
    #[test]
    fn mistakes_name_the_key() {
        let cases: &[(&[&str], &str, &str)] = &[
            (
                &["prometheus.remoteWrite=[{url: 'ftp://store/x'}]"],
                "prometheus.remoteWrite[0].url",
                "not http or https",
            ),
            (
                &["prometheus.remoteWrite=[{preset: mimir}]"],
                "prometheus.remoteWrite[0].url",
                "no url",
            ),
            (
                &["prometheus.remoteWrite=[{url: 'http://s', preset: cortex}]"],
                "prometheus.remoteWrite",
                "unknown variant",
            ),
            (
                &[
                    "prometheus.remoteWrite=[{url: 'http://s', basicAuth: {secret: rw, usernameKey: user}}]",
                ],
                "prometheus.remoteWrite[0].basicAuth.passwordKey",
                "not its key",
            ),
            (
                &["prometheus.remoteWrite=[{url: 'http://s', bearerToken: {key: token}}]"],
                "prometheus.remoteWrite[0].bearerToken.secret",
                "no Secret named",
            ),
            (
                &[
                    "prometheus.remoteWrite=[{url: 'http://s', basicAuth: {secret: a, usernameKey: u, passwordKey: p}, bearerToken: {secret: a, key: t}}]",
                ],
                "prometheus.remoteWrite[0]",
                "keep one",
            ),
            (
                &[
                    "prometheus.remoteWrite=[{url: 'https://s', tls: {secret: c, certKey: tls.crt}}]",
                ],
                "prometheus.remoteWrite[0].tls",
                "both certKey and keyKey",
            ),
            (
                &["prometheus.remoteWrite=[{url: 'http://s', headers: {Authorization: x}}]"],
                "prometheus.remoteWrite[0].headers",
                "set by Prometheus",
            ),
            (
                &["prometheus.remoteWrite=[{url: 'http://s', headers: {X-Api-Key: planted}}]"],
                "prometheus.remoteWrite[0].headers",
                "looks like a credential",
            ),
            (
                &["prometheus.remoteWrite=[{url: 'https://me:planted@store/api/v1/push'}]"],
                "prometheus.remoteWrite[0].url",
                "user name or password",
            ),
            (
                &[
                    "prometheus.remoteWrite=[{url: 'http://s', queue: {minShards: 5, maxShards: 2}}]",
                ],
                "prometheus.remoteWrite[0].queue.minShards",
                "above maxShards",
            ),
            (
                &["prometheus.remoteWrite=[{url: 'http://s', queue: {batchSendDeadline: soon}}]"],
                "prometheus.remoteWrite[0].queue.batchSendDeadline",
                "",
            ),
            (
                &[
                    "prometheus.remoteWrite=[{url: 'http://a', preset: mimir}, {url: 'http://b', preset: victoriametrics}]",
                ],
                "prometheus.remoteWrite[1].preset",
                "one replica label",
            ),
            (
                &["prometheus.thanos={objectStorageConfig: {secret: bucket}}"],
                "prometheus.thanos.objectStorageConfig.key",
                "not its key",
            ),
            (
                &[
                    "prometheus.replicas=2",
                    "prometheus.thanos={objectStorageConfig: {secret: b, key: objstore.yml}}",
                    "prometheus.remoteWrite=[{url: 'http://vm', preset: victoriametrics}]",
                ],
                "prometheus.thanos",
                "compactor",
            ),
        ];
        for (sets, key, problem) in cases {
            let e = with(sets).unwrap_err();
            assert_eq!(e.key, *key, "{sets:?}: {e}");
            assert!(e.problem.contains(problem), "{sets:?}: {e}");
            // A credential is refused without being repeated.
            assert!(!e.problem.contains("planted"), "{sets:?}: {e}");
        }
        // A tenant is not a credential.
        assert!(
            with(&["prometheus.remoteWrite=[{url: 'http://s', headers: {X-Scope-OrgID: team}}]"])
                .is_ok()
        );
    }

    #[test]
    fn remote_write_needs_the_cluster_label() {
        let e = Config::default()
            .with_set("prometheus.remoteWrite=[{url: 'http://s', preset: thanos}]")
            .unwrap_err();
        assert_eq!(e.key, "prometheus.externalLabels.cluster");
        assert!(
            e.problem
                .contains("--set prometheus.externalLabels.cluster="),
            "{e}"
        );
    }

    #[test]
    fn agreeing_presets_and_a_full_endpoint_are_accepted_and_round_trip() {
        let c = with(&[
            "prometheus.replicas=2",
            "prometheus.remoteWrite=[{url: 'https://mimir.example.com', preset: mimir, \
             basicAuth: {secret: rw, usernameKey: user, passwordKey: pass}, \
             tls: {secret: ca, caKey: ca.crt}, headers: {X-Scope-OrgID: team}, \
             queue: {capacity: 10000, minShards: 1, maxShards: 50, maxSamplesPerSend: 2000, batchSendDeadline: 5s}}, \
             {url: 'https://other.example.com/api/v1/push', preset: mimir}]",
            "prometheus.thanos={objectStorageConfig: {secret: bucket, key: objstore.yml}}",
        ])
        .unwrap();
        assert_eq!(c.prometheus.preset_replica_label(), Some("__replica__"));
        let back = Config::from_yaml(&c.to_yaml(), "stored").unwrap();
        assert_eq!(back, c);
        // Unset, neither key appears in the stored configuration.
        let plain = Config::default().to_yaml();
        assert!(
            !plain.contains("remoteWrite") && !plain.contains("thanos"),
            "{plain}"
        );
    }

    #[test]
    fn a_file_with_remote_write_names_the_line_of_a_mistake() {
        let text = "prometheus:\n  externalLabels: {cluster: prod}\n  remoteWrite:\n  - url: https://mimir.example.com\n    preset: mimir\n    basicAuth:\n      secret: rw\n      usernameKey: user\n";
        let e = Config::from_yaml(text, "a.yaml").unwrap_err();
        assert_eq!(
            e.key, "prometheus.remoteWrite[0].basicAuth.passwordKey",
            "{e}"
        );
        assert!(e.origin.starts_with("a.yaml"), "{e}");
    }
}
