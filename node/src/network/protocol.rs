//! Wire protocol of node-to-node sync: protocol ids, topic, message types and limits.
//! `docs/protocol.md` describes the same for other implementations.

use libp2p::StreamProtocol;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::envelope::DocumentId;

/// The request-response protocol of catch-up sync (CBOR messages).
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/passerelle/sync/1");
/// The gossipsub topic on which new signed changes are published.
pub const CHANGES_TOPIC: &str = "passerelle/changes/1";
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
}

/// Signed changes the requester lacks, in causal order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncResponse {
    /// Encoded signed changes (the envelope layout of `docs/data-model.md`).
    pub changes: Vec<ByteBuf>,
    /// True when the responder has more to send: ask again with updated heads.
    pub more: bool,
}
