//! One file per subcommand; each takes its parsed flags and returns an exit code.

pub mod completion;
pub mod diff;
pub mod disable;
pub mod doctor;
pub mod enable;
pub mod open;
pub mod preflight;
pub mod render;
pub mod status;
pub mod version;
