//! The findings counted, and what they come to.

use crate::exit::Checks;
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

    /// Not installed when that check failed; failed when any other did (warnings pass).
    pub fn outcome(&self) -> Checks {
        if self
            .checks
            .iter()
            .any(|c| c.check == "installed" && c.level == Level::Fail)
        {
            Checks::NotInstalled
        } else if self.failures > 0 {
            Checks::Failed
        } else {
            Checks::Passed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_check_fails_and_a_failed_installed_check_says_not_installed() {
        let f = |check, level| Finding::new(check, level, "m");
        let cases = [
            (
                vec![f("pods", Level::Ok), f("crds", Level::Warn)],
                Checks::Passed,
            ),
            (
                vec![f("pods", Level::Ok), f("crds", Level::Fail)],
                Checks::Failed,
            ),
            (vec![f("installed", Level::Fail)], Checks::NotInstalled),
        ];
        for (checks, want) in cases {
            assert_eq!(Report::new("automon", checks).outcome(), want);
        }
    }
}
