//! The referral board: what organisations' documents hold of each referral, the checks
//! every node makes on it, and the merged view (the "board") computed from both sides.
//!
//! Rules:
//! - Each side writes only its own document. The sender's document holds the referral
//!   (`referrals/<id>`: receiver, service, dates, the commitment to the case file) and the
//!   sender's moves (withdraw, expire, entered in error, and for an open referral the
//!   assignment); the receiver's holds its answers (`answers/<id>`: accept, decline, start,
//!   waitlist, complete, fail). A member offering an open referral's category proposes in
//!   its own document (`proposals/<id>`).
//! - Every move records the status its author saw (`from`). A document whose moves are not
//!   legal by themselves (a receiver withdrawing, `pending → completed`, an answer by the
//!   sender, an expiry before the deadline) is refused by every node: [`check_sent`] and
//!   [`check_answer`] run when the document is read, so a change that breaks them does not
//!   apply.
//! - The status is a fold of both sides' moves in one order that depends only on the two
//!   documents: the receiver's moves in their order, each after the sender moves it had
//!   seen (`seen`), the sender's other moves after the receiver moves made concurrently
//!   (the receiver's answer counts first). A move that is not legal at its place is void:
//!   shown in the history with why, never applied.
//! - A move's time is its author's clock. A move dated before something its author had
//!   already seen (the referral's creation, its own earlier move, the sender moves a
//!   receiver move records as `seen`), by more than [`CLOCK_SKEW`], is flagged in the
//!   history (`clock`): the same on every node, since it depends only on the documents.
//!   It still applies (the documents say it happened), but the report counts such
//!   referrals apart from its timings.
//! - Each node also notes, for itself, a move that reached it dated more than
//!   [`CLOCK_SKEW`] after its arrival (its author's clock ahead), or published live more
//!   than [`LATE_ARRIVAL`] after its date (written offline, or backdated): an [`Arrival`]
//!   kept by that node, shown in the history (`arrival`) and counted apart like a clock
//!   flag. Moves a node fetches when it catches up are judged only for a date ahead of
//!   their arrival: a node that was itself offline does not blame their authors.
//! - Nothing here identifies a person: the case file is elsewhere ([`super::casefile`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::lifecycle::{Move, MoveError, Role, Status, decide};
use crate::identity::OrgId;
use crate::ids::ReferralId;
use crate::model::OrganisationRecord;
use crate::reference::{areas, taxonomy};

pub use crate::model::referral::{
    Answer, Assignment, MAX_DEADLINE_SECONDS, MAX_MOVES, MoveRecord, Priority, Proposal,
    SentReferral,
};

/// True for a well-formed referral id: `ref-` and 24 lower-case hex digits.
pub fn is_referral_id(id: &str) -> bool {
    ReferralId::parse(id).is_some()
}

fn check_moves(moves: &[MoveRecord], role: Role, deadline: i64) -> Result<(), String> {
    if moves.len() > MAX_MOVES {
        return Err(format!("more than {MAX_MOVES} moves"));
    }
    for (i, m) in moves.iter().enumerate() {
        decide(m.from, role, m.action, m.at, deadline)
            .map_err(|e| format!("move {} ({}): {e}", i + 1, m.action.target()))?;
    }
    Ok(())
}

/// The referral parts of an organisation's document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// A referral it sent.
    Referral,
    /// Its answer to a referral it received.
    Answer,
    /// Its proposal for an open referral.
    Proposal,
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Part::Referral => "referral",
            Part::Answer => "answer",
            Part::Proposal => "proposal",
        })
    }
}

/// A referral part a document may not hold: which, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{part} {id}: {reason}")]
pub struct IllegalRecord {
    /// Which part.
    pub part: Part,
    /// The referral id.
    pub id: String,
    /// What is wrong.
    pub reason: String,
}

impl IllegalRecord {
    fn new(part: Part, id: &str, reason: impl Into<String>) -> Self {
        Self {
            part,
            id: id.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Checks a referral held by `sender`'s document: its fields, and that each of the
/// sender's moves is one the sender may make from the status it saw.
pub fn check_sent(sender: &OrgId, id: &str, referral: &SentReferral) -> Result<(), IllegalRecord> {
    let fail = |reason: String| Err(IllegalRecord::new(Part::Referral, id, reason));
    if !is_referral_id(id) {
        return fail("not a referral id (ref- and 24 hex digits)".into());
    }
    match (&referral.receiver, &referral.service, referral.open) {
        (Some(receiver), Some(service), false) => {
            if receiver == sender {
                return fail("an organisation cannot refer to itself".into());
            }
            if service.is_empty() || referral.assigned.is_some() {
                return fail("a direct referral names a service and is not assigned".into());
            }
        }
        (None, None, true) => {}
        _ => {
            return fail(
                "a referral names a receiver and a service, or is open and names neither".into(),
            );
        }
    }
    if let Some(assigned) = &referral.assigned
        && (&assigned.receiver == sender || assigned.service.is_empty())
    {
        return fail("assigned to the sender itself or to no service".into());
    }
    let Some(category) = taxonomy::category(&referral.category) else {
        return fail(format!("unknown category {:?}", referral.category));
    };
    if category.dimension != referral.dimension {
        return fail(format!(
            "category {} is {}, not {}",
            category.code, category.dimension, referral.dimension
        ));
    }
    if areas::region(&referral.region).is_none() {
        return fail(format!("unknown region {:?}", referral.region));
    }
    if referral.deadline <= referral.created
        || referral.deadline - referral.created > MAX_DEADLINE_SECONDS
    {
        return fail("the deadline must be after creation and within a year".into());
    }
    if referral.commitment.len() != 64
        || !referral.commitment.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return fail("the case-file commitment is not 64 hex digits".into());
    }
    check_moves(&referral.moves, Role::Sender, referral.deadline).or_else(fail)
}

/// Checks the answers held by `receiver`'s document: each move is one the receiver may
/// make from the status it saw.
pub fn check_answer(receiver: &OrgId, id: &str, answer: &Answer) -> Result<(), IllegalRecord> {
    if !is_referral_id(id) {
        return Err(IllegalRecord::new(Part::Answer, id, "not a referral id"));
    }
    if &answer.sender == receiver {
        return Err(IllegalRecord::new(
            Part::Answer,
            id,
            "an organisation cannot answer itself",
        ));
    }
    check_moves(&answer.moves, Role::Receiver, i64::MAX)
        .map_err(|reason| IllegalRecord::new(Part::Answer, id, reason))
}

/// Checks the proposals held by `proposer`'s document.
pub fn check_proposal(
    proposer: &OrgId,
    id: &str,
    proposal: &Proposal,
) -> Result<(), IllegalRecord> {
    if !is_referral_id(id) || &proposal.sender == proposer || proposal.service.is_empty() {
        return Err(IllegalRecord::new(Part::Proposal, id, "malformed"));
    }
    Ok(())
}

/// Checks every referral part of an organisation's record (see the module rules).
pub fn check_record(owner: &OrgId, record: &OrganisationRecord) -> Result<(), IllegalRecord> {
    for (id, referral) in &record.referrals {
        check_sent(owner, id, referral)?;
    }
    for (id, answer) in &record.answers {
        check_answer(owner, id, answer)?;
    }
    for (id, proposal) in &record.proposals {
        check_proposal(owner, id, proposal)?;
    }
    Ok(())
}

/// How far two members' clocks may differ before a move dated before what its author had
/// seen is flagged.
pub const CLOCK_SKEW: i64 = 300;

/// How long after its date a move published live may reach a node before that node notes
/// it (an hour: a phone that lost its signal for a while is normal, a day is not).
pub const LATE_ARRIVAL: i64 = 3600;

/// Where a move is in its author's document: the n-th move of the sender's side (in the
/// referral) or of the receiver's (in its answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MovePlace {
    /// The sender's n-th move.
    Sender(u32),
    /// The receiver's n-th move.
    Receiver(u32),
}

/// When a move reached this node, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arrival {
    /// This node's clock when the move arrived.
    pub arrived: i64,
    /// True when it came as its author published it (live), not fetched in a catch-up.
    pub live: bool,
}

impl Arrival {
    /// What is noteworthy about a move dated `at` arriving so, in words, if anything: dated
    /// after it arrived (its author's clock ahead), or published live long after its date.
    pub fn note(&self, at: i64) -> Option<String> {
        let words = |seconds: i64| {
            let minutes = seconds / 60;
            if minutes >= 120 {
                format!("{} h", minutes / 60)
            } else {
                format!("{minutes} min")
            }
        };
        if at > self.arrived + CLOCK_SKEW {
            return Some(format!(
                "dated {} after it reached this node (its author's clock is ahead)",
                words(at - self.arrived)
            ));
        }
        (self.live && self.arrived > at + LATE_ARRIVAL).then(|| {
            format!(
                "published {} after its date (written offline, or backdated)",
                words(self.arrived - at)
            )
        })
    }
}

/// The moves a record holds, per referral: how many on the sender's side (its referrals)
/// and on the receiver's (its answers). What changed between two readings of a document
/// is what arrived.
pub fn move_counts(record: &OrganisationRecord) -> BTreeMap<(String, bool), usize> {
    let mut counts = BTreeMap::new();
    for (id, sent) in &record.referrals {
        counts.insert((id.clone(), true), sent.moves.len());
    }
    for (id, answer) in &record.answers {
        counts.insert((id.clone(), false), answer.moves.len());
    }
    counts
}

/// The moves of `record` that `before` (its earlier [`move_counts`]) did not hold: the
/// referral, the move's place and its date.
pub fn moves_since(
    record: &OrganisationRecord,
    before: &BTreeMap<(String, bool), usize>,
) -> Vec<(String, MovePlace, i64)> {
    let mut new = Vec::new();
    let mut side = |id: &String, sender: bool, moves: &[MoveRecord]| {
        let known = before.get(&(id.clone(), sender)).copied().unwrap_or(0);
        for (i, m) in moves.iter().enumerate().skip(known) {
            let place = if sender {
                MovePlace::Sender(i as u32)
            } else {
                MovePlace::Receiver(i as u32)
            };
            new.push((id.clone(), place, m.at));
        }
    };
    for (id, sent) in &record.referrals {
        side(id, true, &sent.moves);
    }
    for (id, answer) in &record.answers {
        side(id, false, &answer.moves);
    }
    new
}

/// The moves of `record` dated after `time`: what a catch-up batch may hold that is dated
/// ahead of its arrival (time only moves on, so such a move was ahead when it came too;
/// no need to know what the document held before).
pub fn moves_dated_after(record: &OrganisationRecord, time: i64) -> Vec<(String, MovePlace, i64)> {
    let mut found = Vec::new();
    for (id, sent) in &record.referrals {
        for (i, m) in sent.moves.iter().enumerate().filter(|(_, m)| m.at > time) {
            found.push((id.clone(), MovePlace::Sender(i as u32), m.at));
        }
    }
    for (id, answer) in &record.answers {
        for (i, m) in answer.moves.iter().enumerate().filter(|(_, m)| m.at > time) {
            found.push((id.clone(), MovePlace::Receiver(i as u32), m.at));
        }
    }
    found
}

/// One line of a board entry's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryLine {
    /// When (the author's clock).
    pub at: i64,
    /// Who moved it.
    pub by: Role,
    /// The move.
    #[serde(rename = "move")]
    pub action: Move,
    /// The status after it (unchanged when void).
    pub status: Status,
    /// Why it did not apply, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub void: Option<String>,
    /// When it is dated before something its author had already seen: how, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<String>,
    /// What this node noted of when it reached it ([`Arrival::note`]), if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival: Option<String>,
    /// Where the move is in its author's document (to find this node's arrival notes;
    /// not sent: the history is read in order).
    #[serde(skip)]
    pub place: Option<MovePlace>,
}

/// A proposal as the board shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProposalView {
    /// The proposing organisation.
    pub org: OrgId,
    /// Its service.
    pub service: String,
    /// When.
    pub at: i64,
    /// True if the sender chose it.
    pub chosen: bool,
}

/// A referral as every node sees it: both sides merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoardEntry {
    /// The referral id.
    pub id: ReferralId,
    /// The sending organisation.
    pub sender: OrgId,
    /// The receiving organisation, once known.
    pub receiver: Option<OrgId>,
    /// The receiver's service, once known.
    pub service: Option<String>,
    /// True for an open referral.
    pub open: bool,
    /// Dimension.
    pub dimension: taxonomy::Dimension,
    /// Category code.
    pub category: String,
    /// Region P-code.
    pub region: String,
    /// Routine or urgent.
    pub priority: Priority,
    /// When made.
    pub created: i64,
    /// Response deadline.
    pub deadline: i64,
    /// Where it stands.
    pub status: Status,
    /// The reason code of the last move that carried one (declined, waitlisted, …).
    pub reason: Option<super::lifecycle::Reason>,
    /// The outcome, once completed.
    pub outcome: Option<super::lifecycle::Outcome>,
    /// When the receiver first answered (accepted or declined).
    pub first_response: Option<i64>,
    /// When it reached a closed status.
    pub closed_at: Option<i64>,
    /// Commitment to the case file.
    pub commitment: String,
    /// Every move, applied or void, in the merged order.
    pub history: Vec<HistoryLine>,
    /// Members' offers for an open referral.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proposals: Vec<ProposalView>,
}

impl BoardEntry {
    /// Pending and past its deadline.
    pub fn overdue(&self, now: i64) -> bool {
        self.status == Status::Pending && now > self.deadline
    }

    /// Decides a new move by `role` on this entry at `now` (the local check).
    pub fn decide(&self, role: Role, action: Move, now: i64) -> Result<Status, MoveError> {
        decide(self.status, role, action, now, self.deadline)
    }

    /// True when a move of its history is dated before something its author had seen,
    /// or this node noted when it arrived.
    pub fn clock_flagged(&self) -> bool {
        self.history
            .iter()
            .any(|h| h.clock.is_some() || h.arrival.is_some())
    }

    /// Adds what this node noted of when each move arrived (`arrivals` by place).
    pub fn note_arrivals(&mut self, arrivals: &BTreeMap<MovePlace, Arrival>) {
        for line in &mut self.history {
            if let Some(arrival) = line.place.and_then(|p| arrivals.get(&p)) {
                line.arrival = arrival.note(line.at);
            }
        }
    }

    /// How many sender moves the board shows (what a receiver move records as `seen`).
    pub fn sender_moves(&self) -> u32 {
        self.history.iter().filter(|h| h.by == Role::Sender).count() as u32
    }
}

/// Folds one referral from its two sides (see the module rules).
pub fn fold(
    id: ReferralId,
    sender: OrgId,
    sent: &SentReferral,
    answer: Option<&Answer>,
    proposals: Vec<(OrgId, &Proposal)>,
) -> BoardEntry {
    let destination = sent.destination();
    let mut entry = BoardEntry {
        id,
        sender,
        receiver: destination.map(|(r, _)| r),
        service: destination.map(|(_, s)| s.to_owned()),
        open: sent.open,
        dimension: sent.dimension,
        category: sent.category.clone(),
        region: sent.region.clone(),
        priority: sent.priority,
        created: sent.created,
        deadline: sent.deadline,
        status: Status::Pending,
        reason: None,
        outcome: None,
        first_response: None,
        closed_at: None,
        commitment: sent.commitment.clone(),
        history: Vec::new(),
        proposals: proposals
            .into_iter()
            .filter(|(_, p)| p.sender == sender)
            .map(|(org, p)| ProposalView {
                org,
                service: p.service.clone(),
                at: p.at,
                chosen: sent
                    .assigned
                    .as_ref()
                    .is_some_and(|a| a.receiver == org && a.service == p.service),
            })
            .collect(),
    };
    // The answers count only when they come from the referral's receiver and name its sender.
    let receiver_moves: &[MoveRecord] = match answer {
        Some(a) if a.sender == sender && entry.receiver.is_some() => &a.moves,
        _ => &[],
    };
    let mut next_sender = 0usize;
    // The latest time each side's author had seen: the creation, its own moves, and for
    // the receiver the sender moves it records as seen.
    let mut sender_seen = sent.created;
    let mut receiver_seen = sent.created;
    for (i, r) in receiver_moves.iter().enumerate() {
        while next_sender < sent.moves.len() && next_sender < r.seen as usize {
            let s = &sent.moves[next_sender];
            let place = MovePlace::Sender(next_sender as u32);
            apply(&mut entry, Role::Sender, s, sender_seen, place);
            sender_seen = sender_seen.max(s.at);
            receiver_seen = receiver_seen.max(s.at);
            next_sender += 1;
        }
        apply(
            &mut entry,
            Role::Receiver,
            r,
            receiver_seen,
            MovePlace::Receiver(i as u32),
        );
        receiver_seen = receiver_seen.max(r.at);
    }
    for (i, s) in sent.moves.iter().enumerate().skip(next_sender) {
        apply(
            &mut entry,
            Role::Sender,
            s,
            sender_seen,
            MovePlace::Sender(i as u32),
        );
        sender_seen = sender_seen.max(s.at);
    }
    entry
}

/// Says how `at` is dated before `seen`, the latest time its author had seen.
fn clock_flag(at: i64, seen: i64) -> Option<String> {
    (at + CLOCK_SKEW < seen).then(|| {
        let minutes = (seen - at) / 60;
        let (amount, unit) = if minutes >= 120 {
            (minutes / 60, "h")
        } else {
            (minutes, "min")
        };
        format!("dated {amount} {unit} before a step its author had already seen")
    })
}

fn apply(entry: &mut BoardEntry, by: Role, m: &MoveRecord, seen: i64, place: MovePlace) {
    use super::lifecycle::Move as M;
    let result = decide(entry.status, by, m.action, m.at, entry.deadline);
    let void = match result {
        Ok(status) => {
            entry.status = status;
            match m.action {
                M::Decline { reason }
                | M::Withdraw { reason }
                | M::Waitlist { reason }
                | M::Fail { reason } => entry.reason = Some(reason),
                M::Complete { outcome } => entry.outcome = Some(outcome),
                _ => {}
            }
            if by == Role::Receiver && entry.first_response.is_none() {
                entry.first_response = Some(m.at);
            }
            if status.is_closed() && entry.closed_at.is_none() {
                entry.closed_at = Some(m.at);
            }
            None
        }
        Err(e) => Some(e.to_string()),
    };
    entry.history.push(HistoryLine {
        at: m.at,
        by,
        action: m.action,
        status: entry.status,
        void,
        clock: clock_flag(m.at, seen),
        arrival: None,
        place: Some(place),
    });
}

/// One referral's board entry, folded from the records held (one map lookup per
/// organisation, whatever the size of the board).
pub fn entry<'a>(
    id: ReferralId,
    records: impl IntoIterator<Item = (OrgId, &'a OrganisationRecord)>,
) -> Option<BoardEntry> {
    let records: BTreeMap<OrgId, &OrganisationRecord> = records.into_iter().collect();
    let text = id.to_string();
    let text = text.as_str();
    let (sender, sent) = records
        .iter()
        .find_map(|(org, r)| r.referrals.get(text).map(|sent| (*org, sent)))?;
    let answer = sent
        .destination()
        .and_then(|(receiver, _)| records.get(&receiver))
        .and_then(|r| r.answers.get(text));
    let proposals = records
        .iter()
        .filter_map(|(org, r)| r.proposals.get(text).map(|p| (*org, p)))
        .collect();
    Some(fold(id, sender, sent, answer, proposals))
}

/// The whole board from every organisation record held: one entry per referral, newest
/// first.
pub fn board<'a>(
    records: impl IntoIterator<Item = (OrgId, &'a OrganisationRecord)>,
) -> Vec<BoardEntry> {
    let records: BTreeMap<OrgId, &OrganisationRecord> = records.into_iter().collect();
    let mut proposals: BTreeMap<&str, Vec<(OrgId, &Proposal)>> = BTreeMap::new();
    for (org, record) in &records {
        for (id, proposal) in &record.proposals {
            proposals
                .entry(id.as_str())
                .or_default()
                .push((*org, proposal));
        }
    }
    let mut entries: Vec<BoardEntry> = records
        .iter()
        .flat_map(|(sender, record)| {
            let records = &records;
            let proposals = &proposals;
            // Records hold only well-formed ids (`check_sent`); any other is no referral.
            record.referrals.iter().filter_map(move |(id, sent)| {
                let referral = ReferralId::parse(id)?;
                let answer = sent
                    .destination()
                    .and_then(|(receiver, _)| records.get(&receiver))
                    .and_then(|r| r.answers.get(id));
                Some(fold(
                    referral,
                    *sender,
                    sent,
                    answer,
                    proposals.get(id.as_str()).cloned().unwrap_or_default(),
                ))
            })
        })
        .collect();
    entries.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
    entries
}

#[cfg(test)]
mod tests {
    use super::super::lifecycle::{Outcome, Reason};
    use super::*;
    use crate::identity::SigningSecret;

    fn org() -> OrgId {
        SigningSecret::generate()
            .map(|s| s.org_id())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    const ID: &str = "ref-0123456789abcdef01234567";

    fn id() -> ReferralId {
        ID.parse().expect("a referral id")
    }

    fn sent(receiver: OrgId) -> SentReferral {
        SentReferral {
            receiver: Some(receiver),
            service: Some("svc-1".into()),
            open: false,
            dimension: taxonomy::Dimension::Economic,
            category: "vocational_training".into(),
            region: "CM004".into(),
            priority: Priority::Urgent,
            created: 100,
            deadline: 1_000,
            commitment: "ab".repeat(32),
            assigned: None,
            moves: Vec::new(),
        }
    }

    fn mv(action: Move, from: Status, at: i64, seen: u32) -> MoveRecord {
        MoveRecord {
            action,
            from,
            at,
            seen,
        }
    }

    #[test]
    fn a_node_notes_a_move_dated_ahead_of_its_arrival_or_published_late() {
        let live = |arrived| Arrival {
            arrived,
            live: true,
        };
        let caught_up = |arrived| Arrival {
            arrived,
            live: false,
        };
        // On time, or within the clocks' skew: nothing.
        assert_eq!(live(10_000).note(10_000 - 60), None);
        assert_eq!(live(10_000).note(10_000 + CLOCK_SKEW), None);
        // Dated ahead of its arrival: the author's clock, whatever the path.
        let ahead = caught_up(10_000).note(10_000 + 3 * 3600).expect("ahead");
        assert!(ahead.contains("3 h after it reached"), "{ahead}");
        // Published live three hours after its date: noted; fetched in a catch-up: not.
        let late = live(10_000 + 3 * 3600).note(10_000).expect("late");
        assert!(late.contains("published 3 h after its date"), "{late}");
        assert_eq!(caught_up(10_000 + 3 * 3600).note(10_000), None);
        assert_eq!(live(10_000 + LATE_ARRIVAL).note(10_000), None);

        // What arrived is what a document's record holds beyond its earlier counts, at
        // the places the board gives its history lines.
        let (a, b) = (org(), org());
        let mut record = OrganisationRecord::new(a.to_string(), crate::model::Profile::named("x"));
        let mut referral = sent(b);
        referral.moves.push(mv(
            Move::Withdraw {
                reason: Reason::Other,
            },
            Status::Pending,
            150,
            0,
        ));
        record.referrals.insert(ID.into(), referral.clone());
        let before = move_counts(&record);
        assert_eq!(moves_since(&record, &before), vec![]);
        referral
            .moves
            .push(mv(Move::EnteredInError, Status::Withdrawn, 160, 0));
        record.referrals.insert(ID.into(), referral.clone());
        assert_eq!(
            moves_since(&record, &before),
            vec![(ID.to_owned(), MovePlace::Sender(1), 160)]
        );
        assert_eq!(
            moves_dated_after(&record, 155),
            vec![(ID.to_owned(), MovePlace::Sender(1), 160)]
        );
        assert_eq!(moves_dated_after(&record, 160), vec![]);
        let mut entry = fold(id(), a, &record.referrals[ID], None, Vec::new());
        entry.note_arrivals(&BTreeMap::from([(
            MovePlace::Sender(1),
            live(160 + 2 * 3600),
        )]));
        assert_eq!(entry.history[1].place, Some(MovePlace::Sender(1)));
        assert!(entry.history[1].arrival.is_some());
        assert!(entry.history[0].arrival.is_none());
        assert!(entry.clock_flagged());
    }

    #[test]
    fn a_legal_referral_passes_and_forged_moves_do_not() {
        let (a, b) = (org(), org());
        let mut referral = sent(b);
        check_sent(&a, ID, &referral).unwrap();
        // The sender cannot accept.
        referral
            .moves
            .push(mv(Move::Accept, Status::Pending, 200, 0));
        assert!(
            check_sent(&a, ID, &referral)
                .unwrap_err()
                .to_string()
                .contains("receiving")
        );
        // The receiver cannot withdraw, nor go from pending to completed.
        let answer = Answer {
            sender: a,
            moves: vec![mv(
                Move::Withdraw {
                    reason: Reason::Other,
                },
                Status::Pending,
                200,
                0,
            )],
        };
        assert!(check_answer(&b, ID, &answer).is_err());
        let answer = Answer {
            sender: a,
            moves: vec![mv(
                Move::Complete {
                    outcome: Outcome::Achieved,
                },
                Status::Pending,
                200,
                0,
            )],
        };
        assert!(
            check_answer(&b, ID, &answer)
                .unwrap_err()
                .to_string()
                .contains("pending cannot become completed")
        );
        // An expiry before the deadline.
        let mut referral = sent(b);
        referral
            .moves
            .push(mv(Move::Expire, Status::Pending, 500, 0));
        assert!(check_sent(&a, ID, &referral).is_err());
        referral.moves[0].at = 1_001;
        check_sent(&a, ID, &referral).unwrap();
        // Self-referral, bad ids, unknown category, a category of another dimension.
        assert!(check_sent(&a, ID, &sent(a)).is_err());
        assert!(check_sent(&a, "ref-1", &sent(b)).is_err());
        let mut referral = sent(b);
        referral.category = "housing".into();
        assert!(
            check_sent(&a, ID, &referral)
                .unwrap_err()
                .to_string()
                .contains("social")
        );
    }

    #[test]
    fn both_sides_fold_into_one_status_and_history() {
        let (a, b) = (org(), org());
        let referral = sent(b);
        let answer = Answer {
            sender: a,
            moves: vec![
                mv(Move::Accept, Status::Pending, 200, 0),
                mv(Move::Start, Status::Accepted, 300, 0),
                mv(
                    Move::Complete {
                        outcome: Outcome::Achieved,
                    },
                    Status::InProgress,
                    400,
                    0,
                ),
            ],
        };
        let entry = fold(id(), a, &referral, Some(&answer), Vec::new());
        assert_eq!(entry.status, Status::Completed);
        assert_eq!(entry.outcome, Some(Outcome::Achieved));
        assert_eq!(entry.first_response, Some(200));
        assert_eq!(entry.closed_at, Some(400));
        assert_eq!(entry.history.len(), 3);
        // An answer by someone else, or naming another sender, does not count.
        let stranger = Answer {
            sender: org(),
            moves: answer.moves.clone(),
        };
        assert_eq!(
            fold(id(), a, &referral, Some(&stranger), Vec::new()).status,
            Status::Pending
        );
    }

    #[test]
    fn concurrent_moves_resolve_the_same_way_receiver_first() {
        let (a, b) = (org(), org());
        let withdraw = Move::Withdraw {
            reason: Reason::ReferredElsewhere,
        };
        // The sender withdrew while the receiver accepted, neither seeing the other.
        let mut referral = sent(b);
        referral.moves.push(mv(withdraw, Status::Pending, 210, 0));
        let answer = Answer {
            sender: a,
            moves: vec![mv(Move::Accept, Status::Pending, 200, 0)],
        };
        let entry = fold(id(), a, &referral, Some(&answer), Vec::new());
        assert_eq!(entry.status, Status::Withdrawn);
        assert!(entry.history.iter().all(|h| h.void.is_none()));
        // The receiver completed concurrently with the withdrawal: completed stands, the
        // withdrawal is void.
        let answer = Answer {
            sender: a,
            moves: vec![
                mv(Move::Accept, Status::Pending, 200, 0),
                mv(
                    Move::Complete {
                        outcome: Outcome::PartiallyAchieved,
                    },
                    Status::Accepted,
                    205,
                    0,
                ),
            ],
        };
        let entry = fold(id(), a, &referral, Some(&answer), Vec::new());
        assert_eq!(entry.status, Status::Completed);
        assert!(entry.history.last().and_then(|h| h.void.as_ref()).is_some());
        // The receiver accepted after seeing the withdrawal: its accept is void.
        let answer = Answer {
            sender: a,
            moves: vec![mv(Move::Accept, Status::Withdrawn, 300, 1)],
        };
        let entry = fold(id(), a, &referral, Some(&answer), Vec::new());
        assert_eq!(entry.status, Status::Withdrawn);
        assert!(entry.history[1].void.is_some());
    }

    #[test]
    fn one_entry_folds_the_same_as_the_whole_board() {
        let (a, b) = (org(), org());
        let record = |owner: OrgId| {
            OrganisationRecord::new(owner.to_string(), crate::model::Profile::named("x"))
        };
        let (mut ra, mut rb) = (record(a), record(b));
        ra.referrals.insert(ID.into(), sent(b));
        ra.referrals
            .insert("ref-ffffffffffffffffffffffff".into(), sent(b));
        rb.answers.insert(
            ID.into(),
            Answer {
                sender: a,
                moves: vec![mv(Move::Accept, Status::Pending, 200, 0)],
            },
        );
        let all = board([(a, &ra), (b, &rb)]);
        assert_eq!(all.len(), 2);
        let one = entry(id(), [(a, &ra), (b, &rb)]).unwrap();
        assert_eq!(one.status, Status::Accepted);
        assert_eq!(all.iter().find(|e| e.id == id()), Some(&one));
        assert!(entry("ref-000000000000000000000000".parse().unwrap(), [(a, &ra)]).is_none());
    }

    #[test]
    fn an_open_referral_is_assigned_to_one_proposer() {
        let (a, b, c) = (org(), org(), org());
        let mut referral = sent(b);
        referral.receiver = None;
        referral.service = None;
        referral.open = true;
        check_sent(&a, ID, &referral).unwrap();
        let pb = Proposal {
            sender: a,
            service: "svc-b".into(),
            at: 150,
        };
        let pc = Proposal {
            sender: a,
            service: "svc-c".into(),
            at: 160,
        };
        let entry = fold(id(), a, &referral, None, vec![(b, &pb), (c, &pc)]);
        assert_eq!(entry.receiver, None);
        assert_eq!(entry.proposals.len(), 2);
        assert!(entry.proposals.iter().all(|p| !p.chosen));
        referral.assigned = Some(Assignment {
            receiver: c,
            service: "svc-c".into(),
            at: 170,
        });
        check_sent(&a, ID, &referral).unwrap();
        let entry = fold(id(), a, &referral, None, vec![(b, &pb), (c, &pc)]);
        assert_eq!(entry.receiver, Some(c));
        assert_eq!(
            entry
                .proposals
                .iter()
                .filter(|p| p.chosen)
                .map(|p| p.org)
                .collect::<Vec<_>>(),
            vec![c]
        );
    }
}
