//! Flags in one place, and the top of the program: parse, run one command, print any error
//! once with its chain, and exit with the code the README documents.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::{
    apply::ApplyError,
    cluster::KubeFlags,
    commands::{self, open::OpenError},
    config::{ConfigError, UnreadableFile},
    error::{ClusterError, NotInstalled, exit},
    versions::LONG_VERSION,
};

/// Complete Kubernetes monitoring with one command, and the truth about whether every node is
/// really monitored.
#[derive(Parser, Debug)]
#[command(
    name = "kubectl automon",
    bin_name = "kubectl automon",
    version = LONG_VERSION,
    propagate_version = true,
    disable_help_subcommand = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub kube: KubeFlags,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Install or update the monitoring stack (server-side apply, in phases, idempotent)
    Enable(commands::enable::Args),
    /// Show what enable would change, from a server-side dry run, as a unified diff (exit 1 if any)
    Diff(commands::diff::Args),
    /// List the revisions enable and rollback recorded: when, which plugin, who, what changed
    History(commands::history::Args),
    /// Re-apply a recorded revision's exact objects (default: the one before the latest)
    Rollback(commands::rollback::Args),
    /// Remove the stack: exactly what enable installed, in reverse order; keeps data unless asked
    Disable(commands::disable::Args),
    /// Show the stack's components, every node's coverage (and why a node has none), rules, alerts
    Status(commands::status::Args),
    /// Find out why monitoring does not work, with the fix for each problem
    Doctor(commands::doctor::Args),
    /// Keep every node monitored: one pass, or --loop to watch Nodes until SIGINT/SIGTERM
    Reconcile(commands::reconcile::Args),
    /// Open Grafana, Prometheus or Alertmanager on a local port (a port-forward through the API server)
    Open(commands::open::Args),
    /// Check, without writing anything, that enable can install here: server, permissions, other operators
    Preflight(commands::preflight::Args),
    /// Print every object of the stack as YAML or JSON, offline (for GitOps or review)
    Render(commands::render::Args),
    /// Print the plugin's version, the component versions it pins, and the server's version
    Version(commands::version::Args),
    /// Print a shell completion script (bash, zsh, fish), or kubectl's plugin completion helper
    Completion(commands::completion::Args),
}

pub fn main() -> ExitCode {
    // kubectl's plugin completion (kubectl_complete-automon) asks `__complete WORDS...`: a partial
    // command line that would not parse (`--context` without its value, `--help`), so it is
    // answered before parsing, from the same definition, and is no subcommand of its own.
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == "__complete") {
        let answer = commands::completion::answer(&mut Cli::command(), args.collect());
        return match crate::output::print(&answer) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => ExitCode::from(report(&anyhow::Error::new(e))),
        };
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are "errors" to clap that exit 0.
            let code = if e.use_stderr() { exit::USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let e = anyhow::Error::new(e).context("cannot start the async runtime");
            return ExitCode::from(report(&e));
        }
    };
    // `diff` exits 1 for "there are differences", as kubectl diff does: its errors start at 2.
    let is_diff = matches!(cli.command, Command::Diff(_));
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => match report(&e) {
            exit::FAILURE if is_diff => ExitCode::from(exit::USAGE),
            code => ExitCode::from(code),
        },
    }
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Version(args) => commands::version::run(&cli.kube, args).await,
        Command::Enable(args) => commands::enable::run(&cli.kube, args).await,
        Command::Render(args) => commands::render::run(&cli.kube, args).await,
        Command::Diff(args) => commands::diff::run(&cli.kube, args).await,
        Command::Completion(args) => commands::completion::run(args, &mut Cli::command()),
        Command::Preflight(args) => commands::preflight::run(&cli.kube, args).await,
        Command::Disable(args) => commands::disable::run(&cli.kube, args).await,
        Command::Status(args) => commands::status::run(&cli.kube, args).await,
        Command::Doctor(args) => commands::doctor::run(&cli.kube, args).await,
        Command::Open(args) => commands::open::run(&cli.kube, args).await,
        Command::Reconcile(args) => commands::reconcile::run(&cli.kube, args).await,
        Command::History(args) => commands::history::run(&cli.kube, args).await,
        Command::Rollback(args) => commands::rollback::run(&cli.kube, args).await,
    }
}

/// Prints an error once, with its chain, and picks the exit code from its kind.
fn report(err: &anyhow::Error) -> u8 {
    let code = exit_code(err);
    crate::output::error(&format!("{err:#}"));
    code
}

/// The exit code the README documents for an error: the first cause in its chain that has one.
fn exit_code(err: &anyhow::Error) -> u8 {
    err.chain()
        .find_map(|e| {
            e.downcast_ref::<ClusterError>()
                .map(ClusterError::exit_code)
                .or_else(|| e.downcast_ref::<ConfigError>().map(|_| exit::USAGE))
                .or_else(|| e.downcast_ref::<UnreadableFile>().map(|_| exit::USAGE))
                .or_else(|| e.downcast_ref::<OpenError>().map(OpenError::exit_code))
                .or_else(|| {
                    e.downcast_ref::<NotInstalled>()
                        .map(|_| exit::NOT_INSTALLED)
                })
                .or_else(|| {
                    e.downcast_ref::<crate::reconcile::Denied>()
                        .map(|_| exit::FORBIDDEN)
                })
                .or_else(|| match e.downcast_ref::<ApplyError>() {
                    Some(ApplyError::Conflict { .. }) => Some(exit::CONFLICT),
                    Some(ApplyError::Cluster { source, .. }) => Some(source.exit_code()),
                    _ => None,
                })
        })
        .unwrap_or(exit::FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn kubectl_flags_are_global() {
        let cli = Cli::try_parse_from([
            "kubectl-automon",
            "version",
            "--context",
            "prod",
            "-n",
            "mon",
            "--as",
            "alice",
            "--as-group",
            "a",
            "--as-group",
            "b",
            "--request-timeout",
            "5s",
        ])
        .unwrap();
        assert_eq!(cli.kube.context.as_deref(), Some("prod"));
        assert_eq!(cli.kube.namespace.as_deref(), Some("mon"));
        assert_eq!(cli.kube.as_user.as_deref(), Some("alice"));
        assert_eq!(cli.kube.as_group, ["a", "b"]);
        assert_eq!(cli.kube.timeout(), Some(std::time::Duration::from_secs(5)));
    }

    #[test]
    fn numeric_flags_say_what_they_expect_in_words() {
        let cases: [(&[&str], &str); 6] = [
            (
                &["render", "--nodes", "x"],
                "expected a whole number (1 or more)",
            ),
            (
                &["render", "--nodes", "0"],
                "expected a whole number (1 or more)",
            ),
            (&["rollback", "two"], "expected a whole number (1 or more)"),
            (
                &["rollback", "--history-max=-1"],
                "expected a whole number (0 or more)",
            ),
            (
                &["diff", "--revision", "1.5"],
                "expected a whole number (1 or more)",
            ),
            (
                &["open", "grafana", "--port", "99999"],
                "expected a port number from 0 to 65535",
            ),
        ];
        for (args, words) in cases {
            let e =
                Cli::try_parse_from(std::iter::once("kubectl-automon").chain(args.iter().copied()))
                    .unwrap_err()
                    .to_string();
            assert!(e.contains(words), "{args:?}: {e}");
            for rust in ["invalid digit", "1..=", "u32", "u16"] {
                assert!(!e.contains(rust), "{args:?}: {e}");
            }
        }
    }

    #[test]
    fn not_installed_exits_9_wherever_it_is_found() {
        let e = anyhow::Error::new(NotInstalled {
            namespace: "default".into(),
        })
        .context("rollback");
        assert_eq!(exit_code(&e), exit::NOT_INSTALLED);
        assert_eq!(exit_code(&anyhow::anyhow!("other")), exit::FAILURE);
    }

    #[test]
    fn usage_names_the_plugin_as_kubectl_does() {
        let help = Cli::command().render_usage().to_string();
        assert!(help.contains("kubectl automon"), "{help}");
    }
}
