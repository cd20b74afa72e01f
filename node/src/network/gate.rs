//! Who may connect, and who may gossip: the two gates between the swarm and a peer.
//!
//! Rules:
//! - A peer id must be an ed25519 key: a Passerelle peer id names an organisation (or one of
//!   its devices). Any other kind of key is refused at connection.
//! - [`ConnectionGate`] bounds connections by source before they cost anything: at most
//!   [`MAX_PENDING_PER_IP`] incoming connections still negotiating from one address that is
//!   not a known member's, at most [`MAX_PENDING_STRANGERS`] from such addresses in all (the
//!   rest of [`MAX_PENDING_INCOMING`] is kept for members' addresses), and at most
//!   [`MAX_STRANGERS`] established connections with peers that are not members
//!   ([`MAX_STRANGERS_PER_IP`] per address). A member's connection is never refused for
//!   being from a busy address.
//! - [`MembersOnly`] wraps gossipsub: only a connection with a peer that acts for a current
//!   member (its organisation key or an authorised device) is handed to gossipsub; others
//!   get a handler that speaks no protocol, so a non-member can neither subscribe to the
//!   network's topic nor publish on it. Which side of the gate a connection is on is fixed
//!   when it is established; when the membership changes, the connections of peers whose
//!   side changed are closed, and the next connection takes the right side.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

use either::Either;
use libp2p::core::transport::PortUse;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::swarm::behaviour::{ConnectionClosed, ConnectionEstablished};
use libp2p::swarm::{
    CloseConnection, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, NotifyHandler,
    THandler, THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{PeerId, multiaddr::Protocol};

use crate::identity::KeyId;
use crate::network::PeerIdentity;

/// Most incoming connections still negotiating, in all.
pub const MAX_PENDING_INCOMING: usize = 64;
/// Most incoming connections still negotiating from addresses not known as members'.
pub const MAX_PENDING_STRANGERS: usize = 48;
/// Most incoming connections still negotiating from one address not known as a member's.
pub const MAX_PENDING_PER_IP: usize = 4;
/// Most established connections with peers that are not members, in all.
pub const MAX_STRANGERS: usize = 64;
/// Most established connections with peers that are not members, from one address.
pub const MAX_STRANGERS_PER_IP: usize = 4;
/// Members' addresses remembered (to keep their slots); the oldest are forgotten first.
pub const MAX_MEMBER_ADDRESSES: usize = 4096;

pub use crate::membership::MemberKeys;

/// Why a connection was refused at the gate.
#[derive(Debug, thiserror::Error)]
pub enum GateRefusal {
    /// The peer's key is not an ed25519 key.
    #[error("peer {0} does not use an ed25519 key")]
    NotEd25519(PeerId),
    /// Too many connections still negotiating from this address or from strangers.
    #[error("too many connections negotiating from {0}")]
    BusyAddress(IpAddr),
    /// Too many connections still negotiating.
    #[error("too many connections negotiating")]
    Busy,
    /// Too many established connections with non-members.
    #[error("too many connections with peers that are not members")]
    TooManyStrangers,
    /// The peer abused this node and is cut off for a while.
    #[error("peer {0} is cut off for a while")]
    Banned(PeerId),
}

/// Most peers remembered as cut off; the one whose ban ends first is forgotten first.
pub const MAX_BANNED: usize = 4096;

/// The IP address of a multiaddr, if it has one.
pub fn ip_of(address: &Multiaddr) -> Option<IpAddr> {
    address.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

fn is_member(members: &MemberKeys, peer: &PeerId) -> bool {
    KeyId::from_peer_id(peer).is_some_and(|key| members.contains(&key))
}

/// Counts per address that never go below zero and forget addresses at zero.
#[derive(Debug, Default)]
struct PerAddress(HashMap<IpAddr, usize>);

impl PerAddress {
    fn get(&self, ip: &IpAddr) -> usize {
        self.0.get(ip).copied().unwrap_or(0)
    }
    fn add(&mut self, ip: IpAddr) {
        *self.0.entry(ip).or_default() += 1;
    }
    fn remove(&mut self, ip: &IpAddr) {
        if let Some(n) = self.0.get_mut(ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.0.remove(ip);
            }
        }
    }
}

/// Bounds connections by source (see the module's rules).
#[derive(Debug, Default)]
pub struct ConnectionGate {
    members: MemberKeys,
    /// Addresses from which members connected, or where configured peers are, oldest first.
    member_ips: VecDeque<IpAddr>,
    member_ip_set: HashSet<IpAddr>,
    /// Incoming connections still negotiating: their source, and whether it was a stranger's.
    pending: HashMap<ConnectionId, (IpAddr, bool)>,
    pending_by_ip: PerAddress,
    pending_strangers: usize,
    /// Established connections with non-members: their source.
    strangers: HashMap<ConnectionId, Option<IpAddr>>,
    strangers_by_ip: PerAddress,
    /// Connections refused since start, for `passerelle status`.
    refused: u64,
    /// Peers cut off, until when.
    banned: HashMap<PeerId, std::time::Instant>,
}

impl ConnectionGate {
    /// Sets the keys that act for members.
    pub fn set_members(&mut self, members: MemberKeys) {
        self.members = members;
    }

    /// Remembers an address as a member's: its incoming connections get the slots kept
    /// for members.
    pub fn remember_member_address(&mut self, ip: IpAddr) {
        if self.member_ip_set.insert(ip) {
            self.member_ips.push_back(ip);
            while self.member_ips.len() > MAX_MEMBER_ADDRESSES {
                if let Some(old) = self.member_ips.pop_front() {
                    self.member_ip_set.remove(&old);
                }
            }
        }
    }

    /// Connections refused at the gate since start.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Refuses every connection of `peer` for `duration`.
    pub fn ban(&mut self, peer: PeerId, duration: std::time::Duration) {
        let now = std::time::Instant::now();
        self.banned.retain(|_, until| *until > now);
        if self.banned.len() >= MAX_BANNED
            && let Some(first) = self
                .banned
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(p, _)| *p)
        {
            self.banned.remove(&first);
        }
        self.banned.insert(peer, now + duration);
    }

    /// True if `peer` is cut off now.
    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.banned
            .get(peer)
            .is_some_and(|until| *until > std::time::Instant::now())
    }

    /// Peers cut off now.
    pub fn banned(&self) -> usize {
        let now = std::time::Instant::now();
        self.banned.values().filter(|until| **until > now).count()
    }

    fn refuse(&mut self, why: GateRefusal) -> ConnectionDenied {
        self.refused += 1;
        tracing::debug!(reason = %why, "connection refused at the gate");
        ConnectionDenied::new(why)
    }

    fn check_peer(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        if KeyId::from_peer_id(&peer).is_none() {
            return Err(self.refuse(GateRefusal::NotEd25519(peer)));
        }
        if self
            .banned
            .get(&peer)
            .is_some_and(|until| *until > std::time::Instant::now())
        {
            return Err(self.refuse(GateRefusal::Banned(peer)));
        }
        if is_member(&self.members, &peer) {
            if let Some(ip) = ip_of(remote) {
                self.remember_member_address(ip);
            }
            return Ok(());
        }
        let ip = ip_of(remote);
        if self.strangers.len() >= MAX_STRANGERS {
            return Err(self.refuse(GateRefusal::TooManyStrangers));
        }
        if let Some(ip) = ip
            && self.strangers_by_ip.get(&ip) >= MAX_STRANGERS_PER_IP
        {
            return Err(self.refuse(GateRefusal::TooManyStrangers));
        }
        self.strangers.insert(connection, ip);
        if let Some(ip) = ip {
            self.strangers_by_ip.add(ip);
        }
        Ok(())
    }

    fn forget(&mut self, connection: ConnectionId) {
        if let Some((ip, stranger)) = self.pending.remove(&connection) {
            self.pending_by_ip.remove(&ip);
            if stranger {
                self.pending_strangers = self.pending_strangers.saturating_sub(1);
            }
        }
    }

    fn closed(&mut self, connection: ConnectionId) {
        if let Some(ip) = self.strangers.remove(&connection).flatten() {
            self.strangers_by_ip.remove(&ip);
        }
    }
}

impl NetworkBehaviour for ConnectionGate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection: ConnectionId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let Some(ip) = ip_of(remote) else {
            return Ok(());
        };
        if self.pending.len() >= MAX_PENDING_INCOMING {
            return Err(self.refuse(GateRefusal::Busy));
        }
        let stranger = !self.member_ip_set.contains(&ip);
        if stranger
            && (self.pending_strangers >= MAX_PENDING_STRANGERS
                || self.pending_by_ip.get(&ip) >= MAX_PENDING_PER_IP)
        {
            return Err(self.refuse(GateRefusal::BusyAddress(ip)));
        }
        self.pending.insert(connection, (ip, stranger));
        self.pending_by_ip.add(ip);
        if stranger {
            self.pending_strangers += 1;
        }
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.forget(connection);
        self.check_peer(connection, peer, remote)?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        address: &Multiaddr,
        _role: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check_peer(connection, peer, address)?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ListenFailure(e) => {
                self.forget(e.connection_id);
                self.closed(e.connection_id);
            }
            FromSwarm::DialFailure(e) => self.closed(e.connection_id),
            FromSwarm::ConnectionClosed(e) => self.closed(e.connection_id),
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(
        &mut self,
        _cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

/// A behaviour that only connections with members see (see the module's rules).
#[derive(Debug)]
pub struct MembersOnly<B> {
    inner: B,
    members: MemberKeys,
    /// Connections given to the inner behaviour, decided and not yet established.
    decided: HashMap<ConnectionId, bool>,
    /// Established connections given to the inner behaviour, per peer.
    admitted: HashMap<PeerId, Vec<ConnectionId>>,
    /// Established connections kept from it, per peer.
    shut_out: HashMap<PeerId, Vec<ConnectionId>>,
    /// Connections to close because their peer changed sides.
    to_close: VecDeque<(PeerId, ConnectionId)>,
}

impl<B> MembersOnly<B> {
    /// Wraps `inner`; no peer is a member until [`MembersOnly::set_members`].
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            members: MemberKeys::default(),
            decided: HashMap::new(),
            admitted: HashMap::new(),
            shut_out: HashMap::new(),
            to_close: VecDeque::new(),
        }
    }

    /// The wrapped behaviour.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// The wrapped behaviour, mutably.
    pub fn inner_mut(&mut self) -> &mut B {
        &mut self.inner
    }

    /// True if the peer has a connection on the members' side of the gate.
    pub fn is_admitted(&self, peer: &PeerId) -> bool {
        self.admitted.get(peer).is_some_and(|c| !c.is_empty())
    }

    /// Sets the keys that act for members, and closes the connections of every peer whose
    /// side of the gate changed. Returns the peers that became members (to dial again).
    pub fn set_members(&mut self, members: MemberKeys) -> Vec<PeerId> {
        self.members = members;
        let mut now_members = Vec::new();
        for (peer, connections) in &self.admitted {
            if !is_member(&self.members, peer) {
                tracing::info!(peer = %peer, "no longer acts for a member: its gossip connections close");
                self.to_close
                    .extend(connections.iter().map(|c| (*peer, *c)));
            }
        }
        for (peer, connections) in &self.shut_out {
            if is_member(&self.members, peer) && !connections.is_empty() {
                tracing::info!(peer = %peer, "now acts for a member: reconnecting it with gossip");
                self.to_close
                    .extend(connections.iter().map(|c| (*peer, *c)));
                now_members.push(*peer);
            }
        }
        now_members
    }

    fn decide(&mut self, connection: ConnectionId, peer: &PeerId) -> bool {
        let admit = is_member(&self.members, peer);
        self.decided.insert(connection, admit);
        admit
    }
}

fn remove_connection(
    map: &mut HashMap<PeerId, Vec<ConnectionId>>,
    peer: &PeerId,
    connection: ConnectionId,
) -> Option<usize> {
    let list = map.get_mut(peer)?;
    let at = list.iter().position(|c| *c == connection)?;
    list.remove(at);
    let remaining = list.len();
    if remaining == 0 {
        map.remove(peer);
    }
    Some(remaining)
}

impl<B: NetworkBehaviour> NetworkBehaviour for MembersOnly<B> {
    type ConnectionHandler = Either<THandler<B>, dummy::ConnectionHandler>;
    type ToSwarm = B::ToSwarm;

    fn handle_pending_inbound_connection(
        &mut self,
        connection: ConnectionId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.inner
            .handle_pending_inbound_connection(connection, local, remote)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        if self.decide(connection, &peer) {
            self.inner
                .handle_established_inbound_connection(connection, peer, local, remote)
                .map(Either::Left)
        } else {
            Ok(Either::Right(dummy::ConnectionHandler))
        }
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection: ConnectionId,
        peer: Option<PeerId>,
        addresses: &[Multiaddr],
        role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.inner
            .handle_pending_outbound_connection(connection, peer, addresses, role)
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        address: &Multiaddr,
        role: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        if self.decide(connection, &peer) {
            self.inner
                .handle_established_outbound_connection(connection, peer, address, role, port_use)
                .map(Either::Left)
        } else {
            Ok(Either::Right(dummy::ConnectionHandler))
        }
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                if self.decided.remove(&e.connection_id) == Some(true) {
                    let list = self.admitted.entry(e.peer_id).or_default();
                    // The inner behaviour counts only the connections it was given.
                    let other_established = list.len();
                    list.push(e.connection_id);
                    self.inner.on_swarm_event(FromSwarm::ConnectionEstablished(
                        ConnectionEstablished {
                            other_established,
                            ..e
                        },
                    ));
                } else {
                    self.shut_out
                        .entry(e.peer_id)
                        .or_default()
                        .push(e.connection_id);
                }
            }
            FromSwarm::ConnectionClosed(e) => {
                if let Some(remaining_established) =
                    remove_connection(&mut self.admitted, &e.peer_id, e.connection_id)
                {
                    self.inner
                        .on_swarm_event(FromSwarm::ConnectionClosed(ConnectionClosed {
                            remaining_established,
                            ..e
                        }));
                } else {
                    remove_connection(&mut self.shut_out, &e.peer_id, e.connection_id);
                }
            }
            FromSwarm::AddressChange(e) => {
                if self
                    .admitted
                    .get(&e.peer_id)
                    .is_some_and(|c| c.contains(&e.connection_id))
                {
                    self.inner.on_swarm_event(event);
                }
            }
            FromSwarm::DialFailure(e) => {
                self.decided.remove(&e.connection_id);
                self.inner.on_swarm_event(event);
            }
            FromSwarm::ListenFailure(e) => {
                self.decided.remove(&e.connection_id);
                self.inner.on_swarm_event(event);
            }
            other => self.inner.on_swarm_event(other),
        }
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {
            Either::Left(event) => self
                .inner
                .on_connection_handler_event(peer, connection, event),
            Either::Right(never) => match never {},
        }
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        if let Some((peer_id, connection)) = self.to_close.pop_front() {
            return Poll::Ready(ToSwarm::CloseConnection {
                peer_id,
                connection: CloseConnection::One(connection),
            });
        }
        loop {
            let event = match self.inner.poll(cx) {
                Poll::Ready(event) => event,
                Poll::Pending => return Poll::Pending,
            };
            return Poll::Ready(match event {
                ToSwarm::NotifyHandler {
                    peer_id,
                    handler,
                    event,
                } => {
                    // "Any connection" means any connection the inner behaviour was given.
                    let handler = match handler {
                        NotifyHandler::One(connection) => connection,
                        NotifyHandler::Any => {
                            match self.admitted.get(&peer_id).and_then(|c| c.first()) {
                                Some(connection) => *connection,
                                None => continue,
                            }
                        }
                    };
                    ToSwarm::NotifyHandler {
                        peer_id,
                        handler: NotifyHandler::One(handler),
                        event: Either::Left(event),
                    }
                }
                other => other.map_in(Either::Left),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(ip: &str) -> Multiaddr {
        format!("/ip4/{ip}/tcp/4690").parse().expect("multiaddr")
    }

    fn connection(n: usize) -> ConnectionId {
        ConnectionId::new_unchecked(n)
    }

    fn member_key() -> (PeerId, KeyId) {
        let key = crate::identity::SigningSecret::generate()
            .expect("key")
            .key_id();
        (key.peer_id(), key)
    }

    #[test]
    fn a_busy_address_is_refused_and_members_addresses_keep_their_slots() {
        let mut gate = ConnectionGate::default();
        let local = address("10.0.0.1");
        let flood = address("192.0.2.7");
        for n in 0..MAX_PENDING_PER_IP {
            gate.handle_pending_inbound_connection(connection(n), &local, &flood)
                .expect("within the address's budget");
        }
        assert!(
            gate.handle_pending_inbound_connection(connection(99), &local, &flood)
                .is_err()
        );
        // Strangers from many addresses fill their share, not the members'.
        let mut n = 100;
        let mut refused = 0;
        for i in 0..(MAX_PENDING_INCOMING * 2) {
            let from = address(&format!("198.51.{}.{}", i / 200, i % 200 + 1));
            if gate
                .handle_pending_inbound_connection(connection(n), &local, &from)
                .is_err()
            {
                refused += 1;
            }
            n += 1;
        }
        assert!(refused > 0);
        assert_eq!(gate.pending_strangers, MAX_PENDING_STRANGERS);
        gate.remember_member_address("203.0.113.5".parse().expect("ip"));
        gate.handle_pending_inbound_connection(connection(n), &local, &address("203.0.113.5"))
            .expect("a member's address has a slot kept");
        // A connection that ends (established or failed) gives its slot back.
        let (peer, _) = member_key();
        gate.handle_established_inbound_connection(connection(0), peer, &local, &flood)
            .expect("established");
        gate.handle_pending_inbound_connection(connection(n + 1), &local, &flood)
            .expect("the slot came back");
        assert!(gate.refused() >= 2);
    }

    #[test]
    fn strangers_are_capped_members_are_not_and_banned_peers_are_refused() {
        let mut gate = ConnectionGate::default();
        let (member, key) = member_key();
        gate.set_members(std::sync::Arc::new(HashSet::from([key])));
        let here = address("10.0.0.1");
        for n in 0..MAX_STRANGERS_PER_IP {
            let (stranger, _) = member_key();
            gate.handle_established_inbound_connection(
                connection(n),
                stranger,
                &here,
                &address("192.0.2.9"),
            )
            .expect("within the cap");
        }
        let (stranger, _) = member_key();
        assert!(
            gate.handle_established_inbound_connection(
                connection(50),
                stranger,
                &here,
                &address("192.0.2.9")
            )
            .is_err()
        );
        gate.handle_established_inbound_connection(
            connection(51),
            member,
            &here,
            &address("192.0.2.9"),
        )
        .expect("a member is never refused for a busy address");
        gate.ban(member, std::time::Duration::from_secs(60));
        assert!(gate.is_banned(&member));
        assert!(
            gate.handle_established_outbound_connection(
                connection(52),
                member,
                &address("192.0.2.10"),
                Endpoint::Dialer,
                PortUse::New
            )
            .is_err()
        );
    }

    #[test]
    fn a_peer_id_that_is_not_an_ed25519_key_is_refused() {
        let mut gate = ConnectionGate::default();
        // Random bytes: no ed25519 public key inside (as a secp256k1 or RSA peer id).
        let result = gate.handle_established_inbound_connection(
            connection(1),
            PeerId::random(),
            &address("10.0.0.1"),
            &address("192.0.2.1"),
        );
        assert!(result.is_err());
    }
}
