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
//! - Automerge's columns are run-length encoded: a few bytes can claim a run of 2^60
//!   values, which Automerge then walks one by one (the envelope fuzz target found a
//!   530-byte "change" that kept a node busy for good). Every column is walked here,
//!   counting runs without expanding them, and refused past [`MAX_DOCUMENT_VALUES`] values
//!   in a document or [`MAX_CHANGE_VALUES`] in a change ([`check_change`]).

use std::io::Read;

/// Most values in one column of a document from outside (operations, or changes): a busy
/// organisation's document after years holds a few hundred thousand operations.
pub const MAX_DOCUMENT_VALUES: u64 = 4_000_000;
/// Most values in one column of a single change (operations): an edit writes tens of
/// operations, an import of a whole mapping a few thousand.
pub const MAX_CHANGE_VALUES: u64 = 1_000_000;

/// Largest size, inflated, of a document received from outside. An organisation document
/// of a national network is a few hundred kilobytes inflated; this leaves room for a
/// hundred times that.
pub const MAX_INFLATED_DOCUMENT: u64 = 64 * 1024 * 1024;

/// Automerge's chunk magic bytes.
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// Chunk type of a whole document.
const DOCUMENT_CHUNK: u8 = 0;
/// Chunk type of one change, as `Change::raw_bytes` writes it.
const CHANGE_CHUNK: u8 = 1;
/// Column specification bit telling that the column's data is deflated.
const DEFLATE_BIT: u64 = 0b1000;

/// Why a compressed document is refused before it is loaded.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BoundsError {
    /// It is not a single Automerge chunk of the kind expected, or it is cut short.
    #[error("not a well-formed Automerge chunk: {0}")]
    Malformed(&'static str),
    /// Inflated, it would pass the limit.
    #[error("it would take more than {limit} bytes once inflated")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// A column claims more values than the limit.
    #[error("a column claims more than {limit} values")]
    TooManyValues {
        /// The limit.
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

/// Reads a column's bytes (raw or inflating) one at a time.
struct ColumnReader<R: Read> {
    bytes: std::iter::Peekable<std::io::Bytes<R>>,
}

impl<R: Read> ColumnReader<R> {
    /// True while the column has bytes left.
    fn bytes_left(&mut self) -> Result<bool, BoundsError> {
        Ok(self.bytes.peek().is_some())
    }

    /// The next byte; `None` at the end of the column.
    fn byte(&mut self) -> Result<Option<u8>, BoundsError> {
        self.bytes
            .next()
            .transpose()
            .map_err(|_| BoundsError::Malformed("a column does not inflate"))
    }

    fn leb(&mut self) -> Result<(u64, u8, u32), BoundsError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self
                .byte()?
                .ok_or(BoundsError::Malformed("a column is cut short"))?;
            value |= u64::from(byte & 0x7f)
                .checked_shl(shift)
                .ok_or(BoundsError::Malformed("a number is too long"))?;
            if byte & 0x80 == 0 {
                return Ok((value, byte, shift));
            }
        }
        Err(BoundsError::Malformed("a number is too long"))
    }

    fn uleb(&mut self) -> Result<u64, BoundsError> {
        Ok(self.leb()?.0)
    }

    /// A signed LEB128 number, as its magnitude and sign.
    fn sleb(&mut self) -> Result<(u64, bool), BoundsError> {
        let (value, last, shift) = self.leb()?;
        let bits = shift + 7;
        let negative = last & 0x40 != 0;
        if !negative {
            return Ok((value, false));
        }
        // Sign-extend, then take the magnitude.
        let extended = if bits < 64 {
            (value | (u64::MAX << bits)) as i64
        } else {
            value as i64
        };
        Ok((extended.unsigned_abs(), true))
    }

    fn skip(&mut self, n: u64) -> Result<(), BoundsError> {
        for _ in 0..n {
            self.byte()?
                .ok_or(BoundsError::Malformed("a column is cut short"))?;
        }
        Ok(())
    }
}

/// One value of a run-length encoded column of `kind` (the low three bits of its
/// specification).
fn skip_value<R: Read>(column: &mut ColumnReader<R>, kind: u64) -> Result<(), BoundsError> {
    match kind {
        // Strings: a length, then the bytes.
        5 => {
            let len = column.uleb()?;
            column.skip(len)
        }
        // Deltas: signed numbers.
        3 => column.sleb().map(drop),
        // Group counts, actor indexes, integers, value metadata: unsigned numbers.
        _ => column.uleb().map(drop),
    }
}

/// How many values the column of specification `spec` holds, without expanding its runs;
/// refused past `limit`.
fn count_values(spec: u64, data: impl Read, limit: u64) -> Result<u64, BoundsError> {
    let kind = spec & 0b111;
    let mut column = ColumnReader {
        bytes: std::io::BufReader::new(data).bytes().peekable(),
    };
    let too_many = BoundsError::TooManyValues { limit };
    let mut total: u64 = 0;
    let mut add = |n: u64| -> Result<(), BoundsError> {
        total = total.checked_add(n).ok_or(too_many.clone())?;
        if total > limit {
            return Err(too_many.clone());
        }
        Ok(())
    };
    match kind {
        // Raw values: their sizes are in the metadata column.
        7 => return Ok(0),
        // Booleans: run lengths, alternately false and true.
        4 => {
            while column.bytes_left()? {
                add(column.uleb()?)?;
            }
        }
        // Run-length encoded: a repeated run, a literal run, or a run of nulls.
        _ => {
            while column.bytes_left()? {
                let (count, negative) = column.sleb()?;
                if count == 0 {
                    add(column.uleb()?)?;
                } else if negative {
                    add(count)?;
                    for _ in 0..count {
                        skip_value(&mut column, kind)?;
                    }
                } else {
                    add(count)?;
                    skip_value(&mut column, kind)?;
                }
            }
        }
    }
    Ok(total)
}

/// The body of `bytes` if they are exactly one chunk of type `kind` (`refusal` otherwise).
fn single_chunk<'a>(
    bytes: &'a [u8],
    kind: u8,
    refusal: &'static str,
) -> Result<&'a [u8], BoundsError> {
    let mut container = Reader { bytes };
    if container.take(4, "no magic bytes")? != MAGIC {
        return Err(BoundsError::Malformed("no magic bytes"));
    }
    container.take(4, "no checksum")?;
    if container.take(1, "no chunk type")?[0] != kind {
        return Err(BoundsError::Malformed(refusal));
    }
    let len = container.uleb("no chunk length")?;
    let body = container.take(len, "the chunk is cut short")?;
    if !container.bytes.is_empty() {
        return Err(BoundsError::Malformed("more than one chunk"));
    }
    Ok(body)
}

/// The size `bytes` would take once loaded (every deflated column inflated), if it is a
/// single Automerge document chunk of at most `limit` bytes inflated.
pub fn check_document(bytes: &[u8], limit: u64) -> Result<u64, BoundsError> {
    let body = single_chunk(bytes, DOCUMENT_CHUNK, "the first chunk is not a document")?;
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
    let data = columns
        .iter()
        .try_fold(0u64, |sum, (_, len)| sum.checked_add(*len))
        .ok_or(BoundsError::Malformed("columns longer than the chunk"))?;
    let mut total = (body.len() as u64)
        .checked_sub(data)
        .ok_or(BoundsError::Malformed("columns longer than the chunk"))?;
    if total > limit {
        return Err(too_large);
    }
    for (spec, len) in columns {
        let column = chunk.take(len, "column data")?;
        let size = if spec & DEFLATE_BIT == 0 {
            count_values(spec, column, MAX_DOCUMENT_VALUES)?;
            len
        } else {
            // Inflated once: its values counted as they come, its bytes counted too.
            let budget = limit - total;
            let mut inflater = flate2::bufread::DeflateDecoder::new(column).take(budget + 1);
            let counted = count_values(spec, &mut inflater, MAX_DOCUMENT_VALUES);
            std::io::copy(&mut inflater, &mut std::io::sink())
                .map_err(|_| BoundsError::Malformed("a column does not inflate"))?;
            let size = (budget + 1) - inflater.limit();
            if size > budget {
                return Err(too_large);
            }
            counted?;
            size
        };
        total += size;
        if total > limit {
            return Err(too_large);
        }
    }
    Ok(total)
}

/// Checks that `bytes` is a single Automerge change chunk (what `Change::raw_bytes`
/// writes) whose columns hold at most `max_values` values each, before Automerge reads
/// it. Returns the most values a column holds (the operations, for a change with any).
pub fn check_change(bytes: &[u8], max_values: u64) -> Result<u64, BoundsError> {
    let body = single_chunk(
        bytes,
        CHANGE_CHUNK,
        "the chunk is not an uncompressed change",
    )?;
    let mut chunk = Reader { bytes: body };
    let deps = chunk.uleb("dependencies")?;
    chunk.take(
        deps.checked_mul(32)
            .ok_or(BoundsError::Malformed("dependencies"))?,
        "dependencies",
    )?;
    let actor = chunk.uleb("actor")?;
    chunk.take(actor, "actor")?;
    chunk.uleb("sequence number")?;
    chunk.uleb("start operation")?;
    chunk.uleb("time")?;
    let message = chunk.uleb("message")?;
    chunk.take(message, "message")?;
    let actors = chunk.uleb("other actors")?;
    for _ in 0..actors {
        let len = chunk.uleb("other actors")?;
        chunk.take(len, "other actors")?;
    }
    let columns = chunk.columns("operation columns")?;
    let mut most = 0;
    for (spec, len) in columns {
        if spec & DEFLATE_BIT != 0 {
            return Err(BoundsError::Malformed("a change column is deflated"));
        }
        let column = chunk.take(len, "column data")?;
        most = most.max(count_values(spec, column, max_values)?);
    }
    Ok(most)
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

    /// A change chunk written by hand around `columns` ((specification, data) pairs).
    fn change_with(columns: &[(u64, Vec<u8>)]) -> Vec<u8> {
        let mut body = vec![0]; // no dependencies
        body.push(16);
        body.extend_from_slice(&[7; 16]); // the actor
        body.extend_from_slice(&[1, 1, 0, 0, 0]); // seq, start op, time, message, actors
        body.push(columns.len() as u8);
        for (spec, data) in columns {
            body.push(*spec as u8);
            body.push(data.len() as u8);
        }
        for (_, data) in columns {
            body.extend_from_slice(data);
        }
        let mut chunk = MAGIC.to_vec();
        chunk.extend_from_slice(&[0; 4]);
        chunk.push(CHANGE_CHUNK);
        chunk.push(body.len() as u8);
        chunk.extend_from_slice(&body);
        chunk
    }

    /// LEB128 of a large run: 2^60.
    fn huge() -> Vec<u8> {
        let mut n: u64 = 1 << 60;
        let mut out = Vec::new();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            // Signed: stop only once the sign bit of the last byte is clear.
            if n == 0 && byte & 0x40 == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    #[test]
    fn changes_made_by_automerge_pass_and_huge_runs_are_refused_unexpanded() {
        let mut doc = AutoCommit::new();
        for i in 0..50 {
            doc.put(ROOT, format!("k{i}"), i).expect("put");
        }
        doc.put(ROOT, "note", "une note").expect("put");
        doc.commit();
        let change = doc
            .get_last_local_change()
            .expect("change")
            .raw_bytes()
            .to_vec();
        assert_eq!(check_change(&change, MAX_CHANGE_VALUES), Ok(51));
        assert_eq!(
            check_change(&change, 10),
            Err(BoundsError::TooManyValues { limit: 10 })
        );
        // Every cut of a change is refused without panicking.
        for end in 0..change.len() {
            assert!(
                check_change(&change[..end], MAX_CHANGE_VALUES).is_err(),
                "cut at {end}"
            );
        }
        // A document chunk is not a change.
        assert!(check_change(&doc.save(), MAX_CHANGE_VALUES).is_err());

        // A run of 2^60 values, in each kind of column: refused at once.
        for kind in [0u64, 1, 2, 3, 5, 6] {
            let mut run = huge();
            run.extend_from_slice(if kind == 5 { &[1, b'x'] } else { &[1] });
            let crafted = change_with(&[((1 << 4) | kind, run)]);
            assert_eq!(
                check_change(&crafted, MAX_CHANGE_VALUES),
                Err(BoundsError::TooManyValues {
                    limit: MAX_CHANGE_VALUES
                }),
                "column kind {kind}"
            );
        }
        let mut nulls = vec![0];
        nulls.extend_from_slice(&huge());
        let crafted = change_with(&[(0x12, nulls)]);
        assert!(matches!(
            check_change(&crafted, MAX_CHANGE_VALUES),
            Err(BoundsError::TooManyValues { .. })
        ));
        let booleans = change_with(&[(0x14, huge())]);
        assert!(matches!(
            check_change(&booleans, MAX_CHANGE_VALUES),
            Err(BoundsError::TooManyValues { .. })
        ));
        // Small runs of the same shapes pass, counted.
        let small = change_with(&[
            (0x12, vec![3, 9]),
            (0x14, vec![2, 1]),
            (0x15, vec![0x7e, 1, b'a', 0, 0, 4]),
        ]);
        assert_eq!(check_change(&small, MAX_CHANGE_VALUES), Ok(6));
    }

    /// The envelope fuzz target's input that kept automerge busy: a bundle chunk, refused
    /// for what it is before any column is read.
    #[test]
    fn a_bundle_chunk_is_not_a_change() {
        let mut bundle = change_with(&[(0x12, huge())]);
        bundle[8] = 3;
        assert_eq!(
            check_change(&bundle, MAX_CHANGE_VALUES),
            Err(BoundsError::Malformed(
                "the chunk is not an uncompressed change"
            ))
        );
    }
}
