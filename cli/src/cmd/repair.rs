//! `passerelle repair`: repairs a damaged store with the node stopped
//! ([`passerelle_node::repair`]).

use std::path::Path;

use anyhow::Context;
use clap::Args;
use passerelle_node::config::Config;
use passerelle_node::repair::{RepairOptions, RepairReport};

use crate::client::Outcome;
use crate::output;

/// `passerelle repair`.
#[derive(Debug, Args)]
pub struct RepairArgs {
    /// Only say what would be done.
    #[arg(long)]
    pub dry_run: bool,
    /// The network id, when the database does not open at all and its seed file is lost
    /// too (`passerelle network show` on a partner's node prints it).
    #[arg(long)]
    pub network: Option<String>,
    /// A member's address to fetch everything from, in that case (repeat for several).
    #[arg(long = "peer")]
    pub peers: Vec<String>,
}

pub fn run(data_dir: &Path, args: RepairArgs, json_out: bool) -> anyhow::Result<Outcome> {
    let mut config = Config::new(data_dir);
    config.passphrase = crate::passphrase::unlock(data_dir)?;
    let options = RepairOptions {
        dry_run: args.dry_run,
        network: args.network,
        peers: args.peers,
    };
    let report = passerelle_node::repair::repair(&config, &options)
        .with_context(|| format!("repairing the store of {}", data_dir.display()))?;
    if json_out {
        output::json(&report)?;
    } else {
        output::out(&describe(&report, args.dry_run))?;
    }
    Ok(Outcome::Done)
}

fn describe(report: &RepairReport, dry_run: bool) -> String {
    if report.sound {
        return format!(
            "The store is sound ({} documents read and verified): nothing to repair.",
            report.documents_kept
        );
    }
    let mut lines = Vec::new();
    lines.push(if dry_run {
        "Dry run: nothing was changed. A repair would do this:".to_owned()
    } else {
        "The store was repaired:".to_owned()
    });
    for damage in &report.damaged {
        lines.push(format!("  damaged: {} ({})", damage.record, damage.reason));
    }
    if report.opened {
        lines.push(format!(
            "  kept: {} documents and {} other records that read and verify",
            report.documents_kept, report.records_kept
        ));
    } else {
        lines.push(
            "  the database did not open: a new store was started for the same network".into(),
        );
    }
    if !report.documents_to_fetch.is_empty() {
        lines.push(format!(
            "  to fetch again from peers at the next start: {}",
            report.documents_to_fetch.join(", ")
        ));
    }
    if report.own_document_awaited {
        lines.push("  this organisation's own document comes back from peers too; edits wait until it is back (changes no peer or backup holds are lost; if you keep backups, also run `passerelle import automerge <backup folder>`)".into());
    }
    for lost in &report.records_lost {
        lines.push(format!("  could not all be read: {lost}"));
    }
    if !dry_run {
        lines.push(format!(
            "  the damaged store is kept in {} (remove it once the node runs well)",
            report.damaged_store
        ));
        lines.push("Next: `passerelle start`; `passerelle status` shows the documents coming back and the store check.".into());
    }
    lines.join("\n")
}
