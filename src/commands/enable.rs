//! `enable`: render the stack, plan it against the cluster ([`crate::plan`]) and execute the
//! plan. Preflight before any write, then phases (namespace and CRDs → Established → operator
//! and RBAC → everything else), each applied server-side in parallel; prune what an earlier run
//! had and this one has not; record a revision; optionally wait until every workload is ready.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::Context as _;

use super::args::{ConfigArgs, CrdArgs, RunArgs};
use crate::exit::Verdict;
use crate::{
    apply::{self, ApplyError, ApplyOptions, Live, Outcome},
    cluster::{Cluster, KubeFlags},
    crds,
    output::{Palette, say},
    plan::{self, ClusterState, Plan},
    preflight,
    render::{self, Object, Phase, grafana::ADMIN_SECRET, kind},
    resources::{self, display_name},
    revision, rollout,
};

/// How many requests one phase keeps in flight: enough to hide round trips, few enough to stay
/// well inside the API server's default priority-and-fairness share for one client.
const IN_FLIGHT: usize = 16;

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

/// Counts of outcomes in one phase, for its summary line.
#[derive(Debug, Default)]
struct Tally(BTreeMap<&'static str, usize>);

impl Tally {
    fn add(&mut self, what: &'static str) {
        *self.0.entry(what).or_default() += 1;
    }
    fn total(&self) -> usize {
        self.0.values().sum()
    }
    fn changed(&self) -> usize {
        self.total() - self.0.get("unchanged").copied().unwrap_or(0)
    }
    fn summary(&self) -> String {
        let parts: Vec<String> = ["created", "configured", "unchanged", "pruned"]
            .iter()
            .filter_map(|k| self.0.get(k).map(|n| format!("{n} {k}")))
            .collect();
        parts.join(", ")
    }
}

pub async fn run(flags: &KubeFlags, args: Args) -> anyhow::Result<Verdict> {
    let started = Instant::now();
    // Offline first: a bad file or --set fails before anything else.
    args.config.load(flags)?;
    let cluster = Cluster::connect(flags).await?;
    let (config, stored) = args.config.load_for(flags, &cluster).await?;
    let config_line = stored.as_ref().map(|origin| {
        format!(
            "the one stored in {origin}{}",
            match args.config.set.len() {
                0 => String::new(),
                1 => ", changed by 1 --set".to_string(),
                n => format!(", changed by {n} --set"),
            }
        )
    });
    let rendered = render::render(&config).objects;
    let deadline = started + args.run.timeout;
    let (cluster, state) =
        match prepare(cluster, &config.namespace, &rendered, config_line, deadline).await? {
            Ok(ready) => ready,
            Err(code) => return Ok(code),
        };
    let source = plan::crd_source(&state, args.crds.crds_from.is_some());
    // Rendered again for the cluster: its node count sizes the stack, its classes of node
    // add exporters, another exporter may be scraped instead of automon's own, and CRDs join
    // (labelled and listed like the rest) when they are to be sent.
    let (objects, origin) = match source {
        plan::CrdSource::Load => {
            let (crds, origin) = load_crds(&args.crds).await?;
            (render_for(&config, crds, &state), origin)
        }
        _ => (render_for(&config, Vec::new(), &state), String::new()),
    };
    let plan = plan::plan(objects, &state, source, &origin)?;
    if plan.reuse.is_none() {
        let sizing = crate::sizing::estimate(&config, Some(state.nodes));
        crate::output::say!(
            "Sizing    {} nodes: {}",
            crate::sizing::thousands(u64::from(state.nodes)),
            sizing.describe()
        );
        if sizing.shards > 1 && !config.prometheus.has_global_view() {
            crate::output::diag!(
                "{} {} Prometheus shards each hold a part of the series: dashboards see one shard at a time; set prometheus.thanos or prometheus.remoteWrite for one view of all",
                Palette::stderr().warn("warning:"),
                sizing.shards
            );
        }
    }
    let change = revision::describe_change(
        args.config.file.as_deref().and_then(|f| f.to_str()),
        &args.config.set,
        state.inventory.is_none(),
    );
    let executed = execute(&cluster, &plan, &state, &args.run, started).await?;
    executed
        .finish(&cluster, &args.run, &change, args.history_max, started)
        .await
}

/// The stack for `config` in a cluster in `state`, with `crds`: what enable applies.
pub fn render_for(
    config: &crate::config::Config,
    crds: Vec<Object>,
    state: &ClusterState,
) -> Vec<Object> {
    render::render_classes(
        config,
        crds,
        state.exporter.as_ref(),
        state.classes,
        Some(state.nodes),
    )
    .objects
}

/// Preflight before any write (reachable, supported, every permission, another operator),
/// printed; then what the plan needs. `Err(exit code)` when preflight failed: it printed why.
pub async fn prepare(
    cluster: Cluster,
    namespace: &str,
    objects: &[Object],
    config_line: Option<String>,
    deadline: Instant,
) -> anyhow::Result<Result<(Cluster, ClusterState), Verdict>> {
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
        plan::gather(&cluster, namespace, None)
    );
    let report = report?;
    say!(
        "Cluster   {} ({}, {})",
        cluster.context.as_deref().unwrap_or("in-cluster"),
        cluster.target.server,
        report.server_version.git_version
    );
    say!("{}", report.human(&p).trim_end());
    if let Some(line) = config_line {
        say!("Config    {line}");
    }
    if !report.passed() {
        return Ok(Err(Verdict::Preflight(report.outcome())));
    }
    let mut state = state?;
    if state.namespace_terminating {
        // Right after a disable: nothing can be created in it until it is gone.
        say!("Namespace {namespace} is being deleted: waiting until it is gone");
        crate::blocker::wait_gone(&cluster, namespace, deadline).await?;
        state = plan::gather(&cluster, namespace, None).await?;
    }
    found_by_preflight(&mut state, &report);
    Ok(Ok((cluster, state)))
}

/// What preflight found that the plan follows: another operator to reuse, another exporter to
/// scrape (past preflight, a holder is one to scrape: automon's own was not asked for).
fn found_by_preflight(state: &mut ClusterState, report: &preflight::Report) {
    state.existing = report
        .existing_operator
        .is_installed()
        .then(|| report.existing_operator.clone());
    state.exporter = report.existing_exporter.holder.clone();
}

/// The plan `enable` would execute for `config` now, with the CRDs left as they are: what
/// `reconcile` keeps true. Read quietly (no preflight lines), in the stack's namespace.
/// `classes`, when given, stand for the cluster's (a class whose last node left is kept
/// through its grace period).
pub async fn desired(
    cluster: &Cluster,
    config: &crate::config::Config,
    classes: Option<render::NodeClasses>,
    nodes: Option<u32>,
) -> anyhow::Result<(Plan, ClusterState)> {
    let rendered = render::render(config).objects;
    let (report, state) = futures::join!(
        preflight::Preflight::run(cluster, &rendered),
        plan::gather(cluster, &config.namespace, None)
    );
    let mut state = state?;
    found_by_preflight(&mut state, &report?);
    if let Some(classes) = classes {
        state.classes = classes;
    }
    if let Some(nodes) = nodes {
        state.nodes = nodes;
    }
    let objects = render_for(config, Vec::new(), &state);
    let plan = plan::plan(objects, &state, plan::rollback_source(&state), "")?;
    Ok((plan, state))
}

/// `--crds-from`, or the pinned release files checked by SHA-256; and what to call them.
pub async fn load_crds(args: &CrdArgs) -> anyhow::Result<(Vec<Object>, String)> {
    let objects = crds::load(&args.source()).await?;
    let origin = match &args.crds_from {
        Some(from) => from.clone(),
        None => format!(
            "prometheus-operator {} (sha256 verified)",
            crate::versions::PROMETHEUS_OPERATOR.version
        ),
    };
    Ok((objects, origin))
}

/// What a run did, for its last lines and its revision.
pub struct Executed {
    tally: Tally,
    /// The compressed revision: the objects and where each was left.
    payload: Vec<u8>,
    /// Why the run stopped before the end, when it did: what was applied is still recorded.
    stopped: Option<anyhow::Error>,
    /// The workloads `--wait` waits for, in the stack's namespace.
    wait_for: Vec<(String, String)>,
    namespace: String,
    /// Whether the stack's own Prometheus answers `status` (not another operator's).
    own_prometheus: bool,
    deadline: Instant,
}

impl Executed {
    /// Records a revision when something changed, and prints the `Done` line.
    pub async fn finish(
        mut self,
        cluster: &Cluster,
        run: &RunArgs,
        change: &str,
        history_max: u32,
        started: Instant,
    ) -> anyhow::Result<Verdict> {
        let p = Palette::stdout();
        if run.writes() && self.tally.changed() > 0 {
            // A run that stopped half-way is recorded too: what it applied is in the cluster,
            // and `history`/`rollback` must know it.
            let change = match &self.stopped {
                Some(_) => format!("{change} (stopped before the end)"),
                None => change.to_string(),
            };
            let n = revision::record(
                cluster,
                std::mem::take(&mut self.payload),
                &change,
                history_max,
            )
            .await?;
            say!("Revision  {n} recorded ({change})");
        }
        if let Some(e) = self.stopped {
            return Err(e);
        }
        if run.wait && run.writes() {
            let remaining = self.deadline.saturating_duration_since(Instant::now());
            rollout::wait(cluster, &self.namespace, &self.wait_for, remaining).await?;
            if self.own_prometheus {
                first_scrape(cluster, self.deadline).await?;
            }
        }
        let objects = crate::output::plural(self.tally.total(), "object");
        let done = if self.tally.changed() == 0 && run.writes() {
            format!("{objects}: {}. Nothing to do.", self.tally.summary())
        } else {
            format!("{objects}: {}{}.", self.tally.summary(), run.mode())
        };
        say!(
            "Done      {done} {}",
            p.dim(&format!("({})", secs(started.elapsed())))
        );
        Ok(Verdict::Done)
    }
}

/// Runs a plan: the phases with the parent around them, the prune, the Grafana admin Secret,
/// the wait. `enable` and `rollback` both execute through here.
pub async fn execute(
    cluster: &Cluster,
    plan: &Plan,
    state: &ClusterState,
    run: &RunArgs,
    started: Instant,
) -> anyhow::Result<Executed> {
    let deadline = started + run.timeout;
    let p = Palette::stdout();
    let namespace = plan.namespace.clone();
    let mode = run.mode();
    let mut client_dry_run = run.dry_run == "client";
    let options = ApplyOptions {
        dry_run: run.dry_run == "server",
        force: run.force_conflicts,
    };
    // Too large to record stops the run before it changes anything.
    let objects: Vec<Object> = plan.objects().cloned().collect();
    revision::encode(&objects, &BTreeMap::new())?;
    say!("CRDs      {}", plan.crds);
    if let Some(reuse) = &plan.reuse {
        say!(
            "Operator  another Prometheus Operator is installed ({}): reusing it; installing only exporters, rules and dashboards, labelled {}",
            reuse.operator,
            reuse
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    if let Some(h) = &state.exporter {
        say!(
            "Exporter  {} serves port {} on the nodes: scraping it, deploying no node-exporter of its own",
            h.describe(),
            h.port
        );
    }
    for w in &plan.warnings {
        crate::output::warning(&w.to_string());
    }
    // Nothing the API server would refuse gets past this point: every object it can judge now
    // and that differs from what it last accepted here (the latest revision) is dry-run first,
    // all at once; a refusal of any stops the run before its first write.
    let accepted = match &state.inventory {
        Some(_) if !client_dry_run => revision::latest(cluster).await?,
        _ => None,
    };
    // What is exactly as the last run left it is not sent again.
    let untouched = accepted
        .as_ref()
        .map(|a| plan::untouched(plan, state, a))
        .unwrap_or_default();
    if !client_dry_run {
        let refused = validate(cluster, plan, state, accepted.as_ref(), options).await;
        if let Some((first, rest)) = refused.split_first() {
            for e in rest {
                crate::output::error(&e.to_string());
            }
            return Err(anyhow::anyhow!("{first}").context(format!(
                "the API server would refuse {} object(s) (a server-side dry run or the schema says so); nothing was applied",
                refused.len()
            )));
        }
    }
    let live = Live::from_objects(
        state
            .inventory
            .iter()
            .flat_map(|i| i.members.iter().chain(std::iter::once(&i.parent)))
            .chain(&state.namespace),
    );

    let mut tally = Tally::default();
    // Where each object was left, for the revision.
    let mut versions: BTreeMap<String, String> = state
        .inventory
        .iter()
        .flat_map(|i| &i.members)
        .filter(|m| untouched.contains(&apply::key(m)))
        .filter_map(|m| Some((revision::key(m), m.metadata.resource_version.clone()?)))
        .collect();
    // The parent as the first apply left it, so the last apply reports against that.
    let mut first_parent: Option<(Outcome, Object)> = None;
    let mut failures: Vec<ApplyError> = Vec::new();
    for phase in [Phase::Foundation, Phase::Operator, Phase::Stack] {
        let phase_started = Instant::now();
        let mut phase_tally = Tally::default();
        let (kept, batch): (Vec<&Object>, Vec<&Object>) = plan
            .phase(phase)
            .partition(|o| untouched.contains(&apply::key(o)));
        for o in kept {
            say!("{} unchanged{mode}", display_name(o));
            phase_tally.add("unchanged");
        }
        let batch: Vec<Object> = batch.into_iter().cloned().collect();
        if client_dry_run {
            for o in &batch {
                let outcome = if live.contains(&apply::key(o)) {
                    "configured"
                } else {
                    "created"
                };
                let why = match &plan.adopted_namespace {
                    Some(ns) if ns == o => adopted_note(),
                    _ => String::new(),
                };
                say!("{} {outcome}{mode}{why}", display_name(o));
                phase_tally.add(outcome);
            }
        } else {
            let results = apply::apply_all(cluster, &batch, &live, options, IN_FLIGHT).await;
            for r in results {
                match r {
                    Ok((_, applied))
                        if kind(&applied) == "Namespace"
                            && applied.data["status"]["phase"] == "Terminating" =>
                    {
                        anyhow::bail!(
                            "namespace {:?} is being deleted; wait until it is gone (kubectl get namespace {0}) and run enable again",
                            applied.metadata.name.as_deref().unwrap_or_default()
                        );
                    }
                    Ok((outcome, applied)) => {
                        let why = match &plan.adopted_namespace {
                            Some(ns)
                                if outcome != Outcome::Unchanged
                                    && apply::key(ns) == apply::key(&applied) =>
                            {
                                adopted_note()
                            }
                            _ => String::new(),
                        };
                        say!("{} {}{mode}{why}", display_name(&applied), outcome.as_str());
                        phase_tally.add(outcome.as_str());
                        if let Some(rv) = &applied.metadata.resource_version {
                            versions.insert(revision::key(&applied), rv.clone());
                        }
                    }
                    Err(e) => failures.push(e),
                }
            }
        }
        if !failures.is_empty() {
            break;
        }
        // A server dry run cannot validate objects in a namespace that does not exist yet
        // (its creation was a dry run too): say so and show the rest as a client dry run.
        if phase == Phase::Foundation
            && options.dry_run
            && !live.contains(&namespace_key(&namespace))
        {
            crate::output::diag!(
                "note: namespace {namespace:?} does not exist yet, so the server cannot dry-run the objects in it; they are shown as a client dry run"
            );
            client_dry_run = true;
        }
        if phase == Phase::Foundation && !client_dry_run {
            first_parent = Some(apply_parent(cluster, &plan.first_parent, &live, options).await?);
            if !options.dry_run && !plan.wait_for.is_empty() {
                let t = Instant::now();
                crds::wait_established(
                    cluster,
                    &plan.wait_for,
                    deadline.saturating_duration_since(Instant::now()),
                )
                .await?;
                say!("CRDs      established in {}", secs(t.elapsed()));
            }
        }
        if phase_tally.total() > 0 {
            say!(
                "{:<9} {}: {}  {}",
                phase_label(phase),
                crate::output::plural(phase_tally.total(), "object"),
                phase_tally.summary(),
                p.dim(&secs(phase_started.elapsed()))
            );
        }
        for (k, n) in phase_tally.0 {
            *tally.0.entry(k).or_default() += n;
        }
    }
    let executed = |tally, versions: &BTreeMap<String, String>, stopped| {
        Ok(Executed {
            tally,
            payload: revision::encode(&objects, versions)?,
            stopped,
            wait_for: rollout::expected(&plan.members),
            namespace: namespace.clone(),
            own_prometheus: plan.reuse.is_none(),
            deadline,
        })
    };
    if !failures.is_empty() {
        // The first failure ends the run (and picks the exit code); the others are listed.
        let first = failures.remove(0);
        for f in &failures {
            crate::output::error(&f.to_string());
        }
        let stopped = anyhow::Error::new(first).context(format!(
            "stopped: {} could not be applied; nothing after this phase was sent",
            crate::output::plural(1 + failures.len(), "object")
        ));
        return executed(tally, &versions, Some(stopped));
    }

    // Prune what the plan no longer has, in reverse phase order, then write the exact parent.
    for o in &plan.prune {
        if !client_dry_run {
            apply::delete(cluster, o, options.dry_run)
                .await
                .with_context(|| format!("pruning {}", display_name(o)))?;
        }
        say!("{} pruned{mode}", display_name(o));
        tally.add("pruned");
    }
    if client_dry_run {
        let outcome = if live.contains(&apply::key(&plan.final_parent)) {
            "configured"
        } else {
            "created"
        };
        say!("{} {outcome}{mode}", display_name(&plan.final_parent));
        tally.add(outcome);
    } else {
        let (outcome, parent) = match &first_parent {
            // The first write was already exact (no kind came or went): nothing to send.
            Some((first, applied)) if plan.first_parent == plan.final_parent => {
                (*first, applied.clone())
            }
            Some((first, applied)) => {
                let (again, now) = apply_parent(
                    cluster,
                    &plan.final_parent,
                    &Live::from_objects([applied]),
                    options,
                )
                .await?;
                // Created by the first apply: it was created, whatever the last one changed.
                let outcome = match (first, again) {
                    (Outcome::Created, _) => Outcome::Created,
                    (first, Outcome::Unchanged) => *first,
                    _ => Outcome::Configured,
                };
                (outcome, now)
            }
            None => apply_parent(cluster, &plan.final_parent, &live, options).await?,
        };
        say!("{} {}{mode}", display_name(&parent), outcome.as_str());
        tally.add(outcome.as_str());
        if let Some(rv) = &parent.metadata.resource_version {
            versions.insert(revision::key(&parent), rv.clone());
        }
    }

    let grafana = plan
        .members
        .iter()
        .any(|o| render::component(o) == Some("grafana"));
    // Already a member: the inventory just read has it, no need to ask.
    let has_secret = state.inventory.as_ref().is_some_and(|i| {
        i.members
            .iter()
            .any(|m| kind(m) == "Secret" && m.metadata.name.as_deref() == Some(ADMIN_SECRET))
    });
    // The admin Secret is one of the run's objects every time, so that every run (a dry run,
    // the first, the next) counts the same objects.
    if grafana {
        let created = match (has_secret, run.writes()) {
            (true, _) => false,
            (false, true) => ensure_admin_secret(cluster, &plan.final_parent).await?,
            (false, false) => true,
        };
        if created {
            say!(
                "secret/{ADMIN_SECRET} created{mode} (a random Grafana admin password; read it with: kubectl get secret {ADMIN_SECRET} -n {namespace} -o jsonpath='{{.data.admin-password}}' | base64 -d)"
            );
            tally.add("created");
        } else {
            say!("secret/{ADMIN_SECRET} unchanged{mode}");
            tally.add("unchanged");
        }
    }

    executed(tally, &versions, None)
}

/// `--wait`'s last part: Prometheus' first scrape of every target, so that the `status` that
/// follows judges what was scraped.
async fn first_scrape(cluster: &Cluster, deadline: Instant) -> anyhow::Result<()> {
    use rollout::FirstScrape;
    let started = Instant::now();
    match rollout::wait_first_scrape(cluster, deadline).await {
        FirstScrape::Healthy { targets } => say!(
            "Scraped   Prometheus has scraped every target ({} up) in {}",
            targets,
            secs(started.elapsed())
        ),
        FirstScrape::NoAnswer(why) => crate::output::warning(&format!(
            "Prometheus did not answer ({why}): `kubectl automon status` says Unverified until it does; `kubectl automon doctor` tells why"
        )),
        FirstScrape::Degraded(problems) => crate::output::warning(&format!(
            "Prometheus scrapes, and status finds: {}; see `kubectl automon status`",
            problems.join("; ")
        )),
        FirstScrape::TimedOut(pending) => {
            return Err(rollout::NotReady {
                waited: started.elapsed(),
                not_ready: pending
                    .into_iter()
                    .map(|p| format!("{p} not scraped yet"))
                    .collect(),
            }
            .into());
        }
    }
    Ok(())
}

/// Dry-runs, server-side and concurrently, every object of the plan that the server can judge
/// before anything is written (its namespace exists, its CRD exists and is not about to
/// change) and that is not exactly what the server last accepted (`accepted`, the latest
/// revision). CRDs are not dry-run: they are large, go first, and their own apply is the check.
/// The refusals; conflicts are left to the apply, which names them.
async fn validate(
    cluster: &Cluster,
    plan: &Plan,
    state: &ClusterState,
    accepted: Option<&revision::Payload>,
    options: ApplyOptions,
) -> Vec<ApplyError> {
    let mut missing = plan::missing_crds(state, plan.objects());
    missing.extend(
        plan.objects()
            .filter_map(resources::of)
            .filter(|k| plan.wait_for.contains(&plan::crd_name(k))),
    );
    let (check, local): (Vec<Object>, Vec<Object>) = plan
        .objects()
        .filter(|o| kind(o) != "CustomResourceDefinition")
        .filter(|o| accepted.is_none_or(|a| !a.objects.contains(o)))
        .cloned()
        .partition(|o| plan::can_dry_run(o, state.namespace_exists, &missing));
    let dry = ApplyOptions {
        dry_run: true,
        ..options
    };
    let nothing_live = Live::default();
    let (dry_run, schemas) = futures::join!(
        apply::apply_all(cluster, &check, &nothing_live, dry, IN_FLIGHT),
        against_schemas(cluster, plan, &local)
    );
    dry_run
        .into_iter()
        .filter_map(|r| match r {
            Err(e @ ApplyError::Invalid { .. }) => Some(e),
            _ => None,
        })
        .chain(schemas)
        .collect()
}

/// What the server cannot dry-run yet (its namespace or CRD is not there, or its CRD is about
/// to change) is checked against the schema it will be judged by: the CRD the plan applies, or
/// the one the server publishes for its type. An object no schema is found for is left to the
/// apply.
async fn against_schemas(cluster: &Cluster, plan: &Plan, objects: &[Object]) -> Vec<ApplyError> {
    if objects.is_empty() {
        return Vec::new();
    }
    let crds: Vec<&Object> = plan
        .objects()
        .filter(|o| kind(o) == "CustomResourceDefinition")
        .collect();
    let from_crds = crate::schema::crd_schemas(&crds);
    let gvk = |o: &Object| {
        let av = render::api_version(o);
        let (group, version) = av.rsplit_once('/').unwrap_or(("", av));
        (group.to_string(), version.to_string(), kind(o).to_string())
    };
    let server_side: Vec<&Object> = objects
        .iter()
        .filter(|o| !from_crds.contains_key(&gvk(o)))
        .collect();
    let published = if server_side.is_empty() {
        None
    } else {
        match crate::schema::Published::index(cluster).await {
            Ok(mut p) => {
                p.load(
                    cluster,
                    server_side
                        .iter()
                        .map(|o| crate::schema::group_version_path(render::api_version(o))),
                )
                .await;
                Some(p)
            }
            // A server that publishes no OpenAPI v3 leaves these to the apply.
            Err(_) => None,
        }
    };
    // Each type's schema once, however many objects it has.
    let mut resolved = std::collections::HashMap::new();
    for o in &server_side {
        resolved.entry(gvk(o)).or_insert_with(|| {
            published
                .as_ref()
                .and_then(|p| p.schema(render::api_version(o), kind(o)))
        });
    }
    let value = |o: &Object| serde_json::to_value(o).expect("objects serialise");
    objects
        .iter()
        .filter_map(|o| {
            let problems = match from_crds.get(&gvk(o)) {
                Some(schema) => crate::schema::check(&value(o), schema, None, true),
                None => {
                    let (doc, schema) = resolved.get(&gvk(o))?.as_ref()?;
                    crate::schema::check(&value(o), schema, Some(doc), false)
                }
            };
            (!problems.is_empty()).then(|| ApplyError::Invalid {
                object: display_name(o),
                message: format!(
                    "its schema says: {}",
                    problems
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            })
        })
        .collect()
}

/// Creates the Grafana admin Secret with a random password unless it exists: never overwritten,
/// never printed. It joins the ApplySet so that `disable` removes it with the rest.
async fn ensure_admin_secret(cluster: &Cluster, parent: &Object) -> anyhow::Result<bool> {
    use k8s_openapi::api::core::v1::Secret;
    let api: kube::Api<Secret> = kube::Api::namespaced(cluster.client.clone(), &cluster.namespace);
    // Created outright: one that exists already answers 409 and stands (one round trip, not a
    // read first).
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no random source for the Grafana password: {e}"))?;
    use base64::Engine;
    let password = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let secret = render::grafana::admin_secret(parent, &password);
    let pp = kube::api::PostParams {
        field_manager: Some(apply::FIELD_MANAGER.into()),
        ..Default::default()
    };
    match api.create(&pp, &secret).await {
        Ok(_) => Ok(true),
        // There already (a user's, or a concurrent run's): it stands.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(cluster.target.classify(e).into()),
    }
}

/// What `enable` says of the user's namespace when it labels it.
fn adopted_note() -> String {
    let labels: Vec<String> = render::namespace::pod_security_labels()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        " (it was there before: kept as yours, never deleted by disable; labelled {} because node-exporter needs the host's network, PIDs and read-only host paths, which only the privileged level admits)",
        labels.join(", ")
    )
}

fn namespace_key(namespace: &str) -> apply::Key {
    ("Namespace".into(), String::new(), namespace.into())
}

fn phase_label(p: Phase) -> &'static str {
    match p {
        Phase::Foundation => "Namespace",
        Phase::Operator => "Operator",
        Phase::Stack => "Stack",
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Applies the ApplySet parent; the run says what became of it once, after its last write.
async fn apply_parent(
    cluster: &Cluster,
    parent: &Object,
    live: &Live,
    options: ApplyOptions,
) -> anyhow::Result<(Outcome, Object)> {
    let applied = apply::server_side_apply(cluster, parent, options).await?;
    let outcome = live.outcome(&applied, options.dry_run);
    Ok((outcome, applied))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_says_nothing_changed() {
        let mut t = Tally::default();
        t.add("unchanged");
        t.add("unchanged");
        assert_eq!(t.changed(), 0);
        assert_eq!(t.summary(), "2 unchanged");
        t.add("created");
        assert_eq!(t.summary(), "1 created, 2 unchanged");
    }
}
