//! `history`: the revisions `enable` and `rollback` recorded, oldest first, like
//! `helm history`. One list call; nothing is decompressed. `--revision N` prints the values
//! the user gave for that revision, like `helm get values --revision N`.

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
    /// Print the values the user gave for this revision (YAML, or -o json), not the list:
    /// what `enable -f` takes to make it again
    #[arg(long, value_name = "N", value_parser = super::args::counting_number)]
    revision: Option<u32>,
}

pub async fn run(flags: &KubeFlags, args: Args) -> anyhow::Result<Verdict> {
    let cluster = Cluster::connect(flags).await?;
    let revisions = revision::list_installed(&cluster).await?;
    if let Some(n) = args.revision {
        let (_, payload) = revision::read(&cluster, n).await?;
        let (values, recognised) = revision::values(&payload, n, &cluster.namespace)?;
        if let Some(r) = recognised {
            crate::output::diag!(
                "{} revision {n} was recorded by {}, which stored its whole configuration: these are the values in it that differ from v0.1.0's defaults",
                Palette::stderr().warn("note:"),
                r.version
                    .as_deref()
                    .map_or("a plugin older than v0.2.0".to_string(), |v| format!(
                        "automon {v}"
                    ))
            );
        }
        let text = match args.output {
            Format::Json => output::structured(Format::Json, &values)?,
            _ => values.to_yaml(),
        };
        output::print(&text)?;
        return Ok(Verdict::Done);
    }
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
