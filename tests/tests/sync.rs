//! Sync between real nodes over libp2p on loopback.

use passerelle_node::document::Replica;
use passerelle_node::envelope::{DocumentId, SignedChange};
use passerelle_node::identity::SigningSecret;
use passerelle_node::keys::KeyFiles;
use passerelle_node::protocol::DocumentBundle;
use passerelle_tests::{
    TestNode, found_network, replay_outside, spawn_line, spawn_line_holding_back_last,
    wait_converged, wait_for,
};
use serde_bytes::ByteBuf;

use crate::add;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_in_a_line_converge() {
    let names = ["ONG A", "ONG B", "ONG C", "ONG D", "ONG E"];
    let mut nodes = spawn_line(&names).await;
    for node in &nodes {
        node.handle()
            .edit(add(&format!("Service de {}", node.name), "CM005"))
            .await
            .expect("edit");
    }
    wait_converged(&nodes, 5).await;
    let expected = nodes[0].services().await;
    assert_eq!(expected.len(), 5);
    for node in &nodes {
        assert_eq!(node.services().await, expected, "{}", node.name);
    }
    // A change made at one end reaches the other end live.
    nodes[4]
        .handle()
        .edit(add("Nouveau service", "CM002"))
        .await
        .expect("edit");
    let first = &nodes[0];
    wait_for("the new service to cross the line", || async {
        first.services().await.len() == 6
    })
    .await;
    for node in &mut nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_catches_up_from_one_peer() {
    let (mut nodes, mut late) =
        spawn_line_holding_back_last(&["Délégation Littoral", "ONG Avenir", "CICR"]).await;
    for i in 0..20 {
        nodes[i % 2]
            .handle()
            .edit(add(&format!("Service {i}"), "CM005"))
            .await
            .expect("edit");
    }
    wait_converged(&nodes, 2).await;
    if let Some(network) = late.config.network.as_mut() {
        network.peers = vec![nodes[1].listen_addr().await];
    }
    late.start().await;
    nodes.push(late);
    wait_converged(&nodes, 3).await;
    assert_eq!(nodes[2].services().await.len(), 20);
    for node in &mut nodes {
        node.stop().await;
    }
}

/// A node that lacks documents receives them whole (Automerge's compressed document and
/// one signature per author); it stores the other changes attested by those signatures
/// and serves them on, both to a node that lacks the documents and to one that holds an
/// older part of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joiner_receives_documents_whole_and_serves_them_on() {
    let (mut nodes, mut joiner) =
        spawn_line_holding_back_last(&["Délégation Littoral", "ONG Avenir", "CICR"]).await;
    for i in 0..3 {
        nodes[0]
            .handle()
            .edit(add(&format!("Avant {i}"), "CM005"))
            .await
            .expect("edit");
    }
    wait_converged(&nodes, 2).await;
    // The second node goes away holding the first's document as it is now.
    nodes[1].stop().await;
    for i in 0..3 {
        nodes[0]
            .handle()
            .edit(add(&format!("Après {i}"), "CM005"))
            .await
            .expect("edit");
    }

    // The joiner catches up from the first node alone: both documents arrive whole.
    if let Some(network) = joiner.config.network.as_mut() {
        network.peers = vec![nodes[0].listen_addr().await];
    }
    joiner.start().await;
    let pair = [nodes.remove(0), joiner];
    wait_converged(&pair, 3).await;
    let status = pair[1].handle().status().await.expect("status");
    assert!(
        status.documents_received_whole >= 2,
        "the joiner received {} documents whole",
        status.documents_received_whole
    );
    assert_eq!(
        status.rejected_changes, 0,
        "{:?}",
        status.rejected_by_reason
    );
    assert_eq!(pair[1].services().await.len(), 6);
    let [mut first, joiner] = pair;
    first.stop().await;

    // The second node comes back and meets only the joiner: it receives the first's
    // later changes, held attested by the joiner, and the joiner's document whole.
    let mut second = nodes.remove(0);
    if let Some(network) = second.config.network.as_mut() {
        network.peers = vec![joiner.listen_addr().await];
    }
    second.start().await;
    let pair = [joiner, second];
    wait_converged(&pair, 3).await;
    let status = pair[1].handle().status().await.expect("status");
    assert_eq!(
        status.rejected_changes, 0,
        "{:?}",
        status.rejected_by_reason
    );
    assert!(status.documents_received_whole >= 1);
    assert_eq!(pair[1].services().await, pair[0].services().await);
    assert_eq!(pair[1].services().await.len(), 6);

    // The joiner's store, attested changes included, reads back whole after a restart.
    let [mut joiner, mut second] = pair;
    second.stop().await;
    let heads = joiner.heads().await;
    joiner.restart().await;
    assert_eq!(joiner.heads().await, heads);
    assert_eq!(joiner.services().await.len(), 6);
    // Every document's changes, as the joiner would send them, verify as a whole; some
    // are held attested.
    let mut attested = 0;
    for document in &heads {
        let changes: Vec<SignedChange> = joiner
            .handle()
            .export(&document.document)
            .await
            .expect("export")
            .iter()
            .map(|raw| SignedChange::decode(raw).expect("decodes"))
            .collect();
        SignedChange::verify_all(&changes).expect("the document's changes verify");
        attested += changes.iter().filter(|c| !c.is_signed()).count();
    }
    assert!(attested > 0, "the joiner holds no attested change");
    // A full check of its store (every change read back, documents received whole
    // included, and verified) finds the same documents.
    joiner.stop().await;
    joiner.config.verify_store = true;
    joiner.start().await;
    assert_eq!(joiner.heads().await, heads);
    assert_eq!(joiner.services().await.len(), 6);
    joiner.stop().await;
}

/// A document received whole is taken whole once, even when a response carries it twice;
/// one that holds a change its author may not write is taken change by change instead,
/// and only that change is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_is_taken_once_and_change_by_change_when_the_write_rule_refuses_part_of_it() {
    // Three members, none dialling another: what each holds comes only from this test.
    let mut nodes: Vec<TestNode> = ["ONG Avenir", "Délégation Centre", "CICR"]
        .iter()
        .map(|name| TestNode::init_networked(name, vec![]))
        .collect();
    found_network(&nodes.iter().collect::<Vec<_>>(), "1/2");
    for node in &mut nodes {
        node.start().await;
    }
    for i in 0..3 {
        nodes[0]
            .handle()
            .edit(add(&format!("Service {i}"), "CM005"))
            .await
            .expect("edit");
    }
    let owner = passerelle_node::identity::Identity::load(&nodes[0].data_dir())
        .expect("identity")
        .org_id();
    let id = DocumentId::organisation(&owner);
    let exported = nodes[0].handle().export(&id).await.expect("export");
    let latest = exported.last().expect("changes").clone();
    let (_, mut doc) = replay_outside(&nodes[0], &exported);
    let bundle = DocumentBundle {
        document: id.clone(),
        automerge: ByteBuf::from(doc.automerge().save()),
        signed: vec![ByteBuf::from(latest.clone())],
        signatures: Vec::new(),
    };

    // Twice in one response: taken whole once, the second counted as duplicates.
    let outcome = nodes[1]
        .handle()
        .apply_received(Vec::new(), vec![bundle.clone(), bundle], None)
        .await
        .expect("apply");
    assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
    assert_eq!(outcome.documents_whole, 1);
    assert_eq!(outcome.applied, exported.len());
    assert_eq!(outcome.duplicates, exported.len());
    assert_eq!(nodes[1].services().await, nodes[0].services().await);

    // A key that is no member writes into the document and signs its change: the bundle
    // is taken change by change, the stranger's change alone refused.
    let stranger = SigningSecret::generate().expect("key");
    let am = doc.automerge();
    am.set_actor(automerge::ActorId::from(stranger.org_id().as_bytes()));
    automerge::transaction::Transactable::put(am, automerge::ROOT, "note", "forged").expect("put");
    am.commit();
    let forged = am.get_last_local_change().expect("change");
    let forged = SignedChange::sign(id.clone(), forged, &stranger);
    let bundle = DocumentBundle {
        document: id.clone(),
        automerge: ByteBuf::from(am.save()),
        signed: vec![ByteBuf::from(latest), ByteBuf::from(forged.encode())],
        signatures: Vec::new(),
    };
    let outcome = nodes[2]
        .handle()
        .apply_received(Vec::new(), vec![bundle], None)
        .await
        .expect("apply");
    assert_eq!(outcome.documents_whole, 0);
    assert_eq!(outcome.applied, exported.len());
    assert_eq!(outcome.rejected.len(), 1, "{:?}", outcome.rejected);
    assert_eq!(
        outcome.rejected[0].code,
        passerelle_node::node::RejectionCode::WrongWriter
    );
    assert!(
        outcome.rejected[0]
            .reason
            .contains(&stranger.org_id().to_string())
    );
    assert_eq!(nodes[2].services().await, nodes[0].services().await);
    let heads_of = |heads: Vec<passerelle_node::protocol::DocumentHeads>| {
        heads
            .into_iter()
            .find(|d| d.document == id)
            .map(|d| d.heads)
    };
    assert_eq!(
        heads_of(nodes[2].heads().await),
        heads_of(nodes[1].heads().await)
    );
    for node in &mut nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_made_offline_merge_on_reconnect() {
    let mut nodes = spawn_line(&["ONG Avenir", "Délégation Ouest"]).await;
    nodes[0]
        .handle()
        .edit(add("Avant", "CM008"))
        .await
        .expect("edit");
    wait_converged(&nodes, 2).await;

    // B goes offline and keeps working; A keeps working too.
    let network = nodes[1].config.network.take();
    nodes[1].restart().await;
    for i in 0..3 {
        nodes[1]
            .handle()
            .edit(add(&format!("Hors ligne {i}"), "CM008"))
            .await
            .expect("offline edit");
        nodes[0]
            .handle()
            .edit(add(&format!("Pendant {i}"), "CM008"))
            .await
            .expect("edit");
    }
    assert_eq!(
        nodes[1].services().await.len(),
        4,
        "B sees only its own edits and what it had"
    );

    // B comes back: both sides catch up.
    nodes[1].stop().await;
    nodes[1].config.network = network;
    nodes[1].start().await;
    wait_converged(&nodes, 2).await;
    assert_eq!(nodes[0].services().await.len(), 7);
    assert_eq!(nodes[0].services().await, nodes[1].services().await);
    // B received only what it missed (A's three changes), not A's whole document again.
    let network = nodes[1].handle().network_status();
    let received = network.sync_bytes_received + network.gossip_bytes_received;
    let missed = nodes[0]
        .handle()
        .history(None, 3)
        .await
        .expect("history")
        .len();
    assert_eq!(missed, 3);
    assert!(
        received > 0 && received < 4 * 1024,
        "B received {received} bytes to catch up three changes"
    );
    for node in &mut nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_edits_converge_to_the_same_heads() {
    let mut nodes = spawn_line(&["ONG A", "ONG B", "ONG C"]).await;
    let mut edits = tokio::task::JoinSet::new();
    for node in &nodes {
        let handle = node.handle();
        let name = node.name.clone();
        edits.spawn(async move {
            for i in 0..10 {
                handle
                    .edit(add(&format!("{name} {i}"), "CM001"))
                    .await
                    .expect("edit");
            }
        });
    }
    while let Some(done) = edits.join_next().await {
        done.expect("edits");
    }
    wait_converged(&nodes, 3).await;
    for node in &nodes {
        assert_eq!(node.services().await.len(), 30, "{}", node.name);
    }
    for node in &mut nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_mid_stream_loses_nothing() {
    let mut nodes = spawn_line(&["Émetteur", "Récepteur"]).await;
    wait_converged(&nodes, 2).await;
    let sender = nodes[0].handle();
    let stream = tokio::spawn(async move {
        for i in 0..40 {
            sender
                .edit(add(&format!("Flux {i}"), "CM003"))
                .await
                .expect("edit");
            tokio::task::yield_now().await;
        }
    });
    // Restart the receiver while the stream runs.
    nodes[1].restart().await;
    stream.await.expect("stream");
    wait_converged(&nodes, 2).await;
    assert_eq!(nodes[1].services().await.len(), 40);
    // And what it received survives another restart, without the network.
    nodes[1].config.network = None;
    nodes[1].restart().await;
    assert_eq!(nodes[1].services().await.len(), 40);
    for node in &mut nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_dependencies_are_missing_waits_until_they_arrive() {
    use passerelle_node::document::{Edit, OrganisationDocument};
    use passerelle_node::model::Profile;

    // The receiver and a member organisation whose node never runs here: its changes are
    // handed over directly.
    let mut receiver = TestNode::init("Récepteur", |_| {});
    let remote = TestNode::init("ONG lointaine", |_| {});
    found_network(&[&receiver, &remote], "1");
    receiver.start().await;
    let node = &mut receiver;
    // Another organisation's document, built elsewhere: genesis, then two edits.
    let remote_identity =
        passerelle_node::identity::Identity::load(&remote.data_dir()).expect("identity");
    let author = remote_identity.signing();
    let (mut doc, genesis) =
        OrganisationDocument::create(author, Profile::named("ONG lointaine"), 1).expect("doc");
    let first = doc
        .apply_edit(
            &Edit::AddService {
                id: "svc-1".into(),
                service: crate::service("Premier", "CM009"),
            },
            author,
            2,
        )
        .expect("edit");
    let second = doc
        .apply_edit(
            &Edit::AddService {
                id: "svc-2".into(),
                service: crate::service("Second", "CM009"),
            },
            author,
            3,
        )
        .expect("edit");
    let handle = node.handle();

    // The last change first: it waits.
    let outcome = handle
        .apply_remote(vec![second.encode()], None)
        .await
        .expect("apply");
    assert_eq!((outcome.applied, outcome.pending), (0, 1));
    assert_eq!(handle.status().await.expect("status").pending_changes, 1);
    assert_eq!(node.services().await.len(), 0);

    // The middle one: still waiting for the genesis.
    let outcome = handle
        .apply_remote(vec![first.encode()], None)
        .await
        .expect("apply");
    assert_eq!(outcome.applied, 0);
    // The genesis releases everything, in order.
    let outcome = handle
        .apply_remote(vec![genesis.encode()], None)
        .await
        .expect("apply");
    assert_eq!(outcome.applied, 3);
    let status = handle.status().await.expect("status");
    assert_eq!(status.pending_changes, 0);
    assert_eq!(node.services().await.len(), 2);
    // Sent again: duplicates, nothing new.
    let outcome = handle
        .apply_remote(vec![genesis.encode(), second.encode()], None)
        .await
        .expect("apply");
    assert_eq!((outcome.applied, outcome.duplicates), (0, 2));
    // And all of it is durable.
    node.restart().await;
    assert_eq!(node.services().await.len(), 2);
    node.stop().await;
}

#[cfg(feature = "quic")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_sync_over_quic() {
    use passerelle_node::network::NetworkConfig;
    use std::time::Duration;

    let quic = |peers| {
        move |config: &mut passerelle_node::config::Config| {
            config.network = Some(NetworkConfig {
                listen: vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse().expect("multiaddr")],
                peers,
                sync_interval: Duration::from_secs(1),
                mdns: false,
                ..Default::default()
            });
        }
    };
    let mut first = TestNode::init("ONG QUIC A", quic(vec![]));
    let mut second = TestNode::init("ONG QUIC B", quic(vec![]));
    found_network(&[&first, &second], "1");
    first.start().await;
    let address = first.listen_addr().await;
    assert!(address.to_string().contains("quic-v1"), "{address}");
    if let Some(network) = second.config.network.as_mut() {
        network.peers = vec![address];
    }
    second.start().await;
    first
        .handle()
        .edit(add("Par QUIC", "CM005"))
        .await
        .expect("edit");
    let mut nodes = vec![first, second];
    wait_converged(&nodes, 2).await;
    assert_eq!(nodes[1].services().await.len(), 1);
    for node in &mut nodes {
        node.stop().await;
    }
}

/// A loopback port that was free a moment ago (for a node that must come back on the
/// same address).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_peer_is_redialled_and_catches_up() {
    use passerelle_node::network::NetworkConfig;
    use std::time::Duration;

    let port = free_port();
    let address: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().expect("addr");
    let listen = address.clone();
    let mut hub = TestNode::init("Plateforme régionale", move |config| {
        config.network = Some(NetworkConfig {
            listen: vec![listen],
            peers: vec![],
            sync_interval: Duration::from_secs(1),
            mdns: false,
            ..Default::default()
        });
    });
    let mut spoke = TestNode::init_networked("ONG de terrain", vec![address]);
    found_network(&[&hub, &spoke], "1");
    hub.start().await;
    spoke.start().await;
    let mut nodes = vec![hub, spoke];
    wait_converged(&nodes, 2).await;

    // The hub goes down; the spoke keeps working and keeps redialling.
    nodes[0].stop().await;
    nodes[1]
        .handle()
        .edit(add("Pendant la coupure", "CM010"))
        .await
        .expect("edit");
    // The hub comes back on the same address: the spoke finds it again by itself.
    nodes[0].start().await;
    wait_converged(&nodes, 2).await;
    assert_eq!(nodes[0].services().await.len(), 1);
    let hub = nodes[0].handle();
    wait_for("the spoke to be connected again", || {
        let hub = hub.clone();
        async move { !hub.network_status().peers.is_empty() }
    })
    .await;
    for node in &mut nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_honest_peers_keep_a_good_gossip_score_and_are_never_cut_off() {
    // gossipsub's defaults penalise a mesh peer that delivers few messages (after 5 s) and
    // peers sharing an address; on a quiet network of partners (here all on 127.0.0.1) that
    // would push honest peers below the graylist threshold, where the node cuts them off.
    let nodes =
        passerelle_tests::spawn_line(&["Délégation Littoral", "ONG Avenir", "CICR Garoua"]).await;
    wait_converged(&nodes, 3).await;
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    nodes[2]
        .handle()
        .edit(add("Après le silence", "CM005"))
        .await
        .expect("edit");
    wait_converged(&nodes, 3).await;
    for node in &nodes {
        let status = node.handle().network_status();
        assert_eq!(status.peers_cut_off, 0, "{}", node.name);
        for peer in &status.peers {
            assert!(peer.score.unwrap_or(0.0) >= 0.0, "{}: {peer:?}", node.name);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_link_exchanges_digests_only_and_a_difference_lists_heads() {
    let mut nodes = spawn_line(&["ONG A", "ONG B"]).await;
    for node in &nodes {
        node.handle()
            .edit(add(&format!("Service de {}", node.name), "CM005"))
            .await
            .expect("edit");
    }
    wait_converged(&nodes, 2).await;
    // Idle: rounds every second (the tests' interval), each settled by a digest, and made
    // by one side only (a round either side makes keeps both in step).
    let rounds = |nodes: &[TestNode]| {
        let (a, b) = (
            nodes[0].handle().network_status(),
            nodes[1].handle().network_status(),
        );
        (
            a.sync_rounds_in_step + b.sync_rounds_in_step,
            a.sync_rounds_listed + b.sync_rounds_listed,
            (a.sync_rounds_in_step, b.sync_rounds_in_step),
        )
    };
    // The rounds that follow convergence may still list heads (the last changes' rounds).
    let settled = rounds(&nodes).0;
    wait_for("the link to settle", || async {
        rounds(&nodes).0 >= settled + 2
    })
    .await;
    let (in_step_before, listed_before, _) = rounds(&nodes);
    let started = std::time::Instant::now();
    wait_for("six idle rounds settled by a digest", || async {
        rounds(&nodes).0 >= in_step_before + 6
    })
    .await;
    let (in_step, listed, (by_first, by_second)) = rounds(&nodes);
    assert_eq!(listed, listed_before, "no idle round listed heads");
    // Six rounds at one a second by one side take about six seconds; had both sides
    // made their own, they would have taken about three.
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(4_500),
        "{} rounds in {:?}: both sides made their own ({by_first} and {by_second})",
        in_step - in_step_before,
        started.elapsed()
    );
    // A node that falls behind (its link cut while the other edits) is found to differ by
    // the digest and catches up by listing its heads.
    nodes[1].stop().await;
    nodes[0]
        .handle()
        .edit(add("Service ajouté hors ligne", "CM002"))
        .await
        .expect("edit");
    nodes[1].start().await;
    let second = &nodes[1];
    wait_for("the restarted node to catch up", || async {
        second.services().await.len() == 3
    })
    .await;
    // Its counters started again at zero with the restart.
    let after = nodes[1].handle().network_status();
    assert!(
        after.sync_rounds_listed >= 1,
        "the difference was found and heads listed: {after:?}"
    );
    for node in &mut nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_an_older_release_is_asked_by_listing_heads() {
    let mut nodes: Vec<TestNode> = ["ONG A", "ONG B"]
        .iter()
        .map(|name| TestNode::init_networked(name, vec![]))
        .collect();
    if let Some(network) = nodes[1].config.network.as_mut() {
        network.without_digest = true;
    }
    found_network(&nodes.iter().collect::<Vec<_>>(), "1/2");
    passerelle_tests::start_line(&mut nodes).await;
    for node in &nodes {
        node.handle()
            .edit(add(&format!("Service de {}", node.name), "CM005"))
            .await
            .expect("edit");
    }
    wait_converged(&nodes, 2).await;
    let first = &nodes[0];
    let before = first.handle().network_status();
    wait_for("three more rounds with the older node", || async {
        first.handle().network_status().sync_rounds_listed >= before.sync_rounds_listed + 3
    })
    .await;
    let after = first.handle().network_status();
    assert_eq!(
        after.sync_rounds_in_step, 0,
        "the older node was never asked by digest after it said it does not speak it: {after:?}"
    );
    // Changes still flow both ways.
    nodes[1]
        .handle()
        .edit(add("Service de l'ancienne version", "CM002"))
        .await
        .expect("edit");
    wait_for("the older node's change to arrive", || async {
        first.services().await.len() == 3
    })
    .await;
    for node in &mut nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_dials_its_partners_from_the_address_book() {
    // The first listens on a fixed port, as a partner's server does; the second knows it
    // only from its configuration, once.
    let port = free_port();
    let mut nodes: Vec<TestNode> = ["Délégation Littoral", "ONG Avenir"]
        .iter()
        .map(|name| TestNode::init_networked(name, vec![]))
        .collect();
    if let Some(network) = nodes[0].config.network.as_mut() {
        network.listen = vec![
            format!("/ip4/127.0.0.1/tcp/{port}")
                .parse()
                .expect("multiaddr"),
        ];
    }
    found_network(&nodes.iter().collect::<Vec<_>>(), "1/2");
    passerelle_tests::start_line(&mut nodes).await;
    nodes[0]
        .handle()
        .edit(add("Placement en emploi", "CM005"))
        .await
        .expect("edit");
    wait_converged(&nodes, 2).await;
    let first_key = nodes[0].handle().key_id();
    let second = nodes[1].handle();
    wait_for("the partner's addresses to be kept", || {
        let second = second.clone();
        async move {
            second
                .remembered_addresses()
                .await
                .is_ok_and(|book| book.iter().any(|p| p.key == first_key))
        }
    })
    .await;
    // The second stops, forgets its configured peer, and starts again while the first
    // edits: it finds the first from its address book alone.
    nodes[1].stop().await;
    if let Some(network) = nodes[1].config.network.as_mut() {
        network.peers.clear();
    }
    nodes[0]
        .handle()
        .edit(add("Formation agricole", "CM005"))
        .await
        .expect("edit");
    nodes[1].start().await;
    let second = &nodes[1];
    wait_for(
        "the restarted node to reach its partner and catch up",
        || async { second.services().await.len() == 2 },
    )
    .await;
    assert!(
        second
            .handle()
            .network_status()
            .peers
            .iter()
            .any(|p| p.org_id.as_deref() == Some(first_key.to_string().as_str())),
        "connected to the partner"
    );
    for node in &mut nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_is_ahead_is_not_sent_the_history_it_holds() {
    let mut nodes = spawn_line(&["ONG A", "ONG B"]).await;
    for n in 0..20 {
        nodes[0]
            .handle()
            .edit(add(&format!("Service {n}"), "CM005"))
            .await
            .expect("edit");
    }
    wait_converged(&nodes, 2).await;
    // The second is away while the first edits once more: on its return the first is
    // ahead on its own document, and each asks the other.
    nodes[1].stop().await;
    nodes[0]
        .handle()
        .edit(add("Service ajouté pendant l'absence", "CM005"))
        .await
        .expect("edit");
    let received_before = nodes[0].handle().network_status().sync_bytes_received;
    nodes[1].start().await;
    let second = &nodes[1];
    wait_for("the second to catch up", || async {
        second.services().await.len() == 21
    })
    .await;
    wait_converged(&nodes, 2).await;
    // Let the rounds that follow the return run.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let received = nodes[0].handle().network_status().sync_bytes_received - received_before;
    // Twenty-one changes of its own document (about 700 bytes each) would come back if
    // the second served "everything after the heads it knows" knowing none of them.
    assert!(
        received < 3_000,
        "the first was sent {received} bytes of changes it already held"
    );
    for node in &mut nodes {
        node.stop().await;
    }
}

/// A founder that starts late lacks most of the network document (an operation per
/// admission): it comes whole and compressed, with one signature per author, each
/// operation still checked against the membership; the joiner then serves it on to a
/// third node from what it holds (attested operations beside their author's signed one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_founder_that_starts_late_receives_the_network_document_compact_and_serves_it_on() {
    use passerelle_node::membership::{AdmissionRequest, SignedRequest};
    use passerelle_node::node::Decision;

    const ADMISSIONS: usize = 80;
    let mut seed = TestNode::init_networked("Réseau Littoral", vec![]);
    let mut joiner = TestNode::init_networked("ONG Avenir", vec![]);
    let mut third = TestNode::init_networked("CICR", vec![]);
    let network = found_network(&[&seed, &joiner, &third], "1");
    seed.start().await;
    for o in 0..ADMISSIONS {
        let secret = SigningSecret::generate().expect("key");
        let request = AdmissionRequest {
            network,
            org: secret.org_id(),
            name: format!("Association {o}"),
            message: String::new(),
            created: 1,
        };
        let signed = SignedRequest::sign(&request, &secret).expect("request");
        seed.handle()
            .admission_received(serde_json::to_vec(&signed).expect("json"), secret.key_id())
            .await
            .expect("request received");
        seed.handle()
            .decide(Decision::Approve {
                org: secret.org_id(),
            })
            .await
            .expect("admit");
    }
    let network_doc = DocumentId::network(&network);
    let operations = seed.handle().export(&network_doc).await.expect("export");
    assert!(operations.len() > ADMISSIONS, "{}", operations.len());
    let one_by_one: usize = operations.iter().map(Vec::len).sum();

    if let Some(config) = joiner.config.network.as_mut() {
        config.peers = vec![seed.listen_addr().await];
    }
    joiner.start().await;
    let pair = [seed, joiner];
    wait_converged(&pair, 2).await;
    let status = pair[1].handle().status().await.expect("status");
    assert_eq!(
        status.rejected_changes, 0,
        "{:?}",
        status.rejected_by_reason
    );
    let members = |node: &TestNode| {
        let handle = node.handle();
        async move {
            let mut members: Vec<String> = handle
                .membership()
                .await
                .expect("membership")
                .members
                .into_iter()
                .map(|m| m.org.to_string())
                .collect();
            members.sort();
            members
        }
    };
    assert_eq!(members(&pair[1]).await.len(), ADMISSIONS + 3);
    assert_eq!(members(&pair[1]).await, members(&pair[0]).await);
    // Whole and compressed: well under the operations one by one.
    let received = pair[1].handle().network_status().sync_bytes_received;
    assert!(
        received * 2 < one_by_one as u64,
        "{received} bytes received for {one_by_one} bytes of operations"
    );
    // Held attested (no signature of their own) but for each author's latest.
    let held: Vec<SignedChange> = pair[1]
        .handle()
        .export(&network_doc)
        .await
        .expect("export")
        .iter()
        .map(|raw| SignedChange::decode(raw).expect("decodes"))
        .collect();
    assert_eq!(held.len(), operations.len());
    let attested = held.iter().filter(|c| !c.is_signed()).count();
    // Every admission but the last (the seed's latest, signed) held attested.
    assert!(
        attested >= ADMISSIONS - 1,
        "{attested} of {} held attested",
        held.len()
    );
    assert!(SignedChange::verify_all(&held).is_ok());

    // The seed goes; the third founder meets only the joiner and gets it from there.
    let [mut seed, joiner] = pair;
    seed.stop().await;
    if let Some(config) = third.config.network.as_mut() {
        config.peers = vec![joiner.listen_addr().await];
    }
    third.start().await;
    let pair = [joiner, third];
    wait_converged(&pair, 3).await;
    let status = pair[1].handle().status().await.expect("status");
    assert_eq!(
        status.rejected_changes, 0,
        "{:?}",
        status.rejected_by_reason
    );
    assert_eq!(members(&pair[1]).await, members(&pair[0]).await);
    for mut node in pair {
        node.stop().await;
    }
}
