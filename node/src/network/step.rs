//! "Are we in step?" on one long-lived stream per connection
//! (`/passerelle/sync-digest/2`): the asker writes the 32-byte round digest
//! ([`crate::sync::round_digest`]), the other answers one byte (1: same documents at the
//! same heads; 0: not). Both are of fixed size, and the stream stays open between rounds.
//!
//! Why not request-response like the first version (`/passerelle/sync-digest/1`, no
//! longer spoken: a node of that release lists heads with this one): it opened a new
//! stream per round — Yamux's opening and closing frames, multistream-select's protocol
//! names both ways, CBOR — about 500 bytes each way on the wire for a 32-byte question,
//! most of what an idle link cost. On a kept stream a round is one small segment each way.
//!
//! One question at a time per connection (the actor keeps one round in flight per peer).
//! An answer the actor does not give (shed under load, over the peer's budget) leaves the
//! asker to time out after [`ASK_TIMEOUT`] and list its heads; its next question comes on
//! a new stream, which replaces the old one here, so a late answer is never written to
//! the wrong question (each question has a number; an answer names it).

use std::collections::{HashMap, VecDeque};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::{BoxFuture, Either};
use futures::prelude::*;
use futures_timer::Delay;
use libp2p::PeerId;
use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::ReadyUpgrade;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::swarm::handler::{
    ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
    NetworkBehaviour, NotifyHandler, Stream, StreamProtocol, StreamUpgradeError, SubstreamProtocol,
    THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};

use crate::protocol::{DIGEST_BYTES, SYNC_STEP_PROTOCOL};

/// How long a question may wait for its answer.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(30);

const PROTOCOL: StreamProtocol = StreamProtocol::new(SYNC_STEP_PROTOCOL);

/// What the behaviour tells the actor.
#[derive(Debug)]
pub enum Event {
    /// The peer asks whether this node holds what its digest says; answer with
    /// [`Behaviour::answer`].
    Asked {
        peer: PeerId,
        connection: ConnectionId,
        question: u64,
        digest: [u8; DIGEST_BYTES],
    },
    /// The peer answered this node's question.
    Answered { peer: PeerId, in_step: bool },
    /// This node's question got no answer: the connection closed, the stream broke, it
    /// timed out, or (`unsupported`) the peer does not speak this protocol.
    Failed { peer: PeerId, unsupported: bool },
}

impl Event {
    /// The peer the event is about.
    pub fn peer(&self) -> PeerId {
        match self {
            Event::Asked { peer, .. }
            | Event::Answered { peer, .. }
            | Event::Failed { peer, .. } => *peer,
        }
    }
}

/// Questions and answers on every connection.
#[derive(Debug, Default)]
pub struct Behaviour {
    /// Each peer's connections, newest last.
    connections: HashMap<PeerId, Vec<ConnectionId>>,
    /// The connection each peer's question in flight went on.
    asking: HashMap<PeerId, ConnectionId>,
    events: VecDeque<Event>,
    notify: VecDeque<(PeerId, ConnectionId, ToHandler)>,
}

impl Behaviour {
    /// Asks `peer` whether it holds what `digest` says (on its newest connection). False,
    /// and nothing is sent, when not connected or a question is in flight already.
    pub fn ask(&mut self, peer: PeerId, digest: [u8; DIGEST_BYTES]) -> bool {
        if self.asking.contains_key(&peer) {
            return false;
        }
        let Some(connection) = self.connections.get(&peer).and_then(|c| c.last()).copied() else {
            return false;
        };
        self.asking.insert(peer, connection);
        self.notify
            .push_back((peer, connection, ToHandler::Ask(digest)));
        true
    }

    /// Answers the peer's question `question` on `connection`.
    pub fn answer(&mut self, peer: PeerId, connection: ConnectionId, question: u64, in_step: bool) {
        self.notify
            .push_back((peer, connection, ToHandler::Answer { question, in_step }));
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Event;

    fn handle_established_inbound_connection(
        &mut self,
        _connection: ConnectionId,
        _peer: PeerId,
        _local: &Multiaddr,
        _remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::default())
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection: ConnectionId,
        _peer: PeerId,
        _address: &Multiaddr,
        _role: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::default())
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                self.connections
                    .entry(e.peer_id)
                    .or_default()
                    .push(e.connection_id);
            }
            FromSwarm::ConnectionClosed(e) => {
                if let Some(connections) = self.connections.get_mut(&e.peer_id) {
                    connections.retain(|c| *c != e.connection_id);
                    if connections.is_empty() {
                        self.connections.remove(&e.peer_id);
                    }
                }
                if self.asking.get(&e.peer_id) == Some(&e.connection_id) {
                    self.asking.remove(&e.peer_id);
                    self.events.push_back(Event::Failed {
                        peer: e.peer_id,
                        unsupported: false,
                    });
                }
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {
            FromHandler::Asked { question, digest } => self.events.push_back(Event::Asked {
                peer,
                connection,
                question,
                digest,
            }),
            FromHandler::Answered(outcome) => {
                if self.asking.get(&peer) != Some(&connection) {
                    return;
                }
                self.asking.remove(&peer);
                self.events.push_back(match outcome {
                    Ok(in_step) => Event::Answered { peer, in_step },
                    Err(unsupported) => Event::Failed { peer, unsupported },
                });
            }
        }
    }

    fn poll(&mut self, _cx: &mut Context<'_>) -> Poll<ToSwarm<Event, THandlerInEvent<Self>>> {
        if let Some((peer_id, connection, event)) = self.notify.pop_front() {
            return Poll::Ready(ToSwarm::NotifyHandler {
                peer_id,
                handler: NotifyHandler::One(connection),
                event,
            });
        }
        if let Some(event) = self.events.pop_front() {
            return Poll::Ready(ToSwarm::GenerateEvent(event));
        }
        Poll::Pending
    }
}

/// From the behaviour to one connection's handler.
#[derive(Debug)]
pub enum ToHandler {
    Ask([u8; DIGEST_BYTES]),
    Answer { question: u64, in_step: bool },
}

/// From one connection's handler to the behaviour.
#[derive(Debug)]
pub enum FromHandler {
    Asked {
        question: u64,
        digest: [u8; DIGEST_BYTES],
    },
    /// The answer to this connection's question: in step or not, or failed (true: the
    /// peer does not speak the protocol).
    Answered(Result<bool, bool>),
}

type AskFuture = BoxFuture<'static, Result<(Stream, bool), std::io::Error>>;
type ReadFuture = BoxFuture<'static, Result<(Stream, [u8; DIGEST_BYTES]), std::io::Error>>;
type WriteFuture = BoxFuture<'static, Result<Stream, std::io::Error>>;

enum Outbound {
    /// A stream is being opened for this question.
    Opening([u8; DIGEST_BYTES]),
    Idle(Stream),
    Asking(AskFuture),
}

enum Inbound {
    Reading(ReadFuture),
    /// Waiting for the actor's answer to this question.
    Waiting(Stream, u64),
    Writing(WriteFuture),
}

/// One connection's questions and answers.
#[derive(Default)]
pub struct Handler {
    outbound: Option<Outbound>,
    inbound: Option<Inbound>,
    /// The peer does not speak the protocol (known after a refused negotiation).
    unsupported: bool,
    /// A stream was asked for and is being negotiated.
    opening_requested: bool,
    questions: u64,
    pending: VecDeque<FromHandler>,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("unsupported", &self.unsupported)
            .field("questions", &self.questions)
            .finish_non_exhaustive()
    }
}

async fn ask(
    mut stream: Stream,
    digest: [u8; DIGEST_BYTES],
) -> Result<(Stream, bool), std::io::Error> {
    let exchange = async {
        stream.write_all(&digest).await?;
        stream.flush().await?;
        let mut answer = [0u8; 1];
        stream.read_exact(&mut answer).await?;
        match answer[0] {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a sync step answer is 0 or 1, not {other}"),
            )),
        }
    };
    futures::pin_mut!(exchange);
    match future::select(exchange, Delay::new(ASK_TIMEOUT)).await {
        Either::Left((Ok(in_step), _)) => Ok((stream, in_step)),
        Either::Left((Err(e), _)) => Err(e),
        Either::Right(((), _)) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

async fn read_question(mut stream: Stream) -> Result<(Stream, [u8; DIGEST_BYTES]), std::io::Error> {
    let mut digest = [0u8; DIGEST_BYTES];
    stream.read_exact(&mut digest).await?;
    Ok((stream, digest))
}

async fn write_answer(mut stream: Stream, in_step: bool) -> Result<Stream, std::io::Error> {
    stream.write_all(&[u8::from(in_step)]).await?;
    stream.flush().await?;
    Ok(stream)
}

impl ConnectionHandler for Handler {
    type FromBehaviour = ToHandler;
    type ToBehaviour = FromHandler;
    type InboundProtocol = ReadyUpgrade<StreamProtocol>;
    type OutboundProtocol = ReadyUpgrade<StreamProtocol>;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol> {
        SubstreamProtocol::new(ReadyUpgrade::new(PROTOCOL), ())
    }

    fn on_behaviour_event(&mut self, event: ToHandler) {
        match event {
            ToHandler::Ask(digest) => {
                if self.unsupported {
                    self.pending.push_back(FromHandler::Answered(Err(true)));
                    return;
                }
                match self.outbound.take() {
                    Some(Outbound::Idle(stream)) => {
                        self.outbound = Some(Outbound::Asking(ask(stream, digest).boxed()));
                    }
                    None => self.outbound = Some(Outbound::Opening(digest)),
                    Some(busy) => {
                        // The behaviour asks one question at a time per peer.
                        self.outbound = Some(busy);
                        self.pending.push_back(FromHandler::Answered(Err(false)));
                    }
                }
            }
            ToHandler::Answer { question, in_step } => match self.inbound.take() {
                Some(Inbound::Waiting(stream, waiting)) if waiting == question => {
                    self.inbound = Some(Inbound::Writing(write_answer(stream, in_step).boxed()));
                }
                // A late answer to a question whose stream was replaced: dropped.
                other => self.inbound = other,
            },
        }
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, (), Self::ToBehaviour>> {
        if let Some(event) = self.pending.pop_front() {
            return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(event));
        }
        match self.inbound.take() {
            Some(Inbound::Reading(mut read)) => match read.poll_unpin(cx) {
                Poll::Pending => self.inbound = Some(Inbound::Reading(read)),
                Poll::Ready(Ok((stream, digest))) => {
                    self.questions += 1;
                    self.inbound = Some(Inbound::Waiting(stream, self.questions));
                    return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(
                        FromHandler::Asked {
                            question: self.questions,
                            digest,
                        },
                    ));
                }
                // Closed or broken: the peer opens another when it asks again.
                Poll::Ready(Err(_)) => {}
            },
            Some(Inbound::Writing(mut write)) => match write.poll_unpin(cx) {
                Poll::Pending => self.inbound = Some(Inbound::Writing(write)),
                Poll::Ready(Ok(stream)) => {
                    self.inbound = Some(Inbound::Reading(read_question(stream).boxed()));
                    // Polled again at once: the next question may be there already.
                    cx.waker().wake_by_ref();
                }
                Poll::Ready(Err(_)) => {}
            },
            other => self.inbound = other,
        }
        match self.outbound.take() {
            Some(Outbound::Asking(mut asking)) => match asking.poll_unpin(cx) {
                Poll::Pending => self.outbound = Some(Outbound::Asking(asking)),
                Poll::Ready(Ok((stream, in_step))) => {
                    self.outbound = Some(Outbound::Idle(stream));
                    return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(
                        FromHandler::Answered(Ok(in_step)),
                    ));
                }
                // The stream is gone with the failure: a new one for the next question.
                Poll::Ready(Err(_)) => {
                    return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(
                        FromHandler::Answered(Err(false)),
                    ));
                }
            },
            Some(Outbound::Opening(digest)) => {
                // Asked once: the stream's negotiation ends in `on_connection_event`.
                self.outbound = Some(Outbound::Opening(digest));
                if !std::mem::replace(&mut self.opening_requested, true) {
                    return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                        protocol: SubstreamProtocol::new(ReadyUpgrade::new(PROTOCOL), ())
                            .with_timeout(ASK_TIMEOUT),
                    });
                }
            }
            other => self.outbound = other,
        }
        Poll::Pending
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<Self::InboundProtocol, Self::OutboundProtocol>,
    ) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol: mut stream,
                ..
            }) => {
                // A new stream replaces the old one (its question, if any, is dropped).
                stream.ignore_for_keep_alive();
                self.inbound = Some(Inbound::Reading(read_question(stream).boxed()));
            }
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: mut stream,
                ..
            }) => {
                stream.ignore_for_keep_alive();
                self.opening_requested = false;
                match self.outbound.take() {
                    Some(Outbound::Opening(digest)) => {
                        self.outbound = Some(Outbound::Asking(ask(stream, digest).boxed()));
                    }
                    _ => self.outbound = Some(Outbound::Idle(stream)),
                }
            }
            ConnectionEvent::DialUpgradeError(DialUpgradeError { error, .. }) => {
                self.opening_requested = false;
                self.outbound = None;
                let unsupported = matches!(error, StreamUpgradeError::NegotiationFailed);
                self.unsupported |= unsupported;
                self.pending
                    .push_back(FromHandler::Answered(Err(unsupported)));
            }
            _ => {}
        }
    }
}
