//! `completion bash|zsh|fish`: a completion script for the `kubectl-automon` binary.

use clap_complete::Shell;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The shell to print the script for
    #[arg(value_enum)]
    shell: CompletionShell,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

pub fn run(args: Args, cmd: &mut clap::Command) -> anyhow::Result<u8> {
    let shell = match args.shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, cmd, "kubectl-automon", &mut script);
    crate::output::print(&String::from_utf8_lossy(&script))?;
    Ok(0)
}
