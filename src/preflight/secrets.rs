//! The Secret keys the stack reads credentials from (a receiver's `urlSecret`, remote write's
//! `basicAuth`, `bearerToken` and `tls`, Thanos' object storage, Grafana's OAuth client secret
//! and its datasources' secure fields): each must exist before
//! `enable` writes, or Alertmanager loads no configuration and Prometheus sends nothing. Read
//! from the objects to apply, so a rollback's recorded objects are checked the same way.
//! The credentials Secret `enable` itself writes is not asked for: it is written after
//! preflight, keeping every key already there.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde::Serialize;
use serde_json::Value;

use crate::{
    cluster::{Cluster, error::ClusterError},
    config::credentials::SECRET_NAME,
    model::{Object, finding::Finding, finding::Level, kind},
    render::{
        alertmanager::{CONFIG_KEY, CONFIG_SECRET, SECRETS_DIR},
        grafana,
    },
};

/// Secret name → the keys the stack reads from it.
pub type Wanted = BTreeMap<String, BTreeSet<String>>;

/// The Secret keys `objects` read that no object among them provides (pure).
pub fn wanted(objects: &[Object]) -> Wanted {
    let mut out = Wanted::new();
    for o in objects {
        match kind(o) {
            "Prometheus" | "Alertmanager" => {
                if let Some(spec) = o.data.get("spec") {
                    selectors(spec, None, &mut out);
                }
            }
            // Grafana's client secret and datasource fields; its admin Secret `enable` makes.
            "Deployment" if o.metadata.name.as_deref() == Some(grafana::NAME) => {
                for (secret, key) in env_secret_keys(o) {
                    if secret != grafana::ADMIN_SECRET {
                        out.entry(secret).or_default().insert(key);
                    }
                }
            }
            "Secret" if o.metadata.name.as_deref() == Some(CONFIG_SECRET) => {
                for (secret, key) in alertmanager_files(o) {
                    out.entry(secret).or_default().insert(key);
                }
            }
            _ => {}
        }
    }
    let provided: BTreeSet<&str> = objects
        .iter()
        .filter(|o| kind(o) == "Secret")
        .filter_map(|o| o.metadata.name.as_deref())
        .collect();
    out.retain(|name, _| name != SECRET_NAME && !provided.contains(name.as_str()));
    out
}

/// The (Secret, key) of every container variable a workload's pod takes from a Secret.
fn env_secret_keys(workload: &Object) -> Vec<(String, String)> {
    let containers = workload
        .data
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array);
    containers
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("env").and_then(Value::as_array))
        .flatten()
        .filter_map(|e| e.pointer("/valueFrom/secretKeyRef"))
        .filter_map(|r| {
            Some((
                r.get("name")?.as_str()?.to_string(),
                r.get("key")?.as_str()?.to_string(),
            ))
        })
        .collect()
}

/// Every `SecretKeySelector` (`{name, key}`) in a spec; one under `configMap` is a ConfigMap's.
fn selectors(v: &Value, parent: Option<&str>, out: &mut Wanted) {
    match v {
        Value::Object(map) => {
            if let (Some(Value::String(name)), Some(Value::String(key))) =
                (map.get("name"), map.get("key"))
                && parent != Some("configMap")
            {
                out.entry(name.clone()).or_default().insert(key.clone());
                return;
            }
            for (k, child) in map {
                selectors(child, Some(k), out);
            }
        }
        Value::Array(items) => {
            for item in items {
                selectors(item, parent, out);
            }
        }
        _ => {}
    }
}

/// The `*_file` settings of the Alertmanager configuration that point into a mounted Secret:
/// (Secret, key).
fn alertmanager_files(secret: &Object) -> Vec<(String, String)> {
    let text = secret
        .data
        .pointer(&format!(
            "/data/{}",
            CONFIG_KEY.replace('~', "~0").replace('/', "~1")
        ))
        .and_then(Value::as_str)
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .and_then(|bytes| serde_saphyr::from_slice::<Value>(&bytes).ok());
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    if let (true, Some(path)) = (k.ends_with("_file"), child.as_str())
                        && let Some(rest) = path.strip_prefix(&format!("{SECRETS_DIR}/"))
                        && let Some((secret, key)) = rest.split_once('/')
                    {
                        out.push((secret.to_string(), key.to_string()));
                    }
                    walk(child, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    if let Some(v) = text {
        walk(&v, &mut out);
    }
    out
}

/// What preflight found of the Secret keys the stack reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeys {
    pub namespace: String,
    /// How many keys were asked for.
    pub wanted: usize,
    /// Secrets that are not there, with the keys wanted of each.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub missing_secrets: BTreeMap<String, BTreeSet<String>>,
    /// Secrets that are there without a wanted key: Secret → the missing keys.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub missing_keys: BTreeMap<String, BTreeSet<String>>,
    /// Why they were not read (the user may not read Secrets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_checked: Option<String>,
}

impl SecretKeys {
    /// The finding, or none when the stack reads no Secret key of the user's (pure).
    pub fn assess(&self) -> Option<Finding> {
        if self.wanted == 0 {
            return None;
        }
        let ns = &self.namespace;
        if let Some(why) = &self.not_checked {
            return Some(
                Finding::new(
                    "secrets",
                    Level::Warn,
                    "cannot tell whether the Secrets named for credentials exist".to_string(),
                )
                .with_details(vec![why.clone()]),
            );
        }
        if self.missing_secrets.is_empty() && self.missing_keys.is_empty() {
            return Some(Finding::new(
                "secrets",
                Level::Ok,
                crate::output::plural(self.wanted, "Secret key"),
            ));
        }
        let mut details = Vec::new();
        for (secret, keys) in &self.missing_secrets {
            let literals: Vec<String> = keys
                .iter()
                .map(|k| format!("--from-literal={k}=…"))
                .collect();
            details.push(format!(
                "Secret {ns}/{secret} does not exist; create it: kubectl create secret generic {secret} -n {ns} {}",
                literals.join(" ")
            ));
        }
        for (secret, keys) in &self.missing_keys {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            details.push(format!(
                "Secret {ns}/{secret} has no key {}; add it, or name the key that holds the value",
                keys.join(", ")
            ));
        }
        let count: usize = self
            .missing_secrets
            .values()
            .chain(self.missing_keys.values())
            .map(BTreeSet::len)
            .sum();
        Some(
            Finding::new(
                "secrets",
                Level::Fail,
                format!(
                    "{} of {} named for credentials missing",
                    count,
                    crate::output::plural(self.wanted, "Secret key")
                ),
            )
            .with_details(details),
        )
    }
}

/// Reads each wanted Secret (its keys only are looked at; no value leaves this function).
pub async fn search(cluster: &Cluster, wanted: &Wanted) -> Result<SecretKeys, ClusterError> {
    let ns = &cluster.namespace;
    let mut found = SecretKeys {
        namespace: ns.clone(),
        wanted: wanted.values().map(BTreeSet::len).sum(),
        ..Default::default()
    };
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), ns);
    for (name, keys) in wanted {
        match api.get_opt(name).await {
            Ok(None) => {
                found.missing_secrets.insert(name.clone(), keys.clone());
            }
            Ok(Some(s)) => {
                let data = s.data.unwrap_or_default();
                let absent: BTreeSet<String> = keys
                    .iter()
                    .filter(|k| !data.contains_key(*k))
                    .cloned()
                    .collect();
                if !absent.is_empty() {
                    found.missing_keys.insert(name.clone(), absent);
                }
            }
            // The namespace is not there yet: neither is any Secret in it.
            Err(kube::Error::Api(s)) if s.code == 404 => {
                found.missing_secrets.insert(name.clone(), keys.clone());
            }
            Err(kube::Error::Api(s)) if s.code == 403 => {
                found.not_checked = Some(format!(
                    "reading Secrets in namespace {ns} is not allowed: {}",
                    s.message
                ));
                return Ok(found);
            }
            Err(e) => return Err(cluster.target.classify(e)),
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn rendered(sets: &[&str]) -> Vec<Object> {
        let mut all = vec!["prometheus.externalLabels={cluster: prod}".to_string()];
        all.extend(sets.iter().map(|s| s.to_string()));
        let (c, _) = Config::configured(crate::config::values::Base::Defaults, &all, None).unwrap();
        crate::render::render(&c).objects
    }

    #[test]
    fn the_keys_the_stack_reads_are_found_in_its_objects() {
        assert!(wanted(&rendered(&[])).is_empty());
        let w = wanted(&rendered(&[
            "alertmanager.receivers=[{name: own, webhook: {urlSecret: {secret: team-hooks, key: url}}}, {name: lit, webhook: {url: 'https://h/x'}}]",
            "prometheus.remoteWrite=[{url: 'https://s/api/v1/push', basicAuth: {secret: rw, usernameKey: user, passwordKey: pass}, tls: {secret: rw-tls, caKey: ca.crt}}]",
            "prometheus.thanos={objectStorageConfig: {secret: bucket, key: objstore.yml}}",
            "grafana.oidc={name: SSO, clientId: grafana, clientSecret: {name: sso, key: client-secret}, authUrl: 'https://sso.example.com/a', tokenUrl: 'https://sso.example.com/t', apiUrl: 'https://sso.example.com/u', scopes: [openid]}",
            "grafana.additionalDataSources=[{name: Loki, type: loki, url: 'http://loki.logging.svc:3100', basicAuth: true, basicAuthUser: g, secureJsonData: {basicAuthPassword: {name: loki, key: password}}}]",
        ]));
        let got: Vec<(String, Vec<String>)> = w
            .into_iter()
            .map(|(s, k)| (s, k.into_iter().collect()))
            .collect();
        let want = |s: &str, k: &[&str]| (s.to_string(), k.iter().map(|k| k.to_string()).collect());
        // The literal's key lives in the Secret enable writes: not asked for.
        assert_eq!(
            got,
            [
                want("bucket", &["objstore.yml"]),
                want("loki", &["password"]),
                want("rw", &["pass", "user"]),
                want("rw-tls", &["ca.crt"]),
                want("sso", &["client-secret"]),
                want("team-hooks", &["url"]),
            ]
        );
    }

    #[test]
    fn missing_secrets_and_keys_fail_and_say_how_to_create_them() {
        let mut s = SecretKeys {
            namespace: "automon".into(),
            wanted: 3,
            ..Default::default()
        };
        assert_eq!(s.assess().unwrap().level, Level::Ok);
        s.missing_secrets
            .insert("team-hooks".into(), BTreeSet::from(["url".to_string()]));
        s.missing_keys
            .insert("rw".into(), BTreeSet::from(["pass".to_string()]));
        let f = s.assess().unwrap();
        assert_eq!(f.level, Level::Fail);
        assert_eq!(
            f.message,
            "2 of 3 Secret keys named for credentials missing"
        );
        assert!(
            f.details[0].contains(
                "kubectl create secret generic team-hooks -n automon --from-literal=url=…"
            ),
            "{:?}",
            f.details
        );
        assert!(
            f.details[1].contains("Secret automon/rw has no key pass"),
            "{:?}",
            f.details
        );
        assert_eq!(SecretKeys::default().assess(), None);
    }
}
