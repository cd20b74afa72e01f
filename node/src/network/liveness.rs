//! Liveness: ping on every connection ([`super::alive`]: quick while something is to be
//! delivered, slow on an idle link), and a watchdog that closes one whose ping went
//! unanswered, so that a cut link is noticed within seconds of having something to send.

use std::time::{Duration, Instant};

use libp2p::ping;

use super::alive;
use tracing::info;

use super::NetworkActor;

/// What is known of one connection's health.
#[derive(Debug, Clone, Copy)]
pub(super) struct Liveness {
    /// When it was established.
    pub(super) since: Instant,
    /// When it last answered a ping (its establishment until then).
    pub(super) last_alive: Instant,
    /// The peer does not speak ping on it (not a Passerelle node): not watched.
    pub(super) unwatched: bool,
    /// The pace of its pings now.
    pub(super) interval: Duration,
}

impl Liveness {
    pub(super) fn new(now: Instant, interval: Duration) -> Self {
        Self {
            since: now,
            last_alive: now,
            unwatched: false,
            interval,
        }
    }

    /// The pings' pace changed. Quicker: a ping goes at once, and must be answered within
    /// [`PING_TIMEOUT`] (+1 s) from now, however long ago the last answer was.
    pub(super) fn set_interval(&mut self, interval: Duration, now: Instant) {
        if interval < self.interval {
            self.last_alive = self
                .last_alive
                .max(now.checked_sub(interval).unwrap_or(now));
        }
        self.interval = interval;
    }

    /// True when a ping should have been answered by now. The pinger reports a failure
    /// only after two in a row; watching for the missing answer instead notices a dead
    /// connection one ping earlier, within the pace + [`PING_TIMEOUT`] (+1 s) of its last
    /// answer: 16 s while busy.
    pub(super) fn overdue(&self, now: Instant) -> bool {
        !self.unwatched
            && now.duration_since(self.last_alive) > self.interval + PING_TIMEOUT + PING_SLACK
    }
}

pub use super::alive::{IDLE_PING_INTERVAL, PING_INTERVAL, PING_TIMEOUT};

/// How long after the last thing this node had to deliver (a local change, a case-file
/// message, changes served or received in a catch-up, a new connection) its pings stay
/// quick.
pub const BUSY_FOR: Duration = Duration::from_secs(60);

/// Leeway past a ping's timeout before its connection is taken for dead.
pub(super) const PING_SLACK: Duration = Duration::from_secs(1);

impl NetworkActor {
    /// Something is to be delivered: pings quick on every connection for [`BUSY_FOR`].
    pub(super) fn mark_busy(&mut self) {
        self.busy_until = Some(Instant::now() + BUSY_FOR);
        self.tend_pace();
    }

    /// Sets the pings' pace from whether this node was busy lately (on the dial tick, and
    /// when it becomes busy).
    pub(super) fn tend_pace(&mut self) {
        let now = Instant::now();
        let busy = self.busy_until.is_some_and(|until| until > now);
        let behaviour = &mut self.swarm.behaviour_mut().ping;
        behaviour.set_busy(busy);
        let interval = behaviour.current_interval();
        for info in self.peers.values_mut() {
            for liveness in info.connections.values_mut() {
                if liveness.interval != interval {
                    liveness.set_interval(interval, now);
                }
            }
        }
    }

    /// A ping answered records the round trip; one unanswered means the connection is dead
    /// (a cut link, a sleeping laptop): close it now, so that `peers` stops listing it and
    /// the peer is redialled and caught up with as soon as it can be reached.
    pub(super) fn handle_ping(&mut self, event: alive::Event) {
        let alive::Event {
            peer,
            connection,
            result,
        } = event;
        let info = self.peers.get_mut(&peer);
        match result {
            Ok(rtt) => {
                if let Some(info) = info {
                    info.rtt_ms = Some(rtt.as_millis() as u64);
                    if let Some(liveness) = info.connections.get_mut(&connection) {
                        liveness.last_alive = Instant::now();
                    }
                }
            }
            Err(ping::Failure::Unsupported) => {
                if let Some(liveness) = info.and_then(|i| i.connections.get_mut(&connection)) {
                    liveness.unwatched = true;
                }
            }
            Err(e) => {
                info!(peer = %peer, error = %e, "ping failed: closing the connection");
                self.swarm.close_connection(connection);
            }
        }
    }
}
