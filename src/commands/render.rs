//! `render`: every object of the stack for a configuration, offline, as deterministic YAML or
//! JSON for GitOps. The same input gives the same bytes.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::{
    cluster::KubeFlags,
    config::Config,
    crds::{self, CrdSource},
    output, render,
};

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

impl ConfigArgs {
    /// The configuration `enable` and `diff` apply. A file is the whole configuration, as with
    /// `kubectl apply -f`. Without one, the configuration the last `enable` stored in the
    /// cluster is the base and each `--set` changes it, so `enable --set x=y` changes x and
    /// nothing else; defaults only when nothing is stored yet. The second value says which.
    pub async fn load_for(
        &self,
        flags: &KubeFlags,
        cluster: &crate::cluster::Cluster,
    ) -> anyhow::Result<(Config, Option<String>)> {
        // Offline first: a bad flag or file fails before any request.
        let config = self.load(flags)?;
        if self.file.is_some() {
            return Ok((config, None));
        }
        let parent =
            match crate::inventory::parent_configmap(&cluster.client, &config.namespace).await {
                Ok(Some(parent)) => parent,
                Ok(None) => return Ok((config, None)),
                // Preflight, next, lists every permission the user lacks, this one included.
                Err(kube::Error::Api(s)) if s.code == 403 => return Ok((config, None)),
                Err(e) => return Err(cluster.target.classify(e).into()),
            };
        let origin = format!(
            "ConfigMap {}/{}",
            config.namespace,
            render::meta::PARENT_NAME
        );
        let stored = crate::status::stored_config(&parent).with_context(|| {
            format!("the configuration stored in {origin} cannot be read; give one with -f")
        })?;
        let mut merged = stored.with_sets(&self.set)?;
        merged.namespace = config.namespace.clone();
        Ok((merged, Some(origin)))
    }
}

/// Where the prometheus-operator CRDs come from: shared by every command that installs them.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CrdArgs {
    /// Where the prometheus-operator CRDs come from: a file, a directory of *.yaml/*.yml/*.json,
    /// or an http(s) URL. Default: the pinned release files, checked against pinned SHA-256 sums
    /// (enable first keeps the cluster's own when they are there at a compatible version)
    #[arg(long = "crds-from", value_name = "PATH|URL")]
    pub crds_from: Option<String>,
}

impl CrdArgs {
    pub fn source(&self) -> CrdSource {
        CrdSource::from_flag(self.crds_from.as_deref())
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Include the prometheus-operator CRDs, first (implied by --crds-from)
    #[arg(long)]
    include_crds: bool,
    #[command(flatten)]
    crds: CrdArgs,
    /// Output format
    #[arg(short = 'o', long, default_value = "yaml", value_parser = ["yaml", "json"])]
    output: String,
}

pub async fn run(flags: &KubeFlags, args: Args) -> anyhow::Result<u8> {
    let config = args.config.load(flags)?;
    let rendered = if args.include_crds || args.crds.crds_from.is_some() {
        let crds = crds::load(&args.crds.source())
            .await
            .context("cannot load the prometheus-operator CRDs")?;
        render::render_with(&config, crds)
    } else {
        render::render(&config)
    };
    let text = match args.output.as_str() {
        "json" => rendered.to_json(),
        _ => rendered.to_yaml(),
    };
    output::print(&text)?;
    Ok(0)
}
