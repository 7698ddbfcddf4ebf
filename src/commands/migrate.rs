//! `migrate RELEASE --from-namespace NS`: from a kube-prometheus-stack Helm release to automon,
//! with no gap in monitoring. Three steps, each of which a second run finds done and carries on
//! from: automon installed beside the release (its own operator, Prometheus, Alertmanager and
//! exporters, the release's Prometheus kept from selecting them); coverage proved, target by
//! target, from both Prometheus' target APIs; the release removed as `helm uninstall` does, and
//! automon settled without the migration's settings. `--dry-run` reports what it would do,
//! `--keep-old` stops after the install.

use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::enable::{self, Loaded};
use crate::{
    cluster::service_proxy::{route_prefix, route_prefix_of},
    cluster::{Cluster, KubeFlags, parse_request_timeout},
    config::{Config, Migration, Values},
    exit::Verdict,
    migrate::{
        beside::{self, Beside},
        coverage,
        manifest::Fate,
        mapping::{Mapping, Outcome, Row},
        release::{Release, ReleaseError},
        survey::{self, Survey},
        uninstall,
    },
    output::{self, Format, Palette, plural, say},
    pipeline::{self, CrdsFrom},
    render,
    status::prometheus::Source,
};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit status: 0 migrated (or, with --dry-run, the report was printed; with --keep-old, both run side by side); 1 no such release, or automon's Prometheus does not scrape every target the release's did (nothing was removed); 2 the release is not kube-prometheus-stack; 3-7 as for every command."
)]
pub struct Args {
    /// The Helm release of kube-prometheus-stack to move from
    #[arg(value_name = "RELEASE")]
    release: String,
    /// The namespace of the release (helm's -n); -n is automon's own namespace
    #[arg(long, value_name = "NAMESPACE")]
    from_namespace: String,
    /// Show what the migration would do and change nothing
    #[arg(long)]
    dry_run: bool,
    /// Stop once automon runs beside the release (nothing is scraped twice); a second run
    /// without it proves coverage and removes the release
    #[arg(long)]
    keep_old: bool,
    /// With --dry-run: the report as tables, or the release's values mapped to automon's as a
    /// file `enable -f` takes (yaml, json)
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Only the migration's last step: remove the release as `helm uninstall` does (CRDs,
    /// volume claims and what is not the release's stay)
    #[arg(long, hide = true)]
    only_remove_release: bool,
    /// How long each step may take: the install, the proof of coverage (automon's Prometheus
    /// finding every target), the removal (e.g. 90s, 10m)
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_request_timeout)]
    timeout: Duration,
    #[command(flatten)]
    crds: super::args::CrdArgs,
}

pub async fn run(flags: &KubeFlags, args: Args) -> anyhow::Result<Verdict> {
    if !args.dry_run && !matches!(args.output, Format::Table) {
        output::diag!(
            "{} -o is for --dry-run (the report or the values); the migration itself prints its steps",
            Palette::stderr().bad("error:")
        );
        return Ok(Verdict::Usage);
    }
    let cluster = Cluster::connect(flags).await?;
    if args.only_remove_release {
        return remove(&cluster, &args).await;
    }
    let surveyed = survey::survey(&cluster, &args.release, &args.from_namespace).await;
    if args.dry_run {
        return dry_run(&cluster, &args, surveyed?);
    }
    let stored = stored_migration(&cluster).await?;
    let survey = match (surveyed, &stored) {
        (Ok(survey), _) => survey,
        // A run interrupted after the removal: only settling is left.
        (Err(e), Some((values, m)))
            if m.release == args.release
                && m.namespace == args.from_namespace
                && matches!(
                    e.downcast_ref::<ReleaseError>(),
                    Some(ReleaseError::NotFound { .. })
                ) =>
        {
            say!(
                "Release   {} in namespace {}: removed already; automon drops the migration's settings",
                args.release,
                args.from_namespace
            );
            return settle(cluster, &args, values).await;
        }
        (Err(e), _) => return Err(e),
    };
    let beside = beside::beside(&survey);
    say!(
        "{}",
        report(&survey, &cluster.namespace, jiff::Timestamp::now())
            .trim_end()
            .trim_end_matches("Nothing was changed (--dry-run).")
            .trim_end()
    );
    say!("{}", beside_report(&beside).trim_end());
    for warning in warnings(&survey) {
        output::warning(&warning);
    }
    if !survey.uninstall_hooks().is_empty() {
        anyhow::bail!(
            "release {} has hooks that `helm uninstall` runs; automon does not run them: remove the release with helm after installing automon beside it (`--keep-old`)",
            survey.release.name
        );
    }

    say!(
        "\nStep 1/3  automon beside release {} in namespace {}",
        survey.release.name,
        cluster.namespace
    );
    // The release's Prometheus first: automon's objects carry the labels it selects by, so
    // installed before the patch they would be scraped twice for a moment.
    let patched = exclude_automon(&cluster, &survey).await?;
    say!(
        "Release   {}",
        match patched.as_slice() {
            [] => "the release's Prometheus selects none of automon's objects: nothing is scraped twice while both run".to_string(),
            names => format!(
                "{} patched to select none of automon's objects ({}): nothing is scraped twice while both run",
                names.join(", "),
                beside::not_automons()
            ),
        }
    );
    let verdict = install(cluster.clone(), &args, beside.values.clone(), "beside").await?;
    if verdict != Verdict::Done {
        return Ok(verdict);
    }
    if args.keep_old {
        say!(
            "\nBoth run side by side, each Prometheus scraping its own targets once. Run `kubectl automon migrate {} --from-namespace {} -n {}` to prove coverage and remove the release.",
            args.release,
            args.from_namespace,
            cluster.namespace
        );
        return Ok(Verdict::Done);
    }

    say!(
        "\nStep 2/3  coverage: every target of release {}'s Prometheus scraped by automon's",
        survey.release.name
    );
    if !prove_coverage(&cluster, &args, &survey).await? {
        return Ok(Verdict::Differences);
    }

    say!(
        "\nStep 3/3  release {} removed as `helm uninstall` does; automon settled",
        survey.release.name
    );
    removal_done(&cluster, &args).await?;
    settle(cluster, &args, &beside.values).await
}

/// `--dry-run`: the report, or the values as a file.
fn dry_run(cluster: &Cluster, args: &Args, survey: Survey) -> anyhow::Result<Verdict> {
    match args.output {
        Format::Yaml => output::print(&values_file(&survey, args))?,
        Format::Json => output::print(&output::structured(
            Format::Json,
            &beside::settled(&beside::beside(&survey).values),
        )?)?,
        Format::Table | Format::Wide => {
            for warning in warnings(&survey) {
                output::warning(&warning);
            }
            let text = report(&survey, &cluster.namespace, jiff::Timestamp::now());
            let (head, tail) = text
                .rsplit_once("\nNothing was changed")
                .unwrap_or((&text, ""));
            output::print(&format!(
                "{head}\n{}\n\nNothing was changed{tail}",
                beside_report(&beside::beside(&survey)).trim_end()
            ))?;
        }
    }
    Ok(Verdict::Done)
}

/// The migration's settings automon's stored configuration holds, and its values: a run that
/// installed beside the release left them.
async fn stored_migration(cluster: &Cluster) -> anyhow::Result<Option<(Values, Migration)>> {
    let parent = match crate::cluster::inventory::parent_configmap(
        &cluster.client,
        &cluster.namespace,
    )
    .await
    {
        Ok(Some(parent)) => parent,
        Ok(None) => return Ok(None),
        Err(e) => return Err(cluster.target.classify(e).into()),
    };
    let (values, _) = crate::cluster::inventory::stored_values(&parent)
        .context("the configuration automon stored cannot be read")?;
    let config = Config::from_values(values.clone(), "the stored values")?;
    Ok(config.migration.map(|m| (values, m)))
}

/// `enable` with `values` (its literal credentials into their Secret), described in the
/// revision as the migration's `step`.
async fn install(
    cluster: Cluster,
    args: &Args,
    values: Values,
    step: &str,
) -> anyhow::Result<Verdict> {
    let started = Instant::now();
    let (values, credentials) = values.with_namespace(&cluster.namespace).sealed();
    let config = Config::from_values(values, "the migration's values")?;
    let loaded = Loaded {
        config,
        credentials,
        stored: None,
        recognised: None,
    };
    let change = format!(
        "migrate from release {} in {}: {step}",
        args.release, args.from_namespace
    );
    let options = pipeline::Options {
        dry_run: pipeline::DryRun::None,
        wait: false,
        timeout: args.timeout,
        force_conflicts: false,
    };
    let crds = CrdsFrom::new(args.crds.source(), args.crds.crds_from.clone());
    enable::install(
        cluster,
        loaded,
        &[],
        crds,
        &options,
        &|_| change.clone(),
        crate::cluster::revision::DEFAULT_MAX,
        started,
    )
    .await
}

/// Once the release is gone: automon with the same values, less the migration's own settings.
async fn settle(cluster: Cluster, args: &Args, values: &Values) -> anyhow::Result<Verdict> {
    let namespace = cluster.namespace.clone();
    let verdict = install(cluster, args, beside::settled(values), "settled").await?;
    if verdict == Verdict::Done {
        say!(
            "\nMigrated from release {} in namespace {}: automon in namespace {} monitors the cluster. `kubectl automon status -n {namespace}` shows it.",
            args.release,
            args.from_namespace,
            namespace
        );
    }
    Ok(verdict)
}

/// The release's Prometheus kept from selecting automon's objects while both run; the names of
/// those patched.
async fn exclude_automon(cluster: &Cluster, survey: &Survey) -> anyhow::Result<Vec<String>> {
    let mut patched = Vec::new();
    for p in survey.planned.iter().filter(|p| p.kind() == "Prometheus") {
        let Some(api) = p.api(cluster) else { continue };
        let live = match api.get_opt(p.name()).await {
            Ok(Some(live)) => live,
            Ok(None) => continue,
            Err(e) => return Err(cluster.target.classify(e).into()),
        };
        let Some(patch) = beside::excluding_automon(&live.data["spec"]) else {
            continue;
        };
        api.patch(
            p.name(),
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .map_err(|e| cluster.target.classify(e))
        .with_context(|| format!("cannot patch {}", p.display()))?;
        patched.push(format!(
            "prometheus {}/{}",
            p.namespace().unwrap_or_default(),
            p.name()
        ));
    }
    Ok(patched)
}

/// Whether automon's Prometheus scrapes every target the release's did, waiting up to the
/// timeout for it to find them; what it would lose is printed.
async fn prove_coverage(cluster: &Cluster, args: &Args, survey: &Survey) -> anyhow::Result<bool> {
    let deadline = Instant::now() + args.timeout;
    let (namespace, service, port) = release_prometheus(survey);
    // Each under the path its pods serve under (a release's `routePrefix`, automon's when
    // exposed under a path).
    let their_prefix = survey
        .planned
        .iter()
        .find(|p| p.kind() == "Prometheus")
        .map(|p| route_prefix(&p.object))
        .unwrap_or_default();
    let our_prefix = route_prefix_of(
        cluster,
        "Prometheus.monitoring.coreos.com",
        &cluster.namespace,
        render::prometheus::INSTANCE,
    )
    .await;
    let theirs = || Source::ServiceProxy {
        cluster,
        namespace: &namespace,
        service: &service,
        port: &port,
        prefix: their_prefix.clone(),
    };
    let ours = || Source::ServiceProxy {
        cluster,
        namespace: &cluster.namespace,
        service: render::prometheus::SERVICE,
        port: render::prometheus::PORT_NAME,
        prefix: our_prefix.clone(),
    };
    say!(
        "Coverage  asking both Prometheus through the API server (the release's at service {namespace}/{service}:{port}), for up to {}",
        output::age(args.timeout.as_secs() as i64)
    );
    loop {
        let (chart, automon) = futures::join!(
            coverage::active_targets(theirs(), ASK),
            coverage::active_targets(ours(), ASK)
        );
        let late = Instant::now() >= deadline;
        match (chart, automon) {
            (Ok(chart), Ok(automon)) => {
                let found = coverage::compare(&chart, &automon, &survey.release.name);
                if found.lost.is_empty() || late {
                    say!("{:<10}{}", "Coverage", found.summary());
                    for table in [
                        found.release_table(),
                        found.down_table(),
                        found.lost_table(),
                    ] {
                        if !table.is_empty() {
                            say!("\n{}", table.trim_end());
                        }
                    }
                    if !found.lost.is_empty() {
                        output::diag!(
                            "{} automon's Prometheus does not scrape {} that release {}'s did (above): nothing was removed. Both keep running; fix what the table says and run migrate again.",
                            Palette::stderr().bad("error:"),
                            plural(found.lost.len(), "target"),
                            survey.release.name
                        );
                    }
                    return Ok(found.lost.is_empty());
                }
            }
            (Err(e), _) | (_, Err(e)) if late => {
                output::diag!(
                    "{} coverage cannot be proved: {e}. Nothing was removed; both keep running. Run migrate again once both Prometheus answer.",
                    Palette::stderr().bad("error:")
                );
                return Ok(false);
            }
            _ => {}
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// How long one question to either Prometheus may take, and the pause between rounds while
/// automon's finds its targets.
const ASK: Duration = Duration::from_secs(10);
const RETRY: Duration = Duration::from_secs(5);

/// Where the release's Prometheus answers: the release's own Service in front of its pods
/// (selecting them by `operator.prometheus.io/name`), at the Prometheus' web port, else the
/// operator's `prometheus-operated` Service.
fn release_prometheus(survey: &Survey) -> (String, String, String) {
    let prometheus = survey.planned.iter().find(|p| p.kind() == "Prometheus");
    let name = prometheus.map(|p| p.name().to_string()).unwrap_or_default();
    let namespace = prometheus
        .and_then(|p| p.namespace())
        .unwrap_or(&survey.release.namespace)
        .to_string();
    let port_name = prometheus
        .and_then(|p| p.object.data["spec"]["portName"].as_str())
        .unwrap_or("web")
        .to_string();
    let service = survey.planned.iter().find(|p| {
        p.kind() == "Service"
            && p.object.data["spec"]["selector"]["operator.prometheus.io/name"] == name.as_str()
    });
    match service {
        Some(s) => {
            let ports = s.object.data["spec"]["ports"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let port = ports
                .iter()
                .find(|p| p["name"] == port_name.as_str())
                .or(ports.first())
                .and_then(|p| {
                    p["name"]
                        .as_str()
                        .map(str::to_string)
                        .or(p["port"].as_u64().map(|n| n.to_string()))
                })
                .unwrap_or(port_name);
            (
                s.namespace().unwrap_or(&namespace).to_string(),
                s.name().to_string(),
                port,
            )
        }
        None => (namespace, "prometheus-operated".to_string(), port_name),
    }
}

/// The removal, printed as one line per kind of outcome.
async fn removal_done(cluster: &Cluster, args: &Args) -> anyhow::Result<()> {
    let removed =
        uninstall::remove_release(cluster, &args.release, &args.from_namespace, args.timeout)
            .await?;
    say!(
        "Removed   {} deleted, {} kept, {} already gone, {} deleted ({}; where the old data is: see Keeps above)",
        plural(removed.deleted.len(), "object"),
        removed.kept.len(),
        removed.already_gone,
        plural(removed.records.len(), "release record"),
        "CRDs and PersistentVolumeClaims stay"
    );
    Ok(())
}

/// What the migration adds to the mapped values to run beside the release.
fn beside_report(beside: &Beside) -> String {
    let mut out = format!(
        "\n{:<10}{} the migration adds while automon runs beside the release (`migration` is dropped once the release is removed):\n\n",
        "Beside",
        plural(beside.settings.len(), "setting")
    );
    let rows: Vec<Vec<String>> = beside
        .settings
        .iter()
        .map(|s| vec![s.key.clone(), s.value.clone(), s.why.clone()])
        .collect();
    out.push_str(&output::table(&["setting", "value", "why"], &rows));
    out.push('\n');
    out
}

/// The mapped values as a file for `enable -f`, headed by where they came from.
fn values_file(survey: &Survey, args: &Args) -> String {
    let r = &survey.release;
    let not_carried = survey.mapping.not_carried().count();
    let mut text = format!(
        "# automon's values for Helm release {} ({}, revision {}) in namespace {}\n",
        r.name,
        r.chart_and_version(),
        r.revision,
        r.namespace
    );
    if not_carried > 0 {
        text.push_str(&format!(
            "# {} not carried over: see kubectl automon migrate {} --from-namespace {} --dry-run\n",
            plural(not_carried, "value"),
            args.release,
            args.from_namespace
        ));
    }
    text.push_str(&beside::settled(&beside::beside(survey).values).to_yaml());
    text
}

/// What the user should know before reading the report.
fn warnings(survey: &Survey) -> Vec<String> {
    let r = &survey.release;
    let mut out = Vec::new();
    if r.status != "deployed" {
        out.push(format!(
            "revision {} of release {} is {}, not deployed ({}): the values and objects below are that revision's",
            r.revision, r.name, r.status, r.description
        ));
    }
    let hooks = survey.uninstall_hooks();
    if !hooks.is_empty() {
        out.push(format!(
            "the release has hooks that `helm uninstall` runs ({}): automon does not run them, so its removal would stop",
            hooks.join(", ")
        ));
    }
    out
}

/// `deployed 3m ago`, from Helm's timestamp.
fn when(release: &Release, now: jiff::Timestamp) -> String {
    let at = release
        .last_deployed
        .as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    match at {
        Some(t) => format!(
            "{} {} ago",
            release.status,
            output::age(now.as_second() - t.as_second())
        ),
        None => release.status.clone(),
    }
}

/// The report `--dry-run` prints: the release, its values, the user's objects, the removal.
fn report(survey: &Survey, automon_namespace: &str, now: jiff::Timestamp) -> String {
    let r = &survey.release;
    let mut out = String::new();
    let line = |out: &mut String, head: &str, text: &str| {
        out.push_str(&format!("{head:<10}{text}\n"));
    };
    line(
        &mut out,
        "Release",
        &format!(
            "{} in namespace {}: {}, revision {}, {} ({})",
            r.name,
            r.namespace,
            r.chart_and_version(),
            r.revision,
            when(r, now),
            plural(survey.records.len(), "record")
        ),
    );
    values(&mut out, &survey.mapping, automon_namespace);
    yours(&mut out, survey);
    removal(&mut out, survey);
    out.push_str("\nNothing was changed (--dry-run).\n");
    out
}

fn values(out: &mut String, m: &Mapping, automon_namespace: &str) {
    let count = |f: fn(&Outcome) -> bool| m.rows.iter().filter(|r| f(&r.outcome)).count();
    let carried = count(|o| matches!(o, Outcome::Carried { .. }));
    let not_carried = count(|o| matches!(o, Outcome::NotCarried { .. }));
    let folded = match m.chart_defaults {
        0 => String::new(),
        n => format!(
            "; {} equal to the chart's defaults with no automon setting, not listed",
            plural(n, "more")
        ),
    };
    let summary = if m.rows.is_empty() && m.chart_defaults == 0 {
        "none given: the chart's defaults were in use, automon's take their place".to_string()
    } else {
        let nothing = match m.rows.len() - carried - not_carried {
            0 => String::new(),
            n => format!(", {n} with nothing to carry"),
        };
        format!(
            "{} given: {carried} carried over, {not_carried} not carried over{nothing}{folded}",
            m.rows.len()
        )
    };
    out.push_str(&format!(
        "{:<10}{summary} (-o yaml: the values for `kubectl automon enable -n {automon_namespace} -f`)\n",
        "Values"
    ));
    let listed: Vec<Vec<String>> = m
        .rows
        .iter()
        .filter(|r| !matches!(r.outcome, Outcome::NotCarried { .. }))
        .map(|r| vec![r.chart.clone(), r.given.clone(), automon_value(r)])
        .collect();
    if !listed.is_empty() {
        out.push('\n');
        out.push_str(&output::table(
            &["chart value", "given", "automon value"],
            &listed,
        ));
        out.push('\n');
    }
    let not: Vec<Vec<String>> = m
        .not_carried()
        .map(|r| {
            let Outcome::NotCarried { why } = &r.outcome else {
                unreachable!("filtered")
            };
            vec![r.chart.clone(), r.given.clone(), why.clone()]
        })
        .collect();
    if !not.is_empty() {
        out.push('\n');
        out.push_str(&output::table(&["not carried over", "given", "why"], &not));
        out.push('\n');
    }
    let notes: Vec<String> = m.rows.iter().filter_map(|r| r.note.clone()).collect();
    if !notes.is_empty() {
        out.push('\n');
        for note in notes {
            out.push_str(&format!("{:<10}{note}\n", "Note"));
        }
    }
}

/// A listed row's automon side.
fn automon_value(r: &Row) -> String {
    match &r.outcome {
        Outcome::Carried { key, value } => format!("{key}: {value}"),
        Outcome::Default { key } => format!("{key}: automon's default, nothing to carry"),
        Outcome::Same { why } => format!("nothing to carry: {why}"),
        Outcome::Migration { what } => format!("by the migration: {what}"),
        Outcome::NotCarried { why } => why.clone(),
    }
}

fn yours(out: &mut String, survey: &Survey) {
    out.push('\n');
    if survey.yours.is_empty() {
        out.push_str(&format!(
            "{:<10}none: the release's Prometheus selects no ServiceMonitor, PodMonitor, Probe, ScrapeConfig or PrometheusRule outside the release\n",
            "Yours"
        ));
        return;
    }
    out.push_str(&format!(
        "{:<10}{} of yours that the release's Prometheus selects, outside the release: removing it keeps them, and they must stay selected after the migration\n\n",
        "Yours",
        plural(survey.yours.len(), "object")
    ));
    let rows: Vec<Vec<String>> = survey
        .yours
        .iter()
        .map(|y| {
            vec![
                y.kind.clone(),
                y.namespace.clone(),
                y.name.clone(),
                y.selected_by.clone(),
            ]
        })
        .collect();
    out.push_str(&output::table(
        &["kind", "namespace", "name", "selected by"],
        &rows,
    ));
    out.push('\n');
}

fn removal(out: &mut String, survey: &Survey) {
    let mut by_kind: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut gone = 0;
    let mut kept = Vec::new();
    for p in &survey.planned {
        match &p.fate {
            Fate::Delete { .. } => *by_kind.entry(p.kind()).or_default() += 1,
            Fate::Gone => gone += 1,
            Fate::Keep(why) => kept.push(vec![
                p.display(),
                p.namespace().unwrap_or("").to_string(),
                why.reason(),
            ]),
        }
    }
    let deleted: usize = by_kind.values().sum();
    let already = match gone {
        0 => String::new(),
        n => format!(" ({} of its manifest already gone)", plural(n, "object")),
    };
    out.push_str(&format!(
        "\n{:<10}deletes {} of the release as `helm uninstall` would{already}, then its {}\n",
        "Removal",
        plural(deleted, "object"),
        plural(survey.records.len(), "record")
    ));
    let rows: Vec<Vec<String>> = by_kind
        .into_iter()
        .map(|(k, n)| vec![k.to_string(), n.to_string()])
        .collect();
    if !rows.is_empty() {
        out.push('\n');
        out.push_str(&output::table(&["kind", "count"], &rows));
        out.push('\n');
    }
    out.push_str(&format!(
        "\n{:<10}{} ({}); ",
        "Keeps",
        plural(survey.crds.len(), "CRD"),
        crate::cluster::crds::GROUP
    ));
    out.push_str(&match survey.claims.len() {
        0 => {
            "no PersistentVolumeClaim of the release's Prometheus or Alertmanager in the cluster\n"
                .to_string()
        }
        _ => format!(
            "{}, where the old data is (automon's Prometheus starts empty beside it):\n",
            plural(survey.claims.len(), "PersistentVolumeClaim")
        ),
    });
    for claim in &survey.claims {
        out.push_str(&format!("{:<10}persistentvolumeclaim {claim}\n", ""));
    }
    if !kept.is_empty() {
        out.push('\n');
        out.push_str(&output::table(&["kept", "namespace", "why"], &kept));
        out.push('\n');
    }
}

/// `--only-remove-release`: the removal alone, as the migration will call it.
async fn remove(cluster: &Cluster, args: &Args) -> anyhow::Result<Verdict> {
    let removed =
        uninstall::remove_release(cluster, &args.release, &args.from_namespace, args.timeout)
            .await?;
    let Some(revision) = removed.revision else {
        output::print(&format!(
            "no Helm release {:?} in namespace {}: nothing to remove",
            args.release, args.from_namespace
        ))?;
        return Ok(Verdict::Done);
    };
    let at = |ns: &Option<String>| match ns {
        Some(ns) if *ns != args.from_namespace => format!(" in {ns}"),
        _ => String::new(),
    };
    for (name, ns) in &removed.deleted {
        output::print(&format!("{name}{} deleted", at(ns)))?;
    }
    for (name, ns, why) in &removed.kept {
        output::print(&format!("{name}{} kept: {}", at(ns), why.reason()))?;
    }
    for record in &removed.records {
        output::print(&format!("secret/{record} deleted"))?;
    }
    output::print(&format!(
        "release {} (revision {revision}) removed from namespace {}: {} deleted, {} kept, {} already gone, {} deleted",
        args.release,
        args.from_namespace,
        plural(removed.deleted.len(), "object"),
        removed.kept.len(),
        removed.already_gone,
        plural(removed.records.len(), "record")
    ))?;
    Ok(Verdict::Done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::{mapping, release};
    use serde_json::json;

    fn survey(config: serde_json::Value) -> Survey {
        let record = release::tests::recorded(config, "");
        let r = release::decode(&release::tests::encoded(&record, true)).unwrap();
        let mapping = mapping::map(
            &r.config,
            &r.chart_values,
            &mapping::Destination {
                release: "kps",
                release_namespace: "monitoring",
                automon_namespace: "automon",
            },
        );
        Survey {
            release: r,
            records: vec![("sh.helm.release.v1.kps.v3".into(), 3)],
            mapping,
            planned: Vec::new(),
            crds: vec!["prometheuses.monitoring.coreos.com".into()],
            claims: vec!["monitoring/prometheus-kps-db-prometheus-kps-0".into()],
            yours: Vec::new(),
        }
    }

    #[test]
    fn the_report_says_what_was_found_and_what_becomes_of_it() {
        let now: jiff::Timestamp = "2026-12-05T10:05:00Z".parse().unwrap();
        let s = survey(
            json!({"prometheus": {"prometheusSpec": {"retention": "30d"}}, "kubeScheduler": {"enabled": true}}),
        );
        let text = report(&s, "automon", now);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "Release   kps in namespace monitoring: kube-prometheus-stack 88.5.3, revision 3, deployed 5m0s ago (1 record)"
        );
        assert!(
            lines[1].starts_with("Values    2 given: 1 carried over, 1 not carried over (-o yaml"),
            "{text}"
        );
        assert!(
            text.contains(
                "prometheus.prometheusSpec.retention   30d     prometheus.retention: 30d"
            ),
            "{text}"
        );
        assert!(
            text.contains("kubeScheduler.enabled   true    automon does not scrape kube-scheduler"),
            "{text}"
        );
        assert!(text.contains("Keeps     1 CRD (monitoring.coreos.com); 1 PersistentVolumeClaim, where the old data is"), "{text}");
        assert!(
            text.contains(
                "          persistentvolumeclaim monitoring/prometheus-kps-db-prometheus-kps-0"
            ),
            "{text}"
        );
        assert!(text.ends_with("Nothing was changed (--dry-run).\n"));
        let empty = report(&survey(json!({})), "automon", now);
        assert!(
            empty.contains(
                "Values    none given: the chart's defaults were in use, automon's take their place"
            ),
            "{empty}"
        );
    }
}
