//! The board, kept folded between queries, in a compact form.
//!
//! [`super::board::board`] folds every referral of every document; at national scale
//! (100,000 referrals) that is half a second, too slow to do for each `referral list`, and
//! the folded entries (strings, histories) take more than a kilobyte each. The index keeps,
//! for each referral, only what `list` and housekeeping filter and order on (a
//! [`Summary`], about a hundred bytes), refolds only the referrals of documents that
//! changed, and folds whole entries again for the page shown ([`BoardIndex::entry`]).
//!
//! Rules:
//! - The index is derived from the records alone: after any sequence of updates its
//!   summaries, in order, are those of the entries [`super::board::board`] would return for
//!   the same records, and [`BoardIndex::entry`] gives each of those entries (unit test).
//! - A document is recognised as changed by its record's generation (a number drawn from
//!   one process-wide counter each time a record is read), so a document that was replaced
//!   or re-read is never mistaken for the one the index saw.
//! - Referral ids are held as their 12 bytes: records only ever hold well-formed ids
//!   (`ref-` and 24 hex digits; [`super::board::check_sent`], `check_answer` and
//!   `check_proposal` refuse any other), and the byte order is the order of the ids.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::board::{BoardEntry, fold};
use super::lifecycle::Status;
use crate::identity::OrgId;
use crate::ids::ReferralId;
use crate::model::OrganisationRecord;

/// Position of an entry in the board's order: newest first, then by id, then by sender.
type Position = (Reverse<i64>, ReferralId, OrgId);

/// What `list` and housekeeping filter on, for one board entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// The referral id.
    pub id: ReferralId,
    /// The sending organisation.
    pub sender: OrgId,
    /// The receiving organisation, once known.
    pub receiver: Option<OrgId>,
    /// True for an open referral.
    pub open: bool,
    /// Where it stands.
    pub status: Status,
    /// When made.
    pub created: i64,
    /// Response deadline.
    pub deadline: i64,
    /// When it reached a closed status.
    pub closed_at: Option<i64>,
}

impl Summary {
    #[cfg(test)]
    fn of(id: ReferralId, entry: &BoardEntry) -> Self {
        Self {
            id,
            sender: entry.sender,
            receiver: entry.receiver,
            open: entry.open,
            status: entry.status,
            created: entry.created,
            deadline: entry.deadline,
            closed_at: entry.closed_at,
        }
    }

    /// Pending and past its deadline (as [`BoardEntry::overdue`]).
    pub fn overdue(&self, now: i64) -> bool {
        self.status == Status::Pending && now > self.deadline
    }
}

/// What the index keeps of an entry besides its position.
#[derive(Debug, Clone, Copy)]
struct Facts {
    receiver: Option<OrgId>,
    open: bool,
    status: Status,
    deadline: i64,
    closed_at: Option<i64>,
}

/// What one document contributes to the board, as last indexed.
#[derive(Debug, Default, Clone)]
struct Contribution {
    generation: u64,
    sent: Vec<ReferralId>,
    answered: Vec<ReferralId>,
    proposed: Vec<ReferralId>,
}

impl Contribution {
    fn of(generation: u64, record: &OrganisationRecord) -> Self {
        let ids = |keys: &mut dyn Iterator<Item = &String>| -> Vec<ReferralId> {
            keys.filter_map(|id| ReferralId::parse(id)).collect()
        };
        Self {
            generation,
            sent: ids(&mut record.referrals.keys()),
            answered: ids(&mut record.answers.keys()),
            proposed: ids(&mut record.proposals.keys()),
        }
    }

    fn ids(&self) -> impl Iterator<Item = &ReferralId> {
        self.sent
            .iter()
            .chain(self.answered.iter())
            .chain(self.proposed.iter())
    }
}

/// Who takes part in one referral id.
#[derive(Debug, Default, Clone)]
struct Parties {
    /// The documents that send it (one, unless a document reuses another's id), with when
    /// each made it once indexed: where its entries are in `entries`.
    senders: Vec<(OrgId, Option<i64>)>,
    /// The members that proposed for it, sorted.
    proposers: Vec<OrgId>,
}

impl Parties {
    fn is_empty(&self) -> bool {
        self.senders.is_empty() && self.proposers.is_empty()
    }
}

/// The folded board, updated document by document.
#[derive(Debug, Default)]
pub struct BoardIndex {
    contributions: HashMap<OrgId, Contribution>,
    parties: HashMap<ReferralId, Parties>,
    /// The entries' summaries, in the board's order.
    entries: BTreeMap<Position, Facts>,
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
        let mut affected: BTreeSet<ReferralId> = BTreeSet::new();
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
                let senders = &mut self.parties.entry(*id).or_default().senders;
                if let Err(at) = senders.binary_search_by_key(org, |(o, _)| *o) {
                    senders.insert(at, (*org, None));
                }
            }
            for id in &new.proposed {
                let proposers = &mut self.parties.entry(*id).or_default().proposers;
                if let Err(at) = proposers.binary_search(org) {
                    proposers.insert(at, *org);
                }
            }
            affected.extend(new.ids().copied());
            self.contributions.insert(*org, new);
        }
        let lookup = |org: &OrgId| records.get(org).map(|(_, r)| *r);
        for id in affected {
            self.refold(id, &lookup);
        }
    }

    fn forget(&mut self, org: OrgId, old: &Contribution, affected: &mut BTreeSet<ReferralId>) {
        for id in &old.sent {
            if let Some(parties) = self.parties.get_mut(id) {
                if let Some(at) = parties.senders.iter().position(|(o, _)| *o == org)
                    && let (_, Some(created)) = parties.senders.remove(at)
                {
                    self.entries.remove(&(Reverse(created), *id, org));
                }
                if parties.is_empty() {
                    self.parties.remove(id);
                }
            }
        }
        for id in &old.proposed {
            if let Some(parties) = self.parties.get_mut(id) {
                parties.proposers.retain(|o| *o != org);
                if parties.is_empty() {
                    self.parties.remove(id);
                }
            }
        }
        affected.extend(old.ids().copied());
    }

    fn refold<'a>(
        &mut self,
        id: ReferralId,
        records: &impl Fn(&OrgId) -> Option<&'a OrganisationRecord>,
    ) {
        let Some(parties) = self.parties.get_mut(&id) else {
            return;
        };
        let text = id.to_string();
        for (sender, created) in &mut parties.senders {
            if let Some(stale) = created.take() {
                self.entries.remove(&(Reverse(stale), id, *sender));
            }
            let Some(entry) = fold_one(id, &text, *sender, &parties.proposers, records) else {
                continue;
            };
            *created = Some(entry.created);
            self.entries.insert(
                (Reverse(entry.created), id, *sender),
                Facts {
                    receiver: entry.receiver,
                    open: entry.open,
                    status: entry.status,
                    deadline: entry.deadline,
                    closed_at: entry.closed_at,
                },
            );
        }
    }

    /// The entries' summaries, newest first (the order of [`super::board::board`]).
    pub fn summaries(&self) -> impl Iterator<Item = Summary> + '_ {
        self.entries
            .iter()
            .map(|((Reverse(created), id, sender), facts)| Summary {
                id: *id,
                sender: *sender,
                receiver: facts.receiver,
                open: facts.open,
                status: facts.status,
                created: *created,
                deadline: facts.deadline,
                closed_at: facts.closed_at,
            })
    }

    /// The whole entry a summary stands for, folded from the records (`records`: the record
    /// of each document held, as given to [`Self::update`] last).
    pub fn entry<'a>(
        &self,
        summary: &Summary,
        records: impl Fn(&OrgId) -> Option<&'a OrganisationRecord>,
    ) -> Option<BoardEntry> {
        let proposers = self
            .parties
            .get(&summary.id)
            .map(|p| p.proposers.as_slice())
            .unwrap_or_default();
        fold_one(
            summary.id,
            &summary.id.to_string(),
            summary.sender,
            proposers,
            &records,
        )
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

/// The entry of referral `id` sent by `sender`, from the records.
fn fold_one<'a>(
    referral: ReferralId,
    id: &str,
    sender: OrgId,
    proposers: &[OrgId],
    records: &impl Fn(&OrgId) -> Option<&'a OrganisationRecord>,
) -> Option<BoardEntry> {
    let sent = records(&sender)?.referrals.get(id)?;
    let answer = sent
        .destination()
        .and_then(|(receiver, _)| records(&receiver))
        .and_then(|r| r.answers.get(id));
    let proposals = proposers
        .iter()
        .filter_map(|org| Some((*org, records(org)?.proposals.get(id)?)))
        .collect();
    Some(fold(referral, sender, sent, answer, proposals))
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
            let summaries: Vec<Summary> = index.summaries().collect();
            assert_eq!(summaries.len(), expected.len());
            assert_eq!(index.len(), expected.len());
            let lookup = |org: &OrgId| self.0.get(org).map(|(_, r)| r);
            for (summary, entry) in summaries.iter().zip(&expected) {
                let id = entry.id;
                assert_eq!(summary, &Summary::of(id, entry));
                assert_eq!(index.entry(summary, lookup).as_ref(), Some(entry));
            }
        }
    }

    #[test]
    fn referral_ids_are_held_in_twelve_bytes_in_the_order_of_their_text() {
        let ids = [
            "ref-000000000000000000000000",
            "ref-0123456789abcdef01234567",
            "ref-00000000000000000000000a",
            "ref-ffffffffffffffffffffffff",
        ];
        let mut parsed: Vec<ReferralId> = ids
            .iter()
            .map(|id| ReferralId::parse(id).expect("well formed"))
            .collect();
        for (id, parsed) in ids.iter().zip(&parsed) {
            assert_eq!(&parsed.to_string(), id);
        }
        parsed.sort();
        let mut sorted = ids.to_vec();
        sorted.sort();
        assert_eq!(
            parsed.iter().map(ReferralId::to_string).collect::<Vec<_>>(),
            sorted
        );
        for bad in [
            "ref-0123",
            "ref-0123456789ABCDEF01234567",
            "xyz-0123456789abcdef01234567",
            "ref-0123456789abcdef0123456g",
            "",
        ] {
            assert_eq!(ReferralId::parse(bad), None, "{bad}");
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
