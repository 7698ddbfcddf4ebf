//! `reconcile`: keep "every node is monitored" true. Watches (kube-runtime watchers feeding
//! reflector stores, with its backoff) the Nodes in a slim type, the exporter pods and
//! DaemonSets, the DaemonSet controller's refusals, the ApplySet parent and every managed object
//! (metadata only). The verdict on each node is the one assessment `status` prints; the tracker
//! adds time and says which Event is due. Only the holder of the Lease writes: Events on Nodes
//! (events.k8s.io, through one kube-runtime Recorder that folds repeats into a series) and
//! repairs (the objects of enable's own plan, re-applied through the one apply engine).
//! Steady state writes nothing: a Node's status or a kubelet's lease moving only re-runs the
//! assessment in memory. The decisions are a pure state machine (`machine`); `driver` does the
//! I/O; this file wires them.

pub mod drift;
mod driver;
pub mod logging;
mod machine;
pub mod metrics;
mod permissions;
pub mod tracker;

use std::{net::SocketAddr, time::Duration, time::Instant};

use anyhow::Context as _;
use k8s_openapi::api::core::v1::ConfigMap;
use tracing::info;

pub use permissions::permissions;

use crate::{
    cluster::Cluster,
    exit::Verdict,
    model::resources::{self, Known},
    preflight, render,
    status::Health,
};
use machine::{Desired, ExporterSource, Machine, Start};
use metrics::Metrics;

/// Who publishes the Events (`reportingController`) and manages the Lease.
pub const CONTROLLER: &str = "kubectl-automon";
/// The loop's log lines carry this target, wherever in the module they are written.
const LOG_TARGET: &str = module_path!();

/// How the command runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Watch until SIGINT/SIGTERM; else one pass.
    pub looping: bool,
    pub exporter_deadline: Duration,
    /// How long the exporters of a class of node stay after its last node left.
    pub class_grace: Duration,
    pub repair: bool,
    pub metrics_addr: Option<SocketAddr>,
    pub summary_interval: Duration,
    pub lease_duration: Duration,
    /// This loop's name in the Lease and on its Events.
    pub identity: String,
}

/// `host-pid`: where a loop runs, as the Lease and `status` show it.
pub fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{host}-{}", std::process::id())
}

/// The member types the parent lists (`applyset.kubernetes.io/contains-group-kinds`), CRDs
/// aside (shared, never repaired by the loop).
fn kinds_of(parent: &ConfigMap) -> Vec<&'static Known> {
    let mut kinds: Vec<&'static Known> = Vec::new();
    for gk in crate::cluster::inventory::group_kinds(&parent.metadata) {
        if let Some(k) = resources::by_group_kind(&gk)
            && !kinds.contains(&k)
            && k.kind != "CustomResourceDefinition"
        {
            kinds.push(k);
        }
    }
    kinds
}

/// Runs the command: one pass, or the loop, to its verdict.
pub async fn run(cluster: Cluster, options: Options) -> anyhow::Result<Verdict> {
    let started = Instant::now();
    let ns = cluster.namespace.clone();
    let Some((parent, config)) = driver::installed(&cluster).await? else {
        crate::output::diag!("automon is not installed in namespace {ns}.");
        crate::output::diag!(
            "Install it with: kubectl automon enable -n {ns} (see `kubectl automon preflight` first)"
        );
        return Ok(Verdict::Health(Health::NotInstalled));
    };
    let version = cluster
        .client
        .apiserver_version()
        .await
        .map_err(|e| cluster.target.classify(e))?;
    info!(
        label = "Cluster",
        "{} ({}, {}) · stack {ns}",
        cluster.context.as_deref().unwrap_or("in-cluster"),
        cluster.target.server,
        version.git_version
    );
    // Every permission first, from what is stored (the parent names the member kinds; the
    // configuration renders offline): a missing one is said before anything is read or written.
    let source = ExporterSource::of(&parent, &ns);
    let members = kinds_of(&parent);
    let rendered = render::render(&config).objects;
    let wanted = permissions(&ns, &source.namespace, &members, &rendered, options.repair);
    let missing = preflight::denied(&cluster, wanted).await?;
    if !missing.is_empty() {
        return Err(crate::preflight::Denied {
            missing,
            repair: options.repair,
        }
        .into());
    }
    // What should exist: enable's own plan for the stored configuration.
    let (plan, state) = driver::plan(&cluster, &config, None, None)
        .await
        .context("working out what enable would apply")?;
    // What the stack in the cluster is sized for (its Prometheus says): when the cluster has
    // outgrown it since, the loop that leads resizes it like any other change of size.
    let deployed_tier = driver::deployed_tier(&cluster, &plan).await;
    let pods_selector = driver::pods_selector(&cluster, &source).await?;
    let metrics = Metrics::new();
    if let Some(addr) = options.metrics_addr {
        let (bound, _task) = metrics::serve(addr, metrics.clone())
            .await
            .with_context(|| format!("cannot serve metrics on {addr}"))?;
        info!(
            label = "Metrics",
            "http://{bound}/metrics (and /healthz, /readyz)"
        );
    }
    let desired = Desired::of(&plan);
    let watches = driver::Watches {
        source: source.clone(),
        pods_selector,
        members: members.clone(),
        applyset_id: desired.applyset_id.clone().unwrap_or_default(),
    };
    let machine = Machine::new(Start {
        options: options.clone(),
        namespace: ns,
        started,
        config_text: machine::config_text(&parent),
        config,
        parent_version: parent.metadata.resource_version.clone(),
        source,
        desired,
        classes: state.classes,
        tier: deployed_tier.unwrap_or(crate::config::sizing::tier(state.nodes)),
        members: members.len(),
    });
    // What planning read (the cluster's objects, the rendered stack) is not kept while the loop
    // runs: a local of this function would otherwise live as long as the loop.
    drop((plan, state, rendered, parent));
    driver::Driver::new(cluster, options, machine, metrics)
        .run(watches)
        .await
}
