//! Backups in Automerge's format with signed heads (`export automerge` / `import automerge`)
//! between real nodes: exported by one, verified from files, merged by another through the
//! control API like received changes.

use passerelle_node::backup::{self, DocumentBackup};
use passerelle_node::control::Request;
use passerelle_node::document::OrganisationDocument;
use passerelle_node::envelope::DocumentId;
use passerelle_node::identity::SigningSecret;
use passerelle_node::model::Profile;
use passerelle_node::node::RemoteOutcome;
use passerelle_tests::{TestNode, found_network, start_line, wait_converged};

use crate::add;

async fn export_to(node: &TestNode, dir: &std::path::Path) -> usize {
    let handle = node.handle();
    let documents: Vec<DocumentId> = handle.documents().await.expect("documents");
    for document in &documents {
        handle
            .backup(document.clone())
            .await
            .expect("backup")
            .write(dir)
            .expect("write backup");
    }
    documents.len()
}

async fn merge(node: &TestNode, backup: &DocumentBackup) -> RemoteOutcome {
    let changes = backup
        .changes
        .iter()
        .map(|c| backup::base64_encode(c))
        .collect();
    node.client()
        .await
        .call(&Request::Merge { changes })
        .await
        .expect("merge")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_restores_the_network_from_a_partners_backup_and_refuses_a_strangers() {
    let mut nodes: Vec<TestNode> = ["Délégation Littoral", "ONG Avenir", "CICR Garoua"]
        .iter()
        .map(|name| TestNode::init_networked(name, vec![]))
        .collect();
    found_network(&nodes.iter().collect::<Vec<_>>(), "1/2");
    // The third member never meets the others: it only gets their backup.
    let mut offline = nodes.pop().expect("third node");
    start_line(&mut nodes).await;
    for i in 0..6 {
        nodes[i % 2]
            .handle()
            .edit(add(&format!("Service {i}"), "CM005"))
            .await
            .expect("edit");
    }
    wait_converged(&nodes, 2).await;

    let dir = tempfile::tempdir().expect("temporary folder");
    let exported = export_to(&nodes[0], dir.path()).await;
    assert_eq!(exported, 3, "the network document and two organisations");
    let read = backup::read_dir(dir.path()).expect("read backup");
    assert_eq!(read.len(), 3);
    for backup in &read {
        let verified = backup.verify().expect("verifies");
        assert_eq!(verified.exported_by, nodes[0].handle().key_id());
        // The standard file opens with Automerge alone.
        let opened = automerge::Automerge::load(&backup.automerge).expect("standard format");
        assert_eq!(opened.get_changes(&[]).len(), verified.changes);
    }

    offline.start().await;
    let before = offline.heads().await;
    for backup in &read {
        let outcome = merge(&offline, backup).await;
        assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
    }
    // Every document of the backup is now held at the backup's heads (plus its own).
    let restored = offline.heads().await;
    for document in nodes[0].heads().await {
        assert!(restored.contains(&document), "{:?}", document.document);
    }
    assert_eq!(restored.len(), 4);
    assert_eq!(offline.services().await, nodes[0].services().await);
    assert_eq!(offline.services().await.len(), 6);
    // Merging the same backup again changes nothing.
    let again = merge(&offline, &read[1]).await;
    assert_eq!(again.applied, 0);
    assert!(again.duplicates > 0);
    assert_ne!(before, offline.heads().await);

    // A stranger's well-signed document verifies as a file but is refused by the node's
    // rules when merged: nothing of it is stored.
    let stranger = SigningSecret::generate().expect("key");
    let (document, genesis) =
        OrganisationDocument::create(&stranger, Profile::named("Inconnu"), 1).expect("document");
    let forged = DocumentBackup::build(document.id().clone(), vec![genesis.encode()], &stranger, 2)
        .expect("build");
    forged.verify().expect("its signatures are valid");
    let heads = offline.heads().await;
    let outcome = merge(&offline, &forged).await;
    assert_eq!(outcome.applied, 0);
    assert_eq!(outcome.rejected.len(), 1);
    assert_eq!(outcome.rejected[0].code, "not_member");
    assert_eq!(offline.heads().await, heads);

    // A backup altered on disk is refused before anything is merged.
    let stem = DocumentBackup::file_stem(&read[1].heads.document);
    let path = dir.path().join(format!("{stem}.changes"));
    let mut bytes = std::fs::read(&path).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, bytes).expect("write");
    let altered = backup::read_dir(dir.path());
    let refused = match altered {
        Err(e) => e.to_string(),
        Ok(backups) => backups
            .iter()
            .find_map(|b| b.verify().err())
            .map(|e| e.to_string())
            .expect("the altered backup is refused"),
    };
    assert!(
        refused.contains(&stem) || refused.contains("org/"),
        "{refused}"
    );

    offline.stop().await;
    for node in &mut nodes {
        node.stop().await;
    }
}
