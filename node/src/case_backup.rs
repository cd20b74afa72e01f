//! Backups of the case files, sealed to a backup key ([`crate::backup_seal`]), and their
//! restore. A backup holds every case file held here, decrypted from the vault then sealed
//! as a whole to the backup key's public half, and the tombstones of those erased. The
//! node never holds the backup key's secret: whoever restores gives it.
//!
//! Erasure and restore: every erasure is also written to the backup folder's
//! `erasures.jsonl` ([`crate::vault::ERASURE_JOURNAL`]). A restore skips — and so
//! destroys — every case file erased since the backup was made: those in that journal
//! beside the backup, those with a tombstone in the backup itself, and those with one here.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backup_seal::{self, BackupSealError, BackupSecret};
use crate::identity::EncryptionPublicKey;
use crate::vault::{ERASURE_JOURNAL, ErasureRecord, HeldCase, Tombstone, Vault, VaultError};

/// Errors of a case-file backup or restore.
#[derive(Debug, thiserror::Error)]
pub enum CaseBackupError {
    /// The vault failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// Sealing or opening failed.
    #[error(transparent)]
    Seal(#[from] BackupSealError),
    /// A file could not be written or read.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The backup opened but is not one this version reads.
    #[error("the backup's contents cannot be read: {0}")]
    Contents(String),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> CaseBackupError {
    let context = context.into();
    move |source| CaseBackupError::Io { context, source }
}

/// What a backup holds, once opened.
#[derive(Serialize, Deserialize)]
struct Contents {
    /// When it was made (Unix seconds).
    made_at: i64,
    /// The organisation whose node made it.
    organisation: String,
    /// Every case file held.
    case_files: Vec<(String, HeldCase)>,
    /// Every tombstone.
    erased: Vec<(String, Tombstone)>,
}

/// What `backup write` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupReceipt {
    /// The file written.
    pub file: PathBuf,
    /// Case files in it.
    pub case_files: usize,
    /// Its size in bytes.
    pub bytes: u64,
}

/// What `backup restore` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreReceipt {
    /// When the backup was made.
    pub made_at: i64,
    /// Case files put back.
    pub restored: Vec<String>,
    /// Case files erased since the backup (or before it): not put back.
    pub erased_since: Vec<String>,
    /// Case files this node holds already: left as they are.
    pub held_already: Vec<String>,
}

/// Writes a backup of every case file held in `vault` into `dir`, sealed to `key`.
pub fn write(
    vault: &Vault,
    dir: &Path,
    key: &EncryptionPublicKey,
    organisation: &str,
    now: i64,
) -> Result<BackupReceipt, CaseBackupError> {
    let mut case_files = Vec::new();
    for (referral, _, _) in vault.held()? {
        if let Some(case) = vault.read(&referral)? {
            case_files.push((referral, case));
        }
    }
    let contents = Contents {
        made_at: now,
        organisation: organisation.to_owned(),
        case_files,
        erased: vault.tombstones()?,
    };
    let plaintext = zeroize::Zeroizing::new(
        serde_json::to_vec(&contents).map_err(|e| CaseBackupError::Contents(e.to_string()))?,
    );
    let sealed = backup_seal::seal(&plaintext, key)?;
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let stamp = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(now.max(0) as u64),
    )
    .to_string()
    .replace(':', "");
    let file = dir.join(format!("case-files-{stamp}.sealed"));
    crate::durable::write_file_atomically(&file, &sealed, 0o600)
        .map_err(io(format!("writing {}", file.display())))?;
    Ok(BackupReceipt {
        file,
        case_files: contents.case_files.len(),
        bytes: sealed.len() as u64,
    })
}

/// The erasures recorded in a backup folder's journal.
fn journal(dir: &Path) -> Result<Vec<ErasureRecord>, CaseBackupError> {
    let path = dir.join(ERASURE_JOURNAL);
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(format!("reading {}", path.display()))(e)),
    };
    let mut records = Vec::new();
    for (number, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io(format!("reading {}", path.display())))?;
        if line.trim().is_empty() {
            continue;
        }
        // A line that does not read (a write cut short) names no referral: skipped, said.
        match serde_json::from_str(&line) {
            Ok(record) => records.push(record),
            Err(e) => tracing::warn!(
                file = %path.display(),
                line = number + 1,
                error = %e,
                "an erasure record does not read"
            ),
        }
    }
    Ok(records)
}

/// Restores the case files of the backup `file` into `vault`, opened with `secret`,
/// except those erased since (or before) it was made.
pub fn restore(
    vault: &Vault,
    file: &Path,
    secret: &BackupSecret,
    now: i64,
) -> Result<RestoreReceipt, CaseBackupError> {
    let sealed = std::fs::read(file).map_err(io(format!("reading {}", file.display())))?;
    let plaintext = backup_seal::open(&sealed, secret)?;
    let contents: Contents =
        serde_json::from_slice(&plaintext).map_err(|e| CaseBackupError::Contents(e.to_string()))?;
    let folder = file.parent().unwrap_or(Path::new("."));
    let mut erased: BTreeSet<String> = journal(folder)?.into_iter().map(|r| r.referral).collect();
    erased.extend(contents.erased.iter().map(|(r, _)| r.clone()));
    erased.extend(vault.tombstones()?.into_iter().map(|(r, _)| r));
    let mut receipt = RestoreReceipt {
        made_at: contents.made_at,
        ..RestoreReceipt::default()
    };
    for (referral, case) in &contents.case_files {
        if erased.contains(referral) {
            receipt.erased_since.push(referral.clone());
        } else if vault.holds(referral)? {
            receipt.held_already.push(referral.clone());
        } else {
            vault.put(referral, case)?;
            receipt.restored.push(referral.clone());
        }
    }
    // What was erased stays erased here (a copy held is destroyed, a tombstone left): a
    // late delivery of it is refused.
    for referral in &erased {
        if vault.erased(referral)?.is_none() && crate::referral::board::is_referral_id(referral) {
            vault.erase(referral, now, crate::vault::Erasure::Asked)?;
        }
    }
    Ok(receipt)
}
