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

pub mod conduct;
pub mod gate;
pub use crate::protocol;
pub mod peer;

pub use conduct::{
    ADMISSION_REQUESTS_PER_MINUTE, CASE_MESSAGES_PER_MINUTE, MAX_REJECTED_PER_PEER,
    MAX_SYNC_IN_FLIGHT, SYNC_REQUESTS_PER_MINUTE,
};
use conduct::{Conduct, RequestKind, Verdict};
pub use peer::PeerIdentity;

pub use libp2p::Multiaddr;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport, ResponseChannel};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{
    PeerId, StreamProtocol, Swarm, connection_limits, gossipsub, identify, mdns, noise, ping, tcp,
    yamux,
};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::identity::{OrgId, SigningSecret};
use crate::node::{
    NodeError, NodeHandle, Outbound, Outgoing, Rejection, RemoteOutcome, SyncOffer, SyncServed,
};
use protocol::{
    ADMISSION_PROTOCOL, AdmissionMessage, AdmissionReply, CASE_PROTOCOL, CaseMessage, CaseReply,
    IDENTIFY_PROTOCOL, MAX_ADMISSION_BYTES, MAX_CASE_BYTES, MAX_GOSSIP_BYTES, MAX_SYNC_DOCUMENTS,
    MAX_SYNC_REQUEST_BYTES, MAX_SYNC_RESPONSE_BYTES, SYNC_PROTOCOL, SyncRequest, SyncResponse,
};

/// Most established connections in all.
pub const MAX_CONNECTIONS: u32 = 256;
/// Most established connections with one peer.
pub const MAX_CONNECTIONS_PER_PEER: u32 = 2;
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
/// Longest pause between two dials of a configured peer.
const MAX_REDIAL: Duration = Duration::from_secs(60);
/// First pause before retrying a case-file message the other node asked to retry.
const FIRST_CASE_RETRY: Duration = Duration::from_millis(500);
/// First pause after a configured peer drops or a dial fails.
const FIRST_REDIAL: Duration = Duration::from_millis(500);
/// Longest pause between two dials during the first minutes of an outage.
const FAST_REDIAL_MAX: Duration = Duration::from_secs(3);
/// How long an outage is retried with the short pauses.
const FAST_REDIAL_FOR: Duration = Duration::from_secs(600);
/// How often a connection is pinged; a ping unanswered for [`PING_TIMEOUT`] closes it.
pub const PING_INTERVAL: Duration = Duration::from_secs(10);
/// How long a ping may go unanswered before its connection is taken for dead.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Leeway past a ping's timeout before its connection is taken for dead.
const PING_SLACK: Duration = Duration::from_secs(1);
/// A connection older than this is closed when the same peer opens a new one.
const STALE_CONNECTION: Duration = Duration::from_secs(10);

pub use crate::config::{InboundRecord, NetworkConfig};

pub use crate::status::{NetworkStatus, PeerStatus};

#[derive(NetworkBehaviour)]
struct Behaviour {
    limits: connection_limits::Behaviour,
    gate: gate::ConnectionGate,
    mdns: Toggle<mdns::tokio::Behaviour>,
    gossipsub: gate::MembersOnly<gossipsub::Behaviour>,
    sync: request_response::Behaviour<
        request_response::cbor::codec::Codec<SyncRequest, SyncResponse>,
    >,
    admission: request_response::Behaviour<
        request_response::cbor::codec::Codec<AdmissionMessage, AdmissionReply>,
    >,
    case: request_response::Behaviour<request_response::cbor::codec::Codec<CaseMessage, CaseReply>>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

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
    /// Time to look at the case-file outbox again (after a "retry later" answer).
    CaseRetry,
}

struct DialTarget {
    address: Multiaddr,
    peer: Option<PeerId>,
    dialing: Option<ConnectionId>,
    next_attempt: Instant,
    delay: Duration,
    /// Found by mDNS (dropped when it expires) rather than configured.
    from_mdns: bool,
    /// Since when it has been unreachable (None while connected or never tried).
    down_since: Option<Instant>,
    /// Dial from a fresh port rather than the one this node listens on.
    fresh_port: bool,
}

/// Why a dial of ours failed, as far as redialling goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DialFault {
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
    fn of(error: &libp2p::swarm::DialError) -> Self {
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
    fn new(address: Multiaddr, now: Instant, from_mdns: bool) -> Self {
        Self {
            address,
            peer: None,
            dialing: None,
            next_attempt: now,
            delay: FIRST_REDIAL,
            from_mdns,
            down_since: None,
            fresh_port: false,
        }
    }

    /// Connected to `peer`: the next drop is redialled quickly again.
    fn connected(&mut self, peer: PeerId) {
        self.peer = Some(peer);
        self.delay = FIRST_REDIAL;
        self.down_since = None;
    }

    /// The connection dropped: redial soon (a dropped link often comes back at once).
    fn dropped(&mut self, now: Instant) {
        self.peer = None;
        self.next_attempt = now + self.delay;
        self.down_since.get_or_insert(now);
    }

    /// A dial failed: when to try again. A peer that is down is retried with back-off,
    /// quickly for the first minutes of an outage (a cut link usually returns within
    /// them, and partners should then converge within seconds), then every minute; one
    /// that was busy or that this node held back is retried at once.
    fn failed(&mut self, now: Instant, fault: DialFault) {
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
fn peer_of(address: &Multiaddr) -> Option<PeerId> {
    address.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::P2p(peer) => Some(peer),
        _ => None,
    })
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
    last_sync: Option<i64>,
    /// This node's admission request was handed to it on this connection.
    admission_sent: bool,
}

/// What is known of one connection's health.
#[derive(Debug, Clone, Copy)]
struct Liveness {
    /// When it was established.
    since: Instant,
    /// When it last answered a ping (its establishment until then).
    last_alive: Instant,
    /// The peer does not speak ping on it (not a Passerelle node): not watched.
    unwatched: bool,
}

impl Liveness {
    fn new(now: Instant) -> Self {
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
    fn overdue(&self, now: Instant) -> bool {
        !self.unwatched
            && now.duration_since(self.last_alive) > PING_INTERVAL + PING_TIMEOUT + PING_SLACK
    }
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

fn build_swarm(
    secret: &SigningSecret,
    use_mdns: bool,
    topic: &gossipsub::IdentTopic,
) -> Result<Swarm<Behaviour>, NodeError> {
    let other = |e: String| NodeError::Io {
        context: "building the network stack".into(),
        source: std::io::Error::other(e),
    };
    let builder = libp2p::SwarmBuilder::with_existing_identity(peer::keypair(secret))
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| other(e.to_string()))?;
    // QUIC (listen on /ip4/…/udp/4690/quic-v1) when built with `--features quic`.
    #[cfg(feature = "quic")]
    let builder = builder.with_quic();
    let swarm = builder
        .with_dns()
        .map_err(|e| other(e.to_string()))?
        .with_behaviour(|keypair| {
            let gossip_config = gossipsub::ConfigBuilder::default()
                .validation_mode(gossipsub::ValidationMode::Strict)
                .validate_messages()
                .max_transmit_size(MAX_GOSSIP_BYTES)
                .heartbeat_interval(Duration::from_millis(500))
                .message_id_fn(|message: &gossipsub::Message| {
                    gossipsub::MessageId::from(Sha256::digest(&message.data).to_vec())
                })
                .build()?;
            let mut gossipsub = gossipsub::Behaviour::new(
                gossipsub::MessageAuthenticity::Signed(keypair.clone()),
                gossip_config,
            )?;
            // Only misbehaviour may make a score negative: an invalid message (P4) or a
            // breach of the protocol (P7). gossipsub's default would also penalise a mesh
            // peer that delivers fewer than 20 messages in a window (P3, P3b) — every honest
            // peer of a quiet network — and peers sharing an address (a carrier NAT, or
            // loopback in tests): the node cuts off peers below the graylist threshold, so
            // those penalties are off.
            let mut params = gossipsub::PeerScoreParams {
                ip_colocation_factor_weight: 0.0,
                ..Default::default()
            };
            params.topics.insert(
                topic.hash(),
                gossipsub::TopicScoreParams {
                    topic_weight: 1.0,
                    time_in_mesh_weight: 0.01,
                    mesh_message_deliveries_weight: 0.0,
                    mesh_failure_penalty_weight: 0.0,
                    invalid_message_deliveries_weight: -100.0,
                    invalid_message_deliveries_decay: 0.9,
                    ..Default::default()
                },
            );
            gossipsub.with_peer_score(params, gossipsub::PeerScoreThresholds::default())?;
            gossipsub.subscribe(topic)?;
            let sync = request_response::Behaviour::with_codec(
                request_response::cbor::codec::Codec::default()
                    .set_request_size_maximum(MAX_SYNC_REQUEST_BYTES)
                    .set_response_size_maximum(MAX_SYNC_RESPONSE_BYTES),
                [(StreamProtocol::new(SYNC_PROTOCOL), ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(60)),
            );
            let admission = request_response::Behaviour::with_codec(
                request_response::cbor::codec::Codec::default()
                    .set_request_size_maximum(MAX_ADMISSION_BYTES)
                    .set_response_size_maximum(MAX_ADMISSION_BYTES),
                [(
                    StreamProtocol::new(ADMISSION_PROTOCOL),
                    ProtocolSupport::Full,
                )],
                request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
            );
            let case = request_response::Behaviour::with_codec(
                request_response::cbor::codec::Codec::default()
                    .set_request_size_maximum(MAX_CASE_BYTES)
                    .set_response_size_maximum(MAX_ADMISSION_BYTES),
                [(StreamProtocol::new(CASE_PROTOCOL), ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
            );
            let mdns = if use_mdns {
                Some(mdns::tokio::Behaviour::new(
                    mdns::Config::default(),
                    keypair.public().to_peer_id(),
                )?)
            } else {
                None
            };
            Ok(Behaviour {
                limits: connection_limits::Behaviour::new(
                    connection_limits::ConnectionLimits::default()
                        .with_max_established(Some(MAX_CONNECTIONS))
                        .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER)),
                ),
                gate: gate::ConnectionGate::default(),
                mdns: Toggle::from(mdns),
                gossipsub: gate::MembersOnly::new(gossipsub),
                sync,
                admission,
                case,
                identify: identify::Behaviour::new(identify::Config::new(
                    IDENTIFY_PROTOCOL.into(),
                    keypair.public(),
                )),
                ping: ping::Behaviour::new(
                    ping::Config::new()
                        .with_interval(PING_INTERVAL)
                        .with_timeout(PING_TIMEOUT),
                ),
            })
        })
        .map_err(|e| other(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .with_connection_timeout(HANDSHAKE_TIMEOUT)
        .build();
    Ok(swarm)
}

/// Starts the network actor of a node in `network` (its id): listens, dials the
/// configured peers, and syncs.
pub async fn spawn(
    secret: &SigningSecret,
    config: NetworkConfig,
    network: Option<String>,
    handle: NodeHandle,
    outbound: mpsc::Receiver<Outbound>,
    status: watch::Sender<NetworkStatus>,
    members: watch::Receiver<gate::MemberKeys>,
) -> Result<Network, NodeError> {
    let topic = gossipsub::IdentTopic::new(protocol::changes_topic(network.as_deref()));
    let mut swarm = build_swarm(secret, config.mdns, &topic)?;
    // Configured peers are partners: their addresses keep the slots kept for members.
    for address in &config.peers {
        if let Some(ip) = gate::ip_of(address) {
            swarm.behaviour_mut().gate.remember_member_address(ip);
        }
    }
    for address in &config.listen {
        swarm
            .listen_on(address.clone())
            .map_err(|e| NodeError::Io {
                context: format!("listening on {address}"),
                source: std::io::Error::other(e.to_string()),
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
        handle,
        topic,
        config,
        status,
        tasks: tokio::task::JoinSet::new(),
        tasks_shed: 0,
        syncing: HashSet::new(),
        resync: HashSet::new(),
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
    };
    // Every log line of the network names the node; a peer's events, the peer.
    let span = tracing::info_span!(
        "node",
        fingerprint = %OrgId::from_peer_id(&actor.local_peer)
            .map(|o| o.fingerprint())
            .unwrap_or_default()
    );
    let task = tokio::spawn(tracing::Instrument::instrument(
        actor.run(outbound, stop_rx, members),
        span,
    ));
    Ok(Network { stop, task })
}

/// The peer an event is about, if it is about one.
fn event_peer(event: &SwarmEvent<BehaviourEvent>) -> Option<PeerId> {
    fn of_request<Q, R>(event: &request_response::Event<Q, R>) -> PeerId {
        match event {
            request_response::Event::Message { peer, .. }
            | request_response::Event::OutboundFailure { peer, .. }
            | request_response::Event::InboundFailure { peer, .. }
            | request_response::Event::ResponseSent { peer, .. } => *peer,
        }
    }
    match event {
        SwarmEvent::ConnectionEstablished { peer_id, .. }
        | SwarmEvent::ConnectionClosed { peer_id, .. } => Some(*peer_id),
        SwarmEvent::OutgoingConnectionError { peer_id, .. } => *peer_id,
        SwarmEvent::Behaviour(BehaviourEvent::Sync(e)) => Some(of_request(e)),
        SwarmEvent::Behaviour(BehaviourEvent::Admission(e)) => Some(of_request(e)),
        SwarmEvent::Behaviour(BehaviourEvent::Case(e)) => Some(of_request(e)),
        SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => Some(e.peer),
        SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
            propagation_source,
            ..
        })) => Some(*propagation_source),
        _ => None,
    }
}

struct NetworkActor {
    swarm: Swarm<Behaviour>,
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
    peers: HashMap<PeerId, PeerInfo>,
    /// How each peer behaved, remembered across its reconnections.
    conduct: Conduct,
    targets: Vec<DialTarget>,
    listen_addrs: Vec<Multiaddr>,
    sync_bytes_received: u64,
    sync_bytes_sent: u64,
    gossip_bytes_received: u64,
    /// Case-file messages sent and not answered yet: (referral, erase) → request.
    case_in_flight: HashMap<request_response::OutboundRequestId, (String, bool, OrgId)>,
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
}

impl NetworkActor {
    async fn run(
        mut self,
        mut outbound: mpsc::Receiver<Outbound>,
        mut stop: watch::Receiver<bool>,
        mut members: watch::Receiver<gate::MemberKeys>,
    ) {
        self.handle_members(members.borrow_and_update().clone());
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

    fn handle_local_change(&mut self, change: Vec<u8>) {
        let membership_operation = crate::envelope::SignedChange::decode(&change)
            .is_ok_and(|c| c.document().network_owner().is_some());
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .inner_mut()
            .publish(self.topic.clone(), change)
        {
            Ok(_) => {}
            Err(e) => debug!(error = %e, "not published now; peers get it by catch-up"),
        }
        if membership_operation {
            // A decision may let peers serve or be served more: catch up with all of them.
            self.sync_all();
        }
    }

    /// Starts a catch-up with every connected peer (one in flight per peer at most).
    fn sync_all(&mut self) {
        let connected: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in connected {
            self.start_sync(peer);
        }
    }

    fn start_sync(&mut self, peer: PeerId) {
        if !self.syncing.insert(peer) {
            self.resync.insert(peer);
            return;
        }
        let handle = self.handle.clone();
        if !self.spawn_task(async move {
            TaskResult::Offer {
                peer,
                offer: handle.sync_offer().await,
            }
        }) {
            // The next round asks again.
            self.syncing.remove(&peer);
        }
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

    /// Asks the documents actor for the case-file messages to send (one look at a time).
    fn flush_case_outbox(&mut self) {
        if self.case_outbox_asked {
            return;
        }
        let handle = self.handle.clone();
        // Shed, the next round looks at the outbox again.
        self.case_outbox_asked = self.spawn_task(async move {
            TaskResult::CaseOutbox {
                outgoing: handle.case_outbox().await,
            }
        });
    }

    fn schedule_case_retry(&mut self) {
        if self.case_retry_scheduled {
            return;
        }
        let delay = self.case_retry_delay;
        self.case_retry_delay = (delay * 2).min(self.config.sync_interval);
        // Shed, the next round retries.
        self.case_retry_scheduled = self.spawn_task(async move {
            tokio::time::sleep(delay).await;
            TaskResult::CaseRetry
        });
    }

    fn send_case_messages(&mut self, outgoing: Vec<Outgoing>) {
        for Outgoing { to, message } in outgoing {
            let (referral, erase) = match &message {
                CaseMessage::Deliver { referral, .. } => (referral.clone(), false),
                CaseMessage::Erase { referral } => (referral.clone(), true),
            };
            if self
                .case_in_flight
                .values()
                .any(|(r, e, _)| *r == referral && *e == erase)
            {
                continue;
            }
            let peer = to.peer_id();
            if self.swarm.is_connected(&peer) {
                let request = self.swarm.behaviour_mut().case.send_request(&peer, message);
                self.case_in_flight.insert(request, (referral, erase, to));
            } else if let Some(addresses) = self.known_addresses.get(&peer).cloned() {
                // Not connected: dial it on the addresses it announced; the message goes
                // once connected.
                let opts = DialOpts::peer_id(peer)
                    .condition(libp2p::swarm::dial_opts::PeerCondition::DisconnectedAndNotDialing)
                    .addresses(addresses)
                    .build();
                if let Err(e) = self.swarm.dial(opts) {
                    debug!(peer = %peer, error = %e, "could not dial for a case file");
                }
            } else {
                debug!(%referral, to = %to, "case-file message waits for its receiver to connect");
            }
        }
    }

    fn handle_case_event(&mut self, event: request_response::Event<CaseMessage, CaseReply>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    if self.recording() {
                        self.record_inbound(&serde_json::to_vec(&request).unwrap_or_default());
                    }
                    if !self.within_budget(peer, RequestKind::Case) {
                        return;
                    }
                    let Some(key) = OrgId::from_peer_id(&peer) else {
                        return;
                    };
                    let handle = self.handle.clone();
                    // Shed, the channel is dropped: the sender retries later.
                    let _ = self.spawn_task(async move {
                        TaskResult::CaseServed {
                            peer,
                            channel,
                            reply: handle.case_message(request, key).await,
                        }
                    });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some((referral, erase, to)) = self.case_in_flight.remove(&request_id) {
                        if response.done {
                            self.case_retry_delay = FIRST_CASE_RETRY;
                        } else {
                            // Usually the board entry is still on its way: try again soon,
                            // then less and less often.
                            self.schedule_case_retry();
                        }
                        debug!(%referral, erase, done = response.done, message = %response.message, "case-file message answered");
                        let handle = self.handle.clone();
                        // Shed, the answer is not recorded: the message stays in the
                        // outbox and is sent again (the other node answers it again).
                        let _ = self.spawn_task(async move {
                            if let Err(e) =
                                handle.case_answered(referral, erase, to, response).await
                            {
                                warn!(error = %e, "could not record a case-file answer");
                            }
                            TaskResult::CaseRecorded
                        });
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                debug!(peer = %peer, error = %error, "case-file message not delivered; retried later");
                self.case_in_flight.remove(&request_id);
            }
            _ => {}
        }
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

    fn handle_result(&mut self, result: TaskResult) {
        match result {
            TaskResult::Offer { peer, offer } => match offer {
                Ok(offer) if self.swarm.is_connected(&peer) => {
                    if let Some(request) = offer.admission_request {
                        let info = self.peers.entry(peer).or_default();
                        if !info.admission_sent {
                            info.admission_sent = true;
                            self.swarm.behaviour_mut().admission.send_request(
                                &peer,
                                AdmissionMessage {
                                    request: serde_bytes::ByteBuf::from(request),
                                },
                            );
                        }
                    }
                    self.swarm.behaviour_mut().sync.send_request(
                        &peer,
                        SyncRequest {
                            documents: offer.documents,
                            network: offer.network,
                        },
                    );
                }
                Ok(_) => {
                    self.syncing.remove(&peer);
                }
                Err(e) => {
                    warn!(error = %e, "could not prepare a sync request");
                    self.syncing.remove(&peer);
                }
            },
            TaskResult::AdmissionAnswered {
                peer,
                channel,
                answer,
            } => {
                let reply = match answer {
                    Ok(message) => AdmissionReply {
                        received: true,
                        message,
                    },
                    Err(e) => {
                        warn!(peer = %peer, error = %e, "admission request refused");
                        AdmissionReply {
                            received: false,
                            message: e.to_string(),
                        }
                    }
                };
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .admission
                    .send_response(channel, reply);
            }
            TaskResult::Served {
                peer,
                channel,
                served,
            } => {
                self.conduct.served(peer);
                match served {
                    Ok(served) => {
                        self.sync_bytes_sent += served
                            .response
                            .changes
                            .iter()
                            .map(|c| c.len() as u64)
                            .sum::<u64>();
                        if self
                            .swarm
                            .behaviour_mut()
                            .sync
                            .send_response(channel, served.response)
                            .is_err()
                        {
                            debug!(peer = %peer, "sync response not sent: the peer left");
                        }
                        if served.requester_has_more {
                            self.start_sync(peer);
                        }
                    }
                    Err(e) => warn!(error = %e, "could not serve a sync request"),
                }
            }
            TaskResult::Applied {
                peer,
                outcome,
                more,
            } => {
                self.syncing.remove(&peer);
                let again = self.resync.remove(&peer);
                match outcome {
                    Ok(outcome) => {
                        self.penalise(peer, &outcome.rejected);
                        if outcome.membership_changed {
                            self.sync_all();
                        }
                        self.peers.entry(peer).or_default().last_sync = Some(crate::unix_now());
                        if outcome.applied > 0 {
                            debug!(peer = %peer, applied = outcome.applied, "caught up");
                            if !more {
                                // What arrived by catch-up is not gossiped: pass it on by
                                // catch-up with the other peers now, not at the next tick.
                                let others: Vec<PeerId> = self
                                    .swarm
                                    .connected_peers()
                                    .filter(|p| **p != peer)
                                    .copied()
                                    .collect();
                                for other in others {
                                    self.start_sync(other);
                                }
                            }
                        }
                        if (more && outcome.rejected.is_empty()) || again {
                            self.start_sync(peer);
                        }
                    }
                    Err(e) => warn!(error = %e, "could not apply changes from a peer"),
                }
                self.publish_status();
            }
            TaskResult::CaseOutbox { outgoing } => {
                self.case_outbox_asked = false;
                match outgoing {
                    Ok(outgoing) => self.send_case_messages(outgoing),
                    Err(e) => warn!(error = %e, "could not read the case-file outbox"),
                }
            }
            TaskResult::CaseServed {
                peer,
                channel,
                reply,
            } => {
                let reply = reply.unwrap_or_else(|e| CaseReply {
                    done: false,
                    accepted: false,
                    message: e.to_string(),
                });
                if !reply.accepted {
                    warn!(peer = %peer, message = %reply.message, "case-file message refused");
                }
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .case
                    .send_response(channel, reply);
            }
            TaskResult::CaseRecorded => {}
            TaskResult::CaseRetry => {
                self.case_retry_scheduled = false;
                self.flush_case_outbox();
            }
            TaskResult::Validated {
                source,
                message_id,
                outcome,
            } => {
                let acceptance = match &outcome {
                    Ok(o) if !o.rejected.is_empty() => gossipsub::MessageAcceptance::Reject,
                    Ok(o) if o.applied > 0 => gossipsub::MessageAcceptance::Accept,
                    Ok(_) => gossipsub::MessageAcceptance::Ignore,
                    Err(e) => {
                        warn!(error = %e, "could not apply a gossiped change");
                        gossipsub::MessageAcceptance::Ignore
                    }
                };
                if let Ok(o) = &outcome {
                    self.penalise(source, &o.rejected);
                    if o.membership_changed {
                        self.sync_all();
                    }
                    let behind = o
                        .rejected
                        .iter()
                        .any(|r| r.code == crate::node::RejectionCode::NotMember);
                    if o.pending > 0 || behind {
                        // Its dependencies are missing, or it may know of an admission this
                        // node has not seen yet: catch up with the sender.
                        self.start_sync(source);
                    }
                }
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .inner_mut()
                    .report_message_validation_result(&message_id, &source, acceptance);
                if acceptance == gossipsub::MessageAcceptance::Reject
                    && self
                        .swarm
                        .behaviour()
                        .gossipsub
                        .inner()
                        .peer_score(&source)
                        .is_some_and(|score| score < GRAYLIST_THRESHOLD)
                {
                    self.cut_off(source, "gossip score below the graylist threshold");
                }
                self.publish_status();
            }
        }
    }

    fn handle_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        let span = event_peer(&event).map(|peer| {
            tracing::debug_span!(
                "peer",
                peer = %OrgId::from_peer_id(&peer).map_or_else(|| peer.to_string(), |o| o.fingerprint())
            )
        });
        let _peer = span.as_ref().map(|s| s.enter());
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                self.listen_addrs.push(address);
                self.publish_status();
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                let address = endpoint.get_remote_address().clone();
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
                let stale: Vec<ConnectionId> = info
                    .connections
                    .iter()
                    .filter(|(_, l)| now.duration_since(l.since) > STALE_CONNECTION)
                    .map(|(id, _)| *id)
                    .collect();
                info.connections.insert(connection_id, Liveness::new(now));
                for old in stale {
                    debug!(peer = %peer_id, "a newer connection replaces an older one");
                    self.swarm.close_connection(old);
                }
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
                }
                if num_established == 0 {
                    info!(peer = %peer_id, "disconnected");
                    self.peers.remove(&peer_id);
                    self.conduct.disconnected(peer_id, Instant::now());
                    self.syncing.remove(&peer_id);
                    self.resync.remove(&peer_id);
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
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result,
            })) => self.handle_ping(peer, connection, result),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                debug!(peer = %peer_id, agent = %info.agent_version, "identified");
                let reachable: Vec<Multiaddr> = info
                    .listen_addrs
                    .into_iter()
                    .filter(|a| {
                        !a.iter().any(|p| {
                            matches!(p, libp2p::multiaddr::Protocol::Ip4(ip) if ip.is_unspecified())
                        })
                    })
                    .take(8)
                    .collect();
                if !reachable.is_empty() {
                    if self.known_addresses.len() >= MAX_CONNECTIONS as usize * 4 {
                        self.known_addresses.clear();
                    }
                    self.known_addresses.insert(peer_id, reachable);
                }
            }
            _ => {}
        }
    }

    /// A ping answered records the round trip; one unanswered means the connection is dead
    /// (a cut link, a sleeping laptop): close it now, so that `peers` stops listing it and
    /// the peer is redialled and caught up with as soon as it can be reached.
    fn handle_ping(
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

    fn handle_gossip(
        &mut self,
        source: PeerId,
        message_id: gossipsub::MessageId,
        message: gossipsub::Message,
    ) {
        self.gossip_bytes_received += message.data.len() as u64;
        self.record_inbound(&message.data);
        let handle = self.handle.clone();
        let id = message_id.clone();
        if !self.spawn_task(async move {
            TaskResult::Validated {
                source,
                message_id: id,
                outcome: handle
                    .apply_remote(vec![message.data], OrgId::from_peer_id(&source))
                    .await,
            }
        }) {
            // Not judged: neither forwarded nor held against the sender; the change comes
            // again by catch-up.
            self.swarm
                .behaviour_mut()
                .gossipsub
                .inner_mut()
                .report_message_validation_result(
                    &message_id,
                    &source,
                    gossipsub::MessageAcceptance::Ignore,
                );
        }
    }

    fn handle_sync_event(&mut self, event: request_response::Event<SyncRequest, SyncResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    if !self.within_budget(peer, RequestKind::Sync) {
                        return;
                    }
                    if request.documents.len() > MAX_SYNC_DOCUMENTS {
                        self.penalise(
                            peer,
                            &[Rejection {
                                code: crate::node::RejectionCode::OversizedRequest,
                                reason: "sync request lists too many documents".into(),
                            }],
                        );
                        return;
                    }
                    let handle = self.handle.clone();
                    // Shed, the channel is dropped: the requester asks again next round.
                    let _ = self.spawn_task(async move {
                        TaskResult::Served {
                            peer,
                            channel,
                            served: match OrgId::from_peer_id(&peer) {
                                Some(from) => handle.sync_serve(request, from).await,
                                // The gate refuses such peers; serve nothing if one slips by.
                                None => Ok(SyncServed {
                                    response: SyncResponse {
                                        changes: Vec::new(),
                                        more: false,
                                        documents: Vec::new(),
                                    },
                                    requester_has_more: false,
                                }),
                            },
                        }
                    });
                }
                request_response::Message::Response { response, .. } => {
                    self.sync_bytes_received +=
                        response.changes.iter().map(|c| c.len() as u64).sum::<u64>();
                    self.sync_bytes_received += response
                        .documents
                        .iter()
                        .map(|d| d.len() as u64)
                        .sum::<u64>();
                    for change in &response.changes {
                        self.record_inbound(change);
                    }
                    if self.recording() {
                        // Recorded uncompressed, so that what a document carries can be
                        // searched for in the record.
                        for document in &response.documents {
                            let bounded = crate::automerge_bounds::check_document(
                                &document.automerge,
                                crate::automerge_bounds::MAX_INFLATED_DOCUMENT,
                            );
                            let plain = bounded
                                .ok()
                                .and_then(|_| automerge::Automerge::load(&document.automerge).ok())
                                .map(|d| d.save_nocompress())
                                .unwrap_or_else(|| document.automerge.to_vec());
                            self.record_inbound(&plain);
                        }
                    }
                    self.publish_status();
                    let handle = self.handle.clone();
                    let more = response.more;
                    let changes = response.changes.into_iter().map(|c| c.into_vec()).collect();
                    let documents = response.documents;
                    if !self.spawn_task(async move {
                        TaskResult::Applied {
                            peer,
                            outcome: handle
                                .apply_received(changes, documents, OrgId::from_peer_id(&peer))
                                .await,
                            more,
                        }
                    }) {
                        // Shed, what was sent is not applied: the next round's catch-up
                        // brings it again.
                        self.syncing.remove(&peer);
                    }
                }
            },
            request_response::Event::OutboundFailure { peer, error, .. } => {
                debug!(peer = %peer, error = %error, "sync request failed");
                self.syncing.remove(&peer);
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(peer = %peer, error = %error, "inbound sync failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn handle_admission_event(
        &mut self,
        event: request_response::Event<AdmissionMessage, AdmissionReply>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    self.record_inbound(&request.request);
                    if !self.within_budget(peer, RequestKind::Admission) {
                        return;
                    }
                    let Some(from) = OrgId::from_peer_id(&peer) else {
                        return;
                    };
                    let handle = self.handle.clone();
                    // Shed, the channel is dropped: the candidate asks again.
                    let _ = self.spawn_task(async move {
                        TaskResult::AdmissionAnswered {
                            peer,
                            channel,
                            answer: handle
                                .admission_received(request.request.into_vec(), from)
                                .await,
                        }
                    });
                }
                request_response::Message::Response { response, .. } => {
                    info!(peer = %peer, received = response.received, message = %response.message, "admission request delivered");
                }
            },
            request_response::Event::OutboundFailure { peer, error, .. } => {
                debug!(peer = %peer, error = %error, "admission request not delivered");
                if let Some(info) = self.peers.get_mut(&peer) {
                    info.admission_sent = false;
                }
            }
            _ => {}
        }
    }

    fn handle_dial_tick(&mut self) {
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
            let opts = if target.fresh_port {
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
        self.sync_all();
        self.flush_case_outbox();
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
                let org = OrgId::from_peer_id(peer);
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
        });
    }
}
