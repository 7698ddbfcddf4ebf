//! `status`: components, every node's coverage and why a node has no exporter, rules,
//! dashboards, where alerts go, and what Prometheus says when it can be reached.

use std::{io::IsTerminal, time::Duration};

use k8s_openapi::jiff::Timestamp;

use crate::output::age;
use crate::{
    cluster::{Cluster, KubeFlags, error::ClusterError},
    commands::contexts::{self, Asked, ContextsArgs},
    exit::{self, Verdict},
    output::{self, Format, Palette},
    status::{self, Coverage, Health, Status},
};

/// Above this many nodes the table lists only the nodes that need attention, unless `-o wide`.
pub const FOLD_ABOVE: usize = 20;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Exit status: 0 healthy (Prometheus answered and confirms it; alerts about the cluster may fire:
the last line counts them by severity); 8 degraded (a component not ready, a node without a
working exporter, a scrape target down); 9 not installed in the namespace; 10 unverified
(nothing wrong as far as the API server shows, but Prometheus did not answer, so scrape health
and firing alerts are unknown); 1-6 as for every command.

Across contexts (--contexts a,b or --all-contexts), one row per context, asked at once, each
with its own client and --request-timeout; -n is the stack's namespace in every context
(automon by default, as for one context). The exit status is the worst of the contexts', in
this order: 3 (kubeconfig), 5 (credentials refused), 6 (forbidden), 4 (unreachable), 1, then 8
(degraded), 10 (unverified), 9 (not installed), 0.")]
pub struct Args {
    /// Output format: tables (wide lists every node, with its exporter pod), or json/yaml for
    /// scripts (the README documents the fields)
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Ask the Prometheus at this URL (http://host:9090) instead of automon's own, which is
    /// asked through the API server's service proxy
    #[arg(long, value_name = "URL")]
    prometheus_url: Option<String>,
    /// Keep watching: redraw whenever something changes (Ctrl-C ends it)
    #[arg(short = 'w', long, conflicts_with_all = ["contexts", "all_contexts"])]
    watch: bool,
    /// How often --watch looks again
    #[arg(long, default_value = "2s", value_parser = parse_interval, requires = "watch")]
    interval: Duration,
    #[command(flatten)]
    across: ContextsArgs,
}

/// A duration like `--request-timeout`'s, at least 100ms: `--watch` must not spin.
fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = crate::cluster::parse_request_timeout(s)?;
    if d < Duration::from_millis(100) {
        return Err(format!("{s:?} is too short; use 100ms or more"));
    }
    Ok(d)
}

/// What status finds in the cluster: gather, then assess.
async fn look(cluster: &Cluster, prom: &status::PrometheusFlag) -> Result<Status, ClusterError> {
    let snapshot = status::gather(cluster, prom).await?;
    Ok(status::assess(&snapshot, Timestamp::now()))
}

pub async fn run(flags: &KubeFlags, args: Args) -> anyhow::Result<Verdict> {
    let prom = status::PrometheusFlag {
        url: args.prometheus_url.clone(),
    };
    if args.across.selected() {
        // Every context asked at once, one row each; the worst code.
        let structured = matches!(args.output, Format::Json | Format::Yaml).then_some(args.output);
        let wide = args.output == Format::Wide;
        let asking = move |cluster: Cluster| {
            let prom = prom.clone();
            async move { look(&cluster, &prom).await }
        };
        let human = |asked: &[Asked<Status>]| {
            contexts_human(asked, wide, &Palette::stdout(), Timestamp::now())
        };
        return contexts::answer(flags, &args.across, asking, structured, &LISTED, human).await;
    }
    let cluster = Cluster::connect(flags).await?;
    let mut last: Option<String> = None;
    let terminal = std::io::stdout().is_terminal();
    loop {
        let st = look(&cluster, &prom).await?;
        let text = match args.output {
            Format::Json | Format::Yaml => output::structured(args.output, &st)?,
            f => human(&st, f == Format::Wide, &Palette::stdout(), Timestamp::now()),
        };
        if !args.watch {
            output::print(&text)?;
            if st.health == Health::NotInstalled {
                crate::output::diag!(
                    "Install it with: kubectl automon enable -n {ns} (see `kubectl automon preflight -n {ns}` first)",
                    ns = st.namespace
                );
            }
            return Ok(Verdict::Health(st.health));
        }
        // Ages and seconds since a scrape move on by themselves: only a change of state redraws.
        let key = change_key(&st);
        if last.as_ref() != Some(&key) {
            // Home and clear on a terminal, as `watch` does: the new state replaces the old.
            let text = match (terminal, last.is_some()) {
                (true, _) => format!("\x1b[H\x1b[2J{text}"),
                (false, true) => format!("\n{text}"),
                (false, false) => text,
            };
            output::print(&text)?;
            if output::stdout_closed() {
                return Ok(Verdict::Health(st.health));
            }
            last = Some(key);
        }
        tokio::time::sleep(args.interval).await;
    }
}

/// `-o json|yaml` across contexts.
const LISTED: contexts::Listed<Status> = contexts::Listed {
    kind: "StatusList",
    key: "status",
    code: health_code,
};

fn health_code(st: &Status) -> u8 {
    exit::code(&Ok(Verdict::Health(st.health)), exit::Convention::Automon)
}

/// One row per context; with `wide`, each context's own tables under its heading, every
/// command they name run against that context (pure).
pub fn contexts_human(asked: &[Asked<Status>], wide: bool, p: &Palette, now: Timestamp) -> String {
    let rows: Vec<Vec<String>> = asked.iter().map(|a| context_row(a, p)).collect();
    let mut out = output::table(
        &[
            "context",
            "server version",
            "stack",
            "nodes",
            "components",
            "alerts",
            "verdict",
        ],
        &rows,
    );
    if wide {
        for a in asked {
            out.push_str("\n\n");
            out.push_str(&a.heading());
            out.push('\n');
            let detail = match &a.outcome {
                Ok(st) => human(st, true, p, now),
                Err(e) => p.bad(&format!("error: {e}")),
            };
            out.push_str(&contexts::for_context(&detail, &a.context));
        }
    }
    out
}

/// CONTEXT, SERVER VERSION, STACK, NODES (monitored/total), COMPONENTS (healthy/total),
/// ALERTS (firing, by severity), VERDICT.
fn context_row(a: &Asked<Status>, p: &Palette) -> Vec<String> {
    let none = || "—".to_string();
    let version = a.version.clone().unwrap_or_else(none);
    let st = match &a.outcome {
        Err(e) => {
            let mut row = vec![a.context.clone(), version];
            row.extend(std::iter::repeat_with(none).take(4));
            row.push(p.bad(&contexts::error_verdict(e)));
            return row;
        }
        Ok(st) => st,
    };
    let installed = st.health != Health::NotInstalled;
    let stack = match &st.stack_version {
        Some(v) => v.installed.clone().unwrap_or_else(|| "unknown".into()),
        None if installed => "unknown".into(),
        None => "none".into(),
    };
    let counted = |text: String| if installed { text } else { none() };
    let healthy = st.components.iter().filter(|c| c.healthy).count();
    let alerts = match st.prometheus.as_ref().filter(|v| v.reachable) {
        Some(v) => {
            let firing: Vec<&status::prometheus::Alert> =
                v.firing.iter().filter(|f| f.name != "Watchdog").collect();
            if firing.is_empty() {
                "0".to_string()
            } else {
                by_severity(&firing)
            }
        }
        None => none(),
    };
    vec![
        a.context.clone(),
        version,
        stack,
        counted(format!("{}/{}", st.summary.monitored, st.summary.nodes)),
        counted(format!("{healthy}/{}", st.components.len())),
        alerts,
        short_verdict(st, p),
    ]
}

/// The verdict in a few words: `Healthy`, `Degraded: <problems>`, `Unverified: <what is
/// unknown>`, `Not installed in namespace <ns>` (pure).
fn short_verdict(st: &Status, p: &Palette) -> String {
    match st.health {
        Health::Healthy => "Healthy".to_string(),
        Health::Degraded => p.bad(&format!("Degraded: {}", st.problems.join("; "))),
        Health::Unverified => p.warn(&match st.prometheus.as_ref() {
            Some(v) => format!(
                "Unverified: Prometheus did not answer ({})",
                v.error.as_deref().unwrap_or("no answer")
            ),
            None => format!("Unverified: {}", st.unknown.join("; ")),
        }),
        Health::NotInstalled => format!("Not installed in namespace {}", st.namespace),
    }
}

/// What `--watch` compares between two looks: the status less what only the clock changes
/// (ages are computed from fixed timestamps at print time; seconds since a scrape are dropped)
/// and less Prometheus' gauges (head series, memory), which move at every look: they are
/// brought up to date when something else is drawn.
fn change_key(st: &Status) -> String {
    let mut st = st.clone();
    for scrape in st.nodes.iter_mut().filter_map(|n| n.scrape.as_mut()) {
        scrape.last_scrape_seconds = None;
    }
    if let Some(z) = st.sizing.as_mut() {
        z.head_series = None;
        z.resident_memory_bytes = None;
    }
    if let Some(p) = st.prometheus.as_mut() {
        p.head_series = None;
        p.resident_memory_bytes = None;
    }
    serde_json::to_string(&st).unwrap_or_default()
}

fn dash(s: Option<&str>) -> String {
    s.filter(|s| !s.is_empty()).unwrap_or("—").to_string()
}

/// The tables and the summary (pure).
pub fn human(st: &Status, wide: bool, p: &Palette, now: Timestamp) -> String {
    if st.health == Health::NotInstalled {
        return format!("automon is not installed in namespace {}.", st.namespace);
    }
    let firing: Vec<&status::prometheus::Alert> = st
        .prometheus
        .iter()
        .flat_map(|v| v.firing.iter())
        .filter(|a| a.name != "Watchdog")
        .collect();
    let mut out = components_table(st, p, now);
    out.push_str("\n\n");
    out.push_str(&nodes_table(st, wide, p));
    out.push('\n');
    out.push_str(&summary_line(st, firing.len(), p));
    out.push('\n');
    if let Some(y) = &st.your_monitors {
        out.push_str(&your_monitors_line(y, p));
    }
    out.push_str(&prometheus_lines(st, &firing, p));
    if let Some(z) = &st.sizing {
        out.push_str(&sizing_line(z));
    }
    if let Some(l) = &st.reconcile {
        out.push_str(&reconcile_line(l, &st.namespace, p, now));
    }
    if let Some((what, fix)) = st
        .stack_version
        .as_ref()
        .and_then(|v| v.advice(&st.namespace))
    {
        out.push_str(&p.warn(&format!("Version:   {what}; {fix}\n")));
    }
    out.push('\n');
    out.push_str(&verdict_line(st, &firing, p));
    out
}

/// The age of an RFC 3339 time at `now`, kubectl's way.
fn age_at(time: Option<&str>, now: Timestamp) -> Option<String> {
    time.and_then(|t| t.parse::<Timestamp>().ok())
        .map(|t| age(now.as_second() - t.as_second()))
}

/// One row per component: ready, version, age and what is wrong with it.
fn components_table(st: &Status, p: &Palette, now: Timestamp) -> String {
    let rows: Vec<Vec<String>> = st
        .components
        .iter()
        .map(|c| {
            let mut state = if c.healthy {
                "Healthy".to_string()
            } else {
                p.bad(c.message.as_deref().unwrap_or("not ready"))
            };
            if let Some(from) = &c.reused {
                state.push_str(&format!(" (reused: {from})"));
            }
            vec![
                c.name.clone(),
                c.kind.clone(),
                format!("{}/{}", c.ready, c.desired),
                dash(c.version.as_deref()),
                dash(age_at(c.created.as_deref(), now).as_deref()),
                state,
            ]
        })
        .collect();
    output::table(
        &["component", "kind", "ready", "version", "age", "status"],
        &rows,
    )
}

/// One row per node (past [`FOLD_ABOVE`] nodes, without `-o wide`, only those not
/// monitored, and a line counting the others).
fn nodes_table(st: &Status, wide: bool, p: &Palette) -> String {
    let mut out = String::new();
    let fold = !wide && st.nodes.len() > FOLD_ABOVE;
    let listed: Vec<&status::NodeStatus> = st
        .nodes
        .iter()
        .filter(|n| !fold || n.coverage != Coverage::Monitored)
        .collect();
    if !listed.is_empty() {
        let rows: Vec<Vec<String>> = listed.iter().map(|n| node_row(n, wide, p)).collect();
        let headers: &[&str] = if wide {
            &[
                "node", "ready", "os/arch", "exporter", "pod", "restarts", "scrape", "reason",
            ]
        } else {
            &["node", "ready", "os/arch", "exporter", "scrape", "reason"]
        };
        out.push_str(&output::table(headers, &rows));
        out.push('\n');
    }
    let hidden = st.nodes.len() - listed.len();
    if fold && hidden > 0 {
        out.push_str(&p.dim(&format!(
            "{} not listed (-o wide lists every node)\n",
            output::plural(hidden, "monitored node")
        )));
    }
    out
}

/// A node's row: its exporter, its scrape and why it is not monitored, in red when wrong.
fn node_row(n: &status::NodeStatus, wide: bool, p: &Palette) -> Vec<String> {
    let scrape = match &n.scrape {
        None => "—".to_string(),
        Some(s) if s.health == "missing" => p.bad("no target"),
        Some(s) => match (s.health.as_str(), s.last_scrape_seconds) {
            ("up", Some(ago)) => format!("up {}", age(ago.round() as i64)),
            ("up", None) => "up".into(),
            (h, _) => p.bad(h),
        },
    };
    let exporter = match &n.exporter {
        Some(e) if e.ready => e.state.clone(),
        Some(e) => p.bad(&e.state),
        None => "—".into(),
    };
    let reason = match (n.coverage, n.reason.as_deref()) {
        (Coverage::NotMonitored, Some(r)) => p.bad(r),
        (_, r) => r.unwrap_or_default().to_string(),
    };
    let mut row = vec![
        n.name.clone(),
        n.ready.clone(),
        format!("{}/{}", n.os, n.arch),
        exporter,
        scrape,
        reason,
    ];
    if wide {
        let pod = n.exporter.as_ref();
        row.insert(4, dash(pod.map(|e| e.name.as_str())));
        row.insert(5, pod.map_or("—".into(), |e| e.restarts.to_string()));
    }
    row
}

/// `3/3 nodes monitored · 9 rule groups (40 alerts) loaded, 0 firing · 6 dashboards · alerts
/// go to …`, ending in a newline.
fn summary_line(st: &Status, firing: usize, p: &Palette) -> String {
    let s = &st.summary;
    let mut line = vec![format!(
        "{}/{} monitored",
        s.monitored,
        output::plural(s.nodes, "node")
    )];
    if s.excluded > 0 {
        line[0].push_str(&format!(" ({} excluded)", s.excluded));
    }
    let loaded = st
        .rules
        .loaded
        .map(|l| (l.groups, l.alerts, " loaded"))
        .unwrap_or((st.rules.groups, st.rules.alerts, ""));
    let mut rules = format!(
        "{} ({}){}",
        output::plural(loaded.0, "rule group"),
        output::plural(loaded.1, "alert"),
        loaded.2
    );
    if let Some(v) = st.prometheus.as_ref().filter(|v| v.reachable) {
        rules.push_str(&format!(", {firing} firing"));
        if !v.silenced.is_empty() {
            rules.push_str(&format!(", {} silenced", v.silenced.len()));
        }
    }
    line.push(rules);
    line.push(output::plural(st.dashboards.count, "dashboard"));
    if let Some(a) = &st.alerting {
        line.push(if a.notifies {
            format!("alerts go to {}", a.receiver)
        } else {
            p.warn(&format!("alerts go to {} (notifies no one)", a.receiver))
        });
    }
    format!("{}\n", line.join(" · "))
}

/// `Your monitors: 3 ServiceMonitors, 1 PrometheusRule selected (namespaces: automon, team-a)`,
/// ending in a newline; what could not be listed is said after it.
fn your_monitors_line(y: &status::yours::YourMonitors, p: &Palette) -> String {
    let counts: Vec<String> = y
        .counts()
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, kind)| output::plural(n, kind.name()))
        .collect();
    let mut line = if counts.is_empty() {
        "Your monitors: none selected".to_string()
    } else {
        format!(
            "Your monitors: {} selected (namespace{}: {})",
            counts.join(", "),
            if y.namespaces.len() == 1 { "" } else { "s" },
            y.namespaces.join(", ")
        )
    };
    line.push('\n');
    if !y.unreadable.is_empty() {
        line.push_str(&p.warn(&format!(
            "               not counted, may not be listed: {}\n",
            y.unreadable.join("; ")
        )));
    }
    line
}

/// What Prometheus said: the scrape targets and the firing alerts, or that it did not answer.
fn prometheus_lines(st: &Status, firing: &[&status::prometheus::Alert], p: &Palette) -> String {
    let mut out = String::new();
    match &st.prometheus {
        // Unverified says the same in its verdict below.
        Some(v) if !v.reachable && st.health != Health::Unverified => {
            out.push_str(&p.warn(&format!(
                "Prometheus did not answer at {}: {}; scrape health and firing alerts unknown (`kubectl automon doctor -n {}` tells more).\n",
                v.via,
                v.error.as_deref().unwrap_or("no answer"),
                st.namespace
            )))
        }
        Some(v) if v.reachable => {
            if let Some(t) = &v.targets {
                out.push_str(&format!(
                    "Scrape targets: {} up, {} down{}\n",
                    t.up,
                    t.down,
                    if t.unknown > 0 {
                        format!(", {} unknown", t.unknown)
                    } else {
                        String::new()
                    }
                ));
            }
            if !firing.is_empty() {
                out.push('\n');
                out.push_str(&alerts_table("alert", firing.iter().copied()));
            }
            if !v.silenced.is_empty() {
                out.push('\n');
                out.push_str(&alerts_table("silenced", v.silenced.iter()));
                out.push_str(&format!(
                    "(silenced: no one is notified; `kubectl automon silence --list -n {}`)\n",
                    st.namespace
                ));
            }
        }
        _ => {}
    }
    out
}

/// Alerts as a table whose first column is `first` (`ALERT`, `SILENCED`), ending in a newline.
fn alerts_table<'a>(
    first: &str,
    alerts: impl Iterator<Item = &'a status::prometheus::Alert>,
) -> String {
    let rows: Vec<Vec<String>> = alerts
        .map(|a| {
            vec![
                a.name.clone(),
                dash(a.severity.as_deref()),
                dash(a.node.as_deref()),
                dash(a.summary.as_deref()),
            ]
        })
        .collect();
    let mut table = output::table(&[first, "severity", "node", "summary"], &rows);
    table.push('\n');
    table
}

/// Whether a `reconcile --loop` holds the Lease, ending in a newline.
fn reconcile_line(l: &status::LoopLease, ns: &str, p: &Palette, now: Timestamp) -> String {
    match (l.active, age_at(l.renewed.as_deref(), now)) {
        (true, Some(ago)) => format!(
            "Reconcile: loop {} holds the Lease (renewed {ago} ago)\n",
            l.holder
        ),
        (false, Some(ago)) if !l.holder.is_empty() => p.warn(&format!(
            "Reconcile: loop {} stopped renewing the Lease {ago} ago; no loop runs\n",
            l.holder
        )),
        _ => format!("Reconcile: no loop runs (kubectl automon reconcile --loop -n {ns})\n"),
    }
}

/// `Healthy.`, `Healthy stack; 2 alerts firing …` when alerts about the cluster fire (the
/// stack itself is sound: the exit code stays 0), or `Unverified: …` / `Degraded: …` with what
/// is unknown or wrong.
fn verdict_line(st: &Status, firing: &[&status::prometheus::Alert], p: &Palette) -> String {
    match st.health {
        Health::Healthy if firing.is_empty() => "Healthy.".to_string(),
        Health::Healthy => format!(
            "Healthy stack; {}: {} (listed above).",
            p.warn(&format!("{} firing", output::plural(firing.len(), "alert"))),
            by_severity(firing)
        ),
        Health::Unverified => format!(
            "{}nothing wrong as far as the API server shows; unknown: {}.",
            p.warn("Unverified: "),
            st.unknown.join("; ")
        ),
        _ => format!(
            "{}{}. Run `kubectl automon doctor -n {}` for fixes.",
            p.bad("Degraded: "),
            st.problems.join("; "),
            st.namespace
        ),
    }
}

/// `1 critical, 2 warning`: the firing alerts counted by severity, the most severe first.
fn by_severity(firing: &[&status::prometheus::Alert]) -> String {
    const ORDER: [&str; 3] = ["critical", "warning", "info"];
    let mut counts: Vec<(String, usize)> = Vec::new();
    for a in firing {
        let severity = a.severity.clone().unwrap_or_else(|| "no severity".into());
        match counts.iter_mut().find(|(s, _)| *s == severity) {
            Some((_, n)) => *n += 1,
            None => counts.push((severity, 1)),
        }
    }
    let rank = |s: &str| ORDER.iter().position(|o| *o == s).unwrap_or(ORDER.len());
    counts.sort_by(|(a, _), (b, _)| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    counts
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `Sizing:    3 nodes, sized for up to 50: ~236,000 series estimated, 12,345 in the head`.
fn sizing_line(z: &crate::status::SizingView) -> String {
    use crate::output::thousands;
    let mut line = format!(
        "Sizing:    {}, sized for up to {}: ~{} series estimated",
        output::plural_thousands(u64::from(z.nodes), "node"),
        thousands(u64::from(z.sized_for)),
        thousands(z.estimated_series_per_shard),
    );
    if z.shards > 1 {
        line.push_str(&format!(" per shard ({} shards)", z.shards));
    }
    match z.head_series {
        Some(head) if z.shards > 1 => line.push_str(&format!(
            ", {} in the answering shard's head",
            thousands(head)
        )),
        Some(head) => line.push_str(&format!(", {} in Prometheus' head", thousands(head))),
        None => {}
    }
    if let Some(tier) = z.resize_for {
        line.push_str(&format!(
            "; enable would size it for up to {}",
            thousands(u64::from(tier))
        ));
    }
    if let (Some(rss), Some(limit)) = (z.resident_memory_bytes, z.memory_limit_bytes) {
        line.push_str(&format!(
            "; memory {} MiB of {} MiB",
            rss >> 20,
            limit >> 20
        ));
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, coverage: Coverage, reason: Option<&str>) -> status::NodeStatus {
        status::NodeStatus {
            name: name.into(),
            ready: "True".into(),
            os: "linux".into(),
            arch: "amd64".into(),
            coverage,
            exporter: None,
            scrape: None,
            cause: None,
            reason: reason.map(Into::into),
        }
    }

    fn sample(nodes: Vec<status::NodeStatus>) -> Status {
        let mut st = Status::not_installed("automon");
        st.health = Health::Degraded;
        st.problems = vec!["1 of 25 nodes have no working exporter".into()];
        st.summary = status::Summary {
            nodes: nodes.len(),
            monitored: nodes
                .iter()
                .filter(|n| n.coverage == Coverage::Monitored)
                .count(),
            excluded: nodes
                .iter()
                .filter(|n| n.coverage == Coverage::Excluded)
                .count(),
            not_monitored: nodes
                .iter()
                .filter(|n| n.coverage == Coverage::NotMonitored)
                .count(),
        };
        st.nodes = nodes;
        st
    }

    #[test]
    fn your_monitors_are_counted_by_kind_with_their_namespaces() {
        let p = Palette::with_color(false);
        let mut y = status::yours::YourMonitors {
            prometheus: "automon/automon".into(),
            service_monitors: 3,
            pod_monitors: 1,
            prometheus_rules: 2,
            namespaces: vec!["automon".into(), "team-a".into()],
            ..Default::default()
        };
        assert_eq!(
            your_monitors_line(&y, &p),
            "Your monitors: 3 ServiceMonitors, 1 PodMonitor, 2 PrometheusRules selected (namespaces: automon, team-a)\n"
        );
        let mut st = sample(vec![node("n1", Coverage::Monitored, None)]);
        st.your_monitors = Some(y.clone());
        assert!(
            human(&st, false, &p, Timestamp::UNIX_EPOCH)
                .contains("Your monitors: 3 ServiceMonitors")
        );
        y = status::yours::YourMonitors {
            unreadable: vec!["Probe: forbidden".into()],
            ..Default::default()
        };
        assert_eq!(
            your_monitors_line(&y, &p),
            "Your monitors: none selected\n               not counted, may not be listed: Probe: forbidden\n"
        );
    }

    #[test]
    fn large_clusters_fold_monitored_nodes_unless_wide() {
        let mut nodes: Vec<status::NodeStatus> = (0..23)
            .map(|i| node(&format!("n{i:02}"), Coverage::Monitored, None))
            .collect();
        nodes.push(node(
            "gpu-7",
            Coverage::NotMonitored,
            Some("taint nvidia.com/gpu=present:NoExecute not tolerated"),
        ));
        nodes.push(node(
            "infra-1",
            Coverage::Excluded,
            Some("excluded by label automon.io/exclude=true"),
        ));
        let st = sample(nodes);
        let p = Palette::with_color(false);
        let text = human(&st, false, &p, Timestamp::UNIX_EPOCH);
        assert!(text.contains("gpu-7     True    linux/amd64   —          —        taint nvidia.com/gpu=present:NoExecute not tolerated"), "{text}");
        assert!(text.contains("infra-1"));
        assert!(!text.contains("n00"), "{text}");
        assert!(text.contains("23 monitored nodes not listed (-o wide lists every node)"));
        assert!(text.contains("23/25 nodes monitored (1 excluded)"));
        assert!(text.ends_with(
            "Degraded: 1 of 25 nodes have no working exporter. Run `kubectl automon doctor -n automon` for fixes."
        ));
        let wide = human(&st, true, &p, Timestamp::UNIX_EPOCH);
        assert!(wide.contains("n00") && wide.contains("RESTARTS") && !wide.contains("not listed"));
    }

    #[test]
    fn one_node_is_one_node() {
        let mut st = sample(vec![node("n1", Coverage::Monitored, None)]);
        st.rules.groups = 1;
        st.rules.alerts = 1;
        st.dashboards.count = 1;
        let text = human(
            &st,
            false,
            &Palette::with_color(false),
            Timestamp::UNIX_EPOCH,
        );
        assert!(
            text.contains("1/1 node monitored · 1 rule group (1 alert) · 1 dashboard"),
            "{text}"
        );
        assert!(!text.contains("1 nodes"), "{text}");
    }

    #[test]
    fn unverified_says_what_is_unknown_and_is_never_healthy() {
        let mut st = sample(vec![node("n1", Coverage::Monitored, None)]);
        st.problems.clear();
        st.health = Health::Unverified;
        st.unknown =
            vec!["scrape health and firing alerts (Prometheus did not answer at x: 503)".into()];
        let text = human(
            &st,
            false,
            &Palette::with_color(false),
            Timestamp::UNIX_EPOCH,
        );
        assert!(
            text.ends_with(
                "\nUnverified: nothing wrong as far as the API server shows; unknown: scrape health and firing alerts (Prometheus did not answer at x: 503)."
            ),
            "{text}"
        );
        assert!(!text.contains("Healthy."), "{text}");
    }

    /// Alerts about the cluster firing do not make the stack unhealthy, but the verdict says
    /// them, by severity; Watchdog, which always fires, is no news.
    #[test]
    fn healthy_with_alerts_firing_says_them_by_severity() {
        let mut st = sample(vec![node("n1", Coverage::Monitored, None)]);
        st.problems.clear();
        st.health = Health::Healthy;
        let alert = |name: &str, severity: Option<&str>| status::prometheus::Alert {
            name: name.into(),
            severity: severity.map(str::to_string),
            node: Some("n1".into()),
            summary: None,
            active_at: None,
            labels: Default::default(),
        };
        let mut view =
            status::prometheus::Answer::unreachable("x".into(), String::new(), None).view;
        view.reachable = true;
        view.error = None;
        view.firing = vec![alert("Watchdog", Some("none"))];
        st.prometheus = Some(view.clone());
        let p = Palette::with_color(false);
        let text = human(&st, false, &p, Timestamp::UNIX_EPOCH);
        assert!(text.ends_with("\nHealthy."), "{text}");
        view.firing.extend([
            alert("HighCpu", Some("warning")),
            alert("NodeDown", Some("critical")),
            alert("DiskSpaceLow", Some("warning")),
        ]);
        view.silenced = vec![alert("NodeDown", Some("critical"))];
        view.silenced[0].node = Some("n2".into());
        st.prometheus = Some(view);
        let text = human(&st, false, &p, Timestamp::UNIX_EPOCH);
        assert!(
            text.ends_with(
                "\nHealthy stack; 3 alerts firing: 1 critical, 2 warning (listed above)."
            ),
            "{text}"
        );
        // The silenced one apart, under its own heading, and counted in the summary.
        assert!(
            text.contains("(0 alerts), 3 firing, 1 silenced ·"),
            "{text}"
        );
        let silenced = text.split("SILENCED").nth(1).expect("a silenced table");
        assert!(silenced.contains("NodeDown   critical   n2"), "{text}");
        assert!(
            silenced.contains(
                "(silenced: no one is notified; `kubectl automon silence --list -n automon`)"
            ),
            "{text}"
        );
        assert!(!text.contains("Healthy."), "{text}");
        let verdict = Ok(crate::exit::Verdict::Health(st.health));
        assert_eq!(
            crate::exit::code(&verdict, crate::exit::Convention::Automon),
            0
        );
    }

    /// One row per context: what each found, or why it could not look; `-o wide` puts each
    /// context's tables under its heading, with its commands naming it.
    #[test]
    fn across_contexts_one_row_each_and_wide_detail_names_the_context() {
        let p = Palette::with_color(false);
        let mut healthy = sample(vec![
            node("n1", Coverage::Monitored, None),
            node("n2", Coverage::Monitored, None),
        ]);
        healthy.health = Health::Healthy;
        healthy.problems.clear();
        healthy.stack_version = Some(status::StackVersion::of(Some("v0.2.0".into())));
        let mut view =
            status::prometheus::Answer::unreachable("x".into(), String::new(), None).view;
        view.reachable = true;
        view.error = None;
        let alert = |name: &str, severity: &str| status::prometheus::Alert {
            name: name.into(),
            severity: Some(severity.into()),
            node: Some("n1".into()),
            summary: None,
            active_at: None,
            labels: Default::default(),
        };
        view.firing = vec![
            alert("Watchdog", "none"),
            alert("HighCpu", "warning"),
            alert("NodeDown", "critical"),
        ];
        healthy.prometheus = Some(view);
        let mut degraded = sample(vec![
            node("n1", Coverage::Monitored, None),
            node("gpu-7", Coverage::NotMonitored, Some("taint")),
        ]);
        degraded.summary.monitored = 1;
        let mut unverified = sample(vec![node("n1", Coverage::Monitored, None)]);
        unverified.health = Health::Unverified;
        unverified.problems.clear();
        unverified.prometheus = Some(
            status::prometheus::Answer::unreachable(
                "x".into(),
                "503 Service Unavailable".into(),
                None,
            )
            .view,
        );
        let asked = |context: &str, outcome| Asked {
            context: context.into(),
            server: Some("https://127.0.0.1:16443".into()),
            version: Some("v1.36.3".into()),
            outcome,
        };
        let list = vec![
            asked("prod", Ok(healthy)),
            asked("edge", Ok(degraded)),
            asked("lab", Ok(unverified)),
            asked("staging", Ok(Status::not_installed("automon"))),
            asked(
                "stopped",
                Err(ClusterError::Unreachable {
                    server: "https://127.0.0.1:1".into(),
                    reason: "connection refused".into(),
                }),
            ),
        ];
        let text = contexts_human(&list, false, &p, Timestamp::UNIX_EPOCH);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "CONTEXT   SERVER VERSION   STACK     NODES   COMPONENTS   ALERTS                  VERDICT",
                "prod      v1.36.3          v0.2.0    2/2     0/0          1 critical, 1 warning   Healthy",
                "edge      v1.36.3          unknown   1/2     0/0          —                       Degraded: 1 of 25 nodes have no working exporter",
                "lab       v1.36.3          unknown   1/1     0/0          —                       Unverified: Prometheus did not answer (503 Service Unavailable)",
                "staging   v1.36.3          none      —       —            —                       Not installed in namespace automon",
                "stopped   v1.36.3          —         —       —            —                       Unreachable: https://127.0.0.1:1: connection refused",
            ],
            "{text}"
        );
        assert_eq!(contexts::worst(&list, health_code), exit::UNREACHABLE);
        let wide = contexts_human(&list, true, &p, Timestamp::UNIX_EPOCH);
        let edge = wide
            .split("Context   edge (https://127.0.0.1:16443, v1.36.3)\n")
            .nth(1)
            .expect("a heading for edge");
        assert!(edge.starts_with("COMPONENT"), "{wide}");
        assert!(
            edge.contains("Run `kubectl automon --context edge doctor -n automon` for fixes."),
            "{wide}"
        );
        assert!(
            wide.contains("Context   stopped (https://127.0.0.1:16443, v1.36.3)\nerror: cannot reach the API server at https://127.0.0.1:1: connection refused"),
            "{wide}"
        );
    }

    #[test]
    fn watch_redraws_on_a_change_of_state_not_of_the_clock() {
        let mut up = node("n1", Coverage::Monitored, None);
        up.scrape = Some(status::nodes::Scrape {
            health: "up".into(),
            last_scrape_seconds: Some(1.0),
            error: None,
        });
        let mut later = up.clone();
        later.scrape.as_mut().unwrap().last_scrape_seconds = Some(3.0);
        let key = change_key(&sample(vec![up]));
        assert_eq!(key, change_key(&sample(vec![later])));
        let excluded = node(
            "n1",
            Coverage::Excluded,
            Some("excluded by label automon.io/exclude=true"),
        );
        assert_ne!(key, change_key(&sample(vec![excluded])));
        // Prometheus' gauges move at every look: not a change on their own.
        let gauges = |head: u64, rss: u64| {
            let mut st = sample(Vec::new());
            st.sizing = Some(status::SizingView {
                nodes: 3,
                sized_for: 50,
                resize_for: None,
                series_per_node: 4_609,
                estimated_series: 235_450,
                shards: 1,
                estimated_series_per_shard: 235_450,
                head_series: Some(head),
                memory_limit_bytes: Some(2 << 30),
                resident_memory_bytes: Some(rss),
            });
            change_key(&st)
        };
        assert_eq!(gauges(3_131, 104 << 20), gauges(3_140, 108 << 20));
    }

    #[test]
    fn age_reads_like_kubectl() {
        for (s, want) in [
            (5, "5s"),
            (119, "119s"),
            (312, "5m12s"),
            (1800, "30m"),
            (3 * 3600 + 240, "3h4m"),
            (20 * 3600, "20h"),
            (2 * 86400 + 5 * 3600, "2d5h"),
            (12 * 86400, "12d"),
        ] {
            assert_eq!(age(s), want, "{s}s");
        }
    }
}
