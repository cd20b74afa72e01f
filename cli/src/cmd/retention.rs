//! `passerelle retention`: every case file held here and when its retention period ends;
//! `--run` destroys what is due now (the node does it on its own every minute too).

use std::path::Path;

use clap::Args;
use passerelle_node::api;
use passerelle_node::node::RetentionReport;
use passerelle_node::vault::Side;

use crate::client::{Outcome, call};
use crate::messages::t;
use crate::output::{self, table};

/// `passerelle retention`.
#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// Destroy now the case files whose retention period has ended (each is recorded in
    /// the audit log).
    #[arg(long)]
    pub run: bool,
}

pub async fn run(data_dir: &Path, args: RetentionArgs, json: bool) -> anyhow::Result<Outcome> {
    let report: RetentionReport = call(data_dir, api::Retention { run: args.run }).await?;
    if json {
        output::json(&report)?;
        return Ok(Outcome::Done);
    }
    output::out(&crate::messages::said(
        format!(
            "case files are kept {} days after their referral closes by the receiver, {} days by the sender ([referrals] retention_days, sender_retention_days)",
            report.receiver_days, report.sender_days
        ),
        format!(
            "les dossiers sont gardés {} jours après la clôture de leur référence par le destinataire, {} jours par l'expéditeur ([referrals] retention_days, sender_retention_days)",
            report.receiver_days, report.sender_days
        ),
    ))?;
    if args.run {
        output::out(&format!(
            "{} {}",
            t("destroyed now:", "détruits maintenant :"),
            if report.destroyed.is_empty() {
                t("none", "aucun").to_owned()
            } else {
                report
                    .destroyed
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ))?;
    }
    let due = report.held.iter().filter(|i| i.due).count();
    output::out(&crate::messages::said(
        format!(
            "{} case file(s) held here, {due} due for destruction",
            report.held.len()
        ),
        format!(
            "{} dossier(s) détenu(s) ici, {due} à détruire",
            report.held.len()
        ),
    ))?;
    if !report.held.is_empty() {
        let rows = report
            .held
            .iter()
            .map(|i| {
                vec![
                    i.referral.to_string(),
                    match i.side {
                        Side::Sent => t("sent", "envoyé").to_owned(),
                        Side::Received => t("received", "reçu").to_owned(),
                    },
                    i.closed_at
                        .map_or(t("open", "ouverte").to_owned(), output::time),
                    i.destroy_at.map_or("—".to_owned(), output::time),
                    if i.due { t("due", "à détruire") } else { "" }.to_owned(),
                ]
            })
            .collect();
        output::out(&table(
            &[
                t("referral", "référence"),
                t("side", "côté"),
                t("closed", "clôturée"),
                t("destroyed on", "détruit le"),
                "",
            ],
            rows,
        ))?;
    }
    Ok(Outcome::Done)
}
