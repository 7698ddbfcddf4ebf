//! The stack's Alertmanager, asked through the API server's service proxy as status asks
//! Prometheus (the same request path): its v2 API answers plain JSON. `test-alert`, `silence`
//! and status' silenced alerts use it; what the answers mean is worked out in `outcome` and
//! `silences`, without I/O.

pub mod outcome;
pub mod silences;

use std::time::Duration;

use http::Method;
use serde_json::Value;

use crate::{
    cluster::{
        Cluster,
        service_proxy::{Source, route_prefix_of},
    },
    render::alertmanager as rendered,
};

/// The Service port the operator names Alertmanager's web port.
const PORT_NAME: &str = "web";
/// How long one question may take when `--request-timeout` does not say.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// What the command line asks cannot be done: a receiver, a node or a silence that is not
/// there.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotFound(pub String);

/// Alertmanager did not answer as asked.
#[derive(Debug, thiserror::Error)]
#[error("Alertmanager did not answer at {via}: {reason}")]
pub struct Unanswered {
    pub via: String,
    pub reason: String,
    /// The API server's words, which may quote every proxy on the way.
    pub detail: Option<String>,
    pub kind: Why,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// No ready pod behind the Service, or none the API server reaches.
    Unavailable,
    /// The user may not use the Service's proxy with this verb.
    Forbidden,
    Other,
}

/// The stack's Alertmanager in the cluster's namespace.
pub struct Alertmanager<'a> {
    source: Source<'a>,
    wait: Duration,
}

impl<'a> Alertmanager<'a> {
    /// Through its Service, under the path its pods serve under (the `Alertmanager` object's
    /// `routePrefix`, set when it is exposed under a path): one GET of that object.
    pub async fn of_stack(cluster: &'a Cluster) -> Alertmanager<'a> {
        let prefix = route_prefix_of(
            cluster,
            "Alertmanager.monitoring.coreos.com",
            &cluster.namespace,
            rendered::INSTANCE,
        )
        .await;
        Alertmanager {
            source: Source::ServiceProxy {
                cluster,
                namespace: &cluster.namespace,
                service: rendered::NAME,
                port: PORT_NAME,
                prefix,
            },
            wait: cluster.target.timeout.unwrap_or(TIMEOUT),
        }
    }

    /// The stack's Alertmanager, one pod of it (the first ready one by name) for every question:
    /// replicas share silences but not the alerts posted to one of them nor their counters,
    /// and the service proxy picks a pod at random for each request. The Service when no pod
    /// is ready (its answer then says so).
    pub async fn one_pod(cluster: &'a Cluster) -> Alertmanager<'a> {
        let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
            kube::Api::namespaced(cluster.client.clone(), &cluster.namespace);
        let selector = format!(
            "{}={},{}={}",
            crate::model::names::NAME_LABEL,
            rendered::NAME,
            crate::model::names::PART_OF_LABEL,
            crate::model::names::PART_OF
        );
        let ready = |p: &k8s_openapi::api::core::v1::Pod| {
            p.status
                .iter()
                .flat_map(|s| s.conditions.iter().flatten())
                .any(|c| c.type_ == "Ready" && c.status == "True")
        };
        // Unlisted (say, not allowed to list pods): the Service, as before.
        let mut names: Vec<String> = pods
            .list(&kube::api::ListParams::default().labels(&selector))
            .await
            .map(|list| {
                list.items
                    .iter()
                    .filter(|p| ready(p))
                    .filter_map(|p| p.metadata.name.clone())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        let mut am = Alertmanager::of_stack(cluster).await;
        if let (Some(pod), Source::ServiceProxy { prefix, .. }) =
            (names.into_iter().next(), &am.source)
        {
            am.source = Source::PodProxy {
                cluster,
                namespace: &cluster.namespace,
                pod,
                port: rendered::PORT as u16,
                prefix: prefix.clone(),
            };
        }
        am
    }

    /// `GET /api/v2/<path>`, its JSON.
    pub async fn get(&self, path: &str) -> Result<Value, Unanswered> {
        let text = self
            .send(Method::GET, &format!("/api/v2/{path}"), None)
            .await?;
        self.json(&text)
    }

    /// `POST /api/v2/<path>` with `body`; the answer's JSON (`null` when it has none).
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, Unanswered> {
        let bytes = serde_json::to_vec(body).map_err(|e| self.other(e.to_string()))?;
        let text = self
            .send(Method::POST, &format!("/api/v2/{path}"), Some(bytes))
            .await?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        self.json(&text)
    }

    /// `DELETE /api/v2/<path>`.
    pub async fn delete(&self, path: &str) -> Result<(), Unanswered> {
        self.send(Method::DELETE, &format!("/api/v2/{path}"), None)
            .await
            .map(drop)
    }

    /// Its own metrics, in Prometheus' text format.
    pub async fn metrics(&self) -> Result<String, Unanswered> {
        self.send(Method::GET, "/metrics", None).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<String, Unanswered> {
        let verb = match method {
            Method::GET => "get",
            Method::DELETE => "delete",
            _ => "create",
        };
        match tokio::time::timeout(self.wait, self.source.exchange(method, path, body)).await {
            Ok(Ok(text)) => Ok(text),
            Ok(Err(f)) if !f.timed_out => Err(self.failed(f.reason, f.detail, verb)),
            _ => Err(self.other(format!(
                "no answer within {}",
                crate::cluster::error::humantime(self.wait)
            ))),
        }
    }

    fn json(&self, text: &str) -> Result<Value, Unanswered> {
        serde_json::from_str(text)
            .map_err(|_| self.other("the answer is not Alertmanager's JSON API".into()))
    }

    fn other(&self, reason: String) -> Unanswered {
        Unanswered {
            via: self.source.describe(),
            reason,
            detail: None,
            kind: Why::Other,
        }
    }

    /// The shared words of a failed request, said of Alertmanager and of the verb asked.
    fn failed(&self, reason: String, detail: Option<String>, verb: &str) -> Unanswered {
        let kind = if reason.starts_with("401") || reason.starts_with("403") {
            Why::Forbidden
        } else if reason.starts_with("502") || reason.starts_with("503") {
            Why::Unavailable
        } else {
            Why::Other
        };
        let reason = match kind {
            Why::Forbidden => format!(
                "{}: the credentials may not {verb} {} in namespace {} (RBAC), which test-alert and silence need",
                reason.split(':').next().unwrap_or_default(),
                match self.source {
                    Source::PodProxy { .. } => "pods/proxy",
                    _ => "services/proxy",
                },
                self.namespace()
            ),
            _ => reason.replace("Prometheus", "Alertmanager"),
        };
        Unanswered {
            via: self.source.describe(),
            reason,
            detail,
            kind,
        }
    }

    fn namespace(&self) -> &str {
        match &self.source {
            Source::ServiceProxy { namespace, .. } | Source::PodProxy { namespace, .. } => {
                namespace
            }
            Source::Url(_) => "",
        }
    }
}
