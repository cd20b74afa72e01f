//! The swarm: its behaviours (one per protocol) and how it is built.

use std::time::Duration;

use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    PeerId, StreamProtocol, Swarm, autonat, connection_limits, dcutr, gossipsub, identify, mdns,
    noise, relay, tcp, upnp, yamux,
};
use sha2::{Digest, Sha256};

use super::relay::{SharedMembers, autonat_config, relay_config};
use super::{HANDSHAKE_TIMEOUT, MAX_CONNECTIONS, MAX_CONNECTIONS_PER_PEER, gate, peer};
use crate::config::{NetworkConfig, RelayMode};
use crate::identity::SigningSecret;
use crate::node::NodeError;
use crate::protocol::{
    ADMISSION_PROTOCOL, AdmissionMessage, AdmissionReply, CASE_PROTOCOL, CaseMessage, CaseReply,
    IDENTIFY_PROTOCOL, MAX_ADMISSION_BYTES, MAX_CASE_BYTES, MAX_GOSSIP_BYTES,
    MAX_SYNC_REQUEST_BYTES, MAX_SYNC_RESPONSE_BYTES, SYNC_PROTOCOL, SyncRequest, SyncResponse,
};

#[derive(NetworkBehaviour)]
pub(super) struct Behaviour {
    pub(super) limits: connection_limits::Behaviour,
    pub(super) gate: gate::ConnectionGate,
    pub(super) mdns: Toggle<mdns::tokio::Behaviour>,
    pub(super) gossipsub: gate::MembersOnly<gossipsub::Behaviour>,
    pub(super) sync: request_response::Behaviour<
        request_response::cbor::codec::Codec<SyncRequest, SyncResponse>,
    >,
    /// The digest round on a kept stream (absent when a test makes this node behave as
    /// one of the release before digests).
    pub(super) step: Toggle<super::step::Behaviour>,
    pub(super) admission: request_response::Behaviour<
        request_response::cbor::codec::Codec<AdmissionMessage, AdmissionReply>,
    >,
    pub(super) case:
        request_response::Behaviour<request_response::cbor::codec::Codec<CaseMessage, CaseReply>>,
    pub(super) identify: identify::Behaviour,
    pub(super) ping: super::alive::Behaviour,
    /// Reserving slots on member relays and dialling through them.
    pub(super) relay_client: relay::client::Behaviour,
    /// Relaying for members behind NAT (absent with `relay = "off"`).
    pub(super) relay: Toggle<relay::Behaviour>,
    /// Hole punching over a relayed connection (absent when turned off).
    pub(super) dcutr: Toggle<dcutr::Behaviour>,
    /// Whether this node is reachable from the internet, asked of peers.
    pub(super) autonat: autonat::Behaviour,
    /// A port mapping asked of the office router (absent when turned off).
    pub(super) upnp: Toggle<upnp::tokio::Behaviour>,
}

pub(super) fn build_swarm(
    secret: &SigningSecret,
    config: &NetworkConfig,
    serve_digest: bool,
    topic: &gossipsub::IdentTopic,
    members: &SharedMembers,
    registry: &mut libp2p::metrics::Registry,
) -> Result<Swarm<Behaviour>, NodeError> {
    let use_mdns = config.mdns;
    let other = |reason: String| NodeError::Network {
        context: "building the network stack".into(),
        reason,
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
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| other(e.to_string()))?
        // Bytes in and out by protocol, for `[metrics]`.
        .with_bandwidth_metrics(registry)
        .with_behaviour(|keypair, relay_client| {
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
            let local = keypair.public().to_peer_id();
            let relay = match config.relay {
                RelayMode::Off => None,
                mode => {
                    let mut server = relay::Behaviour::new(local, relay_config(members));
                    // On: from start. Auto: decided by the actor from the node's direct
                    // external addresses (libp2p's own rule would also count the relayed
                    // address a reservation elsewhere confirms).
                    server.set_status(Some(if mode == RelayMode::On {
                        relay::Status::Enable
                    } else {
                        relay::Status::Disable
                    }));
                    Some(server)
                }
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
                step: Toggle::from(serve_digest.then(super::step::Behaviour::default)),
                admission,
                case,
                // Told again when its addresses change (a slot on a relay, a router's
                // port), and otherwise every 30 min rather than libp2p's 5 (an idle
                // metered link pays for each: about 1 KB with the protocols listed).
                identify: identify::Behaviour::new(
                    identify::Config::new(IDENTIFY_PROTOCOL.into(), keypair.public())
                        .with_interval(Duration::from_secs(30 * 60))
                        .with_push_listen_addr_updates(true),
                ),
                ping: super::alive::Behaviour::default(),
                relay_client,
                relay: Toggle::from(relay),
                dcutr: Toggle::from(config.hole_punching.then(|| dcutr::Behaviour::new(local))),
                autonat: autonat::Behaviour::new(local, autonat_config()),
                upnp: Toggle::from(config.upnp.then(upnp::tokio::Behaviour::default)),
            })
        })
        .map_err(|e| other(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .with_connection_timeout(HANDSHAKE_TIMEOUT)
        .build();
    Ok(swarm)
}

/// The peer an event is about, if it is about one.
pub(super) fn event_peer(event: &SwarmEvent<BehaviourEvent>) -> Option<PeerId> {
    pub(super) fn of_request<Q, R>(event: &request_response::Event<Q, R>) -> PeerId {
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
        SwarmEvent::Behaviour(BehaviourEvent::Step(e)) => Some(e.peer()),
        SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
            propagation_source,
            ..
        })) => Some(*propagation_source),
        _ => None,
    }
}
