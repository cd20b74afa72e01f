//! An organisation's replicated document: its profile, offices and services in Automerge.
//!
//! Rules:
//! - The Automerge actor id is the organisation's 32-byte public key, so every change is
//!   bound to the key that must sign it (see [`crate::envelope`]).
//! - Each [`Edit`] is validated first, then becomes exactly one Automerge change committed
//!   with the real time and a message saying what changed, then is signed. A refused edit
//!   leaves the document untouched.
//! - The document's shape (`schema`, `kind`, `org_id`, `profile`, `offices`, `services`) is
//!   described in `docs/data-model.md`. Root objects are created once, by the genesis change.

use std::collections::HashMap;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, ChangeHash, ObjType, ROOT, ReadDoc, ScalarValue};
use serde::{Deserialize, Serialize};

use crate::envelope::{DocumentId, SignedChange};
use crate::identity::{KeyId, OrgId, SigningSecret};
use crate::model::{self, OrganisationRecord, Profile, ValidationError};
use crate::referral::board::{self, Answer, MoveRecord};

pub use crate::model::SCHEMA_VERSION;

mod edits;

pub use edits::Edit;
use edits::{Update, plan};

/// Errors of document edits and reads.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The edit's input is invalid; nothing was written.
    #[error("invalid input: {0}")]
    Invalid(#[from] ValidationError),
    /// No office or service with this id.
    #[error("no {kind} with id {id:?}")]
    NotFound {
        /// "office" or "service".
        kind: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The document does not have the expected shape (a bug or a hostile author).
    #[error("document {document} is malformed: {reason}")]
    Malformed {
        /// The document.
        document: DocumentId,
        /// What is wrong.
        reason: String,
    },
    /// The signing key is not the document owner's.
    #[error("only {owner} may write document {document}")]
    NotOwner {
        /// The document.
        document: DocumentId,
        /// Its owner.
        owner: OrgId,
    },
    /// The document's referral part breaks the referral rules (a forged or illegal move).
    #[error("document {document} breaks the referral rules: {reason}")]
    IllegalReferral {
        /// The document.
        document: DocumentId,
        /// What is wrong.
        reason: crate::referral::board::IllegalRecord,
    },
    /// A received change would put a control, bidirectional-override or invisible
    /// character into the document's text.
    #[error("document {document}: {error}")]
    UnsafeText {
        /// The document.
        document: DocumentId,
        /// The field and character.
        error: crate::text::TextError,
    },
    /// Automerge refused an operation or a change.
    #[error("automerge: {0}")]
    Automerge(#[from] automerge::AutomergeError),
}

/// One entry of a document's signed change log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HistoryEntry {
    /// Automerge change hash (hex).
    pub hash: String,
    /// The author's organisation id.
    pub author: String,
    /// The author's short fingerprint.
    pub author_fingerprint: String,
    /// The author's sequence number.
    pub seq: u64,
    /// Commit time, Unix seconds.
    pub time: i64,
    /// What changed.
    pub message: String,
}

/// An organisation's document with a cached, validated reading of it.
#[derive(Debug)]
pub struct OrganisationDocument {
    id: DocumentId,
    owner: OrgId,
    /// Automerge's document; empty while `saved` holds it unloaded.
    doc: AutoCommit,
    /// The document as a snapshot saved it, not loaded into Automerge yet: a node starts
    /// with every record read from its snapshot and loads a document the first time its
    /// history is needed (a received change, a sync, an edit).
    saved: Option<Saved>,
    record: Option<OrganisationRecord>,
    /// Drawn from [`next_generation`] each time `record` is set: tells derived views (the
    /// board index) that the record changed.
    generation: u64,
    /// Latest sequence number per key, once asked for (kept up to date after that).
    seqs: Option<HashMap<KeyId, u64>>,
}

/// A document's snapshot, for fast start.
///
/// Derived data: the signed changes stay the truth. At start the Automerge document is
/// checked against them (every head must be a stored signed change, and every stored change
/// must be in the document); the record is used only when the document's heads are exactly
/// `heads`, and is re-read from the document otherwise.
///
/// Stored in two parts: the header and the record (tree `snapshots`: what a node reads at
/// start) and the Automerge document with the same heads (tree `snapshot-documents`: read
/// when the document's history is first needed). A node starting on a national store so
/// reads a third of the bytes, and sled does not keep the documents in its page cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Number of changes in the document when the snapshot was taken.
    pub changes: u64,
    /// Heads of the document when the snapshot was taken.
    pub heads: Vec<ChangeHash>,
    /// The document in Automerge's compressed format (empty when only the record was read:
    /// `Store::snapshot_record`).
    pub document: Vec<u8>,
    /// Each author's latest change in the document (its signed change vouches for the
    /// author's others: what a bundle carries, `docs/protocol.md`). Empty when unknown
    /// (a snapshot written before it was kept, or only the record was read).
    pub latest: Vec<ChangeHash>,
    /// The validated record read from it, as JSON (spares reading the whole document).
    pub record: Vec<u8>,
}

/// Where a document held in its saved form is read from when first needed: the store
/// (which implements it), so that this module reads no disk itself.
pub trait SavedSource: std::fmt::Debug + Send + Sync {
    /// The saved document (Automerge's compressed form) with exactly these heads, if it
    /// is still there.
    fn saved_document(
        &self,
        document: &DocumentId,
        heads: &[ChangeHash],
    ) -> Result<Option<Vec<u8>>, String>;
    /// Every verified signed change of the document, to rebuild it.
    fn signed_changes(&self, document: &DocumentId) -> Result<Vec<SignedChange>, String>;
}

/// A document kept in its saved form, in the store, until first needed (the bytes are
/// read again then: a national-scale node holds a thousand documents it rarely loads).
#[derive(Debug)]
struct Saved {
    /// Heads of the snapshot the record was read from: the snapshot read later must have
    /// them (else the document is rebuilt from its signed changes).
    heads: Vec<ChangeHash>,
    /// Where the snapshot and the signed changes are.
    source: std::sync::Arc<dyn SavedSource>,
}

/// A number never handed out before in this process.
fn next_generation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

pub(crate) fn json_to_hydrate(value: &serde_json::Value) -> automerge::hydrate::Value {
    use automerge::hydrate::Value as H;
    match value {
        serde_json::Value::Null => H::scalar(ScalarValue::Null),
        serde_json::Value::Bool(b) => H::scalar(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                H::scalar(i)
            } else if let Some(u) = n.as_u64() {
                H::scalar(u)
            } else {
                H::scalar(n.as_f64().unwrap_or(0.0))
            }
        }
        serde_json::Value::String(s) => H::scalar(s.as_str()),
        serde_json::Value::Array(items) => {
            H::from(items.iter().map(json_to_hydrate).collect::<Vec<_>>())
        }
        serde_json::Value::Object(map) => {
            let map: HashMap<String, H> = map
                .iter()
                .map(|(k, v)| (k.clone(), json_to_hydrate(v)))
                .collect();
            H::Map(map.into())
        }
    }
}

/// The JSON form of a hydrated Automerge value: how records were read before
/// [`crate::automerge_de`]; kept to check that both readings agree.
#[cfg(test)]
pub(crate) fn hydrate_to_json(value: &automerge::hydrate::Value) -> serde_json::Value {
    use automerge::hydrate::Value as H;
    use serde_json::Value as J;
    match value {
        H::Scalar(scalar) => match scalar {
            ScalarValue::Str(s) => J::String(s.to_string()),
            ScalarValue::Int(i) | ScalarValue::Timestamp(i) => J::from(*i),
            ScalarValue::Uint(u) => J::from(*u),
            ScalarValue::F64(f) => J::from(*f),
            ScalarValue::Boolean(b) => J::Bool(*b),
            ScalarValue::Counter(c) => serde_json::to_value(c).unwrap_or(J::Null),
            ScalarValue::Bytes(_) | ScalarValue::Unknown { .. } | ScalarValue::Null => J::Null,
        },
        H::Map(map) => J::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), hydrate_to_json(&v.value)))
                .collect(),
        ),
        H::List(list) => J::Array(list.iter().map(|v| hydrate_to_json(&v.value)).collect()),
        H::Text(text) => J::String(String::from(text)),
    }
}

fn to_json<T: Serialize>(value: &T) -> serde_json::Value {
    // Serialising our own model types to JSON cannot fail (no maps with non-string keys).
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// Each author's latest change (highest sequence number) in `doc`.
pub fn latest_by_author(doc: &mut AutoCommit) -> Vec<ChangeHash> {
    latest_of(
        doc.get_changes_meta(&[])
            .into_iter()
            .map(|meta| (meta.actor.to_bytes().to_vec(), meta.seq, meta.hash)),
    )
}

/// Of changes given as (author, sequence number, hash), each author's latest, sorted.
pub fn latest_of<A: std::hash::Hash + Eq>(
    changes: impl IntoIterator<Item = (A, u64, ChangeHash)>,
) -> Vec<ChangeHash> {
    let mut latest: HashMap<A, (u64, ChangeHash)> = HashMap::new();
    for (author, seq, hash) in changes {
        let entry = latest.entry(author).or_insert((seq, hash));
        if seq > entry.0 {
            *entry = (seq, hash);
        }
    }
    let mut hashes: Vec<ChangeHash> = latest.into_values().map(|(_, hash)| hash).collect();
    hashes.sort();
    hashes
}

/// What every replicated document (an organisation's, the network's) offers sync: its id
/// and its Automerge history.
pub trait Replica {
    /// The document id.
    fn replica_id(&self) -> &DocumentId;

    /// The Automerge document.
    fn automerge(&mut self) -> &mut AutoCommit;

    /// Current heads.
    fn heads(&mut self) -> Vec<ChangeHash> {
        self.automerge().get_heads()
    }

    /// True if the document holds this change.
    fn has_change(&mut self, hash: &ChangeHash) -> bool {
        self.automerge().get_change_meta_by_hash(hash).is_some()
    }

    /// Hashes of the changes not in the history of `heads`, in causal order.
    fn changes_after(&mut self, heads: &[ChangeHash]) -> Vec<ChangeHash> {
        self.automerge()
            .get_changes_meta(heads)
            .into_iter()
            .map(|m| m.hash)
            .collect()
    }
}

impl Replica for OrganisationDocument {
    fn replica_id(&self) -> &DocumentId {
        &self.id
    }

    fn automerge(&mut self) -> &mut AutoCommit {
        self.am()
    }

    fn heads(&mut self) -> Vec<ChangeHash> {
        match &self.saved {
            Some(saved) => saved.heads.clone(),
            None => self.doc.get_heads(),
        }
    }
}

impl OrganisationDocument {
    /// Creates the document of `secret`'s organisation with its first profile, and the
    /// signed genesis change.
    pub fn create(
        secret: &SigningSecret,
        mut profile: Profile,
        now: i64,
    ) -> Result<(Self, SignedChange), DocumentError> {
        model::validate_profile(&mut profile)?;
        let owner = secret.org_id();
        let id = DocumentId::organisation(&owner);
        let mut doc = AutoCommit::new().with_actor(ActorId::from(owner.as_bytes()));
        let root = serde_json::json!({
            "schema": SCHEMA_VERSION,
            "kind": "organisation",
            "org_id": owner.to_string(),
            "profile": to_json(&profile),
            "offices": {},
            "services": {},
            "referrals": {},
            "answers": {},
            "proposals": {},
        });
        if let automerge::hydrate::Value::Map(map) = json_to_hydrate(&root) {
            doc.init_root_from_hydrate(&map)?;
        }
        doc.commit_with(
            CommitOptions::default()
                .with_message(format!("create organisation {:?}", profile.name))
                .with_time(now),
        );
        let change = doc
            .get_last_local_change()
            .ok_or_else(|| DocumentError::Malformed {
                document: id.clone(),
                reason: "genesis produced no change".into(),
            })?;
        let signed = SignedChange::sign(id.clone(), change, secret);
        let mut this = Self {
            id,
            owner,
            doc,
            saved: None,
            record: None,
            generation: next_generation(),
            seqs: None,
        };
        this.refresh()?;
        Ok((this, signed))
    }

    /// An empty document for `owner`, to fill from stored or received changes.
    pub fn empty(owner: OrgId) -> Self {
        Self {
            id: DocumentId::organisation(&owner),
            owner,
            doc: AutoCommit::new().with_actor(ActorId::from(owner.as_bytes())),
            saved: None,
            record: None,
            generation: next_generation(),
            seqs: None,
        }
    }

    /// The document from a saved snapshot (Automerge's compressed format).
    pub fn from_snapshot(owner: OrgId, bytes: &[u8]) -> Result<Self, DocumentError> {
        // Loading gives a random actor: bind it to the owner's key again.
        let doc = crate::automerge_guard::load_autocommit(bytes)
            .map_err(|reason| DocumentError::Malformed {
                document: DocumentId::organisation(&owner),
                reason: reason.to_string(),
            })?
            .with_actor(ActorId::from(owner.as_bytes()));
        Ok(Self {
            id: DocumentId::organisation(&owner),
            owner,
            doc,
            saved: None,
            record: None,
            generation: next_generation(),
            seqs: None,
        })
    }

    /// The document from a snapshot whose record and heads are taken as they are, without
    /// loading it into Automerge until its history is first needed (see `saved`). The
    /// caller vouches that the snapshot holds exactly the changes stored for it.
    pub fn from_sufficient_snapshot(
        owner: OrgId,
        snapshot: Snapshot,
        source: std::sync::Arc<dyn SavedSource>,
    ) -> Result<Self, DocumentError> {
        let id = DocumentId::organisation(&owner);
        let record: OrganisationRecord =
            serde_json::from_slice(&snapshot.record).map_err(|e| DocumentError::Malformed {
                document: id.clone(),
                reason: format!("snapshot record: {e}"),
            })?;
        if record.org_id != owner.to_string() {
            return Err(DocumentError::Malformed {
                document: id,
                reason: format!("snapshot record names organisation {}", record.org_id),
            });
        }
        Ok(Self {
            id,
            owner,
            doc: AutoCommit::new().with_actor(ActorId::from(owner.as_bytes())),
            saved: Some(Saved {
                heads: snapshot.heads,
                source,
            }),
            record: Some(record),
            generation: next_generation(),
            seqs: None,
        })
    }

    /// True while the document is held in its saved form only.
    pub fn is_saved_only(&self) -> bool {
        self.saved.is_some()
    }

    /// Automerge's document, loaded from its saved form the first time. Should the saved
    /// form not load (it was written by this node, and sled checksums it, so this means a
    /// damaged disk), the document is rebuilt from its verified signed changes in the
    /// store; should that fail too, the error is logged and the document stays empty
    /// (its record, from the snapshot, still answers queries).
    fn am(&mut self) -> &mut AutoCommit {
        if let Some(saved) = self.saved.take() {
            let actor = ActorId::from(self.owner.as_bytes());
            let loaded = match saved.source.saved_document(&self.id, &saved.heads) {
                Ok(Some(bytes)) => {
                    crate::automerge_guard::load_autocommit(&bytes).map_err(|e| e.to_string())
                }
                Ok(None) => Err("its snapshot is gone, unreadable or replaced".to_owned()),
                Err(e) => Err(e),
            };
            match loaded {
                Ok(doc) => self.doc = doc.with_actor(actor),
                Err(e) => {
                    tracing::error!(document = %self.id, error = %e, "saved document does not load; rebuilding it from its signed changes");
                    let mut doc = AutoCommit::new().with_actor(actor);
                    let rebuilt = saved.source.signed_changes(&self.id).and_then(|changes| {
                        crate::automerge_guard::apply(
                            &mut doc,
                            changes.iter().map(|c| c.change().clone()).collect(),
                        )
                        .map_err(|e| e.to_string())
                    });
                    if let Err(e) = rebuilt {
                        tracing::error!(document = %self.id, error = %e, "the document cannot be rebuilt from the store either; restore the data folder from a backup");
                    }
                    self.doc = doc;
                }
            }
        }
        &mut self.doc
    }

    /// The document id.
    pub fn id(&self) -> &DocumentId {
        &self.id
    }

    /// The organisation that owns (and alone writes) it.
    pub fn owner(&self) -> OrgId {
        self.owner
    }

    /// The sequence number of `key`'s latest change in the document (0 if none). A new
    /// change by `key` must carry the next one: a lower one is an equivocation (two
    /// different changes with one number), which Automerge refuses.
    pub fn latest_seq(&mut self, key: &KeyId) -> u64 {
        if self.seqs.is_none() {
            self.seqs = Some(self.latest_seq_by_key().into_iter().collect());
        }
        self.seqs
            .as_ref()
            .and_then(|s| s.get(key).copied())
            .unwrap_or(0)
    }

    fn note_seqs<'c>(&mut self, changes: impl IntoIterator<Item = &'c automerge::Change>) {
        if let Some(seqs) = self.seqs.as_mut() {
            for change in changes {
                if let Ok(bytes) = <[u8; 32]>::try_from(change.actor_id().to_bytes())
                    && let Ok(key) = KeyId::from_bytes(bytes)
                {
                    let seq = seqs.entry(key).or_insert(0);
                    *seq = (*seq).max(change.seq());
                }
            }
        }
    }

    /// For each key that wrote the document, the sequence number of its latest change.
    pub fn latest_seq_by_key(&mut self) -> std::collections::BTreeMap<KeyId, u64> {
        let mut out = std::collections::BTreeMap::new();
        for meta in self.am().get_changes_meta(&[]) {
            if let Ok(bytes) = <[u8; 32]>::try_from(meta.actor.to_bytes())
                && let Ok(key) = KeyId::from_bytes(bytes)
            {
                let seq = out.entry(key).or_insert(0);
                *seq = (*seq).max(meta.seq);
            }
        }
        out
    }

    /// Number of changes in the document.
    pub fn change_count(&mut self) -> usize {
        self.am().get_changes_meta(&[]).len()
    }

    /// Saves the whole document in Automerge's compressed format.
    pub fn save(&mut self) -> Vec<u8> {
        self.am().save()
    }

    /// A snapshot for the store: the compressed document, its heads and the cached record.
    pub fn snapshot(&mut self) -> Snapshot {
        // One pass over the changes' metadata gives both the count and the latest.
        let metas: Vec<_> = self
            .am()
            .get_changes_meta(&[])
            .into_iter()
            .map(|meta| (meta.actor.to_bytes().to_vec(), meta.seq, meta.hash))
            .collect();
        Snapshot {
            changes: metas.len() as u64,
            heads: self.am().get_heads(),
            document: self.am().save(),
            latest: latest_of(metas),
            record: self
                .record
                .as_ref()
                .and_then(|r| serde_json::to_vec(r).ok())
                .unwrap_or_default(),
        }
    }

    /// A snapshot whose document part is `saved`, bytes that load as exactly this document
    /// (as it was received whole), with its `changes` count and each author's `latest`
    /// change: no save needed.
    pub fn snapshot_of_saved(
        &mut self,
        saved: Vec<u8>,
        changes: u64,
        latest: Vec<ChangeHash>,
    ) -> Snapshot {
        Snapshot {
            changes,
            heads: self.am().get_heads(),
            document: saved,
            latest,
            record: self
                .record
                .as_ref()
                .and_then(|r| serde_json::to_vec(r).ok())
                .unwrap_or_default(),
        }
    }

    /// Takes the record from a snapshot instead of reading the whole document, when the
    /// document's heads are exactly the snapshot's; otherwise (or if the cached record does
    /// not decode) reads the document.
    pub fn restore_record(&mut self, snapshot: &Snapshot) -> Result<(), DocumentError> {
        let mut heads = self.am().get_heads();
        heads.sort();
        let mut cached_heads = snapshot.heads.clone();
        cached_heads.sort();
        if heads == cached_heads
            && let Ok(record) = serde_json::from_slice::<OrganisationRecord>(&snapshot.record)
            && record.org_id == self.owner.to_string()
        {
            self.set_record(Some(record));
            return Ok(());
        }
        self.refresh()
    }

    /// Applies already-verified signed changes (from the store or a peer), then re-reads
    /// the document.
    pub fn apply_verified(&mut self, changes: &[SignedChange]) -> Result<(), DocumentError> {
        let batch = changes.iter().map(|c| c.change().clone()).collect();
        let applied = crate::automerge_guard::apply(self.am(), batch);
        if let Err(reason) = applied {
            // Automerge may have taken part of the batch, or stopped half way through a
            // change: forget what was cached; the caller rebuilds the document.
            self.seqs = None;
            self.doc = AutoCommit::new().with_actor(ActorId::from(self.owner.as_bytes()));
            return Err(DocumentError::Malformed {
                document: self.id.clone(),
                reason: reason.to_string(),
            });
        }
        self.note_seqs(changes.iter().map(SignedChange::change));
        self.refresh()
    }

    /// Takes `doc`, the whole document received at once and verified (a bundle), in place
    /// of this one, which holds nothing yet; then reads it (the same checks as
    /// [`OrganisationDocument::apply_verified`]).
    pub fn adopt(&mut self, doc: AutoCommit) -> Result<(), DocumentError> {
        self.doc = doc.with_actor(ActorId::from(self.owner.as_bytes()));
        self.saved = None;
        self.seqs = None;
        self.refresh()
    }

    /// Checks that the record's text holds no refused character ([`crate::text`]).
    pub fn check_text(&self) -> Result<(), DocumentError> {
        match &self.record {
            Some(record) => {
                crate::text::check_all(record).map_err(|error| DocumentError::UnsafeText {
                    document: self.id.clone(),
                    error,
                })
            }
            None => Ok(()),
        }
    }

    /// The cached reading of the document; `None` before the genesis change is applied.
    pub fn record(&self) -> Option<&OrganisationRecord> {
        self.record.as_ref()
    }

    fn set_record(&mut self, record: Option<OrganisationRecord>) {
        self.record = record;
        self.generation = next_generation();
    }

    /// Changes each time the record is set (re-read or restored), never goes back to a
    /// value it had: derived views compare it to know whether to refold.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Re-reads the whole document into its validated record.
    pub fn refresh(&mut self) -> Result<(), DocumentError> {
        if self.am().get(ROOT, "profile")?.is_none() {
            self.set_record(None);
            return Ok(());
        }
        let doc: &AutoCommit = self.am();
        let read = crate::automerge_guard::guarded("document", || {
            crate::automerge_de::from_object::<_, OrganisationRecord>(doc, ROOT)
        });
        let record = read.map_err(|reason| DocumentError::Malformed {
            document: self.id.clone(),
            reason: reason.to_string(),
        })?;
        if record.org_id != self.owner.to_string() {
            return Err(DocumentError::Malformed {
                document: self.id.clone(),
                reason: format!("it names organisation {}", record.org_id),
            });
        }
        for (id, draft) in &record.drafts {
            model::validate_draft(&mut draft.clone()).map_err(|e| DocumentError::Malformed {
                document: self.id.clone(),
                reason: format!("draft {id}: {e}"),
            })?;
        }
        if record.addresses.len() > model::MAX_ADDRESSED_NODES {
            return Err(DocumentError::Malformed {
                document: self.id.clone(),
                reason: format!(
                    "addresses of {} nodes; at most {}",
                    record.addresses.len(),
                    model::MAX_ADDRESSED_NODES
                ),
            });
        }
        for (key, entry) in &record.addresses {
            model::validate_addresses(key, entry).map_err(|e| DocumentError::Malformed {
                document: self.id.clone(),
                reason: format!("node {key}: {e}"),
            })?;
        }
        board::check_record(&self.owner, &record).map_err(|reason| {
            DocumentError::IllegalReferral {
                document: self.id.clone(),
                reason,
            }
        })?;
        self.set_record(Some(record));
        Ok(())
    }

    fn require_record(&self) -> Result<&OrganisationRecord, DocumentError> {
        self.record
            .as_ref()
            .ok_or_else(|| DocumentError::Malformed {
                document: self.id.clone(),
                reason: "it has no profile yet".into(),
            })
    }

    fn child(
        &mut self,
        parent: &automerge::ObjId,
        key: &str,
    ) -> Result<automerge::ObjId, DocumentError> {
        match self.am().get(parent, key)? {
            Some((automerge::Value::Object(ObjType::Map), id)) => Ok(id),
            _ => Err(DocumentError::Malformed {
                document: self.id.clone(),
                reason: format!("{key:?} is missing or not a map"),
            }),
        }
    }

    /// Validates `edit`, applies it as one change committed at `now`, and signs it.
    /// On any error the document is left as it was.
    pub fn apply_edit(
        &mut self,
        edit: &Edit,
        secret: &SigningSecret,
        now: i64,
    ) -> Result<SignedChange, DocumentError> {
        if secret.key_id() != self.owner.key() {
            return Err(DocumentError::NotOwner {
                document: self.id.clone(),
                owner: self.owner,
            });
        }
        self.apply_delegated_edit(edit, secret, now)
    }

    /// Like [`OrganisationDocument::apply_edit`], signed by a device key of the owner. The
    /// caller has checked that the network's membership authorises that key; every other
    /// node checks it again.
    pub fn apply_delegated_edit(
        &mut self,
        edit: &Edit,
        secret: &SigningSecret,
        now: i64,
    ) -> Result<SignedChange, DocumentError> {
        // 1. Validate and compute the new value (pure; touches only the entry concerned).
        let (message, update) = plan(edit, self.require_record()?, &self.owner, now)?;
        // Every local change must carry the signer's key as its actor (see envelope).
        self.am()
            .set_actor(ActorId::from(secret.key_id().as_bytes()));
        // 2. Write it as one transaction.
        if let Err(e) = self.write(&update) {
            self.am().rollback();
            return Err(e);
        }
        self.am().commit_with(
            CommitOptions::default()
                .with_message(message)
                .with_time(now),
        );
        let change = self
            .am()
            .get_last_local_change()
            .ok_or_else(|| DocumentError::Malformed {
                document: self.id.clone(),
                reason: "edit produced no change".into(),
            })?;
        // 3. Keep the cached record and sequence numbers in step with the document.
        if let Some(record) = self.record.as_mut() {
            update.apply_to(record);
            self.generation = next_generation();
        }
        self.note_seqs([&change]);
        Ok(SignedChange::sign(self.id.clone(), change, secret))
    }

    /// Writes `update` into the open transaction.
    fn write(&mut self, update: &Update) -> Result<(), DocumentError> {
        let (section, id, value) = match update {
            Update::Profile(profile) => {
                let obj = self.child(&ROOT, "profile")?;
                return self.update_object(&obj, to_json(profile));
            }
            Update::PutOffice(id, office) => ("offices", id, Some(to_json(office))),
            Update::RemoveOffice(id) => ("offices", id, None),
            Update::PutService(id, service) => ("services", id, Some(to_json(service))),
            Update::RemoveService(id) => ("services", id, None),
            Update::EncryptionKey(key) => {
                self.am().put(ROOT, "encryption_key", key.to_string())?;
                return Ok(());
            }
            Update::PutReferral(id, referral) => ("referrals", id, Some(to_json(referral))),
            Update::PutProposal(id, proposal) => ("proposals", id, Some(to_json(proposal))),
            Update::PutDraft(id, draft) => ("drafts", id, Some(to_json(draft))),
            Update::RemoveDraft(id) => ("drafts", id, None),
            Update::PutAddresses(key, entry) => ("addresses", key, Some(to_json(entry))),
            Update::PutClaim(id, claim) => ("claims", id, Some(to_json(claim))),
            Update::AppendSentMove(id, step) => {
                let referrals = self.section(&ROOT, "referrals")?;
                let referral = self.child(&referrals, id)?;
                return self.append_move(&referral, step);
            }
            Update::AppendAnswer(id, sender, step) => {
                let answers = self.section(&ROOT, "answers")?;
                let answer = match self.am().get(&answers, id.as_str())? {
                    Some((automerge::Value::Object(ObjType::Map), obj)) => obj,
                    _ => {
                        let value = to_json(&Answer {
                            sender: *sender,
                            moves: Vec::new(),
                        });
                        self.am().batch_create_object(
                            &answers,
                            id.as_str(),
                            &json_to_hydrate(&value),
                            false,
                        )?
                    }
                };
                return self.append_move(&answer, step);
            }
            Update::Assign(id, assignment) => {
                let referrals = self.section(&ROOT, "referrals")?;
                let referral = self.child(&referrals, id)?;
                self.am().batch_create_object(
                    &referral,
                    "assigned",
                    &json_to_hydrate(&to_json(assignment)),
                    false,
                )?;
                return Ok(());
            }
        };
        let parent = if matches!(
            section,
            "referrals" | "proposals" | "drafts" | "claims" | "addresses"
        ) {
            self.section(&ROOT, section)?
        } else {
            self.child(&ROOT, section)?
        };
        match (value, self.am().get(&parent, id.as_str())?) {
            // Update in place: only the fields whose values changed become operations.
            (Some(value), Some((_, obj))) => self.update_object(&obj, value)?,
            (Some(value), None) => {
                self.am().batch_create_object(
                    &parent,
                    id.as_str(),
                    &json_to_hydrate(&value),
                    false,
                )?;
            }
            (None, _) => self.am().delete(&parent, id.as_str())?,
        }
        Ok(())
    }

    /// A root section created by the genesis change (or, for a document made before it
    /// had one, created now).
    fn section(
        &mut self,
        parent: &automerge::ObjId,
        key: &str,
    ) -> Result<automerge::ObjId, DocumentError> {
        match self.am().get(parent, key)? {
            Some((automerge::Value::Object(ObjType::Map), id)) => Ok(id),
            None => Ok(self.am().put_object(parent, key, ObjType::Map)?),
            _ => Err(DocumentError::Malformed {
                document: self.id.clone(),
                reason: format!("{key:?} is not a map"),
            }),
        }
    }

    /// Appends a move to the `moves` list of a referral or answer object.
    fn append_move(
        &mut self,
        parent: &automerge::ObjId,
        step: &MoveRecord,
    ) -> Result<(), DocumentError> {
        let moves = match self.am().get(parent, "moves")? {
            Some((automerge::Value::Object(ObjType::List), id)) => id,
            None => self.am().put_object(parent, "moves", ObjType::List)?,
            _ => {
                return Err(DocumentError::Malformed {
                    document: self.id.clone(),
                    reason: "\"moves\" is not a list".into(),
                });
            }
        };
        let at = self.am().length(&moves);
        let obj = self.am().insert_object(&moves, at, ObjType::Map)?;
        self.update_object(&obj, to_json(step))
    }

    fn update_object(
        &mut self,
        obj: &automerge::ObjId,
        value: serde_json::Value,
    ) -> Result<(), DocumentError> {
        self.am()
            .update_object(obj, &json_to_hydrate(&value))
            .map_err(|e| DocumentError::Malformed {
                document: self.id.clone(),
                reason: e.to_string(),
            })
    }

    /// The signed change log, newest first, at most `limit` entries.
    pub fn history(&mut self, limit: usize) -> Vec<HistoryEntry> {
        let mut entries: Vec<HistoryEntry> = self
            .am()
            .get_changes_meta(&[])
            .into_iter()
            .map(|meta| {
                let author = <[u8; 32]>::try_from(meta.actor.to_bytes())
                    .ok()
                    .and_then(|bytes| OrgId::from_bytes(bytes).ok());
                HistoryEntry {
                    hash: meta.hash.to_string(),
                    author: author
                        .map(|a| a.to_string())
                        .unwrap_or_else(|| meta.actor.to_hex_string()),
                    author_fingerprint: author.map(|a| a.fingerprint()).unwrap_or_default(),
                    seq: meta.seq,
                    time: meta.timestamp,
                    message: meta.message.map(|m| m.into_owned()).unwrap_or_default(),
                }
            })
            .collect();
        entries.reverse();
        entries.truncate(limit);
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Service;
    use crate::model::{Capacity, CapacityStatus, Cost, LegalStatus, ServiceArea, ServiceStatus};
    use crate::reference::taxonomy::Dimension;

    pub(crate) fn profile(name: &str) -> Profile {
        Profile {
            acronym: Some("CE".into()),
            legal_status: Some(LegalStatus::Ngo),
            languages: vec!["fr".into()],
            ..Profile::named(name)
        }
    }

    fn service(name: &str) -> Service {
        Service {
            name: name.into(),
            description: None,
            dimension: Dimension::Psychosocial,
            categories: vec!["counselling".into()],
            eligibility: None,
            cost: Cost::Free,
            capacity: Capacity {
                status: CapacityStatus::Available,
                places: None,
            },
            languages: vec![],
            service_area: ServiceArea::default(),
            offices: vec![],
            schedule: None,
            required_documents: vec![],
            contact: None,
            status: ServiceStatus::Active,
            last_update: 0,
        }
    }

    /// A document built from `doc`'s changes alone, each signed by `secret`.
    fn replica_of(doc: &mut OrganisationDocument, secret: &SigningSecret) -> OrganisationDocument {
        let mut replica = OrganisationDocument::empty(secret.org_id());
        let changes: Vec<_> = doc
            .doc
            .get_changes(&[])
            .into_iter()
            .map(|c| SignedChange::sign(doc.id().clone(), c, secret))
            .collect();
        replica.apply_verified(&changes).unwrap();
        replica
    }

    #[test]
    fn edits_round_trip_through_automerge() {
        let secret = SigningSecret::generate().unwrap();
        let (mut doc, genesis) =
            OrganisationDocument::create(&secret, profile("Centre Espoir"), 1_700_000_000).unwrap();
        genesis.verify().unwrap();
        let add = doc
            .apply_edit(
                &Edit::AddService {
                    id: "svc-1".into(),
                    service: Box::new(service("Écoute")),
                },
                &secret,
                1_700_000_100,
            )
            .unwrap();
        add.verify().unwrap();
        let patch = serde_json::json!({"capacity": {"status": "full"}, "acronym": null});
        doc.apply_edit(
            &Edit::UpdateService {
                id: "svc-1".into(),
                patch: serde_json::json!({"capacity": {"status": "full"}})
                    .as_object()
                    .unwrap()
                    .clone(),
            },
            &secret,
            1_700_000_200,
        )
        .unwrap();
        doc.apply_edit(
            &Edit::SetProfile {
                patch: serde_json::json!({"acronym": null})
                    .as_object()
                    .unwrap()
                    .clone(),
            },
            &secret,
            1_700_000_300,
        )
        .unwrap();
        drop(patch);
        let cached = doc.record().unwrap().clone();
        doc.refresh().unwrap();
        assert_eq!(doc.record().unwrap(), &cached, "cache matches the document");
        assert_eq!(cached.profile.acronym, None);
        assert_eq!(
            cached.services["svc-1"].capacity.status,
            CapacityStatus::Full
        );
        assert_eq!(cached.services["svc-1"].last_update, 1_700_000_200);

        // A replica built from the signed changes alone reads the same.
        let replica = replica_of(&mut doc, &secret);
        assert_eq!(replica.record().unwrap(), &cached);
        let history = doc.history(10);
        assert_eq!(history.len(), 4);
        assert!(history[0].message.starts_with("update profile"));
        assert_eq!(history[3].time, 1_700_000_000);
    }

    #[test]
    fn a_record_reads_in_place_as_it_read_through_json() {
        let secret = SigningSecret::generate().unwrap();
        let (mut doc, _) =
            OrganisationDocument::create(&secret, profile("Centre Espoir"), 1_700_000_000).unwrap();
        for (id, name) in [("svc-1", "Écoute"), ("svc-2", "Formation")] {
            doc.apply_edit(
                &Edit::AddService {
                    id: id.into(),
                    service: Box::new(service(name)),
                },
                &secret,
                1_700_000_100,
            )
            .unwrap();
        }
        let am = doc.am();
        let direct: OrganisationRecord = crate::automerge_de::from_object(&*am, ROOT).unwrap();
        let hydrated = am.hydrate(ROOT, None).unwrap();
        let via_json: OrganisationRecord =
            serde_json::from_value(hydrate_to_json(&hydrated)).unwrap();
        assert_eq!(
            serde_json::to_value(&direct).unwrap(),
            serde_json::to_value(&via_json).unwrap()
        );
        assert_eq!(direct.services.len(), 2);
    }

    #[test]
    fn a_node_publishes_its_addresses_and_a_replica_reads_them_within_bounds() {
        let secret = SigningSecret::generate().unwrap();
        let (mut doc, _) =
            OrganisationDocument::create(&secret, profile("Centre Espoir"), 1_700_000_000).unwrap();
        let key = secret.key_id();
        let addresses = vec![
            "/ip4/11.0.0.1/tcp/4690/p2p/12D3KooWRelay/p2p-circuit".to_owned(),
            "/dns4/espoir.example.cm/tcp/4690".to_owned(),
        ];
        for (at, list) in [
            (1_700_000_100, addresses.clone()),
            (1_700_000_200, addresses[1..].to_vec()),
        ] {
            doc.apply_edit(
                &Edit::SetAddresses {
                    key,
                    addresses: list,
                },
                &secret,
                at,
            )
            .unwrap();
        }
        let entry = doc.record().unwrap().addresses[&key.to_string()].clone();
        assert_eq!(entry.addresses, addresses[1..]);
        assert_eq!(entry.updated, 1_700_000_200);
        // Read back from the changes alone, the same.
        let replica = replica_of(&mut doc, &secret);
        assert_eq!(replica.record().unwrap().addresses[&key.to_string()], entry);
        // Too many, too long, or not an address: refused, naming the field.
        for bad in [
            vec!["/ip4/192.0.2.1/tcp/4690".to_owned(); crate::model::MAX_NODE_ADDRESSES + 1],
            vec![format!(
                "/dns4/{}",
                "a".repeat(crate::model::MAX_ADDRESS_CHARS)
            )],
            vec!["192.0.2.1:4690".to_owned()],
        ] {
            let refused = doc
                .apply_edit(
                    &Edit::SetAddresses {
                        key,
                        addresses: bad,
                    },
                    &secret,
                    1_700_000_300,
                )
                .unwrap_err();
            assert!(refused.to_string().contains("addresses"), "{refused}");
        }
    }

    #[test]
    fn refused_edit_leaves_document_untouched() {
        let secret = SigningSecret::generate().unwrap();
        let (mut doc, _) =
            OrganisationDocument::create(&secret, profile("Centre Espoir"), 1).unwrap();
        let heads = doc.heads();
        let mut bad = service("Écoute");
        bad.categories = vec!["unknown".into()];
        let err = doc
            .apply_edit(
                &Edit::AddService {
                    id: "svc-1".into(),
                    service: Box::new(bad),
                },
                &secret,
                2,
            )
            .unwrap_err();
        assert!(matches!(err, DocumentError::Invalid(_)));
        assert_eq!(doc.heads(), heads);
        let err = doc
            .apply_edit(&Edit::RemoveService { id: "svc-9".into() }, &secret, 3)
            .unwrap_err();
        assert!(matches!(err, DocumentError::NotFound { .. }));
        let other = SigningSecret::generate().unwrap();
        let err = doc
            .apply_edit(&Edit::RemoveService { id: "svc-9".into() }, &other, 3)
            .unwrap_err();
        assert!(matches!(err, DocumentError::NotOwner { .. }));
        assert_eq!(doc.heads(), heads);
    }

    #[test]
    fn edits_after_reloading_a_snapshot_stay_bound_to_the_owner() {
        let secret = SigningSecret::generate().unwrap();
        let (mut doc, _) =
            OrganisationDocument::create(&secret, profile("Centre Espoir"), 1).unwrap();
        let bytes = doc.save();
        let mut reloaded = OrganisationDocument::from_snapshot(secret.org_id(), &bytes).unwrap();
        reloaded.refresh().unwrap();
        let change = reloaded
            .apply_edit(
                &Edit::AddService {
                    id: "svc-2".into(),
                    service: Box::new(service("Groupe de parole")),
                },
                &secret,
                2,
            )
            .unwrap();
        change.verify().unwrap();
        assert_eq!(change.change().seq(), 2);
    }

    #[test]
    fn cached_record_is_used_only_when_heads_match() {
        let secret = SigningSecret::generate().unwrap();
        let (mut doc, _) =
            OrganisationDocument::create(&secret, profile("Centre Espoir"), 1).unwrap();
        let snapshot = doc.snapshot();
        // Same heads: the cached record is taken as it is.
        let mut reloaded =
            OrganisationDocument::from_snapshot(secret.org_id(), &snapshot.document).unwrap();
        let mut doctored = snapshot.clone();
        let mut record: OrganisationRecord = serde_json::from_slice(&snapshot.record).unwrap();
        record.profile.acronym = Some("CACHE".into());
        doctored.record = serde_json::to_vec(&record).unwrap();
        reloaded.restore_record(&doctored).unwrap();
        assert_eq!(
            reloaded.record().unwrap().profile.acronym.as_deref(),
            Some("CACHE")
        );
        // Other heads, or an unreadable cache: the document itself is read.
        doctored.heads = vec![ChangeHash([1; 32])];
        reloaded.restore_record(&doctored).unwrap();
        assert_eq!(
            reloaded.record().unwrap().profile.acronym.as_deref(),
            Some("CE")
        );
        let mut garbage = snapshot.clone();
        garbage.record = b"not json".to_vec();
        reloaded.restore_record(&garbage).unwrap();
        assert_eq!(reloaded.record().unwrap(), doc.record().unwrap());
    }
}
