//! Backups in Automerge's standard format, with signed heads: what
//! `passerelle export automerge DIR` writes and `passerelle import automerge DIR` reads.
//!
//! For each document the node holds, three files, named after the document
//! (`org-<organisation id>` or `net-<network id>`):
//! - `<name>.automerge`: the whole document in Automerge's standard binary format
//!   (`Automerge::save`), which any Automerge implementation opens;
//! - `<name>.changes`: every signed change of the document (Passerelle's envelopes: the
//!   Automerge change, its author and their ed25519 signature), each prefixed by its length
//!   as a big-endian u32. This is what makes the backup verifiable change by change;
//! - `<name>.heads.json`: the [`SignedHeads`]: the document's heads and change count,
//!   signed by the node that exported it.
//!
//! Reading a backup ([`DocumentBackup::verify`]) checks everything it can without a
//! network: the heads' signature, every change's signature and author binding, that the
//! changes build exactly the signed heads, and that the `.automerge` file is the same
//! document. Importing then goes through the node's usual path for received changes
//! (membership, write rules, referral checks), so a backup can never write what a peer
//! could not.

use std::path::{Path, PathBuf};

use automerge::{Automerge, ChangeHash};
use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};

use crate::envelope::{DocumentId, SignedChange};
use crate::identity::{KeyId, SigningSecret};

/// Domain tag at the front of the signed heads' message.
pub const HEADS_DOMAIN: &[u8] = b"passerelle/signed-heads";
/// Largest file a backup may hold, in bytes (a bound against a hostile folder).
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// What can be wrong with a backup.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not what it should be.
    #[error("{path}: {why}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The backup's content does not verify.
    #[error("{document}: {why}")]
    Invalid {
        /// The document.
        document: DocumentId,
        /// Why.
        why: String,
    },
}

/// A document's heads, signed by the node that exported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedHeads {
    /// The document.
    pub document: DocumentId,
    /// Its heads (hex change hashes, sorted).
    pub heads: Vec<String>,
    /// How many changes it holds.
    pub changes: usize,
    /// The key that signed these heads (the exporting node's).
    pub exported_by: KeyId,
    /// When, in seconds since the Unix epoch.
    pub exported_at: i64,
    /// The ed25519 signature (hex) over [`SignedHeads::signing_bytes`].
    pub signature: String,
}

impl SignedHeads {
    /// The signed bytes: domain tag, 0, document id, 0, each head (32 bytes), change count
    /// (u64 BE), exporter key (32), export time (i64 BE).
    pub fn signing_bytes(
        document: &DocumentId,
        heads: &[ChangeHash],
        changes: usize,
        exported_by: &KeyId,
        exported_at: i64,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(HEADS_DOMAIN);
        out.push(0);
        out.extend_from_slice(document.as_str().as_bytes());
        out.push(0);
        for head in heads {
            out.extend_from_slice(&head.0);
        }
        out.extend_from_slice(&(changes as u64).to_be_bytes());
        out.extend_from_slice(exported_by.as_bytes());
        out.extend_from_slice(&exported_at.to_be_bytes());
        out
    }

    fn sign(
        document: DocumentId,
        mut heads: Vec<ChangeHash>,
        changes: usize,
        secret: &SigningSecret,
        exported_at: i64,
    ) -> Self {
        heads.sort();
        let exported_by = secret.key_id();
        let message = Self::signing_bytes(&document, &heads, changes, &exported_by, exported_at);
        Self {
            heads: heads.iter().map(ToString::to_string).collect(),
            signature: data_encoding::HEXLOWER.encode(&secret.sign(&message).to_bytes()),
            document,
            changes,
            exported_by,
            exported_at,
        }
    }

    /// The heads as change hashes.
    pub fn hashes(&self) -> Result<Vec<ChangeHash>, HeadsError> {
        self.heads
            .iter()
            .map(|h| h.parse().map_err(|_| HeadsError::NotAHash(h.clone())))
            .collect()
    }

    /// Checks the signature.
    pub fn verify(&self) -> Result<(), HeadsError> {
        let heads = self.hashes()?;
        let signature = data_encoding::HEXLOWER
            .decode(self.signature.as_bytes())
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .map(|b| Signature::from_bytes(&b))
            .ok_or(HeadsError::MalformedSignature)?;
        let key = self
            .exported_by
            .verifying_key()
            .map_err(|_| HeadsError::NotAKey)?;
        let message = Self::signing_bytes(
            &self.document,
            &heads,
            self.changes,
            &self.exported_by,
            self.exported_at,
        );
        key.verify_strict(&message, &signature)
            .map_err(|_| HeadsError::BadSignature)
    }
}

/// Why signed heads do not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadsError {
    /// A head is not a change hash.
    #[error("{0:?} is not a change hash")]
    NotAHash(String),
    /// The signature is not 64 bytes in hex.
    #[error("the signature is not 64 hex-encoded bytes")]
    MalformedSignature,
    /// `exported_by` is not a public key.
    #[error("exported_by is not a valid key")]
    NotAKey,
    /// The signature does not verify.
    #[error("the heads' signature does not verify")]
    BadSignature,
}

/// One document's backup: its signed heads, the document in Automerge's format, and its
/// signed changes (encoded envelopes, in causal order).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DocumentBackup {
    /// The signed heads.
    pub heads: SignedHeads,
    /// `Automerge::save` of the document.
    #[serde(with = "base64")]
    pub automerge: Vec<u8>,
    /// Every signed change, encoded ([`SignedChange::encode`]).
    #[serde(with = "base64_list")]
    pub changes: Vec<Vec<u8>>,
}

/// What a verified backup holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    /// The document.
    pub document: DocumentId,
    /// Its changes.
    pub changes: usize,
    /// Who exported it, and when.
    pub exported_by: KeyId,
    /// When, in seconds since the Unix epoch.
    pub exported_at: i64,
    /// The distinct authors of its changes.
    pub authors: Vec<KeyId>,
}

impl DocumentBackup {
    /// Builds the backup of `document` from its encoded signed changes, signing the heads
    /// with `secret`. Every change is decoded and checked on the way.
    pub fn build(
        document: DocumentId,
        changes: Vec<Vec<u8>>,
        secret: &SigningSecret,
        now: i64,
    ) -> Result<Self, BackupError> {
        let doc = build_document(&document, &changes)?;
        let automerge = doc.save();
        let heads = SignedHeads::sign(document, doc.get_heads(), changes.len(), secret, now);
        Ok(Self {
            heads,
            automerge,
            changes,
        })
    }

    /// The file name stem: `org-<id>` or `net-<id>`.
    pub fn file_stem(document: &DocumentId) -> String {
        document.as_str().replace('/', "-")
    }

    /// Writes the three files into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), BackupError> {
        let stem = Self::file_stem(&self.heads.document);
        let mut framed = Vec::new();
        for change in &self.changes {
            framed.extend_from_slice(&(change.len() as u32).to_be_bytes());
            framed.extend_from_slice(change);
        }
        let heads = serde_json::to_vec_pretty(&self.heads).map_err(|e| BackupError::Malformed {
            path: dir.join(format!("{stem}.heads.json")),
            why: e.to_string(),
        })?;
        for (suffix, bytes) in [
            ("automerge", &self.automerge),
            ("changes", &framed),
            ("heads.json", &heads),
        ] {
            let path = dir.join(format!("{stem}.{suffix}"));
            // Whole or not at all, and on the disk when the export says it is done.
            crate::durable::write_file_atomically(&path, bytes, 0o644)
                .map_err(|source| BackupError::Io { path, source })?;
        }
        Ok(())
    }

    /// Reads the backup whose heads file is `heads_path` (`<name>.heads.json`).
    pub fn read(heads_path: &Path) -> Result<Self, BackupError> {
        let stem = heads_path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".heads.json"))
            .ok_or_else(|| BackupError::Malformed {
                path: heads_path.to_owned(),
                why: "not a <name>.heads.json file".into(),
            })?;
        let dir = heads_path.parent().unwrap_or(Path::new("."));
        let heads: SignedHeads =
            serde_json::from_slice(&read_bounded(heads_path)?).map_err(|e| {
                BackupError::Malformed {
                    path: heads_path.to_owned(),
                    why: e.to_string(),
                }
            })?;
        let automerge = read_bounded(&dir.join(format!("{stem}.automerge")))?;
        let changes_path = dir.join(format!("{stem}.changes"));
        let framed = read_bounded(&changes_path)?;
        let mut changes = Vec::new();
        let mut rest = framed.as_slice();
        while !rest.is_empty() {
            let malformed = || BackupError::Malformed {
                path: changes_path.clone(),
                why: format!(
                    "truncated after {} change(s): each change is a u32 length and its bytes",
                    changes.len()
                ),
            };
            let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(malformed)?;
            let len = u32::from_be_bytes(*len) as usize;
            if tail.len() < len {
                return Err(malformed());
            }
            changes.push(tail[..len].to_vec());
            rest = &tail[len..];
        }
        Ok(Self {
            heads,
            automerge,
            changes,
        })
    }

    /// Checks the backup: the heads' signature; every change decodes, belongs to the
    /// document and carries a valid signature of its author; the changes build exactly the
    /// signed heads and count; the `.automerge` file is the same document.
    pub fn verify(&self) -> Result<Verified, BackupError> {
        let document = self.heads.document.clone();
        let invalid = |why: String| BackupError::Invalid {
            document: document.clone(),
            why,
        };
        self.heads.verify().map_err(|e| invalid(e.to_string()))?;
        let signed_heads = self.heads.hashes().map_err(|e| invalid(e.to_string()))?;
        let mut decoded = Vec::with_capacity(self.changes.len());
        for (index, bytes) in self.changes.iter().enumerate() {
            let change = SignedChange::decode(bytes)
                .map_err(|e| invalid(format!("change {}: {e}", index + 1)))?;
            if change.document() != &document {
                return Err(invalid(format!(
                    "change {} belongs to {}, not to this document",
                    index + 1,
                    change.document()
                )));
            }
            decoded.push(change);
        }
        SignedChange::verify_all(&decoded)
            .map_err(|(index, e)| invalid(format!("change {}: {e}", index + 1)))?;
        if decoded.len() != self.heads.changes {
            return Err(invalid(format!(
                "{} changes, but the signed heads say {}",
                decoded.len(),
                self.heads.changes
            )));
        }
        let built = build_document(&document, &self.changes)?;
        let mut heads = built.get_heads();
        heads.sort();
        if heads != signed_heads {
            return Err(invalid(
                "the signed changes do not build the signed heads".into(),
            ));
        }
        crate::automerge_bounds::check_document(
            &self.automerge,
            crate::automerge_bounds::MAX_INFLATED_DOCUMENT,
        )
        .map_err(|e| invalid(format!("the .automerge file is refused: {e}")))?;
        let saved = crate::automerge_guard::load(&self.automerge)
            .map_err(|e| invalid(format!("the .automerge file cannot be opened: {e}")))?;
        let mut saved_heads = saved.get_heads();
        saved_heads.sort();
        if saved_heads != signed_heads || saved.get_changes(&[]).len() != decoded.len() {
            return Err(invalid(
                "the .automerge file is not the document its signed changes build".into(),
            ));
        }
        let mut authors: Vec<KeyId> = decoded.iter().map(SignedChange::author).collect();
        authors.sort();
        authors.dedup();
        Ok(Verified {
            document,
            changes: decoded.len(),
            exported_by: self.heads.exported_by,
            exported_at: self.heads.exported_at,
            authors,
        })
    }
}

/// Reads every backup in `dir` (each `*.heads.json` with its two files), in name order.
pub fn read_dir(dir: &Path) -> Result<Vec<DocumentBackup>, BackupError> {
    let io = |source| BackupError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".heads.json"))
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(BackupError::Malformed {
            path: dir.to_owned(),
            why: "no <name>.heads.json file: not a folder written by `passerelle export automerge`"
                .into(),
        });
    }
    paths.iter().map(|p| DocumentBackup::read(p)).collect()
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, BackupError> {
    let io = |source| BackupError::Io {
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_FILE_BYTES {
        return Err(BackupError::Malformed {
            path: path.to_owned(),
            why: format!("{size} bytes, more than the {MAX_FILE_BYTES} a backup file may hold"),
        });
    }
    std::fs::read(path).map_err(io)
}

fn build_document(document: &DocumentId, changes: &[Vec<u8>]) -> Result<Automerge, BackupError> {
    let invalid = |why: String| BackupError::Invalid {
        document: document.clone(),
        why,
    };
    let mut raw = Vec::with_capacity(changes.len());
    for (index, bytes) in changes.iter().enumerate() {
        let change = SignedChange::decode(bytes)
            .map_err(|e| invalid(format!("change {}: {e}", index + 1)))?;
        raw.push(
            crate::automerge_guard::change(change.change().raw_bytes().to_vec())
                .map_err(|e| invalid(format!("change {}: {e}", index + 1)))?,
        );
    }
    let mut doc = Automerge::new();
    crate::automerge_guard::guarded("changes", || {
        doc.apply_changes(raw).map_err(|e| e.to_string())
    })
    .map_err(|e| invalid(format!("the changes do not apply: {e}")))?;
    Ok(doc)
}

/// Standard base64 of `bytes` (how changes travel in the control API's JSON).
pub fn base64_encode(bytes: &[u8]) -> String {
    data_encoding::BASE64.encode(bytes)
}

mod base64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&data_encoding::BASE64.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        data_encoding::BASE64
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

mod base64_list {
    use serde::{Deserialize, Deserializer, Serializer, ser::SerializeSeq};

    pub fn serialize<S: Serializer>(list: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(list.len()))?;
        for bytes in list {
            seq.serialize_element(&data_encoding::BASE64.encode(bytes))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|t| data_encoding::BASE64.decode(t.as_bytes()))
            .collect::<Result<_, _>>()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{Edit, OrganisationDocument};
    use crate::model::Profile;

    fn sample() -> (SigningSecret, DocumentBackup) {
        let secret = SigningSecret::generate().unwrap();
        let (mut doc, genesis) =
            OrganisationDocument::create(&secret, Profile::named("Espoir Douala"), 1).unwrap();
        let mut changes = vec![genesis.encode()];
        let mut patch = serde_json::Map::new();
        patch.insert("acronym".into(), "ED".into());
        let signed = doc
            .apply_edit(&Edit::SetProfile { patch }, &secret, 2)
            .unwrap();
        changes.push(signed.encode());
        let backup = DocumentBackup::build(doc.id().clone(), changes, &secret, 3).unwrap();
        (secret, backup)
    }

    #[test]
    fn a_backup_round_trips_through_files_and_verifies() {
        let (secret, backup) = sample();
        let dir = tempfile::tempdir().unwrap();
        backup.write(dir.path()).unwrap();
        let read = read_dir(dir.path()).unwrap();
        assert_eq!(read.len(), 1);
        let verified = read[0].verify().unwrap();
        assert_eq!(verified.changes, 2);
        assert_eq!(verified.authors, vec![secret.key_id()]);
        // Any Automerge implementation opens the standard file.
        let opened = Automerge::load(&read[0].automerge).unwrap();
        assert_eq!(opened.get_changes(&[]).len(), 2);
    }

    #[test]
    fn a_tampered_backup_is_refused_with_why() {
        let (_, backup) = sample();
        let mut heads = backup.clone();
        heads.heads.changes = 1;
        assert!(
            heads
                .verify()
                .unwrap_err()
                .to_string()
                .contains("signature")
        );
        let mut dropped = backup.clone();
        dropped.changes.pop();
        assert!(dropped.verify().unwrap_err().to_string().contains("say 2"));
        let mut flipped = backup.clone();
        let last = flipped.changes[1].len() - 1;
        flipped.changes[1][last] ^= 1;
        assert!(flipped.verify().is_err());
        let mut other = backup.clone();
        other.automerge = Automerge::new().save();
        assert!(
            other
                .verify()
                .unwrap_err()
                .to_string()
                .contains(".automerge")
        );
        let dir = tempfile::tempdir().unwrap();
        backup.write(dir.path()).unwrap();
        let stem = DocumentBackup::file_stem(&backup.heads.document);
        let path = dir.path().join(format!("{stem}.changes"));
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert!(
            read_dir(dir.path())
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
    }
}
