//! Grafana's storage and sign-in on the local cluster: every option of `grafana.persistence`,
//! `grafana.oidc`, `grafana.anonymous`, `grafana.ini` and `grafana.additionalDataSources` renders
//! objects the API server accepts with strict field validation; and Grafana's claim, bound to a
//! volume of the test's own StorageClass, outlives turning persistence off and `disable`, and
//! goes only with `disable --delete-data`. Grafana's image does not run here: kwok's nodes run
//! its pod, and what Grafana reads is checked in src/render/grafana.rs.

mod common;

use common::*;

const NS: &str = "automon-grafana-set";
/// The dry run's own namespace: the two tests run at once.
const DRY_NS: &str = "automon-grafana-dry";
const CLASS: &str = "automon-grafana-set";
const SECRET: &str = "grafana-sso";

/// Every Grafana option of this page at once.
const EVERY_OPTION: &[&str] = &[
    "grafana.persistence.enabled=true",
    "grafana.persistence.size=2Gi",
    "grafana.persistence.storageClass=automon-grafana-set",
    "grafana.oidc={name: Keycloak, clientId: grafana, clientSecret: {name: grafana-sso, key: client-secret}, authUrl: 'https://sso.example.com/realms/main/protocol/openid-connect/auth', tokenUrl: 'http://keycloak.auth.svc:8080/realms/main/protocol/openid-connect/token', apiUrl: 'http://keycloak.auth.svc:8080/realms/main/protocol/openid-connect/userinfo', scopes: [openid, profile, email], roleAttributePath: \"contains(groups[*], 'admins') && 'Admin' || 'Viewer'\", allowSignUp: true}",
    "grafana.anonymous.enabled=true",
    "grafana.anonymous.role=Viewer",
    "grafana.ini={server: {root_url: 'https://grafana.example.com/'}, 'auth.generic_oauth': {use_pkce: true}, users: {viewers_can_edit: false}}",
    "grafana.additionalDataSources=[{name: Loki, type: loki, uid: loki, url: 'http://loki.logging.svc:3100', basicAuth: true, basicAuthUser: grafana, jsonData: {maxLines: 1000}, secureJsonData: {basicAuthPassword: {name: grafana-sso, key: loki-password}}}, {name: Tempo, type: tempo, url: 'http://tempo.tracing.svc:3200', isDefault: true}]",
];

/// The test's StorageClass (no provisioner, bound at once) and one hostPath volume of it, kept
/// when released so that nothing on the machine is deleted by the cluster; all removed at the
/// end, with the namespace.
struct Storage;

impl Storage {
    fn new() -> Storage {
        let manifest = format!(
            "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {{name: {CLASS}}}\nprovisioner: kubernetes.io/no-provisioner\nvolumeBindingMode: Immediate\n---\napiVersion: v1\nkind: PersistentVolume\nmetadata: {{name: {CLASS}-0}}\nspec:\n  storageClassName: {CLASS}\n  capacity: {{storage: 2Gi}}\n  accessModes: [ReadWriteOnce]\n  persistentVolumeReclaimPolicy: Retain\n  hostPath: {{path: /tmp/{CLASS}-0}}\n"
        );
        drop(Storage);
        cluster()
            .kubectl_with_input(&["apply", "-f", "-"], &manifest)
            .success();
        Storage
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        let c = cluster();
        c.delete_storage(NS, CLASS);
    }
}

#[test]
fn every_grafana_option_is_accepted_by_the_api_server() {
    let c = cluster();
    let _clean = Cleanup::fresh(DRY_NS);
    let objects = rendered_objects(&[&["-n", DRY_NS][..], &set_args(EVERY_OPTION)].concat());
    let find = |kind: &str, name: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind}/{name}"))
    };
    // What the options rendered, so that the dry run below is of them.
    assert_eq!(
        find("PersistentVolumeClaim", "grafana")["spec"]["storageClassName"],
        CLASS
    );
    assert_eq!(
        find("Deployment", "grafana")["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
        0
    );
    assert!(
        find("ConfigMap", "grafana-config")["data"]["grafana.ini"]
            .as_str()
            .unwrap()
            .contains("[auth.generic_oauth]\nuse_pkce = true")
    );
    let env = find("Deployment", "grafana")["spec"]["template"]["spec"]["containers"][0]["env"]
        .to_string();
    for var in [
        "GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET",
        "GF_AUTH_ANONYMOUS_ORG_ROLE",
        "AUTOMON_DATASOURCE_0_BASICAUTHPASSWORD",
    ] {
        assert!(env.contains(var), "{var}: {env}");
    }
    c.kubectl(&["create", "namespace", DRY_NS]).success();
    let grafana: Vec<_> = objects
        .iter()
        .filter(|o| o["metadata"]["labels"]["app.kubernetes.io/name"] == "grafana")
        .cloned()
        .collect();
    assert!(grafana.len() >= 9, "{grafana:#?}");
    c.accepts_strictly(&grafana);
}

/// The claim of `grafana` in the test's namespace, or Null when there is none.
fn claim() -> serde_json::Value {
    let out = cluster().kubectl(&[
        "get",
        "pvc",
        "grafana",
        "-n",
        NS,
        "-o",
        "json",
        "--ignore-not-found",
    ]);
    assert_eq!(out.code, 0, "{out:#?}");
    match out.stdout.trim() {
        "" => serde_json::Value::Null,
        text => serde_json::from_str(text).unwrap(),
    }
}

fn enable_with(sets: &[&str]) -> Run {
    let out = enable(NS, &set_args(sets)).success();
    eprintln!("enable {sets:?}:\n{}\n{}", out.stdout, out.stderr);
    out
}

#[test]
fn grafanas_claim_outlives_turning_it_off_and_disable_but_not_delete_data() {
    let c = cluster();
    let _clean = Cleanup::fresh(NS);
    let _storage = Storage::new();
    let on = [
        "grafana.persistence.enabled=true",
        "grafana.persistence.size=1Gi",
        &format!("grafana.persistence.storageClass={CLASS}"),
        "grafana.anonymous.enabled=true",
        "grafana.ini.users.viewers_can_edit=false",
    ];
    // With a client secret of a Secret that is there before (preflight checks it).
    c.kubectl(&["create", "namespace", NS]).success();
    c.kubectl(&[
        "create",
        "secret",
        "generic",
        SECRET,
        "-n",
        NS,
        "--from-literal=client-secret=not-a-real-one",
    ])
    .success();
    let oidc = format!(
        "grafana.oidc={{name: SSO, clientId: grafana, clientSecret: {{name: {SECRET}, key: client-secret}}, authUrl: 'https://sso.example.com/auth', tokenUrl: 'https://sso.example.com/token', apiUrl: 'https://sso.example.com/userinfo', scopes: [openid]}}"
    );
    let with_oidc: Vec<&str> = on.iter().copied().chain([oidc.as_str()]).collect();
    enable_with(&with_oidc);
    let bound = poll(60, claim, |c| c["status"]["phase"] == "Bound");
    assert_eq!(bound["status"]["phase"], "Bound", "{bound:#}");
    assert_eq!(bound["spec"]["volumeName"], format!("{CLASS}-0"));
    let uid = bound["metadata"]["uid"].clone();
    let d = c.get_json(&["get", "deployment", "grafana", "-n", NS]);
    assert_eq!(
        d["spec"]["strategy"],
        serde_json::json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}),
        "{d:#}"
    );
    let volumes = d["spec"]["template"]["spec"]["volumes"].to_string();
    assert!(volumes.contains(r#""claimName":"grafana""#), "{volumes}");

    // Persistence off: the Deployment goes back to an emptyDir, the claim stays, and enable says so.
    let off = enable_with(&["grafana.persistence.enabled=false"]);
    assert!(
        off.stderr
            .contains("kept persistentvolumeclaim \"grafana\"")
            && off
                .stderr
                .contains(&format!("kubectl delete pvc -n {NS} grafana")),
        "{off:#?}"
    );
    assert!(
        !off.stdout.contains("persistentvolumeclaim/grafana pruned"),
        "{off:#?}"
    );
    assert_eq!(claim()["metadata"]["uid"], uid);
    let d = c.get_json(&["get", "deployment", "grafana", "-n", NS]);
    assert!(
        !d["spec"]["template"]["spec"]["volumes"]
            .to_string()
            .contains("claimName")
    );
    // Once more: still kept, still said.
    let again = enable_with(&["grafana.persistence.enabled=false"]);
    assert!(
        again
            .stderr
            .contains("kept persistentvolumeclaim \"grafana\""),
        "{again:#?}"
    );
    assert_eq!(claim()["metadata"]["uid"], uid);

    // Back on: the same claim, with its data.
    enable_with(&on);
    assert_eq!(claim()["metadata"]["uid"], uid);

    // disable keeps it and says which, whose, and how to delete it.
    let kept = run(c
        .automon()
        .args(["disable", "-n", NS, "--yes", "--timeout", "2m"]))
    .success();
    assert!(
        kept.stderr.contains("grafana (Grafana's database")
            && kept
                .stderr
                .contains(&format!("kubectl delete pvc -n {NS} grafana")),
        "{kept:#?}"
    );
    assert!(
        !kept
            .stdout
            .contains("persistentvolumeclaim \"grafana\" deleted"),
        "{kept:#?}"
    );
    assert_eq!(claim()["metadata"]["uid"], uid);
    assert_eq!(claim()["spec"]["volumeName"], format!("{CLASS}-0"));

    // Enabled again over it, then disable --delete-data takes it.
    enable_with(&on);
    assert_eq!(claim()["metadata"]["uid"], uid);
    let gone = run(c.automon().args([
        "disable",
        "-n",
        NS,
        "--yes",
        "--delete-data",
        "--timeout",
        "2m",
    ]))
    .success();
    assert!(
        gone.stdout
            .contains("persistentvolumeclaim \"grafana\" deleted"),
        "{gone:#?}"
    );
    assert!(claim().is_null(), "{:#}", claim());
}
