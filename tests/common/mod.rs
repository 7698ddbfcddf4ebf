//! Test fixtures: the local cluster (started once per test binary, reused if already up) and
//! the real `kubectl-automon` binary, run the way a user runs it. Each test binary compiles its
//! own copy and uses part of it: what one binary leaves unused is no warning.
#![allow(dead_code)]

mod cluster;
mod http;
mod nodes;
mod reconcile_loop;
mod rendered;
mod run;
mod stack;
mod tools;
mod wait;

// What a binary uses none of is no warning either.
#[allow(unused_imports)]
pub use {
    cluster::*, http::*, nodes::*, reconcile_loop::*, rendered::*, run::*, stack::*, tools::*,
    wait::*,
};
