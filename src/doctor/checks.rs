//! The checks, pure: each takes what was gathered and returns its findings with the fix.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::Value;

use crate::{
    cluster::crds,
    model::{
        finding::Level,
        selector::{self, Unmet},
    },
    output::{plural, plural_thousands},
    status::{self, Cause, Coverage, Health, NODE_EXPORTER, Snapshot, Status, nodes::NodeStatus},
    versions,
};

use super::{Extra, Finding, Webhook, bad, ok};

/// Every check, in the order it is printed (pure).
pub fn assess(
    snapshot: &Snapshot,
    status: &Status,
    extra: Option<&Extra>,
    config: &crate::config::Config,
) -> Vec<Finding> {
    let ns = &status.namespace;
    let mut out = Vec::new();
    let Some(extra) = extra.filter(|_| status.health != Health::NotInstalled) else {
        out.push(bad(
            "installed",
            Level::Fail,
            format!("automon is not installed in namespace {ns}"),
            format!("kubectl automon preflight -n {ns} && kubectl automon enable -n {ns} --wait"),
        ));
        return out;
    };
    out.push(ok("installed", format!("stack installed (namespace {ns})")));
    out.extend(stack_version(status));
    out.extend(components(snapshot, status));
    out.extend(selectors(snapshot, extra, ns));
    out.extend(your_monitors(snapshot, extra, config, ns));
    out.extend(nodes(snapshot, status, extra, config));
    out.extend(pod_security(snapshot, extra));
    out.push(host_port(
        snapshot,
        status,
        extra,
        config.node_exporter.port,
    ));
    out.push(crd_versions(snapshot, extra, ns));
    out.extend(kubelet_services(extra));
    out.extend(api_services(extra));
    out.extend(webhooks(extra, &extra.namespace_labels, ns));
    out.extend(alertmanager(extra, ns));
    out.extend(scrapes(snapshot, status));
    out.extend(sizing(status, ns));
    out
}

/// Whether this plugin is the version that installed the stack. A warning at most: the stack
/// works whichever plugin installed it; what differs is which checks and defaults apply.
fn stack_version(status: &Status) -> Option<Finding> {
    let v = status.stack_version.as_ref()?;
    Some(match v.advice(&status.namespace) {
        None => ok(
            "version",
            format!("stack installed by this plugin's version ({})", v.plugin),
        ),
        Some((what, fix)) => bad("version", Level::Warn, what, fix),
    })
}

/// Past this share of its memory limit, Prometheus is one query or compaction from the OOM
/// killer.
const MEMORY_WARN_RATIO: f64 = 0.85;
/// Head series this far above the estimate mean the sizing no longer fits.
const SERIES_WARN_RATIO: f64 = 1.25;

/// Whether Prometheus fits what it was sized for: its head series against the estimate, its
/// memory against its limit.
fn sizing(status: &Status, ns: &str) -> Vec<Finding> {
    use crate::{config::sizing::SERIES_PER_SHARD, output::thousands};
    let Some(z) = &status.sizing else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let shards_for = |series: u64| series.div_ceil(SERIES_PER_SHARD).max(2);
    if let Some(tier) = z.resize_for {
        out.push(bad(
            "sizing",
            Level::Warn,
            format!(
                "the stack is sized for up to {} nodes and the cluster has {}: enable would size it for up to {}",
                thousands(u64::from(z.sized_for)),
                thousands(u64::from(z.nodes)),
                thousands(u64::from(tier))
            ),
            format!("kubectl automon diff -n {ns}, then kubectl automon enable -n {ns}"),
        ));
    }
    if let Some(head) = z.head_series
        && head as f64 > z.estimated_series_per_shard as f64 * SERIES_WARN_RATIO
    {
        let total = head * u64::from(z.shards);
        out.push(bad(
            "sizing",
            Level::Warn,
            format!(
                "Prometheus holds {} series, more than the ~{} it is sized for ({}, sized for up to {})",
                thousands(head),
                thousands(z.estimated_series_per_shard),
                plural_thousands(u64::from(z.nodes), "node"),
                thousands(u64::from(z.sized_for))
            ),
            format!(
                "kubectl automon enable -n {ns} --set prometheus.shards={} (or raise prometheus.resources; see which metrics cost most in Prometheus' TSDB status page)",
                shards_for(total)
            ),
        ));
    }
    if let (Some(rss), Some(limit)) = (z.resident_memory_bytes, z.memory_limit_bytes)
        && limit > 0
        && rss as f64 > limit as f64 * MEMORY_WARN_RATIO
    {
        out.push(bad(
            "sizing",
            Level::Warn,
            format!(
                "Prometheus uses {} MiB of its {} MiB memory limit ({:.0}%)",
                rss >> 20,
                limit >> 20,
                rss as f64 * 100.0 / limit as f64
            ),
            format!(
                "kubectl automon enable -n {ns} --set prometheus.shards={} (or --set prometheus.resources.limits.memory={}Mi)",
                z.shards + 1,
                (limit >> 20) * 2
            ),
        ));
    }
    if out.is_empty() {
        let head = z
            .head_series
            .map(|h| format!(", {} in the head", thousands(h)))
            .unwrap_or_default();
        out.push(ok(
            "sizing",
            format!(
                "Prometheus sized for up to {} nodes ({} now): ~{} series estimated{}{head}",
                thousands(u64::from(z.sized_for)),
                thousands(u64::from(z.nodes)),
                thousands(z.estimated_series_per_shard),
                if z.shards > 1 {
                    format!(
                        " per shard over {} shards, read together through Thanos Query",
                        z.shards
                    )
                } else {
                    String::new()
                }
            ),
        ));
    }
    out
}

fn components(snapshot: &Snapshot, status: &Status) -> Vec<Finding> {
    let broken: Vec<&status::Component> = status
        .components
        .iter()
        .filter(|c| !c.healthy && c.name != NODE_EXPORTER)
        .collect();
    if broken.is_empty() {
        // node-exporter is judged node by node, below.
        let names: Vec<&str> = status
            .components
            .iter()
            .map(|c| c.name.as_str())
            .filter(|n| *n != NODE_EXPORTER)
            .collect();
        return vec![ok("components", format!("{} ready", names.join(", ")))];
    }
    broken
        .into_iter()
        .map(|c| {
            let message = c.message.as_deref().unwrap_or("not ready");
            let fix = component_fix(snapshot, c, message);
            bad(
                "components",
                Level::Fail,
                format!("{} {} is not ready: {message}", c.kind, c.name),
                fix,
            )
        })
        .collect()
}

/// What to run for a component that is not ready, where it really is: enable when it is
/// missing (automon's own, or another stack's part this one relies on, gone); the pod that
/// says why, when one does (its previous logs once it restarted); else the object.
fn component_fix(snapshot: &Snapshot, c: &status::Component, message: &str) -> String {
    let ns = &snapshot.namespace;
    let enable = format!("kubectl automon enable -n {ns}");
    if let Some(from) = &c.reused {
        let gone = snapshot
            .reused
            .iter()
            .find(|p| &p.from == from)
            .map_or(snapshot.exporter.is_none(), |p| {
                p.deployment.is_none() && p.custom.is_none()
            });
        return match from.split_once('/') {
            Some((rns, rname)) if !gone => {
                format!(
                    "kubectl describe {} -n {rns} {rname}",
                    c.kind.to_lowercase()
                )
            }
            _ => enable,
        };
    }
    if message.starts_with("missing") {
        return enable;
    }
    let pod = message
        .strip_prefix("pod ")
        .and_then(|m| m.split_whitespace().next());
    match pod {
        Some(pod) => {
            let restarted = snapshot.pods.iter().any(|p| {
                p.metadata.name.as_deref() == Some(pod)
                    && p.metadata.namespace.as_deref().is_none_or(|n| n == ns)
                    && p.status.restarts > 0
            });
            let mut fix = format!("kubectl describe pod -n {ns} {pod}");
            if restarted {
                fix.push_str(&format!(
                    "; kubectl logs -n {ns} {pod} --all-containers --previous"
                ));
            }
            fix
        }
        None => format!(
            "kubectl describe {} -n {ns} {}",
            c.kind.to_lowercase(),
            c.object
        ),
    }
}

/// `k=v` pairs as `kubectl label` takes them, when every one is a pair (an expression such
/// as `k in (a,b)` or `!k` is no value to set).
fn label_args(unmet: &[String]) -> Option<String> {
    let plain = |u: &String| {
        u.split_once('=')
            .is_some_and(|(k, v)| !k.contains([' ', '!']) && !v.contains([' ', '(', ',']))
    };
    unmet.iter().all(plain).then(|| unmet.join(" "))
}

fn selectors(snapshot: &Snapshot, extra: &Extra, ns: &str) -> Vec<Finding> {
    // (kind, the Prometheus meant to pick them up, why it does not): the objects' names.
    type Unselected = BTreeMap<(&'static str, Option<usize>, Option<Unmet>), Vec<String>>;
    let mut unselected = Unselected::new();
    let mut counts = (0, 0);
    let prometheus_names: Vec<(String, String)> = extra
        .prometheuses
        .iter()
        .map(|p| {
            (
                p.metadata.namespace.clone().unwrap_or_default(),
                p.metadata.name.clone().unwrap_or_default(),
            )
        })
        .collect();
    // The Prometheus meant to pick them up: the one the stack was installed for (its own, or
    // the one its parent names), else this namespace's, else the first.
    let meant = snapshot.scraping_prometheus();
    let closest = prometheus_names
        .iter()
        .position(|p| Some(p) == meant.as_ref())
        .or_else(|| prometheus_names.iter().position(|(pns, _)| pns == ns))
        .unwrap_or(0);
    let objects = extra
        .service_monitors
        .iter()
        .map(|o| {
            (
                "ServiceMonitor",
                o,
                "serviceMonitorSelector",
                "serviceMonitorNamespaceSelector",
            )
        })
        .chain(
            snapshot
                .rules
                .iter()
                .map(|o| ("PrometheusRule", o, "ruleSelector", "ruleNamespaceSelector")),
        );
    for (kind, o, sel_key, ns_key) in objects {
        if kind == "ServiceMonitor" {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
        let labels = o.metadata.labels.clone().unwrap_or_default();
        let verdicts: Vec<Result<(), Unmet>> = extra
            .prometheuses
            .iter()
            .map(|p| {
                selector::prometheus_selection(
                    p,
                    sel_key,
                    ns_key,
                    &labels,
                    ns,
                    &extra.namespace_labels,
                )
            })
            .collect();
        if verdicts.iter().any(Result::is_ok) {
            continue;
        }
        let (prometheus, why) = match verdicts.get(closest) {
            Some(Err(e)) => (Some(closest), Some(e.clone())),
            _ => (None, None),
        };
        unselected
            .entry((kind, prometheus, why))
            .or_default()
            .push(o.metadata.name.clone().unwrap_or_default());
    }
    let shown = |i: usize| format!("{}/{}", prometheus_names[i].0, prometheus_names[i].1);
    if unselected.is_empty() {
        let by = if prometheus_names.len() == 1 {
            format!("Prometheus {}", shown(0))
        } else {
            "a Prometheus".to_string()
        };
        return vec![ok(
            "selectors",
            format!(
                "{by} selects all {} and {}",
                plural(counts.0, "ServiceMonitor"),
                plural(counts.1, "PrometheusRule")
            ),
        )];
    }
    let ours = !status::reuses_operator(snapshot.parent.as_ref().expect("installed"));
    unselected
        .into_iter()
        .map(|((kind, prometheus, why), names)| {
            let (sel_key, ns_key) = match kind {
                "ServiceMonitor" => ("serviceMonitorSelector", "serviceMonitorNamespaceSelector"),
                _ => ("ruleSelector", "ruleNamespaceSelector"),
            };
            let fix = match (&why, prometheus) {
                _ if ours => format!(
                    "kubectl automon enable -n {ns} --force-conflicts (restores automon's selectors)"
                ),
                (Some(why), Some(p)) => {
                    selection_fix(why, kind, &names, &prometheus_names[p], (sel_key, ns_key), ns)
                }
                _ => format!("kubectl automon enable -n {ns} (installs automon's own Prometheus)"),
            };
            let (s, them) = if names.len() == 1 { ("", "it") } else { ("s", "them") };
            let why = match (prometheus, why) {
                (Some(p), Some(why)) => format!(
                    "Prometheus {} ignores {them}: {}",
                    shown(p),
                    why.describe(sel_key, ns_key, ns)
                ),
                _ => "there is no Prometheus in the cluster".to_string(),
            };
            bad(
                "selectors",
                Level::Fail,
                format!(
                    "{} {kind}{s} selected by no Prometheus ({}): {why}",
                    names.len(),
                    names.join(", ")
                ),
                fix,
            )
        })
        .collect()
}

/// The fix for objects of `kind` in `ns` that another stack's Prometheus `(pns, pname)` does
/// not pick up: the labels they or their namespace need, or that Prometheus' selector.
fn selection_fix(
    why: &Unmet,
    kind: &str,
    names: &[String],
    (pns, pname): &(String, String),
    (sel_key, ns_key): (&str, &str),
    ns: &str,
) -> String {
    let enable =
        format!("kubectl automon enable -n {ns} (labels the objects for the Prometheus it finds)");
    match why {
        Unmet::Labels(unmet) => match label_args(unmet) {
            Some(labels) => format!(
                "{enable}, or: kubectl label {} -n {ns} {} {labels} --overwrite",
                kind.to_lowercase(),
                names.join(" ")
            ),
            None => format!("{enable}; they need {}", unmet.join(", ")),
        },
        Unmet::NamespaceLabels(unmet) => match label_args(unmet) {
            Some(labels) => format!("kubectl label namespace {ns} {labels} --overwrite"),
            None => format!(
                "give namespace {ns} labels that meet {ns_key} of Prometheus {pns}/{pname} ({})",
                unmet.join(", ")
            ),
        },
        // Unset, it looked in its own namespace only: this one too, and no other.
        Unmet::OwnNamespaceOnly(own) => format!(
            r#"kubectl patch prometheus -n {pns} {pname} --type merge -p '{{"spec":{{"{ns_key}":{{"matchExpressions":[{{"key":"kubernetes.io/metadata.name","operator":"In","values":["{own}","{ns}"]}}]}}}}}}'"#
        ),
        // Unset, it selected nothing: automon's objects now.
        Unmet::SelectorUnset => format!(
            r#"kubectl patch prometheus -n {pns} {pname} --type merge -p '{{"spec":{{"{sel_key}":{{"matchLabels":{{"{}":"{}"}}}}}}}}'"#,
            crate::model::names::PART_OF_LABEL,
            crate::model::names::PART_OF
        ),
    }
}

/// At most this many objects are named in a finding; the rest are counted.
const OBJECTS_NAMED: usize = 5;

fn monitors_and_rules(n: usize) -> String {
    match n {
        1 => "1 monitor or rule".to_string(),
        n => format!("{n} monitors and rules"),
    }
}

/// `a, b, c, d, e and 3 more`
fn named(names: &[String]) -> String {
    match names.len().checked_sub(OBJECTS_NAMED) {
        Some(more) if more > 0 => {
            format!("{} and {more} more", names[..OBJECTS_NAMED].join(", "))
        }
        _ => names.join(", "),
    }
}

/// The user's own monitors and rules that look meant for the stack (in its namespace, labelled
/// `release`, or with one of the selector's labels) and that its Prometheus leaves out, by
/// reason, each with the fix. Warnings: looking meant is a guess, and one another Prometheus
/// selects is not counted.
fn your_monitors(
    snapshot: &Snapshot,
    extra: &Extra,
    config: &crate::config::Config,
    ns: &str,
) -> Vec<Finding> {
    let parent = snapshot.parent.as_ref().expect("installed");
    let (Some(prometheus), Some(listed), Some(id)) = (
        snapshot.scraping_prometheus_object(),
        snapshot.yours.as_ref(),
        crate::cluster::inventory::applyset_id(&parent.metadata),
    ) else {
        return Vec::new();
    };
    let ours = !status::reuses_operator(parent);
    your_monitors_of(
        prometheus,
        &extra.prometheuses,
        listed,
        id,
        &config.prometheus.select,
        ours,
        ns,
    )
}

/// [`your_monitors`], of what it read (pure).
fn your_monitors_of(
    prometheus: &crate::model::Object,
    others: &[crate::model::Object],
    listed: &crate::status::yours::Listed,
    id: &str,
    select: &crate::config::Select,
    ours: bool,
    ns: &str,
) -> Vec<Finding> {
    use crate::status::yours::{self, Watched, Why};
    let pname = format!(
        "{}/{}",
        prometheus.metadata.namespace.as_deref().unwrap_or_default(),
        prometheus.metadata.name.as_deref().unwrap_or_default()
    );
    let left_out = yours::unselected(prometheus, others, listed, id, &select.exclude);
    if left_out.is_empty() {
        let y = yours::selected(prometheus, listed, id);
        let total: usize = y.counts().iter().map(|(n, _)| n).sum();
        return vec![ok(
            "yourMonitors",
            format!(
                "Prometheus {pname} selects {} of yours and leaves out none that looks meant for it",
                monitors_and_rules(total)
            ),
        )];
    }
    let mut out = Vec::new();
    let far: Vec<(&Watched, &selector::Unmet)> = left_out
        .iter()
        .filter_map(|(o, why)| match why {
            Why::Namespace(u) => Some((*o, u)),
            _ => None,
        })
        .collect();
    if !far.is_empty() {
        let namespaces: BTreeSet<&str> = far.iter().map(|(o, _)| o.namespace.as_str()).collect();
        let names: Vec<String> = far.iter().map(|(o, _)| o.describe()).collect();
        let labels = far.iter().find_map(|(_, u)| match u {
            Unmet::NamespaceLabels(l) => label_args(l),
            _ => None,
        });
        // Looked in, they may still lack a label: labelled `release: V` alike for another
        // stack (and the stack selecting by its own label), the same enable selects by it.
        let lacking: BTreeSet<String> = far
            .iter()
            .flat_map(|(o, _)| yours::labels_unmet(prometheus, o))
            .collect();
        let releases: BTreeSet<Option<&String>> = far
            .iter()
            .filter(|(o, _)| !yours::labels_unmet(prometheus, o).is_empty())
            .map(|(o, _)| o.labels.get(yours::RELEASE_LABEL))
            .collect();
        let release = match releases.into_iter().collect::<Vec<_>>()[..] {
            [Some(v)] if ours && !select.all && select.labels.is_empty() => Some(v),
            _ => None,
        };
        let fix = match labels {
            _ if ours => {
                let mut all: BTreeSet<&str> =
                    select.namespaces.iter().map(String::as_str).collect();
                all.extend(&namespaces);
                let mut fix = format!(
                    "kubectl automon enable -n {ns} --set 'prometheus.select.namespaces=[{}]'",
                    all.into_iter().collect::<Vec<_>>().join(", ")
                );
                if let Some(v) = release {
                    fix.push_str(&format!(
                        " --set 'prometheus.select.labels={{{}: {v}}}'",
                        yours::RELEASE_LABEL
                    ));
                }
                fix
            }
            Some(labels) => format!(
                "kubectl label namespace {} {labels}",
                namespaces.iter().copied().collect::<Vec<_>>().join(" ")
            ),
            None => format!(
                "give the namespaces labels that Prometheus {pname}'s namespace selectors select"
            ),
        };
        out.push(bad(
            "yourMonitors",
            Level::Warn,
            format!(
                "{} of yours {} meant for the stack but {} in namespace{} {} that Prometheus {pname} does not look in: {}",
                monitors_and_rules(far.len()),
                if far.len() == 1 { "looks" } else { "look" },
                if far.len() == 1 { "is" } else { "are" },
                if namespaces.len() == 1 { "" } else { "s" },
                namespaces.iter().copied().collect::<Vec<_>>().join(", "),
                named(&names)
            ) + &match (lacking.is_empty(), release) {
                (true, _) => String::new(),
                (false, Some(v)) => format!(
                    "; they lack {} too, and carry {}={v}",
                    lacking.iter().cloned().collect::<Vec<_>>().join(", "),
                    yours::RELEASE_LABEL
                ),
                (false, None) => format!(
                    "; they lack {} too (doctor names the fix once their namespace is looked in)",
                    lacking.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            },
            fix,
        ));
    }
    // The rest, by kind and namespace and what is the matter, so that one command fixes each.
    let mut grouped: BTreeMap<(yours::Kind, &str, &Why), Vec<String>> = BTreeMap::new();
    for (o, why) in left_out
        .iter()
        .filter(|(_, w)| !matches!(w, Why::Namespace(_)))
    {
        grouped
            .entry((o.kind, o.namespace.as_str(), why))
            .or_default()
            .push(o.name.clone());
    }
    for ((kind, ons, why), names) in grouped {
        let resource = kind.resource();
        let (n, list) = (plural(names.len(), kind.name()), names.join(" "));
        let one = names.len() == 1;
        let (message, fix) = match why {
            Why::Excluded(label) => (
                format!(
                    "{n} in namespace {ons} {} {label}, which prometheus.select.exclude leaves out: {}",
                    if one { "carries" } else { "carry" },
                    named(&names)
                ),
                format!(
                    "kubectl label {resource} -n {ons} {list} {}- (or take it out of prometheus.select.exclude)",
                    label.split_once('=').map_or(label.as_str(), |(k, _)| k)
                ),
            ),
            Why::Labels(missing) => (
                format!(
                    "{n} in namespace {ons} {} {}, which Prometheus {pname} selects by: {}",
                    if one { "lacks" } else { "lack" },
                    missing.join(", "),
                    named(&names)
                ),
                match label_args(missing) {
                    Some(labels) => format!("kubectl label {resource} -n {ons} {list} {labels}"),
                    None => format!(
                        "give them labels that meet {} of Prometheus {pname}",
                        kind.selector_key()
                    ),
                },
            ),
            Why::SelectorUnset | Why::Namespace(_) => (
                format!(
                    "{n} in namespace {ons}: {} of Prometheus {pname} is unset, which selects nothing",
                    kind.selector_key()
                ),
                if ours {
                    format!(
                        "kubectl automon enable -n {ns} --force-conflicts (restores automon's selectors)"
                    )
                } else {
                    format!(
                        "set {} of Prometheus {pname} to select them",
                        kind.selector_key()
                    )
                },
            ),
        };
        out.push(bad("yourMonitors", Level::Warn, message, fix));
    }
    out
}

/// At most this many nodes get a line of their own; the rest are counted.
const NODES_LISTED: usize = 10;

fn nodes(
    snapshot: &Snapshot,
    status: &Status,
    extra: &Extra,
    config: &crate::config::Config,
) -> Vec<Finding> {
    let ns = &status.namespace;
    let missing: Vec<&NodeStatus> = status
        .nodes
        .iter()
        .filter(|n| n.coverage == Coverage::NotMonitored)
        .collect();
    let s = &status.summary;
    if missing.is_empty() {
        let excluded = if s.excluded > 0 {
            format!(" ({} excluded by label)", s.excluded)
        } else {
            String::new()
        };
        return vec![ok(
            "nodes",
            format!(
                "{}/{} a working exporter{excluded}",
                s.monitored,
                match s.nodes {
                    1 => "1 node has".to_string(),
                    n => format!("{n} nodes have"),
                }
            ),
        )];
    }
    let mut out: Vec<Finding> = missing
        .iter()
        .take(NODES_LISTED)
        .map(|n| {
            let reason = n.reason.as_deref().unwrap_or("unknown");
            bad(
                "nodes",
                Level::Fail,
                format!("node {} has no working exporter: {reason}", n.name),
                node_fix(snapshot, n, extra, config),
            )
        })
        .collect();
    if missing.len() > NODES_LISTED {
        out.push(bad(
            "nodes",
            Level::Fail,
            format!(
                "{} more nodes have no working exporter",
                missing.len() - NODES_LISTED
            ),
            format!("kubectl automon status -n {ns} -o wide"),
        ));
    }
    out
}

/// What to run for a node without a working exporter, naming the DaemonSet that puts one
/// there and its pods where they are: automon's own, or another stack's it scrapes (whose
/// configuration is that stack's, not a `--set` of automon's).
fn node_fix(
    snapshot: &Snapshot,
    n: &NodeStatus,
    extra: &Extra,
    config: &crate::config::Config,
) -> String {
    let ns = &snapshot.namespace;
    let (dns, dname) = snapshot.exporter_for(&n.os);
    let borrowed = snapshot.exporter_from.as_deref() == Some(format!("{dns}/{dname}").as_str());
    let pod = n
        .exporter
        .as_ref()
        .map(|e| e.name.as_str())
        .unwrap_or_default();
    let exclude = format!(
        "kubectl label node {} {}=true --overwrite (to accept the gap)",
        n.name, config.node_exporter.exclude_label
    );
    let describe_pod = format!("kubectl describe pod -n {dns} {pod}");
    match n.cause {
        Some(Cause::Taint) if borrowed => match toleration_patch(snapshot, n) {
            Some(patch) => format!(
                "kubectl patch daemonset -n {dns} {dname} --type json -p '{patch}' (that stack's own configuration, such as a Helm release's values, should say it too), or: {exclude}"
            ),
            None => format!("kubectl describe daemonset -n {dns} {dname}, or: {exclude}"),
        },
        Some(Cause::Taint) => format!(
            "kubectl automon enable -n {ns} --set nodeExporter.tolerations=all, or: {exclude}"
        ),
        // The stack was rendered before the first Windows node joined.
        Some(Cause::UnsupportedOs) if n.os == crate::render::classes::WINDOWS => format!(
            "kubectl automon enable -n {ns} (it deploys windows-exporter for Windows nodes; `kubectl automon reconcile --loop -n {ns}` follows node classes as they come), or: {exclude}"
        ),
        Some(Cause::UnsupportedOs) => {
            format!("automon has no exporter for {} nodes yet; {exclude}", n.os)
        }
        Some(Cause::CreationRefused) => {
            format!("kubectl describe daemonset -n {dns} {dname} (see the PodSecurity check)")
        }
        Some(Cause::DaemonSetMissing) => format!("kubectl automon enable -n {ns}"),
        Some(Cause::PodNotReady) => {
            let e = n.exporter.as_ref();
            match e.map(|e| e.state.as_str()) {
                Some("ImagePullBackOff" | "ErrImagePull") if !borrowed => {
                    format!("{describe_pod}; check images.registry and images.pullSecrets")
                }
                Some("Pending")
                    if n.reason
                        .as_deref()
                        .is_some_and(|r| r.contains("free ports")) =>
                {
                    format!("{describe_pod} (see the host port check)")
                }
                _ if e.is_some_and(|e| e.restarts > 0) => {
                    format!(
                        "{describe_pod}; kubectl logs -n {dns} {pod} --all-containers --previous"
                    )
                }
                _ => describe_pod,
            }
        }
        Some(Cause::NoScrapeTarget) => match extra.exporter_scrapes.get(&(dns, dname)) {
            Some((kind, sns, sname)) => {
                let by = snapshot
                    .scraping_prometheus()
                    .map(|(pns, pname)| format!("Prometheus {pns}/{pname}"))
                    .unwrap_or_else(|| "Prometheus".to_string());
                format!(
                    "kubectl get {kind} -n {sns} {sname} -o yaml (the scrape object: see the selectors check for whether {by} picks it up)"
                )
            }
            None => format!(
                "kubectl automon enable -n {ns} (no scrape object selects the exporter's pods; enable restores automon's)"
            ),
        },
        Some(Cause::ScrapeFailing) => {
            let port = if dname == crate::render::classes::WINDOWS_EXPORTER {
                crate::render::classes::WINDOWS_EXPORTER_PORT
            } else {
                config.node_exporter.port
            };
            format!(
                "check that Prometheus can reach port {port} on the node (firewalls, NetworkPolicy); {describe_pod}"
            )
        }
        _ => format!("kubectl describe daemonset -n {dns} {dname}"),
    }
}

/// A JSON patch that adds, to the exporter DaemonSet of another stack, a toleration of each
/// taint of the node it does not tolerate; `None` when that DaemonSet or node is not found.
fn toleration_patch(snapshot: &Snapshot, n: &NodeStatus) -> Option<String> {
    let template = snapshot
        .exporter
        .as_ref()?
        .spec
        .as_ref()?
        .template
        .spec
        .as_ref()?;
    let node = snapshot.nodes.iter().find(|node| node.name() == n.name)?;
    let mut tolerations = template.tolerations.clone().unwrap_or_default();
    let declared = !tolerations.is_empty();
    tolerations.extend(selector::daemonset_default_tolerations(
        template.host_network == Some(true),
    ));
    let added: Vec<Value> = selector::untolerated(&node.spec.taints, &tolerations)
        .into_iter()
        .map(|t| match t.value.as_deref().filter(|v| !v.is_empty()) {
            Some(v) => serde_json::json!({"key": t.key, "operator": "Equal", "value": v, "effect": t.effect}),
            None => serde_json::json!({"key": t.key, "operator": "Exists", "effect": t.effect}),
        })
        .collect();
    if added.is_empty() {
        return None;
    }
    let path = "/spec/template/spec/tolerations";
    let ops: Vec<Value> = if declared {
        added
            .into_iter()
            .map(|t| serde_json::json!({"op": "add", "path": format!("{path}/-"), "value": t}))
            .collect()
    } else {
        vec![serde_json::json!({"op": "add", "path": path, "value": added})]
    };
    Some(Value::Array(ops).to_string())
}

const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";

/// The PodSecurity of each namespace where an exporter of the stack runs with host access:
/// the stack's own (its node-exporter, windows- and GPU exporters), and that of another
/// stack's exporter it scrapes.
fn pod_security(snapshot: &Snapshot, extra: &Extra) -> Vec<Finding> {
    let ns = &snapshot.namespace;
    let mut out = Vec::new();
    if let Some((ens, labels)) = &extra.exporter_namespace {
        let from = snapshot.exporter_from.as_deref().unwrap_or_default();
        out.push(namespace_pod_security(
            labels,
            ens,
            &format!("daemonset {from}"),
        ));
    }
    let own: Vec<&str> = snapshot
        .daemonsets
        .iter()
        .filter_map(|d| d.metadata.name.as_deref())
        .collect();
    if out.is_empty() || !own.is_empty() {
        let what = match own.as_slice() {
            [] => NODE_EXPORTER.to_string(),
            names => names.join(", "),
        };
        out.push(namespace_pod_security(&extra.namespace_labels, ns, &what));
    }
    out
}

/// Whether namespace `ns`, labelled `labels`, lets `what` use the host's network, PID and
/// paths (pure).
fn namespace_pod_security(labels: &BTreeMap<String, String>, ns: &str, what: &str) -> Finding {
    match labels.get(ENFORCE_LABEL).map(String::as_str) {
        Some(level @ ("baseline" | "restricted")) => bad(
            "podSecurity",
            Level::Fail,
            format!(
                "namespace {ns} enforces PodSecurity {level:?}, which forbids the host network, host PID and host paths {what} needs"
            ),
            format!("kubectl label namespace {ns} {ENFORCE_LABEL}=privileged --overwrite"),
        ),
        Some(level) => ok(
            "podSecurity",
            format!("namespace {ns} enforces PodSecurity {level:?}"),
        ),
        None => ok(
            "podSecurity",
            format!("namespace {ns} has no PodSecurity enforcement label"),
        ),
    }
}

fn host_port(snapshot: &Snapshot, status: &Status, extra: &Extra, port: u16) -> Finding {
    if let Some(from) = &snapshot.exporter_from {
        return ok(
            "hostPort",
            format!(
                "host port {port} is served by daemonset {from} (another stack's exporter), which this stack scrapes instead of running its own"
            ),
        );
    }
    let blocked: Vec<&NodeStatus> = status
        .nodes
        .iter()
        .filter(|n| {
            n.reason
                .as_deref()
                .is_some_and(|r| r.contains("free ports"))
        })
        .collect();
    if blocked.is_empty() {
        return ok(
            "hostPort",
            format!("host port {port} is free for node-exporter on every node"),
        );
    }
    let holders: Vec<String> = extra
        .port_holders
        .iter()
        .map(|(node, pod)| format!("{pod} on {node}"))
        .collect();
    let names: Vec<&str> = blocked.iter().map(|n| n.name.as_str()).collect();
    let by = if holders.is_empty() {
        String::new()
    } else {
        format!("; held by {}", holders.join(", "))
    };
    bad(
        "hostPort",
        Level::Fail,
        format!(
            "host port {port} is taken on {} ({}){by}",
            plural(names.len(), "node"),
            names.join(", ")
        ),
        format!(
            "remove the other exporter, or move automon's to another port: kubectl automon enable -n {} --set nodeExporter.port={} (free on those nodes; enable checks every node)",
            status.namespace,
            extra.free_port.unwrap_or(port.saturating_add(1))
        ),
    )
}

fn crd_versions(snapshot: &Snapshot, extra: &Extra, ns: &str) -> Finding {
    let parent = snapshot.parent.as_ref().expect("installed");
    let reuse = status::reuses_operator(parent);
    let present: BTreeMap<&str, Option<&str>> = extra
        .crds
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_deref()))
        .collect();
    // Reusing another operator, its CRDs are its own: it may serve fewer kinds.
    if !reuse && let Some(missing) = missing_crds(&present, ns) {
        return missing;
    }
    let (op_name, op_version) = crds_operator(parent, extra, ns, reuse).unwrap_or_else(|| {
        (
            "automon's pinned operator".into(),
            versions::PROMETHEUS_OPERATOR.version.to_string(),
        )
    });
    let skewed = skewed_crds(&present, &op_version);
    if skewed.is_empty() {
        let versions: BTreeSet<&str> = present.values().map(|v| v.unwrap_or("unknown")).collect();
        let shown: Vec<&str> = versions.into_iter().collect();
        return ok(
            "crds",
            format!(
                "CRDs {} match the operator {op_name} {op_version}",
                shown.join(", ")
            ),
        );
    }
    let operator = (op_name.as_str(), op_version.as_str());
    crds_skewed(&skewed, present.len(), operator, reuse, ns)
}

/// The pinned CRDs the cluster lacks, as a failed check; `None` when it has them all.
fn missing_crds(present: &BTreeMap<&str, Option<&str>>, ns: &str) -> Option<Finding> {
    let expected: BTreeSet<String> = crds::PINNED_CRDS.iter().map(|c| c.name()).collect();
    let missing: Vec<&str> = expected
        .iter()
        .map(String::as_str)
        .filter(|n| !present.contains_key(n))
        .collect();
    (!missing.is_empty()).then(|| {
        bad(
            "crds",
            Level::Fail,
            format!("CRDs missing: {}", missing.join(", ")),
            format!("kubectl automon enable -n {ns} (installs them)"),
        )
    })
}

/// The operator the CRDs serve, as (namespace/name, version): automon's own, or the reused
/// one the parent names; `None` when it is not found or has no version.
fn crds_operator(
    parent: &ConfigMap,
    extra: &Extra,
    ns: &str,
    reuse: bool,
) -> Option<(String, String)> {
    let reused = parent
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(crate::plan::OPERATOR_FROM));
    extra
        .operators
        .iter()
        .find(|(name, _, _)| !reuse && name == &format!("{ns}/prometheus-operator"))
        .or_else(|| {
            extra
                .operators
                .iter()
                .find(|(name, v, _)| reuse && v.is_some() && reused.is_none_or(|r| r == name))
        })
        .and_then(|(name, v, _)| Some((name.clone(), v.clone()?)))
}

/// The CRDs at each version the operator does not work with, by version (pure).
fn skewed_crds<'a>(
    present: &BTreeMap<&'a str, Option<&'a str>>,
    op_version: &str,
) -> BTreeMap<&'a str, Vec<&'a str>> {
    let mut skewed: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, v) in present {
        let v = v.unwrap_or("unknown");
        if !crds::compatible(v, op_version) {
            skewed.entry(v).or_default().push(name);
        }
    }
    skewed
}

/// The check for CRDs at versions the operator `(name, version)` does not work with: behind
/// it fails (enable updates them), unless they are a reused operator's; ahead it warns.
fn crds_skewed(
    skewed: &BTreeMap<&str, Vec<&str>>,
    present: usize,
    (op_name, op_version): (&str, &str),
    reuse: bool,
    ns: &str,
) -> Finding {
    // An older patch is behind too: `compatible` wants at least the operator's.
    let behind = skewed.keys().any(|v| version_lt(v, op_version));
    let shown: Vec<String> = skewed
        .iter()
        .map(|(v, names)| {
            if names.len() == present {
                format!("{v} (all {})", names.len())
            } else {
                format!("{v} ({})", names.join(", "))
            }
        })
        .collect();
    let skewed_versions: Vec<&str> = skewed.keys().copied().collect();
    let (level, fix) = if behind && reuse {
        (
            Level::Warn,
            format!(
                "update the CRDs of the operator {op_name} to {op_version}, as that installation does (automon leaves another operator's CRDs as they are)"
            ),
        )
    } else if behind {
        (
            Level::Fail,
            format!(
                "kubectl automon enable -n {ns} (updates the CRDs to the operator's version; `--crds-from` to choose the files)"
            ),
        )
    } else {
        (
            Level::Warn,
            if reuse {
                format!(
                    "upgrade the operator {op_name} to {}, or install the CRDs of {op_version}",
                    skewed_versions.join(", ")
                )
            } else {
                ahead_fix(&skewed_versions, ns)
            },
        )
    };
    bad(
        "crds",
        level,
        format!(
            "CRDs at {} are {} the operator {op_name} {op_version}",
            shown.join(", "),
            if behind { "behind" } else { "ahead of" }
        ),
        fix,
    )
}

/// The fix for CRDs ahead of automon's own operator (a rollback past an upgrade, or CRDs another
/// tool updated): never a downgrade of the CRDs, which could drop fields objects hold; an
/// operator that knows them, this plugin's when it does, else a newer plugin's.
fn ahead_fix(ahead: &[&str], ns: &str) -> String {
    let pinned = versions::PROMETHEUS_OPERATOR.version;
    let newest = ahead
        .iter()
        .copied()
        .max_by(|a, b| versions::compare(a, b).unwrap_or(std::cmp::Ordering::Equal))
        .unwrap_or(pinned);
    if version_lt(pinned, newest) {
        format!(
            "upgrade the plugin to one whose operator is {newest} or newer (kubectl krew upgrade automon), then kubectl automon enable -n {ns}; CRDs are never downgraded"
        )
    } else {
        format!(
            "kubectl automon enable -n {ns} (moves the operator to {pinned}, which serves CRDs at {newest}; CRDs are never downgraded)"
        )
    }
}

/// `a < b` by version precedence; unparseable ones sort first.
fn version_lt(a: &str, b: &str) -> bool {
    match (versions::parse(a), versions::parse(b)) {
        (Some(a), Some(b)) => a.cmp_precedence(&b) == std::cmp::Ordering::Less,
        (a, b) => a.is_none() && b.is_some(),
    }
}

/// An aggregated API without a backend holds every namespace deletion in the cluster and
/// breaks discovery for kubectl and controllers: a cluster problem, not the stack's.
fn api_services(extra: &Extra) -> Vec<Finding> {
    let Some(unavailable) = &extra.unavailable_apis else {
        return Vec::new();
    };
    if unavailable.is_empty() {
        return vec![ok(
            "apiServices",
            "every aggregated API is available".to_string(),
        )];
    }
    unavailable
        .iter()
        .map(|u| {
            bad(
                "apiServices",
                Level::Fail,
                format!(
                    "apiservice {} is unavailable ({}): no namespace in the cluster can finish deleting, and discovery fails for every client",
                    u.name, u.why
                ),
                crate::cluster::blocker::fix(u),
            )
        })
        .collect()
}

fn kubelet_services(extra: &Extra) -> Vec<Finding> {
    let maintained: BTreeSet<String> = extra
        .operators
        .iter()
        .flat_map(|(_, _, args)| args.iter())
        .filter_map(|a| a.strip_prefix("--kubelet-service=kube-system/"))
        .map(str::to_string)
        .collect();
    let stale: Vec<&String> = extra
        .kubelet_services
        .iter()
        .filter(|s| !maintained.contains(*s))
        .collect();
    if stale.is_empty() {
        return vec![ok(
            "kubeletService",
            "no stale kubelet Service in kube-system",
        )];
    }
    stale
        .into_iter()
        .map(|s| {
            bad(
                "kubeletService",
                Level::Warn,
                format!(
                    "Service kube-system/{s} is a kubelet Service no running Prometheus Operator maintains (left by a removed stack); its endpoints go stale and a ServiceMonitor selecting k8s-app=kubelet scrapes them"
                ),
                format!("kubectl delete service -n kube-system {s}"),
            )
        })
        .collect()
}

/// API groups the stack writes; a webhook on any of them can block enable.
const STACK_GROUPS: &[&str] = &[
    "",
    "apps",
    "rbac.authorization.k8s.io",
    "networking.k8s.io",
    "policy",
    "apiextensions.k8s.io",
    "monitoring.coreos.com",
];

fn webhooks(extra: &Extra, ns_labels: &BTreeMap<String, String>, ns: &str) -> Vec<Finding> {
    let broken: Vec<&Webhook> = extra
        .webhooks
        .iter()
        .filter(|w| !w.service_exists)
        .filter(|w| {
            w.groups
                .iter()
                .any(|g| g == "*" || STACK_GROUPS.contains(&g.as_str()))
        })
        .filter(|w| {
            w.namespace_selector
                .as_ref()
                .is_none_or(|s| selector::matches(s, ns_labels))
        })
        .collect();
    if broken.is_empty() {
        return vec![ok(
            "webhooks",
            "no admission webhook calls a missing Service",
        )];
    }
    broken
        .into_iter()
        .map(|w| {
            let (sns, sname) = &w.service;
            let effect = if w.fail_closed {
                format!(
                    "with failurePolicy Fail it rejects every matching write ({}) in namespace {ns}",
                    w.resources.join(", ")
                )
            } else {
                "it is skipped (failurePolicy Ignore) but slows every matching write".to_string()
            };
            bad(
                "webhooks",
                if w.fail_closed { Level::Fail } else { Level::Warn },
                format!(
                    "webhook {} ({} {}) calls Service {sns}/{sname}, which does not exist; {effect}",
                    w.name, w.kind, w.configuration
                ),
                format!(
                    "kubectl delete {} {} (if it belongs to an uninstalled stack)",
                    w.kind.to_lowercase(),
                    w.configuration
                ),
            )
        })
        .collect()
}

fn alertmanager(extra: &Extra, ns: &str) -> Option<Finding> {
    let fix_receiver = format!(
        r#"add a receiver (webhook, slack, email, pagerduty, opsgenie or msteams; see alertmanager.receivers in docs/configuration.md) and route to it: kubectl automon enable -n {ns} --set 'alertmanager.receivers=[{{name: team, webhook: {{url: "https://hooks.example.com/alerts"}}}}]' --set alertmanager.route.receiver=team (your receiver's URL in place of the example's)"#
    );
    match &extra.alertmanager_config {
        Ok(None) => None,
        Err(e) => Some(bad(
            "alertmanager",
            Level::Fail,
            e.clone(),
            format!("kubectl automon enable -n {ns}"),
        )),
        Ok(Some(config)) => Some(match status::default_route(config) {
            Some(r) if r.notifies => ok(
                "alertmanager",
                format!("Alertmanager sends alerts to {:?}", r.receiver),
            ),
            Some(r) => bad(
                "alertmanager",
                Level::Warn,
                format!(
                    "Alertmanager sends every alert to the receiver {:?}, which notifies no one (alerts show only in its UI)",
                    r.receiver
                ),
                fix_receiver,
            ),
            None => bad(
                "alertmanager",
                Level::Fail,
                "the Alertmanager configuration has no route receiver".to_string(),
                fix_receiver,
            ),
        }),
    }
}

fn scrapes(snapshot: &Snapshot, status: &Status) -> Option<Finding> {
    let view = status.prometheus.as_ref()?;
    if !view.reachable {
        // Not a failure of the stack, but every scrape and alert check below needs it.
        let ns = &status.namespace;
        let gone = snapshot
            .reused
            .iter()
            .any(|p| p.kind == "Prometheus" && p.custom.is_none());
        let fix = match snapshot.scraping_prometheus() {
            _ if snapshot.asks_query() => format!(
                "kubectl get pods -n {ns} -l {}={} (is Thanos Query ready? it reads every shard), or ask one shard with --prometheus-url",
                crate::model::names::NAME_LABEL,
                crate::render::prometheus::query::NAME
            ),
            Some((pns, pname)) if !gone => format!(
                "kubectl get pods -n {pns} -l {} (are Prometheus {pns}/{pname}'s pods ready?), or ask another with --prometheus-url",
                status::operator_pod_selector("Prometheus", &pname)
            ),
            _ => format!("kubectl automon enable -n {ns}"),
        };
        return Some(bad(
            "scrapes",
            Level::Warn,
            format!(
                "Prometheus did not answer at {}: {}; scrape health and firing alerts unknown",
                view.via,
                view.error.as_deref().unwrap_or("no answer")
            ),
            fix,
        ));
    }
    let t = view.targets.as_ref()?;
    if t.unhealthy.is_empty() {
        let pending = match t.unknown {
            0 => String::new(),
            n => format!(" ({n} not scraped yet)"),
        };
        return Some(ok(
            "scrapes",
            format!("all {} scrape targets up{pending}", t.up),
        ));
    }
    let first: Vec<String> = t
        .unhealthy
        .iter()
        .take(5)
        .map(|d| {
            format!(
                "{} {}{}",
                d.job,
                d.instance,
                d.error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            )
        })
        .collect();
    Some(bad(
        "scrapes",
        Level::Fail,
        format!(
            "{} scrape targets down: {}",
            t.unhealthy.len(),
            first.join("; ")
        ),
        format!("kubectl automon status -n {} -o wide", status.namespace),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Object;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    use serde_json::{Value, json};

    fn prometheus(ns: &str, spec: Value) -> Object {
        serde_json::from_value(json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
            "metadata": {"name": "p", "namespace": ns}, "spec": spec,
        }))
        .unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn another_version_of_the_plugin_is_a_warning_never_a_failure() {
        let with = |installed: Option<&str>| {
            let mut st = Status::not_installed("mon");
            st.stack_version = Some(status::StackVersion::of(installed.map(String::from)));
            stack_version(&st).expect("a check when installed")
        };
        assert_eq!(with(Some(versions::PLUGIN_VERSION)).level, Level::Ok);
        for (installed, fix) in [
            (
                "v0.0.1",
                "run `kubectl automon enable -n mon` to upgrade it",
            ),
            (
                "v99.0.0",
                "upgrade the plugin: kubectl krew upgrade automon",
            ),
            ("dev", "run `kubectl automon enable -n mon` to record"),
        ] {
            let check = with(Some(installed));
            assert_eq!(check.level, Level::Warn, "{installed}");
            assert!(check.fix.as_deref().unwrap().starts_with(fix), "{check:?}");
            let report = super::super::Report::new("mon", vec![check]);
            assert_eq!(report.outcome(), crate::exit::Checks::Passed);
        }
        assert_eq!(stack_version(&Status::not_installed("mon")), None);
    }

    fn sized(head: Option<u64>, rss: Option<u64>, shards: u32) -> Status {
        let mut st = Status::not_installed("automon");
        st.sizing = Some(status::SizingView {
            nodes: 40,
            sized_for: 50,
            resize_for: None,
            series_per_node: 4_609,
            estimated_series: 236_000,
            shards,
            estimated_series_per_shard: 236_000 / u64::from(shards),
            head_series: head,
            memory_limit_bytes: Some(2 << 30),
            resident_memory_bytes: rss,
        });
        st
    }

    #[test]
    fn sizing_warns_past_the_estimate_or_near_the_limit_and_says_what_to_turn_on() {
        let fine = sizing(&sized(Some(200_000), Some(1 << 30), 1), "automon");
        assert_eq!(fine.len(), 1);
        assert_eq!(fine[0].level, Level::Ok);
        assert!(
            fine[0].message.contains("200,000 in the head"),
            "{}",
            fine[0].message
        );

        let over = sizing(&sized(Some(3_100_000), None, 1), "automon");
        assert_eq!(over.len(), 1);
        assert_eq!(over[0].level, Level::Warn);
        assert!(
            over[0].message.contains("holds 3,100,000 series"),
            "{}",
            over[0].message
        );
        assert!(
            over[0]
                .fix
                .as_deref()
                .unwrap()
                .contains("--set prometheus.shards=2"),
            "{:?}",
            over[0].fix
        );

        let full = sizing(&sized(Some(200_000), Some(1900 << 20), 1), "automon");
        assert_eq!(full.len(), 1);
        assert!(
            full[0].message.contains("1900 MiB of its 2048 MiB"),
            "{}",
            full[0].message
        );

        // Sharded: Thanos Query reads the shards together.
        let sharded = sizing(&sized(None, None, 3), "automon");
        assert_eq!(sharded.len(), 1);
        assert_eq!(sharded[0].level, Level::Ok);
        assert!(
            sharded[0]
                .message
                .contains("per shard over 3 shards, read together through Thanos Query"),
            "{}",
            sharded[0].message
        );
        // A cluster that grew past its tier.
        let mut grown = sized(None, None, 1);
        if let Some(z) = grown.sizing.as_mut() {
            z.nodes = 120;
            z.resize_for = Some(250);
        }
        let found = sizing(&grown, "automon");
        assert!(
            found[0]
                .message
                .contains("sized for up to 50 nodes and the cluster has 120"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn selection_follows_the_operator_rules() {
        let have = labels(&[("app.kubernetes.io/part-of", "automon")]);
        let ns = labels(&[("kubernetes.io/metadata.name", "automon")]);
        let sel = |p: &Object| {
            selector::prometheus_selection(
                p,
                "serviceMonitorSelector",
                "serviceMonitorNamespaceSelector",
                &have,
                "automon",
                &ns,
            )
            .map_err(|u| {
                u.describe(
                    "serviceMonitorSelector",
                    "serviceMonitorNamespaceSelector",
                    "automon",
                )
            })
        };
        let ours = prometheus(
            "automon",
            json!({"serviceMonitorSelector": {"matchLabels": {"app.kubernetes.io/part-of": "automon"}}}),
        );
        assert_eq!(sel(&ours), Ok(()));
        let kps = prometheus(
            "automon",
            json!({"serviceMonitorSelector": {"matchLabels": {"release": "kps"}}}),
        );
        assert_eq!(sel(&kps), Err("missing label release=kps".into()));
        // An unset selector selects nothing, however the object is labelled.
        let unset = prometheus("automon", json!({}));
        assert!(sel(&unset).unwrap_err().contains("selects nothing"));
        // An unset namespace selector: only the Prometheus' own namespace.
        let elsewhere = prometheus("monitoring", json!({"serviceMonitorSelector": {}}));
        assert!(
            sel(&elsewhere)
                .unwrap_err()
                .contains("only looks in its own namespace monitoring")
        );
        let all_ns = prometheus(
            "monitoring",
            json!({"serviceMonitorSelector": {}, "serviceMonitorNamespaceSelector": {}}),
        );
        assert_eq!(sel(&all_ns), Ok(()));
        let team_ns = prometheus(
            "monitoring",
            json!({"serviceMonitorSelector": {}, "serviceMonitorNamespaceSelector": {"matchLabels": {"team": "ops"}}}),
        );
        assert!(
            sel(&team_ns)
                .unwrap_err()
                .contains("namespace automon needs label team=ops")
        );
    }

    #[test]
    fn each_reason_a_prometheus_ignores_objects_has_its_own_fix() {
        let kps = ("monitoring".to_string(), "kps".to_string());
        let names = ["a".to_string(), "b".to_string()];
        let keys = ("ruleSelector", "ruleNamespaceSelector");
        let cases = [
            (
                Unmet::Labels(vec!["release=kps".into()]),
                "kubectl automon enable -n mon (labels the objects for the Prometheus it finds), or: kubectl label prometheusrule -n mon a b release=kps --overwrite",
            ),
            (
                Unmet::Labels(vec!["tier in (a,b)".into()]),
                "kubectl automon enable -n mon (labels the objects for the Prometheus it finds); they need tier in (a,b)",
            ),
            (
                Unmet::NamespaceLabels(vec!["team=ops".into()]),
                "kubectl label namespace mon team=ops --overwrite",
            ),
            (
                Unmet::OwnNamespaceOnly("monitoring".into()),
                r#"kubectl patch prometheus -n monitoring kps --type merge -p '{"spec":{"ruleNamespaceSelector":{"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"In","values":["monitoring","mon"]}]}}}'"#,
            ),
            (
                Unmet::SelectorUnset,
                r#"kubectl patch prometheus -n monitoring kps --type merge -p '{"spec":{"ruleSelector":{"matchLabels":{"app.kubernetes.io/part-of":"automon"}}}}'"#,
            ),
        ];
        for (why, fix) in cases {
            assert_eq!(
                selection_fix(&why, "PrometheusRule", &names, &kps, keys, "mon"),
                fix
            );
        }
        // A patch it prints is JSON.
        let patch = selection_fix(
            &Unmet::SelectorUnset,
            "PrometheusRule",
            &names,
            &kps,
            keys,
            "mon",
        );
        let json = patch.split('\'').nth(1).unwrap();
        assert!(serde_json::from_str::<Value>(json).is_ok(), "{json}");
    }

    #[test]
    fn pod_security_that_forbids_host_access_fails_with_the_label_to_set() {
        let f = namespace_pod_security(
            &labels(&[(ENFORCE_LABEL, "restricted")]),
            "automon",
            NODE_EXPORTER,
        );
        assert_eq!(f.level, Level::Fail);
        assert_eq!(
            f.fix.as_deref(),
            Some(
                "kubectl label namespace automon pod-security.kubernetes.io/enforce=privileged --overwrite"
            )
        );
        assert_eq!(
            namespace_pod_security(
                &labels(&[(ENFORCE_LABEL, "privileged")]),
                "automon",
                NODE_EXPORTER
            )
            .level,
            Level::Ok
        );
    }

    fn extra() -> Extra {
        Extra {
            namespace_labels: labels(&[("kubernetes.io/metadata.name", "automon")]),
            prometheuses: Vec::new(),
            service_monitors: Vec::new(),
            crds: Vec::new(),
            operators: Vec::new(),
            kubelet_services: Vec::new(),
            webhooks: Vec::new(),
            alertmanager_config: Ok(None),
            port_holders: Vec::new(),
            free_port: None,
            exporter_namespace: None,
            exporter_scrapes: BTreeMap::new(),
            unavailable_apis: None,
        }
    }

    #[test]
    fn your_monitors_left_out_each_have_their_reason_and_fix() {
        use crate::status::yours::{Kind, Listed, Watched};
        let mut spec = json!({});
        for k in Kind::ALL {
            spec[k.selector_key()] = json!({"matchLabels": {"release": "kps"},
                "matchExpressions": [{"key": "skip", "operator": "NotIn", "values": ["yes"]}]});
            spec[k.namespace_key()] = json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["automon", "team-a"]}]});
        }
        let mut p = prometheus("automon", spec);
        p.metadata.name = Some("automon".into());
        let w = |kind, ns: &str, name: &str, l: &[(&str, &str)]| Watched {
            kind,
            namespace: ns.into(),
            name: name.into(),
            labels: labels(l),
        };
        let mut objects = vec![
            w(Kind::ServiceMonitor, "team-a", "api", &[("release", "kps")]),
            w(Kind::ServiceMonitor, "team-b", "far", &[("release", "kps")]),
            w(Kind::PrometheusRule, "team-c", "slo", &[("release", "kps")]),
            w(
                Kind::PodMonitor,
                "team-a",
                "muted",
                &[("release", "kps"), ("skip", "yes")],
            ),
            w(Kind::ServiceMonitor, "automon", "bare", &[]),
            w(Kind::ServiceMonitor, "automon", "bare2", &[("team", "x")]),
        ];
        objects.sort();
        let listed = Listed {
            objects,
            namespaces: None,
            unreadable: Vec::new(),
        };
        let select: crate::config::Select = serde_json::from_value(json!({
            "labels": {"release": "kps"}, "exclude": {"skip": "yes"}, "namespaces": ["team-a"]
        }))
        .unwrap();
        let found = your_monitors_of(&p, &[], &listed, "applyset-x", &select, true, "automon");
        let got: Vec<(Level, &str, Option<&str>)> = found
            .iter()
            .map(|f| (f.level, f.message.as_str(), f.fix.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    Level::Warn,
                    "2 monitors and rules of yours look meant for the stack but are in namespaces team-b, team-c that Prometheus automon/automon does not look in: servicemonitor team-b/far, prometheusrule team-c/slo",
                    Some(
                        "kubectl automon enable -n automon --set 'prometheus.select.namespaces=[team-a, team-b, team-c]'"
                    )
                ),
                (
                    Level::Warn,
                    "2 ServiceMonitors in namespace automon lack release=kps, which Prometheus automon/automon selects by: bare, bare2",
                    Some("kubectl label servicemonitor -n automon bare bare2 release=kps")
                ),
                (
                    Level::Warn,
                    "1 PodMonitor in namespace team-a carries skip=yes, which prometheus.select.exclude leaves out: muted",
                    Some(
                        "kubectl label podmonitor -n team-a muted skip- (or take it out of prometheus.select.exclude)"
                    )
                ),
            ]
        );
        // automon's default selection: the namespace and the release label, in one enable.
        let mut default = json!({});
        for k in Kind::ALL {
            default[k.selector_key()] =
                json!({"matchLabels": {"app.kubernetes.io/part-of": "automon"}});
        }
        let mut own = prometheus("automon", default);
        own.metadata.name = Some("automon".into());
        let kps_far = Listed {
            objects: vec![w(
                Kind::ServiceMonitor,
                "team-b",
                "far",
                &[("release", "kps")],
            )],
            ..Default::default()
        };
        let none = crate::config::Select::default();
        let found = your_monitors_of(&own, &[], &kps_far, "applyset-x", &none, true, "automon");
        assert_eq!(
            found[0].fix.as_deref(),
            Some(
                "kubectl automon enable -n automon --set 'prometheus.select.namespaces=[team-b]' --set 'prometheus.select.labels={release: kps}'"
            )
        );
        assert!(
            found[0].message.ends_with(
                "; they lack app.kubernetes.io/part-of=automon too, and carry release=kps"
            ),
            "{}",
            found[0].message
        );
        // Beside another operator's Prometheus, whose namespace selector asks for a label.
        let mut kps = prometheus(
            "monitoring",
            json!({
                "serviceMonitorSelector": {"matchLabels": {"release": "kps"}},
                "serviceMonitorNamespaceSelector": {"matchLabels": {"monitored": "yes"}},
            }),
        );
        kps.metadata.name = Some("kps".into());
        let found = your_monitors_of(&kps, &[], &kps_far, "applyset-x", &select, false, "automon");
        assert_eq!(
            found[0].fix.as_deref(),
            Some("kubectl label namespace team-b monitored=yes")
        );
        // Nothing left out: one line that counts what is selected.
        let fine = Listed {
            objects: vec![w(
                Kind::ServiceMonitor,
                "team-a",
                "api",
                &[("release", "kps")],
            )],
            ..Default::default()
        };
        let found = your_monitors_of(&p, &[], &fine, "applyset-x", &select, true, "automon");
        assert_eq!(
            (found[0].level, found[0].message.as_str()),
            (
                Level::Ok,
                "Prometheus automon/automon selects 1 monitor or rule of yours and leaves out none that looks meant for it"
            )
        );
    }

    #[test]
    fn a_kubelet_service_no_operator_maintains_is_stale() {
        let mut e = extra();
        e.kubelet_services = vec!["automon-kubelet".into(), "kps-kubelet".into()];
        e.operators = vec![(
            "automon/prometheus-operator".into(),
            Some("v0.93.1".into()),
            vec!["--kubelet-service=kube-system/automon-kubelet".into()],
        )];
        let f = kubelet_services(&e);
        assert_eq!(f.len(), 1);
        assert!(f[0].message.contains("kube-system/kps-kubelet"));
        assert_eq!(
            f[0].fix.as_deref(),
            Some("kubectl delete service -n kube-system kps-kubelet")
        );
    }

    fn webhook(groups: &[&str], fail_closed: bool, ns_sel: Option<LabelSelector>) -> Webhook {
        Webhook {
            configuration: "kps-admission".into(),
            kind: "ValidatingWebhookConfiguration",
            name: "prometheusrulemutate.monitoring.coreos.com".into(),
            service: ("monitoring".into(), "kps-operator".into()),
            service_exists: false,
            fail_closed,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            resources: vec!["prometheusrules".into()],
            namespace_selector: ns_sel,
        }
    }

    #[test]
    fn only_webhooks_that_can_block_the_stack_are_reported() {
        let mut e = extra();
        e.webhooks = vec![webhook(&["monitoring.coreos.com"], true, None)];
        let f = webhooks(&e, &e.namespace_labels, "automon");
        assert_eq!(f[0].level, Level::Fail);
        assert_eq!(
            f[0].fix.as_deref(),
            Some(
                "kubectl delete validatingwebhookconfiguration kps-admission (if it belongs to an uninstalled stack)"
            )
        );
        e.webhooks = vec![webhook(&["monitoring.coreos.com"], false, None)];
        assert_eq!(
            webhooks(&e, &e.namespace_labels, "automon")[0].level,
            Level::Warn
        );
        // Another API group, or a namespace selector that leaves ours out: not our problem.
        e.webhooks = vec![
            webhook(&["cert-manager.io"], true, None),
            webhook(
                &["*"],
                true,
                Some(
                    serde_json::from_value(
                        json!({"matchLabels": {"kubernetes.io/metadata.name": "other"}}),
                    )
                    .unwrap(),
                ),
            ),
        ];
        assert_eq!(
            webhooks(&e, &e.namespace_labels, "automon")[0].level,
            Level::Ok
        );
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(version_lt("0.80.0", "v0.93.1"));
        assert!(version_lt("v0.9.0", "v0.10.0"));
        assert!(!version_lt("0.95.0", "v0.93.1"));
        assert!(version_lt("unknown", "v0.93.1"));
        assert!(version_lt("v0.93.1-rc.0", "v0.93.1"));
    }

    #[test]
    fn crds_behind_fail_unless_reused_and_ahead_warn() {
        let present: BTreeMap<&str, Option<&str>> = [
            ("alertmanagers.monitoring.coreos.com", Some("v0.89.0")),
            ("podmonitors.monitoring.coreos.com", Some("v0.90.1")),
            ("prometheuses.monitoring.coreos.com", None),
        ]
        .into();
        let skewed = skewed_crds(&present, "v0.90.0");
        assert_eq!(
            skewed,
            BTreeMap::from([
                ("unknown", vec!["prometheuses.monitoring.coreos.com"]),
                ("v0.89.0", vec!["alertmanagers.monitoring.coreos.com"]),
            ])
        );
        let ahead: BTreeMap<&str, Vec<&str>> = [("v0.91.0", vec!["a", "b"])].into();
        // Ahead of this plugin's operator too (v0.94.1 is pinned).
        let far_ahead: BTreeMap<&str, Vec<&str>> = [("v0.99.0", vec!["a", "b"])].into();
        let cases = [
            (
                &skewed,
                false,
                Level::Fail,
                "behind",
                "kubectl automon enable -n automon (updates",
            ),
            (
                &skewed,
                true,
                Level::Warn,
                "behind",
                "update the CRDs of the operator op",
            ),
            (
                &ahead,
                false,
                Level::Warn,
                "ahead of",
                "kubectl automon enable -n automon (moves the operator to v",
            ),
            (
                &far_ahead,
                false,
                Level::Warn,
                "ahead of",
                "upgrade the plugin to one whose operator is v0.99.0 or newer",
            ),
            (
                &ahead,
                true,
                Level::Warn,
                "ahead of",
                "upgrade the operator op to v0.91.0",
            ),
        ];
        for (skewed, reuse, level, words, fix) in cases {
            let f = crds_skewed(skewed, 2, ("op", "v0.90.0"), reuse, "automon");
            assert_eq!(f.level, level, "{f:?}");
            assert!(f.message.contains(words), "{}", f.message);
            assert!(f.fix.as_deref().unwrap().starts_with(fix), "{:?}", f.fix);
        }
        assert!(
            crds_skewed(&ahead, 2, ("op", "v0.90.0"), false, "automon")
                .message
                .starts_with("CRDs at v0.91.0 (all 2) are ahead of")
        );
    }

    #[test]
    fn alerts_routed_to_a_receiver_without_integrations_warn() {
        let mut e = extra();
        e.alertmanager_config = Ok(Some(json!({
            "route": {"receiver": "ui-only"},
            "receivers": [{"name": "ui-only"}, {"name": "team", "webhook_configs": [{"url": "http://x"}]}],
        })));
        let f = alertmanager(&e, "automon").unwrap();
        assert_eq!(f.level, Level::Warn);
        assert!(f.message.contains("\"ui-only\", which notifies no one"));
        e.alertmanager_config = Ok(Some(json!({
            "route": {"receiver": "team"},
            "receivers": [{"name": "team", "webhook_configs": [{"url": "http://x"}]}],
        })));
        assert_eq!(alertmanager(&e, "automon").unwrap().level, Level::Ok);
        e.alertmanager_config = Err("Secret automon/alertmanager-automon-config is missing".into());
        assert_eq!(alertmanager(&e, "automon").unwrap().level, Level::Fail);
    }
}
