//! Liveness: ping on every connection, and a watchdog that closes one whose ping went
//! unanswered, so that a cut link is noticed in seconds.

use std::time::{Duration, Instant};

use libp2p::swarm::ConnectionId;
use libp2p::{PeerId, ping};
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
}

impl Liveness {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            since: now,
            last_alive: now,
            unwatched: false,
        }
    }

    /// True when a ping should have been answered by now. libp2p's ping reports a failure
    /// only after two in a row; watching for the missing answer instead notices a dead
    /// connection one ping earlier, within [`PING_INTERVAL`] + [`PING_TIMEOUT`] (+1 s) of
    /// its last answer.
    pub(super) fn overdue(&self, now: Instant) -> bool {
        !self.unwatched
            && now.duration_since(self.last_alive) > PING_INTERVAL + PING_TIMEOUT + PING_SLACK
    }
}

/// How often a connection is pinged; a ping unanswered for [`PING_TIMEOUT`] closes it.
pub const PING_INTERVAL: Duration = Duration::from_secs(10);

/// How long a ping may go unanswered before its connection is taken for dead.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Leeway past a ping's timeout before its connection is taken for dead.
pub(super) const PING_SLACK: Duration = Duration::from_secs(1);

impl NetworkActor {
    /// A ping answered records the round trip; one unanswered means the connection is dead
    /// (a cut link, a sleeping laptop): close it now, so that `peers` stops listing it and
    /// the peer is redialled and caught up with as soon as it can be reached.
    pub(super) fn handle_ping(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        result: Result<Duration, ping::Failure>,
    ) {
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
