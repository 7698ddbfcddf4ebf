//! Flags in one place, and the top of the program: parse, run one command, print any error
//! once with its chain, and exit with the code the README documents.

use std::process::ExitCode;

use clap::{
    Args as _, CommandFactory, FromArgMatches as _, Parser, Subcommand, error::ErrorKind,
    parser::ValueSource,
};

use crate::{
    cluster::KubeFlags,
    commands,
    exit::{self, Convention, Verdict},
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
    /// List the revisions enable and rollback recorded: when, which plugin, who, what changed;
    /// or one revision's values (--revision N)
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
    /// Open Grafana, Prometheus, Alertmanager or Thanos Query on a local port (a port-forward through the API server)
    Open(commands::open::Args),
    /// Check, without writing anything, that enable can install here: server, permissions, other operators
    Preflight(commands::preflight::Args),
    /// Print every object of the stack as YAML or JSON, offline (for GitOps or review)
    Render(commands::render::Args),
    /// Print the plugin's version, the component versions it pins, and the server's version
    Version(commands::version::Args),
    /// Print a shell completion script (bash, zsh, fish), or kubectl's plugin completion helper
    Completion(commands::completion::Args),
    /// Send a synthetic alert through the stack's Alertmanager; report per receiver whether it was delivered
    TestAlert(commands::test_alert::Args),
    /// Silence a node's alerts for maintenance (Alertmanager silence); --list, --expire
    Silence(commands::silence::Args),
    /// Move from a kube-prometheus-stack Helm release with no gap: install beside it, prove every target is scraped, remove it
    Migrate(commands::migrate::Args),
}

/// Two to four real invocations per command, printed at the end of its help (after what the
/// command's own definition says there, such as its exit status).
const EXAMPLES: &[(&str, &str)] = &[
    (
        "enable",
        "  # Install (or update) the stack in namespace automon and wait until it is ready
  kubectl automon enable --wait
  # Install from a configuration file into another namespace
  kubectl automon enable -n monitoring -f automon.yaml
  # Preview changing one setting of what is installed (the API server checks it; nothing is saved)
  kubectl automon enable --set prometheus.retention=30d --dry-run=server",
    ),
    (
        "diff",
        "  # What enable would change with one setting changed
  kubectl automon diff --set prometheus.retention=30d
  # What enable would change from a configuration file
  kubectl automon diff -f automon.yaml
  # What rolling back to revision 2 would change
  kubectl automon diff --revision 2",
    ),
    (
        "history",
        "  kubectl automon history
  kubectl automon history -n monitoring -o json
  # The values given for revision 2 (what enable -f takes to make it again)
  kubectl automon history --revision 2 > values.yaml",
    ),
    (
        "rollback",
        "  # Go back to the revision before the latest, and wait until it is ready
  kubectl automon rollback --wait
  # Check revision 2 with the API server, then restore it
  kubectl automon rollback 2 --dry-run=server
  kubectl automon rollback 2",
    ),
    (
        "disable",
        "  # See what would be deleted
  kubectl automon disable --dry-run
  # Delete the stack without asking, keeping Prometheus' data
  kubectl automon disable --yes
  # Delete the stack in namespace monitoring, with its data
  kubectl automon disable -n monitoring --yes --delete-data",
    ),
    (
        "status",
        "  kubectl automon status
  # Every node, with its exporter pod
  kubectl automon status -o wide
  # Redraw whenever something changes
  kubectl automon status --watch
  # Every cluster of the kubeconfig at once, one row each
  kubectl automon status --all-contexts -n monitoring",
    ),
    (
        "doctor",
        "  kubectl automon doctor
  # Ask a Prometheus of your own (port-forwarded) about the scrapes
  kubectl automon doctor --prometheus-url http://localhost:9090
  # The failing checks of two clusters, each fix naming its context
  kubectl automon doctor --contexts prod-eu,prod-us",
    ),
    (
        "reconcile",
        "  # One pass that reports drift and repairs nothing
  kubectl automon reconcile --no-repair
  # Keep every node monitored, with metrics and probes on port 8080
  kubectl automon reconcile --loop --metrics-addr 0.0.0.0:8080 --log-format json",
    ),
    (
        "open",
        "  kubectl automon open grafana --browser
  kubectl automon open prometheus --port 9090
  kubectl automon open alertmanager -n monitoring",
    ),
    (
        "preflight",
        "  kubectl automon preflight
  kubectl automon preflight --context production -n monitoring -o json",
    ),
    (
        "render",
        "  # The default stack as YAML, for GitOps
  kubectl automon render > automon.yaml
  # With the CRDs first, from a configuration file, as JSON
  kubectl automon render -f automon.yaml --include-crds -o json
  # Sized for a cluster of 500 nodes, in namespace monitoring
  kubectl automon render -n monitoring --nodes 500",
    ),
    (
        "version",
        "  kubectl automon version
  # Only the plugin's side, without contacting the server
  kubectl automon version --client -o json",
    ),
    (
        "migrate",
        "  # What moving from release kps in namespace monitoring would do
  kubectl automon migrate kps --from-namespace monitoring --dry-run
  # Its values as automon's, for enable -f
  kubectl automon migrate kps --from-namespace monitoring --dry-run -o yaml > automon.yaml
  # Run beside it first, and finish later
  kubectl automon migrate kps --from-namespace monitoring --keep-old
  kubectl automon migrate kps --from-namespace monitoring",
    ),
    (
        "test-alert",
        "  # Where a real critical node alert would go: did each receiver get it?
  kubectl automon test-alert
  # One receiver, whatever the routes say
  kubectl automon test-alert --receiver oncall --timeout 2m",
    ),
    (
        "silence",
        "  # Silence node-7's alerts during a kernel upgrade
  kubectl automon silence node-7 --for 2h --comment kernel-upgrade
  kubectl automon silence --list
  kubectl automon silence --expire node-7",
    ),
    (
        "completion",
        "  source <(kubectl automon completion bash)
  kubectl automon completion zsh > \"${fpath[1]}/_kubectl-automon\"
  # Let kubectl complete `kubectl automon ...` (any directory on PATH)
  kubectl automon completion kubectl-plugin > ~/.krew/bin/kubectl_complete-automon",
    ),
];

/// The commands that work offline: they never read the kubeconfig, so the cluster flags are
/// neither shown in their help nor accepted. `render` keeps `-n`: it sets the namespace it
/// renders into.
const OFFLINE: &[&str] = &["render", "completion"];

/// The kubectl flags an offline command takes no notice of: all of them for `completion`,
/// all but `-n` for `render`.
fn cluster_args(command: &str) -> Vec<clap::Arg> {
    KubeFlags::augment_args(clap::Command::new("kubectl"))
        .get_arguments()
        .filter(|a| command != "render" || a.get_id() != "namespace")
        .cloned()
        .collect()
}

/// The command line as clap parses, completes and prints it: the derived definition, with each
/// command's examples and the cluster flags hidden from the offline commands.
pub fn command() -> clap::Command {
    let mut cmd = Cli::command();
    for (name, examples) in EXAMPLES {
        cmd = cmd.mut_subcommand(name, |sub| {
            let text = match sub.get_after_help() {
                Some(own) => format!("{own}\n\nExamples:\n{examples}"),
                None => format!("Examples:\n{examples}"),
            };
            sub.after_help(text)
        });
    }
    for name in OFFLINE {
        // The same arguments, hidden: clap then does not add the global ones to this command,
        // and a value given here still reaches the flags, where `offline_only` refuses it.
        cmd = cmd.mut_subcommand(name, |sub| {
            sub.args(
                cluster_args(name)
                    .into_iter()
                    .map(|a| a.global(false).hide(true)),
            )
        });
    }
    cmd
}

/// Parses a command line; a cluster flag given to an offline command is a usage error.
pub fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut cmd = command();
    let matches = cmd.try_get_matches_from_mut(args)?;
    offline_only(&mut cmd, &matches)?;
    one_context_or_several(&mut cmd, &matches)?;
    Cli::from_arg_matches(&matches)
}

fn offline_only(cmd: &mut clap::Command, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
    let Some((name, _)) = matches.subcommand() else {
        return Ok(());
    };
    if !OFFLINE.contains(&name) {
        return Ok(());
    }
    let given = cluster_args(name)
        .into_iter()
        .find(|a| matches.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine));
    let Some(flag) = given else {
        return Ok(());
    };
    let flag = match (flag.get_long(), flag.get_short()) {
        (Some(long), _) => format!("--{long}"),
        (None, Some(short)) => format!("-{short}"),
        (None, None) => flag.get_id().to_string(),
    };
    let hint = if name == "render" {
        " (-n still sets the namespace it renders into)"
    } else {
        ""
    };
    let message = format!(
        "{flag} is not for `{name}`, which works offline and never reads the kubeconfig; leave it out{hint}"
    );
    Err(match cmd.find_subcommand_mut(name) {
        Some(sub) => sub.error(ErrorKind::ArgumentConflict, message),
        None => cmd.error(ErrorKind::ArgumentConflict, message),
    })
}

/// `--context`, `--cluster` or `--user` before the command name with `--contexts` or
/// `--all-contexts` after it: clap checks conflicts within one command's arguments, and a
/// global flag given before the command belongs to the top one.
fn one_context_or_several(
    cmd: &mut clap::Command,
    matches: &clap::ArgMatches,
) -> Result<(), clap::Error> {
    let Some((name, sub)) = matches.subcommand() else {
        return Ok(());
    };
    let given = |m: &clap::ArgMatches, id: &str| {
        m.try_contains_id(id).unwrap_or(false)
            && m.value_source(id) == Some(ValueSource::CommandLine)
    };
    let several = ["contexts", "all_contexts"]
        .into_iter()
        .find(|id| given(sub, id));
    let one = ["context", "cluster", "user"]
        .into_iter()
        .find(|id| given(matches, id));
    let (Some(several), Some(one)) = (several, one) else {
        return Ok(());
    };
    let message = format!(
        "--{one} cannot be used with --{}: each context is asked with its own cluster and user",
        several.replace('_', "-")
    );
    Err(match cmd.find_subcommand_mut(name) {
        Some(sub) => sub.error(ErrorKind::ArgumentConflict, message),
        None => cmd.error(ErrorKind::ArgumentConflict, message),
    })
}

pub fn main() -> ExitCode {
    // kubectl's plugin completion (kubectl_complete-automon) asks `__complete WORDS...`: a partial
    // command line that would not parse (`--context` without its value, `--help`), so it is
    // answered before parsing, from the same definition, and is no subcommand of its own.
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == "__complete") {
        let answer = commands::completion::answer(&mut command(), args.collect());
        let printed = crate::output::print(&answer).map(|()| Verdict::Done);
        return finish(printed.map_err(anyhow::Error::new), Convention::Automon);
    }
    let cli = match parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are "errors" to clap that exit 0.
            let verdict = if e.use_stderr() {
                Verdict::Usage
            } else {
                Verdict::Done
            };
            let _ = e.print();
            return finish(Ok(verdict), Convention::Automon);
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
            return finish(Err(e), Convention::Automon);
        }
    };
    let convention = match cli.command {
        Command::Diff(_) => Convention::KubectlDiff,
        _ => Convention::Automon,
    };
    finish(runtime.block_on(run(cli)), convention)
}

async fn run(cli: Cli) -> anyhow::Result<Verdict> {
    match cli.command {
        Command::Version(args) => commands::version::run(&cli.kube, args).await,
        Command::Enable(args) => commands::enable::run(&cli.kube, args).await,
        Command::Render(args) => commands::render::run(&cli.kube, args).await,
        Command::Diff(args) => commands::diff::run(&cli.kube, args).await,
        Command::Completion(args) => commands::completion::run(args, &mut command()),
        Command::Preflight(args) => commands::preflight::run(&cli.kube, args).await,
        Command::Disable(args) => commands::disable::run(&cli.kube, args).await,
        Command::Status(args) => commands::status::run(&cli.kube, args).await,
        Command::Doctor(args) => commands::doctor::run(&cli.kube, args).await,
        Command::Open(args) => commands::open::run(&cli.kube, args).await,
        Command::Reconcile(args) => commands::reconcile::run(&cli.kube, args).await,
        Command::History(args) => commands::history::run(&cli.kube, args).await,
        Command::Rollback(args) => commands::rollback::run(&cli.kube, args).await,
        Command::Migrate(args) => commands::migrate::run(&cli.kube, args).await,
        Command::TestAlert(args) => commands::test_alert::run(&cli.kube, args).await,
        Command::Silence(args) => commands::silence::run(&cli.kube, args).await,
    }
}

/// Prints an error once, with its chain, and exits with the code [`exit::code`] gives.
fn finish(result: anyhow::Result<Verdict>, convention: Convention) -> ExitCode {
    if let Err(e) = &result {
        crate::output::error(&format!("{e:#}"));
    }
    ExitCode::from(exit::code(&result, convention))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
        command().debug_assert();
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

    /// The command lines of a help text's examples, each as the words after `kubectl automon`.
    fn example_invocations(help: &str) -> Vec<Vec<String>> {
        let examples = help
            .rsplit_once("\nExamples:\n")
            .map(|(_, e)| e)
            .unwrap_or("");
        examples
            .lines()
            .map(|l| {
                l.trim()
                    .trim_start_matches("source <(")
                    .trim_end_matches(')')
            })
            .filter_map(|l| l.strip_prefix("kubectl automon "))
            .map(|l| {
                l.split_whitespace()
                    .take_while(|w| !matches!(*w, ">" | "|" | "&&"))
                    .map(String::from)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_command_ends_its_help_with_examples_that_parse() {
        let mut cmd = command();
        cmd.build();
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .filter(|n| n != "help")
            .collect();
        assert_eq!(names.len(), EXAMPLES.len(), "{names:?}");
        for name in names {
            let sub = cmd.find_subcommand_mut(&name).unwrap();
            for help in [sub.render_long_help(), sub.render_help()] {
                let help = help.to_string();
                let (_, examples) = help
                    .rsplit_once("\nExamples:\n")
                    .unwrap_or_else(|| panic!("{name} --help has no Examples:\n{help}"));
                assert!(
                    !examples.contains("\n\n"),
                    "{name}: Examples is not last:\n{help}"
                );
                let invocations = example_invocations(&help);
                assert!(
                    (2..=4).contains(&invocations.len()),
                    "{name}: {invocations:?}"
                );
                for words in invocations {
                    assert_eq!(words[0], name, "{name}: {words:?}");
                    let args = std::iter::once("kubectl-automon".to_string()).chain(words.clone());
                    if let Err(e) = parse_from(args) {
                        panic!("{name}: example {words:?} does not parse: {e}");
                    }
                }
            }
        }
    }

    #[test]
    fn help_is_a_command_as_in_kubectl() {
        for (args, wanted) in [
            (&["help", "status"][..], "kubectl automon status --watch"),
            (&["help", "render"][..], "Examples:"),
            (&["help"][..], "Commands:"),
        ] {
            let e = parse_from(std::iter::once("kubectl-automon").chain(args.iter().copied()))
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::DisplayHelp, "{args:?}");
            assert!(!e.use_stderr(), "help exits 0: {args:?}");
            assert!(e.to_string().contains(wanted), "{args:?}: {e}");
        }
    }

    #[test]
    fn offline_commands_show_and_take_no_cluster_flags() {
        let cluster_flags = [
            "--kubeconfig",
            "--context",
            "--cluster",
            "--user",
            "--request-timeout",
            "--as ",
            "--as-group",
            "--as-uid",
        ];
        let mut cmd = command();
        cmd.build();
        for name in ["render", "completion", "status"] {
            let help = cmd
                .find_subcommand_mut(name)
                .unwrap()
                .render_long_help()
                .to_string();
            for flag in cluster_flags {
                assert_eq!(
                    help.contains(flag),
                    name == "status",
                    "{name} {flag}:\n{help}"
                );
            }
            assert_eq!(
                help.contains("--namespace"),
                name != "completion",
                "{name}:\n{help}"
            );
        }

        for args in [
            &["render", "--context", "nope"][..],
            &["--context", "nope", "render"][..],
            &["render", "--kubeconfig", "/x", "-n", "mon"][..],
            &["render", "--request-timeout", "0"][..],
            &["render", "--as", "alice"][..],
            &["completion", "bash", "--as-group", "g"][..],
            &["completion", "bash", "--namespace", "mon"][..],
        ] {
            let e = parse_from(std::iter::once("kubectl-automon").chain(args.iter().copied()))
                .unwrap_err();
            assert_eq!(e.exit_code(), i32::from(exit::USAGE), "{args:?}");
            let text = e.to_string();
            let flag = args.iter().find(|a| a.starts_with("--")).unwrap();
            assert!(
                text.contains(&format!("{flag} is not for `")),
                "{args:?}: {text}"
            );
            assert!(
                text.contains("works offline and never reads the kubeconfig"),
                "{text}"
            );
        }
        let cli = parse_from(["kubectl-automon", "render", "-n", "mon"]).unwrap();
        assert_eq!(cli.kube.namespace.as_deref(), Some("mon"));
        let cli = parse_from(["kubectl-automon", "version", "--context", "prod"]).unwrap();
        assert_eq!(cli.kube.context.as_deref(), Some("prod"));
    }

    #[test]
    fn flag_docs_share_one_layout() {
        // Documented possible values switch clap to the long layout for the whole command.
        // disable's `--dry-run` still does (src/commands/disable.rs is another's to change).
        let mut cmd = command();
        cmd.build();
        for sub in cmd
            .get_subcommands_mut()
            .filter(|s| s.get_name() != "disable")
        {
            let name = sub.get_name().to_string();
            let help = sub.render_long_help().to_string();
            assert!(!help.contains("Possible values:"), "{name}:\n{help}");
        }
    }

    #[test]
    fn several_contexts_conflict_with_one_and_with_watch() {
        for args in [
            &["status", "--contexts", "a,b", "--context", "c"][..],
            &["--context", "c", "status", "--contexts", "a,b"][..],
            &["--user", "u", "doctor", "--all-contexts"][..],
            &["status", "--all-contexts", "--cluster", "k"][..],
            &["status", "--all-contexts", "--contexts", "a"][..],
            &["status", "--contexts", "a", "--watch"][..],
            &["status", "-w", "--all-contexts"][..],
        ] {
            let e = parse_from(std::iter::once("kubectl-automon").chain(args.iter().copied()))
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ArgumentConflict, "{args:?}: {e}");
            assert_eq!(e.exit_code(), i32::from(exit::USAGE), "{args:?}");
        }
        for args in [
            &[
                "status",
                "--contexts",
                "a,b",
                "-n",
                "mon",
                "--request-timeout",
                "2s",
            ][..],
            &["-n", "mon", "doctor", "--all-contexts", "-o", "json"][..],
            &["--context", "c", "status", "--watch"][..],
        ] {
            parse_from(std::iter::once("kubectl-automon").chain(args.iter().copied()))
                .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
    }

    #[test]
    fn usage_names_the_plugin_as_kubectl_does() {
        let help = Cli::command().render_usage().to_string();
        assert!(help.contains("kubectl automon"), "{help}");
    }
}
