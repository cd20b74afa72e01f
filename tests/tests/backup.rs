//! Backups in Automerge's format with signed heads (`export automerge` / `import automerge`)
//! between real nodes: exported by one, verified from files, merged by another through the
//! control API like received changes.

use std::path::Path;

use passerelle_node::api;
use passerelle_node::archive::{Exported, Imported};
use passerelle_node::backup::{self, DocumentBackup};
use passerelle_node::control::ClientError;
use passerelle_node::document::OrganisationDocument;
use passerelle_node::identity::SigningSecret;
use passerelle_node::model::Profile;
use passerelle_tests::{TestNode, spawn_line_holding_back_last, wait_converged};

use crate::add;

async fn import(node: &TestNode, dir: &Path) -> Result<Imported, ClientError> {
    node.client()
        .await
        .call(api::ImportAutomerge {
            dir: dir.to_owned(),
            dry_run: false,
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_restores_the_network_from_a_partners_backup_and_refuses_a_strangers() {
    // The third member never meets the others: it only gets their backup.
    let (mut nodes, mut offline) =
        spawn_line_holding_back_last(&["Délégation Littoral", "ONG Avenir", "CICR Garoua"]).await;
    for i in 0..6 {
        nodes[i % 2]
            .handle()
            .edit(add(&format!("Service {i}"), "CM005"))
            .await
            .expect("edit");
    }
    wait_converged(&nodes, 2).await;

    let dir = tempfile::tempdir().expect("temporary folder");
    let exported: Vec<Exported> = nodes[0]
        .client()
        .await
        .call(api::ExportAutomerge {
            dir: dir.path().to_owned(),
        })
        .await
        .expect("export");
    assert_eq!(
        exported.len(),
        3,
        "the network document and two organisations"
    );
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
    let imported = import(&offline, dir.path()).await.expect("import");
    assert_eq!(imported.verified.len(), 3);
    assert!(
        imported.outcome.rejected.is_empty(),
        "{:?}",
        imported.outcome.rejected
    );
    // Every document of the backup is now held at the backup's heads (plus its own).
    let restored = offline.heads().await;
    for document in nodes[0].heads().await {
        assert!(restored.contains(&document), "{:?}", document.document);
    }
    assert_eq!(restored.len(), 4);
    assert_eq!(offline.services().await, nodes[0].services().await);
    assert_eq!(offline.services().await.len(), 6);
    // Merging the same backup again changes nothing.
    let again = import(&offline, dir.path()).await.expect("import").outcome;
    assert_eq!(again.applied, 0);
    assert_eq!(
        again.duplicates,
        imported.outcome.applied + imported.outcome.duplicates
    );
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
    let strangers = tempfile::tempdir().expect("temporary folder");
    forged.write(strangers.path()).expect("write");
    let outcome = import(&offline, strangers.path())
        .await
        .expect("import")
        .outcome;
    assert_eq!(outcome.applied, 0);
    assert_eq!(outcome.rejected.len(), 1);
    assert_eq!(
        outcome.rejected[0].code,
        passerelle_node::node::RejectionCode::NotMember
    );
    assert_eq!(offline.heads().await, heads);

    // A backup altered on disk is refused before anything is merged.
    let stem = DocumentBackup::file_stem(&read[1].heads.document);
    let path = dir.path().join(format!("{stem}.changes"));
    let mut bytes = std::fs::read(&path).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, bytes).expect("write");
    let refused = import(&offline, dir.path())
        .await
        .expect_err("an altered backup is refused");
    assert!(refused.to_string().contains("nothing merged"), "{refused}");
    let relative = offline
        .client()
        .await
        .call(api::ImportAutomerge {
            dir: "backup".into(),
            dry_run: true,
        })
        .await
        .expect_err("a relative path is refused");
    assert!(relative.to_string().contains("absolute"), "{relative}");

    offline.stop().await;
    for node in &mut nodes {
        node.stop().await;
    }
}
