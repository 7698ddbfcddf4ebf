//! kubectl-automon: complete Kubernetes monitoring with one command, and an honest answer to
//! "is every node monitored?". `main` only wires; each subcommand lives in `commands/`.

// The floors of the house, lowest first: a module imports only from the floors below its own
// (tests/architecture.rs holds every file to it).
// Printing, and the versions of what the stack runs.
mod output;
mod versions;
// The vocabulary every floor shares: an object, its names and labels, selectors, findings.
mod model;
// The configuration a user gives, and the sizing it implies.
mod config;
// Configuration → the stack's objects (pure).
mod render;
// Reading and writing the cluster.
mod cluster;
// The stack's Alertmanager: its API, and what its answers mean.
mod alertmanager;
// What must hold, and what else is installed, before automon writes.
mod preflight;
// The objects to apply + what the cluster holds → what to do (pure).
mod plan;
// Whether every node is monitored: gather, assess.
mod status;
// Planning and executing: the one way the cluster is changed.
mod pipeline;
// Moving from a kube-prometheus-stack Helm release: read it, map its values, remove it.
mod migrate;
// What a command's verdict or error means as an exit code, decided in one place.
mod exit;
// What uses all of the above: the checks, and the loop that keeps the stack true.
mod doctor;
mod reconcile;
// One file per subcommand: its flags and its lines.
mod commands;
// The command line, its errors and exit codes.
mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
