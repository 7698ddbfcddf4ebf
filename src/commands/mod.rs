//! One file per subcommand; each takes its parsed flags and returns an exit code.

pub mod completion;
pub mod diff;
pub mod disable;
pub mod enable;
pub mod preflight;
pub mod render;
pub mod version;
