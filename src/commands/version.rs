//! `version`: the plugin's version and git commit, the component versions the stack pins, the
//! server's, and the version of automon that installed the stack in the namespace.

use serde::Serialize;

use crate::{
    cluster::{Cluster, KubeFlags, error::ClusterError, inventory},
    exit::Verdict,
    model::finding::Level,
    output::{self, Format},
    preflight,
    status::StackVersion,
    versions::{self, COMPONENTS},
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print only the plugin's side; do not contact the server
    #[arg(long)]
    client: bool,
    /// Output format
    #[arg(short = 'o', long, value_enum, default_value = "table", value_parser = ["table", "json", "yaml"])]
    output: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VersionReport {
    plugin_version: &'static str,
    git_commit: &'static str,
    components: Vec<ComponentVersion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<ServerVersion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stack: Option<Stack>,
}

/// The stack in the namespace: which automon installed it, or why that is not known.
#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Stack {
    namespace: String,
    state: StackState,
    /// `installed`, `plugin` and `skew`, when it is installed.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    version: Option<StackVersion>,
    /// Why the parent could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize, Clone, Copy, PartialEq, Eq)]
enum StackState {
    Installed,
    NotInstalled,
    /// The parent could not be read (forbidden, most often): not an error of `version`.
    Unknown,
}

#[derive(Serialize)]
struct ComponentVersion {
    name: &'static str,
    version: &'static str,
    image: String,
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct ServerVersion {
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<String>,
    git_version: String,
    platform: String,
}

pub async fn run(flags: &KubeFlags, args: Args) -> anyhow::Result<Verdict> {
    let format = match args.output.as_str() {
        "json" => Format::Json,
        "yaml" => Format::Yaml,
        _ => Format::Table,
    };
    let mut report = VersionReport {
        plugin_version: versions::PLUGIN_VERSION,
        git_commit: versions::GIT_COMMIT,
        components: COMPONENTS
            .iter()
            .map(|c| ComponentVersion {
                name: c.name,
                version: c.version,
                image: c.image(None),
            })
            .collect(),
        server: None,
        stack: None,
    };
    // As `kubectl version`: the client's part is printed even when the server cannot be
    // asked, then the server's error (and its exit code).
    let server = if args.client {
        Ok(None)
    } else {
        server_and_stack(flags).await.map(Some)
    };
    if let Ok(Some((server, stack))) = &server {
        report.server = Some(server.clone());
        report.stack = Some(stack.clone());
    }
    let text = match format {
        Format::Table | Format::Wide => human(&report),
        f => output::structured(f, &report)?,
    };
    output::print(&text)?;
    server?;
    Ok(Verdict::Done)
}

/// The server's version, warning when it is outside the supported range, and the stack's,
/// warning when it is not this plugin's. One after the other, on one connection.
async fn server_and_stack(flags: &KubeFlags) -> Result<(ServerVersion, Stack), ClusterError> {
    let cluster = Cluster::connect(flags).await?;
    let info = cluster.server_version().await?;
    let parent = inventory::parent_configmap(&cluster.client, &cluster.namespace).await;
    let support = preflight::assess_version(&preflight::ServerVersion {
        git_version: info.git_version.clone(),
        major: info.major.clone(),
        minor: info.minor.clone(),
    });
    if support.level != Level::Ok {
        output::warning(&support.message);
    }
    let namespace = cluster.namespace.clone();
    let stack = match parent {
        Ok(Some(parent)) => {
            let version = StackVersion::of_parent(&parent);
            if let Some((what, fix)) = version.advice(&namespace) {
                output::warning(&format!("{what}; {fix}"));
            }
            Stack {
                namespace,
                state: StackState::Installed,
                version: Some(version),
                error: None,
            }
        }
        Ok(None) => Stack {
            namespace,
            state: StackState::NotInstalled,
            version: None,
            error: None,
        },
        // Reading a ConfigMap is more than `version` needs otherwise: say why, and go on.
        Err(e) => {
            let error = cluster.target.classify(e).to_string();
            output::warning(&format!(
                "cannot tell which version of automon is installed in namespace {namespace}: {error}"
            ));
            Stack {
                namespace,
                state: StackState::Unknown,
                version: None,
                error: Some(error),
            }
        }
    };
    Ok((
        ServerVersion {
            url: cluster.target.server.clone(),
            context: cluster.context.clone(),
            git_version: info.git_version,
            platform: info.platform,
        },
        stack,
    ))
}

fn human(r: &VersionReport) -> String {
    let mut out = format!(
        "Plugin Version: {}\nGit Commit:     {}\n",
        r.plugin_version, r.git_commit
    );
    if let Some(s) = &r.server {
        out.push_str(&format!("Server Version: {}\n", s.git_version));
        let ctx = s
            .context
            .as_deref()
            .map(|c| format!(" (context {c})"))
            .unwrap_or_default();
        out.push_str(&format!("Server:         {}{ctx}\n", s.url));
    }
    if let Some(stack) = &r.stack {
        let version = match (stack.state, &stack.version) {
            (StackState::Installed, Some(v)) => v.installed.as_deref().unwrap_or("unknown"),
            (StackState::NotInstalled, _) => "not installed",
            _ => "unknown",
        };
        out.push_str(&format!(
            "Stack Version:  {version} (namespace {})\n",
            stack.namespace
        ));
    }
    out.push('\n');
    let rows: Vec<Vec<&str>> = r
        .components
        .iter()
        .map(|c| vec![c.name, c.version, c.image.as_str()])
        .collect();
    out.push_str(&output::table(&["component", "version", "image"], &rows));
    out
}
