//! Where the prometheus-operator CRDs come from: a path or URL the user gives (`--crds-from`),
//! or the pinned upstream release files, downloaded and checked against pinned SHA-256 sums.
//! Also the pure checks `enable` decides with (installed version, compatibility) and the wait
//! until the API server serves every CRD (`Established`).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{
    cluster::{
        Cluster,
        error::{ClusterError, humantime},
    },
    model::{Object, resources},
    versions::PROMETHEUS_OPERATOR,
};

/// The API group every accepted CRD defines.
pub const GROUP: &str = "monitoring.coreos.com";
/// The annotation the operator's CRDs carry with the operator version that generated them.
pub const VERSION_ANNOTATION: &str = "operator.prometheus.io/version";
const CRD_API_VERSION: &str = "apiextensions.k8s.io/v1";
const CRD_KIND: &str = "CustomResourceDefinition";

/// One upstream CRD file of the pinned release and its SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinnedCrd {
    pub file: &'static str,
    pub sha256: &'static str,
}

/// The CRD files of prometheus-operator v0.94.1 (`versions::PROMETHEUS_OPERATOR`),
/// `example/prometheus-operator-crd/` at the tag; a test fails if that version moves without
/// new sums. Sums computed from the operator's Go module (byte-identical to the tag's files):
/// `sha256sum $(go env GOMODCACHE)/github.com/prometheus-operator/prometheus-operator@v0.94.1/example/prometheus-operator-crd/*.yaml`.
pub const PINNED_CRDS: &[PinnedCrd] = &[
    PinnedCrd {
        file: "monitoring.coreos.com_alertmanagerconfigs.yaml",
        sha256: "f3ae40001f979ef4d922a25610b8e72ae74b11453329641c0d2a7b712879c504",
    },
    PinnedCrd {
        file: "monitoring.coreos.com_alertmanagers.yaml",
        sha256: "3134036ea60b59ee10e46c60075cf08facbb89bdc8a7bc8f02bbe7d7c14378a1",
    },
    PinnedCrd {
        file: "monitoring.coreos.com_podmonitors.yaml",
        sha256: "62a3dd743ae8ea13f6817be3e8ab74e97e22fd59effc0704e1524dff8869fb43",
    },
    PinnedCrd {
        file: "monitoring.coreos.com_probes.yaml",
        sha256: "72119f8f15f16824e2d22cf19777dee00582316ef050e37ebc5ff8dcd25436c5",
    },
    PinnedCrd {
        file: "monitoring.coreos.com_prometheusagents.yaml",
        sha256: "76012a64894618cb5d86824eab029dab093330e7ca857e2680aba00e5dad150e",
    },
    PinnedCrd {
        file: "monitoring.coreos.com_prometheuses.yaml",
        sha256: "0aadc58268beb77ac067d57dddde8592a5f35a6c7d262935c1a6b03d8ef67de5",
    },
    PinnedCrd {
        file: "monitoring.coreos.com_prometheusrules.yaml",
        sha256: "8e29b30e9353d593821ba4e61dc189ed7b3c4cf50a665e95d8c3d3aad3c4d484",
    },
    PinnedCrd {
        file: "monitoring.coreos.com_scrapeconfigs.yaml",
        sha256: "ae3b2cd12228bc260a92f3709cb6c2beb45efd97c1efb0903ab64aa861c20a09",
    },
    PinnedCrd {
        file: "monitoring.coreos.com_servicemonitors.yaml",
        sha256: "31bdff398b54ac2bc993a33f5dcb0472792a77104a6a609d264c8f1f17829769",
    },
    PinnedCrd {
        file: "monitoring.coreos.com_thanosrulers.yaml",
        sha256: "744e49eff3891df960c1cb4eab2aec32d48e8a8f441447921cf9e7463130744b",
    },
];

impl PinnedCrd {
    /// The raw file at the release tag.
    /// The CRD's name: `monitoring.coreos.com_prometheuses.yaml` defines
    /// `prometheuses.monitoring.coreos.com`.
    pub fn name(&self) -> String {
        let plural = self
            .file
            .trim_start_matches("monitoring.coreos.com_")
            .trim_end_matches(".yaml");
        format!("{plural}.{GROUP}")
    }

    pub fn url(&self) -> String {
        format!(
            "https://raw.githubusercontent.com/prometheus-operator/prometheus-operator/{}/example/prometheus-operator-crd/{}",
            PROMETHEUS_OPERATOR.version, self.file
        )
    }
}

/// Where the CRDs come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrdSource {
    /// A file of one or more YAML documents, or a directory of `*.yaml`/`*.yml`/`*.json`.
    Path(PathBuf),
    /// An `http://` or `https://` URL of one such file (a mirror may be plain http).
    Url(String),
    /// The pinned upstream release files, checked against `PINNED_CRDS`.
    Pinned,
}

impl CrdSource {
    /// `--crds-from`: a URL when it starts with `http://` or `https://`, else a path; none
    /// means the pinned release.
    pub fn from_flag(value: Option<&str>) -> CrdSource {
        match value {
            None => CrdSource::Pinned,
            Some(v) if v.starts_with("http://") || v.starts_with("https://") => {
                CrdSource::Url(v.to_string())
            }
            Some(v) => CrdSource::Path(PathBuf::from(v)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    #[error("cannot read CRDs from {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no *.yaml, *.yml or *.json files")]
    EmptyDirectory { path: String },
    #[error("cannot download CRDs from {url}: {reason}{}", offline_hint(*.pinned))]
    Download {
        url: String,
        reason: String,
        pinned: bool,
    },
    #[error(
        "checksum mismatch for {file}: expected sha256 {expected}, got {actual}; refusing to use it"
    )]
    Checksum {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{origin}: not valid {format}: {reason}")]
    Parse {
        origin: String,
        format: &'static str,
        reason: String,
    },
    #[error("{origin}, document {document}: not a valid CustomResourceDefinition: {reason}")]
    InvalidCrd {
        origin: String,
        document: usize,
        reason: String,
    },
    #[error(
        "{origin}, document {document}: {found} is not a CustomResourceDefinition ({CRD_API_VERSION}) of group {GROUP}"
    )]
    NotACrd {
        origin: String,
        document: usize,
        found: String,
    },
    #[error("CustomResourceDefinition {name} is defined twice: in {first} and in {second}")]
    Duplicate {
        name: String,
        first: String,
        second: String,
    },
    #[error("{origin} holds no CustomResourceDefinition")]
    NoCrds { origin: String },
    #[error(
        "CustomResourceDefinitions not Established after {}: {}",
        humantime(*.timeout),
        pending.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    NotEstablished {
        timeout: Duration,
        pending: Vec<NotServed>,
    },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

fn offline_hint(pinned: bool) -> &'static str {
    if pinned {
        "; without internet access, pass --crds-from with a file, directory or mirror URL of the CRDs"
    } else {
        ""
    }
}

/// The CRDs from `source`, in a stable order (by name).
pub async fn load(source: &CrdSource) -> Result<Vec<Object>, CrdError> {
    let documents = match source {
        CrdSource::Path(path) => return load_path(path),
        CrdSource::Url(url) => {
            let client = http_client(url, false)?;
            let bytes = download(&client, url, false).await?;
            vec![(url.clone(), bytes)]
        }
        CrdSource::Pinned => download_pinned().await?,
    };
    let parsed = (documents.iter()).map(|(origin, bytes)| (origin.clone(), parse(origin, bytes)));
    by_name(parsed, source)
}

/// The CRDs of a file or of a directory's files, in a stable order (by name). The files are
/// parsed on as many threads as there are CPUs, each taking every n-th file: the operator's
/// ten are 3.7 MB of YAML, the longest thing `enable` computes before its first write, and one
/// file at a time per thread keeps the peak of memory near one file's.
pub fn load_path(path: &Path) -> Result<Vec<Object>, CrdError> {
    let documents = read_path(path)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = threads.clamp(1, documents.len().max(1));
    let mut parsed: Vec<Option<Result<Vec<Object>, CrdError>>> =
        documents.iter().map(|_| None).collect();
    std::thread::scope(|s| {
        let documents = &documents;
        let running: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (documents.iter().enumerate().skip(t).step_by(threads))
                        .map(|(i, (origin, bytes))| (i, parse(origin, bytes)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for thread in running {
            let done = thread
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            for (i, result) in done {
                parsed[i] = Some(result);
            }
        }
    });
    let parsed = (documents.iter().zip(parsed))
        .filter_map(|((origin, _), result)| Some((origin.clone(), result?)));
    by_name(parsed, &CrdSource::Path(path.to_path_buf()))
}

/// The CRDs of each parsed document (origin, CRDs or why not), by name; the first error in
/// their order stops it, and so does a CRD that two documents define.
fn by_name(
    parsed: impl IntoIterator<Item = (String, Result<Vec<Object>, CrdError>)>,
    source: &CrdSource,
) -> Result<Vec<Object>, CrdError> {
    let mut crds: BTreeMap<String, (String, Object)> = BTreeMap::new();
    for (origin, parsed) in parsed {
        for crd in parsed? {
            let name = crd.metadata.name.clone().unwrap_or_default();
            if let Some((first, _)) = crds.get(&name) {
                return Err(CrdError::Duplicate {
                    name,
                    first: first.clone(),
                    second: origin,
                });
            }
            crds.insert(name, (origin.clone(), crd));
        }
    }
    if crds.is_empty() {
        return Err(CrdError::NoCrds {
            origin: match source {
                CrdSource::Path(p) => p.display().to_string(),
                CrdSource::Url(u) => u.clone(),
                CrdSource::Pinned => "the pinned release".into(),
            },
        });
    }
    Ok(crds.into_values().map(|(_, crd)| crd).collect())
}

/// `(origin, bytes)` of a file, or of every `*.yaml`/`*.yml`/`*.json` in a directory by name.
fn read_path(path: &Path) -> Result<Vec<(String, Vec<u8>)>, CrdError> {
    let read_err = |p: &Path| {
        let path = p.display().to_string();
        move |source| CrdError::Read { path, source }
    };
    if !path.is_dir() {
        let bytes = std::fs::read(path).map_err(read_err(path))?;
        return Ok(vec![(path.display().to_string(), bytes)]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(read_err(path))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(CrdError::EmptyDirectory {
            path: path.display().to_string(),
        });
    }
    files
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(&f).map_err(read_err(&f))?;
            Ok((f.display().to_string(), bytes))
        })
        .collect()
}

/// A plain client with rustls and the system's roots; `HTTPS_PROXY`/`NO_PROXY` are honoured.
fn http_client(url: &str, pinned: bool) -> Result<reqwest::Client, CrdError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120))
        .user_agent(concat!("kubectl-automon/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| CrdError::Download {
            url: url.to_string(),
            reason: crate::cluster::error::chain(&e),
            pinned,
        })
}

/// The operator's CRDs are about 5 MiB together; anything far larger is not what we asked for.
const MAX_DOWNLOAD_BYTES: usize = 64 << 20;

async fn download(client: &reqwest::Client, url: &str, pinned: bool) -> Result<Vec<u8>, CrdError> {
    let err = |reason: String| CrdError::Download {
        url: url.to_string(),
        reason,
        pinned,
    };
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| err(crate::cluster::error::chain(&e.without_url())))?;
    let status = response.status();
    if !status.is_success() {
        return Err(err(format!("the server answered {status}")));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| err(crate::cluster::error::chain(&e.without_url())))?
    {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_DOWNLOAD_BYTES {
            return Err(err(format!(
                "larger than {} MiB; this is not a CRD file",
                MAX_DOWNLOAD_BYTES >> 20
            )));
        }
    }
    Ok(bytes)
}

/// Every pinned file, downloaded in parallel, each checked against its sum.
async fn download_pinned() -> Result<Vec<(String, Vec<u8>)>, CrdError> {
    let first_url = PINNED_CRDS.first().map(PinnedCrd::url).unwrap_or_default();
    let client = http_client(&first_url, true)?;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, pinned) in PINNED_CRDS.iter().enumerate() {
        let client = client.clone();
        tasks.spawn(async move {
            let url = pinned.url();
            let bytes = download(&client, &url, true).await?;
            verify_sha256(pinned, &bytes)?;
            Ok::<_, CrdError>((i, url, bytes))
        });
    }
    let mut files = Vec::with_capacity(PINNED_CRDS.len());
    while let Some(joined) = tasks.join_next().await {
        let (i, url, bytes) = joined.map_err(|e| CrdError::Download {
            url: first_url.clone(),
            reason: e.to_string(),
            pinned: true,
        })??;
        files.push((i, url, bytes));
    }
    files.sort_by_key(|(i, _, _)| *i);
    Ok(files.into_iter().map(|(_, url, b)| (url, b)).collect())
}

/// Checks downloaded bytes against the pinned sum; a mismatch is an error, never a warning.
pub fn verify_sha256(pinned: &PinnedCrd, bytes: &[u8]) -> Result<(), CrdError> {
    let actual = sha256_hex(bytes);
    if actual == pinned.sha256 {
        Ok(())
    } else {
        Err(CrdError::Checksum {
            file: pinned.url(),
            expected: pinned.sha256.to_string(),
            actual,
        })
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The CRDs in one file's bytes: JSON when it looks like JSON (`.json` or starting with `{`),
/// else a YAML stream. A `List` is read as its items. Anything that is not an
/// apiextensions.k8s.io/v1 CRD of `monitoring.coreos.com` is an error naming the document.
pub fn parse(origin: &str, bytes: &[u8]) -> Result<Vec<Object>, CrdError> {
    let parse_err = |format, reason: String| CrdError::Parse {
        origin: origin.to_string(),
        format,
        reason,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| parse_err("UTF-8", e.to_string()))?;
    let is_json = origin.ends_with(".json") || text.trim_start().starts_with('{');
    let documents: Vec<Value> = if is_json {
        vec![serde_json::from_str(text).map_err(|e| parse_err("JSON", e.to_string()))?]
    } else {
        let options = serde_saphyr::options! {
            budget: serde_saphyr::budget! {
                // The operator's CRDs are large and deeply nested OpenAPI schemas.
                max_events: 50_000_000,
                max_nodes: 20_000_000,
                max_depth: 512,
            },
        };
        serde_saphyr::from_multiple_with_options(text, options)
            .map_err(|e| parse_err("YAML", e.to_string()))?
    };
    let mut crds = Vec::new();
    for (i, doc) in documents.into_iter().enumerate() {
        let document = i + 1;
        let items = if doc["kind"] == "List" || doc["kind"] == "CustomResourceDefinitionList" {
            doc["items"].as_array().cloned().unwrap_or_default()
        } else {
            vec![doc]
        };
        for item in items {
            crds.push(crd_object(origin, document, item)?);
        }
    }
    Ok(crds)
}

/// One document as a CRD, with what a server added (status, uid, managedFields, ...) removed,
/// so that a CRD exported from another cluster applies cleanly.
fn crd_object(origin: &str, document: usize, mut doc: Value) -> Result<Object, CrdError> {
    let api_version = doc["apiVersion"].as_str().unwrap_or("");
    let kind = doc["kind"].as_str().unwrap_or("");
    let group = doc["spec"]["group"].as_str().unwrap_or("");
    if api_version != CRD_API_VERSION || kind != CRD_KIND || group != GROUP {
        let name = doc["metadata"]["name"].as_str().unwrap_or("<unnamed>");
        let found = match (api_version, kind) {
            ("", "") => "a document without apiVersion and kind".to_string(),
            _ if kind == CRD_KIND => format!("{kind} {name} ({api_version}, group {group:?})"),
            _ => format!("{kind} {name} ({api_version})"),
        };
        return Err(CrdError::NotACrd {
            origin: origin.to_string(),
            document,
            found,
        });
    }
    if let Some(obj) = doc.as_object_mut() {
        obj.remove("status");
    }
    if let Some(meta) = doc["metadata"].as_object_mut() {
        meta.retain(|k, _| matches!(k.as_str(), "name" | "labels" | "annotations"));
        if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
    serde_json::from_value(doc).map_err(|e| CrdError::InvalidCrd {
        origin: origin.to_string(),
        document,
        reason: e.to_string(),
    })
}

/// The operator version a CRD was generated by (`operator.prometheus.io/version`), if any.
pub fn installed_version(crd: &kube::api::ObjectMeta) -> Option<String> {
    crd.annotations
        .as_ref()?
        .get(VERSION_ANNOTATION)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Whether CRDs of operator version `installed` serve an operator of version `wanted`
/// (either with or without a leading `v`). The rule: the same major and minor version, and a
/// patch at least `wanted`'s. An older patch or minor needs the newer schema; a newer minor may
/// drop or change fields the pinned operator writes, so it is not assumed compatible either. A
/// pre-release of the same version is older than the release. Unparseable versions are not
/// compatible.
pub fn compatible(installed: &str, wanted: &str) -> bool {
    let (Some(have), Some(want)) = (
        crate::versions::parse(installed),
        crate::versions::parse(wanted),
    ) else {
        return false;
    };
    have.major == want.major
        && have.minor == want.minor
        && have.cmp_precedence(&want) != std::cmp::Ordering::Less
}

/// Whether operator version `a` is a later release than `b` (either with or without a leading
/// `v`; a pre-release is older than its release). Unparseable versions are never newer.
pub fn newer(a: &str, b: &str) -> bool {
    crate::versions::compare(a, b) == Some(std::cmp::Ordering::Greater)
}

/// Whether a CRD (as the server returns it) has `Established=True`.
pub fn crd_established(crd: &Object) -> bool {
    established_condition(crd).is_some_and(|c| c["status"] == "True")
}

fn established_condition(crd: &Object) -> Option<&Value> {
    crd.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Established")
}

/// A CRD that the API server does not serve (yet), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotServed {
    pub name: String,
    /// `not found`, `no Established condition yet`, or the condition's status, reason, message.
    pub why: String,
}

impl std::fmt::Display for NotServed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.why)
    }
}

/// Each wanted CRD that is not Established in `listed`, and why.
pub fn not_established(listed: &[Object], names: &[String]) -> Vec<NotServed> {
    names
        .iter()
        .filter_map(|name| {
            let crd = listed
                .iter()
                .find(|c| c.metadata.name.as_deref() == Some(name));
            let why = match crd {
                None => "not found".to_string(),
                Some(c) if crd_established(c) => return None,
                Some(c) => match established_condition(c) {
                    None => "no Established condition yet".to_string(),
                    Some(cond) => {
                        let status = cond["status"].as_str().unwrap_or("Unknown");
                        let reason = cond["reason"].as_str().unwrap_or("");
                        let message = cond["message"].as_str().unwrap_or("");
                        format!("Established={status}: {reason} {message}")
                            .trim_end()
                            .to_string()
                    }
                },
            };
            Some(NotServed {
                name: name.clone(),
                why,
            })
        })
        .collect()
}

/// Waits until every named CRD is `Established=True`, or fails after `timeout` naming those
/// that are not and why. A watch (kube-runtime's watcher), not a poll: the answer comes as the
/// API server marks them. Only the one named, or automon's (labelled part of it, as every CRD
/// `enable` applies is), are watched: CRDs are large, up to ~1 MiB each.
pub async fn wait_established(
    cluster: &Cluster,
    names: &[String],
    timeout: Duration,
) -> Result<(), CrdError> {
    use kube::runtime::watcher;

    if names.is_empty() {
        return Ok(());
    }
    let known = resources::by_group_kind("CustomResourceDefinition.apiextensions.k8s.io")
        .expect("CustomResourceDefinition is a known type");
    let selection = match names {
        [one] => watcher::Config::default().fields(&format!("metadata.name={one}")),
        _ => watcher::Config::default().labels(&format!(
            "{}={}",
            crate::model::names::PART_OF_LABEL,
            crate::model::names::PART_OF
        )),
    };
    let source = crate::cluster::watch::Source {
        api: known.api(&cluster.client, None),
        selection,
    };
    let deadline = std::time::Instant::now() + timeout;
    let waited = crate::cluster::watch::until(cluster, vec![source], deadline, |seen| {
        not_established(&seen[0], names).is_empty()
    })
    .await?;
    if waited.met {
        return Ok(());
    }
    Err(CrdError::NotEstablished {
        timeout,
        pending: not_established(&waited.seen[0], names),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The release the sums were computed for.
    const PINNED_RELEASE: &str = "v0.94.1";

    const CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.monitoring.coreos.com
  annotations:
    operator.prometheus.io/version: 0.93.1
  resourceVersion: \"42\"
  uid: abc
spec:
  group: monitoring.coreos.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions: []
status:
  conditions: [{type: Established, status: \"True\"}]
";

    #[test]
    fn newer_orders_releases_and_pre_releases() {
        assert!(newer("0.94.1", "v0.93.1"));
        assert!(newer("v0.93.2", "0.93.1"));
        assert!(newer("1.0.0", "0.99.9"));
        assert!(newer("0.94.0", "0.94.0-rc.1"));
        assert!(!newer("0.93.1", "v0.93.1"));
        assert!(!newer("0.93.1", "0.94.1"));
        assert!(!newer("0.94.0-rc.1", "0.94.0"));
        assert!(!newer("garbage", "0.1.0"));
    }

    #[test]
    fn pinned_sums_are_for_the_pinned_operator() {
        assert_eq!(PINNED_RELEASE, PROMETHEUS_OPERATOR.version);
        assert_eq!(PINNED_CRDS.len(), 10);
        for p in PINNED_CRDS {
            assert_eq!(p.sha256.len(), 64, "{}", p.file);
            assert!(p.url().starts_with(
                "https://raw.githubusercontent.com/prometheus-operator/prometheus-operator/v0.94.1/example/prometheus-operator-crd/monitoring.coreos.com_"
            ));
        }
    }

    /// The sums equal the files of the operator's Go module, which the local cluster builds
    /// the operator from (`tests/cluster/localcluster up` downloads it).
    #[test]
    fn pinned_sums_match_the_operator_go_module() {
        let modcache = std::env::var_os("GOMODCACHE")
            .map(PathBuf::from)
            .or_else(|| {
                std::process::Command::new("go")
                    .args(["env", "GOMODCACHE"])
                    .output()
                    .ok()
                    .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            })
            .filter(|p| p.is_dir())
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join("go/pkg/mod")))
            .expect("GOMODCACHE, `go env GOMODCACHE` or ~/go/pkg/mod");
        let dir = modcache.join(format!(
            "github.com/prometheus-operator/prometheus-operator@{PINNED_RELEASE}/example/prometheus-operator-crd"
        ));
        assert!(
            dir.is_dir(),
            "{} is missing: run `go mod download github.com/prometheus-operator/prometheus-operator@{PINNED_RELEASE}`",
            dir.display()
        );
        for p in PINNED_CRDS {
            let bytes = std::fs::read(dir.join(p.file)).unwrap();
            verify_sha256(p, &bytes).unwrap();
            let crds = parse(p.file, &bytes).unwrap();
            assert_eq!(crds.len(), 1, "{}", p.file);
            assert_eq!(
                installed_version(&crds[0].metadata).as_deref(),
                Some("0.94.1")
            );
        }
    }

    #[test]
    fn a_corrupted_download_is_refused_naming_file_and_both_sums() {
        let pinned = PinnedCrd {
            file: "monitoring.coreos.com_widgets.yaml",
            sha256: "d0a4bd3d4ea1c5c0b9e0dc1e3d8a3d4e2f2c3d2c1a8c3c3b0e5b6f7a8c9d0e1f",
        };
        let good = CRD.as_bytes();
        let sum = sha256_hex(good);
        let ok = PinnedCrd {
            sha256: Box::leak(sum.clone().into_boxed_str()),
            ..pinned
        };
        verify_sha256(&ok, good).unwrap();
        let mut corrupted = good.to_vec();
        corrupted[10] ^= 1;
        let err = verify_sha256(&ok, &corrupted).unwrap_err().to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
        assert!(err.contains("monitoring.coreos.com_widgets.yaml"), "{err}");
        assert!(err.contains(&sum), "{err}");
        assert!(err.contains(&sha256_hex(&corrupted)), "{err}");
        // One byte appended is as wrong as one flipped.
        let mut longer = good.to_vec();
        longer.push(b'\n');
        assert!(verify_sha256(&ok, &longer).is_err());
    }

    #[test]
    fn a_crd_is_read_without_what_the_server_added() {
        let crds = parse("a.yaml", format!("---\n{CRD}---\n").as_bytes()).unwrap();
        assert_eq!(crds.len(), 1);
        let crd = &crds[0];
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some("widgets.monitoring.coreos.com")
        );
        assert!(crd.metadata.resource_version.is_none());
        assert!(crd.metadata.uid.is_none());
        assert!(crd.data.get("status").is_none());
        assert_eq!(crd.data["spec"]["scope"], "Namespaced");
    }

    #[test]
    fn lists_and_json_are_read() {
        let crd: Value = serde_saphyr::from_str(CRD).unwrap();
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [crd]});
        let crds = parse("crds.json", list.to_string().as_bytes()).unwrap();
        assert_eq!(crds.len(), 1);
    }

    #[test]
    fn anything_but_a_monitoring_crd_is_refused_naming_the_document() {
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n";
        let other_group = CRD.replace("group: monitoring.coreos.com", "group: example.com");
        let v1beta1 = CRD.replace("apiextensions.k8s.io/v1", "apiextensions.k8s.io/v1beta1");
        let cases = [
            (format!("{CRD}---\n{cm}"), "document 2", "ConfigMap x (v1)"),
            (other_group, "document 1", "group \"example.com\""),
            (v1beta1, "document 1", "apiextensions.k8s.io/v1beta1"),
            ("a: b\n".to_string(), "document 1", "without apiVersion"),
        ];
        for (text, document, found) in cases {
            let err = parse("f.yaml", text.as_bytes()).unwrap_err().to_string();
            assert!(err.starts_with("f.yaml, "), "{err}");
            assert!(err.contains(document), "{err}");
            assert!(err.contains(found), "{err}");
        }
        let err = parse("f.yaml", b"a: [").unwrap_err().to_string();
        assert!(err.starts_with("f.yaml: not valid YAML"), "{err}");
    }

    #[test]
    fn installed_version_reads_the_operator_annotation() {
        let crds = parse("a.yaml", CRD.as_bytes()).unwrap();
        assert_eq!(
            installed_version(&crds[0].metadata).as_deref(),
            Some("0.93.1")
        );
        let bare = parse(
            "a.yaml",
            CRD.replace("operator.prometheus.io/version", "x")
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(installed_version(&bare[0].metadata), None);
    }

    #[test]
    fn compatible_means_same_minor_and_at_least_our_patch() {
        let cases = [
            ("0.93.1", "v0.93.1", true),
            ("v0.93.1", "0.93.1", true),
            ("0.93.2", "v0.93.1", true),
            ("0.93.0", "v0.93.1", false),
            ("0.92.9", "v0.93.1", false),
            ("0.94.0", "v0.93.1", false),
            ("1.93.1", "v0.93.1", false),
            ("0.93.1-rc.0", "v0.93.1", false),
            ("0.93.2-rc.0", "v0.93.1", true),
            ("0.93.1+build", "v0.93.1", true),
            ("", "v0.93.1", false),
            ("0.93", "v0.93.1", false),
            ("garbage", "v0.93.1", false),
        ];
        for (installed, wanted, want) in cases {
            assert_eq!(
                compatible(installed, wanted),
                want,
                "{installed} vs {wanted}"
            );
        }
    }

    #[test]
    fn not_established_names_each_missing_or_pending_crd() {
        let established = parse("a.yaml", CRD.as_bytes()).unwrap().remove(0);
        // parse drops status; put it back as a server would return it.
        let mut served = established.clone();
        served.data["status"] =
            serde_json::json!({"conditions": [{"type": "Established", "status": "True"}]});
        let mut pending = established.clone();
        pending.metadata.name = Some("gadgets.monitoring.coreos.com".into());
        pending.data["status"] = serde_json::json!({"conditions": [
            {"type": "Established", "status": "False", "reason": "Installing", "message": "the initial names have not been accepted"}
        ]});
        let names = [
            "widgets.monitoring.coreos.com".to_string(),
            "gadgets.monitoring.coreos.com".to_string(),
            "probes.monitoring.coreos.com".to_string(),
        ];
        let out: Vec<String> = not_established(&[served.clone(), pending], &names)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            out,
            [
                "gadgets.monitoring.coreos.com (Established=False: Installing the initial names have not been accepted)",
                "probes.monitoring.coreos.com (not found)",
            ]
        );
        assert!(not_established(&[served], &names[..1]).is_empty());
        assert!(!crd_established(&established));
    }

    #[test]
    fn crds_from_is_a_url_or_a_path() {
        assert_eq!(CrdSource::from_flag(None), CrdSource::Pinned);
        assert_eq!(
            CrdSource::from_flag(Some("http://10.0.0.1/crds.yaml")),
            CrdSource::Url("http://10.0.0.1/crds.yaml".into())
        );
        assert_eq!(
            CrdSource::from_flag(Some("./crds")),
            CrdSource::Path("./crds".into())
        );
    }
}
