//! `passerelle retention`: every case file held here and when its retention period ends;
//! `--run` destroys what is due now (the node does it on its own every minute too).

use std::path::Path;

use clap::Args;
use passerelle_node::api;
use passerelle_node::node::RetentionReport;
use passerelle_node::vault::Side;

use crate::client::{Outcome, call};
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
    output::out(&format!(
        "case files are kept {} days after their referral closes by the receiver, {} days by the sender ([referrals] retention_days, sender_retention_days)",
        report.receiver_days, report.sender_days
    ))?;
    if args.run {
        output::out(&format!(
            "destroyed now: {}",
            if report.destroyed.is_empty() {
                "none".to_owned()
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
    output::out(&format!(
        "{} case file(s) held here, {due} due for destruction",
        report.held.len()
    ))?;
    if !report.held.is_empty() {
        let rows = report
            .held
            .iter()
            .map(|i| {
                vec![
                    i.referral.to_string(),
                    match i.side {
                        Side::Sent => "sent".to_owned(),
                        Side::Received => "received".to_owned(),
                    },
                    i.closed_at.map_or("open".to_owned(), output::time),
                    i.destroy_at.map_or("—".to_owned(), output::time),
                    if i.due { "due" } else { "" }.to_owned(),
                ]
            })
            .collect();
        output::out(&table(
            &["referral", "side", "closed", "destroyed on", ""],
            rows,
        ))?;
    }
    Ok(Outcome::Done)
}
