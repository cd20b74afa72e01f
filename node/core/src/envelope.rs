//! Signed changes: one Automerge change, the document it belongs to, its author and an
//! ed25519 signature.
//!
//! Rules:
//! - The signature covers a fixed, versioned, domain-separated encoding
//!   ([`SignedChange::signing_bytes`]): the tag `passerelle/signed-change`, a zero byte, the
//!   envelope version, the document id, the change hash and the author key. A change signed
//!   for one document therefore never verifies under another.
//! - The Automerge actor id of the change must equal the author's 32-byte public key, so a
//!   change cannot be re-attributed to someone else.
//! - The change hash is recomputed from the change bytes when they are decoded; it is never
//!   taken from the sender.
//! - [`SignedChange::verify`] returns a typed [`VerifyError`]; nothing is stored, applied or
//!   forwarded unless it returns `Ok`.

use std::collections::{HashMap, HashSet};
use std::fmt;

use automerge::{Change, ChangeHash};
use ed25519_dalek::Signature;

use crate::identity::{KeyId, SigningSecret};
pub use crate::ids::{DocumentId, DocumentIdError, MAX_DOCUMENT_ID_BYTES};

/// Domain tag at the front of every signed message.
pub const SIGNATURE_DOMAIN: &[u8] = b"passerelle/signed-change";
/// Version of the signed encoding and of the envelope's byte layout.
pub const ENVELOPE_VERSION: u8 = 1;
/// Magic bytes at the front of an encoded envelope.
pub const ENVELOPE_MAGIC: &[u8; 4] = b"PSC1";
/// Magic bytes at the front of an encoded *attested* change: the envelope layout without
/// the signature, for a change vouched for by a later signed change of its author (see
/// [`SignedChange::attested`]).
pub const ATTESTED_MAGIC: &[u8; 4] = b"PSA1";
/// Bytes of one signature in a compact bundle: the change hash (32) and the author's
/// signature over it (64); the document is the bundle's, the author the change's actor.
pub const COMPACT_SIGNATURE_BYTES: usize = 96;
/// Largest Automerge change an envelope may carry (a bound against hostile peers).
pub const MAX_CHANGE_BYTES: usize = 1024 * 1024;

/// Why a signed change was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// The change's Automerge actor is not the author's key.
    #[error("change {hash} was made by actor {actor} but claims author {author}")]
    ActorMismatch {
        /// The change.
        hash: String,
        /// The actor id in the change (hex).
        actor: String,
        /// The claimed author.
        author: KeyId,
    },
    /// The author bytes are not an ed25519 public key.
    #[error("author of change {0} is not a valid public key")]
    InvalidAuthorKey(String),
    /// An attested change (one without a signature of its own) that no signed change of
    /// its author, among those it came with, has in its history.
    #[error(
        "change {hash} by {author} in {document} carries no signature and no signed change of its author vouches for it"
    )]
    Unattested {
        /// The document.
        document: DocumentId,
        /// The change.
        hash: String,
        /// Its author.
        author: KeyId,
    },
    /// The signature does not verify for this document, change and author.
    #[error("signature of change {hash} by {author} in {document} does not verify")]
    BadSignature {
        /// The document the change claims to belong to.
        document: DocumentId,
        /// The change.
        hash: String,
        /// The claimed author.
        author: KeyId,
    },
}

/// Why bytes could not be decoded as a signed change.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// Wrong magic bytes or version.
    #[error("not a version-1 Passerelle signed change")]
    NotAnEnvelope,
    /// The bytes end early or carry trailing data.
    #[error("signed change is truncated or has trailing bytes")]
    Length,
    /// A length field exceeds its limit.
    #[error("signed change field {field} is {len} bytes, over the limit of {max}")]
    TooLarge {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The document id is malformed.
    #[error(transparent)]
    DocumentId(#[from] DocumentIdError),
    /// The author is not a public key.
    #[error("author is not a valid public key")]
    Author,
    /// The Automerge change does not decode (or its checksum fails).
    #[error("automerge change does not decode: {0}")]
    Change(crate::automerge_guard::DecodeError),
}

/// An Automerge change with the document it belongs to, its author and their signature.
///
/// A change may also be *attested* instead of signed: it carries no signature of its own,
/// and is vouched for by a signed change of the same author that has it in its history
/// (an Automerge change hash covers the hashes of its dependencies, so one signature
/// covers everything its author built on). A node receives attested changes only beside
/// the signed change that vouches for them ([`SignedChange::verify_all`]); it is how a
/// whole document travels in Automerge's compressed form with one signature per author
/// (`docs/protocol.md`, "Document bundles").
#[derive(Clone)]
pub struct SignedChange {
    document: DocumentId,
    author: KeyId,
    change: Change,
    signature: Option<Signature>,
}

impl fmt::Debug for SignedChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedChange")
            .field("document", &self.document)
            .field("author", &self.author)
            .field("hash", &self.change.hash().to_string())
            .field("seq", &self.change.seq())
            .finish()
    }
}

/// What checking attestation needs to know of one change of a document: its hash, its
/// author, its dependencies, and whether it carries a verified signature of its own.
#[derive(Debug, Clone, Copy)]
pub struct ChangeLink<'a> {
    /// The Automerge change hash.
    pub hash: ChangeHash,
    /// Its author (the key its Automerge actor names).
    pub author: KeyId,
    /// The hashes of the changes it depends on.
    pub deps: &'a [ChangeHash],
    /// True if its own signature was verified.
    pub signed: bool,
}

/// Indices of the unsigned changes among `links` (the changes of one document) that no
/// signed change of the same author among them has in its history (itself included):
/// from all of an author's signed changes, one walk back through every dependency held
/// here; the author's changes met on the way are vouched for.
pub fn unattested_links(links: &[ChangeLink<'_>]) -> Vec<usize> {
    if links.iter().all(|l| l.signed) {
        return Vec::new();
    }
    let index_of: HashMap<ChangeHash, usize> =
        links.iter().enumerate().map(|(i, l)| (l.hash, i)).collect();
    let mut authors: HashMap<KeyId, Vec<usize>> = HashMap::new();
    for (index, link) in links.iter().enumerate() {
        if link.signed {
            authors.entry(link.author).or_default().push(index);
        }
    }
    let mut vouched = vec![false; links.len()];
    for (author, mut stack) in authors {
        let mut seen: HashSet<usize> = stack.iter().copied().collect();
        while let Some(index) = stack.pop() {
            if links[index].author == author {
                vouched[index] = true;
            }
            for dep in links[index].deps {
                if let Some(&next) = index_of.get(dep)
                    && seen.insert(next)
                {
                    stack.push(next);
                }
            }
        }
    }
    (0..links.len())
        .filter(|&i| !links[i].signed && !vouched[i])
        .collect()
}

impl SignedChange {
    /// Signs `change` for `document` with `secret`. The change's actor must be the signer's key.
    pub fn sign(document: DocumentId, change: Change, secret: &SigningSecret) -> Self {
        let author = secret.key_id();
        let message = Self::signing_bytes(&document, &change.hash(), &author);
        let signature = secret.sign(&message);
        Self {
            document,
            author,
            change,
            signature: Some(signature),
        }
    }

    /// An attested change of `document`: its author is its Automerge actor. It verifies
    /// only beside a signed change of that author having it in its history.
    pub fn attested(document: DocumentId, change: Change) -> Result<Self, DecodeError> {
        let actor =
            <[u8; 32]>::try_from(change.actor_id().to_bytes()).map_err(|_| DecodeError::Author)?;
        let author = KeyId::from_bytes(actor).map_err(|_| DecodeError::Author)?;
        Ok(Self {
            document,
            author,
            change,
            signature: None,
        })
    }

    /// A change of `document` with a signature that came apart from it (a compact
    /// bundle's [`COMPACT_SIGNATURE_BYTES`]): its author is its Automerge actor. Not
    /// verified here.
    pub fn with_signature(
        document: DocumentId,
        change: Change,
        signature: [u8; 64],
    ) -> Result<Self, DecodeError> {
        let mut out = Self::attested(document, change)?;
        out.signature = Some(Signature::from_bytes(&signature));
        Ok(out)
    }

    /// The signature of an encoded signed change, read from its envelope without decoding
    /// the change; None for an attested change or bytes that are not an envelope.
    pub fn encoded_signature(bytes: &[u8]) -> Option<[u8; 64]> {
        let mut reader = Reader(bytes);
        if reader.take(4).ok()? != ENVELOPE_MAGIC {
            return None;
        }
        let doc_len = u16::from_be_bytes(reader.array().ok()?) as usize;
        reader.take(doc_len).ok()?;
        reader.take(32).ok()?;
        reader.array().ok()
    }

    /// True if the change carries its own signature (false for an attested one).
    pub fn is_signed(&self) -> bool {
        self.signature.is_some()
    }

    /// The exact bytes that are signed: tag, 0, version, doc id (u16 BE length + bytes),
    /// change hash (32), author key (32).
    pub fn signing_bytes(document: &DocumentId, hash: &ChangeHash, author: &KeyId) -> Vec<u8> {
        let doc = document.as_str().as_bytes();
        let mut out = Vec::with_capacity(SIGNATURE_DOMAIN.len() + 4 + doc.len() + 64);
        out.extend_from_slice(SIGNATURE_DOMAIN);
        out.push(0);
        out.push(ENVELOPE_VERSION);
        out.extend_from_slice(&(doc.len() as u16).to_be_bytes());
        out.extend_from_slice(doc);
        out.extend_from_slice(&hash.0);
        out.extend_from_slice(author.as_bytes());
        out
    }

    /// Checks the author binding and the signature. An attested change never verifies
    /// alone: see [`SignedChange::verify_all`].
    pub fn verify(&self) -> Result<(), VerifyError> {
        self.check_actor()?;
        let Some(signature) = &self.signature else {
            return Err(self.unattested());
        };
        let key = self
            .author
            .verifying_key()
            .map_err(|_| VerifyError::InvalidAuthorKey(self.hash().to_string()))?;
        let message = Self::signing_bytes(&self.document, &self.hash(), &self.author);
        key.verify_strict(&message, signature)
            .map_err(|_| VerifyError::BadSignature {
                document: self.document.clone(),
                hash: self.hash().to_string(),
                author: self.author,
            })
    }

    fn unattested(&self) -> VerifyError {
        VerifyError::Unattested {
            document: self.document.clone(),
            hash: self.hash().to_string(),
            author: self.author,
        }
    }

    /// Verifies many changes at once: the signed ones' signatures (ed25519 batch
    /// verification, about twice as fast as one by one; on failure, one by one to name the
    /// first bad change), then that each attested one is vouched for by one of the signed
    /// ones ([`SignedChange::unattested_among`]).
    pub fn verify_all(changes: &[SignedChange]) -> Result<(), (usize, VerifyError)> {
        Self::verify_signatures(changes)?;
        match Self::unattested_among(changes).first() {
            Some(&index) => Err((index, changes[index].unattested())),
            None => Ok(()),
        }
    }

    /// Indices of the attested changes among `changes` that no signed change of the same
    /// author and document among them has in its history (itself included). Signatures are
    /// not checked here: call it on changes whose signatures verified.
    pub fn unattested_among(changes: &[SignedChange]) -> Vec<usize> {
        if changes.iter().all(SignedChange::is_signed) {
            return Vec::new();
        }
        let mut by_document: HashMap<&DocumentId, Vec<usize>> = HashMap::new();
        for (index, change) in changes.iter().enumerate() {
            by_document.entry(&change.document).or_default().push(index);
        }
        let mut unattested = Vec::new();
        for indices in by_document.values() {
            let links: Vec<ChangeLink<'_>> = indices
                .iter()
                .map(|&i| ChangeLink {
                    hash: changes[i].hash(),
                    author: changes[i].author,
                    deps: changes[i].change.deps(),
                    signed: changes[i].is_signed(),
                })
                .collect();
            unattested.extend(unattested_links(&links).into_iter().map(|i| indices[i]));
        }
        unattested.sort_unstable();
        unattested
    }

    /// Verifies the signatures of the signed changes among `changes` (attested ones are
    /// skipped; their author binding is checked).
    pub fn verify_signatures(changes: &[SignedChange]) -> Result<(), (usize, VerifyError)> {
        let mut messages = Vec::with_capacity(changes.len());
        let mut signatures = Vec::with_capacity(changes.len());
        let mut keys = Vec::with_capacity(changes.len());
        for (index, change) in changes.iter().enumerate() {
            change.check_actor().map_err(|e| (index, e))?;
            let Some(signature) = change.signature else {
                continue;
            };
            // Batch verification is cofactored: a small-order ("weak") key, which
            // `verify_strict` refuses, is refused here too.
            let key = change
                .author
                .verifying_key()
                .ok()
                .filter(|k| !k.is_weak())
                .ok_or_else(|| {
                    (
                        index,
                        VerifyError::InvalidAuthorKey(change.hash().to_string()),
                    )
                })?;
            messages.push(Self::signing_bytes(
                &change.document,
                &change.hash(),
                &change.author,
            ));
            signatures.push(signature);
            keys.push(key);
        }
        if signatures.is_empty() {
            return Ok(());
        }
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        if ed25519_dalek::verify_batch(&refs, &signatures, &keys).is_ok() {
            return Ok(());
        }
        for (index, change) in changes.iter().enumerate() {
            if change.is_signed() {
                change.verify().map_err(|e| (index, e))?;
            }
        }
        Ok(())
    }

    fn check_actor(&self) -> Result<(), VerifyError> {
        let actor = self.change.actor_id();
        if actor.to_bytes() != self.author.as_bytes() {
            return Err(VerifyError::ActorMismatch {
                hash: self.hash().to_string(),
                actor: actor.to_hex_string(),
                author: self.author,
            });
        }
        Ok(())
    }

    /// The document this change belongs to.
    pub fn document(&self) -> &DocumentId {
        &self.document
    }

    /// The key that signed it (an organisation's own key or one of its devices').
    pub fn author(&self) -> KeyId {
        self.author
    }

    /// The Automerge change.
    pub fn change(&self) -> &Change {
        &self.change
    }

    /// The Automerge change hash.
    pub fn hash(&self) -> ChangeHash {
        self.change.hash()
    }

    /// The signature (none for an attested change).
    pub fn signature(&self) -> Option<&Signature> {
        self.signature.as_ref()
    }

    /// Byte layout (all integers big-endian): `PSC1`, doc id length (u16) and bytes,
    /// author (32), signature (64), change length (u32) and Automerge change bytes. An
    /// attested change: `PSA1` and the same without the signature.
    pub fn encode(&self) -> Vec<u8> {
        let doc = self.document.as_str().as_bytes();
        let change = self.change.raw_bytes();
        let mut out = Vec::with_capacity(4 + 2 + doc.len() + 32 + 64 + 4 + change.len());
        out.extend_from_slice(match self.signature {
            Some(_) => ENVELOPE_MAGIC,
            None => ATTESTED_MAGIC,
        });
        out.extend_from_slice(&(doc.len() as u16).to_be_bytes());
        out.extend_from_slice(doc);
        out.extend_from_slice(self.author.as_bytes());
        if let Some(signature) = &self.signature {
            out.extend_from_slice(&signature.to_bytes());
        }
        out.extend_from_slice(&(change.len() as u32).to_be_bytes());
        out.extend_from_slice(change);
        out
    }

    /// Decodes [`SignedChange::encode`]'s layout (signed or attested). Does not verify.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader(bytes);
        let signed = match reader.take(4)? {
            magic if magic == ENVELOPE_MAGIC => true,
            magic if magic == ATTESTED_MAGIC => false,
            _ => return Err(DecodeError::NotAnEnvelope),
        };
        let doc_len = u16::from_be_bytes(reader.array()?) as usize;
        if doc_len > MAX_DOCUMENT_ID_BYTES {
            return Err(DecodeError::TooLarge {
                field: "document id",
                len: doc_len,
                max: MAX_DOCUMENT_ID_BYTES,
            });
        }
        let doc = std::str::from_utf8(reader.take(doc_len)?)
            .map_err(|_| DocumentIdError::Malformed("<not utf-8>".into()))?;
        let document = DocumentId::try_from(doc.to_owned())?;
        let author = KeyId::from_bytes(reader.array()?).map_err(|_| DecodeError::Author)?;
        let signature = if signed {
            Some(Signature::from_bytes(&reader.array()?))
        } else {
            None
        };
        let change_len = u32::from_be_bytes(reader.array()?) as usize;
        if change_len > MAX_CHANGE_BYTES {
            return Err(DecodeError::TooLarge {
                field: "change",
                len: change_len,
                max: MAX_CHANGE_BYTES,
            });
        }
        let change_bytes = reader.take(change_len)?.to_vec();
        if !reader.0.is_empty() {
            return Err(DecodeError::Length);
        }
        let change = crate::automerge_guard::change(change_bytes).map_err(DecodeError::Change)?;
        Ok(Self {
            document,
            author,
            change,
            signature,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Length);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let slice = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::{CommitOptions, Transactable};
    use automerge::{ActorId, AutoCommit, ROOT};

    fn change_by(secret: &SigningSecret, value: &str) -> Change {
        let mut doc = AutoCommit::new().with_actor(ActorId::from(secret.key_id().as_bytes()));
        doc.put(ROOT, "name", value).unwrap();
        doc.commit_with(CommitOptions::default().with_time(1_700_000_000));
        doc.get_last_local_change().unwrap()
    }

    #[test]
    fn a_small_order_author_key_is_refused_by_batch_and_single_verification() {
        // The identity point: a "weak" key for which cofactored (batch) verification would
        // accept forged signatures.
        let mut weak = [0u8; 32];
        weak[0] = 1;
        let mut doc = AutoCommit::new().with_actor(ActorId::from(weak.as_slice()));
        doc.put(ROOT, "name", "forgery").unwrap();
        doc.commit_with(CommitOptions::default().with_time(1_700_000_000));
        let change = doc.get_last_local_change().unwrap();
        let id = DocumentId::organisation(&SigningSecret::generate().unwrap().org_id());
        let document = id.as_str().as_bytes();
        let mut bytes = ENVELOPE_MAGIC.to_vec();
        bytes.extend_from_slice(&(document.len() as u16).to_be_bytes());
        bytes.extend_from_slice(document);
        bytes.extend_from_slice(&weak);
        bytes.extend_from_slice(&[0u8; 64]);
        bytes.extend_from_slice(&(change.raw_bytes().len() as u32).to_be_bytes());
        bytes.extend_from_slice(change.raw_bytes());
        let forged = SignedChange::decode(&bytes).expect("a well-formed envelope");
        assert!(forged.verify().is_err());
        assert!(matches!(
            SignedChange::verify_all(std::slice::from_ref(&forged)),
            Err((0, VerifyError::InvalidAuthorKey(_)))
        ));
    }

    fn signed(secret: &SigningSecret) -> SignedChange {
        let doc = DocumentId::organisation(&secret.org_id());
        SignedChange::sign(doc, change_by(secret, "Centre Espoir"), secret)
    }

    #[test]
    fn a_signature_read_from_the_envelope_verifies_when_joined_to_its_change_again() {
        let secret = SigningSecret::generate().unwrap();
        let change = signed(&secret);
        let encoded = change.encode();
        let signature = SignedChange::encoded_signature(&encoded).expect("a signed envelope");
        let joined = SignedChange::with_signature(
            change.document().clone(),
            change.change().clone(),
            signature,
        )
        .unwrap();
        joined.verify().unwrap();
        assert_eq!(joined.encode(), encoded);
        // Under another document, or with another signature, it does not verify.
        let other = DocumentId::organisation(&SigningSecret::generate().unwrap().org_id());
        let moved =
            SignedChange::with_signature(other, change.change().clone(), signature).unwrap();
        assert!(moved.verify().is_err());
        let mut flipped = signature;
        flipped[3] ^= 1;
        let forged = SignedChange::with_signature(
            change.document().clone(),
            change.change().clone(),
            flipped,
        )
        .unwrap();
        assert!(forged.verify().is_err());
        // Not read from an attested change, nor from bytes that are no envelope.
        let attested =
            SignedChange::attested(change.document().clone(), change.change().clone()).unwrap();
        assert_eq!(SignedChange::encoded_signature(&attested.encode()), None);
        assert_eq!(SignedChange::encoded_signature(&encoded[..20]), None);
    }

    #[test]
    fn sign_then_verify() {
        let secret = SigningSecret::generate().unwrap();
        let change = signed(&secret);
        change.verify().unwrap();
        let decoded = SignedChange::decode(&change.encode()).unwrap();
        decoded.verify().unwrap();
        assert_eq!(decoded.hash(), change.hash());
        assert_eq!(decoded.author(), secret.key_id());
    }

    #[test]
    fn tampered_change_bytes_are_refused() {
        let secret = SigningSecret::generate().unwrap();
        let mut bytes = signed(&secret).encode();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x40;
        match SignedChange::decode(&bytes) {
            Err(DecodeError::Change(_)) => {}
            Ok(change) => assert!(change.verify().is_err()),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn tampered_signature_is_refused() {
        let secret = SigningSecret::generate().unwrap();
        let mut bytes = signed(&secret).encode();
        let doc_len = u16::from_be_bytes([bytes[4], bytes[5]]) as usize;
        bytes[6 + doc_len + 32 + 5] ^= 1;
        let change = SignedChange::decode(&bytes).unwrap();
        assert!(matches!(
            change.verify(),
            Err(VerifyError::BadSignature { .. })
        ));
    }

    #[test]
    fn wrong_key_is_refused() {
        let author = SigningSecret::generate().unwrap();
        let impostor = SigningSecret::generate().unwrap();
        // The impostor signs a change whose actor is the real author's key.
        let change = change_by(&author, "Faux centre");
        let forged = SignedChange::sign(
            DocumentId::organisation(&author.org_id()),
            change,
            &impostor,
        );
        assert!(matches!(
            forged.verify(),
            Err(VerifyError::ActorMismatch { .. })
        ));
        // Swap in the real author's id but keep the impostor's signature.
        let mut bytes = forged.encode();
        let doc_len = u16::from_be_bytes([bytes[4], bytes[5]]) as usize;
        bytes[6 + doc_len..6 + doc_len + 32].copy_from_slice(author.key_id().as_bytes());
        let relabelled = SignedChange::decode(&bytes).unwrap();
        assert!(matches!(
            relabelled.verify(),
            Err(VerifyError::BadSignature { .. })
        ));
    }

    #[test]
    fn replay_under_another_document_is_refused() {
        let secret = SigningSecret::generate().unwrap();
        let change = signed(&secret);
        let other = DocumentId::try_from("org/another".to_owned()).unwrap();
        let mut replayed = change.clone();
        replayed.document = other;
        assert!(matches!(
            replayed.verify(),
            Err(VerifyError::BadSignature { .. })
        ));
        // And through the byte encoding, as a peer would send it.
        let encoded = replayed.encode();
        let decoded = SignedChange::decode(&encoded).unwrap();
        assert!(decoded.verify().is_err());
    }

    #[test]
    fn batch_verification_names_the_bad_change() {
        let secret = SigningSecret::generate().unwrap();
        let mut changes: Vec<_> = (0..5).map(|_| signed(&secret)).collect();
        SignedChange::verify_all(&changes).unwrap();
        changes[3].document = DocumentId::try_from("org/elsewhere".to_owned()).unwrap();
        let (index, _) = SignedChange::verify_all(&changes).unwrap_err();
        assert_eq!(index, 3);
    }

    #[test]
    fn malformed_envelopes_are_refused() {
        assert_eq!(
            SignedChange::decode(b"nope").unwrap_err(),
            DecodeError::NotAnEnvelope
        );
        assert_eq!(
            SignedChange::decode(b"PSC1\x00").unwrap_err(),
            DecodeError::Length
        );
        let secret = SigningSecret::generate().unwrap();
        let mut bytes = signed(&secret).encode();
        bytes.push(0);
        assert_eq!(
            SignedChange::decode(&bytes).unwrap_err(),
            DecodeError::Length
        );
    }
}
