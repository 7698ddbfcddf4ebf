//! `open`: Grafana, Prometheus or Alertmanager on a local port, through the API server as
//! `kubectl port-forward svc/NAME` does: the Service's first port on a ready pod behind it, one
//! port-forward per local connection, following the pod to its replacement when it goes away.

use std::{
    collections::{BTreeMap, BTreeSet},
    future::Future,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use anyhow::Context as _;
use futures::{FutureExt, future::FusedFuture};
use k8s_openapi::{
    api::core::v1::{Pod, Secret, Service},
    apimachinery::pkg::util::intstr::IntOrString,
};
use kube::{Api, api::ListParams, client::UpgradeConnectionError};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{Mutex, mpsc},
};

use crate::cluster::error::OpenError;
use crate::{
    cluster::{
        Cluster, KubeFlags,
        error::{ClusterError, Forbidden, Target},
        inventory,
        service_proxy::route_prefix_of,
    },
    exit::Verdict,
    output,
    preflight::{self, Permission},
    render::{alertmanager, grafana, prometheus},
    status::nodes::pod_state,
};

/// The subresource a port-forward creates, as RBAC names it.
const PORTFORWARD: &str = "pods/portforward";
/// The user `enable` writes into Grafana's admin Secret, and Grafana's own default.
const DEFAULT_ADMIN_USER: &str = "admin";

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Connections go through the API server (create pods/portforward, as kubectl port-forward) to a
ready pod behind the component's Service; when that pod goes away, the next connection goes to
its replacement.

`query` is Thanos Query, every shard's series at once, on a stack with more than one
Prometheus shard.

Exit status: 0 after Ctrl-C or SIGTERM; 8 when the component's Service is missing or no pod
behind it is ready; 9 when automon is not installed in the namespace; 2 for `query` on a stack
of one shard; 1 when the local port cannot be used; 6 when port-forwarding is forbidden
(checked before anything is printed) or refused later; 3-5 as for every command.")]
pub struct Args {
    /// The UI to open
    #[arg(value_enum)]
    component: Component,
    /// Local address to listen on: an IP address, or localhost
    #[arg(long, default_value = "127.0.0.1", value_name = "IP", value_parser = parse_address)]
    address: IpAddr,
    /// Local port to listen on; 0 lets the system choose a free one
    #[arg(long, default_value_t = 0, value_name = "PORT", value_parser = super::args::port_number)]
    port: u16,
    /// Also open the URL in the default browser
    #[arg(long)]
    browser: bool,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    Grafana,
    Prometheus,
    Alertmanager,
    // Thanos Query: every shard's series at once (a stack with more than one shard).
    Query,
}

impl Component {
    /// The Service in front of the component, as render names it.
    fn service(self) -> &'static str {
        match self {
            Component::Grafana => grafana::NAME,
            Component::Prometheus => prometheus::SERVICE,
            Component::Alertmanager => alertmanager::NAME,
            Component::Query => prometheus::query::NAME,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Component::Grafana => "Grafana",
            Component::Prometheus => "Prometheus",
            Component::Alertmanager => "Alertmanager",
            Component::Query => "Thanos Query",
        }
    }
}

impl OpenError {
    /// Errors no later connection can get past: they end `open` instead of one connection.
    fn is_fatal(&self) -> bool {
        matches!(
            self,
            OpenError::RefusedBehindApiServer { .. }
                | OpenError::Cluster(
                    ClusterError::Forbidden(_)
                        | ClusterError::Unauthorized { .. }
                        | ClusterError::Credentials { .. }
                )
        )
    }
}

/// Where a connection goes: a pod and the port in it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Backend {
    pod: String,
    port: u16,
}

pub async fn run(flags: &KubeFlags, args: Args) -> anyhow::Result<Verdict> {
    let cluster = Cluster::connect(flags).await?;
    let ns = cluster.namespace.clone();
    // Everything that can fail is checked before the first line is printed.
    ensure_installed(&cluster).await?;
    ensure_may_portforward(&cluster).await?;
    let backend = find_backend(&cluster, args.component).await?;
    let listener = listen(SocketAddr::new(args.address, args.port)).await?;
    let stop = stop_signals().context("cannot catch Ctrl-C and SIGTERM")?;
    // Prometheus and Alertmanager exposed under a path serve under it only (their
    // `routePrefix`); Grafana serves at the root as well.
    let prefix = match args.component {
        Component::Grafana | Component::Query => String::new(),
        Component::Prometheus => {
            route_prefix_of(
                &cluster,
                "Prometheus.monitoring.coreos.com",
                &ns,
                prometheus::INSTANCE,
            )
            .await
        }
        Component::Alertmanager => {
            route_prefix_of(
                &cluster,
                "Alertmanager.monitoring.coreos.com",
                &ns,
                alertmanager::INSTANCE,
            )
            .await
        }
    };
    let url = format!("{}{prefix}", url_for(listener.local_addr()?));
    let login = match args.component {
        Component::Grafana => Some(grafana_user(&cluster).await),
        _ => None,
    };
    let hint = login
        .as_ref()
        .map(|user| (user.as_str(), password_hint(&ns, flags)));
    output::print(&banner(args.component, &url, &ns, &backend, hint))?;
    if args.browser {
        open_browser(&url);
    }
    let forwarding = Arc::new(Forwarding {
        pods: Api::namespaced(cluster.client.clone(), &ns),
        cluster,
        component: args.component,
        current: Mutex::new(backend),
    });
    serve(listener, forwarding, stop).await?;
    Ok(Verdict::Done)
}

// ---- Checks before anything is printed (I/O) ----

async fn ensure_installed(cluster: &Cluster) -> Result<(), OpenError> {
    let ns = &cluster.namespace;
    match inventory::parent_configmap(&cluster.client, ns).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(OpenError::NotInstalled {
            namespace: ns.clone(),
        }),
        Err(e) => Err(cluster.target.classify(e).into()),
    }
}

/// A SelfSubjectAccessReview for `create pods/portforward`, so that a user without it hears so
/// before a URL is printed that would only ever close connections.
async fn ensure_may_portforward(cluster: &Cluster) -> Result<(), OpenError> {
    let ns = &cluster.namespace;
    let wanted = Permission::new("create", "", PORTFORWARD, Some(ns));
    let denied = preflight::denied(cluster, BTreeSet::from([wanted.clone()])).await?;
    if denied.is_empty() {
        return Ok(());
    }
    let message = format!("SelfSubjectAccessReview denied {wanted}");
    let forbidden = portforward_forbidden(&cluster.target.user, ns, message);
    Err(ClusterError::Forbidden(Box::new(forbidden)).into())
}

/// The pod and port `kubectl port-forward svc/NAME` would choose: the Service's first port, on
/// the first ready pod (by name) its selector matches.
async fn find_backend(cluster: &Cluster, component: Component) -> Result<Backend, OpenError> {
    let ns = &cluster.namespace;
    let service_name = component.service();
    let classify = |e| OpenError::Cluster(cluster.target.classify(e));
    let services: Api<Service> = Api::namespaced(cluster.client.clone(), ns);
    let service = services
        .get_opt(service_name)
        .await
        .map_err(classify)?
        .ok_or_else(|| match component {
            Component::Query => OpenError::NoQuery {
                namespace: ns.clone(),
            },
            _ => OpenError::NoService {
                namespace: ns.clone(),
                service: service_name,
            },
        })?;
    let (selector, target_port) =
        service_target(&service).map_err(|problem| OpenError::BadService {
            namespace: ns.clone(),
            service: service_name,
            problem,
        })?;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), ns);
    let listed = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(classify)?
        .items;
    let Some(pod) = pick_ready_pod(&listed) else {
        return Err(OpenError::NoReadyPod {
            component: service_name,
            namespace: ns.clone(),
            pods: describe_pods(&listed, &selector),
        });
    };
    let name = pod.metadata.name.clone().unwrap_or_default();
    let port = container_port(pod, &target_port).map_err(|problem| OpenError::BadPod {
        namespace: ns.clone(),
        pod: name.clone(),
        problem,
    })?;
    Ok(Backend { pod: name, port })
}

async fn listen(addr: SocketAddr) -> Result<TcpListener, OpenError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AddrInUse => OpenError::PortInUse { addr },
            _ => OpenError::Listen { addr, source },
        })
}

/// Grafana's admin user from its Secret when readable, else the default. Only the user: the
/// password is left to the command `banner` prints, so that it never lands in a terminal log.
async fn grafana_user(cluster: &Cluster) -> String {
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    secrets
        .get_opt(grafana::ADMIN_SECRET)
        .await
        .ok()
        .flatten()
        .and_then(|s| admin_user(&s))
        .unwrap_or_else(|| DEFAULT_ADMIN_USER.to_string())
}

/// Ctrl-C and SIGTERM, registered before the URL is printed: a signal sent as soon as the URL
/// is read must end `open` cleanly (exit 0), not by the default handler.
#[cfg(unix)]
fn stop_signals() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

#[cfg(not(unix))]
fn stop_signals() -> std::io::Result<impl Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// Starts the platform's opener; a missing opener or one that fails is said on stderr and
/// forwarding goes on. Waited for on a plain thread, which does not hold up the exit.
fn open_browser(url: &str) {
    let (program, args): (&str, Vec<&str>) = if cfg!(target_os = "macos") {
        ("open", vec![url])
    } else if cfg!(windows) {
        // `start`'s first quoted argument is a window title.
        ("cmd", vec!["/C", "start", "", url])
    } else {
        ("xdg-open", vec![url])
    };
    let spawned = std::process::Command::new(program)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let say = |why: String| {
        crate::output::diag!("cannot open a browser ({program}: {why}); open {url} yourself")
    };
    match spawned {
        Err(e) => say(e.to_string()),
        Ok(mut child) => {
            let url = url.to_string();
            std::thread::spawn(move || match child.wait() {
                Ok(status) if !status.success() => {
                    crate::output::diag!(
                        "cannot open a browser ({program}: {status}); open {url} yourself"
                    )
                }
                Ok(_) => {}
                Err(e) => crate::output::diag!(
                    "cannot open a browser ({program}: {e}); open {url} yourself"
                ),
            });
        }
    }
}

// ---- Forwarding (I/O) ----

/// The running forward: the pod connections go to now, replaced when it goes away.
struct Forwarding {
    cluster: Cluster,
    component: Component,
    pods: Api<Pod>,
    current: Mutex<Backend>,
}

/// Accepts connections until a stop signal or an error no connection can get past.
async fn serve(
    listener: TcpListener,
    forwarding: Arc<Forwarding>,
    stop: impl Future<Output = ()>,
) -> Result<(), OpenError> {
    let (fatal_tx, mut fatal_rx) = mpsc::channel(1);
    let mut stop = std::pin::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return Ok(()),
            Some(e) = fatal_rx.recv() => return Err(e),
            accepted = listener.accept() => match accepted {
                Ok((local, _)) => {
                    tokio::spawn(connection(forwarding.clone(), local, fatal_tx.clone()));
                }
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // neither ends `open`; the pause keeps the first from spinning.
                    crate::output::diag!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// One local connection, start to end; its failure closes it, and ends `open` only if fatal.
async fn connection(forwarding: Arc<Forwarding>, local: TcpStream, fatal: mpsc::Sender<OpenError>) {
    let result = match forwarding.backend().await {
        Ok(backend) => forwarding.forward(&backend, local).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {}
        Err(e) if e.is_fatal() => {
            let _ = fatal.try_send(e);
        }
        Err(e) => crate::output::diag!("connection closed: {e}"),
    }
}

impl Forwarding {
    /// The current pod if it is still ready (one GET), else a new pick. The lock makes a burst
    /// of connections (a browser opens several at once) pick once and say so once.
    async fn backend(&self) -> Result<Backend, OpenError> {
        let seen = self.current.lock().await.clone();
        let now = self
            .pods
            .get_opt(&seen.pod)
            .await
            .map_err(|e| self.cluster.target.classify(e))?;
        if now.as_ref().is_some_and(is_ready) {
            return Ok(seen);
        }
        let mut current = self.current.lock().await;
        if *current != seen {
            return Ok(current.clone());
        }
        let next = find_backend(&self.cluster, self.component).await?;
        if next.pod != seen.pod {
            let ns = &self.cluster.namespace;
            crate::output::diag!(
                "pod {ns}/{} is gone; forwarding to {ns}/{}",
                seen.pod,
                next.pod
            );
        }
        *current = next.clone();
        Ok(next)
    }

    /// Copies one local connection to the pod and back until either side closes.
    async fn forward(&self, to: &Backend, mut local: TcpStream) -> Result<(), OpenError> {
        let ns = &self.cluster.namespace;
        let mut forwarder = self
            .pods
            .portforward(&to.pod, &[to.port])
            .await
            .map_err(|e| portforward_error(&self.cluster.target, ns, &to.pod, e))?;
        let (Some(mut remote), Some(said)) = (
            forwarder.take_stream(to.port),
            forwarder.take_error(to.port),
        ) else {
            unreachable!(
                "a Portforwarder has a stream and an error channel for each port asked for"
            );
        };
        let pod_said = |message: String| OpenError::PodSaid {
            namespace: ns.clone(),
            pod: to.pod.clone(),
            port: to.port,
            message,
        };
        let mut said = std::pin::pin!(said.fuse());
        tokio::select! {
            // A browser that closes a connection mid-transfer is normal: copy errors are not
            // reported; what matters comes on the error channel.
            _ = tokio::io::copy_bidirectional(&mut local, &mut remote) => {}
            Some(message) = &mut said => {
                forwarder.abort();
                return Err(pod_said(message));
            }
        }
        drop(remote);
        // The forwarder's own end (the WebSocket closing) is not the user's concern.
        let _ = forwarder.join().await;
        // The kubelet may say why as the stream closes, after the copy ended.
        match said.is_terminated() {
            false => said.await.map_or(Ok(()), |m| Err(pod_said(m))),
            true => Ok(()),
        }
    }
}

// ---- Pure parts ----

/// The Service's pod selector (`k=v,...`) and its first port's targetPort (the port itself
/// when unset, as Kubernetes defaults it).
fn service_target(service: &Service) -> Result<(String, IntOrString), String> {
    let spec = service.spec.as_ref().ok_or("it has no spec")?;
    let selector = spec
        .selector
        .as_ref()
        .filter(|s| !s.is_empty())
        .ok_or("it has no selector, so no pods are behind it")?;
    let port = spec
        .ports
        .as_ref()
        .and_then(|p| p.first())
        .ok_or("it has no ports")?;
    let target = port
        .target_port
        .clone()
        .unwrap_or(IntOrString::Int(port.port));
    Ok((label_selector(selector), target))
}

fn label_selector(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Running, Ready, and not on its way out: what status calls a pod in state `Running` (one
/// rule for both; a terminating pod can still report Ready).
fn is_ready(pod: &Pod) -> bool {
    state_of(pod) == "Running"
}

/// status' word for a pod's state (open holds full Pods: it reads their container ports).
fn state_of(pod: &Pod) -> String {
    pod_state(&crate::model::slim::SlimPod::from(pod)).0
}

/// The first ready pod by name, so that two runs against the same pods pick the same one.
fn pick_ready_pod(pods: &[Pod]) -> Option<&Pod> {
    pods.iter()
        .filter(|p| is_ready(p))
        .min_by(|a, b| a.metadata.name.cmp(&b.metadata.name))
}

/// `prometheus-automon-0 Pending (0/2 ready), ...`, by name; or that the selector matched none.
fn describe_pods(pods: &[Pod], selector: &str) -> String {
    if pods.is_empty() {
        return format!("no pods match the Service's selector ({selector})");
    }
    let mut described: Vec<(String, String)> = pods
        .iter()
        .map(|p| {
            let name = p.metadata.name.clone().unwrap_or_default();
            let state = state_of(p);
            let (ready, total) = ready_containers(p);
            (
                name.clone(),
                format!("{name} {state} ({ready}/{total} ready)"),
            )
        })
        .collect();
    described.sort();
    described
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Ready containers and all containers, as `kubectl get pods` counts them.
fn ready_containers(pod: &Pod) -> (usize, usize) {
    let total = pod.spec.as_ref().map_or(0, |s| s.containers.len());
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| cs.iter().filter(|c| c.ready).count());
    (ready, total)
}

/// The number a targetPort means on this pod: itself, or the container port of that name.
fn container_port(pod: &Pod, target: &IntOrString) -> Result<u16, String> {
    match target {
        IntOrString::Int(n) => u16::try_from(*n)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("the Service's targetPort {n} is not a port number")),
        IntOrString::String(name) => pod
            .spec
            .iter()
            .flat_map(|s| &s.containers)
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(name))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .ok_or_else(|| {
                format!("no container port is named {name:?} (the Service's targetPort)")
            }),
    }
}

fn admin_user(secret: &Secret) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(grafana::ADMIN_USER_KEY)?;
    let user = String::from_utf8(bytes.0.clone()).ok()?;
    let user = user.trim();
    (!user.is_empty()).then(|| user.to_string())
}

/// `--address localhost` as kubectl accepts it, else an IP address.
fn parse_address(s: &str) -> Result<IpAddr, String> {
    if s.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    s.parse().map_err(|_| {
        format!("{s:?} is not an IP address (e.g. 127.0.0.1, ::1, 0.0.0.0) or localhost")
    })
}

/// The URL a browser on this machine opens: an all-interfaces listener is reached on loopback.
fn url_for(local: SocketAddr) -> String {
    let ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, local.port()))
}

/// The kubectl command that prints Grafana's admin password, aimed where this run was (the
/// same --kubeconfig and --context), so that it reads the same Secret.
fn password_hint(namespace: &str, flags: &KubeFlags) -> String {
    let mut cmd = format!(
        "kubectl get secret {} -n {namespace}",
        grafana::ADMIN_SECRET
    );
    if let Some(path) = &flags.kubeconfig {
        let path = path.display().to_string();
        cmd.push_str(&format!(" --kubeconfig {}", shell_word(&path)));
    }
    if let Some(context) = &flags.context {
        cmd.push_str(&format!(" --context {}", shell_word(context)));
    }
    format!(
        "{cmd} -o jsonpath='{{.data.{}}}' | base64 -d",
        grafana::ADMIN_PASSWORD_KEY
    )
}

/// A word a POSIX shell reads back unchanged.
fn shell_word(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// What `open` prints once it listens, kubectl-style: labels in a column, then the URL.
fn banner(
    component: Component,
    url: &str,
    namespace: &str,
    to: &Backend,
    login: Option<(&str, String)>,
) -> String {
    let mut out = format!(
        "{:<10}  {url}  (forwarding to {namespace}/{}:{}; Ctrl-C stops)\n",
        component.title(),
        to.pod,
        to.port
    );
    if let Some((user, hint)) = login {
        out.push_str(&format!("{:<10}  {user}, password: {hint}\n", "Login"));
    }
    out
}

/// The error for a failed port-forward request. The authorizer's own 403 names what is missing;
/// any other 403 (a body the authorizer did not write, or a failed upgrade) comes after the
/// SelfSubjectAccessReview allowed the request, so it is not the user's permission at fault.
fn portforward_error(target: &Target, namespace: &str, pod: &str, err: kube::Error) -> OpenError {
    let behind = |message: String| OpenError::RefusedBehindApiServer {
        user: target.user.clone(),
        namespace: namespace.to_string(),
        pod: pod.to_string(),
        message,
    };
    if let kube::Error::UpgradeConnection(UpgradeConnectionError::ProtocolSwitch(code)) = &err
        && *code == http::StatusCode::FORBIDDEN
    {
        return behind(err.to_string());
    }
    match target.classify(err) {
        ClusterError::Forbidden(f) if f.verb.is_empty() => behind(f.message),
        other => other.into(),
    }
}

fn portforward_forbidden(user: &str, namespace: &str, message: String) -> Forbidden {
    Forbidden {
        user: user.to_string(),
        verb: "create".into(),
        resource: PORTFORWARD.into(),
        group: String::new(),
        namespace: Some(namespace.to_string()),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use serde_json::json;

    fn pod(name: &str, status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"containers": [
                {"name": "prometheus", "ports": [{"name": "web", "containerPort": 9090}]},
                {"name": "config-reloader", "ports": [{"name": "reloader-web", "containerPort": 8080}]},
            ]},
            "status": status,
        }))
        .unwrap()
    }

    fn running(ready: bool) -> serde_json::Value {
        json!({
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
            "containerStatuses": [
                {"name": "prometheus", "ready": ready, "restartCount": 0, "image": "p", "imageID": ""},
                {"name": "config-reloader", "ready": true, "restartCount": 0, "image": "r", "imageID": ""},
            ],
        })
    }

    fn terminating(mut p: Pod) -> Pod {
        p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        ));
        p
    }

    fn name(p: Option<&Pod>) -> Option<&str> {
        p.and_then(|p| p.metadata.name.as_deref())
    }

    #[test]
    fn the_first_ready_pod_by_name_is_picked() {
        let pending = json!({"phase": "Pending"});
        let cases: Vec<(&str, Vec<Pod>, Option<&str>)> = vec![
            ("none", vec![], None),
            ("only pending", vec![pod("p-0", pending.clone())], None),
            ("not ready", vec![pod("p-0", running(false))], None),
            (
                "sorted by name, not list order",
                vec![pod("p-1", running(true)), pod("p-0", running(true))],
                Some("p-0"),
            ),
            (
                "skips the unready",
                vec![pod("p-0", running(false)), pod("p-1", running(true))],
                Some("p-1"),
            ),
            (
                "skips the terminating, ready or not",
                vec![
                    terminating(pod("p-0", running(true))),
                    pod("p-1", running(true)),
                ],
                Some("p-1"),
            ),
        ];
        for (case, pods, want) in cases {
            assert_eq!(name(pick_ready_pod(&pods)), want, "{case}");
        }
    }

    #[test]
    fn no_ready_pod_names_each_pod_and_its_state() {
        let pods = [
            pod("prometheus-automon-1", running(false)),
            pod("prometheus-automon-0", json!({"phase": "Pending"})),
        ];
        let cases = [
            (
                &pods[1..],
                "prometheus-automon-0 Pending (0/2 ready)".to_string(),
            ),
            (
                &pods[..],
                "prometheus-automon-0 Pending (0/2 ready), prometheus-automon-1 NotReady (1/2 ready)"
                    .to_string(),
            ),
            (
                &pods[..0],
                "no pods match the Service's selector (app=p)".to_string(),
            ),
        ];
        for (pods, want) in cases {
            assert_eq!(describe_pods(pods, "app=p"), want);
        }
        let e = OpenError::NoReadyPod {
            component: prometheus::SERVICE,
            namespace: "automon".into(),
            pods: describe_pods(&pods[1..], "app=p"),
        };
        assert!(
            e.to_string().starts_with(
                "no ready pod for prometheus in automon: prometheus-automon-0 Pending (0/2 ready)"
            ),
            "{e}"
        );
    }

    #[test]
    fn target_ports_resolve_by_number_or_container_port_name() {
        let p = pod("p-0", running(true));
        let cases = [
            (IntOrString::Int(9090), Ok(9090)),
            (IntOrString::String("web".into()), Ok(9090)),
            (IntOrString::String("reloader-web".into()), Ok(8080)),
            (
                IntOrString::String("http".into()),
                Err("no container port is named \"http\" (the Service's targetPort)".to_string()),
            ),
            (
                IntOrString::Int(70000),
                Err("the Service's targetPort 70000 is not a port number".to_string()),
            ),
        ];
        for (target, want) in cases {
            assert_eq!(container_port(&p, &target), want, "{target:?}");
        }
    }

    #[test]
    fn the_service_gives_its_selector_and_first_target_port() {
        let svc = |spec: serde_json::Value| -> Service {
            serde_json::from_value(json!({"metadata": {"name": "s"}, "spec": spec})).unwrap()
        };
        let cases = [
            (
                json!({"selector": {"b": "2", "a": "1"}, "ports": [
                    {"port": 9090, "targetPort": "web"}, {"port": 8080, "targetPort": 8081}]}),
                Ok(("a=1,b=2".to_string(), IntOrString::String("web".into()))),
            ),
            (
                json!({"selector": {"a": "1"}, "ports": [{"port": 3000}]}),
                Ok(("a=1".to_string(), IntOrString::Int(3000))),
            ),
            (
                json!({"ports": [{"port": 3000}]}),
                Err("it has no selector, so no pods are behind it".to_string()),
            ),
            (
                json!({"selector": {"a": "1"}}),
                Err("it has no ports".to_string()),
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(service_target(&svc(spec.clone())), want, "{spec}");
        }
    }

    #[test]
    fn the_banner_reads_like_kubectl() {
        let to = Backend {
            pod: "prometheus-automon-0".into(),
            port: 9090,
        };
        assert_eq!(
            banner(
                Component::Prometheus,
                "http://127.0.0.1:54021",
                "automon",
                &to,
                None
            ),
            "Prometheus  http://127.0.0.1:54021  (forwarding to automon/prometheus-automon-0:9090; Ctrl-C stops)\n"
        );
        let flags = flags(&[]);
        let to = Backend {
            pod: "grafana-7d9c5-x2k8q".into(),
            port: 3000,
        };
        let hint = password_hint("automon", &flags);
        assert_eq!(
            banner(
                Component::Grafana,
                "http://127.0.0.1:54021",
                "automon",
                &to,
                Some(("admin", hint))
            ),
            "Grafana     http://127.0.0.1:54021  (forwarding to automon/grafana-7d9c5-x2k8q:3000; Ctrl-C stops)\n\
             Login       admin, password: kubectl get secret grafana-admin -n automon -o jsonpath='{.data.admin-password}' | base64 -d\n"
        );
    }

    fn flags(args: &[&str]) -> KubeFlags {
        #[derive(clap::Parser)]
        struct F {
            #[command(flatten)]
            kube: KubeFlags,
        }
        let argv = std::iter::once("x").chain(args.iter().copied());
        <F as clap::Parser>::parse_from(argv).kube
    }

    #[test]
    fn the_password_hint_reads_the_same_cluster() {
        let cases = [
            (
                vec![],
                "kubectl get secret grafana-admin -n mon -o jsonpath",
            ),
            (
                vec!["--context", "prod"],
                "kubectl get secret grafana-admin -n mon --context prod -o jsonpath",
            ),
            (
                vec!["--kubeconfig", "/home/a b/kc", "--context", "it's"],
                r"kubectl get secret grafana-admin -n mon --kubeconfig '/home/a b/kc' --context 'it'\''s' -o jsonpath",
            ),
        ];
        for (args, want) in cases {
            let hint = password_hint("mon", &flags(&args));
            assert!(hint.starts_with(want), "{args:?}: {hint}");
        }
    }

    #[test]
    fn the_admin_user_comes_from_the_secret_when_there() {
        let secret = |data: &[(&str, &[u8])]| Secret {
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                    .collect(),
            ),
            ..Default::default()
        };
        let cases = [
            (
                secret(&[("admin-user", b"root"), ("admin-password", b"s3cret")]),
                Some("root"),
            ),
            (secret(&[("admin-password", b"s3cret")]), None),
            (secret(&[("admin-user", b" ")]), None),
            (Secret::default(), None),
        ];
        for (s, want) in cases {
            assert_eq!(admin_user(&s).as_deref(), want);
        }
    }

    #[test]
    fn addresses_and_urls() {
        assert_eq!(
            parse_address("localhost"),
            Ok(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(parse_address("::1"), Ok(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert!(parse_address("example.com").is_err());
        let cases = [
            ("127.0.0.1:54021", "http://127.0.0.1:54021"),
            ("0.0.0.0:8080", "http://127.0.0.1:8080"),
            ("[::]:8080", "http://[::1]:8080"),
            ("[::1]:8080", "http://[::1]:8080"),
            ("192.168.1.5:80", "http://192.168.1.5:80"),
        ];
        for (addr, want) in cases {
            assert_eq!(url_for(addr.parse().unwrap()), want);
        }
    }

    #[test]
    fn a_refused_portforward_says_who_refused() {
        let target = Target {
            server: "https://x".into(),
            user: "ana".into(),
            timeout: None,
        };
        let status = |code: u16, message: &str| {
            kube::Error::Api(
                kube::core::Status::failure(message, "Forbidden")
                    .with_code(code)
                    .boxed(),
            )
        };
        let pod = "prometheus-automon-0";
        let rbac = r#"pods "prometheus-automon-0" is forbidden: User "ana" cannot create resource "pods/portforward" in API group "" in the namespace "automon""#;
        let denied_to_user =
            r#"forbidden: user "ana" may not create pods/portforward in namespace "automon""#;
        let denied_behind = r#"the API server could not open the port-forward to pod automon/prometheus-automon-0 (403: "#;
        let allowed = r#"user "ana" may create pods/portforward in namespace "automon" (SelfSubjectAccessReview)"#;
        let upgrade = kube::Error::UpgradeConnection(UpgradeConnectionError::ProtocolSwitch(
            http::StatusCode::FORBIDDEN,
        ));
        // (the error, what the message starts with, what it also says)
        let cases = [
            (
                status(403, rbac),
                denied_to_user,
                "ask a cluster administrator",
            ),
            (
                status(
                    403,
                    "unable to upgrade connection: Forbidden (user=kube-apiserver-kubelet-client, verb=create, resource=nodes, subresource=proxy)",
                ),
                denied_behind,
                allowed,
            ),
            (upgrade, denied_behind, allowed),
        ];
        for (err, starts, says) in cases {
            let e = portforward_error(&target, "automon", pod, err);
            let text = e.to_string();
            assert!(text.starts_with(starts) && text.contains(says), "{text}");
            assert!(e.is_fatal(), "{text}");
            let code = crate::exit::error_code(&e.into());
            assert_eq!(code, crate::exit::FORBIDDEN, "{text}");
        }
        let gone = portforward_error(&target, "automon", pod, status(404, "not found"));
        assert!(!gone.is_fatal(), "{gone}");
    }

    #[test]
    fn errors_say_what_to_do() {
        let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert_eq!(
            OpenError::NotInstalled {
                namespace: "mon".into()
            }
            .to_string(),
            "automon is not installed in namespace mon; install it with `kubectl automon enable -n mon`"
        );
        assert_eq!(
            OpenError::PortInUse { addr }.to_string(),
            "127.0.0.1:80 is already in use; choose another --port, or --port 0 for a free one"
        );
    }
}
