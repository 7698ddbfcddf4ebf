//! `render`: every object of the stack for a configuration, offline, as deterministic YAML or
//! JSON for GitOps. The same input gives the same bytes.

use anyhow::Context as _;

use super::args::{ConfigArgs, CrdArgs};
use crate::config::credentials::{Credentials, SECRET_NAME};
use crate::{
    cluster::{KubeFlags, crds},
    exit::Verdict,
    output, render,
};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Include the prometheus-operator CRDs, first (implied by --crds-from)
    #[arg(long)]
    include_crds: bool,
    #[command(flatten)]
    crds: CrdArgs,
    /// Size the stack for a cluster of this many nodes (requests, limits, shards), as
    /// `enable` does from the cluster it runs on; without it, for a small cluster (up to 50)
    #[arg(long, value_name = "N", value_parser = super::args::counting_number)]
    nodes: Option<u32>,
    /// Output format
    #[arg(short = 'o', long, default_value = "yaml", value_parser = ["yaml", "json"])]
    output: String,
}

pub async fn run(flags: &KubeFlags, args: Args) -> anyhow::Result<Verdict> {
    let (config, credentials) = args.config.load_sealed(flags)?;
    if !credentials.is_empty() {
        left_out(&config.namespace, &credentials);
    }
    let crds = if args.include_crds || args.crds.crds_from.is_some() {
        crds::load(&args.crds.source())
            .await
            .context("cannot load the prometheus-operator CRDs")?
    } else {
        Vec::new()
    };
    let rendered = render::render_classes(
        &config,
        crds,
        None,
        render::NodeClasses::default(),
        args.nodes,
    );
    // Offline, the cluster's Gateway API is not known: say what the HTTPRoutes need.
    let routes = crate::preflight::gateway::wanted(&rendered.objects);
    if !routes.is_empty() {
        output::diag!(
            "{} {} rendered: the Gateway API's CRDs ({}, serving v1) must be installed where they are applied; `kubectl automon enable` checks before its first write",
            output::Palette::stderr().warn("note:"),
            crate::output::plural(routes.len(), "HTTPRoute"),
            render::exposure::HTTPROUTE_CRD
        );
    }
    let text = match args.output.as_str() {
        "json" => rendered.to_json(),
        _ => rendered.to_yaml(),
    };
    output::print(&text)?;
    Ok(Verdict::Done)
}

/// Render never prints a credential: the Secret that would hold the ones given literally is
/// left out, and stderr says so and how to provide it.
fn left_out(namespace: &str, credentials: &Credentials) {
    let keys: Vec<String> = credentials
        .0
        .iter()
        .map(|s| format!("--from-literal={}=…", s.key))
        .collect();
    output::diag!(
        "{} left out Secret {namespace}/{SECRET_NAME}, which would hold the credentials given in the configuration ({}); the rendered objects read them from it. `kubectl automon enable` writes it; with these objects alone, create it: kubectl create secret generic {SECRET_NAME} -n {namespace} {} (the value each path was given), or name a Secret of your own with urlSecret/apiUrlSecret: {{secret: NAME, key: KEY}}",
        output::Palette::stderr().warn("note:"),
        credentials.paths().join(", "),
        keys.join(" ")
    );
}
