//! The audit log's files: the chain of [`crate::audit`] appended one JSON line per entry to
//! `audit/NNNNNN.jsonl` in the data folder (0600, in a 0700 folder), each line on disk
//! (`fdatasync`) before the action it records is answered. A seal (the node's signature
//! over the chain so far) follows every [`SEAL_EVERY`] entries, ends every file, and is
//! added at start when the log ends unsealed. A file over the rotation size is closed with
//! a seal and the chain goes on in the next (`000002.jsonl`, its first entry's `prev` the
//! last hash of the one before). The head (the last entry's place and hash) is kept in the
//! store too, so a log cut short is seen.
//!
//! Nothing ever removes a line: erasing a case file adds an entry, it never takes one away.

use std::fs;
use std::io::{BufRead, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::audit::{Checker, Entry, Event, Head, Verdict};
use crate::identity::{KeyId, SigningSecret};

/// Errors of the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// sled failed (the head kept in the store).
    #[error("store: {0}")]
    Store(#[from] sled::Error),
    /// A file of the log could not be written or read.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A record does not parse.
    #[error("the {0} is damaged")]
    Damaged(String),
}

/// The audit log's folder inside the data folder.
pub const AUDIT_DIR: &str = "audit";
/// Entries between two seals.
pub const SEAL_EVERY: u64 = 32;
/// A file grows to about this size before the chain goes on in the next.
pub const ROTATE_BYTES: u64 = 8 * 1024 * 1024;

const HEAD_KEY: &[u8] = b"head";

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> AuditError {
    let context = context.into();
    move |source| AuditError::Io { context, source }
}

/// The open end of the chain.
struct Tail {
    head: Head,
    file: fs::File,
    index: u32,
    length: u64,
    since_seal: u64,
}

/// This node's audit log (cheap to clone).
#[derive(Clone)]
pub struct AuditLog {
    dir: PathBuf,
    heads: sled::Tree,
    secret: Arc<SigningSecret>,
    rotate_bytes: u64,
    tail: Arc<Mutex<Tail>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn file_name(index: u32) -> String {
    format!("{index:06}.jsonl")
}

/// The log's files, oldest first, with their numbers.
fn files(dir: &Path) -> Result<Vec<(u32, PathBuf)>, AuditError> {
    let mut found = Vec::new();
    for item in fs::read_dir(dir).map_err(io(format!("reading {}", dir.display())))? {
        let path = item
            .map_err(io(format!("reading {}", dir.display())))?
            .path();
        let index = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".jsonl"))
            .and_then(|n| n.parse::<u32>().ok());
        if let Some(index) = index {
            found.push((index, path));
        }
    }
    found.sort();
    Ok(found)
}

fn open_for_append(path: &Path) -> Result<fs::File, AuditError> {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(io(format!("opening {}", path.display())))
}

/// The lines of one file of the log.
fn file_lines(path: &Path) -> Result<Vec<String>, AuditError> {
    let file = fs::File::open(path).map_err(io(format!("reading {}", path.display())))?;
    std::io::BufReader::new(file)
        .lines()
        .map(|line| line.map_err(io(format!("reading {}", path.display()))))
        .collect()
}

/// Calls `each` on every line of the log, in order, with where it is (`000001.jsonl:12`),
/// up to `end` (the tail's file and length when it was taken): lines appended meanwhile
/// are left for the next read, and the log is read without holding the writer up.
fn each_line(
    dir: &Path,
    end: &End,
    mut each: impl FnMut(&str, &str) -> Result<(), AuditError>,
) -> Result<(), AuditError> {
    use std::io::Read;
    for (index, path) in files(dir)? {
        if index > end.index {
            break;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file = fs::File::open(&path).map_err(io(format!("reading {}", path.display())))?;
        let limit = if index == end.index {
            end.length
        } else {
            u64::MAX
        };
        let reader = std::io::BufReader::with_capacity(1 << 16, file.take(limit));
        for (number, line) in reader.lines().enumerate() {
            let line = line.map_err(io(format!("reading {}", path.display())))?;
            if !line.trim().is_empty() {
                each(&format!("{name}:{}", number + 1), &line)?;
            }
        }
    }
    Ok(())
}

/// Where the log ended when a read began: its last file, that file's length, and the
/// head the node wrote last.
struct End {
    index: u32,
    length: u64,
    head: Head,
}

/// Reads the audit log beside its writer (cheap to clone; holds no store open): what
/// `referral audit`, `audit export` and `audit verify` read, off the documents thread.
#[derive(Clone)]
pub struct AuditReader {
    dir: PathBuf,
    tail: Arc<Mutex<Tail>>,
}

impl std::fmt::Debug for AuditReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditReader")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl AuditReader {
    /// Where the log ends now (the writer is held only for this).
    fn end(&self) -> End {
        let tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        End {
            index: tail.index,
            length: tail.length,
            head: tail.head.clone(),
        }
    }

    /// The events of the log, oldest first (seals left out), of one referral or all.
    pub fn events(&self, referral: Option<&str>) -> Result<Vec<Event>, AuditError> {
        let mut events = Vec::new();
        each_line(&self.dir, &self.end(), |at, line| {
            // Only the lines that name the referral are read as JSON.
            if referral.is_some_and(|r| !line.contains(r)) {
                return Ok(());
            }
            let entry = parse(at, line)?;
            if entry.event.action != crate::audit::SEAL
                && referral.is_none_or(|r| r == entry.event.referral)
            {
                events.push(entry.event);
            }
            Ok(())
        })?;
        Ok(events)
    }

    /// The chain's entries made from `from` to `to` (Unix seconds, inclusive), seals
    /// included: what an inspector is given.
    pub fn entries(&self, from: Option<i64>, to: Option<i64>) -> Result<Vec<Entry>, AuditError> {
        let mut entries = Vec::new();
        each_line(&self.dir, &self.end(), |at, line| {
            let entry = parse(at, line)?;
            if from.is_none_or(|f| entry.event.at >= f) && to.is_none_or(|t| entry.event.at <= t) {
                entries.push(entry);
            }
            Ok(())
        })?;
        Ok(entries)
    }

    /// Checks the whole chain: every line, every seal (by `sealers`: this node's keys), and
    /// that it ends where the node wrote last.
    pub fn verify(&self, sealers: &[KeyId]) -> Result<Verdict, AuditError> {
        let end = self.end();
        let mut checker = Checker::new(sealers);
        each_line(&self.dir, &end, |at, line| {
            checker.line(at, line);
            Ok(())
        })?;
        Ok(checker.finish(Some(&end.head)))
    }
}

fn parse(at: &str, line: &str) -> Result<Entry, AuditError> {
    serde_json::from_str(line).map_err(|_| AuditError::Damaged(format!("audit log, {at}")))
}

impl AuditLog {
    /// Opens (or starts) the log in `data_dir`, sealed by `secret`; entries of the older
    /// log kept in the store (`legacy`) are moved into the chain first, in order.
    pub fn open(
        data_dir: &Path,
        db: &sled::Db,
        secret: SigningSecret,
        legacy: &sled::Tree,
    ) -> Result<Self, AuditError> {
        Self::open_rotating(data_dir, db, secret, legacy, ROTATE_BYTES)
    }

    /// [`Self::open`], a file growing to `rotate_bytes` before the next.
    pub fn open_rotating(
        data_dir: &Path,
        db: &sled::Db,
        secret: SigningSecret,
        legacy: &sled::Tree,
        rotate_bytes: u64,
    ) -> Result<Self, AuditError> {
        let dir = data_dir.join(AUDIT_DIR);
        fs::create_dir_all(&dir).map_err(io("creating the audit folder"))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .map_err(io("restricting the audit folder"))?;
        let heads = db.open_tree("audit-head")?;
        // The tail: the last file and its last entry (a line half-written by a crash is
        // left for `verify` to report: nothing is removed).
        let existing = files(&dir)?;
        let (index, path) = existing
            .last()
            .cloned()
            .unwrap_or_else(|| (1, dir.join(file_name(1))));
        // The head is in the newest file that holds an entry (each closed file ends with a
        // seal): only that file is read, whatever the size of the whole log.
        let mut head = Head::default();
        let mut since_seal = 0;
        for (_, path) in existing.iter().rev() {
            let mut found = false;
            for line in file_lines(path)? {
                if let Ok(entry) = serde_json::from_str::<Entry>(&line) {
                    since_seal = if entry.event.action == crate::audit::SEAL {
                        0
                    } else {
                        since_seal + 1
                    };
                    head = Head::after(&entry);
                    found = true;
                }
            }
            if found {
                break;
            }
        }
        // A log cut short while the node was stopped: the chain goes on from where the node
        // wrote last, so the gap stays visible to `verify` instead of a new chain hiding it.
        let kept: Option<Head> = heads
            .get(HEAD_KEY)?
            .map(|bytes| serde_json::from_slice(&bytes))
            .transpose()
            .map_err(|_| AuditError::Damaged("audit head".into()))?;
        if let Some(kept) = kept
            && kept.seq > head.seq
        {
            tracing::error!(
                written = kept.seq,
                found = head.seq,
                "the audit log ends before the last entry this node wrote: entries were removed; `passerelle audit verify` shows where"
            );
            head = kept;
        }
        let file = open_for_append(&path)?;
        let length = file
            .metadata()
            .map_err(io(format!("reading {}", path.display())))?
            .len();
        crate::durable::sync_dir(&dir).map_err(io("syncing the audit folder"))?;
        let log = Self {
            dir,
            heads,
            secret: Arc::new(secret),
            rotate_bytes,
            tail: Arc::new(Mutex::new(Tail {
                head,
                file,
                index,
                length,
                since_seal,
            })),
        };
        log.migrate(legacy)?;
        let unsealed = log.lock().since_seal;
        if unsealed > 0 {
            log.seal()?;
        }
        Ok(log)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tail> {
        // A panic while appending leaves at worst a half line, which verify reports.
        self.tail.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves the entries of the log the store kept before the chain (oldest first), one by
    /// one: each is removed from the store once it is on disk in the chain.
    fn migrate(&self, legacy: &sled::Tree) -> Result<(), AuditError> {
        for item in legacy.iter() {
            let (key, value) = item?;
            let event: Event = serde_json::from_slice(&value)
                .map_err(|_| AuditError::Damaged("audit log (before the chain)".into()))?;
            self.append(event)?;
            legacy.remove(key)?;
        }
        legacy.flush()?;
        Ok(())
    }

    /// Appends `event`; on disk when it returns. A seal follows every [`SEAL_EVERY`].
    pub fn append(&self, event: Event) -> Result<(), AuditError> {
        let mut tail = self.lock();
        let entry = tail.head.next(event);
        self.write(&mut tail, &entry)?;
        tail.since_seal += 1;
        if tail.since_seal >= SEAL_EVERY {
            self.seal_locked(&mut tail)?;
        }
        if tail.length >= self.rotate_bytes {
            self.rotate(&mut tail)?;
        }
        Ok(())
    }

    /// Seals the chain so far with the node's key.
    pub fn seal(&self) -> Result<(), AuditError> {
        let mut tail = self.lock();
        self.seal_locked(&mut tail)
    }

    fn seal_locked(&self, tail: &mut Tail) -> Result<(), AuditError> {
        let seal = tail.head.seal(crate::unix_now(), "node", &self.secret);
        self.write(tail, &seal)?;
        tail.since_seal = 0;
        Ok(())
    }

    fn write(&self, tail: &mut Tail, entry: &Entry) -> Result<(), AuditError> {
        let mut line =
            serde_json::to_vec(entry).map_err(|_| AuditError::Damaged("audit entry".into()))?;
        line.push(b'\n');
        let name = file_name(tail.index);
        tail.file
            .write_all(&line)
            .and_then(|()| tail.file.sync_data())
            .map_err(io(format!("appending to the audit log {name}")))?;
        tail.length += line.len() as u64;
        tail.head = Head::after(entry);
        let head =
            serde_json::to_vec(&tail.head).map_err(|_| AuditError::Damaged("audit head".into()))?;
        // The file is on disk first: the head kept in the store never runs ahead of it.
        self.heads.insert(HEAD_KEY, head)?;
        Ok(())
    }

    /// Closes the file with a seal; the chain goes on in the next.
    fn rotate(&self, tail: &mut Tail) -> Result<(), AuditError> {
        if tail.since_seal > 0 {
            self.seal_locked(tail)?;
        }
        let index = tail.index + 1;
        let path = self.dir.join(file_name(index));
        tail.file = open_for_append(&path)?;
        crate::durable::sync_dir(&self.dir).map_err(io("syncing the audit folder"))?;
        tail.index = index;
        tail.length = 0;
        Ok(())
    }

    /// Its reader (see [`AuditReader`]).
    pub fn reader(&self) -> AuditReader {
        AuditReader {
            dir: self.dir.clone(),
            tail: self.tail.clone(),
        }
    }

    /// [`AuditReader::events`].
    pub fn events(&self, referral: Option<&str>) -> Result<Vec<Event>, AuditError> {
        self.reader().events(referral)
    }

    /// [`AuditReader::entries`].
    pub fn entries(&self, from: Option<i64>, to: Option<i64>) -> Result<Vec<Entry>, AuditError> {
        self.reader().entries(from, to)
    }

    /// [`AuditReader::verify`].
    pub fn verify(&self, sealers: &[KeyId]) -> Result<Verdict, AuditError> {
        self.reader().verify(sealers)
    }

    /// The folder of the log's files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(i: u32) -> Event {
        Event {
            at: 1_700_000_000 + i64::from(i),
            referral: format!("ref-{i:024x}"),
            action: "read".into(),
            by: "web:alice".into(),
            detail: String::new(),
        }
    }

    #[test]
    fn the_chain_goes_on_across_files_and_restarts_and_its_tampering_is_found() {
        let folder = tempfile::tempdir().unwrap();
        let db = sled::open(folder.path().join("db")).unwrap();
        let legacy = db.open_tree("case-audit").unwrap();
        legacy
            .insert(0u64.to_be_bytes(), serde_json::to_vec(&event(0)).unwrap())
            .unwrap();
        let secret = SigningSecret::generate().unwrap();
        let keys = [secret.key_id()];
        let copy = || SigningSecret::from_bytes(&secret.to_secret_bytes());
        let log = AuditLog::open_rotating(folder.path(), &db, copy(), &legacy, 4096).unwrap();
        assert!(legacy.is_empty(), "the older log moved into the chain");
        for i in 1..100 {
            log.append(event(i)).unwrap();
        }
        let before = files(log.dir()).unwrap();
        assert!(before.len() > 2, "{before:?}");
        drop(log);
        // Restarted: the chain goes on, the tail is sealed.
        let log = AuditLog::open_rotating(folder.path(), &db, copy(), &legacy, 4096).unwrap();
        log.append(event(100)).unwrap();
        let verdict = log.verify(&keys).unwrap();
        assert!(verdict.holds(), "{verdict:?}");
        assert_eq!(log.events(None).unwrap().len(), 101);
        assert_eq!(
            log.events(Some(&event(7).referral)).unwrap(),
            vec![event(7)]
        );
        let mode = fs::metadata(&before[0].1).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        // A whole file in the middle deleted.
        let (_, middle) = &before[1];
        let saved = fs::read(middle).unwrap();
        fs::remove_file(middle).unwrap();
        let verdict = log.verify(&keys).unwrap();
        assert!(!verdict.holds());
        assert!(verdict.breaks[0].what.contains("missing"), "{verdict:?}");
        fs::write(middle, &saved).unwrap();
        assert!(log.verify(&keys).unwrap().holds());

        // The last line cut off.
        let (_, last) = files(log.dir()).unwrap().pop().unwrap();
        let text = fs::read_to_string(&last).unwrap();
        let cut = text
            .trim_end()
            .rsplit_once('\n')
            .map_or("", |(kept, _)| kept);
        fs::write(&last, format!("{cut}\n")).unwrap();
        let verdict = log.verify(&keys).unwrap();
        assert_eq!(verdict.breaks.len(), 1, "{verdict:?}");
        assert_eq!(verdict.breaks[0].at, "end");
    }

    #[test]
    fn the_log_is_read_and_verified_while_entries_are_appended() {
        let folder = tempfile::tempdir().unwrap();
        let db = sled::open(folder.path().join("db")).unwrap();
        let legacy = db.open_tree("case-audit").unwrap();
        let secret = SigningSecret::generate().unwrap();
        let keys = [secret.key_id()];
        let log = AuditLog::open_rotating(folder.path(), &db, secret, &legacy, 4096).unwrap();
        let reader = log.reader();
        let writer = std::thread::spawn(move || {
            for i in 0..300 {
                log.append(event(i)).unwrap();
            }
        });
        // Each read ends where the log ended when it began: never on a half-written line,
        // never before the head it compares with.
        let mut reads = 0;
        while !writer.is_finished() {
            let verdict = reader.verify(&keys).unwrap();
            assert!(verdict.holds(), "{verdict:?}");
            reader.events(None).unwrap();
            reads += 1;
        }
        writer.join().unwrap();
        assert!(reads > 0);
        assert!(reader.verify(&keys).unwrap().holds());
        assert_eq!(reader.events(None).unwrap().len(), 300);
        assert!(files(&folder.path().join(AUDIT_DIR)).unwrap().len() > 2);
    }
}
