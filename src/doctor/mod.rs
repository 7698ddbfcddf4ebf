//! `doctor`: why something does not work, and the exact fix. Gathers status' snapshot plus what
//! only doctor needs (every `Prometheus` and its selectors, the namespace's PodSecurity labels,
//! the CRDs' versions, the operators, kubelet Services and webhooks left by other stacks, the
//! live Alertmanager configuration); then judges it all in pure functions.

//!
//! Three parts: [`gather`] reads the cluster, [`checks`] judges (pure, one function per
//! check), [`report`] counts and decides the exit code.

mod checks;
mod gather;
mod report;

use serde::Serialize;

use crate::preflight::Level;

pub use checks::assess;
pub use gather::{Extra, Webhook, gather};
pub use report::Report;

/// One verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Which check: `installed`, `components`, `selectors`, `nodes`, `podSecurity`, `hostPort`,
    /// `crds`, `kubeletService`, `webhooks`, `alertmanager`, `scrapes`.
    pub check: &'static str,
    pub level: Level,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

pub(crate) fn ok(check: &'static str, message: impl Into<String>) -> Finding {
    Finding {
        check,
        level: Level::Ok,
        message: message.into(),
        fix: None,
    }
}

pub(crate) fn bad(
    check: &'static str,
    level: Level,
    message: impl Into<String>,
    fix: impl Into<String>,
) -> Finding {
    Finding {
        check,
        level,
        message: message.into(),
        fix: Some(fix.into()),
    }
}
