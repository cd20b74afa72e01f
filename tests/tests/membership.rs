//! Membership by quorum, with real nodes: admission only at the quorum, forgeries and
//! out-of-rule writes refused by every node, revocation (and a change concurrent with it)
//! resolved identically everywhere.

use passerelle_node::document::{Edit, OrganisationDocument};
use passerelle_node::envelope::{DocumentId, SignedChange};
use passerelle_node::identity::{Identity, SigningSecret};
use passerelle_node::keys::KeyFiles;
use passerelle_node::model::Profile;
use passerelle_node::node::{Decision, NodeHandle, RejectionCode};
use passerelle_tests::{TestNode, found_network, start_line, wait_converged, wait_for};

use crate::add;

async fn is_member(handle: &NodeHandle, org: passerelle_node::identity::OrgId) -> bool {
    handle
        .membership()
        .await
        .map(|m| m.members.iter().any(|member| member.org == org))
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_organisation_is_admitted_only_after_the_quorum_approves() {
    // Three founders (admission by 2) in a line, and a candidate that knows only the last.
    let mut nodes: Vec<TestNode> = ["Délégation Littoral", "ONG Avenir", "CICR Garoua"]
        .iter()
        .map(|name| TestNode::init_networked(name, vec![]))
        .collect();
    let network = found_network(&nodes.iter().collect::<Vec<_>>(), "2");
    start_line(&mut nodes).await;
    let mut candidate = TestNode::init_networked("Centre Espoir", vec![]);
    passerelle_node::node::join_network(
        &candidate.config,
        network,
        &[nodes[2].listen_addr().await.to_string()],
    )
    .expect("join");
    candidate.start().await;
    let new_org = candidate.handle().org_id();
    candidate
        .handle()
        .edit(add("Écoute psychosociale", "CM005"))
        .await
        .expect("a candidate edits its own document offline");
    candidate
        .handle()
        .decide(Decision::Request {
            message: "ONG de Douala".into(),
        })
        .await
        .expect("request");

    // The request reaches the member it is connected to.
    let third = nodes[2].handle();
    wait_for("the request to reach a member", || {
        let third = third.clone();
        async move {
            third
                .membership()
                .await
                .is_ok_and(|m| m.requests.iter().any(|r| r.org == new_org))
        }
    })
    .await;
    // One approval (the proposal) is not the quorum.
    third
        .decide(Decision::Approve { org: new_org })
        .await
        .expect("propose");
    let first = nodes[0].handle();
    wait_for("the proposal to reach every founder", || {
        let first = first.clone();
        async move {
            first
                .membership()
                .await
                .is_ok_and(|m| m.proposals.iter().any(|p| p.subject == new_org.to_string()))
        }
    })
    .await;
    for node in &nodes {
        assert!(!is_member(&node.handle(), new_org).await, "{}", node.name);
        assert!(
            node.services().await.is_empty(),
            "{} holds the candidate's directory before admission",
            node.name
        );
    }
    // The candidate is served no directory data while it is not a member.
    assert_eq!(candidate.services().await.len(), 1);
    // The second approval admits it, everywhere.
    first
        .decide(Decision::Approve { org: new_org })
        .await
        .expect("approve");
    nodes.push(candidate);
    for node in &nodes {
        let handle = node.handle();
        wait_for("the admission to reach every node", || {
            let handle = handle.clone();
            async move { is_member(&handle, new_org).await }
        })
        .await;
    }
    // Its document now flows both ways.
    wait_converged(&nodes, 4).await;
    assert_eq!(nodes[0].services().await.len(), 1);
    nodes[0]
        .handle()
        .edit(add("Formation agricole", "CM005"))
        .await
        .expect("edit");
    wait_converged(&nodes, 4).await;
    assert_eq!(nodes[3].services().await.len(), 2);
    for node in &mut nodes {
        node.stop().await;
    }
}

/// The genesis change of a fresh document of `secret`'s organisation, signed.
fn own_change(secret: &SigningSecret, name: &str) -> SignedChange {
    OrganisationDocument::create(secret, Profile::named(name), 1)
        .expect("doc")
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgeries_and_a_revoked_members_later_changes_are_rejected_by_every_node() {
    // Four founders (revocation by 2), each node fed by hand so each verdict is seen alone.
    let mut nodes: Vec<TestNode> = ["Délégation", "ONG A", "ONG B", "ONG Fraude"]
        .iter()
        .map(|name| TestNode::init(name, |_| {}))
        .collect();
    found_network(&nodes.iter().collect::<Vec<_>>(), "2");
    let fraud_identity = Identity::load(&nodes[3].data_dir()).expect("identity");
    let fraud = fraud_identity.signing();
    let fraud_id = fraud.org_id();
    for node in &mut nodes {
        node.start().await;
    }
    let victim = nodes[0].handle().org_id();

    // Every forgery, each refused with its reason.
    let outsider = SigningSecret::generate().expect("key");
    let non_member = own_change(&outsider, "Intrus").encode();
    let other_document = SignedChange::sign(
        DocumentId::organisation(&victim),
        own_change(fraud, "Fraude").change().clone(),
        fraud,
    )
    .encode();
    let mut tampered = own_change(fraud, "Fraude").encode();
    let doc_len = u16::from_be_bytes([tampered[4], tampered[5]]) as usize;
    tampered[6 + doc_len + 32 + 5] ^= 0x01;
    let mut impersonated = own_change(&outsider, "Intrus").encode();
    impersonated[6 + doc_len..6 + doc_len + 32].copy_from_slice(victim.as_bytes());
    // A real change of the victim, replayed under another member's document id.
    let real = nodes[0]
        .handle()
        .export(&DocumentId::organisation(&victim))
        .await
        .expect("export")
        .remove(0);
    let mut replayed = real.clone();
    let other = DocumentId::organisation(&fraud_id).to_string();
    replayed[6..6 + doc_len].copy_from_slice(other.as_bytes());
    let cases = [
        (non_member, RejectionCode::NotMember),
        (other_document, RejectionCode::WrongWriter),
        (tampered, RejectionCode::BadSignature),
        (impersonated, RejectionCode::BadSignature),
        (replayed, RejectionCode::BadSignature),
    ];
    for node in &nodes {
        for (bytes, code) in &cases {
            let outcome = node
                .handle()
                .apply_remote(vec![bytes.clone()], None)
                .await
                .expect("apply");
            assert_eq!(outcome.applied, 0, "{}: {code}", node.name);
            assert_eq!(outcome.rejected.len(), 1, "{}: {code}", node.name);
            assert_eq!(
                outcome.rejected[0].code, *code,
                "{}: {:?}",
                node.name, outcome.rejected
            );
        }
        let status = node.handle().status().await.expect("status");
        assert_eq!(status.rejected_changes, cases.len() as u64);
        assert_eq!(status.rejected_by_reason["bad_signature"], 3);
    }

    // The fraudulent member's node edits; then it is revoked (proposed by one, approved by
    // another), and edits again: that later change is refused everywhere.
    let before = nodes[3]
        .handle()
        .edit(add("Avant la révocation", "CM005"))
        .await
        .expect("edit");
    let exported = nodes[3]
        .handle()
        .export(&DocumentId::organisation(&fraud_id))
        .await
        .expect("export");
    for node in &nodes[..3] {
        node.handle()
            .apply_remote(exported.clone(), None)
            .await
            .expect("apply");
    }
    nodes[0]
        .handle()
        .decide(Decision::Revoke {
            org: fraud_id,
            reason: "fausses déclarations".into(),
        })
        .await
        .expect("propose");
    let proposal = nodes[0]
        .handle()
        .export(&network_doc(&nodes[0]).await)
        .await
        .expect("export");
    nodes[1]
        .handle()
        .apply_remote(proposal, None)
        .await
        .expect("apply");
    nodes[1]
        .handle()
        .decide(Decision::Revoke {
            org: fraud_id,
            reason: "fausses déclarations".into(),
        })
        .await
        .expect("approve");
    let decided = nodes[1]
        .handle()
        .export(&network_doc(&nodes[1]).await)
        .await
        .expect("export");
    for node in &nodes {
        node.handle()
            .apply_remote(decided.clone(), None)
            .await
            .expect("apply");
        let m = node.handle().membership().await.expect("membership");
        assert!(
            m.former_members.iter().any(|f| f.org == fraud_id),
            "{}",
            node.name
        );
    }
    refused_everywhere(
        &nodes[3],
        "Après la révocation",
        &nodes[..3],
        RejectionCode::Revoked,
    )
    .await;
    for node in &nodes[..3] {
        // What it wrote before stays, from a former member.
        let held = node
            .handle()
            .has_change(&DocumentId::organisation(&fraud_id), &before.change)
            .await
            .expect("has");
        assert!(held, "{}", node.name);
        let names: Vec<String> = node.services().await.into_iter().map(|(_, s)| s).collect();
        assert!(
            names.contains(&"Avant la révocation".to_owned()),
            "{}",
            node.name
        );
        assert!(
            !names.contains(&"Après la révocation".to_owned()),
            "{}",
            node.name
        );
    }
    for node in &mut nodes {
        node.stop().await;
    }
}

/// `writer` (a node whose key may no longer write) edits its organisation's document on
/// its own copy; every node of `others`, handed all of that document's changes, applies
/// none of the new ones and refuses with `code`.
async fn refused_everywhere(
    writer: &TestNode,
    service: &str,
    others: &[TestNode],
    code: RejectionCode,
) {
    let handle = writer.handle();
    handle
        .edit(add(service, "CM005"))
        .await
        .expect("the writer still edits its own copy");
    let changes = handle
        .export(&DocumentId::organisation(&handle.org_id()))
        .await
        .expect("export");
    for node in others {
        let outcome = node
            .handle()
            .apply_remote(changes.clone(), None)
            .await
            .expect("apply");
        assert_eq!(outcome.applied, 0, "{}", node.name);
        assert!(
            outcome.rejected.iter().any(|r| r.code == code),
            "{}: {:?}",
            node.name,
            outcome.rejected
        );
    }
}

async fn network_doc(node: &TestNode) -> DocumentId {
    let id = node
        .handle()
        .membership()
        .await
        .expect("membership")
        .summary
        .network_id
        .expect("network");
    format!("net/{id}").parse().expect("document id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_concurrent_with_an_edit_resolves_identically_on_every_node() {
    // A, B, C and an observer found a network; C edits concurrently with its revocation.
    let mut nodes: Vec<TestNode> = ["A", "B", "Observateur", "C"]
        .iter()
        .map(|name| TestNode::init(name, |_| {}))
        .collect();
    found_network(&nodes.iter().collect::<Vec<_>>(), "2");
    for node in &mut nodes {
        node.start().await;
    }
    let c = nodes[3].handle().org_id();
    let c_doc = DocumentId::organisation(&c);
    let (a, b, observer, c_node) = (
        nodes[0].handle(),
        nodes[1].handle(),
        nodes[2].handle(),
        nodes[3].handle(),
    );
    // E1: seen by everyone before the revocation is proposed.
    c_node.edit(add("E1", "CM005")).await.expect("edit");
    let e1 = c_node.export(&c_doc).await.expect("export");
    for h in [&a, &b] {
        h.apply_remote(e1.clone(), None).await.expect("apply");
    }
    // A proposes the revocation (keeping E1); concurrently C makes E2, which only B sees.
    a.decide(Decision::Revoke {
        org: c,
        reason: "test".into(),
    })
    .await
    .expect("propose");
    c_node.edit(add("E2", "CM005")).await.expect("edit");
    let all_of_c = c_node.export(&c_doc).await.expect("export");
    let outcome = b.apply_remote(all_of_c.clone(), None).await.expect("apply");
    assert_eq!(outcome.applied, 1, "B takes E2 while C is still a member");
    // B receives the proposal and approves: the revocation takes effect at B, which cuts E2.
    let net = network_doc(&nodes[0]).await;
    b.apply_remote(a.export(&net).await.expect("export"), None)
        .await
        .expect("apply");
    b.decide(Decision::Revoke {
        org: c,
        reason: "test".into(),
    })
    .await
    .expect("approve");
    // A gets the approval, then E2: refused.
    let decided = b.export(&net).await.expect("export");
    a.apply_remote(decided.clone(), None).await.expect("apply");
    let outcome = a.apply_remote(all_of_c.clone(), None).await.expect("apply");
    assert!(
        outcome
            .rejected
            .iter()
            .any(|r| r.code == RejectionCode::Revoked)
    );
    // The observer gets everything in the opposite order: C's changes first, then the
    // membership operations newest first (each waits for its dependencies).
    let outcome = observer
        .apply_remote(all_of_c.clone(), None)
        .await
        .expect("apply");
    assert_eq!(
        outcome.applied, 4,
        "C's genesis, its encryption key, E1 and E2: C is a member here so far"
    );
    let mut reversed = decided.clone();
    reversed.reverse();
    observer.apply_remote(reversed, None).await.expect("apply");
    // Everyone but C itself holds C's document cut at E1, with the same heads.
    let mut heads = Vec::new();
    for node in &nodes[..3] {
        let offer = node.heads().await;
        let c_heads = offer
            .into_iter()
            .find(|d| d.document == c_doc)
            .expect("C's document")
            .heads;
        heads.push(c_heads);
        let names: Vec<String> = node.services().await.into_iter().map(|(_, s)| s).collect();
        assert_eq!(names, vec!["E1".to_owned()], "{}", node.name);
        let m = node.handle().membership().await.expect("membership");
        assert!(m.former_members.iter().any(|f| f.org == c), "{}", node.name);
    }
    assert!(heads.windows(2).all(|w| w[0] == w[1]), "{heads:?}");
    // The cut is durable: after a restart the node still holds exactly E1.
    nodes[1].restart().await;
    let names: Vec<String> = nodes[1]
        .services()
        .await
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(names, vec!["E1".to_owned()]);
    for node in &mut nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_node_writes_for_its_organisation_until_it_is_withdrawn() {
    let mut nodes: Vec<TestNode> = ["Siège ARD", "ONG B"]
        .iter()
        .map(|name| TestNode::init_networked(name, vec![]))
        .collect();
    let network = found_network(&nodes.iter().collect::<Vec<_>>(), "1/2");
    start_line(&mut nodes).await;
    let head_office = nodes[0].handle();
    let org = head_office.org_id();
    let mut device = TestNode::init_device("Antenne ARD Douala", org);
    passerelle_node::node::join_network(
        &device.config,
        network,
        &[nodes[1].listen_addr().await.to_string()],
    )
    .expect("join");
    device.start().await;
    let key = device.handle().key_id();
    assert_eq!(device.handle().org_id(), org);
    assert_ne!(key, org.key());
    // Not authorised yet: the device refuses to write.
    let refused = device
        .handle()
        .edit(add("Trop tôt", "CM005"))
        .await
        .expect_err("not yet a device");
    assert!(refused.to_string().contains("device"), "{refused}");
    head_office
        .decide(Decision::AddDevice {
            device: key,
            label: "Douala".into(),
        })
        .await
        .expect("delegate");
    // Once the delegation and the organisation's document reach it, it writes.
    let handle = device.handle();
    wait_for("the device to be able to write", || {
        let handle = handle.clone();
        async move { handle.edit(add("Antenne de Douala", "CM005")).await.is_ok() }
    })
    .await;
    nodes.push(device);
    wait_converged(&nodes, 2).await;
    for node in &nodes {
        let services = node.services().await;
        assert_eq!(
            services,
            vec![("Siège ARD".to_owned(), "Antenne de Douala".to_owned())],
            "{}",
            node.name
        );
    }
    // The head office withdraws the device while it is off; the device, working offline,
    // writes again: every other node refuses that change.
    nodes[2].stop().await;
    head_office
        .decide(Decision::RemoveDevice { device: key })
        .await
        .expect("withdraw");
    let b = nodes[1].handle();
    wait_for("the withdrawal to reach B", || {
        let b = b.clone();
        async move {
            b.membership().await.is_ok_and(|m| {
                m.devices
                    .iter()
                    .any(|d| d.key == key && d.withdrawn_keep.is_some())
            })
        }
    })
    .await;
    nodes[2].config.network = None;
    nodes[2].start().await;
    refused_everywhere(
        &nodes[2],
        "Après le retrait",
        &nodes[..2],
        RejectionCode::Revoked,
    )
    .await;
    for node in &nodes[..2] {
        assert_eq!(node.services().await.len(), 1, "{}", node.name);
    }
    for node in &mut nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_equivocating_member_is_refused_and_cannot_corrupt_a_store() {
    let mut nodes: Vec<TestNode> = ["Récepteur", "Membre double"]
        .iter()
        .map(|name| TestNode::init(name, |_| {}))
        .collect();
    found_network(&nodes.iter().collect::<Vec<_>>(), "1");
    let identity = Identity::load(&nodes[1].data_dir()).expect("identity");
    let secret = identity.signing();
    nodes[0].start().await;
    let receiver = nodes[0].handle();
    // Two different changes with the same sequence number, forked from one genesis.
    let (mut left, genesis) =
        OrganisationDocument::create(secret, Profile::named("Membre double"), 1).expect("doc");
    let mut right = OrganisationDocument::empty(secret.org_id());
    right
        .apply_verified(std::slice::from_ref(&genesis))
        .expect("genesis");
    let one = left
        .apply_edit(
            &Edit::AddService {
                id: "svc-a".into(),
                service: crate::service("Version A", "CM005"),
            },
            secret,
            2,
        )
        .expect("edit");
    let two = right
        .apply_edit(
            &Edit::AddService {
                id: "svc-b".into(),
                service: crate::service("Version B", "CM005"),
            },
            secret,
            3,
        )
        .expect("edit");
    assert_eq!(one.change().seq(), two.change().seq());
    assert_ne!(one.hash(), two.hash());
    // Both in one batch: the first is taken, the second refused on its own.
    let outcome = receiver
        .apply_remote(vec![genesis.encode(), one.encode(), two.encode()], None)
        .await
        .expect("apply");
    assert_eq!(outcome.applied, 2);
    assert_eq!(outcome.rejected.len(), 1);
    assert_eq!(outcome.rejected[0].code, RejectionCode::Equivocation);
    // Later, alone: refused again.
    let outcome = receiver
        .apply_remote(vec![two.encode()], None)
        .await
        .expect("apply");
    assert_eq!(outcome.rejected[0].code, RejectionCode::Equivocation);
    // The store holds only what applied: the node restarts with the same directory.
    nodes[0].restart().await;
    let names: Vec<String> = nodes[0]
        .services()
        .await
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(names, vec!["Version A".to_owned()]);
    nodes[0].stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidates_request_reaches_a_connected_member_at_once_not_at_the_next_round() {
    // The production catch-up interval (30 s): the request must not wait for a round.
    let production = |config: &mut passerelle_node::config::Config| {
        config.network = Some(passerelle_node::config::NetworkConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr")],
            ..Default::default()
        });
    };
    let mut member = TestNode::init("Délégation Littoral", production);
    let network = found_network(&[&member], "1");
    member.start().await;
    let mut candidate = TestNode::init("Centre Espoir", production);
    passerelle_node::node::join_network(
        &candidate.config,
        network,
        &[member.listen_addr().await.to_string()],
    )
    .expect("join");
    candidate.start().await;
    let handle = candidate.handle();
    wait_for("the candidate to connect and catch up once", || {
        let handle = handle.clone();
        async move {
            handle
                .network_status()
                .peers
                .iter()
                .any(|p| p.last_sync.is_some())
        }
    })
    .await;
    let new_org = handle.org_id();
    let asked = std::time::Instant::now();
    handle
        .decide(Decision::Request {
            message: "ONG de Douala".into(),
        })
        .await
        .expect("request");
    let first = member.handle();
    wait_for("the request to reach the member", || {
        let first = first.clone();
        async move {
            first
                .membership()
                .await
                .is_ok_and(|m| m.requests.iter().any(|r| r.org == new_org))
        }
    })
    .await;
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(10),
        "the request took {:?}: it waited for a catch-up round",
        asked.elapsed()
    );
    candidate.stop().await;
    member.stop().await;
}

/// An organisation's machine is stolen with its key. It makes a new node; two other
/// members replace its key by the new node's. The new node writes for the organisation
/// under the same id and receives its case files; what the thief writes with the old key
/// after the keep-point is refused by every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_key_is_replaced_by_the_quorum_and_refused_everywhere_after_its_keep_point() {
    use crate::referrals::{direct, send, show};
    use passerelle_node::node::CaseState;
    let mut nodes: Vec<TestNode> = ["ONG Retour Digne", "Délégation MINJEC", "CICR Garoua"]
        .iter()
        .map(|name| TestNode::init_networked(name, vec![]))
        .collect();
    let network = found_network(&nodes.iter().collect::<Vec<_>>(), "2");
    start_line(&mut nodes).await;
    let org = nodes[0].handle().org_id();
    let service = nodes[0]
        .handle()
        .edit(add("Avant le vol", "CM005"))
        .await
        .expect("edit")
        .id;
    wait_converged(&nodes, 3).await;

    // The machine is stolen; the organisation makes a new node and joins it.
    nodes[0].stop().await;
    let mut new = TestNode::init_device("ONG Retour Digne (nouveau nœud)", org);
    passerelle_node::node::join_network(
        &new.config,
        network,
        &[nodes[1].listen_addr().await.to_string()],
    )
    .expect("join");
    new.start().await;
    let key = new.handle().key_id();
    let rotate = || Decision::RotateKey {
        org,
        key,
        reason: "ordinateur volé avec sa clé".into(),
    };
    // The organisation concerned does not count: B proposes, C approves.
    nodes[1].handle().decide(rotate()).await.expect("propose");
    let c = nodes[2].handle();
    wait_for("the proposal to reach C", || {
        let c = c.clone();
        async move {
            c.membership()
                .await
                .is_ok_and(|m| m.proposals.iter().any(|p| p.subject == org.to_string()))
        }
    })
    .await;
    // Meanwhile the thief starts the stolen node, cut off from the network, and writes;
    // the change reaches C before C approves: C takes it (the old key still acts).
    nodes[0].config.network = None;
    nodes[0].start().await;
    let thief = nodes[0].handle();
    thief
        .edit(add("Pendant le vote", "CM005"))
        .await
        .expect("the thief edits its copy");
    let during = thief
        .export(&DocumentId::organisation(&org))
        .await
        .expect("export");
    let taken = c.apply_remote(during, None).await.expect("apply");
    assert_eq!(taken.applied, 1, "{:?}", taken.rejected);
    c.decide(rotate()).await.expect("approve");
    for node in [&nodes[1], &nodes[2], &new] {
        let handle = node.handle();
        wait_for("the rotation to be decided everywhere", || {
            let handle = handle.clone();
            async move {
                handle
                    .membership()
                    .await
                    .is_ok_and(|m| m.current_keys.get(&org) == Some(&key))
            }
        })
        .await;
    }
    // The new node writes for the organisation, same id, and everyone reads it.
    let handle = new.handle();
    wait_for("the new node to write for the organisation", || {
        let handle = handle.clone();
        async move {
            let _ = handle.housekeeping().await;
            handle.edit(add("Après la rotation", "CM005")).await.is_ok()
        }
    })
    .await;
    for node in [&nodes[1], &nodes[2]] {
        let handle = node.handle();
        wait_for("the new node's service to reach the others", || {
            let handle = handle.clone();
            async move {
                handle.organisation(Some(org)).await.is_ok_and(|o| {
                    o.record
                        .services
                        .values()
                        .any(|s| s.name == "Après la rotation")
                })
            }
        })
        .await;
    }
    // A referral to the organisation: its case file reaches the new node, sealed to the
    // key the new node published.
    let id = send(&nodes[1], direct(org, &service)).await.expect("send");
    wait_for("the case file to reach the new node", || async {
        let _ = new.handle().housekeeping().await;
        show(&new, &id)
            .await
            .is_some_and(|v| v.case_state == CaseState::Held)
    })
    .await;
    // The history shows the replaced key.
    let view = nodes[2].handle().membership().await.expect("membership");
    assert_eq!(view.replaced_keys.len(), 1);
    assert_eq!(view.replaced_keys[0].key, org.key());
    assert_eq!(view.replaced_keys[0].replaced_by, key);
    assert_eq!(view.replaced_keys[0].how, "quorum");

    // The thief, cut off from the decision, writes again with the old key: every other
    // node refuses it; the change C took during the vote was cut when the rotation took
    // effect (it comes after the keep-point).
    let thief = nodes.remove(0);
    nodes.push(new);
    refused_everywhere(
        &thief,
        "Écrit par le voleur",
        &nodes,
        RejectionCode::Revoked,
    )
    .await;
    for node in &nodes {
        let services = node
            .handle()
            .organisation(Some(org))
            .await
            .expect("organisation")
            .record
            .services;
        assert!(
            !services
                .values()
                .any(|s| s.name == "Écrit par le voleur" || s.name == "Pendant le vote"),
            "{}",
            node.name
        );
        assert_eq!(services.len(), 2, "{}", node.name);
    }
    nodes.push(thief);
    for node in &mut nodes {
        node.stop().await;
    }
}

/// The recovery key made at `init` is registered by the node once its organisation is a
/// member; later, alone, it gives the organisation its new node's key, brought by one
/// member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_key_registered_at_init_alone_gives_the_organisation_a_new_key() {
    use passerelle_node::membership::{RotationStatement, SignedRotation};
    let mut nodes: Vec<TestNode> = ["ONG Retour Digne", "Délégation MINJEC", "CICR Garoua"]
        .iter()
        .map(|name| TestNode::init_networked(name, vec![]))
        .collect();
    let network = found_network(&nodes.iter().collect::<Vec<_>>(), "2");
    let recovery = SigningSecret::generate().expect("recovery key");
    passerelle_node::node::remember_recovery_key(&nodes[0].config, &recovery.key_id())
        .expect("remember");
    start_line(&mut nodes).await;
    let org = nodes[0].handle().org_id();
    let c = nodes[2].handle();
    let recovery_key = recovery.key_id();
    wait_for("the recovery key to be registered and reach C", || {
        let c = c.clone();
        async move {
            c.membership()
                .await
                .is_ok_and(|m| m.recovery_keys.get(&org) == Some(&recovery_key))
        }
    })
    .await;
    nodes[0].stop().await;
    let mut new = TestNode::init_device("ONG Retour Digne (nouveau nœud)", org);
    passerelle_node::node::join_network(
        &new.config,
        network,
        &[nodes[1].listen_addr().await.to_string()],
    )
    .expect("join");
    new.start().await;
    let statement = |key| RotationStatement {
        network,
        org,
        key,
        created: passerelle_node::unix_now(),
    };
    // A statement signed by another key is refused with the reason, nothing written.
    let forged = SignedRotation::sign(
        &statement(new.handle().key_id()),
        &SigningSecret::generate().expect("key"),
    );
    let refused = nodes[1]
        .handle()
        .decide(Decision::Recover { rotation: forged })
        .await
        .expect_err("forged");
    assert!(refused.to_string().contains("recovery key"), "{refused}");
    let signed = SignedRotation::sign(&statement(new.handle().key_id()), &recovery);
    nodes[1]
        .handle()
        .decide(Decision::Recover { rotation: signed })
        .await
        .expect("recover");
    let key = new.handle().key_id();
    for node in [&nodes[1], &nodes[2], &new] {
        let handle = node.handle();
        wait_for("the recovery to take effect everywhere", || {
            let handle = handle.clone();
            async move {
                handle.membership().await.is_ok_and(|m| {
                    m.current_keys.get(&org) == Some(&key)
                        && m.replaced_keys.iter().any(|r| r.how == "recovery")
                        && !m.recovery_keys.contains_key(&org)
                })
            }
        })
        .await;
    }
    let handle = new.handle();
    wait_for("the new node to write for the organisation", || {
        let handle = handle.clone();
        async move { handle.edit(add("Après la reprise", "CM005")).await.is_ok() }
    })
    .await;
    nodes.push(new);
    for node in &mut nodes {
        node.stop().await;
    }
}
