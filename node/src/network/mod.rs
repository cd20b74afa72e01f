//! Networking: the libp2p swarm that keeps this node's documents converged with its peers.
//!
//! Rules:
//! - One actor owns the swarm ([`spawn`]); it talks to the documents actor only through the
//!   [`NodeHandle`]. Work that needs the documents actor runs in small tasks whose results
//!   come back to the event loop on a bounded channel, so the loop never waits.
//! - Live: each new local change is published on the network's gossipsub topic
//!   ([`protocol::changes_topic`]). Received messages are validated by the application
//!   (decode, signature, author) and made durable before gossipsub is told to forward them
//!   (Accept); forged ones are rejected (Reject), which lowers the sender's peer score.
//! - Catch-up: on connecting, and every `sync_interval`, each side sends a
//!   [`protocol::SyncRequest`] with its heads; the other answers with the signed changes it
//!   lacks, in batches of at most [`protocol::SYNC_BATCH_BYTES`].
//! - What arrives by catch-up is not gossiped: after a catch-up that brought changes, the
//!   node catches up with its other peers at once; after a membership change (received or
//!   decided here), with all of them. A catch-up asked for while one is in flight with the
//!   same peer runs again when it ends.
//! - Configured peers are redialled with exponential back-off after they drop; peers
//!   found by mDNS on the local network (when enabled) are dialled as they appear.
//! - Connections are limited in all, per peer and while negotiating.
//! - A peer that sends more than [`MAX_REJECTED_PER_PEER`] refused changes is disconnected.
//!
//! One module per protocol, each an `impl NetworkActor` block with its handlers and the
//! handling of its background tasks' results: `sync` (catch-up), `gossip` (live changes),
//! `admission`, `case` (case files); beside them `dial` (peers kept connected), `liveness`
//! (ping and the watchdog), `conduct` (each peer's budgets and abuse counts, pure), `gate`
//! (which connections are let in, gossip for members only), `swarm` (the behaviours and
//! how the swarm is built). This file holds the actor, its event loop, connections, the
//! cut-off and the status. A new protocol is a module here, a behaviour in `swarm`, an
//! arm in `handle_swarm_event` and, if it runs work beside the loop, a `TaskResult`
//! variant and its arm in `handle_result`.

mod admission;
pub mod alive;
mod case;
pub mod conduct;
mod dial;
pub mod gate;
mod gossip;
mod liveness;
pub mod relay;
mod step;
mod swarm;
mod sync;
pub use crate::protocol;
pub mod peer;

use case::FIRST_CASE_RETRY;
pub use conduct::{
    ADMISSION_REQUESTS_PER_MINUTE, CASE_MESSAGES_PER_MINUTE, MAX_REJECTED_PER_PEER,
    MAX_SYNC_IN_FLIGHT, SYNC_REQUESTS_PER_MINUTE,
};
use conduct::{Conduct, RequestKind, Verdict};
use dial::{DialFault, DialTarget, FIRST_REDIAL, peer_of};
use liveness::Liveness;
pub use liveness::{BUSY_FOR, IDLE_PING_INTERVAL, PING_INTERVAL, PING_TIMEOUT};
pub use peer::PeerIdentity;
use swarm::{Behaviour, BehaviourEvent, build_swarm, event_peer};

pub use libp2p::Multiaddr;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::request_response::{self, ResponseChannel};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{PeerId, Swarm, gossipsub, identify, mdns};

use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::identity::{KeyId, OrgId, SigningSecret};
use crate::node::{
    NodeError, NodeHandle, Outbound, Outgoing, Rejection, RemoteOutcome, SyncOffer, SyncServed,
};
use protocol::{AdmissionReply, CaseReply, SyncResponse};

/// Most established connections in all.
pub const MAX_CONNECTIONS: u32 = 256;
/// Most established connections with one peer: two dialled at once by both sides, a
/// relayed one being replaced by a direct one, and an AutoNAT dial-back (which checks this
/// node's address even while connected).
pub const MAX_CONNECTIONS_PER_PEER: u32 = 4;
/// Longest a connection may take to be set up (TCP, Noise, Yamux): a peer that holds a
/// socket open without completing the handshake loses it after this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Gossipsub's graylist threshold as configured (its default).
const GRAYLIST_THRESHOLD: f64 = -80.0;
/// How long an abusive peer is cut off (its connections refused at the gate).
pub const CUT_OFF_FOR: Duration = Duration::from_secs(600);
/// Most background tasks (answering a peer, applying what it sent, validating a gossip
/// message) running at once; past it new work is shed, counted, and asked again later by
/// the peer or the next round.
pub const MAX_TASKS: usize = 1024;
/// A connection older than this is closed when the same peer opens a new one.
const STALE_CONNECTION: Duration = Duration::from_secs(10);

pub use crate::config::{InboundRecord, NetworkConfig};

pub use crate::status::{NetworkStatus, PeerStatus};

enum TaskResult {
    Offer {
        peer: PeerId,
        offer: Result<SyncOffer, NodeError>,
    },
    AdmissionAnswered {
        peer: PeerId,
        channel: ResponseChannel<AdmissionReply>,
        answer: Result<String, NodeError>,
    },
    Served {
        peer: PeerId,
        channel: ResponseChannel<SyncResponse>,
        served: Result<SyncServed, NodeError>,
    },
    DigestServed {
        peer: PeerId,
        reply: sync::DigestAnswer,
        in_step: Result<bool, NodeError>,
    },
    Applied {
        peer: PeerId,
        outcome: Result<RemoteOutcome, NodeError>,
        more: bool,
    },
    Validated {
        source: PeerId,
        message_id: gossipsub::MessageId,
        outcome: Result<RemoteOutcome, NodeError>,
    },
    CaseOutbox {
        outgoing: Result<Vec<Outgoing>, NodeError>,
    },
    CaseServed {
        peer: PeerId,
        channel: ResponseChannel<CaseReply>,
        reply: Result<CaseReply, NodeError>,
    },
    CaseRecorded,
    /// The store's address book, read at start.
    AddressBook(Result<Vec<crate::store::PeerAddresses>, NodeError>),
    /// A peer's addresses were written to the address book.
    Remembered,
    /// Time to look at the case-file outbox again (after a "retry later" answer).
    CaseRetry,
    /// This node's addresses were published in its organisation's document (or were
    /// there already, or it is not a member yet).
    AddressesPublished {
        addresses: Vec<String>,
        result: Result<bool, NodeError>,
    },
    /// Members' published addresses, read to find more relays.
    PublishedAddresses(Result<Vec<(KeyId, Vec<String>)>, NodeError>),
}

#[derive(Default)]
struct PeerInfo {
    addresses: HashSet<Multiaddr>,
    /// Round trip of the last ping answered.
    rtt_ms: Option<u64>,
    /// Its open connections.
    connections: HashMap<ConnectionId, Liveness>,
    /// Connections taken for dead and being closed (not shown as connected).
    dead_connections: HashSet<ConnectionId>,
    /// Its connections that go through a relay.
    relayed_connections: HashSet<ConnectionId>,
    last_sync: Option<i64>,
    /// This node's admission request was handed to it on this connection.
    admission_sent: bool,
}

/// The running network actor.
#[derive(Debug)]
pub struct Network {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Network {
    /// Stops the swarm.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// What ties the network actor to its node: the documents actor's handle, what it sends
/// out, where the network's status is published, the members' keys.
#[derive(Debug)]
pub struct NodeLinks {
    /// The documents actor.
    pub handle: NodeHandle,
    /// Changes and case files to send.
    pub outbound: mpsc::Receiver<Outbound>,
    /// The network's status, published.
    pub status: watch::Sender<NetworkStatus>,
    /// The members' keys, as the network document says.
    pub members: watch::Receiver<gate::MemberKeys>,
}

/// Starts the network actor of a node in `network` (its id): listens, dials the
/// configured peers, and syncs; libp2p's metrics go into `registry`.
pub async fn spawn(
    secret: &SigningSecret,
    config: NetworkConfig,
    network: Option<String>,
    links: NodeLinks,
    registry: &mut libp2p::metrics::Registry,
) -> Result<Network, NodeError> {
    let NodeLinks {
        handle,
        outbound,
        status,
        members,
    } = links;
    let topic = gossipsub::IdentTopic::new(protocol::changes_topic(network.as_deref()));
    #[cfg(feature = "test-hooks")]
    let digest = !config.without_digest;
    #[cfg(not(feature = "test-hooks"))]
    let digest = true;
    let shared_members = relay::SharedMembers::default();
    let mut swarm = build_swarm(secret, &config, digest, &topic, &shared_members, registry)?;
    let metrics = libp2p::metrics::Metrics::new(registry);
    for address in &config.external {
        swarm.add_external_address(address.clone());
    }
    // Configured peers are partners: their addresses keep the slots kept for members.
    for address in &config.peers {
        if let Some(ip) = gate::ip_of(address) {
            swarm.behaviour_mut().gate.remember_member_address(ip);
        }
    }
    for address in &config.listen {
        swarm
            .listen_on(address.clone())
            .map_err(|e| NodeError::Network {
                context: format!("listening on {address}"),
                reason: e.to_string(),
            })?;
    }
    let (stop, stop_rx) = watch::channel(false);
    let now = Instant::now();
    let actor = NetworkActor {
        targets: config
            .peers
            .iter()
            .map(|address| DialTarget::new(address.clone(), now, false))
            .collect(),
        local_peer: *swarm.local_peer_id(),
        swarm,
        metrics,
        handle,
        topic,
        config,
        status,
        tasks: tokio::task::JoinSet::new(),
        tasks_shed: 0,
        syncing: HashSet::new(),
        resync: HashSet::new(),
        digest_offers: HashMap::new(),
        list_next: HashSet::new(),
        no_digest: HashSet::new(),
        answered_in_step: HashMap::new(),
        remembered: HashMap::new(),
        held_back: HashMap::new(),
        rounds_in_step: 0,
        rounds_listed: 0,
        peers: HashMap::new(),
        conduct: Conduct::default(),
        listen_addrs: Vec::new(),
        sync_bytes_received: 0,
        sync_bytes_sent: 0,
        gossip_bytes_received: 0,
        case_in_flight: HashMap::new(),
        case_outbox_asked: false,
        case_retry_delay: FIRST_CASE_RETRY,
        case_retry_scheduled: false,
        known_addresses: HashMap::new(),
        cut_offs: 0,
        members: shared_members,
        relays: relay::Relays::default(),
        busy_until: None,
    };
    // Every log line of the network names the node; a peer's events, the peer.
    let span = tracing::info_span!(
        "node",
        fingerprint = %KeyId::from_peer_id(&actor.local_peer)
            .map(|o| o.fingerprint())
            .unwrap_or_default()
    );
    let task = tokio::spawn(tracing::Instrument::instrument(
        actor.run(outbound, stop_rx, members),
        span,
    ));
    Ok(Network { stop, task })
}

struct NetworkActor {
    swarm: Swarm<Behaviour>,
    /// libp2p's own metrics (connections, identify, relay, hole punching, gossip).
    metrics: libp2p::metrics::Metrics,
    local_peer: PeerId,
    handle: NodeHandle,
    topic: gossipsub::IdentTopic,
    config: NetworkConfig,
    status: watch::Sender<NetworkStatus>,
    /// Background tasks, at most [`MAX_TASKS`]; their results come back to the event loop.
    tasks: tokio::task::JoinSet<TaskResult>,
    /// Work shed since start because [`MAX_TASKS`] were running.
    tasks_shed: u64,
    /// Peers with a catch-up of ours in flight (at most one each).
    syncing: HashSet<PeerId>,
    /// Peers to catch up with again as soon as the catch-up in flight ends (something
    /// changed meanwhile, e.g. the membership).
    resync: HashSet<PeerId>,
    /// Our catch-up offers waiting for the peer's answer to their digest.
    digest_offers: HashMap<PeerId, SyncOffer>,
    /// Peers whose next catch-up lists heads at once (they said they hold more, or a
    /// response said more follows): a digest would only say they differ.
    list_next: HashSet<PeerId>,
    /// Peers that do not speak the digest protocol (an older release): asked by listing.
    no_digest: HashSet<PeerId>,
    /// When this node last told each peer, answering its digest, that they hold the same:
    /// a round either side makes tells both, so the periodic round skips a peer that
    /// asked within the interval.
    answered_in_step: HashMap<PeerId, Instant>,
    /// What this node last wrote to the address book for each peer, and when.
    remembered: HashMap<PeerId, (Vec<String>, Instant)>,
    /// Documents this node held back when serving each peer: named in its next request
    /// to that peer, which then serves them even if it knows none of this node's heads.
    held_back: HashMap<PeerId, Vec<crate::envelope::DocumentId>>,
    rounds_in_step: u64,
    rounds_listed: u64,
    peers: HashMap<PeerId, PeerInfo>,
    /// How each peer behaved, remembered across its reconnections.
    conduct: Conduct,
    targets: Vec<DialTarget>,
    listen_addrs: Vec<Multiaddr>,
    sync_bytes_received: u64,
    sync_bytes_sent: u64,
    gossip_bytes_received: u64,
    /// Case-file messages sent and not answered yet: (referral, erase) → request.
    case_in_flight:
        HashMap<request_response::OutboundRequestId, (String, crate::vault::OutboxKind, OrgId)>,
    /// A look at the outbox is in flight.
    case_outbox_asked: bool,
    /// Pause before retrying after a "retry later" answer (doubles up to the sync
    /// interval; back to the first after a message is taken).
    case_retry_delay: Duration,
    /// A retry is scheduled.
    case_retry_scheduled: bool,
    /// Addresses peers said they listen on (identify), to reach them for case files.
    known_addresses: HashMap<PeerId, Vec<Multiaddr>>,
    /// Peers cut off since start.
    cut_offs: u64,
    /// The member set as the relay's limiters see it.
    members: relay::SharedMembers,
    /// Relays used and served, reachability.
    relays: relay::Relays,
    /// Pings stay quick until then (something was to be delivered).
    busy_until: Option<Instant>,
}

impl NetworkActor {
    async fn run(
        mut self,
        mut outbound: mpsc::Receiver<Outbound>,
        mut stop: watch::Receiver<bool>,
        mut members: watch::Receiver<gate::MemberKeys>,
    ) {
        self.handle_members(members.borrow_and_update().clone());
        self.relay_started();
        for address in self.config.external.clone() {
            self.relay_external(&address, true);
        }
        self.read_address_book();
        let mut sync_tick = tokio::time::interval(self.config.sync_interval);
        sync_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut dial_tick = tokio::time::interval(Duration::from_millis(250));
        dial_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.publish_status();
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                Ok(()) = members.changed() => {
                    let keys = members.borrow_and_update().clone();
                    self.handle_members(keys);
                }
                Some(out) = outbound.recv() => match out {
                    Outbound::Change(change) => self.handle_local_change(change),
                    Outbound::CaseFiles => self.flush_case_outbox(),
                    Outbound::AdmissionRequest => self.hand_admission_request(),
                },
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => match joined {
                    Ok(result) => self.handle_result(result),
                    Err(e) => warn!(error = %e, "a network task failed"),
                },
                event = self.swarm.select_next_some() => self.handle_swarm_event(event),
                _ = dial_tick.tick() => self.handle_dial_tick(),
                _ = sync_tick.tick() => self.handle_sync_tick(),
            }
        }
        info!("network stopped");
    }

    /// The keys acting for members changed: both gates learn it; peers that became members
    /// are reconnected (their connection had no gossip) at once.
    fn handle_members(&mut self, keys: gate::MemberKeys) {
        self.relay_members(keys.clone());
        let behaviour = self.swarm.behaviour_mut();
        behaviour.gate.set_members(keys.clone());
        let now_members = behaviour.gossipsub.set_members(keys);
        let now = Instant::now();
        for peer in now_members {
            for target in &mut self.targets {
                if target.peer == Some(peer) || peer_of(&target.address) == Some(peer) {
                    target.next_attempt = now;
                    target.delay = FIRST_REDIAL;
                }
            }
        }
    }

    /// Runs `work` beside the event loop, which gets its result; false (and nothing runs)
    /// when [`MAX_TASKS`] are running already: the caller leaves the work to be asked again.
    #[must_use]
    fn spawn_task(&mut self, work: impl Future<Output = TaskResult> + Send + 'static) -> bool {
        if self.tasks.len() >= MAX_TASKS {
            self.tasks_shed += 1;
            if self.tasks_shed.is_power_of_two() {
                warn!(
                    shed = self.tasks_shed,
                    "too much network work at once; shedding some until it drains"
                );
            }
            return false;
        }
        self.tasks.spawn(work);
        true
    }

    /// False when a test makes this node behave as one of the release before sync digests.
    fn speaks_digest(&self) -> bool {
        #[cfg(feature = "test-hooks")]
        return !self.config.without_digest;
        #[cfg(not(feature = "test-hooks"))]
        true
    }

    /// True when a test records what this node receives.
    fn recording(&self) -> bool {
        #[cfg(feature = "test-hooks")]
        return self.config.record_inbound.is_some();
        #[cfg(not(feature = "test-hooks"))]
        false
    }

    fn record_inbound(&self, bytes: &[u8]) {
        #[cfg(feature = "test-hooks")]
        if let Some(record) = &self.config.record_inbound
            && let Ok(mut record) = record.lock()
        {
            record.push(bytes.to_vec());
        }
        #[cfg(not(feature = "test-hooks"))]
        let _ = bytes;
    }

    fn penalise(&mut self, peer: PeerId, reasons: &[Rejection]) {
        let refused = reasons.len();
        if refused == 0 {
            return;
        }
        let verdict = self.conduct.refused(peer, refused as u64, Instant::now());
        let first = reasons.first();
        warn!(
            peer = %peer,
            refused,
            code = first.map(|r| r.code.as_str()).unwrap_or(""),
            reason = first.map(|r| r.reason.as_str()).unwrap_or(""),
            "peer sent changes that were refused"
        );
        if let Verdict::CutOff(why) = verdict {
            self.cut_off(peer, why);
        }
    }

    /// Disconnects an abusive peer and refuses its connections for [`CUT_OFF_FOR`].
    fn cut_off(&mut self, peer: PeerId, why: &str) {
        if self.swarm.behaviour().gate.is_banned(&peer) {
            // Already cut off: its last connections are closing.
            let _ = self.swarm.disconnect_peer_id(peer);
            return;
        }
        warn!(peer = %peer, why, minutes = CUT_OFF_FOR.as_secs() / 60, "peer cut off");
        self.swarm.behaviour_mut().gate.ban(peer, CUT_OFF_FOR);
        let _ = self.swarm.disconnect_peer_id(peer);
        self.cut_offs += 1;
        self.publish_status();
    }

    /// Takes one request of `kind` from `peer`'s budget ([`Conduct::request`]); false
    /// when it is dropped unanswered, and the peer cut off if it abused.
    fn within_budget(&mut self, peer: PeerId, kind: RequestKind) -> bool {
        match self.conduct.request(peer, kind, Instant::now()) {
            Verdict::Serve => true,
            Verdict::Drop => {
                debug!(peer = %peer, ?kind, "request over the peer's budget: dropped");
                false
            }
            Verdict::CutOff(why) => {
                self.cut_off(peer, why);
                false
            }
        }
    }

    /// A background task's result, handed to its protocol's module.
    fn handle_result(&mut self, result: TaskResult) {
        match result {
            TaskResult::Offer { peer, offer } => self.offer_ready(peer, offer),
            TaskResult::AdmissionAnswered {
                peer,
                channel,
                answer,
            } => self.admission_answered(peer, channel, answer),
            TaskResult::Served {
                peer,
                channel,
                served,
            } => self.sync_served(peer, channel, served),
            TaskResult::DigestServed {
                peer,
                reply,
                in_step,
            } => self.digest_served(peer, reply, in_step),
            TaskResult::Applied {
                peer,
                outcome,
                more,
            } => self.caught_up(peer, outcome, more),
            TaskResult::CaseOutbox { outgoing } => self.case_outbox_read(outgoing),
            TaskResult::CaseServed {
                peer,
                channel,
                reply,
            } => self.case_served(peer, channel, reply),
            TaskResult::CaseRecorded | TaskResult::Remembered => {}
            TaskResult::AddressBook(book) => self.address_book_read(book),
            TaskResult::CaseRetry => self.case_retry(),
            TaskResult::AddressesPublished { addresses, result } => {
                self.addresses_published(addresses, result)
            }
            TaskResult::PublishedAddresses(published) => self.published_addresses_read(published),
            TaskResult::Validated {
                source,
                message_id,
                outcome,
            } => self.gossip_validated(source, message_id, outcome),
        }
    }

    fn handle_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        self.record(&event);
        let span = event_peer(&event).map(|peer| {
            tracing::debug_span!(
                "peer",
                peer = %KeyId::from_peer_id(&peer).map_or_else(|| peer.to_string(), |o| o.fingerprint())
            )
        });
        let _peer = span.as_ref().map(|s| s.enter());
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                // With `relay = "on"` and no `external` address, the listen addresses are
                // taken as the ones partners reach (a server with a public address).
                if self.config.relay == crate::config::RelayMode::On
                    && self.config.external.is_empty()
                    && !relay::is_relayed(&address)
                    && !gate::ip_of(&address).is_some_and(|ip| ip.is_loopback())
                {
                    self.swarm.add_external_address(address.clone());
                }
                if !self.listen_addrs.contains(&address) {
                    self.listen_addrs.push(address);
                }
                self.publish_status();
            }
            SwarmEvent::ExternalAddrConfirmed { address } => {
                info!(%address, "reachable from the internet at this address");
                self.relay_external(&address, true);
            }
            SwarmEvent::ExternalAddrExpired { address } => {
                debug!(%address, "no longer known reachable at this address");
                self.relay_external(&address, false);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                debug!(%address, "no longer listening");
                self.listen_addrs.retain(|a| *a != address);
                self.publish_status();
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                addresses,
                ..
            } => {
                self.listen_addrs.retain(|a| !addresses.contains(a));
                self.relay_listener_closed(listener_id, reason.err().map(|e| e.to_string()));
                self.publish_status();
            }
            SwarmEvent::ListenerError { listener_id, error } => {
                debug!(error = %error, "listener error");
                self.relay_listener_closed(listener_id, Some(error.to_string()));
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                let address = endpoint.get_remote_address().clone();
                self.relay_connected(peer_id, &endpoint);
                for target in &mut self.targets {
                    // Our dial to it, or a connection it opened to us first.
                    if target.dialing == Some(connection_id)
                        || peer_of(&target.address) == Some(peer_id)
                    {
                        target.connected(peer_id);
                    }
                    if target.dialing == Some(connection_id) {
                        target.dialing = None;
                    }
                }
                let now = Instant::now();
                self.conduct.connected(peer_id, now);
                let info = self.peers.entry(peer_id).or_default();
                info.addresses.insert(address);
                // A new connection from a peer that had one for a while: the old one is
                // most likely dead (the link was cut and came back, or the peer moved) but
                // not yet noticed; requests and gossip could still be sent on it. Close it.
                // Two connections opened together (both sides dialled) are both kept.
                // One that answered a ping lately is alive (the new one is e.g. an AutoNAT
                // dial-back, or both sides dialled) and is kept.
                let mut stale: Vec<ConnectionId> = info
                    .connections
                    .iter()
                    .filter(|(_, l)| {
                        now.duration_since(l.since) > STALE_CONNECTION
                            && now.duration_since(l.last_alive)
                                > PING_INTERVAL + Duration::from_secs(1)
                    })
                    .map(|(id, _)| *id)
                    .collect();
                let pace = self.swarm.behaviour().ping.current_interval();
                info.connections
                    .insert(connection_id, Liveness::new(now, pace));
                // A direct connection replaces the relayed ones (hole punching succeeded,
                // or the peer became reachable): the relay's circuit is freed.
                if endpoint.is_relayed() {
                    info.relayed_connections.insert(connection_id);
                } else {
                    stale.extend(info.relayed_connections.drain());
                }
                for old in stale {
                    debug!(peer = %peer_id, "a newer connection replaces an older one");
                    self.swarm.close_connection(old);
                }
                // A new connection: watched closely for a while (and its catch-up follows).
                self.mark_busy();
                if num_established.get() == 1 {
                    info!(peer = %peer_id, "connected");
                    self.start_sync(peer_id);
                    self.flush_case_outbox();
                } else {
                    // Whatever the old connection was carrying may be lost: catch up.
                    self.start_sync(peer_id);
                }
                self.publish_status();
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                if let Some(info) = self.peers.get_mut(&peer_id) {
                    info.addresses.remove(endpoint.get_remote_address());
                    info.connections.remove(&connection_id);
                    info.dead_connections.remove(&connection_id);
                    info.relayed_connections.remove(&connection_id);
                }
                if num_established == 0 {
                    info!(peer = %peer_id, "disconnected");
                    self.peers.remove(&peer_id);
                    self.conduct.disconnected(peer_id, Instant::now());
                    self.syncing.remove(&peer_id);
                    self.resync.remove(&peer_id);
                    self.digest_offers.remove(&peer_id);
                    self.list_next.remove(&peer_id);
                    self.no_digest.remove(&peer_id);
                    self.answered_in_step.remove(&peer_id);
                    self.held_back.remove(&peer_id);
                    self.relay_disconnected(peer_id);
                    let now = Instant::now();
                    for target in &mut self.targets {
                        if target.peer == Some(peer_id) {
                            target.dropped(now);
                        }
                    }
                }
                self.publish_status();
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                let now = Instant::now();
                let fault = DialFault::of(&error);
                for target in &mut self.targets {
                    if target.dialing == Some(connection_id) {
                        debug!(address = %target.address, error = %error, ?fault, "dial failed");
                        target.failed(now, fault);
                    }
                }
            }
            SwarmEvent::IncomingConnectionError { .. } => self.publish_status(),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.handle_gossip(propagation_source, message_id, message),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.handle_sync_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Step(event)) => self.handle_step_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Admission(event)) => {
                self.handle_admission_event(event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Case(event)) => self.handle_case_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                // Found peers become dial targets like configured ones (redialled with
                // back-off) until mDNS says they expired.
                let now = Instant::now();
                for (peer, address) in found {
                    if self.targets.iter().any(|t| t.address == address) {
                        continue;
                    }
                    debug!(%peer, %address, "found on the local network");
                    let mut target = DialTarget::new(address, now, true);
                    target.peer = self.swarm.is_connected(&peer).then_some(peer);
                    self.targets.push(target);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Expired(gone))) => {
                self.targets.retain(|t| {
                    !(t.from_mdns && gone.iter().any(|(_, address)| *address == t.address))
                });
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(event)) => self.handle_ping(event),
            SwarmEvent::Behaviour(BehaviourEvent::RelayClient(event)) => {
                self.handle_relay_client_event(event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Relay(event)) => self.handle_relay_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Autonat(event)) => {
                self.handle_autonat_event(event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(event)) => self.handle_dcutr_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Upnp(event)) => self.handle_upnp_event(event),
            // Only what a peer says of itself: `Pushed` carries what this node told the
            // peer (its own addresses), which must not be remembered as the peer's — it
            // was, and an office restarted with no partner configured dialled its own old
            // addresses for the relay's, reconnecting only after 40–90 s.
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => self.identified(peer_id, info),
            _ => {}
        }
    }

    /// Counts `event` in libp2p's metrics.
    fn record(&self, event: &SwarmEvent<BehaviourEvent>) {
        use libp2p::metrics::Recorder;
        self.metrics.record(event);
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Relay(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => self.metrics.record(e),
            _ => {}
        }
    }

    /// A peer said who it is, what it speaks and where it listens (identify, on connecting
    /// and again when that changes, e.g. it got a slot on a relay).
    fn identified(&mut self, peer_id: PeerId, info: identify::Info) {
        debug!(peer = %peer_id, agent = %info.agent_version, "identified");
        self.relay_identified(peer_id, &info.protocols);
        let mut reachable: Vec<Multiaddr> = info
            .listen_addrs
            .into_iter()
            .filter(|a| {
                !a.iter().any(
                    |p| matches!(p, libp2p::multiaddr::Protocol::Ip4(ip) if ip.is_unspecified()),
                )
            })
            .collect();
        // Direct addresses first, then through relays.
        reachable.sort_by_key(relay::is_relayed);
        reachable.truncate(8);
        self.remember_addresses(peer_id, &reachable);
        if !reachable.is_empty() {
            if self.known_addresses.len() >= MAX_CONNECTIONS as usize * 4 {
                self.known_addresses.clear();
            }
            self.known_addresses.insert(peer_id, reachable);
        }
    }

    fn handle_sync_tick(&mut self) {
        self.conduct.forget_gone(Instant::now());
        // A peer whose gossip score fell below gossipsub's graylist threshold is ignored by
        // gossipsub already; it is cut off too, so it costs nothing more.
        let graylisted: Vec<PeerId> = self
            .swarm
            .connected_peers()
            .filter(|p| {
                self.swarm
                    .behaviour()
                    .gossipsub
                    .inner()
                    .peer_score(p)
                    .is_some_and(|score| score < GRAYLIST_THRESHOLD)
            })
            .copied()
            .collect();
        for peer in graylisted {
            self.cut_off(peer, "gossip score below the graylist threshold");
        }
        // One side's rounds keep a link in step both ways (a round that finds a difference
        // makes the other side ask in turn). The side with the smaller peer id makes them;
        // the other skips a peer whose round found this node in step lately (within two
        // and a half intervals: a round late by a tick does not make both sides ask).
        let now = Instant::now();
        let interval = self.config.sync_interval;
        let lately = interval * 5 / 2;
        self.answered_in_step
            .retain(|_, at| now.duration_since(*at) < lately);
        let local = self.local_peer;
        let due: Vec<PeerId> = self
            .swarm
            .connected_peers()
            .filter(|p| **p > local || !self.answered_in_step.contains_key(p))
            .copied()
            .collect();
        for peer in due {
            self.start_sync(peer);
        }
        self.flush_case_outbox();
        self.tend_published_addresses();
        self.publish_status();
    }

    fn publish_status(&self) {
        let gossipsub = self.swarm.behaviour().gossipsub.inner();
        let mut peers: Vec<PeerStatus> = self
            .peers
            .iter()
            .filter(|(peer, info)| {
                self.swarm.is_connected(peer)
                    && info
                        .connections
                        .keys()
                        .any(|c| !info.dead_connections.contains(c))
            })
            .map(|(peer, info)| {
                let org = KeyId::from_peer_id(peer);
                let mut addresses: Vec<String> =
                    info.addresses.iter().map(|a| a.to_string()).collect();
                addresses.sort();
                PeerStatus {
                    peer_id: peer.to_string(),
                    org_id: org.map(|o| o.to_string()),
                    fingerprint: org.map(|o| o.fingerprint()),
                    addresses,
                    last_sync: info.last_sync,
                    score: gossipsub.peer_score(peer),
                    rejected: self.conduct.rejected(peer),
                    rtt_ms: info.rtt_ms,
                    gossip: self.swarm.behaviour().gossipsub.is_admitted(peer),
                    relayed: !info.addresses.is_empty()
                        && info.addresses.iter().all(relay::is_relayed),
                }
            })
            .collect();
        peers.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        self.status.send_replace(NetworkStatus {
            enabled: true,
            peer_id: self.local_peer.to_string(),
            listen_addrs: self.listen_addrs.iter().map(|a| a.to_string()).collect(),
            peers,
            sync_bytes_received: self.sync_bytes_received,
            sync_bytes_sent: self.sync_bytes_sent,
            gossip_bytes_received: self.gossip_bytes_received,
            connections_refused: self.swarm.behaviour().gate.refused(),
            peers_cut_off: self.cut_offs,
            tasks_shed: self.tasks_shed,
            sync_rounds_in_step: self.rounds_in_step,
            sync_rounds_listed: self.rounds_listed,
            reachability: self.relays.reachability.as_str().to_owned(),
            relays: self
                .relays
                .reserved()
                .iter()
                .map(|p| p.to_string())
                .collect(),
            relay_serving: self.relays.serving(),
            relay_reservations: self.relays.serving_reservations() as u64,
            relay_circuits: self.relays.serving_circuits() as u64,
            relay_circuits_served: self.relays.circuits_served,
            relay_refused: self.relays.reservations_refused + self.relays.circuits_refused,
            hole_punched: self.relays.hole_punched,
        });
    }
}
