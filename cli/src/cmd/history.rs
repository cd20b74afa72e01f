//! `passerelle history`: the signed change log of an organisation's document.

use std::path::Path;

use clap::Args;
use passerelle_node::api;
use passerelle_node::document::HistoryEntry;
use passerelle_node::identity::OrgId;

use crate::client::{Outcome, items};
use crate::flags::parse_count;
use crate::messages::t;
use crate::output::{self, table};

/// `passerelle history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Organisation id (this node's own by default).
    #[arg(long)]
    pub org: Option<OrgId>,
    /// Most entries shown, newest first.
    #[arg(long, default_value_t = 50, allow_negative_numbers = true, value_parser = parse_count::<usize>)]
    pub limit: usize,
}

pub async fn run(data_dir: &Path, args: HistoryArgs, json_out: bool) -> anyhow::Result<Outcome> {
    let entries: Vec<HistoryEntry> = items(
        data_dir,
        api::History {
            org: args.org,
            limit: args.limit,
        },
    )
    .await?;
    if json_out {
        output::json(&entries)?;
    } else {
        let rows = entries
            .iter()
            .map(|e| {
                vec![
                    output::time(e.time),
                    e.author_fingerprint.clone(),
                    e.seq.to_string(),
                    e.message.clone(),
                    e.hash[..12].to_owned(),
                ]
            })
            .collect();
        output::out(&table(
            &[
                t("time (UTC)", "heure (UTC)"),
                t("author", "auteur"),
                t("seq", "seq"),
                t("what changed", "ce qui a changé"),
                t("change", "changement"),
            ],
            rows,
        ))?;
    }
    Ok(if entries.is_empty() {
        Outcome::NothingFound
    } else {
        Outcome::Done
    })
}
