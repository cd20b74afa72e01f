//! A public member and two offices on a small internet of network namespaces
//! ([`crate::netns::Internet`]): one office behind an ADSL router's NAT, one behind a 4G
//! operator's carrier NAT (two NATs in a row). Used by the NAT tests and the NAT bench.

use std::future::Future;
use std::time::Duration;

use crate::netns::{Host, Internet};
use crate::{TestNode, found_network, within};

/// The nodes and where they run.
#[derive(Debug)]
pub struct Offices {
    /// The namespaces (removed when dropped).
    pub internet: Internet,
    /// The public member first, then the two offices.
    pub nodes: Vec<TestNode>,
    /// Each node's namespace, in the same order.
    pub namespaces: Vec<String>,
    /// A fourth founding member whose node never starts: its key, for a test that has a
    /// member misbehave ([`crate::flood::relay_abuser_as`]).
    pub insistent: TestNode,
}

impl Offices {
    /// The libp2p key of [`Offices::insistent`].
    pub fn insistent_keypair(&self) -> libp2p::identity::Keypair {
        use passerelle_node::keys::KeyFiles;
        let identity = passerelle_node::identity::Identity::load(&self.insistent.data_dir())
            .expect("identity");
        passerelle_node::network::peer::keypair(identity.signing())
    }
}

/// Founds a network of three and starts the public member, then each office's node dialling
/// only the public member. With `behind_nat` false the offices have public addresses too
/// (a baseline: the same three nodes with direct paths everywhere).
pub async fn public_and_offices(hole_punching: bool, behind_nat: bool) -> Offices {
    let mut internet = Internet::create();
    let public = internet.public_host();
    let hosts: Vec<Host> = if behind_nat {
        vec![
            internet.office().host,
            internet.office_behind_carrier_nat().host,
        ]
    } else {
        vec![internet.public_host(), internet.public_host()]
    };
    let mut nodes = vec![TestNode::init_on(
        "Délégation régionale MINAS (serveur)",
        &public,
        vec![],
    )];
    for (host, name) in hosts
        .iter()
        .zip(["ONG Avenir Douala", "Fondation Espoir (4G)"])
    {
        let mut node = TestNode::init_on(name, host, vec![]);
        if let Some(network) = node.config.network.as_mut() {
            network.hole_punching = hole_punching;
            network.sync_interval = Duration::from_secs(5);
        }
        nodes.push(node);
    }
    let insistent = TestNode::init("Membre insistant", |_| {});
    let mut founders: Vec<&TestNode> = nodes.iter().collect();
    founders.push(&insistent);
    found_network(&founders, "2");
    nodes[0].start_in(&public.namespace).await;
    let relay_address = nodes[0].listen_addr().await;
    for (i, host) in hosts.iter().enumerate() {
        let node = &mut nodes[i + 1];
        if let Some(network) = node.config.network.as_mut() {
            network.peers = vec![relay_address.clone()];
        }
        node.start_in(&host.namespace).await;
    }
    let mut namespaces = vec![public.namespace.clone()];
    namespaces.extend(hosts.iter().map(|h| h.namespace.clone()));
    Offices {
        internet,
        nodes,
        namespaces,
        insistent,
    }
}

/// Longest wait for what depends on AutoNAT's first probes (5 s after start, then one per
/// peer asked) and a reservation.
pub const NAT_TIMEOUT: Duration = Duration::from_secs(90);

/// Waits up to [`NAT_TIMEOUT`] for `check`; panics naming `what` if it never holds.
pub async fn wait_long<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    assert!(
        within(NAT_TIMEOUT, check).await,
        "timed out waiting for {what}"
    );
}

/// Waits until the public member relays and each office holds a slot on it and listens on
/// its relayed address; the relay's peer id.
pub async fn wait_relayed(nodes: &[TestNode]) -> String {
    let status = |node: &TestNode| node.handle().network_status();
    wait_long(
        "the public member to find itself public and relay",
        || async {
            let s = status(&nodes[0]);
            s.reachability == "public" && s.relay_serving
        },
    )
    .await;
    let relay = status(&nodes[0]).peer_id;
    for node in &nodes[1..] {
        // The slot is taken, then its address listened on (two events, the second a
        // little later under load).
        wait_long("each office to hold a slot on the relay", || async {
            let s = status(node);
            s.relays == vec![relay.clone()]
                && s.listen_addrs.iter().any(|a| a.contains("/p2p-circuit"))
        })
        .await;
    }
    relay
}
