//! A damaged store, found and repaired: damage that start does not read is found by the
//! background check and named in `status`; `repair` keeps what reads and verifies and the
//! node fetches the rest from its peers; a database that no longer opens is refused with
//! what to do, and rebuilt from its peers; a damaged page table is rebuilt by itself.

use std::path::Path;
use std::time::Duration;

use passerelle_node::node::StoreCheckState;
use passerelle_node::repair::{RepairOptions, repair};
use passerelle_node::store::Store;
use passerelle_tests::{TestNode, spawn_line, wait_converged, wait_for};

use crate::add;

/// Two members in a line, three services each, converged.
async fn two_members_with_services() -> Vec<TestNode> {
    let nodes = spawn_line(&["Délégation Littoral", "ONG Avenir"]).await;
    for (node, name) in nodes.iter().zip(["Formation", "Écoute"]) {
        for i in 0..3 {
            node.handle()
                .edit(add(&format!("{name} {i}"), "CM005"))
                .await
                .expect("edit");
        }
    }
    wait_converged(&nodes, 2).await;
    nodes
}

/// Overwrites the value of the first change record of `document` in the stopped store with
/// bytes of the same length: damage the disk could do and that sled's own checksums would
/// not see (the value is rewritten through sled).
fn damage_a_change(store_dir: &Path, document: &str) {
    let store = Store::open(store_dir).expect("open");
    let changes = store.database().open_tree("changes").expect("tree");
    let mut prefix = document.as_bytes().to_vec();
    prefix.push(0);
    let (key, value) = changes
        .scan_prefix(&prefix)
        .next()
        .expect("a change of the document")
        .expect("readable");
    let mut broken = value.to_vec();
    let middle = broken.len() / 2;
    broken[middle] ^= 0x5a;
    broken[middle + 1] ^= 0xa5;
    changes.insert(key, broken).expect("write");
    store.flush().expect("flush");
}

async fn wait_check(
    node: &TestNode,
    state: StoreCheckState,
) -> passerelle_node::node::StoreCheckStatus {
    let handle = node.handle();
    wait_for("the background store check", || {
        let handle = handle.clone();
        async move {
            handle
                .status()
                .await
                .is_ok_and(|s| s.store_check.state == state)
        }
    })
    .await;
    node.handle().status().await.expect("status").store_check
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latent_damage_is_found_after_start_and_repaired_from_peers() {
    let mut nodes = two_members_with_services().await;
    let first = passerelle_node::envelope::DocumentId::organisation(&nodes[0].handle().org_id())
        .to_string();
    let own = passerelle_node::envelope::DocumentId::organisation(&nodes[1].handle().org_id())
        .to_string();
    nodes[1].stop().await;
    let store_dir = nodes[1].config.store_dir();
    damage_a_change(&store_dir, &first);
    damage_a_change(&store_dir, &own);

    // It starts (what start reads is sound), and the check names both documents.
    nodes[1].config.store_check_after = Some(Duration::ZERO);
    nodes[1].start().await;
    let check = wait_check(&nodes[1], StoreCheckState::Damaged).await;
    let named = check.report.damaged_documents();
    assert!(named.contains(&first) && named.contains(&own), "{check:?}");
    nodes[1].stop().await;

    let report = repair(&nodes[1].config, &RepairOptions::default()).expect("repair");
    assert!(report.opened && !report.sound);
    assert_eq!(report.documents_to_fetch, {
        let mut both = vec![first.clone(), own.clone()];
        both.sort();
        both
    });
    assert!(report.own_document_awaited);
    assert!(
        Path::new(&report.damaged_store).join("db").exists(),
        "the damaged store is kept"
    );

    // Restarted, it takes both documents back from its peer; the store is sound.
    nodes[1].start().await;
    wait_converged(&nodes, 2).await;
    assert_eq!(nodes[1].services().await.len(), 6);
    nodes[1]
        .handle()
        .edit(add("Après la réparation", "CM005"))
        .await
        .expect("its own document is back: it edits again");
    wait_converged(&nodes, 2).await;
    // Checked again at the next start: sound, every document there.
    nodes[1].restart().await;
    let check = wait_check(&nodes[1], StoreCheckState::Sound).await;
    assert_eq!(check.report.documents, 3, "{check:?}");
    for node in &mut nodes {
        node.stop().await;
    }
}

/// Flips one bit of `file` at `offset`.
fn flip(file: &Path, offset: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .expect("open");
    let mut byte = [0u8];
    f.seek(SeekFrom::Start(offset)).expect("seek");
    f.read_exact(&mut byte).expect("read");
    byte[0] ^= 0x10;
    f.seek(SeekFrom::Start(offset)).expect("seek");
    f.write_all(&byte).expect("write");
    f.sync_all().expect("sync");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_no_longer_opens_is_refused_with_what_to_do_and_rebuilt_from_peers() {
    let mut nodes = two_members_with_services().await;
    nodes[1].stop().await;
    let store_dir = nodes[1].config.store_dir();
    // A recovery key made at init and not yet registered: the seed carries it.
    let recovery = passerelle_node::identity::SigningSecret::generate()
        .expect("key")
        .key_id();
    Store::open(&store_dir)
        .expect("store")
        .set_recovery_pending(Some(&recovery))
        .expect("pending");
    // A flipped bit in the log where sled reads it at open (found by trying, on copies).
    let probe = tempfile::tempdir().expect("dir");
    let len = std::fs::metadata(store_dir.join("db")).expect("db").len();
    let offset = (0..len)
        .step_by(61)
        .find(|offset| {
            let copy = probe.path().join(format!("s{offset}"));
            passerelle_tests::copy_folder(&store_dir, &copy).expect("copy");
            flip(&copy.join("db"), *offset);
            let opened = Store::open(&copy);
            matches!(
                opened,
                Err(passerelle_node::store::StoreError::Damaged { .. })
            )
        })
        .expect("an offset sled refuses");
    flip(&store_dir.join("db"), offset);

    let refused = passerelle_node::runtime::start(nodes[1].config.clone())
        .await
        .expect_err("a damaged database is refused");
    let message = refused.to_string();
    assert!(
        message.contains("damaged")
            && message.contains("passerelle repair")
            && message.contains("db"),
        "{message}"
    );

    let report = repair(&nodes[1].config, &RepairOptions::default()).expect("repair");
    assert!(!report.opened);
    assert!(report.own_document_awaited);
    assert_eq!(
        Store::open(&store_dir)
            .expect("repaired store")
            .recovery_pending()
            .expect("read"),
        Some(recovery),
        "the recovery key still to register survives the rebuild"
    );
    nodes[1].start().await;
    wait_converged(&nodes, 2).await;
    assert_eq!(nodes[1].services().await.len(), 6);
    for node in &mut nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_page_table_is_rebuilt_from_the_log() {
    let mut node = TestNode::init("Centre Espoir", |_| {});
    node.start().await;
    for i in 0..20 {
        node.handle()
            .edit(add(&format!("Service {i}"), "CM005"))
            .await
            .expect("edit");
    }
    node.stop().await;
    let store_dir = node.config.store_dir();
    let snapshot = std::fs::read_dir(&store_dir)
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("snap."))
        })
        .expect("sled's page table");
    flip(&snapshot, 40);
    node.start().await;
    assert_eq!(node.services().await.len(), 20);
    assert!(
        store_dir
            .join(passerelle_node::store::DAMAGED_SNAPSHOTS_DIR)
            .exists()
    );
    node.stop().await;
}
