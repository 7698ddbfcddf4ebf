//! Nothing the API server would refuse gets past the plan, even where a server-side dry run
//! cannot be done yet: in a namespace that does not exist, objects are checked against the
//! schemas the server publishes, and custom resources whose CRDs the run is about to apply
//! against those CRDs. A test binary of its own: a mistake here would apply changed CRDs that
//! every other test uses.

mod common;

use common::*;

const NS: &str = "automon-validate";

/// The cluster's CRD files, with the Prometheus CRD's `spec.retention` allowed in days only.
fn stricter_crds() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(cluster().crds_dir()).unwrap() {
        let path = entry.unwrap().path();
        let mut text = std::fs::read_to_string(&path).unwrap();
        if path.file_name().unwrap() == "prometheuses.monitoring.coreos.com.yaml" {
            let field = text
                .find("\n              retention:\n")
                .expect("spec.retention");
            let start = field + text[field..].find("pattern: ").unwrap();
            let end = start + text[start..].find('\n').unwrap();
            text.replace_range(start..end, "pattern: ^[0-9]+d$");
        }
        std::fs::write(dir.path().join(path.file_name().unwrap()), text).unwrap();
    }
    dir
}

#[test]
fn a_fresh_install_is_checked_against_the_crds_it_brings_before_any_write() {
    let c = cluster();
    c.ensure_crds();
    let _ns = Cleanup::fresh(NS);
    let crds = stricter_crds();
    let out = enable(
        NS,
        &[
            "--crds-from",
            crds.path().to_str().unwrap(),
            "--set",
            "prometheus.retention=12h",
        ],
    )
    .code(1);
    assert!(
        out.stderr.contains(
            "prometheus.monitoring.coreos.com/automon: the API server rejected it: its schema says: spec.retention: Invalid value: \"12h\": should match '^[0-9]+d$'"
        ),
        "{out:#?}"
    );
    assert!(out.stderr.contains("nothing was applied"), "{out:#?}");
    // Nothing written: no namespace, and the cluster's CRD is as it was.
    assert!(!exists(&["namespace", NS]));
    let crd = get_json(&["get", "crd", "prometheuses.monitoring.coreos.com"]);
    assert!(
        !crd.to_string().contains("^[0-9]+d$"),
        "the stricter CRD was not applied"
    );
}
