//! `prometheus.additionalScrapeConfigs`: the Secret key whose scrape configurations the operator
//! appends to the ones it generates. Prometheus refuses a whole configuration with a malformed
//! job or two jobs of one name (and a new pod then never starts), so `enable` reads the key
//! before its first write. What it holds is never printed: only where it is wrong, and the
//! job_name at fault.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde::Serialize;
use serde_json::Value;

use crate::{
    cluster::{Cluster, error::ClusterError},
    model::{
        Object,
        finding::{Finding, Level},
        kind, selector,
    },
    preflight::monitors::Monitor,
};

/// The key the stack's Prometheus reads, and the jobs of the stack's own it must not repeat.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    pub secret: String,
    pub key: String,
    /// The stack's own jobs: the job names the operator gives its scrape objects
    /// (`serviceMonitor/NS/NAME/0`) and the `job` labels their series carry (`node-exporter`),
    /// which the stack's rules and dashboards select.
    pub own_jobs: BTreeSet<String>,
}

impl Wanted {
    /// From the objects to apply: the `Prometheus` that names the key, and every scrape
    /// object beside it (pure).
    pub fn of(objects: &[Object]) -> Option<Wanted> {
        let selector = objects
            .iter()
            .filter(|o| kind(o) == "Prometheus")
            .find_map(|o| o.data["spec"].get("additionalScrapeConfigs"))?;
        Some(Wanted {
            secret: selector["name"].as_str()?.to_string(),
            key: selector["key"].as_str()?.to_string(),
            own_jobs: own_jobs(objects),
        })
    }
}

/// The job names of the stack's scrape objects, as the operator names their jobs, and the job
/// labels of their series (a relabeling's fixed job, the `jobLabel` of the Service, else the
/// Service's name) (pure).
fn own_jobs(objects: &[Object]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let services: Vec<(&str, BTreeMap<String, String>)> = objects
        .iter()
        .filter(|o| kind(o) == "Service")
        .map(|o| {
            (
                o.metadata.name.as_deref().unwrap_or_default(),
                o.metadata.labels.clone().unwrap_or_default(),
            )
        })
        .collect();
    for o in objects {
        let (ns, name) = (
            o.metadata.namespace.as_deref().unwrap_or_default(),
            o.metadata.name.as_deref().unwrap_or_default(),
        );
        let prefix = match kind(o) {
            "ServiceMonitor" => "serviceMonitor",
            "PodMonitor" => "podMonitor",
            "Probe" => {
                out.insert(format!("probe/{ns}/{name}"));
                continue;
            }
            "ScrapeConfig" => {
                out.insert(format!("scrapeConfig/{ns}/{name}"));
                continue;
            }
            _ => continue,
        };
        let Some(m) = Monitor::of(o) else { continue };
        for (i, e) in m.endpoints.iter().enumerate() {
            out.insert(format!("{prefix}/{ns}/{name}/{i}"));
            match m.job_from_selector(e) {
                Some(job) => {
                    out.insert(job);
                }
                None => out.extend(
                    services
                        .iter()
                        .filter(|(_, l)| selector::matches(&m.selector, l))
                        .map(|(s, l)| m.job(e, s, l)),
                ),
            }
        }
    }
    out
}

/// What the key holds is a YAML list of scrape configurations, each a mapping with a
/// `job_name` of its own that is none of `own_jobs`: how many jobs, or what is wrong, without
/// quoting the content (pure).
pub fn check(text: &[u8], own_jobs: &BTreeSet<String>) -> Result<usize, String> {
    let value: Value = serde_saphyr::from_slice(text).map_err(|e| match e.location() {
        Some(l) => format!("is not valid YAML (line {})", l.line()),
        None => "is not valid YAML".to_string(),
    })?;
    let Value::Array(items) = value else {
        return Err(
            "is not a YAML list of scrape configurations (`- job_name: …`, as Prometheus' scrape_configs)"
                .to_string(),
        );
    };
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let Value::Object(map) = item else {
            return Err(format!(
                "item {i} is not a mapping (a scrape configuration with a job_name)"
            ));
        };
        let job = match map.get("job_name") {
            Some(Value::String(j)) if !j.is_empty() => j.as_str(),
            _ => return Err(format!("item {i} has no job_name")),
        };
        if let Some(first) = seen.insert(job, i) {
            return Err(format!(
                "items {first} and {i} share job_name {job:?}; Prometheus refuses two jobs of one name"
            ));
        }
        if own_jobs.contains(job) {
            return Err(format!(
                "item {i}'s job_name {job:?} is a job of the stack's own; name it otherwise (Prometheus refuses two jobs of one name, and the stack's alerts and dashboards read series by their job)"
            ));
        }
    }
    Ok(items.len())
}

/// What preflight found in the key.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScrapeConfigs {
    pub namespace: String,
    pub secret: String,
    pub key: String,
    /// How many jobs it holds, when it is good.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jobs: Option<usize>,
    /// What is wrong with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Why it was not read (the user may not read Secrets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_checked: Option<String>,
}

impl ScrapeConfigs {
    /// The finding; none when the Secret or key is missing (the `secrets` check says so).
    pub fn assess(&self) -> Option<Finding> {
        let at = format!(
            "prometheus.additionalScrapeConfigs (Secret {}/{}, key {})",
            self.namespace, self.secret, self.key
        );
        match (&self.jobs, &self.problem, &self.not_checked) {
            (_, _, Some(why)) => Some(
                Finding::new(
                    "scrapeConfigs",
                    Level::Warn,
                    format!("cannot read {at}"),
                )
                .with_details(vec![why.clone()]),
            ),
            (_, Some(problem), _) => Some(
                Finding::new("scrapeConfigs", Level::Fail, format!("{at} {problem}"))
                    .with_details(vec![format!(
                        "fix: kubectl create secret generic {} -n {} --from-file={}=FILE --dry-run=client -o yaml | kubectl apply -f - (FILE: a YAML list of scrape configurations, each with its own job_name)",
                        self.secret, self.namespace, self.key
                    )]),
            ),
            (Some(jobs), None, None) => Some(Finding::new(
                "scrapeConfigs",
                Level::Ok,
                format!("{at}: {}", crate::output::plural(*jobs, "scrape job")),
            )),
            (None, None, None) => None,
        }
    }
}

/// Reads the key and checks what it holds; `None` when nothing names one, or the Secret or
/// key is missing (the `secrets` check reports that). No value leaves this function.
pub async fn search(
    cluster: &Cluster,
    wanted: Option<&Wanted>,
) -> Result<Option<ScrapeConfigs>, ClusterError> {
    let Some(w) = wanted else {
        return Ok(None);
    };
    let ns = &cluster.namespace;
    let mut found = ScrapeConfigs {
        namespace: ns.clone(),
        secret: w.secret.clone(),
        key: w.key.clone(),
        ..Default::default()
    };
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), ns);
    let secret = match api.get_opt(&w.secret).await {
        Ok(s) => s,
        Err(kube::Error::Api(s)) if s.code == 404 => None,
        Err(kube::Error::Api(s)) if s.code == 403 => {
            found.not_checked = Some(format!(
                "reading Secrets in namespace {ns} is not allowed: {}",
                s.message
            ));
            return Ok(Some(found));
        }
        Err(e) => return Err(cluster.target.classify(e)),
    };
    let Some(bytes) = secret.and_then(|s| s.data?.remove(&w.key)) else {
        return Ok(None);
    };
    match check(&bytes.0, &w.own_jobs) {
        Ok(n) => found.jobs = Some(n),
        Err(problem) => found.problem = Some(problem),
    }
    Ok(Some(found))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn own() -> BTreeSet<String> {
        let c = Config::default()
            .with_set("prometheus.additionalScrapeConfigs={name: extra, key: scrape.yaml}")
            .unwrap();
        let objects = crate::render::render(&c).objects;
        let w = Wanted::of(&objects).expect("the Prometheus names the key");
        assert_eq!(
            (w.secret.as_str(), w.key.as_str()),
            ("extra", "scrape.yaml")
        );
        w.own_jobs
    }

    #[test]
    fn the_stacks_own_jobs_are_known_by_operator_name_and_by_job_label() {
        let jobs = own();
        for job in [
            "serviceMonitor/automon/node-exporter/0",
            "node-exporter",
            "kube-state-metrics",
            "kubelet",
            "apiserver",
        ] {
            assert!(jobs.contains(job), "{job}: {jobs:?}");
        }
        assert_eq!(
            Wanted::of(&crate::render::render(&Config::default()).objects),
            None
        );
    }

    #[test]
    fn a_list_of_jobs_with_names_of_their_own_is_accepted_and_anything_else_refused_without_its_content()
     {
        let own = own();
        let good = b"- job_name: blackbox\n  static_configs: [{targets: ['10.0.0.1:9115']}]\n- job_name: db\n  basic_auth: {username: u, password: hunter2}\n";
        assert_eq!(check(good, &own), Ok(2));
        assert_eq!(check(b"[]", &own), Ok(0));
        for (text, says) in [
            (&b"job_name: one\n"[..], "is not a YAML list"),
            (b"- [a, b]\n", "item 0 is not a mapping"),
            (b"- static_configs: []\n", "item 0 has no job_name"),
            (b"- job_name: ''\n", "item 0 has no job_name"),
            (
                b"- job_name: a\n- job_name: a\n",
                "items 0 and 1 share job_name \"a\"",
            ),
            (
                b"- job_name: node-exporter\n",
                "item 0's job_name \"node-exporter\" is a job of the stack's own",
            ),
            (
                b"- job_name: x\n  password: [hunter2\n",
                "is not valid YAML (line",
            ),
        ] {
            let e = check(text, &own).unwrap_err();
            assert!(e.contains(says), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn a_bad_key_fails_and_names_the_key_with_the_way_to_replace_it() {
        let mut s = ScrapeConfigs {
            namespace: "automon".into(),
            secret: "extra".into(),
            key: "scrape.yaml".into(),
            jobs: Some(2),
            ..Default::default()
        };
        let f = s.assess().unwrap();
        assert_eq!(
            (f.level, f.message.as_str()),
            (
                Level::Ok,
                "prometheus.additionalScrapeConfigs (Secret automon/extra, key scrape.yaml): 2 scrape jobs"
            )
        );
        s.jobs = None;
        assert_eq!(s.assess(), None);
        s.problem = Some("item 0 has no job_name".into());
        let f = s.assess().unwrap();
        assert_eq!(f.level, Level::Fail);
        assert!(
            f.message
                .ends_with("key scrape.yaml) item 0 has no job_name"),
            "{}",
            f.message
        );
        assert!(
            f.details[0].contains("--from-file=scrape.yaml=FILE"),
            "{:?}",
            f.details
        );
    }
}
