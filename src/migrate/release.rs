//! A Helm release as Helm records it: one Secret per revision, `sh.helm.release.v1.NAME.vN`
//! (type `helm.sh/release.v1`, labels `owner: helm`, `name: NAME`), whose `release` key holds
//! base64 of gzip of the release's JSON (Helm v3 before 3.1 left out the gzip). Pure: which
//! Secret is the latest, and what it says; `survey` reads them.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// The Secret type Helm gives its release records.
pub const RECORD_TYPE: &str = "helm.sh/release.v1";
/// The chart `migrate` moves from.
pub const CHART: &str = "kube-prometheus-stack";

/// What a migration needs of one revision of a release.
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    pub name: String,
    pub namespace: String,
    pub revision: u32,
    /// `deployed`, `failed`, `pending-upgrade`, `uninstalling`, …
    pub status: String,
    pub description: String,
    /// When this revision was deployed (RFC 3339), when Helm says.
    pub last_deployed: Option<String>,
    pub chart: String,
    pub chart_version: String,
    pub app_version: Option<String>,
    /// The values the user gave (`helm get values`): a mapping, empty when none.
    pub config: Value,
    /// The chart's own values.yaml, as the record holds it.
    pub chart_values: Value,
    /// The rendered objects (`helm get manifest`): YAML documents.
    pub manifest: String,
    pub hooks: Vec<Hook>,
}

/// A hook of the release: objects Helm creates around an event, never part of the manifest.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Hook {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default)]
    pub delete_policies: Vec<String>,
}

impl Hook {
    /// Whether `helm uninstall` runs it (a `pre-delete` or `post-delete` hook).
    pub fn runs_on_uninstall(&self) -> bool {
        self.events
            .iter()
            .any(|e| e == "pre-delete" || e == "post-delete")
    }
}

impl Release {
    /// `kube-prometheus-stack 88.5.3`.
    pub fn chart_and_version(&self) -> String {
        format!("{} {}", self.chart, self.chart_version)
    }
}

/// The release's JSON as Helm v3 and v4 write it; what is not read here is ignored.
#[derive(Deserialize)]
struct Recorded {
    name: String,
    #[serde(default)]
    namespace: String,
    version: u32,
    #[serde(default)]
    info: Info,
    chart: Option<Chart>,
    #[serde(default)]
    config: Value,
    #[serde(default)]
    manifest: String,
    #[serde(default)]
    hooks: Vec<Hook>,
}

#[derive(Default, Deserialize)]
struct Info {
    #[serde(default)]
    status: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    last_deployed: Option<String>,
}

#[derive(Deserialize)]
struct Chart {
    metadata: ChartMetadata,
    #[serde(default)]
    values: Value,
}

#[derive(Deserialize)]
struct ChartMetadata {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
    #[serde(rename = "appVersion", default)]
    app_version: Option<String>,
}

/// The revision a record holds, from its name (`….v7`), else its `version` label.
pub fn record_revision(
    release: &str,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Option<u32> {
    name.strip_prefix(&format!("sh.helm.release.v1.{release}.v"))
        .and_then(|v| v.parse().ok())
        .or_else(|| labels.get("version")?.parse().ok())
}

/// The records among `secrets` (name, labels) that belong to `release`, latest first.
pub fn records_of(
    release: &str,
    secrets: &[(String, BTreeMap<String, String>)],
) -> Vec<(String, u32)> {
    let mut out: Vec<(String, u32)> = secrets
        .iter()
        .filter(|(_, labels)| {
            labels.get("owner").map(String::as_str) == Some("helm")
                && labels.get("name").map(String::as_str) == Some(release)
        })
        .filter_map(|(name, labels)| Some((name.clone(), record_revision(release, name, labels)?)))
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// The releases recorded among `secrets`, by name.
pub fn release_names(secrets: &[(String, BTreeMap<String, String>)]) -> Vec<String> {
    let mut names: Vec<String> = secrets
        .iter()
        .filter(|(name, _)| name.starts_with("sh.helm.release.v1."))
        .filter_map(|(_, labels)| labels.get("name").cloned())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The release in a record's `release` key (the Secret's data, already read from the API's own
/// base64): base64, then gzip when it starts with gzip's magic bytes, then JSON.
pub fn decode(data: &[u8]) -> Result<Release, String> {
    use base64::Engine as _;
    let text: Vec<u8> = data
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&text)
        .map_err(|e| format!("its release key is not base64: {e}"))?;
    let json = if bytes.starts_with(&[0x1f, 0x8b, 0x08]) {
        use std::io::Read as _;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| format!("its release key is not gzip as Helm writes it: {e}"))?;
        out
    } else {
        bytes
    };
    let r: Recorded = serde_json::from_slice(&json)
        .map_err(|e| format!("its release key is not a Helm release's JSON: {e}"))?;
    let (chart, chart_version, app_version, chart_values) = match r.chart {
        Some(c) => (
            c.metadata.name,
            c.metadata.version,
            c.metadata.app_version,
            c.values,
        ),
        None => Default::default(),
    };
    let mapping = |v: Value| match v {
        Value::Object(_) => v,
        _ => Value::Object(Default::default()),
    };
    Ok(Release {
        name: r.name,
        namespace: r.namespace,
        revision: r.version,
        status: r.info.status,
        description: r.info.description,
        last_deployed: r.info.last_deployed,
        chart,
        chart_version,
        app_version,
        config: mapping(r.config),
        chart_values: mapping(chart_values),
        manifest: r.manifest,
        hooks: r.hooks,
    })
}

/// Why a release cannot be migrated from.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error(
        "no Helm release {name:?} in namespace {namespace} ({}); `helm list -A` lists every release",
        others_text(others)
    )]
    NotFound {
        name: String,
        namespace: String,
        /// The other releases recorded there.
        others: Vec<String>,
    },
    #[error(
        "Helm release {name:?} in namespace {namespace} is chart {chart} {version}, not {CHART}: migrate moves from {CHART} only"
    )]
    NotThisChart {
        name: String,
        namespace: String,
        chart: String,
        version: String,
    },
    #[error("secret {namespace}/{secret} cannot be read as a Helm release: {reason}")]
    Unreadable {
        namespace: String,
        secret: String,
        reason: String,
    },
}

fn others_text(others: &[String]) -> String {
    match others {
        [] => "there is none there".to_string(),
        _ => format!("releases there: {}", others.join(", ")),
    }
}

/// The release if its chart is kube-prometheus-stack.
pub fn of_this_chart(release: Release) -> Result<Release, ReleaseError> {
    if release.chart == CHART {
        return Ok(release);
    }
    Err(ReleaseError::NotThisChart {
        name: release.name,
        namespace: release.namespace,
        chart: if release.chart.is_empty() {
            "(unnamed)".into()
        } else {
            release.chart
        },
        version: release.chart_version,
    })
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use base64::Engine as _;
    use serde_json::json;
    use std::io::Write as _;

    /// A release record's name for a revision.
    fn record_name(release: &str, revision: u32) -> String {
        format!("sh.helm.release.v1.{release}.v{revision}")
    }

    /// A record's `release` key as Helm writes it: base64 of gzip of the JSON (`gzip: false`,
    /// base64 of the JSON, as Helm 3.0 did).
    pub fn encoded(release: &Value, gzip: bool) -> Vec<u8> {
        let json = serde_json::to_vec(release).unwrap();
        let bytes = if gzip {
            let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            w.write_all(&json).unwrap();
            w.finish().unwrap()
        } else {
            json
        };
        base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into_bytes()
    }

    /// A release record's JSON with the fields Helm v4 writes (v3 has no `apply_method`).
    pub fn recorded(config: Value, manifest: &str) -> Value {
        json!({
            "name": "kps",
            "namespace": "monitoring",
            "version": 3,
            "info": {
                "first_deployed": "2026-12-01T10:00:00Z",
                "last_deployed": "2026-12-05T10:00:00.123456789Z",
                "description": "Upgrade complete",
                "status": "deployed",
                "notes": "…"
            },
            "chart": {
                "metadata": {"name": "kube-prometheus-stack", "version": "88.5.3", "appVersion": "v0.93.1", "apiVersion": "v2"},
                "templates": [],
                "values": {"prometheus": {"prometheusSpec": {"retention": "10d"}}}
            },
            "config": config,
            "manifest": manifest,
            "hooks": [{
                "name": "kps-admission-create", "kind": "Job", "path": "templates/job.yaml",
                "manifest": "…", "events": ["pre-install", "pre-upgrade"],
                "last_run": {"phase": "Succeeded"},
                "delete_policies": ["before-hook-creation", "hook-succeeded"]
            }],
            "apply_method": "ssa"
        })
    }

    #[test]
    fn records_are_read_as_helm_v3_and_v4_write_them() {
        let record = recorded(
            json!({"prometheus": {"prometheusSpec": {"retention": "30d"}}}),
            "---\nkind: A\n",
        );
        for gzip in [true, false] {
            let r = decode(&encoded(&record, gzip)).unwrap();
            assert_eq!(r.name, "kps");
            assert_eq!(r.namespace, "monitoring");
            assert_eq!(r.revision, 3);
            assert_eq!(r.status, "deployed");
            assert_eq!(r.chart_and_version(), "kube-prometheus-stack 88.5.3");
            assert_eq!(r.app_version.as_deref(), Some("v0.93.1"));
            assert_eq!(r.config["prometheus"]["prometheusSpec"]["retention"], "30d");
            assert_eq!(
                r.chart_values["prometheus"]["prometheusSpec"]["retention"],
                "10d"
            );
            assert_eq!(r.manifest, "---\nkind: A\n");
            assert_eq!(r.hooks.len(), 1);
            assert!(!r.hooks[0].runs_on_uninstall());
            assert_eq!(
                r.last_deployed.as_deref(),
                Some("2026-12-05T10:00:00.123456789Z")
            );
        }
        // Default values: Helm writes no `config` at all.
        let mut bare = recorded(Value::Null, "");
        bare.as_object_mut().unwrap().remove("config");
        let r = decode(&encoded(&bare, true)).unwrap();
        assert_eq!(r.config, json!({}));
        // Wrapped at 76 columns, as some tools write base64.
        let wrapped: Vec<u8> = encoded(&record, true)
            .chunks(76)
            .flat_map(|c| c.iter().copied().chain([b'\n']))
            .collect();
        assert_eq!(decode(&wrapped).unwrap().revision, 3);
    }

    #[test]
    fn what_is_not_a_record_says_why() {
        assert!(decode(b"not base64!").unwrap_err().contains("not base64"));
        let gz_broken = base64::engine::general_purpose::STANDARD.encode([0x1f, 0x8b, 0x08, 0, 1]);
        assert!(
            decode(gz_broken.as_bytes())
                .unwrap_err()
                .contains("not gzip")
        );
        let not_json = base64::engine::general_purpose::STANDARD.encode("{\"name\": 3}");
        assert!(
            decode(not_json.as_bytes())
                .unwrap_err()
                .contains("not a Helm release")
        );
    }

    #[test]
    fn the_latest_record_is_the_highest_revision() {
        let labels = |name: &str, version: &str| {
            BTreeMap::from([
                ("owner".to_string(), "helm".to_string()),
                ("name".to_string(), name.to_string()),
                ("version".to_string(), version.to_string()),
            ])
        };
        let secrets = vec![
            (record_name("kps", 9), labels("kps", "9")),
            (record_name("kps", 10), labels("kps", "10")),
            (record_name("kps", 2), labels("kps", "2")),
            // Another release, and a record without Helm's labels.
            (record_name("kps-2", 11), labels("kps-2", "11")),
            (record_name("kps", 13), BTreeMap::new()),
        ];
        let found = records_of("kps", &secrets);
        let revisions: Vec<u32> = found.iter().map(|(_, v)| *v).collect();
        assert_eq!(revisions, [10, 9, 2]);
        assert_eq!(found[0].0, "sh.helm.release.v1.kps.v10");
        assert_eq!(release_names(&secrets), ["kps", "kps-2"]);
    }

    #[test]
    fn another_chart_is_refused_by_name() {
        let mut record = recorded(json!({}), "");
        record["chart"]["metadata"]["name"] = json!("grafana");
        record["chart"]["metadata"]["version"] = json!("12.11.1");
        let e = of_this_chart(decode(&encoded(&record, true)).unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Helm release \"kps\" in namespace monitoring is chart grafana 12.11.1, not kube-prometheus-stack: migrate moves from kube-prometheus-stack only"
        );
        let e = ReleaseError::NotFound {
            name: "kps".into(),
            namespace: "monitoring".into(),
            others: vec!["loki".into()],
        };
        assert_eq!(
            e.to_string(),
            "no Helm release \"kps\" in namespace monitoring (releases there: loki); `helm list -A` lists every release"
        );
    }
}
