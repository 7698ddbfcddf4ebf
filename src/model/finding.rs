//! One verdict type for every check automon runs: `preflight`'s (and so `enable`'s) and
//! `doctor`'s. Which check, how it came out, what it says; the details of the long form; the
//! exact fix when there is one.

use serde::Serialize;

use crate::output::Palette;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    /// `✓`, a yellow `!` or a red `✗`, as preflight and doctor print verdicts.
    pub fn mark(self, p: &Palette) -> String {
        match self {
            Level::Ok => "✓".to_string(),
            Level::Warn => p.warn("!"),
            Level::Fail => p.bad("✗"),
        }
    }
}

/// One verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Which check: preflight's `reachable`, `version`, `permissions`, `operator`; doctor's
    /// `installed`, `version`, `components`, `selectors`, `yourMonitors`, `nodes`, `podSecurity`, `hostPort`, `crds`,
    /// `kubeletService`, `webhooks`, `alertmanager`, `scrapes`, `sizing`.
    pub check: &'static str,
    pub level: Level,
    pub message: String,
    /// What the one-line form leaves out (each missing permission, what was found).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    pub fn new(check: &'static str, level: Level, message: impl Into<String>) -> Finding {
        Finding {
            check,
            level,
            message: message.into(),
            details: Vec::new(),
            fix: None,
        }
    }

    pub fn with_details(mut self, details: Vec<String>) -> Finding {
        self.details = details;
        self
    }
}

/// A check that passed.
pub fn ok(check: &'static str, message: impl Into<String>) -> Finding {
    Finding::new(check, Level::Ok, message)
}

/// A check that did not pass, with the fix.
pub fn bad(
    check: &'static str,
    level: Level,
    message: impl Into<String>,
    fix: impl Into<String>,
) -> Finding {
    Finding {
        fix: Some(fix.into()),
        ..Finding::new(check, level, message)
    }
}
