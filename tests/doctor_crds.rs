//! `doctor`'s CRD version check against the local cluster: a CRD generated for an older
//! operator (a minor behind, and a patch behind) fails, one for a newer operator warns. The CRDs
//! are cluster-wide: a binary of its own, which cargo runs after the others, not beside them,
//! and the CRD's version is put back however the test ends.

mod common;
mod doctor_support;

use common::*;
use doctor_support::*;

const CRD: &str = "prometheusrules.monitoring.coreos.com";
const VERSION: &str = "operator.prometheus.io/version";

/// Sets the CRD's operator version; puts the one it had back when dropped.
struct CrdVersion(String);

impl CrdVersion {
    fn keep() -> CrdVersion {
        CrdVersion(
            kubectl(&[
                "get",
                "crd",
                CRD,
                "-o",
                &format!(
                    "jsonpath={{.metadata.annotations.{}}}",
                    VERSION.replace('.', "\\.")
                ),
            ])
            .stdout,
        )
    }

    #[track_caller]
    fn set(&self, version: &str) {
        kubectl(&[
            "annotate",
            "crd",
            CRD,
            &format!("{VERSION}={version}"),
            "--overwrite",
        ]);
    }
}

impl Drop for CrdVersion {
    fn drop(&mut self) {
        let value = if self.0.is_empty() {
            format!("{VERSION}-")
        } else {
            format!("{VERSION}={}", self.0)
        };
        cluster().kubectl(&["annotate", "crd", CRD, &value, "--overwrite"]);
    }
}

#[test]
fn crds_behind_the_operator_fail_and_ahead_of_it_warn() {
    let ns = "dr-crds";
    let _cleanup = Cleanup::fresh(ns);
    enable_ready(ns, &[]);
    let before = doctor(ns);
    // "CRDs 0.93.1 match the operator dr-crds/prometheus-operator v0.93.1"
    let operator = before
        .ok("crds")
        .rsplit(' ')
        .next()
        .unwrap()
        .trim_start_matches('v')
        .to_string();
    let [major, minor, patch]: [u64; 3] = operator
        .split('.')
        .map(|p| p.parse().unwrap())
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();

    let version = CrdVersion::keep();
    let enable_fix = format!("kubectl automon enable -n {ns}");
    let mut behind = vec![format!("{major}.{}.0", minor - 1)];
    if patch > 0 {
        behind.push(format!("{major}.{minor}.{}", patch - 1));
    }
    for old in &behind {
        version.set(old);
        let d = doctor(ns);
        let f = d.expect(
            "crds",
            "fail",
            &[
                &format!("CRDs at {old} ({CRD}) are behind the operator"),
                &format!("{ns}/prometheus-operator v{operator}"),
            ],
            &[&enable_fix],
        );
        assert_eq!(d.code, 8, "{d}");
        shows(ns, f);
    }

    let newer = format!("{major}.{}.0", minor + 2);
    version.set(&newer);
    let d = doctor_until(ns, "CRDs ahead, and no failure", |d| {
        d.has("crds", "warn", &newer) && d.fails_nothing()
    });
    d.expect(
        "crds",
        "warn",
        &[&format!(
            "CRDs at {newer} ({CRD}) are ahead of the operator"
        )],
        &["kubectl krew upgrade automon", "CRDs are never downgraded"],
    );
    d.passes();

    drop(version);
    doctor_until(ns, "CRDs as they were", |d| d.is_ok("crds"));
}
