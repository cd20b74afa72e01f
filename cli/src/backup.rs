//! `passerelle export automerge DIR` and `passerelle import automerge DIR`.

use std::path::Path;

use anyhow::Context;
use passerelle_node::backup::{self, DocumentBackup};
use passerelle_node::control::Request;
use passerelle_node::envelope::DocumentId;
use passerelle_node::node::RemoteOutcome;

use crate::commands::{Outcome, call};
use crate::output::{self, table};

/// Most bytes of encoded changes sent to the node in one request (the control API's lines
/// are bounded; base64 adds a third).
const MERGE_BATCH_BYTES: usize = 2 * 1024 * 1024;

pub async fn export(data_dir: &Path, dir: &Path) -> anyhow::Result<Outcome> {
    std::fs::create_dir_all(dir).with_context(|| format!("dir: creating {}", dir.display()))?;
    let documents: Vec<DocumentId> = call(data_dir, Request::Documents).await?;
    let mut rows = Vec::new();
    for document in documents {
        let backup: DocumentBackup = call(
            data_dir,
            Request::Backup {
                document: document.clone(),
            },
        )
        .await?;
        backup
            .write(dir)
            .with_context(|| format!("dir: writing the backup of {document}"))?;
        rows.push(vec![
            DocumentBackup::file_stem(&document),
            backup.changes.len().to_string(),
            backup.automerge.len().to_string(),
        ]);
    }
    output::out(&table(&["document", "changes", "automerge bytes"], rows))?;
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
    let backups = backup::read_dir(dir).map_err(|e| anyhow::anyhow!("dir: {e}"))?;
    // Everything is verified before anything is merged.
    let mut verified = Vec::with_capacity(backups.len());
    for backup in &backups {
        verified.push(
            backup.verify().map_err(|e| {
                anyhow::anyhow!("dir {}: refused, nothing merged: {e}", dir.display())
            })?,
        );
    }
    let mut total = RemoteOutcome::default();
    let mut rows = Vec::new();
    for (backup, verified) in backups.iter().zip(&verified) {
        let mut outcome = RemoteOutcome::default();
        if !dry_run {
            let mut batch: Vec<String> = Vec::new();
            let mut bytes = 0;
            for (index, change) in backup.changes.iter().enumerate() {
                bytes += change.len();
                batch.push(backup::base64_encode(change));
                if bytes >= MERGE_BATCH_BYTES || index + 1 == backup.changes.len() {
                    let part: RemoteOutcome = call(
                        data_dir,
                        Request::Merge {
                            changes: std::mem::take(&mut batch),
                        },
                    )
                    .await?;
                    outcome.applied += part.applied;
                    outcome.duplicates += part.duplicates;
                    outcome.pending += part.pending;
                    outcome.rejected.extend(part.rejected);
                    bytes = 0;
                }
            }
        }
        rows.push(vec![
            DocumentBackup::file_stem(&verified.document),
            verified.changes.to_string(),
            verified.authors.len().to_string(),
            verified.exported_by.to_string(),
            outcome.applied.to_string(),
            outcome.duplicates.to_string(),
            outcome.rejected.len().to_string(),
        ]);
        total.applied += outcome.applied;
        total.duplicates += outcome.duplicates;
        total.pending = outcome.pending;
        total.rejected.extend(outcome.rejected);
    }
    if json {
        output::json(&serde_json::json!({
            "verified": verified,
            "merged": !dry_run,
            "applied": total.applied,
            "duplicates": total.duplicates,
            "pending": total.pending,
            "rejected": total.rejected,
        }))?;
    } else {
        output::out(&table(
            &[
                "document",
                "changes",
                "authors",
                "exported by",
                "merged",
                "already held",
                "refused",
            ],
            rows,
        ))?;
        for rejection in &total.rejected {
            output::out(&format!(
                "refused ({}): {}",
                rejection.code, rejection.reason
            ))?;
        }
        output::out(&if dry_run {
            format!(
                "{} document(s) verified: signed heads, every change's signature, the .automerge files; nothing merged (--dry-run)",
                verified.len()
            )
        } else {
            format!(
                "{} document(s) verified and merged: {} change(s) new here, {} already held, {} refused, {} waiting for changes they depend on",
                verified.len(),
                total.applied,
                total.duplicates,
                total.rejected.len(),
                total.pending
            )
        })?;
    }
    if !total.rejected.is_empty() {
        anyhow::bail!(
            "dir: {} change(s) of the backup were refused by this node's rules (listed above); the others were merged",
            total.rejected.len()
        );
    }
    Ok(Outcome::Done)
}
