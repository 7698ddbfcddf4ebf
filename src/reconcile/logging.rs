//! The loop's log, through `tracing`: on a terminal (or any text log) one line per event,
//! `15:02:11  node n-7 joined · ...`, with the header lines (`Cluster`, `Lease`, `Synced`)
//! aligned like the other commands' output; `--log-format json` writes one JSON object per
//! line for machines. Errors and warnings say so. kube-runtime and the lease manager log
//! through the same subscriber, silent unless `AUTOMON_LOG` says otherwise (`AUTOMON_LOG=debug`
//! for everything): the loop itself says when the API server goes away and comes back.

use std::fmt;

use tracing::{Event, Level, Subscriber, field::Field};
use tracing_subscriber::{
    EnvFilter,
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
    registry::LookupSpan,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line per event, for people
    Text,
    /// One JSON object per line, for log pipelines
    Json,
}

/// Installs the subscriber for this process (stderr).
pub fn init(format: LogFormat, colour: bool) {
    let filter = EnvFilter::try_from_env("AUTOMON_LOG")
        // kube-client logs every refused connection of every watch, and the lease manager each
        // failed renewal: the loop says it once, with how long the API server was away.
        .unwrap_or_else(|_| {
            EnvFilter::new(
                "warn,kubectl_automon=info,kube_client=off,kube_runtime=off,kube_lease_manager=off",
            )
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(colour)
            .event_format(Human { colour })
            .try_init(),
    };
}

/// `HH:MM:SS  message key=value`, or `Label     message` for events with a `label` field.
struct Human {
    colour: bool,
}

#[derive(Default)]
struct Fields {
    message: String,
    label: Option<String>,
    rest: Vec<(String, String)>,
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_string(),
            "label" => self.label = Some(value.to_string()),
            name => self.rest.push((name.to_string(), value.to_string())),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "label" => self.label = Some(format!("{value:?}")),
            name => self.rest.push((name.to_string(), format!("{value:?}"))),
        }
    }
}

impl<S, N> FormatEvent<S, N> for Human
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut f = Fields::default();
        event.record(&mut f);
        let level = *event.metadata().level();
        let paint = |code: &str, s: &str| {
            if self.colour {
                format!("\x1b[{code}m{s}\x1b[0m")
            } else {
                s.to_string()
            }
        };
        let mut line = match &f.label {
            Some(label) => format!("{label:<9} "),
            None => format!("{}  ", jiff::Zoned::now().strftime("%H:%M:%S")),
        };
        match level {
            Level::ERROR => line.push_str(&paint("31", "error: ")),
            Level::WARN => line.push_str(&paint("33", "warning: ")),
            _ => {}
        }
        line.push_str(&f.message);
        // Other crates' structured fields, after the message.
        for (k, v) in &f.rest {
            line.push_str(&format!(" {k}={v}"));
        }
        if f.label.is_none() && event.metadata().target() != module_path!() {
            let target = event.metadata().target();
            if !target.starts_with("kubectl_automon") {
                line.push_str(&paint("2", &format!(" ({target})")));
            }
        }
        writeln!(writer, "{line}")
    }
}
