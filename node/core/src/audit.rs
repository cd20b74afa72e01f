//! The audit log's chain, as pure code: each entry commits to the one before it (its
//! `prev` is that entry's hash, its own `hash` covers every field and `prev`), and from
//! time to time a seal entry carries the node's signature over the chain's hash so far.
//! Editing, deleting, inserting or reordering a line breaks the chain at that line;
//! cutting the end off is seen against the head the node keeps apart (its store).
//!
//! What a chain proves, and what it does not: someone who holds the node's key (root on
//! its machine) could rewrite the whole chain and sign it again. The chain's hashes given
//! to an inspector (`passerelle audit export`) anchor it outside the node: a later export
//! whose entries up to that point hash differently was rewritten.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::identity::{KeyId, SigningSecret};

/// What the first entry's `prev` is: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The action of a seal entry.
pub const SEAL: &str = "seal";

const HASH_DOMAIN: &[u8] = b"passerelle/audit-entry\0";
const SEAL_DOMAIN: &[u8] = b"passerelle/audit-seal\0";

/// What happened, as the node records it (no case-file content, ever).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When (Unix seconds).
    pub at: i64,
    /// The referral (empty for the node's own entries, such as seals).
    pub referral: String,
    /// What happened: `stored`, `sent`, `delivered`, `received`, `read`, `erased`,
    /// `erase_requested`, `retention_expired`, `refused`, `consent_override`, `seal`, …
    pub action: String,
    /// Who: the local account or user who asked, or the peer organisation.
    pub by: String,
    /// More, when useful.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// One line of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Its place in the chain, from 1, without gaps.
    pub seq: u64,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
    /// The hash of the entry before (hex; [`GENESIS`] for the first).
    pub prev: String,
    /// The hash of this entry (hex).
    pub hash: String,
    /// A seal's signing key (the node's key id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// A seal's signature over its hash (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

fn field(hasher: &mut Sha256, text: &str) {
    hasher.update((text.len() as u64).to_le_bytes());
    hasher.update(text.as_bytes());
}

/// The hash of an entry of `seq`, `event`, `prev` and (a seal's) `key`.
fn hash_of(seq: u64, event: &Event, prev: &str, key: Option<&str>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(HASH_DOMAIN);
    hasher.update(seq.to_le_bytes());
    hasher.update(event.at.to_le_bytes());
    for text in [
        event.referral.as_str(),
        &event.action,
        &event.by,
        &event.detail,
        prev,
        key.unwrap_or(""),
    ] {
        field(&mut hasher, text);
    }
    hex(&hasher.finalize())
}

fn seal_message(hash: &str) -> Vec<u8> {
    [SEAL_DOMAIN, hash.as_bytes()].concat()
}

/// Where the chain ends: the last entry's place and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// The last entry's `seq` (0: empty).
    pub seq: u64,
    /// Its hash ([`GENESIS`] when empty).
    pub hash: String,
}

impl Default for Head {
    fn default() -> Self {
        Self {
            seq: 0,
            hash: GENESIS.to_owned(),
        }
    }
}

impl Head {
    /// The entry that follows this head.
    pub fn next(&self, event: Event) -> Entry {
        let seq = self.seq + 1;
        let hash = hash_of(seq, &event, &self.hash, None);
        Entry {
            seq,
            event,
            prev: self.hash.clone(),
            hash,
            key: None,
            signature: None,
        }
    }

    /// A seal that follows this head, signed by `secret`.
    pub fn seal(&self, at: i64, by: &str, secret: &SigningSecret) -> Entry {
        let seq = self.seq + 1;
        let key = secret.key_id().to_string();
        let event = Event {
            at,
            referral: String::new(),
            action: SEAL.to_owned(),
            by: by.to_owned(),
            detail: format!("{} entries", self.seq),
        };
        let hash = hash_of(seq, &event, &self.hash, Some(&key));
        let signature = secret.sign(&seal_message(&hash));
        Entry {
            seq,
            event,
            prev: self.hash.clone(),
            hash,
            key: Some(key),
            signature: Some(hex(&signature.to_bytes())),
        }
    }

    /// The head once `entry` is appended.
    pub fn after(entry: &Entry) -> Self {
        Self {
            seq: entry.seq,
            hash: entry.hash.clone(),
        }
    }
}

/// What is wrong at one place of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Break {
    /// Where: the file and line (`000001.jsonl:12`), or `end`.
    pub at: String,
    /// What, for people.
    pub what: String,
}

/// What verifying a chain found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Entries read (seals included).
    pub entries: u64,
    /// Seals whose signature holds.
    pub seals: u64,
    /// The last entry's place.
    pub last_seq: u64,
    /// When the last good seal was made (Unix seconds).
    pub last_seal_at: Option<i64>,
    /// Entries after the last seal (signed at the next one).
    pub unsealed: u64,
    /// Every break, in order; none when the chain holds.
    pub breaks: Vec<Break>,
}

impl Verdict {
    /// True when the chain holds.
    pub fn holds(&self) -> bool {
        self.breaks.is_empty()
    }
}

/// Checks a chain line by line: who may seal it (`sealers`: this node's keys), and where it
/// should end (`head`, kept apart from the lines). Lines are `(where, text)`.
#[derive(Debug)]
pub struct Checker<'a> {
    sealers: &'a [KeyId],
    previous: Head,
    verdict: Verdict,
}

impl<'a> Checker<'a> {
    /// A checker for a chain sealed by one of `sealers`.
    pub fn new(sealers: &'a [KeyId]) -> Self {
        Self {
            sealers,
            previous: Head::default(),
            verdict: Verdict::default(),
        }
    }

    fn fail(&mut self, at: &str, what: String) {
        self.verdict.breaks.push(Break {
            at: at.to_owned(),
            what,
        });
    }

    /// Reads the next line.
    pub fn line(&mut self, at: &str, text: &str) {
        let entry: Entry = match serde_json::from_str(text) {
            Ok(entry) => entry,
            Err(e) => {
                self.fail(at, format!("not an audit entry ({e})"));
                return;
            }
        };
        self.verdict.entries += 1;
        let expected_seq = self.previous.seq + 1;
        if entry.seq != expected_seq {
            let what = if entry.seq > expected_seq {
                format!(
                    "entry {} follows entry {}: {} entries are missing",
                    entry.seq,
                    self.previous.seq,
                    entry.seq - expected_seq
                )
            } else {
                format!(
                    "entry {} comes after entry {}: moved or repeated",
                    entry.seq, self.previous.seq
                )
            };
            self.fail(at, what);
        } else if entry.prev != self.previous.hash {
            self.fail(
                at,
                format!(
                    "entry {} does not follow the entry before it (its prev is not that entry's hash)",
                    entry.seq
                ),
            );
        }
        let recomputed = hash_of(entry.seq, &entry.event, &entry.prev, entry.key.as_deref());
        if recomputed != entry.hash {
            self.fail(
                at,
                format!(
                    "entry {} was changed after it was written (its hash does not match its content)",
                    entry.seq
                ),
            );
        }
        if entry.event.action == SEAL {
            match self.seal_holds(&entry) {
                Ok(()) => {
                    self.verdict.seals += 1;
                    self.verdict.last_seal_at = Some(entry.event.at);
                    self.verdict.unsealed = 0;
                }
                Err(why) => self.fail(at, format!("seal {}: {why}", entry.seq)),
            }
        } else {
            self.verdict.unsealed += 1;
        }
        self.verdict.last_seq = entry.seq;
        self.previous = Head::after(&entry);
    }

    fn seal_holds(&self, entry: &Entry) -> Result<(), String> {
        let key: KeyId = entry
            .key
            .as_deref()
            .unwrap_or("")
            .parse()
            .map_err(|_| "no signing key named".to_owned())?;
        if !self.sealers.contains(&key) {
            return Err(format!("signed by {key}, not by this node"));
        }
        let signature = entry
            .signature
            .as_deref()
            .and_then(|s| data_encoding::HEXLOWER.decode(s.as_bytes()).ok())
            .and_then(|bytes| ed25519_dalek::Signature::from_slice(&bytes).ok())
            .ok_or_else(|| "no signature".to_owned())?;
        let verifying = key.verifying_key().map_err(|e| e.to_string())?;
        verifying
            .verify_strict(&seal_message(&entry.hash), &signature)
            .map_err(|_| "the signature does not hold".to_owned())
    }

    /// The verdict, knowing where the chain should end (`head`, when it is kept).
    pub fn finish(mut self, head: Option<&Head>) -> Verdict {
        if let Some(head) = head {
            if head.seq > self.previous.seq {
                let what = format!(
                    "the log ends at entry {} but the node wrote up to entry {}: {} entries were cut off the end",
                    self.previous.seq,
                    head.seq,
                    head.seq - self.previous.seq
                );
                self.fail("end", what);
            } else if head.seq == self.previous.seq && head.hash != self.previous.hash {
                self.fail(
                    "end",
                    format!(
                        "entry {} is not the one the node wrote last",
                        self.previous.seq
                    ),
                );
            }
        }
        self.verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(i: i64) -> Event {
        Event {
            at: 1_700_000_000 + i,
            referral: format!("ref-{i:024x}"),
            action: "read".into(),
            by: "web:alice".into(),
            detail: String::new(),
        }
    }

    /// A chain of `n` entries with a seal after every fourth, as lines.
    fn chain(secret: &SigningSecret, n: i64) -> (Vec<String>, Head) {
        let mut head = Head::default();
        let mut lines = Vec::new();
        for i in 0..n {
            let entry = if i % 5 == 4 {
                head.seal(1_700_000_000 + i, "node", secret)
            } else {
                head.next(event(i))
            };
            lines.push(serde_json::to_string(&entry).unwrap());
            head = Head::after(&entry);
        }
        (lines, head)
    }

    fn verify(secret: &SigningSecret, lines: &[String], head: &Head) -> Verdict {
        let keys = [secret.key_id()];
        let mut checker = Checker::new(&keys);
        for (i, line) in lines.iter().enumerate() {
            checker.line(&format!("log:{}", i + 1), line);
        }
        checker.finish(Some(head))
    }

    #[test]
    fn an_untouched_chain_holds_and_every_tampering_is_found_where_it_is() {
        let secret = SigningSecret::generate().unwrap();
        let (lines, head) = chain(&secret, 12);
        let verdict = verify(&secret, &lines, &head);
        assert!(verdict.holds(), "{verdict:?}");
        assert_eq!(
            (verdict.entries, verdict.seals, verdict.unsealed),
            (12, 2, 2)
        );

        // Edited: a read becomes someone else's.
        let mut edited = lines.clone();
        edited[6] = edited[6].replace("web:alice", "web:bob");
        let verdict = verify(&secret, &edited, &head);
        assert_eq!(verdict.breaks.len(), 1, "{verdict:?}");
        assert_eq!(verdict.breaks[0].at, "log:7");
        assert!(verdict.breaks[0].what.contains("changed"), "{verdict:?}");

        // Deleted.
        let mut deleted = lines.clone();
        deleted.remove(3);
        let verdict = verify(&secret, &deleted, &head);
        assert_eq!(verdict.breaks[0].at, "log:4");
        assert!(
            verdict.breaks[0].what.contains("1 entries are missing"),
            "{verdict:?}"
        );

        // Reordered.
        let mut reordered = lines.clone();
        reordered.swap(1, 2);
        let verdict = verify(&secret, &reordered, &head);
        assert_eq!(verdict.breaks[0].at, "log:2");

        // Cut off the end.
        let verdict = verify(&secret, &lines[..10], &head);
        assert_eq!(verdict.breaks.len(), 1, "{verdict:?}");
        assert_eq!(verdict.breaks[0].at, "end");
        assert!(verdict.breaks[0].what.contains("2 entries were cut off"));

        // Rewritten with its hashes recomputed, but sealed by another key.
        let thief = SigningSecret::generate().unwrap();
        let (forged, forged_head) = chain(&thief, 12);
        let verdict = verify(&secret, &forged, &forged_head);
        assert_eq!(verdict.seals, 0);
        assert_eq!(verdict.breaks.len(), 2, "{verdict:?}");
        assert!(verdict.breaks[0].what.contains("not by this node"));

        // A seal's signature tampered with.
        let mut bad_seal = lines.clone();
        let mut seal: Entry = serde_json::from_str(&bad_seal[4]).unwrap();
        let mut signature = seal.signature.clone().unwrap();
        signature.replace_range(
            0..2,
            if signature.starts_with("00") {
                "11"
            } else {
                "00"
            },
        );
        seal.signature = Some(signature);
        bad_seal[4] = serde_json::to_string(&seal).unwrap();
        let verdict = verify(&secret, &bad_seal, &head);
        assert_eq!(verdict.breaks.len(), 1, "{verdict:?}");
        assert!(verdict.breaks[0].what.contains("signature does not hold"));

        // Not JSON at all.
        let mut garbage = lines.clone();
        garbage[0] = "{not json".into();
        assert!(!verify(&secret, &garbage, &head).holds());
    }
}
