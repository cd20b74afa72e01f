//! A foreign peer (js-libp2p, another implementation, with another Automerge to read what
//! it gets) tries the node from outside: a non-member gets neither gossip nor any
//! organisation's document; a peer with a non-ed25519 key is refused; the same peer with a
//! member's key gets both, which shows the eavesdropper would have heard everything.

use passerelle_node::network::PeerIdentity;
use passerelle_node::node::{ListFilter, ReferralReply, ReferralRequest};
use passerelle_node::referral::lifecycle::Move;
use passerelle_tests::foreign::{ForeignOptions, ForeignPeer};
use passerelle_tests::{TestNode, found_network, start_line, wait_converged, wait_for};
use serde_json::Value;

use crate::add;

/// The documents a catch-up answer named, from the foreign peer's report.
fn synced_documents(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "sync")
        .flat_map(|e| e["documents"].as_array().cloned().unwrap_or_default())
        .filter_map(|d| d.as_str().map(str::to_owned))
        .collect()
}

fn messages(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["event"] == "message").collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_non_member_peer_gets_no_gossip_and_no_document() {
    // Two members running, and a third whose node is off: its key is lent to the foreign
    // peer as the control that gossip and catch-up do reach a member.
    let mut nodes: Vec<TestNode> = ["Délégation Littoral", "ONG Avenir"]
        .iter()
        .map(|name| TestNode::init_networked(name, vec![]))
        .collect();
    let lent = TestNode::init("Fondation Lumière", |_| {});
    let network = found_network(&[&nodes[0], &nodes[1], &lent], "1/2").to_string();
    start_line(&mut nodes).await;
    let seed: [u8; 32] = std::fs::read(lent.data_dir().join("keys/organisation.ed25519"))
        .expect("key file")
        .try_into()
        .expect("32 bytes");

    let target = format!(
        "{}/p2p/{}",
        nodes[0].listen_addr().await,
        nodes[0].handle().org_id().peer_id()
    );
    let options = ForeignOptions {
        dial: target,
        topic: passerelle_node::protocol::changes_topic(Some(&network)),
        network,
        seconds: 12,
        ..Default::default()
    };
    let outsider = ForeignPeer::spawn(&options);
    let secp = ForeignPeer::spawn(&ForeignOptions {
        key_type: Some("secp256k1".into()),
        ..options.clone()
    });
    let member = ForeignPeer::spawn(&ForeignOptions {
        seed: Some(seed),
        ..options.clone()
    });

    // Both ed25519 peers connect and stay connected; then the members write.
    let first = nodes[0].handle();
    wait_for("both foreign ed25519 peers to be connected", || {
        let ids = [outsider.peer_id(), member.peer_id()];
        let first = first.clone();
        async move {
            let peers = first.network_status().peers;
            ids.iter().all(|id| {
                id.as_ref()
                    .is_some_and(|id| peers.iter().any(|p| &p.peer_id == id))
            })
        }
    })
    .await;
    let peers = first.network_status().peers;
    let outsider_id = outsider.peer_id().expect("outsider id");
    let shown = peers
        .iter()
        .find(|p| p.peer_id == outsider_id)
        .expect("listed");
    assert!(!shown.gossip, "a non-member's connection carries no gossip");

    // Live changes until the member's foreign peer hears one (it must first have told the
    // node that it subscribed), so that the eavesdropper is known to be listening.
    let mut written = 0;
    while messages(&member.events()).is_empty() {
        assert!(
            written < 100,
            "the member's foreign peer never heard a change"
        );
        nodes[0]
            .handle()
            .edit(add(&format!("Formation en couture {written}"), "CM005"))
            .await
            .expect("edit");
        written += 1;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let service = nodes[1]
        .handle()
        .edit(add("Placement en emploi", "CM005"))
        .await
        .expect("edit")
        .id;
    wait_converged(&nodes, 2).await;
    let sent = crate::referrals::send(
        &nodes[0],
        crate::referrals::direct(nodes[1].handle().org_id(), &service),
    )
    .await
    .expect("send a referral");
    wait_for("the referral to reach the receiver", || async {
        matches!(
            nodes[1]
                .handle()
                .referral(ReferralRequest::List { filter: ListFilter::default() }, "test")
                .await,
            Ok(ReferralReply::List(list)) if list.entries.iter().any(|e| e.id == sent)
        )
    })
    .await;
    nodes[1]
        .handle()
        .referral(
            ReferralRequest::Move {
                id: sent,
                action: Move::Accept,
            },
            "test",
        )
        .await
        .expect("accept");
    wait_converged(&nodes, 2).await;

    let member_events = member.finish().await;
    let outsider_events = outsider.finish().await;
    let secp_events = secp.finish().await;

    // The control: with a member's key, the same foreign peer heard the live changes and
    // read them with another Automerge, and was served the organisations' documents.
    let heard = messages(&member_events);
    for expected in ["send referral", "answer referral"] {
        assert!(
            heard.iter().any(|m| m["message"]
                .as_str()
                .is_some_and(|t| t.starts_with(expected))),
            "a member's foreign peer hears the live changes ({expected}): {member_events:?}"
        );
    }
    assert!(
        heard
            .iter()
            .all(|m| m["actor"].as_str() == m["author"].as_str()),
        "each change decodes, by its author: {heard:?}"
    );
    assert!(
        synced_documents(&member_events)
            .iter()
            .any(|d| d.starts_with("org/")),
        "a member is served organisation documents: {member_events:?}"
    );
    // Whole, in compact bundles: each author's signature apart from its change, which
    // another implementation (ed25519 of js-libp2p, the change read with JavaScript
    // Automerge) verifies.
    let sync = member_events
        .iter()
        .find(|e| e["event"] == "sync")
        .expect("a catch-up answer");
    assert!(sync["bundles"].as_u64() >= Some(1), "{sync}");
    assert!(sync["signatures"].as_u64() >= Some(1), "{sync}");
    assert_eq!(sync["verified"], sync["signatures"], "{sync}");

    // The non-member heard nothing, and was served the network document only.
    assert!(
        messages(&outsider_events).is_empty(),
        "a non-member heard gossip: {outsider_events:?}"
    );
    let served = synced_documents(&outsider_events);
    assert!(
        !served.is_empty() && served.iter().all(|d| d.starts_with("net/")),
        "a non-member is served the network document only: {outsider_events:?}"
    );
    let offered: Vec<String> = outsider_events
        .iter()
        .filter(|e| e["event"] == "protocols")
        .flat_map(|e| e["protocols"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    assert!(
        !offered.iter().any(|p| p.contains("meshsub")),
        "no gossip protocol is offered to a non-member: {offered:?}"
    );

    // A secp256k1 peer id names no organisation: refused at connection.
    assert!(messages(&secp_events).is_empty());
    assert!(
        synced_documents(&secp_events).is_empty(),
        "a secp256k1 peer is served nothing: {secp_events:?}"
    );
    let status = nodes[0].handle().network_status();
    assert!(
        !status.peers.iter().any(|p| p.org_id.is_none()),
        "no peer without an organisation key stays connected"
    );
    for node in &mut nodes {
        node.stop().await;
    }
}
