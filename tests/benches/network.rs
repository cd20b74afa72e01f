//! Network benchmark: propagation of one change to all of N nodes, and the cold join of a
//! new node to a national-scale directory. Real nodes on loopback (real libp2p, sled,
//! signatures), release build.
//!
//! Run: `cargo bench -p passerelle-tests --bench network`
//! Smaller: `PASSERELLE_BENCH_ORGS=200 cargo bench -p passerelle-tests --bench network`
//! Propagation only: `PASSERELLE_BENCH_ONLY=propagation` (the cold join only: `cold-join`); the wait for the gossip mesh to
//! form, in seconds: `PASSERELLE_BENCH_MESH_SECS` (default 3). Under 100 ms delay and 2 %
//! loss (root, network namespace): `sudo tests/benches/netem.sh`; where the kernel has no
//! netem, through relays that hold every chunk: `PASSERELLE_BENCH_DELAY_MS=100
//! PASSERELLE_BENCH_LOSS=0.02 PASSERELLE_BENCH_ONLY=propagation cargo bench … network`.
//! Documented in docs/performance.md.

use std::time::{Duration, Instant};

use passerelle_node::document::{Edit, OrganisationDocument};
use passerelle_node::envelope::DocumentId;
use passerelle_node::identity::SigningSecret;
use passerelle_node::membership::{AdmissionRequest, SignedRequest};
use passerelle_node::model::{self, Profile, Service};
use passerelle_node::node::Decision;
use passerelle_tests::{TestNode, found_network, wait_converged};

const ROUNDS: usize = 30;
const SERVICES_PER_ORG: usize = 10;

fn service(i: usize) -> Box<Service> {
    let regions = [
        "CM001", "CM002", "CM003", "CM004", "CM005", "CM006", "CM007", "CM008", "CM009", "CM010",
    ];
    let categories = [
        "vocational_training",
        "housing",
        "counselling",
        "job_placement",
        "medical",
    ];
    let dimension = ["economic", "social", "psychosocial", "economic", "social"][i % 5];
    Box::new(
        model::decode_json(
            "service",
            serde_json::json!({
                "name": format!("Service {i} d'accompagnement des migrants de retour"),
                "description": "Accueil sur rendez-vous, orientation et suivi individualisé.",
                "dimension": dimension,
                "categories": [categories[i % 5]],
                "cost": {"kind": "free"},
                "capacity": {"status": "available", "places": (i % 40) as u32},
                "languages": ["fr", "en"],
                "service_area": {"regions": [regions[i % 10]]},
            }),
        )
        .expect("valid service"),
    )
}

/// A degraded link, emulated where the kernel has no `tc netem`: every chunk a relay passes
/// on is held `delay` (one way), and with probability `loss` a further retransmission
/// timeout, as a lost TCP segment would cost. `PASSERELLE_BENCH_DELAY_MS`,
/// `PASSERELLE_BENCH_LOSS` (a fraction, e.g. 0.02).
#[derive(Debug, Clone, Copy)]
struct Link {
    delay: Duration,
    loss: f64,
}

impl Link {
    fn from_env() -> Option<Self> {
        let delay: u64 = std::env::var("PASSERELLE_BENCH_DELAY_MS")
            .ok()?
            .parse()
            .ok()?;
        let loss = std::env::var("PASSERELLE_BENCH_LOSS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        Some(Self {
            delay: Duration::from_millis(delay),
            loss,
        })
    }

    /// Linux's minimum retransmission timeout plus one round trip.
    fn retransmission(&self) -> Duration {
        Duration::from_millis(200) + 2 * self.delay
    }
}

/// A TCP relay on loopback in front of `target`, degrading both directions by `link`.
async fn relay(target: std::net::SocketAddr, link: Link) -> libp2p::Multiaddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("relay bind");
    let port = listener.local_addr().expect("relay addr").port();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                continue;
            };
            let (in_read, in_write) = inbound.into_split();
            let (out_read, out_write) = outbound.into_split();
            tokio::spawn(pipe(in_read, out_write, link));
            tokio::spawn(pipe(out_read, in_write, link));
        }
    });
    format!("/ip4/127.0.0.1/tcp/{port}")
        .parse()
        .expect("multiaddr")
}

/// Copies `from` to `to`, each chunk released `link.delay` after it was read (plus a
/// retransmission timeout for the `link.loss` share), in order.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    link: Link,
) {
    use rand::Rng;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    tokio::spawn(async move {
        while let Some((at, bytes)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let mut buffer = vec![0u8; 64 * 1024];
    let mut last = tokio::time::Instant::now();
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut at = tokio::time::Instant::now() + link.delay;
        if rand::rng().random_bool(link.loss.clamp(0.0, 1.0)) {
            at += link.retransmission();
        }
        at = at.max(last);
        last = at;
        if tx.send((at, buffer[..n].to_vec())).is_err() {
            return;
        }
    }
}

/// The address `node` is dialled at: its own, or a degraded relay in front of it.
async fn dial_address(node: &TestNode, link: Option<Link>) -> libp2p::Multiaddr {
    let address = node.listen_addr().await;
    let Some(link) = link else {
        return address;
    };
    let port = address
        .iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .expect("a TCP listen address");
    relay(([127, 0, 0, 1], port).into(), link).await
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e3
}

async fn propagation(n: usize, link: Option<Link>) {
    let mut nodes: Vec<TestNode> = (0..n)
        .map(|i| TestNode::init_networked(&format!("Organisation {i}"), vec![]))
        .collect();
    found_network(&nodes.iter().collect::<Vec<_>>(), "1/2");
    for i in 0..n {
        // Each node dials the one before it and the one at half its index: a connected
        // graph of small diameter, like partners who each know a few others.
        let mut peers = Vec::new();
        if i > 0 {
            peers.push(dial_address(&nodes[i - 1], link).await);
            if i / 2 != i - 1 {
                peers.push(dial_address(&nodes[i / 2], link).await);
            }
        }
        if let Some(network) = nodes[i].config.network.as_mut() {
            network.peers = peers;
        }
        nodes[i].start().await;
    }
    wait_converged(&nodes, n).await;
    // Let the gossip mesh form (a few heartbeats) before timing.
    let mesh = std::env::var("PASSERELLE_BENCH_MESH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    tokio::time::sleep(Duration::from_secs(mesh)).await;

    let mut times = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let author = &nodes[round % n];
        let document = DocumentId::organisation(&author.handle().org_id());
        let started = Instant::now();
        let receipt = author
            .handle()
            .edit(Edit::AddService {
                id: String::new(),
                service: service(round),
            })
            .await
            .expect("edit");
        let mut waiting: Vec<usize> = (0..n).collect();
        while !waiting.is_empty() {
            let mut still = Vec::new();
            for i in waiting {
                if !nodes[i]
                    .handle()
                    .has_change(&document, &receipt.change)
                    .await
                    .expect("query")
                {
                    still.push(i);
                }
            }
            waiting = still;
            if !waiting.is_empty() {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "propagation hung"
                );
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
        }
        times.push(started.elapsed());
    }
    times.sort();
    let over = match link {
        Some(link) => format!(
            ", links through relays: {} ms delay each way, {:.0} % of chunks held a retransmission timeout more",
            link.delay.as_millis(),
            link.loss * 100.0
        ),
        None => String::new(),
    };
    println!(
        "| propagation to all of {n:>2} nodes (median / p95 / max) | {:>6.1} / {:>6.1} / {:>6.1} ms | {ROUNDS} changes, each from another node{over} |",
        percentile(&times, 0.5),
        percentile(&times, 0.95),
        percentile(&times, 1.0)
    );
    for node in &mut nodes {
        node.stop().await;
    }
}

async fn cold_join(orgs: usize) {
    // The national directory, built offline: every organisation signs its own document.
    let started = Instant::now();
    let mut encoded: Vec<(SigningSecret, Vec<Vec<u8>>)> = Vec::with_capacity(orgs);
    let mut signed_bytes = 0usize;
    let mut compressed_bytes = 0usize;
    for o in 0..orgs {
        let secret = SigningSecret::generate().expect("key");
        let (mut doc, genesis) =
            OrganisationDocument::create(&secret, Profile::named(format!("Organisation {o}")), 1)
                .expect("doc");
        let mut changes = vec![genesis.encode()];
        for s in 0..SERVICES_PER_ORG {
            let change = doc
                .apply_edit(
                    &Edit::AddService {
                        id: format!("svc-{s}"),
                        service: service(o * SERVICES_PER_ORG + s),
                    },
                    &secret,
                    2 + s as i64,
                )
                .expect("edit");
            changes.push(change.encode());
        }
        signed_bytes += changes.iter().map(Vec::len).sum::<usize>();
        compressed_bytes += doc.save().len();
        encoded.push((secret, changes));
    }
    let built = started.elapsed();

    let mut seed = TestNode::init_networked("Réseau national", vec![]);
    let mut joiner = TestNode::init_networked("Nouveau partenaire", vec![]);
    let network = found_network(&[&seed, &joiner], "1");
    seed.start().await;
    // Each organisation asks to join this network; the seed (quorum 1) admits it.
    let started = Instant::now();
    let handle = seed.handle();
    for (o, (secret, _)) in encoded.iter().enumerate() {
        let request = AdmissionRequest {
            network,
            org: secret.org_id(),
            name: format!("Organisation {o}"),
            message: String::new(),
            created: 1,
        };
        let signed = SignedRequest::sign(&request, secret).expect("request");
        handle
            .admission_received(serde_json::to_vec(&signed).expect("json"), secret.key_id())
            .await
            .expect("request received");
        handle
            .decide(Decision::Approve {
                org: secret.org_id(),
            })
            .await
            .expect("admit");
    }
    let admitted = started.elapsed();
    // The network document as Automerge would save it, for the target.
    let network_exported = handle
        .export(&DocumentId::network(&network))
        .await
        .expect("export");
    let network_one_by_one: usize = network_exported.iter().map(Vec::len).sum();
    let network_changes: Vec<automerge::Change> = network_exported
        .iter()
        .map(|raw| {
            passerelle_node::envelope::SignedChange::decode(raw)
                .expect("decodes")
                .change()
                .clone()
        })
        .collect();
    let mut network_doc = automerge::Automerge::new();
    network_doc
        .apply_changes(network_changes.clone())
        .expect("network document");
    let network_compressed = network_doc.save().len();
    let network_authors: std::collections::HashSet<Vec<u8>> = network_changes
        .iter()
        .map(|c| c.actor_id().to_bytes().to_vec())
        .collect();
    let started = Instant::now();
    for (_, changes) in encoded {
        let outcome = handle.apply_remote(changes, None).await.expect("load");
        assert_eq!(outcome.applied, SERVICES_PER_ORG + 1);
    }
    let loaded = started.elapsed();

    if let Some(config) = joiner.config.network.as_mut() {
        config.peers = vec![seed.listen_addr().await];
    }
    let started = Instant::now();
    joiner.start().await;
    let mut nodes = vec![seed, joiner];
    wait_converged(&nodes, orgs + 2).await;
    let joined = started.elapsed();
    let network = nodes[1].handle().network_status();
    let wire = network.sync_bytes_received + network.gossip_bytes_received;
    let services = orgs * SERVICES_PER_ORG;
    println!(
        "| cold join: {orgs} organisations, {services} services | {:>10.2} s | signed changes received: {:.2} MB |",
        joined.as_secs_f64(),
        wire as f64 / 1e6
    );
    println!(
        "| — sum of the signed changes (what is sent) | {:>10.2} MB | {:.0} B per change |",
        signed_bytes as f64 / 1e6,
        signed_bytes as f64 / (orgs * (SERVICES_PER_ORG + 1)) as f64
    );
    println!(
        "| — the same documents in Automerge's compressed format | {:>10.2} MB | ratio sent / compressed: {:.1}× |",
        compressed_bytes as f64 / 1e6,
        wire as f64 / compressed_bytes as f64
    );
    // The target: the compressed documents (organisations' and the network's)
    // with a tenth more, and 100 bytes per author.
    let authors = orgs + network_authors.len();
    let target = 1.1 * (compressed_bytes + network_compressed) as f64 + 100.0 * authors as f64;
    println!(
        "| — the network document compressed ({} operations; {:.2} MB one by one) | {:>10.2} MB | target for the join: 1.1 × {:.2} MB + 100 B × {authors} authors = {:.2} MB: {} ({:.2}× the compressed documents) |",
        network_changes.len(),
        network_one_by_one as f64 / 1e6,
        network_compressed as f64 / 1e6,
        (compressed_bytes + network_compressed) as f64 / 1e6,
        target / 1e6,
        if (wire as f64) <= target {
            "met"
        } else {
            "NOT met"
        },
        wire as f64 / (compressed_bytes + network_compressed) as f64
    );
    println!(
        "| membership: {orgs} admissions on the seed (request kept, proposal signed, stored, folded) | {:>10.2} s | {:.2} ms each |",
        admitted.as_secs_f64(),
        admitted.as_secs_f64() * 1e3 / orgs as f64
    );
    println!(
        "| (setup: directory signed offline in {:.1} s, loaded into the seed node in {:.1} s) | | |",
        built.as_secs_f64(),
        loaded.as_secs_f64()
    );
    for node in &mut nodes {
        node.stop().await;
    }
}

fn main() {
    let orgs: usize = std::env::var("PASSERELLE_BENCH_ORGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!("| measure | figure | detail |");
    println!("|---|---|---|");
    runtime.block_on(async {
        let link = Link::from_env();
        if std::env::var("PASSERELLE_BENCH_ONLY").as_deref() != Ok("cold-join") {
            for n in [5, 10, 20] {
                propagation(n, link).await;
            }
        }
        if std::env::var("PASSERELLE_BENCH_ONLY").as_deref() != Ok("propagation") {
            cold_join(orgs).await;
        }
    });
}
