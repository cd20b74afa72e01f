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

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use automerge::ChangeHash;

use crate::envelope::{DocumentId, SignedChange};
use crate::identity::OrgId;

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

/// What `store/seed.json` holds: enough to rebuild a store whose database cannot be opened
/// for the right network (`passerelle repair`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Seed {
    /// The network id.
    #[serde(default)]
    pub network: Option<String>,
    /// Peer addresses recorded from invitations.
    #[serde(default)]
    pub bootstrap_peers: Vec<String>,
    /// On a device node: its organisation.
    #[serde(default)]
    pub device_of: Option<String>,
}

impl Seed {
    /// Reads the seed kept in store folder `path`, if there is one.
    pub fn read(path: &Path) -> Option<Self> {
        std::fs::read(path.join(SEED_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
    }
}

/// One damaged part of the store, as [`Store::check`] found it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Damage {
    /// The document whose records are damaged, when the damage is in a document's
    /// records (`org/…`, `net/…`); such a document can be fetched again from peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    /// The record or tree at fault, readable.
    pub record: String,
    /// What is wrong.
    pub reason: String,
}

/// What a full check of the store found ([`Store::check`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoreCheck {
    /// Documents checked.
    pub documents: usize,
    /// Changes decoded and verified.
    pub changes: usize,
    /// Other records read (snapshots, case files, audit, outbox, requests, meta).
    pub records: usize,
    /// Everything found damaged; empty when the store is sound.
    pub damaged: Vec<Damage>,
    /// The check was stopped before the end (the node stopped).
    #[serde(default)]
    pub interrupted: bool,
}

impl StoreCheck {
    /// The documents with damaged records.
    pub fn damaged_documents(&self) -> std::collections::BTreeSet<String> {
        self.damaged
            .iter()
            .filter_map(|d| d.document.clone())
            .collect()
    }
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

/// Magic bytes at the front of a snapshot's header and record (`PSS1`, without the change
/// count, is read as unreadable: the document is rebuilt from its signed changes once;
/// `PSS2`, which held the document in the same value, is still read).
const SNAPSHOT_MAGIC: &[u8; 4] = b"PSS3";
const SNAPSHOT_MAGIC_WITH_DOCUMENT: &[u8; 4] = b"PSS2";
/// Magic bytes at the front of a snapshot's document part (heads, each author's latest
/// change, the document); a part without it (heads, the document) is still read.
const SNAPSHOT_DOCUMENT_MAGIC: &[u8; 4] = b"PSD1";

pub use crate::document::Snapshot;

fn encode_heads(out: &mut Vec<u8>, heads: &[ChangeHash]) {
    out.extend_from_slice(&(heads.len() as u16).to_be_bytes());
    for head in heads {
        out.extend_from_slice(&head.0);
    }
}

fn decode_heads(bytes: &[u8]) -> Option<(Vec<ChangeHash>, &[u8])> {
    let (count, mut rest) = bytes.split_first_chunk::<2>()?;
    let count = u16::from_be_bytes(*count) as usize;
    let mut heads = Vec::with_capacity(count);
    for _ in 0..count {
        let (head, tail) = rest.split_first_chunk::<32>()?;
        heads.push(ChangeHash(*head));
        rest = tail;
    }
    Some((heads, rest))
}

/// Largest record a snapshot may inflate to (a record is validated and bounded long before;
/// this only stops a damaged value from claiming gigabytes).
const MAX_SNAPSHOT_RECORD: u64 = 256 * 1024 * 1024;

/// How the store writes a snapshot's two parts (the type is the core's).
pub trait SnapshotEncoding: Sized {
    /// The header and record part.
    fn encode_record(&self) -> Vec<u8>;
    /// The document part.
    fn encode_document(&self) -> Vec<u8>;
    /// The header and record part read back (the document left empty).
    fn decode_record(bytes: &[u8]) -> Option<Self>;
    /// The document part read back.
    fn decode_document(bytes: &[u8]) -> Option<SnapshotDocument>;
}

impl SnapshotEncoding for Snapshot {
    /// The header and record: `PSS3`, change count (u64 BE), head count (u16 BE), heads
    /// (32 each), record JSON compressed with deflate (the rest).
    fn encode_record(&self) -> Vec<u8> {
        use std::io::Write;
        let mut out = Vec::with_capacity(14 + 32 * self.heads.len() + self.record.len() / 2);
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.extend_from_slice(&self.changes.to_be_bytes());
        encode_heads(&mut out, &self.heads);
        let mut deflate = flate2::write::DeflateEncoder::new(out, flate2::Compression::fast());
        // Writing into a vector cannot fail.
        let _ = deflate.write_all(&self.record);
        deflate.finish().unwrap_or_default()
    }

    /// The document part: `PSD1`, head count (u16 BE), heads (32 each), count (u16 BE)
    /// and hashes (32 each) of each author's latest change, Automerge's compressed
    /// document (the rest).
    fn encode_document(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            8 + 32 * (self.heads.len() + self.latest.len()) + self.document.len(),
        );
        out.extend_from_slice(SNAPSHOT_DOCUMENT_MAGIC);
        encode_heads(&mut out, &self.heads);
        encode_heads(&mut out, &self.latest);
        out.extend_from_slice(&self.document);
        out
    }

    /// Decodes [`Snapshot::encode_record`]'s layout (the document left empty), or the
    /// older `PSS2` layout that held the document too; `None` if the bytes have neither.
    fn decode_record(bytes: &[u8]) -> Option<Self> {
        use std::io::Read;
        if let Some(rest) = bytes.strip_prefix(SNAPSHOT_MAGIC) {
            let (changes, rest) = rest.split_first_chunk::<8>()?;
            let (heads, compressed) = decode_heads(rest)?;
            let mut record = Vec::with_capacity(compressed.len() * 3);
            flate2::read::DeflateDecoder::new(compressed)
                .take(MAX_SNAPSHOT_RECORD)
                .read_to_end(&mut record)
                .ok()?;
            return Some(Self {
                changes: u64::from_be_bytes(*changes),
                heads,
                document: Vec::new(),
                latest: Vec::new(),
                record,
            });
        }
        // PSS2: change count, heads, document length (u32 BE), document, record JSON.
        let rest = bytes.strip_prefix(SNAPSHOT_MAGIC_WITH_DOCUMENT)?;
        let (changes, rest) = rest.split_first_chunk::<8>()?;
        let (heads, rest) = decode_heads(rest)?;
        let (len, rest) = rest.split_first_chunk::<4>()?;
        let len = u32::from_be_bytes(*len) as usize;
        if rest.len() < len {
            return None;
        }
        let (document, record) = rest.split_at(len);
        Some(Self {
            changes: u64::from_be_bytes(*changes),
            heads,
            document: document.to_vec(),
            latest: Vec::new(),
            record: record.to_vec(),
        })
    }

    /// Decodes [`Snapshot::encode_document`]'s layout (or the older one without magic and
    /// latest changes): the heads, each author's latest change (empty if not kept) and the
    /// document.
    fn decode_document(bytes: &[u8]) -> Option<SnapshotDocument> {
        if let Some(rest) = bytes.strip_prefix(SNAPSHOT_DOCUMENT_MAGIC) {
            let (heads, rest) = decode_heads(rest)?;
            let (latest, document) = decode_heads(rest)?;
            return Some(SnapshotDocument {
                heads,
                latest,
                document: document.to_vec(),
            });
        }
        let (heads, document) = decode_heads(bytes)?;
        Some(SnapshotDocument {
            heads,
            latest: Vec::new(),
            document: document.to_vec(),
        })
    }
}

/// A snapshot's document part, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotDocument {
    /// The document's heads.
    pub heads: Vec<ChangeHash>,
    /// Each author's latest change (empty if not kept).
    pub latest: Vec<ChangeHash>,
    /// Automerge's compressed document.
    pub document: Vec<u8>,
}

/// Makes what sled wrote durable. sled 0.34 flushes its log with `sync_file_range`, which
/// neither persists the file's size nor asks the disk to empty its cache, and writes large
/// values to `blobs/` without syncing them; a power cut can take all of that. After every
/// sled flush the store syncs the log file (`fdatasync`), every blob written since the last
/// sync, the blob folder and the store folder (the page table's renames) — and only then
/// does the node acknowledge anything.
#[derive(Debug)]
pub struct Syncer {
    db: sled::Db,
    path: std::path::PathBuf,
    log: std::fs::File,
    blobs_synced: std::sync::Mutex<std::collections::HashSet<std::ffi::OsString>>,
}

impl Syncer {
    fn new(db: sled::Db, path: &Path) -> Result<Self, StoreError> {
        let io = |source: std::io::Error| StoreError::Open {
            path: path.display().to_string(),
            source: sled::Error::Io(source),
        };
        let log = std::fs::File::open(path.join("db")).map_err(io)?;
        // The blobs already there were synced by the flush that wrote them (or come from
        // before the store was last closed, when sled itself had them on disk).
        let blobs_synced = std::fs::read_dir(path.join("blobs"))
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.file_name()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            db,
            path: path.to_owned(),
            log,
            blobs_synced: std::sync::Mutex::new(blobs_synced),
        })
    }

    /// Flushes sled's buffers and makes everything written so far durable.
    pub fn flush(&self) -> Result<Synced, StoreError> {
        self.db.flush()?;
        let io = |what: &str, source: std::io::Error| {
            StoreError::from(sled::Error::Io(std::io::Error::new(
                source.kind(),
                format!("syncing {what}: {source}"),
            )))
        };
        self.log.sync_data().map_err(|e| io("the store's log", e))?;
        let blobs = self.path.join("blobs");
        if let Ok(entries) = std::fs::read_dir(&blobs) {
            let mut synced = self.blobs_synced.lock().unwrap_or_else(|e| e.into_inner());
            let mut new = false;
            for entry in entries.flatten() {
                let name = entry.file_name();
                if synced.contains(&name) {
                    continue;
                }
                match std::fs::File::open(entry.path()) {
                    Ok(file) => file.sync_all().map_err(|e| io("a blob", e))?,
                    // Removed by sled's collection meanwhile.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io("a blob", e)),
                }
                synced.insert(name);
                new = true;
            }
            if new {
                crate::durable::sync_dir(&blobs).map_err(|e| io("the blob folder", e))?;
            }
            // Forget blobs sled removed, so that the set stays the folder's size.
            if synced.len() > 4096 {
                let present: std::collections::HashSet<std::ffi::OsString> =
                    std::fs::read_dir(&blobs)
                        .map(|e| e.filter_map(|e| e.ok().map(|e| e.file_name())).collect())
                        .unwrap_or_default();
                synced.retain(|name| present.contains(name));
            }
        }
        crate::durable::sync_dir(&self.path).map_err(|e| io("the store folder", e))?;
        Ok(Synced(()))
    }
}

/// Proof that what was written before was made durable: only a flush that reached
/// `fdatasync` on the store's files makes one. What is acknowledged as durable holds one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Synced(());

/// The sled store of one node.
#[derive(Debug, Clone)]
pub struct Store {
    /// The store's folder.
    path: std::path::PathBuf,
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

/// Most bytes of store pages sled keeps cached in memory. sled's default (1 GiB) lets a
/// node that read its national-scale store at start keep most of it resident; the node
/// keeps what it queries in its own structures, so a small page cache costs little.
pub const STORE_CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// How long to wait for a store's lock, held by a node that is still shutting down (sled
/// releases it when its last handle goes), before reporting that another node uses it.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Where sled's damaged page-table snapshots are set aside.
pub const DAMAGED_SNAPSHOTS_DIR: &str = "damaged-page-table";

fn sled_config(path: &Path) -> sled::Config {
    // Every write is flushed explicitly before it is acknowledged, so sled's periodic
    // background flusher is not needed (and would keep the database, and its lock, alive
    // for a moment after the store is dropped).
    sled::Config::new()
        .path(path)
        .flush_every_ms(None)
        .cache_capacity(STORE_CACHE_BYTES)
}

/// The log sequence number a sled page-table snapshot file covers (`snap.<16 hex digits>`).
fn snapshot_lsn(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    let hex = name.strip_prefix("snap.")?;
    (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok())?
}

fn page_snapshots(path: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    Ok(std::fs::read_dir(path)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| snapshot_lsn(p).is_some())
        .collect())
}

/// Opens the database with its page-table snapshots (`snap.*`) set aside, so that sled
/// rebuilds the table from its log, when that loses nothing. `None`, with everything left
/// as it was, otherwise.
///
/// Rebuilding reads the log from its start; sled takes the first unreadable message for
/// the end of the log (as after a crash) and overwrites the rest of that segment. So it is
/// first tried on a copy of the store, and taken only if the copy reached at least as far
/// in the log as the damaged snapshot had recorded.
fn open_without_page_snapshot(path: &Path) -> Result<Option<sled::Db>, StoreError> {
    let io = |context: &str, source: std::io::Error| StoreError::Open {
        path: path.display().to_string(),
        source: sled::Error::Io(std::io::Error::new(
            source.kind(),
            format!("{context}: {source}"),
        )),
    };
    let snapshots = page_snapshots(path).map_err(|e| io("reading the store folder", e))?;
    let Some(recorded) = snapshots.iter().filter_map(|p| snapshot_lsn(p)).max() else {
        return Ok(None);
    };
    // The trial, on a copy without the snapshots.
    let trial = path.with_extension("page-table-trial");
    let _ = std::fs::remove_dir_all(&trial);
    let copied = (|| -> std::io::Result<()> {
        std::fs::create_dir_all(&trial)?;
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            let from = entry.path();
            if snapshot_lsn(&from).is_some() || !entry.file_type()?.is_file() {
                continue;
            }
            std::fs::copy(&from, trial.join(entry.file_name()))?;
        }
        Ok(())
    })();
    if let Err(e) = copied {
        let _ = std::fs::remove_dir_all(&trial);
        return Err(io("copying the store to rebuild its page table", e));
    }
    let reached = match sled_config(&trial).open() {
        Ok(db) => {
            let _ = db.flush();
            drop(db);
            page_snapshots(&trial)
                .ok()
                .and_then(|s| s.iter().filter_map(|p| snapshot_lsn(p)).max())
        }
        Err(_) => None,
    };
    let _ = std::fs::remove_dir_all(&trial);
    if reached.is_none_or(|reached| reached < recorded) {
        tracing::error!(
            recorded,
            reached = ?reached,
            "the store's page table is damaged and its log does not reach as far: not rebuilt"
        );
        return Ok(None);
    }
    // The copy lost nothing: the same, for real.
    let aside = path.join(DAMAGED_SNAPSHOTS_DIR);
    std::fs::create_dir_all(&aside).map_err(|e| io("making a folder for the page table", e))?;
    let mut moved = Vec::new();
    for snapshot in &snapshots {
        let to = aside.join(snapshot.file_name().unwrap_or_default());
        std::fs::rename(snapshot, &to).map_err(|e| io("setting the page table aside", e))?;
        moved.push((snapshot.clone(), to));
    }
    match sled_config(path).open() {
        Ok(db) => {
            tracing::warn!(
                aside = %aside.display(),
                "the store's page table was damaged: set aside and rebuilt from the log"
            );
            Ok(Some(db))
        }
        Err(_) => {
            for (from, to) in moved {
                let _ = std::fs::rename(&to, &from);
            }
            let _ = std::fs::remove_dir(&aside);
            Ok(None)
        }
    }
}

/// Syncs what a previous run of sled left in the page cache (after a crash of the process
/// the kernel still holds its last writes) before sled opens the files: sled writes a
/// page-table snapshot at open, as far as the log it reads, and that snapshot must not
/// name log positions that a later power cut could take away.
fn sync_before_open(path: &Path) -> std::io::Result<()> {
    match std::fs::File::open(path.join("db")) {
        Ok(log) => log.sync_data()?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    let blobs = path.join("blobs");
    if let Ok(entries) = std::fs::read_dir(&blobs) {
        for entry in entries.flatten() {
            std::fs::File::open(entry.path())?.sync_all()?;
        }
        crate::durable::sync_dir(&blobs)?;
    }
    crate::durable::sync_dir(path)
}

fn open_db(path: &Path) -> Result<sled::Db, StoreError> {
    sync_before_open(path).map_err(|source| StoreError::Open {
        path: path.display().to_string(),
        source: sled::Error::Io(source),
    })?;
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        let opened = sled_config(path).open();
        match opened {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e))
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.to_string().contains("could not acquire lock") =>
            {
                if std::time::Instant::now() >= deadline {
                    return Err(StoreError::Locked {
                        path: path.display().to_string(),
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(sled::Error::Corruption { at, .. }) => {
                // sled's page-table snapshot (`snap.*`) is derived from its log: set a
                // damaged one aside and let sled rebuild it by reading the whole log. If
                // that fails too, the log itself is damaged: put everything back.
                if let Some(db) = open_without_page_snapshot(path)? {
                    return Ok(db);
                }
                return Err(StoreError::Damaged {
                    file: path.join("db").display().to_string(),
                    detail: match at {
                        Some(at) => format!("sled read corrupted data at {at:?}"),
                        None => "sled read corrupted data in its log or page table".into(),
                    },
                });
            }
            Err(source) => {
                return Err(StoreError::Open {
                    path: path.display().to_string(),
                    source,
                });
            }
        }
    }
}

impl Store {
    /// Creates a new, empty store in folder `path` (used by `passerelle init`).
    pub fn create(path: &Path) -> Result<Self, StoreError> {
        Self::open_inner(path, true)
    }

    /// Opens an existing store in folder `path`. A folder that holds no Passerelle store
    /// (missing, damaged, or another program's) is an error, never a fresh start.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_inner(path, false)
    }

    fn open_inner(path: &Path, create: bool) -> Result<Self, StoreError> {
        let existed = path.join("db").exists();
        if !create && !existed {
            return Err(StoreError::Format {
                found: format!("no store at {}", path.display()),
                expected: String::from_utf8_lossy(STORE_FORMAT).into_owned(),
            });
        }
        let db = open_db(path)?;
        let meta = db.open_tree("meta")?;
        match meta.get(FORMAT_KEY)? {
            Some(found) if found.as_ref() == STORE_FORMAT_1 => {
                meta.insert(FORMAT_KEY, STORE_FORMAT)?;
                db.flush()?;
                tracing::info!(
                    "store upgraded to {}",
                    String::from_utf8_lossy(STORE_FORMAT)
                );
            }
            Some(found) if found.as_ref() != STORE_FORMAT => {
                return Err(StoreError::Format {
                    found: String::from_utf8_lossy(&found).into_owned(),
                    expected: String::from_utf8_lossy(STORE_FORMAT).into_owned(),
                });
            }
            Some(_) => {}
            None if create && !existed => {
                meta.insert(FORMAT_KEY, STORE_FORMAT)?;
                meta.insert(COUNTS_COMPLETE_KEY, &[1u8])?;
                db.flush()?;
            }
            None => {
                return Err(StoreError::Format {
                    found: "(no format marker: the store is damaged or is not a Passerelle store)"
                        .into(),
                    expected: String::from_utf8_lossy(STORE_FORMAT).into_owned(),
                });
            }
        }
        let syncer = std::sync::Arc::new(Syncer::new(db.clone(), path)?);
        if create && !existed {
            // A new store: its folder's entry, sled's configuration and log are durable.
            syncer.flush()?;
            if let Ok(conf) = std::fs::File::open(path.join("conf")) {
                let _ = conf.sync_all();
            }
            if let Some(parent) = path.parent() {
                crate::durable::sync_dir(parent).map_err(|source| StoreError::Open {
                    path: path.display().to_string(),
                    source: sled::Error::Io(source),
                })?;
            }
        }
        Ok(Self {
            path: path.to_owned(),
            syncer,
            changes: db.open_tree("changes")?,
            counts: db.open_tree("change-counts")?,
            snapshots: db.open_tree("snapshots")?,
            snapshot_documents: db.open_tree("snapshot-documents")?,
            received_whole: db.open_tree("documents-received-whole")?,
            requests: db.open_tree("admission-requests")?,
            meta,
            db,
        })
    }

    /// Opens the closed store's database once more and closes it, so that the next start
    /// opens it quickly. sled records where its log stands only when it opens a database:
    /// it replays everything written since it was last opened (a whole session's writes:
    /// about 0.3 s after a national ingest) and notes the result. Done at shutdown, when
    /// the node no longer holds the database, that replay is paid by the stop instead of
    /// by the next start. Nothing is written but sled's own note.
    pub fn settle(path: &Path) -> Result<(), StoreError> {
        // Never creates a database where there is none.
        if path.join("db").exists() {
            drop(open_db(path)?);
        }
        Ok(())
    }

    /// What makes the store's writes durable, for the parts of the node that keep trees of
    /// their own in it (the case-file vault).
    pub fn syncer(&self) -> std::sync::Arc<Syncer> {
        self.syncer.clone()
    }

    /// The sled database, for the parts of the node that keep trees of their own (the
    /// case-file vault).
    pub fn database(&self) -> sled::Db {
        self.db.clone()
    }

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

    /// Reads every record of the store and checks it: every change decodes, is stored
    /// under its own hash and document, and verifies (signed, or attested by a signed
    /// change of its author); every document received whole loads; every snapshot decodes,
    /// names heads that are stored changes, and its Automerge part loads with those heads;
    /// every other record can be read. Nothing is written. Damage is collected, not
    /// returned as an error, so one damaged record does not hide the others. Works one
    /// document at a time (the changes tree is sorted by document), so memory stays that
    /// of the largest document.
    pub fn check(&self) -> StoreCheck {
        self.check_until(&|| false)
    }

    /// [`Store::check`], stopping early (`interrupted`) as soon as `stop` says so.
    pub fn check_until(&self, stop: &dyn Fn() -> bool) -> StoreCheck {
        let mut report = StoreCheck::default();
        let damage = |report: &mut StoreCheck,
                      document: Option<&DocumentId>,
                      record: String,
                      reason: String| {
            report.damaged.push(Damage {
                document: document.map(|d| d.to_string()),
                record,
                reason,
            });
        };
        // Documents named anywhere, so that one whose changes cannot be read is still
        // found (and one whose only record is damaged too).
        let mut documents: std::collections::BTreeSet<DocumentId> = Default::default();
        for (name, tree) in [
            ("change-counts", &self.counts),
            ("snapshots", &self.snapshots),
            ("snapshot-documents", &self.snapshot_documents),
            ("documents-received-whole", &self.received_whole),
        ] {
            for entry in tree.iter() {
                match entry {
                    Ok((key, _)) => {
                        report.records += 1;
                        match String::from_utf8(key.to_vec())
                            .ok()
                            .and_then(|k| DocumentId::try_from(k).ok())
                        {
                            Some(id) => {
                                documents.insert(id);
                            }
                            None => damage(
                                &mut report,
                                None,
                                format!("{name}/{}", readable_key(&key)),
                                "its key is not a document id".into(),
                            ),
                        }
                    }
                    Err(e) => {
                        damage(&mut report, None, format!("{name} (tree)"), e.to_string());
                        break;
                    }
                }
            }
        }
        // The changes, one document at a time.
        let mut current: Option<(DocumentId, Vec<SignedChange>)> = None;
        let mut seen: std::collections::BTreeSet<DocumentId> = Default::default();
        let mut unreadable_after: Option<Vec<u8>> = None;
        let mut last_key: Vec<u8> = Vec::new();
        for entry in self.changes.iter() {
            let (key, value) = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    unreadable_after = Some(last_key.clone());
                    damage(
                        &mut report,
                        None,
                        format!("changes (tree, after {})", readable_key(&last_key)),
                        e.to_string(),
                    );
                    break;
                }
            };
            last_key = key.to_vec();
            if stop() {
                report.interrupted = true;
                return report;
            }
            let named = key
                .iter()
                .position(|b| *b == 0)
                .and_then(|split| String::from_utf8(key[..split].to_vec()).ok())
                .and_then(|k| DocumentId::try_from(k).ok());
            let Some(id) = named else {
                damage(
                    &mut report,
                    None,
                    format!("changes/{}", readable_key(&key)),
                    "its key names no document".into(),
                );
                continue;
            };
            documents.insert(id.clone());
            seen.insert(id.clone());
            if current.as_ref().is_none_or(|(c, _)| *c != id) {
                if let Some((done, changes)) = current.take() {
                    self.check_document(&done, changes, &mut report);
                }
                current = Some((id.clone(), Vec::new()));
            }
            match SignedChange::decode(&value) {
                Ok(change)
                    if key.as_ref() == change_key(change.document(), &change.hash()).as_slice() =>
                {
                    if let Some((_, changes)) = current.as_mut() {
                        changes.push(change);
                    }
                }
                Ok(change) => damage(
                    &mut report,
                    Some(&id),
                    readable_key(&key),
                    format!(
                        "it holds change {} of {}, not the one its key names",
                        change.hash(),
                        change.document()
                    ),
                ),
                Err(e) => damage(&mut report, Some(&id), readable_key(&key), e.to_string()),
            }
        }
        if let Some((done, changes)) = current.take() {
            self.check_document(&done, changes, &mut report);
        }
        // Documents whose changes were never reached (the tree was unreadable past a
        // point, or their records are missing): checked through their own prefix.
        for id in &documents {
            if seen.contains(id) {
                continue;
            }
            if stop() {
                report.interrupted = true;
                return report;
            }
            let beyond = unreadable_after
                .as_ref()
                .is_some_and(|after| id.as_str().as_bytes() >= after.as_slice());
            let records = if beyond {
                match self.records_of(id) {
                    Ok(records) => records,
                    Err(e) => {
                        damage(&mut report, Some(id), id.to_string(), e.to_string());
                        continue;
                    }
                }
            } else {
                Vec::new()
            };
            if records.is_empty() {
                let counted = self.count_of(id).unwrap_or(0);
                let whole = self
                    .received_whole
                    .contains_key(id.as_str().as_bytes())
                    .unwrap_or(false);
                if counted > 0 && !whole {
                    damage(
                        &mut report,
                        Some(id),
                        format!("changes/{id}"),
                        format!("the store counts {counted} changes of it but holds none"),
                    );
                    continue;
                }
            }
            self.check_document(id, records, &mut report);
        }
        report.documents = documents.len();
        // Every other tree: each record must at least be readable.
        let checked: [&[u8]; 6] = [
            b"changes",
            b"change-counts",
            b"snapshots",
            b"snapshot-documents",
            b"documents-received-whole",
            b"__sled__default",
        ];
        for name in self.db.tree_names() {
            if checked.contains(&name.as_ref()) {
                continue;
            }
            let readable = String::from_utf8_lossy(&name).into_owned();
            let tree = match self.db.open_tree(&name) {
                Ok(tree) => tree,
                Err(e) => {
                    damage(
                        &mut report,
                        None,
                        format!("{readable} (tree)"),
                        e.to_string(),
                    );
                    continue;
                }
            };
            for entry in tree.iter() {
                match entry {
                    Ok(_) => report.records += 1,
                    Err(e) => {
                        damage(
                            &mut report,
                            None,
                            format!("{readable} (tree)"),
                            e.to_string(),
                        );
                        break;
                    }
                }
            }
        }
        report
    }

    /// Checks one document's changes (read from the changes tree), what it received
    /// whole, and its snapshot.
    fn check_document(
        &self,
        id: &DocumentId,
        mut changes: Vec<SignedChange>,
        report: &mut StoreCheck,
    ) {
        let mut fail = |record: String, reason: String| {
            report.damaged.push(Damage {
                document: Some(id.to_string()),
                record,
                reason,
            });
        };
        let key = id.as_str().as_bytes();
        match self.received_whole.get(key) {
            Ok(Some(saved)) => {
                if let Err(e) = Self::add_received_whole(id, &saved, &mut changes) {
                    fail(format!("documents-received-whole/{id}"), e.to_string());
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => {
                fail(format!("documents-received-whole/{id}"), e.to_string());
                return;
            }
        }
        if let Err((index, error)) = SignedChange::verify_all(&changes) {
            fail(
                readable_key(&change_key(id, &changes[index].hash())),
                error.to_string(),
            );
            return;
        }
        report.changes += changes.len();
        let held: std::collections::HashSet<ChangeHash> =
            changes.iter().map(SignedChange::hash).collect();
        match self.snapshots.get(key) {
            Ok(Some(value)) => match Snapshot::decode_record(&value) {
                Some(snapshot) if snapshot.heads.iter().all(|h| held.contains(h)) => {
                    self.check_snapshot_document(id, &snapshot.heads, &mut fail);
                }
                Some(_) => fail(
                    format!("snapshots/{id}"),
                    "it names heads that are not stored changes".into(),
                ),
                None => fail(format!("snapshots/{id}"), "it does not decode".into()),
            },
            Ok(None) => {}
            Err(e) => fail(format!("snapshots/{id}"), e.to_string()),
        }
    }

    fn check_snapshot_document(
        &self,
        id: &DocumentId,
        heads: &[ChangeHash],
        fail: &mut impl FnMut(String, String),
    ) {
        let value = match self.snapshot_documents.get(id.as_str().as_bytes()) {
            Ok(Some(value)) => value,
            Ok(None) => return,
            Err(e) => return fail(format!("snapshot-documents/{id}"), e.to_string()),
        };
        let Some(part) = Snapshot::decode_document(&value) else {
            return fail(
                format!("snapshot-documents/{id}"),
                "it does not decode".into(),
            );
        };
        if part.heads != heads {
            // An older part beside a newer record: the node rebuilds it; not damage.
            return;
        }
        if let Err(e) = crate::automerge_bounds::check_document(
            &part.document,
            crate::automerge_bounds::MAX_INFLATED_DOCUMENT,
        ) {
            return fail(format!("snapshot-documents/{id}"), e.to_string());
        }
        match crate::automerge_guard::load(&part.document) {
            Ok(doc) => {
                let mut loaded = doc.get_heads();
                loaded.sort();
                let mut expected = heads.to_vec();
                expected.sort();
                if loaded != expected {
                    fail(
                        format!("snapshot-documents/{id}"),
                        "its document has other heads than its record".into(),
                    );
                }
            }
            Err(e) => fail(
                format!("snapshot-documents/{id}"),
                format!("it does not load: {e}"),
            ),
        }
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

    /// The network this node belongs to, if it has created or joined one.
    pub fn network(&self) -> Result<Option<crate::membership::NetworkId>, StoreError> {
        match self.meta.get(NETWORK_KEY)? {
            None => Ok(None),
            Some(bytes) => String::from_utf8_lossy(&bytes).parse().map(Some).map_err(
                |e: crate::ids::InvalidId| StoreError::Corrupt {
                    key: "meta/network".into(),
                    reason: e.to_string(),
                },
            ),
        }
    }

    /// Records the network this node belongs to, with peers to start from. A node belongs
    /// to one network: setting another is refused.
    pub fn set_network(
        &self,
        network: &crate::membership::NetworkId,
        bootstrap: &[String],
    ) -> Result<(), StoreError> {
        if let Some(existing) = self.network()?
            && existing != *network
        {
            return Err(StoreError::Corrupt {
                key: "meta/network".into(),
                reason: format!(
                    "this node already belongs to network {existing}; a node belongs to one network (use another data folder)"
                ),
            });
        }
        self.meta
            .insert(NETWORK_KEY, network.to_string().as_bytes())?;
        let mut peers = self.bootstrap_peers()?;
        for peer in bootstrap {
            if !peers.contains(peer) {
                peers.push(peer.clone());
            }
        }
        self.meta.insert(
            BOOTSTRAP_KEY,
            serde_json::to_vec(&peers).unwrap_or_default(),
        )?;
        self.syncer.flush()?;
        self.write_seed()
    }

    /// True when `passerelle repair` set this node's own document aside: the node starts
    /// without it and takes it back from its peers.
    pub fn own_document_awaited(&self) -> Result<bool, StoreError> {
        Ok(self.meta.contains_key(OWN_AWAITED_KEY)?)
    }

    /// Records that the node's own document is awaited from peers (or, with `false`, that
    /// it came back).
    pub fn set_own_document_awaited(&self, awaited: bool) -> Result<(), StoreError> {
        if awaited {
            self.meta.insert(OWN_AWAITED_KEY, &[1u8])?;
        } else {
            self.meta.remove(OWN_AWAITED_KEY)?;
        }
        self.syncer.flush()?;
        Ok(())
    }

    /// Writes [`Seed`] beside the database (atomically: a temporary file renamed), so that a
    /// store whose database no longer opens can still be rebuilt for the right network.
    fn write_seed(&self) -> Result<(), StoreError> {
        let seed = Seed {
            network: self.network()?.map(|n| n.to_string()),
            bootstrap_peers: self.bootstrap_peers()?,
            device_of: self.device_of()?.map(|o| o.to_string()),
        };
        let bytes = serde_json::to_vec_pretty(&seed).unwrap_or_default();
        let io = |source: std::io::Error| StoreError::Open {
            path: self.path.display().to_string(),
            source: sled::Error::Io(source),
        };
        crate::durable::write_file_atomically(&self.path.join(SEED_FILE), &bytes, 0o600).map_err(io)
    }

    /// On a device node: the organisation it writes for (None on an organisation's node).
    pub fn device_of(&self) -> Result<Option<OrgId>, StoreError> {
        match self.meta.get(ORGANISATION_KEY)? {
            None => Ok(None),
            Some(bytes) => String::from_utf8_lossy(&bytes).parse().map(Some).map_err(
                |e: crate::identity::OrgIdError| StoreError::Corrupt {
                    key: "meta/device-of".into(),
                    reason: e.to_string(),
                },
            ),
        }
    }

    /// Records that this node is a device of `org`.
    pub fn set_device_of(&self, org: &OrgId) -> Result<(), StoreError> {
        self.meta
            .insert(ORGANISATION_KEY, org.to_string().as_bytes())?;
        self.syncer.flush()?;
        self.write_seed()
    }

    /// Peer addresses recorded from invitations.
    pub fn bootstrap_peers(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .meta
            .get(BOOTSTRAP_KEY)?
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default())
    }

    /// This node's own admission request (JSON), if it made one.
    pub fn own_request(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.meta.get(OWN_REQUEST_KEY)?.map(|v| v.to_vec()))
    }

    /// Records this node's own admission request.
    pub fn set_own_request(&self, request: &[u8]) -> Result<(), StoreError> {
        self.meta.insert(OWN_REQUEST_KEY, request)?;
        self.syncer.flush()?;
        Ok(())
    }

    /// Keeps an admission request received from a candidate (one per organisation, the
    /// latest). Returns false when the inbox is full.
    pub fn put_admission_request(&self, org: &OrgId, request: &[u8]) -> Result<bool, StoreError> {
        let key = org.as_bytes();
        if !self.requests.contains_key(key)? && self.requests.len() >= MAX_ADMISSION_REQUESTS {
            return Ok(false);
        }
        self.requests.insert(key, request)?;
        self.syncer.flush()?;
        Ok(true)
    }

    /// Admission requests received, raw (JSON of signed requests).
    pub fn admission_requests(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut out = Vec::new();
        for entry in self.requests.iter() {
            out.push(entry?.1.to_vec());
        }
        Ok(out)
    }

    /// The request a candidate sent, if this node holds one.
    pub fn admission_request(&self, org: &OrgId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.requests.get(org.as_bytes())?.map(|v| v.to_vec()))
    }

    /// Drops a candidate's request (once proposed).
    pub fn remove_admission_request(&self, org: &OrgId) -> Result<(), StoreError> {
        self.requests.remove(org.as_bytes())?;
        self.syncer.flush()?;
        Ok(())
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

    /// Replaces the snapshot of `document` and flushes. The document part is written first:
    /// should the node stop between the two writes, the record's heads do not match the
    /// document's, and the document is rebuilt from its signed changes when first needed.
    pub fn put_snapshot(
        &self,
        document: &DocumentId,
        snapshot: &Snapshot,
    ) -> Result<(), StoreError> {
        self.write_snapshot(document, snapshot)?;
        self.syncer.flush()?;
        Ok(())
    }

    /// [`Store::put_snapshot`] without the flush (the caller flushes).
    pub fn write_snapshot(
        &self,
        document: &DocumentId,
        snapshot: &Snapshot,
    ) -> Result<(), StoreError> {
        let key = document.as_str().as_bytes();
        self.snapshot_documents
            .insert(key, snapshot.encode_document())?;
        self.snapshots.insert(key, snapshot.encode_record())?;
        Ok(())
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

    /// The snapshot of one document, record and Automerge document, if one is stored and
    /// both parts decode with the same heads (otherwise `None`, with a warning: the
    /// document is rebuilt from its changes).
    pub fn snapshot(&self, document: &DocumentId) -> Result<Option<Snapshot>, StoreError> {
        let Some(mut snapshot) = self.snapshot_record(document)? else {
            return Ok(None);
        };
        if snapshot.document.is_empty() {
            match self.snapshot_document_part(document, &snapshot.heads)? {
                Some(part) => {
                    snapshot.document = part.document;
                    snapshot.latest = part.latest;
                }
                None => return Ok(None),
            }
        }
        Ok(Some(snapshot))
    }

    /// The header and record of one document's snapshot (the Automerge document is not
    /// read, except from an older store that kept both in one value).
    pub fn snapshot_record(&self, document: &DocumentId) -> Result<Option<Snapshot>, StoreError> {
        let Some(value) = self.snapshots.get(document.as_str().as_bytes())? else {
            return Ok(None);
        };
        let snapshot = Snapshot::decode_record(&value);
        if snapshot.is_none() {
            tracing::warn!(document = %document, "unreadable snapshot skipped; the document is rebuilt from its signed changes");
        }
        Ok(snapshot)
    }

    /// The Automerge document of `document`'s snapshot, if it is stored, decodes and has
    /// exactly `heads` (those of the snapshot record it goes with).
    pub fn snapshot_document(
        &self,
        document: &DocumentId,
        heads: &[ChangeHash],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .snapshot_document_part(document, heads)?
            .map(|part| part.document))
    }

    /// The snapshot's document part if it has exactly `heads` and each author's latest
    /// change is kept (what a bundle needs); `None` otherwise, quietly (a document
    /// changed since its snapshot is the usual case, not a fault).
    pub fn snapshot_for_bundle(
        &self,
        document: &DocumentId,
        heads: &[ChangeHash],
    ) -> Result<Option<SnapshotDocument>, StoreError> {
        Ok(self
            .snapshot_documents
            .get(document.as_str().as_bytes())?
            .and_then(|value| Snapshot::decode_document(&value))
            .filter(|part| part.heads == heads && !part.latest.is_empty()))
    }

    /// [`Store::snapshot_document`] with each author's latest change, if kept.
    pub fn snapshot_document_part(
        &self,
        document: &DocumentId,
        heads: &[ChangeHash],
    ) -> Result<Option<SnapshotDocument>, StoreError> {
        let key = document.as_str().as_bytes();
        if let Some(value) = self.snapshot_documents.get(key)? {
            return Ok(match Snapshot::decode_document(&value) {
                Some(part) if part.heads == heads => Some(part),
                _ => {
                    tracing::warn!(document = %document, "snapshot document missing or not the record's; the document is rebuilt from its signed changes");
                    None
                }
            });
        }
        // A store written before the two parts were split keeps the document in the record.
        Ok(self
            .snapshots
            .get(key)?
            .and_then(|value| Snapshot::decode_record(&value))
            .filter(|s| s.heads == heads && !s.document.is_empty())
            .map(|s| SnapshotDocument {
                heads: s.heads,
                latest: Vec::new(),
                document: s.document,
            }))
    }

    /// Every readable snapshot, whole. One that does not decode is skipped with a warning:
    /// the document is then rebuilt from its signed changes.
    pub fn load_snapshots(&self) -> Result<Vec<(DocumentId, Snapshot)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.snapshots.iter() {
            let (key, _) = entry?;
            let id = String::from_utf8(key.to_vec())
                .ok()
                .and_then(|k| DocumentId::try_from(k).ok());
            match id {
                Some(id) => {
                    if let Some(snapshot) = self.snapshot(&id)? {
                        out.push((id, snapshot));
                    }
                }
                None => tracing::warn!(
                    key = %readable_key(&key),
                    "unreadable snapshot skipped; the document is rebuilt from its signed changes"
                ),
            }
        }
        Ok(out)
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
    use super::*;
    use crate::document::{Edit, OrganisationDocument};
    use crate::identity::SigningSecret;
    use crate::model::{LegalStatus, Profile};

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
