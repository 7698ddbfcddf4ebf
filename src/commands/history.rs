//! `history`: the revisions `enable` and `rollback` recorded, oldest first, like
//! `helm history`. One list call; nothing is decompressed.

use crate::{
    cluster::{Cluster, KubeFlags, revision},
    exit::Verdict,
    output::{self, Format, Palette},
};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit status: 0 revisions listed; 9 automon is not installed in the namespace; 1-6 as for every command."
)]
pub struct Args {
    /// Output format: a table, or json/yaml for scripts
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

pub async fn run(flags: &KubeFlags, args: Args) -> anyhow::Result<Verdict> {
    let cluster = Cluster::connect(flags).await?;
    let revisions = revision::list_installed(&cluster).await?;
    let text = match args.output {
        Format::Json | Format::Yaml => output::structured(args.output, &revisions)?,
        _ if revisions.is_empty() => {
            // Installed before revisions were recorded: the next change records the first.
            crate::output::diag!(
                "{} no revisions recorded in namespace {:?} yet; the next enable that changes something records one",
                Palette::stderr().warn("note:"),
                cluster.namespace
            );
            return Ok(Verdict::Done);
        }
        _ => human(&revisions),
    };
    output::print(&text)?;
    Ok(Verdict::Done)
}

fn human(revisions: &[revision::Summary]) -> String {
    let rows: Vec<Vec<String>> = revisions
        .iter()
        .map(|r| {
            vec![
                r.revision.to_string(),
                r.updated.clone(),
                r.plugin.clone(),
                r.by.clone(),
                r.change.clone(),
            ]
        })
        .collect();
    output::table(&["revision", "updated", "plugin", "by", "change"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_like_helm_history() {
        let r = |revision: u32, change: &str| revision::Summary {
            revision,
            updated: "2026-11-29T18:23:29Z".into(),
            plugin: "0.1.0".into(),
            by: "kubernetes-admin".into(),
            change: change.into(),
        };
        let t = human(&[r(1, "install"), r(2, "set prometheus.retention=30d")]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "REVISION   UPDATED                PLUGIN   BY                 CHANGE"
        );
        assert_eq!(
            lines[2],
            "2          2026-11-29T18:23:29Z   0.1.0    kubernetes-admin   set prometheus.retention=30d"
        );
    }
}
