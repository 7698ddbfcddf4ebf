//! `version`: the plugin's version and git commit, the component versions the stack pins, and
//! the server's.

use serde::Serialize;

use crate::{
    cluster::{Cluster, KubeFlags, error::ClusterError},
    exit::Verdict,
    output::{self, Format},
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
    };
    // As `kubectl version`: the client's part is printed even when the server cannot be
    // asked, then the server's error (and its exit code).
    let server = if args.client {
        Ok(None)
    } else {
        server_version(flags).await.map(Some)
    };
    report.server = server.as_ref().ok().cloned().flatten();
    let text = match format {
        Format::Table | Format::Wide => human(&report),
        f => output::structured(f, &report)?,
    };
    output::print(&text)?;
    server?;
    Ok(Verdict::Done)
}

/// The server's version, warning when it is outside the supported range.
async fn server_version(flags: &KubeFlags) -> Result<ServerVersion, ClusterError> {
    let cluster = Cluster::connect(flags).await?;
    let info = cluster.server_version().await?;
    if let Some(warning) = support_warning(&info.major, &info.minor) {
        crate::output::warning(&warning);
    }
    Ok(ServerVersion {
        url: cluster.target.server.clone(),
        context: cluster.context.clone(),
        git_version: info.git_version,
        platform: info.platform,
    })
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
    out.push('\n');
    let rows: Vec<Vec<&str>> = r
        .components
        .iter()
        .map(|c| vec![c.name, c.version, c.image.as_str()])
        .collect();
    out.push_str(&output::table(&["component", "version", "image"], &rows));
    out
}

/// A warning when the server is older than the stack supports or newer than it was tested on.
/// Managed clusters report minors like "36+".
fn support_warning(major: &str, minor: &str) -> Option<String> {
    let minor_n: u32 = minor.trim_end_matches('+').parse().ok()?;
    if major != "1" {
        return Some(format!(
            "server version {major}.{minor} is not a Kubernetes 1.x release"
        ));
    }
    if minor_n < versions::MIN_KUBERNETES_MINOR {
        Some(format!(
            "Kubernetes 1.{minor_n} is older than the oldest supported (1.{}); enable will refuse it",
            versions::MIN_KUBERNETES_MINOR
        ))
    } else if minor_n > versions::MAX_TESTED_KUBERNETES_MINOR {
        Some(format!(
            "Kubernetes 1.{minor_n} is newer than the newest tested (1.{})",
            versions::MAX_TESTED_KUBERNETES_MINOR
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn support_window() {
        assert_eq!(support_warning("1", "36"), None);
        assert_eq!(support_warning("1", "31+"), None);
        assert!(support_warning("1", "29").unwrap().contains("older"));
        assert!(support_warning("1", "40").unwrap().contains("newer"));
        assert_eq!(support_warning("1", ""), None);
    }
}
