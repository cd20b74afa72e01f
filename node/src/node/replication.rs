//! The documents actor's side of sync: what to offer, what to serve, and how received
//! signed changes are checked, made durable and applied.
//!
//! Rules:
//! - A received change is decoded and its signature verified before anything else. Then
//!   the network document's changes are checked (this network, a well-formed operation, a
//!   key with a part in the network) and applied first, so that the membership is current;
//!   then each organisation-document change is checked against the write rule
//!   ([`crate::membership::Membership::may_write`]). A refused change is never stored,
//!   applied or forwarded; its rejection is counted by code.
//! - A change whose dependencies are not all known waits in a bounded pending set
//!   ([`MAX_PENDING`]); it is stored and applied once they arrive.
//! - A batch is applied in memory, then stored (flushed) in one write, and only then
//!   acknowledged (gossip Accept, catch-up done). If Automerge refuses a batch, its changes
//!   are refused and the document is reloaded from the store; if the store write fails, the
//!   documents are reloaded too: memory never keeps what disk does not hold.
//! - Each key's changes must carry consecutive sequence numbers: a second change with a
//!   number already used (equivocation) is refused on its own.
//! - A document received whole (a bundle) is bounded and verified before it is loaded
//!   into the node ([`unpack_bundle`]); a node that holds nothing of it takes it as it is
//!   and stores it as it came, if the write rule allows every change in it; otherwise its
//!   changes go one by one like any others.

use std::collections::{HashMap, HashSet};

use automerge::ChangeHash;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use tracing::{debug, error, info, warn};

use super::received::{VerifiedBatch, Whole};
use super::{DocumentsActor, NodeError};
use crate::document::{OrganisationDocument, Replica};
use crate::envelope::{
    ATTESTED_MAGIC, COMPACT_SIGNATURE_BYTES, DocumentId, ENVELOPE_MAGIC, SignedChange,
};
use crate::identity::{KeyId, OrgId};
use crate::protocol::{
    DocumentBundle, DocumentHeads, MAX_HEADS_PER_DOCUMENT, SYNC_BATCH_BYTES, SyncRequest,
    SyncResponse,
};
pub(super) use crate::sync::release_in_order;
use crate::sync::{
    Batch, Requester, Serve, admit, in_sequence, may_take_whole, network_refusal, plan_serving,
    serve_after,
};
pub use crate::sync::{MAX_PENDING, Pending, Rejection, RejectionCode};

/// What serving a sync request produced.
#[derive(Debug, Clone)]
pub struct SyncServed {
    /// The response to send.
    pub response: SyncResponse,
    /// The requester listed heads or documents this node lacks: sync back from it.
    pub requester_has_more: bool,
    /// Documents of which this node knew none of the requester's heads and sent nothing:
    /// named when it syncs back ([`crate::sync::serve_after`]).
    pub held_back: Vec<DocumentId>,
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
    pub rejected: Vec<Rejection>,
    /// The membership changed (an admission, revocation, …): worth a catch-up with every
    /// peer, which may now serve or be served more.
    #[serde(default)]
    pub membership_changed: bool,
    /// Documents this node lacked, received whole and taken as they were.
    #[serde(default)]
    pub documents_whole: usize,
}

impl RemoteOutcome {
    fn reject(&mut self, code: RejectionCode, reason: impl Into<String>) {
        let rejection = Rejection::new(code, reason);
        debug!(code = %rejection.code, reason = %rejection.reason, "received change refused");
        self.rejected.push(rejection);
    }
}

/// What a sync request carries, and the admission request to deliver, if any.
#[derive(Debug, Clone, Default)]
pub struct SyncOffer {
    /// Every document held, with its heads.
    pub documents: Vec<DocumentHeads>,
    /// This node's network.
    pub network: Option<String>,
    /// This node's signed admission request (JSON), while it is not a member.
    pub admission_request: Option<Vec<u8>>,
}

/// What to apply to one document: verified changes, or the whole document received.
enum Work {
    Changes(Vec<SignedChange>),
    Whole(Box<Whole>),
}

impl Work {
    /// How many changes: the measure of how long it takes.
    fn len(&self) -> usize {
        match self {
            Work::Changes(changes) => changes.len(),
            Work::Whole(whole) => whole.changes.len(),
        }
    }
}

/// A document, what was applied (the changes, or how many a document taken whole holds),
/// and what applying did.
type Applied = (OrgId, OrganisationDocument, Taken, Result<(), ApplyFailure>);

/// What was taken of a document.
enum Taken {
    Changes(Vec<SignedChange>),
    Whole(usize),
}

impl Taken {
    fn len(&self) -> usize {
        match self {
            Taken::Changes(changes) => changes.len(),
            Taken::Whole(count) => *count,
        }
    }
}

/// Why a document's received changes were not taken.
enum ApplyFailure {
    /// They do not apply (Automerge refuses them, or the record they make breaks a rule).
    Refused(crate::document::DocumentError),
    /// They applied but could not be written to the store.
    Store(crate::store::StoreError),
}

/// Applies each document's verified changes to it (or takes the document received whole)
/// and writes what applied to the store (not flushed: the caller flushes once for all),
/// documents spread over the machine's cores, so that one document's write runs beside
/// another's apply; returns every document with what applying did, those with most changes
/// first (taken first, so that the threads finish close together).
fn apply_in_parallel(
    mut work: Vec<(OrgId, OrganisationDocument, Work)>,
    store: &crate::store::Store,
) -> Vec<Applied> {
    // The largest first: the threads then finish close together.
    work.sort_by_key(|(_, _, what)| std::cmp::Reverse(what.len()));
    crate::parallel::map(work, |(owner, mut document, work)| match work {
        Work::Whole(whole) => {
            let count = whole.changes.len();
            let result = adopt_whole(&mut document, *whole, store);
            (owner, document, Taken::Whole(count), result)
        }
        Work::Changes(ready) => {
            // Received changes may not bring refused characters into the text; a record
            // that already held some (written before this rule) is not held against them.
            let text_was_safe = document.check_text().is_ok();
            let result = document
                .apply_verified(&ready)
                .and_then(|()| match text_was_safe {
                    true => document.check_text(),
                    false => Ok(()),
                })
                .map_err(ApplyFailure::Refused)
                .and_then(|()| store.write_changes(&ready).map_err(ApplyFailure::Store));
            (owner, document, Taken::Changes(ready), result)
        }
    })
}

/// Takes a document received whole in place of the empty one, then stores it as it was
/// received (one value, with its signed changes as records) and as its first snapshot
/// (the same bytes: no save needed).
fn adopt_whole(
    document: &mut OrganisationDocument,
    whole: Whole,
    store: &crate::store::Store,
) -> Result<(), ApplyFailure> {
    document
        .adopt(whole.doc)
        .and_then(|()| document.check_text())
        .map_err(ApplyFailure::Refused)?;
    let count = whole.changes.len() as u64;
    store
        .write_whole(document.id(), &whole.saved, &whole.signed, count)
        .map_err(ApplyFailure::Store)?;
    let latest = crate::document::latest_of(whole.changes.iter().copied());
    let snapshot = document.snapshot_of_saved(whole.saved, count, latest);
    store
        .write_snapshot(document.id(), &snapshot)
        .map_err(ApplyFailure::Store)
}

/// The whole document as a bundle: Automerge's compressed document and each author's
/// latest signed change; from the document's snapshot when it is current (no load, no
/// save), else saved afresh. `None` when it cannot be made (an author's latest change is
/// held attested, not signed; the bundle would not fit one response; or the document
/// would inflate past what a requester takes whole): the changes go one by one instead.
///
/// `compact`: each author's latest change goes as its hash and signature alone (the
/// document holds the change), for requesters that take it.
fn bundle_of(
    document: &mut dyn Replica,
    store: &crate::store::Store,
    compact: bool,
) -> Result<Option<DocumentBundle>, NodeError> {
    bundle_of_within(
        document,
        store,
        crate::automerge_bounds::MAX_INFLATED_DOCUMENT,
        compact,
    )
}

/// [`bundle_of`], for requesters that take whole at most `limit` bytes once inflated.
fn bundle_of_within(
    document: &mut dyn Replica,
    store: &crate::store::Store,
    limit: u64,
    compact: bool,
) -> Result<Option<DocumentBundle>, NodeError> {
    let id = document.replica_id().clone();
    let mut heads = document.heads();
    heads.sort();
    let (latest, automerge) = match store.snapshot_for_bundle(&id, &heads)? {
        Some(part) => (part.latest, part.document),
        None => (
            crate::document::latest_by_author(document.automerge()),
            document.automerge().save(),
        ),
    };
    // A document the requester would refuse as too large once inflated goes change by
    // change instead.
    if crate::automerge_bounds::check_document(&automerge, limit).is_err() {
        return Ok(None);
    }
    let mut signed = Vec::new();
    let mut signatures = Vec::new();
    let mut bytes = automerge.len();
    for hash in latest {
        let raw = store.raw_change(&id, &hash)?;
        let Some(raw) = raw.filter(|raw| raw.starts_with(ENVELOPE_MAGIC)) else {
            return Ok(None);
        };
        if compact {
            let Some(signature) = SignedChange::encoded_signature(&raw) else {
                return Ok(None);
            };
            let mut entry = Vec::with_capacity(COMPACT_SIGNATURE_BYTES);
            entry.extend_from_slice(&hash.0);
            entry.extend_from_slice(&signature);
            bytes += entry.len();
            signatures.push(ByteBuf::from(entry));
        } else {
            bytes += raw.len();
            signed.push(ByteBuf::from(raw));
        }
    }
    if bytes > SYNC_BATCH_BYTES {
        return Ok(None);
    }
    Ok(Some(DocumentBundle {
        document: id,
        automerge: ByteBuf::from(automerge),
        signed,
        signatures,
    }))
}

/// From how many lacked changes the network document may go as a bundle (to a requester
/// that takes compact bundles, when the bundle is the smaller): a joiner's first round.
const NETWORK_BUNDLE_FROM: usize = 64;

/// The changes `hashes` of `document` (those after `after`), encoded as stored; a change
/// held only in a document received whole is encoded attested, from the document.
fn encoded_changes(
    document: &mut dyn Replica,
    store: &crate::store::Store,
    hashes: &[ChangeHash],
    after: &[ChangeHash],
) -> Result<Vec<Vec<u8>>, NodeError> {
    let id = document.replica_id().clone();
    let mut out: Vec<Option<Vec<u8>>> = Vec::with_capacity(hashes.len());
    for hash in hashes {
        out.push(store.raw_change(&id, hash)?);
    }
    if out.iter().any(Option::is_none) {
        let mut held: HashMap<ChangeHash, automerge::Change> = document
            .automerge()
            .get_changes(after)
            .into_iter()
            .map(|change| (change.hash(), change))
            .collect();
        for (slot, hash) in out.iter_mut().zip(hashes) {
            if slot.is_none() {
                *slot = held
                    .remove(hash)
                    .and_then(|change| SignedChange::attested(id.clone(), change).ok())
                    .map(|change| change.encode());
                if slot.is_none() {
                    warn!(document = %id, change = %hash, "change held in memory but not in the store");
                }
            }
        }
    }
    Ok(out.into_iter().flatten().collect())
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
    /// True if `key` is a member organisation's key or an active device of one.
    pub(super) fn is_member_key(&self, key: &KeyId) -> bool {
        self.membership()
            .is_some_and(|m| m.acting_member(key).is_some())
    }

    /// The organisations whose documents are served to members: members and former members.
    fn servable(&self, owner: &OrgId) -> bool {
        self.membership()
            .is_some_and(|m| m.members.contains_key(owner) || m.revoked.contains_key(owner))
    }

    /// Every signed change of a document, encoded, in causal order.
    pub(super) fn handle_export(&mut self, id: &DocumentId) -> Result<Vec<Vec<u8>>, NodeError> {
        let missing = || {
            NodeError::not_found(
                format!("no document {id} on this node"),
                format!("aucun document {id} sur ce nœud"),
            )
        };
        let document: &mut dyn Replica = match id.organisation_owner() {
            Some(owner) => self.documents.get_mut(&owner).ok_or_else(missing)?,
            None => match self.network.as_mut() {
                Some(network) if network.id() == id => network,
                _ => return Err(missing()),
            },
        };
        let hashes = document.changes_after(&[]);
        encoded_changes(document, &self.store, &hashes, &[])
    }

    /// Every document held, with its heads; and this node's admission request while it is
    /// not yet a member.
    pub(super) fn handle_sync_offer(&mut self) -> SyncOffer {
        let mut documents = Vec::new();
        if let Some(network) = &mut self.network {
            documents.push(DocumentHeads {
                document: network.id().clone(),
                heads: heads_bytes(&network.heads()),
            });
        }
        documents.extend(self.documents.values_mut().map(|d| DocumentHeads {
            document: d.id().clone(),
            heads: heads_bytes(&d.heads()),
        }));
        let admission_request = if self.is_member_key(&self.identity.key_id()) {
            None
        } else {
            self.store.own_request().ok().flatten()
        };
        SyncOffer {
            documents,
            network: self.network.as_ref().map(|n| n.network().to_string()),
            admission_request,
        }
    }

    /// The signed changes the requester lacks, up to [`SYNC_BATCH_BYTES`]: what to serve is
    /// decided by [`crate::sync::plan_serving`] (a requester that is not a member is
    /// served the network document only), and packed by [`crate::sync::Batch`].
    pub(super) fn handle_sync_serve(
        &mut self,
        request: SyncRequest,
        from: KeyId,
    ) -> Result<SyncServed, NodeError> {
        let our_network = self.network.as_ref().map(|n| n.network().to_string());
        let listed: HashMap<DocumentId, Vec<ChangeHash>> = request
            .documents
            .iter()
            .map(|d| (d.document.clone(), parse_heads(&d.heads)))
            .collect();
        let mut held = Vec::new();
        if let Some(network) = self.network.as_mut() {
            held.push((network.id().clone(), network.heads()));
        }
        for document in self.documents.values_mut() {
            held.push((document.id().clone(), document.heads()));
        }
        let servable = |owner: &OrgId| self.servable(owner);
        let requester = Requester {
            member: self.is_member_key(&from),
            servable: &servable,
        };
        let plan = plan_serving(
            request.network.as_deref(),
            our_network.as_deref(),
            &requester,
            held,
            &listed,
        );
        if request.network.is_some() && request.network != our_network {
            debug!(network = ?request.network, "sync request for another network: nothing served");
        }
        let mut requester_has_more = plan.requester_has_more;
        let mut held_back = Vec::new();
        let asked_anyway: HashSet<&DocumentId> = request.held_back.iter().collect();
        let mut changes = Vec::new();
        let mut documents = Vec::new();
        let mut batch = Batch::new(SYNC_BATCH_BYTES);
        let mut more = false;
        'documents: for (id, serve) in plan.documents {
            let document: &mut dyn Replica = match id.organisation_owner() {
                Some(owner) => match self.documents.get_mut(&owner) {
                    Some(document) => document,
                    None => continue,
                },
                None => match self.network.as_mut() {
                    Some(network) => network,
                    None => continue,
                },
            };
            let their_heads = match serve {
                Serve::InStep => continue,
                Serve::Whole => match bundle_of(document, &self.store, request.compact)? {
                    Some(bundle) => {
                        if !batch.take(bundle.len()) {
                            more = true;
                            break 'documents;
                        }
                        documents.push(bundle);
                        continue;
                    }
                    // Too large to go whole: its changes go one by one.
                    None => Vec::new(),
                },
                Serve::Changes { their_heads } => their_heads,
            };
            let known: Vec<ChangeHash> = their_heads
                .iter()
                .filter(|h| document.has_change(h))
                .copied()
                .collect();
            if known.len() < their_heads.len() {
                requester_has_more = true;
            }
            let Some(known) = serve_after(&their_heads, known, asked_anyway.contains(&id)) else {
                held_back.push(id);
                continue;
            };
            let hashes = document.changes_after(&known);
            let raws = encoded_changes(document, &self.store, &hashes, &known)?;
            // The network document to a requester that lacks much of it: whole and
            // compressed (taken there change by change, each checked), when smaller than
            // its changes one by one.
            if request.compact
                && id.network_owner().is_some()
                && hashes.len() >= NETWORK_BUNDLE_FROM
                && let Some(bundle) = bundle_of(document, &self.store, true)?
                && bundle.len() < raws.iter().map(Vec::len).sum::<usize>()
            {
                if !batch.take(bundle.len()) {
                    more = true;
                    break 'documents;
                }
                documents.push(bundle);
                continue;
            }
            // Attested changes (held without a signature of their own) travel in the
            // same response as the signed change that vouches for them: such a
            // document's changes go together or not at all.
            if raws.iter().any(|raw| raw.starts_with(ATTESTED_MAGIC)) {
                if !batch.take(raws.iter().map(Vec::len).sum()) {
                    more = true;
                    break 'documents;
                }
                changes.extend(raws.into_iter().map(ByteBuf::from));
                continue;
            }
            for raw in raws {
                if !batch.take(raw.len()) {
                    more = true;
                    break 'documents;
                }
                changes.push(ByteBuf::from(raw));
            }
        }
        Ok(SyncServed {
            response: SyncResponse {
                changes,
                more,
                documents,
            },
            requester_has_more,
            held_back,
        })
    }

    /// Checks, stores and applies received encoded signed changes. `from` is the key of
    /// the peer that sent them (None for local callers): organisation-document changes
    /// from a peer that is not a member are refused.
    pub(super) fn handle_apply_remote(
        &mut self,
        batch: VerifiedBatch,
        from: Option<KeyId>,
        live: bool,
    ) -> Result<RemoteOutcome, NodeError> {
        let mut outcome = RemoteOutcome::default();
        for rejection in batch.rejected {
            outcome.reject(rejection.code, rejection.reason);
        }
        // A document received whole is taken whole only if this node holds nothing of it
        // (nor waits with any of its changes) and no change of it arrives beside it;
        // otherwise its changes go the usual way, one by one.
        let mut changes = batch.changes;
        let beside: HashSet<DocumentId> = changes.iter().map(|c| c.document().clone()).collect();
        let mut whole_documents: Vec<Whole> = Vec::new();
        for whole in batch.whole {
            if whole_documents.iter().any(|w| w.id == whole.id) {
                // The same document twice in one response: the second adds nothing.
                outcome.duplicates += whole.changes.len();
                continue;
            }
            let lacked = whole
                .id
                .organisation_owner()
                .is_some_and(|owner| !self.documents.contains_key(&owner))
                && !self.pending.holds_document(&whole.id)
                && !beside.contains(&whole.id);
            if lacked {
                whole_documents.push(whole);
            } else {
                match whole.into_changes() {
                    Ok(its) => changes.extend(its),
                    Err(rejection) => outcome.reject(rejection.code, rejection.reason),
                }
            }
        }
        let mut network_fresh: Vec<SignedChange> = Vec::new();
        let mut fresh: HashMap<DocumentId, Vec<SignedChange>> = HashMap::new();
        let mut seen = HashSet::new();
        for change in changes {
            let id = change.document().clone();
            if !seen.insert((id.clone(), change.hash()))
                || self.pending.contains(&id, &change.hash())
            {
                outcome.duplicates += 1;
                continue;
            }
            if id.network_owner().is_some() {
                match self.network.as_mut() {
                    None => outcome.reject(
                        RejectionCode::NoNetwork,
                        format!(
                            "change {} of {id}: this node is in no network",
                            change.hash()
                        ),
                    ),
                    Some(network) if network.id() != &id => outcome.reject(
                        RejectionCode::OtherNetwork,
                        format!(
                            "change {} belongs to {id}, not to this node's network",
                            change.hash()
                        ),
                    ),
                    Some(network) => {
                        if network.has_change(&change.hash()) {
                            outcome.duplicates += 1;
                        } else {
                            network_fresh.push(change);
                        }
                    }
                }
            } else if let Some(owner) = id.organisation_owner() {
                if self
                    .documents
                    .get_mut(&owner)
                    .is_some_and(|d| d.has_change(&change.hash()))
                {
                    outcome.duplicates += 1;
                } else {
                    fresh.entry(id).or_default().push(change);
                }
            } else {
                outcome.reject(
                    RejectionCode::UnknownDocument,
                    format!("unknown document kind {id}"),
                );
            }
        }
        if !network_fresh.is_empty() {
            self.receive_network_changes(network_fresh, &mut outcome)?;
        }
        // With the membership current: a document received whole whose every change its
        // author may write is taken whole; any other goes change by change, so that each
        // refused change is refused on its own.
        let sender_is_member = from.is_none_or(|key| self.is_member_key(&key));
        let mut take_whole = Vec::new();
        for whole in whole_documents {
            let changes = whole.changes.iter().map(|(author, seq, _)| (*author, *seq));
            if may_take_whole(&whole.id, changes, sender_is_member, self.membership()) {
                take_whole.push(whole);
            } else {
                let id = whole.id.clone();
                match whole.into_changes() {
                    Ok(its) => fresh.entry(id).or_default().extend(its),
                    Err(rejection) => outcome.reject(rejection.code, rejection.reason),
                }
            }
        }
        if !fresh.is_empty() || !take_whole.is_empty() {
            // Published live: what each document held of referral moves before, so that
            // what it holds more after is what arrived now. (A catch-up batch is only
            // looked at for moves dated ahead, which needs no before.)
            let owners: HashSet<OrgId> = fresh
                .keys()
                .filter_map(DocumentId::organisation_owner)
                .chain(take_whole.iter().filter_map(|w| w.id.organisation_owner()))
                .filter(|owner| *owner != self.own)
                .collect();
            let before: HashMap<OrgId, _> = if live {
                owners
                    .iter()
                    .filter_map(|owner| {
                        let record = self.documents.get(owner)?.record()?;
                        Some((*owner, crate::referral::board::move_counts(record)))
                    })
                    .collect()
            } else {
                HashMap::new()
            };
            self.receive_organisation_changes(fresh, take_whole, from, &mut outcome)?;
            self.note_arrivals(&owners, &before, live);
        }
        self.rejected_changes += outcome.rejected.len() as u64;
        self.documents_received_whole += outcome.documents_whole as u64;
        for rejection in &outcome.rejected {
            *self
                .rejected_by_code
                .entry(rejection.code.to_string())
                .or_default() += 1;
        }
        Ok(outcome)
    }

    /// Records the referral moves that just arrived dated ahead of their arrival, or (when
    /// published live) long after their date.
    fn note_arrivals(
        &self,
        owners: &HashSet<OrgId>,
        before: &HashMap<OrgId, std::collections::BTreeMap<(String, bool), usize>>,
        live: bool,
    ) {
        use crate::referral::board::{Arrival, CLOCK_SKEW, moves_dated_after, moves_since};
        let arrival = Arrival {
            arrived: crate::unix_now(),
            live,
        };
        let empty = std::collections::BTreeMap::new();
        for owner in owners {
            let Some(record) = self.documents.get(owner).and_then(|d| d.record()) else {
                continue;
            };
            let arrived = if live {
                moves_since(record, before.get(owner).unwrap_or(&empty))
            } else {
                moves_dated_after(record, arrival.arrived + CLOCK_SKEW)
            };
            for (referral, place, at) in arrived {
                if let Some(note) = arrival.note(at) {
                    // A move dated ahead is seen again in later catch-ups: said once.
                    match self.store.record_arrival(&referral, place, &arrival) {
                        Ok(true) => {
                            warn!(%referral, ?place, %note, "a referral move arrived out of time")
                        }
                        Ok(false) => {}
                        Err(e) => warn!(error = %e, "could not record a move's arrival"),
                    }
                }
            }
        }
    }

    fn receive_network_changes(
        &mut self,
        fresh: Vec<SignedChange>,
        outcome: &mut RemoteOutcome,
    ) -> Result<(), NodeError> {
        let Some(network) = self.network.as_mut() else {
            return Ok(());
        };
        let id = network.id().clone();
        let mut changes = fresh;
        changes.extend(self.pending.take(&id));
        let (ready, waiting) = release_in_order(changes, |h| network.has_change(h));
        for change in waiting {
            if self.pending.insert(change) {
                outcome.pending += 1;
            }
        }
        let before = network.membership().map(|m| m.write_rules_digest());
        let mut refused: HashSet<ChangeHash> = HashSet::new();
        let mut accepted = Vec::new();
        for change in ready {
            if change.change().deps().iter().any(|d| refused.contains(d)) {
                refused.insert(change.hash());
                outcome.reject(
                    RejectionCode::DependsOnRefused,
                    format!("change {} depends on a refused change", change.hash()),
                );
                continue;
            }
            let checked = network
                .check(&change)
                .and_then(|()| network.apply_unfolded(&change));
            match checked {
                Ok(()) => accepted.push(change),
                Err(e) => {
                    refused.insert(change.hash());
                    outcome.rejected.push(network_refusal(&e));
                }
            }
        }
        network.refold();
        if accepted.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.store.put_changes(&accepted) {
            error!(error = %e, "could not store network changes; reloading the network document");
            self.reload_network();
            return Err(e.into());
        }
        outcome.applied += accepted.len();
        let after = self.membership().map(|m| m.write_rules_digest());
        if before != after {
            outcome.membership_changed = true;
            info!(operations = accepted.len(), "membership changed");
            self.enforce_write_rules();
        }
        Ok(())
    }

    fn receive_organisation_changes(
        &mut self,
        fresh: HashMap<DocumentId, Vec<SignedChange>>,
        take_whole: Vec<Whole>,
        from: Option<KeyId>,
        outcome: &mut RemoteOutcome,
    ) -> Result<(), NodeError> {
        let sender_is_member = from.is_none_or(|key| self.is_member_key(&key));
        let mut releasable: Vec<(OrgId, Work)> = Vec::new();
        for whole in take_whole {
            if let Some(owner) = whole.id.organisation_owner() {
                self.documents
                    .entry(owner)
                    .or_insert_with(|| OrganisationDocument::empty(owner));
                releasable.push((owner, Work::Whole(Box::new(whole))));
            }
        }
        for (id, changes) in fresh {
            let Some(owner) = id.organisation_owner() else {
                continue;
            };
            // The write rule ([`crate::sync::admit`]).
            let (allowed, refused) =
                admit(&id, &owner, changes, sender_is_member, self.membership());
            for rejection in refused {
                debug!(code = %rejection.code, reason = %rejection.reason, "received change refused");
                outcome.rejected.push(rejection);
            }
            if allowed.is_empty() {
                continue;
            }
            let mut changes = allowed;
            changes.extend(self.pending.take(&id));
            let document = self
                .documents
                .entry(owner)
                .or_insert_with(|| OrganisationDocument::empty(owner));
            let (ordered, waiting) = release_in_order(changes, |h| document.has_change(h));
            // Each key's changes must follow one another ([`crate::sync::in_sequence`]).
            let (ready, refused) = in_sequence(&id, ordered, |author| document.latest_seq(author));
            for rejection in refused {
                debug!(code = %rejection.code, reason = %rejection.reason, "received change refused");
                outcome.rejected.push(rejection);
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
            releasable.push((owner, Work::Changes(ready)));
        }
        // Apply document by document (a batch Automerge refuses is refused whole and the
        // document reloaded from the store); each document's applied changes are written
        // to the store as soon as they are checked, then one flush makes them all durable
        // before anything is acknowledged or forwarded. Documents are independent: when a
        // batch touches several, they are applied, re-read and written on every core.
        let mut work = Vec::with_capacity(releasable.len());
        for (owner, what) in releasable {
            let document = self.documents.remove(&owner).ok_or_else(|| {
                NodeError::not_found(
                    format!("document of {owner}"),
                    format!("document de {owner}"),
                )
            })?;
            work.push((owner, document, what));
        }
        let results = apply_in_parallel(work, &self.store);
        let mut applied: Vec<(OrgId, Taken)> = Vec::new();
        let mut store_failure = None;
        for (owner, document, taken, result) in results {
            self.documents.insert(owner, document);
            match result {
                Ok(()) => applied.push((owner, taken)),
                Err(ApplyFailure::Store(e)) => {
                    store_failure = Some(e);
                    applied.push((owner, taken));
                }
                Err(ApplyFailure::Refused(e)) => {
                    // A change that breaks the referral rules (a forged or illegal move) is
                    // told apart from one Automerge cannot apply.
                    let code = match &e {
                        crate::document::DocumentError::IllegalReferral { .. } => {
                            RejectionCode::IllegalReferral
                        }
                        crate::document::DocumentError::UnsafeText { .. } => {
                            RejectionCode::UnsafeText
                        }
                        _ => RejectionCode::DoesNotApply,
                    };
                    match &taken {
                        Taken::Changes(ready) => {
                            for change in ready {
                                outcome.reject(
                                    code,
                                    format!("change {} does not apply: {e}", change.hash()),
                                );
                            }
                        }
                        Taken::Whole(count) => outcome.reject(
                            code,
                            format!(
                                "document {} received whole ({count} changes) does not apply: {e}",
                                DocumentId::organisation(&owner)
                            ),
                        ),
                    }
                    self.reload(owner);
                }
            }
        }
        if applied.is_empty() {
            return Ok(());
        }
        let stored = match store_failure {
            Some(e) => Err(e),
            None => self.store.flush(),
        };
        if let Err(e) = stored {
            error!(error = %e, "could not store received changes; reloading the documents from the store");
            for (owner, _) in &applied {
                self.reload(*owner);
            }
            return Err(e.into());
        }
        for (owner, taken) in applied {
            let count = taken.len();
            *self.change_counts.entry(owner).or_default() += count;
            match taken {
                // A document taken whole has its snapshot already.
                Taken::Whole(_) => outcome.documents_whole += 1,
                Taken::Changes(_) => {
                    *self.since_snapshot.entry(owner).or_default() += count as u64;
                }
            }
            outcome.applied += count;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::SigningSecret;

    fn secret() -> SigningSecret {
        SigningSecret::generate().expect("a key")
    }

    #[test]
    fn a_document_a_requester_would_refuse_as_too_large_is_not_bundled() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let store = crate::store::Store::create(dir.path()).expect("store");
        let owner = secret();
        let profile = crate::model::Profile {
            legal_status: Some(crate::model::LegalStatus::Ngo),
            ..crate::model::Profile::named("Centre Espoir")
        };
        let (mut document, genesis) =
            OrganisationDocument::create(&owner, profile, 10).expect("document");
        store.put_changes(&[genesis]).expect("stored");
        let size = crate::automerge_bounds::check_document(
            &document.save(),
            crate::automerge_bounds::MAX_INFLATED_DOCUMENT,
        )
        .expect("a small document");
        let bundled = bundle_of_within(&mut document, &store, size, false).expect("bundle");
        assert!(bundled.is_some_and(|b| b.signed.len() == 1 && b.signatures.is_empty()));
        let too_large = bundle_of_within(&mut document, &store, size - 1, false).expect("bundle");
        assert!(too_large.is_none());
        // Compact: the latest change's hash and signature alone, which verify once joined
        // to the change the document holds.
        let compact = bundle_of_within(&mut document, &store, size, true)
            .expect("bundle")
            .expect("bundled");
        assert!(compact.signed.is_empty());
        assert_eq!(compact.signatures.len(), 1);
        assert_eq!(compact.signatures[0].len(), COMPACT_SIGNATURE_BYTES);
        let taken = super::super::received::unpack_bundle(compact).expect("taken");
        assert_eq!(taken.signed.len(), 1);
    }
}
