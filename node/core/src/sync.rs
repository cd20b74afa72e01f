//! The sync decisions, as pure functions of what each side holds: what a catch-up request
//! is served (which documents, whole or as changes, in batches of bounded size), and the
//! bookkeeping of what is accepted (rejection codes, changes waiting for their
//! dependencies, the order they are released in). In the manner of iroh-gossip's `proto`:
//! no store, no clock, no network; the documents actor gathers the state, asks here what
//! to do, and does it.
//!
//! Rules:
//! - A request naming another network is served nothing.
//! - A requester that is not a key acting for a member is served the network document
//!   only; a member is served the documents of members and former members (what a former
//!   member wrote stays readable).
//! - A document in step (the same heads, in any order) is skipped; an organisation
//!   document the requester does not list goes whole; the others as the changes after the
//!   heads the requester lists and this node knows.
//! - A response holds at most a batch of bytes ([`Batch`]); its first part always goes,
//!   however large, so that every request makes progress; a part that does not fit ends
//!   the response (`more`); some parts go together or not at all.

use std::collections::{HashMap, HashSet};

use automerge::ChangeHash;
use serde::{Deserialize, Serialize};

use crate::envelope::{DocumentId, SignedChange};
use crate::identity::{KeyId, OrgId};
use crate::membership::{Membership, NetworkDocumentError, WriteRefusal};

/// Most received changes waiting for their dependencies, over all documents.
pub const MAX_PENDING: usize = 10_000;

/// How one document held here is served to a requester.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Serve {
    /// The requester holds what this node holds: nothing to send.
    InStep,
    /// The requester lacks this organisation document entirely: it goes whole.
    Whole,
    /// The changes after the requester's heads (those this node knows).
    Changes {
        /// The heads the requester listed.
        their_heads: Vec<ChangeHash>,
    },
}

/// What a catch-up request is served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServingPlan {
    /// The documents to serve, in the order given, and how.
    pub documents: Vec<(DocumentId, Serve)>,
    /// The requester lists a document this node may hold and lacks: catch up from it.
    pub requester_has_more: bool,
}

/// Who asks, as this node's membership sees it.
pub struct Requester<'a> {
    /// The requester's key acts for a member.
    pub member: bool,
    /// Whether an organisation's document is served to members (members and former
    /// members).
    pub servable: &'a dyn Fn(&OrgId) -> bool,
}

impl std::fmt::Debug for Requester<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Requester")
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}

/// Decides what a catch-up request is served. `ours` is this node's network; `held` every
/// document held here with its heads (the network document first, then the
/// organisations'), in the order they are to be served; `listed` what the request lists.
pub fn plan_serving(
    asked_network: Option<&str>,
    ours: Option<&str>,
    requester: &Requester<'_>,
    held: Vec<(DocumentId, Vec<ChangeHash>)>,
    listed: &HashMap<DocumentId, Vec<ChangeHash>>,
) -> ServingPlan {
    if asked_network.is_some() && asked_network != ours {
        return ServingPlan::default();
    }
    let held_ids: HashSet<&DocumentId> = held.iter().map(|(id, _)| id).collect();
    let requester_has_more = requester.member
        && listed.keys().any(|id| {
            id.organisation_owner()
                .is_some_and(|owner| !held_ids.contains(id) && (requester.servable)(&owner))
        });
    let documents = held
        .into_iter()
        .filter(|(id, _)| match id.organisation_owner() {
            Some(owner) => requester.member && (requester.servable)(&owner),
            None => true,
        })
        .filter_map(|(id, ours)| {
            let serve = match listed.get(&id) {
                Some(theirs) if in_step(&ours, theirs) => Serve::InStep,
                Some(theirs) => Serve::Changes {
                    their_heads: theirs.clone(),
                },
                None if id.organisation_owner().is_some() => Serve::Whole,
                None => Serve::Changes {
                    their_heads: Vec::new(),
                },
            };
            (serve != Serve::InStep).then_some((id, serve))
        })
        .collect();
    ServingPlan {
        documents,
        requester_has_more,
    }
}

/// Of a document the requester listed with `their_heads`, what to send: the changes after
/// the heads this node knows (`known`). `None` — send nothing now — when it knows none of
/// them: the requester is ahead (or they diverged) and those changes would be the
/// document's whole history again; this node asks the requester in turn, naming the
/// document as held back, and the requester, which knows this node's heads when it is
/// only ahead, sends just what this node lacks. A document the requester itself held back
/// (`asked_anyway`) is served after the known heads even if none is, so that two nodes
/// that diverged do not wait on each other.
pub fn serve_after(
    their_heads: &[ChangeHash],
    known: Vec<ChangeHash>,
    asked_anyway: bool,
) -> Option<Vec<ChangeHash>> {
    if known.is_empty() && !their_heads.is_empty() && !asked_anyway {
        return None;
    }
    Some(known)
}

/// True when two sets of heads are the same, in any order.
pub fn in_step(ours: &[ChangeHash], theirs: &[ChangeHash]) -> bool {
    let mut ours = ours.to_vec();
    let mut theirs = theirs.to_vec();
    ours.sort();
    theirs.sort();
    ours == theirs
}

/// The bytes of one response: parts are taken while they fit; the first always is.
#[derive(Debug, Clone)]
pub struct Batch {
    limit: usize,
    used: usize,
    parts: usize,
}

impl Batch {
    /// An empty batch of at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            used: 0,
            parts: 0,
        }
    }

    /// Takes a part of `bytes` if it fits (an empty batch takes any part); false when it
    /// does not: the response ends here and says `more`. Parts that must go together are
    /// taken as one.
    pub fn take(&mut self, bytes: usize) -> bool {
        if self.parts > 0 && self.used + bytes > self.limit {
            return false;
        }
        self.used += bytes;
        self.parts += 1;
        true
    }

    /// Bytes taken.
    pub fn bytes(&self) -> usize {
        self.used
    }
}

/// Why a received change was refused: a stable code, written in snake case in `passerelle
/// status`, logs and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionCode {
    /// The bytes are not a signed change.
    Undecodable,
    /// The signature does not verify.
    BadSignature,
    /// The author may not write this document.
    WrongWriter,
    /// The author is not a member of the network.
    NotMember,
    /// The peer that sent it is not a member.
    SenderNotMember,
    /// The author's membership was revoked before this change.
    Revoked,
    /// It belongs to another network.
    OtherNetwork,
    /// This node is in no network yet.
    NoNetwork,
    /// A membership operation that does not read or is not allowed.
    MalformedOperation,
    /// A document of a kind this node does not know.
    UnknownDocument,
    /// It builds on a change that was refused.
    DependsOnRefused,
    /// A document sent whole that is malformed or too large.
    BadBundle,
    /// A change of a document sent whole that no signed change of its author covers.
    Unattested,
    /// Two changes of one author with the same sequence number.
    Equivocation,
    /// A referral move the lifecycle does not allow.
    IllegalReferral,
    /// A text field holding control or bidi-override characters.
    UnsafeText,
    /// It does not apply to the document (the document's rules refuse it).
    DoesNotApply,
    /// A catch-up request larger than the protocol allows.
    OversizedRequest,
}

impl RejectionCode {
    /// Every code, for counters that show each one from zero.
    pub const ALL: [RejectionCode; 18] = [
        RejectionCode::Undecodable,
        RejectionCode::BadSignature,
        RejectionCode::WrongWriter,
        RejectionCode::NotMember,
        RejectionCode::SenderNotMember,
        RejectionCode::Revoked,
        RejectionCode::OtherNetwork,
        RejectionCode::NoNetwork,
        RejectionCode::MalformedOperation,
        RejectionCode::UnknownDocument,
        RejectionCode::DependsOnRefused,
        RejectionCode::BadBundle,
        RejectionCode::Unattested,
        RejectionCode::Equivocation,
        RejectionCode::IllegalReferral,
        RejectionCode::UnsafeText,
        RejectionCode::DoesNotApply,
        RejectionCode::OversizedRequest,
    ];

    /// The code as written.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionCode::Undecodable => "undecodable",
            RejectionCode::BadSignature => "bad_signature",
            RejectionCode::WrongWriter => "wrong_writer",
            RejectionCode::NotMember => "not_member",
            RejectionCode::SenderNotMember => "sender_not_member",
            RejectionCode::Revoked => "revoked",
            RejectionCode::OtherNetwork => "other_network",
            RejectionCode::NoNetwork => "no_network",
            RejectionCode::MalformedOperation => "malformed_operation",
            RejectionCode::UnknownDocument => "unknown_document",
            RejectionCode::DependsOnRefused => "depends_on_refused",
            RejectionCode::BadBundle => "bad_bundle",
            RejectionCode::Unattested => "unattested",
            RejectionCode::Equivocation => "equivocation",
            RejectionCode::IllegalReferral => "illegal_referral",
            RejectionCode::UnsafeText => "unsafe_text",
            RejectionCode::DoesNotApply => "does_not_apply",
            RejectionCode::OversizedRequest => "oversized_request",
        }
    }
}

impl std::fmt::Display for RejectionCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one received change was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The code, counted in `passerelle status`.
    pub code: RejectionCode,
    /// What exactly was wrong.
    pub reason: String,
}

impl Rejection {
    /// A rejection with its code and what exactly was wrong.
    pub fn new(code: RejectionCode, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
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

    /// True when no change waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True if that change waits.
    pub fn contains(&self, document: &DocumentId, hash: &ChangeHash) -> bool {
        self.by_document
            .get(document)
            .is_some_and(|m| m.contains_key(hash))
    }

    /// Keeps a change until its dependencies arrive; false when [`MAX_PENDING`] wait already
    /// (the change is not kept).
    pub fn insert(&mut self, change: SignedChange) -> bool {
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

    /// True if changes of that document wait.
    pub fn holds_document(&self, document: &DocumentId) -> bool {
        self.by_document.contains_key(document)
    }

    /// Takes every change of that document that waits.
    pub fn take(&mut self, document: &DocumentId) -> Vec<SignedChange> {
        let taken: Vec<_> = self
            .by_document
            .remove(document)
            .map(|m| m.into_values().collect())
            .unwrap_or_default();
        self.len -= taken.len();
        taken
    }
}

/// Splits received changes of `owner`'s document into those the write rule allows and
/// the refusals: nothing from a peer that is not a member (`sender_is_member` false),
/// nothing while this node is in no network, and otherwise what
/// [`Membership::may_write`] allows (the owner's key or an active device of it, up to
/// what a revocation keeps).
pub fn admit(
    document: &DocumentId,
    owner: &OrgId,
    changes: Vec<SignedChange>,
    sender_is_member: bool,
    membership: Option<&Membership>,
) -> (Vec<SignedChange>, Vec<Rejection>) {
    let mut allowed = Vec::with_capacity(changes.len());
    let mut rejections = Vec::new();
    for change in changes {
        let verdict = if !sender_is_member {
            Err(Rejection::new(
                RejectionCode::SenderNotMember,
                format!(
                    "change {} of {document} came from a peer that is not a member of the network",
                    change.hash()
                ),
            ))
        } else {
            match membership {
                None => Err(Rejection::new(
                    RejectionCode::NoNetwork,
                    "this node is in no network yet",
                )),
                Some(m) => m
                    .may_write(owner, &change.author(), change.change().seq())
                    .map_err(|e| refusal(&e)),
            }
        };
        match verdict {
            Ok(()) => allowed.push(change),
            Err(rejection) => rejections.push(rejection),
        }
    }
    (allowed, rejections)
}

/// The digest of what a node holds: SHA-256 over every document id and its heads, both
/// in sorted order (each id followed by a 0 byte and its number of heads), so two nodes
/// holding the same documents at the same heads compute the same 32 bytes whatever order
/// they list them in, and any difference — a document more or less, a head more or
/// less — changes it. What a sync round costs when nothing changed.
pub fn digest(held: &[crate::protocol::DocumentHeads]) -> [u8; crate::protocol::DIGEST_BYTES] {
    use sha2::{Digest as _, Sha256};
    let mut documents: Vec<(&str, Vec<&[u8]>)> = held
        .iter()
        .map(|d| {
            let mut heads: Vec<&[u8]> = d.heads.iter().map(|h| h.as_slice()).collect();
            heads.sort_unstable();
            heads.dedup();
            (d.document.as_str(), heads)
        })
        .collect();
    documents.sort_unstable();
    documents.dedup_by(|a, b| a.0 == b.0);
    let mut hasher = Sha256::new();
    hasher.update(b"passerelle/sync-digest/1\0");
    hasher.update((documents.len() as u64).to_be_bytes());
    for (document, heads) in documents {
        hasher.update(document.as_bytes());
        hasher.update([0]);
        hasher.update((heads.len() as u32).to_be_bytes());
        for head in heads {
            hasher.update((head.len() as u32).to_be_bytes());
            hasher.update(head);
        }
    }
    hasher.finalize().into()
}

/// The digest a round of [`crate::protocol::SYNC_STEP_PROTOCOL`] carries: [`digest`] of
/// what the node holds, bound to its network id (a node of another network, or of none
/// yet, is never in step).
pub fn round_digest(
    network: Option<&str>,
    held: &[crate::protocol::DocumentHeads],
) -> [u8; crate::protocol::DIGEST_BYTES] {
    use sha2::{Digest as _, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(b"passerelle/sync-digest/2\0");
    match network {
        Some(network) => {
            hasher.update([1]);
            hasher.update((network.len() as u32).to_be_bytes());
            hasher.update(network.as_bytes());
        }
        None => hasher.update([0]),
    }
    hasher.update(digest(held));
    hasher.finalize().into()
}

/// May a document received whole (a bundle) be taken as it is? Only an organisation's
/// document, from a peer acting for a member, in a network this node holds, and only if
/// the write rule allows every change in it (`changes`: each change's author and
/// sequence number). Otherwise its changes go one by one through [`admit`] and
/// [`in_sequence`], so a bundle never lets in what single changes would not.
pub fn may_take_whole(
    document: &DocumentId,
    changes: impl IntoIterator<Item = (KeyId, u64)>,
    sender_is_member: bool,
    membership: Option<&Membership>,
) -> bool {
    let (Some(owner), Some(m)) = (document.organisation_owner(), membership) else {
        return false;
    };
    sender_is_member
        && changes
            .into_iter()
            .all(|(author, seq)| m.may_write(&owner, &author, seq).is_ok())
}

/// Keeps, of changes of one document already in causal order, those that follow their
/// author's last change without a gap or a repeat (`latest` says the number of each
/// author's last change the document holds). A second change with a number already used
/// (an equivocation) is refused on its own, and so is every change that depends on a
/// refused one, before Automerge would refuse the whole batch. Returns the changes kept,
/// in order, and the rejections.
pub fn in_sequence(
    document: &DocumentId,
    ordered: Vec<SignedChange>,
    mut latest: impl FnMut(&KeyId) -> u64,
) -> (Vec<SignedChange>, Vec<Rejection>) {
    let mut next: HashMap<KeyId, u64> = HashMap::new();
    let mut refused: HashSet<ChangeHash> = HashSet::new();
    let mut ready = Vec::with_capacity(ordered.len());
    let mut rejections = Vec::new();
    for change in ordered {
        let author = change.author();
        let expected = *next.entry(author).or_insert_with(|| latest(&author) + 1);
        let seq = change.change().seq();
        if change.change().deps().iter().any(|d| refused.contains(d)) {
            refused.insert(change.hash());
            rejections.push(Rejection::new(
                RejectionCode::DependsOnRefused,
                format!("change {} depends on a refused change", change.hash()),
            ));
        } else if seq != expected {
            refused.insert(change.hash());
            rejections.push(Rejection::new(
                RejectionCode::Equivocation,
                format!(
                    "change {} of {document} is number {seq} of {author}, expected {expected}",
                    change.hash()
                ),
            ));
        } else {
            next.insert(author, expected + 1);
            ready.push(change);
        }
    }
    (ready, rejections)
}

/// The code and reason of a write-rule refusal.
pub fn refusal(refusal: &WriteRefusal) -> Rejection {
    let code = match refusal {
        WriteRefusal::NotMember { .. } => RejectionCode::NotMember,
        WriteRefusal::NotOwnersKey { .. } => RejectionCode::WrongWriter,
        WriteRefusal::Revoked { .. } => RejectionCode::Revoked,
    };
    Rejection::new(code, refusal.to_string())
}

/// The code of a network-document refusal.
pub fn network_refusal(error: &NetworkDocumentError) -> Rejection {
    let code = match error {
        NetworkDocumentError::OtherNetwork { .. } => RejectionCode::OtherNetwork,
        NetworkDocumentError::UnknownKey { .. } => RejectionCode::NotMember,
        NetworkDocumentError::Malformed { .. }
        | NetworkDocumentError::NotAllowed(_)
        | NetworkDocumentError::Void(_)
        | NetworkDocumentError::Charter(_)
        | NetworkDocumentError::Refused(_)
        | NetworkDocumentError::Automerge(_) => RejectionCode::MalformedOperation,
    };
    Rejection::new(code, error.to_string())
}

/// Orders changes so that each comes after its dependencies (those among them, and those
/// `held` already); returns the ordered ones and those still waiting.
pub fn release_in_order(
    changes: Vec<SignedChange>,
    mut held: impl FnMut(&ChangeHash) -> bool,
) -> (Vec<SignedChange>, Vec<SignedChange>) {
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
                .all(|d| known.contains(d) || held(d));
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
    (ready, waiting)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(n: u8) -> ChangeHash {
        ChangeHash([n; 32])
    }

    fn org(n: u8) -> OrgId {
        crate::identity::SigningSecret::from_bytes(&[n; 32]).org_id()
    }

    fn net() -> DocumentId {
        "net/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            .parse()
            .expect("network document id")
    }

    #[test]
    fn another_networks_request_is_served_nothing() {
        let everyone = |_: &OrgId| true;
        let requester = Requester {
            member: true,
            servable: &everyone,
        };
        let held = vec![(net(), vec![hash(1)])];
        let plan = plan_serving(
            Some("other"),
            Some("ours"),
            &requester,
            held.clone(),
            &HashMap::new(),
        );
        assert_eq!(plan, ServingPlan::default());
        let plan = plan_serving(None, Some("ours"), &requester, held, &HashMap::new());
        assert_eq!(
            plan.documents.len(),
            1,
            "a request naming no network is answered"
        );
    }

    #[test]
    fn a_non_member_is_served_the_network_document_only() {
        let (a, b) = (org(1), org(2));
        let everyone = |_: &OrgId| true;
        let held = vec![
            (net(), vec![hash(1)]),
            (DocumentId::organisation(&a), vec![hash(2)]),
            (DocumentId::organisation(&b), vec![hash(3)]),
        ];
        let stranger = Requester {
            member: false,
            servable: &everyone,
        };
        let plan = plan_serving(None, None, &stranger, held.clone(), &HashMap::new());
        assert_eq!(
            plan.documents,
            vec![(
                net(),
                Serve::Changes {
                    their_heads: vec![]
                }
            )]
        );
        let member = Requester {
            member: true,
            servable: &everyone,
        };
        let plan = plan_serving(None, None, &member, held, &HashMap::new());
        assert_eq!(plan.documents.len(), 3);
        assert_eq!(
            plan.documents[1].1,
            Serve::Whole,
            "a document it lacks goes whole"
        );
    }

    #[test]
    fn a_member_is_served_members_and_former_members_documents_only() {
        let (member, former, stranger) = (org(1), org(2), org(3));
        let servable = move |o: &OrgId| *o == member || *o == former;
        let requester = Requester {
            member: true,
            servable: &servable,
        };
        let held = [member, former, stranger]
            .iter()
            .map(|o| (DocumentId::organisation(o), vec![hash(9)]))
            .collect();
        let plan = plan_serving(None, None, &requester, held, &HashMap::new());
        let served: Vec<DocumentId> = plan.documents.into_iter().map(|(id, _)| id).collect();
        assert_eq!(
            served,
            vec![
                DocumentId::organisation(&member),
                DocumentId::organisation(&former)
            ]
        );
    }

    #[test]
    fn documents_in_step_are_skipped_and_the_rest_go_as_changes_after_their_heads() {
        let a = org(1);
        let everyone = |_: &OrgId| true;
        let requester = Requester {
            member: true,
            servable: &everyone,
        };
        let held = vec![
            (net(), vec![hash(1), hash(2)]),
            (DocumentId::organisation(&a), vec![hash(3)]),
        ];
        let listed = HashMap::from([
            (net(), vec![hash(2), hash(1)]),
            (DocumentId::organisation(&a), vec![hash(4)]),
        ]);
        let plan = plan_serving(None, None, &requester, held, &listed);
        assert_eq!(
            plan.documents,
            vec![(
                DocumentId::organisation(&a),
                Serve::Changes {
                    their_heads: vec![hash(4)]
                }
            )]
        );
    }

    #[test]
    fn a_requester_listing_a_servable_document_this_node_lacks_has_more() {
        let (held_org, lacked, stranger) = (org(1), org(2), org(3));
        let servable = move |o: &OrgId| *o != stranger;
        let member = Requester {
            member: true,
            servable: &servable,
        };
        let held = vec![(DocumentId::organisation(&held_org), vec![hash(1)])];
        let lists = |o: &OrgId| HashMap::from([(DocumentId::organisation(o), vec![hash(7)])]);
        assert!(
            plan_serving(None, None, &member, held.clone(), &lists(&lacked)).requester_has_more
        );
        assert!(
            !plan_serving(None, None, &member, held.clone(), &lists(&stranger)).requester_has_more
        );
        let outsider = Requester {
            member: false,
            servable: &servable,
        };
        assert!(!plan_serving(None, None, &outsider, held, &lists(&lacked)).requester_has_more);
    }

    #[test]
    fn a_batch_always_takes_its_first_part_and_ends_at_the_first_that_does_not_fit() {
        let mut batch = Batch::new(100);
        assert!(batch.take(250), "the first part goes however large");
        assert!(!batch.take(1));
        let mut batch = Batch::new(100);
        assert!(batch.take(60));
        assert!(batch.take(40));
        assert!(!batch.take(1));
        assert_eq!(batch.bytes(), 100);
    }

    #[test]
    fn pending_changes_wait_and_are_released_after_their_dependencies() {
        let key = crate::identity::SigningSecret::from_bytes(&[5; 32]);
        let id = DocumentId::organisation(&key.org_id());
        let changes = successive(&key, 3);
        let mut pending = Pending::default();
        for change in changes.iter().rev() {
            assert!(pending.insert(change.clone()));
        }
        assert_eq!(pending.len(), 3);
        assert!(pending.holds_document(&id));
        let waiting = pending.take(&id);
        assert_eq!(pending.len(), 0);
        // Out of order, nothing held yet: released first to last.
        let (ready, still) = release_in_order(waiting, |_| false);
        assert!(still.is_empty());
        let order: Vec<ChangeHash> = ready.iter().map(SignedChange::hash).collect();
        let expected: Vec<ChangeHash> = changes.iter().map(SignedChange::hash).collect();
        assert_eq!(order, expected);
        // Without its first change, none is released.
        let (ready, still) = release_in_order(changes[1..].to_vec(), |_| false);
        assert!(ready.is_empty());
        assert_eq!(still.len(), 2);
    }

    /// `n` successive changes of one key's document, signed.
    fn successive(key: &crate::identity::SigningSecret, n: usize) -> Vec<SignedChange> {
        use automerge::transaction::{CommitOptions, Transactable};
        let id = DocumentId::organisation(&key.org_id());
        let mut doc = automerge::AutoCommit::new()
            .with_actor(automerge::ActorId::from(key.org_id().as_bytes()));
        (0..n)
            .map(|i| {
                doc.put(automerge::ROOT, "n", i as i64).expect("put");
                doc.commit_with(CommitOptions::default().with_time(1_700_000_000));
                let change = doc.get_last_local_change().expect("change");
                SignedChange::sign(id.clone(), change, key)
            })
            .collect()
    }

    #[test]
    fn changes_in_sequence_are_kept_and_an_equivocation_and_what_builds_on_it_refused() {
        use automerge::transaction::{CommitOptions, Transactable};
        let key = crate::identity::SigningSecret::from_bytes(&[6; 32]);
        let id = DocumentId::organisation(&key.org_id());
        let changes = successive(&key, 3);
        // The document holds the first: the next two follow.
        let (ready, refused) = in_sequence(&id, changes[1..].to_vec(), |_| 1);
        assert_eq!(ready.len(), 2);
        assert!(refused.is_empty());
        // A gap: the document holds none, the batch starts at number 2.
        let (ready, refused) = in_sequence(&id, changes[1..].to_vec(), |_| 0);
        assert!(ready.is_empty());
        assert_eq!(refused[0].code, RejectionCode::Equivocation);
        assert_eq!(refused[1].code, RejectionCode::DependsOnRefused);
        // Equivocation: another change numbered 2 by the same key, forked after the first,
        // and a change building on it.
        let mut fork = automerge::AutoCommit::new()
            .with_actor(automerge::ActorId::from(key.org_id().as_bytes()));
        fork.apply_changes([changes[0].change().clone()])
            .expect("apply");
        fork.put(automerge::ROOT, "other", "x").expect("put");
        fork.commit_with(CommitOptions::default().with_time(1_700_000_001));
        let second = fork.get_last_local_change().expect("change");
        fork.put(automerge::ROOT, "other", "y").expect("put");
        fork.commit_with(CommitOptions::default().with_time(1_700_000_002));
        let third = fork.get_last_local_change().expect("change");
        assert_eq!(second.seq(), 2);
        let batch = vec![
            changes[1].clone(),
            SignedChange::sign(id.clone(), second, &key),
            SignedChange::sign(id.clone(), third, &key),
        ];
        let (ready, refused) = in_sequence(&id, batch, |_| 1);
        assert_eq!(ready.len(), 1, "the first number 2 is kept");
        assert_eq!(ready[0].hash(), changes[1].hash());
        let codes: Vec<RejectionCode> = refused.iter().map(|r| r.code).collect();
        assert_eq!(
            codes,
            vec![RejectionCode::Equivocation, RejectionCode::DependsOnRefused]
        );
    }

    #[test]
    fn nothing_is_admitted_from_a_non_member_or_without_a_network() {
        let key = crate::identity::SigningSecret::from_bytes(&[7; 32]);
        let id = DocumentId::organisation(&key.org_id());
        let changes = successive(&key, 2);
        let (allowed, refused) = admit(&id, &key.org_id(), changes.clone(), false, None);
        assert!(allowed.is_empty());
        assert!(
            refused
                .iter()
                .all(|r| r.code == RejectionCode::SenderNotMember)
        );
        let (allowed, refused) = admit(&id, &key.org_id(), changes, true, None);
        assert!(allowed.is_empty());
        assert_eq!(refused.len(), 2);
        assert!(refused.iter().all(|r| r.code == RejectionCode::NoNetwork));
        // With a membership, `Membership::may_write` decides (its own unit tests, and the
        // multi-node tests of tests/tests/membership.rs).
    }

    #[test]
    fn rejection_codes_are_written_as_documented() {
        assert_eq!(RejectionCode::NotMember.as_str(), "not_member");
        assert_eq!(
            serde_json::to_string(&RejectionCode::OversizedRequest).expect("json"),
            "\"oversized_request\""
        );
    }

    #[test]
    fn a_whole_document_is_taken_only_if_every_change_could_be() {
        use crate::membership::{Charter, NetworkDocument};
        let founder = crate::identity::SigningSecret::from_bytes(&[11; 32]);
        let outsider = crate::identity::SigningSecret::from_bytes(&[12; 32]);
        let charter = Charter {
            name: "Réseau test".into(),
            founders: vec![founder.org_id()],
            admission: "1".parse().expect("quorum"),
            revocation: "1".parse().expect("quorum"),
            amendment: "1".parse().expect("quorum"),
            taxonomy: "iom-2024".into(),
        };
        let (network, _) = NetworkDocument::create(&founder, charter, 1).expect("network");
        let m = network.membership();
        assert!(m.is_some_and(|m| m.members.contains_key(&founder.org_id())));
        let own = DocumentId::organisation(&founder.org_id());
        let by_owner = [(founder.key_id(), 1), (founder.key_id(), 2)];
        assert!(may_take_whole(&own, by_owner, true, m));
        // From a peer that is not a member, or while in no network: change by change.
        assert!(!may_take_whole(&own, by_owner, false, m));
        assert!(!may_take_whole(&own, by_owner, true, None));
        // One change by a key that may not write the document: change by change, where
        // that one is refused on its own.
        let mixed = [(founder.key_id(), 1), (outsider.key_id(), 1)];
        assert!(!may_take_whole(&own, mixed, true, m));
        // A non-member's own document, or the network document: never whole.
        let theirs = DocumentId::organisation(&outsider.org_id());
        assert!(!may_take_whole(&theirs, [(outsider.key_id(), 1)], true, m));
        assert!(!may_take_whole(&net(), by_owner, true, m));
    }

    #[test]
    fn the_digest_is_the_same_for_the_same_holdings_in_any_order_and_changes_with_any_head() {
        use crate::protocol::DocumentHeads;
        use serde_bytes::ByteBuf;
        let doc = |id: &str, heads: &[u8]| DocumentHeads {
            document: id.parse().expect("document id"),
            heads: heads.iter().map(|h| ByteBuf::from(vec![*h; 32])).collect(),
        };
        let held = vec![
            doc("org/a", &[1, 2]),
            doc("org/b", &[3]),
            doc("net/x", &[4]),
        ];
        let shuffled = vec![
            doc("net/x", &[4]),
            doc("org/b", &[3]),
            doc("org/a", &[2, 1]),
        ];
        assert_eq!(digest(&held), digest(&shuffled));
        // A head more, a head less, another head, a document more or less: another digest.
        let variants = [
            vec![
                doc("org/a", &[1, 2, 5]),
                doc("org/b", &[3]),
                doc("net/x", &[4]),
            ],
            vec![doc("org/a", &[1]), doc("org/b", &[3]), doc("net/x", &[4])],
            vec![
                doc("org/a", &[1, 2]),
                doc("org/b", &[6]),
                doc("net/x", &[4]),
            ],
            vec![doc("org/a", &[1, 2]), doc("org/b", &[3])],
            vec![
                doc("org/a", &[1, 2]),
                doc("org/b", &[3]),
                doc("net/x", &[4]),
                doc("org/c", &[]),
            ],
            // The same hashes under other documents.
            vec![
                doc("org/a", &[1]),
                doc("org/b", &[2, 3]),
                doc("net/x", &[4]),
            ],
        ];
        for variant in &variants {
            assert_ne!(digest(&held), digest(variant), "{variant:?}");
        }
        assert_eq!(digest(&[]).len(), crate::protocol::DIGEST_BYTES);
    }

    #[test]
    fn a_round_digest_binds_the_network_and_is_the_same_for_the_same_holdings() {
        use crate::protocol::DocumentHeads;
        use serde_bytes::ByteBuf;
        let held = vec![DocumentHeads {
            document: "org/a".parse().expect("document id"),
            heads: vec![ByteBuf::from(vec![1; 32])],
        }];
        let ours = round_digest(Some("net-1"), &held);
        assert_eq!(ours, round_digest(Some("net-1"), &held.clone()));
        assert_ne!(ours, round_digest(Some("net-2"), &held));
        assert_ne!(ours, round_digest(None, &held));
        assert_ne!(ours, round_digest(Some("net-1"), &[]));
        // Not the bare digest: a first-version digest is never taken for a round's.
        assert_ne!(ours, digest(&held));
    }

    #[test]
    fn a_requester_that_is_ahead_is_sent_nothing_until_it_is_asked_in_turn() {
        let theirs = [hash(7)];
        // None of its heads known: it is ahead (or diverged): nothing now.
        assert_eq!(serve_after(&theirs, Vec::new(), false), None);
        // Asked in turn, having held the document back itself: after what is known.
        assert_eq!(serve_after(&theirs, Vec::new(), true), Some(Vec::new()));
        // Some of its heads known: what follows them.
        assert_eq!(
            serve_after(&[hash(7), hash(8)], vec![hash(8)], false),
            Some(vec![hash(8)])
        );
        // It listed the document with no heads (it holds none of its changes): all of it.
        assert_eq!(serve_after(&[], Vec::new(), false), Some(Vec::new()));
    }
}
