//! Abusers for the flood tests: idle and slow sockets held open from several addresses, and a
//! member gone rogue publishing garbage on the gossip topic as fast as it can. All traffic
//! goes to loopback addresses (127.0.0.0/8) and stops when the returned tasks are aborted.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::StreamExt;
use libp2p::{Multiaddr, gossipsub, noise, tcp, yamux};
use passerelle_node::identity::SigningSecret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The TCP address of a loopback multiaddr.
pub fn socket_of(address: &Multiaddr) -> SocketAddr {
    use libp2p::multiaddr::Protocol;
    let mut ip = None;
    let mut port = None;
    for part in address.iter() {
        match part {
            Protocol::Ip4(a) => ip = Some(IpAddr::V4(a)),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    (ip.expect("an ip"), port.expect("a port")).into()
}

/// Keeps `count` connections to `target` open, spread over `sources` (loopback addresses),
/// each sending one byte of a protocol header a second and never finishing (a slowloris),
/// re-opened as soon as the node closes them.
pub fn slowloris(sources: &[IpAddr], target: SocketAddr, count: usize) -> tokio::task::JoinSet<()> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..count {
        let source = sources[i % sources.len()];
        set.spawn(async move {
            let header = b"\x13/multistream/1.0.0\n";
            loop {
                let Ok(socket) = tokio::net::TcpSocket::new_v4() else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                if socket.bind((source, 0).into()).is_err() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                let Ok(mut stream) = socket.connect(target).await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let mut buf = [0u8; 256];
                for byte in header.iter().cycle() {
                    if stream.write_all(&[*byte]).await.is_err() {
                        break;
                    }
                    tokio::select! {
                        read = stream.read(&mut buf) => if !matches!(read, Ok(n) if n > 0) { break },
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
                // Closed by the node: open again at once (a short pause keeps this test's
                // own process from taking both cores).
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }
    set
}

/// A bare gossipsub node with `secret`'s key on `topic`, allowed to send messages up to
/// `max_bytes`: what a member gone rogue (or a stranger) runs instead of a Passerelle node.
pub fn gossip_swarm(
    secret: &SigningSecret,
    max_bytes: usize,
    topic: &gossipsub::IdentTopic,
) -> libp2p::Swarm<gossipsub::Behaviour> {
    libp2p::SwarmBuilder::with_existing_identity(passerelle_node::network::peer::keypair(secret))
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("tcp")
        .with_behaviour(|key| {
            let config = gossipsub::ConfigBuilder::default()
                .heartbeat_interval(Duration::from_millis(200))
                .max_transmit_size(max_bytes)
                .build()
                .expect("gossipsub config");
            let mut behaviour: gossipsub::Behaviour = gossipsub::Behaviour::new(
                gossipsub::MessageAuthenticity::Signed(key.clone()),
                config,
            )
            .expect("gossipsub");
            behaviour.subscribe(topic).expect("subscribe");
            behaviour
        })
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

/// A bare gossipsub swarm with `secret`'s key that dials `target` and publishes garbage on
/// `topic` as fast as it can, dialling again whenever it is disconnected. Returns the task
/// and a counter of messages it got out.
pub fn garbage_publisher(
    secret: &SigningSecret,
    target: Multiaddr,
    topic: gossipsub::IdentTopic,
) -> (
    tokio::task::JoinHandle<()>,
    std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    let published = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = published.clone();
    let mut swarm = gossip_swarm(secret, 64 * 1024, &topic);
    let task = tokio::spawn(async move {
        let mut n: u64 = 0;
        let _ = swarm.dial(target.clone());
        let mut redial = tokio::time::interval(Duration::from_millis(500));
        loop {
            n += 1;
            let garbage = format!("garbage {n} {}", "x".repeat((n % 900) as usize)).into_bytes();
            if swarm
                .behaviour_mut()
                .publish(topic.clone(), garbage)
                .is_ok()
            {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            tokio::select! {
                _ = swarm.select_next_some() => {}
                _ = redial.tick() => {
                    if swarm.connected_peers().next().is_none() {
                        let _ = swarm.dial(target.clone());
                    }
                }
                _ = tokio::task::yield_now() => {}
            }
        }
    });
    (task, published)
}

/// Drives `swarm` until `decide` says how an attempt ended (false when `limit` passes
/// first).
async fn first_answer<B: libp2p::swarm::NetworkBehaviour>(
    swarm: &mut libp2p::Swarm<B>,
    limit: Duration,
    mut decide: impl FnMut(&libp2p::swarm::SwarmEvent<B::ToSwarm>) -> Option<bool>,
) -> bool {
    tokio::time::timeout(limit, async {
        loop {
            let event = swarm.select_next_some().await;
            if let Some(answer) = decide(&event) {
                return answer;
            }
        }
    })
    .await
    .unwrap_or(false)
}

/// What a relay abuser got.
#[derive(Debug, Default, Clone, Copy)]
pub struct RelayAbuse {
    /// Reservations the relay granted.
    pub reservations_granted: u64,
    /// Reservations refused (by the relay, or the connection to it).
    pub reservations_refused: u64,
    /// Circuits to the target that were set up.
    pub circuits_made: u64,
    /// Circuits refused.
    pub circuits_refused: u64,
}

/// A stranger (a fresh key, not a member) in the network namespace `namespace` that asks
/// the relay at `relay` for a reservation, then for a circuit to `target`, `attempts` times
/// each, one after the other as fast as it is answered. Runs on its own thread and runtime
/// (inside the namespace); joins to what it got.
pub fn relay_abuser(
    namespace: &str,
    relay: Multiaddr,
    target: libp2p::PeerId,
    attempts: usize,
) -> std::thread::JoinHandle<RelayAbuse> {
    relay_abuser_as(
        libp2p::identity::Keypair::generate_ed25519(),
        namespace,
        relay,
        target,
        attempts,
    )
}

/// [`relay_abuser`] with the key `identity` (a member's, to flood within the limits a
/// member gets). Its reservations and circuits are kept, not let go: each dial opens a
/// new circuit even while one to the target is up.
pub fn relay_abuser_as(
    identity: libp2p::identity::Keypair,
    namespace: &str,
    relay: Multiaddr,
    target: libp2p::PeerId,
    attempts: usize,
) -> std::thread::JoinHandle<RelayAbuse> {
    use libp2p::multiaddr::Protocol;
    use libp2p::swarm::SwarmEvent;
    let namespace = namespace.to_owned();
    std::thread::spawn(move || {
        crate::netns::enter(&namespace).expect("enter the namespace");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let mut swarm = libp2p::SwarmBuilder::with_existing_identity(identity)
                .with_tokio()
                .with_tcp(
                    tcp::Config::default(),
                    noise::Config::new,
                    yamux::Config::default,
                )
                .expect("tcp")
                .with_relay_client(noise::Config::new, yamux::Config::default)
                .expect("relay client")
                .with_behaviour(|_, client| client)
                .expect("behaviour")
                .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
                .build();
            let circuit = relay.clone().with(Protocol::P2pCircuit);
            let mut got = RelayAbuse::default();
            let answer = Duration::from_secs(10);
            for _ in 0..attempts {
                let Ok(listener) = swarm.listen_on(circuit.clone()) else {
                    got.reservations_refused += 1;
                    continue;
                };
                let outcome = first_answer(&mut swarm, answer, |event| match event {
                    SwarmEvent::NewListenAddr { listener_id, .. } if *listener_id == listener => {
                        Some(true)
                    }
                    SwarmEvent::ListenerClosed { listener_id, .. } if *listener_id == listener => {
                        Some(false)
                    }
                    _ => None,
                })
                .await;
                if outcome {
                    got.reservations_granted += 1;
                } else {
                    got.reservations_refused += 1;
                }
                let dial = libp2p::swarm::dial_opts::DialOpts::peer_id(target)
                    .condition(libp2p::swarm::dial_opts::PeerCondition::Always)
                    .addresses(vec![circuit.clone().with(Protocol::P2p(target))])
                    .build();
                let id = dial.connection_id();
                if swarm.dial(dial).is_err() {
                    got.circuits_refused += 1;
                    continue;
                }
                let made = first_answer(&mut swarm, answer, |event| match event {
                    SwarmEvent::ConnectionEstablished { connection_id, .. }
                        if *connection_id == id =>
                    {
                        Some(true)
                    }
                    SwarmEvent::OutgoingConnectionError { connection_id, .. }
                        if *connection_id == id =>
                    {
                        Some(false)
                    }
                    _ => None,
                })
                .await;
                if made {
                    got.circuits_made += 1;
                } else {
                    got.circuits_refused += 1;
                }
            }
            got
        })
    })
}
