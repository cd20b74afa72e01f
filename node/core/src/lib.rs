//! Passerelle's core: what a node knows and decides, as pure code — ids and keys in
//! memory, signed changes, bounded decoding, reference data, the membership fold, the
//! directory model and its edits, documents, the referral lifecycle and board, the
//! cartography's formats, the messages nodes exchange. No tokio, sled or libp2p, no sockets
//! and no disk: the runtime (`passerelle-node`) brings those, and re-exports every module
//! here under the same name. See docs/architecture.md ("Layers").

pub mod audit;
pub mod automerge_bounds;
pub mod automerge_de;
pub mod automerge_guard;
pub mod backup_seal;
pub mod cartography;
pub mod directory;
pub mod document;
pub mod envelope;
pub mod identity;
pub mod ids;
pub mod membership;
pub mod model;
pub mod protocol;
pub mod reference;
pub mod referral;
pub mod sealing;
pub mod status;
pub mod sync;
pub mod text;
