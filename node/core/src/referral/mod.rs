//! Referrals between organisations: the lifecycle of a referral, the board that every
//! node replicates (no personal data), and the case file that travels point to point,
//! encrypted end to end, between the two organisations only.
//!
//! - [`lifecycle`]: statuses, who may move them, reasons and outcomes (pure).
//! - [`board`]: what each side's document holds, the checks every node makes, the merged
//!   view (pure).
//! - [`casefile`]: the case file and consent record, sealing to the receiver's X25519 key,
//!   the commitment the board carries (pure).
//! - Case files at rest on a node (one key per case file, erasable), the audit log of
//!   reads and the delivery outbox are in [`crate::vault`], beside the store.
//! - [`index`]: the board kept folded between queries, refolded per changed document.
//! - [`report`]: aggregate-only statistics of the board.
//! - [`matching`]: services ranked for a returnee's needs.

pub mod board;
pub mod casefile;
pub mod index;
pub use crate::model::lifecycle;
pub mod matching;
pub mod report;
