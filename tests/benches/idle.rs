//! Idle-link bench: two members in two network namespaces joined by one link, holding the
//! same documents (the bench's dataset: 1,000 organisation documents at national scale),
//! nothing changing; the bytes that cross the link, counted on its interface (so framing,
//! pings and keep-alives count), at the production catch-up interval of 30 s. Measured
//! with both nodes speaking sync digests, then with both behaving as the release before
//! them (every round lists every document's heads), then with no rounds at all (the
//! floor: what keeps a connection alive), in the same run. Needs root.
//!
//! Run: `cargo bench -p passerelle-tests --bench idle`
//! (`PASSERELLE_BENCH_IDLE_MODES=digest` for one mode: `digest`, `heads`, `no`).
//! A tenth of the dataset: `PASSERELLE_BENCH_SCALE=10`; another window (default 300 s):
//! `PASSERELLE_BENCH_IDLE_SECONDS=120`. Documented in docs/performance.md.

use std::time::Duration;

use passerelle_tests::dataset::{DatasetSize, generate};
use passerelle_tests::netns::Link;
use passerelle_tests::{TestNode, found_network, wait_converged};

/// Starts the two nodes in their namespaces, the second dialling the first.
async fn start(nodes: &mut [TestNode], link: &Link) {
    nodes[0].start_in(&link.hosts[0].namespace).await;
    let first = nodes[0].listen_addr().await;
    if let Some(network) = nodes[1].config.network.as_mut() {
        network.peers = vec![first];
    }
    nodes[1].start_in(&link.hosts[1].namespace).await;
}

/// Waits until each node published its addresses in its document (two minutes after
/// start on these private addresses, where reachability stays unknown; again at each
/// start, the port being new): a one-off change, not the idle link's cost.
async fn wait_published(nodes: &[TestNode]) {
    for node in nodes {
        let listen = node.listen_addr().await.to_string();
        let org = node.handle().org_id().to_string();
        let published = passerelle_tests::within(Duration::from_secs(300), || async {
            node.handle()
                .records(false)
                .await
                .unwrap_or_default()
                .iter()
                .any(|r| {
                    r.org_id == org
                        && r.addresses
                            .values()
                            .any(|e| e.addresses.iter().any(|a| a.starts_with(&listen)))
                })
        })
        .await;
        assert!(published, "{} published its addresses", node.name);
    }
}

/// Bytes per day each way on the link while idle: (first → second, second → first).
async fn idle_bytes_per_day(nodes: &[TestNode], link: &Link, window: Duration) -> (f64, f64) {
    // Let what follows a start settle (catch-up both ways, identify, gossip mesh, the
    // addresses published) and the pings slow down (they stay quick for a minute after a
    // connection, a change, or a catch-up that carried changes).
    wait_published(nodes).await;
    tokio::time::sleep(passerelle_node::network::BUSY_FOR + Duration::from_secs(20)).await;
    let (rx0, tx0) = link.hosts[0].bytes();
    // When the window opens, to read a packet capture of the link against it.
    eprintln!(
        "window opens at {} (Unix time)",
        passerelle_node::unix_now()
    );
    tokio::time::sleep(window).await;
    let (rx1, tx1) = link.hosts[0].bytes();
    let per_day = 86_400.0 / window.as_secs_f64();
    ((tx1 - tx0) as f64 * per_day, (rx1 - rx0) as f64 * per_day)
}

fn main() {
    let window = Duration::from_secs(
        std::env::var("PASSERELLE_BENCH_IDLE_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(300),
    );
    let size = DatasetSize::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dataset = generate(size, 7);
        let link = Link::create();
        let mut nodes = vec![
            TestNode::init_on("Délégation Littoral", &link.hosts[0], vec![]),
            TestNode::init_on("ONG Avenir", &link.hosts[1], vec![]),
        ];
        let network = found_network(&[&nodes[0], &nodes[1]], "1");
        // The first node holds the dataset; the second receives it by catch-up.
        nodes[0].start_in(&link.hosts[0].namespace).await;
        dataset.admit_all(&nodes[0].handle(), network).await;
        dataset.ingest(&nodes[0].handle(), 2_000).await;
        nodes[0].stop().await;
        start(&mut nodes, &link).await;
        let documents = size.organisations + 2;
        wait_converged(&nodes, documents).await;
        println!(
            "{} documents on each node; window {} s; catch-up every 30 s",
            documents,
            window.as_secs()
        );
        println!(
            "mode\tbytes/day first→second\tbytes/day second→first\trounds by digest\trounds listed"
        );
        // The floor: no catch-up rounds at all while idle (one at connection), only what
        // keeps the connection alive (pings, identify, gossip's heartbeats).
        let modes = [
            ("digest", false, Duration::from_secs(30)),
            (
                "heads listed (release before)",
                true,
                Duration::from_secs(30),
            ),
            ("no rounds (floor)", false, Duration::from_secs(86_400)),
        ];
        // `PASSERELLE_BENCH_IDLE_MODES=digest` (a comma list of the modes' first words)
        // measures only those.
        let modes_asked: Vec<String> = std::env::var("PASSERELLE_BENCH_IDLE_MODES")
            .unwrap_or_else(|_| "digest,heads,no".into())
            .split(',')
            .map(|m| m.trim().to_owned())
            .collect();
        let mut one_change = Vec::new();
        for (mode, without_digest, interval) in modes {
            for node in &mut nodes {
                node.stop().await;
                if let Some(network) = node.config.network.as_mut() {
                    network.without_digest = without_digest;
                    network.sync_interval = interval;
                }
            }
            if !modes_asked.iter().any(|m| mode.starts_with(m.as_str())) {
                continue;
            }
            start(&mut nodes, &link).await;
            let (out, back) = idle_bytes_per_day(&nodes, &link, window).await;
            let status = nodes[0].handle().network_status();
            println!(
                "{mode}\t{:.0}\t{:.0}\t{}\t{}",
                out, back, status.sync_rounds_in_step, status.sync_rounds_listed
            );
            if !without_digest && interval == Duration::from_secs(30) {
                one_change.push((out, back));
            }
        }
        // One change across the link: a service's capacity updated on the first node; the
        // bytes of the next 20 s less what the idle link carried in 20 s.
        for node in &mut nodes {
            node.stop().await;
            if let Some(network) = node.config.network.as_mut() {
                network.without_digest = false;
                network.sync_interval = Duration::from_secs(30);
            }
        }
        start(&mut nodes, &link).await;
        tokio::time::sleep(Duration::from_secs(40)).await;
        let (idle_out, idle_back) = one_change.first().copied().unwrap_or_default();
        let service = nodes[0]
            .handle()
            .edit(passerelle_tests::add("Service du jour", "CM005"))
            .await
            .expect("edit")
            .id;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (rx0, tx0) = link.hosts[0].bytes();
        nodes[0]
            .handle()
            .edit(passerelle_node::document::Edit::update_service(
                service,
                passerelle_node::model::ServicePatch {
                    capacity: Some(passerelle_node::model::Capacity {
                        status: passerelle_node::model::CapacityStatus::Waitlist,
                        places: Some(3),
                    }),
                    ..Default::default()
                },
            ))
            .await
            .expect("edit");
        let second = nodes[1].handle();
        let arrived = std::time::Instant::now();
        while second
            .organisation(Some(nodes[0].handle().org_id()))
            .await
            .map(|o| {
                o.record
                    .services
                    .values()
                    .all(|s| s.capacity.places != Some(3))
            })
            .unwrap_or(true)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let latency = arrived.elapsed();
        tokio::time::sleep(Duration::from_secs(20).saturating_sub(latency)).await;
        let (rx1, tx1) = link.hosts[0].bytes();
        let idle = |per_day: f64| per_day * 20.0 / 86_400.0;
        println!(
            "one change (a service's places): {:.0} bytes first→second, {:.0} second→first beyond the idle link's, arrived in {} ms",
            (tx1 - tx0) as f64 - idle(idle_out),
            (rx1 - rx0) as f64 - idle(idle_back),
            latency.as_millis()
        );
        for node in &mut nodes {
            node.stop().await;
        }
    });
}
