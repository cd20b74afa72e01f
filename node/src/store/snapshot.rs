//! Snapshots: each document's heads, change count and validated record (read at start),
//! apart from its Automerge document (read when first needed).

use automerge::ChangeHash;

use super::{Snapshot, Store, StoreError, readable_key};
use crate::envelope::DocumentId;

/// Magic bytes at the front of a snapshot's header and record (`PSS1`, without the change
/// count, is read as unreadable: the document is rebuilt from its signed changes once;
/// `PSS2`, which held the document in the same value, is still read).
pub(super) const SNAPSHOT_MAGIC: &[u8; 4] = b"PSS3";

pub(super) const SNAPSHOT_MAGIC_WITH_DOCUMENT: &[u8; 4] = b"PSS2";

/// Magic bytes at the front of a snapshot's document part (heads, each author's latest
/// change, the document); a part without it (heads, the document) is still read.
pub(super) const SNAPSHOT_DOCUMENT_MAGIC: &[u8; 4] = b"PSD1";

pub(super) fn encode_heads(out: &mut Vec<u8>, heads: &[ChangeHash]) {
    out.extend_from_slice(&(heads.len() as u16).to_be_bytes());
    for head in heads {
        out.extend_from_slice(&head.0);
    }
}

pub(super) fn decode_heads(bytes: &[u8]) -> Option<(Vec<ChangeHash>, &[u8])> {
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
pub(super) const MAX_SNAPSHOT_RECORD: u64 = 256 * 1024 * 1024;

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

impl Store {
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
        self.last_snapshot
            .store(crate::unix_now(), std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// When a snapshot was last written since the store opened (Unix seconds).
    pub fn last_snapshot_at(&self) -> Option<i64> {
        Some(
            self.last_snapshot
                .load(std::sync::atomic::Ordering::Relaxed),
        )
        .filter(|&t| t > 0)
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
}
