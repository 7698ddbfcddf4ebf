//! `enable`: render the stack and make the cluster match it. Preflight before any write, then
//! phases (namespace and CRDs → Established → operator and RBAC → everything else), each
//! applied server-side in parallel; prune what an earlier render had and this one has not;
//! optionally wait until every workload is ready.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::Context as _;

use super::render::{ConfigArgs, CrdArgs};
use crate::{
    apply::{self, ApplyError, ApplyOptions, Live, Outcome},
    cluster::{Cluster, KubeFlags},
    crds,
    inventory::{self, InventoryError},
    output::Palette,
    preflight,
    render::{self, Object, Phase, grafana::ADMIN_SECRET, kind, meta},
    resources::{self, display_name},
    rollout,
};

/// How many requests one phase keeps in flight: enough to hide round trips, few enough to stay
/// well inside the API server's default priority-and-fairness share for one client.
const IN_FLIGHT: usize = 16;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    crds: CrdArgs,
    /// Print what would be applied without persisting it: `client` (nothing is sent) or
    /// `server` (the API server validates and defaults every object)
    #[arg(long, value_name = "MODE", value_parser = ["none", "client", "server"], default_value = "none", num_args = 0..=1, default_missing_value = "client", require_equals = true)]
    dry_run: String,
    /// Wait until every Deployment, DaemonSet, Prometheus and Alertmanager is ready
    #[arg(long)]
    wait: bool,
    /// How long enable may take in all, waits included (e.g. 5m, 90s)
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = crate::cluster::parse_request_timeout)]
    timeout: Duration,
    /// Take over fields that another field manager owns instead of stopping
    #[arg(long)]
    force_conflicts: bool,
}

/// Counts of outcomes in one phase, for its summary line.
#[derive(Debug, Default)]
struct Tally(BTreeMap<&'static str, usize>);

impl Tally {
    fn add(&mut self, what: &'static str) {
        *self.0.entry(what).or_default() += 1;
    }
    fn total(&self) -> usize {
        self.0.values().sum()
    }
    fn changed(&self) -> usize {
        self.total() - self.0.get("unchanged").copied().unwrap_or(0)
    }
    fn summary(&self) -> String {
        let parts: Vec<String> = ["created", "configured", "unchanged", "pruned"]
            .iter()
            .filter_map(|k| self.0.get(k).map(|n| format!("{n} {k}")))
            .collect();
        parts.join(", ")
    }
}

pub async fn run(flags: &KubeFlags, args: Args) -> anyhow::Result<u8> {
    let started = Instant::now();
    let deadline = started + args.timeout;
    // Offline first: a bad file or --set fails before anything else.
    args.config.load(flags)?;
    let cluster = Cluster::connect(flags).await?;
    let (config, stored) = args.config.load_for(flags, &cluster).await?;
    let namespace = config.namespace.clone();
    let p = Palette::stdout();
    let mut client_dry_run = args.dry_run == "client";
    let options = ApplyOptions {
        dry_run: args.dry_run == "server",
        force: args.force_conflicts,
    };
    let mode = match args.dry_run.as_str() {
        "client" => " (dry run)",
        "server" => " (server dry run)",
        _ => "",
    };

    // Preflight before any write: reachable, supported, every permission, another operator.
    let report = preflight::Preflight::run(&cluster, &render::render(&config).objects).await?;
    println!(
        "Cluster   {} ({}, {})",
        cluster.context.as_deref().unwrap_or("in-cluster"),
        cluster.target.server,
        report.server_version.git_version
    );
    print!("{}", report.human(&p));
    if let Some(origin) = &stored {
        println!(
            "Config    the one stored in {origin}{}",
            match args.config.set.len() {
                0 => String::new(),
                1 => ", changed by 1 --set".to_string(),
                n => format!(", changed by {n} --set"),
            }
        );
    }
    if !report.passed() {
        return Ok(report.exit_code());
    }
    let existing = report
        .existing_operator
        .is_installed()
        .then(|| report.existing_operator.clone());

    // The CRDs: the cluster's when compatible, else --crds-from or the pinned release.
    let crd_plan = match &existing {
        Some(_) => CrdPlan {
            objects: Vec::new(),
            names: Vec::new(),
            description: "those of the Prometheus Operator already installed, as they are".into(),
        },
        None => crd_plan(&cluster, &args.crds).await?,
    };
    println!("CRDs      {}", crd_plan.description);
    let mut objects = render::render_with(&config, crd_plan.objects.clone()).objects;
    if let Some(found) = &existing {
        let labels = found
            .prometheuses
            .first()
            .map(preflight::labels_to_match)
            .unwrap_or_default();
        println!(
            "Operator  another Prometheus Operator is installed ({}): reusing it; installing only exporters, rules and dashboards, labelled {}",
            describe_operator(found),
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        objects = reuse_existing_operator(objects, &labels);
        // An unset namespace selector means "my own namespace only".
        if let Some(prom) = found.prometheuses.first()
            && prom.namespace != namespace
        {
            for (what, selector) in [
                ("ServiceMonitors", &prom.service_monitor_namespace_selector),
                ("PrometheusRules", &prom.rule_namespace_selector),
            ] {
                if selector.is_none() {
                    eprintln!(
                        "{} prometheus {}/{} selects {what} only in its own namespace: set its namespace selector to include {namespace:?}, or enable with -n {}",
                        Palette::stderr().warn("warning:"),
                        prom.namespace,
                        prom.name,
                        prom.namespace
                    );
                }
            }
        }
    }

    // Every command of this run speaks about the configured namespace.
    let cluster = Cluster {
        namespace: namespace.clone(),
        ..cluster
    };
    let before = match inventory::read(&cluster).await {
        Ok(i) => Some(i),
        Err(InventoryError::NotInstalled { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let live = Live::from_objects(
        before
            .iter()
            .flat_map(|i| i.members.iter().chain(std::iter::once(&i.parent))),
    );

    // The parent goes first (KEP-3659) with every kind old and new, so that an interrupted
    // enable leaves members a later run can still find and prune.
    let (parents, mut members): (Vec<Object>, Vec<Object>) = objects.into_iter().partition(|o| {
        o.metadata.name.as_deref() == Some(meta::PARENT_NAME) && kind(o) == "ConfigMap"
    });
    let parent = parents
        .into_iter()
        .next()
        .context("render produced no ApplySet parent")?;
    let widened = widen_parent(&parent, before.as_ref().map(|i| &i.parent));
    members.sort_by_key(render::phase);

    let mut tally = Tally::default();
    // The parent as the first apply left it, so the last apply reports against that.
    let mut first_parent: Option<(Outcome, Object)> = None;
    let mut failures: Vec<ApplyError> = Vec::new();
    for phase in [Phase::Foundation, Phase::Operator, Phase::Stack] {
        let batch: Vec<Object> = members
            .iter()
            .filter(|o| render::phase(o) == phase)
            .cloned()
            .collect();
        let phase_started = Instant::now();
        let mut phase_tally = Tally::default();
        if client_dry_run {
            for o in &batch {
                let outcome = if live.contains(&apply::key(o)) {
                    "configured"
                } else {
                    "created"
                };
                println!("{} {outcome}{mode}", display_name(o));
                phase_tally.add(outcome);
            }
        } else {
            let results = apply::apply_all(&cluster, &batch, &live, options, IN_FLIGHT).await;
            for r in results {
                match r {
                    Ok((_, applied))
                        if kind(&applied) == "Namespace"
                            && applied.data["status"]["phase"] == "Terminating" =>
                    {
                        anyhow::bail!(
                            "namespace {:?} is being deleted; wait until it is gone (kubectl get namespace {0}) and run enable again",
                            applied.metadata.name.as_deref().unwrap_or_default()
                        );
                    }
                    Ok((outcome, applied)) => {
                        println!("{} {}{mode}", display_name(&applied), outcome.as_str());
                        phase_tally.add(outcome.as_str());
                    }
                    Err(e) => failures.push(e),
                }
            }
        }
        if !failures.is_empty() {
            break;
        }
        // A server dry run cannot validate objects in a namespace that does not exist yet
        // (its creation was a dry run too): say so and show the rest as a client dry run.
        if phase == Phase::Foundation
            && options.dry_run
            && !live.contains(&namespace_key(&namespace))
        {
            eprintln!(
                "note: namespace {namespace:?} does not exist yet, so the server cannot dry-run the objects in it; they are shown as a client dry run"
            );
            client_dry_run = true;
        }
        if phase == Phase::Foundation && !client_dry_run {
            first_parent = Some(apply_parent(&cluster, &widened, &live, options, mode).await?);
            if !options.dry_run && !crd_plan.names.is_empty() {
                let t = Instant::now();
                crds::wait_established(
                    &cluster,
                    &crd_plan.names,
                    deadline.saturating_duration_since(Instant::now()),
                )
                .await?;
                println!("CRDs      established in {}", secs(t.elapsed()));
            }
        }
        if !batch.is_empty() {
            println!(
                "{:<9} {} objects: {}  {}",
                phase_label(phase),
                phase_tally.total(),
                phase_tally.summary(),
                p.dim(&secs(phase_started.elapsed()))
            );
        }
        for (k, n) in phase_tally.0 {
            *tally.0.entry(k).or_default() += n;
        }
    }
    if !failures.is_empty() {
        // The first failure ends the run (and picks the exit code); the others are listed.
        let first = failures.remove(0);
        for f in &failures {
            eprintln!("{} {f}", Palette::stderr().bad("error:"));
        }
        return Err(anyhow::Error::new(first).context(format!(
            "enable stopped: {} object(s) could not be applied; nothing after this phase was sent",
            1 + failures.len()
        )));
    }

    // Prune what this render no longer has, in reverse phase order, then write the exact parent.
    if let Some(before) = &before {
        for o in inventory::stale(&before.members, &members) {
            if !client_dry_run {
                delete(&cluster, o, options.dry_run).await?;
            }
            println!("{} pruned{mode}", display_name(o));
            tally.add("pruned");
        }
    }
    if !client_dry_run {
        let final_parent = match &before {
            Some(b) => inventory::final_parent(&parent, &b.members),
            None => parent.clone(),
        };
        let (outcome, _) = match &first_parent {
            Some((first, applied)) => {
                let (again, now) = apply_parent(
                    &cluster,
                    &final_parent,
                    &Live::from_objects([applied]),
                    options,
                    mode,
                )
                .await?;
                // Created by the first apply and unchanged since: it was created.
                let outcome = if again == Outcome::Unchanged {
                    *first
                } else {
                    Outcome::Configured
                };
                (outcome, now)
            }
            None => apply_parent(&cluster, &final_parent, &live, options, mode).await?,
        };
        tally.add(outcome.as_str());
    }

    if args.dry_run == "none"
        && config.grafana.enabled
        && ensure_admin_secret(&cluster, &parent).await?
    {
        println!(
            "secret/{ADMIN_SECRET} created (a random Grafana admin password; read it with: kubectl get secret {ADMIN_SECRET} -n {namespace} -o jsonpath='{{.data.admin-password}}' | base64 -d)"
        );
        tally.add("created");
    }

    if args.wait && args.dry_run == "none" {
        let expected = rollout::expected(&members);
        let remaining = deadline.saturating_duration_since(Instant::now());
        rollout::wait(&cluster, &namespace, &expected, remaining).await?;
    }

    let done = if tally.changed() == 0 && args.dry_run == "none" {
        format!(
            "{} objects: {}. Nothing to do.",
            tally.total(),
            tally.summary()
        )
    } else {
        format!("{} objects: {}{mode}.", tally.total(), tally.summary())
    };
    println!(
        "Done      {done} {}",
        p.dim(&format!("({})", secs(started.elapsed())))
    );
    Ok(0)
}

/// `monitoring/prometheus-operator v0.80.0`, or the Prometheus objects when no Deployment.
fn describe_operator(found: &preflight::ExistingOperator) -> String {
    let mut parts: Vec<String> = found
        .deployments
        .iter()
        .map(|d| {
            format!(
                "deployment {}/{}{}",
                d.namespace,
                d.name,
                d.version
                    .as_deref()
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    parts.extend(
        found
            .prometheuses
            .iter()
            .map(|p| format!("prometheus {}/{}", p.namespace, p.name)),
    );
    parts.join(", ")
}

/// Which CRDs enable applies, and which it waits for.
struct CrdPlan {
    objects: Vec<Object>,
    names: Vec<String>,
    description: String,
}

/// `--crds-from` when given; else the cluster's when every pinned CRD is there at a compatible
/// version (left as they are); else the pinned release files, checked by SHA-256.
async fn crd_plan(cluster: &Cluster, args: &CrdArgs) -> anyhow::Result<CrdPlan> {
    let wanted = crate::versions::PROMETHEUS_OPERATOR.version;
    let from_objects = |objects: Vec<Object>, from: String| CrdPlan {
        names: objects
            .iter()
            .filter_map(|o| o.metadata.name.clone())
            .collect(),
        description: format!("{} from {from}", objects.len()),
        objects,
    };
    if let Some(from) = &args.crds_from {
        let objects = crds::load(&args.source()).await?;
        return Ok(from_objects(objects, from.clone()));
    }
    let api: kube::Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        kube::Api::all(cluster.client.clone());
    let installed = api
        .list_metadata(&kube::api::ListParams::default())
        .await
        .map_err(|e| cluster.target.classify(e))?;
    let pinned: Vec<String> = crds::PINNED_CRDS.iter().map(|p| p.name()).collect();
    let versions: BTreeMap<String, Option<String>> = installed
        .items
        .iter()
        .filter_map(|m| {
            let name = m.metadata.name.clone()?;
            let version = crds::installed_version(&m.metadata);
            pinned.contains(&name).then_some((name, version))
        })
        .collect();
    let all_compatible = pinned.iter().all(|n| {
        versions
            .get(n)
            .and_then(|v| v.as_deref())
            .is_some_and(|v| crds::compatible(v, wanted))
    });
    if all_compatible {
        return Ok(CrdPlan {
            objects: Vec::new(),
            names: Vec::new(),
            description: format!(
                "{} in the cluster at a compatible version, kept as they are",
                pinned.len()
            ),
        });
    }
    let objects = crds::load(&args.source()).await?;
    Ok(from_objects(
        objects,
        format!("prometheus-operator {wanted} (sha256 verified)"),
    ))
}

/// Creates the Grafana admin Secret with a random password unless it exists: never overwritten,
/// never printed. It joins the ApplySet so that `disable` removes it with the rest.
async fn ensure_admin_secret(cluster: &Cluster, parent: &Object) -> anyhow::Result<bool> {
    use k8s_openapi::{ByteString, api::core::v1::Secret};
    let api: kube::Api<Secret> = kube::Api::namespaced(cluster.client.clone(), &cluster.namespace);
    if api
        .get_opt(ADMIN_SECRET)
        .await
        .map_err(|e| cluster.target.classify(e))?
        .is_some()
    {
        return Ok(false);
    }
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no random source for the Grafana password: {e}"))?;
    use base64::Engine;
    let password = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let mut labels = parent.metadata.labels.clone().unwrap_or_default();
    labels.remove(meta::APPLYSET_ID_LABEL);
    labels.insert(meta::NAME_LABEL.into(), "grafana".into());
    labels.insert(meta::COMPONENT_LABEL.into(), "grafana".into());
    if let Some(id) = inventory::applyset_id(&parent.metadata) {
        labels.insert(meta::APPLYSET_PART_OF_LABEL.into(), id.to_string());
    }
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(ADMIN_SECRET.into()),
            namespace: Some(cluster.namespace.clone()),
            labels: Some(labels),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            ("admin-user".to_string(), ByteString(b"admin".to_vec())),
            (
                "admin-password".to_string(),
                ByteString(password.into_bytes()),
            ),
        ])),
        ..Default::default()
    };
    let pp = kube::api::PostParams {
        field_manager: Some(apply::FIELD_MANAGER.into()),
        ..Default::default()
    };
    match api.create(&pp, &secret).await {
        Ok(_) => Ok(true),
        // Created by a concurrent run: theirs stands.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(cluster.target.classify(e).into()),
    }
}

fn namespace_key(namespace: &str) -> apply::Key {
    ("Namespace".into(), String::new(), namespace.into())
}

fn phase_label(p: Phase) -> &'static str {
    match p {
        Phase::Foundation => "Namespace",
        Phase::Operator => "Operator",
        Phase::Stack => "Stack",
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Applies the ApplySet parent; says so only when it changed.
async fn apply_parent(
    cluster: &Cluster,
    parent: &Object,
    live: &Live,
    options: ApplyOptions,
    mode: &str,
) -> anyhow::Result<(Outcome, Object)> {
    let applied = apply::server_side_apply(cluster, parent, options).await?;
    let outcome = live.outcome(&applied, options.dry_run);
    if outcome != Outcome::Unchanged {
        println!("{} {}{mode}", display_name(&applied), outcome.as_str());
    }
    Ok((outcome, applied))
}

/// The parent with the union of the kinds it lists now and listed before.
fn widen_parent(parent: &Object, previous: Option<&Object>) -> Object {
    let before = previous.map(|p| inventory::group_kinds(&p.metadata));
    inventory::with_kinds(parent, before.unwrap_or_default())
}

async fn delete(cluster: &Cluster, o: &Object, dry_run: bool) -> anyhow::Result<()> {
    let api = resources::api_for(&cluster.client, o)
        .with_context(|| format!("{}: unknown type", display_name(o)))?;
    let mut dp = kube::api::DeleteParams::background();
    dp.dry_run = dry_run;
    match api
        .delete(o.metadata.name.as_deref().unwrap_or(""), &dp)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(anyhow::Error::new(cluster.target.classify(e))
            .context(format!("pruning {}", display_name(o)))),
    }
}

/// With another Prometheus Operator in charge: leave out our operator, Prometheus and
/// Alertmanager, and label the scrape and rule objects so that its selectors pick them up.
fn reuse_existing_operator(objects: Vec<Object>, labels: &BTreeMap<String, String>) -> Vec<Object> {
    objects
        .into_iter()
        .filter(|o| !crate::render::replaced_by_existing_operator(o))
        .map(|mut o| {
            if matches!(kind(&o), "ServiceMonitor" | "PrometheusRule") {
                o.metadata
                    .labels
                    .get_or_insert_with(Default::default)
                    .extend(labels.clone());
            }
            o
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn reusing_an_operator_keeps_exporters_rules_and_dashboards() {
        let objects = render::render(&Config::default()).objects;
        let labels = BTreeMap::from([("release".to_string(), "kube-prometheus-stack".to_string())]);
        let kept = reuse_existing_operator(objects, &labels);
        let names: Vec<String> = kept.iter().map(display_name).collect();
        assert!(
            !names
                .iter()
                .any(|n| n.starts_with("prometheus.monitoring.coreos.com/")),
            "{names:?}"
        );
        assert!(
            !names
                .iter()
                .any(|n| n.starts_with("alertmanager.monitoring.coreos.com/")),
            "{names:?}"
        );
        assert!(
            !names.contains(&"deployment.apps/prometheus-operator".to_string()),
            "{names:?}"
        );
        assert!(
            names.contains(&"daemonset.apps/node-exporter".to_string()),
            "{names:?}"
        );
        assert!(
            names.contains(&"deployment.apps/kube-state-metrics".to_string()),
            "{names:?}"
        );
        for o in kept
            .iter()
            .filter(|o| matches!(kind(o), "ServiceMonitor" | "PrometheusRule"))
        {
            assert_eq!(
                o.metadata
                    .labels
                    .as_ref()
                    .unwrap()
                    .get("release")
                    .map(String::as_str),
                Some("kube-prometheus-stack"),
                "{}",
                display_name(o)
            );
        }
    }

    #[test]
    fn widened_parent_lists_old_and_new_kinds() {
        let objects = render::render(&Config::default()).objects;
        let parent = objects
            .iter()
            .find(|o| {
                o.metadata.name.as_deref() == Some(meta::PARENT_NAME) && kind(o) == "ConfigMap"
            })
            .unwrap();
        let mut old = parent.clone();
        old.metadata.annotations.as_mut().unwrap().insert(
            meta::APPLYSET_GROUP_KINDS.into(),
            "Ingress.networking.k8s.io".into(),
        );
        let w = widen_parent(parent, Some(&old));
        let kinds = &w.metadata.annotations.as_ref().unwrap()[meta::APPLYSET_GROUP_KINDS];
        assert!(kinds.contains("Ingress.networking.k8s.io"), "{kinds}");
        assert!(kinds.contains("DaemonSet.apps"), "{kinds}");
    }

    #[test]
    fn tally_says_nothing_changed() {
        let mut t = Tally::default();
        t.add("unchanged");
        t.add("unchanged");
        assert_eq!(t.changed(), 0);
        assert_eq!(t.summary(), "2 unchanged");
        t.add("created");
        assert_eq!(t.summary(), "1 created, 2 unchanged");
    }
}
