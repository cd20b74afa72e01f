//! Backups written and read by a running node: `passerelle export automerge DIR` and
//! `passerelle import automerge DIR` (the format, and its verification, are in
//! [`crate::backup`]).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::backup::{BackupError, DocumentBackup, Verified, read_dir};
use crate::envelope::DocumentId;

/// One document `export automerge` wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exported {
    /// The document.
    pub document: DocumentId,
    /// Its signed changes.
    pub changes: usize,
    /// The size of its `.automerge` file.
    pub automerge_bytes: usize,
}

/// What `import automerge` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imported {
    /// Every document of the folder, verified.
    pub verified: Vec<Verified>,
    /// False for a dry run (verified only).
    pub merged: bool,
    /// What merging the changes did, all documents together.
    pub outcome: crate::node::RemoteOutcome,
}

fn invalid_input(e: impl std::fmt::Display) -> crate::node::NodeError {
    crate::node::NodeError::Invalid(crate::model::ValidationError::new("dir", e.to_string()))
}

fn absolute(dir: &Path) -> Result<(), crate::node::NodeError> {
    if dir.is_absolute() {
        Ok(())
    } else {
        Err(invalid_input(format!(
            "{} is not an absolute path (the node does not share the caller's working folder)",
            dir.display()
        )))
    }
}

/// Writes the backup of every document `handle`'s node holds into `dir` (created if
/// missing): how `passerelle export automerge` runs inside the node, so no document is too
/// large for the control API.
pub async fn export_with(
    handle: &crate::node::NodeHandle,
    dir: &Path,
) -> Result<Vec<Exported>, crate::node::NodeError> {
    absolute(dir)?;
    std::fs::create_dir_all(dir).map_err(|e| invalid_input(format!("{}: {e}", dir.display())))?;
    let mut written = Vec::new();
    for document in handle.documents().await? {
        let backup = handle.backup(document.clone()).await?;
        let dir = dir.to_owned();
        let summary = Exported {
            document,
            changes: backup.changes.len(),
            automerge_bytes: backup.automerge.len(),
        };
        tokio::task::spawn_blocking(move || backup.write(&dir))
            .await
            .map_err(|e| invalid_input(e.to_string()))?
            .map_err(invalid_input)?;
        written.push(summary);
    }
    Ok(written)
}

/// Signed changes per merge, as a catch-up batch would bring them.
const MERGE_BATCH: usize = 2_000;

/// Reads and verifies every backup in `dir`, then (unless `dry_run`) merges their changes
/// through the node's path for received changes. Nothing is merged if one document fails
/// verification.
pub async fn import_with(
    handle: &crate::node::NodeHandle,
    dir: &Path,
    dry_run: bool,
) -> Result<Imported, crate::node::NodeError> {
    absolute(dir)?;
    let folder = dir.to_owned();
    let (backups, verified) = tokio::task::spawn_blocking(move || {
        let backups = read_dir(&folder)?;
        let verified = backups
            .iter()
            .map(DocumentBackup::verify)
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, BackupError>((backups, verified))
    })
    .await
    .map_err(|e| invalid_input(e.to_string()))?
    .map_err(|e| invalid_input(format!("refused, nothing merged: {e}")))?;
    let mut imported = Imported {
        verified,
        merged: !dry_run,
        ..Default::default()
    };
    if dry_run {
        return Ok(imported);
    }
    for backup in backups {
        // Attested changes are taken only beside the signed change that vouches for them:
        // a document holding some is merged in one batch.
        let batch = if backup
            .changes
            .iter()
            .any(|c| c.starts_with(crate::envelope::ATTESTED_MAGIC))
        {
            backup.changes.len().max(1)
        } else {
            MERGE_BATCH
        };
        for chunk in backup.changes.chunks(batch) {
            let part = handle.apply_remote(chunk.to_vec(), None).await?;
            let total = &mut imported.outcome;
            total.applied += part.applied;
            total.duplicates += part.duplicates;
            total.pending = part.pending;
            total.rejected.extend(part.rejected);
            total.membership_changed |= part.membership_changed;
        }
    }
    Ok(imported)
}
