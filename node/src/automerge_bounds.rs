//! How large a compressed Automerge document from outside (a peer's bundle, a backup
//! folder) may grow once loaded, checked before Automerge loads it.
//!
//! Automerge inflates a document's deflated columns without a limit, so a few megabytes
//! of a hostile document could ask for gigabytes (a decompression bomb) and stop the node
//! before any signature is looked at. [`check_document`] walks the document's container
//! and column headers and inflates each deflated column into nothing, counting, and stops
//! as soon as the total passes the limit.
//!
//! Rules:
//! - Only a single document chunk is accepted (what `Automerge::save` writes); a change,
//!   compressed-change or bundle chunk, or anything after the first chunk, is refused.
//! - The size counted is the whole chunk with every deflated column inflated: what
//!   Automerge would hold while loading it.
//! - Nothing is allocated in proportion to what a column claims to inflate to.

use std::io::Read;

/// Largest size, inflated, of a document received from outside. An organisation document
/// of a national network is a few hundred kilobytes inflated; this leaves room for a
/// hundred times that.
pub const MAX_INFLATED_DOCUMENT: u64 = 64 * 1024 * 1024;

/// Automerge's chunk magic bytes.
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// Chunk type of a whole document.
const DOCUMENT_CHUNK: u8 = 0;
/// Column specification bit telling that the column's data is deflated.
const DEFLATE_BIT: u64 = 0b1000;

/// Why a compressed document is refused before it is loaded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BoundsError {
    /// It is not a single Automerge document chunk, or its headers are cut short.
    #[error("not a single Automerge document: {0}")]
    Malformed(&'static str),
    /// Inflated, it would pass the limit.
    #[error("it would take more than {limit} bytes once inflated")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], BoundsError> {
        let n = usize::try_from(n).map_err(|_| BoundsError::Malformed(what))?;
        if n > self.bytes.len() {
            return Err(BoundsError::Malformed(what));
        }
        let (taken, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(taken)
    }

    fn uleb(&mut self, what: &'static str) -> Result<u64, BoundsError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.first().ok_or(BoundsError::Malformed(what))?;
            self.bytes = &self.bytes[1..];
            value |= u64::from(byte & 0x7f)
                .checked_shl(shift)
                .ok_or(BoundsError::Malformed(what))?;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(BoundsError::Malformed(what))
    }

    /// A column list: (specification, length) of each column.
    fn columns(&mut self, what: &'static str) -> Result<Vec<(u64, u64)>, BoundsError> {
        let count = self.uleb(what)?;
        let mut columns = Vec::new();
        for _ in 0..count {
            // Each column takes at least two bytes of header: the count is bounded by them.
            let spec = self.uleb(what)?;
            let len = self.uleb(what)?;
            columns.push((spec, len));
        }
        Ok(columns)
    }
}

/// The size `bytes` would take once loaded (every deflated column inflated), if it is a
/// single Automerge document chunk of at most `limit` bytes inflated.
pub fn check_document(bytes: &[u8], limit: u64) -> Result<u64, BoundsError> {
    let mut container = Reader { bytes };
    if container.take(4, "no magic bytes")? != MAGIC {
        return Err(BoundsError::Malformed("no magic bytes"));
    }
    container.take(4, "no checksum")?;
    if container.take(1, "no chunk type")?[0] != DOCUMENT_CHUNK {
        return Err(BoundsError::Malformed("the first chunk is not a document"));
    }
    let len = container.uleb("no chunk length")?;
    let body = container.take(len, "the chunk is cut short")?;
    if !container.bytes.is_empty() {
        return Err(BoundsError::Malformed("more than one chunk"));
    }
    let too_large = BoundsError::TooLarge { limit };
    let mut chunk = Reader { bytes: body };
    let actors = chunk.uleb("actors")?;
    for _ in 0..actors {
        let len = chunk.uleb("actors")?;
        chunk.take(len, "actors")?;
    }
    let heads = chunk.uleb("heads")?;
    chunk.take(
        heads
            .checked_mul(32)
            .ok_or(BoundsError::Malformed("heads"))?,
        "heads",
    )?;
    let mut columns = chunk.columns("change columns")?;
    columns.extend(chunk.columns("operation columns")?);
    // Everything but the columns' data counts as it is.
    let data: u64 = columns.iter().map(|(_, len)| *len).sum();
    let mut total = (body.len() as u64)
        .checked_sub(data)
        .ok_or(BoundsError::Malformed("columns longer than the chunk"))?;
    if total > limit {
        return Err(too_large);
    }
    for (spec, len) in columns {
        let column = chunk.take(len, "column data")?;
        let size = if spec & DEFLATE_BIT == 0 {
            len
        } else {
            let budget = limit - total;
            let mut inflater = flate2::bufread::DeflateDecoder::new(column).take(budget + 1);
            std::io::copy(&mut inflater, &mut std::io::sink())
                .map_err(|_| BoundsError::Malformed("a column does not inflate"))?
        };
        total += size;
        if total > limit {
            return Err(too_large);
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT};

    /// A document whose one text value is `len` times the same letter: its column
    /// deflates to almost nothing.
    fn document_of(len: usize) -> Vec<u8> {
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "note", "x".repeat(len)).expect("put");
        doc.commit();
        doc.save()
    }

    #[test]
    fn a_document_is_measured_as_it_loads() {
        let saved = document_of(2_000_000);
        assert!(saved.len() < 100_000, "{} bytes", saved.len());
        let size = check_document(&saved, MAX_INFLATED_DOCUMENT).expect("within the limit");
        assert!(size > 2_000_000, "{size}");
        // The same bytes under a lower limit: refused, whatever they deflate to.
        assert_eq!(
            check_document(&saved, 1_000_000),
            Err(BoundsError::TooLarge { limit: 1_000_000 })
        );
        // A small document passes a small limit.
        assert!(check_document(&document_of(10), 10_000).is_ok());
    }

    #[test]
    fn anything_but_one_document_chunk_is_refused() {
        let saved = document_of(10);
        let refused = |bytes: &[u8]| check_document(bytes, MAX_INFLATED_DOCUMENT).is_err();
        assert!(refused(&[]));
        assert!(refused(&saved[..saved.len() - 1]));
        assert!(refused(&[saved.as_slice(), saved.as_slice()].concat()));
        let mut not_magic = saved.clone();
        not_magic[0] ^= 1;
        assert!(refused(&not_magic));
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "a", 1).expect("put");
        doc.commit();
        let change = doc
            .get_last_local_change()
            .expect("change")
            .raw_bytes()
            .to_vec();
        assert!(refused(&change));
        // Every cut of a document is refused without panicking.
        for end in 0..saved.len() {
            assert!(refused(&saved[..end]), "cut at {end}");
        }
    }
}
