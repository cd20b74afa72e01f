//! Harness for the integration tests: real nodes (real keys, real sled stores in temporary
//! folders, real control sockets), several per test.
//!
//! - [`spawn_nodes`] initialises and starts named nodes (in no network).
//! - [`spawn_line`] founds a network of named nodes and starts them in a line.
//! - [`found_network`] makes stopped nodes the founders of one network.
//! - [`wait_for`] polls a condition until it holds or [`TIMEOUT`] passes (no bare sleeps).
//! - [`dataset`] makes the seeded national-scale dataset of the benchmarks.
//! - [`foreign`] runs a js-libp2p peer (another implementation) against a node.
//! - [`netns`] makes hosts from network namespaces; [`TestNode::start_in`] runs a node in one;
//!   [`nat`] a public member and two offices behind NAT on them.
//! - [`powercut`] is a disk that forgets what was not synced when it loses power.

pub mod browser;
pub mod dataset;
pub mod flood;
pub mod foreign;
pub mod fuzzing;
pub mod nat;
pub mod netns;
pub mod partition;
pub mod powercut;
pub mod standards;

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use passerelle_node::config::Config;
use passerelle_node::control::Client;
use passerelle_node::directory::SearchQuery;
use passerelle_node::keys::KeyFiles;
use passerelle_node::membership::{Charter, NetworkId};
use passerelle_node::model::{LegalStatus, Profile};
use passerelle_node::network::NetworkConfig;
use passerelle_node::node::{self, NodeHandle};
use passerelle_node::protocol::DocumentHeads;
use passerelle_node::runtime::{self, RunningNode};

/// Upper bound for any awaited condition: catches hangs, is not a performance target.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// With `PASSERELLE_TEST_LOG=<filter>` (e.g. `passerelle_node=debug`), the nodes' logs go to
/// stderr: to see what the nodes did in a failing test.
fn log_if_asked() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("PASSERELLE_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
    });
}

/// A node under test.
#[derive(Debug)]
pub struct TestNode {
    /// A readable name (the organisation's).
    pub name: String,
    /// Its configuration (data folder inside `_dir`).
    pub config: Config,
    running: Option<Running>,
    _dir: tempfile::TempDir,
}

/// A started node: on this test's runtime, or on its own runtime in a thread that entered a
/// network namespace.
#[derive(Debug)]
enum Running {
    Here(RunningNode),
    Namespaced {
        handle: NodeHandle,
        stop: tokio::sync::oneshot::Sender<()>,
        thread: std::thread::JoinHandle<()>,
    },
}

impl Running {
    fn handle(&self) -> NodeHandle {
        match self {
            Running::Here(running) => running.handle(),
            Running::Namespaced { handle, .. } => handle.clone(),
        }
    }
}

impl TestNode {
    /// Initialises a node's data folder without starting it.
    pub fn init(name: &str, configure: impl FnOnce(&mut Config)) -> Self {
        log_if_asked();
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

    /// Initialises a device node of organisation `org` that listens on loopback (it
    /// joins a network and is authorised later).
    pub fn init_device(name: &str, org: passerelle_node::identity::OrgId) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("passerelle-test-")
            .tempdir()
            .expect("temporary folder");
        let mut config = Config::new(dir.path().join("data"));
        config.network = Some(loopback_network(vec![]));
        node::initialise_device(&config, org).expect("initialise device node");
        Self {
            name: name.to_owned(),
            config,
            running: None,
            _dir: dir,
        }
    }

    /// Initialises a node that listens on `host`'s address (a free port) in its network
    /// namespace, with the production catch-up interval (30 s): start it with
    /// [`TestNode::start_in`].
    pub fn init_on(name: &str, host: &netns::Host, peers: Vec<libp2p::Multiaddr>) -> Self {
        Self::init(name, |config| {
            config.network = Some(NetworkConfig {
                listen: vec![host.listen_addr()],
                peers,
                ..Default::default()
            });
        })
    }

    /// Initialises a node that listens on loopback (a free port) and dials `peers`.
    pub fn init_networked(name: &str, peers: Vec<libp2p::Multiaddr>) -> Self {
        Self::init(name, |config| {
            config.network = Some(loopback_network(peers));
        })
    }

    /// A node on a copy of the data folder `from` (left untouched), listening on loopback
    /// and dialling `peers`: to run the same scenario again on a kept data folder.
    pub fn from_copy(name: &str, from: &std::path::Path, peers: Vec<libp2p::Multiaddr>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("passerelle-test-")
            .tempdir()
            .expect("temporary folder");
        copy_folder(from, &dir.path().join("data")).expect("copy the data folder");
        let mut config = Config::new(dir.path().join("data"));
        config.network = Some(loopback_network(peers));
        Self {
            name: name.to_owned(),
            config,
            running: None,
            _dir: dir,
        }
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
        let mut offer = self.handle().sync_offer().await.expect("offer").documents;
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
        let running = runtime::start(self.config.clone())
            .await
            .expect("start node");
        self.running = Some(Running::Here(running));
    }

    /// Starts the node inside the network namespace `namespace` (see [`netns`]): its
    /// sockets are that host's.
    pub async fn start_in(&mut self, namespace: &str) {
        assert!(self.running.is_none(), "{} already runs", self.name);
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let config = self.config.clone();
        let namespace = namespace.to_owned();
        let thread = std::thread::Builder::new()
            .name(format!("node-in-{namespace}"))
            .spawn(move || {
                if let Err(e) = netns::enter(&namespace) {
                    let _ = started_tx.send(Err(format!("entering {namespace}: {e}")));
                    return;
                }
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = started_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let running = match runtime::start(config).await {
                        Ok(running) => running,
                        Err(e) => {
                            let _ = started_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let _ = started_tx.send(Ok(running.handle()));
                    let _ = stopped.await;
                    running.shutdown().await.expect("shutdown");
                });
            })
            .expect("start the namespace's thread");
        let handle = started
            .await
            .expect("the namespace's thread answers")
            .unwrap_or_else(|e| panic!("start {} in its namespace: {e}", self.name));
        self.running = Some(Running::Namespaced {
            handle,
            stop,
            thread,
        });
    }

    /// Stops the node cleanly.
    pub async fn stop(&mut self) {
        match self.running.take() {
            Some(Running::Here(running)) => running.shutdown().await.expect("shutdown"),
            Some(Running::Namespaced { stop, thread, .. }) => {
                let _ = stop.send(());
                tokio::task::spawn_blocking(move || thread.join())
                    .await
                    .expect("join")
                    .expect("the node's thread ended cleanly");
            }
            None => {}
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

    /// libp2p's metrics of the running node (started on this test's runtime).
    pub fn libp2p_metrics(&self) -> std::sync::Arc<libp2p::metrics::Registry> {
        match self.running.as_ref().expect("node is running") {
            Running::Here(running) => running.libp2p_metrics(),
            Running::Namespaced { .. } => panic!("a namespaced node's metrics are not reachable"),
        }
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

/// A network configuration for tests: listens on loopback (a free port), dials `peers`,
/// catches up every second, no mDNS.
pub fn loopback_network(peers: Vec<libp2p::Multiaddr>) -> NetworkConfig {
    NetworkConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr")],
        peers,
        sync_interval: Duration::from_secs(1),
        mdns: false,
        ..Default::default()
    }
}

/// Copies the folder `from` and everything in it to `to` (created).
pub fn copy_folder(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_folder(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
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

/// A charter for tests: admission and amendment by `admission`, revocation by 2 (or by
/// the one member left when there are two).
pub fn charter(admission: &str) -> Charter {
    Charter {
        name: "Réseau de test".into(),
        founders: Vec::new(),
        admission: admission.parse().expect("quorum"),
        revocation: "2".parse().expect("quorum"),
        amendment: admission.parse().expect("quorum"),
        taxonomy: "iom-2024".into(),
    }
}

/// Founds a network whose founders are these (stopped) nodes, all ratified.
pub fn found_network(nodes: &[&TestNode], admission: &str) -> NetworkId {
    let configs: Vec<Config> = nodes.iter().map(|n| n.config.clone()).collect();
    node::found_network_locally(&configs, charter(admission)).expect("found network")
}

/// Starts networked nodes in a line, each dialling the one before it, all founders of one
/// network.
pub async fn spawn_line(names: &[&str]) -> Vec<TestNode> {
    let mut nodes: Vec<TestNode> = names
        .iter()
        .map(|name| TestNode::init_networked(name, vec![]))
        .collect();
    found_network(&nodes.iter().collect::<Vec<_>>(), "1/2");
    start_line(&mut nodes).await;
    nodes
}

/// Two members in a line, the second offering a job-placement service in the Littoral
/// that has reached the first: the nodes, and the service's id.
pub async fn referral_pair() -> (Vec<TestNode>, String) {
    let nodes = spawn_line(&["ONG Retour Douala", "Centre Emploi Littoral"]).await;
    let service = nodes[1]
        .handle()
        .edit(add("Placement en emploi des jeunes", "CM005"))
        .await
        .expect("the second's service")
        .id;
    wait_for("the second's service to reach the first", || async {
        !nodes[0].services().await.is_empty()
    })
    .await;
    (nodes, service)
}

/// `from` refers a returnee (with a case file and consent) to `to`'s `service`: the
/// referral's id.
pub async fn refer(
    from: &TestNode,
    to: &TestNode,
    service: &str,
) -> passerelle_node::ids::ReferralId {
    match from
        .handle()
        .referral(
            passerelle_node::node::ReferralRequest::Send {
                send: Box::new(partition::referral(to.handle().org_id(), service)),
            },
            "agent du test",
        )
        .await
        .expect("send a referral")
    {
        passerelle_node::node::ReferralReply::Receipt(receipt) => receipt.id,
        other => panic!("unexpected reply {other:?}"),
    }
}

/// Starts (stopped, networked) nodes one after the other, each dialling the one before it.
pub async fn start_line(nodes: &mut [TestNode]) {
    for i in 0..nodes.len() {
        if i > 0 {
            let previous = nodes[i - 1].listen_addr().await;
            if let Some(network) = nodes[i].config.network.as_mut() {
                network.peers = vec![previous];
            }
        }
        nodes[i].start().await;
    }
}

/// Founds a network of networked nodes named `names`, starts all but the last in a line,
/// and returns them with the last one, a member that has not started yet (a partner that
/// joins late, or never meets the others).
pub async fn spawn_line_holding_back_last(names: &[&str]) -> (Vec<TestNode>, TestNode) {
    let mut nodes: Vec<TestNode> = names
        .iter()
        .map(|name| TestNode::init_networked(name, vec![]))
        .collect();
    found_network(&nodes.iter().collect::<Vec<_>>(), "1/2");
    let held_back = nodes.pop().expect("at least one node");
    start_line(&mut nodes).await;
    (nodes, held_back)
}

/// Waits until every node holds the same documents at the same heads.
pub async fn wait_converged(nodes: &[TestNode], documents: usize) {
    let converged = within(TIMEOUT, || async {
        let first = nodes[0].heads().await;
        let organisations = first
            .iter()
            .filter(|d| d.document.organisation_owner().is_some())
            .count();
        if organisations != documents {
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
    if !converged {
        // Say what each node holds and whom it is connected to, to tell a network fault
        // from a refused change.
        let mut report = String::new();
        for node in nodes {
            let network = node.handle().network_status();
            let status = node.handle().status().await.ok();
            report.push_str(&format!(
                "\n{}: {} documents, peers {:?}, refused connections {}, cut off {}, rejected changes {:?}",
                node.name,
                node.heads().await.len(),
                network
                    .peers
                    .iter()
                    .map(|p| (p.fingerprint.clone(), p.gossip, p.rtt_ms))
                    .collect::<Vec<_>>(),
                network.connections_refused,
                network.peers_cut_off,
                status.map(|s| s.rejected_by_reason),
            ));
        }
        panic!("timed out waiting for the nodes to converge:{report}");
    }
}

/// Polls `check` until it returns true or `limit` passes; whether it did.
pub async fn within<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Polls `check`, which may block (it runs a command, reads a file), until it returns
/// true; panics naming `what` after `limit`. The blocking twin of [`wait_for`], for tests
/// that drive the real binary.
pub fn poll_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
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

/// `owner`'s document rebuilt outside its node from its encoded signed `changes`, with the
/// owner's key as the Automerge actor: for tests that forge, by hand, a change the node
/// itself would refuse to make. Sign it with [`sign_last_change`].
pub fn replay_outside(
    owner: &TestNode,
    changes: &[Vec<u8>],
) -> (
    passerelle_node::identity::Identity,
    passerelle_node::document::OrganisationDocument,
) {
    use passerelle_node::document::Replica;
    use passerelle_node::envelope::SignedChange;
    let identity = passerelle_node::identity::Identity::load(&owner.data_dir()).expect("identity");
    let org = identity.org_id();
    let signed: Vec<SignedChange> = changes
        .iter()
        .map(|bytes| SignedChange::decode(bytes).expect("decode"))
        .collect();
    let mut doc = passerelle_node::document::OrganisationDocument::empty(org);
    doc.apply_verified(&signed).expect("apply");
    doc.automerge()
        .set_actor(automerge::ActorId::from(org.as_bytes()));
    (identity, doc)
}

/// Commits what was written by hand into `doc` and signs it with `identity`'s key, encoded.
pub fn sign_last_change(
    identity: &passerelle_node::identity::Identity,
    doc: &mut passerelle_node::document::OrganisationDocument,
    message: &str,
) -> Vec<u8> {
    use passerelle_node::document::Replica;
    let am = doc.automerge();
    am.commit_with(automerge::transaction::CommitOptions::default().with_message(message));
    let change = am.get_last_local_change().expect("change").clone();
    passerelle_node::envelope::SignedChange::sign(
        passerelle_node::envelope::DocumentId::organisation(&identity.org_id()),
        change,
        identity.signing(),
    )
    .encode()
}

/// A free job-placement service named `name` offered in `region`.
pub fn service(name: &str, region: &str) -> Box<passerelle_node::model::Service> {
    Box::new(
        passerelle_node::model::decode_json(
            "service",
            serde_json::json!({
                "name": name,
                "dimension": "economic",
                "categories": ["job_placement"],
                "cost": {"kind": "free"},
                "capacity": {"status": "available"},
                "service_area": {"regions": [region]},
            }),
        )
        .expect("valid service"),
    )
}

/// The edit that adds [`service`]`(name, region)` to the node's organisation.
pub fn add(name: &str, region: &str) -> passerelle_node::document::Edit {
    passerelle_node::document::Edit::AddService {
        id: String::new(),
        service: service(name, region),
    }
}
