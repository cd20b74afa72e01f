//! Wire protocol of node-to-node sync: protocol ids, topic, message types and limits.
//! `docs/protocol.md` describes the same for other implementations.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::envelope::DocumentId;

/// The request-response protocol of catch-up sync (CBOR messages).
pub const SYNC_PROTOCOL: &str = "/passerelle/sync/1";
/// The request-response protocol by which a candidate hands its admission request to
/// members' nodes (CBOR messages).
pub const ADMISSION_PROTOCOL: &str = "/passerelle/admission/1";
/// Largest admission request message.
pub const MAX_ADMISSION_BYTES: u64 = 16 * 1024;

/// The gossipsub topic on which a network's new signed changes are published:
/// `passerelle/<network id>/changes/1` (`passerelle/changes/1` for a node in no network).
pub fn changes_topic(network: Option<&str>) -> String {
    match network {
        Some(id) => format!("passerelle/{id}/changes/1"),
        None => "passerelle/changes/1".to_owned(),
    }
}
/// The identify protocol version string.
pub const IDENTIFY_PROTOCOL: &str = "/passerelle/id/1";
/// Largest gossip message: one encoded signed change.
pub const MAX_GOSSIP_BYTES: usize = 64 * 1024;
/// Largest sync request (a list of heads).
pub const MAX_SYNC_REQUEST_BYTES: u64 = 1024 * 1024;
/// Largest sync response.
pub const MAX_SYNC_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;
/// Bytes of signed changes a responder puts in one response; more follow on request.
pub const SYNC_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Most documents a sync request may list.
pub const MAX_SYNC_DOCUMENTS: usize = 20_000;
/// Most heads listed for one document.
pub const MAX_HEADS_PER_DOCUMENT: usize = 64;

/// The protocol by which a node asks whether a peer holds exactly what it holds, before
/// listing its heads: on one stream kept open per connection, the asker writes the
/// 32-byte [`crate::sync::round_digest`], the other answers one byte (1 in step, 0 not).
/// An idle link's round costs one fixed-size digest and one byte, whatever the number of
/// documents. A peer that does not speak it is asked by [`SYNC_PROTOCOL`] at once.
pub const SYNC_STEP_PROTOCOL: &str = "/passerelle/sync-digest/2";
/// Bytes of a sync digest.
pub const DIGEST_BYTES: usize = 32;

/// A document and the heads the sender holds of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentHeads {
    /// The document.
    pub document: DocumentId,
    /// Its heads (32-byte Automerge change hashes).
    pub heads: Vec<ByteBuf>,
}

/// "Here is what I hold; send me what I lack."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    /// Every document the requester holds, with its heads. Documents it does not list are
    /// ones it lacks entirely.
    pub documents: Vec<DocumentHeads>,
    /// The requester's network id; a node of another network serves nothing.
    #[serde(default)]
    pub network: Option<String>,
    /// Documents the requester held back when this node asked it (it knew none of this
    /// node's heads, so this node is ahead or they diverged): serve them after the heads
    /// known even if none is — one of the two sides has to go first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held_back: Vec<DocumentId>,
    /// The requester takes compact bundles: signatures apart from their changes
    /// ([`DocumentBundle::signatures`]), and the network document as a bundle when it
    /// lacks much of it. A node of the release before leaves it out and is sent whole
    /// signed changes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub compact: bool,
}

/// Signed changes the requester lacks, in causal order, and whole documents it lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncResponse {
    /// Encoded signed changes (the envelope layout of `docs/data-model.md`).
    pub changes: Vec<ByteBuf>,
    /// True when the responder has more to send: ask again with updated heads.
    pub more: bool,
    /// Whole documents the requester does not hold at all, each in Automerge's compressed
    /// format with one signed change per author vouching for the rest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<DocumentBundle>,
}

/// A whole document: Automerge's compressed document and, for each author of its changes,
/// the encoded signed change of theirs that has all their other changes in its history
/// (their latest) — or, compact, only that change's hash and signature. An organisation's
/// document goes whole to a node that lacks it; the network document to a node that lacks
/// much of it (taken change by change, each checked against the membership). The receiver loads the document, takes the signed changes'
/// signatures for those changes and counts every other change as attested by the signed
/// change of its author that has it in its history; a change no such signature covers
/// refuses the whole bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentBundle {
    /// The document (`org/<organisation id>`).
    pub document: DocumentId,
    /// `Automerge::save()` of the document.
    pub automerge: ByteBuf,
    /// Encoded signed changes, one per author of the document: their latest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signed: Vec<ByteBuf>,
    /// The same in a compact bundle, without the changes the document already holds:
    /// for each author's latest change, its hash and the author's signature
    /// ([`crate::envelope::COMPACT_SIGNATURE_BYTES`] each).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<ByteBuf>,
}

impl DocumentBundle {
    /// Bytes it takes on the wire, near enough (its two byte fields).
    pub fn len(&self) -> usize {
        self.automerge.len()
            + self.signed.iter().map(|s| s.len()).sum::<usize>()
            + self.signatures.iter().map(|s| s.len()).sum::<usize>()
    }

    /// True if it carries nothing.
    pub fn is_empty(&self) -> bool {
        self.automerge.is_empty() && self.signed.is_empty() && self.signatures.is_empty()
    }
}

/// A candidate's signed admission request, for a member's node to keep until its
/// operator approves (or not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionMessage {
    /// The signed request (JSON of `membership::SignedRequest`).
    pub request: ByteBuf,
}

/// The member node's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionReply {
    /// True if the request was kept for the members to decide.
    pub received: bool,
    /// Why not, or what happens next.
    pub message: String,
}

/// The request-response protocol by which case files (and requests to erase them) go from
/// one organisation's node to the other's, point to point (CBOR messages).
pub const CASE_PROTOCOL: &str = "/passerelle/case-file/1";
/// Largest case-file message.
pub const MAX_CASE_BYTES: u64 = 96 * 1024;

/// A message about a case file, from one party of a referral to the other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CaseMessage {
    /// The case file, sealed to the receiving organisation's X25519 key.
    Deliver {
        /// The referral id.
        referral: String,
        /// The sending organisation (must be the peer, or a device of it).
        sender: crate::identity::OrgId,
        /// The sealed payload.
        sealed: crate::referral::casefile::Sealed,
    },
    /// "Erase your copy": destroy its key and ciphertext.
    Erase {
        /// The referral id.
        referral: String,
    },
    /// A case file the receiving organisation's node hands on to one of its offices (a
    /// device node it granted case files), sealed to the device's own key.
    ToOffice {
        /// The referral id.
        referral: String,
        /// The organisation that sent the referral.
        sender: crate::identity::OrgId,
        /// The payload, sealed to the office.
        sealed: crate::referral::casefile::Sealed,
    },
}

/// The answer to a [`CaseMessage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseReply {
    /// True when the sender should stop retrying (stored, erased, or refused for good).
    pub done: bool,
    /// True when it was taken (stored or erased).
    pub accepted: bool,
    /// What happened, in words.
    pub message: String,
}

impl CaseReply {
    /// Taken (stored, already held, or erased): the sender stops.
    pub fn taken(message: impl Into<String>) -> Self {
        Self {
            done: true,
            accepted: true,
            message: message.into(),
        }
    }

    /// Refused for good: the sender stops.
    pub fn refused(message: impl Into<String>) -> Self {
        Self {
            done: true,
            accepted: false,
            message: message.into(),
        }
    }

    /// Not now (the board entry has not arrived, a storage error): the sender retries.
    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            done: false,
            accepted: false,
            message: message.into(),
        }
    }
}
