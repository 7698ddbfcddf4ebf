//! `doctor`: every check with a verdict (ok / warn / fail) and, when not ok, the fix.

use k8s_openapi::jiff::Timestamp;

use crate::{
    cluster::{Cluster, KubeFlags},
    doctor::{self, Finding, Report},
    exit::Verdict,
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
installed in the namespace; 1-6 as for every command.")]
pub struct Args {
    /// Output format: the checks as text, or json/yaml for scripts
    #[arg(short = 'o', long, default_value = "text", value_parser = ["text", "json", "yaml"])]
    output: String,
    /// Ask the Prometheus at this URL (http://host:9090) instead of automon's own, which is
    /// asked through the API server's service proxy
    #[arg(long, value_name = "URL")]
    prometheus_url: Option<String>,
}

pub async fn run(flags: &KubeFlags, args: Args) -> anyhow::Result<Verdict> {
    let cluster = Cluster::connect(flags).await?;
    let prom = status::PrometheusFlag {
        url: args.prometheus_url.clone(),
    };
    let snapshot = status::gather(&cluster, &prom).await?;
    let st = status::assess(&snapshot, Timestamp::now());
    let config = snapshot
        .parent
        .as_ref()
        .and_then(|p| crate::cluster::inventory::stored_config(p).ok())
        .unwrap_or_default();
    let extra = if st.health == Health::NotInstalled {
        None
    } else {
        Some(doctor::gather(&cluster, &snapshot, &st, config.node_exporter.port).await?)
    };
    let report = Report::new(
        &cluster.namespace,
        doctor::assess(&snapshot, &st, extra.as_ref(), &config),
    );
    match args.output.as_str() {
        "json" => output::print(&output::structured(Format::Json, &report)?)?,
        "yaml" => output::print(&output::structured(Format::Yaml, &report)?)?,
        _ => output::print(&human(&report, &Palette::stdout()))?,
    }
    Ok(Verdict::Doctor(report.outcome()))
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
}
