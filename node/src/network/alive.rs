//! Pings whose pace the node sets: libp2p's ping protocol (`/ipfs/ping/1.0.0`, 32 random
//! bytes echoed, so any libp2p peer answers it) on every connection, every
//! [`PING_INTERVAL`] while this node has something to deliver and every
//! [`IDLE_PING_INTERVAL`] otherwise.
//!
//! Why not libp2p's `ping::Behaviour`: its interval is fixed when a connection opens. A
//! quick ping notices a cut link within seconds, which matters while changes or case files
//! are on their way; on an idle metered link it is most of what the link costs (two pings
//! and their answers every 10 s, about 4.7 MB a day each way). Here the actor switches
//! every connection between the two paces ([`Behaviour::set_busy`]); switching to busy
//! pings at once, so a dead connection is known within [`PING_TIMEOUT`] of having
//! something to send.

use std::collections::{HashSet, VecDeque};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::{BoxFuture, Either};
use futures::prelude::*;
use futures_timer::Delay;
use libp2p::PeerId;
use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::ReadyUpgrade;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::ping::Failure;
use libp2p::swarm::handler::{
    ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
    NetworkBehaviour, NotifyHandler, Stream, StreamProtocol, StreamUpgradeError, SubstreamProtocol,
    THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use rand::Rng;

/// The protocol: libp2p's ping.
const PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs/ping/1.0.0");
const PING_SIZE: usize = 32;

/// Ping pace while this node has something to deliver.
pub const PING_INTERVAL: Duration = Duration::from_secs(10);
/// Ping pace on an idle link (nothing to deliver: a dead one is noticed within about five
/// minutes, and at once when something is to be delivered). The catch-up rounds (every
/// 30 s by one side of each link) cross it too.
pub const IDLE_PING_INTERVAL: Duration = Duration::from_secs(300);
/// How long a ping may go unanswered before its connection is taken for dead.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// A ping's outcome on one connection.
#[derive(Debug)]
pub struct Event {
    /// The peer.
    pub peer: PeerId,
    /// The connection.
    pub connection: ConnectionId,
    /// The round trip, or why there was none.
    pub result: Result<Duration, Failure>,
}

/// Pings on every connection at the pace the node sets.
#[derive(Debug, Default)]
pub struct Behaviour {
    busy: bool,
    connections: HashSet<(PeerId, ConnectionId)>,
    events: VecDeque<Event>,
    notify: VecDeque<(PeerId, ConnectionId, Duration)>,
}

impl Behaviour {
    fn interval(&self) -> Duration {
        if self.busy {
            PING_INTERVAL
        } else {
            IDLE_PING_INTERVAL
        }
    }

    /// Sets the pace of every connection's pings: busy (a ping at once, then every
    /// [`PING_INTERVAL`]) or idle (every [`IDLE_PING_INTERVAL`]).
    pub fn set_busy(&mut self, busy: bool) {
        if busy == self.busy {
            return;
        }
        self.busy = busy;
        let interval = self.interval();
        self.notify.extend(
            self.connections
                .iter()
                .map(|(peer, connection)| (*peer, *connection, interval)),
        );
    }

    /// The pace now.
    pub fn current_interval(&self) -> Duration {
        self.interval()
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
        Ok(Handler::new(self.interval()))
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection: ConnectionId,
        _peer: PeerId,
        _address: &Multiaddr,
        _role: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::new(self.interval()))
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                self.connections.insert((e.peer_id, e.connection_id));
            }
            FromSwarm::ConnectionClosed(e) => {
                self.connections.remove(&(e.peer_id, e.connection_id));
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        result: THandlerOutEvent<Self>,
    ) {
        self.events.push_back(Event {
            peer,
            connection,
            result,
        });
    }

    fn poll(&mut self, _cx: &mut Context<'_>) -> Poll<ToSwarm<Event, THandlerInEvent<Self>>> {
        if let Some((peer_id, connection, interval)) = self.notify.pop_front() {
            return Poll::Ready(ToSwarm::NotifyHandler {
                peer_id,
                handler: NotifyHandler::One(connection),
                event: interval,
            });
        }
        if let Some(event) = self.events.pop_front() {
            return Poll::Ready(ToSwarm::GenerateEvent(event));
        }
        Poll::Pending
    }
}

type PingFuture = BoxFuture<'static, Result<(Stream, Duration), Failure>>;
type PongFuture = BoxFuture<'static, Result<Stream, std::io::Error>>;

enum Outbound {
    Opening,
    Idle(Stream),
    Pinging(PingFuture),
}

/// One connection's pings (after libp2p-ping's handler, with a pace that can change).
pub struct Handler {
    interval: Duration,
    next: Delay,
    outbound: Option<Outbound>,
    inbound: Option<PongFuture>,
    /// The peer does not speak ping: reported once, then nothing.
    unsupported: Option<bool>,
    failures: u32,
    pending: VecDeque<Result<Duration, Failure>>,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("interval", &self.interval)
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

impl Handler {
    fn new(interval: Duration) -> Self {
        Self {
            interval,
            next: Delay::new(Duration::ZERO),
            outbound: None,
            inbound: None,
            unsupported: None,
            failures: 0,
            pending: VecDeque::new(),
        }
    }

    fn failed(&mut self, failure: Failure) {
        self.failures += 1;
        // Like libp2p's ping, one failure may be a hiccup; the actor's watchdog notices a
        // connection that stops answering anyway.
        if self.failures > 1 {
            self.pending.push_back(Err(failure));
        }
    }
}

async fn send_ping(mut stream: Stream) -> Result<(Stream, Duration), Failure> {
    let exchange = async {
        let payload: [u8; PING_SIZE] = rand::rng().random();
        stream.write_all(&payload).await?;
        stream.flush().await?;
        let started = std::time::Instant::now();
        let mut echo = [0u8; PING_SIZE];
        stream.read_exact(&mut echo).await?;
        if echo != payload {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "ping answered with other bytes",
            ));
        }
        Ok(started.elapsed())
    };
    futures::pin_mut!(exchange);
    match future::select(exchange, Delay::new(PING_TIMEOUT)).await {
        Either::Left((Ok(rtt), _)) => Ok((stream, rtt)),
        Either::Left((Err(e), _)) => Err(Failure::Other { error: Box::new(e) }),
        Either::Right(((), _)) => Err(Failure::Timeout),
    }
}

async fn answer_ping(mut stream: Stream) -> Result<Stream, std::io::Error> {
    let mut payload = [0u8; PING_SIZE];
    stream.read_exact(&mut payload).await?;
    stream.write_all(&payload).await?;
    stream.flush().await?;
    Ok(stream)
}

impl ConnectionHandler for Handler {
    type FromBehaviour = Duration;
    type ToBehaviour = Result<Duration, Failure>;
    type InboundProtocol = ReadyUpgrade<StreamProtocol>;
    type OutboundProtocol = ReadyUpgrade<StreamProtocol>;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol> {
        SubstreamProtocol::new(ReadyUpgrade::new(PROTOCOL), ())
    }

    fn on_behaviour_event(&mut self, interval: Duration) {
        // Quicker than before: ping at once (something is to be delivered; find out now
        // whether this connection still carries anything).
        if interval < self.interval {
            self.next.reset(Duration::ZERO);
        }
        self.interval = interval;
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, (), Self::ToBehaviour>> {
        if let Some(reported) = self.unsupported.as_mut() {
            if !*reported {
                *reported = true;
                return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(Err(
                    Failure::Unsupported,
                )));
            }
            return Poll::Pending;
        }
        if let Some(answer) = self.inbound.as_mut() {
            match answer.poll_unpin(cx) {
                Poll::Pending => {}
                Poll::Ready(Ok(stream)) => self.inbound = Some(answer_ping(stream).boxed()),
                Poll::Ready(Err(_)) => self.inbound = None,
            }
        }
        loop {
            if let Some(result) = self.pending.pop_front() {
                return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(result));
            }
            match self.outbound.take() {
                Some(Outbound::Pinging(mut ping)) => match ping.poll_unpin(cx) {
                    Poll::Pending => {
                        self.outbound = Some(Outbound::Pinging(ping));
                        break;
                    }
                    Poll::Ready(Ok((stream, rtt))) => {
                        self.failures = 0;
                        self.next.reset(self.interval);
                        self.outbound = Some(Outbound::Idle(stream));
                        return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(Ok(rtt)));
                    }
                    Poll::Ready(Err(failure)) => {
                        // The stream is gone with the failure: a new one next time.
                        self.next.reset(self.interval.min(PING_INTERVAL));
                        self.failed(failure);
                    }
                },
                Some(Outbound::Idle(stream)) => match self.next.poll_unpin(cx) {
                    Poll::Pending => {
                        self.outbound = Some(Outbound::Idle(stream));
                        break;
                    }
                    Poll::Ready(()) => {
                        self.outbound = Some(Outbound::Pinging(send_ping(stream).boxed()));
                    }
                },
                Some(Outbound::Opening) => {
                    self.outbound = Some(Outbound::Opening);
                    break;
                }
                None => match self.next.poll_unpin(cx) {
                    Poll::Pending => break,
                    Poll::Ready(()) => {
                        self.outbound = Some(Outbound::Opening);
                        return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                            protocol: SubstreamProtocol::new(ReadyUpgrade::new(PROTOCOL), ()),
                        });
                    }
                },
            }
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
                stream.ignore_for_keep_alive();
                self.inbound = Some(answer_ping(stream).boxed());
            }
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: mut stream,
                ..
            }) => {
                stream.ignore_for_keep_alive();
                self.outbound = Some(Outbound::Pinging(send_ping(stream).boxed()));
            }
            ConnectionEvent::DialUpgradeError(DialUpgradeError { error, .. }) => {
                self.outbound = None;
                match error {
                    StreamUpgradeError::NegotiationFailed => self.unsupported = Some(false),
                    StreamUpgradeError::Timeout => {
                        self.next.reset(self.interval.min(PING_INTERVAL));
                        self.failed(Failure::Timeout);
                    }
                    StreamUpgradeError::Io(e) => {
                        self.next.reset(self.interval.min(PING_INTERVAL));
                        self.failed(Failure::Other { error: Box::new(e) });
                    }
                    StreamUpgradeError::Apply(never) => match never {},
                }
            }
            _ => {}
        }
    }
}
