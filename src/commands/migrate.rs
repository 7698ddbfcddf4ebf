//! `migrate RELEASE --from-namespace NS`: from a kube-prometheus-stack Helm release to automon.
//! For now only `--dry-run`: the release found, its values as automon's, what its removal
//! deletes and keeps, and the user's objects its Prometheus selects; `-o yaml` prints the
//! values as a file `enable -f` takes. Hidden until the migration itself (install beside, prove
//! the targets, remove the release) is complete.

use std::time::Duration;

use crate::{
    cluster::{Cluster, KubeFlags, parse_request_timeout},
    exit::Verdict,
    migrate::{
        manifest::Fate,
        mapping::{Mapping, Outcome, Row},
        release::Release,
        survey::{self, Survey},
        uninstall,
    },
    output::{self, Format, Palette, plural},
};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit status: 0 the report was printed; 1 no such release; 2 the release is not kube-prometheus-stack, or --dry-run was not given; 3-6 as for every command."
)]
pub struct Args {
    /// The Helm release of kube-prometheus-stack to move from
    #[arg(value_name = "RELEASE")]
    release: String,
    /// The namespace of the release (helm's -n); -n is automon's own namespace
    #[arg(long, value_name = "NAMESPACE")]
    from_namespace: String,
    /// Show what the migration would do and change nothing (required until the migration is
    /// complete)
    #[arg(long)]
    dry_run: bool,
    /// The report as tables, or the release's values mapped to automon's as a file
    /// `enable -f` takes (yaml, json)
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Only the migration's last step: remove the release as `helm uninstall` does (CRDs,
    /// volume claims and what is not the release's stay). For tests until the migration is
    /// complete.
    #[arg(long, hide = true)]
    only_remove_release: bool,
    /// How long the removal waits for what it deleted to be gone (e.g. 90s, 5m); 0 waits as
    /// long as it takes
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_request_timeout, hide = true)]
    timeout: Duration,
}

pub async fn run(flags: &KubeFlags, args: Args) -> anyhow::Result<Verdict> {
    let err = Palette::stderr();
    if !args.dry_run && !args.only_remove_release {
        crate::output::diag!(
            "{} migrate is not complete yet: it only reports, with --dry-run, what it would do (the release found, its values as automon's, what removing it deletes and keeps); add --dry-run",
            err.bad("error:")
        );
        return Ok(Verdict::Usage);
    }
    let cluster = Cluster::connect(flags).await?;
    if args.only_remove_release {
        return remove(&cluster, &args).await;
    }
    let survey = survey::survey(&cluster, &args.release, &args.from_namespace).await?;
    match args.output {
        Format::Yaml => output::print(&values_file(&survey, &args))?,
        Format::Json => output::print(&output::structured(Format::Json, &survey.mapping.values)?)?,
        Format::Table | Format::Wide => {
            for warning in warnings(&survey) {
                output::warning(&warning);
            }
            output::print(&report(&survey, &cluster.namespace, jiff::Timestamp::now()))?;
        }
    }
    Ok(Verdict::Done)
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
    text.push_str(&survey.mapping.values.to_yaml());
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
