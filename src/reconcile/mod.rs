//! `reconcile`: keep "every node is monitored" true. Watches (kube-runtime watchers feeding
//! reflector stores, with its backoff) the Nodes in a slim type, the exporter pods and
//! DaemonSets, the DaemonSet controller's refusals, the ApplySet parent and every managed object
//! (metadata only). The verdict on each node is the one assessment `status` prints; the tracker
//! adds time and says which Event is due. Only the holder of the Lease writes: Events on Nodes
//! (events.k8s.io, through one kube-runtime Recorder that folds repeats into a series) and
//! repairs (the objects of enable's own plan, re-applied through the one apply engine).
//! Steady state writes nothing: a Node's status or a kubelet's lease moving only re-runs the
//! assessment in memory.

pub mod drift;
pub mod logging;
pub mod metrics;
pub mod tracker;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::SocketAddr,
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
    },
    jiff::Timestamp,
};
use kube::{
    Api,
    api::{DynamicObject, PartialObjectMeta},
    runtime::{
        WatchStreamExt as _,
        events::{Event as KubeEvent, EventType, Recorder, Reporter},
        reflector::{self, Store},
        watcher::{self, Event},
    },
};
use kube_lease_manager::{LeaseCreateMode, LeaseManagerBuilder};
use tracing::{info, warn};

use crate::model::{self, names::LEASE_NAME};
use crate::{
    cluster::{
        Cluster,
        apply::{self, ApplyOptions, FIELD_MANAGER, Key},
        error::exit,
    },
    config::Config,
    model::{
        Object,
        names::{APPLYSET_PART_OF_LABEL, CONFIG_KEY, PARENT_NAME, PART_OF, PART_OF_LABEL},
        resources::{self, Known, Scope, display_name},
        slim::{SlimNode, SlimPod},
    },
    plan::Plan,
    preflight::{self, Permission},
    render,
    status::{self, Coverage, NODE_EXPORTER, NodeStatus},
};
use metrics::Metrics;
use tracker::{Due, Observed, Tracker};

/// Who publishes the Events (`reportingController`) and manages the Lease.
pub const CONTROLLER: &str = "kubectl-automon";
/// A burst of changes to managed objects is repaired once, this long after it started.
const REPAIR_DEBOUNCE: Duration = Duration::from_millis(500);
/// Changes arriving together are assessed together.
const ASSESS_DEBOUNCE: Duration = Duration::from_millis(50);
/// An object repaired this many times within [`FIGHT_WINDOW`] is left alone after: something
/// keeps changing it back, and fighting it forever helps no one.
const FIGHT_LIMIT: usize = 5;
const FIGHT_WINDOW: Duration = Duration::from_secs(300);

/// How the command runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Watch until SIGINT/SIGTERM; else one pass.
    pub looping: bool,
    pub exporter_deadline: Duration,
    /// How long the exporters of a class of node stay after its last node left.
    pub class_grace: Duration,
    pub repair: bool,
    pub metrics_addr: Option<SocketAddr>,
    pub summary_interval: Duration,
    pub lease_duration: Duration,
    /// This loop's name in the Lease and on its Events.
    pub identity: String,
}

/// `host-pid`: where a loop runs, as the Lease and `status` show it.
pub fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{host}-{}", std::process::id())
}

/// What the loop needs to be allowed, checked before it starts: the reads of its watches and
/// of enable's plan; for the leader's writes, Events and the Lease; and unless `--no-repair`,
/// what `enable` needs for the objects it may re-apply.
pub fn permissions(
    namespace: &str,
    exporter_namespace: &str,
    members: &[&'static Known],
    rendered: &[Object],
    repair: bool,
) -> BTreeSet<Permission> {
    let mut wanted: BTreeSet<Permission> = preflight::required_permissions(rendered, namespace)
        .into_iter()
        // A repair re-applies; it never deletes (that is enable's prune).
        .filter(|p| p.verb != "delete")
        .filter(|p| repair || ["get", "list", "watch"].contains(&p.verb.as_str()))
        .collect();
    let mut read = |group: &str, resource: &str, ns: Option<&str>| {
        for verb in ["list", "watch"] {
            wanted.insert(Permission::new(verb, group, resource, ns));
        }
    };
    read("", "nodes", None);
    read("", "configmaps", Some(namespace));
    read("", "pods", Some(exporter_namespace));
    read("apps", "daemonsets", Some(exporter_namespace));
    read("", "events", Some(exporter_namespace));
    for k in members {
        let ns = (k.scope == Scope::Namespaced).then_some(namespace);
        read(k.group(), k.plural, ns);
    }
    wanted.insert(Permission::new("get", "", "namespaces", None));
    // Node events land in `default` (Nodes have no namespace); a loop taking over reads which
    // the last leader wrote.
    for verb in ["create", "patch", "list"] {
        wanted.insert(Permission::new(
            verb,
            "events.k8s.io",
            "events",
            Some("default"),
        ));
    }
    for verb in ["get", "create", "patch"] {
        wanted.insert(Permission::new(
            verb,
            "coordination.k8s.io",
            "leases",
            Some(namespace),
        ));
    }
    wanted
}

/// The member types the parent lists (`applyset.kubernetes.io/contains-group-kinds`), CRDs
/// aside (shared, never repaired by the loop).
fn kinds_of(parent: &ConfigMap) -> Vec<&'static Known> {
    let mut kinds: Vec<&'static Known> = Vec::new();
    for gk in crate::cluster::inventory::group_kinds(&parent.metadata) {
        if let Some(k) = resources::by_group_kind(&gk)
            && !kinds.contains(&k)
            && k.kind != "CustomResourceDefinition"
        {
            kinds.push(k);
        }
    }
    kinds
}

/// Where the exporter whose pods cover the nodes lives: automon's own, or another stack's.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ExporterSource {
    namespace: String,
    name: String,
    borrowed: bool,
}

impl ExporterSource {
    fn of(parent: &ConfigMap, namespace: &str) -> Self {
        match status::exporter_from(parent)
            .as_deref()
            .and_then(|f| f.split_once('/'))
        {
            Some((ns, name)) => ExporterSource {
                namespace: ns.to_string(),
                name: name.to_string(),
                borrowed: true,
            },
            None => ExporterSource {
                namespace: namespace.to_string(),
                name: NODE_EXPORTER.to_string(),
                borrowed: false,
            },
        }
    }
}

/// Reads the parent and the stored configuration: `Ok(None)` when automon is not installed.
async fn installed(cluster: &Cluster) -> anyhow::Result<Option<(ConfigMap, Config)>> {
    let parent = crate::cluster::inventory::parent_configmap(&cluster.client, &cluster.namespace)
        .await
        .map_err(|e| cluster.target.classify(e))?;
    let Some(parent) = parent else {
        return Ok(None);
    };
    let config = crate::cluster::inventory::stored_config(&parent)?;
    Ok(Some((parent, config)))
}

/// Runs the command: one pass, or the loop. The exit code as docs/commands.md documents it.
pub async fn run(cluster: Cluster, options: Options) -> anyhow::Result<u8> {
    let started = Instant::now();
    let ns = cluster.namespace.clone();
    let Some((parent, config)) = installed(&cluster).await? else {
        crate::output::diag!("automon is not installed in namespace {ns}.");
        crate::output::diag!(
            "Install it with: kubectl automon enable -n {ns} (see `kubectl automon preflight` first)"
        );
        return Ok(exit::NOT_INSTALLED);
    };
    let version = cluster
        .client
        .apiserver_version()
        .await
        .map_err(|e| cluster.target.classify(e))?;
    info!(
        label = "Cluster",
        "{} ({}, {}) · stack {ns}",
        cluster.context.as_deref().unwrap_or("in-cluster"),
        cluster.target.server,
        version.git_version
    );
    // Every permission first, from what is stored (the parent names the member kinds; the
    // configuration renders offline): a missing one is said before anything is read or written.
    let source = ExporterSource::of(&parent, &ns);
    let members = kinds_of(&parent);
    let rendered = render::render(&config).objects;
    let wanted = permissions(&ns, &source.namespace, &members, &rendered, options.repair);
    let missing = preflight::denied(&cluster, wanted).await?;
    if !missing.is_empty() {
        return Err(Denied {
            missing,
            repair: options.repair,
        }
        .into());
    }
    // What should exist: enable's own plan for the stored configuration.
    let (plan, state) = crate::pipeline::desired(&cluster, &config, None, None)
        .await
        .context("working out what enable would apply")?;
    // What the stack in the cluster is sized for (its Prometheus says): when the cluster has
    // outgrown it since, the loop that leads resizes it like any other change of size.
    let deployed_tier = deployed_tier(&cluster, &plan).await;
    let pods_selector = match &source {
        ExporterSource { borrowed: true, .. } => {
            let api = Api::<DaemonSet>::namespaced(cluster.client.clone(), &source.namespace);
            match api
                .get_opt(&source.name)
                .await
                .map_err(|e| cluster.target.classify(e))?
            {
                Some(ds) => ds
                    .spec
                    .as_ref()
                    .map(|s| crate::model::selector::to_query(&s.selector))
                    .unwrap_or_default(),
                None => {
                    warn!(
                        "the exporter this stack scrapes, DaemonSet {}/{}, is gone; `kubectl automon enable` deploys automon's own",
                        source.namespace, source.name
                    );
                    format!("{PART_OF_LABEL}={PART_OF}")
                }
            }
        }
        _ => format!("{PART_OF_LABEL}={PART_OF}"),
    };
    let metrics = Metrics::new();
    if let Some(addr) = options.metrics_addr {
        let (bound, _task) = metrics::serve(addr, metrics.clone())
            .await
            .with_context(|| format!("cannot serve metrics on {addr}"))?;
        info!(
            label = "Metrics",
            "http://{bound}/metrics (and /healthz, /readyz)"
        );
    }
    let mut engine = Engine {
        cluster: cluster.clone(),
        options: options.clone(),
        config_text: config_text(&parent),
        config,
        parent_version: parent.metadata.resource_version.clone(),
        pods_selector,
        source,
        desired: Desired::of(&plan),
        classes: state.classes,
        class_change: None,
        tier: deployed_tier.unwrap_or(crate::config::sizing::tier(state.nodes)),
        size_change: None,
        members,
        tracker: Tracker::new(options.exporter_deadline),
        recorder: Recorder::new(
            cluster.client.clone(),
            Reporter {
                controller: CONTROLLER.into(),
                instance: Some(options.identity.clone()),
            },
        ),
        metrics: metrics.clone(),
        leader: false,
        pending: BTreeMap::new(),
        repaired: HashMap::new(),
        last: Vec::new(),
        api_errors: 0,
        retry: None,
        drift_left: Vec::new(),
        owed: BTreeMap::new(),
    };
    // What planning read (the cluster's objects, the rendered stack) is not kept while the loop
    // runs: a local of this function would otherwise live as long as the loop.
    drop((plan, state, rendered, parent));
    engine.run(started).await
}

/// enable's plan, by object, held as compact JSON text: parsed, a stack with its dashboards is
/// ~8 MB of `serde_json` values the loop reads only when an object drifts.
#[derive(Default)]
struct Desired {
    objects: HashMap<Key, Box<str>>,
    /// The ApplySet's id, from the members' part-of label.
    applyset_id: Option<String>,
}

impl Desired {
    fn of(plan: &Plan) -> Self {
        let members = plan
            .members
            .iter()
            .filter(|o| model::kind(o) != "CustomResourceDefinition");
        Desired {
            applyset_id: members.clone().find_map(|o| {
                o.metadata
                    .labels
                    .as_ref()?
                    .get(APPLYSET_PART_OF_LABEL)
                    .cloned()
            }),
            objects: members
                .map(|o| {
                    let text = serde_json::to_string(o).expect("a rendered object serialises");
                    (apply::key(o), text.into_boxed_str())
                })
                .collect(),
        }
    }

    fn contains_key(&self, key: &Key) -> bool {
        self.objects.contains_key(key)
    }

    fn keys(&self) -> impl Iterator<Item = &Key> {
        self.objects.keys()
    }

    /// The object as enable would apply it.
    fn object(&self, key: &Key) -> Option<Object> {
        let text = self.objects.get(key)?;
        Some(serde_json::from_str(text).expect("written by Desired::of"))
    }

    /// The same, as JSON, for the field comparison.
    fn value(&self, key: &Key) -> Option<serde_json::Value> {
        let text = self.objects.get(key)?;
        Some(serde_json::from_str(text).expect("written by Desired::of"))
    }
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

/// One thing the watches said.
enum Msg {
    /// A store changed (nodes, pods, DaemonSets, refusals).
    Changed,
    /// A watch finished its (re)list.
    Synced(&'static str),
    /// The ApplySet parent changed (the configuration) or went away.
    Parent(Option<ConfigMap>),
    /// A managed object changed, was deleted, or a member list finished.
    Member(Known, MemberEvent),
    /// A watch failed; it starts again after a backoff.
    Failed(&'static str, watcher::Error),
}

enum MemberEvent {
    Applied(PartialObjectMeta<DynamicObject>),
    Deleted(PartialObjectMeta<DynamicObject>),
    /// Listed again: every object present, to compare with the plan.
    Listed(Vec<PartialObjectMeta<DynamicObject>>),
}

type Msgs = Pin<Box<dyn Stream<Item = Msg> + Send>>;

/// The Node type the loop holds: the slim one; or, for bench/reconcile-loop's baseline, the full
/// one, managedFields and all.
#[cfg(not(feature = "bench-full-nodes"))]
type HeldNode = SlimNode;
#[cfg(feature = "bench-full-nodes")]
type HeldNode = k8s_openapi::api::core::v1::Node;

/// A reflected watch: its store, and its events as messages. An update that leaves the object
/// as held (a kubelet's heartbeat, which the slim Node does not keep) is neither stored nor
/// judged: at 5,000 nodes those arrive several times a second.
fn reflected<K>(name: &'static str, api: Api<K>, config: watcher::Config) -> (Store<K>, Msgs)
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
            Ok(Event::InitDone) => Some(Msg::Synced(name)),
            Ok(Event::Init | Event::InitApply(_)) => None,
            Ok(Event::Apply(_) | Event::Delete(_)) => Some(Msg::Changed),
            Err(e) => Some(Msg::Failed(name, e)),
        }
    })
    .boxed();
    (reader, stream)
}

struct Stores {
    nodes: Store<HeldNode>,
    pods: Store<SlimPod>,
    daemonsets: Store<DaemonSet>,
    refusals: Store<CoreEvent>,
}

struct Engine {
    cluster: Cluster,
    options: Options,
    config: Config,
    /// The stored configuration as text, to tell an enable that changed it apart.
    config_text: Option<String>,
    /// Which pods are the exporter's (its DaemonSet's selector).
    pods_selector: String,
    /// The parent's resourceVersion the plan was made from.
    parent_version: Option<String>,
    source: ExporterSource,
    /// enable's plan, by object.
    desired: Desired,
    members: Vec<&'static Known>,
    /// The node classes the plan was made for.
    classes: render::NodeClasses,
    /// When the stack should follow the classes the nodes have now (at once for a new class,
    /// after the grace period for one whose last node left), and to which.
    class_change: Option<(tokio::time::Instant, render::NodeClasses)>,
    /// The node count tier the plan is sized for (`sizing::tier`).
    tier: u32,
    /// When the stack should be sized for another tier (soon after the cluster grows past its
    /// tier; after the grace period once it has shrunk well below it), and which.
    size_change: Option<(tokio::time::Instant, u32)>,
    tracker: Tracker,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    leader: bool,
    /// Drifted objects waiting for the debounce: why, and since when.
    pending: BTreeMap<Key, (String, Instant)>,
    /// When each object was repaired, to stop fighting another writer.
    repaired: HashMap<Key, Vec<Instant>>,
    /// The latest assessment.
    last: Vec<NodeStatus>,
    api_errors: u64,
    /// After an Event could not be written: when to try again, and the wait that led there.
    retry: Option<(tokio::time::Instant, Duration)>,
    /// Drift seen but not repaired (`--no-repair`, not the leader), for the one pass' verdict.
    drift_left: Vec<String>,
    /// Events this loop saw due while another led, by node (with the node's uid and when): on
    /// taking over, those the leader did not write (it may have died first) are due again.
    owed: BTreeMap<String, (Due, String, Timestamp)>,
}

impl Engine {
    fn watches(&self) -> (Stores, Vec<Msgs>) {
        let client = &self.cluster.client;
        let ns = &self.cluster.namespace;
        let src = &self.source;
        let exporter_pods = watcher::Config::default().labels(&self.pods_selector);
        let (nodes, n) = reflected("nodes", Api::<HeldNode>::all(client.clone()), {
            watcher::Config::default()
        });
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
            Api::<ConfigMap>::namespaced(client.clone(), ns),
            watcher::Config::default().fields(&format!("metadata.name={PARENT_NAME}")),
        )
        .backoff(backoff())
        .filter_map(|e| async move {
            match e {
                Ok(Event::Apply(cm) | Event::InitApply(cm)) => Some(Msg::Parent(Some(cm))),
                Ok(Event::Delete(_)) => Some(Msg::Parent(None)),
                Ok(Event::InitDone) => Some(Msg::Synced("parent")),
                Ok(Event::Init) => None,
                Err(e) => Some(Msg::Failed("parent", e)),
            }
        })
        .boxed();
        let mut streams = vec![n, p, d, r, parent];
        let id = self.desired.applyset_id.clone().unwrap_or_default();
        for k in &self.members {
            let known = **k;
            let ar = known.api_resource();
            let api: Api<PartialObjectMeta<DynamicObject>> = match known.scope {
                Scope::Namespaced => Api::namespaced_with(client.clone(), ns, &ar),
                Scope::Cluster => Api::all_with(client.clone(), &ar),
            };
            let selection =
                watcher::Config::default().labels(&format!("{APPLYSET_PART_OF_LABEL}={id}"));
            let mut listing: Vec<PartialObjectMeta<DynamicObject>> = Vec::new();
            let s = watcher::watcher(api, selection)
                .backoff(backoff())
                .filter_map(move |e| {
                    let msg = match e {
                        Ok(Event::Init) => {
                            listing.clear();
                            None
                        }
                        Ok(Event::InitApply(o)) => {
                            listing.push(o);
                            None
                        }
                        Ok(Event::InitDone) => Some(Msg::Member(
                            known,
                            MemberEvent::Listed(std::mem::take(&mut listing)),
                        )),
                        Ok(Event::Apply(o)) => Some(Msg::Member(known, MemberEvent::Applied(o))),
                        Ok(Event::Delete(o)) => Some(Msg::Member(known, MemberEvent::Deleted(o))),
                        Err(e) => Some(Msg::Failed("managed objects", e)),
                    };
                    async move { msg }
                })
                .boxed();
            streams.push(s);
        }
        (
            Stores {
                nodes,
                pods,
                daemonsets,
                refusals,
            },
            streams,
        )
    }

    async fn run(&mut self, started: Instant) -> anyhow::Result<u8> {
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
        let (mut leading, lease_task, pass_lease) = if self.options.looping {
            let (rx, task) = lease.watch().await;
            (Some(rx), Some(task), None)
        } else {
            // One pass leads only when no loop does; it never waits for one.
            let free = held_by.is_none();
            if free
                && let Ok(Ok(true)) =
                    tokio::time::timeout(Duration::from_secs(5), lease.changed()).await
            {
                self.leader = true;
            }
            (None, None, Some(lease))
        };
        match (&held_by, self.options.looping) {
            (Some((who, ago)), true) => info!(
                label = "Lease",
                "{}/{LEASE_NAME} held by {who} (renewed {ago}s ago); waiting",
                self.cluster.namespace
            ),
            (Some((who, _)), false) => info!(
                label = "Lease",
                "{}/{LEASE_NAME} held by {who}: a loop is running; this pass only reports",
                self.cluster.namespace
            ),
            _ => {}
        }

        let (stores, streams) = self.watches();
        let mut events = stream::select_all(streams);
        let mut synced: BTreeSet<&'static str> = BTreeSet::new();
        let mut members_listed = 0usize;
        let mut first_sync: Option<Instant> = None;
        let mut assess_at: Option<tokio::time::Instant> = None;
        let mut summary = tokio::time::interval(self.options.summary_interval);
        summary.tick().await;
        let mut lease_since = Instant::now();
        let mut outage = Outage::default();
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        let far = || tokio::time::Instant::now() + Duration::from_secs(3600);
        let code = loop {
            let repair_at = self
                .pending
                .values()
                .map(|(_, at)| tokio::time::Instant::from_std(*at + REPAIR_DEBOUNCE))
                .min();
            let deadline_at = first_sync.and(self.tracker.next_deadline()).map(|t| {
                let wait = t.duration_since(Timestamp::now());
                let wait: Duration = wait.try_into().unwrap_or(Duration::ZERO);
                tokio::time::Instant::now() + wait
            });
            // A failed write is tried again (by judging again) at its time, never before.
            let deadline_at = match (deadline_at, self.retry) {
                (Some(d), Some((r, _))) => Some(d.max(r)),
                (None, Some((r, _))) => Some(r),
                (d, None) => d,
            };
            tokio::select! {
                biased;
                _ = &mut shutdown => break 0,
                changed = async {
                    match leading.as_mut() {
                        Some(rx) => rx.changed().await.map(|_| *rx.borrow()),
                        None => std::future::pending().await,
                    }
                } => {
                    match changed {
                        Ok(now_leader) => {
                            self.leader = now_leader;
                            self.metrics.leader.set(i64::from(now_leader));
                            if now_leader {
                                lease_since = Instant::now();
                                info!(label = "Lease", "{}/{LEASE_NAME} acquired (this loop: {})", self.cluster.namespace, self.options.identity);
                                if self.replay_owed().await {
                                    assess_at = Some(tokio::time::Instant::now());
                                }
                            } else {
                                warn!("lost the Lease {}/{LEASE_NAME}; waiting to lead again", self.cluster.namespace);
                            }
                        }
                        Err(_) => {
                            leading = None;
                            warn!("the lease manager stopped; this loop no longer writes");
                            self.leader = false;
                        }
                    }
                }
                msg = events.next() => {
                    let Some(msg) = msg else { break exit::FAILURE };
                    match msg {
                        Msg::Changed if outage.since.is_some() => {
                            outage.over();
                            assess_at.get_or_insert_with(|| tokio::time::Instant::now() + ASSESS_DEBOUNCE);
                        }
                        Msg::Changed => {
                            assess_at.get_or_insert_with(|| tokio::time::Instant::now() + ASSESS_DEBOUNCE);
                        }
                        Msg::Synced(name) => {
                            outage.over();
                            synced.insert(name);
                            assess_at.get_or_insert_with(|| tokio::time::Instant::now() + ASSESS_DEBOUNCE);
                        }
                        Msg::Parent(Some(cm)) => {
                            if let Some(code) = self.parent_changed(cm).await? {
                                break code;
                            }
                        }
                        Msg::Parent(None) => {
                            warn!("the ApplySet parent {}/{PARENT_NAME} was deleted: automon was disabled here; stopping", self.cluster.namespace);
                            break exit::NOT_INSTALLED;
                        }
                        Msg::Member(known, e) => {
                            if let MemberEvent::Listed(_) = &e {
                                members_listed += 1;
                                if members_listed == self.members.len() {
                                    synced.insert("managed objects");
                                    assess_at.get_or_insert_with(|| tokio::time::Instant::now() + ASSESS_DEBOUNCE);
                                }
                            }
                            self.member_event(&known, e);
                        }
                        Msg::Failed(what, e) => {
                            self.api_errors += 1;
                            self.metrics.watch_restarts.get_or_create(&Metrics::label("resource", what)).inc();
                            self.metrics.api_errors.get_or_create(&Metrics::label("request", "watch")).inc();
                            outage.failed(what, &e);
                        }
                    }
                }
                _ = tokio::time::sleep_until(assess_at.unwrap_or_else(far)), if assess_at.is_some() => {
                    assess_at = None;
                    let all_synced = REQUIRED_SYNCS.iter().all(|w| synced.contains(w))
                        && (self.members.is_empty() || synced.contains("managed objects"));
                    if !all_synced {
                        continue;
                    }
                    let first = first_sync.is_none();
                    self.assess(&stores).await;
                    if first {
                        first_sync = Some(Instant::now());
                        self.metrics.set_ready();
                        self.synced_line(&stores, started);
                        if !self.options.looping {
                            // Drift found by the listing is repaired now, not after a debounce.
                            self.repair(true).await;
                            break self.verdict();
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline_at.unwrap_or_else(far)), if deadline_at.is_some() => {
                    self.assess(&stores).await;
                }
                _ = tokio::time::sleep_until(repair_at.unwrap_or_else(far)), if repair_at.is_some() => {
                    self.repair(false).await;
                }
                _ = tokio::time::sleep_until(self.class_change.map_or_else(far, |(at, _)| at)), if self.class_change.is_some() => {
                    if let Some((_, to)) = self.class_change {
                        self.apply_classes(to).await;
                    }
                }
                _ = tokio::time::sleep_until(self.size_change.map_or_else(far, |(at, _)| at)), if self.size_change.is_some() => {
                    if let Some((_, to)) = self.size_change {
                        self.apply_size(to).await;
                    }
                }
                _ = summary.tick(), if self.options.looping => {
                    self.summary_line();
                }
            }
        };
        // Stop: drop the watches, give the Lease back (the lease task releases it when its
        // channel closes), within a bound so that SIGTERM ends the process promptly.
        drop(events);
        drop(leading);
        if let Some(task) = lease_task {
            let _ = tokio::time::timeout(Duration::from_millis(1500), task).await;
            if self.options.looping {
                info!(
                    label = "Stopped",
                    "Lease released after {}.",
                    crate::output::age(lease_since.elapsed().as_secs() as i64)
                );
            }
        } else if let Some(lease) = pass_lease.filter(|_| self.leader) {
            let _ = tokio::time::timeout(Duration::from_millis(1500), lease.release()).await;
        }
        Ok(code)
    }

    /// Who holds the Lease, when another live loop does: (identity, seconds since renewal).
    async fn holder(&self) -> Option<(String, i64)> {
        let api = Api::<Lease>::namespaced(self.cluster.client.clone(), &self.cluster.namespace);
        let lease = api.get_opt(LEASE_NAME).await.ok()??;
        let spec = lease.spec?;
        let who = spec.holder_identity.filter(|h| !h.is_empty())?;
        if who == self.options.identity {
            return None;
        }
        let renewed = spec.renew_time?.0;
        let ago = Timestamp::now().as_second() - renewed.as_second();
        let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
        (ago <= duration).then_some((who, ago))
    }

    /// The configuration may have changed: make the plan again (what should exist), and
    /// restart when the exporter the nodes rely on moved. `Some(code)` ends the loop.
    async fn parent_changed(&mut self, parent: ConfigMap) -> anyhow::Result<Option<u8>> {
        if parent.metadata.resource_version == self.parent_version {
            return Ok(None);
        }
        let config = match crate::cluster::inventory::stored_config(&parent) {
            Ok(c) => c,
            Err(e) => {
                warn!("the stored configuration cannot be read ({e}); keeping the previous one");
                return Ok(None);
            }
        };
        let text = config_text(&parent);
        let changed_config = text != self.config_text;
        self.config_text = text;
        self.parent_version = parent.metadata.resource_version.clone();
        let source = ExporterSource::of(&parent, &self.cluster.namespace);
        // As enable sized it: for the cluster as it is now.
        match crate::pipeline::desired(&self.cluster, &config, Some(self.classes), None).await {
            Ok((plan, state)) => {
                self.desired = Desired::of(&plan);
                self.tier = crate::config::sizing::tier(state.nodes);
                self.config = config;
                // Whatever was pending is judged again against the new plan.
                self.pending.retain(|k, _| self.desired.contains_key(k));
                if changed_config {
                    info!("the stored configuration changed (an enable ran): following it");
                }
            }
            Err(e) => warn!("cannot work out the new plan ({e:#}); keeping the previous one"),
        }
        if source != self.source {
            warn!(
                "the node exporter is now {}/{} (was {}/{}); start the loop again to follow it",
                source.namespace, source.name, self.source.namespace, self.source.name
            );
        }
        Ok(None)
    }

    fn member_event(&mut self, known: &Known, e: MemberEvent) {
        let key_of = |m: &PartialObjectMeta<DynamicObject>| -> Key {
            let gk = match known.group() {
                "" => known.kind.to_string(),
                g => format!("{}.{g}", known.kind),
            };
            (
                gk,
                m.metadata.namespace.clone().unwrap_or_default(),
                m.metadata.name.clone().unwrap_or_default(),
            )
        };
        match e {
            MemberEvent::Applied(m) => {
                let key = key_of(&m);
                self.check_fields(&key, &m);
            }
            MemberEvent::Deleted(m) => {
                let key = key_of(&m);
                if self.desired.contains_key(&key) {
                    self.drifted(key, "deleted".into());
                }
            }
            MemberEvent::Listed(items) => {
                let present: BTreeSet<Key> = items.iter().map(key_of).collect();
                let kind = known.kind;
                let missing: Vec<Key> = self
                    .desired
                    .keys()
                    .filter(|k| {
                        resources::by_group_kind(&k.0).is_some_and(|x| x.kind == kind)
                            && !present.contains(*k)
                    })
                    .cloned()
                    .collect();
                for key in missing {
                    self.drifted(key, "missing".into());
                }
                for m in &items {
                    let key = key_of(m);
                    self.check_fields(&key, m);
                }
            }
        }
    }

    fn check_fields(&mut self, key: &Key, m: &PartialObjectMeta<DynamicObject>) {
        let Some(desired) = self.desired.value(key) else {
            return;
        };
        let managed = m.metadata.managed_fields.as_deref().unwrap_or_default();
        let taken = drift::taken(&desired, managed, FIELD_MANAGER);
        if taken.is_empty() {
            return;
        }
        let mut by: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for t in &taken {
            by.entry(&t.manager).or_default().push(&t.field);
        }
        let why: Vec<String> = by
            .iter()
            .map(|(m, fields)| format!("changed by {m} ({})", fields.join(", ")))
            .collect();
        self.drifted(key.clone(), why.join("; "));
    }

    fn drifted(&mut self, key: Key, why: String) {
        self.pending
            .entry(key)
            .and_modify(|(w, _)| *w = why.clone())
            .or_insert((why, Instant::now()));
    }

    /// Re-applies what drifted, once per object and burst, when leading and allowed.
    async fn repair(&mut self, now: bool) {
        let due: Vec<Key> = self
            .pending
            .iter()
            .filter(|(_, (_, at))| now || at.elapsed() >= REPAIR_DEBOUNCE)
            .map(|(k, _)| k.clone())
            .collect();
        if due.is_empty() {
            return;
        }
        // An enable may be running: if the configuration moved since the plan, follow it first.
        if let Ok(Some((parent, _))) = installed(&self.cluster).await
            && parent.metadata.resource_version != self.parent_version
            && let Err(e) = self.parent_changed(parent).await
        {
            warn!("cannot re-read the configuration: {e:#}");
        }
        for key in due {
            let Some((why, _)) = self.pending.remove(&key) else {
                continue;
            };
            let Some(object) = self.desired.object(&key) else {
                continue;
            };
            let name = display_name(&object);
            if !self.options.repair || !self.leader {
                let not = if self.options.repair {
                    "not repaired: another loop leads"
                } else {
                    "not repaired (--no-repair)"
                };
                warn!("{name} {why} · {not}");
                self.drift_left.push(name);
                continue;
            }
            let times = self.repaired.entry(key.clone()).or_default();
            times.retain(|t| t.elapsed() < FIGHT_WINDOW);
            if times.len() >= FIGHT_LIMIT {
                if times.len() == FIGHT_LIMIT {
                    warn!(
                        "{name} {why}: repaired {FIGHT_LIMIT} times in {}m and changed back each time; leaving it alone (something else manages it)",
                        FIGHT_WINDOW.as_secs() / 60
                    );
                    times.push(Instant::now());
                }
                continue;
            }
            times.push(Instant::now());
            let options = ApplyOptions {
                dry_run: false,
                force: true,
            };
            match apply::server_side_apply(&self.cluster, &object, options).await {
                Ok(_) => {
                    self.metrics
                        .repairs
                        .get_or_create(&Metrics::label("kind", model::kind(&object)))
                        .inc();
                    info!("{name} {why} · restored");
                }
                Err(e) => {
                    self.api_errors += 1;
                    self.metrics
                        .api_errors
                        .get_or_create(&Metrics::label("request", "repair"))
                        .inc();
                    warn!("{name} {why} · could not restore it: {e}");
                    // Tried again on the next change, or the next burst.
                }
            }
        }
    }

    async fn assess(&mut self, stores: &Stores) {
        #[cfg(not(feature = "bench-full-nodes"))]
        let nodes = stores.nodes.state();
        #[cfg(feature = "bench-full-nodes")]
        let nodes: Vec<Arc<SlimNode>> = stores
            .nodes
            .state()
            .iter()
            .map(|n| Arc::new(SlimNode::from(n.as_ref())))
            .collect();
        let pods = stores.pods.state();
        let daemonsets = stores.daemonsets.state();
        let refusals = stores.refusals.state();
        let daemonset = daemonsets
            .iter()
            .find(|d| d.metadata.name.as_deref() == Some(self.source.name.as_str()))
            .map(AsRef::as_ref);
        let (failed_create, failed_create_at) =
            status::newest_refusal(refusals.iter().map(AsRef::as_ref));
        let now = Timestamp::now();
        let assessed = status::nodes::assess(&status::nodes::Inputs {
            nodes: nodes.iter().map(AsRef::as_ref).collect(),
            daemonset,
            windows: daemonsets
                .iter()
                .find(|d| d.metadata.name.as_deref() == Some(render::classes::WINDOWS_EXPORTER))
                .map(AsRef::as_ref),
            pods: pods.iter().map(AsRef::as_ref).collect(),
            failed_create,
            failed_create_at,
            exclude_label: &self.config.node_exporter.exclude_label,
            targets: None,
            now: now.as_millisecond() as f64 / 1000.0,
        });
        let by_name: HashMap<&str, &SlimNode> =
            nodes.iter().map(|n| (n.name(), n.as_ref())).collect();
        let due = self.tracker.observe(
            assessed.iter().map(|s| {
                let node = by_name.get(s.name.as_str());
                Observed {
                    status: s,
                    uid: node
                        .and_then(|n| n.metadata.uid.as_deref())
                        .unwrap_or_default(),
                    created: node.and_then(|n| n.created()).map(|t| t.0),
                }
            }),
            now,
        );
        for (node, was) in self.tracker.departed() {
            let was = match was {
                Coverage::Monitored => "it was monitored",
                Coverage::Excluded => "it was excluded",
                Coverage::NotMonitored => "it had no working exporter",
            };
            info!("node {node} left · {was}; {} nodes now", nodes.len());
        }
        self.gauges(&assessed);
        self.follow_classes(render::NodeClasses::of_nodes(
            nodes.iter().map(AsRef::as_ref),
        ));
        self.follow_size(u32::try_from(nodes.len()).unwrap_or(u32::MAX));
        let pods_by_name: HashMap<&str, &SlimPod> = pods
            .iter()
            .filter_map(|p| Some((p.metadata.name.as_deref()?, p.as_ref())))
            .collect();
        for d in due {
            // After a failed write, nothing is written until the retry: each due Event stays
            // due (the tracker forgets it was said) and the retry judges the node again.
            let blocked = self
                .retry
                .is_some_and(|(at, _)| tokio::time::Instant::now() < at);
            let node = by_name.get(d.node()).copied();
            if blocked || !self.publish(&d, node, &pods_by_name, now).await {
                self.tracker.unsay(&d);
            }
        }
        self.last = assessed;
    }

    /// The classes of node the cluster has now: a new one is deployed for at once; one whose
    /// last node left is removed after `--class-grace` (a node replaced by another of its kind
    /// changes nothing).
    fn follow_classes(&mut self, now: render::NodeClasses) {
        let have = self.classes;
        let added = (now.windows && !have.windows) || (now.gpu && !have.gpu);
        let removed = (have.windows && !now.windows) || (have.gpu && !now.gpu);
        let soon = tokio::time::Instant::now();
        self.class_change = if added {
            // Keep what is leaving until its grace period is over.
            let keep = render::NodeClasses {
                windows: now.windows || have.windows,
                gpu: now.gpu || have.gpu,
            };
            Some((soon, keep))
        } else if removed {
            match self.class_change {
                Some((at, to)) if to == now => Some((at, to)),
                _ => {
                    info!(
                        "the last of the cluster's {} left; their exporters go in {}s unless one joins",
                        gone(have, now),
                        self.options.class_grace.as_secs()
                    );
                    Some((soon + self.options.class_grace, now))
                }
            }
        } else {
            None
        };
    }

    /// The size the cluster's node count asks for: a larger tier soon after the cluster grows
    /// past its own (nodes join in bursts: one apply for the burst); a smaller one only once the
    /// cluster is a fifth below the tier under it, and after `--class-grace`, so that a cluster
    /// hovering at a boundary does not resize Prometheus back and forth.
    fn follow_size(&mut self, nodes: u32) {
        let soon = tokio::time::Instant::now();
        self.size_change = match crate::config::sizing::next_tier(self.tier, nodes) {
            None => None,
            Some(want) => match self.size_change.filter(|(_, to)| *to == want) {
                Some(pending) => Some(pending),
                None if want > self.tier => Some((soon + SIZE_SETTLE, want)),
                None => {
                    info!(
                        "the cluster has {nodes} nodes: the stack is sized down to up to {want} in {}s unless it grows again",
                        self.options.class_grace.as_secs()
                    );
                    Some((soon + self.options.class_grace, want))
                }
            },
        };
    }

    /// Applies enable's plan for the classes `to`, through enable's own engine (its lines go to
    /// the log), and records a revision.
    async fn apply_classes(&mut self, to: render::NodeClasses) {
        self.class_change = None;
        if !self.leader {
            info!(
                "node classes changed ({}); the loop that leads follows them",
                to.describe()
            );
            self.classes = to;
            return;
        }
        let change = if (to.windows && !self.classes.windows) || (to.gpu && !self.classes.gpu) {
            format!("reconcile: {} joined", to.describe())
        } else {
            format!("reconcile: the last of the {} left", gone(self.classes, to))
        };
        if let Err(e) = self.apply(to, self.tier, change).await {
            self.api_errors += 1;
            warn!("could not follow the node classes: {e:#}; trying again on the next change");
        }
    }

    /// Applies enable's plan sized for `to` nodes (a tier), and records a revision.
    async fn apply_size(&mut self, to: u32) {
        self.size_change = None;
        if !self.leader {
            info!(
                "the cluster's size changed (sized for up to {to} nodes); the loop that leads follows it"
            );
            self.tier = to;
            return;
        }
        let change = format!("reconcile: sized for up to {to} nodes (was {})", self.tier);
        if let Err(e) = self.apply(self.classes, to, change).await {
            self.api_errors += 1;
            warn!("could not resize the stack: {e:#}; trying again on the next change");
        }
    }

    /// enable's plan for `classes` and a cluster of `tier` nodes, applied through enable's own
    /// engine (its lines go to the log), recorded as a revision saying `change`.
    async fn apply(
        &mut self,
        classes: render::NodeClasses,
        tier: u32,
        change: String,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        info!("{change}: applying enable's plan");
        let (plan, state) =
            crate::pipeline::desired(&self.cluster, &self.config, Some(classes), Some(tier))
                .await?;
        let options = crate::pipeline::Options::apply(Duration::from_secs(300));
        let executed =
            crate::pipeline::execute(&self.cluster, &plan, &state, &options, started).await?;
        executed
            .finish(
                &self.cluster,
                &options,
                &change,
                crate::cluster::revision::DEFAULT_MAX,
                started,
            )
            .await?;
        self.desired = Desired::of(&plan);
        self.classes = classes;
        self.tier = tier;
        // The parent moved under this loop's own hand.
        if let Ok(Some((parent, _))) = installed(&self.cluster).await {
            self.parent_version = parent.metadata.resource_version;
        }
        Ok(())
    }

    fn gauges(&self, assessed: &[NodeStatus]) {
        let m = &self.metrics;
        for (state, c) in [
            ("monitored", Coverage::Monitored),
            ("not_monitored", Coverage::NotMonitored),
            ("excluded", Coverage::Excluded),
        ] {
            let n = assessed.iter().filter(|s| s.coverage == c).count();
            m.nodes
                .get_or_create(&Metrics::label("state", state))
                .set(n as i64);
        }
        m.not_monitored.clear();
        let mut by_cause: BTreeMap<String, i64> = BTreeMap::new();
        for s in assessed
            .iter()
            .filter(|s| s.coverage == Coverage::NotMonitored)
        {
            *by_cause.entry(cause_name(s)).or_default() += 1;
        }
        for (cause, n) in by_cause {
            m.not_monitored
                .get_or_create(&Metrics::label("cause", &cause))
                .set(n);
        }
    }

    /// On taking over: the Events owed while another loop led that it did not write (none on
    /// the node, from this controller about this exporter, with that reason since it was due)
    /// are due again. `true` when there are any, for an assessment to write them.
    async fn replay_owed(&mut self) -> bool {
        let owed = std::mem::take(&mut self.owed);
        if owed.is_empty() {
            return false;
        }
        // Node Events live in `default` (a Node has no namespace), as the recorder writes them.
        let api = Api::<k8s_openapi::api::events::v1::Event>::namespaced(
            self.cluster.client.clone(),
            "default",
        );
        let params =
            kube::api::ListParams::default().fields(&format!("reportingController={CONTROLLER}"));
        let written = match crate::cluster::list_paged(&api, &params).await {
            Ok(events) => events,
            Err(e) => {
                self.api_errors += 1;
                warn!("cannot read the Events the last leader wrote ({e}); writing what was owed");
                Vec::new()
            }
        };
        let mut again = 0;
        for (node, (due, uid, at)) in owed {
            let reason = match due {
                Due::Ready { .. } => "ExporterReady",
                Due::Missing { .. } => "ExporterMissing",
            };
            // The leader saw it at about the same moment: a minute of slack.
            let since = at - Duration::from_secs(60);
            let said = written.iter().any(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.regarding.as_ref().and_then(|r| r.uid.as_deref()) == Some(uid.as_str())
                    // Another stack's loop writes about the same node: its related object (the
                    // exporter pod, or DaemonSet) is in its own exporter's namespace.
                    && e.related.as_ref().and_then(|r| r.namespace.as_deref())
                        == Some(self.source.namespace.as_str())
                    && event_time(e).is_some_and(|t| t >= since)
            });
            if !said {
                info!(
                    "node {node} · {reason} was due while another loop led and it did not write it"
                );
                self.tracker.unsay(&due);
                again += 1;
            }
        }
        again > 0
    }

    /// Publishes the Event due (when leading) and logs it; `false` when the write failed and
    /// should be tried again.
    async fn publish(
        &mut self,
        due: &Due,
        node: Option<&SlimNode>,
        pods: &HashMap<&str, &SlimPod>,
        now: Timestamp,
    ) -> bool {
        let Some(node) = node else { return true };
        let (event, line) = match due {
            Due::Ready {
                node: name,
                pod,
                waited,
                joined,
            } => {
                let p = pods.get(pod.as_str()).copied();
                if let Some(ready_at) = p.and_then(pod_ready_since) {
                    let latency = now.duration_since(ready_at);
                    let secs = latency.as_secs_f64().max(0.0);
                    self.metrics.verdict_latency.observe(secs);
                }
                let how = if *joined { "joined" } else { "fixed" };
                let after = crate::output::age(waited.as_secs() as i64);
                let note = format!(
                    "exporter pod {}/{pod} is Ready on this node; monitored ({after} after it {})",
                    self.source.namespace,
                    if *joined {
                        "joined"
                    } else {
                        "lost its exporter"
                    }
                );
                (
                    KubeEvent {
                        type_: EventType::Normal,
                        reason: "ExporterReady".into(),
                        note: Some(note),
                        action: "Monitor".into(),
                        secondary: p.map(|p| kube::Resource::object_ref(p, &())),
                    },
                    format!("node {name} {how} · exporter {pod} Ready after {after}"),
                )
            }
            Due::Missing {
                node: name,
                reason,
                waited,
                ..
            } => {
                let after = crate::output::age(waited.as_secs() as i64);
                (
                    KubeEvent {
                        type_: EventType::Warning,
                        reason: "ExporterMissing".into(),
                        note: Some(truncate(
                            &format!("not monitored after {after}: {reason}"),
                            1000,
                        )),
                        action: "Monitor".into(),
                        // The exporter that should have covered the node.
                        secondary: Some(k8s_openapi::api::core::v1::ObjectReference {
                            api_version: Some("apps/v1".into()),
                            kind: Some("DaemonSet".into()),
                            namespace: Some(self.source.namespace.clone()),
                            name: Some(self.source.name.clone()),
                            ..Default::default()
                        }),
                    },
                    format!("node {name} · not monitored after {after}: {reason}"),
                )
            }
        };
        if !self.leader {
            info!("{line} · no Event (another loop leads)");
            let uid = node.metadata.uid.clone().unwrap_or_default();
            self.owed
                .insert(due.node().to_string(), (due.clone(), uid, now));
            return true;
        }
        match self.recorder.publish(&event, &node.reference()).await {
            Ok(()) => {
                self.retry = None;
                self.metrics
                    .events
                    .get_or_create(&Metrics::label("reason", &event.reason))
                    .inc();
                match event.type_ {
                    EventType::Normal => info!("{line} · Event {}", event.reason),
                    EventType::Warning => warn!("{line} · Event {}", event.reason),
                }
                true
            }
            Err(e) => {
                self.api_errors += 1;
                self.metrics
                    .api_errors
                    .get_or_create(&Metrics::label("request", "event"))
                    .inc();
                let wait = self.retry.map_or(Duration::from_secs(1), |(_, w)| {
                    (w * 2).min(Duration::from_secs(30))
                });
                self.retry = Some((tokio::time::Instant::now() + wait, wait));
                warn!(
                    "{line} · the Event could not be written ({e}); trying again in {}s",
                    wait.as_secs()
                );
                false
            }
        }
    }

    fn synced_line(&self, stores: &Stores, started: Instant) {
        let exporters = stores
            .pods
            .state()
            .iter()
            .filter(|p| {
                p.metadata.labels.as_ref().is_some_and(|l| {
                    l.get(crate::model::names::NAME_LABEL).map(String::as_str)
                        == Some(NODE_EXPORTER)
                })
            })
            .count();
        info!(
            label = "Synced",
            "{} nodes, {exporters} exporters in {:.1}s · {}",
            self.last.len(),
            started.elapsed().as_secs_f64(),
            self.counts()
        );
    }

    fn counts(&self) -> String {
        let count = |c: Coverage| self.last.iter().filter(|s| s.coverage == c).count();
        let mut parts = vec![format!("{} monitored", count(Coverage::Monitored))];
        let not = count(Coverage::NotMonitored);
        if not > 0 {
            parts.push(format!("{not} not monitored"));
        }
        let excluded = count(Coverage::Excluded);
        if excluded > 0 {
            parts.push(format!("{excluded} excluded"));
        }
        parts.join(" · ")
    }

    fn summary_line(&self) {
        let not: Vec<String> = self
            .last
            .iter()
            .filter(|s| s.coverage == Coverage::NotMonitored)
            .take(5)
            .map(|s| format!("{}: {}", s.name, cause_name(s)))
            .collect();
        let n_not = self
            .last
            .iter()
            .filter(|s| s.coverage == Coverage::NotMonitored)
            .count();
        let more = if n_not > not.len() { ", ..." } else { "" };
        let which = if not.is_empty() {
            String::new()
        } else {
            format!(" ({}{more})", not.join(", "))
        };
        info!(
            "summary: {} nodes, {} monitored, {n_not} not{which}, {} API errors",
            self.last.len(),
            self.last
                .iter()
                .filter(|s| s.coverage == Coverage::Monitored)
                .count(),
            self.api_errors
        );
    }

    /// The one pass' exit code: 0 when every node is monitored (or excluded, or still within
    /// `--exporter-deadline` of joining) and nothing drifted that was left so; degraded
    /// otherwise.
    fn verdict(&self) -> u8 {
        let now = Timestamp::now();
        let mut gaps = Vec::new();
        for s in self
            .last
            .iter()
            .filter(|s| s.coverage == Coverage::NotMonitored)
        {
            let reason = s.reason.as_deref().unwrap_or("unknown");
            let waited = self.tracker.waited(&s.name, now).unwrap_or(Duration::MAX);
            if waited < self.options.exporter_deadline {
                info!(
                    "node {} has waited {} for its exporter (deadline {}): {reason}",
                    s.name,
                    crate::output::age(waited.as_secs() as i64),
                    crate::output::age(self.options.exporter_deadline.as_secs() as i64)
                );
            } else {
                warn!("node {} not monitored: {reason}", s.name);
                gaps.push(s);
            }
        }
        if gaps.is_empty() && self.drift_left.is_empty() && self.pending.is_empty() {
            0
        } else {
            exit::DEGRADED
        }
    }
}

/// The classes `have` has and `now` has not.
/// The node count the stack's `Prometheus` was sized for, from its annotation; `None` without
/// one (another operator's Prometheus, an older automon) or when it cannot be read.
async fn deployed_tier(cluster: &Cluster, plan: &Plan) -> Option<u32> {
    let prometheus = plan.objects().find(|o| {
        model::kind(o) == "Prometheus"
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

/// How long the loop lets a burst of joining nodes settle before it sizes the stack up.
const SIZE_SETTLE: Duration = Duration::from_secs(5);

fn gone(have: render::NodeClasses, now: render::NodeClasses) -> String {
    render::NodeClasses {
        windows: have.windows && !now.windows,
        gpu: have.gpu && !now.gpu,
    }
    .describe()
}

/// Watch failures, said once per outage (every watch fails when the API server goes away, and
/// each retries on its own backoff), then every 30s while it lasts, and when it ends.
#[derive(Default)]
struct Outage {
    since: Option<Instant>,
    errors: usize,
    said: Option<Instant>,
}

impl Outage {
    fn failed(&mut self, what: &str, e: &watcher::Error) {
        // A watch that is too old is re-listed by the watcher: routine after a restart.
        let expired = matches!(e, watcher::Error::WatchError(s) if s.code == 410);
        if expired && self.since.is_none() {
            return;
        }
        self.errors += 1;
        let since = *self.since.get_or_insert_with(Instant::now);
        let due = self
            .said
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(30));
        if due {
            self.said = Some(Instant::now());
            if self.errors == 1 {
                warn!("watch of {what} failed ({e}); every watch starts again with backoff");
            } else {
                warn!(
                    "the API server has failed for {}s ({} watch errors; latest: {what}: {e}); still trying",
                    since.elapsed().as_secs(),
                    self.errors
                );
            }
        }
    }

    fn over(&mut self) {
        if let Some(since) = self.since.take() {
            info!(
                "watches resumed after {}s ({} errors); every node is judged again",
                since.elapsed().as_secs(),
                self.errors
            );
        }
        self.errors = 0;
        self.said = None;
    }
}

/// The watches that must have listed before the first verdict (and the managed objects').
const REQUIRED_SYNCS: [&str; 5] = ["nodes", "pods", "daemonsets", "events", "parent"];

fn config_text(parent: &ConfigMap) -> Option<String> {
    parent.data.as_ref()?.get(CONFIG_KEY).cloned()
}

/// Permissions the loop needs and the credentials lack: said at start, before any write, one
/// line per resource and scope with its verbs.
#[derive(Debug, thiserror::Error)]
#[error(
    "reconcile cannot run with these credentials; nothing was written. Missing:\n{}\n{}",
    grouped(missing),
    if *repair {
        "(--no-repair needs only the reads, Events and the Lease; an admin grants the rest with a Role or ClusterRole and a binding)"
    } else {
        "(an admin grants them with a Role or ClusterRole and a binding)"
    }
)]
pub struct Denied {
    pub missing: Vec<Permission>,
    pub repair: bool,
}

/// `  list, watch nodes cluster-wide`, one line per resource and scope.
fn grouped(missing: &[Permission]) -> String {
    let mut by: BTreeMap<(Option<&str>, String), Vec<&str>> = BTreeMap::new();
    for p in missing {
        by.entry((p.namespace.as_deref(), p.qualified_resource()))
            .or_default()
            .push(&p.verb);
    }
    by.into_iter()
        .map(|((ns, resource), verbs)| {
            let scope = match ns {
                Some(ns) => format!("in namespace {ns:?}"),
                None => "cluster-wide".into(),
            };
            format!("  {} {resource} {scope}", verbs.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn cause_name(s: &NodeStatus) -> String {
    s.cause
        .and_then(|c| serde_json::to_value(c).ok())
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max - 3;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// When an Event was last observed: its series' last observation, else its time.
fn event_time(e: &k8s_openapi::api::events::v1::Event) -> Option<Timestamp> {
    e.series
        .as_ref()
        .map(|s| s.last_observed_time.0)
        .or(e.event_time.as_ref().map(|t| t.0))
        .or(e.deprecated_last_timestamp.as_ref().map(|t| t.0))
}

/// When a pod's Ready condition last turned True.
fn pod_ready_since(p: &SlimPod) -> Option<Timestamp> {
    p.status.ready_since.as_ref().map(|t| t.0)
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
