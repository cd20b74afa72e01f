//! Dialling: the configured and discovered peers kept connected, redialled with a back-off
//! chosen by the fault.

use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::swarm::ConnectionId;
use libp2p::swarm::dial_opts::DialOpts;
use tracing::{debug, info, warn};

use super::{Multiaddr, NetworkActor, PeerIdentity, TaskResult};

pub(super) struct DialTarget {
    pub(super) address: Multiaddr,
    pub(super) peer: Option<PeerId>,
    pub(super) dialing: Option<ConnectionId>,
    pub(super) next_attempt: Instant,
    pub(super) delay: Duration,
    /// Found by mDNS (dropped when it expires) rather than configured.
    pub(super) from_mdns: bool,
    /// Since when it has been unreachable (None while connected or never tried).
    pub(super) down_since: Option<Instant>,
    /// Dial from a fresh port rather than the one this node listens on.
    pub(super) fresh_port: bool,
    /// From the store's address book: the peer expected there (not dialled while this
    /// node is connected to it anyway).
    pub(super) expected: Option<PeerId>,
    /// Other addresses of the expected peer (from the address book: direct ones first,
    /// then through relays), dialled together with `address`.
    pub(super) alternatives: Vec<Multiaddr>,
}

/// Why a dial of ours failed, as far as redialling goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DialFault {
    /// Nothing answered, or its port is closed: the peer (or the link) is down.
    PeerDown,
    /// It answered and then dropped the connection before it was set up (busy, under a
    /// flood), or this node did not let the dial through: not the peer being away.
    NotAway,
    /// This node's own port could not be used as the source port (a previous connection
    /// between the same two ports still lingers in TIME_WAIT): dial again from a fresh one.
    PortBusy,
}

impl DialFault {
    /// Reads a dial error: a connection reset or closed during the handshake is a busy
    /// peer; anything else that reached the network is a peer (or link) that is down.
    pub(super) fn of(error: &libp2p::swarm::DialError) -> Self {
        use libp2p::swarm::DialError;
        match error {
            DialError::Transport(attempts) => {
                // The transport wraps the socket's error in its own: the kind is lost on
                // the way, its text is not.
                let port_busy = attempts.iter().any(|(_, e)| {
                    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
                    while let Some(err) = source {
                        if err
                            .downcast_ref::<std::io::Error>()
                            .is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse)
                            || err.to_string().contains("Address already in use")
                        {
                            return true;
                        }
                        source = err.source();
                    }
                    false
                });
                if port_busy {
                    return Self::PortBusy;
                }
                let busy = attempts.iter().any(|(_, e)| {
                    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
                    while let Some(err) = source {
                        if let Some(io) = err.downcast_ref::<std::io::Error>()
                            && matches!(
                                io.kind(),
                                std::io::ErrorKind::ConnectionReset
                                    | std::io::ErrorKind::ConnectionAborted
                                    | std::io::ErrorKind::UnexpectedEof
                                    | std::io::ErrorKind::BrokenPipe
                            )
                        {
                            return true;
                        }
                        source = err.source();
                    }
                    false
                });
                if busy { Self::NotAway } else { Self::PeerDown }
            }
            DialError::Denied { .. } | DialError::Aborted => Self::NotAway,
            _ => Self::PeerDown,
        }
    }
}

impl DialTarget {
    pub(super) fn new(address: Multiaddr, now: Instant, from_mdns: bool) -> Self {
        Self {
            address,
            peer: None,
            dialing: None,
            next_attempt: now,
            delay: FIRST_REDIAL,
            from_mdns,
            down_since: None,
            fresh_port: false,
            expected: None,
            alternatives: Vec::new(),
        }
    }

    /// Connected to `peer`: the next drop is redialled quickly again.
    pub(super) fn connected(&mut self, peer: PeerId) {
        self.peer = Some(peer);
        self.delay = FIRST_REDIAL;
        self.down_since = None;
    }

    /// The connection dropped: redial soon (a dropped link often comes back at once).
    pub(super) fn dropped(&mut self, now: Instant) {
        self.peer = None;
        self.next_attempt = now + self.delay;
        self.down_since.get_or_insert(now);
    }

    /// A dial failed: when to try again. A peer that is down is retried with back-off,
    /// quickly for the first minutes of an outage (a cut link usually returns within
    /// them, and partners should then converge within seconds), then every minute; one
    /// that was busy or that this node held back is retried at once.
    pub(super) fn failed(&mut self, now: Instant, fault: DialFault) {
        self.dialing = None;
        let down_since = *self.down_since.get_or_insert(now);
        match fault {
            DialFault::NotAway => self.next_attempt = now + FIRST_REDIAL,
            DialFault::PortBusy => {
                self.fresh_port = true;
                self.next_attempt = now;
            }
            DialFault::PeerDown => {
                self.next_attempt = now + self.delay;
                let cap = if now.duration_since(down_since) < FAST_REDIAL_FOR {
                    FAST_REDIAL_MAX
                } else {
                    MAX_REDIAL
                };
                self.delay = (self.delay * 2).min(cap);
            }
        }
    }
}

/// The peer id a multiaddr ends with (`…/p2p/<id>`), if any.
pub(super) fn peer_of(address: &Multiaddr) -> Option<PeerId> {
    address.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::P2p(peer) => Some(peer),
        _ => None,
    })
}

/// Longest pause between two dials of a configured peer.
pub(super) const MAX_REDIAL: Duration = Duration::from_secs(60);

/// First pause after a configured peer drops or a dial fails.
pub(super) const FIRST_REDIAL: Duration = Duration::from_millis(500);

/// Longest pause between two dials during the first minutes of an outage.
pub(super) const FAST_REDIAL_MAX: Duration = Duration::from_secs(3);

/// How long an outage is retried with the short pauses.
pub(super) const FAST_REDIAL_FOR: Duration = Duration::from_secs(600);

impl NetworkActor {
    pub(super) fn handle_dial_tick(&mut self) {
        self.tend_relays();
        self.tend_pace();
        let now = Instant::now();
        let dead: Vec<(PeerId, ConnectionId)> = self
            .peers
            .iter()
            .flat_map(|(peer, info)| {
                info.connections
                    .iter()
                    .filter(|(_, l)| l.overdue(now))
                    .map(|(c, _)| (*peer, *c))
            })
            .collect();
        for (peer, connection) in dead {
            info!(peer = %peer, "no answer to ping: the connection is taken for dead and closed");
            if let Some(info) = self.peers.get_mut(&peer) {
                // Closing may take a while on a dead link: not watched twice.
                if let Some(liveness) = info.connections.get_mut(&connection) {
                    liveness.unwatched = true;
                }
                info.dead_connections.insert(connection);
            }
            self.swarm.close_connection(connection);
            self.publish_status();
        }
        for target in &mut self.targets {
            if target.peer.is_some() || target.dialing.is_some() || target.next_attempt > now {
                continue;
            }
            if target
                .expected
                .is_some_and(|peer| self.swarm.is_connected(&peer))
            {
                continue;
            }
            let opts = if let Some(peer) = target.expected
                && !target.alternatives.is_empty()
            {
                let mut addresses = vec![target.address.clone()];
                addresses.extend(target.alternatives.iter().cloned());
                DialOpts::peer_id(peer).addresses(addresses).build()
            } else if target.fresh_port {
                DialOpts::unknown_peer_id()
                    .address(target.address.clone())
                    .allocate_new_port()
                    .build()
            } else {
                DialOpts::unknown_peer_id()
                    .address(target.address.clone())
                    .build()
            };
            target.dialing = Some(opts.connection_id());
            if let Err(e) = self.swarm.dial(opts) {
                debug!(address = %target.address, error = %e, "dial refused");
                target.failed(now, DialFault::of(&e));
            }
        }
    }
}

/// Most peers from the address book dialled at start (the most recently seen).
pub(super) const BOOK_DIALS: usize = 8;

/// How often a peer's addresses are written to the address book when they did not change.
pub(super) const REMEMBER_EVERY: Duration = Duration::from_secs(600);

impl NetworkActor {
    /// At start: the members' nodes this node reached last (the store's address book)
    /// become dial targets, so a restarted node finds its partners without configuration.
    pub(super) fn read_address_book(&mut self) {
        let handle = self.handle.clone();
        // Shed, the node still dials its configured peers and learns addresses again.
        let _ =
            self.spawn_task(
                async move { TaskResult::AddressBook(handle.remembered_addresses().await) },
            );
    }

    pub(super) fn address_book_read(
        &mut self,
        book: Result<Vec<crate::store::PeerAddresses>, crate::node::NodeError>,
    ) {
        let book = match book {
            Ok(book) => book,
            Err(e) => {
                warn!(error = %e, "could not read the address book");
                return;
            }
        };
        let now = Instant::now();
        let mut added = 0;
        for entry in book {
            if added == BOOK_DIALS {
                break;
            }
            let peer = entry.key.peer_id();
            if peer == self.local_peer {
                continue;
            }
            // Direct addresses first, then through relays; all dialled together.
            let mut addresses: Vec<Multiaddr> = entry
                .addresses
                .iter()
                .filter_map(|a| a.parse::<Multiaddr>().ok())
                .filter(|a| !self.targets.iter().any(|t| t.address == *a))
                .collect();
            addresses.sort_by_key(super::relay::is_relayed);
            if addresses.is_empty() {
                continue;
            }
            let address = addresses.remove(0);
            if self
                .targets
                .iter()
                .any(|t| t.expected == Some(peer) || peer_of(&t.address) == Some(peer))
            {
                continue;
            }
            debug!(%peer, %address, "dialling a partner from the address book");
            let mut target = DialTarget::new(address, now, false);
            target.expected = Some(peer);
            target.alternatives = addresses;
            self.targets.push(target);
            added += 1;
        }
        if added > 0 {
            info!(peers = added, "dialling partners from the address book");
        }
    }

    /// A member's node said where it listens (identify): kept in the address book when
    /// it changed, or every [`REMEMBER_EVERY`] (to keep its age current).
    pub(super) fn remember_addresses(&mut self, peer: PeerId, addresses: &[Multiaddr]) {
        if !self.swarm.behaviour().gossipsub.is_admitted(&peer) || addresses.is_empty() {
            return;
        }
        let Some(key) = crate::identity::KeyId::from_peer_id(&peer) else {
            return;
        };
        let texts: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
        let now = Instant::now();
        if let Some((known, at)) = self.remembered.get(&peer)
            && *known == texts
            && now.duration_since(*at) < REMEMBER_EVERY
        {
            return;
        }
        if self.remembered.len() >= crate::store::MAX_REMEMBERED_PEERS {
            self.remembered.clear();
        }
        self.remembered.insert(peer, (texts.clone(), now));
        let handle = self.handle.clone();
        let _ = self.spawn_task(async move {
            if let Err(e) = handle.remember_addresses(key, texts).await {
                debug!(error = %e, "could not keep a peer's addresses");
            }
            TaskResult::Remembered
        });
    }
}
