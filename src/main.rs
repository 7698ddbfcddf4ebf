//! kubectl-automon: complete Kubernetes monitoring with one command, and an honest answer to
//! "is every node monitored?". `main` only wires; each subcommand lives in `commands/`.

mod apply;
mod blocker;
mod cli;
mod cluster;
mod commands;
mod config;
mod crds;
mod diff;
mod doctor;
mod error;
mod exit;
mod exporter;
mod finding;
mod inventory;
mod output;
mod plan;
mod preflight;
mod proxy;
mod reconcile;
mod render;
mod resources;
mod revision;
mod rollout;
mod schema;
mod selector;
mod sizing;
mod slim;
mod status;
mod versions;
mod watch;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
