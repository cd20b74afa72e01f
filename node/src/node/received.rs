//! Received changes, checked before the documents actor sees them: decoded, signatures
//! verified (in parallel, beside the actor's thread), and documents received whole
//! (bundles) bounded, loaded and verified.
//!
//! Rules:
//! - Only [`VerifiedBatch::check`] and [`VerifiedBatch::check_with_documents`] make a
//!   batch, so the actor, which stores and applies what it is given, never sees an
//!   unverified change.
//! - A bundle is refused before it is loaded if it would inflate past the bound, and
//!   refused unless every change in it is signed or attested by a signed change of its
//!   author, each author's changes numbered 1, 2, 3… ([`unpack_bundle`]).

use std::collections::{HashMap, HashSet};

use automerge::ChangeHash;

use crate::envelope::{COMPACT_SIGNATURE_BYTES, DocumentId, SignedChange};
use crate::identity::KeyId;
use crate::protocol::DocumentBundle;
use crate::sync::{Rejection, RejectionCode};

/// Received changes that decoded and whose signatures verified, and why the others were
/// refused. Only [`VerifiedBatch::check`] makes one, so the documents actor, which stores
/// and applies what it is given, never sees an unverified change.
#[derive(Debug, Default)]
pub struct VerifiedBatch {
    pub(super) changes: Vec<SignedChange>,
    pub(super) rejected: Vec<Rejection>,
    /// Documents received whole (bundles), loaded and verified: a node that lacks one
    /// takes it as it is instead of applying its changes one by one.
    pub(super) whole: Vec<Whole>,
}

/// A document received whole (a bundle), loaded and verified: every change is signed or
/// attested by a signed change of its author, and each author's changes are numbered
/// 1, 2, 3….
#[derive(Debug)]
pub(super) struct Whole {
    pub(super) id: DocumentId,
    pub(super) doc: automerge::AutoCommit,
    /// As it was received: Automerge's compressed format, stored as it is.
    pub(super) saved: Vec<u8>,
    /// The bundle's signed changes (each author's latest).
    pub(super) signed: Vec<SignedChange>,
    /// Every change of the document: (author, sequence number, hash).
    pub(super) changes: Vec<(KeyId, u64, ChangeHash)>,
}

impl Whole {
    /// Every change of the document, signed (the bundle's) or attested: to take it change
    /// by change when it cannot be taken whole.
    pub(super) fn into_changes(mut self) -> Result<Vec<SignedChange>, Rejection> {
        let mut signed: HashMap<ChangeHash, SignedChange> = self
            .signed
            .into_iter()
            .map(|change| (change.hash(), change))
            .collect();
        let mut out = Vec::with_capacity(self.changes.len());
        for change in self.doc.get_changes(&[]) {
            match signed.remove(&change.hash()) {
                Some(signed) => out.push(signed),
                None => out.push(
                    SignedChange::attested(self.id.clone(), change).map_err(|e| {
                        Rejection::new(
                            RejectionCode::BadBundle,
                            format!("document {}: {e}", self.id),
                        )
                    })?,
                ),
            }
        }
        Ok(out)
    }
}

/// Below this many changes a batch is verified on the caller's thread alone.
const PARALLEL_VERIFY_FROM: usize = 64;

impl VerifiedBatch {
    /// Decodes and verifies encoded signed changes, in order. Large batches are split over
    /// the machine's cores and verified with ed25519 batch verification; a batch that fails
    /// is verified change by change, so each bad change is named and the good ones kept.
    /// CPU-bound: call it off the async runtime (the node handle does).
    ///
    /// An attested change (no signature of its own) is kept only if a signed change of
    /// its author in the same batch has it in its history; else it is refused
    /// `unattested`.
    pub fn check(encoded: Vec<Vec<u8>>) -> Self {
        let threads = crate::parallel::threads();
        let mut out = if threads < 2 || encoded.len() < PARALLEL_VERIFY_FROM {
            Self::check_part(&encoded)
        } else {
            let parts: Vec<&[Vec<u8>]> = encoded.chunks(encoded.len().div_ceil(threads)).collect();
            let mut out = Self::default();
            for part in crate::parallel::map(parts, Self::check_part) {
                out.changes.extend(part.changes);
                out.rejected.extend(part.rejected);
            }
            out
        };
        out.refuse_unattested();
        out
    }

    /// [`VerifiedBatch::check`] for a sync response: its changes, and its whole
    /// documents, each loaded and its changes verified ([`unpack_bundle`]; a bundle with
    /// one bad part is refused whole), on every core.
    pub fn check_with_documents(encoded: Vec<Vec<u8>>, bundles: Vec<DocumentBundle>) -> Self {
        let mut out = Self::check(encoded);
        for unpacked in crate::parallel::map(bundles, unpack_bundle) {
            match unpacked {
                Ok(whole) => out.whole.push(whole),
                Err(rejection) => out.rejected.push(rejection),
            }
        }
        out
    }

    fn refuse_unattested(&mut self) {
        let unattested = SignedChange::unattested_among(&self.changes);
        if unattested.is_empty() {
            return;
        }
        let unattested: HashSet<usize> = unattested.into_iter().collect();
        let changes = std::mem::take(&mut self.changes);
        for (index, change) in changes.into_iter().enumerate() {
            if unattested.contains(&index) {
                self.rejected.push(Rejection::new(
                    RejectionCode::Unattested,
                    format!(
                        "change {} of {} carries no signature and no signed change of its author vouches for it",
                        change.hash(),
                        change.document()
                    ),
                ));
            } else {
                self.changes.push(change);
            }
        }
    }

    fn check_part(encoded: &[Vec<u8>]) -> Self {
        let mut out = Self::default();
        for bytes in encoded {
            match SignedChange::decode(bytes) {
                Ok(change) => out.changes.push(change),
                Err(e) => out
                    .rejected
                    .push(Rejection::new(RejectionCode::Undecodable, e.to_string())),
            }
        }
        if SignedChange::verify_signatures(&out.changes).is_err() {
            let (good, bad): (Vec<_>, Vec<_>) = std::mem::take(&mut out.changes)
                .into_iter()
                .map(|change| {
                    let verdict = SignedChange::verify_signatures(std::slice::from_ref(&change))
                        .map_err(|(_, e)| e);
                    (verdict, change)
                })
                .partition(|(verdict, _)| verdict.is_ok());
            out.changes = good.into_iter().map(|(_, change)| change).collect();
            for (verdict, _) in bad {
                if let Err(e) = verdict {
                    out.rejected
                        .push(Rejection::new(RejectionCode::BadSignature, e.to_string()));
                }
            }
        }
        out
    }
}

/// Loads a bundle's document and checks it without rebuilding its changes: the bundle's
/// signed changes verify and are in the document; every other change is attested (in the
/// history of a signed change of its author: [`crate::envelope::unattested_links`], over
/// the document's change graph); each author's changes are numbered 1, 2, 3… (no
/// equivocation). Refuses the whole bundle if the id is not an organisation document's,
/// the document does not load, or any of those checks fails.
pub(super) fn unpack_bundle(bundle: DocumentBundle) -> Result<Whole, Rejection> {
    unpack_bundle_within(bundle, crate::automerge_bounds::MAX_INFLATED_DOCUMENT)
}

/// [`unpack_bundle`], refusing a document that would take more than `limit` bytes once
/// inflated ([`crate::automerge_bounds`]), before loading it.
fn unpack_bundle_within(bundle: DocumentBundle, limit: u64) -> Result<Whole, Rejection> {
    let id = bundle.document;
    let bad = |reason: String| {
        Rejection::new(RejectionCode::BadBundle, format!("document {id}: {reason}"))
    };
    if id.organisation_owner().is_none() && id.network_owner().is_none() {
        return Err(bad(
            "only organisation documents and the network document travel whole".into(),
        ));
    }
    let mut signed = Vec::with_capacity(bundle.signed.len() + bundle.signatures.len());
    for raw in &bundle.signed {
        let change = SignedChange::decode(raw).map_err(|e| bad(e.to_string()))?;
        if !change.is_signed() || change.document() != &id {
            return Err(bad(format!(
                "change {} is not a signed change of this document",
                change.hash()
            )));
        }
        signed.push(change);
    }
    let mut compact = Vec::with_capacity(bundle.signatures.len());
    for entry in &bundle.signatures {
        if entry.len() != COMPACT_SIGNATURE_BYTES {
            return Err(bad(format!(
                "a signature entry is {COMPACT_SIGNATURE_BYTES} bytes (change hash and signature), not {}",
                entry.len()
            )));
        }
        let (hash, signature) = entry.split_at(32);
        let hash = ChangeHash(hash.try_into().expect("32 bytes"));
        let signature: [u8; 64] = signature.try_into().expect("64 bytes");
        compact.push((hash, signature));
    }
    // Signatures that came with their changes are verified before the document is loaded
    // (a forged one costs nothing more); compact ones once it is, with their changes.
    SignedChange::verify_signatures(&signed).map_err(|(_, e)| {
        Rejection::new(
            RejectionCode::BadSignature,
            format!("document {id} received whole: {e}"),
        )
    })?;
    crate::automerge_bounds::check_document(&bundle.automerge, limit)
        .map_err(|e| bad(e.to_string()))?;
    let mut doc = crate::automerge_guard::load_autocommit(&bundle.automerge)
        .map_err(|e| bad(format!("does not load: {e}")))?;
    if !compact.is_empty() {
        let mut joined = Vec::with_capacity(compact.len());
        for (hash, signature) in compact {
            let change = doc
                .get_change_by_hash(&hash)
                .ok_or_else(|| bad(format!("signed change {hash} is not in the document")))?;
            joined.push(
                SignedChange::with_signature(id.clone(), change, signature)
                    .map_err(|e| bad(format!("change {hash}: {e}")))?,
            );
        }
        SignedChange::verify_signatures(&joined).map_err(|(_, e)| {
            Rejection::new(
                RejectionCode::BadSignature,
                format!("document {id} received whole: {e}"),
            )
        })?;
        signed.extend(joined);
    }
    let signed_hashes: HashSet<ChangeHash> = signed.iter().map(SignedChange::hash).collect();
    let metas = doc.get_changes_meta(&[]);
    let mut authors = Vec::with_capacity(metas.len());
    for meta in &metas {
        let author = <[u8; 32]>::try_from(meta.actor.to_bytes())
            .ok()
            .and_then(|bytes| KeyId::from_bytes(bytes).ok())
            .ok_or_else(|| bad(format!("change {} has no valid author key", meta.hash)))?;
        authors.push(author);
    }
    let links: Vec<crate::envelope::ChangeLink<'_>> = metas
        .iter()
        .zip(&authors)
        .map(|(meta, author)| crate::envelope::ChangeLink {
            hash: meta.hash,
            author: *author,
            deps: &meta.deps,
            signed: signed_hashes.contains(&meta.hash),
        })
        .collect();
    let in_document = links.iter().filter(|l| l.signed).count();
    if in_document != signed_hashes.len() || signed_hashes.len() != signed.len() {
        return Err(bad(
            "a signed change is not in the document, or is sent twice".into(),
        ));
    }
    if let Some(&index) = crate::envelope::unattested_links(&links).first() {
        return Err(Rejection::new(
            RejectionCode::Unattested,
            format!(
                "document {id} received whole: change {} carries no signature and no signed change of its author {} vouches for it",
                links[index].hash, links[index].author
            ),
        ));
    }
    let changes: Vec<(KeyId, u64, ChangeHash)> = authors
        .iter()
        .zip(&metas)
        .map(|(author, meta)| (*author, meta.seq, meta.hash))
        .collect();
    drop(links);
    drop(metas);
    let mut numbers: HashMap<KeyId, Vec<u64>> = HashMap::new();
    for (author, seq, _) in &changes {
        numbers.entry(*author).or_default().push(*seq);
    }
    for (author, mut seqs) in numbers {
        seqs.sort_unstable();
        if seqs
            .iter()
            .zip(1u64..)
            .any(|(seq, expected)| *seq != expected)
        {
            return Err(Rejection::new(
                RejectionCode::Equivocation,
                format!(
                    "document {id} received whole: the changes of {author} are not numbered 1, 2, 3…"
                ),
            ));
        }
    }
    Ok(Whole {
        id,
        doc,
        saved: bundle.automerge.into_vec(),
        signed,
        changes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::SigningSecret;
    use automerge::transaction::Transactable;
    use automerge::{ActorId, AutoCommit, ROOT};
    use serde_bytes::ByteBuf;

    fn secret() -> SigningSecret {
        SigningSecret::generate().expect("a key")
    }

    /// Commits one change by `key` to `doc` and returns it.
    fn commit_by(doc: &mut AutoCommit, key: &SigningSecret, field: &str) -> automerge::Change {
        doc.set_actor(ActorId::from(key.org_id().as_bytes()));
        doc.put(ROOT, field, 1).expect("put");
        doc.commit();
        doc.get_last_local_change().expect("a change")
    }

    fn bundle(id: &DocumentId, doc: &mut AutoCommit, signed: &[SignedChange]) -> DocumentBundle {
        DocumentBundle {
            document: id.clone(),
            automerge: ByteBuf::from(doc.save()),
            signed: signed.iter().map(|s| ByteBuf::from(s.encode())).collect(),
            signatures: Vec::new(),
        }
    }

    /// The same bundle, compact: each signed change as its hash and signature.
    fn compact(id: &DocumentId, doc: &mut AutoCommit, signed: &[SignedChange]) -> DocumentBundle {
        DocumentBundle {
            document: id.clone(),
            automerge: ByteBuf::from(doc.save()),
            signed: Vec::new(),
            signatures: signed
                .iter()
                .map(|s| {
                    let mut entry = s.hash().0.to_vec();
                    entry.extend_from_slice(&s.signature().expect("signed").to_bytes());
                    ByteBuf::from(entry)
                })
                .collect(),
        }
    }

    #[test]
    fn a_compact_bundle_carries_signatures_alone_and_is_checked_as_strictly() {
        let owner = secret();
        let id = DocumentId::organisation(&owner.org_id());
        let mut doc = AutoCommit::new();
        commit_by(&mut doc, &owner, "a");
        let latest = commit_by(&mut doc, &owner, "b");
        let signed = SignedChange::sign(id.clone(), latest.clone(), &owner);
        let bundle = compact(&id, &mut doc, std::slice::from_ref(&signed));
        assert_eq!(bundle.signatures[0].len(), COMPACT_SIGNATURE_BYTES);
        assert!(bundle.len() < bundle.automerge.len() + signed.encode().len());
        let taken = unpack_bundle(bundle).expect("taken");
        assert_eq!(taken.changes.len(), 2);
        // What is stored of it is the signed change as it was made.
        assert_eq!(taken.signed.len(), 1);
        assert_eq!(taken.signed[0].encode(), signed.encode());

        // A flipped signature, a hash not in the document, an entry of another length,
        // a signature made for another document: refused whole.
        let mut forged = compact(&id, &mut doc, std::slice::from_ref(&signed));
        let mut entry = forged.signatures[0].to_vec();
        entry[40] ^= 1;
        forged.signatures = vec![ByteBuf::from(entry)];
        assert_eq!(
            code(unpack_bundle(forged)),
            Some(RejectionCode::BadSignature)
        );
        let mut stray = compact(&id, &mut doc, std::slice::from_ref(&signed));
        let mut entry = stray.signatures[0].to_vec();
        entry[0] ^= 1;
        stray.signatures = vec![ByteBuf::from(entry)];
        assert_eq!(code(unpack_bundle(stray)), Some(RejectionCode::BadBundle));
        let mut short = compact(&id, &mut doc, std::slice::from_ref(&signed));
        short.signatures[0] = ByteBuf::from(vec![0; 95]);
        assert_eq!(code(unpack_bundle(short)), Some(RejectionCode::BadBundle));
        let elsewhere =
            SignedChange::sign(DocumentId::organisation(&secret().org_id()), latest, &owner);
        assert_eq!(
            code(unpack_bundle(compact(&id, &mut doc, &[elsewhere]))),
            Some(RejectionCode::BadSignature)
        );
        // Without any signature: unattested.
        assert_eq!(
            code(unpack_bundle(compact(&id, &mut doc, &[]))),
            Some(RejectionCode::Unattested)
        );
    }

    fn code(result: Result<Whole, Rejection>) -> Option<RejectionCode> {
        result.err().map(|rejection| rejection.code)
    }

    #[test]
    fn a_bundle_is_taken_with_one_signature_per_author_and_refused_without() {
        let owner = secret();
        let device = secret();
        let id = DocumentId::organisation(&owner.org_id());
        let mut doc = AutoCommit::new();
        commit_by(&mut doc, &owner, "a");
        commit_by(&mut doc, &owner, "b");
        let owners_latest = commit_by(&mut doc, &owner, "c");
        let signed_owner = SignedChange::sign(id.clone(), owners_latest.clone(), &owner);

        // One author, its latest change signed: every change taken, two of them attested.
        let taken = unpack_bundle(bundle(&id, &mut doc, std::slice::from_ref(&signed_owner)))
            .expect("taken");
        assert_eq!(taken.id, id);
        assert_eq!(taken.changes.len(), 3);
        assert_eq!(
            crate::document::latest_of(taken.changes.iter().copied()),
            vec![signed_owner.hash()]
        );
        // Taken change by change instead, it gives the signed change and two attested.
        let changes = taken.into_changes().expect("its changes");
        assert_eq!(changes.len(), 3);
        assert_eq!(changes.iter().filter(|c| !c.is_signed()).count(), 2);
        assert!(SignedChange::verify_all(&changes).is_ok());
        // The same document without its signature, with a signature of another document,
        // a forged signature, a signed change not in it: refused whole.
        assert_eq!(
            code(unpack_bundle(bundle(&id, &mut doc, &[]))),
            Some(RejectionCode::Unattested)
        );
        let elsewhere = SignedChange::sign(
            DocumentId::organisation(&device.org_id()),
            owners_latest.clone(),
            &owner,
        );
        assert_eq!(
            code(unpack_bundle(bundle(&id, &mut doc, &[elsewhere]))),
            Some(RejectionCode::BadBundle)
        );
        let mut forged = signed_owner.encode();
        let at = forged.len() - owners_latest.raw_bytes().len() - 4 - 10;
        forged[at] ^= 1;
        let mut tampered = bundle(&id, &mut doc, &[]);
        tampered.signed = vec![ByteBuf::from(forged)];
        assert_eq!(
            code(unpack_bundle(tampered)),
            Some(RejectionCode::BadSignature)
        );
        let mut other_doc = AutoCommit::new();
        let stray = SignedChange::sign(id.clone(), commit_by(&mut other_doc, &owner, "z"), &owner);
        assert_eq!(
            code(unpack_bundle(bundle(
                &id,
                &mut doc,
                &[signed_owner.clone(), stray]
            ))),
            Some(RejectionCode::BadBundle)
        );
        let mut garbage = bundle(&id, &mut doc, std::slice::from_ref(&signed_owner));
        garbage.automerge = ByteBuf::from(vec![1, 2, 3]);
        assert_eq!(code(unpack_bundle(garbage)), Some(RejectionCode::BadBundle));

        // A second author: the owner's signature does not vouch for the device's change,
        // nor the device's for the owner's.
        let devices = commit_by(&mut doc, &device, "d");
        let signed_device = SignedChange::sign(id.clone(), devices, &device);
        assert_eq!(
            code(unpack_bundle(bundle(
                &id,
                &mut doc,
                std::slice::from_ref(&signed_owner)
            ))),
            Some(RejectionCode::Unattested)
        );
        assert_eq!(
            code(unpack_bundle(bundle(
                &id,
                &mut doc,
                std::slice::from_ref(&signed_device)
            ))),
            Some(RejectionCode::Unattested)
        );
        let taken = unpack_bundle(bundle(
            &id,
            &mut doc,
            &[signed_owner.clone(), signed_device.clone()],
        ))
        .expect("taken");
        assert_eq!(taken.changes.len(), 4);
        // The same signed change twice is refused.
        assert_eq!(
            code(unpack_bundle(bundle(
                &id,
                &mut doc,
                &[signed_owner.clone(), signed_owner, signed_device]
            ))),
            Some(RejectionCode::BadBundle)
        );
    }

    #[test]
    fn a_bundle_that_would_inflate_past_the_limit_is_refused_before_it_is_loaded() {
        let owner = secret();
        let id = DocumentId::organisation(&owner.org_id());
        let mut doc = AutoCommit::new();
        doc.set_actor(ActorId::from(owner.org_id().as_bytes()));
        doc.put(ROOT, "note", "x".repeat(2_000_000)).expect("put");
        doc.commit();
        let latest = commit_by(&mut doc, &owner, "small");
        let signed = SignedChange::sign(id.clone(), latest, &owner);
        let sent = bundle(&id, &mut doc, std::slice::from_ref(&signed));
        assert!(sent.automerge.len() < 100_000);
        let refused = unpack_bundle_within(sent.clone(), 1_000_000).expect_err("refused");
        assert_eq!(refused.code, RejectionCode::BadBundle);
        assert!(refused.reason.contains("inflated"), "{}", refused.reason);
        assert!(unpack_bundle(sent).is_ok());
    }

    #[test]
    fn an_attested_change_is_taken_only_beside_the_signed_change_that_vouches_for_it() {
        let owner = secret();
        let id = DocumentId::organisation(&owner.org_id());
        let mut doc = AutoCommit::new();
        let first =
            SignedChange::attested(id.clone(), commit_by(&mut doc, &owner, "a")).expect("attested");
        let second = SignedChange::sign(id.clone(), commit_by(&mut doc, &owner, "b"), &owner);
        let alone = VerifiedBatch::check(vec![first.encode()]);
        assert!(alone.changes.is_empty());
        assert_eq!(alone.rejected[0].code, RejectionCode::Unattested);
        let together = VerifiedBatch::check(vec![first.encode(), second.encode()]);
        assert!(together.rejected.is_empty(), "{:?}", together.rejected);
        assert_eq!(together.changes.len(), 2);
        // Signed by someone else, the later change vouches for nothing of the owner's.
        let stranger = secret();
        let mut other = AutoCommit::new();
        commit_by(&mut other, &owner, "a");
        let theirs =
            SignedChange::sign(id.clone(), commit_by(&mut other, &stranger, "x"), &stranger);
        let first_again =
            SignedChange::attested(id, other.get_changes(&[])[0].clone()).expect("attested");
        let batch = VerifiedBatch::check(vec![first_again.encode(), theirs.encode()]);
        assert_eq!(batch.changes.len(), 1);
        assert_eq!(batch.rejected[0].code, RejectionCode::Unattested);
    }
}
