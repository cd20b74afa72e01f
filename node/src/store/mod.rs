//! The node's durable store: every signed change and a compacted snapshot per document, in
//! sled.
//!
//! Rules:
//! - One tree per kind of record: `changes` (key: document id, `0x00`, change hash; value:
//!   the encoded [`SignedChange`], signature included, so it can be forwarded and verified
//!   by third parties), `snapshots` and `snapshot-documents` (key: document id; values:
//!   the two parts of a [`Snapshot`]: its heads and the validated record read from it, read
//!   at start; its heads and Automerge's compressed document, read when first needed) and
//!   `meta` (store format version).
//! - Writes are batched and flushed before they return: a caller may report success (or
//!   forward the change) only after [`Store::put_changes`] returned `Ok`. sled 0.34 flushes
//!   with `sync_file_range`, which survives the process being killed but not necessarily a
//!   power cut (see `docs/operator-guide.md`).
//! - `documents-received-whole` (key: document id; value: Automerge's compressed document)
//!   holds a document as a peer sent it whole (a bundle, `docs/protocol.md`): its changes
//!   are stored there, in one value, instead of one record each. Only each author's
//!   latest change, signed, is also in `changes`; every other change of the document is
//!   attested by those signatures (the hash chain). Reading a document's changes
//!   ([`Store::load_document`], [`Store::load_changes`]) reads both and verifies them
//!   together; cutting changes out of such a document first stores its changes one by one.
//! - `change-counts` (key: document id; value: u64 BE) holds how many changes of each
//!   document are stored (in records or in a document received whole), written before the
//!   changes themselves; a snapshot records how many changes it holds. At start, a document whose snapshot holds as many changes as
//!   are stored is taken from the snapshot without reading its changes (fast start); any
//!   other is rebuilt from its signed changes, decoded and verified.
//! - [`Store::load`] and [`Store::load_document`] decode and verify every change they
//!   read (a full check: `passerelle start --verify-store`). A record that does not
//!   decode, does not match its key, or does not verify is reported as
//!   [`StoreError::Corrupt`]; the store is never silently reset.
//! - The store is synchronous: the node calls it from its documents thread, never from the
//!   async runtime.
//!
//! This file holds the store and its signed changes; beside it `open` (opening, settling,
//! [`Syncer`]), `snapshot` (the two parts of a snapshot), `check` (reading and verifying
//! every record) and `meta` (network, seed, device, admission requests).

use std::collections::{BTreeMap, HashMap};

use automerge::ChangeHash;

use crate::envelope::{DocumentId, SignedChange};

mod check;
mod meta;
mod open;
mod snapshot;

pub use check::{Damage, StoreCheck};
pub use meta::{MAX_ADDRESSES_PER_PEER, MAX_REMEMBERED_PEERS, PeerAddresses, Seed};
pub use open::{DAMAGED_SNAPSHOTS_DIR, LOCK_WAIT, STORE_CACHE_BYTES, Syncer};
pub use snapshot::{SnapshotDocument, SnapshotEncoding};

/// Version of the store's layout, kept in the `meta` tree.
pub const STORE_FORMAT: &[u8] = b"passerelle-store-2";
/// The layout before documents received whole were kept in one value: a subset of the
/// current one, upgraded in place when opened (an older node refuses the upgraded store,
/// whose documents received whole it would not read).
const STORE_FORMAT_1: &[u8] = b"passerelle-store-1";
const FORMAT_KEY: &[u8] = b"format";
const NETWORK_KEY: &[u8] = b"network";
const BOOTSTRAP_KEY: &[u8] = b"bootstrap-peers";
const OWN_REQUEST_KEY: &[u8] = b"own-admission-request";
const ORGANISATION_KEY: &[u8] = b"device-of";
/// Set by `passerelle repair` when the node's own document was damaged or lost: the node
/// starts without it and takes it back from its peers.
const OWN_AWAITED_KEY: &[u8] = b"own-document-awaited";
/// The organisation's offline recovery key made at `init`, until the network records it.
const RECOVERY_PENDING_KEY: &[u8] = b"recovery-key-pending";
/// What a node needs to find its network again if its database cannot be opened at all,
/// kept beside the database as a small file (`store/seed.json`).
pub const SEED_FILE: &str = "seed.json";
/// Set once `change-counts` holds the count of every document (new stores, and stores
/// whose counts were rebuilt by a full load).
const COUNTS_COMPLETE_KEY: &[u8] = b"change-counts-complete";
/// Most admission requests a member node keeps in its inbox.
pub const MAX_ADMISSION_REQUESTS: usize = 1000;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process (a running node) holds the store.
    #[error("the store at {path} is in use: another node is already running with this data folder")]
    Locked {
        /// The store folder.
        path: String,
    },
    /// sled could not open the database for another reason than damage (permissions, a
    /// full disk, …).
    #[error("cannot open the store at {path} (nothing was changed)")]
    Open {
        /// The store folder.
        path: String,
        /// sled's error.
        source: sled::Error,
    },
    /// sled's files are damaged (a checksum does not match): the disk lost or changed
    /// bytes.
    #[error(
        "the store's database {file} is damaged: {detail}. Nothing was changed. To recover: stop the node and run `passerelle repair` (it keeps every record that can still be read and verified, sets the rest aside, and the node fetches what is missing from its peers: every change is signed, so peers can send it all again); or restore the data folder from a backup"
    )]
    Damaged {
        /// The file at fault (`…/store/db`).
        file: String,
        /// What sled found.
        detail: String,
    },
    /// The disk is full.
    #[error(
        "the disk holding the store is full: this change was not stored (free some space on that disk; if later changes still fail, restart the node)"
    )]
    DiskFull,
    /// A read or write failed.
    #[error("store: {0}")]
    Sled(sled::Error),
    /// The store was written by another version of Passerelle, or is not a Passerelle store.
    #[error("store format is {found:?}, expected {expected:?}; refusing to open it")]
    Format {
        /// What the store says.
        found: String,
        /// What this version writes.
        expected: String,
    },
    /// A record is damaged or was tampered with.
    #[error(
        "store is corrupt: record {key}: {reason} (nothing was changed; restore the data folder from a backup or ask a peer to resend)"
    )]
    Corrupt {
        /// The record's key, readable.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl From<sled::Error> for StoreError {
    /// A damaged page met while reading is told as damage, with what to do.
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Corruption { at, .. } => StoreError::Damaged {
                file: "store/db (in the data folder)".into(),
                detail: match at {
                    Some(at) => format!("sled read corrupted data at {at:?}"),
                    None => "sled read corrupted data".into(),
                },
            },
            sled::Error::Io(e) if e.kind() == std::io::ErrorKind::StorageFull => {
                StoreError::DiskFull
            }
            other => StoreError::Sled(other),
        }
    }
}

/// What the store holds for one document.
#[derive(Debug)]
pub struct StoredDocument {
    /// The document.
    pub id: DocumentId,
    /// Every signed change of it, verified.
    pub changes: Vec<SignedChange>,
    /// The latest snapshot, if one was written and is readable.
    pub snapshot: Option<Snapshot>,
}

pub use crate::document::Snapshot;

/// Proof that what was written before was made durable: only a flush that reached
/// `fdatasync` on the store's files makes one. What is acknowledged as durable holds one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Synced(());

/// The sled store of one node.
#[derive(Debug, Clone)]
pub struct Store {
    /// The store's folder.
    path: std::path::PathBuf,
    /// Peer key → where it was last reached ([`meta::PeerAddresses`], JSON).
    addresses: sled::Tree,
    db: sled::Db,
    syncer: std::sync::Arc<Syncer>,
    changes: sled::Tree,
    /// Document id → number of its changes in `changes` (u64 BE), so a node can tell at
    /// start, without reading them, that a snapshot holds every stored change.
    counts: sled::Tree,
    /// Document id → a snapshot's header and record ([`Snapshot::encode_record`]).
    snapshots: sled::Tree,
    /// Document id → the snapshot's Automerge document ([`Snapshot::encode_document`]).
    snapshot_documents: sled::Tree,
    /// Document id → the document as received whole (Automerge's compressed format).
    received_whole: sled::Tree,
    meta: sled::Tree,
    requests: sled::Tree,
    /// Referral id, `\0`, move place → when a noteworthy move reached this node
    /// ([`crate::referral::board::Arrival`], JSON): only the moves dated ahead of their
    /// arrival or published late are kept.
    arrivals: sled::Tree,
    /// When a snapshot was last written (Unix seconds; 0: none since the store opened).
    last_snapshot: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

fn change_key(document: &DocumentId, hash: &ChangeHash) -> Vec<u8> {
    let doc = document.as_str().as_bytes();
    let mut key = Vec::with_capacity(doc.len() + 33);
    key.extend_from_slice(doc);
    key.push(0);
    key.extend_from_slice(&hash.0);
    key
}

fn readable_key(key: &[u8]) -> String {
    match key.iter().position(|b| *b == 0) {
        Some(split) => {
            let hash: String = key[split + 1..]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("{}/{}", String::from_utf8_lossy(&key[..split]), hash)
        }
        None => String::from_utf8_lossy(key).into_owned(),
    }
}

impl Store {
    /// Stores signed changes (already verified) in one batch and flushes them to disk.
    ///
    /// Each document's change count is written first, then the changes: sled recovers a
    /// prefix of its log after a crash, so a count is never lower than what is stored (a
    /// higher one only makes the next start rebuild that document from its changes).
    pub fn put_changes(&self, changes: &[SignedChange]) -> Result<Synced, StoreError> {
        self.write_changes(changes)?;
        self.flush()
    }

    /// Writes signed changes (already verified) as [`Store::put_changes`] does, without
    /// flushing: for writers that store several documents' changes from several threads
    /// (one document per thread at a time), then call [`Store::flush`] once before
    /// acknowledging any of them.
    pub fn write_changes(&self, changes: &[SignedChange]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        let mut added: BTreeMap<&DocumentId, u64> = BTreeMap::new();
        let mut keys = std::collections::HashSet::new();
        // A document with no stored change yet (one received whole) needs no look-up,
        // when the counts are known to be complete.
        let counts_complete = self.meta.get(COUNTS_COMPLETE_KEY)?.is_some();
        let mut holds_some: HashMap<&DocumentId, bool> = HashMap::new();
        for change in changes {
            let key = change_key(change.document(), &change.hash());
            let holds = match holds_some.get(change.document()) {
                Some(holds) => *holds,
                None => {
                    let holds = !counts_complete || self.count_of(change.document())? > 0;
                    holds_some.insert(change.document(), holds);
                    holds
                }
            };
            let stored = holds && self.changes.contains_key(&key)?;
            if !keys.contains(&key) && !stored {
                *added.entry(change.document()).or_default() += 1;
            }
            batch.insert(key.clone(), change.encode());
            keys.insert(key);
        }
        let mut counts = sled::Batch::default();
        for (document, added) in added {
            let total = self.count_of(document)? + added;
            counts.insert(document.as_str().as_bytes(), &total.to_be_bytes());
        }
        self.counts.apply_batch(counts)?;
        self.changes.apply_batch(batch)?;
        Ok(())
    }

    /// Writes a document received whole (already verified) that the store held nothing
    /// of: its `changes` count, the compressed document `saved` (which loads as exactly
    /// those changes) and the `signed` changes among them, each author's latest, as
    /// records. Not flushed (the caller flushes, as after [`Store::write_changes`]).
    pub fn write_whole(
        &self,
        document: &DocumentId,
        saved: &[u8],
        signed: &[SignedChange],
        changes: u64,
    ) -> Result<(), StoreError> {
        let key = document.as_str().as_bytes();
        if self.count_of(document)? > 0 {
            return Err(StoreError::Corrupt {
                key: format!("documents-received-whole/{document}"),
                reason: "the store already holds changes of this document".into(),
            });
        }
        self.counts.insert(key, &changes.to_be_bytes())?;
        self.received_whole.insert(key, saved)?;
        let mut batch = sled::Batch::default();
        for change in signed {
            batch.insert(change_key(document, &change.hash()), change.encode());
        }
        self.changes.apply_batch(batch)?;
        Ok(())
    }

    /// The changes of `document` held in the document received whole `saved` and not
    /// among `records` (its stored records), each attested; appended to `records`.
    fn add_received_whole(
        document: &DocumentId,
        saved: &[u8],
        records: &mut Vec<SignedChange>,
    ) -> Result<(), StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            key: format!("documents-received-whole/{document}"),
            reason,
        };
        let mut doc = crate::automerge_guard::load_autocommit(saved)
            .map_err(|e| corrupt(format!("it does not load: {e}")))?;
        let held: std::collections::HashSet<ChangeHash> =
            records.iter().map(SignedChange::hash).collect();
        for change in doc.get_changes(&[]) {
            if !held.contains(&change.hash()) {
                records.push(
                    SignedChange::attested(document.clone(), change)
                        .map_err(|e| corrupt(e.to_string()))?,
                );
            }
        }
        Ok(())
    }

    /// Flushes everything written so far to disk, durably ([`Syncer`]).
    pub fn flush(&self) -> Result<Synced, StoreError> {
        self.syncer.flush()
    }

    fn count_of(&self, document: &DocumentId) -> Result<u64, StoreError> {
        Ok(self
            .counts
            .get(document.as_str().as_bytes())?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map_or(0, u64::from_be_bytes))
    }

    /// Every document's change count, or `None` if this store's counts are not complete
    /// (a store written by an earlier version: the node then loads everything once and
    /// records them with [`Store::set_change_counts`]).
    pub fn change_counts(&self) -> Result<Option<BTreeMap<DocumentId, u64>>, StoreError> {
        if self.meta.get(COUNTS_COMPLETE_KEY)?.is_none() {
            return Ok(None);
        }
        let mut out = BTreeMap::new();
        for entry in self.counts.iter() {
            let (key, value) = entry?;
            let id = String::from_utf8(key.to_vec())
                .ok()
                .and_then(|k| DocumentId::try_from(k).ok());
            let count = <[u8; 8]>::try_from(value.as_ref())
                .ok()
                .map(u64::from_be_bytes);
            match (id, count) {
                (Some(id), Some(count)) => {
                    out.insert(id, count);
                }
                _ => {
                    return Err(StoreError::Corrupt {
                        key: format!("change-counts/{}", readable_key(&key)),
                        reason: "not a document id and a count".into(),
                    });
                }
            }
        }
        Ok(Some(out))
    }

    /// Records the change counts of the given documents (after reading their changes), and
    /// with `complete`, that every document now has its count.
    pub fn set_change_counts<'a>(
        &self,
        counts: impl IntoIterator<Item = (&'a DocumentId, u64)>,
        complete: bool,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (document, count) in counts {
            batch.insert(document.as_str().as_bytes(), &count.to_be_bytes());
        }
        self.counts.apply_batch(batch)?;
        if complete {
            self.meta.insert(COUNTS_COMPLETE_KEY, &[1u8])?;
        }
        self.syncer.flush()?;
        Ok(())
    }

    pub fn remove_changes(
        &self,
        document: &DocumentId,
        hashes: &[ChangeHash],
    ) -> Result<(), StoreError> {
        let key = document.as_str().as_bytes();
        if let Some(saved) = self.received_whole.get(key)? {
            // Its changes are stored one by one first, so that some can be cut.
            let mut records = self.records_of(document)?;
            let held = records.len();
            Self::add_received_whole(document, &saved, &mut records)?;
            let mut batch = sled::Batch::default();
            for change in &records[held..] {
                batch.insert(change_key(document, &change.hash()), change.encode());
            }
            self.changes.apply_batch(batch)?;
            self.received_whole.remove(key)?;
        }
        let mut batch = sled::Batch::default();
        let mut removed = 0;
        for hash in hashes {
            let key = change_key(document, hash);
            if self.changes.contains_key(&key)? {
                removed += 1;
            }
            batch.remove(key);
        }
        let left = self.count_of(document)?.saturating_sub(removed);
        self.changes.apply_batch(batch)?;
        self.counts
            .insert(document.as_str().as_bytes(), &left.to_be_bytes())?;
        self.snapshots.remove(document.as_str().as_bytes())?;
        self.snapshot_documents
            .remove(document.as_str().as_bytes())?;
        self.syncer.flush()?;
        Ok(())
    }

    /// The records of one document's changes, decoded, not verified.
    fn records_of(&self, document: &DocumentId) -> Result<Vec<SignedChange>, StoreError> {
        let mut prefix = document.as_str().as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for entry in self.changes.scan_prefix(&prefix) {
            let (key, value) = entry?;
            let change = SignedChange::decode(&value).map_err(|e| StoreError::Corrupt {
                key: readable_key(&key),
                reason: e.to_string(),
            })?;
            out.push(change);
        }
        Ok(out)
    }

    /// The verified changes of one document: its records, and those of the document as
    /// received whole, if it was (each attested by a signed record).
    pub fn load_document(&self, document: &DocumentId) -> Result<Vec<SignedChange>, StoreError> {
        let mut out = self.records_of(document)?;
        if let Some(saved) = self.received_whole.get(document.as_str().as_bytes())? {
            Self::add_received_whole(document, &saved, &mut out)?;
        }
        if let Err((index, error)) = SignedChange::verify_all(&out) {
            return Err(StoreError::Corrupt {
                key: readable_key(&change_key(document, &out[index].hash())),
                reason: error.to_string(),
            });
        }
        Ok(out)
    }

    /// True if the store holds this change as a record.
    pub fn has_change(&self, document: &DocumentId, hash: &ChangeHash) -> Result<bool, StoreError> {
        Ok(self.changes.contains_key(change_key(document, hash))?)
    }

    /// The encoded signed change, as stored (and as sent to peers); `None` for a change
    /// held only in a document received whole (the node encodes it, attested, from the
    /// document it holds).
    pub fn raw_change(
        &self,
        document: &DocumentId,
        hash: &ChangeHash,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .changes
            .get(change_key(document, hash))?
            .map(|v| v.to_vec()))
    }

    /// Every document with its verified changes and snapshot.
    pub fn load(&self) -> Result<Vec<StoredDocument>, StoreError> {
        let mut snapshots: BTreeMap<_, _> = self.load_snapshots()?.into_iter().collect();
        Ok(self
            .load_changes()?
            .into_iter()
            .map(|(id, changes)| StoredDocument {
                snapshot: snapshots.remove(&id),
                id,
                changes,
            })
            .collect())
    }

    /// Every stored change (records, and documents received whole), decoded and verified,
    /// by document.
    pub fn load_changes(&self) -> Result<BTreeMap<DocumentId, Vec<SignedChange>>, StoreError> {
        let mut documents: BTreeMap<DocumentId, Vec<SignedChange>> = BTreeMap::new();
        for entry in self.changes.iter() {
            let (key, value) = entry?;
            let change = SignedChange::decode(&value).map_err(|e| StoreError::Corrupt {
                key: readable_key(&key),
                reason: e.to_string(),
            })?;
            if key.as_ref() != change_key(change.document(), &change.hash()).as_slice() {
                return Err(StoreError::Corrupt {
                    key: readable_key(&key),
                    reason: format!(
                        "it holds change {} of {}, not the one its key names",
                        change.hash(),
                        change.document()
                    ),
                });
            }
            documents
                .entry(change.document().clone())
                .or_default()
                .push(change);
        }
        for entry in self.received_whole.iter() {
            let (key, saved) = entry?;
            let id = String::from_utf8(key.to_vec())
                .ok()
                .and_then(|k| DocumentId::try_from(k).ok())
                .ok_or_else(|| StoreError::Corrupt {
                    key: format!("documents-received-whole/{}", readable_key(&key)),
                    reason: "not a document id".into(),
                })?;
            Self::add_received_whole(&id, &saved, documents.entry(id.clone()).or_default())?;
        }
        for (id, changes) in &documents {
            if let Err((index, error)) = SignedChange::verify_all(changes) {
                return Err(StoreError::Corrupt {
                    key: readable_key(&change_key(id, &changes[index].hash())),
                    reason: error.to_string(),
                });
            }
        }
        Ok(documents)
    }

    /// Bytes the store takes on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    /// Number of change records held, a document received whole counting as one.
    pub fn change_count(&self) -> usize {
        self.changes.len() + self.received_whole.len()
    }

    /// Writes raw bytes under a change key. Tests use it to simulate tampering.
    #[doc(hidden)]
    pub fn put_raw_change_for_tests(
        &self,
        document: &DocumentId,
        hash: &ChangeHash,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.changes.insert(change_key(document, hash), bytes)?;
        self.syncer.flush()?;
        Ok(())
    }
}

/// Where a document held in its saved form is read when first needed.
impl crate::document::SavedSource for Store {
    fn saved_document(
        &self,
        document: &DocumentId,
        heads: &[ChangeHash],
    ) -> Result<Option<Vec<u8>>, String> {
        self.snapshot_document(document, heads)
            .map_err(|e| e.to_string())
    }

    fn signed_changes(&self, document: &DocumentId) -> Result<Vec<SignedChange>, String> {
        self.load_document(document).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::snapshot::encode_heads;
    use super::*;
    use crate::document::{Edit, OrganisationDocument};
    use crate::identity::SigningSecret;
    use crate::model::{LegalStatus, Profile};

    #[test]
    fn the_address_book_is_bounded_newest_first_and_survives_reopening() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let store = Store::create(dir.path()).expect("store");
        let keys: Vec<crate::identity::KeyId> = (0..MAX_REMEMBERED_PEERS + 4)
            .map(|_| SigningSecret::generate().expect("key").key_id())
            .collect();
        let many: Vec<String> = (0..20)
            .map(|n| format!("/ip4/192.0.2.1/tcp/{}", 4000 + n))
            .collect();
        for (seen, key) in keys.iter().enumerate() {
            store
                .remember_addresses(key, &many, seen as i64)
                .expect("kept");
        }
        // Seen again later: moves to the front with its new addresses.
        store
            .remember_addresses(&keys[10], &many[..1], 10_000)
            .expect("kept");
        drop(store);
        let store = Store::open(dir.path()).expect("reopened");
        let book = store.remembered_addresses().expect("read");
        assert_eq!(book.len(), MAX_REMEMBERED_PEERS);
        assert_eq!(book[0].key, keys[10]);
        assert_eq!(book[0].addresses, many[..1].to_vec());
        assert!(
            book[1..]
                .iter()
                .all(|p| p.addresses.len() == MAX_ADDRESSES_PER_PEER)
        );
        assert!(book.windows(2).all(|w| w[0].seen >= w[1].seen));
        // The four seen longest ago were forgotten, the fifth kept.
        for forgotten in &keys[..4] {
            assert!(book.iter().all(|p| p.key != *forgotten));
        }
        assert!(book.iter().any(|p| p.key == keys[4]));
    }

    fn profile() -> Profile {
        Profile {
            legal_status: Some(LegalStatus::Ngo),
            ..Profile::named("Centre Espoir")
        }
    }

    fn two_changes(secret: &SigningSecret) -> Vec<SignedChange> {
        let (mut doc, genesis) = OrganisationDocument::create(secret, profile(), 10).unwrap();
        let patch = serde_json::json!({"acronym": "CE"});
        let edit = doc
            .apply_edit(
                &Edit::SetProfile {
                    patch: patch.as_object().unwrap().clone(),
                },
                secret,
                20,
            )
            .unwrap();
        vec![genesis, edit]
    }

    #[test]
    fn changes_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let secret = SigningSecret::generate().unwrap();
        let changes = two_changes(&secret);
        {
            let store = Store::create(dir.path()).unwrap();
            store.put_changes(&changes).unwrap();
        }
        // Settled once closed (as at shutdown), and settling again changes nothing.
        Store::settle(dir.path()).unwrap();
        Store::settle(dir.path()).unwrap();
        let store = Store::open(dir.path()).unwrap();
        let docs = store.load().unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].changes.len(), 2);
        let mut doc = OrganisationDocument::empty(secret.org_id());
        doc.apply_verified(&docs[0].changes).unwrap();
        assert_eq!(doc.record().unwrap().profile.acronym.as_deref(), Some("CE"));
    }

    #[test]
    fn tampered_record_is_reported_not_reset() {
        let dir = tempfile::tempdir().unwrap();
        let secret = SigningSecret::generate().unwrap();
        let changes = two_changes(&secret);
        let store = Store::create(dir.path()).unwrap();
        store.put_changes(&changes).unwrap();
        // Flip one bit of the stored signature.
        let mut bytes = changes[1].encode();
        let doc_len = u16::from_be_bytes([bytes[4], bytes[5]]) as usize;
        bytes[6 + doc_len + 32] ^= 1;
        store
            .put_raw_change_for_tests(changes[1].document(), &changes[1].hash(), &bytes)
            .unwrap();
        let err = store.load().unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("does not verify"), "{err}");
        // Still there, untouched: the store was not reset.
        assert_eq!(store.change_count(), 2);

        // A record stored under the wrong key.
        store
            .put_raw_change_for_tests(
                changes[1].document(),
                &changes[0].hash(),
                &changes[1].encode(),
            )
            .unwrap();
        let err = store.load().unwrap_err();
        assert!(
            err.to_string().contains("not the one its key names"),
            "{err}"
        );

        // Garbage.
        store
            .put_raw_change_for_tests(changes[1].document(), &changes[0].hash(), b"garbage")
            .unwrap();
        assert!(matches!(store.load(), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn damaged_database_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let secret = SigningSecret::generate().unwrap();
        {
            let store = Store::create(dir.path()).unwrap();
            store.put_changes(&two_changes(&secret)).unwrap();
        }
        // Overwrite the whole database file with garbage.
        let db_file = dir.path().join("db");
        let len = std::fs::metadata(&db_file).unwrap().len() as usize;
        std::fs::write(&db_file, vec![0xA5u8; len.max(4096)]).unwrap();
        let result = Store::open(dir.path()).and_then(|s| s.load());
        match result {
            Err(_) => {}
            Ok(docs) => panic!(
                "damaged store opened silently with {} documents",
                docs.len()
            ),
        }
    }

    #[test]
    fn change_counts_follow_what_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let secret = SigningSecret::generate().unwrap();
        let changes = two_changes(&secret);
        let document = changes[0].document().clone();
        let store = Store::create(dir.path()).unwrap();
        assert_eq!(store.change_counts().unwrap(), Some(BTreeMap::new()));
        // A change given twice in one batch, then again: counted once.
        store
            .put_changes(&[changes[0].clone(), changes[0].clone()])
            .unwrap();
        store.put_changes(&changes).unwrap();
        let counts = store.change_counts().unwrap().unwrap();
        assert_eq!(counts.get(&document), Some(&2));
        store
            .remove_changes(&document, &[changes[1].hash()])
            .unwrap();
        assert_eq!(
            store.change_counts().unwrap().unwrap().get(&document),
            Some(&1)
        );
        // A store without the mark (written before counts were kept) says so.
        store.meta.remove(COUNTS_COMPLETE_KEY).unwrap();
        assert_eq!(store.change_counts().unwrap(), None);
        store.set_change_counts([(&document, 1)], true).unwrap();
        assert_eq!(
            store.change_counts().unwrap().unwrap().get(&document),
            Some(&1)
        );
    }

    #[test]
    fn snapshot_round_trips_and_garbage_is_refused() {
        let snapshot = Snapshot {
            changes: 2,
            heads: vec![ChangeHash([7; 32]), ChangeHash([9; 32])],
            document: vec![1, 2, 3],
            latest: vec![ChangeHash([9; 32])],
            record: br#"{"org_id":"x","referrals":{}}"#.to_vec(),
        };
        let record = snapshot.encode_record();
        let decoded = Snapshot::decode_record(&record).unwrap();
        assert_eq!(decoded.document, Vec::<u8>::new());
        assert_eq!(
            (decoded.changes, &decoded.heads, &decoded.record),
            (2, &snapshot.heads, &snapshot.record)
        );
        assert_eq!(
            Snapshot::decode_document(&snapshot.encode_document()),
            Some(SnapshotDocument {
                heads: snapshot.heads.clone(),
                latest: snapshot.latest.clone(),
                document: snapshot.document.clone()
            })
        );
        // The older document part, without magic and latest changes.
        let mut older_part = Vec::new();
        encode_heads(&mut older_part, &snapshot.heads);
        older_part.extend_from_slice(&snapshot.document);
        assert_eq!(
            Snapshot::decode_document(&older_part),
            Some(SnapshotDocument {
                heads: snapshot.heads.clone(),
                latest: Vec::new(),
                document: snapshot.document.clone()
            })
        );
        assert_eq!(Snapshot::decode_record(&record[..40]), None);
        assert_eq!(Snapshot::decode_record(b"garbage"), None);
        // Through a store: whole, record alone, and a document part of other heads refused.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path()).unwrap();
        let id = DocumentId::try_from("org:test".to_owned()).unwrap();
        store.put_snapshot(&id, &snapshot).unwrap();
        assert_eq!(store.snapshot(&id).unwrap(), Some(snapshot.clone()));
        assert_eq!(store.snapshot_record(&id).unwrap(), Some(decoded));
        let other = Snapshot {
            heads: vec![ChangeHash([8; 32])],
            ..snapshot.clone()
        };
        store
            .snapshot_documents
            .insert(id.as_str().as_bytes(), other.encode_document())
            .unwrap();
        assert_eq!(store.snapshot(&id).unwrap(), None);
        // A store of the older layout (document and record in one value) is still read.
        let mut older = b"PSS2".to_vec();
        older.extend_from_slice(&2u64.to_be_bytes());
        encode_heads(&mut older, &snapshot.heads);
        older.extend_from_slice(&3u32.to_be_bytes());
        older.extend_from_slice(&snapshot.document);
        older.extend_from_slice(&snapshot.record);
        store
            .snapshot_documents
            .remove(id.as_str().as_bytes())
            .unwrap();
        store
            .snapshots
            .insert(id.as_str().as_bytes(), older)
            .unwrap();
        assert_eq!(
            store.snapshot(&id).unwrap(),
            Some(Snapshot {
                latest: Vec::new(),
                ..snapshot
            })
        );
    }

    #[test]
    fn foreign_sled_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            db.insert(b"hello", b"world").unwrap();
            db.flush().unwrap();
        }
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::Format { .. })
        ));
        assert!(matches!(
            Store::create(dir.path()),
            Err(StoreError::Format { .. })
        ));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            Store::open(&empty.path().join("store")),
            Err(StoreError::Format { .. })
        ));
    }

    /// A document of three changes by its owner (the last signed, the others attested by
    /// it) and one signed change by a second key, as a peer sends it whole.
    fn received_whole() -> (DocumentId, Vec<u8>, Vec<SignedChange>, ChangeHash) {
        use automerge::transaction::Transactable;
        let owner = SigningSecret::generate().unwrap();
        let device = SigningSecret::generate().unwrap();
        let id = DocumentId::organisation(&owner.org_id());
        let mut doc = automerge::AutoCommit::new();
        let mut commit = |key: &SigningSecret, field: &str| {
            doc.set_actor(automerge::ActorId::from(key.org_id().as_bytes()));
            doc.put(automerge::ROOT, field, 1).unwrap();
            doc.commit();
            doc.get_last_local_change().unwrap()
        };
        commit(&owner, "a");
        commit(&owner, "b");
        let latest = commit(&owner, "c");
        let devices = commit(&device, "d");
        let signed = vec![
            SignedChange::sign(id.clone(), latest, &owner),
            SignedChange::sign(id.clone(), devices.clone(), &device),
        ];
        (id, doc.save(), signed, devices.hash())
    }

    #[test]
    fn a_document_received_whole_is_stored_in_one_value_and_reads_back_change_by_change() {
        let dir = tempfile::tempdir().unwrap();
        let (id, saved, signed, devices) = received_whole();
        {
            let store = Store::create(dir.path()).unwrap();
            store.write_whole(&id, &saved, &signed, 4).unwrap();
            store.flush().unwrap();
            // Written once only: a second time is refused, the first left as it was.
            assert!(matches!(
                store.write_whole(&id, &saved, &signed, 4),
                Err(StoreError::Corrupt { .. })
            ));
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.change_counts().unwrap().unwrap()[&id], 4);
        // Two signed records and the document in one value.
        assert_eq!(store.change_count(), 3);
        let changes = store.load_document(&id).unwrap();
        assert_eq!(changes.len(), 4);
        assert_eq!(changes.iter().filter(|c| !c.is_signed()).count(), 2);
        assert_eq!(store.load_changes().unwrap()[&id].len(), 4);
        let attested = changes.iter().find(|c| !c.is_signed()).unwrap();
        assert_eq!(store.raw_change(&id, &attested.hash()).unwrap(), None);
        assert!(store.raw_change(&id, &devices).unwrap().is_some());

        // Cutting the second key's change stores the owner's one by one first.
        store.remove_changes(&id, &[devices]).unwrap();
        let kept = store.load_document(&id).unwrap();
        assert_eq!(kept.len(), 3);
        assert!(kept.iter().all(|c| c.author() == signed[0].author()));
        assert_eq!(store.change_counts().unwrap().unwrap()[&id], 3);
        assert_eq!(store.change_count(), 3);
        assert!(store.raw_change(&id, &attested.hash()).unwrap().is_some());
    }

    #[test]
    fn a_damaged_document_received_whole_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (id, mut saved, signed, _) = received_whole();
        let store = Store::create(dir.path()).unwrap();
        let at = saved.len() / 2;
        saved[at] ^= 0xff;
        store.write_whole(&id, &saved, &signed, 4).unwrap();
        let err = store.load_document(&id).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(
            err.to_string().contains("documents-received-whole"),
            "{err}"
        );
        assert!(store.load_changes().is_err());
    }

    #[test]
    fn a_store_of_the_first_layout_is_upgraded_and_another_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let secret = SigningSecret::generate().unwrap();
        {
            let store = Store::create(dir.path()).unwrap();
            store.put_changes(&two_changes(&secret)).unwrap();
            let meta = store.database().open_tree("meta").unwrap();
            meta.insert(FORMAT_KEY, STORE_FORMAT_1).unwrap();
            store.flush().unwrap();
        }
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.change_count(), 2);
            let meta = store.database().open_tree("meta").unwrap();
            assert_eq!(
                meta.get(FORMAT_KEY).unwrap().unwrap().as_ref(),
                STORE_FORMAT
            );
            meta.insert(FORMAT_KEY, b"passerelle-store-9".as_slice())
                .unwrap();
            store.flush().unwrap();
        }
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::Format { .. })
        ));
    }
}
