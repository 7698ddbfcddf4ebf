//! `migrate`: moving from a kube-prometheus-stack Helm release to automon. What the release is
//! (its records, `release`), what its values become (`mapping`), what its removal deletes and
//! keeps (`manifest`), which of the user's objects its Prometheus selects (`yours`), and whether
//! automon's Prometheus scrapes what its Prometheus did (`coverage`, beside its one fetch) are pure;
//! reading the cluster for them (`survey`) and removing the release as `helm uninstall` does
//! (`uninstall`) are the I/O.

// Called by the migrate command, which comes next: the attribute goes with that change.
#[cfg_attr(not(test), allow(dead_code))]
pub mod coverage;
pub mod manifest;
pub mod mapping;
pub mod release;
pub mod survey;
pub mod uninstall;
pub mod yours;
