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
use passerelle_node::model::{LegalStatus, Profile};
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
