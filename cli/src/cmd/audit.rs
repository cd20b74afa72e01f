//! `passerelle audit`: check the audit log's chain, and export it for an inspector.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use passerelle_node::api;
use passerelle_node::audit::{Entry, Verdict};
use passerelle_node::reference::Lang;

use crate::client::{Outcome, call, collect};
use crate::flags::parse_date;
use crate::output;

/// `passerelle audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the audit log: every entry follows the one before it and is as it was
    /// written, every seal is this node's signature, and nothing was cut off its end.
    /// Exit code 2 and where, when it does not hold.
    Verify,
    /// The audit log's entries made in a period, with their chain (seq, prev, hash) and
    /// seals, for an inspector: JSON (with the organisation and the key that seals the
    /// chain) or CSV. No case-file content is ever in it.
    Export {
        /// From this day (YYYY-MM-DD, UTC, included).
        #[arg(long, value_parser = parse_date, value_name = "YYYY-MM-DD")]
        from: Option<i64>,
        /// To this day (YYYY-MM-DD, UTC, included).
        #[arg(long, value_parser = parse_date, value_name = "YYYY-MM-DD")]
        to: Option<i64>,
        /// json or csv.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
        /// Write to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// What `audit export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object: the organisation, the sealing key, the period and the entries.
    Json,
    /// One row per entry.
    Csv,
}

/// The export as JSON.
#[derive(Debug, serde::Serialize)]
struct Export<'a> {
    organisation: &'a str,
    sealed_by: &'a str,
    from: Option<i64>,
    to: Option<i64>,
    entries: &'a [Entry],
}

fn csv(entries: &[Entry]) -> anyhow::Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record([
        "seq",
        "at",
        "time_utc",
        "referral",
        "action",
        "by",
        "detail",
        "prev",
        "hash",
        "key",
        "signature",
    ])?;
    for e in entries {
        writer.write_record([
            e.seq.to_string(),
            e.event.at.to_string(),
            output::time(e.event.at),
            e.event.referral.clone(),
            e.event.action.clone(),
            e.event.by.clone(),
            e.event.detail.clone(),
            e.prev.clone(),
            e.hash.clone(),
            e.key.clone().unwrap_or_default(),
            e.signature.clone().unwrap_or_default(),
        ])?;
    }
    Ok(writer.into_inner()?)
}

fn said(verdict: &Verdict, lang: Lang) -> String {
    let sealed = verdict
        .last_seal_at
        .map(output::time)
        .unwrap_or_else(|| lang.pick("never", "jamais").to_owned());
    if verdict.holds() {
        return lang.pick(
            format!(
                "the audit log holds: {} entries, {} seals (the last on {sealed}); {} entries since, sealed at the next seal",
                verdict.entries, verdict.seals, verdict.unsealed
            ),
            format!(
                "le journal d'audit est intact : {} entrées, {} sceaux (le dernier le {sealed}) ; {} entrées depuis, scellées au prochain sceau",
                verdict.entries, verdict.seals, verdict.unsealed
            ),
        );
    }
    let mut text = lang.pick(
        format!(
            "the audit log does NOT hold: {} break(s) in {} entries",
            verdict.breaks.len(),
            verdict.entries
        ),
        format!(
            "le journal d'audit N'EST PAS intact : {} rupture(s) dans {} entrées",
            verdict.breaks.len(),
            verdict.entries
        ),
    );
    for b in &verdict.breaks {
        text.push_str(&format!("\n  {}: {}", b.at, b.what));
    }
    text
}

pub async fn run(
    data_dir: &Path,
    command: AuditCommand,
    json: bool,
    lang: Lang,
) -> anyhow::Result<Outcome> {
    match command {
        AuditCommand::Verify => {
            let verdict: Verdict = call(data_dir, api::AuditVerify {}).await?;
            if json {
                output::json(&verdict)?;
            }
            if verdict.holds() {
                if !json {
                    output::out(&said(&verdict, lang))?;
                }
                Ok(Outcome::Done)
            } else {
                anyhow::bail!(said(&verdict, lang))
            }
        }
        AuditCommand::Export {
            from,
            to,
            format,
            output: file,
        } => {
            // `--to` names a day: all of it.
            let to = to.map(|day| day + 86_399);
            let (head, entries) = collect(data_dir, api::AuditExport { from, to }).await?;
            let bytes = match format {
                Format::Json => serde_json::to_vec_pretty(&Export {
                    organisation: &head.organisation,
                    sealed_by: &head.sealed_by,
                    from,
                    to,
                    entries: &entries,
                })?,
                Format::Csv => csv(&entries)?,
            };
            match file {
                Some(path) => std::fs::write(&path, &bytes)
                    .with_context(|| format!("output: writing {}", path.display()))?,
                None => output::raw(&bytes)?,
            }
            if entries.is_empty() {
                // Exit 1 says "nothing found"; the sentence says it to a person too.
                output::say(&crate::messages::said(
                    "no audit entry in that period (the export holds none)".to_owned(),
                    "aucune entrée du journal d'audit sur cette période (l'export n'en contient aucune)"
                        .to_owned(),
                ));
                return Ok(Outcome::NothingFound);
            }
            Ok(Outcome::Done)
        }
    }
}
