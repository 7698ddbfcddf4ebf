//! The one way every command reaches the cluster: the kubectl flags, the kubeconfig files they
//! select (merged as kubectl merges them), in-cluster config as the last resort, and a client
//! whose failures are classified by `error::Target`.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::{
    error::{ClusterError, Target},
    proxy::ProxyEnv,
};

/// The namespace automon installs into unless `-n` says otherwise.
pub const DEFAULT_NAMESPACE: &str = "automon";

/// The flags kubectl users type without thinking, accepted by every command.
#[derive(clap::Args, Debug, Clone)]
pub struct KubeFlags {
    /// Path to the kubeconfig file (instead of KUBECONFIG or ~/.kube/config)
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        help_heading = "Cluster access"
    )]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        help_heading = "Cluster access"
    )]
    pub context: Option<String>,
    /// The kubeconfig cluster to use (overrides the context's)
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        help_heading = "Cluster access"
    )]
    pub cluster: Option<String>,
    /// The kubeconfig user to use (overrides the context's)
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        help_heading = "Cluster access"
    )]
    pub user: Option<String>,
    /// Namespace of the monitoring stack [default: automon]
    #[arg(
        short = 'n',
        long,
        global = true,
        value_name = "NAME",
        help_heading = "Cluster access"
    )]
    pub namespace: Option<String>,
    /// How long to wait for each request to the API server (e.g. 10s, 1m); 0 waits as long as it takes
    #[arg(long, global = true, value_name = "DURATION", default_value = "0", value_parser = parse_request_timeout, help_heading = "Cluster access")]
    pub request_timeout: Duration,
    /// User to impersonate for the operation
    #[arg(
        long = "as",
        global = true,
        value_name = "USER",
        help_heading = "Cluster access"
    )]
    pub as_user: Option<String>,
    /// Group to impersonate (repeat for several)
    #[arg(
        long = "as-group",
        global = true,
        value_name = "GROUP",
        help_heading = "Cluster access"
    )]
    pub as_group: Vec<String>,
    /// UID to impersonate
    #[arg(
        long = "as-uid",
        global = true,
        value_name = "UID",
        help_heading = "Cluster access"
    )]
    pub as_uid: Option<String>,
}

/// kubectl's `--request-timeout`: a bare number is seconds; `0` means no timeout.
pub fn parse_request_timeout(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || {
        format!(
            "invalid duration {s:?}: use a number with a unit such as 30s, 2m or 1h (0 for none)"
        )
    };
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

impl KubeFlags {
    /// `--request-timeout`, or `None` when it is 0.
    pub fn timeout(&self) -> Option<Duration> {
        (!self.request_timeout.is_zero()).then_some(self.request_timeout)
    }
}

/// A connected client and what it points at.
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    /// The same client without kube-client's default retry of 429/503/504 (up to 15 times,
    /// backing off from 5 ms): for the API server's service proxy, where 503 means "no
    /// endpoints", an answer to report at once rather than retry until status' timeout.
    pub proxy_client: kube::Client,
    pub target: Target,
    /// The kubeconfig context in use; `None` in-cluster.
    pub context: Option<String>,
    /// The namespace of the stack (`-n`, else `automon`).
    pub namespace: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("server", &self.target.server)
            .field("context", &self.context)
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl Cluster {
    /// Builds the client from the flags, as kubectl would. Makes no request.
    pub async fn connect(flags: &KubeFlags) -> Result<Cluster, ClusterError> {
        let Loaded {
            mut config,
            context,
            user,
            kubeconfig_proxy,
        } = load_config(flags).await?;
        if let Some(t) = flags.timeout() {
            config.connect_timeout = Some(t);
            config.read_timeout = Some(t);
            config.write_timeout = Some(t);
            config.reset_reader_on_write = true;
        }
        // Audit logs and API priority-and-fairness see who is calling.
        config.headers.push((
            http::header::USER_AGENT,
            http::HeaderValue::from_static(concat!("kubectl-automon/v", env!("CARGO_PKG_VERSION"))),
        ));
        if let Some(u) = &flags.as_user {
            config.auth_info.impersonate = Some(u.clone());
        }
        if !flags.as_group.is_empty() {
            config.auth_info.impersonate_groups = Some(flags.as_group.clone());
        }
        if let Some(uid) = &flags.as_uid {
            config.auth_info.impersonate_uid = Some(uid.clone());
        }
        // kube-client reads HTTPS_PROXY itself but matches NO_PROXY against the proxy's own
        // URL and proxies loopback servers; decide here instead, as kubectl does: the
        // kubeconfig's proxy-url, else the environment for this server.
        let proxy = kubeconfig_proxy
            .or_else(|| ProxyEnv::from_process_env().proxy_for(&config.cluster_url));
        config.proxy_url =
            match proxy {
                Some(p) => Some(p.parse().map_err(|e| {
                    ClusterError::InvalidKubeconfig(format!("proxy URL {p:?}: {e}"))
                })?),
                None => None,
            };
        let target = Target {
            server: server_display(&config.cluster_url),
            user: flags.as_user.clone().unwrap_or(user),
            timeout: flags.timeout(),
        };
        let mut no_retry = config.clone();
        no_retry.default_retry = false;
        let proxy_client = kube::Client::try_from(no_retry).map_err(|e| target.classify(e))?;
        let client = kube::Client::try_from(config).map_err(|e| target.classify(e))?;
        Ok(Cluster {
            client,
            proxy_client,
            target,
            context,
            namespace: flags
                .namespace
                .clone()
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string()),
        })
    }

    /// The server's `/version`, the first request most commands make.
    pub async fn server_version(
        &self,
    ) -> Result<k8s_openapi::apimachinery::pkg::version::Info, ClusterError> {
        self.client
            .apiserver_version()
            .await
            .map_err(|e| self.target.classify(e))
    }
}

fn server_display(uri: &http::Uri) -> String {
    uri.to_string().trim_end_matches('/').to_string()
}

/// The kubeconfig files kubectl would read, in precedence order, and whether they are explicit
/// (an explicit file must exist; files in KUBECONFIG that do not exist are skipped, as kubectl does).
fn kubeconfig_paths(flags: &KubeFlags) -> (Vec<PathBuf>, bool) {
    if let Some(p) = &flags.kubeconfig {
        return (vec![p.clone()], true);
    }
    if let Some(v) = std::env::var_os("KUBECONFIG") {
        let paths: Vec<_> = std::env::split_paths(&v)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        if !paths.is_empty() {
            return (paths, false);
        }
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    (
        home.map(|h| vec![h.join(".kube").join("config")])
            .unwrap_or_default(),
        false,
    )
}

/// What the kubeconfig (or the pod) gave us.
struct Loaded {
    config: kube::Config,
    context: Option<String>,
    /// The kubeconfig user's name, for messages.
    user: String,
    /// The selected cluster's `proxy-url`, if any.
    kubeconfig_proxy: Option<String>,
}

async fn load_config(flags: &KubeFlags) -> Result<Loaded, ClusterError> {
    let (paths, explicit) = kubeconfig_paths(flags);
    let mut merged: Option<Kubeconfig> = None;
    let mut read = Vec::new();
    for path in &paths {
        if !explicit && !path.exists() {
            continue;
        }
        let kc = Kubeconfig::read_from(path).map_err(|e| ClusterError::ReadKubeconfig {
            path: path.display().to_string(),
            reason: crate::error::chain(&e),
        })?;
        read.push(path.display().to_string());
        merged = Some(match merged {
            None => kc,
            Some(m) => m
                .merge(kc)
                .map_err(|e| ClusterError::InvalidKubeconfig(e.to_string()))?,
        });
    }
    let Some(kubeconfig) = merged else {
        return in_cluster(flags, &paths);
    };
    let sources = read.join(", ");
    let context_name = match &flags.context {
        Some(c) => c.clone(),
        None => kubeconfig
            .current_context
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| ClusterError::NoCurrentContext {
                available: names(kubeconfig.contexts.iter().map(|c| &c.name)),
                sources: sources.clone(),
            })?,
    };
    let not_found = |what, name: &str, available| ClusterError::NotInKubeconfig {
        what,
        name: name.to_string(),
        available,
        sources: sources.clone(),
    };
    let context = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .ok_or_else(|| {
            not_found(
                "context",
                &context_name,
                names(kubeconfig.contexts.iter().map(|c| &c.name)),
            )
        })?;
    let ctx = context.context.as_ref();
    let cluster_name = flags
        .cluster
        .clone()
        .or_else(|| ctx.map(|c| c.cluster.clone()))
        .unwrap_or_default();
    let Some(cluster) = kubeconfig.clusters.iter().find(|c| c.name == cluster_name) else {
        return Err(not_found(
            "cluster",
            &cluster_name,
            names(kubeconfig.clusters.iter().map(|c| &c.name)),
        ));
    };
    let kubeconfig_proxy = cluster
        .cluster
        .as_ref()
        .and_then(|c| c.proxy_url.clone())
        .filter(|p| !p.is_empty());
    let user_name = flags
        .user
        .clone()
        .or_else(|| ctx.and_then(|c| c.user.clone()))
        .unwrap_or_default();
    if !user_name.is_empty() && !kubeconfig.auth_infos.iter().any(|u| u.name == user_name) {
        return Err(not_found(
            "user",
            &user_name,
            names(kubeconfig.auth_infos.iter().map(|u| &u.name)),
        ));
    }
    let options = KubeConfigOptions {
        context: Some(context_name.clone()),
        cluster: flags.cluster.clone(),
        user: flags.user.clone(),
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| ClusterError::InvalidKubeconfig(crate::error::chain(&e)))?;
    Ok(Loaded {
        config,
        context: Some(context_name),
        user: user_name,
        kubeconfig_proxy,
    })
}

/// Inside a pod with no kubeconfig: the service account, as kubectl does.
fn in_cluster(flags: &KubeFlags, looked_at: &[PathBuf]) -> Result<Loaded, ClusterError> {
    let no_kubeconfig = || ClusterError::NoKubeconfig {
        looked_at: if looked_at.is_empty() {
            "nothing: HOME is not set".into()
        } else {
            looked_at
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        },
    };
    if flags.context.is_some() || std::env::var_os("KUBERNETES_SERVICE_HOST").is_none() {
        return Err(no_kubeconfig());
    }
    let config = kube::Config::incluster().map_err(|e| {
        ClusterError::InvalidKubeconfig(format!(
            "in-cluster configuration: {}",
            crate::error::chain(&e)
        ))
    })?;
    Ok(Loaded {
        config,
        context: None,
        user: service_account_user(),
        kubeconfig_proxy: None,
    })
}

fn service_account_user() -> String {
    let ns = std::fs::read_to_string(Path::new(
        "/var/run/secrets/kubernetes.io/serviceaccount/namespace",
    ))
    .unwrap_or_default();
    format!("system:serviceaccount:{}:<pod service account>", ns.trim())
}

fn names<'a>(it: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut v: Vec<String> = it.cloned().collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_timeout_parses_like_kubectl() {
        let cases = [
            ("0", Duration::ZERO),
            ("5", Duration::from_secs(5)),
            ("5s", Duration::from_secs(5)),
            ("1m", Duration::from_secs(60)),
            ("1h", Duration::from_secs(3600)),
            ("250ms", Duration::from_millis(250)),
            ("1.5s", Duration::from_millis(1500)),
        ];
        for (input, want) in cases {
            assert_eq!(parse_request_timeout(input), Ok(want), "{input}");
        }
        for bad in ["", "abc", "5x", "-1s"] {
            assert!(parse_request_timeout(bad).is_err(), "{bad}");
        }
    }
}
