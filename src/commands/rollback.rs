//! `rollback [REVISION]`: re-applies exactly the objects a revision recorded (even where this
//! binary would render them otherwise: other images, other rules), prunes what that revision
//! did not have, and records a new revision. The same pipeline as `enable`; the objects come
//! from the revision instead of a render. Previewed with `--dry-run` and `diff --revision N`.
//! CRDs are never rolled back (a revision does not record them): when the revision's operator
//! is older than the CRDs in the cluster, a note on stderr says they stay.

use std::time::Instant;

use super::args::RunArgs;
use crate::{
    cluster::{Cluster, KubeFlags, revision},
    exit::Verdict,
    pipeline::{self, Prepared, Source},
    plan,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The revision to restore (`kubectl automon history` lists them); default: the one before
    /// the latest
    #[arg(value_name = "REVISION", value_parser = super::args::counting_number)]
    revision: Option<u32>,
    #[command(flatten)]
    run: RunArgs,
    /// How many revisions to keep (0: all)
    #[arg(long, value_name = "N", default_value_t = revision::DEFAULT_MAX, value_parser = super::args::whole_number)]
    history_max: u32,
}

pub async fn run(flags: &KubeFlags, args: Args) -> anyhow::Result<Verdict> {
    let started = Instant::now();
    let options = args.run.options();
    let cluster = Cluster::connect(flags).await?;
    let namespace = cluster.namespace.clone();
    // Read and check the revision before anything else: a missing or damaged one stops here.
    // Nothing installed is exit 9, as for every command; no revision to go back to is 1.
    let known = revision::list_installed(&cluster).await?;
    let n = revision::target(&known, args.revision, &namespace)?;
    let (summary, payload) = revision::read(&cluster, n).await?;
    let line = format!(
        "Config    revision {n} ({}, plugin {}, by {}: {})",
        summary.updated, summary.plugin, summary.by, summary.change
    );
    let deadline = started + options.timeout;
    let (cluster, state) =
        match pipeline::prepare(cluster, &namespace, &payload.objects, &[line], deadline).await? {
            Prepared::Ready(ready) => *ready,
            Prepared::Refused(report) => return Ok(Verdict::Preflight(report.outcome())),
        };
    if let Some(note) = plan::crds_kept_newer(&payload.objects, &state) {
        crate::output::diag!("note: {note}");
    }
    let plan = pipeline::plan(Source::Revision(payload.objects), &state).await?;
    let executed = pipeline::execute(&cluster, &plan, &state, &options, started).await?;
    let change = format!("rollback to {n}");
    executed
        .finish(&cluster, &options, &change, args.history_max, started)
        .await?;
    Ok(Verdict::Done)
}
