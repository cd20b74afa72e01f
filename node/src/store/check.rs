//! Checking a store: every record read and verified, the damage named (`passerelle
//! status`, the background check, `passerelle repair`).

use automerge::ChangeHash;

use super::{Snapshot, SnapshotEncoding, Store, change_key, readable_key};
use crate::envelope::{DocumentId, SignedChange};

/// One damaged part of the store, as [`Store::check`] found it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Damage {
    /// The document whose records are damaged, when the damage is in a document's
    /// records (`org/…`, `net/…`); such a document can be fetched again from peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    /// The record or tree at fault, readable.
    pub record: String,
    /// What is wrong.
    pub reason: String,
}

/// What a full check of the store found ([`Store::check`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoreCheck {
    /// Documents checked.
    pub documents: usize,
    /// Changes decoded and verified.
    pub changes: usize,
    /// Other records read (snapshots, case files, audit, outbox, requests, meta).
    pub records: usize,
    /// Everything found damaged; empty when the store is sound.
    pub damaged: Vec<Damage>,
    /// The check was stopped before the end (the node stopped).
    #[serde(default)]
    pub interrupted: bool,
}

impl StoreCheck {
    /// The documents with damaged records.
    pub fn damaged_documents(&self) -> std::collections::BTreeSet<String> {
        self.damaged
            .iter()
            .filter_map(|d| d.document.clone())
            .collect()
    }
}

impl Store {
    /// Reads every record of the store and checks it: every change decodes, is stored
    /// under its own hash and document, and verifies (signed, or attested by a signed
    /// change of its author); every document received whole loads; every snapshot decodes,
    /// names heads that are stored changes, and its Automerge part loads with those heads;
    /// every other record can be read. Nothing is written. Damage is collected, not
    /// returned as an error, so one damaged record does not hide the others. Works one
    /// document at a time (the changes tree is sorted by document), so memory stays that
    /// of the largest document.
    pub fn check(&self) -> StoreCheck {
        self.check_until(&|| false)
    }

    /// [`Store::check`], stopping early (`interrupted`) as soon as `stop` says so.
    pub fn check_until(&self, stop: &dyn Fn() -> bool) -> StoreCheck {
        let mut report = StoreCheck::default();
        let damage = |report: &mut StoreCheck,
                      document: Option<&DocumentId>,
                      record: String,
                      reason: String| {
            report.damaged.push(Damage {
                document: document.map(|d| d.to_string()),
                record,
                reason,
            });
        };
        // Documents named anywhere, so that one whose changes cannot be read is still
        // found (and one whose only record is damaged too).
        let mut documents: std::collections::BTreeSet<DocumentId> = Default::default();
        for (name, tree) in [
            ("change-counts", &self.counts),
            ("snapshots", &self.snapshots),
            ("snapshot-documents", &self.snapshot_documents),
            ("documents-received-whole", &self.received_whole),
        ] {
            for entry in tree.iter() {
                match entry {
                    Ok((key, _)) => {
                        report.records += 1;
                        match String::from_utf8(key.to_vec())
                            .ok()
                            .and_then(|k| DocumentId::try_from(k).ok())
                        {
                            Some(id) => {
                                documents.insert(id);
                            }
                            None => damage(
                                &mut report,
                                None,
                                format!("{name}/{}", readable_key(&key)),
                                "its key is not a document id".into(),
                            ),
                        }
                    }
                    Err(e) => {
                        damage(&mut report, None, format!("{name} (tree)"), e.to_string());
                        break;
                    }
                }
            }
        }
        // The changes, one document at a time.
        let mut current: Option<(DocumentId, Vec<SignedChange>)> = None;
        let mut seen: std::collections::BTreeSet<DocumentId> = Default::default();
        let mut unreadable_after: Option<Vec<u8>> = None;
        let mut last_key: Vec<u8> = Vec::new();
        for entry in self.changes.iter() {
            let (key, value) = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    unreadable_after = Some(last_key.clone());
                    damage(
                        &mut report,
                        None,
                        format!("changes (tree, after {})", readable_key(&last_key)),
                        e.to_string(),
                    );
                    break;
                }
            };
            last_key = key.to_vec();
            if stop() {
                report.interrupted = true;
                return report;
            }
            let named = key
                .iter()
                .position(|b| *b == 0)
                .and_then(|split| String::from_utf8(key[..split].to_vec()).ok())
                .and_then(|k| DocumentId::try_from(k).ok());
            let Some(id) = named else {
                damage(
                    &mut report,
                    None,
                    format!("changes/{}", readable_key(&key)),
                    "its key names no document".into(),
                );
                continue;
            };
            documents.insert(id.clone());
            seen.insert(id.clone());
            if current.as_ref().is_none_or(|(c, _)| *c != id) {
                if let Some((done, changes)) = current.take() {
                    self.check_document(&done, changes, &mut report);
                }
                current = Some((id.clone(), Vec::new()));
            }
            match SignedChange::decode(&value) {
                Ok(change)
                    if key.as_ref() == change_key(change.document(), &change.hash()).as_slice() =>
                {
                    if let Some((_, changes)) = current.as_mut() {
                        changes.push(change);
                    }
                }
                Ok(change) => damage(
                    &mut report,
                    Some(&id),
                    readable_key(&key),
                    format!(
                        "it holds change {} of {}, not the one its key names",
                        change.hash(),
                        change.document()
                    ),
                ),
                Err(e) => damage(&mut report, Some(&id), readable_key(&key), e.to_string()),
            }
        }
        if let Some((done, changes)) = current.take() {
            self.check_document(&done, changes, &mut report);
        }
        // Documents whose changes were never reached (the tree was unreadable past a
        // point, or their records are missing): checked through their own prefix.
        for id in &documents {
            if seen.contains(id) {
                continue;
            }
            if stop() {
                report.interrupted = true;
                return report;
            }
            let beyond = unreadable_after
                .as_ref()
                .is_some_and(|after| id.as_str().as_bytes() >= after.as_slice());
            let records = if beyond {
                match self.records_of(id) {
                    Ok(records) => records,
                    Err(e) => {
                        damage(&mut report, Some(id), id.to_string(), e.to_string());
                        continue;
                    }
                }
            } else {
                Vec::new()
            };
            if records.is_empty() {
                let counted = self.count_of(id).unwrap_or(0);
                let whole = self
                    .received_whole
                    .contains_key(id.as_str().as_bytes())
                    .unwrap_or(false);
                if counted > 0 && !whole {
                    damage(
                        &mut report,
                        Some(id),
                        format!("changes/{id}"),
                        format!("the store counts {counted} changes of it but holds none"),
                    );
                    continue;
                }
            }
            self.check_document(id, records, &mut report);
        }
        report.documents = documents.len();
        // Every other tree: each record must at least be readable.
        let checked: [&[u8]; 6] = [
            b"changes",
            b"change-counts",
            b"snapshots",
            b"snapshot-documents",
            b"documents-received-whole",
            b"__sled__default",
        ];
        for name in self.db.tree_names() {
            if checked.contains(&name.as_ref()) {
                continue;
            }
            let readable = String::from_utf8_lossy(&name).into_owned();
            let tree = match self.db.open_tree(&name) {
                Ok(tree) => tree,
                Err(e) => {
                    damage(
                        &mut report,
                        None,
                        format!("{readable} (tree)"),
                        e.to_string(),
                    );
                    continue;
                }
            };
            for entry in tree.iter() {
                match entry {
                    Ok(_) => report.records += 1,
                    Err(e) => {
                        damage(
                            &mut report,
                            None,
                            format!("{readable} (tree)"),
                            e.to_string(),
                        );
                        break;
                    }
                }
            }
        }
        report
    }

    /// Checks one document's changes (read from the changes tree), what it received
    /// whole, and its snapshot.
    pub(super) fn check_document(
        &self,
        id: &DocumentId,
        mut changes: Vec<SignedChange>,
        report: &mut StoreCheck,
    ) {
        let mut fail = |record: String, reason: String| {
            report.damaged.push(Damage {
                document: Some(id.to_string()),
                record,
                reason,
            });
        };
        let key = id.as_str().as_bytes();
        match self.received_whole.get(key) {
            Ok(Some(saved)) => {
                if let Err(e) = Self::add_received_whole(id, &saved, &mut changes) {
                    fail(format!("documents-received-whole/{id}"), e.to_string());
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => {
                fail(format!("documents-received-whole/{id}"), e.to_string());
                return;
            }
        }
        if let Err((index, error)) = SignedChange::verify_all(&changes) {
            fail(
                readable_key(&change_key(id, &changes[index].hash())),
                error.to_string(),
            );
            return;
        }
        report.changes += changes.len();
        let held: std::collections::HashSet<ChangeHash> =
            changes.iter().map(SignedChange::hash).collect();
        match self.snapshots.get(key) {
            Ok(Some(value)) => match Snapshot::decode_record(&value) {
                Some(snapshot) if snapshot.heads.iter().all(|h| held.contains(h)) => {
                    self.check_snapshot_document(id, &snapshot.heads, &mut fail);
                }
                Some(_) => fail(
                    format!("snapshots/{id}"),
                    "it names heads that are not stored changes".into(),
                ),
                None => fail(format!("snapshots/{id}"), "it does not decode".into()),
            },
            Ok(None) => {}
            Err(e) => fail(format!("snapshots/{id}"), e.to_string()),
        }
    }

    pub(super) fn check_snapshot_document(
        &self,
        id: &DocumentId,
        heads: &[ChangeHash],
        fail: &mut impl FnMut(String, String),
    ) {
        let value = match self.snapshot_documents.get(id.as_str().as_bytes()) {
            Ok(Some(value)) => value,
            Ok(None) => return,
            Err(e) => return fail(format!("snapshot-documents/{id}"), e.to_string()),
        };
        let Some(part) = Snapshot::decode_document(&value) else {
            return fail(
                format!("snapshot-documents/{id}"),
                "it does not decode".into(),
            );
        };
        if part.heads != heads {
            // An older part beside a newer record: the node rebuilds it; not damage.
            return;
        }
        if let Err(e) = crate::automerge_bounds::check_document(
            &part.document,
            crate::automerge_bounds::MAX_INFLATED_DOCUMENT,
        ) {
            return fail(format!("snapshot-documents/{id}"), e.to_string());
        }
        match crate::automerge_guard::load(&part.document) {
            Ok(doc) => {
                let mut loaded = doc.get_heads();
                loaded.sort();
                let mut expected = heads.to_vec();
                expected.sort();
                if loaded != expected {
                    fail(
                        format!("snapshot-documents/{id}"),
                        "its document has other heads than its record".into(),
                    );
                }
            }
            Err(e) => fail(
                format!("snapshot-documents/{id}"),
                format!("it does not load: {e}"),
            ),
        }
    }
}
