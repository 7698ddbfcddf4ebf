//! The flags several commands share: where the configuration comes from, where the CRDs come
//! from, and how a plan is run.

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;

use crate::{
    cluster::{KubeFlags, crds::CrdSource},
    config::{
        Config, UnreadableFile,
        credentials::Credentials,
        values::{Base, Recognised},
    },
};

/// Where the configuration comes from: shared by every command that renders.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// Configuration file (YAML); see docs/configuration.md for every key
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Override one key, e.g. --set prometheus.retention=30d (repeatable)
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
}

impl ConfigArgs {
    /// The effective configuration, offline: the file (or nothing) and each `--set`; `-n`
    /// wins over the file's namespace. Its literal credentials are sealed (references to
    /// `automon-credentials` in their place).
    pub fn load(&self, flags: &KubeFlags) -> anyhow::Result<Config> {
        Ok(self.load_sealed(flags)?.0)
    }

    /// [`Self::load`], and the credentials taken out of it, for the Secret that holds them.
    pub fn load_sealed(&self, flags: &KubeFlags) -> anyhow::Result<(Config, Credentials)> {
        let text = self.file.as_deref().map(UnreadableFile::read).transpose()?;
        let base = match (self.file.as_deref(), text.as_deref()) {
            (Some(path), Some(text)) => Base::File { path, text },
            _ => Base::Defaults,
        };
        Ok(Config::configured(
            base,
            &self.set,
            flags.namespace.as_deref(),
        )?)
    }
}

/// The configuration `enable` and `diff` apply, and what it was made of.
pub struct Loaded {
    pub config: Config,
    /// The literal credentials taken out of the values, for `automon-credentials`.
    pub credentials: Credentials,
    /// `ConfigMap <ns>/automon` when the values stored there were the base.
    pub stored: Option<String>,
    /// What was recognised in a parent v0.1.0 wrote (its whole configuration).
    pub recognised: Option<Recognised>,
}

impl ConfigArgs {
    /// The configuration `enable` and `diff` apply. A file is the whole set of values, as with
    /// `kubectl apply -f`. Without one, the values the last `enable` stored in the cluster are
    /// the base and each `--set` changes them, so `enable --set x=y` changes x and nothing
    /// else; the running binary's defaults are under them either way.
    pub async fn load_for(
        &self,
        flags: &KubeFlags,
        cluster: &crate::cluster::Cluster,
    ) -> anyhow::Result<Loaded> {
        // Offline first: a bad flag or file fails before any request.
        let (config, credentials) = self.load_sealed(flags)?;
        let alone = |config, credentials| Loaded {
            config,
            credentials,
            stored: None,
            recognised: None,
        };
        if self.file.is_some() {
            return Ok(alone(config, credentials));
        }
        let parent =
            match crate::cluster::inventory::parent_configmap(&cluster.client, &config.namespace)
                .await
            {
                Ok(Some(parent)) => parent,
                Ok(None) => return Ok(alone(config, credentials)),
                // Preflight, next, lists every permission the user lacks, this one included.
                Err(kube::Error::Api(s)) if s.code == 403 => {
                    return Ok(alone(config, credentials));
                }
                Err(e) => return Err(cluster.target.classify(e).into()),
            };
        let origin = format!(
            "ConfigMap {}/{}",
            config.namespace,
            crate::model::names::PARENT_NAME
        );
        let unreadable =
            || format!("the configuration stored in {origin} cannot be read; give one with -f");
        let (values, recognised) =
            crate::cluster::inventory::stored_values(&parent).with_context(unreadable)?;
        let base = Base::Stored {
            values,
            origin: crate::cluster::inventory::stored_origin(&parent),
        };
        // A stored value the running binary refuses is named with the ConfigMap and its line.
        // Values an older plugin stored hold their credentials in the clear: sealed now, they
        // leave the ConfigMap with this write.
        let (config, credentials) = Config::configured(base, &self.set, Some(&config.namespace))?;
        Ok(Loaded {
            config,
            credentials,
            stored: Some(origin),
            recognised,
        })
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

/// `--history-max N` and the like: clap's own parser answers `invalid digit found in string`.
pub fn whole_number(s: &str) -> Result<u32, String> {
    s.trim()
        .parse()
        .map_err(|_| "expected a whole number (0 or more)".into())
}

/// `--nodes N`, a revision number: a whole number, 1 or more.
pub fn counting_number(s: &str) -> Result<u32, String> {
    match s.trim().parse() {
        Ok(0) | Err(_) => Err("expected a whole number (1 or more)".into()),
        Ok(n) => Ok(n),
    }
}

/// A local TCP port, 0 for one the system chooses.
pub fn port_number(s: &str) -> Result<u16, String> {
    s.trim()
        .parse()
        .map_err(|_| "expected a port number from 0 to 65535".into())
}

/// How a plan is run: the flags `enable` and `rollback` share.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Print what would be applied without persisting it: `client` (nothing is sent) or
    /// `server` (the API server validates and defaults every object)
    #[arg(long, value_name = "MODE", value_parser = ["none", "client", "server"], default_value = "none", num_args = 0..=1, default_missing_value = "client", require_equals = true)]
    pub dry_run: String,
    /// Wait until every Deployment, DaemonSet, Prometheus and Alertmanager is ready
    #[arg(long)]
    pub wait: bool,
    /// How long the command may take in all, waits included (e.g. 5m, 90s)
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = crate::cluster::parse_request_timeout)]
    pub timeout: Duration,
    /// Take over fields that another field manager owns instead of stopping
    #[arg(long)]
    pub force_conflicts: bool,
}

impl RunArgs {
    /// The pipeline's options these flags say.
    pub fn options(&self) -> crate::pipeline::Options {
        use crate::pipeline::DryRun;
        crate::pipeline::Options {
            dry_run: match self.dry_run.as_str() {
                "client" => DryRun::Client,
                "server" => DryRun::Server,
                _ => DryRun::None,
            },
            wait: self.wait,
            timeout: self.timeout,
            force_conflicts: self.force_conflicts,
        }
    }
}
