//! Repairing a damaged store (`passerelle repair`, with the node stopped).
//!
//! Rules:
//! - Nothing is ever reset or deleted: the damaged store is kept beside the new one
//!   (`store.damaged-<unix time>`), for a person to look at or to send to whoever helps.
//! - What can still be read and verified is kept: the store is copied, record by record,
//!   into a new store, leaving out every record of a damaged document (and the records
//!   that cannot be read at all). A document left out is fetched again from peers at the
//!   next start: every change is signed, so any member that holds it can send it whole.
//! - If the database does not open at all, the new store starts from what the node needs
//!   to find its network again (`store/seed.json`, or the network and peers given), and
//!   everything, the node's own document included, comes back from its peers.
//! - The node's own document, when it is left out, is awaited from peers: the node starts
//!   without it and refuses edits until it is back (changes it made that no peer or backup
//!   holds are lost with the damage; the report says so).
//! - The new store is checked ([`Store::check`]) before it replaces the old one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::envelope::DocumentId;
use crate::identity::Identity;
use crate::keys::KeyFiles;
use crate::store::{Damage, Seed, Store, StoreError};

/// What to repair with.
#[derive(Debug, Clone, Default)]
pub struct RepairOptions {
    /// Only say what would be done.
    pub dry_run: bool,
    /// The network, when the database cannot be opened and no seed file says it.
    pub network: Option<String>,
    /// Peer addresses to start from, in that case.
    pub peers: Vec<String>,
}

/// What a repair found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairReport {
    /// The store was sound: nothing was done.
    pub sound: bool,
    /// The damaged database could be opened (its readable records were kept).
    pub opened: bool,
    /// What the check found damaged.
    pub damaged: Vec<Damage>,
    /// Documents kept as they were.
    pub documents_kept: usize,
    /// Documents left out, to be fetched again from peers.
    pub documents_to_fetch: Vec<String>,
    /// The node's own document is among them (or was lost): it is awaited from peers.
    pub own_document_awaited: bool,
    /// Records of other kinds copied (meta, case files, audit, outbox, requests).
    pub records_kept: usize,
    /// Kinds of records that could not all be read (some of them are lost).
    pub records_lost: Vec<String>,
    /// Where the damaged store was kept (empty on a dry run or a sound store).
    pub damaged_store: String,
    /// The network the new store belongs to.
    pub network: Option<String>,
}

/// Errors of a repair.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    /// The store could not be opened for another reason than damage (in use, …).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The node's keys could not be read.
    #[error("reading this node's keys: {0}")]
    Identity(#[from] crate::identity::IdentityError),
    /// Files could not be moved or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// The database does not open and nothing says which network the node was in.
    #[error(
        "the database cannot be opened and no seed file says which network this node belongs to: run `passerelle repair --network <network id> --peer <address of a member>`"
    )]
    NoNetwork,
    /// The repaired store did not pass its check.
    #[error(
        "the repaired store did not pass its check: {0:?}; the damaged store was left in place"
    )]
    NotRepaired(Vec<Damage>),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> RepairError {
    let context = context.into();
    move |source| RepairError::Io { context, source }
}

/// The trees keyed by document (the changes tree by `document 0x00 hash`, the others by the
/// document id alone).
const DOCUMENT_TREES: [&str; 5] = [
    "changes",
    "change-counts",
    "snapshots",
    "snapshot-documents",
    "documents-received-whole",
];

/// Repairs the store of the (stopped) node of `config`.
pub fn repair(config: &Config, options: &RepairOptions) -> Result<RepairReport, RepairError> {
    let store_dir = config.store_dir();
    let own = match Identity::load_with(&config.data_dir, config.passphrase.as_ref()) {
        Ok(identity) => identity.org_id(),
        Err(e) => return Err(e.into()),
    };
    let mut report = RepairReport::default();
    let damaged = match Store::open(&store_dir) {
        Ok(store) => {
            report.opened = true;
            let check = store.check();
            if check.damaged.is_empty() {
                report.sound = true;
                report.documents_kept = check.documents;
                report.network = store.network()?.map(|n| n.to_string());
                return Ok(report);
            }
            report.damaged = check.damaged.clone();
            Some((store, check.damaged_documents()))
        }
        Err(StoreError::Damaged { file, detail }) => {
            report.damaged = vec![Damage {
                document: None,
                record: file,
                reason: detail,
            }];
            None
        }
        Err(other) => return Err(other.into()),
    };
    let repairing = sibling(&store_dir, "repairing");
    if !options.dry_run && repairing.exists() {
        // Left by a repair that was interrupted: it never replaced anything.
        std::fs::remove_dir_all(&repairing)
            .map_err(io(format!("removing {}", repairing.display())))?;
    }
    let own_document = DocumentId::organisation(&own).to_string();
    match damaged {
        Some((old, damaged_documents)) => {
            let target = if options.dry_run {
                None
            } else {
                Some(Store::create(&repairing)?)
            };
            copy_readable(&old, target.as_ref(), &damaged_documents, &mut report)?;
            report.network = old.network().ok().flatten().map(|n| n.to_string());
            let own_kept = !report.documents_to_fetch.contains(&own_document)
                && old
                    .change_counts()
                    .ok()
                    .flatten()
                    .is_none_or(|counts| counts.keys().any(|d| d.to_string() == own_document));
            let device = old.device_of().ok().flatten().is_some();
            report.own_document_awaited = !device && !own_kept;
            if let Some(target) = &target {
                if report.own_document_awaited {
                    target.set_own_document_awaited(true)?;
                }
                target.flush()?;
            }
        }
        None => {
            let seed = Seed::read(&store_dir).unwrap_or_default();
            let network = options.network.clone().or(seed.network.clone());
            let Some(network) = network else {
                return Err(RepairError::NoNetwork);
            };
            let id: crate::membership::NetworkId =
                network.parse().map_err(|_| RepairError::NoNetwork)?;
            let mut peers = seed.bootstrap_peers.clone();
            peers.extend(options.peers.iter().cloned());
            report.network = Some(network);
            report.own_document_awaited = seed.device_of.is_none();
            report.records_lost = vec![
                "every record (the database does not open): documents come back from peers; case files and the outbox are lost (the audit log, in its own files, stays)".into(),
            ];
            if !options.dry_run {
                let target = Store::create(&repairing)?;
                target.set_network(&id, &peers)?;
                if let Some(org) = seed.device_of.as_ref().and_then(|o| o.parse().ok()) {
                    target.set_device_of(&org)?;
                }
                if let Some(key) = seed
                    .recovery_key_pending
                    .as_ref()
                    .and_then(|k| k.parse().ok())
                {
                    target.set_recovery_pending(Some(&key))?;
                }
                if report.own_document_awaited {
                    target.set_own_document_awaited(true)?;
                }
                target.flush()?;
            }
        }
    }
    if options.dry_run {
        return Ok(report);
    }
    // The new store must pass the check before it takes the old one's place.
    {
        let check = Store::open(&repairing)?.check();
        if !check.damaged.is_empty() {
            return Err(RepairError::NotRepaired(check.damaged));
        }
    }
    let aside = sibling(&store_dir, &format!("damaged-{}", crate::unix_now()));
    std::fs::rename(&store_dir, &aside).map_err(io(format!(
        "moving the damaged store to {}",
        aside.display()
    )))?;
    std::fs::rename(&repairing, &store_dir).map_err(io(format!(
        "moving the repaired store to {}",
        store_dir.display()
    )))?;
    if let Some(parent) = store_dir.parent() {
        crate::durable::sync_dir(parent).map_err(io("syncing the data folder"))?;
    }
    report.damaged_store = aside.display().to_string();
    Ok(report)
}

/// `store` → `store.<suffix>` beside it.
fn sibling(store_dir: &Path, suffix: &str) -> PathBuf {
    let name = store_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "store".into());
    store_dir.with_file_name(format!("{name}.{suffix}"))
}

/// Copies every readable record of `old` into `target` (counts only, when `None`), but
/// the records of `damaged` documents. A document whose records cannot all be read is
/// left out too.
fn copy_readable(
    old: &Store,
    target: Option<&Store>,
    damaged: &BTreeSet<String>,
    report: &mut RepairReport,
) -> Result<(), RepairError> {
    let db = old.database();
    let new_db = target.map(Store::database);
    // The documents, each copied whole or not at all.
    let mut documents: BTreeSet<String> = BTreeSet::new();
    for name in &DOCUMENT_TREES[1..] {
        let tree = db.open_tree(name).map_err(StoreError::from)?;
        for (key, _) in tree.iter().flatten() {
            documents.insert(String::from_utf8_lossy(&key).into_owned());
        }
    }
    let changes = db.open_tree("changes").map_err(StoreError::from)?;
    let mut last = Vec::new();
    for entry in changes.iter() {
        match entry {
            Ok((key, _)) => {
                if let Some(split) = key.iter().position(|b| *b == 0) {
                    documents.insert(String::from_utf8_lossy(&key[..split]).into_owned());
                }
                last = key.to_vec();
            }
            Err(_) => {
                // Past an unreadable page, documents are found by the other trees only.
                tracing::warn!(after = %String::from_utf8_lossy(&last), "the changes tree is unreadable past a point");
                break;
            }
        }
    }
    let mut to_fetch: BTreeSet<String> = damaged.clone();
    for document in &documents {
        if damaged.contains(document) {
            continue;
        }
        match read_document(&db, document) {
            Ok(records) => {
                if let Some(new_db) = &new_db {
                    for (tree, key, value) in records {
                        new_db
                            .open_tree(tree)
                            .and_then(|t| t.insert(key, value))
                            .map_err(StoreError::from)?;
                    }
                }
                report.documents_kept += 1;
            }
            Err(e) => {
                report.damaged.push(Damage {
                    document: Some(document.clone()),
                    record: document.clone(),
                    reason: e.to_string(),
                });
                to_fetch.insert(document.clone());
            }
        }
    }
    report.documents_to_fetch = to_fetch.into_iter().collect();
    // Every other tree, record by record.
    for name in db.tree_names() {
        let readable = String::from_utf8_lossy(&name).into_owned();
        if DOCUMENT_TREES.contains(&readable.as_str()) || readable == "__sled__default" {
            continue;
        }
        let tree = db.open_tree(&name).map_err(StoreError::from)?;
        let new_tree = match &new_db {
            Some(new_db) => Some(new_db.open_tree(&name).map_err(StoreError::from)?),
            None => None,
        };
        for entry in tree.iter() {
            match entry {
                Ok((key, value)) => {
                    // The new store has its own format marker already.
                    if let Some(new_tree) = &new_tree
                        && !(readable == "meta" && key.as_ref() == b"format")
                    {
                        new_tree.insert(key, value).map_err(StoreError::from)?;
                    }
                    report.records_kept += 1;
                }
                Err(e) => {
                    report.records_lost.push(format!("{readable}: {e}"));
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Every record of one document in the document trees, read in full.
fn read_document(
    db: &sled::Db,
    document: &str,
) -> Result<Vec<(&'static str, sled::IVec, sled::IVec)>, sled::Error> {
    let mut out = Vec::new();
    let mut prefix = document.as_bytes().to_vec();
    prefix.push(0);
    for entry in db.open_tree("changes")?.scan_prefix(&prefix) {
        let (key, value) = entry?;
        out.push(("changes", key, value));
    }
    for tree in &DOCUMENT_TREES[1..] {
        if let Some(value) = db.open_tree(tree)?.get(document.as_bytes())? {
            out.push((tree, sled::IVec::from(document.as_bytes()), value));
        }
    }
    Ok(out)
}
