//! Replacing the pods of Prometheus and Alertmanager with one ready throughout: the waits and
//! writes of [`super::surge`]. Each single-replica one is raised to two replicas before the run
//! changes it (its second pod ready), the operator's new version runs before the objects it
//! reads are applied, each rollout is watched to its end, then the replicas go back to the
//! configured number. All of it with the run's own field manager, so that neither `reconcile`
//! (which repairs only what another manager took) nor the next `enable` fights it: an enable
//! stopped midway leaves two replicas that the next one puts back.

use std::time::{Duration, Instant};

use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{PersistentVolumeClaim, Pod},
};
use kube::{
    Api,
    api::{ListParams, Patch, PatchParams},
};

use super::{
    rollout::{self, secs},
    surge::{self, Replaced, SURGE_REPLICAS},
};
use crate::{
    cluster::{
        Cluster,
        apply::{self, ApplyOptions},
        revision::Payload,
    },
    model::{Object, kind},
    output::{diag, warning},
    plan::{ClusterState, Plan},
};

/// How long a second pod may take to be ready before the rollout goes on without it.
const SURGE_READY: Duration = Duration::from_secs(180);

/// How often the pods a surge lent are looked for once deleted, until they are gone.
const RELEASED_POLL: Duration = Duration::from_millis(250);

/// The Prometheus and Alertmanager objects a run replaces the pods of, and how far it got.
pub(super) struct Replacing {
    items: Vec<Item>,
    namespace: String,
    /// The operator's config-reloader image, once a new operator runs: the StatefulSets it
    /// rewrites carry it.
    reloader: Option<String>,
}

struct Item {
    replaced: Replaced,
    /// Lent a second replica that is ready.
    surged: bool,
    /// The operator's StatefulSets of it.
    selector: String,
    /// Claims the second replica made that were not there before: deleted with it.
    new_claims: Vec<String>,
}

impl Replacing {
    /// What `plan` replaces in a cluster in `state` (pure, [`surge::replaced`]).
    pub(super) fn of(plan: &Plan, state: &ClusterState, accepted: Option<&Payload>) -> Replacing {
        let items = surge::replaced(plan, state, accepted)
            .into_iter()
            .map(|replaced| Item {
                selector: surge::statefulset_selector(
                    kind(&replaced.desired),
                    replaced
                        .desired
                        .metadata
                        .name
                        .as_deref()
                        .unwrap_or_default(),
                ),
                replaced,
                surged: false,
                new_claims: Vec::new(),
            })
            .collect();
        Replacing {
            items,
            namespace: plan.namespace.clone(),
            reloader: None,
        }
    }

    /// Before anything they read changes: each single-replica one raised to two replicas, as
    /// automon last applied it, until its second pod is ready. One whose second pod is not
    /// ready within [`SURGE_READY`] (no room on the nodes, a claim that does not bind) goes back
    /// to one replica, and its rollout has a window, said so.
    pub(super) async fn up(
        &mut self,
        cluster: &Cluster,
        options: ApplyOptions,
        deadline: Instant,
    ) -> anyhow::Result<()> {
        let namespace = self.namespace.clone();
        // Only what serves now can have a window: without a ready pod (no operator runs it,
        // no node takes it) there is nothing to keep serving, and no rollout to watch.
        let mut serving = Vec::new();
        for item in std::mem::take(&mut self.items) {
            let sets = statefulsets(cluster, &namespace, &item.selector).await?;
            if surge::ready_sets(&sets) {
                serving.push(item);
            }
        }
        self.items = serving;
        let mut raised = Vec::new();
        for (i, item) in self.items.iter_mut().enumerate() {
            let name = item.replaced.name();
            if !item.replaced.single() {
                continue;
            }
            let Some(body) = item.replaced.surge.clone() else {
                warning(&format!(
                    "{name} has one replica and no recorded revision says how automon last applied it, so no second replica can be raised beside it: its pod is replaced ({}), a window without a ready pod",
                    item.replaced.why
                ));
                continue;
            };
            let before = claims_there(cluster, &namespace, &item.selector).await?;
            if let Err(e) = apply::server_side_apply(cluster, &body, options).await {
                warning(&format!(
                    "{name}: could not raise it to {SURGE_REPLICAS} replicas ({e}); its pod is replaced without a second one beside it, a window without a ready pod"
                ));
                continue;
            }
            diag!(
                "Surge     {name}: its pod is replaced ({}); raised to {SURGE_REPLICAS} replicas first, so that one stays ready",
                item.replaced.why
            );
            raised.push((i, before));
        }
        for (i, before) in raised {
            let item = &mut self.items[i];
            let name = item.replaced.name();
            let started = Instant::now();
            let until = deadline.min(started + SURGE_READY);
            let label = short(&item.replaced.desired);
            let rolled = rollout::wait_statefulsets(
                cluster,
                &item.replaced.desired,
                SURGE_REPLICAS,
                None,
                until,
                &label,
            )
            .await?;
            item.new_claims = new_claims(&rolled.sets, &before);
            if rolled.met {
                diag!(
                    "Surge     {name}: second pod ready in {}",
                    secs(started.elapsed())
                );
                item.surged = true;
                continue;
            }
            let why = rollout::not_ready_why(cluster, &namespace, &item.selector).await;
            if let Some(body) = &item.replaced.surge {
                let back = surge::with_replicas(body, item.replaced.replicas());
                apply::server_side_apply(cluster, &back, options).await?;
            }
            delete_claims(cluster, &namespace, &item.new_claims).await;
            warning(&format!(
                "{name}: its second pod was not ready within {} ({why}); removed it: its one pod is replaced without a second beside it, a window without a ready pod",
                crate::cluster::error::humantime(started.elapsed())
            ));
        }
        Ok(())
    }

    /// The object the stack phase applies for `o`: two replicas while it is lent a second.
    pub(super) fn during(&self, o: &Object) -> Option<Object> {
        let key = apply::key(o);
        self.items
            .iter()
            .find(|i| i.surged && apply::key(&i.replaced.desired) == key)
            .map(|i| i.replaced.during())
    }

    /// The keys of what is lent a second replica: applied by the stack phase whatever the
    /// last run left.
    pub(super) fn surged(&self) -> impl Iterator<Item = apply::Key> + '_ {
        self.items
            .iter()
            .filter(|i| i.surged)
            .map(|i| apply::key(&i.replaced.desired))
    }

    /// The new `operator` runs alone: the StatefulSets it rewrites from now on carry its
    /// config-reloader, which is how their rollout is known to be its.
    pub(super) fn operator_rolled_out(&mut self, operator: &Object) {
        self.reloader = surge::reloader_image(operator);
    }

    /// After the stack phase: each rollout watched to its end (the longest time without a
    /// ready pod measured), then what was lent a second replica back to its configured
    /// replicas ([`Replacing::back`]). `record` gets each object as last applied. A rollout not
    /// done by `deadline` stops the run (`Err`): the next enable puts the replicas back.
    pub(super) async fn down(
        &mut self,
        cluster: &Cluster,
        options: ApplyOptions,
        deadline: Instant,
        mut record: impl FnMut(&Object),
    ) -> anyhow::Result<()> {
        for item in &self.items {
            let name = item.replaced.name();
            let want = if item.surged {
                SURGE_REPLICAS
            } else {
                item.replaced.replicas()
            };
            let started = Instant::now();
            let rolled = self.rolled_out(cluster, item, want, deadline).await?;
            let mut window = rolled.window;
            if item.surged {
                let applied = self
                    .back(cluster, item, &rolled.sets, options, deadline)
                    .await?;
                window = window.max(applied.1);
                record(&applied.0);
            }
            let took = secs(started.elapsed());
            let gap = crate::cluster::error::humantime(window);
            match (item.surged, window.is_zero()) {
                (true, true) => diag!(
                    "Surge     {name}: rolled out in {took} with a ready pod throughout; back to {}",
                    crate::output::plural(item.replaced.replicas() as usize, "replica")
                ),
                (true, false) => warning(&format!(
                    "{name}: rolled out in {took}, and for {gap} no pod of it was ready although it had a second replica"
                )),
                (false, _) if item.replaced.single() => warning(&format!(
                    "{name}: rolled out in {took} with one replica: no pod of it was ready for {gap} (at least: measured from the end of the stack phase)"
                )),
                (false, _) => {}
            }
        }
        // Pods an enable stopped midway released and left: theirs are ready again by now.
        delete_released(cluster, &self.namespace, None, deadline).await;
        Ok(())
    }

    /// Until `item`'s StatefulSets have `want` pods updated and ready, or `deadline` (`Err`).
    async fn rolled_out(
        &self,
        cluster: &Cluster,
        item: &Item,
        want: i64,
        deadline: Instant,
    ) -> anyhow::Result<rollout::Rolled> {
        let rolled = rollout::wait_statefulsets(
            cluster,
            &item.replaced.desired,
            want,
            self.reloader.as_deref(),
            deadline,
            &short(&item.replaced.desired),
        )
        .await?;
        if !rolled.met {
            anyhow::bail!(
                "{} did not finish its rollout within --timeout ({}); {}run `kubectl automon enable` again once it has (kubectl get statefulsets -n {} -l {})",
                item.replaced.name(),
                rolled.state,
                if item.surged {
                    format!(
                        "it keeps {SURGE_REPLICAS} replicas until the next enable puts back {}: ",
                        item.replaced.replicas()
                    )
                } else {
                    String::new()
                },
                self.namespace,
                item.selector
            );
        }
        Ok(rolled)
    }

    /// Back to the configured replicas with a ready pod throughout. Fewer replicas can change
    /// the pod template too (Alertmanager lists its peers in its arguments), and the
    /// StatefulSet controller then deletes the pod it removes and replaces the one it keeps at
    /// once: so the lent pods are released from their StatefulSets first and serve on (the
    /// Services select them still) until the StatefulSets' own are ready, then deleted with
    /// the claims they made. The object as applied, and the longest window seen.
    async fn back(
        &self,
        cluster: &Cluster,
        item: &Item,
        sets: &[serde_json::Value],
        options: ApplyOptions,
        deadline: Instant,
    ) -> anyhow::Result<(Object, Duration)> {
        let name = item
            .replaced
            .desired
            .metadata
            .name
            .as_deref()
            .unwrap_or_default();
        let lent = surge::lent_pods(sets, item.replaced.replicas());
        release(cluster, &self.namespace, &lent, name).await?;
        let applied = apply::server_side_apply(cluster, &item.replaced.desired, options).await?;
        let rolled = self
            .rolled_out(cluster, item, item.replaced.replicas(), deadline)
            .await?;
        delete_released(cluster, &self.namespace, Some(name), deadline).await;
        delete_claims(cluster, &self.namespace, &item.new_claims).await;
        Ok((applied, rolled.window))
    }
}

/// Releases `pods` from their StatefulSet: the label it selects by removed (it lets go of them
/// and removes its owner reference), [`surge::RELEASED_LABEL`] set to `owner`.
async fn release(
    cluster: &Cluster,
    namespace: &str,
    pods: &[String],
    owner: &str,
) -> anyhow::Result<()> {
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    let patch = serde_json::json!({"metadata": {
        "labels": {surge::RELEASE_BY: null, surge::RELEASED_LABEL: owner},
        "ownerReferences": null,
    }});
    for pod in pods {
        match api
            .patch(pod, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(cluster.target.classify(e).into()),
        }
    }
    Ok(())
}

/// Deletes the pods released by a surge (of `owner`, or all).
async fn delete_released(
    cluster: &Cluster,
    namespace: &str,
    owner: Option<&str>,
    deadline: Instant,
) {
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    let selector = match owner {
        Some(o) => format!("{}={o}", surge::RELEASED_LABEL),
        None => surge::RELEASED_LABEL.to_string(),
    };
    let params = ListParams::default().labels(&selector);
    let fix = format!("kubectl delete pods -n {namespace} -l {selector}");
    match api.delete_collection(&Default::default(), &params).await {
        // None to delete (every run without a surge): nothing to wait for either.
        Ok(deleted) if deleted.as_ref().left().is_some_and(|l| l.items.is_empty()) => return,
        Ok(_) => {}
        Err(e) => {
            warning(&format!(
                "could not delete the pods a surge lent ({}); delete them with: {fix}",
                cluster.target.classify(e)
            ));
            return;
        }
    }
    // Deleted is not gone: each terminates within its grace period. The run ends with the
    // configured replicas only, so that what `kubectl get pods` shows next is the stack as set.
    loop {
        match api.list_metadata(&params).await {
            Ok(left) if left.items.is_empty() => return,
            Ok(left) if Instant::now() >= deadline => {
                warning(&format!(
                    "{} a surge lent still terminating at --timeout; they go by themselves (or: {fix})",
                    crate::output::plural(left.items.len(), "pod")
                ));
                return;
            }
            Ok(_) => tokio::time::sleep(RELEASED_POLL).await,
            Err(e) => {
                warning(&format!(
                    "could not see whether the pods a surge lent are gone ({}): kubectl get pods -n {namespace} -l {selector}",
                    cluster.target.classify(e)
                ));
                return;
            }
        }
    }
}

/// `prometheus`, `alertmanager`, `prometheus-ruler`: as the progress lines name them.
fn short(o: &Object) -> String {
    let k = kind(o).to_lowercase();
    match o.metadata.name.as_deref() {
        Some("automon") | None => k,
        Some(n) => format!("{k}-{}", n.strip_prefix("automon-").unwrap_or(n)),
    }
}

/// The StatefulSets behind `selector`, as JSON.
async fn statefulsets(
    cluster: &Cluster,
    namespace: &str,
    selector: &str,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let sets: Api<StatefulSet> = Api::namespaced(cluster.client.clone(), namespace);
    let sets = sets
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| cluster.target.classify(e))?;
    Ok(sets
        .items
        .iter()
        .filter_map(|s| serde_json::to_value(s).ok())
        .collect())
}

/// The claims of ordinal 1 and up of the StatefulSets behind `selector` that exist now.
async fn claims_there(
    cluster: &Cluster,
    namespace: &str,
    selector: &str,
) -> anyhow::Result<Vec<String>> {
    let wanted: Vec<String> = statefulsets(cluster, namespace, selector)
        .await?
        .iter()
        .flat_map(|s| surge::claims(s, 1))
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), namespace);
    let there = claims
        .list_metadata(&ListParams::default())
        .await
        .map_err(|e| cluster.target.classify(e))?;
    Ok(there
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .filter(|n| wanted.contains(n))
        .collect())
}

/// The claims of the second replica (ordinal 1) that were not `before` it.
fn new_claims(sets: &[serde_json::Value], before: &[String]) -> Vec<String> {
    sets.iter()
        .flat_map(|s| surge::claims(s, 1))
        .filter(|c| !before.contains(c))
        .collect()
}

/// Deletes the claims the second replica made (`disable` keeps claims; these held nothing
/// anyone asked to keep). One that cannot be deleted is said, with the command that does it.
async fn delete_claims(cluster: &Cluster, namespace: &str, names: &[String]) {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), namespace);
    for name in names {
        match api.delete(name, &Default::default()).await {
            Ok(_) => diag!("Surge     persistentvolumeclaim/{name} of the second replica deleted"),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => warning(&format!(
                "could not delete persistentvolumeclaim/{name}, which the second replica made ({}); delete it with: kubectl delete pvc {name} -n {namespace}",
                cluster.target.classify(e)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_claims_the_second_replica_made_are_deleted() {
        let set = json!({"metadata": {"name": "prometheus-automon"},
            "spec": {"volumeClaimTemplates": [{"metadata": {"name": "prometheus-automon-db"}}]}});
        let claim = "prometheus-automon-db-prometheus-automon-1".to_string();
        assert_eq!(
            new_claims(std::slice::from_ref(&set), &[]),
            vec![claim.clone()]
        );
        assert!(new_claims(&[set], &[claim]).is_empty());
    }

    #[test]
    fn progress_names_read_like_the_wait() {
        let o = |k: &str, n: &str| -> Object {
            serde_json::from_value(json!({"apiVersion": "monitoring.coreos.com/v1", "kind": k, "metadata": {"name": n}})).unwrap()
        };
        assert_eq!(short(&o("Prometheus", "automon")), "prometheus");
        assert_eq!(short(&o("Prometheus", "automon-ruler")), "prometheus-ruler");
        assert_eq!(short(&o("Alertmanager", "automon")), "alertmanager");
    }
}
