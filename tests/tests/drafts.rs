//! A coordinator's drafts of a historical mapping between real nodes: published in the
//! coordinator's own document, kept apart from the directory, claimed by the organisation
//! into its own document and then hidden everywhere; a forged draft refused by every node.

use automerge::transaction::Transactable;
use passerelle_node::cartography::import::{draft_id, entries_of_rows, plan_entries, read_csv};
use passerelle_node::directory::SearchQuery;
use passerelle_node::document::{Edit, Replica};
use passerelle_node::envelope::DocumentId;
use passerelle_node::model::{Claim, Draft};
use passerelle_tests::{
    TestNode, found_network, replay_outside, sign_last_change, start_line, wait_converged, wait_for,
};

const MAPPING: &str = "organisation,sigle,type,service,dimension,categorie,region,departement,ville,cout,capacite\n\
    ONG Avenir,ONGA,ong,Écoute psychologique,psychosociale,counselling,CM010,CM010001,Buea,gratuit,disponible\n\
    ONG Avenir,ONGA,ong,Groupes de parole,psychosociale,counselling,CM010,,Limbe,gratuit,complet\n\
    Centre Espoir,CE,ong,Formation en couture,économique,vocational_training,CM004,,Bamenda,5000 FCFA,disponible\n";

fn draft(name: &str) -> Draft {
    let rows = read_csv(MAPPING, &Default::default())
        .expect("mapping")
        .rows;
    let own: Vec<_> = rows.iter().filter(|r| r.organisation == name).collect();
    Draft {
        name: name.into(),
        entries: entries_of_rows(&own),
        source: Some("historique.csv".into()),
        published: 1,
    }
}

/// A change of `owner`'s document made outside the node's checks and signed with its key:
/// a draft whose office lies in a region that does not exist.
fn forged_draft(owner: &TestNode, changes: Vec<Vec<u8>>) -> Vec<u8> {
    let (identity, mut doc) = replay_outside(owner, &changes);
    let am = doc.automerge();
    let drafts = am
        .put_object(automerge::ROOT, "drafts", automerge::ObjType::Map)
        .expect("drafts");
    let draft = am
        .put_object(&drafts, "dft-forged", automerge::ObjType::Map)
        .expect("draft");
    am.put(&draft, "name", "Fantôme").expect("name");
    am.put(&draft, "published", 1i64).expect("published");
    let entries = am
        .put_object(&draft, "entries", automerge::ObjType::Map)
        .expect("entries");
    am.put(&entries, "services_whole", false).expect("whole");
    for list in ["languages", "contacts"] {
        am.put_object(&entries, list, automerge::ObjType::List)
            .expect("list");
    }
    am.put_object(&entries, "services", automerge::ObjType::Map)
        .expect("services");
    let offices = am
        .put_object(&entries, "offices", automerge::ObjType::Map)
        .expect("offices");
    let office = am
        .put_object(&offices, "off-x", automerge::ObjType::Map)
        .expect("office");
    am.put(&office, "name", "Nulle part").expect("name");
    am.put(&office, "region", "CM099").expect("region");
    am.put(&office, "town", "Atlantide").expect("town");
    sign_last_change(&identity, &mut doc, "forged draft")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinators_drafts_are_kept_apart_claimed_once_and_forged_ones_refused() {
    let mut nodes: Vec<TestNode> = ["Plateforme nationale", "ONG Avenir", "Observateur"]
        .iter()
        .map(|name| TestNode::init_networked(name, vec![]))
        .collect();
    found_network(&nodes.iter().collect::<Vec<_>>(), "1/2");
    start_line(&mut nodes).await;
    let (coordinator, avenir, observer) = (&nodes[0], &nodes[1], &nodes[2]);
    let publisher = coordinator.handle().org_id().to_string();
    for name in ["ONG Avenir", "Centre Espoir"] {
        coordinator
            .handle()
            .edit(Edit::PutDraft {
                id: draft_id(&publisher, name),
                draft: Box::new(draft(name)),
            })
            .await
            .expect("publish draft");
    }
    // A draft that would not pass as an organisation's own entries is refused locally.
    let mut bad = draft("Centre Espoir");
    for service in bad.entries.services.values_mut() {
        service.categories = vec!["astrology".into()];
    }
    let refused = coordinator
        .handle()
        .edit(Edit::PutDraft {
            id: "dft-bad".into(),
            draft: Box::new(bad),
        })
        .await
        .expect_err("an unknown category is refused");
    assert!(refused.to_string().contains("astrology"), "{refused}");
    wait_converged(&nodes, 3).await;

    // Kept apart: not in the directory, found by a drafts search, with their publisher.
    let drafts_query = SearchQuery {
        drafts: true,
        ..SearchQuery::default()
    };
    for node in &nodes {
        let handle = node.handle();
        assert!(
            handle
                .search(SearchQuery::default())
                .await
                .expect("search")
                .is_empty()
        );
        let hits = handle.search(drafts_query.clone()).await.expect("search");
        assert_eq!(hits.len(), 3, "{}", node.name);
        assert!(
            hits.iter()
                .all(|h| h.draft_by.as_deref() == Some("Plateforme nationale"))
        );
    }

    // ONG Avenir claims its draft: ordinary signed edits of its own document, then the claim.
    let id = draft_id(&publisher, "ONG Avenir");
    let own = avenir
        .handle()
        .organisation(None)
        .await
        .expect("own")
        .record;
    let plan = plan_entries(&draft("ONG Avenir").entries, &own);
    assert_eq!(plan.edits.len(), 5, "{:?}", plan.changes);
    for edit in plan.edits {
        avenir.handle().edit(edit).await.expect("claim edit");
    }
    avenir
        .handle()
        .edit(Edit::ClaimDraft {
            id: id.clone(),
            claim: Claim {
                publisher: publisher.clone(),
                at: 2,
            },
        })
        .await
        .expect("claim");
    wait_for("the claim to hide the draft everywhere", || async {
        for node in &nodes {
            let hits = node
                .handle()
                .search(drafts_query.clone())
                .await
                .expect("search");
            let services = node
                .handle()
                .search(SearchQuery::default())
                .await
                .expect("search");
            if hits.len() != 1 || services.len() != 2 {
                return false;
            }
        }
        true
    })
    .await;
    let services = observer
        .handle()
        .search(SearchQuery::default())
        .await
        .expect("search");
    assert!(
        services
            .iter()
            .all(|h| h.org_name == "ONG Avenir" && h.draft_by.is_none())
    );

    // A forged draft signed with the coordinator's own key is refused by every other node.
    let document = DocumentId::organisation(&coordinator.handle().org_id());
    let history = coordinator
        .handle()
        .export(&document)
        .await
        .expect("export");
    let forged = forged_draft(coordinator, history);
    for node in [avenir, observer] {
        let outcome = node
            .handle()
            .apply_remote(vec![forged.clone()], Some(coordinator.handle().key_id()))
            .await
            .expect("apply");
        assert_eq!(outcome.applied, 0, "{}", node.name);
        assert_eq!(outcome.rejected.len(), 1, "{}", node.name);
        assert!(
            outcome.rejected[0].reason.contains("CM099"),
            "{}: {:?}",
            node.name,
            outcome.rejected
        );
        let hits = node
            .handle()
            .search(drafts_query.clone())
            .await
            .expect("search");
        assert_eq!(hits.len(), 1, "{}", node.name);
    }

    for node in &mut nodes {
        node.stop().await;
    }
}
