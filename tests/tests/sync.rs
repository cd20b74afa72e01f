//! Sync between real nodes over libp2p on loopback.

use passerelle_tests::{TestNode, spawn_line, wait_converged, wait_for};

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
    let mut nodes = spawn_line(&["Délégation Littoral", "ONG Avenir"]).await;
    for i in 0..20 {
        nodes[i % 2]
            .handle()
            .edit(add(&format!("Service {i}"), "CM005"))
            .await
            .expect("edit");
    }
    wait_converged(&nodes, 2).await;
    let mut late = TestNode::init_networked("CICR", vec![nodes[1].listen_addr().await]);
    late.start().await;
    nodes.push(late);
    wait_converged(&nodes, 3).await;
    assert_eq!(nodes[2].services().await.len(), 20);
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
