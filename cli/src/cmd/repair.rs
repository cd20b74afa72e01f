//! `passerelle repair`: repairs a damaged store with the node stopped
//! ([`passerelle_node::repair`]).

use std::path::Path;

use anyhow::Context;
use clap::Args;
use passerelle_node::config::Config;
use passerelle_node::repair::{RepairOptions, RepairReport};

use crate::client::Outcome;
use crate::messages::{said, t};
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
        return said(
            format!(
                "The store is sound ({} documents read and verified): nothing to repair.",
                report.documents_kept
            ),
            format!(
                "Le stockage est sain ({} documents lus et vérifiés) : rien à réparer.",
                report.documents_kept
            ),
        );
    }
    let mut lines = Vec::new();
    lines.push(if dry_run {
        t(
            "Dry run: nothing was changed. A repair would do this:",
            "Essai : rien n'a été changé. Une réparation ferait ceci :",
        )
        .to_owned()
    } else {
        t("The store was repaired:", "Le stockage a été réparé :").to_owned()
    });
    for damage in &report.damaged {
        lines.push(format!(
            "  {} {} ({})",
            t("damaged:", "endommagé :"),
            damage.record,
            damage.reason
        ));
    }
    if report.opened {
        lines.push(said(
            format!(
                "  kept: {} documents and {} other records that read and verify",
                report.documents_kept, report.records_kept
            ),
            format!(
                "  gardés : {} documents et {} autres enregistrements qui se lisent et se vérifient",
                report.documents_kept, report.records_kept
            ),
        ));
    } else {
        lines.push(
            t(
                "  the database did not open: a new store was started for the same network",
                "  la base ne s'est pas ouverte : un nouveau stockage a été commencé pour le même réseau",
            )
            .into(),
        );
    }
    if !report.documents_to_fetch.is_empty() {
        lines.push(format!(
            "  {} {}",
            t(
                "to fetch again from peers at the next start:",
                "à rechercher auprès des pairs au prochain démarrage :"
            ),
            report.documents_to_fetch.join(", ")
        ));
    }
    if report.own_document_awaited {
        lines.push(t(
            "  this organisation's own document comes back from peers too; edits wait until it is back (changes no peer or backup holds are lost; if you keep backups, also run `passerelle import automerge <backup folder>`)",
            "  le document de cette organisation revient aussi des pairs ; les modifications attendent son retour (les changements qu'aucun pair ni aucune sauvegarde ne détient sont perdus ; si vous gardez des sauvegardes, lancez aussi `passerelle import automerge <dossier de sauvegarde>`)",
        ).into());
    }
    for lost in &report.records_lost {
        lines.push(format!(
            "  {} {lost}",
            t("could not all be read:", "n'ont pas tous pu être lus :")
        ));
    }
    if !dry_run {
        lines.push(said(
            format!(
                "  the damaged store is kept in {} (remove it once the node runs well)",
                report.damaged_store
            ),
            format!(
                "  le stockage endommagé est gardé dans {} (supprimez-le quand le nœud tourne bien)",
                report.damaged_store
            ),
        ));
        lines.push(t(
            "Next: `passerelle start`; `passerelle status` shows the documents coming back and the store check.",
            "Ensuite : `passerelle start` ; `passerelle status` montre le retour des documents et la vérification du stockage.",
        ).into());
    }
    lines.join("\n")
}
