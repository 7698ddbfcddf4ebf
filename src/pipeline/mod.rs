//! The one way the cluster is changed: what should be there (a configuration rendered, or a
//! recorded revision) planned against what is there, and the plan executed. `enable`,
//! `rollback`, `diff` and `reconcile` all go through here; the commands keep their flags and
//! their own lines.

mod execute;
mod replace;
pub mod rollout;
mod state;
mod surge;
mod validate;

use std::time::{Duration, Instant};

pub use execute::execute;

use crate::{
    cluster::{Cluster, crds},
    config::Config,
    model::Object,
    output::{Palette, say},
    plan::{self, ClusterState, CrdSource, Plan},
    preflight::{self, Report},
    render,
};

/// How many requests one phase keeps in flight: enough to hide round trips, few enough to stay
/// well inside the API server's default priority-and-fairness share for one client.
pub const IN_FLIGHT: usize = 16;

/// What a run persists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DryRun {
    /// Everything is applied.
    None,
    /// Nothing is sent: what would be applied is said.
    Client,
    /// The API server validates and defaults every object, and persists nothing.
    Server,
}

impl DryRun {
    /// Whether anything is persisted.
    pub fn writes(self) -> bool {
        self == DryRun::None
    }

    /// What each printed line ends with.
    pub fn suffix(self) -> &'static str {
        match self {
            DryRun::None => "",
            DryRun::Client => " (dry run)",
            DryRun::Server => " (server dry run)",
        }
    }
}

/// How a plan is run.
#[derive(Debug, Clone)]
pub struct Options {
    pub dry_run: DryRun,
    /// Wait until every workload is ready and Prometheus has scraped every target.
    pub wait: bool,
    /// How long the run may take in all, waits included.
    pub timeout: Duration,
    /// Take over fields that another field manager owns instead of stopping.
    pub force_conflicts: bool,
}

impl Options {
    /// A run that applies everything and waits for nothing, as `reconcile` runs.
    pub fn apply(timeout: Duration) -> Options {
        Options {
            dry_run: DryRun::None,
            wait: false,
            timeout,
            force_conflicts: false,
        }
    }
}

/// Where the plan's objects come from.
pub enum Source {
    /// A configuration, rendered for the cluster, with the CRDs given (loaded only when the
    /// plan sends them) and what to call them.
    Config {
        config: Box<Config>,
        crds: Option<CrdsFrom>,
    },
    /// A recorded revision's objects, exactly.
    Revision(Vec<Object>),
}

/// The CRDs to send: `--crds-from`, or the pinned release files checked by SHA-256.
pub struct CrdsFrom {
    pub source: crds::CrdSource,
    /// What `--crds-from` said, when it was given.
    pub given: Option<String>,
    /// A local source being read already ([`CrdsFrom::read_ahead`]).
    ahead: Option<tokio::task::JoinHandle<Result<Vec<Object>, crds::CrdError>>>,
}

impl CrdsFrom {
    pub fn new(source: crds::CrdSource, given: Option<String>) -> CrdsFrom {
        CrdsFrom {
            source,
            given,
            ahead: None,
        }
    }

    /// A file or directory given is read and parsed from now on, on threads of their own,
    /// while preflight asks the cluster; whether the plan sends them is decided later, and
    /// what was read is used (or dropped) then. Nothing else is fetched ahead: a URL or the
    /// pinned release is downloaded only when the plan needs it.
    pub fn read_ahead(mut self) -> CrdsFrom {
        if let crds::CrdSource::Path(path) = &self.source {
            let path = path.clone();
            self.ahead = Some(tokio::task::spawn_blocking(move || crds::load_path(&path)));
        }
        self
    }
}

/// What preflight decided before anything was written.
pub enum Prepared {
    /// Preflight passed: the cluster (speaking about the stack's namespace) and what it holds.
    Ready(Box<(Cluster, ClusterState)>),
    /// Preflight failed; its report, already printed, says why.
    Refused(Box<Report>),
}

/// What the cluster holds that the plan follows, read quietly: the inventory, the namespace,
/// the CRDs, and what preflight finds installed beside the stack (another operator to reuse,
/// another exporter to scrape), by the whole preflight `enable` runs, its verdict aside: the
/// same detection for `diff` and `reconcile` as for `enable`.
pub async fn observe(
    cluster: &Cluster,
    namespace: &str,
    objects: &[Object],
) -> anyhow::Result<ClusterState> {
    let (report, state) = futures::join!(
        preflight::Preflight::run(cluster, objects),
        state::cluster_state(cluster, namespace)
    );
    let (report, mut state) = (report?, state?);
    found_by_preflight(&mut state, &report);
    Ok(state)
}

/// Preflight before any write (reachable, supported, every permission, another operator),
/// printed, then `notes` (whole lines: where the configuration came from); then what the plan
/// needs.
pub async fn prepare(
    cluster: Cluster,
    namespace: &str,
    objects: &[Object],
    notes: &[String],
    deadline: Instant,
) -> anyhow::Result<Prepared> {
    let p = Palette::stdout();
    // Every command of this run speaks about the stack's namespace.
    let cluster = Cluster {
        namespace: namespace.to_string(),
        ..cluster
    };
    // Preflight and the reads the plan needs at once; the plan's reads are used only when
    // preflight passed, so a missing permission is always reported by preflight, in full.
    let (report, state) = futures::join!(
        preflight::Preflight::run(&cluster, objects),
        state::cluster_state(&cluster, namespace)
    );
    let report = report?;
    say!(
        "Cluster   {} ({}, {})",
        cluster.context.as_deref().unwrap_or("in-cluster"),
        cluster.target.server,
        report.server_version.git_version
    );
    say!("{}", report.human(&p).trim_end());
    for line in notes {
        say!("{line}");
    }
    if !report.passed() {
        return Ok(Prepared::Refused(Box::new(report)));
    }
    let mut state = state?;
    if state.namespace_terminating {
        // Right after a disable: nothing can be created in it until it is gone.
        say!("Namespace {namespace} is being deleted: waiting until it is gone");
        crate::cluster::blocker::wait_gone(&cluster, namespace, deadline).await?;
        state = state::cluster_state(&cluster, namespace).await?;
    }
    found_by_preflight(&mut state, &report);
    Ok(Prepared::Ready(Box::new((cluster, state))))
}

/// What preflight found that the plan follows: another operator to reuse, another exporter to
/// scrape when the configuration lets it (`nodeExporter.reuseExisting`; otherwise the holder
/// is a conflict preflight reports, and the plan keeps automon's own exporter).
fn found_by_preflight(state: &mut ClusterState, report: &Report) {
    state.existing = report
        .existing_operator
        .is_installed()
        .then(|| report.existing_operator.clone());
    let exporter = &report.existing_exporter;
    state.exporter = exporter.reuse.then(|| exporter.holder.clone()).flatten();
}

/// The plan for `source` in a cluster in `state`: a configuration is rendered for the cluster
/// (its node count sizes the stack, its classes of node add exporters, another exporter may be
/// scraped instead of automon's own, and CRDs join, labelled and listed like the rest, when
/// they are to be sent); a revision's objects are planned as they are, the CRDs left alone.
pub async fn plan(source: Source, state: &ClusterState) -> anyhow::Result<Plan> {
    match source {
        Source::Revision(objects) => Ok(plan::plan(
            objects,
            state,
            plan::rollback_source(state),
            "",
        )?),
        Source::Config { config, crds } => {
            // Beside a release being replaced, nothing of it is reused: automon runs its own.
            let beside;
            let state = match &config.migration {
                Some(_) => {
                    beside = ClusterState {
                        existing: None,
                        exporter: None,
                        ..state.clone()
                    };
                    &beside
                }
                None => state,
            };
            let (source, loaded, origin) = match crds {
                Some(from) => match plan::crd_source(state, from.given.is_some()) {
                    CrdSource::Load => {
                        let (loaded, origin) = load_crds(from).await?;
                        (CrdSource::Load, loaded, origin)
                    }
                    other => (other, Vec::new(), String::new()),
                },
                None => (plan::rollback_source(state), Vec::new(), String::new()),
            };
            let objects = render_for(&config, loaded, state);
            Ok(plan::plan(objects, state, source, &origin)?)
        }
    }
}

/// The plan `enable` would execute for `config` now, with the CRDs left as they are: what
/// `reconcile` keeps true. Read quietly (no preflight lines), in the stack's namespace.
/// `classes`, when given, stand for the cluster's (a class whose last node left is kept
/// through its grace period); `nodes` for its node count.
pub async fn desired(
    cluster: &Cluster,
    config: &Config,
    classes: Option<render::NodeClasses>,
    nodes: Option<u32>,
) -> anyhow::Result<(Plan, ClusterState)> {
    let rendered = render::render(config).objects;
    let mut state = observe(cluster, &config.namespace, &rendered).await?;
    if let Some(classes) = classes {
        state.classes = classes;
    }
    if let Some(nodes) = nodes {
        state.nodes = nodes;
    }
    let source = Source::Config {
        config: Box::new(config.clone()),
        crds: None,
    };
    let plan = plan(source, &state).await?;
    Ok((plan, state))
}

/// The stack for `config` in a cluster in `state`, with `crds`: what enable applies.
fn render_for(config: &Config, crds: Vec<Object>, state: &ClusterState) -> Vec<Object> {
    render::render_classes(
        config,
        crds,
        state.exporter.as_ref(),
        state.classes,
        Some(state.nodes),
    )
    .objects
}

/// The CRDs `from` names (read ahead, or now), and what to call them.
async fn load_crds(from: CrdsFrom) -> anyhow::Result<(Vec<Object>, String)> {
    let objects = match from.ahead {
        Some(reading) => reading
            .await
            .map_err(|e| anyhow::anyhow!("reading the CRDs stopped: {e}"))??,
        None => crds::load(&from.source).await?,
    };
    let origin = match from.given {
        Some(given) => given,
        None => format!(
            "prometheus-operator {} (sha256 verified)",
            crate::versions::PROMETHEUS_OPERATOR.version
        ),
    };
    Ok((objects, origin))
}
