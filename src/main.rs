//! kubectl-automon: complete Kubernetes monitoring with one command, and an honest answer to
//! "is every node monitored?". `main` only wires; each subcommand lives in `commands/`.

// The layers, lowest first: a module imports only from its own layer's lower neighbours and
// the layers below it (tests/architecture.rs checks this).
mod cli;
mod cluster;
mod commands;
mod config;
mod doctor;
mod model;
mod output;
mod pipeline;
mod plan;
mod preflight;
mod reconcile;
mod render;
mod status;
mod versions;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
