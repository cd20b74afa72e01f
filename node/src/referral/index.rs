//! The board, kept folded between queries.
//!
//! [`super::board::board`] folds every referral of every document; at national scale
//! (100,000 referrals) that is half a second, too slow to do for each `referral list`. The
//! index keeps the folded entries and, when documents change, refolds only the referrals
//! those documents take part in (as sender, receiver or proposer).
//!
//! Rules:
//! - The index is derived from the records alone: after any sequence of updates it holds
//!   exactly what [`super::board::board`] would return for the same records (unit test).
//! - A document is recognised as changed by its record's generation (a number drawn from
//!   one process-wide counter each time a record is read), so a document that was replaced
//!   or re-read is never mistaken for the one the index saw.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::board::{BoardEntry, fold};
use crate::identity::OrgId;
use crate::model::OrganisationRecord;

/// Position of an entry in the board's order: newest first, then by id, then by sender.
type Position = (Reverse<i64>, String, OrgId);

/// What one document contributes to the board, as last indexed.
#[derive(Debug, Default, Clone)]
struct Contribution {
    generation: u64,
    sent: Vec<String>,
    answered: Vec<String>,
    proposed: Vec<String>,
}

impl Contribution {
    fn of(generation: u64, record: &OrganisationRecord) -> Self {
        Self {
            generation,
            sent: record.referrals.keys().cloned().collect(),
            answered: record.answers.keys().cloned().collect(),
            proposed: record.proposals.keys().cloned().collect(),
        }
    }

    fn ids(&self) -> impl Iterator<Item = &String> {
        self.sent
            .iter()
            .chain(self.answered.iter())
            .chain(self.proposed.iter())
    }
}

/// The folded board, updated document by document.
#[derive(Debug, Default)]
pub struct BoardIndex {
    contributions: HashMap<OrgId, Contribution>,
    /// Referral id → the documents that send it (one, unless a document reuses an id).
    senders: HashMap<String, Orgs>,
    /// Referral id → the members that proposed for it.
    proposers: HashMap<String, Orgs>,
    /// The folded entries, in the board's order.
    entries: BTreeMap<Position, BoardEntry>,
    /// Referral id → sender → when it was made: where its entries are in `entries`.
    located: HashMap<String, Vec<(OrgId, i64)>>,
}

impl BoardIndex {
    /// Brings the index up to date with `records` (every document held: owner, generation
    /// of its record, the record). Refolds only the referrals of documents whose generation
    /// changed, appeared or disappeared.
    pub fn update<'a>(
        &mut self,
        records: impl IntoIterator<Item = (OrgId, u64, &'a OrganisationRecord)>,
    ) {
        let records: BTreeMap<OrgId, (u64, &OrganisationRecord)> = records
            .into_iter()
            .map(|(org, generation, record)| (org, (generation, record)))
            .collect();
        let mut affected: BTreeSet<String> = BTreeSet::new();
        let gone: Vec<OrgId> = self
            .contributions
            .keys()
            .filter(|org| !records.contains_key(org))
            .copied()
            .collect();
        for org in gone {
            if let Some(old) = self.contributions.remove(&org) {
                self.forget(org, &old, &mut affected);
            }
        }
        for (org, (generation, record)) in &records {
            if self
                .contributions
                .get(org)
                .is_some_and(|c| c.generation == *generation)
            {
                continue;
            }
            if let Some(old) = self.contributions.remove(org) {
                self.forget(*org, &old, &mut affected);
            }
            let new = Contribution::of(*generation, record);
            for id in &new.sent {
                self.senders.entry(id.clone()).or_default().insert(*org);
            }
            for id in &new.proposed {
                self.proposers.entry(id.clone()).or_default().insert(*org);
            }
            affected.extend(new.ids().cloned());
            self.contributions.insert(*org, new);
        }
        for id in affected {
            self.refold(&id, &records);
        }
    }

    fn forget(&mut self, org: OrgId, old: &Contribution, affected: &mut BTreeSet<String>) {
        for id in &old.sent {
            remove_from(&mut self.senders, id, &org);
        }
        for id in &old.proposed {
            remove_from(&mut self.proposers, id, &org);
        }
        affected.extend(old.ids().cloned());
    }

    fn refold(&mut self, id: &str, records: &BTreeMap<OrgId, (u64, &OrganisationRecord)>) {
        if let Some(stale) = self.located.remove(id) {
            for (sender, created) in stale {
                self.entries
                    .remove(&(Reverse(created), id.to_owned(), sender));
            }
        }
        let Some(senders) = self.senders.get(id) else {
            return;
        };
        let proposals: Vec<_> = self
            .proposers
            .get(id)
            .into_iter()
            .flat_map(|orgs| &orgs.0)
            .filter_map(|org| {
                let (_, record) = records.get(org)?;
                Some((*org, record.proposals.get(id)?))
            })
            .collect();
        let mut located = Vec::with_capacity(senders.0.len());
        for sender in &senders.0 {
            let Some((_, record)) = records.get(sender) else {
                continue;
            };
            let Some(sent) = record.referrals.get(id) else {
                continue;
            };
            let answer = sent
                .destination()
                .and_then(|(receiver, _)| records.get(&receiver))
                .and_then(|(_, r)| r.answers.get(id));
            let entry = fold(id, *sender, sent, answer, proposals.clone());
            located.push((*sender, entry.created));
            self.entries
                .insert((Reverse(entry.created), id.to_owned(), *sender), entry);
        }
        if !located.is_empty() {
            self.located.insert(id.to_owned(), located);
        }
    }

    /// The entries, newest first (the order of [`super::board::board`]).
    pub fn entries(&self) -> impl Iterator<Item = &BoardEntry> {
        self.entries.values()
    }

    /// The entries of one referral id (one, unless a document reuses another's id).
    pub fn get(&self, id: &str) -> Vec<&BoardEntry> {
        self.located
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|(sender, created)| {
                self.entries
                    .get(&(Reverse(*created), id.to_owned(), *sender))
            })
            .collect()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if the board is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn remove_from(map: &mut HashMap<String, Orgs>, id: &str, org: &OrgId) {
    if let Some(set) = map.get_mut(id) {
        set.0.retain(|o| o != org);
        if set.0.is_empty() {
            map.remove(id);
        }
    }
}

/// A small sorted set of organisations (a referral has one sender and a few proposers: a
/// vector costs a few dozen bytes where a `BTreeSet` allocates a whole node).
#[derive(Debug, Default, Clone)]
struct Orgs(Vec<OrgId>);

impl Orgs {
    fn insert(&mut self, org: OrgId) {
        if let Err(at) = self.0.binary_search(&org) {
            self.0.insert(at, org);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::board::{
        Answer, Assignment, MoveRecord, Priority, Proposal, SentReferral, board as fold_all,
    };
    use super::super::lifecycle::{Move, Status};
    use super::*;
    use crate::identity::SigningSecret;
    use crate::model::Profile;
    use crate::reference::taxonomy::Dimension;

    fn org() -> OrgId {
        SigningSecret::generate()
            .map(|s| s.org_id())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn id(n: u32) -> String {
        format!("ref-{n:024x}")
    }

    fn sent(receiver: Option<OrgId>, created: i64) -> SentReferral {
        SentReferral {
            receiver,
            service: receiver.map(|_| "svc-1".into()),
            open: receiver.is_none(),
            dimension: Dimension::Economic,
            category: "vocational_training".into(),
            region: "CM004".into(),
            priority: Priority::Routine,
            created,
            deadline: created + 1_000,
            commitment: "ab".repeat(32),
            assigned: None,
            moves: Vec::new(),
        }
    }

    fn accept(sender: OrgId, at: i64) -> Answer {
        Answer {
            sender,
            moves: vec![MoveRecord {
                action: Move::Accept,
                from: Status::Pending,
                at,
                seen: 0,
            }],
        }
    }

    /// Each document: its record and a generation bumped by every change.
    struct Documents(BTreeMap<OrgId, (u64, OrganisationRecord)>, u64);

    impl Documents {
        fn change(&mut self, org: OrgId, edit: impl FnOnce(&mut OrganisationRecord)) {
            self.1 += 1;
            let generation = self.1;
            let (g, record) = self.0.entry(org).or_insert_with(|| {
                (
                    0,
                    OrganisationRecord::new(org.to_string(), Profile::named("x")),
                )
            });
            edit(record);
            *g = generation;
        }

        fn check(&self, index: &mut BoardIndex) {
            index.update(self.0.iter().map(|(org, (g, r))| (*org, *g, r)));
            let expected = fold_all(self.0.iter().map(|(org, (_, r))| (*org, r)));
            let indexed: Vec<BoardEntry> = index.entries().cloned().collect();
            assert_eq!(indexed, expected);
            assert_eq!(index.len(), expected.len());
            for entry in &expected {
                assert!(index.get(&entry.id).contains(&entry));
            }
        }
    }

    #[test]
    fn the_index_always_equals_the_board_folded_from_scratch() {
        let (a, b, c, d) = (org(), org(), org(), org());
        let mut docs = Documents(BTreeMap::new(), 0);
        let mut index = BoardIndex::default();
        docs.check(&mut index);
        for org in [a, b, c, d] {
            docs.change(org, |_| {});
        }
        docs.check(&mut index);
        // a refers to b twice, c once; same creation time for two (order by id).
        docs.change(a, |r| {
            r.referrals.insert(id(1), sent(Some(b), 100));
            r.referrals.insert(id(2), sent(Some(b), 100));
            r.referrals.insert(id(3), sent(Some(c), 50));
        });
        docs.check(&mut index);
        // b answers one: only the receiver's document changed.
        docs.change(b, |r| {
            r.answers.insert(id(1), accept(a, 150));
        });
        docs.check(&mut index);
        // An open referral from d, two proposals, then assigned to c, who answers.
        docs.change(d, |r| {
            r.referrals.insert(id(4), sent(None, 300));
        });
        for proposer in [b, c] {
            docs.change(proposer, |r| {
                r.proposals.insert(
                    id(4),
                    Proposal {
                        sender: d,
                        service: "svc-1".into(),
                        at: 310,
                    },
                );
            });
            docs.check(&mut index);
        }
        docs.change(d, |r| {
            if let Some(referral) = r.referrals.get_mut(&id(4)) {
                referral.assigned = Some(Assignment {
                    receiver: c,
                    service: "svc-1".into(),
                    at: 320,
                });
            }
        });
        docs.change(c, |r| {
            r.answers.insert(id(4), accept(d, 330));
        });
        docs.check(&mut index);
        // A document that reuses another's referral id: two entries, both kept.
        docs.change(c, |r| {
            r.referrals.insert(id(1), sent(Some(d), 400));
        });
        docs.check(&mut index);
        // The answer goes away (a re-read record without it), then a whole document does.
        docs.change(b, |r| {
            r.answers.clear();
        });
        docs.check(&mut index);
        docs.0.remove(&a);
        docs.check(&mut index);
        // Nothing changed: nothing to refold, same entries.
        docs.check(&mut index);
        assert_eq!(
            index.is_empty(),
            docs.0.values().all(|(_, r)| r.referrals.is_empty())
        );
    }
}
