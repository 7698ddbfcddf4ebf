//! `enable`: render the stack for the cluster, plan it and execute the plan through
//! [`crate::pipeline`]: preflight before any write, then the phases, the prune, a revision and,
//! with `--wait`, the wait until every workload is ready and scraped.

use std::time::Instant;

use anyhow::Context as _;

pub use super::args::Loaded;
use super::args::{ConfigArgs, CrdArgs, RunArgs};
use crate::{
    cluster::{Cluster, KubeFlags, credentials, revision},
    config::{
        credentials::{Credentials, SECRET_NAME},
        values::Compared,
    },
    exit::Verdict,
    output::{plural, say},
    pipeline::{self, CrdsFrom, Prepared, Source},
    render,
    versions::PLUGIN_VERSION,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    crds: CrdArgs,
    #[command(flatten)]
    run: RunArgs,
    /// How many revisions to keep (0: all)
    #[arg(long, value_name = "N", default_value_t = revision::DEFAULT_MAX, value_parser = super::args::whole_number)]
    history_max: u32,
}

pub async fn run(flags: &KubeFlags, args: Args) -> anyhow::Result<Verdict> {
    let started = Instant::now();
    let options = args.run.options();
    // Offline first: a bad file or --set fails before anything else.
    args.config.load(flags)?;
    let cluster = Cluster::connect(flags).await?;
    let loaded = args.config.load_for(flags, &cluster).await?;
    let notes = notes(&loaded, args.config.set.len());
    let first = |installed: bool| {
        revision::describe_change(
            args.config.file.as_deref().and_then(|f| f.to_str()),
            &args.config.set,
            !installed,
        )
    };
    let crds = CrdsFrom::new(args.crds.source(), args.crds.crds_from.clone());
    install(
        cluster,
        loaded,
        &notes,
        crds,
        &options,
        &first,
        args.history_max,
        started,
    )
    .await
}

/// What `enable` does once its configuration is loaded (`migrate` installs with it too):
/// preflight, the plan, the credentials, the execution and the revision, described by
/// `change` (given whether the stack was installed already).
#[allow(clippy::too_many_arguments)]
pub async fn install(
    cluster: Cluster,
    loaded: Loaded,
    notes: &[String],
    crds: CrdsFrom,
    options: &pipeline::Options,
    change: &dyn Fn(bool) -> String,
    history_max: u32,
    started: Instant,
) -> anyhow::Result<Verdict> {
    let (config, credentials) = (loaded.config, loaded.credentials);
    let rendered = render::render(&config).objects;
    let deadline = started + options.timeout;
    let crds = crds.read_ahead();
    let (cluster, state) =
        match pipeline::prepare(cluster, &config.namespace, &rendered, notes, deadline).await? {
            Prepared::Ready(ready) => *ready,
            Prepared::Refused(report) => return Ok(Verdict::Preflight(report.outcome())),
        };
    let source = Source::Config {
        config: Box::new(config.clone()),
        crds: Some(crds),
    };
    let plan = pipeline::plan(source, &state).await?;
    if plan.reuse.is_none() {
        let sizing = crate::config::sizing::estimate(&config, Some(state.nodes));
        say!(
            "Sizing    {} nodes: {}",
            crate::output::thousands(u64::from(state.nodes)),
            sizing.describe()
        );
    }
    if !credentials.is_empty() {
        store_credentials(
            &cluster,
            &config.namespace,
            &rendered,
            &credentials,
            options,
        )
        .await?;
    }
    let change = change(state.inventory.is_some());
    let executed = pipeline::execute(&cluster, &plan, &state, options, started).await?;
    executed
        .finish(&cluster, options, &change, history_max, started)
        .await?;
    Ok(Verdict::Done)
}

/// The credentials the configuration gave literally, into their Secret before the Alertmanager
/// that reads them; its line names where each was given, never a value.
async fn store_credentials(
    cluster: &Cluster,
    namespace: &str,
    rendered: &[crate::model::Object],
    credentials: &Credentials,
    options: &pipeline::Options,
) -> anyhow::Result<()> {
    use crate::pipeline::DryRun;
    let namespace_object = rendered
        .iter()
        .find(|o| crate::model::kind(o) == "Namespace");
    let secret = format!("Secret {namespace}/{SECRET_NAME}");
    let paths = credentials.paths().join(", ");
    let stored = match options.dry_run {
        DryRun::Client => None,
        mode => Some(
            credentials::store(
                cluster,
                namespace,
                namespace_object,
                credentials,
                mode == DryRun::Server,
            )
            .await
            .with_context(|| format!("cannot write the credentials into {secret}"))?,
        ),
    };
    let written = stored.map_or(credentials.0.len(), |s| s.written);
    say!(
        "Credentials {secret}: {} from the configuration ({paths}), referenced by key{}",
        crate::output::plural(written, "new key"),
        options.dry_run.suffix()
    );
    Ok(())
}

/// Where the configuration came from, what was recognised in a configuration v0.1.0 stored,
/// and which of the user's values differ from today's defaults: the lines after preflight.
fn notes(loaded: &Loaded, sets: usize) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(origin) = &loaded.stored {
        out.push(format!(
            "Config    the values stored in {origin}{}",
            match sets {
                0 => String::new(),
                1 => ", changed by 1 --set".to_string(),
                n => format!(", changed by {n} --set"),
            }
        ));
    }
    if let Some(recognised) = &loaded.recognised {
        out.push(format!("Values    {}", recognised.describe()));
    }
    let compared = loaded.config.given.compared();
    let (differ, equal): (Vec<_>, Vec<_>) = compared.iter().partition(|c| c.differs());
    let list = |cs: &[&Compared]| {
        cs.iter()
            .map(|c| c.describe())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut said = Vec::new();
    if !differ.is_empty() {
        said.push(format!(
            "{} from {PLUGIN_VERSION}'s defaults: {}",
            match differ.len() {
                1 => "1 of yours differs".to_string(),
                n => format!("{n} of yours differ"),
            },
            list(&differ)
        ));
    }
    if !equal.is_empty() {
        said.push(format!(
            "{} equal to today's default, kept as yours: {}",
            plural(equal.len(), "value"),
            list(&equal)
        ));
    }
    if !said.is_empty() {
        out.push(format!("Values    {}", said.join("; ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{
        Config, Values,
        values::{Base, Recognised},
    };

    fn loaded(sets: &[&str], stored: bool, recognised: Option<Recognised>) -> Loaded {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let values = Values::given(Base::Defaults, &sets, Some("ns")).unwrap();
        Loaded {
            config: Config::from_values(values, "values").unwrap(),
            credentials: Default::default(),
            stored: stored.then(|| "ConfigMap ns/automon".to_string()),
            recognised,
        }
    }

    #[test]
    fn enable_says_which_values_differ_from_the_defaults() {
        let l = loaded(
            &["prometheus.retention=30d", "prometheus.scrapeInterval=30s"],
            true,
            Some(Recognised {
                version: Some("v0.1.0".into()),
                values: 1,
            }),
        );
        let v = PLUGIN_VERSION;
        assert_eq!(
            notes(&l, 1),
            [
                "Config    the values stored in ConfigMap ns/automon, changed by 1 --set"
                    .to_string(),
                format!(
                    "Values    recognised 1 value of yours in the configuration v0.1.0 stored; the rest were v0.1.0's defaults and now follow {v}'s"
                ),
                format!(
                    "Values    1 of yours differs from {v}'s defaults: prometheus.retention=30d (default 15d); 1 value equal to today's default, kept as yours: prometheus.scrapeInterval=30s"
                ),
            ]
        );
        // Nothing given, nothing stored: nothing to say (the namespace is where, not a value).
        assert!(notes(&loaded(&[], false, None), 0).is_empty());
    }
}
