//! `doctor`: every check with a verdict (ok / warn / fail) and, when not ok, the fix.

use k8s_openapi::jiff::Timestamp;

use crate::{
    cluster::{Cluster, KubeFlags, error::ClusterError},
    commands::contexts::{self, Asked, ContextsArgs},
    doctor::{self, Finding, Report},
    exit::{self, Verdict},
    model::finding::Level,
    output::{self, Format, Palette},
    status::{self, Health},
};

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Checks: installed, version (this plugin against the one that installed the stack; a warning),
components, selectors (every ServiceMonitor and PrometheusRule picked up by a Prometheus),
yourMonitors (your own monitors and rules that look meant for the stack but are left out, and
why: a warning), nodes
(each node without a working exporter, and why), podSecurity, hostPort, crds (version skew with
the operator), kubeletService and webhooks (leftovers of other stacks),
alertmanager (alerts routed nowhere), scrapes (when Prometheus answers).

Exit status: 0 when no check fails (warnings allowed); 8 when one fails; 9 when automon is not
installed in the namespace; 1-6 as for every command.

Across contexts (--contexts a,b or --all-contexts): each context asked at once, its failures and
warnings under its name, every fix naming the context it is for; the exit status is the worst,
in status' order: 3, 5, 6, 4, 1, then 8, 9, 0.")]
pub struct Args {
    /// Output format: the checks as text, or json/yaml for scripts
    #[arg(short = 'o', long, default_value = "text", value_parser = ["text", "json", "yaml"])]
    output: String,
    /// Ask the Prometheus at this URL (http://host:9090) instead of automon's own, which is
    /// asked through the API server's service proxy
    #[arg(long, value_name = "URL")]
    prometheus_url: Option<String>,
    #[command(flatten)]
    across: ContextsArgs,
}

/// Every check on one cluster: status' snapshot and assessment, what doctor reads beyond it,
/// and the findings.
async fn check(cluster: &Cluster, prom: &status::PrometheusFlag) -> Result<Report, ClusterError> {
    let snapshot = status::gather(cluster, prom).await?;
    let st = status::assess(&snapshot, Timestamp::now());
    let config = snapshot
        .parent
        .as_ref()
        .and_then(|p| crate::cluster::inventory::stored_config(p).ok())
        .unwrap_or_default();
    let extra = if st.health == Health::NotInstalled {
        None
    } else {
        Some(doctor::gather(cluster, &snapshot, &st, config.node_exporter.port).await?)
    };
    Ok(Report::new(
        &cluster.namespace,
        doctor::assess(&snapshot, &st, extra.as_ref(), &config),
    ))
}

fn format(output: &str) -> Option<Format> {
    match output {
        "json" => Some(Format::Json),
        "yaml" => Some(Format::Yaml),
        _ => None,
    }
}

pub async fn run(flags: &KubeFlags, args: Args) -> anyhow::Result<Verdict> {
    let prom = status::PrometheusFlag {
        url: args.prometheus_url.clone(),
    };
    if args.across.selected() {
        // Every context checked at once, its failures under its name; the worst code.
        let asking = move |cluster: Cluster| {
            let prom = prom.clone();
            async move { check(&cluster, &prom).await }
        };
        let human = |asked: &[Asked<Report>]| contexts_human(asked, &Palette::stdout());
        let structured = format(&args.output);
        return contexts::answer(flags, &args.across, asking, structured, &LISTED, human).await;
    }
    let cluster = Cluster::connect(flags).await?;
    let report = check(&cluster, &prom).await?;
    match format(&args.output) {
        Some(f) => output::print(&output::structured(f, &report)?)?,
        None => output::print(&human(&report, &Palette::stdout()))?,
    }
    Ok(Verdict::Doctor(report.outcome()))
}

/// `-o json|yaml` across contexts.
const LISTED: contexts::Listed<Report> = contexts::Listed {
    kind: "DoctorList",
    key: "doctor",
    code: outcome_code,
};

fn outcome_code(report: &Report) -> u8 {
    exit::code(
        &Ok(Verdict::Doctor(report.outcome())),
        exit::Convention::Automon,
    )
}

/// Under each context's heading its failures and warnings (the checks that passed are
/// counted, not listed) with their fixes, each command in them run against that context, or
/// the error that stopped its checks (pure).
pub fn contexts_human(asked: &[Asked<Report>], p: &Palette) -> String {
    let parts: Vec<String> = asked
        .iter()
        .map(|a| {
            let body = match &a.outcome {
                Ok(report) => {
                    let not_ok: Vec<Finding> = report
                        .checks
                        .iter()
                        .filter(|c| c.level != Level::Ok)
                        .cloned()
                        .collect();
                    let passed = report.checks.len() - not_ok.len();
                    let mut text = human(&Report::new(&report.namespace, not_ok), p);
                    if report.failures + report.warnings > 0 {
                        text.push_str(&format!(", {passed} passed"));
                    }
                    text
                }
                Err(e) => format!("{} {}", Level::Fail.mark(p), contexts::error_verdict(e)),
            };
            format!(
                "{}\n{}",
                a.heading(),
                contexts::for_context(&body, &a.context)
            )
        })
        .collect();
    parts.join("\n\n")
}

/// `✓ message`, `✗ message` + `    fix: …`, then `1 failure, 1 warning` (pure).
pub fn human(report: &Report, p: &Palette) -> String {
    let mut out = String::new();
    for Finding {
        level,
        message,
        fix,
        ..
    } in &report.checks
    {
        let mark = level.mark(p);
        out.push_str(&format!("{mark} {message}\n"));
        if let Some(fix) = fix {
            out.push_str(&format!("    fix: {fix}\n"));
        }
    }
    out.push_str(&match (report.failures, report.warnings) {
        (0, 0) => "All checks passed.".to_string(),
        (f, w) => format!(
            "{}, {}",
            output::plural(f, "failure"),
            output::plural(w, "warning")
        ),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::finding::Level;

    #[test]
    fn the_tally_agrees_with_its_counts() {
        let finding = |level| Finding {
            check: "nodes",
            level,
            message: "m".into(),
            details: Vec::new(),
            fix: None,
        };
        let report = Report::new("automon", vec![finding(Level::Fail), finding(Level::Warn)]);
        let text = human(&report, &Palette::with_color(false));
        assert!(text.ends_with("1 failure, 1 warning"), "{text}");
        let report = Report::new(
            "automon",
            vec![
                finding(Level::Fail),
                finding(Level::Fail),
                finding(Level::Warn),
            ],
        );
        let text = human(&report, &Palette::with_color(false));
        assert!(text.ends_with("2 failures, 1 warning"), "{text}");
    }

    #[test]
    fn across_contexts_the_failing_checks_are_grouped_and_fixes_name_the_context() {
        let finding = |check, level, message: &str, fix: Option<&str>| Finding {
            check,
            level,
            message: message.into(),
            details: Vec::new(),
            fix: fix.map(Into::into),
        };
        let asked = |context: &str, outcome| Asked {
            context: context.into(),
            server: Some("https://127.0.0.1:16443".into()),
            version: None,
            outcome,
        };
        let failing = Report::new(
            "automon",
            vec![
                finding("installed", Level::Ok, "stack installed", None),
                finding(
                    "nodes",
                    Level::Fail,
                    "node gpu-7 has no working exporter",
                    Some(
                        "kubectl automon enable -n automon --set nodeExporter.tolerations=all, or: kubectl label node gpu-7 automon.io/exclude=true --overwrite",
                    ),
                ),
            ],
        );
        let clean = Report::new("automon", vec![finding("installed", Level::Ok, "ok", None)]);
        let list = vec![
            asked("prod", Ok(failing)),
            asked("lab", Ok(clean)),
            asked(
                "old",
                Err(ClusterError::Unauthorized {
                    server: "https://127.0.0.1:16443".into(),
                    user: "bogus".into(),
                }),
            ),
        ];
        let text = contexts_human(&list, &Palette::with_color(false));
        assert_eq!(
            text,
            "Context   prod (https://127.0.0.1:16443)
✗ node gpu-7 has no working exporter
    fix: kubectl automon --context prod enable -n automon --set nodeExporter.tolerations=all, or: kubectl --context prod label node gpu-7 automon.io/exclude=true --overwrite
1 failure, 0 warnings, 1 passed

Context   lab (https://127.0.0.1:16443)
All checks passed.

Context   old (https://127.0.0.1:16443)
✗ Unauthorized: https://127.0.0.1:16443 rejected the credentials of user \"bogus\" (401); log in again or fix the user in the kubeconfig"
        );
        assert_eq!(contexts::worst(&list, outcome_code), exit::UNAUTHORIZED);
    }
}
