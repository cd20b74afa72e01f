//! Passerelle node: the runtime around the pure core (`passerelle-core`, re-exported
//! here module by module): storage in sled, key files, the documents actor, the network,
//! the API's socket and the wiring.
//!
//! Where things live (the core's modules marked *core*):
//! - [`identity`]: the organisation's keys and id.
//! - [`envelope`]: signed changes (sign, verify, byte encoding).
//! - [`reference`]: Cameroon's regions and departments, the service taxonomy.
//! - [`membership`]: the network document, its charter and quorum membership.
//! - [`model`]: profile, offices, services, and their validation (pure).
//! - [`document`]: an organisation's Automerge document and its edits.
//! - [`automerge_de`]: reads an Automerge document into Rust types (serde), in place.
//! - [`automerge_bounds`]: how large a compressed document from outside may inflate,
//!   checked before it is loaded.
//! - [`directory`]: search over the directory (pure).
//! - [`referral`]: the referral lifecycle (states, who may move them).
//! - [`backup`]: backups in Automerge's format with signed heads (export, verify).
//! - [`store`]: sled storage of signed changes and snapshots.
//! - [`node`]: the runtime (documents actor, handle, start and shutdown).
//! - [`parallel`]: independent work (documents, slices of received changes) over the cores.
//! - [`network`]: libp2p transport, gossip and catch-up sync with peers.
//! - [`control`]: the local control API (Unix socket, JSON lines) and its client.
//! - [`config`]: the node's configuration and the data folder's layout.

pub use passerelle_core::{
    automerge_bounds, automerge_de, automerge_guard, cartography, directory, document, envelope,
    identity, ids, membership, model, protocol, reference, referral, status, text,
};

pub mod api;
pub mod archive;
pub mod backup;
pub mod config;
pub mod control;
pub mod durable;
pub mod keys;
pub mod network;
pub mod node;
pub mod parallel;
pub mod repair;
pub mod runtime;
pub mod store;
pub mod vault;

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
