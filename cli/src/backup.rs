//! `passerelle export automerge DIR` and `passerelle import automerge DIR`: the node itself
//! reads and writes the folder (it runs as the same user, and no document is then too large
//! for the control API); the command gives it the absolute path and prints what it did.

use std::path::Path;

use anyhow::Context;
use passerelle_node::api;
use passerelle_node::archive::{Exported, Imported};
use passerelle_node::backup::DocumentBackup;

use crate::commands::{Outcome, call};
use crate::output::{self, table};

fn absolute(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    std::path::absolute(dir).with_context(|| format!("dir: {}", dir.display()))
}

pub async fn export(data_dir: &Path, dir: &Path, json: bool) -> anyhow::Result<Outcome> {
    let dir = absolute(dir)?;
    let written: Vec<Exported> = call(data_dir, api::ExportAutomerge { dir: dir.clone() }).await?;
    if json {
        output::json(&written)?;
        return Ok(Outcome::Done);
    }
    output::out(&table(
        &["document", "changes", "automerge bytes"],
        written
            .iter()
            .map(|w| {
                vec![
                    DocumentBackup::file_stem(&w.document),
                    w.changes.to_string(),
                    w.automerge_bytes.to_string(),
                ]
            })
            .collect(),
    ))?;
    output::out(&format!(
        "written to {}: <name>.automerge opens with any Automerge implementation; <name>.changes and <name>.heads.json make it verifiable (`passerelle import automerge {}`)",
        dir.display(),
        dir.display()
    ))?;
    Ok(Outcome::Done)
}

pub async fn import(
    data_dir: &Path,
    dir: &Path,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<Outcome> {
    let dir = absolute(dir)?;
    let imported: Imported = call(data_dir, api::ImportAutomerge { dir, dry_run }).await?;
    let outcome = &imported.outcome;
    if json {
        output::json(&serde_json::json!({
            "verified": imported.verified,
            "merged": imported.merged,
            "applied": outcome.applied,
            "duplicates": outcome.duplicates,
            "pending": outcome.pending,
            "rejected": outcome.rejected,
        }))?;
    } else {
        output::out(&table(
            &["document", "changes", "authors", "exported by"],
            imported
                .verified
                .iter()
                .map(|v| {
                    vec![
                        DocumentBackup::file_stem(&v.document),
                        v.changes.to_string(),
                        v.authors.len().to_string(),
                        v.exported_by.to_string(),
                    ]
                })
                .collect(),
        ))?;
        for rejection in &outcome.rejected {
            output::out(&format!(
                "refused ({}): {}",
                rejection.code, rejection.reason
            ))?;
        }
        output::out(&if dry_run {
            format!(
                "{} document(s) verified: signed heads, every change's signature, the .automerge files; nothing merged (--dry-run)",
                imported.verified.len()
            )
        } else {
            format!(
                "{} document(s) verified and merged: {} change(s) new here, {} already held, {} refused, {} waiting for changes they depend on",
                imported.verified.len(),
                outcome.applied,
                outcome.duplicates,
                outcome.rejected.len(),
                outcome.pending
            )
        })?;
    }
    if !outcome.rejected.is_empty() {
        anyhow::bail!(
            "dir: {} change(s) of the backup were refused by this node's rules (listed above); the others were merged",
            outcome.rejected.len()
        );
    }
    Ok(Outcome::Done)
}
