//! Passerelle node: the runtime around the pure core (`passerelle-core`, re-exported
//! here module by module): storage in sled, key files, the documents actor, the network,
//! the API's socket and the wiring.
//!
//! Where things live. From the core (pure): [`ids`], [`identity`] (keys in memory),
//! [`envelope`] (signed changes), [`reference`](mod@reference), [`model`], [`document`], [`membership`],
//! [`referral`], [`directory`], [`cartography`], [`protocol`], [`status`], [`sync`] (the sync
//! decisions), [`text`],
//! [`automerge_bounds`], [`automerge_guard`], [`automerge_de`]. The runtime's own:
//! - [`store`]: sled storage of signed changes and snapshots, made durable.
//! - [`keys`]: the key files; [`vault`]: case files at rest, the audit log, the outbox;
//!   [`accounts`]: the web page's accounts (Argon2id hashes).
//! - [`config`]: the node's configuration and the data folder's layout.
//! - [`node`]: the documents actor and its handle.
//! - [`backup`]: backups in Automerge's format with signed heads; [`archive`]: a running
//!   node writing and reading them.
//! - [`network`]: libp2p transport, the gate, gossip, catch-up, case files, admission.
//! - [`api`]: the typed, streaming API; [`control`]: its Unix socket, server and client.
//! - [`repair`]: a damaged store rebuilt; [`runtime`]: the wiring (start, shutdown).
//! - [`durable`], [`parallel`]: durable file writes; independent work over the cores.

pub use passerelle_core::{
    audit, automerge_bounds, automerge_de, automerge_guard, backup_seal, cartography, directory,
    document, envelope, identity, ids, membership, model, protocol, reference, referral, status,
    sync, text,
};

pub mod accounts;
pub mod api;
pub mod archive;
pub mod audit_log;
pub mod backup;
pub mod case_backup;
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
