//! `spec.remoteWrite` of the `Prometheus` object from `prometheus.remoteWrite`: each endpoint
//! with its credentials as references to the user's Secrets (the operator reads them), and the
//! replica label the presets' stores deduplicate an HA pair by.

use serde_json::{Map, Value, json};

use crate::config::{Prometheus, RemoteWrite};

/// Adds the endpoints and, when a preset asks for one, `replicaExternalLabelName`. Nothing
/// without endpoints: the default render stays as it was.
pub fn extend(spec: &mut Value, c: &Prometheus) {
    if c.remote_write.is_empty() {
        return;
    }
    spec["remoteWrite"] = c.remote_write.iter().map(endpoint).collect();
    if let Some(label) = c.preset_replica_label() {
        // "" makes the operator leave the replica label off (VictoriaMetrics).
        spec["replicaExternalLabelName"] = json!(label);
    }
}

/// A `SecretKeySelector`.
fn secret_key(secret: &str, key: &str) -> Value {
    json!({"name": secret, "key": key})
}

fn endpoint(w: &RemoteWrite) -> Value {
    let mut e = json!({"url": w.endpoint()});
    if let Some(b) = &w.basic_auth {
        e["basicAuth"] = json!({
            "username": secret_key(&b.secret, &b.username_key),
            "password": secret_key(&b.secret, &b.password_key),
        });
    }
    if let Some(t) = &w.bearer_token {
        // `authorization` rather than the deprecated `bearerToken` field.
        e["authorization"] = json!({
            "type": "Bearer",
            "credentials": secret_key(&t.secret, &t.key),
        });
    }
    if let Some(t) = &w.tls {
        let mut tls = Map::new();
        if let Some(ca) = &t.ca_key {
            tls.insert("ca".into(), json!({"secret": secret_key(&t.secret, ca)}));
        }
        if let (Some(cert), Some(key)) = (&t.cert_key, &t.key_key) {
            tls.insert(
                "cert".into(),
                json!({"secret": secret_key(&t.secret, cert)}),
            );
            tls.insert("keySecret".into(), secret_key(&t.secret, key));
        }
        e["tlsConfig"] = Value::Object(tls);
    }
    if !w.headers.is_empty() {
        e["headers"] = json!(w.headers);
    }
    if let Some(q) = &w.queue {
        let mut queue = Map::new();
        for (name, n) in [
            ("capacity", q.capacity),
            ("minShards", q.min_shards),
            ("maxShards", q.max_shards),
            ("maxSamplesPerSend", q.max_samples_per_send),
        ] {
            if let Some(n) = n {
                queue.insert(name.into(), json!(n));
            }
        }
        if let Some(d) = &q.batch_send_deadline {
            queue.insert("batchSendDeadline".into(), json!(d.0));
        }
        e["queueConfig"] = Value::Object(queue);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn spec(sets: &[&str]) -> Value {
        let mut c = Config::default()
            .with_set("prometheus.externalLabels={cluster: prod}")
            .unwrap();
        for s in sets {
            c = c.with_set(s).unwrap();
        }
        let mut spec = json!({});
        extend(&mut spec, &c.prometheus);
        spec
    }

    #[test]
    fn nothing_without_endpoints() {
        assert_eq!(spec(&[]), json!({}));
    }

    #[test]
    fn credentials_are_secret_references() {
        let s = spec(&["prometheus.remoteWrite=[\
             {url: 'https://mimir.example.com', preset: mimir, basicAuth: {secret: rw, usernameKey: user, passwordKey: pass}, headers: {X-Scope-OrgID: team-a}}, \
             {url: 'https://store.example.com/write', bearerToken: {secret: tok, key: token}, \
              tls: {secret: client, caKey: ca.crt, certKey: tls.crt, keyKey: tls.key}, \
              queue: {capacity: 10000, maxShards: 50, batchSendDeadline: 5s}}]"]);
        assert_eq!(
            s["remoteWrite"][0],
            json!({
                "url": "https://mimir.example.com/api/v1/push",
                "basicAuth": {
                    "username": {"name": "rw", "key": "user"},
                    "password": {"name": "rw", "key": "pass"},
                },
                "headers": {"X-Scope-OrgID": "team-a"},
            })
        );
        assert_eq!(
            s["remoteWrite"][1],
            json!({
                "url": "https://store.example.com/write",
                "authorization": {"type": "Bearer", "credentials": {"name": "tok", "key": "token"}},
                "tlsConfig": {
                    "ca": {"secret": {"name": "client", "key": "ca.crt"}},
                    "cert": {"secret": {"name": "client", "key": "tls.crt"}},
                    "keySecret": {"name": "client", "key": "tls.key"},
                },
                "queueConfig": {"capacity": 10000, "maxShards": 50, "batchSendDeadline": "5s"},
            })
        );
        assert_eq!(s["replicaExternalLabelName"], "__replica__");
    }

    #[test]
    fn each_preset_sets_its_replica_label_and_a_plain_url_none() {
        for (preset, label) in [
            ("thanos", json!("prometheus_replica")),
            ("mimir", json!("__replica__")),
            ("victoriametrics", json!("")),
        ] {
            let s = spec(&[&format!(
                "prometheus.remoteWrite=[{{url: 'http://store', preset: {preset}}}]"
            )]);
            assert_eq!(s["replicaExternalLabelName"], label, "{preset}");
        }
        let s = spec(&["prometheus.remoteWrite=[{url: 'http://store/write'}]"]);
        assert!(s.get("replicaExternalLabelName").is_none(), "{s}");
    }
}
