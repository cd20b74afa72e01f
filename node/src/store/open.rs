//! Opening the sled database (refusing a foreign one, recovering from a damaged page table),
//! settling it after a run, and making writes durable ([`Syncer`]).

use std::path::Path;

use super::{
    COUNTS_COMPLETE_KEY, FORMAT_KEY, STORE_FORMAT, STORE_FORMAT_1, Store, StoreError, Synced,
};

/// Most bytes of store pages sled keeps cached in memory. sled's default (1 GiB) lets a
/// node that read its national-scale store at start keep most of it resident; the node
/// keeps what it queries in its own structures, so a small page cache costs little.
pub const STORE_CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// How long to wait for a store's lock, held by a node that is still shutting down (sled
/// releases it when its last handle goes), before reporting that another node uses it.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Where sled's damaged page-table snapshots are set aside.
pub const DAMAGED_SNAPSHOTS_DIR: &str = "damaged-page-table";

pub(super) fn sled_config(path: &Path) -> sled::Config {
    // Every write is flushed explicitly before it is acknowledged, so sled's periodic
    // background flusher is not needed (and would keep the database, and its lock, alive
    // for a moment after the store is dropped).
    sled::Config::new()
        .path(path)
        .flush_every_ms(None)
        .cache_capacity(STORE_CACHE_BYTES)
}

/// The log sequence number a sled page-table snapshot file covers (`snap.<16 hex digits>`).
pub(super) fn snapshot_lsn(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    let hex = name.strip_prefix("snap.")?;
    (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok())?
}

pub(super) fn page_snapshots(path: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
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
pub(super) fn open_without_page_snapshot(path: &Path) -> Result<Option<sled::Db>, StoreError> {
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
pub(super) fn sync_before_open(path: &Path) -> std::io::Result<()> {
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

pub(super) fn open_db(path: &Path) -> Result<sled::Db, StoreError> {
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
    pub(super) fn new(db: sled::Db, path: &Path) -> Result<Self, StoreError> {
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

    pub(super) fn open_inner(path: &Path, create: bool) -> Result<Self, StoreError> {
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
            addresses: db.open_tree("peer-addresses")?,
            arrivals: db.open_tree("move-arrivals")?,
            meta,
            db,
            last_snapshot: std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0)),
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
}
