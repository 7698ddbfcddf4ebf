//! The one way the cluster is changed: what should be there (a configuration rendered, or a
//! recorded revision) planned against what is there, and the plan executed. `enable`,
//! `rollback`, `diff` and `reconcile` all go through here.

pub mod rollout;
