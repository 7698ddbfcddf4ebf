//! `status` and `doctor` across kubeconfig contexts (`--contexts a,b`, `--all-contexts`): the
//! flags, the contexts asked at once (`cluster::contexts`), each context's answer or the error
//! that stopped it, its exit code, the worst of them, and what is the same in both commands'
//! output: a heading per context, the list for `-o json|yaml`, and every command printed for a
//! context naming it.

use std::io::IsTerminal as _;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::{
    cluster::{
        Cluster, KubeFlags,
        contexts::{self, Answer},
        error::ClusterError,
    },
    exit,
    output::{self, Format},
    pipeline::rollout::Progress,
    status::API_VERSION,
};

/// `--contexts`, `--all-contexts`: shared by `status` and `doctor`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ContextsArgs {
    /// Ask these kubeconfig contexts at once (comma-separated), one answer each
    #[arg(
        long,
        value_name = "NAMES",
        value_delimiter = ',',
        conflicts_with_all = ["context", "cluster", "user"]
    )]
    pub contexts: Vec<String>,
    /// Ask every context of the kubeconfig at once (the merged KUBECONFIG, or --kubeconfig)
    #[arg(long, conflicts_with_all = ["contexts", "context", "cluster", "user"])]
    pub all_contexts: bool,
}

impl ContextsArgs {
    /// Whether the command runs across contexts.
    pub fn selected(&self) -> bool {
        self.all_contexts || !self.contexts.is_empty()
    }
}

/// One context's answer: where it is, its server's version, and what the command found there
/// or the error that stopped it.
pub struct Asked<T> {
    pub context: String,
    pub server: Option<String>,
    pub version: Option<String>,
    pub outcome: Result<T, ClusterError>,
}

impl<T> Asked<T> {
    /// Its exit code: `code` of what was found, or the error's.
    pub fn code(&self, code: impl Fn(&T) -> u8) -> u8 {
        match &self.outcome {
            Ok(found) => code(found),
            Err(e) => exit::cluster_code(e),
        }
    }

    /// `Context   prod (https://10.0.0.1:6443, v1.36.3)`, the line above its part of the
    /// output.
    pub fn heading(&self) -> String {
        let about: Vec<&str> = [self.server.as_deref(), self.version.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        if about.is_empty() {
            format!("Context   {}", self.context)
        } else {
            format!("Context   {} ({})", self.context, about.join(", "))
        }
    }
}

/// Asks every selected context at once with `ask` (run on each context's own client, beside
/// a question for its server's version) and returns the answers in the contexts' order. On a
/// terminal a line on stderr says which contexts are still awaited.
pub async fn ask<T, F, Fut>(
    flags: &KubeFlags,
    selection: &ContextsArgs,
    ask: F,
) -> anyhow::Result<Vec<Asked<T>>>
where
    T: Send + 'static,
    F: Fn(Cluster) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<T, ClusterError>> + Send + 'static,
{
    let names = contexts::select(flags, &selection.contexts, selection.all_contexts)?;
    let mut progress = std::io::stderr().is_terminal().then(Progress::default);
    if let Some(p) = progress.as_mut() {
        p.show(format!("Asking {}", output::plural(names.len(), "context")));
    }
    let answers = contexts::ask_each(
        flags,
        &names,
        move |cluster: Cluster| {
            let ask = ask.clone();
            async move {
                let (version, found) = tokio::join!(cluster.server_version(), ask(cluster.clone()));
                Ok((version.ok().map(|v| v.git_version), found))
            }
        },
        |waiting| {
            if let Some(p) = progress.as_mut().filter(|_| !waiting.is_empty()) {
                p.show(format!(
                    "Asked {} of {}; waiting for {}",
                    names.len() - waiting.len(),
                    output::plural(names.len(), "context"),
                    waiting.join(", ")
                ));
            }
        },
    )
    .await;
    if let Some(p) = progress.as_mut() {
        p.show(String::new());
        p.end();
    }
    Ok(answers.into_iter().map(flatten).collect())
}

/// What a command's answers across contexts are called in `-o json|yaml` (`StatusList`, and
/// `status` for what each context found) and the exit code of what one context found.
pub struct Listed<T> {
    pub kind: &'static str,
    pub key: &'static str,
    pub code: fn(&T) -> u8,
}

/// [`ask`], then prints the answers (the list for `structured`, else `human`'s text) and
/// returns the worst exit code.
pub async fn answer<T, F, Fut>(
    flags: &KubeFlags,
    selection: &ContextsArgs,
    asking: F,
    structured_as: Option<Format>,
    listed: &Listed<T>,
    human: impl FnOnce(&[Asked<T>]) -> String,
) -> anyhow::Result<exit::Verdict>
where
    T: serde::Serialize + Send + 'static,
    F: Fn(Cluster) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<T, ClusterError>> + Send + 'static,
{
    let asked = ask(flags, selection, asking).await?;
    let text = match structured_as {
        Some(f) => structured(f, listed.kind, listed.key, &asked, listed.code)?,
        None => human(&asked),
    };
    output::print(&text)?;
    Ok(exit::Verdict::Worst(worst(&asked, listed.code)))
}

fn flatten<T>(a: Answer<(Option<String>, Result<T, ClusterError>)>) -> Asked<T> {
    let (version, outcome) = match a.result {
        Ok((version, found)) => (version, found),
        Err(e) => (None, Err(e)),
    };
    Asked {
        context: a.context,
        server: a.server,
        version,
        outcome,
    }
}

/// What stopped a context's answer, in one word: `Kubeconfig`, `Unreachable`,
/// `Unauthorized`, `Forbidden` or `Error` (pure; the exit code says the same in a number).
pub fn error_kind(e: &ClusterError) -> &'static str {
    match exit::cluster_code(e) {
        exit::KUBECONFIG => "Kubeconfig",
        exit::UNREACHABLE => "Unreachable",
        exit::UNAUTHORIZED => "Unauthorized",
        exit::FORBIDDEN => "Forbidden",
        _ => "Error",
    }
}

/// The error as a table's last column: its kind, then the reason without what the kind
/// already says (pure).
pub fn error_verdict(e: &ClusterError) -> String {
    let reason = match e {
        ClusterError::Unreachable { server, reason } => format!("{server}: {reason}"),
        ClusterError::Unauthorized { server, user } => format!(
            "{server} rejected the credentials of user {user:?} (401); log in again or fix the user in the kubeconfig"
        ),
        ClusterError::Forbidden(f) => f.to_string().trim_start_matches("forbidden: ").to_string(),
        e => e.to_string(),
    };
    format!("{}: {reason}", error_kind(e))
}

/// `-o json|yaml`: `{apiVersion, kind, exitCode, items: [{context, server, serverVersion,
/// exitCode, <key>: what was found | error: {kind, message}}]}`.
pub fn structured<T: serde::Serialize>(
    format: Format,
    kind: &str,
    key: &str,
    asked: &[Asked<T>],
    code: impl Fn(&T) -> u8,
) -> anyhow::Result<String> {
    let items = asked
        .iter()
        .map(|a| {
            let mut found = BTreeMap::new();
            if let Ok(f) = &a.outcome {
                found.insert(key.to_string(), serde_json::to_value(f)?);
            }
            Ok(Item {
                context: &a.context,
                server: a.server.as_deref(),
                server_version: a.version.as_deref(),
                exit_code: a.code(&code),
                found,
                error: a.outcome.as_ref().err().map(|e| ErrorView {
                    kind: error_kind(e),
                    message: e.to_string(),
                }),
            })
        })
        .collect::<anyhow::Result<Vec<Item>>>()?;
    let list = List {
        api_version: API_VERSION,
        kind,
        exit_code: worst(asked, &code),
        items,
    };
    output::structured(format, &list)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct List<'a> {
    api_version: &'static str,
    kind: &'a str,
    exit_code: u8,
    items: Vec<Item<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Item<'a> {
    context: &'a str,
    server: Option<&'a str>,
    server_version: Option<&'a str>,
    exit_code: u8,
    /// `status` or `doctor`: what the command found there.
    #[serde(flatten)]
    found: BTreeMap<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorView>,
}

#[derive(Serialize)]
struct ErrorView {
    kind: &'static str,
    message: String,
}

/// The worst exit code of the answers ([`exit::worst`]).
pub fn worst<T>(asked: &[Asked<T>], code: impl Fn(&T) -> u8) -> u8 {
    exit::worst(asked.iter().map(|a| a.code(&code)))
}

/// The kubectl commands in `text` (what a fix or a verdict tells the user to run) with the
/// context they are for: `kubectl automon --context X …` (a plugin takes kubectl's flags after
/// its name), `kubectl --context X get …`; prose that names kubectl, `kubectl krew` (no
/// cluster) and a command that already names a context are left as they are (pure).
pub fn for_context(text: &str, context: &str) -> String {
    const VERBS: [&str; 21] = [
        "get",
        "describe",
        "create",
        "delete",
        "apply",
        "patch",
        "label",
        "annotate",
        "logs",
        "edit",
        "scale",
        "rollout",
        "auth",
        "exec",
        "port-forward",
        "top",
        "cordon",
        "uncordon",
        "drain",
        "taint",
        "wait",
    ];
    let flag = format!("--context {} ", output::shell_word(context));
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("kubectl ") {
        let starts_word = rest[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '-' || c == '_'));
        let after = &rest[at + "kubectl ".len()..];
        let word = after.split([' ', '`', ')', ',', ';']).next().unwrap_or("");
        out.push_str(&rest[..at]);
        out.push_str("kubectl ");
        rest = after;
        if !starts_word {
            continue;
        }
        if word == "automon" {
            out.push_str("automon ");
            rest = after["automon".len()..].trim_start_matches(' ');
            if !rest.starts_with("--context") {
                out.push_str(&flag);
            }
        } else if VERBS.contains(&word) {
            out.push_str(&flag);
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_name_the_context_and_prose_is_left_alone() {
        let cases = [
            (
                "fix: kubectl automon enable -n automon --set nodeExporter.tolerations=all, or: kubectl label node gpu-7 automon.io/exclude=true --overwrite (to accept the gap)",
                "fix: kubectl automon --context prod enable -n automon --set nodeExporter.tolerations=all, or: kubectl --context prod label node gpu-7 automon.io/exclude=true --overwrite (to accept the gap)",
            ),
            (
                "Run `kubectl automon doctor -n mon` for fixes.",
                "Run `kubectl automon --context prod doctor -n mon` for fixes.",
            ),
            (
                "upgrade the plugin: kubectl krew upgrade automon",
                "upgrade the plugin: kubectl krew upgrade automon",
            ),
            (
                "as kubectl does, (`kubectl get pods -n x`)",
                "as kubectl does, (`kubectl --context prod get pods -n x`)",
            ),
            (
                "kubectl automon --context lab status",
                "kubectl automon --context lab status",
            ),
            ("run-kubectl get x", "run-kubectl get x"),
        ];
        for (text, want) in cases {
            assert_eq!(for_context(text, "prod"), want, "{text}");
        }
        assert_eq!(
            for_context("kubectl get nodes", "arn:aws:eks:eu-west-1:1:cluster/prod"),
            "kubectl --context arn:aws:eks:eu-west-1:1:cluster/prod get nodes"
        );
        assert_eq!(
            for_context("kubectl get nodes", "my lab"),
            "kubectl --context 'my lab' get nodes"
        );
    }

    fn asked(context: &str, outcome: Result<u8, ClusterError>) -> Asked<u8> {
        Asked {
            context: context.into(),
            server: Some("https://127.0.0.1:6443".into()),
            version: None,
            outcome,
        }
    }

    #[test]
    fn each_context_has_its_code_and_the_list_the_worst() {
        let refused = ClusterError::Unreachable {
            server: "https://127.0.0.1:1".into(),
            reason: "connection refused".into(),
        };
        let rejected = ClusterError::Unauthorized {
            server: "https://127.0.0.1:6443".into(),
            user: "bogus".into(),
        };
        let list = vec![
            asked("a", Ok(0)),
            asked("b", Ok(exit::DEGRADED)),
            asked("c", Err(refused)),
            asked("d", Err(rejected)),
        ];
        let codes: Vec<u8> = list.iter().map(|a| a.code(|c| *c)).collect();
        assert_eq!(codes, [0, 8, 4, 5]);
        assert_eq!(worst(&list, |c| *c), exit::UNAUTHORIZED);
        assert_eq!(
            error_verdict(list[2].outcome.as_ref().unwrap_err()),
            "Unreachable: https://127.0.0.1:1: connection refused"
        );
        let text = structured(Format::Json, "StatusList", "status", &list, |c| *c).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["exitCode"], 5);
        assert_eq!(v["items"][1]["status"], 8);
        assert_eq!(v["items"][2]["error"]["kind"], "Unreachable");
        assert!(v["items"][2].get("status").is_none(), "{text}");
        assert_eq!(v["items"][3]["exitCode"], 5);
        assert_eq!(list[0].heading(), "Context   a (https://127.0.0.1:6443)");
    }
}
