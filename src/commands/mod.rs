//! One file per subcommand; each takes its parsed flags and returns an exit code.

pub mod args;
pub mod completion;
pub mod contexts;
pub mod diff;
pub mod disable;
pub mod doctor;
pub mod enable;
pub mod history;
pub mod migrate;
pub mod open;
pub mod preflight;
pub mod reconcile;
pub mod render;
pub mod rollback;
pub mod silence;
pub mod status;
pub mod test_alert;
pub mod version;
