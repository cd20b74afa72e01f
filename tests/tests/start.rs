//! Start from snapshots: a node takes each document from the snapshot that holds all its
//! stored changes and loads Automerge only when a document's history is needed; a change
//! stored after the last snapshot is found and the document rebuilt; `--verify-store`
//! rebuilds everything from verified signed changes; the answers are the same each way.

use passerelle_node::envelope::{DocumentId, SignedChange};
use passerelle_node::store::Store;
use passerelle_tests::{TestNode, replay_outside, sign_last_change};

use super::add;

/// A node that published one service and stopped (its snapshot written), its document id
/// and the document's signed changes.
async fn stopped_with_one_service(name: &str) -> (TestNode, DocumentId, Vec<Vec<u8>>) {
    let mut node = TestNode::init(name, |_| {});
    node.start().await;
    let handle = node.handle();
    handle
        .edit(add("Formation couture", "CM005"))
        .await
        .expect("edit");
    let own = DocumentId::organisation(&handle.org_id());
    let exported = handle.export(&own).await.expect("export");
    node.stop().await;
    (node, own, exported)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_starts_from_its_snapshots_and_loses_no_change_stored_after_them() {
    let (mut node, own, exported) = stopped_with_one_service("Centre Espoir").await;

    // A clean stop leaves a snapshot holding every change: the next start takes it.
    node.start().await;
    let handle = node.handle();
    let status = handle.status().await.expect("status");
    assert_eq!((status.start.from_snapshots, status.start.rebuilt), (1, 0));
    let before = handle.organisation(None).await.expect("organisation");
    assert_eq!(before.record.services.len(), 1);
    // The document's history is loaded when first needed; edits follow on it.
    handle
        .edit(add("Soutien psychosocial", "CM005"))
        .await
        .expect("edit after a lazy load");
    let history = handle.history(None, 100).await.expect("history");
    assert_eq!(history.len(), exported.len() + 1);
    let exported = handle.export(&own).await.expect("export");
    node.stop().await;

    // A signed change stored after the last snapshot (as a crash between the store's write
    // and the next snapshot leaves it): the count is ahead, the document is rebuilt.
    let (identity, mut doc) = replay_outside(&node, &exported);
    {
        use automerge::transaction::Transactable;
        use passerelle_node::document::Replica;
        let am = doc.automerge();
        let (_, profile) = automerge::ReadDoc::get(am, automerge::ROOT, "profile")
            .expect("read")
            .expect("profile");
        am.put(&profile, "name", "Centre Espoir de Douala")
            .expect("put");
    }
    let late = sign_last_change(&identity, &mut doc, "renamed while the node was down");
    {
        let store = Store::open(&node.config.store_dir()).expect("store");
        let change = SignedChange::decode(&late).expect("decode");
        change.verify().expect("signed");
        store.put_changes(&[change]).expect("put");
    }
    node.start().await;
    let handle = node.handle();
    let status = handle.status().await.expect("status");
    assert_eq!((status.start.from_snapshots, status.start.rebuilt), (0, 1));
    let view = handle.organisation(None).await.expect("organisation");
    assert_eq!(view.record.profile.name, "Centre Espoir de Douala");
    assert_eq!(view.record.services.len(), 2);
    node.stop().await;

    // The rebuilt document got a fresh snapshot at shutdown: taken from it again.
    node.start().await;
    let status = node.handle().status().await.expect("status");
    assert_eq!((status.start.from_snapshots, status.start.rebuilt), (1, 0));
    let fast = node
        .handle()
        .organisation(None)
        .await
        .expect("organisation");
    node.stop().await;

    // --verify-store: everything verified and rebuilt, the same answer.
    node.config.verify_store = true;
    node.start().await;
    let status = node.handle().status().await.expect("status");
    assert_eq!((status.start.from_snapshots, status.start.rebuilt), (0, 1));
    let verified = node
        .handle()
        .organisation(None)
        .await
        .expect("organisation");
    assert_eq!(verified.record, fast.record);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_whose_document_part_is_lost_or_replaced_is_rebuilt_when_first_needed() {
    let (mut node, _, exported) = stopped_with_one_service("Association Retour Digne").await;

    // The snapshot's record part stays; its Automerge document part is lost (a damaged
    // disk, or a stop between the two writes leaves one of other heads).
    {
        let store = Store::open(&node.config.store_dir()).expect("store");
        let documents = store
            .database()
            .open_tree("snapshot-documents")
            .expect("tree");
        assert!(!documents.is_empty(), "snapshots are written in two parts");
        documents.clear().expect("clear");
        store.flush().expect("flush");
    }
    node.start().await;
    let handle = node.handle();
    let status = handle.status().await.expect("status");
    // The record part still answers at start…
    assert_eq!((status.start.from_snapshots, status.start.rebuilt), (1, 0));
    assert_eq!(
        handle
            .organisation(None)
            .await
            .expect("organisation")
            .record
            .services
            .len(),
        1
    );
    // …and the history, first needed by an edit, is rebuilt from the signed changes.
    handle
        .edit(add("Soutien psychosocial", "CM005"))
        .await
        .expect("edit after the rebuild");
    let history = handle.history(None, 100).await.expect("history");
    assert_eq!(history.len(), exported.len() + 1);
    node.stop().await;

    // The edit's snapshot at shutdown is whole again.
    node.start().await;
    let status = node.handle().status().await.expect("status");
    assert_eq!((status.start.from_snapshots, status.start.rebuilt), (1, 0));
    let view = node
        .handle()
        .organisation(None)
        .await
        .expect("organisation");
    assert_eq!(view.record.services.len(), 2);
    assert_eq!(
        node.handle()
            .history(None, 100)
            .await
            .expect("history")
            .len(),
        exported.len() + 1
    );
    node.stop().await;
}
