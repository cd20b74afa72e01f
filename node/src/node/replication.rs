//! The documents actor's side of sync: what to offer, what to serve, and how received
//! signed changes are checked, made durable and applied.
//!
//! Rules:
//! - A received change is decoded, its signature verified, and its author checked against
//!   the document's owner (an organisation's document is written only by that organisation)
//!   before anything else. A refused change is never stored, applied or forwarded.
//! - A change whose dependencies are not all known waits in a bounded pending set
//!   ([`MAX_PENDING`]); it is stored and applied once they arrive.
//! - Changes are stored (flushed) before they are applied.

use std::collections::{HashMap, HashSet};

use automerge::ChangeHash;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use tracing::{debug, warn};

use super::{DocumentsActor, NodeError};
use crate::document::OrganisationDocument;
use crate::envelope::{DocumentId, SignedChange};
use crate::identity::OrgId;
use crate::network::protocol::{
    DocumentHeads, MAX_HEADS_PER_DOCUMENT, SYNC_BATCH_BYTES, SyncRequest, SyncResponse,
};

/// Most received changes waiting for their dependencies, over all documents.
pub const MAX_PENDING: usize = 10_000;

/// What serving a sync request produced.
#[derive(Debug, Clone)]
pub struct SyncServed {
    /// The response to send.
    pub response: SyncResponse,
    /// The requester listed heads or documents this node lacks: sync back from it.
    pub requester_has_more: bool,
}

/// What applying received changes did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteOutcome {
    /// Changes stored and applied now (including pending ones they released).
    pub applied: usize,
    /// Changes already held.
    pub duplicates: usize,
    /// Changes now waiting for dependencies.
    pub pending: usize,
    /// Why each refused change was refused.
    pub rejected: Vec<String>,
}

/// Pending changes, by document.
#[derive(Debug, Default)]
pub struct Pending {
    by_document: HashMap<DocumentId, HashMap<ChangeHash, SignedChange>>,
    len: usize,
}

impl Pending {
    /// Changes waiting, over all documents.
    pub fn len(&self) -> usize {
        self.len
    }

    fn contains(&self, document: &DocumentId, hash: &ChangeHash) -> bool {
        self.by_document
            .get(document)
            .is_some_and(|m| m.contains_key(hash))
    }

    fn insert(&mut self, change: SignedChange) -> bool {
        if self.len >= MAX_PENDING {
            return false;
        }
        let inserted = self
            .by_document
            .entry(change.document().clone())
            .or_default()
            .insert(change.hash(), change)
            .is_none();
        if inserted {
            self.len += 1;
        }
        true
    }

    fn take(&mut self, document: &DocumentId) -> Vec<SignedChange> {
        let taken: Vec<_> = self
            .by_document
            .remove(document)
            .map(|m| m.into_values().collect())
            .unwrap_or_default();
        self.len -= taken.len();
        taken
    }
}

/// Checks a received change: signature, and the one-writer rule of organisation documents.
pub fn check_received(change: &SignedChange) -> Result<OrgId, String> {
    change.verify().map_err(|e| e.to_string())?;
    let owner = change
        .document()
        .organisation_owner()
        .ok_or_else(|| format!("unknown document kind {}", change.document()))?;
    if change.author() != owner {
        return Err(format!(
            "{} may not write {}: only its owner does",
            change.author(),
            change.document()
        ));
    }
    Ok(owner)
}

fn heads_bytes(heads: &[ChangeHash]) -> Vec<ByteBuf> {
    heads.iter().map(|h| ByteBuf::from(h.0.to_vec())).collect()
}

fn parse_heads(heads: &[ByteBuf]) -> Vec<ChangeHash> {
    heads
        .iter()
        .take(MAX_HEADS_PER_DOCUMENT)
        .filter_map(|h| <[u8; 32]>::try_from(h.as_slice()).ok().map(ChangeHash))
        .collect()
}

impl DocumentsActor {
    /// Every document held, with its heads.
    pub(super) fn handle_sync_offer(&mut self) -> Vec<DocumentHeads> {
        self.documents
            .values_mut()
            .map(|d| DocumentHeads {
                document: d.id().clone(),
                heads: heads_bytes(&d.heads()),
            })
            .collect()
    }

    /// The signed changes the requester lacks, up to [`SYNC_BATCH_BYTES`].
    pub(super) fn handle_sync_serve(
        &mut self,
        request: SyncRequest,
    ) -> Result<SyncServed, NodeError> {
        let theirs: HashMap<DocumentId, Vec<ChangeHash>> = request
            .documents
            .iter()
            .map(|d| (d.document.clone(), parse_heads(&d.heads)))
            .collect();
        let mut requester_has_more = theirs.keys().any(|id| {
            id.organisation_owner()
                .is_some_and(|owner| !self.documents.contains_key(&owner))
        });
        let mut changes = Vec::new();
        let mut bytes = 0usize;
        let mut more = false;
        'documents: for document in self.documents.values_mut() {
            let their_heads = theirs.get(document.id()).cloned().unwrap_or_default();
            let mut ours = document.heads();
            ours.sort();
            let mut sorted = their_heads.clone();
            sorted.sort();
            if ours == sorted {
                continue;
            }
            let known: Vec<ChangeHash> = their_heads
                .iter()
                .filter(|h| document.has_change(h))
                .copied()
                .collect();
            if known.len() < their_heads.len() {
                requester_has_more = true;
            }
            for hash in document.changes_after(&known) {
                let Some(raw) = self.store.raw_change(document.id(), &hash)? else {
                    warn!(document = %document.id(), change = %hash, "change held in memory but not in the store");
                    continue;
                };
                if bytes + raw.len() > SYNC_BATCH_BYTES && !changes.is_empty() {
                    more = true;
                    break 'documents;
                }
                bytes += raw.len();
                changes.push(ByteBuf::from(raw));
            }
        }
        Ok(SyncServed {
            response: SyncResponse { changes, more },
            requester_has_more,
        })
    }

    /// Checks, stores and applies received encoded signed changes.
    pub(super) fn handle_apply_remote(
        &mut self,
        encoded: Vec<Vec<u8>>,
    ) -> Result<RemoteOutcome, NodeError> {
        let mut outcome = RemoteOutcome::default();
        let mut fresh: HashMap<DocumentId, Vec<SignedChange>> = HashMap::new();
        let mut seen = HashSet::new();
        for bytes in encoded {
            let change = match SignedChange::decode(&bytes) {
                Ok(change) => change,
                Err(e) => {
                    outcome.rejected.push(e.to_string());
                    continue;
                }
            };
            let owner = match check_received(&change) {
                Ok(owner) => owner,
                Err(reason) => {
                    outcome.rejected.push(reason);
                    continue;
                }
            };
            let held = self
                .documents
                .get_mut(&owner)
                .is_some_and(|d| d.has_change(&change.hash()))
                || self.pending.contains(change.document(), &change.hash());
            if held || !seen.insert(change.hash()) {
                outcome.duplicates += 1;
                continue;
            }
            fresh
                .entry(change.document().clone())
                .or_default()
                .push(change);
        }
        self.rejected_changes += outcome.rejected.len() as u64;
        let mut releasable: Vec<(OrgId, Vec<SignedChange>)> = Vec::new();
        for (id, mut changes) in fresh {
            changes.extend(self.pending.take(&id));
            let Some(owner) = id.organisation_owner() else {
                continue;
            };
            let document = self
                .documents
                .entry(owner)
                .or_insert_with(|| OrganisationDocument::empty(owner));
            // Release, in causal order, every change whose dependencies are all known.
            let mut known: HashSet<ChangeHash> = HashSet::new();
            let mut ready = Vec::new();
            let mut waiting = changes;
            loop {
                let before = waiting.len();
                let mut still = Vec::new();
                for change in waiting {
                    let deps_known = change
                        .change()
                        .deps()
                        .iter()
                        .all(|d| known.contains(d) || document.has_change(d));
                    if deps_known {
                        known.insert(change.hash());
                        ready.push(change);
                    } else {
                        still.push(change);
                    }
                }
                waiting = still;
                if waiting.len() == before || waiting.is_empty() {
                    break;
                }
            }
            for change in waiting {
                if self.pending.insert(change) {
                    outcome.pending += 1;
                } else {
                    debug!(document = %id, "pending set full; a change is dropped until catch-up resends it");
                }
            }
            if ready.is_empty() {
                if document.record().is_none() && document.heads().is_empty() {
                    self.documents.remove(&owner);
                }
                continue;
            }
            releasable.push((owner, ready));
        }
        // One durable write for the whole batch, then apply document by document.
        let all: Vec<SignedChange> = releasable
            .iter()
            .flat_map(|(_, ready)| ready.iter().cloned())
            .collect();
        self.store.put_changes(&all)?;
        for (owner, ready) in releasable {
            let document = self
                .documents
                .get_mut(&owner)
                .ok_or_else(|| NodeError::NotFound(format!("document of {owner}")))?;
            document.apply_verified(&ready)?;
            *self.change_counts.entry(owner).or_default() += ready.len();
            *self.since_snapshot.entry(owner).or_default() += ready.len() as u64;
            outcome.applied += ready.len();
        }
        Ok(outcome)
    }
}
