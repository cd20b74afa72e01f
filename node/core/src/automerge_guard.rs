//! Decoding of bytes from outside by libraries that may panic (Automerge, the spreadsheet
//! reader), guarded.
//!
//! automerge 0.12 panics on some malformed input instead of returning an error: the
//! envelope fuzz target found a change whose object-id column holds a number too large for
//! 32 bits (`automerge/src/types.rs:464`, an `unwrap` of `u32::try_from`). A peer could
//! otherwise stop a node with one crafted change. So every decode or load of bytes that
//! come from outside (peers, backups, the store) goes through here: it runs under
//! `catch_unwind`, and a panic becomes an error naming it. Decoding builds only local
//! values, so nothing shared is left half-changed when it unwinds.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

thread_local! {
    /// How many guarded calls this thread is inside.
    static GUARDING: Cell<u32> = const { Cell::new(0) };
}

/// True while this thread runs a guarded Automerge call: a panic hook can leave such a
/// panic to the guard (which logs it as a refusal) instead of reporting a crash.
pub fn inside_guard() -> bool {
    GUARDING.with(|g| g.get() > 0)
}

use automerge::{AutoCommit, Automerge, Change};

/// Why bytes from outside could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The library panicked on them (a malformed input it does not check).
    #[error("{library} cannot read this {what} ({detail})")]
    Panicked {
        /// The library (`automerge`, `calamine`, …).
        library: String,
        /// What it was reading.
        what: String,
        /// The panic's message.
        detail: String,
    },
    /// Refused before the library saw them: they would grow past the bounds.
    #[error("refused before decoding: {0}")]
    OutOfBounds(String),
    /// The library read them and refused them, saying why.
    #[error("{0}")]
    Refused(String),
}

/// Runs `work` (an Automerge call on outside bytes or changes), turning a panic into an
/// error. After a panic while changing a document, that document must be thrown away: the
/// callers rebuild it from the store.
pub fn guarded<T, E: std::fmt::Display>(
    what: &str,
    work: impl FnOnce() -> Result<T, E>,
) -> Result<T, DecodeError> {
    guarded_by("automerge", what, work)
}

/// Runs `work`, a call of `library` on bytes from outside (a spreadsheet reader, …),
/// turning a panic into an error that names the library and what it was reading.
pub fn guarded_by<T, E: std::fmt::Display>(
    library: &str,
    what: &str,
    work: impl FnOnce() -> Result<T, E>,
) -> Result<T, DecodeError> {
    GUARDING.with(|g| g.set(g.get() + 1));
    let outcome = catch_unwind(AssertUnwindSafe(work));
    GUARDING.with(|g| g.set(g.get().saturating_sub(1)));
    match outcome {
        Ok(result) => result.map_err(|e| DecodeError::Refused(e.to_string())),
        Err(panic) => {
            let detail = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            tracing::warn!(library, what, %detail, "a library failed on malformed input");
            Err(DecodeError::Panicked {
                library: library.to_owned(),
                what: what.to_owned(),
                detail,
            })
        }
    }
}

/// One change from its bytes: a single uncompressed change chunk whose columns are
/// bounded ([`crate::automerge_bounds::check_change`]), then read by Automerge.
pub fn change(bytes: Vec<u8>) -> Result<Change, DecodeError> {
    crate::automerge_bounds::check_change(&bytes, crate::automerge_bounds::MAX_CHANGE_VALUES)
        .map_err(|e| DecodeError::OutOfBounds(e.to_string()))?;
    guarded("change", || Change::from_bytes(bytes))
}

/// A whole document, as an [`AutoCommit`].
pub fn load_autocommit(bytes: &[u8]) -> Result<AutoCommit, DecodeError> {
    guarded("document", || AutoCommit::load(bytes))
}

/// Applies changes to a document; a panic (the `apply` fuzz target found automerge 0.12
/// unwrapping a missing value in `op_set2/change/batch.rs` on a crafted change) is an
/// error, and the document must then be rebuilt.
pub fn apply(doc: &mut AutoCommit, changes: Vec<Change>) -> Result<(), DecodeError> {
    guarded("changes", || doc.apply_changes(changes))
}

/// A whole document, as an [`Automerge`].
pub fn load(bytes: &[u8]) -> Result<Automerge, DecodeError> {
    guarded("document", || Automerge::load(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_automerge_panics_on_is_an_error() {
        // Found by the envelope fuzz target: a valid change with one column byte changed.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fuzz/regressions/envelope-automerge-objid-overflow"
        );
        let input = std::fs::read(path).expect("the regression input");
        let at = 6 + u16::from_be_bytes([input[4], input[5]]) as usize + 32 + 64 + 4;
        // Automerge itself panics on it; the guard turns that into an error.
        let bytes = input[at..].to_vec();
        let error = guarded("change", || Change::from_bytes(bytes.clone()))
            .expect_err("refused, not a panic");
        assert!(
            matches!(&error, DecodeError::Panicked { library, .. } if library == "automerge"),
            "{error}"
        );
        // The bounds check that runs first already refuses it.
        let error = change(bytes).expect_err("refused");
        assert!(matches!(error, DecodeError::OutOfBounds(_)), "{error}");
    }
}
