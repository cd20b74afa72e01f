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
