//! `preflight`: exactly the checks `enable` runs before its first write — the server answers
//! and is supported, every permission is granted, whether another Prometheus Operator is there —
//! printed, without writing anything. Answers "can I install here?".

use crate::{
    cluster::{Cluster, KubeFlags},
    commands::args::ConfigArgs,
    exit::Verdict,
    output::{self, Format, Palette},
    preflight::Preflight,
    render,
};

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Checks, in this order, and writes nothing:
  reachable     the API server answers (exit 4 if not, 5 if it rejects the credentials)
  version       a supported Kubernetes (older fails with exit 1; newer than tested warns)
  permissions   every verb on every resource the install needs, asked with
                SelfSubjectAccessReview; all missing ones are listed, a line per resource
                and namespace, then the Role and ClusterRole that grant them (exit 6)
  operator      whether a Prometheus Operator not installed by automon is already running;
                enable reuses it and labels its objects to match its selectors")]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Output format: the checks as text on stderr, or the whole report as json/yaml on stdout
    #[arg(short = 'o', long, default_value = "text", value_parser = ["text", "json", "yaml"])]
    output: String,
}

/// Exit 0 when enable may go ahead, 6 when permissions are missing, 1 for an unsupported server;
/// 4 and 5 (unreachable, credentials) come from the connection errors.
pub async fn run(flags: &KubeFlags, args: Args) -> anyhow::Result<Verdict> {
    let config = args.config.load(flags)?;
    let objects = render::render(&config).objects;
    let cluster = Cluster::connect(flags).await?;
    let report = Preflight::run(&cluster, &objects).await?;
    match args.output.as_str() {
        "json" | "yaml" => {
            let format = if args.output == "json" {
                Format::Json
            } else {
                Format::Yaml
            };
            #[derive(serde::Serialize)]
            struct Out<'a> {
                passed: bool,
                checks: Vec<crate::model::finding::Finding>,
                #[serde(flatten)]
                report: &'a crate::preflight::Report,
            }
            let out = Out {
                passed: report.passed(),
                checks: report.assess(),
                report: &report,
            };
            output::print(&output::structured(format, &out)?)?;
        }
        _ => crate::output::diag!("{}", report.human(&Palette::stderr())),
    }
    Ok(Verdict::Preflight(report.outcome()))
}
