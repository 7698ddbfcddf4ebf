//! `silence`: a node's alerts silenced in the stack's Alertmanager for maintenance
//! (`POST /api/v2/silences`), the silences listed, one expired.

use std::time::Duration;

use anyhow::bail;
use k8s_openapi::api::core::v1::Node;

use crate::{
    alertmanager::{Alertmanager, NotFound, silences},
    cluster::{Cluster, KubeFlags, inventory},
    exit::Verdict,
    output::{self, Format},
};

#[derive(clap::Args, Debug)]
#[command(after_help = "\
The silence matches every alert labelled node=\"NODE\" (every node alert of the stack carries
it), from now for --for, created by the user the API server names. The user needs get, create
and delete services/proxy in the stack's namespace.

Exit status: 0 when done; 2 when NODE is no node of the cluster (--force silences it anyway) or
--expire names no current silence; 8 when Alertmanager does not answer; 9 when automon is not
installed in the namespace; 1 and 3-6 as for every command.")]
pub struct Args {
    /// The node whose alerts to silence
    #[arg(value_name = "NODE", required_unless_present_any = ["list", "expire"], conflicts_with_all = ["list", "expire"])]
    node: Option<String>,
    /// How long the silence lasts (e.g. 30m, 2h, 1h30m, 1d)
    #[arg(long = "for", value_name = "DURATION", default_value = "2h", value_parser = silences::parse_for)]
    length: Duration,
    /// Why, for whoever reads the silence
    #[arg(long, value_name = "TEXT")]
    comment: Option<String>,
    /// Silence a node the cluster does not have (yet)
    #[arg(long)]
    force: bool,
    /// List the silences in force or to come
    #[arg(long, conflicts_with = "expire")]
    list: bool,
    /// Expire a silence by its ID, or every silence of a node by the node's name
    #[arg(long, value_name = "ID|NODE")]
    expire: Option<String>,
    /// Output format of --list: table, json or yaml
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

pub async fn run(flags: &KubeFlags, args: Args) -> anyhow::Result<Verdict> {
    let cluster = Cluster::connect(flags).await?;
    let ns = cluster.namespace.clone();
    inventory::ensure_installed(&cluster).await?;
    let am = Alertmanager::of_stack(&cluster).await;
    if args.list {
        let rows = silences::current(&am.get("silences").await?);
        output::print(&list(&rows, args.output)?)?;
        return Ok(Verdict::Done);
    }
    if let Some(what) = &args.expire {
        let rows = silences::current(&am.get("silences").await?);
        let ids = match rows.iter().find(|s| &s.id == what) {
            Some(s) => vec![s.id.clone()],
            None => silences::of_node(&rows, what),
        };
        if ids.is_empty() {
            return Err(NotFound(format!(
                "no current silence has ID {what:?} or silences node {what:?} alone; `kubectl automon silence --list -n {ns}` lists them"
            ))
            .into());
        }
        for id in ids {
            am.delete(&format!("silence/{id}")).await?;
            output::print(&format!("Expired   silence {id}\n"))?;
        }
        return Ok(Verdict::Done);
    }
    let Some(node) = args.node else {
        bail!("name a node, or give --list or --expire");
    };
    if !args.force {
        let nodes: kube::Api<Node> = kube::Api::all(cluster.client.clone());
        let found = nodes
            .get_opt(&node)
            .await
            .map_err(|e| cluster.target.classify(e))?;
        if found.is_none() {
            return Err(NotFound(format!(
                "node {node:?} not found in the cluster; `kubectl get nodes` lists them (--force silences it anyway)"
            ))
            .into());
        }
    }
    let created_by = crate::preflight::who_am_i(&cluster)
        .await
        .unwrap_or_else(|| "kubectl-automon".to_string());
    let comment = args
        .comment
        .unwrap_or_else(|| format!("maintenance of node {node} (kubectl automon silence)"));
    let now = jiff::Timestamp::now().round(jiff::Unit::Second)?;
    let body = silences::for_node(&node, now, args.length, &created_by, &comment)
        .map_err(anyhow::Error::msg)?;
    let made = am.post("silences", &body).await?;
    let id = made["silenceID"].as_str().unwrap_or_default();
    let ends = body["endsAt"].as_str().unwrap_or_default();
    output::print(&format!(
        "Silenced  alerts of node {node} until {ends} (silence {id}); kubectl automon silence --expire {id} -n {ns} ends it\n"
    ))?;
    Ok(Verdict::Done)
}

fn list(rows: &[silences::Silence], format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Json | Format::Yaml => output::structured(format, &rows)?,
        _ if rows.is_empty() => "No silences.\n".to_string(),
        _ => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|s| {
                    vec![
                        s.id.clone(),
                        s.matchers.clone(),
                        s.starts_at.clone(),
                        s.ends_at.clone(),
                        s.created_by.clone(),
                        s.comment.clone(),
                    ]
                })
                .collect();
            format!(
                "{}\n",
                output::table(
                    &["id", "matchers", "starts", "ends", "created by", "comment"],
                    &cells
                )
            )
        }
    })
}
