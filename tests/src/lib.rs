//! Harness for the integration tests: real nodes (real keys, real sled stores in temporary
//! folders, real control sockets), several per test.
//!
//! - [`spawn_nodes`] initialises and starts named nodes.
//! - [`wait_for`] polls a condition until it holds or [`TIMEOUT`] passes (no bare sleeps).

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use passerelle_node::config::Config;
use passerelle_node::control::Client;
use passerelle_node::directory::SearchQuery;
use passerelle_node::model::{LegalStatus, Profile};
use passerelle_node::network::NetworkConfig;
use passerelle_node::network::protocol::DocumentHeads;
use passerelle_node::node::{self, NodeHandle, RunningNode};

/// Upper bound for any awaited condition: catches hangs, is not a performance target.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A node under test.
#[derive(Debug)]
pub struct TestNode {
    /// A readable name (the organisation's).
    pub name: String,
    /// Its configuration (data folder inside `_dir`).
    pub config: Config,
    running: Option<RunningNode>,
    _dir: tempfile::TempDir,
}

impl TestNode {
    /// Initialises a node's data folder without starting it.
    pub fn init(name: &str, configure: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("passerelle-test-")
            .tempdir()
            .expect("temporary folder");
        let mut config = Config::new(dir.path().join("data"));
        configure(&mut config);
        let profile = Profile {
            legal_status: Some(LegalStatus::Ngo),
            languages: vec!["fr".into()],
            ..Profile::named(name)
        };
        node::initialise(&config, profile).expect("initialise node");
        Self {
            name: name.to_owned(),
            config,
            running: None,
            _dir: dir,
        }
    }

    /// Initialises a node that listens on loopback (a free port) and dials `peers`.
    pub fn init_networked(name: &str, peers: Vec<libp2p::Multiaddr>) -> Self {
        Self::init(name, |config| {
            config.network = Some(NetworkConfig {
                listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr")],
                peers,
                sync_interval: Duration::from_secs(1),
                mdns: false,
            });
        })
    }

    /// The first address the running node listens on (waits for it).
    pub async fn listen_addr(&self) -> libp2p::Multiaddr {
        let handle = self.handle();
        let mut found = None;
        let deadline = Instant::now() + TIMEOUT;
        while found.is_none() {
            found = handle.network_status().listen_addrs.first().cloned();
            assert!(Instant::now() < deadline, "{} never listened", self.name);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        found
            .and_then(|a| a.parse().ok())
            .expect("a listen address")
    }

    /// Every document this node holds with its heads, sorted (equal on converged nodes).
    pub async fn heads(&self) -> Vec<DocumentHeads> {
        let mut offer = self.handle().sync_offer().await.expect("offer");
        for doc in &mut offer {
            doc.heads.sort();
        }
        offer.sort_by(|a, b| a.document.cmp(&b.document));
        offer
    }

    /// (organisation name, service name) of every service this node sees.
    pub async fn services(&self) -> Vec<(String, String)> {
        let mut seen: Vec<(String, String)> = self
            .handle()
            .search(SearchQuery {
                include_inactive: true,
                ..Default::default()
            })
            .await
            .expect("search")
            .into_iter()
            .map(|hit| (hit.org_name, hit.service.name))
            .collect();
        seen.sort();
        seen
    }

    /// Starts the node.
    pub async fn start(&mut self) {
        assert!(self.running.is_none(), "{} already runs", self.name);
        let running = node::start(self.config.clone()).await.expect("start node");
        self.running = Some(running);
    }

    /// Stops the node cleanly.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await.expect("shutdown");
        }
    }

    /// Stops and starts the node again.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start().await;
    }

    /// The running node's handle.
    pub fn handle(&self) -> NodeHandle {
        self.running.as_ref().expect("node is running").handle()
    }

    /// The data folder.
    pub fn data_dir(&self) -> PathBuf {
        self.config.data_dir.clone()
    }

    /// A control-API client, as the CLI uses.
    pub async fn client(&self) -> Client {
        Client::connect(&self.config.data_dir)
            .await
            .expect("connect to control socket")
    }
}

/// Initialises and starts one node per name.
pub async fn spawn_nodes(names: &[&str]) -> Vec<TestNode> {
    let mut nodes = Vec::with_capacity(names.len());
    for name in names {
        let mut node = TestNode::init(name, |_| {});
        node.start().await;
        nodes.push(node);
    }
    nodes
}

/// Starts networked nodes in a line: each dials the one before it.
pub async fn spawn_line(names: &[&str]) -> Vec<TestNode> {
    let mut nodes: Vec<TestNode> = Vec::with_capacity(names.len());
    for name in names {
        let peers = match nodes.last() {
            Some(previous) => vec![previous.listen_addr().await],
            None => vec![],
        };
        let mut node = TestNode::init_networked(name, peers);
        node.start().await;
        nodes.push(node);
    }
    nodes
}

/// Waits until every node holds the same documents at the same heads.
pub async fn wait_converged(nodes: &[TestNode], documents: usize) {
    wait_for("the nodes to converge", || async {
        let first = nodes[0].heads().await;
        if first.len() != documents {
            return false;
        }
        for node in &nodes[1..] {
            if node.heads().await != first {
                return false;
            }
        }
        true
    })
    .await;
}

/// Polls `check` until it returns true; panics after [`TIMEOUT`].
pub async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + TIMEOUT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
