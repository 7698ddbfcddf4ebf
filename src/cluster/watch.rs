//! The one wait: watch some objects (kube-runtime's `watcher`: an initial list, then a watch,
//! re-listed when the server says the watch is too old) until a condition over what they are
//! now holds, or a deadline passes. Never a poll: the answer comes when the API server tells.
//! `enable` waits for CRDs to be Established and for workloads to be ready through it,
//! `disable` for what it deleted to be gone.

use futures::{StreamExt as _, stream};
use kube::{
    Api,
    runtime::watcher::{self, Event},
};

use crate::{
    cluster::{Cluster, error::ClusterError},
    model::Object,
};

/// One kind of object to watch: an API (a type, in a namespace or cluster-wide) and which of
/// its objects (labels, fields).
pub struct Source {
    pub api: Api<Object>,
    pub selection: watcher::Config,
}

/// What the sources held when the wait ended, in their order; `met` says whether the
/// condition held (else the deadline passed).
pub struct Waited {
    pub met: bool,
    pub seen: Vec<Vec<Object>>,
}

/// Watches every source at once. After each source has been listed, and after every change,
/// `check` sees what each holds now; the wait ends when it returns `true` or at `deadline`.
/// A failed watch (403, an API that went away) ends it with the cluster's error.
pub async fn until(
    cluster: &Cluster,
    sources: Vec<Source>,
    deadline: std::time::Instant,
    mut check: impl FnMut(&[Vec<Object>]) -> bool,
) -> Result<Waited, ClusterError> {
    let n = sources.len();
    let mut events = stream::select_all(sources.into_iter().enumerate().map(|(i, s)| {
        watcher::watcher(s.api, s.selection)
            .map(move |e| (i, e))
            .boxed()
    }));
    let mut seen: Vec<Vec<Object>> = vec![Vec::new(); n];
    // A re-list in progress replaces what a source holds only when it is complete.
    let mut relisting: Vec<Option<Vec<Object>>> = vec![None; n];
    let mut listed = vec![false; n];
    let deadline = tokio::time::Instant::from_std(deadline);
    loop {
        if listed.iter().all(|l| *l) && check(&seen) {
            return Ok(Waited { met: true, seen });
        }
        let (i, event) = match tokio::time::timeout_at(deadline, events.next()).await {
            // A watcher does not end by itself; if all did, nothing more would come.
            Err(_) | Ok(None) => return Ok(Waited { met: false, seen }),
            Ok(Some((_, Err(e)))) => return Err(failed(cluster, e)),
            Ok(Some((i, Ok(event)))) => (i, event),
        };
        match event {
            Event::Init => relisting[i] = Some(Vec::new()),
            Event::InitApply(o) => relisting[i].get_or_insert_with(Vec::new).push(o),
            Event::InitDone => {
                seen[i] = relisting[i].take().unwrap_or_default();
                listed[i] = true;
            }
            Event::Apply(o) => {
                seen[i].retain(|x| !same(x, &o));
                seen[i].push(o);
            }
            Event::Delete(o) => seen[i].retain(|x| !same(x, &o)),
        }
    }
}

fn same(a: &Object, b: &Object) -> bool {
    a.metadata.name == b.metadata.name && a.metadata.namespace == b.metadata.namespace
}

/// A failed watch as the cluster error it is (a 403 names what is missing, as a list would).
pub fn failed(cluster: &Cluster, e: watcher::Error) -> ClusterError {
    use watcher::Error;
    match e {
        Error::InitialListFailed(e) | Error::WatchStartFailed(e) | Error::WatchFailed(e) => {
            cluster.target.classify(e)
        }
        Error::WatchError(status) => cluster.target.classify(kube::Error::Api(status)),
        Error::NoResourceVersion => ClusterError::Api {
            server: cluster.target.server.clone(),
            code: 0,
            reason: "NoResourceVersion".into(),
            message: "a list came without a resourceVersion to watch from".into(),
        },
    }
}
