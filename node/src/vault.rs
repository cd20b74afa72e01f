//! Case files at rest on one node, the audit log of what happened to them, and the outbox
//! of deliveries and erasure requests still to make.
//!
//! Rules:
//! - Each case file is encrypted (ChaCha20-Poly1305) under its own random key, kept in a
//!   file of its own (`case-keys/<referral>.key`, mode 0600); the ciphertext is in the sled
//!   store. Erasing overwrites the key file, syncs it and deletes it, then deletes the
//!   ciphertext: what may linger in sled's log cannot be decrypted any more.
//! - An erased referral leaves a tombstone, so a late delivery of it is refused.
//! - Every read, delivery, erasure and override is appended to the audit log, which stays
//!   on this node: a hash chain sealed with the node's key ([`crate::audit_log`]); a read
//!   that cannot be recorded is refused.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::identity::{KeyId, OrgId};
use crate::referral::board::is_referral_id;
use crate::referral::casefile::CaseContent;
use crate::store::Store;

/// Folder of the per-case-file keys inside the data folder.
pub const KEYS_DIR: &str = "case-keys";

/// Errors of the vault.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// sled failed.
    #[error("store: {0}")]
    Store(#[from] sled::Error),
    /// The store could not make a write durable.
    #[error(transparent)]
    Durable(#[from] crate::store::StoreError),
    /// A key file could not be written, read or erased.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The case file's key is gone or does not open it.
    #[error("the case file of {0} cannot be decrypted (its key is missing or damaged)")]
    Unreadable(String),
    /// A stored record does not parse.
    #[error("the vault record of {0} is damaged")]
    Damaged(String),
    /// The audit log failed.
    #[error("the audit log: {0}")]
    Audit(#[from] crate::audit_log::AuditError),
    /// The system's random source failed (drawing a case file's key).
    #[error("drawing a case-file key: the system's random source failed: {0}")]
    Random(getrandom::Error),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> VaultError {
    let context = context.into();
    move |source| VaultError::Io { context, source }
}

/// Which side of the referral this node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// This node's organisation sent it.
    Sent,
    /// This node's organisation received it.
    Received,
}

/// A case file held, decrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldCase {
    /// Which side this node is.
    pub side: Side,
    /// The other organisation (`None` for an open referral not yet assigned).
    pub counterpart: Option<OrgId>,
    /// When it was stored here.
    pub stored_at: i64,
    /// The case file, consent and salt.
    pub content: CaseContent,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredRecord {
    side: Side,
    counterpart: Option<OrgId>,
    stored_at: i64,
    /// Hex of nonce ‖ ciphertext.
    sealed: String,
}

/// One event of the audit log (its line in the chain: [`crate::audit::Entry`]).
pub use crate::audit::Event as AuditEntry;

/// A delivery still to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The referral.
    pub referral: String,
    /// `deliver` (the case file) or `erase` (ask the other node to erase it).
    pub kind: OutboxKind,
    /// To which organisation.
    pub to: OrgId,
    /// Since when (Unix seconds).
    pub since: i64,
}

/// What an outbox entry asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxKind {
    /// Deliver the case file.
    Deliver,
    /// Ask the other node to erase it.
    Erase,
    /// Hand the case file on to one of this organisation's offices (a device node granted
    /// case files); `to` is the device's key.
    ToOffice,
    /// Ask the office that was handed the case file to erase it; `to` is the device's key.
    EraseAtOffice,
}

/// Why a case file was erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Erasure {
    /// Someone asked for it (here, or at the other organisation).
    Asked,
    /// The receiver's retention period after closing ended.
    RetentionEnded,
}

/// The tombstone of an erased case file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// When.
    pub at: i64,
    /// Why.
    pub why: Erasure,
}

/// The case files of one node.
#[derive(Debug, Clone)]
pub struct Vault {
    keys_dir: PathBuf,
    syncer: std::sync::Arc<crate::store::Syncer>,
    files: sled::Tree,
    erased: sled::Tree,
    audit: crate::audit_log::AuditLog,
    outbox: sled::Tree,
    /// The office (device key) each case file was handed on to.
    offices: sled::Tree,
    /// The backup folder, where every erasure is recorded too.
    erasure_journal: Option<PathBuf>,
}

/// One erasure, as the backup folder records it (`erasures.jsonl`): a restore destroys the
/// case files erased after its backup was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureRecord {
    /// The referral.
    pub referral: String,
    /// When.
    pub at: i64,
    /// Why.
    pub why: Erasure,
}

/// The name of the erasure journal in a backup folder.
pub const ERASURE_JOURNAL: &str = "erasures.jsonl";

fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

impl Vault {
    /// Opens the vault of the node whose data folder is `data_dir` and store is `store`;
    /// its audit log is sealed by `secret` (the node's key).
    pub fn open(
        store: &Store,
        data_dir: &Path,
        secret: crate::identity::SigningSecret,
    ) -> Result<Self, VaultError> {
        let keys_dir = data_dir.join(KEYS_DIR);
        fs::create_dir_all(&keys_dir).map_err(io("creating the case-keys folder"))?;
        fs::set_permissions(&keys_dir, fs::Permissions::from_mode(0o700))
            .map_err(io("restricting the case-keys folder"))?;
        let db = store.database();
        crate::durable::sync_dir(data_dir).map_err(io("syncing the data folder"))?;
        Ok(Self {
            keys_dir,
            syncer: store.syncer(),
            files: db.open_tree("case-files")?,
            erased: db.open_tree("case-erased")?,
            audit: crate::audit_log::AuditLog::open(
                data_dir,
                &db,
                secret,
                &db.open_tree("case-audit")?,
            )?,
            outbox: db.open_tree("case-outbox")?,
            offices: db.open_tree("case-offices")?,
            erasure_journal: None,
        })
    }

    /// Records every erasure in `dir`'s erasure journal too (the backup folder).
    pub fn with_erasure_journal(mut self, dir: Option<PathBuf>) -> Self {
        self.erasure_journal = dir;
        self
    }

    /// Appends an erasure to the backup folder's journal (on disk when it returns).
    fn journal(&self, record: &ErasureRecord) -> Result<(), VaultError> {
        let Some(dir) = &self.erasure_journal else {
            return Ok(());
        };
        let path = dir.join(ERASURE_JOURNAL);
        let mut line =
            serde_json::to_vec(record).map_err(|_| VaultError::Damaged("erasure record".into()))?;
        line.push(b'\n');
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(format!("opening {}", path.display())))?;
        file.write_all(&line)
            .and_then(|()| file.sync_data())
            .map_err(io(format!("recording the erasure in {}", path.display())))
    }

    /// Every tombstone: the referrals whose case file was erased here.
    pub fn tombstones(&self) -> Result<Vec<(String, Tombstone)>, VaultError> {
        let mut all = Vec::new();
        for item in self.erased.iter() {
            let (key, value) = item?;
            let referral = String::from_utf8_lossy(&key).into_owned();
            let tombstone = serde_json::from_slice(&value)
                .map_err(|_| VaultError::Damaged(referral.clone()))?;
            all.push((referral, tombstone));
        }
        Ok(all)
    }

    fn key_path(&self, referral: &str) -> PathBuf {
        self.keys_dir.join(format!("{referral}.key"))
    }

    /// Encrypts and stores a case file under a fresh key; durable when it returns.
    pub fn put(&self, referral: &str, case: &HeldCase) -> Result<(), VaultError> {
        debug_assert!(is_referral_id(referral));
        let mut key = Zeroizing::new([0u8; 32]);
        let mut nonce = [0u8; 12];
        for buffer in [key.as_mut_slice(), nonce.as_mut_slice()] {
            getrandom::fill(buffer).map_err(VaultError::Random)?;
        }
        let plaintext = Zeroizing::new(
            serde_json::to_vec(&case.content).map_err(|_| VaultError::Damaged(referral.into()))?,
        );
        let cipher = ChaCha20Poly1305::new(Key::from_slice(key.as_ref()));
        let ciphertext = cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_slice())
            .map_err(|_| VaultError::Damaged(referral.into()))?;
        let path = self.key_path(referral);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(format!("writing {}", path.display())))?;
        file.write_all(key.as_ref())
            .and_then(|()| file.sync_all())
            .and_then(|()| crate::durable::sync_dir(&self.keys_dir))
            .map_err(io(format!("writing {}", path.display())))?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        let record = StoredRecord {
            side: case.side,
            counterpart: case.counterpart,
            stored_at: case.stored_at,
            sealed: hex(&sealed),
        };
        let value =
            serde_json::to_vec(&record).map_err(|_| VaultError::Damaged(referral.into()))?;
        self.files.insert(referral.as_bytes(), value)?;
        self.syncer.flush()?;
        Ok(())
    }

    /// True if a case file of `referral` is held here.
    pub fn holds(&self, referral: &str) -> Result<bool, VaultError> {
        Ok(self.files.contains_key(referral.as_bytes())?)
    }

    /// The side and counterpart of a held case file, without decrypting it.
    pub fn side(&self, referral: &str) -> Result<Option<(Side, Option<OrgId>)>, VaultError> {
        Ok(self.record(referral)?.map(|r| (r.side, r.counterpart)))
    }

    fn record(&self, referral: &str) -> Result<Option<StoredRecord>, VaultError> {
        self.files
            .get(referral.as_bytes())?
            .map(|bytes| {
                serde_json::from_slice(&bytes).map_err(|_| VaultError::Damaged(referral.into()))
            })
            .transpose()
    }

    /// Decrypts a held case file (the caller records the read in the audit log).
    pub fn read(&self, referral: &str) -> Result<Option<HeldCase>, VaultError> {
        let Some(record) = self.record(referral)? else {
            return Ok(None);
        };
        let key = Zeroizing::new(
            fs::read(self.key_path(referral))
                .map_err(|_| VaultError::Unreadable(referral.into()))?,
        );
        let sealed = data_encoding::HEXLOWER
            .decode(record.sealed.as_bytes())
            .map_err(|_| VaultError::Damaged(referral.into()))?;
        if key.len() != 32 || sealed.len() < 12 {
            return Err(VaultError::Unreadable(referral.into()));
        }
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&key));
        let plaintext = Zeroizing::new(
            cipher
                .decrypt(Nonce::from_slice(&sealed[..12]), &sealed[12..])
                .map_err(|_| VaultError::Unreadable(referral.into()))?,
        );
        let content: CaseContent =
            serde_json::from_slice(&plaintext).map_err(|_| VaultError::Damaged(referral.into()))?;
        Ok(Some(HeldCase {
            side: record.side,
            counterpart: record.counterpart,
            stored_at: record.stored_at,
            content,
        }))
    }

    /// Erases a case file: destroys its key, deletes its ciphertext, leaves a tombstone.
    /// Returns true if one was held.
    pub fn erase(&self, referral: &str, now: i64, why: Erasure) -> Result<bool, VaultError> {
        let path = self.key_path(referral);
        if path.exists() {
            let length = fs::metadata(&path).map(|m| m.len()).unwrap_or(32) as usize;
            let mut file = fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io(format!("opening {}", path.display())))?;
            file.write_all(&vec![0u8; length.max(32)])
                .and_then(|()| file.sync_all())
                .map_err(io(format!("overwriting {}", path.display())))?;
            drop(file);
            fs::remove_file(&path)
                .and_then(|()| crate::durable::sync_dir(&self.keys_dir))
                .map_err(io(format!("deleting {}", path.display())))?;
        }
        let held = self.files.remove(referral.as_bytes())?.is_some();
        let tombstone = serde_json::to_vec(&Tombstone { at: now, why })
            .map_err(|_| VaultError::Damaged(referral.into()))?;
        self.erased.insert(referral.as_bytes(), tombstone)?;
        self.syncer.flush()?;
        // Erased here whatever happens next. A backup folder that cannot be written to (a
        // share unmounted) is reported: a restore from it could bring this one back.
        if let Err(e) = self.journal(&ErasureRecord {
            referral: referral.to_owned(),
            at: now,
            why,
        }) {
            tracing::error!(referral, error = %e, "the erasure could not be recorded in the backup folder: a restore from there would bring this case file back");
        }
        Ok(held)
    }

    /// When and why the case file of `referral` was erased here, if it was.
    pub fn erased(&self, referral: &str) -> Result<Option<Tombstone>, VaultError> {
        self.erased
            .get(referral.as_bytes())?
            .map(|v| serde_json::from_slice(&v).map_err(|_| VaultError::Damaged(referral.into())))
            .transpose()
    }

    /// Every referral with a case file held here, with its side.
    pub fn held(&self) -> Result<Vec<(String, Side, i64)>, VaultError> {
        let mut held = Vec::new();
        for item in self.files.iter() {
            let (key, value) = item?;
            let referral = String::from_utf8_lossy(&key).into_owned();
            let record: StoredRecord = serde_json::from_slice(&value)
                .map_err(|_| VaultError::Damaged(referral.clone()))?;
            held.push((referral, record.side, record.stored_at));
        }
        Ok(held)
    }

    /// Appends to the audit log; on disk when it returns.
    pub fn audit(&self, entry: &AuditEntry) -> Result<(), VaultError> {
        Ok(self.audit.append(entry.clone())?)
    }

    /// The audit log, oldest first, for one referral or all.
    pub fn audit_log(&self, referral: Option<&str>) -> Result<Vec<AuditEntry>, VaultError> {
        Ok(self.audit.events(referral)?)
    }

    /// The audit log's chain (for `audit export` and `audit verify`).
    pub fn audit_chain(&self) -> &crate::audit_log::AuditLog {
        &self.audit
    }

    fn outbox_key(kind: OutboxKind, referral: &str) -> Vec<u8> {
        let mut key = vec![match kind {
            OutboxKind::Deliver => b'd',
            OutboxKind::Erase => b'e',
            OutboxKind::ToOffice => b'o',
            OutboxKind::EraseAtOffice => b'x',
        }];
        key.extend_from_slice(referral.as_bytes());
        key
    }

    /// Queues a delivery (replacing one of the same kind for the same referral).
    pub fn queue(&self, entry: &OutboxEntry) -> Result<(), VaultError> {
        let value = serde_json::to_vec(entry).map_err(|_| VaultError::Damaged("outbox".into()))?;
        self.outbox
            .insert(Self::outbox_key(entry.kind, &entry.referral), value)?;
        self.syncer.flush()?;
        Ok(())
    }

    /// Removes a delivery once acknowledged.
    pub fn dequeue(&self, kind: OutboxKind, referral: &str) -> Result<(), VaultError> {
        self.outbox.remove(Self::outbox_key(kind, referral))?;
        self.syncer.flush()?;
        Ok(())
    }

    /// Records that the case file of `referral` is handed on to the office `device`
    /// (on disk when it returns).
    pub fn hand_to_office(&self, referral: &str, device: &KeyId) -> Result<(), VaultError> {
        self.offices
            .insert(referral.as_bytes(), device.to_string().as_bytes())?;
        self.syncer.flush()?;
        Ok(())
    }

    /// The office the case file of `referral` was handed on to, if any.
    pub fn office_of(&self, referral: &str) -> Result<Option<KeyId>, VaultError> {
        self.offices
            .get(referral.as_bytes())?
            .map(|v| {
                String::from_utf8_lossy(&v)
                    .parse()
                    .map_err(|_| VaultError::Damaged(format!("office of {referral}")))
            })
            .transpose()
    }

    /// Forgets which office holds the case file of `referral`.
    pub fn leave_office(&self, referral: &str) -> Result<(), VaultError> {
        self.offices.remove(referral.as_bytes())?;
        self.syncer.flush()?;
        Ok(())
    }

    /// The referrals whose case file was handed on to the office `device`.
    pub fn at_office(&self, device: &KeyId) -> Result<Vec<String>, VaultError> {
        let device = device.to_string();
        let mut referrals = Vec::new();
        for item in self.offices.iter() {
            let (key, value) = item?;
            if value.as_ref() == device.as_bytes() {
                referrals.push(String::from_utf8_lossy(&key).into_owned());
            }
        }
        Ok(referrals)
    }

    /// Every delivery still to make.
    pub fn outbox(&self) -> Result<Vec<OutboxEntry>, VaultError> {
        let mut entries = Vec::new();
        for item in self.outbox.iter() {
            let (_, value) = item?;
            entries.push(
                serde_json::from_slice(&value).map_err(|_| VaultError::Damaged("outbox".into()))?,
            );
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::referral::casefile::{CaseFile, ConsentRecord};

    #[test]
    fn a_case_file_is_encrypted_at_rest_and_erasure_makes_it_unreadable() {
        let folder = tempfile::tempdir().unwrap();
        let store = Store::create(&folder.path().join("store")).unwrap();
        let vault = Vault::open(
            &store,
            folder.path(),
            crate::identity::SigningSecret::generate().unwrap(),
        )
        .unwrap();
        let referral = "ref-0123456789abcdef01234567";
        let case = HeldCase {
            side: Side::Received,
            counterpart: None,
            stored_at: 5,
            content: CaseContent {
                salt: "00".repeat(32),
                case_file: CaseFile {
                    name: "Jean-Paul Nkodo".into(),
                    phone: Some("+237 677 12 34 56".into()),
                    ..CaseFile::default()
                },
                consent: ConsentRecord::Override {
                    reason: "medical emergency, unconscious".into(),
                    at: 5,
                },
            },
        };
        vault.put(referral, &case).unwrap();
        assert_eq!(vault.read(referral).unwrap(), Some(case));
        let key = folder.path().join(KEYS_DIR).join(format!("{referral}.key"));
        let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // The key gone, the ciphertext alone opens nothing.
        let saved = fs::read(&key).unwrap();
        fs::write(&key, [7u8; 32]).unwrap();
        assert!(matches!(
            vault.read(referral),
            Err(VaultError::Unreadable(_))
        ));
        fs::write(&key, saved).unwrap();
        assert!(vault.erase(referral, 9, Erasure::Asked).unwrap());
        assert!(!key.exists());
        assert_eq!(vault.read(referral).unwrap(), None);
        assert_eq!(
            vault.erased(referral).unwrap(),
            Some(Tombstone {
                at: 9,
                why: Erasure::Asked
            })
        );
        drop(vault);
        drop(store);
        let mut found = false;
        for entry in walk(folder.path()) {
            let bytes = fs::read(&entry).unwrap();
            found |= bytes.windows(5).any(|w| w == b"Nkodo");
        }
        assert!(
            !found,
            "the name was found in plain text in the data folder"
        );
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
        files
    }
}
