//! `render --include-crds` as a user runs it: the operator's CRDs from a directory, a file or a
//! plain-http mirror come first, labelled as ApplySet members like the rest of the stack;
//! anything that is not a monitoring.coreos.com CRD is refused naming the file and document.

mod common;

use std::{
    io::{BufReader, Write},
    net::TcpListener,
};

use common::*;

const CRD_NAMES: [&str; 10] = [
    "alertmanagerconfigs.monitoring.coreos.com",
    "alertmanagers.monitoring.coreos.com",
    "podmonitors.monitoring.coreos.com",
    "probes.monitoring.coreos.com",
    "prometheusagents.monitoring.coreos.com",
    "prometheuses.monitoring.coreos.com",
    "prometheusrules.monitoring.coreos.com",
    "scrapeconfigs.monitoring.coreos.com",
    "servicemonitors.monitoring.coreos.com",
    "thanosrulers.monitoring.coreos.com",
];

/// Checks that the first ten objects are the operator's CRDs, labelled, then the stack.
fn assert_crds_first(items: &[serde_json::Value]) {
    let crds: Vec<String> = items[..10].iter().map(kind_name).collect();
    let want: Vec<String> = CRD_NAMES
        .iter()
        .map(|n| format!("CustomResourceDefinition/{n}"))
        .collect();
    assert_eq!(crds, want);
    assert_eq!(kind_name(&items[10]), "Namespace/automon");
    assert!(
        items[11..]
            .iter()
            .all(|o| o["kind"] != "CustomResourceDefinition"),
        "CRDs only at the start"
    );
    let parent = items
        .iter()
        .find(|o| o["metadata"]["labels"]["applyset.kubernetes.io/id"].is_string())
        .expect("an ApplySet parent");
    let id = &parent["metadata"]["labels"]["applyset.kubernetes.io/id"];
    let kinds = parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"]
        .as_str()
        .unwrap();
    assert!(
        kinds.contains("CustomResourceDefinition.apiextensions.k8s.io"),
        "{kinds}"
    );
    for crd in &items[..10] {
        let labels = &crd["metadata"]["labels"];
        assert_eq!(labels["applyset.kubernetes.io/part-of"], *id);
        assert_eq!(labels["app.kubernetes.io/managed-by"], "kubectl-automon");
        assert_eq!(
            crd["metadata"]["annotations"]["operator.prometheus.io/version"],
            "0.94.1"
        );
        assert!(
            crd["spec"]["versions"]
                .as_array()
                .is_some_and(|v| !v.is_empty())
        );
    }
}

#[test]
fn render_includes_the_crds_from_a_directory_first() {
    let dir = cluster().crds_dir();
    let items = rendered_objects(&["--include-crds", "--crds-from", dir.to_str().unwrap()]);
    assert_crds_first(&items);
    let without = rendered_objects(&[]);
    assert_eq!(
        items.len(),
        without.len() + 10,
        "the stack itself is unchanged"
    );

    // YAML too, and the same input gives the same bytes.
    let yaml = |_: ()| {
        run(automon().args([
            "render",
            "--include-crds",
            "--crds-from",
            dir.to_str().unwrap(),
        ]))
        .success()
        .stdout
    };
    let (a, b) = (yaml(()), yaml(()));
    assert_eq!(a, b);
    assert!(
        a.starts_with("---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"),
        "{}",
        &a[..200]
    );
}

#[test]
fn a_file_that_is_not_a_crd_is_refused_naming_it() {
    let crd = std::fs::read_to_string(
        cluster()
            .crds_dir()
            .join("probes.monitoring.coreos.com.yaml"),
    )
    .unwrap();
    let text = format!("{crd}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sneaky\n");
    let (_guard, path) = write_temp("mixed.yaml", &text);
    let out = run(automon()
        .args(["render", "--include-crds", "--crds-from"])
        .arg(&path))
    .code(1);
    assert!(
        out.stdout.is_empty(),
        "nothing half-done on stdout: {out:#?}"
    );
    out.stderr_has(&path.display().to_string())
        .stderr_has("document 2")
        .stderr_has("ConfigMap sneaky")
        .stderr_has("is not a CustomResourceDefinition");

    let other_group = crd.replace("group: monitoring.coreos.com", "group: example.com");
    let (_guard, path) = write_temp("other.yaml", &other_group);
    run(automon().args(["render", "--crds-from"]).arg(&path))
        .code(1)
        .stderr_has("other.yaml, document 1")
        .stderr_has("example.com");

    run(automon().args(["render", "--crds-from", "/nonexistent/crds.yaml"]))
        .code(1)
        .stderr_has("cannot read CRDs from /nonexistent/crds.yaml");
}

/// A tiny HTTP/1.1 server on 127.0.0.1 serving `body` at `path` and 404 elsewhere, for `n`
/// requests; returns its port.
fn serve(path: &'static str, body: Vec<u8>, n: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(n) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let Ok(Some(request)) = HttpRequest::read(&mut reader) else {
                continue;
            };
            let wanted = request.path() == Some(path);
            let (status, body): (&str, &[u8]) = if wanted {
                ("200 OK", &body)
            } else {
                ("404 Not Found", b"not found\n")
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/yaml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    port
}

#[test]
fn crds_from_a_plain_http_mirror() {
    let mut all = Vec::new();
    for name in CRD_NAMES.iter().rev() {
        all.extend(b"---\n");
        all.extend(std::fs::read(cluster().crds_dir().join(format!("{name}.yaml"))).unwrap());
    }
    let port = serve("/mirror/crds.yaml", all, 2);
    let url = format!("http://127.0.0.1:{port}/mirror/crds.yaml");
    let items = rendered_objects(&["--include-crds", "--crds-from", &url]);
    assert_crds_first(&items);

    let missing = format!("http://127.0.0.1:{port}/mirror/nope.yaml");
    run(automon().args(["render", "--include-crds", "--crds-from", &missing]))
        .code(1)
        .stderr_has(&format!("cannot download CRDs from {missing}"))
        .stderr_has("404");
}

#[test]
fn without_crds_from_the_pinned_release_is_downloaded_or_the_error_says_what_to_do() {
    // This machine has no internet: the download fails, naming the URL and the way out.
    // An unroutable proxy makes that so on a machine that does have internet, too.
    let out = run(automon()
        .args(["render", "--include-crds"])
        .env("HTTPS_PROXY", "http://127.0.0.1:9"))
    .code(1);
    assert!(out.stdout.is_empty());
    out.stderr_has("cannot download CRDs from https://raw.githubusercontent.com/prometheus-operator/prometheus-operator/v0.94.1/example/prometheus-operator-crd/monitoring.coreos.com_")
        .stderr_has("--crds-from");
}

#[test]
fn rendered_crd_yaml_is_accepted_by_the_api_server_unchanged() {
    // The YAML printer must not change what the CRDs mean (quoting, long descriptions): the
    // rendered CRDs, sent as YAML in a server-side dry run, come back with the same schema.
    let dir = cluster().crds_dir();
    let dir = dir.to_str().unwrap();
    let yaml = run(automon().args(["render", "--include-crds", "--crds-from", dir]))
        .success()
        .stdout;
    let end = yaml
        .find("---\napiVersion: v1\nkind: Namespace\n")
        .expect("a Namespace after the CRDs");
    let (_guard, path) = write_temp("crds.yaml", &yaml[..end]);
    let applied = cluster().kubectl(&[
        "apply",
        "--server-side",
        "--dry-run=server",
        // Other tests' stacks label these CRDs with their own ApplySet; a dry run may take over.
        "--force-conflicts",
        "--field-manager=automon-crds-test",
        "-o",
        "json",
        "-f",
        path.to_str().unwrap(),
    ]);
    assert_eq!(applied.code, 0, "{applied:#?}");
    let applied: serde_json::Value = serde_json::from_str(&applied.stdout).unwrap();
    let applied = applied["items"].as_array().unwrap();
    let rendered = rendered_objects(&["--include-crds", "--crds-from", dir]);
    assert_eq!(applied.len(), 10);
    for (a, r) in applied.iter().zip(&rendered[..10]) {
        assert_eq!(kind_name(a), kind_name(r));
        assert_eq!(
            a["spec"]["versions"],
            r["spec"]["versions"],
            "{}",
            kind_name(a)
        );
        assert_eq!(a["spec"]["names"], r["spec"]["names"], "{}", kind_name(a));
    }
}
