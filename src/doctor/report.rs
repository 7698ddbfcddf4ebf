//! The findings counted, and the exit code they make.

use serde::Serialize;

use super::Finding;
use crate::{model::finding::Level, status};

/// `doctor -o json|yaml`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub namespace: String,
    pub failures: usize,
    pub warnings: usize,
    pub checks: Vec<Finding>,
}

impl Report {
    pub fn new(namespace: &str, checks: Vec<Finding>) -> Report {
        let count = |l: Level| checks.iter().filter(|c| c.level == l).count();
        Report {
            api_version: status::API_VERSION,
            kind: "Doctor",
            namespace: namespace.to_string(),
            failures: count(Level::Fail),
            warnings: count(Level::Warn),
            checks,
        }
    }

    /// 0 when nothing failed (warnings allowed), 9 when not installed, 8 otherwise.
    pub fn exit_code(&self) -> u8 {
        if self
            .checks
            .iter()
            .any(|c| c.check == "installed" && c.level == Level::Fail)
        {
            crate::cluster::error::exit::NOT_INSTALLED
        } else if self.failures > 0 {
            crate::cluster::error::exit::DEGRADED
        } else {
            0
        }
    }
}
