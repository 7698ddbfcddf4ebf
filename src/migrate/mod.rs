//! `migrate`: moving from a kube-prometheus-stack Helm release to automon. What the release is
//! (its records, `release`), what its values become (`mapping`), what its removal deletes and
//! keeps (`manifest`), which of the user's objects its Prometheus selects (`yours`), and whether
//! automon's Prometheus scrapes what its Prometheus did (`coverage`, beside its one fetch), and
//! how automon runs beside the release until it is removed (`beside`) are pure;
//! reading the cluster for them (`survey`) and removing the release as `helm uninstall` does
//! (`uninstall`) are the I/O.

pub mod beside;
pub mod coverage;
pub mod manifest;
pub mod mapping;
pub mod release;
pub mod survey;
pub mod uninstall;
pub mod yours;
