//! A component's HTTP API through the API server's service proxy (the kubeconfig's
//! credentials, no port-forward) or at a URL: the request path Prometheus' and Alertmanager's
//! questions share, and why an answer did not come.

use crate::cluster::Cluster;

pub enum Source<'a> {
    /// `/api/v1/namespaces/<ns>/services/<service>:<port>/proxy<prefix>`: `prefix` is the path
    /// the component serves under (its `routePrefix`, when exposed under a path), else empty.
    ServiceProxy {
        cluster: &'a Cluster,
        namespace: &'a str,
        service: &'a str,
        port: &'a str,
        prefix: String,
    },
    /// `/api/v1/namespaces/<ns>/pods/<pod>:<port>/proxy`: one pod of a Service's, when what is
    /// asked must be asked of the same pod each time (the service proxy picks one at random).
    PodProxy {
        cluster: &'a Cluster,
        namespace: &'a str,
        pod: String,
        port: u16,
        prefix: String,
    },
    Url(&'a str),
}

impl Source<'_> {
    pub(crate) fn describe(&self) -> String {
        match self {
            Source::ServiceProxy {
                namespace,
                service,
                port,
                prefix,
                ..
            } => format!(
                "service {namespace}/{service}:{port}{} through the API server",
                under(prefix)
            ),
            Source::PodProxy {
                namespace,
                pod,
                port,
                prefix,
                ..
            } => format!(
                "pod {namespace}/{pod}:{port}{} through the API server",
                under(prefix)
            ),
            Source::Url(url) => url.to_string(),
        }
    }

    /// One request, its answer's body when it succeeded: what Prometheus' and Alertmanager's
    /// APIs share (the way there, and why there is no answer). A body is sent as JSON.
    pub(crate) async fn exchange(
        &self,
        method: http::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<String, Failure> {
        let json = body.is_some();
        let body = body.unwrap_or_default();
        // Through the API server (its client and URI), or straight to a URL.
        let way: Result<(&Cluster, String), &str> = match self {
            Source::ServiceProxy {
                cluster,
                namespace,
                service,
                port,
                prefix,
            } => Ok((
                cluster,
                format!(
                    "/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy{prefix}{path}"
                ),
            )),
            Source::PodProxy {
                cluster,
                namespace,
                pod,
                port,
                prefix,
            } => Ok((
                cluster,
                format!("/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy{prefix}{path}"),
            )),
            Source::Url(base) => Err(base),
        };
        Ok(match way {
            Ok((cluster, uri)) => {
                let mut request = http::Request::builder().method(method).uri(uri);
                if json {
                    request = request.header(http::header::CONTENT_TYPE, "application/json");
                }
                let request = request
                    .body(body)
                    .map_err(|e| Failure::other(e.to_string()))?;
                cluster
                    .proxy_client
                    .request_text(request)
                    .await
                    .map_err(|e| match e {
                        kube::Error::Api(s) => Failure::answered(s.code, &s.message),
                        // The API server itself: unreachable, or silent (`--request-timeout`).
                        e => Failure::transport(cluster.target.classify(e).to_string()),
                    })?
            }
            Err(base) => {
                let url = format!("{}{path}", base.trim_end_matches('/'));
                // ask() bounds the wait: dropping this future ends the request.
                let client = reqwest::Client::builder()
                    .build()
                    .map_err(|e| Failure::other(e.to_string()))?;
                let mut request = client.request(method, &url);
                if json {
                    request = request
                        .header(http::header::CONTENT_TYPE, "application/json")
                        .body(body);
                }
                let response = request.send().await.map_err(|e| {
                    if e.is_timeout() {
                        Failure::transport("timed out".to_string())
                    } else {
                        // The URL is in the message already (`via`): only why.
                        Failure::transport(format!("cannot connect: {}", root_cause(&e)))
                    }
                })?;
                let status = response.status();
                let text = response
                    .text()
                    .await
                    .map_err(|e| Failure::transport(root_cause(&e)))?;
                if !status.is_success() {
                    return Err(Failure::answered(status.as_u16(), &text));
                }
                text
            }
        })
    }
}

/// ` under /prefix` when a component serves under a path, for the way it was asked.
fn under(prefix: &str) -> String {
    match prefix.is_empty() {
        true => String::new(),
        false => format!(" under {prefix}"),
    }
}

/// The path prefix a `Prometheus` or `Alertmanager` object's pods serve under: its
/// `spec.routePrefix`, which the operator passes as `--web.route-prefix` (`/` when unset),
/// without its trailing `/`; empty at the root (pure).
pub fn route_prefix(object: &crate::model::Object) -> String {
    object.data["spec"]["routePrefix"]
        .as_str()
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_string()
}

/// [`route_prefix`] of the `kind` (`Prometheus.monitoring.coreos.com`) `namespace/name`, read
/// from the cluster; empty (the root) when it cannot be read, as the operator's default.
pub async fn route_prefix_of(cluster: &Cluster, kind: &str, namespace: &str, name: &str) -> String {
    let Some(known) = crate::model::resources::by_group_kind(kind) else {
        return String::new();
    };
    match known
        .api(&cluster.client, Some(namespace))
        .get_opt(name)
        .await
    {
        Ok(Some(o)) => route_prefix(&o),
        _ => String::new(),
    }
}

/// Why a question to Prometheus got no answer: one short clause for people, and the words of
/// whoever answered instead (the API server, a proxy on the way), kept whole for `-o json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) reason: String,
    pub(crate) detail: Option<String>,
    pub(crate) timed_out: bool,
}

impl Failure {
    pub(crate) fn other(reason: String) -> Failure {
        Failure {
            reason,
            detail: None,
            timed_out: false,
        }
    }

    pub(crate) fn transport(reason: String) -> Failure {
        let lower = reason.to_ascii_lowercase();
        Failure {
            timed_out: lower.contains("timed out") || lower.contains("did not answer within"),
            ..Failure::other(reason)
        }
    }

    /// An HTTP error in place of Prometheus' answer (pure): its status, and what it means
    /// when the API server's words say (no pod behind the Service, a pod it cannot reach).
    /// The words themselves may quote every proxy on the way: they go to `detail` only.
    pub(crate) fn answered(code: u16, message: &str) -> Failure {
        let status = http::StatusCode::from_u16(code)
            .ok()
            .and_then(|s| s.canonical_reason())
            .map_or_else(|| code.to_string(), |r| format!("{code} {r}"));
        let meaning = if message.contains("no endpoints available") {
            Some("no ready Prometheus pod behind the Service")
        } else if message.contains("error trying to reach service") {
            Some("the API server could not reach the Prometheus pod")
        } else if code == 401 || code == 403 {
            Some(
                "the credentials may not read Prometheus through the API server (get services/proxy)",
            )
        } else {
            None
        };
        let message = message.trim();
        Failure {
            reason: match meaning {
                Some(m) => format!("{status}: {m}"),
                None => status,
            },
            detail: (!message.is_empty()).then(|| message.to_string()),
            timed_out: false,
        }
    }
}

/// The innermost cause of an error: what actually failed, without the layers that wrap it.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_prefix_is_the_operators_without_its_last_slash() {
        let with = |spec: serde_json::Value| {
            route_prefix(&crate::render::custom(serde_json::json!({
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "Prometheus",
                "metadata": {"name": "p"},
                "spec": spec,
            })))
        };
        assert_eq!(with(serde_json::json!({})), "");
        assert_eq!(with(serde_json::json!({"routePrefix": "/"})), "");
        assert_eq!(
            with(serde_json::json!({"routePrefix": "/prometheus"})),
            "/prometheus"
        );
        assert_eq!(with(serde_json::json!({"routePrefix": "/a/b/"})), "/a/b");
    }

    #[test]
    fn a_failed_answer_is_one_short_clause_and_keeps_the_servers_words_apart() {
        // What the API server's service proxy says, as a real cluster and the test's egress
        // proxy word it.
        let cases = [
            (
                503,
                r#"no endpoints available for service "prometheus:web""#,
                "503 Service Unavailable: no ready Prometheus pod behind the Service",
            ),
            (
                503,
                "error trying to reach service: dial tcp 10.0.0.5:9090: connect: connection refused",
                "503 Service Unavailable: the API server could not reach the Prometheus pod",
            ),
            (
                502,
                "error trying to reach service: proxy error from 127.0.0.1:41000 while dialing 10.0.0.5:9090, code 502: 502 localcluster has no process for 10.0.0.5:9090 (nothing outside 127.0.0.0/8 is dialed; see localcluster expose)",
                "502 Bad Gateway: the API server could not reach the Prometheus pod",
            ),
            (502, "", "502 Bad Gateway"),
            (500, "broken", "500 Internal Server Error"),
            (
                403,
                r#"services "prometheus:web" is forbidden: User "bob" cannot get resource "services/proxy""#,
                "403 Forbidden: the credentials may not read Prometheus through the API server (get services/proxy)",
            ),
            (599, "x", "599"),
        ];
        for (code, message, want) in cases {
            let f = Failure::answered(code, message);
            assert_eq!(f.reason, want, "{message}");
            assert!(f.reason.len() < 110, "{}", f.reason);
            assert!(!f.reason.contains("127.0.0.0/8") && !f.reason.contains("localcluster"));
            assert_eq!(
                f.detail.as_deref(),
                (!message.is_empty()).then_some(message)
            );
            assert!(!f.timed_out);
        }
        assert!(
            Failure::transport(
                "the API server at https://x did not answer within 2s (--request-timeout)".into()
            )
            .timed_out
        );
        assert!(
            !Failure::transport("cannot connect: Connection refused (os error 111)".into())
                .timed_out
        );
    }
}
