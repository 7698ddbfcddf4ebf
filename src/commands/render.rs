//! `render`: every object of the stack for a configuration, offline, as deterministic YAML or
//! JSON for GitOps. The same input gives the same bytes.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::{cluster::KubeFlags, config::Config, output, render};

/// Where the configuration comes from: shared by every command that renders.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// Configuration file (YAML); see the README for every key
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Override one key, e.g. --set prometheus.retention=30d (repeatable)
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
}

impl ConfigArgs {
    /// The effective configuration; `-n` wins over the file's namespace.
    pub fn load(&self, flags: &KubeFlags) -> anyhow::Result<Config> {
        let mut config = Config::load(self.file.as_deref(), &self.set)?;
        if let Some(ns) = &flags.namespace {
            config = config
                .with_set(&format!("namespace={ns}"))
                .context("-n/--namespace")?;
        }
        Ok(config)
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Output format
    #[arg(short = 'o', long, default_value = "yaml", value_parser = ["yaml", "json"])]
    output: String,
}

pub fn run(flags: &KubeFlags, args: Args) -> anyhow::Result<u8> {
    let config = args.config.load(flags)?;
    let rendered = render::render(&config);
    let text = match args.output.as_str() {
        "json" => rendered.to_json(),
        _ => rendered.to_yaml(),
    };
    output::print(&text)?;
    Ok(0)
}
