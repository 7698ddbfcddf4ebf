//! The loop's I/O: watches (kube-runtime watchers feeding reflector stores, with its backoff),
//! timers, the Lease and signals become the machine's inputs; its actions are performed here
//! (log lines, metrics, Events through one kube-runtime Recorder, repairs and enable's plan
//! through the one apply engine), each request answered at once with the input it names.

use std::{
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use futures::{Stream, StreamExt as _, stream};
use k8s_openapi::{
    api::{
        apps::v1::DaemonSet,
        coordination::v1::Lease,
        core::v1::{ConfigMap, Event as CoreEvent},
        events::v1::Event as NodeEvent,
    },
    jiff::Timestamp,
};
use kube::{
    Api, ResourceExt as _,
    api::{DynamicObject, ListParams, PartialObjectMeta},
    runtime::{
        WatchStreamExt as _,
        events::{Event as KubeEvent, Recorder, Reporter},
        reflector::{self, Store},
        watcher::{self, Event},
    },
};
use kube_lease_manager::{LeaseCreateMode, LeaseManagerBuilder};
use tracing::{debug, info, warn};

use super::{
    CONTROLLER, LOG_TARGET, Options,
    machine::{
        Action, Applied, Desired, ExporterSource, Input, Level, Line, Look, Machine, MemberEvent,
        Metric, Now, Planned, Publication, Request, Timers, live_holder,
    },
    metrics::Metrics,
};

use crate::exit::Verdict;
use crate::model::names::LEASE_NAME;
use crate::{
    cluster::{
        Cluster,
        apply::{self, ApplyOptions},
    },
    config::Config,
    model::{
        names::{APPLYSET_PART_OF_LABEL, PARENT_NAME, PART_OF, PART_OF_LABEL},
        resources::{Known, Scope},
        slim::{SlimNode, SlimPod},
    },
    plan::{ClusterState, Plan},
    render::{self, NodeClasses},
};

/// enable's plan for `config` (for these classes and this many nodes, or the cluster's).
pub async fn plan(
    cluster: &Cluster,
    config: &Config,
    classes: Option<NodeClasses>,
    nodes: Option<u32>,
) -> anyhow::Result<(Plan, ClusterState)> {
    crate::pipeline::desired(cluster, config, classes, nodes).await
}

/// Applies `plan` through enable's own engine (its lines go to the log) and records a revision
/// saying `change`.
async fn execute(
    cluster: &Cluster,
    plan: &Plan,
    state: &ClusterState,
    change: &str,
    started: Instant,
) -> anyhow::Result<()> {
    let options = crate::pipeline::Options::apply(Duration::from_secs(300));
    let executed = crate::pipeline::execute(cluster, plan, state, &options, started).await?;
    executed
        .finish(
            cluster,
            &options,
            change,
            crate::cluster::revision::DEFAULT_MAX,
            started,
        )
        .await?;
    Ok(())
}

/// Reads the parent and the stored configuration: `Ok(None)` when automon is not installed.
pub async fn installed(cluster: &Cluster) -> anyhow::Result<Option<(ConfigMap, Config)>> {
    let parent = crate::cluster::inventory::parent_configmap(&cluster.client, &cluster.namespace)
        .await
        .map_err(|e| cluster.target.classify(e))?;
    let Some(parent) = parent else {
        return Ok(None);
    };
    let config = crate::cluster::inventory::stored_config(&parent)?;
    Ok(Some((parent, config)))
}

/// The node count the stack's `Prometheus` was sized for, from its annotation; `None` without
/// one (another operator's Prometheus, an older automon) or when it cannot be read.
pub async fn deployed_tier(cluster: &Cluster, plan: &Plan) -> Option<u32> {
    let prometheus = plan.objects().find(|o| {
        crate::model::kind(o) == "Prometheus"
            && o.metadata.name.as_deref() == Some(render::prometheus::INSTANCE)
    })?;
    let api = crate::model::resources::api_for(&cluster.client, prometheus)?;
    let meta = api
        .get_metadata_opt(render::prometheus::INSTANCE)
        .await
        .ok()??;
    meta.metadata
        .annotations?
        .get(crate::config::sizing::SIZED_FOR_ANNOTATION)?
        .parse()
        .ok()
}

/// Which pods are the exporter's: another stack's DaemonSet's selector, or automon's label.
pub async fn pods_selector(cluster: &Cluster, source: &ExporterSource) -> anyhow::Result<String> {
    let own = || format!("{PART_OF_LABEL}={PART_OF}");
    if !source.borrowed {
        return Ok(own());
    }
    let api = Api::<DaemonSet>::namespaced(cluster.client.clone(), &source.namespace);
    let found = api
        .get_opt(&source.name)
        .await
        .map_err(|e| cluster.target.classify(e))?;
    Ok(match found {
        Some(ds) => ds
            .spec
            .as_ref()
            .map(|s| crate::model::selector::to_query(&s.selector))
            .unwrap_or_default(),
        None => {
            warn!(
                target: LOG_TARGET,
                "the exporter this stack scrapes, DaemonSet {}/{}, is gone; `kubectl automon enable` deploys automon's own",
                source.namespace, source.name
            );
            own()
        }
    })
}

/// kube-runtime's exponential backoff with jitter, from 500ms to 8s, reset after a minute
/// without errors.
fn backoff() -> impl kube::runtime::utils::Backoff {
    kube::runtime::utils::ResetTimerBackoff::new(
        watcher::ExponentialBackoff::from(
            backon::ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(500))
                .with_max_delay(Duration::from_secs(8))
                .with_factor(2.0)
                .with_jitter()
                .without_max_times(),
        ),
        Duration::from_secs(60),
    )
}

type Inputs = Pin<Box<dyn Stream<Item = Input> + Send>>;

/// A watch's failure as the machine hears it.
fn failed(what: &'static str, e: &watcher::Error) -> Input {
    Input::Failed {
        what,
        error: e.to_string(),
        expired: matches!(e, watcher::Error::WatchError(s) if s.code == 410),
    }
}

/// The Node type the loop holds: the slim one; or, for bench/reconcile-loop's baseline, the full
/// one, managedFields and all.
#[cfg(not(feature = "bench-full-nodes"))]
type HeldNode = SlimNode;
#[cfg(feature = "bench-full-nodes")]
type HeldNode = k8s_openapi::api::core::v1::Node;

/// A reflected watch: its store, and its events as inputs. An update that leaves the object
/// as held (a kubelet's heartbeat, which the slim Node does not keep) is neither stored nor
/// judged: at 5,000 nodes those arrive several times a second.
fn reflected<K>(name: &'static str, api: Api<K>, config: watcher::Config) -> (Store<K>, Inputs)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync,
    K: PartialEq + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let held = reader.clone();
    let stream = reflector::reflector(
        writer,
        watcher::watcher(api, config)
            .modify(move |o: &mut K| {
                if !(cfg!(feature = "bench-full-nodes") && name == "nodes") {
                    o.meta_mut().managed_fields = None;
                    // Every write changes it; nothing here reads it (the watch keeps its own).
                    o.meta_mut().resource_version = None;
                }
            })
            .backoff(backoff())
            .filter(move |e| {
                let unchanged = match e {
                    Ok(Event::Apply(o)) => held
                        .get(&reflector::ObjectRef::from_obj(o))
                        .is_some_and(|old| *old == *o),
                    _ => false,
                };
                futures::future::ready(!unchanged)
            }),
    )
    .filter_map(move |e| async move {
        match e {
            Ok(Event::InitDone) => Some(Input::Synced(name)),
            Ok(Event::Init | Event::InitApply(_)) => None,
            Ok(Event::Apply(o) | Event::Delete(o)) => {
                // For bench/reconcile-loop's breakdown of a join (AUTOMON_LOG=...=debug).
                debug!(target: LOG_TARGET, watch = name, object = %o.name_any(), "seen");
                Some(Input::Changed)
            }
            Err(e) => Some(failed(name, &e)),
        }
    })
    .boxed();
    (reader, stream)
}

/// What the loop watches, fixed at its start (an exporter that moves needs a new loop).
pub struct Watches {
    pub source: ExporterSource,
    /// Which pods are the exporter's (its DaemonSet's selector).
    pub pods_selector: String,
    pub members: Vec<&'static Known>,
    /// The ApplySet's id: its members carry it in their part-of label.
    pub applyset_id: String,
}

struct Stores {
    nodes: Store<HeldNode>,
    pods: Store<SlimPod>,
    daemonsets: Store<DaemonSet>,
    refusals: Store<CoreEvent>,
}

impl Stores {
    /// The stores' contents now, assessed.
    fn look(&self, exclude_label: &str, exporter: (&str, &str, Option<&str>)) -> Look {
        #[cfg(not(feature = "bench-full-nodes"))]
        let nodes = self.nodes.state();
        #[cfg(feature = "bench-full-nodes")]
        let nodes: Vec<Arc<SlimNode>> = self
            .nodes
            .state()
            .iter()
            .map(|n| Arc::new(SlimNode::from(n.as_ref())))
            .collect();
        Look::of(
            nodes,
            self.pods.state(),
            &self.daemonsets.state(),
            &self.refusals.state(),
            exclude_label,
            exporter,
            Timestamp::now(),
        )
    }
}

impl Watches {
    fn start(self, cluster: &Cluster) -> (Stores, Vec<Inputs>) {
        let client = &cluster.client;
        let src = &self.source;
        let exporter_pods = watcher::Config::default().labels(&self.pods_selector);
        let (nodes, n) = reflected(
            "nodes",
            Api::<HeldNode>::all(client.clone()),
            watcher::Config::default(),
        );
        let (pods, p) = reflected(
            "pods",
            Api::<SlimPod>::namespaced(client.clone(), &src.namespace),
            exporter_pods,
        );
        let daemonsets_selection = if src.borrowed {
            watcher::Config::default().fields(&format!("metadata.name={}", src.name))
        } else {
            watcher::Config::default().labels(&format!("{PART_OF_LABEL}={PART_OF}"))
        };
        let (daemonsets, d) = reflected(
            "daemonsets",
            Api::<DaemonSet>::namespaced(client.clone(), &src.namespace),
            daemonsets_selection,
        );
        let (refusals, r) = reflected(
            "events",
            Api::<CoreEvent>::namespaced(client.clone(), &src.namespace),
            watcher::Config::default().fields(&format!(
                "involvedObject.kind=DaemonSet,involvedObject.name={},reason=FailedCreate",
                src.name
            )),
        );
        let parent = watcher::watcher(
            Api::<ConfigMap>::namespaced(client.clone(), &cluster.namespace),
            watcher::Config::default().fields(&format!("metadata.name={PARENT_NAME}")),
        )
        .backoff(backoff())
        .filter_map(|e| async move {
            match e {
                Ok(Event::Apply(cm) | Event::InitApply(cm)) => Some(Input::Parent(Some(cm))),
                Ok(Event::Delete(_)) => Some(Input::Parent(None)),
                Ok(Event::InitDone) => Some(Input::Synced("parent")),
                Ok(Event::Init) => None,
                Err(e) => Some(failed("parent", &e)),
            }
        })
        .boxed();
        let mut streams = vec![n, p, d, r, parent];
        for known in &self.members {
            streams.push(members(cluster, known, &self.applyset_id));
        }
        let stores = Stores {
            nodes,
            pods,
            daemonsets,
            refusals,
        };
        (stores, streams)
    }
}

/// The managed objects of one type (metadata only); a (re)list arrives whole.
fn members(cluster: &Cluster, known: &'static Known, applyset_id: &str) -> Inputs {
    let client = cluster.client.clone();
    let ar = known.api_resource();
    let api: Api<PartialObjectMeta<DynamicObject>> = match known.scope {
        Scope::Namespaced => Api::namespaced_with(client, &cluster.namespace, &ar),
        Scope::Cluster => Api::all_with(client, &ar),
    };
    let selection =
        watcher::Config::default().labels(&format!("{APPLYSET_PART_OF_LABEL}={applyset_id}"));
    let mut listing: Vec<PartialObjectMeta<DynamicObject>> = Vec::new();
    watcher::watcher(api, selection)
        .backoff(backoff())
        .filter_map(move |e| {
            let input = match e {
                Ok(Event::Init) => {
                    listing.clear();
                    None
                }
                Ok(Event::InitApply(o)) => {
                    listing.push(o);
                    None
                }
                Ok(Event::InitDone) => Some(Input::Member(
                    known,
                    MemberEvent::Listed(std::mem::take(&mut listing)),
                )),
                Ok(Event::Apply(o)) => Some(Input::Member(known, MemberEvent::Applied(o))),
                Ok(Event::Delete(o)) => Some(Input::Member(known, MemberEvent::Deleted(o))),
                Err(e) => Some(failed("managed objects", &e)),
            };
            async move { input }
        })
        .boxed()
}

/// Where inputs come from between steps: signals, the Lease, the watches, the timers.
struct Sources {
    watches: stream::SelectAll<Inputs>,
    leading: Option<tokio::sync::watch::Receiver<bool>>,
    summary: tokio::time::Interval,
    looping: bool,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Sources {
    /// The next input, in this order when several are ready.
    async fn next(&mut self, timers: Timers) -> Input {
        let at = |t: Option<Instant>| {
            let far = || Instant::now() + Duration::from_secs(3600);
            tokio::time::Instant::from_std(t.unwrap_or_else(far))
        };
        let sleep = |t| tokio::time::sleep_until(at(t));
        let Sources {
            watches,
            leading,
            summary,
            looping,
            shutdown,
        } = self;
        tokio::select! {
            biased;
            _ = shutdown => Input::Shutdown,
            changed = lease_changed(leading) => match changed {
                Some(leader) => Input::Lease(leader),
                None => {
                    *leading = None;
                    Input::LeaseStopped
                }
            },
            input = watches.next() => input.unwrap_or(Input::WatchesEnded),
            _ = sleep(timers.assess), if timers.assess.is_some() => Input::AssessDue,
            _ = sleep(timers.deadline), if timers.deadline.is_some() => Input::DeadlineDue,
            _ = sleep(timers.repair), if timers.repair.is_some() => Input::RepairDue,
            _ = sleep(timers.classes), if timers.classes.is_some() => Input::ClassDue,
            _ = sleep(timers.size), if timers.size.is_some() => Input::SizeDue,
            _ = summary.tick(), if *looping => Input::Summary,
        }
    }
}

/// Whether this loop leads, when the Lease manager says it changed; `None` once it stopped.
async fn lease_changed(leading: &mut Option<tokio::sync::watch::Receiver<bool>>) -> Option<bool> {
    match leading.as_mut() {
        Some(rx) => rx.changed().await.ok().map(|()| *rx.borrow()),
        None => std::future::pending().await,
    }
}

fn now() -> Now {
    Now {
        at: Instant::now(),
        wall: Timestamp::now(),
    }
}

pub struct Driver {
    cluster: Cluster,
    options: Options,
    machine: Machine,
    recorder: Recorder,
    metrics: Arc<Metrics>,
}

impl Driver {
    pub fn new(
        cluster: Cluster,
        options: Options,
        machine: Machine,
        metrics: Arc<Metrics>,
    ) -> Self {
        let recorder = Recorder::new(
            cluster.client.clone(),
            Reporter {
                controller: CONTROLLER.into(),
                instance: Some(options.identity.clone()),
            },
        );
        Driver {
            cluster,
            options,
            machine,
            recorder,
            metrics,
        }
    }

    /// Runs the loop (or the one pass) to its verdict.
    pub async fn run(mut self, watches: Watches) -> anyhow::Result<Verdict> {
        // The Lease first: a second loop says at once who leads.
        let lease = LeaseManagerBuilder::new(self.cluster.client.clone(), LEASE_NAME)
            .with_namespace(&self.cluster.namespace)
            .with_identity(&self.options.identity)
            .with_duration(self.options.lease_duration.as_secs().max(2))
            .with_grace((self.options.lease_duration.as_secs() / 3).max(1))
            .with_field_manager(format!("{CONTROLLER}-lease"))
            .with_create_mode(LeaseCreateMode::AutoCreate)
            .build()
            .await
            .context("preparing the Lease")?;
        let held_by = self.holder().await;
        let looping = self.options.looping;
        let (leading, lease_task, pass_lease, leader) = if looping {
            let (rx, task) = lease.watch().await;
            (Some(rx), Some(task), None, false)
        } else {
            // One pass leads only when no loop does; it never waits for one.
            let took = held_by.is_none()
                && matches!(
                    tokio::time::timeout(Duration::from_secs(5), lease.changed()).await,
                    Ok(Ok(true))
                );
            (None, None, Some(lease), took)
        };
        let (stores, streams) = watches.start(&self.cluster);
        let mut sources = Sources {
            watches: stream::select_all(streams),
            leading,
            summary: tokio::time::interval(self.options.summary_interval),
            looping,
            shutdown: Box::pin(shutdown_signal()),
        };
        sources.summary.tick().await;
        let mut input = Input::Started { held_by, leader };
        let code = loop {
            if let Some(code) = self.step(input, &stores).await {
                break code;
            }
            input = sources.next(self.machine.timers(now())).await;
        };
        // Stop: drop the watches, give the Lease back (the lease task releases it when its
        // channel closes), within a bound so that SIGTERM ends the process promptly.
        drop(sources);
        if let Some(task) = lease_task {
            let _ = tokio::time::timeout(Duration::from_millis(1500), task).await;
            self.step(Input::Released, &stores).await;
        } else if let Some(lease) = pass_lease.filter(|_| self.machine.leader()) {
            let _ = tokio::time::timeout(Duration::from_millis(1500), lease.release()).await;
        }
        Ok(code)
    }

    /// Who holds the Lease, when another live loop does: (identity, seconds since renewal).
    async fn holder(&self) -> Option<(String, i64)> {
        let api = Api::<Lease>::namespaced(self.cluster.client.clone(), &self.cluster.namespace);
        let lease = api.get_opt(LEASE_NAME).await.ok()??;
        live_holder(lease, &self.options.identity, Timestamp::now())
    }

    /// One input, and the answers to the requests it leads to; `Some(verdict)` ends the loop.
    async fn step(&mut self, input: Input, stores: &Stores) -> Option<Verdict> {
        let mut next = Some(input);
        while let Some(input) = next.take() {
            for action in self.machine.handle(input, now()) {
                match action {
                    Action::Log(line) => say(&line),
                    Action::Metric(metric) => record(&self.metrics, metric),
                    Action::Ask(request) => next = Some(self.answer(request, stores).await),
                    Action::Exit(code) => return Some(code),
                }
            }
        }
        None
    }

    async fn answer(&self, request: Request, stores: &Stores) -> Input {
        let cluster = &self.cluster;
        match request {
            Request::Assess {
                exclude_label,
                exporter,
                namespace,
                exporter_from,
            } => {
                let started = Instant::now();
                let look = stores.look(
                    &exclude_label,
                    (&exporter, &namespace, exporter_from.as_deref()),
                );
                let took_ms = started.elapsed().as_secs_f64() * 1e3;
                debug!(target: LOG_TARGET, nodes = look.nodes.len(), took_ms, "assessed");
                Input::Assessed(look)
            }
            Request::Publish(batch) => Input::Published(
                futures::future::join_all(batch.into_iter().map(|p| self.publish(p))).await,
            ),
            Request::ReadOwed => Input::OwedRead(self.written().await),
            Request::ReadParent => {
                let parent = installed(cluster).await.ok().flatten();
                Input::ParentRead(parent.map(|(parent, _)| parent))
            }
            Request::Plan { config, classes } => {
                let planned = plan(cluster, &config, Some(classes), None).await;
                Input::Planned(
                    planned
                        .map(|(plan, state)| Planned {
                            desired: Desired::of(&plan),
                            nodes: state.nodes,
                        })
                        .map_err(|e| format!("{e:#}")),
                )
            }
            Request::Repair(object) => {
                let options = ApplyOptions {
                    dry_run: false,
                    force: true,
                };
                let applied = apply::server_side_apply(cluster, &object, options).await;
                Input::Repaired(applied.map(drop).map_err(|e| e.to_string()))
            }
            Request::Apply {
                config,
                classes,
                tier,
                change,
            } => Input::Applied(self.apply(&config, classes, tier, &change).await),
        }
    }

    async fn publish(&self, p: Publication) -> Result<(), String> {
        let event = KubeEvent {
            type_: p.type_,
            reason: p.reason.into(),
            note: Some(p.note),
            action: "Monitor".into(),
            secondary: p.secondary,
        };
        let node = p.regarding.name.as_deref().unwrap_or_default();
        debug!(target: LOG_TARGET, node, reason = p.reason, "writing Event");
        let published = self.recorder.publish(&event, &p.regarding).await;
        debug!(target: LOG_TARGET, node, reason = p.reason, "Event written");
        published.map_err(|e| e.to_string())
    }

    /// The Events this controller wrote on Nodes, for a new leader to tell what is owed.
    async fn written(&self) -> Result<Vec<NodeEvent>, String> {
        // Node events live in `default` (a Node has no namespace), as the recorder writes them.
        let api = Api::<NodeEvent>::namespaced(self.cluster.client.clone(), "default");
        let params = ListParams::default().fields(&format!("reportingController={CONTROLLER}"));
        let listed = crate::cluster::list_paged(&api, &params).await;
        listed.map_err(|e| e.to_string())
    }

    /// enable's plan for `classes` and a cluster of `tier` nodes, applied and recorded; then
    /// the parent as the apply left it.
    async fn apply(
        &self,
        config: &Config,
        classes: NodeClasses,
        tier: u32,
        change: &str,
    ) -> Result<Applied, String> {
        let started = Instant::now();
        let applied = async {
            let (plan, state) = plan(&self.cluster, config, Some(classes), Some(tier)).await?;
            execute(&self.cluster, &plan, &state, change, started).await?;
            anyhow::Ok(Desired::of(&plan))
        };
        let desired = applied.await.map_err(|e| format!("{e:#}"))?;
        let parent = installed(&self.cluster).await.ok().flatten();
        Ok(Applied {
            desired,
            parent_version: parent.map(|(parent, _)| parent.metadata.resource_version),
        })
    }
}

/// A line of the machine's, as the loop's own (the same target as the rest of its log).
fn say(line: &Line) {
    let text = &line.text;
    match (line.level, line.label) {
        (Level::Info, Some(label)) => info!(target: LOG_TARGET, label, "{text}"),
        (Level::Info, None) => info!(target: LOG_TARGET, "{text}"),
        (Level::Warn, Some(label)) => warn!(target: LOG_TARGET, label, "{text}"),
        (Level::Warn, None) => warn!(target: LOG_TARGET, "{text}"),
    }
}

fn record(m: &Metrics, metric: Metric) {
    match metric {
        Metric::Leader(leader) => {
            m.leader.set(i64::from(leader));
        }
        Metric::WatchRestart(what) => {
            m.watch_restarts
                .get_or_create(&Metrics::label("resource", what))
                .inc();
        }
        Metric::ApiError(request) => {
            m.api_errors
                .get_or_create(&Metrics::label("request", request))
                .inc();
        }
        Metric::Event(reason) => {
            m.events
                .get_or_create(&Metrics::label("reason", reason))
                .inc();
        }
        Metric::Repair(kind) => {
            m.repairs
                .get_or_create(&Metrics::label("kind", &kind))
                .inc();
        }
        Metric::VerdictLatency(secs) => m.verdict_latency.observe(secs),
        Metric::Nodes(counts) => {
            for (state, n) in [
                ("monitored", counts.monitored),
                ("not_monitored", counts.not_monitored),
                ("excluded", counts.excluded),
            ] {
                m.nodes
                    .get_or_create(&Metrics::label("state", state))
                    .set(n);
            }
            m.not_monitored.clear();
            for (cause, n) in counts.by_cause {
                m.not_monitored
                    .get_or_create(&Metrics::label("cause", &cause))
                    .set(n);
            }
        }
        Metric::Ready => m.set_ready(),
    }
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
