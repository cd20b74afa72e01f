//! Reaching members behind NAT: relays run by members (circuit relay v2), hole punching
//! (DCUtR), whether this node is reachable from the internet (AutoNAT), a port asked of the
//! office router (UPnP). libp2p's own behaviours; this module decides when to use them.
//!
//! Rules:
//! - **Serving.** With `[network] relay = "on"`, a node relays from start; with "auto" (the
//!   default), once it has a confirmed external address (AutoNAT found it reachable, UPnP
//!   mapped a port, or `external` is configured); with "off", never (it does not even
//!   speak the protocol). Only members get a reservation or a circuit: the first limiter of
//!   each asks the member set ([`SharedMembers`]), before any rate limit is spent. Every
//!   limit is a constant below; a refusal is logged (the first, then at powers of two) and
//!   counted in the status.
//! - **Reserving.** A node that is not known to be publicly reachable (AutoNAT did not
//!   say "public", it has no `external` address, it does not relay itself) keeps a slot on
//!   up to [`WANTED_RELAYS`] members that relay (their identify lists the hop protocol),
//!   each on an address this node dialled it at. A relay that refuses or drops rests for
//!   [`RELAY_REST`], and another is chosen. Its `/p2p-circuit` addresses are listen
//!   addresses: identify announces them, the address book keeps them.
//! - **Through a relay.** A relayed connection carries every protocol a direct one does;
//!   the relay copies bytes it cannot read (Noise runs end to end between the two members)
//!   and stores nothing. Each circuit is bounded in bytes and duration; when it ends, the
//!   peers redial. With hole punching on, DCUtR tries to replace it by a direct connection.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, autonat, dcutr, relay, upnp};
use tracing::{debug, info, warn};

use super::{NetworkActor, PeerIdentity};
use crate::identity::KeyId;
use crate::membership::MemberKeys;

/// Most reservations a relay holds, in all (members behind NAT it serves).
pub const RELAY_MAX_RESERVATIONS: usize = 128;
/// Most reservations one peer holds on a relay (a renewal replaces its own).
pub const RELAY_MAX_RESERVATIONS_PER_PEER: usize = 2;
/// How long a reservation lasts before the member renews it.
pub const RELAY_RESERVATION_DURATION: Duration = Duration::from_secs(60 * 60);
/// Most circuits a relay carries at once, in all.
pub const RELAY_MAX_CIRCUITS: usize = 64;
/// Most circuits with one peer at either end.
pub const RELAY_MAX_CIRCUITS_PER_PEER: usize = 8;
/// Longest a circuit lasts; the members then redial (or are direct by then).
pub const RELAY_MAX_CIRCUIT_DURATION: Duration = Duration::from_secs(30 * 60);
/// Most bytes a circuit carries, both ways together; the members then redial. Enough for a
/// catch-up of a tenth of the national network and several case files.
pub const RELAY_MAX_CIRCUIT_BYTES: u64 = 16 * 1024 * 1024;
/// New reservations per member: a burst of this many, then one per
/// [`RELAY_RESERVATION_REFILL`].
pub const RELAY_RESERVATIONS_BURST: u32 = 30;
/// One more reservation per member allowed after this.
pub const RELAY_RESERVATION_REFILL: Duration = Duration::from_secs(60);
/// New circuits per source member: a burst of this many, then one per
/// [`RELAY_CIRCUIT_REFILL`].
pub const RELAY_CIRCUITS_BURST: u32 = 60;
/// One more circuit per source member allowed after this.
pub const RELAY_CIRCUIT_REFILL: Duration = Duration::from_secs(30);

/// Relays a node behind NAT keeps a slot on.
pub const WANTED_RELAYS: usize = 2;
/// How long a relay that refused or dropped a reservation is left alone.
pub const RELAY_REST: Duration = Duration::from_secs(120);

/// Shortest time between two publications of this node's addresses in its organisation's
/// document (each is a signed change every member stores).
pub const PUBLISH_ADDRESSES_EVERY: Duration = Duration::from_secs(10 * 60);
/// How long this node's addresses must hold still before they are published (a slot on a
/// relay and AutoNAT's answer come within seconds of each other).
pub const PUBLISH_SETTLE: Duration = Duration::from_secs(5);
/// How long after start a node whose reachability is still unknown publishes anyway (a
/// network on private addresses only, where AutoNAT never decides).
pub const PUBLISH_UNKNOWN_AFTER: Duration = Duration::from_secs(120);

/// How often a node short of relays looks in members' published addresses for more.
pub const LOOK_FOR_RELAYS_EVERY: Duration = Duration::from_secs(20);
/// How long a member dialled as a possible relay is not dialled again for that.
pub const RELAY_DIAL_REST: Duration = Duration::from_secs(10 * 60);

/// The keys acting for members, shared with the relay's limiters (which run inside the
/// relay behaviour).
#[derive(Debug, Clone, Default)]
pub struct SharedMembers(Arc<RwLock<MemberKeys>>);

impl SharedMembers {
    pub(super) fn set(&self, keys: MemberKeys) {
        if let Ok(mut members) = self.0.write() {
            *members = keys;
        }
    }

    fn contains(&self, peer: &PeerId) -> bool {
        let Some(key) = KeyId::from_peer_id(peer) else {
            return false;
        };
        self.0.read().is_ok_and(|members| members.contains(&key))
    }
}

/// The relay server's limits, members only (see the module's rules).
pub(super) fn relay_config(members: &SharedMembers) -> relay::Config {
    let for_reservations = members.clone();
    let for_circuits = members.clone();
    let config = relay::Config {
        max_reservations: RELAY_MAX_RESERVATIONS,
        max_reservations_per_peer: RELAY_MAX_RESERVATIONS_PER_PEER,
        reservation_duration: RELAY_RESERVATION_DURATION,
        reservation_rate_limiters: vec![Box::new(
            move |peer: PeerId, _: &Multiaddr, _: std::time::Instant| {
                for_reservations.contains(&peer)
            },
        )],
        max_circuits: RELAY_MAX_CIRCUITS,
        max_circuits_per_peer: RELAY_MAX_CIRCUITS_PER_PEER,
        max_circuit_duration: RELAY_MAX_CIRCUIT_DURATION,
        max_circuit_bytes: RELAY_MAX_CIRCUIT_BYTES,
        circuit_src_rate_limiters: vec![Box::new(
            move |peer: PeerId, _: &Multiaddr, _: std::time::Instant| for_circuits.contains(&peer),
        )],
    };
    let nonzero = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
    config
        .reservation_rate_per_peer(nonzero(RELAY_RESERVATIONS_BURST), RELAY_RESERVATION_REFILL)
        .circuit_src_per_peer(nonzero(RELAY_CIRCUITS_BURST), RELAY_CIRCUIT_REFILL)
}

/// How AutoNAT asks peers whether this node is reachable: first after 5 s, again every
/// 90 s until sure, every 15 min once sure.
pub(super) fn autonat_config() -> autonat::Config {
    autonat::Config {
        boot_delay: Duration::from_secs(5),
        retry_interval: Duration::from_secs(90),
        refresh_interval: Duration::from_secs(15 * 60),
        throttle_server_period: Duration::from_secs(30),
        ..Default::default()
    }
}

/// Whether this node is reachable from the internet, as AutoNAT found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Reachability {
    /// Not known yet (no peer could be asked, or only peers on private addresses).
    #[default]
    Unknown,
    /// Peers reached it on an address they were given.
    Public,
    /// Peers could not reach it: it is behind NAT or a firewall.
    Private,
}

impl Reachability {
    /// The word shown in `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Public => "public",
            Self::Private => "private",
        }
    }
}

#[derive(Debug)]
struct Reservation {
    listener: ListenerId,
    accepted: bool,
}

/// What this node knows and counts about relays, as a client and as a relay.
#[derive(Debug, Default)]
pub(super) struct Relays {
    pub(super) reachability: Reachability,
    /// Reservations asked of relays (accepted or not yet answered), by relay.
    reservations: HashMap<PeerId, Reservation>,
    /// Relays left alone until then.
    resting: HashMap<PeerId, Instant>,
    /// Connected peers that serve as relays (identify lists the hop protocol).
    hop: HashSet<PeerId>,
    /// Connected peers' addresses this node dialled them at (not relayed).
    dialled: HashMap<PeerId, Multiaddr>,
    /// As a relay: members holding a reservation here now.
    serving_reservations: HashSet<PeerId>,
    /// As a relay: circuits carried now.
    serving_circuits: usize,
    /// As a relay: whether it serves now.
    serving: bool,
    /// Confirmed external addresses that are not relayed (AutoNAT, UPnP, configured).
    direct_external: HashSet<Multiaddr>,
    pub(super) reservations_refused: u64,
    pub(super) circuits_refused: u64,
    pub(super) circuits_served: u64,
    pub(super) hole_punched: u64,
    pub(super) hole_punch_failed: u64,
    /// This node's addresses as last computed, and since when they are so.
    own_seen: Option<(Vec<String>, Instant)>,
    /// What this node last published, and when.
    published: Option<(Vec<String>, Instant)>,
    /// A publication is in flight.
    publishing: bool,
    /// When this node last looked for relays in members' published addresses.
    looked_for_relays: Option<Instant>,
    /// Members dialled as possible relays, and when.
    dialled_for_relay: HashMap<PeerId, Instant>,
    /// When the network started.
    started: Option<Instant>,
}

impl Relays {
    /// Relays holding an accepted reservation of this node.
    pub(super) fn reserved(&self) -> Vec<PeerId> {
        let mut relays: Vec<PeerId> = self
            .reservations
            .iter()
            .filter(|(_, r)| r.accepted)
            .map(|(p, _)| *p)
            .collect();
        relays.sort();
        relays
    }

    pub(super) fn serving(&self) -> bool {
        self.serving
    }

    pub(super) fn serving_reservations(&self) -> usize {
        self.serving_reservations.len()
    }

    pub(super) fn serving_circuits(&self) -> usize {
        self.serving_circuits
    }
}

/// True when `address` goes through a relay.
pub fn is_relayed(address: &Multiaddr) -> bool {
    address.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

/// Logs a refusal the first time and then at powers of two (a flood does not flood the
/// log).
fn log_refusal(count: u64, what: &str, peer: &PeerId, member: bool) {
    if count.is_power_of_two() {
        warn!(peer = %peer, member, refused = count, "relay refused a {what}");
    } else {
        debug!(peer = %peer, member, "relay refused a {what}");
    }
}

impl NetworkActor {
    /// At start: with `relay = "on"`, this node relays from now.
    pub(super) fn relay_started(&mut self) {
        self.relays.started = Some(Instant::now());
        if self.config.relay == crate::config::RelayMode::On {
            info!("relay for members behind NAT: on");
            self.relays.serving = true;
        }
    }

    /// The member set changed: the relay's limiters learn it.
    pub(super) fn relay_members(&mut self, keys: MemberKeys) {
        self.members.set(keys);
    }

    /// A connection was set up: a direct one that this node dialled gives the address a
    /// relay is reserved at.
    pub(super) fn relay_connected(
        &mut self,
        peer: PeerId,
        endpoint: &libp2p::core::ConnectedPoint,
    ) {
        if let libp2p::core::ConnectedPoint::Dialer { address, .. } = endpoint
            && !is_relayed(address)
        {
            self.relays.dialled.insert(peer, address.clone());
        }
    }

    /// A peer's last connection closed: a reservation on it ends with it.
    pub(super) fn relay_disconnected(&mut self, peer: PeerId) {
        self.relays.hop.remove(&peer);
        self.relays.dialled.remove(&peer);
        if let Some(reservation) = self.relays.reservations.remove(&peer) {
            info!(relay = %peer, "relay lost: choosing another");
            self.swarm.remove_listener(reservation.listener);
            self.relays
                .resting
                .insert(peer, Instant::now() + RELAY_REST / 4);
        }
    }

    /// A peer said which protocols it speaks (identify).
    pub(super) fn relay_identified(&mut self, peer: PeerId, protocols: &[libp2p::StreamProtocol]) {
        if protocols.contains(&relay::HOP_PROTOCOL_NAME) {
            self.relays.hop.insert(peer);
        } else {
            self.relays.hop.remove(&peer);
        }
    }

    /// Addresses that reach `target` through each relay this node is connected to (a
    /// member that relays), to try beside its direct addresses: a member behind NAT holds
    /// a slot on one of them, most likely the same public members this node knows.
    pub(super) fn through_relays(&self, target: PeerId) -> Vec<Multiaddr> {
        let mut relays: Vec<&PeerId> = self
            .relays
            .hop
            .iter()
            .filter(|p| **p != target && self.swarm.behaviour().gossipsub.is_admitted(p))
            .collect();
        relays.sort();
        relays
            .into_iter()
            .map(|relay| {
                let mut address = self
                    .relays
                    .dialled
                    .get(relay)
                    .cloned()
                    .unwrap_or_else(Multiaddr::empty);
                if !matches!(address.iter().last(), Some(Protocol::P2p(_))) {
                    address.push(Protocol::P2p(*relay));
                }
                address
                    .with(Protocol::P2pCircuit)
                    .with(Protocol::P2p(target))
            })
            .collect()
    }

    /// Where members can reach this node: its confirmed direct addresses, then through its
    /// relays; on a network where nothing says it is behind NAT, its listen addresses
    /// (a ministry LAN). Loopback and unspecified addresses are never published.
    pub(super) fn own_addresses(&self) -> Vec<String> {
        let me = self.local_peer;
        let usable = |a: &Multiaddr| {
            !a.iter().any(|p| match p {
                Protocol::Ip4(ip) => ip.is_loopback() || ip.is_unspecified(),
                Protocol::Ip6(ip) => ip.is_loopback() || ip.is_unspecified(),
                _ => false,
            })
        };
        let with_me = |mut a: Multiaddr| {
            if !matches!(a.iter().last(), Some(Protocol::P2p(_))) {
                a.push(Protocol::P2p(me));
            }
            a.to_string()
        };
        let mut direct: Vec<Multiaddr> = self
            .relays
            .direct_external
            .iter()
            .chain(self.config.external.iter())
            .filter(|a| usable(a))
            .cloned()
            .collect();
        if direct.is_empty() && self.relays.reachability != Reachability::Private {
            direct = self
                .listen_addrs
                .iter()
                .filter(|a| !is_relayed(a) && usable(a))
                .cloned()
                .collect();
        }
        direct.sort();
        let mut relayed: Vec<Multiaddr> = self
            .listen_addrs
            .iter()
            .filter(|a| is_relayed(a))
            .cloned()
            .collect();
        relayed.sort();
        let mut out: Vec<String> = Vec::new();
        for address in direct.into_iter().chain(relayed) {
            let text = with_me(address);
            if !out.contains(&text) {
                out.push(text);
            }
        }
        out.truncate(crate::model::MAX_NODE_ADDRESSES);
        out
    }

    /// Publishes this node's addresses once they held still for [`PUBLISH_SETTLE`], at most
    /// every [`PUBLISH_ADDRESSES_EVERY`] (the first at once); unchanged, they are looked
    /// for in the document again at that pace (a local read; written only if lost). Called on the sync tick and
    /// when the addresses change.
    pub(super) fn tend_published_addresses(&mut self) {
        let now = Instant::now();
        let own = self.own_addresses();
        match &self.relays.own_seen {
            Some((seen, _)) if *seen == own => {}
            _ => self.relays.own_seen = Some((own.clone(), now)),
        }
        let Some((_, since)) = &self.relays.own_seen else {
            return;
        };
        let undecided = self.relays.reachability == Reachability::Unknown
            && self.relays.direct_external.is_empty()
            && self
                .relays
                .started
                .is_some_and(|at| now.duration_since(at) < PUBLISH_UNKNOWN_AFTER);
        if own.is_empty()
            || undecided
            || self.relays.publishing
            || now.duration_since(*since) < PUBLISH_SETTLE
            || self
                .relays
                .published
                .as_ref()
                .is_some_and(|(_, at)| now.duration_since(*at) < PUBLISH_ADDRESSES_EVERY)
        {
            return;
        }
        let handle = self.handle.clone();
        let addresses = own.clone();
        self.relays.publishing = self.spawn_task(async move {
            super::TaskResult::AddressesPublished {
                addresses: addresses.clone(),
                result: handle.publish_addresses(addresses).await,
            }
        });
    }

    /// A publication of this node's addresses ended.
    pub(super) fn addresses_published(
        &mut self,
        addresses: Vec<String>,
        result: Result<bool, crate::node::NodeError>,
    ) {
        self.relays.publishing = false;
        match result {
            Ok(true) => {
                info!(
                    addresses = addresses.len(),
                    "published where members can reach this node"
                );
                self.relays.published = Some((addresses, Instant::now()));
            }
            // There already: looked at again after [`PUBLISH_ADDRESSES_EVERY`] (the
            // entry may be lost if another node of the organisation created the
            // document's `addresses` section at the same time; the documents actor
            // writes only what the document lacks). Not a member yet: asked again at the
            // next round.
            Ok(false) => {
                if let Some((published, at)) = self.relays.published.as_mut()
                    && *published == addresses
                {
                    *at = Instant::now();
                }
            }
            Err(e) => warn!(error = %e, "could not publish this node's addresses"),
        }
    }

    /// True when this node needs relays: nothing says it is reachable from the internet.
    fn needs_relays(&self) -> bool {
        self.relays.reachability != Reachability::Public
            && self.relays.direct_external.is_empty()
            && self.config.relay != crate::config::RelayMode::On
    }

    /// An external address was confirmed or expired: with `relay = "auto"`, this node
    /// relays while it has a direct one.
    pub(super) fn relay_external(&mut self, address: &Multiaddr, confirmed: bool) {
        if is_relayed(address) {
            return;
        }
        if confirmed {
            self.relays.direct_external.insert(address.clone());
        } else {
            self.relays.direct_external.remove(address);
        }
        let serve = !self.relays.direct_external.is_empty();
        if self.config.relay == crate::config::RelayMode::Auto
            && let Some(server) = self.swarm.behaviour_mut().relay.as_mut()
        {
            server.set_status(Some(if serve {
                relay::Status::Enable
            } else {
                relay::Status::Disable
            }));
            if serve != self.relays.serving {
                info!(
                    "relay for members behind NAT: {}",
                    if serve { "on" } else { "off" }
                );
            }
            self.relays.serving = serve;
        }
        self.publish_status();
    }

    /// Keeps [`WANTED_RELAYS`] reservations while this node needs them; drops them when it
    /// does not any more. Called on the dial tick.
    pub(super) fn tend_relays(&mut self) {
        let now = Instant::now();
        self.relays.resting.retain(|_, until| *until > now);
        if !self.needs_relays() {
            for (relay, reservation) in std::mem::take(&mut self.relays.reservations) {
                info!(%relay, "reachable without relays: reservation given up");
                self.swarm.remove_listener(reservation.listener);
            }
            return;
        }
        if self.relays.reservations.len() >= WANTED_RELAYS {
            return;
        }
        let mut candidates: Vec<PeerId> = self
            .relays
            .hop
            .iter()
            .filter(|p| {
                !self.relays.reservations.contains_key(p)
                    && !self.relays.resting.contains_key(p)
                    && self.relays.dialled.contains_key(p)
                    && self.swarm.behaviour().gossipsub.is_admitted(p)
            })
            .copied()
            .collect();
        candidates.sort();
        // Members are dialled only by a node known to be behind NAT (on a network of
        // private addresses, where reachability stays unknown, nothing needs a relay).
        if candidates.len() + self.relays.reservations.len() < WANTED_RELAYS
            && self.relays.reachability == Reachability::Private
            && self
                .relays
                .looked_for_relays
                .is_none_or(|at| now.duration_since(at) >= LOOK_FOR_RELAYS_EVERY)
        {
            self.relays.looked_for_relays = Some(now);
            let handle = self.handle.clone();
            // Shed, looked for again later.
            let _ = self.spawn_task(async move {
                super::TaskResult::PublishedAddresses(handle.published_addresses().await)
            });
        }
        for relay in candidates {
            if self.relays.reservations.len() >= WANTED_RELAYS {
                break;
            }
            let Some(address) = self.relays.dialled.get(&relay).cloned() else {
                continue;
            };
            let mut circuit = address;
            if !matches!(circuit.iter().last(), Some(Protocol::P2p(_))) {
                circuit.push(Protocol::P2p(relay));
            }
            circuit.push(Protocol::P2pCircuit);
            match self.swarm.listen_on(circuit.clone()) {
                Ok(listener) => {
                    debug!(%relay, address = %circuit, "asking a relay for a slot");
                    self.relays.reservations.insert(
                        relay,
                        Reservation {
                            listener,
                            accepted: false,
                        },
                    );
                }
                Err(e) => {
                    debug!(%relay, error = %e, "could not ask a relay for a slot");
                    self.relays.resting.insert(relay, now + RELAY_REST);
                }
            }
        }
    }

    /// Members' published addresses were read: dial members with a direct address this
    /// node is not connected to, as possible relays (identify then tells whether they
    /// relay), as many as slots are missing.
    pub(super) fn published_addresses_read(
        &mut self,
        published: Result<Vec<(KeyId, Vec<String>)>, crate::node::NodeError>,
    ) {
        let published = match published {
            Ok(published) => published,
            Err(e) => {
                debug!(error = %e, "could not read members' published addresses");
                return;
            }
        };
        let now = Instant::now();
        self.relays
            .dialled_for_relay
            .retain(|_, at| now.duration_since(*at) < RELAY_DIAL_REST);
        let mut wanted = WANTED_RELAYS.saturating_sub(self.relays.reservations.len());
        for (key, addresses) in published {
            if wanted == 0 {
                break;
            }
            let peer = key.peer_id();
            if self.swarm.is_connected(&peer)
                || self.relays.dialled_for_relay.contains_key(&peer)
                || self.relays.resting.contains_key(&peer)
            {
                continue;
            }
            let direct: Vec<Multiaddr> = addresses
                .iter()
                .filter_map(|a| a.parse::<Multiaddr>().ok())
                .filter(|a| !is_relayed(a))
                .collect();
            if direct.is_empty() {
                continue;
            }
            debug!(%peer, "dialling a member that may relay");
            self.relays.dialled_for_relay.insert(peer, now);
            let opts = libp2p::swarm::dial_opts::DialOpts::peer_id(peer)
                .condition(libp2p::swarm::dial_opts::PeerCondition::DisconnectedAndNotDialing)
                .addresses(direct)
                .build();
            if let Err(e) = self.swarm.dial(opts) {
                debug!(%peer, error = %e, "could not dial a member that may relay");
            }
            wanted -= 1;
        }
    }

    /// A listener closed: if it was a reservation, the relay rests and another is chosen.
    pub(super) fn relay_listener_closed(&mut self, listener: ListenerId, reason: Option<String>) {
        let Some(relay) = self
            .relays
            .reservations
            .iter()
            .find(|(_, r)| r.listener == listener)
            .map(|(p, _)| *p)
        else {
            return;
        };
        self.relays.reservations.remove(&relay);
        self.relays
            .resting
            .insert(relay, Instant::now() + RELAY_REST);
        info!(%relay, reason = reason.as_deref().unwrap_or("closed"), "relay reservation ended");
        self.publish_status();
    }

    pub(super) fn handle_relay_client_event(&mut self, event: relay::client::Event) {
        match event {
            relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                ..
            } => {
                if let Some(reservation) = self.relays.reservations.get_mut(&relay_peer_id) {
                    reservation.accepted = true;
                }
                if !renewal {
                    info!(relay = %relay_peer_id, "reserved a slot on a relay: members can reach this node through it");
                }
                self.publish_status();
            }
            relay::client::Event::OutboundCircuitEstablished { relay_peer_id, .. } => {
                debug!(relay = %relay_peer_id, "connected to a peer through a relay");
            }
            relay::client::Event::InboundCircuitEstablished { src_peer_id, .. } => {
                debug!(peer = %src_peer_id, "a peer connected through a relay");
            }
        }
    }

    #[allow(deprecated)]
    pub(super) fn handle_relay_event(&mut self, event: relay::Event) {
        match event {
            relay::Event::ReservationReqAccepted { src_peer_id, .. }
                if self.relays.serving_reservations.insert(src_peer_id) =>
            {
                info!(peer = %src_peer_id, "serving as a relay for a member");
            }
            relay::Event::ReservationReqDenied { src_peer_id, .. } => {
                self.relays.reservations_refused += 1;
                let member = self.members.contains(&src_peer_id);
                log_refusal(
                    self.relays.reservations_refused,
                    "reservation",
                    &src_peer_id,
                    member,
                );
                self.relay_offence(src_peer_id, member);
            }
            relay::Event::ReservationClosed { src_peer_id }
            | relay::Event::ReservationTimedOut { src_peer_id } => {
                self.relays.serving_reservations.remove(&src_peer_id);
            }
            relay::Event::CircuitReqDenied { src_peer_id, .. } => {
                self.relays.circuits_refused += 1;
                let member = self.members.contains(&src_peer_id);
                log_refusal(
                    self.relays.circuits_refused,
                    "circuit",
                    &src_peer_id,
                    member,
                );
            }
            relay::Event::CircuitReqAccepted {
                src_peer_id,
                dst_peer_id,
            } => {
                self.relays.circuits_served += 1;
                self.relays.serving_circuits += 1;
                debug!(from = %src_peer_id, to = %dst_peer_id, "relaying a circuit");
            }
            relay::Event::CircuitClosed { .. } => {
                self.relays.serving_circuits = self.relays.serving_circuits.saturating_sub(1);
            }
            _ => {}
        }
        self.publish_status();
    }

    /// A refused relay request from a non-member counts against it (no Passerelle node asks
    /// before it is admitted); a member over a limit is only refused.
    fn relay_offence(&mut self, peer: PeerId, member: bool) {
        if member {
            return;
        }
        if let super::Verdict::CutOff(why) = self.conduct.relay_refused(peer, Instant::now()) {
            self.cut_off(peer, why);
        }
    }

    pub(super) fn handle_autonat_event(&mut self, event: autonat::Event) {
        if let autonat::Event::StatusChanged { new, .. } = event {
            self.relays.reachability = match new {
                autonat::NatStatus::Public(_) => Reachability::Public,
                autonat::NatStatus::Private => Reachability::Private,
                autonat::NatStatus::Unknown => Reachability::Unknown,
            };
            info!(
                reachability = self.relays.reachability.as_str(),
                "reachability from the internet"
            );
            self.publish_status();
        }
    }

    pub(super) fn handle_dcutr_event(&mut self, event: dcutr::Event) {
        match event.result {
            Ok(_) => {
                self.relays.hole_punched += 1;
                info!(peer = %event.remote_peer_id, "direct connection made through both routers (hole punching)");
            }
            Err(e) => {
                self.relays.hole_punch_failed += 1;
                debug!(peer = %event.remote_peer_id, error = %e, "hole punching failed: the relayed connection stays");
            }
        }
        self.publish_status();
    }

    pub(super) fn handle_upnp_event(&mut self, event: upnp::Event) {
        match event {
            upnp::Event::NewExternalAddr { external_addr, .. } => {
                info!(address = %external_addr, "the router opened a port (UPnP)");
            }
            upnp::Event::ExpiredExternalAddr { external_addr, .. } => {
                info!(address = %external_addr, "the router's port mapping expired (UPnP)");
            }
            upnp::Event::GatewayNotFound => debug!("no UPnP router found"),
            upnp::Event::NonRoutableGateway => {
                debug!("the UPnP router is itself behind NAT: no port asked")
            }
        }
    }
}
