//! Executing a plan: the phases (namespace and CRDs → Established → operator and RBAC →
//! everything else), each applied server-side in parallel with the parent around them; the
//! prune of what an earlier run had and this one has not; the Grafana admin Secret; then the
//! revision and, when asked, the wait. Every line it says goes through the output module.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::Context as _;

use super::{DryRun, IN_FLIGHT, Options, replace::Replacing, surge, validate};
use crate::{
    cluster::{
        Cluster,
        apply::{self, ApplyError, ApplyOptions, Live, Outcome},
        crds, inventory, revision,
    },
    model::{
        Object, group_kind, kind,
        resources::{self, display_name},
    },
    output::{Palette, say},
    pipeline::rollout::{self, secs},
    plan::{self, ClusterState, Plan},
    render::{self, Phase, grafana::ADMIN_SECRET},
    status::workloads,
};

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
    fn merge(&mut self, other: Tally) {
        for (k, n) in other.0 {
            *self.0.entry(k).or_default() += n;
        }
    }
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
    /// The scrape interval of the stack's own Prometheus, when it answers `status` (not
    /// another operator's).
    own_prometheus: Option<Duration>,
    deadline: Instant,
}

impl Executed {
    /// Records a revision saying `change` when something changed (keeping `history_max`),
    /// waits when asked, and prints the `Done` line.
    pub async fn finish(
        mut self,
        cluster: &Cluster,
        options: &Options,
        change: &str,
        history_max: u32,
        started: Instant,
    ) -> anyhow::Result<()> {
        let writes = options.dry_run.writes();
        if writes && self.tally.changed() > 0 {
            // A run that stopped half-way is recorded too: what it applied is in the cluster,
            // and `history`/`rollback` must know it.
            let change = match &self.stopped {
                Some(_) => format!("{change} (stopped before the end)"),
                None => change.to_string(),
            };
            let payload = std::mem::take(&mut self.payload);
            let n = revision::record(cluster, payload, &change, history_max).await?;
            say!("Revision  {n} recorded ({change})");
        }
        if let Some(e) = self.stopped {
            return Err(e);
        }
        if options.wait && writes {
            let remaining = self.deadline.saturating_duration_since(Instant::now());
            rollout::wait(cluster, &self.namespace, &self.wait_for, remaining).await?;
            if let Some(interval) = self.own_prometheus {
                first_scrape(cluster, self.deadline, interval).await?;
            }
        }
        let objects = crate::output::plural(self.tally.total(), "object");
        let done = if self.tally.changed() == 0 && writes {
            format!("{objects}: {}. Nothing to do.", self.tally.summary())
        } else {
            format!(
                "{objects}: {}{}.",
                self.tally.summary(),
                options.dry_run.suffix()
            )
        };
        say!(
            "Done      {done} {}",
            Palette::stdout().dim(&format!("({})", secs(started.elapsed())))
        );
        Ok(())
    }
}

/// Runs a plan: the phases with the parent around them, the prune, the Grafana admin Secret.
/// `enable`, `rollback` and `reconcile` all execute through here.
pub async fn execute(
    cluster: &Cluster,
    plan: &Plan,
    state: &ClusterState,
    options: &Options,
    started: Instant,
) -> anyhow::Result<Executed> {
    let mut run = Run::new(cluster, plan, state, options, started)?;
    run.announce()?;
    run.validate().await?;
    if let Some(stopped) = run.phases().await? {
        return run.executed(Some(stopped));
    }
    run.prune().await?;
    run.final_parent().await?;
    run.admin_secret().await?;
    run.executed(None)
}

/// One execution in progress: what it was given and what it has done so far.
struct Run<'a> {
    cluster: &'a Cluster,
    plan: &'a Plan,
    state: &'a ClusterState,
    options: &'a Options,
    deadline: Instant,
    /// What each printed line ends with.
    mode: &'static str,
    /// Nothing is sent: true for `--dry-run=client`, and for a server dry run once the
    /// namespace turns out not to exist yet.
    client_dry_run: bool,
    apply: ApplyOptions,
    live: Live<'a>,
    /// What is exactly as the last run left it: not sent again.
    untouched: std::collections::BTreeSet<apply::Key>,
    tally: Tally,
    /// Where each object was left, for the revision.
    versions: BTreeMap<String, String>,
    /// The parent as the first apply left it, so the last apply reports against that.
    first_parent: Option<(Outcome, Object)>,
    /// What the latest revision says automon last applied here.
    accepted: Option<revision::Payload>,
    /// The Prometheus and Alertmanager objects whose pods this run replaces.
    replacing: Option<Replacing>,
    /// The operator phase changed the operator's Deployment of a stack that was there.
    operator_changed: bool,
}

impl<'a> Run<'a> {
    fn new(
        cluster: &'a Cluster,
        plan: &'a Plan,
        state: &'a ClusterState,
        options: &'a Options,
        started: Instant,
    ) -> anyhow::Result<Self> {
        // Too large to record stops the run before it changes anything.
        revision::encode(plan.objects(), &BTreeMap::new())?;
        let live = Live::from_objects(
            state
                .inventory
                .iter()
                .flat_map(|i| i.members.iter().chain(std::iter::once(&i.parent)))
                .chain(&state.namespace),
        );
        Ok(Run {
            cluster,
            plan,
            state,
            options,
            deadline: started + options.timeout,
            mode: options.dry_run.suffix(),
            client_dry_run: options.dry_run == DryRun::Client,
            apply: ApplyOptions {
                dry_run: options.dry_run == DryRun::Server,
                force: options.force_conflicts,
            },
            live,
            untouched: Default::default(),
            tally: Tally::default(),
            versions: BTreeMap::new(),
            first_parent: None,
            accepted: None,
            replacing: None,
            operator_changed: false,
        })
    }

    /// What the run follows: the CRDs, another operator, another exporter, the plan's warnings.
    fn announce(&self) -> anyhow::Result<()> {
        let (plan, state) = (self.plan, self.state);
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
            let left_out = crate::plan::LeftOut::of_parent(&plan.final_parent.metadata);
            let scraping = if left_out
                .service_monitors
                .contains(crate::render::node_exporter::NAME)
            {
                "its own stack's Prometheus scrapes it, automon reads those series"
            } else {
                "scraping it"
            };
            say!(
                "Exporter  {} serves port {} on the nodes: {scraping}, deploying no node-exporter of its own",
                h.describe(),
                h.port
            );
        }
        let left_out = crate::plan::LeftOut::of_parent(&plan.final_parent.metadata);
        let ksm = crate::render::kube_state_metrics::NAME;
        if let Some(theirs) = left_out.reads_theirs.get(ksm) {
            let by = (state.existing.as_ref())
                .and_then(|f| f.already.scrapes.get(ksm))
                .map_or_else(
                    || "another stack".to_string(),
                    |by| format!("servicemonitor {by}"),
                );
            say!(
                "Exporter  {ksm} reads {by}'s series (job {theirs}); automon's own exports only {} (the node labels its coverage check reads), as job {}",
                crate::render::kube_state_metrics::NODE_LABELS,
                crate::plan::own_job(ksm)
            );
        }
        for w in &plan.warnings {
            crate::output::warning(&w.to_string());
        }
        Ok(())
    }

    /// Nothing the API server would refuse gets past this point: every object it can judge now
    /// and that differs from what it last accepted here (the latest revision) is dry-run first,
    /// all at once; a refusal of any stops the run before its first write. What is exactly as
    /// the last run left it is not sent again.
    async fn validate(&mut self) -> anyhow::Result<()> {
        let accepted = match &self.state.inventory {
            Some(_) if !self.client_dry_run => revision::latest(self.cluster).await?,
            _ => None,
        };
        if let Some(accepted) = &accepted {
            self.untouched = plan::untouched(self.plan, self.state, accepted);
        }
        self.accepted = accepted;
        self.versions = self
            .state
            .inventory
            .iter()
            .flat_map(|i| &i.members)
            .filter(|m| self.untouched.contains(&apply::key(m)))
            .filter_map(|m| Some((revision::key(m), m.metadata.resource_version.clone()?)))
            .collect();
        if self.client_dry_run {
            return Ok(());
        }
        self.whole_crds().await?;
        let refused = validate::refusals(
            self.cluster,
            self.plan,
            self.state,
            self.accepted.as_ref(),
            self.apply,
        )
        .await;
        let Some((first, rest)) = refused.split_first() else {
            return Ok(());
        };
        for e in rest {
            crate::output::error(&e.to_string());
        }
        Err(anyhow::anyhow!("{first}").context(format!(
            "the API server would refuse {} object(s) (a server-side dry run or the schema says so); nothing was applied",
            refused.len()
        )))
    }

    /// A server dry run tells unchanged from configured by content: the CRDs it sends are
    /// compared with the cluster's whole, not with the metadata the inventory read of them.
    async fn whole_crds(&mut self) -> anyhow::Result<()> {
        let sends_crds = (self.plan.objects()).any(|o| kind(o) == "CustomResourceDefinition");
        if let Some(inventory) = &self.state.inventory
            && self.apply.dry_run
            && sends_crds
        {
            for crd in inventory::whole_crds(self.cluster, inventory).await? {
                self.live.insert(crd);
            }
        }
        Ok(())
    }

    /// The three phases in order; the first refused object stops the run after its phase
    /// (`Some`: why, with what was applied still recorded).
    async fn phases(&mut self) -> anyhow::Result<Option<anyhow::Error>> {
        for phase in [Phase::Foundation, Phase::Operator, Phase::Stack] {
            match phase {
                Phase::Operator => self.surge().await?,
                Phase::Stack => self.operator_rolled_out().await?,
                Phase::Foundation => {}
            }
            let started = Instant::now();
            let (phase_tally, mut failures) = self.phase(phase).await?;
            if !failures.is_empty() {
                self.tally.merge(phase_tally);
                // The first failure ends the run (and picks the exit code); the others are listed.
                let first = failures.remove(0);
                for f in &failures {
                    crate::output::error(&f.to_string());
                }
                return Ok(Some(anyhow::Error::new(first).context(format!(
                    "stopped: {} could not be applied; nothing after this phase was sent",
                    crate::output::plural(1 + failures.len(), "object")
                ))));
            }
            if phase == Phase::Foundation {
                self.after_foundation().await?;
            }
            if phase_tally.total() > 0 {
                say!(
                    "{:<9} {}: {}  {}",
                    phase_label(phase),
                    crate::output::plural(phase_tally.total(), "object"),
                    phase_tally.summary(),
                    Palette::stdout().dim(&secs(started.elapsed()))
                );
            }
            self.tally.merge(phase_tally);
        }
        if let Some(mut replacing) = self.replacing.take() {
            let (cluster, apply, deadline) = (self.cluster, self.apply, self.deadline);
            let mut applied = Vec::new();
            let down = replacing
                .down(cluster, apply, deadline, |o| applied.push(o.clone()))
                .await;
            for o in &applied {
                self.record(o);
            }
            if let Err(e) = down {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    /// Before the operator and the stack change: the Prometheus and Alertmanager whose pods
    /// they replace, each with one replica lent a second ([`Replacing::up`]). Not in a dry run.
    async fn surge(&mut self) -> anyhow::Result<()> {
        if !self.options.dry_run.writes() || self.client_dry_run {
            return Ok(());
        }
        let mut replacing = Replacing::of(self.plan, self.state, self.accepted.as_ref());
        replacing
            .up(self.cluster, self.apply, self.deadline)
            .await?;
        // Sent by the stack phase whatever the last run left: with two replicas.
        for key in replacing.surged() {
            self.untouched.remove(&key);
        }
        self.replacing = Some(replacing);
        Ok(())
    }

    /// Before the stack phase of an upgrade: an operator Deployment that changed (a newer
    /// operator) runs alone before the objects it reads are sent, so that what uses fields of
    /// the newer CRDs is reconciled by an operator that knows them, never by the old one; the
    /// StatefulSets it then rewrites carry its config-reloader. Nothing to wait out when no old
    /// operator was running (a first install, one that had crashed), or in a dry run.
    async fn operator_rolled_out(&mut self) -> anyhow::Result<()> {
        if !self.operator_changed
            || !self.options.dry_run.writes()
            || self.client_dry_run
            || !surge::operator_available(self.plan, self.state)
        {
            return Ok(());
        }
        let Some(operator) = surge::operator_deployment(self.plan) else {
            return Ok(());
        };
        let name = operator.metadata.name.as_deref().unwrap_or_default();
        let took = rollout::wait_deployment(self.cluster, &self.plan.namespace, name, self.deadline)
            .await
            .context("the changed operator did not roll out, so the stack's objects were not sent; see `kubectl automon status`")?;
        say!(
            "Operator  rolled out in {}: the new operator (deployment {name}) reads what follows",
            secs(took)
        );
        if let Some(replacing) = self.replacing.as_mut() {
            replacing.operator_rolled_out(operator);
        }
        Ok(())
    }

    /// One phase's objects: the untouched said so, the rest applied (or described in a client
    /// dry run). Its tally and the objects the server refused.
    async fn phase(&mut self, phase: Phase) -> anyhow::Result<(Tally, Vec<ApplyError>)> {
        let mode = self.mode;
        let mut tally = Tally::default();
        let (kept, batch): (Vec<&Object>, Vec<&Object>) = self
            .plan
            .phase(phase)
            .partition(|o| self.untouched.contains(&apply::key(o)));
        for o in kept {
            say!("{} unchanged{mode}", display_name(o));
            tally.add("unchanged");
        }
        // What is lent a second replica keeps it through its rollout.
        let batch: Vec<Object> = batch
            .into_iter()
            .map(|o| {
                self.replacing
                    .as_ref()
                    .and_then(|r| r.during(o))
                    .unwrap_or_else(|| o.clone())
            })
            .collect();
        if self.client_dry_run {
            for o in &batch {
                let outcome = self.would_be(o);
                say!(
                    "{} {outcome}{mode}{}",
                    display_name(o),
                    self.adopted(o, true)
                );
                tally.add(outcome);
            }
            return Ok((tally, Vec::new()));
        }
        let mut failures = Vec::new();
        // Custom resources are sent first and said in the plan's order: the first write of a
        // type whose CRD was just created waits while the API server builds its storage
        // (0.3-0.5 s for the operator's largest), which then overlaps the rest of the phase.
        let mut sent: Vec<(usize, Object)> = batch.into_iter().enumerate().collect();
        sent.sort_by_key(|(_, o)| !custom_resource(o));
        let (order, batch): (Vec<usize>, Vec<Object>) = sent.into_iter().unzip();
        let results =
            apply::apply_all(self.cluster, &batch, &self.live, self.apply, IN_FLIGHT).await;
        let mut results: Vec<_> = order.into_iter().zip(results).collect();
        results.sort_by_key(|(i, _)| *i);
        for (_, r) in results {
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
                    if phase == Phase::Operator
                        && kind(&applied) == "Deployment"
                        && outcome == Outcome::Configured
                    {
                        self.operator_changed = true;
                    }
                    let why = self.adopted(&applied, outcome != Outcome::Unchanged);
                    say!("{} {}{mode}{why}", display_name(&applied), outcome.as_str());
                    tally.add(outcome.as_str());
                    self.record(&applied);
                }
                Err(e) => failures.push(e),
            }
        }
        Ok((tally, failures))
    }

    /// After the namespace and the CRDs: the parent's first write, and the CRDs Established.
    /// A server dry run cannot validate objects in a namespace that does not exist yet, nor
    /// custom resources whose CRD does not (their creation was a dry run too): say so and show
    /// the rest as a client dry run.
    async fn after_foundation(&mut self) -> anyhow::Result<()> {
        let namespace = &self.plan.namespace;
        let new_crds: Vec<&str> = (self.plan.wait_for.iter())
            .filter(|name| !self.state.crds.contains_key(*name))
            .map(String::as_str)
            .collect();
        if self.apply.dry_run && !self.live.contains(&namespace_key(namespace)) {
            crate::output::diag!(
                "note: namespace {namespace:?} does not exist yet, so the server cannot dry-run the objects in it; they are shown as a client dry run"
            );
            self.client_dry_run = true;
        } else if self.apply.dry_run && !new_crds.is_empty() {
            let (are, them) = if new_crds.len() == 1 {
                ("is", "it")
            } else {
                ("are", "them")
            };
            crate::output::diag!(
                "note: {} {are} not in the cluster yet, so the server cannot dry-run the custom resources of {them}; the rest is shown as a client dry run",
                crate::output::plural(new_crds.len(), "CRD"),
            );
            self.client_dry_run = true;
        }
        if self.client_dry_run {
            return Ok(());
        }
        self.first_parent = Some(
            apply_parent(
                self.cluster,
                &self.plan.first_parent,
                &self.live,
                self.apply,
            )
            .await?,
        );
        if !self.apply.dry_run && !self.plan.wait_for.is_empty() {
            let t = Instant::now();
            let remaining = self.deadline.saturating_duration_since(Instant::now());
            crds::wait_established(self.cluster, &self.plan.wait_for, remaining).await?;
            say!("CRDs      established in {}", secs(t.elapsed()));
        }
        Ok(())
    }

    /// Prunes what the plan no longer has, in reverse phase order.
    async fn prune(&mut self) -> anyhow::Result<()> {
        for o in &self.plan.prune {
            if !self.client_dry_run {
                apply::delete(self.cluster, o, self.apply.dry_run)
                    .await
                    .with_context(|| format!("pruning {}", display_name(o)))?;
            }
            say!("{} pruned{}", display_name(o), self.mode);
            self.tally.add("pruned");
        }
        Ok(())
    }

    /// The exact parent, last: what it lists is what the cluster now holds.
    async fn final_parent(&mut self) -> anyhow::Result<()> {
        let plan = self.plan;
        if self.client_dry_run {
            let outcome = self.would_be(&plan.final_parent);
            say!(
                "{} {outcome}{}",
                display_name(&plan.final_parent),
                self.mode
            );
            self.tally.add(outcome);
            return Ok(());
        }
        let (outcome, parent) = match &self.first_parent {
            // The first write was already exact (no kind came or went): nothing to send.
            Some((first, applied)) if plan.first_parent == plan.final_parent => {
                (*first, applied.clone())
            }
            Some((first, applied)) => {
                let (again, now) = apply_parent(
                    self.cluster,
                    &plan.final_parent,
                    &Live::from_objects([applied]),
                    self.apply,
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
            None => apply_parent(self.cluster, &plan.final_parent, &self.live, self.apply).await?,
        };
        say!(
            "{} {}{}",
            display_name(&parent),
            outcome.as_str(),
            self.mode
        );
        self.tally.add(outcome.as_str());
        self.record(&parent);
        Ok(())
    }

    /// The Grafana admin Secret is one of the run's objects every time, so that every run (a
    /// dry run, the first, the next) counts the same objects.
    async fn admin_secret(&mut self) -> anyhow::Result<()> {
        let grafana = self
            .plan
            .members
            .iter()
            .any(|o| render::component(o) == Some("grafana"));
        if !grafana {
            return Ok(());
        }
        // Already a member: the inventory just read has it, no need to ask.
        let has_secret = self.state.inventory.as_ref().is_some_and(|i| {
            i.members
                .iter()
                .any(|m| kind(m) == "Secret" && m.metadata.name.as_deref() == Some(ADMIN_SECRET))
        });
        let created = match (has_secret, self.options.dry_run.writes()) {
            (true, _) => false,
            (false, true) => ensure_admin_secret(self.cluster, &self.plan.final_parent).await?,
            (false, false) => true,
        };
        let (mode, namespace) = (self.mode, &self.plan.namespace);
        if created {
            say!(
                "secret/{ADMIN_SECRET} created{mode} (a random Grafana admin password; read it with: kubectl get secret {ADMIN_SECRET} -n {namespace} -o jsonpath='{{.data.admin-password}}' | base64 -d)"
            );
            self.tally.add("created");
        } else {
            say!("secret/{ADMIN_SECRET} unchanged{mode}");
            self.tally.add("unchanged");
        }
        Ok(())
    }

    /// What a client dry run says of `o`.
    fn would_be(&self, o: &Object) -> &'static str {
        if self.live.contains(&apply::key(o)) {
            "configured"
        } else {
            "created"
        }
    }

    /// Why the user's own namespace is labelled, when `o` is that namespace and it changes.
    fn adopted(&self, o: &Object, changed: bool) -> String {
        match &self.plan.adopted_namespace {
            Some(ns) if changed && apply::key(ns) == apply::key(o) => adopted_note(),
            _ => String::new(),
        }
    }

    fn record(&mut self, applied: &Object) {
        if let Some(rv) = &applied.metadata.resource_version {
            self.versions.insert(revision::key(applied), rv.clone());
        }
    }

    fn executed(self, stopped: Option<anyhow::Error>) -> anyhow::Result<Executed> {
        Ok(Executed {
            payload: revision::encode(self.plan.objects(), &self.versions)?,
            tally: self.tally,
            stopped,
            wait_for: workloads::expected(&self.plan.members),
            namespace: self.plan.namespace.clone(),
            own_prometheus: self
                .plan
                .reuse
                .is_none()
                .then(|| scrape_interval(self.plan.objects())),
            deadline: self.deadline,
        })
    }
}

/// The scrape interval of the plan's `Prometheus` (Prometheus' default, 1m, when it says none).
fn scrape_interval<'a>(objects: impl Iterator<Item = &'a Object>) -> Duration {
    objects
        .filter(|o| crate::model::kind(o) == "Prometheus")
        .find_map(|o| {
            o.data["spec"]["scrapeInterval"]
                .as_str()
                .map(str::to_string)
        })
        .and_then(|s| crate::config::PromDuration(s).seconds().ok())
        .map_or(Duration::from_secs(60), Duration::from_secs)
}

/// `--wait`'s last part: Prometheus' first scrape of every target, so that the `status` that
/// follows judges what was scraped.
async fn first_scrape(
    cluster: &Cluster,
    deadline: Instant,
    scrape_interval: Duration,
) -> anyhow::Result<()> {
    use rollout::FirstScrape;
    let started = Instant::now();
    match rollout::wait_first_scrape(cluster, deadline, scrape_interval).await {
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

/// Applies the ApplySet parent; the run says what became of it once, after its last write.
async fn apply_parent(
    cluster: &Cluster,
    parent: &Object,
    live: &Live<'_>,
    options: ApplyOptions,
) -> anyhow::Result<(Outcome, Object)> {
    let applied = apply::server_side_apply(cluster, parent, options).await?;
    let outcome = live.outcome(&applied, options.dry_run);
    Ok((outcome, applied))
}

/// Whether `o` is a custom resource (its type served through a CRD).
fn custom_resource(o: &Object) -> bool {
    resources::by_group_kind(&group_kind(o)).is_some_and(crate::plan::is_custom)
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
