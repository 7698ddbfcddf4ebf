//! The one way every command reaches the cluster: the kubectl flags, the kubeconfig files they
//! select (merged as kubectl merges them), in-cluster config as the last resort, and a client
//! whose failures are classified by `error::Target`.

pub mod apply;
pub mod blocker;
pub mod contexts;
pub mod crds;
pub mod credentials;
pub mod error;
pub mod inventory;
mod proxy;
pub mod revision;
pub mod schema;
pub mod service_proxy;
pub mod watch;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use kube::{
    Api,
    api::ListParams,
    config::{KubeConfigOptions, Kubeconfig},
};

use crate::{
    cluster::{
        error::{ClusterError, Target},
        proxy::ProxyEnv,
    },
    model::names::DEFAULT_NAMESPACE,
};

/// How many objects one page of a list holds.
const PAGE: u32 = 500;

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
    /// How long to wait for each answer from the API server, for the kubeconfig's credential plugin, and for status' questions to Prometheus (e.g. 10s, 1m) [default: 30s to connect and 295s for an answer, 30s for a credential plugin (5m when it may prompt on a terminal), 5s for Prometheus]
    #[arg(long, global = true, value_name = "DURATION", default_value = "0", hide_default_value = true, value_parser = parse_request_timeout, help_heading = "Cluster access")]
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

/// Without `--request-timeout`: how long to wait to connect to the API server (kube-client's own).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Without `--request-timeout`: how long to wait for the next bytes of an answer. Longer than a
/// watch's 290s (kube-runtime's `timeoutSeconds`): a quiet watch is no silent server.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(295);
/// Without `--request-timeout`: how long a credential plugin may take to print a token.
pub const DEFAULT_CREDENTIAL_TIMEOUT: Duration = Duration::from_secs(30);
/// The same when the plugin may ask the user something on a terminal (a login, a second factor).
pub const DEFAULT_INTERACTIVE_CREDENTIAL_TIMEOUT: Duration = Duration::from_secs(300);

impl KubeFlags {
    /// `--request-timeout`, or `None` when it is 0.
    pub fn timeout(&self) -> Option<Duration> {
        (!self.request_timeout.is_zero()).then_some(self.request_timeout)
    }
}

/// A kubeconfig user's credential plugin (`exec`, or an `auth-provider` that runs a command):
/// kube-client runs it while it builds the client, synchronously and with no deadline of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialPlugin {
    /// The command as the kubeconfig writes it (`aws`, `gke-gcloud-auth-plugin`).
    pub command: String,
    /// Where it is written: `users[0].user.exec in /home/me/.kube/config`.
    pub at: String,
    /// Whether it may ask the user something (its interactiveMode is not `Never`).
    pub interactive: bool,
}

impl CredentialPlugin {
    /// How long it may take (pure): `--request-timeout`, else 30s, or 5m when it may prompt on
    /// a terminal.
    pub fn deadline(&self, flag: Option<Duration>, terminal: bool) -> Duration {
        match flag {
            Some(t) => t,
            None if self.interactive && terminal => DEFAULT_INTERACTIVE_CREDENTIAL_TIMEOUT,
            None => DEFAULT_CREDENTIAL_TIMEOUT,
        }
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
            plugin,
        } = load_config(flags).await?;
        // Every request has a deadline; kube-client's default waits for an answer for ever.
        let (connect, read) = match flags.timeout() {
            Some(t) => (t, t),
            None => (DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT),
        };
        config.connect_timeout = Some(connect);
        config.read_timeout = Some(read);
        config.write_timeout = Some(read);
        config.reset_reader_on_write = true;
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
        let (client, proxy_client) = match plugin {
            None => build_clients(config).map_err(|e| target.classify(e))?,
            Some(plugin) => {
                use std::io::IsTerminal as _;
                let deadline = plugin.deadline(flags.timeout(), std::io::stdin().is_terminal());
                build_clients_within(config, &plugin, deadline)
                    .await?
                    .map_err(|e| target.classify(e))?
            }
        };
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

/// The client, and the same without kube-client's retries (see [`Cluster::proxy_client`]).
fn build_clients(config: kube::Config) -> Result<(kube::Client, kube::Client), kube::Error> {
    let mut no_retry = config.clone();
    no_retry.default_retry = false;
    Ok((
        kube::Client::try_from(config)?,
        kube::Client::try_from(no_retry)?,
    ))
}

/// [`build_clients`] when a credential plugin runs inside it: on a thread of its own, waited
/// for until `deadline`. A plugin that never returns is left behind on that thread (kube-client
/// keeps no handle to kill it by) and the command fails, naming it; a tokio timeout alone would
/// not fire while the plugin blocks the task that waits for it.
async fn build_clients_within(
    config: kube::Config,
    plugin: &CredentialPlugin,
    deadline: Duration,
) -> Result<Result<(kube::Client, kube::Client), kube::Error>, ClusterError> {
    let runtime = tokio::runtime::Handle::current();
    let (tx, rx) = futures::channel::oneshot::channel();
    std::thread::Builder::new()
        .name("credential-plugin".into())
        .spawn(move || {
            // The clients spawn their request buffers on the runtime.
            let _runtime = runtime.enter();
            let _ = tx.send(build_clients(config));
        })
        .map_err(|e| ClusterError::Credentials {
            user: plugin.command.clone(),
            reason: format!("cannot start the credential plugin: {e}"),
        })?;
    match tokio::time::timeout(deadline, rx).await {
        Ok(Ok(built)) => Ok(built),
        Ok(Err(_)) => Err(ClusterError::Credentials {
            user: plugin.command.clone(),
            reason: "the credential plugin ended without an answer".into(),
        }),
        Err(_) => Err(ClusterError::CredentialPluginTimeout {
            command: plugin.command.clone(),
            at: plugin.at.clone(),
            timeout: deadline,
        }),
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
    /// The user's credential plugin, if it has one.
    plugin: Option<CredentialPlugin>,
}

/// The kubeconfig files kubectl would read, merged as kubectl merges them; `None` when there
/// is none (in-cluster, or no kubeconfig at all).
struct Merged {
    kubeconfig: Kubeconfig,
    /// The files read, for messages.
    sources: String,
    /// Each file's users, in order: where a user's credential plugin is written.
    users_by_file: Vec<(String, Vec<String>)>,
}

fn read_merged(paths: &[PathBuf], explicit: bool) -> Result<Option<Merged>, ClusterError> {
    let mut merged: Option<Kubeconfig> = None;
    let mut read = Vec::new();
    let mut users_by_file: Vec<(String, Vec<String>)> = Vec::new();
    for path in paths {
        if !explicit && !path.exists() {
            continue;
        }
        let kc = Kubeconfig::read_from(path).map_err(|e| ClusterError::ReadKubeconfig {
            path: path.display().to_string(),
            reason: crate::cluster::error::chain(&e),
        })?;
        read.push(path.display().to_string());
        users_by_file.push((
            path.display().to_string(),
            kc.auth_infos.iter().map(|u| u.name.clone()).collect(),
        ));
        merged = Some(match merged {
            None => kc,
            Some(m) => m
                .merge(kc)
                .map_err(|e| ClusterError::InvalidKubeconfig(e.to_string()))?,
        });
    }
    Ok(merged.map(|kubeconfig| Merged {
        kubeconfig,
        sources: read.join(", "),
        users_by_file,
    }))
}

/// The names of the contexts of the kubeconfig kubectl would read (`--kubeconfig`, else
/// `KUBECONFIG`'s files merged, else ~/.kube/config), sorted as `kubectl config get-contexts`
/// lists them.
pub fn context_names(flags: &KubeFlags) -> Result<Vec<String>, ClusterError> {
    let (paths, explicit) = kubeconfig_paths(flags);
    let Some(merged) = read_merged(&paths, explicit)? else {
        return Err(ClusterError::NoKubeconfig {
            looked_at: paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    Ok(names(merged.kubeconfig.contexts.iter().map(|c| &c.name)))
}

async fn load_config(flags: &KubeFlags) -> Result<Loaded, ClusterError> {
    let (paths, explicit) = kubeconfig_paths(flags);
    let Some(Merged {
        kubeconfig,
        sources,
        users_by_file,
    }) = read_merged(&paths, explicit)?
    else {
        return in_cluster(flags, &paths);
    };
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
    let plugin = kubeconfig
        .auth_infos
        .iter()
        .find(|u| u.name == user_name)
        .and_then(|u| u.auth_info.as_ref())
        .and_then(|info| credential_plugin(info, &user_name, &users_by_file));
    let options = KubeConfigOptions {
        context: Some(context_name.clone()),
        cluster: flags.cluster.clone(),
        user: flags.user.clone(),
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| ClusterError::InvalidKubeconfig(crate::cluster::error::chain(&e)))?;
    Ok(Loaded {
        config,
        context: Some(context_name),
        user: user_name,
        kubeconfig_proxy,
        plugin,
    })
}

/// The command a kubeconfig user runs for its credentials, and where it is written (pure):
/// the first file that names the user, as kubectl merges them.
fn credential_plugin(
    info: &kube::config::AuthInfo,
    user: &str,
    users_by_file: &[(String, Vec<String>)],
) -> Option<CredentialPlugin> {
    let (command, field, interactive) = match (&info.exec, &info.auth_provider) {
        (Some(exec), _) => (
            exec.command.clone()?,
            "exec",
            exec.interactive_mode != Some(kube::config::ExecInteractiveMode::Never),
        ),
        // gcp's and oidc's providers run a command or refresh over the network inside the build.
        (None, Some(provider)) => (
            provider
                .config
                .get("cmd-path")
                .cloned()
                .unwrap_or_else(|| provider.name.clone()),
            "auth-provider",
            false,
        ),
        (None, None) => return None,
    };
    let at = users_by_file
        .iter()
        .find_map(|(path, users)| {
            let i = users.iter().position(|u| u == user)?;
            Some(format!("users[{i}].user.{field} in {path}"))
        })
        .unwrap_or_else(|| format!("user {user:?}, {field}"));
    Some(CredentialPlugin {
        command,
        at,
        interactive,
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
            crate::cluster::error::chain(&e)
        ))
    })?;
    Ok(Loaded {
        config,
        context: None,
        user: service_account_user(),
        kubeconfig_proxy: None,
        plugin: None,
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

/// Every object of a known type (in `namespace`, or all namespaces when `None`), metadata only;
/// a type the server does not serve (its CRD is gone) has none.
pub async fn list_known_metadata(
    client: &kube::Client,
    known: &crate::model::resources::Known,
    namespace: Option<&str>,
) -> kube::Result<Vec<crate::model::Object>> {
    match known
        .api(client, namespace)
        .list_metadata(&ListParams::default())
        .await
    {
        Ok(list) => Ok(list
            .items
            .into_iter()
            .map(|m| known.with_metadata(m.metadata))
            .collect()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The items of a list, read a page at a time (500 objects, as kubectl and kube-runtime's
/// watcher do): at 5,000 nodes one unpaged list is a single response of tens of megabytes held
/// whole while it is parsed; pages keep the peak to two pages' text. Custom resources are
/// listed this way too: until the API server's watch cache of a type is filled (the first
/// request after its CRD was created starts it) an unpaged list is answered 429 "storage is
/// (re)initializing", which kube-client retries after the 1 s it is told to wait; a paged
/// one is read from etcd at once.
///
/// The pages of one list cannot be asked at once (each names the `continue` token of the one
/// before), but a page need not wait for the one before it to be parsed: the token is read off
/// the head of the text as it arrives ([`continue_of`]) and the next page is asked while the
/// last is parsed on a blocking thread, so the API server's encoding of one page and our
/// parsing of the one before run side by side. The token the parsed page holds is the one
/// that counts: when the head did not give it (a server that writes `items` first), the next
/// page is asked after the parse; when the two differ, the early page is dropped.
pub async fn list_paged<K>(api: &Api<K>, params: &ListParams) -> kube::Result<Vec<K>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let params = params.clone().limit(PAGE);
    let client = api.clone().into_client();
    let request = kube::core::Request::new(api.resource_url());
    let fetch = |token: Option<&str>| {
        let built = page_request(&request, &params, token, "application/json", None);
        let client = client.clone();
        async move { client.request_text(built?).await }
    };
    let mut items = Vec::new();
    let mut text = fetch(None).await?;
    loop {
        let early = continue_of(&text);
        let parse = tokio::task::spawn_blocking(move || {
            serde_json::from_str::<kube::core::ObjectList<K>>(&text)
        });
        let (parsed, next) = match &early {
            Some(token) => {
                let (parsed, next) = tokio::join!(parse, fetch(Some(token)));
                (parsed, Some(next))
            }
            None => (parse.await, None),
        };
        let page = match parsed {
            Ok(page) => page.map_err(kube::Error::SerdeError)?,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        items.extend(page.items);
        let token = page.metadata.continue_.filter(|c| !c.is_empty());
        text = match (token, early, next) {
            (None, _, _) => return Ok(items),
            (Some(token), Some(early), Some(next)) if token == early => next?,
            (Some(token), _, _) => fetch(Some(&token)).await?,
        };
    }
}

/// Every node (those `params` select), read as protobuf ([`crate::model::slim_pb`]) a page at
/// a time: at 5,000 nodes the API server encodes them in 0.38 s instead of 0.62 s as JSON, and
/// they decode here in a fraction of the JSON's parse. Read as JSON ([`list_paged`]) instead
/// when the answer is not a protobuf list (a proxy in between that speaks JSON only) or is an
/// error status (so that it is reported in the server's words, as every other list's is); a
/// connection that fails or times out is not asked twice.
pub async fn list_nodes(
    client: &kube::Client,
    params: &ListParams,
) -> kube::Result<Vec<crate::model::slim::SlimNode>> {
    let api = Api::<crate::model::slim::SlimNode>::all(client.clone());
    match nodes_as_protobuf(client, &api, params).await? {
        Some(nodes) => Ok(nodes),
        None => list_paged(&api, params).await,
    }
}

/// [`list_nodes`] as protobuf; `None` when the answer calls for the JSON list.
async fn nodes_as_protobuf(
    client: &kube::Client,
    api: &Api<crate::model::slim::SlimNode>,
    params: &ListParams,
) -> kube::Result<Option<Vec<crate::model::slim::SlimNode>>> {
    use futures::AsyncReadExt;
    let params = params.clone().limit(PAGE);
    let request = kube::core::Request::new(api.resource_url());
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let accept = crate::model::slim_pb::CONTENT_TYPE;
        let req = page_request(&request, &params, token.as_deref(), accept, None)?;
        let mut body = match client.request_stream(req).await {
            Ok(body) => body,
            Err(kube::Error::Api(_) | kube::Error::FromUtf8(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut bytes = Vec::new();
        body.read_to_end(&mut bytes)
            .await
            .map_err(|e| kube::Error::Service(e.into()))?;
        let Ok(page) = crate::model::slim_pb::decode_node_list(&bytes) else {
            return Ok(None);
        };
        items.extend(page.items);
        token = page.continue_;
        if token.is_none() {
            return Ok(Some(items));
        }
    }
}

/// Rows of a list read as the API server's Table (`kubectl get`'s columns), a page of
/// [`TABLE_PAGE`] at a time.
const TABLE_PAGE: u32 = 2000;

/// A list as `kubectl get` shows it: the columns the API server prints for the type, and a row
/// of cells per object, without the objects (`includeObject=None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
}

impl Table {
    /// The cell of `row` under the column `name`, as text (numbers printed).
    pub fn cell(&self, row: &[serde_json::Value], name: &str) -> Option<String> {
        let at = self.columns.iter().position(|c| c == name)?;
        match row.get(at)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            v => Some(v.to_string()),
        }
    }
}

/// The items of a list as the API server's Table (`Accept: application/json;as=Table`): the
/// server prints the rows and sends none of the objects, so a list it would take a second to
/// encode as JSON (5,000 pods: 40 MB) comes as a few hundred kilobytes. Paged like
/// [`list_paged`], in larger pages: a row is small on both sides. `None` when the answer is not
/// a Table (a proxy in between that does not convert, answering the plain list or 406), for
/// the caller to list the objects instead: an empty table would read as no objects at all.
pub async fn list_table<K>(api: &Api<K>, params: &ListParams) -> kube::Result<Option<Table>>
where
    K: kube::Resource + Clone,
{
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Page {
        #[serde(default)]
        kind: String,
        #[serde(default)]
        column_definitions: Vec<Column>,
        #[serde(default)]
        rows: Vec<Row>,
        #[serde(default)]
        metadata: kube::core::ListMeta,
    }
    #[derive(serde::Deserialize)]
    struct Column {
        name: String,
    }
    #[derive(serde::Deserialize)]
    struct Row {
        cells: Vec<serde_json::Value>,
    }
    let params = params.clone().limit(TABLE_PAGE);
    let client = api.clone().into_client();
    let request = kube::core::Request::new(api.resource_url());
    let mut table = Table::default();
    let mut token: Option<String> = None;
    loop {
        // As kubectl asks: the Table, else the plain list (told apart by its kind).
        let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
        let none = Some("includeObject=None");
        let req = page_request(&request, &params, token.as_deref(), accept, none)?;
        let page: Page = match client.request(req).await {
            Ok(page) => page,
            Err(kube::Error::Api(s)) if s.code == 406 => return Ok(None),
            Err(e) => return Err(e),
        };
        if page.kind != "Table" {
            return Ok(None);
        }
        if table.columns.is_empty() {
            table.columns = page
                .column_definitions
                .into_iter()
                .map(|c| c.name)
                .collect();
        }
        table.rows.extend(page.rows.into_iter().map(|r| r.cells));
        token = page.metadata.continue_.filter(|c| !c.is_empty());
        if token.is_none() {
            return Ok(Some(table));
        }
    }
}

/// The request for a page of a list (after the page whose `continue` token is `token`), its
/// answer asked as `accept`, with `query` added to the list's parameters.
fn page_request(
    request: &kube::core::Request,
    params: &ListParams,
    token: Option<&str>,
    accept: &'static str,
    query: Option<&str>,
) -> kube::Result<http::Request<Vec<u8>>> {
    let params = match token {
        Some(t) => params.clone().continue_token(t),
        None => params.clone(),
    };
    let mut req = request.list(&params).map_err(kube::Error::BuildRequest)?;
    if let Some(query) = query {
        let uri = format!("{}&{query}", req.uri());
        *req.uri_mut() = uri.parse().map_err(|e: http::uri::InvalidUri| {
            kube::Error::BuildRequest(kube::core::request::Error::BuildRequest(e.into()))
        })?;
    }
    req.headers_mut()
        .insert(http::header::ACCEPT, http::HeaderValue::from_static(accept));
    req.extensions_mut().insert("list");
    Ok(req)
}

/// The `continue` token in the head of a list's JSON text, before its `items`, where the API
/// server writes its `metadata`; `None` when the head has none (pure). A hint only: the page's
/// parsed metadata decides.
fn continue_of(text: &str) -> Option<String> {
    const KEY: &str = "\"continue\":\"";
    let mut end = text.find("\"items\":").unwrap_or(text.len()).min(4096);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let head = &text[..end];
    let at = head.find(KEY)? + KEY.len();
    let token = &head[at..at + head[at..].find('"')?];
    (!token.is_empty() && !token.contains('\\')).then(|| token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_continue_token_is_read_off_the_head_of_a_list() {
        let page = r#"{"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"9","continue":"eyJ2IjoxfQ","remainingItemCount":4500},"items":[{"metadata":{"name":"a","annotations":{"x":"\"continue\":\"no\""}}}]}"#;
        assert_eq!(continue_of(page).as_deref(), Some("eyJ2IjoxfQ"));
        let last = r#"{"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"9"},"items":[{"metadata":{"annotations":{"k":"\"continue\":\"no\""}}}]}"#;
        assert_eq!(continue_of(last), None);
        let empty = r#"{"metadata":{"continue":""},"items":[]}"#;
        assert_eq!(continue_of(empty), None);
        // items first: no hint, the parsed page decides
        let items_first = r#"{"items":[],"metadata":{"continue":"abc"}}"#;
        assert_eq!(continue_of(items_first), None);
    }

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

    #[test]
    fn a_credential_plugin_is_named_where_the_kubeconfig_writes_it() {
        let info = |yaml: &str| -> kube::config::AuthInfo { serde_yaml_ok(yaml) };
        let files = vec![
            ("/a".to_string(), vec!["other".to_string()]),
            ("/b".to_string(), vec!["x".to_string(), "eks".to_string()]),
            ("/c".to_string(), vec!["eks".to_string()]),
        ];
        let eks = credential_plugin(
            &info("exec: {apiVersion: client.authentication.k8s.io/v1, command: aws, args: [eks, get-token]}"),
            "eks",
            &files,
        )
        .unwrap();
        assert_eq!(
            eks,
            CredentialPlugin {
                command: "aws".into(),
                at: "users[1].user.exec in /b".into(),
                interactive: true,
            }
        );
        let never = credential_plugin(
            &info("exec: {command: get-token, interactiveMode: Never}"),
            "other",
            &files,
        )
        .unwrap();
        assert_eq!(never.at, "users[0].user.exec in /a");
        assert!(!never.interactive);
        let gcp = credential_plugin(
            &info("auth-provider: {name: gcp, config: {cmd-path: /usr/bin/gcloud}}"),
            "eks",
            &files,
        )
        .unwrap();
        assert_eq!(gcp.command, "/usr/bin/gcloud");
        assert_eq!(gcp.at, "users[1].user.auth-provider in /b");
        assert_eq!(credential_plugin(&info("token: abc"), "eks", &files), None);
    }

    fn serde_yaml_ok(yaml: &str) -> kube::config::AuthInfo {
        serde_saphyr::from_str(yaml).expect(yaml)
    }

    #[test]
    fn a_credential_plugin_has_a_deadline_the_flag_sets() {
        let plugin = |interactive| CredentialPlugin {
            command: "aws".into(),
            at: "users[0].user.exec in /k".into(),
            interactive,
        };
        let two = Some(Duration::from_secs(2));
        let cases = [
            // (interactive, flag, terminal, deadline)
            (false, None, false, DEFAULT_CREDENTIAL_TIMEOUT),
            (false, None, true, DEFAULT_CREDENTIAL_TIMEOUT),
            (true, None, false, DEFAULT_CREDENTIAL_TIMEOUT),
            (true, None, true, DEFAULT_INTERACTIVE_CREDENTIAL_TIMEOUT),
            (true, two, true, Duration::from_secs(2)),
            (false, two, false, Duration::from_secs(2)),
        ];
        for (interactive, flag, terminal, want) in cases {
            assert_eq!(
                plugin(interactive).deadline(flag, terminal),
                want,
                "{interactive} {flag:?} {terminal}"
            );
        }
    }
}
