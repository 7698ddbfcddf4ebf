//! An aggregated API without a backend (prometheus-adapter's `v1beta1.metrics.k8s.io` after
//! its namespace went) holds every namespace deletion in the cluster. `doctor` reports it as a
//! cluster problem with the fix, `disable` names it instead of waiting its whole timeout for
//! "a finalizer", and `enable` into that namespace says why it cannot begin. A test binary of its own: while the APIService is unavailable, no
//! namespace of any other test could finish deleting.

mod common;

use common::*;

const NS: &str = "automon-blocked";
const API: &str = "v1alpha1.automon-blocked.example.com";

struct RemoveApi;

impl Drop for RemoveApi {
    fn drop(&mut self) {
        cluster().kubectl(&["delete", "apiservice", API, "--ignore-not-found"]);
    }
}

#[test]
fn an_unavailable_apiservice_is_named_by_doctor_and_disable() {
    let c = cluster();
    let _ns = Cleanup::fresh(NS);
    enable(NS, &[]).success();
    let _api = RemoveApi;
    // Its Service is nowhere: the API server marks it unavailable without dialing anything.
    let api = format!(
        r#"apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {{name: {API}}}
spec:
  group: automon-blocked.example.com
  version: v1alpha1
  groupPriorityMinimum: 1000
  versionPriority: 15
  insecureSkipTLSVerify: true
  service: {{namespace: automon-blocked-adapter, name: adapter, port: 443}}
"#
    );
    apply(&api);
    c.kubectl(&[
        "wait",
        "--for=condition=Available=False",
        &format!("apiservice/{API}"),
        "--timeout=60s",
    ])
    .success();

    let doctor = run(automon_admin().args(["doctor", "-n", NS]));
    assert!(
        doctor
            .stdout
            .contains(&format!("apiservice {API} is unavailable (ServiceNotFound")),
        "{doctor:#?}"
    );
    assert!(
        doctor
            .stdout
            .contains(&format!("kubectl delete apiservice {API}")),
        "{doctor:#?}"
    );

    let out = run(automon_admin().args(["disable", "-n", NS, "--yes", "--timeout", "3m"])).code(1);
    assert!(
        out.stderr.contains("NamespaceDeletionDiscoveryFailure"),
        "{out:#?}"
    );
    assert!(
        out.stderr
            .contains(&format!("apiservice {API} is unavailable")),
        "{out:#?}"
    );
    assert!(!out.stderr.contains("a finalizer may hold"), "{out:#?}");
    // Stopped when the namespace controller said so, not at the end of --timeout.
    assert!(
        out.stderr.contains("cannot finish deleting namespace"),
        "{out:#?}"
    );

    // enable into the namespace still being deleted: it waits for it, and stops at once on
    // the same blocker, named, before any write.
    let blocked = enable(NS, &[]).code(1);
    assert!(
        blocked.stderr.contains(&format!(
            "namespace {NS} is still being deleted (an earlier disable?)"
        )),
        "{blocked:#?}"
    );
    assert!(
        blocked
            .stderr
            .contains(&format!("apiservice {API} is unavailable")),
        "{blocked:#?}"
    );
    assert!(
        blocked.stdout.contains(&format!(
            "Namespace {NS} is being deleted: waiting until it is gone"
        )),
        "{blocked:#?}"
    );

    // Fixed as the message says, the namespace finishes by itself, and enable (waiting for
    // that if it is not done yet) installs again.
    c.kubectl(&["delete", "apiservice", API]).success();
    let again = enable(NS, &[]).success();
    assert!(
        again.stdout.contains(&format!("namespace/{NS} created")),
        "{again:#?}"
    );
}
