//! Errors a caller decides on (`exit` maps each to its exit code). Errors from the API
//! server are classified once, here, into what a user can act on: where the server is, whose
//! credentials were rejected, which verb on which resource in which namespace was forbidden.

use std::net::SocketAddr;
use std::{fmt, time::Duration};

/// automon is not installed in the namespace a command was pointed at: every command that needs
/// it says so in these words and exits 9.
#[derive(Debug, thiserror::Error)]
#[error(
    "automon is not installed in namespace {namespace}; install it with `kubectl automon enable -n {namespace}`"
)]
pub struct NotInstalled {
    pub namespace: String,
}

/// Problems reaching or talking to the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "no kubeconfig found (looked at {looked_at}) and not running inside a cluster; \
         pass --kubeconfig, set KUBECONFIG, or create ~/.kube/config"
    )]
    NoKubeconfig { looked_at: String },

    #[error("cannot read kubeconfig {path}: {reason}")]
    ReadKubeconfig { path: String, reason: String },

    #[error(
        "{what} {name:?} does not exist in the kubeconfig ({sources}); {}",
        available_list(what, available)
    )]
    NotInKubeconfig {
        what: &'static str,
        name: String,
        available: Vec<String>,
        sources: String,
    },

    #[error(
        "the kubeconfig ({sources}) sets no current context; choose one with --context ({})",
        available_list("context", available)
    )]
    NoCurrentContext {
        available: Vec<String>,
        sources: String,
    },

    #[error("invalid kubeconfig: {0}")]
    InvalidKubeconfig(String),

    #[error("cannot reach the API server at {server}: {reason}")]
    Unreachable { server: String, reason: String },

    #[error("the API server at {server} did not answer within {} (--request-timeout)", humantime(*timeout))]
    Timeout { server: String, timeout: Duration },

    #[error(
        "the API server at {server} rejected the credentials of user {user:?} (401 Unauthorized): \
         the token or certificate is wrong or has expired; log in again or fix the user in the kubeconfig"
    )]
    Unauthorized { server: String, user: String },

    #[error("{0}")]
    Forbidden(Box<Forbidden>),

    #[error("could not get credentials for user {user:?}: {reason}")]
    Credentials { user: String, reason: String },

    #[error(
        "the credential plugin {command:?} ({at}) did not answer in {}; run it yourself to see why, or raise --request-timeout",
        humantime(*timeout)
    )]
    CredentialPluginTimeout {
        command: String,
        at: String,
        timeout: Duration,
    },

    #[error("the API server at {server} answered {code} {reason}: {message}")]
    Api {
        server: String,
        code: u16,
        reason: String,
        message: String,
    },
}

fn available_list(what: &str, available: &[String]) -> String {
    if available.is_empty() {
        format!("it defines no {what}s")
    } else {
        format!("available {what}s: {}", available.join(", "))
    }
}

/// "1.5s", "2m": durations the way kubectl prints them.
pub fn humantime(d: Duration) -> String {
    let ms = d.as_millis();
    if ms > 0 && ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// A 403, with the parts a user needs to ask for the right permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forbidden {
    pub user: String,
    pub verb: String,
    pub resource: String,
    pub group: String,
    /// `None` at the cluster scope.
    pub namespace: Option<String>,
    /// The server's own words, kept for the cases the parse does not cover.
    pub message: String,
}

impl Forbidden {
    /// Reads the authorizer's message: `<res> "<name>" is forbidden: User "<u>" cannot <verb>
    /// resource "<res>" in API group "<g>" (in the namespace "<ns>" | at the cluster scope)`.
    pub fn from_message(message: &str) -> Option<Forbidden> {
        let after = |s: &str, pat: &str| s.find(pat).map(|i| i + pat.len());
        let quoted = |s: &str, pat: &str| -> Option<(String, usize)> {
            let start = after(s, pat)?;
            let len = s[start..].find('"')?;
            Some((s[start..start + len].to_string(), start + len + 1))
        };
        let (user, i) = quoted(message, "User \"")?;
        let rest = &message[i..];
        let verb_start = after(rest, " cannot ")?;
        let verb_len = rest[verb_start..].find(' ')?;
        let verb = rest[verb_start..verb_start + verb_len].to_string();
        // Non-resource requests (and 1.36's constrained impersonation) name a path instead.
        let (resource, j) = quoted(rest, " resource \"").or_else(|| {
            let (path, j) = quoted(rest, " path \"")?;
            Some((format!("path {path:?}"), j))
        })?;
        let rest = &rest[j..];
        let (group, k) = quoted(rest, " in API group \"").unwrap_or_default();
        let rest = &rest[k..];
        let namespace = quoted(rest, " in the namespace \"").map(|(ns, _)| ns);
        Some(Forbidden {
            user,
            verb,
            resource,
            group,
            namespace,
            message: message.to_string(),
        })
    }

    /// `prometheuses.monitoring.coreos.com`, or `configmaps` for the core group.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() || self.resource.starts_with("path ") {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

impl fmt::Display for Forbidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.verb.is_empty() {
            let msg = self.message.trim_start_matches("forbidden: ");
            return write!(f, "forbidden: {msg}");
        }
        write!(
            f,
            "forbidden: user {:?} may not {} {}",
            self.user,
            self.verb,
            self.qualified_resource()
        )?;
        match &self.namespace {
            Some(ns) => write!(f, " in namespace {ns:?}")?,
            None if self.resource.starts_with("path ") => {}
            None => write!(f, " at the cluster scope")?,
        }
        write!(
            f,
            "; ask a cluster administrator to grant it (RBAC), or use a context whose user has it"
        )
    }
}

/// What a request was aimed at, so that a failure can say so.
#[derive(Debug, Clone)]
pub struct Target {
    pub server: String,
    pub user: String,
    pub timeout: Option<Duration>,
}

impl Target {
    /// Turns a kube error into the error the user can act on.
    pub fn classify(&self, err: kube::Error) -> ClusterError {
        match err {
            kube::Error::Api(status) => match status.code {
                401 => ClusterError::Unauthorized {
                    server: self.server.clone(),
                    user: self.user.clone(),
                },
                403 => ClusterError::Forbidden(Box::new(
                    Forbidden::from_message(&status.message).unwrap_or(Forbidden {
                        user: self.user.clone(),
                        verb: String::new(),
                        resource: String::new(),
                        group: String::new(),
                        namespace: None,
                        message: status.message.clone(),
                    }),
                )),
                code => ClusterError::Api {
                    server: self.server.clone(),
                    code,
                    reason: status.reason.clone(),
                    message: status.message.clone(),
                },
            },
            kube::Error::Auth(e) => ClusterError::Credentials {
                user: self.user.clone(),
                reason: chain(&e),
            },
            other => self.classify_transport(&other),
        }
    }

    fn classify_transport(&self, err: &(dyn std::error::Error + 'static)) -> ClusterError {
        let text = chain(err);
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = cur {
            if let Some(io) = e.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::TimedOut
            {
                return self.timeout();
            }
            cur = e.source();
        }
        let lower = text.to_ascii_lowercase();
        if lower.contains("timed out") || lower.contains("deadline has elapsed") {
            return self.timeout();
        }
        let reason = if lower.contains("connection refused") {
            "connection refused (is the cluster running, and is the server address in the kubeconfig right?)".to_string()
        } else if lower.contains("dns error") || lower.contains("failed to lookup") {
            format!("the host name does not resolve ({text})")
        } else if lower.contains("certificate") || lower.contains("tls") {
            format!(
                "TLS failed ({text}); check certificate-authority(-data) and tls-server-name in the kubeconfig"
            )
        } else {
            text
        };
        ClusterError::Unreachable {
            server: self.server.clone(),
            reason,
        }
    }

    fn timeout(&self) -> ClusterError {
        match self.timeout {
            Some(timeout) => ClusterError::Timeout {
                server: self.server.clone(),
                timeout,
            },
            None => ClusterError::Unreachable {
                server: self.server.clone(),
                reason: format!(
                    "no answer within the default deadline ({} to connect, {} for an answer); set another with --request-timeout",
                    humantime(crate::cluster::DEFAULT_CONNECT_TIMEOUT),
                    humantime(crate::cluster::DEFAULT_READ_TIMEOUT)
                ),
            },
        }
    }
}

/// An error and its causes on one line, without repeating a cause its parent already quotes.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

/// Why `open` cannot forward, or why one connection could not be.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "automon is not installed in namespace {namespace}; install it with `kubectl automon enable -n {namespace}`"
    )]
    NotInstalled { namespace: String },
    #[error(
        "Service {namespace}/{service} does not exist, so there is nothing to forward to; \
         `kubectl automon status -n {namespace}` shows what is missing, `kubectl automon enable -n {namespace}` restores it"
    )]
    NoService {
        namespace: String,
        service: &'static str,
    },
    #[error(
        "the stack in namespace {namespace} has one Prometheus shard, so it runs no Thanos Query: \
         `kubectl automon open prometheus -n {namespace}` holds every series"
    )]
    NoQuery { namespace: String },
    #[error("cannot forward to Service {namespace}/{service}: {problem}")]
    BadService {
        namespace: String,
        service: &'static str,
        problem: String,
    },
    #[error(
        "no ready pod for {component} in {namespace}: {pods} (`kubectl automon status -n {namespace}` says why)"
    )]
    NoReadyPod {
        component: &'static str,
        namespace: String,
        pods: String,
    },
    #[error("cannot forward to pod {namespace}/{pod}: {problem}")]
    BadPod {
        namespace: String,
        pod: String,
        problem: String,
    },
    #[error("{addr} is already in use; choose another --port, or --port 0 for a free one")]
    PortInUse { addr: SocketAddr },
    #[error("cannot listen on {addr} (--address, --port)")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// What the kubelet said on the port's error channel (the container refused, the pod died).
    #[error("forwarding to {namespace}/{pod}:{port}: {message}")]
    PodSaid {
        namespace: String,
        pod: String,
        port: u16,
        message: String,
    },
    /// A 403 the authorizer did not write, although the SelfSubjectAccessReview allowed the
    /// port-forward: what refused it is behind the API server.
    #[error(
        "the API server could not open the port-forward to pod {namespace}/{pod} (403: {message}); \
         user {user:?} may create pods/portforward in namespace {namespace:?} (SelfSubjectAccessReview), \
         so the refusal comes from the API server's connection to the pod's node: the kubelet's \
         authorization of the API server, or a proxy on the way"
    )]
    RefusedBehindApiServer {
        user: String,
        namespace: String,
        pod: String,
        message: String,
    },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_messages_parse() {
        let cases = [
            (
                r#"nodes is forbidden: User "limited" cannot list resource "nodes" in API group "" at the cluster scope"#,
                ("limited", "list", "nodes", "", None),
            ),
            (
                r#"configmaps "automon" is forbidden: User "limited" cannot get resource "configmaps" in API group "" in the namespace "automon""#,
                ("limited", "get", "configmaps", "", Some("automon")),
            ),
            (
                r#"users "admin" is forbidden: User "limited" cannot impersonate resource "users" in API group "" at the cluster scope"#,
                ("limited", "impersonate", "users", "", None),
            ),
            (
                r#"forbidden: User "limited" cannot impersonate-on:user-info:get path "/version""#,
                (
                    "limited",
                    "impersonate-on:user-info:get",
                    "path \"/version\"",
                    "",
                    None,
                ),
            ),
            (
                r#"prometheuses.monitoring.coreos.com is forbidden: User "system:serviceaccount:ci:deployer" cannot create resource "prometheuses" in API group "monitoring.coreos.com" in the namespace "automon""#,
                (
                    "system:serviceaccount:ci:deployer",
                    "create",
                    "prometheuses",
                    "monitoring.coreos.com",
                    Some("automon"),
                ),
            ),
        ];
        for (msg, (user, verb, resource, group, ns)) in cases {
            let f = Forbidden::from_message(msg).expect(msg);
            assert_eq!(
                (
                    f.user.as_str(),
                    f.verb.as_str(),
                    f.resource.as_str(),
                    f.group.as_str(),
                    f.namespace.as_deref()
                ),
                (user, verb, resource, group, ns),
                "{msg}"
            );
        }
    }

    #[test]
    fn forbidden_display_names_everything() {
        let f = Forbidden::from_message(
            r#"prometheuses.monitoring.coreos.com is forbidden: User "bob" cannot create resource "prometheuses" in API group "monitoring.coreos.com" in the namespace "automon""#,
        )
        .unwrap();
        let s = f.to_string();
        assert!(
            s.starts_with(
                r#"forbidden: user "bob" may not create prometheuses.monitoring.coreos.com in namespace "automon""#
            ),
            "{s}"
        );
    }

    #[test]
    fn unparseable_forbidden_keeps_server_words() {
        assert_eq!(Forbidden::from_message("access denied by webhook"), None);
        let t = Target {
            server: "https://x".into(),
            user: "me".into(),
            timeout: None,
        };
        let err = t.classify(kube::Error::Api(
            kube::core::Status::failure("access denied by webhook", "Forbidden")
                .with_code(403)
                .boxed(),
        ));
        assert!(matches!(err, ClusterError::Forbidden(_)), "{err:?}");
        assert!(err.to_string().contains("access denied by webhook"));
    }

    #[test]
    fn status_codes_map_to_their_kind() {
        let t = Target {
            server: "https://x".into(),
            user: "me".into(),
            timeout: None,
        };
        let api = |code| {
            kube::Error::Api(
                kube::core::Status::failure("m", "R")
                    .with_code(code)
                    .boxed(),
            )
        };
        assert!(matches!(
            t.classify(api(401)),
            ClusterError::Unauthorized { .. }
        ));
        assert!(matches!(
            t.classify(api(500)),
            ClusterError::Api { code: 500, .. }
        ));
    }

    #[test]
    fn humantime_reads_like_kubectl() {
        assert_eq!(humantime(Duration::from_secs(2)), "2s");
        assert_eq!(humantime(Duration::from_secs(120)), "2m");
        assert_eq!(humantime(Duration::from_millis(1500)), "1.5s");
    }
}
