//! Members behind NAT, on a small internet made of network namespaces
//! ([`passerelle_tests::netns::Internet`]): one member with a public address, offices behind
//! routers that translate addresses (nftables masquerade, unsolicited packets dropped), one
//! behind two NATs in a row (a 4G operator's carrier NAT). No node is told any address but
//! the public member's.

use std::time::Duration;

use libp2p::multiaddr::Protocol;
use passerelle_node::network::NetworkStatus;
use passerelle_node::network::conduct::MAX_RELAY_REFUSED_PER_PEER;
use passerelle_node::network::relay::{
    RELAY_CIRCUITS_BURST, RELAY_MAX_CIRCUITS_PER_PEER, RELAY_MAX_RESERVATIONS,
    RELAY_MAX_RESERVATIONS_PER_PEER, RELAY_RESERVATIONS_BURST,
};
use passerelle_node::node::CaseState;
use passerelle_tests::flood::{relay_abuser, relay_abuser_as};
use passerelle_tests::nat::{Offices, public_and_offices, wait_long, wait_relayed};
use passerelle_tests::netns::Internet;
use passerelle_tests::{TestNode, found_network, wait_converged};

use crate::referrals::{assert_no_plaintext, direct, offer, send, show};

/// Waits until `node` holds the case file of referral `id`, read and intact.
async fn wait_case_file(what: &str, node: &TestNode, id: &passerelle_node::ids::ReferralId) {
    wait_long(what, || async {
        show(node, id)
            .await
            .is_some_and(|v| v.case_state == CaseState::Held && v.intact == Some(true))
    })
    .await;
}

fn status(node: &TestNode) -> NetworkStatus {
    node.handle().network_status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(passerelle_root),
    ignore = "needs root: network namespaces and nftables"
)]
async fn members_behind_nat_converge_and_exchange_a_case_file_through_a_member_relay() {
    // Hole punching off: the two offices have no direct path, only the relay.
    let Offices {
        internet: _internet,
        mut nodes,
        ..
    } = public_and_offices(false, true).await;

    // The public member finds itself reachable and relays; the offices find themselves
    // behind NAT and reserve a slot on it.
    wait_relayed(&nodes).await;
    for node in &nodes[1..] {
        assert!(
            status(node)
                .listen_addrs
                .iter()
                .any(|a| a.contains("/p2p-circuit")),
            "{} announces a relayed address",
            node.name
        );
    }
    wait_long("each office to find itself behind NAT", || async {
        nodes[1..]
            .iter()
            .all(|n| status(n).reachability == "private")
    })
    .await;

    // What one office writes reaches the other through the public member.
    let service = offer(&nodes[2], "Accompagnement psychosocial").await;
    wait_converged(&nodes, 3).await;

    // A case file from one office to the other: through the relay, ciphertext only.
    let receiver = nodes[2].handle().org_id();
    let id = send(&nodes[1], direct(receiver, &service))
        .await
        .expect("send a referral");
    wait_case_file(
        "the case file to reach the office behind carrier NAT",
        &nodes[2],
        &id,
    )
    .await;
    let receiver_peer = status(&nodes[2]).peer_id;
    let seen = status(&nodes[1]);
    let peer = seen
        .peers
        .iter()
        .find(|p| p.peer_id == receiver_peer)
        .expect("the sender is connected to the receiver");
    assert!(
        peer.relayed,
        "the connection goes through the relay: {peer:?}"
    );
    let at_relay = status(&nodes[0]);
    assert!(
        at_relay.relay_circuits_served >= 1,
        "the relay carried the circuit: {at_relay:?}"
    );
    assert_eq!(at_relay.relay_refused, 0);
    // The relay holds no byte of the case file: no key, no plain text.
    let keys = nodes[0].data_dir().join("case-keys");
    assert_eq!(
        std::fs::read_dir(&keys).map(|d| d.count()).unwrap_or(0),
        0,
        "the relay holds no case-file key"
    );
    assert_no_plaintext(&nodes[0]);
    for node in &mut nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(passerelle_root),
    ignore = "needs root: network namespaces and nftables"
)]
async fn a_non_member_gets_no_slot_nor_circuit_and_its_flood_leaves_the_relay_serving_members() {
    let Offices {
        mut internet,
        mut nodes,
        ..
    } = public_and_offices(false, true).await;
    let relay = wait_relayed(&nodes).await;

    // A stranger on the internet asks the relay for a slot and for a circuit to an office,
    // fifty times each, as fast as it is answered.
    let stranger = internet.public_host();
    let relay_address = nodes[0]
        .listen_addr()
        .await
        .with(Protocol::P2p(relay.parse().expect("peer id")));
    let office: libp2p::PeerId = status(&nodes[1]).peer_id.parse().expect("peer id");
    let abuser = relay_abuser(&stranger.namespace, relay_address, office, 50);
    let got = tokio::task::spawn_blocking(move || abuser.join())
        .await
        .expect("join")
        .expect("the abuser ran");
    eprintln!("the stranger got {got:?}");
    assert_eq!(got.reservations_granted, 0, "a non-member gets no slot");
    assert_eq!(got.circuits_made, 0, "a non-member gets no circuit");
    assert_eq!(got.reservations_refused + got.circuits_refused, 100);

    // Refused, logged, counted; cut off once it insisted; the relay within its limits.
    let at_relay = status(&nodes[0]);
    assert!(
        at_relay.relay_refused > MAX_RELAY_REFUSED_PER_PEER,
        "refusals counted: {at_relay:?}"
    );
    assert!(at_relay.peers_cut_off >= 1, "the stranger is cut off");
    assert!(at_relay.relay_serving);
    assert_eq!(
        at_relay.relay_reservations, 2,
        "only the two offices hold a slot"
    );
    assert!(at_relay.relay_reservations <= RELAY_MAX_RESERVATIONS as u64);

    // The members are still served: their slots held, their writes still travel.
    for node in &nodes[1..] {
        assert_eq!(status(node).relays, vec![relay.clone()]);
    }
    offer(&nodes[1], "Formation en couture").await;
    wait_converged(&nodes, 3).await;
    for node in &mut nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(passerelle_root),
    ignore = "needs root: network namespaces and nftables"
)]
async fn a_member_that_floods_a_relay_gets_no_more_than_a_members_limits() {
    let mut offices = public_and_offices(false, true).await;
    let relay = wait_relayed(&offices.nodes).await;
    let insistent = offices.insistent_keypair();
    let member_host = offices.internet.public_host();
    let relay_address = offices.nodes[0]
        .listen_addr()
        .await
        .with(Protocol::P2p(relay.parse().expect("peer id")));
    let office: libp2p::PeerId = status(&offices.nodes[1]).peer_id.parse().expect("peer id");
    // A member's node asks for 70 slots and 70 circuits to an office, keeping every one it
    // gets.
    const ATTEMPTS: u64 = 70;
    let abuser = relay_abuser_as(
        insistent,
        &member_host.namespace,
        relay_address,
        office,
        ATTEMPTS as usize,
    );
    let got = tokio::task::spawn_blocking(move || abuser.join())
        .await
        .expect("join")
        .expect("the abuser ran");
    eprintln!("the insistent member got {got:?}");
    // A member is relayed, within a member's rates: a new slot asked on the same
    // connection renews the one it holds, and past the bursts every ask is refused.
    assert!(got.reservations_granted >= 1, "{got:?}");
    assert!(got.circuits_made >= 1, "{got:?}");
    assert_eq!(
        got.reservations_granted,
        u64::from(RELAY_RESERVATIONS_BURST),
        "{got:?}"
    );
    assert_eq!(
        got.circuits_made,
        u64::from(RELAY_CIRCUITS_BURST),
        "{got:?}"
    );
    assert_eq!(
        got.reservations_granted + got.reservations_refused,
        ATTEMPTS
    );
    assert_eq!(got.circuits_made + got.circuits_refused, ATTEMPTS);
    // What the relay holds stays within a member's share at any time.
    let at_relay = status(&offices.nodes[0]);
    eprintln!(
        "the relay: {} slots, {} circuits",
        at_relay.relay_reservations, at_relay.relay_circuits
    );
    assert!(
        at_relay.relay_reservations <= 2 + RELAY_MAX_RESERVATIONS_PER_PEER as u64,
        "{at_relay:?}"
    );
    assert!(
        at_relay.relay_circuits <= RELAY_MAX_CIRCUITS_PER_PEER as u64,
        "{at_relay:?}"
    );
    // The honest offices keep their slots and their writes still travel.
    for node in &offices.nodes[1..] {
        assert_eq!(status(node).relays, vec![relay.clone()]);
    }
    offer(&offices.nodes[2], "Appui psychosocial").await;
    wait_converged(&offices.nodes, 3).await;
    for node in &mut offices.nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(passerelle_root),
    ignore = "needs root: network namespaces and nftables"
)]
async fn a_relayed_connection_becomes_direct_when_both_routers_let_hole_punching_through() {
    let Offices {
        internet: _internet,
        mut nodes,
        ..
    } = public_and_offices(true, true).await;
    wait_relayed(&nodes).await;
    let service = offer(&nodes[2], "Appui à la création d'entreprise").await;
    wait_converged(&nodes, 3).await;

    // A case file makes the first office dial the second through the relay; both then
    // punch through their routers and keep the direct connection.
    let id = send(&nodes[1], direct(nodes[2].handle().org_id(), &service))
        .await
        .expect("send a referral");
    wait_case_file("the case file to arrive", &nodes[2], &id).await;
    let receiver = status(&nodes[2]).peer_id;
    let sender = &nodes[1];
    wait_long(
        "the connection between the offices to become direct",
        || async {
            status(sender)
                .peers
                .iter()
                .any(|p| p.peer_id == receiver && !p.relayed)
        },
    )
    .await;
    let punched = status(&nodes[1]).hole_punched + status(&nodes[2]).hole_punched;
    assert!(punched >= 1, "hole punching made the direct connection");
    // The relayed connection is closed once the direct one is up (closing takes a moment).
    wait_long("only the direct connection to be left", || async {
        status(sender).peers.iter().any(|p| {
            p.peer_id == receiver
                && !p.addresses.is_empty()
                && p.addresses.iter().all(|a| !a.contains("p2p-circuit"))
        })
    })
    .await;
    for node in &mut nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(passerelle_root),
    ignore = "needs root: network namespaces and nftables"
)]
async fn after_a_restart_an_office_finds_its_partners_from_the_address_book_alone() {
    let Offices {
        internet: _internet,
        mut nodes,
        namespaces,
        ..
    } = public_and_offices(false, true).await;
    let relay = wait_relayed(&nodes).await;
    let service = offer(&nodes[2], "Orientation professionnelle").await;
    wait_converged(&nodes, 3).await;
    // The offices met once (a case file through the relay): each knows the other's
    // relayed address.
    let first = send(&nodes[1], direct(nodes[2].handle().org_id(), &service))
        .await
        .expect("send a referral");
    wait_case_file("the first case file to arrive", &nodes[2], &first).await;

    // The first office restarts with no partner configured at all.
    nodes[1].stop().await;
    if let Some(network) = nodes[1].config.network.as_mut() {
        network.peers.clear();
    }
    // Written while it was down: it catches up from the address book's partners.
    offer(&nodes[2], "Soutien psychologique").await;
    nodes[1].start_in(&namespaces[1]).await;
    wait_long(
        "the office to reconnect to the relay and hold a slot again",
        || async { status(&nodes[1]).relays == vec![relay.clone()] },
    )
    .await;
    wait_converged(&nodes, 3).await;
    let second = send(&nodes[1], direct(nodes[2].handle().org_id(), &service))
        .await
        .expect("send a referral");
    wait_case_file("the second case file to arrive", &nodes[2], &second).await;
    for node in &mut nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(passerelle_root),
    ignore = "needs root: network namespaces and nftables"
)]
async fn members_publish_where_they_are_reached_and_offices_find_a_second_relay_from_it() {
    // Two public members; each office is told only one of them, a different one.
    let mut internet = Internet::create();
    let publics = [internet.public_host(), internet.public_host()];
    let offices = [internet.office(), internet.office_behind_carrier_nat()];
    let names = [
        "Délégation MINAS Littoral (serveur)",
        "OIM Yaoundé (serveur)",
        "ONG Avenir Douala",
        "Fondation Espoir (4G)",
    ];
    let hosts = [&publics[0], &publics[1], &offices[0].host, &offices[1].host];
    let mut nodes: Vec<TestNode> = names
        .iter()
        .zip(hosts)
        .map(|(name, host)| {
            let mut node = TestNode::init_on(name, host, vec![]);
            if let Some(network) = node.config.network.as_mut() {
                network.hole_punching = false;
                network.sync_interval = Duration::from_secs(5);
            }
            node
        })
        .collect();
    found_network(&nodes.iter().collect::<Vec<_>>(), "2");
    nodes[0].start_in(&hosts[0].namespace).await;
    let first = nodes[0].listen_addr().await;
    if let Some(network) = nodes[1].config.network.as_mut() {
        network.peers = vec![first.clone()];
    }
    nodes[1].start_in(&hosts[1].namespace).await;
    let second = nodes[1].listen_addr().await;
    for (i, told) in [(2, first), (3, second)] {
        if let Some(network) = nodes[i].config.network.as_mut() {
            network.peers = vec![told];
        }
        nodes[i].start_in(&hosts[i].namespace).await;
    }

    // Every member publishes where it is reached: the public ones directly, the offices
    // through their relay; each office learns the other public member from it and holds
    // a slot on both.
    let keys: Vec<String> = nodes.iter().map(|n| status(n).peer_id).collect();
    let relays = {
        let mut r = vec![keys[0].clone(), keys[1].clone()];
        r.sort();
        r
    };
    for office in &nodes[2..] {
        wait_long(
            "each office to hold a slot on both public members",
            || async { status(office).relays == relays },
        )
        .await;
    }
    let reader = &nodes[2];
    wait_long(
        "every member's addresses to be published and read",
        || async {
            let records = reader.handle().records(false).await.unwrap_or_default();
            let published: Vec<_> = records.iter().flat_map(|r| r.addresses.values()).collect();
            published.len() == 4
                && published
                    .iter()
                    .filter(|entry| entry.addresses.iter().any(|a| a.contains("p2p-circuit")))
                    .count()
                    >= 2
        },
    )
    .await;

    // A case file from one office to the other.
    let service = offer(&nodes[3], "Microcrédit").await;
    wait_converged(&nodes, 4).await;
    let id = send(&nodes[2], direct(nodes[3].handle().org_id(), &service))
        .await
        .expect("send a referral");
    wait_case_file("the case file to arrive", &nodes[3], &id).await;
    for node in &mut nodes {
        node.stop().await;
    }
}
