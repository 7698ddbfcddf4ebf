//! Grafana's storage and sign-in: `grafana.persistence` (a claim for its database and plugins),
//! `grafana.oidc` (generic OAuth, the client secret from a Secret), `grafana.anonymous`,
//! `grafana.ini` (settings passed through to grafana.ini) and `grafana.additionalDataSources`,
//! each checked as Grafana (or the API server) would, before anything is written.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Grafana, Invalid, Quantity, check_url_for, credentials::check_key, invalid};

/// A PersistentVolumeClaim for `/var/lib/grafana` (SQLite database, plugins) instead of an
/// emptyDir.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Persistence {
    pub enabled: bool,
    pub size: Quantity,
    /// StorageClass of the claim; the cluster's default when unset.
    pub storage_class: Option<String>,
}

impl Default for Persistence {
    fn default() -> Self {
        Persistence {
            enabled: false,
            size: Quantity("10Gi".into()),
            storage_class: None,
        }
    }
}

/// A key of a Secret in the stack's namespace, as kube-prometheus-stack's values name one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct SecretRef {
    pub name: String,
    pub key: String,
}

/// Sign-in with an OAuth2 / OpenID Connect provider (Grafana's `[auth.generic_oauth]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Oidc {
    /// The button's text: "Sign in with NAME".
    pub name: String,
    pub client_id: String,
    pub client_secret: SecretRef,
    /// Opened by the browser.
    pub auth_url: String,
    /// Called by Grafana.
    pub token_url: String,
    /// Called by Grafana: the user's details (OIDC's userinfo endpoint).
    pub api_url: String,
    pub scopes: Vec<String>,
    /// A JMESPath over the token or user info that gives Viewer, Editor or Admin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_attribute_path: Option<String>,
    /// Whether a user the provider knows but Grafana does not is created at first sign-in.
    pub allow_sign_up: bool,
}

/// Grafana's organisation roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Viewer,
    Editor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "Viewer",
            Role::Editor => "Editor",
            Role::Admin => "Admin",
        }
    }
}

/// Visitors who are not signed in see Grafana with `role`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Anonymous {
    pub enabled: bool,
    pub role: Role,
}

impl Default for Anonymous {
    fn default() -> Self {
        Anonymous {
            enabled: false,
            role: Role::Viewer,
        }
    }
}

/// A datasource provisioned beside automon's Prometheus and Alertmanager.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct DataSource {
    pub name: String,
    /// The plugin id: `loki`, `tempo`, `elasticsearch`, `grafana-postgresql-datasource`...
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    pub url: String,
    /// `proxy` (Grafana's server calls it; the default) or `direct` (the browser does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
    pub is_default: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub basic_auth: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth_user: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub json_data: BTreeMap<String, Value>,
    /// Grafana's encrypted fields (`basicAuthPassword`, `httpHeaderValue1`...), each from a
    /// Secret key, never a value.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub secure_json_data: BTreeMap<String, SecretRef>,
}

impl DataSource {
    /// Grafana's server connects to it (not the browser).
    pub fn proxied(&self) -> bool {
        self.access.as_deref() != Some("direct")
    }
}

/// The uids and names of automon's own datasources, which dashboards name.
const OWN_DATASOURCES: &[(&str, &str)] = &[
    ("prometheus", "Prometheus"),
    ("alertmanager", "Alertmanager"),
];

/// Settings of grafana.ini automon sets itself (as environment variables, which win over the
/// file: a value given here would be silently ignored), and the key to use instead.
const SET_BY_AUTOMON: &[(&str, &str, &str)] = &[
    (
        "paths",
        "*",
        "automon mounts Grafana's data, provisioning and logs at fixed paths; grafana.persistence keeps the data",
    ),
    (
        "security",
        "admin_user",
        "the admin comes from the Secret grafana-admin that enable creates",
    ),
    (
        "security",
        "admin_password",
        "the admin comes from the Secret grafana-admin that enable creates",
    ),
    ("auth.anonymous", "enabled", "use grafana.anonymous.enabled"),
    ("auth.anonymous", "org_role", "use grafana.anonymous.role"),
    ("auth.generic_oauth", "enabled", "use grafana.oidc"),
    ("auth.generic_oauth", "name", "use grafana.oidc.name"),
    (
        "auth.generic_oauth",
        "client_id",
        "use grafana.oidc.clientId",
    ),
    (
        "auth.generic_oauth",
        "client_secret",
        "use grafana.oidc.clientSecret, {name, key} of a Secret",
    ),
    ("auth.generic_oauth", "auth_url", "use grafana.oidc.authUrl"),
    (
        "auth.generic_oauth",
        "token_url",
        "use grafana.oidc.tokenUrl",
    ),
    ("auth.generic_oauth", "api_url", "use grafana.oidc.apiUrl"),
    ("auth.generic_oauth", "scopes", "use grafana.oidc.scopes"),
    (
        "auth.generic_oauth",
        "role_attribute_path",
        "use grafana.oidc.roleAttributePath",
    ),
    (
        "auth.generic_oauth",
        "allow_sign_up",
        "use grafana.oidc.allowSignUp",
    ),
    (
        "analytics",
        "reporting_enabled",
        "automon turns it off: Grafana reaches nothing outside the cluster",
    ),
    (
        "analytics",
        "check_for_updates",
        "automon turns it off: Grafana reaches nothing outside the cluster",
    ),
    (
        "analytics",
        "check_for_plugin_updates",
        "automon turns it off: Grafana reaches nothing outside the cluster",
    ),
    (
        "plugins",
        "preinstall_disabled",
        "automon turns plugin downloads off: air-gapped clusters and the egress policy forbid them",
    ),
    (
        "log",
        "mode",
        "automon logs to the console: the root filesystem is read-only",
    ),
    (
        "server",
        "http_port",
        "the Service, the probes and the NetworkPolicy use port 3000",
    ),
    (
        "server",
        "protocol",
        "the Service, the probes and the NetworkPolicy use plain HTTP on port 3000",
    ),
];

/// Whether a setting's name says it holds a secret: such a value would sit in a ConfigMap.
fn is_secret_name(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password")
        || k.contains("secret")
        || k.contains("token")
        || matches!(k.as_str(), "api_key" | "account_key" | "connstr")
}

/// Whether `value`, given at `path` (a `--set`), holds a secret as a plain value somewhere: a
/// scalar under a key named like one, or a URL with a password. Its error must not repeat it.
pub(super) fn holds_secret_value(path: &str, value: &Value) -> bool {
    fn walk(key: &str, v: &Value) -> bool {
        match v {
            Value::Object(map) => map.iter().any(|(k, v)| walk(k, v)),
            Value::Array(items) => items.iter().any(|v| walk(key, v)),
            Value::String(s) => is_secret_name(key) || has_password_in_url(s),
            Value::Null => false,
            _ => is_secret_name(key),
        }
    }
    walk(path.rsplit('.').next().unwrap_or(path), value)
}

/// Whether a type error at `key` may quote a secret (the OAuth client secret, a secure field,
/// a setting of grafana.ini named like a secret).
pub(super) fn may_hold_secret(key: &str) -> bool {
    key.starts_with("grafana.oidc")
        || key.contains("secureJsonData")
        || (key.starts_with("grafana.ini") && is_secret_name(key))
        || key == "grafana"
        || key == "grafana.ini"
        || key == "grafana.additionalDataSources"
}

/// A URL whose userinfo carries a password (`scheme://user:password@host`).
fn has_password_in_url(v: &str) -> bool {
    v.split_once("://")
        .and_then(|(_, rest)| rest.split(['/', '?', '#']).next())
        .and_then(|authority| authority.rsplit_once('@'))
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

impl Grafana {
    /// grafana.ini as Grafana reads it: section → key → value, sections nested in the
    /// configuration (`auth: {generic_oauth: {…}}`, which `--set` writes) joined by dots as
    /// Grafana names them (`auth.generic_oauth`). Checked at load: call after [`check`].
    pub fn ini_sections(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for (name, section) in &self.ini {
            flatten(name, section, &mut out);
        }
        out
    }
}

fn flatten(name: &str, section: &Value, out: &mut BTreeMap<String, BTreeMap<String, String>>) {
    let Some(map) = section.as_object() else {
        return;
    };
    for (key, value) in map {
        match value {
            Value::Object(_) => flatten(&format!("{name}.{key}"), value, out),
            other => {
                let text = match other {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                out.entry(name.to_string())
                    .or_default()
                    .insert(key.clone(), text);
            }
        }
    }
}

/// What Grafana (or the API server) would refuse, or silently get wrong, in its section.
pub(super) fn check(g: &Grafana) -> Result<(), Invalid> {
    check_persistence(&g.persistence)?;
    if let Some(oidc) = &g.oidc {
        check_oidc(oidc)?;
    }
    check_ini(&g.ini)?;
    check_ini_beside_exposure(g)?;
    check_data_sources(&g.additional_data_sources)
}

/// While Grafana is exposed, its root URL and sub path follow the Ingress or HTTPRoute
/// (`GF_SERVER_*` variables, which win over the file): the same settings in `ini` would be
/// silently ignored.
fn check_ini_beside_exposure(g: &Grafana) -> Result<(), Invalid> {
    if !g.exposure().is_exposed() {
        return Ok(());
    }
    let sections = g.ini_sections();
    let Some(server) = sections.get("server") else {
        return Ok(());
    };
    match ["root_url", "serve_from_sub_path"]
        .into_iter()
        .find(|k| server.contains_key(*k))
    {
        Some(key) => Err(invalid(
            &format!("grafana.ini.server.{key}"),
            "set from grafana.ingress / grafana.httpRoute (host and path) while Grafana is \
             exposed; leave it out, or set the host and path there"
                .into(),
        )),
        None => Ok(()),
    }
}

fn check_persistence(p: &Persistence) -> Result<(), Invalid> {
    super::checks::volume_size(&p.size.0).map_err(|e| invalid("grafana.persistence.size", e))?;
    if let Some(class) = p.storage_class.as_deref() {
        super::check_storage_class("grafana.persistence.storageClass", class)?;
    }
    Ok(())
}

/// A Secret name and key, as the API server names them.
fn check_secret_ref(at: &str, s: &SecretRef) -> Result<(), Invalid> {
    if s.name.is_empty() {
        return Err(invalid(
            &format!("{at}.name"),
            "no Secret named; give {name, key} of a Secret in the stack's namespace".into(),
        ));
    }
    super::checks::object_name("Secret", &s.name, "grafana-sso")
        .map_err(|e| invalid(&format!("{at}.name"), e))?;
    check_key(&format!("{at}.key"), &s.name, &s.key)
}

/// A URL Grafana (or the browser) reaches: https, or http only to a host in the cluster or on
/// loopback, where no one else reads it on the way.
pub fn check_private_url(s: &str, example: &str) -> Result<(), String> {
    check_url_for(s, "Grafana", example, true)?;
    let uri: http::Uri = s.parse().map_err(|_| format!("{s:?} does not parse"))?;
    if uri.scheme_str() == Some("https") {
        return Ok(());
    }
    let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
    let local = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
        || !host.contains('.')
        || host.ends_with(".svc")
        || host.ends_with(".cluster.local");
    if local {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is plain http to a host outside the cluster; use https (http only to a Service in the cluster, e.g. http://NAME.NAMESPACE.svc:PORT, or loopback)"
        ))
    }
}

fn check_oidc(o: &Oidc) -> Result<(), Invalid> {
    let at = |f: &str| format!("grafana.oidc.{f}");
    if o.name.trim().is_empty() {
        return Err(invalid(
            &at("name"),
            "empty; give the provider's name, shown on the sign-in button (e.g. Keycloak)".into(),
        ));
    }
    if o.client_id.trim().is_empty() || o.client_id.trim() != o.client_id {
        return Err(invalid(
            &at("clientId"),
            "empty or with spaces around it; give the client id the provider registered for Grafana".into(),
        ));
    }
    check_secret_ref(&at("clientSecret"), &o.client_secret)?;
    for (field, url, example) in [
        (
            "authUrl",
            &o.auth_url,
            "https://sso.example.com/realms/main/protocol/openid-connect/auth",
        ),
        (
            "tokenUrl",
            &o.token_url,
            "https://sso.example.com/realms/main/protocol/openid-connect/token",
        ),
        (
            "apiUrl",
            &o.api_url,
            "https://sso.example.com/realms/main/protocol/openid-connect/userinfo",
        ),
    ] {
        if url.is_empty() {
            return Err(invalid(
                &at(field),
                format!("missing; give the provider's endpoint, e.g. {example}"),
            ));
        }
        check_private_url(url, example).map_err(|p| invalid(&at(field), p))?;
    }
    if o.scopes.is_empty() {
        return Err(invalid(
            &at("scopes"),
            "none; give the scopes to ask for, e.g. [openid, profile, email]".into(),
        ));
    }
    if let Some(s) = o
        .scopes
        .iter()
        .find(|s| s.is_empty() || s.contains([' ', ',']))
    {
        return Err(invalid(
            &at("scopes"),
            format!("{s:?} is not one scope; give each as an item of the list"),
        ));
    }
    if o.role_attribute_path
        .as_deref()
        .is_some_and(|p| p.trim().is_empty())
    {
        return Err(invalid(
            &at("roleAttributePath"),
            "empty; give a JMESPath such as contains(groups[*], 'admins') && 'Admin' || 'Viewer', or leave it out".into(),
        ));
    }
    Ok(())
}

/// A section or key name grafana.ini can hold: letters, digits, `_`, `-` and `.`.
fn is_ini_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

fn check_ini(ini: &BTreeMap<String, Value>) -> Result<(), Invalid> {
    for (name, section) in ini {
        check_ini_section(&format!("grafana.ini.{name}"), name, section)?;
    }
    Ok(())
}

fn check_ini_section(at: &str, section: &str, v: &Value) -> Result<(), Invalid> {
    if !is_ini_name(section) || section.starts_with('.') || section.ends_with('.') {
        return Err(invalid(
            at,
            format!(
                "{section:?} is not a section name of grafana.ini (letters, digits, '_', '-' and '.', e.g. server or auth.generic_oauth)"
            ),
        ));
    }
    let Some(map) = v.as_object() else {
        return Err(invalid(
            at,
            format!(
                "a section is a map of settings, e.g. grafana.ini: {{{section}: {{key: value}}}}"
            ),
        ));
    };
    for (key, value) in map {
        let here = format!("{at}.{key}");
        if value.is_object() {
            check_ini_section(&here, &format!("{section}.{key}"), value)?;
            continue;
        }
        if !is_ini_name(key) {
            return Err(invalid(
                &here,
                format!(
                    "{key:?} is not a setting name of grafana.ini (letters, digits, '_', '-' and '.')"
                ),
            ));
        }
        if let Some((_, _, instead)) = SET_BY_AUTOMON
            .iter()
            .find(|(s, k, _)| *s == section && (*k == "*" || k == key))
        {
            return Err(invalid(
                &here,
                format!("automon sets [{section}] {key} itself; {instead}"),
            ));
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => {
                return Err(invalid(
                    &here,
                    "no value; give one, or leave the setting out for Grafana's default".into(),
                ));
            }
            _ => {
                return Err(invalid(
                    &here,
                    "a list is not a grafana.ini value; give one value (Grafana reads lists as text separated by commas or spaces, e.g. \"a b\")".into(),
                ));
            }
        };
        if is_secret_name(key) || has_password_in_url(&text) {
            let instead = match (section, key.as_str()) {
                ("auth.generic_oauth", _) => "the OAuth client secret is grafana.oidc.clientSecret, {name, key} of a Secret".to_string(),
                _ => "automon takes secrets only from Secret keys (grafana.oidc.clientSecret, grafana.additionalDataSources[].secureJsonData)".to_string(),
            };
            return Err(invalid(
                &here,
                format!(
                    "a secret would be stored in a ConfigMap, readable by anyone who reads the stack's ConfigMaps; {instead}"
                ),
            ));
        }
        if text.contains(['\n', '\r']) || text.contains("\"\"\"") {
            return Err(invalid(
                &here,
                "a line break or \"\"\" cannot be written in grafana.ini; give one line".into(),
            ));
        }
    }
    Ok(())
}

fn check_data_sources(sources: &[DataSource]) -> Result<(), Invalid> {
    let mut names = BTreeMap::new();
    let mut uids = BTreeMap::new();
    let mut default = None;
    for (i, d) in sources.iter().enumerate() {
        let at = |f: &str| format!("grafana.additionalDataSources[{i}].{f}");
        if d.name.trim().is_empty() {
            return Err(invalid(
                &at("name"),
                "empty; give the datasource a name, e.g. Loki".into(),
            ));
        }
        if let Some((_, own)) = OWN_DATASOURCES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(&d.name))
        {
            return Err(invalid(
                &at("name"),
                format!("{own:?} is automon's own datasource; choose another name"),
            ));
        }
        if let Some(j) = names.insert(d.name.to_lowercase(), i) {
            return Err(invalid(
                &at("name"),
                format!(
                    "{:?} is also the name of additionalDataSources[{j}]; names must differ",
                    d.name
                ),
            ));
        }
        let plugin_id = !d.kind.is_empty()
            && d.kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !plugin_id {
            return Err(invalid(
                &at("type"),
                format!(
                    "{:?} is not a datasource plugin id (lower-case letters, digits and '-', e.g. loki, tempo, elasticsearch)",
                    d.kind
                ),
            ));
        }
        if let Some(uid) = &d.uid {
            let ok = !uid.is_empty()
                && uid.len() <= 40
                && uid
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
            if !ok {
                return Err(invalid(
                    &at("uid"),
                    format!(
                        "{uid:?} is not a datasource uid (at most 40 letters, digits, '-' and '_')"
                    ),
                ));
            }
            if OWN_DATASOURCES.iter().any(|(u, _)| u == uid) {
                return Err(invalid(
                    &at("uid"),
                    format!("{uid:?} is the uid of automon's own datasource; choose another"),
                ));
            }
            if let Some(j) = uids.insert(uid.clone(), i) {
                return Err(invalid(
                    &at("uid"),
                    format!("{uid:?} is also the uid of additionalDataSources[{j}]"),
                ));
            }
        }
        if d.url.is_empty() {
            return Err(invalid(
                &at("url"),
                "missing; give where Grafana reaches it, e.g. http://loki.logging.svc:3100".into(),
            ));
        }
        check_private_url(&d.url, "http://loki.logging.svc:3100")
            .map_err(|p| invalid(&at("url"), p))?;
        if has_password_in_url(&d.url) {
            return Err(invalid(&at("url"), "carries a password; give the user in basicAuthUser and the password in secureJsonData.basicAuthPassword, {name, key} of a Secret".into()));
        }
        if let Some(a) = d
            .access
            .as_deref()
            .filter(|a| !matches!(*a, "proxy" | "direct"))
        {
            return Err(invalid(
                &at("access"),
                format!(
                    "{a:?} is not proxy (Grafana's server reaches it; the default) or direct (the browser does)"
                ),
            ));
        }
        if d.is_default
            && let Some(j) = default.replace(i)
        {
            return Err(invalid(
                &at("isDefault"),
                format!(
                    "additionalDataSources[{j}] is the default already; only one datasource can be (automon's Prometheus is unless one says otherwise)"
                ),
            ));
        }
        if d.basic_auth && d.basic_auth_user.as_deref().is_none_or(str::is_empty) {
            return Err(invalid(&at("basicAuthUser"), "basicAuth is on but no user; give basicAuthUser, and the password in secureJsonData.basicAuthPassword".into()));
        }
        for (key, value) in &d.json_data {
            let holds_secret =
                is_secret_name(key) || value.as_str().is_some_and(has_password_in_url);
            if holds_secret {
                return Err(invalid(
                    &at(&format!("jsonData.{key}")),
                    format!(
                        "jsonData is stored in plain text; give it in secureJsonData.{key} as {{name, key}} of a Secret"
                    ),
                ));
            }
        }
        for (key, secret) in &d.secure_json_data {
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(invalid(
                    &at(&format!("secureJsonData.{key}")),
                    format!(
                        "{key:?} is not a field of secureJsonData (letters and digits, e.g. basicAuthPassword, httpHeaderValue1)"
                    ),
                ));
            }
            check_secret_ref(&at(&format!("secureJsonData.{key}")), secret)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    /// Each `--set` is refused with its key, and the problem says `expect`.
    fn refused(sets: &[&str], key: &str, expect: &str) {
        let mut c = Config::default();
        for (i, set) in sets.iter().enumerate() {
            match c.with_set(set) {
                Ok(next) if i + 1 < sets.len() => c = next,
                Ok(_) => panic!("{sets:?} accepted"),
                Err(e) => {
                    assert!(!e.to_string().contains("hunter2"), "{e}");
                    assert_eq!(i + 1, sets.len(), "{sets:?}: refused early: {e}");
                    assert_eq!(e.key, key, "{sets:?}: {e}");
                    assert!(e.problem.contains(expect), "{sets:?}: {e}");
                    return;
                }
            }
        }
    }

    #[test]
    fn root_url_in_ini_is_refused_while_exposure_sets_it() {
        refused(
            &[
                "grafana.ingress.host=grafana.example.com",
                "grafana.ingress.enabled=true",
                "grafana.ini.server.root_url=https://other.example.com/",
            ],
            "grafana.ini.server.root_url",
            "grafana.ingress",
        );
        accepted(&["grafana.ini.server.root_url=https://grafana.example.com/"]);
    }

    fn accepted(sets: &[&str]) -> Config {
        sets.iter().fold(Config::default(), |c, s| {
            c.with_set(s).unwrap_or_else(|e| panic!("{s}: {e}"))
        })
    }

    const OIDC: &str = "grafana.oidc={name: Keycloak, clientId: grafana, clientSecret: {name: sso, key: secret}, authUrl: 'https://sso.example.com/auth', tokenUrl: 'https://sso.example.com/token', apiUrl: 'https://sso.example.com/userinfo', scopes: [openid, email]}";

    #[test]
    fn persistence_keys() {
        for (set, key, expect) in [
            (
                "grafana.persistence.size=lots",
                "grafana.persistence.size",
                "not a Kubernetes quantity",
            ),
            (
                "grafana.persistence.size=-1Gi",
                "grafana.persistence.size",
                "more than 0",
            ),
            (
                "grafana.persistence.storageClass=Fast_SSD",
                "grafana.persistence.storageClass",
                "not a StorageClass name",
            ),
            (
                "grafana.persistence.enabled=maybe",
                "grafana.persistence.enabled",
                "true or false",
            ),
            (
                "grafana.persistence.sise=1Gi",
                "grafana.persistence.sise",
                "unknown field",
            ),
        ] {
            refused(&[set], key, expect);
        }
        let c = accepted(&[
            "grafana.persistence.enabled=true",
            "grafana.persistence.size=20Gi",
            "grafana.persistence.storageClass=fast-ssd.example.com",
        ]);
        assert!(c.grafana.persistence.enabled);
        assert_eq!(c.grafana.persistence.size.0, "20Gi");
        assert_eq!(Config::default().grafana.persistence.size.0, "10Gi");
    }

    #[test]
    fn oidc_keys() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "grafana.oidc.clientSecret={name: '', key: s}",
                "grafana.oidc.clientSecret.name",
                "no Secret named",
            ),
            (
                "grafana.oidc.clientSecret={name: Bad_Name, key: s}",
                "grafana.oidc.clientSecret.name",
                "not a Secret name",
            ),
            (
                "grafana.oidc.clientSecret={name: sso, key: ''}",
                "grafana.oidc.clientSecret.key",
                "not its key",
            ),
            (
                "grafana.oidc.clientSecret=hunter2",
                "grafana.oidc.clientSecret",
                "expected a section",
            ),
            (
                "grafana.oidc.authUrl=ftp://sso.example.com/a",
                "grafana.oidc.authUrl",
                "scheme \"ftp\"",
            ),
            (
                "grafana.oidc.tokenUrl=http://sso.example.com/token",
                "grafana.oidc.tokenUrl",
                "plain http to a host outside the cluster",
            ),
            ("grafana.oidc.apiUrl=''", "grafana.oidc.apiUrl", "missing"),
            ("grafana.oidc.apiUrl=", "grafana.oidc.apiUrl", "got nothing"),
            ("grafana.oidc.scopes=[]", "grafana.oidc.scopes", "none"),
            (
                "grafana.oidc.scopes=['openid email']",
                "grafana.oidc.scopes",
                "not one scope",
            ),
            ("grafana.oidc.clientId=''", "grafana.oidc.clientId", "empty"),
            ("grafana.oidc.name=''", "grafana.oidc.name", "empty"),
            (
                "grafana.oidc.roleAttributePath=' '",
                "grafana.oidc.roleAttributePath",
                "empty",
            ),
            (
                "grafana.oidc.clientSecretValue=x",
                "grafana.oidc.clientSecretValue",
                "unknown field",
            ),
        ];
        for (set, key, expect) in cases {
            refused(&[OIDC, set], key, expect);
        }
        for set in [
            "grafana.oidc.tokenUrl=http://keycloak.auth.svc:8080/token",
            "grafana.oidc.tokenUrl=http://keycloak.auth.svc.cluster.local/token",
            "grafana.oidc.apiUrl=http://127.0.0.1:8080/userinfo",
            "grafana.oidc.apiUrl=http://dex:5556/userinfo",
            "grafana.oidc.roleAttributePath=contains(groups[*], 'admins') && 'Admin' || 'Viewer'",
            "grafana.oidc.allowSignUp=true",
        ] {
            accepted(&[OIDC, set]);
        }
    }

    #[test]
    fn anonymous_keys() {
        refused(
            &["grafana.anonymous.role=Owner"],
            "grafana.anonymous.role",
            "unknown variant",
        );
        refused(
            &["grafana.anonymous.role=viewer"],
            "grafana.anonymous.role",
            "unknown variant",
        );
        refused(
            &["grafana.anonymous.enabled=yes please"],
            "grafana.anonymous.enabled",
            "true or false",
        );
        for role in ["Viewer", "Editor", "Admin"] {
            let c = accepted(&[
                "grafana.anonymous.enabled=true",
                &format!("grafana.anonymous.role={role}"),
            ]);
            assert_eq!(c.grafana.anonymous.role.as_str(), role);
        }
        assert_eq!(Config::default().grafana.anonymous.role.as_str(), "Viewer");
    }

    #[test]
    fn ini_keys() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "grafana.ini.security.admin_password=x",
                "grafana.ini.security.admin_password",
                "grafana-admin",
            ),
            (
                "grafana.ini.auth.anonymous.enabled=true",
                "grafana.ini.auth.anonymous.enabled",
                "grafana.anonymous.enabled",
            ),
            (
                "grafana.ini.auth.anonymous.org_role=Admin",
                "grafana.ini.auth.anonymous.org_role",
                "grafana.anonymous.role",
            ),
            (
                "grafana.ini.auth.generic_oauth.client_id=x",
                "grafana.ini.auth.generic_oauth.client_id",
                "grafana.oidc.clientId",
            ),
            (
                "grafana.ini.auth.generic_oauth.client_secret=x",
                "grafana.ini.auth.generic_oauth.client_secret",
                "grafana.oidc.clientSecret",
            ),
            (
                "grafana.ini.paths.data=/data",
                "grafana.ini.paths.data",
                "fixed paths",
            ),
            (
                "grafana.ini.server.http_port=8080",
                "grafana.ini.server.http_port",
                "port 3000",
            ),
            (
                "grafana.ini.log.mode=file",
                "grafana.ini.log.mode",
                "console",
            ),
            (
                "grafana.ini.smtp.password=hunter2",
                "grafana.ini.smtp.password",
                "ConfigMap",
            ),
            (
                "grafana.ini.security.secret_key=abc",
                "grafana.ini.security.secret_key",
                "ConfigMap",
            ),
            (
                "grafana.ini.database.url=mysql://grafana:hunter2@db:3306/grafana",
                "grafana.ini.database.url",
                "ConfigMap",
            ),
            (
                "grafana.ini.server.root_url=[a, b]",
                "grafana.ini.server.root_url",
                "a list is not",
            ),
            (
                "grafana.ini.server=https://x",
                "grafana.ini.server",
                "a section is a map",
            ),
            (
                "grafana.ini={'my section': {a: b}}",
                "grafana.ini.my section",
                "not a section name",
            ),
            (
                "grafana.ini={server: {'root url': x}}",
                "grafana.ini.server.root url",
                "not a setting name",
            ),
            (
                "grafana.ini={users: {default_theme: null}}",
                "grafana.ini.users.default_theme",
                "no value",
            ),
            (
                "grafana.ini={users: {default_theme: \"a\\nb\"}}",
                "grafana.ini.users.default_theme",
                "line break",
            ),
        ];
        for (set, key, expect) in cases {
            refused(&[set], key, expect);
        }
        let c = accepted(&[
            "grafana.ini.server.root_url=https://grafana.example.com/",
            "grafana.ini.auth.generic_oauth.use_pkce=true",
            "grafana.ini={users: {viewers_can_edit: false}, 'auth.generic_oauth': {email_attribute_path: email}, feature_toggles: {publicDashboards: true}, dashboards: {min_refresh_interval: 10s, versions_to_keep: 20}}",
        ]);
        let ini = c.grafana.ini_sections();
        assert_eq!(ini["users"]["viewers_can_edit"], "false");
        assert_eq!(ini["auth.generic_oauth"]["email_attribute_path"], "email");
        assert_eq!(ini["dashboards"]["versions_to_keep"], "20");
        assert_eq!(ini["feature_toggles"]["publicDashboards"], "true");
        // `--set` replaces the map it names: the last one is what holds.
        assert!(!ini.contains_key("server"));
        let c = accepted(&[
            "grafana.ini.server.root_url=https://grafana.example.com/",
            "grafana.ini.auth.generic_oauth.use_pkce=true",
        ]);
        let ini = c.grafana.ini_sections();
        assert_eq!(ini["server"]["root_url"], "https://grafana.example.com/");
        assert_eq!(ini["auth.generic_oauth"]["use_pkce"], "true");
    }

    #[test]
    fn data_source_keys() {
        let loki = "grafana.additionalDataSources=[{name: Loki, type: loki, url: 'http://loki.logging.svc:3100'}]";
        let two = |a: &str, b: &str| {
            format!(
                "grafana.additionalDataSources=[{{name: Loki, type: loki, url: 'http://loki.logging.svc:3100', {a}}}, {{name: Tempo, type: tempo, url: 'http://tempo.tracing.svc:3200', {b}}}]"
            )
        };
        // Loki's fields, with `extra`'s in place of those it names.
        let one = |extra: &str| {
            let mut fields = vec![];
            for (k, v) in [
                ("name", "Loki"),
                ("type", "loki"),
                ("url", "'http://loki.logging.svc:3100'"),
            ] {
                if !extra.starts_with(&format!("{k}:")) {
                    fields.push(format!("{k}: {v}"));
                }
            }
            fields.push(extra.to_string());
            format!("grafana.additionalDataSources=[{{{}}}]", fields.join(", "))
        };
        let at = |f: &str| format!("grafana.additionalDataSources[0].{f}");
        let cases: Vec<(String, String, &str)> = vec![
            (two("isDefault: true", "isDefault: true"), "grafana.additionalDataSources[1].isDefault".into(), "the default already"),
            (one("name: Prometheus"), at("name"), "automon's own"),
            ("grafana.additionalDataSources=[{name: '', type: loki, url: 'http://loki:3100'}]".into(), at("name"), "empty"),
            ("grafana.additionalDataSources=[{name: A, type: loki, url: 'http://loki:3100'}, {name: a, type: loki, url: 'http://loki:3100'}]".into(), "grafana.additionalDataSources[1].name".into(), "names must differ"),
            (one("type: Loki"), at("type"), "not a datasource plugin id"),
            (one("uid: prometheus"), at("uid"), "automon's own"),
            (one("uid: 'a b'"), at("uid"), "not a datasource uid"),
            (one("url: 'http://loki.example.com:3100'"), at("url"), "plain http"),
            (one("url: 'https://me:pw@loki.example.com'"), at("url"), "carries a password"),
            (one("url: 'loki:3100'"), at("url"), "not a URL"),
            (one("access: server"), at("access"), "not proxy"),
            (one("basicAuth: true"), at("basicAuthUser"), "no user"),
            (one("jsonData: {password: hunter2}"), at("jsonData.password"), "secureJsonData.password"),
            // A type error names the `--set`'s key, and hides its value (a secret).
            (one("secureJsonData: {basicAuthPassword: hunter2}"), "grafana.additionalDataSources".into(), "expected a section"),
            (one("secureJsonData: {'bad key': {name: s, key: k}}"), at("secureJsonData.bad key"), "not a field"),
            (one("secureJsonData: {basicAuthPassword: {name: s}}"), at("secureJsonData.basicAuthPassword.key"), "not its key"),
            (one("editable: true"), "grafana.additionalDataSources".into(), "unknown field"),
        ];
        for (set, key, expect) in &cases {
            refused(&[set.as_str()], key, expect);
        }
        accepted(&[loki]);
        accepted(&[&two("isDefault: true", "isDefault: false")]);
        accepted(&[&one(
            "uid: loki, access: direct, basicAuth: true, basicAuthUser: grafana, jsonData: {maxLines: 1000, derivedFields: [{name: trace, matcherRegex: 'traceID=(\\w+)'}]}, secureJsonData: {basicAuthPassword: {name: loki, key: password}}",
        )]);
    }
}
