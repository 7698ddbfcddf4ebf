//! `completion bash|zsh|fish|kubectl-plugin`: a completion script for the shell, or the
//! `kubectl_complete-automon` helper through which kubectl (1.26+) completes `kubectl automon`;
//! and `__complete`, the answer that helper asks for, from the same clap definition.

use std::ffi::OsString;

use clap_complete::{Shell, engine::CompletionCandidate};

use crate::exit::Verdict;

/// The helper kubectl runs for plugin completion; the release archives ship the same files.
const KUBECTL_PLUGIN_SH: &str = include_str!("../../krew/kubectl_complete-automon");
const KUBECTL_PLUGIN_CMD: &str = include_str!("../../krew/kubectl_complete-automon.cmd");

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The shell to print the script for; kubectl-plugin prints kubectl_complete-automon, which
    /// kubectl runs to complete `kubectl automon ...`
    #[arg(value_enum)]
    shell: CompletionShell,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    KubectlPlugin,
}

pub fn run(args: Args, cmd: &mut clap::Command) -> anyhow::Result<Verdict> {
    let shell = match args.shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
        CompletionShell::KubectlPlugin => {
            // Windows' kubectl finds kubectl_complete-automon.cmd through PATHEXT.
            let helper = if cfg!(windows) {
                KUBECTL_PLUGIN_CMD
            } else {
                KUBECTL_PLUGIN_SH
            };
            crate::output::print(helper)?;
            return Ok(Verdict::Done);
        }
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, cmd, "kubectl-automon", &mut script);
    crate::output::print(&String::from_utf8_lossy(&script))?;
    Ok(Verdict::Done)
}

/// Cobra's directives, the last line of an answer: what the shell does besides our candidates.
const DIRECTIVE_ERROR: u8 = 1;
const DIRECTIVE_NO_SPACE: u8 = 2;
const DIRECTIVE_NO_FILE_COMP: u8 = 4;

/// Answers kubectl's plugin completion (Cobra's `__complete` protocol): `words` are the words
/// after `kubectl automon`, the last one being completed (empty when nothing is typed yet).
/// One candidate per line, `value<TAB>description`, then `:<directive>`.
pub fn answer(cmd: &mut clap::Command, words: Vec<OsString>) -> String {
    let cursor = words.len();
    // As Cobra does: flags are offered once a `-` is typed, not among values and subcommands.
    let flags_wanted = words
        .last()
        .is_some_and(|w| w.to_string_lossy().starts_with('-'));
    let mut args = vec![OsString::from("kubectl-automon")];
    args.extend(words);
    if cursor == 0 {
        args.push(OsString::new());
    }
    let current_dir = std::env::current_dir().ok();
    match clap_complete::engine::complete(cmd, args, cursor.max(1), current_dir.as_deref()) {
        Ok(mut candidates) => {
            if !flags_wanted {
                candidates.retain(|c| !c.get_value().to_string_lossy().starts_with('-'));
            }
            protocol_lines(&candidates)
        }
        Err(_) => format!(":{DIRECTIVE_ERROR}\n"),
    }
}

fn protocol_lines(candidates: &[CompletionCandidate]) -> String {
    let mut out = String::new();
    let mut directive = DIRECTIVE_NO_FILE_COMP;
    for c in candidates.iter().filter(|c| !c.is_hide_set()) {
        let value = c.get_value().to_string_lossy();
        // A directory (from a path argument) is completed further, not ended with a space.
        if value.ends_with(std::path::MAIN_SEPARATOR) {
            directive |= DIRECTIVE_NO_SPACE;
        }
        out.push_str(&value);
        if let Some(help) = c.get_help() {
            let help = help.to_string();
            if let Some(first) = help.lines().next().filter(|l| !l.is_empty()) {
                out.push('\t');
                out.push_str(first);
            }
        }
        out.push('\n');
    }
    out.push_str(&format!(":{directive}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(words: &[&str]) -> String {
        answer(
            &mut crate::cli::command(),
            words.iter().map(OsString::from).collect(),
        )
    }

    fn values(answer: &str) -> Vec<&str> {
        answer
            .lines()
            .filter(|l| !l.starts_with(':'))
            .map(|l| l.split('\t').next().unwrap_or_default())
            .collect()
    }

    #[test]
    fn subcommands_complete_from_a_prefix_with_their_description() {
        let out = complete(&["st"]);
        assert_eq!(values(&out), ["status"], "{out}");
        assert!(
            out.starts_with("status\tShow the stack's components"),
            "{out}"
        );
        assert!(out.ends_with(":4\n"), "{out}");
    }

    #[test]
    fn nothing_typed_offers_every_visible_subcommand() {
        for words in [&[][..], &[""][..]] {
            let out = complete(words);
            let v = values(&out);
            for sub in ["enable", "status", "open", "version", "completion"] {
                assert!(v.contains(&sub), "{sub} missing from {out}");
            }
            assert!(!v.iter().any(|v| v.starts_with('_')), "{out}");
            assert!(
                !v.iter().any(|v| v.starts_with('-')),
                "flags before a `-`: {out}"
            );
        }
    }

    #[test]
    fn flags_of_the_subcommand_and_the_global_kubectl_flags() {
        let out = complete(&["status", "--"]);
        let v = values(&out);
        for flag in ["--output", "--context", "--namespace", "--kubeconfig"] {
            assert!(v.contains(&flag), "{flag} missing from {out}");
        }
        assert!(
            !v.contains(&"--client"),
            "version's flag offered to status: {out}"
        );
    }

    #[test]
    fn possible_values_of_positionals_and_options() {
        assert_eq!(
            values(&complete(&["open", ""])),
            ["grafana", "prometheus", "alertmanager", "query"]
        );
        assert_eq!(values(&complete(&["open", "pro"])), ["prometheus"]);
        assert_eq!(
            values(&complete(&["version", "-o", ""])),
            ["table", "json", "yaml"]
        );
        assert_eq!(values(&complete(&["completion", "k"])), ["kubectl-plugin"]);
    }

    #[test]
    fn a_free_value_offers_nothing_and_no_files() {
        assert_eq!(complete(&["--context", ""]), ":4\n");
    }
}
