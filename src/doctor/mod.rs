//! `doctor`: why something does not work, and the exact fix. Gathers status' snapshot plus what
//! only doctor needs (every `Prometheus` and its selectors, the namespace's PodSecurity labels,
//! the CRDs' versions, the operators, kubelet Services and webhooks left by other stacks, the
//! live Alertmanager configuration); then judges it all in pure functions.

//!
//! Three parts: [`gather`] reads the cluster, [`checks`] judges (pure, one function per
//! check), [`report`] counts and says what they come to ([`crate::exit`] numbers it).

mod checks;
mod gather;
mod report;

pub use checks::assess;
pub use gather::{Extra, Webhook, gather};
pub use report::Report;

pub use crate::model::finding::{Finding, bad, ok};
