//! One file per subcommand; each takes its parsed flags and returns an exit code.

pub mod completion;
pub mod diff;
pub mod preflight;
pub mod disable;
pub mod render;
pub mod version;
