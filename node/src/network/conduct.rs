//! How each peer has behaved: its request budgets and the abuse counted against it.
//!
//! A peer's conduct is remembered across its reconnections: a flooding peer that drops
//! its connection and dials again starts from the budget it had spent, not from a fresh
//! one (closing and redialling used to reset everything). What it is forgiven, it is
//! forgiven by time: the counts of dropped requests and refused changes are forgotten
//! after [`FORGIVEN_AFTER`] without a new one, and a peer gone that long is forgotten
//! altogether. At most [`MAX_REMEMBERED`] peers are remembered; past it the one gone the
//! longest is forgotten first.
//!
//! Pure bookkeeping: the caller passes the time and acts on the verdicts (drops the
//! request, cuts the peer off).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// Catch-up requests one peer may send a minute (a burst of as many, then refilled): an
/// honest node sends one every catch-up interval, and a few in a row after a change or
/// while it joins. Requests over the budget are dropped until it refills.
pub const SYNC_REQUESTS_PER_MINUTE: f64 = 300.0;
/// Catch-up requests of one peer served at once. An honest node never has more than one
/// in flight with a peer (two across a reconnection): a peer that sends more at once is
/// flooding, and past `MAX_OVER_BUDGET` (64) such requests it is cut off.
pub const MAX_SYNC_IN_FLIGHT: u32 = 4;
/// Admission requests one peer may send a minute.
pub const ADMISSION_REQUESTS_PER_MINUTE: f64 = 60.0;
/// Case-file messages one peer may send a minute: a node sends its whole outbox for a peer
/// when they connect and retries the ones not yet taken, so an office with many referrals
/// in flight sends many at once.
pub const CASE_MESSAGES_PER_MINUTE: f64 = 600.0;
/// Refused changes from one peer after which it is cut off.
pub const MAX_REJECTED_PER_PEER: u64 = 16;
/// Relay reservations or circuits asked by a peer that is not a member (no Passerelle
/// node asks before it is admitted) after which it is cut off.
pub const MAX_RELAY_REFUSED_PER_PEER: u64 = 8;
/// Catch-up requests sent over [`MAX_SYNC_IN_FLIGHT`] after which the peer is cut off.
pub const MAX_OVER_BUDGET: u64 = 64;
/// Requests dropped for exceeding the rate budget after which the peer is cut off: far more
/// than an honest node's bursts ever reach.
pub const MAX_RATE_LIMITED: u64 = 1000;
/// A peer's counts of dropped requests and refused changes are forgotten after this long
/// without a new one; a peer gone this long is forgotten altogether.
pub const FORGIVEN_AFTER: Duration = Duration::from_secs(600);
/// Most peers whose conduct is remembered.
pub const MAX_REMEMBERED: usize = 4096;

/// Kinds of request a peer's budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// A catch-up request (`/passerelle/sync`).
    Sync,
    /// An admission request.
    Admission,
    /// A case-file message.
    Case,
}

impl RequestKind {
    fn per_minute(self) -> f64 {
        match self {
            RequestKind::Sync => SYNC_REQUESTS_PER_MINUTE,
            RequestKind::Admission => ADMISSION_REQUESTS_PER_MINUTE,
            RequestKind::Case => CASE_MESSAGES_PER_MINUTE,
        }
    }
}

/// What to do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Serve it (a catch-up request is then in flight until [`Conduct::served`]).
    Serve,
    /// Drop it unanswered: the peer is over its budget.
    Drop,
    /// Drop it and cut the peer off, for this reason.
    CutOff(&'static str),
}

/// A per-peer budget of requests: refilled at a steady rate up to a burst.
#[derive(Debug, Clone, Copy)]
struct Budget {
    tokens: f64,
    last: Instant,
}

impl Budget {
    fn new(per_minute: f64, now: Instant) -> Self {
        Self {
            tokens: per_minute,
            last: now,
        }
    }

    /// Takes one request from the budget; false when it is spent.
    fn take(&mut self, per_minute: f64, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.last).as_secs_f64() * per_minute / 60.0;
        self.tokens = (self.tokens + refill).min(per_minute);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One peer's record.
#[derive(Debug)]
struct PeerConduct {
    sync: Option<Budget>,
    admission: Option<Budget>,
    case: Option<Budget>,
    /// Catch-up requests it sent beyond the number served at once (dropped).
    over_budget: u64,
    /// Requests it sent over its rate budget (dropped).
    rate_limited: u64,
    /// Changes it sent that were refused.
    rejected: u64,
    /// Relay reservations and circuits it asked for, refused as it is not a member.
    relay_refused: u64,
    /// When the last of those counts grew.
    last_offence: Instant,
    /// Its catch-up requests being served now.
    sync_in_flight: u32,
    /// Connected now, or when it went.
    gone_since: Option<Instant>,
}

impl PeerConduct {
    fn new(now: Instant) -> Self {
        Self {
            sync: None,
            admission: None,
            case: None,
            over_budget: 0,
            rate_limited: 0,
            rejected: 0,
            relay_refused: 0,
            last_offence: now,
            sync_in_flight: 0,
            gone_since: None,
        }
    }

    /// Forgets its offences once it has committed none for [`FORGIVEN_AFTER`].
    fn forgive(&mut self, now: Instant) {
        if now.saturating_duration_since(self.last_offence) >= FORGIVEN_AFTER {
            self.over_budget = 0;
            self.rate_limited = 0;
            self.rejected = 0;
            self.relay_refused = 0;
        }
    }

    fn offended(&mut self, now: Instant) {
        self.last_offence = now;
    }
}

/// Every remembered peer's conduct.
#[derive(Debug, Default)]
pub struct Conduct {
    peers: HashMap<PeerId, PeerConduct>,
}

impl Conduct {
    fn of(&mut self, peer: PeerId, now: Instant) -> &mut PeerConduct {
        if !self.peers.contains_key(&peer) && self.peers.len() >= MAX_REMEMBERED {
            self.forget_oldest();
        }
        let conduct = self
            .peers
            .entry(peer)
            .or_insert_with(|| PeerConduct::new(now));
        conduct.forgive(now);
        conduct
    }

    /// Judges one request of `kind` from `peer`. A catch-up request beyond
    /// [`MAX_SYNC_IN_FLIGHT`] at once counts as flooding; past [`MAX_OVER_BUDGET`] of those
    /// the peer is cut off. A request over the rate budget is dropped; past
    /// [`MAX_RATE_LIMITED`] of those the peer is cut off. A steady stream within one
    /// request at a time is only slowed.
    pub fn request(&mut self, peer: PeerId, kind: RequestKind, now: Instant) -> Verdict {
        let conduct = self.of(peer, now);
        if kind == RequestKind::Sync && conduct.sync_in_flight >= MAX_SYNC_IN_FLIGHT {
            conduct.over_budget += 1;
            conduct.offended(now);
            return if conduct.over_budget > MAX_OVER_BUDGET {
                Verdict::CutOff("too many catch-up requests at once")
            } else {
                Verdict::Drop
            };
        }
        let per_minute = kind.per_minute();
        let budget = match kind {
            RequestKind::Sync => &mut conduct.sync,
            RequestKind::Admission => &mut conduct.admission,
            RequestKind::Case => &mut conduct.case,
        };
        if budget
            .get_or_insert_with(|| Budget::new(per_minute, now))
            .take(per_minute, now)
        {
            if kind == RequestKind::Sync {
                conduct.sync_in_flight += 1;
            }
            return Verdict::Serve;
        }
        conduct.rate_limited += 1;
        conduct.offended(now);
        if conduct.rate_limited > MAX_RATE_LIMITED {
            Verdict::CutOff("far too many requests")
        } else {
            Verdict::Drop
        }
    }

    /// One of `peer`'s catch-up requests was answered (or given up).
    pub fn served(&mut self, peer: PeerId) {
        if let Some(conduct) = self.peers.get_mut(&peer) {
            conduct.sync_in_flight = conduct.sync_in_flight.saturating_sub(1);
        }
    }

    /// `refused` changes from `peer` were refused; the verdict says whether it is cut off.
    pub fn refused(&mut self, peer: PeerId, refused: u64, now: Instant) -> Verdict {
        let conduct = self.of(peer, now);
        conduct.rejected += refused;
        conduct.offended(now);
        if conduct.rejected > MAX_REJECTED_PER_PEER {
            Verdict::CutOff("too many refused changes")
        } else {
            Verdict::Drop
        }
    }

    /// `peer`, not a member, asked this node's relay for a reservation or a circuit; the
    /// verdict says whether it is cut off.
    pub fn relay_refused(&mut self, peer: PeerId, now: Instant) -> Verdict {
        let conduct = self.of(peer, now);
        conduct.relay_refused += 1;
        conduct.offended(now);
        if conduct.relay_refused > MAX_RELAY_REFUSED_PER_PEER {
            Verdict::CutOff("asks the relay again and again though not a member")
        } else {
            Verdict::Drop
        }
    }

    /// Changes from `peer` refused and not yet forgiven.
    pub fn rejected(&self, peer: &PeerId) -> u64 {
        self.peers.get(peer).map_or(0, |c| c.rejected)
    }

    /// `peer` connected (again): it is not forgotten while connected.
    pub fn connected(&mut self, peer: PeerId, now: Instant) {
        self.of(peer, now).gone_since = None;
    }

    /// `peer`'s last connection closed: its conduct is remembered for
    /// [`FORGIVEN_AFTER`], so that dialling again does not refill its budgets.
    pub fn disconnected(&mut self, peer: PeerId, now: Instant) {
        if let Some(conduct) = self.peers.get_mut(&peer) {
            conduct.gone_since = Some(now);
        }
    }

    /// Forgets the peers gone for [`FORGIVEN_AFTER`] with nothing of theirs in flight.
    pub fn forget_gone(&mut self, now: Instant) {
        self.peers.retain(|_, c| {
            c.sync_in_flight > 0
                || c.gone_since
                    .is_none_or(|gone| now.saturating_duration_since(gone) < FORGIVEN_AFTER)
        });
    }

    /// Peers remembered.
    pub fn remembered(&self) -> usize {
        self.peers.len()
    }

    fn forget_oldest(&mut self) {
        let oldest = self
            .peers
            .iter()
            .filter_map(|(peer, c)| c.gone_since.map(|gone| (gone, *peer)))
            .min()
            .map(|(_, peer)| peer);
        // All connected (the connection limits keep them far fewer): forget any.
        let victim = oldest.or_else(|| self.peers.keys().next().copied());
        if let Some(peer) = victim {
            self.peers.remove(&peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> PeerId {
        PeerId::random()
    }

    #[test]
    fn a_burst_of_a_minute_is_served_then_requests_are_dropped_until_refilled() {
        let mut conduct = Conduct::default();
        let (p, t0) = (peer(), Instant::now());
        for _ in 0..300 {
            assert_eq!(conduct.request(p, RequestKind::Sync, t0), Verdict::Serve);
            conduct.served(p);
        }
        assert_eq!(conduct.request(p, RequestKind::Sync, t0), Verdict::Drop);
        // Five a second come back.
        let later = t0 + Duration::from_secs(1);
        for _ in 0..5 {
            assert_eq!(conduct.request(p, RequestKind::Sync, later), Verdict::Serve);
            conduct.served(p);
        }
        assert_eq!(conduct.request(p, RequestKind::Sync, later), Verdict::Drop);
    }

    #[test]
    fn reconnecting_does_not_refill_the_budget() {
        let mut conduct = Conduct::default();
        let (p, t0) = (peer(), Instant::now());
        conduct.connected(p, t0);
        for _ in 0..300 {
            assert_eq!(conduct.request(p, RequestKind::Sync, t0), Verdict::Serve);
            conduct.served(p);
        }
        conduct.disconnected(p, t0);
        conduct.forget_gone(t0 + Duration::from_millis(10));
        conduct.connected(p, t0 + Duration::from_millis(10));
        assert_eq!(
            conduct.request(p, RequestKind::Sync, t0 + Duration::from_millis(10)),
            Verdict::Drop
        );
    }

    #[test]
    fn too_many_at_once_or_far_too_many_cut_the_peer_off() {
        let mut conduct = Conduct::default();
        let (p, t0) = (peer(), Instant::now());
        for _ in 0..MAX_SYNC_IN_FLIGHT {
            assert_eq!(conduct.request(p, RequestKind::Sync, t0), Verdict::Serve);
        }
        for _ in 0..MAX_OVER_BUDGET {
            assert_eq!(conduct.request(p, RequestKind::Sync, t0), Verdict::Drop);
        }
        assert!(matches!(
            conduct.request(p, RequestKind::Sync, t0),
            Verdict::CutOff(_)
        ));

        let q = peer();
        for _ in 0..60 {
            assert_eq!(
                conduct.request(q, RequestKind::Admission, t0),
                Verdict::Serve
            );
        }
        for _ in 0..MAX_RATE_LIMITED {
            assert_eq!(
                conduct.request(q, RequestKind::Admission, t0),
                Verdict::Drop
            );
        }
        assert!(matches!(
            conduct.request(q, RequestKind::Admission, t0),
            Verdict::CutOff(_)
        ));
    }

    #[test]
    fn a_non_member_asking_the_relay_again_and_again_is_cut_off() {
        let mut conduct = Conduct::default();
        let (p, t0) = (peer(), Instant::now());
        for _ in 0..MAX_RELAY_REFUSED_PER_PEER {
            assert_eq!(conduct.relay_refused(p, t0), Verdict::Drop);
        }
        assert!(matches!(conduct.relay_refused(p, t0), Verdict::CutOff(_)));
        // Forgiven after a quiet while, like every offence.
        let later = t0 + FORGIVEN_AFTER;
        assert_eq!(conduct.relay_refused(p, later), Verdict::Drop);
    }

    #[test]
    fn offences_are_forgiven_after_a_quiet_while_and_gone_peers_forgotten() {
        let mut conduct = Conduct::default();
        let (p, t0) = (peer(), Instant::now());
        assert_eq!(conduct.refused(p, 10, t0), Verdict::Drop);
        assert_eq!(conduct.rejected(&p), 10);
        let quiet = t0 + FORGIVEN_AFTER;
        assert_eq!(conduct.refused(p, 10, quiet), Verdict::Drop);
        assert_eq!(conduct.rejected(&p), 10);
        assert!(matches!(
            conduct.refused(p, 7, quiet),
            Verdict::CutOff("too many refused changes")
        ));

        conduct.disconnected(p, quiet);
        conduct.forget_gone(quiet + FORGIVEN_AFTER / 2);
        assert_eq!(conduct.remembered(), 1);
        conduct.forget_gone(quiet + FORGIVEN_AFTER);
        assert_eq!(conduct.remembered(), 0);
    }

    #[test]
    fn a_peer_with_a_request_in_flight_is_not_forgotten() {
        let mut conduct = Conduct::default();
        let (p, t0) = (peer(), Instant::now());
        assert_eq!(conduct.request(p, RequestKind::Sync, t0), Verdict::Serve);
        conduct.disconnected(p, t0);
        conduct.forget_gone(t0 + FORGIVEN_AFTER * 2);
        assert_eq!(conduct.remembered(), 1);
        conduct.served(p);
        conduct.forget_gone(t0 + FORGIVEN_AFTER * 2);
        assert_eq!(conduct.remembered(), 0);
    }

    #[test]
    fn the_peer_gone_longest_is_forgotten_first_past_the_limit() {
        let mut conduct = Conduct::default();
        let t0 = Instant::now();
        let first = peer();
        conduct.connected(first, t0);
        conduct.disconnected(first, t0);
        for i in 1..MAX_REMEMBERED {
            let p = peer();
            let at = t0 + Duration::from_millis(i as u64);
            conduct.connected(p, at);
            conduct.disconnected(p, at);
        }
        assert_eq!(conduct.remembered(), MAX_REMEMBERED);
        let newcomer = peer();
        conduct.connected(newcomer, t0 + Duration::from_secs(10));
        assert_eq!(conduct.remembered(), MAX_REMEMBERED);
        assert_eq!(conduct.rejected(&first), 0);
        assert!(!conduct.peers.contains_key(&first));
        assert!(conduct.peers.contains_key(&newcomer));
    }
}
