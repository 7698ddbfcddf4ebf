//! `reconcile [--loop]`: one pass that reports and repairs, or the Node watch that keeps every
//! node monitored until SIGINT/SIGTERM. The engine is [`crate::reconcile`].

use std::{io::IsTerminal as _, net::SocketAddr, time::Duration};

use crate::{
    cluster::{Cluster, KubeFlags, parse_request_timeout},
    exit::Verdict,
    reconcile::{self, logging::LogFormat},
};

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Exit status: 0 every node monitored (or excluded) and nothing left drifted; 8 degraded (a node
without a working exporter, drift not repaired); 9 not installed in the namespace (or disabled
while the loop ran); 6 the credentials lack a permission the loop needs (each one is listed);
1-5 as for every command. The loop exits 0 on SIGINT or SIGTERM, after giving back the Lease.

The loop writes only while it holds the Lease automon-reconcile in the stack's namespace: Events
on Nodes (ExporterReady, ExporterMissing; in namespace default) and repairs of managed objects.
It reads the configuration `enable` stored; it never invents one.")]
pub struct Args {
    /// Keep watching until SIGINT or SIGTERM (without it: one pass, then exit)
    #[arg(long = "loop")]
    looping: bool,
    /// How long a node may wait for a ready exporter before a Warning (ExporterMissing)
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = duration)]
    exporter_deadline: Duration,
    /// How long a class of node's exporters (windows-exporter, dcgm-exporter) stay after its last node left
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration)]
    class_grace: Duration,
    /// Report drifted objects, never re-apply them
    #[arg(long)]
    no_repair: bool,
    /// Serve the loop's metrics (/metrics) and probes (/healthz, /readyz) on this address
    #[arg(long, value_name = "HOST:PORT")]
    metrics_addr: Option<SocketAddr>,
    /// Log format: text (one line per event, for people) or json (one object per line)
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// How often the loop logs a one-line summary
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = duration, requires = "looping")]
    summary_interval: Duration,
    /// How long the Lease holds without renewal; another loop takes over after it
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = duration)]
    lease_duration: Duration,
    /// This loop's name in the Lease and on its Events [default: <host>-<pid>]
    #[arg(long, value_name = "NAME")]
    identity: Option<String>,
}

/// A duration like `--request-timeout`'s (`90s`, `2m`, `1h`), at least one second.
fn duration(s: &str) -> Result<Duration, String> {
    let d = parse_request_timeout(s)?;
    if d < Duration::from_secs(1) {
        return Err(format!("{s:?} is too short; use 1s or more"));
    }
    Ok(d)
}

pub async fn run(flags: &KubeFlags, args: Args) -> anyhow::Result<Verdict> {
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let format = match args.log_format.as_str() {
        "json" => LogFormat::Json,
        _ => LogFormat::Text,
    };
    reconcile::logging::init(format, colour);
    // enable's engine runs inside the loop when a class of node comes or goes: its lines
    // belong in the log.
    crate::output::print_to_log();
    let cluster = Cluster::connect(flags).await?;
    let options = reconcile::Options {
        looping: args.looping,
        exporter_deadline: args.exporter_deadline,
        class_grace: args.class_grace,
        repair: !args.no_repair,
        metrics_addr: args.metrics_addr,
        summary_interval: args.summary_interval,
        lease_duration: args.lease_duration,
        identity: args.identity.unwrap_or_else(reconcile::identity),
    };
    reconcile::run(cluster, options).await
}
