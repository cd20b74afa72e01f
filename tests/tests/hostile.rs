//! A hostile peer: a real libp2p node that speaks gossipsub on the network's changes topic
//! and publishes forged and tampered signed changes — with the key of a member gone rogue,
//! or of no member at all. Every honest node must refuse them, penalise the sender, and
//! keep converging.

use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::{Multiaddr, gossipsub};
use passerelle_node::document::{Edit, OrganisationDocument};
use passerelle_node::envelope::{DocumentId, SignedChange};
use passerelle_node::identity::{Identity, SigningSecret};
use passerelle_node::keys::KeyFiles;
use passerelle_node::model::Profile;
use passerelle_node::network::PeerIdentity;
use passerelle_node::protocol::changes_topic;
use passerelle_tests::flood::socket_of;
use passerelle_tests::{TIMEOUT, TestNode, found_network, start_line, wait_converged, wait_for};

use crate::add;

use passerelle_tests::flood::gossip_swarm as rogue_swarm;

/// The gossip topic of a node's network.
async fn network_topic(node: &passerelle_tests::TestNode) -> gossipsub::IdentTopic {
    let network = node
        .handle()
        .membership()
        .await
        .expect("membership")
        .summary
        .network_id;
    gossipsub::IdentTopic::new(changes_topic(network.as_deref()))
}

/// Forged messages: a valid change re-signed for the victim's document, a change whose
/// signature was tampered with, a change whose author was swapped, and garbage.
fn forgeries(rogue: &SigningSecret, victim: &passerelle_node::identity::OrgId) -> Vec<Vec<u8>> {
    let (mut doc, genesis) =
        OrganisationDocument::create(rogue, Profile::named("Faux partenaire"), 1).expect("doc");
    let edit = doc
        .apply_edit(
            &Edit::SetProfile {
                patch: serde_json::json!({"acronym": "FAUX"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            },
            rogue,
            2,
        )
        .expect("edit");
    // 1. The rogue's own change, signed for the victim's document (one-writer rule).
    let into_victim = SignedChange::sign(
        DocumentId::organisation(victim),
        genesis.change().clone(),
        rogue,
    )
    .encode();
    // 2. A tampered signature.
    let mut tampered = edit.encode();
    let doc_len = u16::from_be_bytes([tampered[4], tampered[5]]) as usize;
    tampered[6 + doc_len + 32 + 3] ^= 0x10;
    // 3. The victim named as author of the rogue's change.
    let mut impersonated = genesis.encode();
    impersonated[6 + doc_len..6 + doc_len + 32].copy_from_slice(victim.as_bytes());
    vec![
        into_victim,
        tampered,
        impersonated,
        b"not a change at all".to_vec(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_changes_are_rejected_everywhere_and_the_sender_penalised() {
    // Two honest members, and four members gone rogue (founders whose keys publish
    // forgeries from bare libp2p nodes); a fifth rogue is no member at all, and is given no
    // gossip.
    let mut nodes: Vec<TestNode> = ["Délégation Littoral", "ONG Avenir"]
        .iter()
        .map(|name| TestNode::init_networked(name, vec![]))
        .collect();
    let rogue_members: Vec<TestNode> = (0..4)
        .map(|i| TestNode::init(&format!("Membre malveillant {i}"), |_| {}))
        .collect();
    let everyone: Vec<&TestNode> = nodes.iter().chain(rogue_members.iter()).collect();
    found_network(&everyone, "1/2");
    start_line(&mut nodes).await;
    nodes[0]
        .handle()
        .edit(add("Honnête 1", "CM005"))
        .await
        .expect("edit");
    wait_converged(&nodes, 2).await;

    // One hostile peer per kind of forgery: a peer is graylisted after its first refused
    // message, so later ones from the same peer would not even be read.
    let target: Multiaddr = nodes[0].listen_addr().await;
    let victim = nodes[1].handle().org_id();
    let topic = network_topic(&nodes[0]).await;
    let mut rogues = Vec::new();
    let outsider = SigningSecret::generate().expect("key");
    let rogue_identities: Vec<Option<Identity>> = rogue_members
        .iter()
        .map(|m| Some(Identity::load(&m.data_dir()).expect("identity")))
        .chain([None])
        .collect();
    for (kind, identity) in rogue_identities.iter().enumerate() {
        let rogue_secret = identity.as_ref().map_or(&outsider, |i| i.signing());
        let rogue_peer = rogue_secret.org_id().peer_id();
        let mut rogue = rogue_swarm(rogue_secret, 64 * 1024, &topic);
        rogue.dial(target.clone()).expect("dial");
        let Some(_) = identity else {
            // A non-member gets no gossip at all: connected, it never learns that the node
            // is on the topic, so it cannot publish even its own, correctly signed change.
            let own = OrganisationDocument::create(rogue_secret, Profile::named("Intrus"), 1)
                .expect("doc")
                .1
                .encode();
            let first = nodes[0].handle();
            let mut connected_without_gossip = false;
            let until = Instant::now() + Duration::from_secs(3);
            while Instant::now() < until {
                assert!(
                    rogue
                        .behaviour_mut()
                        .publish(topic.clone(), own.clone())
                        .is_err(),
                    "a non-member could publish on the network's topic"
                );
                let _ =
                    tokio::time::timeout(Duration::from_millis(50), rogue.select_next_some()).await;
                connected_without_gossip |= first
                    .network_status()
                    .peers
                    .iter()
                    .any(|p| p.peer_id == rogue_peer.to_string() && !p.gossip);
            }
            assert!(
                connected_without_gossip,
                "the non-member was connected meanwhile"
            );
            continue;
        };
        let forgery = forgeries(rogue_secret, &victim).swap_remove(kind);
        // Drive the rogue until it may publish (it must first learn that the node
        // subscribed to the topic).
        let deadline = Instant::now() + TIMEOUT;
        while rogue
            .behaviour_mut()
            .publish(topic.clone(), forgery.clone())
            .is_err()
        {
            assert!(Instant::now() < deadline, "rogue {kind} could not publish");
            let _ = tokio::time::timeout(Duration::from_millis(50), rogue.select_next_some()).await;
        }
        // Keep the rogue's connection serviced in the background.
        rogues.push(tokio::spawn(async move {
            loop {
                rogue.select_next_some().await;
            }
        }));

        let first = nodes[0].handle();
        // One forgery graylists the sender (gossip score −100): it is cut off at once.
        let cut_before = kind as u64;
        wait_for("the forgery to be refused and its sender cut off", || {
            let first = first.clone();
            let rogue = rogue_peer.to_string();
            async move {
                let status = first.network_status();
                status.peers_cut_off > cut_before
                    && !status.peers.iter().any(|p| p.peer_id == rogue)
            }
        })
        .await;
    }
    let status = nodes[0].handle().status().await.expect("status");
    assert_eq!(status.rejected_changes, 4);
    let by_reason: Vec<(&str, u64)> = status
        .rejected_by_reason
        .iter()
        .map(|(code, n)| (code.as_str(), *n))
        .collect();
    assert_eq!(
        by_reason,
        vec![
            ("bad_signature", 2),
            ("undecodable", 1),
            ("wrong_writer", 1)
        ]
    );

    // Nothing forged was stored or forwarded: the victim's document and the rogue's are
    // untouched everywhere.
    for node in &nodes {
        let status = node.handle().status().await.expect("status");
        assert_eq!(status.documents.len(), 2, "{}", node.name);
        assert!(
            status.documents.iter().all(|d| d.name != "Faux partenaire"),
            "{}",
            node.name
        );
    }
    assert_eq!(
        nodes[1]
            .handle()
            .status()
            .await
            .expect("status")
            .rejected_changes,
        0
    );

    // Honest traffic keeps flowing.
    nodes[1]
        .handle()
        .edit(add("Honnête 2", "CM005"))
        .await
        .expect("edit");
    wait_converged(&nodes, 2).await;
    assert_eq!(nodes[0].services().await.len(), 2);
    for rogue in rogues {
        rogue.abort();
    }
    for node in &mut nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_gossip_message_is_dropped_without_harm() {
    // Two honest members and a member gone rogue (non-members get no gossip to abuse).
    let mut nodes: Vec<TestNode> = ["Délégation Littoral", "ONG Avenir"]
        .iter()
        .map(|name| TestNode::init_networked(name, vec![]))
        .collect();
    let rogue_member = TestNode::init("Membre malveillant", |_| {});
    found_network(&[&nodes[0], &nodes[1], &rogue_member], "1/2");
    start_line(&mut nodes).await;
    wait_converged(&nodes, 2).await;
    let rogue_identity = Identity::load(&rogue_member.data_dir()).expect("identity");
    let rogue_secret = rogue_identity.signing();
    let topic = network_topic(&nodes[0]).await;
    // A rogue whose own limit lets it send 256 KiB, four times the protocol's 64 KiB.
    let mut rogue = rogue_swarm(rogue_secret, 1024 * 1024, &topic);
    rogue.dial(nodes[0].listen_addr().await).expect("dial");
    let big = vec![0x42u8; 256 * 1024];
    let deadline = Instant::now() + TIMEOUT;
    while rogue
        .behaviour_mut()
        .publish(topic.clone(), big.clone())
        .is_err()
    {
        assert!(Instant::now() < deadline, "the rogue could not publish");
        let _ = tokio::time::timeout(Duration::from_millis(50), rogue.select_next_some()).await;
    }
    let rogue_task = tokio::spawn(async move {
        loop {
            rogue.select_next_some().await;
        }
    });
    // The node keeps working and honest changes keep flowing; nothing was stored.
    nodes[1]
        .handle()
        .edit(add("Après le gros message", "CM005"))
        .await
        .expect("edit");
    wait_converged(&nodes, 2).await;
    assert_eq!(nodes[0].services().await.len(), 1);
    let status = nodes[0].handle().status().await.expect("status");
    assert_eq!(status.documents.len(), 2);
    assert!(status.network.gossip_bytes_received < 64 * 1024);
    rogue_task.abort();
    for node in &mut nodes {
        node.stop().await;
    }
}

/// Keeps `count` idle TCP connections open to `target` from `source`, re-opening each as
/// soon as it closes, until aborted: what a few scripts on one machine can do to a node.
fn hold_idle_sockets(
    source: std::net::IpAddr,
    target: std::net::SocketAddr,
    count: usize,
) -> tokio::task::JoinSet<()> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..count {
        set.spawn(async move {
            loop {
                let socket = tokio::net::TcpSocket::new_v4().expect("socket");
                if socket.bind((source, 0).into()).is_err() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                match socket.connect(target).await {
                    Ok(mut stream) => {
                        use tokio::io::AsyncReadExt;
                        let mut buf = [0u8; 1024];
                        // Say nothing; wait for the node to give up on us.
                        while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        });
    }
    set
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_from_one_address_do_not_lock_a_restarting_member_out() {
    let mut nodes = passerelle_tests::spawn_line(&["Délégation Littoral", "ONG Avenir"]).await;
    wait_converged(&nodes, 2).await;
    // 80 idle sockets from another loopback address, more than the node's whole budget of
    // connections still negotiating, re-opened as soon as they close.
    let target = socket_of(&nodes[0].listen_addr().await);
    let mut flood = hold_idle_sockets("127.0.0.2".parse().expect("ip"), target, 80);
    let first = nodes[0].handle();
    wait_for("the node to refuse the flood at its gate", || {
        let first = first.clone();
        async move { first.network_status().connections_refused > 0 }
    })
    .await;

    // The second member restarts meanwhile: it reconnects and catches up.
    nodes[1].stop().await;
    nodes[0]
        .handle()
        .edit(add("Pendant l'absence", "CM005"))
        .await
        .expect("edit");
    nodes[1].start().await;
    let second = nodes[1].handle().org_id().peer_id().to_string();
    wait_for("the restarted member to reconnect under the flood", || {
        let first = first.clone();
        let second = second.clone();
        async move {
            first
                .network_status()
                .peers
                .iter()
                .any(|p| p.peer_id == second && p.gossip)
        }
    })
    .await;
    wait_converged(&nodes, 2).await;
    assert_eq!(nodes[1].services().await.len(), 1);
    // The flood is still on and still refused.
    let refused = first.network_status().connections_refused;
    assert!(refused > 0);
    flood.abort_all();
    for node in &mut nodes {
        node.stop().await;
    }
}

/// `owner`'s document with its profile name set outside the node's checks to `name`, as a
/// signed change of its own key.
fn forged_name(owner: &TestNode, history: &[Vec<u8>], name: &str) -> Vec<u8> {
    use automerge::ReadDoc;
    use automerge::transaction::Transactable;
    use passerelle_node::document::Replica;
    let (identity, mut doc) = passerelle_tests::replay_outside(owner, history);
    let am = doc.automerge();
    let profile = match am.get(automerge::ROOT, "profile").expect("profile") {
        Some((_, id)) => id,
        None => panic!("no profile"),
    };
    am.put(&profile, "name", name).expect("name");
    passerelle_tests::sign_last_change(&identity, &mut doc, "rename")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cannot_write_terminal_escapes_or_overrides_into_others_screens() {
    let mut nodes = passerelle_tests::spawn_line(&["Délégation Littoral", "ONG Avenir"]).await;
    wait_converged(&nodes, 2).await;
    // Typed locally: refused, naming the field and the character.
    let refused = nodes[0]
        .handle()
        .edit(add("Formation\u{1b}[2J\u{7}", "CM005"))
        .await
        .expect_err("an escape sequence in a name is refused");
    let message = refused.to_string();
    assert!(
        message.contains("name") && message.contains("U+001B"),
        "{message}"
    );

    // Written outside the node by a member gone rogue and signed with its key: every other
    // node refuses the change, counts it, and keeps the document as it was.
    let document = DocumentId::organisation(&nodes[1].handle().org_id());
    let history = nodes[1].handle().export(&document).await.expect("export");
    for (text, code) in [
        ("\u{1b}]0;pwned\u{7}ONG", "U+001B"),
        ("ONG\u{202e}evinA", "U+202E"),
        ("ONG\u{200b}Avenir", "U+200B"),
        ("ONG\nAvenir", "U+000A"),
    ] {
        let forged = forged_name(&nodes[1], &history, text);
        let outcome = nodes[0]
            .handle()
            .apply_remote(vec![forged], Some(nodes[1].handle().key_id()))
            .await
            .expect("apply");
        assert_eq!(outcome.applied, 0, "{text:?}");
        assert_eq!(outcome.rejected.len(), 1, "{text:?}");
        assert_eq!(
            outcome.rejected[0].code,
            passerelle_node::node::RejectionCode::UnsafeText,
            "{text:?}"
        );
        assert!(
            outcome.rejected[0].reason.contains("profile.name")
                && outcome.rejected[0].reason.contains(code),
            "{text:?}: {:?}",
            outcome.rejected
        );
    }
    let status = nodes[0].handle().status().await.expect("status");
    assert!(
        status
            .documents
            .iter()
            .all(|d| d.name == "Délégation Littoral" || d.name == "ONG Avenir")
    );
    assert_eq!(status.rejected_by_reason.get("unsafe_text"), Some(&4));
    for node in &mut nodes {
        node.stop().await;
    }
}
