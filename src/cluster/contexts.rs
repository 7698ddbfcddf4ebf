//! One question put to several kubeconfig contexts at once (`status`/`doctor --contexts`,
//! `--all-contexts`): which contexts, and a task per context, each with a client of its own
//! built by [`Cluster::connect`] from the same flags with that context, so that the kubeconfig's
//! TLS, credentials and proxy apply per context and one slow cluster delays no other's answer.

use std::future::Future;

use futures::{StreamExt as _, stream::FuturesUnordered};

use crate::cluster::{Cluster, KubeFlags, context_names, error::ClusterError};

/// The contexts the command line names: `--contexts a,b` as given (each once, in its order),
/// or every context of the kubeconfig, sorted by name.
pub fn select(flags: &KubeFlags, named: &[String], all: bool) -> Result<Vec<String>, ClusterError> {
    if all {
        let names = context_names(flags)?;
        if names.is_empty() {
            return Err(ClusterError::InvalidKubeconfig(
                "it defines no contexts, so --all-contexts has nothing to ask".into(),
            ));
        }
        return Ok(names);
    }
    Ok(once_each(named))
}

/// Each name once, in the order first given; empty names dropped (pure).
fn once_each(named: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in named.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        if !out.iter().any(|o| o == n) {
            out.push(n.to_string());
        }
    }
    out
}

/// What one context answered: its cluster's server (once the client was built) and `ask`'s
/// result, or why it could not be asked.
pub struct Answer<T> {
    pub context: String,
    /// The API server's URL, when the kubeconfig gave one.
    pub server: Option<String>,
    pub result: Result<T, ClusterError>,
}

/// Asks every context at once, one task each: builds its client ([`Cluster::connect`] with
/// `--context` set to it, every other flag as given: `-n`, `--request-timeout`, `--as`), then
/// runs `ask` on it. `answered` is told after each answer which contexts are still awaited.
/// Answers come back in the order of `contexts`.
pub async fn ask_each<T, F, Fut>(
    flags: &KubeFlags,
    contexts: &[String],
    ask: F,
    mut answered: impl FnMut(&[&str]),
) -> Vec<Answer<T>>
where
    T: Send + 'static,
    F: Fn(Cluster) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<T, ClusterError>> + Send + 'static,
{
    let mut pending: FuturesUnordered<_> = contexts
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut flags = flags.clone();
            flags.context = Some(name.clone());
            let ask = ask.clone();
            let task = tokio::spawn(async move {
                match Cluster::connect(&flags).await {
                    Ok(cluster) => {
                        let server = Some(cluster.target.server.clone());
                        (server, ask(cluster).await)
                    }
                    Err(e) => (None, Err(e)),
                }
            });
            async move { (i, task.await) }
        })
        .collect();
    let mut answers: Vec<Option<Answer<T>>> = contexts.iter().map(|_| None).collect();
    while let Some((i, joined)) = pending.next().await {
        let (server, result) = match joined {
            Ok(answer) => answer,
            // A panic in a task is a bug of ours: it ends the command as it would with one context.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        answers[i] = Some(Answer {
            context: contexts[i].clone(),
            server,
            result,
        });
        let waiting: Vec<&str> = contexts
            .iter()
            .zip(&answers)
            .filter(|(_, a)| a.is_none())
            .map(|(c, _)| c.as_str())
            .collect();
        answered(&waiting);
    }
    answers.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_contexts_are_asked_once_each_in_the_order_given() {
        let given: Vec<String> = ["prod", "lab", "prod", " ", "staging", "lab"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(once_each(&given), ["prod", "lab", "staging"]);
    }
}
