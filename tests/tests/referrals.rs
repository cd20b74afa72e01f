//! Referrals between real nodes: the board replicated to every member, the case file
//! point to point between the two organisations only, encrypted end to end and at rest.

use passerelle_node::referral::report::Count;
use passerelle_node::vault::Side;
use std::path::Path;
use std::sync::{Arc, Mutex};

use automerge::ReadDoc;
use automerge::transaction::Transactable;
use passerelle_node::document::Replica;
use passerelle_node::envelope::DocumentId;
use passerelle_node::identity::{Identity, OrgId};
use passerelle_node::ids::ReferralId;
use passerelle_node::keys::KeyFiles;
use passerelle_node::network::InboundRecord;
use passerelle_node::node::{
    CaseState, ListFilter, ReferralReply, ReferralRequest, ReferralView, SendReferral,
};
use passerelle_node::referral::board::{BoardEntry, Priority};
use passerelle_node::referral::casefile::{
    CaseFile, Consent, ConsentMethod, ConsentRecord, FIELDS,
};
use passerelle_node::referral::lifecycle::{Move, Outcome, Reason, Status};
use passerelle_node::referral::matching::MatchQuery;
use passerelle_tests::{
    TestNode, found_network, replay_outside, sign_last_change, start_line, wait_converged, wait_for,
};

use crate::add;

const NAME: &str = "Aïcha Mbarga Ndongo";
const PHONE: &str = "+237 699 12 34 56";

async fn ask(node: &TestNode, request: ReferralRequest) -> Result<ReferralReply, String> {
    node.handle()
        .referral(request, "test officer")
        .await
        .map_err(|e| e.to_string())
}

fn case_file() -> CaseFile {
    CaseFile {
        name: NAME.into(),
        sex: Some("female".into()),
        birth_year: Some(1996),
        phone: Some(PHONE.into()),
        languages: vec!["fr".into(), "ff".into()],
        location: Some("Douala, Bonabéri".into()),
        needs: vec!["job_placement".into()],
        vulnerabilities: vec!["single_parent".into()],
        notes: Some("Returned from Libya in March; prefers morning appointments.".into()),
        ..CaseFile::default()
    }
}

fn consent() -> ConsentRecord {
    ConsentRecord::Given(Consent {
        method: ConsentMethod::Verbal,
        given_at: passerelle_node::unix_now() - 60,
        expires_at: None,
        organisation: None,
        service: None,
        data: FIELDS.iter().map(|f| (*f).to_owned()).collect(),
    })
}

pub(crate) fn direct(to: OrgId, service: &str) -> SendReferral {
    SendReferral {
        to: Some(to),
        service: Some(service.parse().expect("a service id")),
        category: None,
        region: "CM005".into(),
        priority: Priority::Urgent,
        respond_within: 7 * 24 * 3600,
        case_file: case_file(),
        consent: consent(),
    }
}

pub(crate) async fn send(node: &TestNode, send: SendReferral) -> Result<ReferralId, String> {
    match ask(
        node,
        ReferralRequest::Send {
            send: Box::new(send),
        },
    )
    .await?
    {
        ReferralReply::Receipt(receipt) => Ok(receipt.id),
        other => panic!("unexpected reply {other:?}"),
    }
}

pub(crate) async fn show(node: &TestNode, id: &ReferralId) -> Option<ReferralView> {
    match ask(node, ReferralRequest::Show { id: *id }).await {
        Ok(ReferralReply::Show(view)) => Some(*view),
        _ => None,
    }
}

async fn entry(node: &TestNode, id: &ReferralId) -> Option<BoardEntry> {
    match ask(
        node,
        ReferralRequest::List {
            filter: ListFilter::default(),
        },
    )
    .await
    {
        Ok(ReferralReply::List(list)) => list.entries.into_iter().find(|e| e.id == *id),
        _ => None,
    }
}

async fn move_to(node: &TestNode, id: &ReferralId, action: Move) -> Result<Status, String> {
    match ask(node, ReferralRequest::Move { id: *id, action }).await? {
        ReferralReply::Receipt(receipt) => Ok(receipt.status),
        other => panic!("unexpected reply {other:?}"),
    }
}

/// Adds a job-placement service in CM005 to `node`'s organisation; returns its id.
pub(crate) async fn offer(node: &TestNode, name: &str) -> String {
    node.handle()
        .edit(add(name, "CM005"))
        .await
        .expect("add service")
        .id
}

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Panics if any file of the node's data folder holds the person's name or phone.
pub(crate) fn assert_no_plaintext(node: &TestNode) {
    for file in files(&node.data_dir()) {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        for needle in [NAME, PHONE, "Mbarga"] {
            assert!(
                !contains(&bytes, needle),
                "{} holds {needle:?} in plain text in {}",
                node.name,
                file.display()
            );
        }
    }
}

/// Three founders: the sender (dials nobody), the receiver (dials the sender), and an
/// observer that dials only the receiver — it is never connected to the sender.
async fn three_nodes(record: Option<InboundRecord>) -> Vec<TestNode> {
    let mut nodes: Vec<TestNode> = [
        "Délégation MINJEC Littoral",
        "Centre Formation Plus",
        "ONG Observatrice",
    ]
    .iter()
    .map(|name| TestNode::init_networked(name, vec![]))
    .collect();
    found_network(&nodes.iter().collect::<Vec<_>>(), "2");
    if let Some(network) = nodes[2].config.network.as_mut() {
        network.record_inbound = record;
    }
    start_line(&mut nodes).await;
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referral_goes_to_completed_and_only_the_two_organisations_see_the_case_file() {
    let record: InboundRecord = Arc::new(Mutex::new(Vec::new()));
    let nodes = three_nodes(Some(record.clone())).await;
    let (sender, receiver, observer) = (&nodes[0], &nodes[1], &nodes[2]);
    let service = offer(receiver, "Placement en emploi Douala").await;
    wait_converged(&nodes, 3).await;

    // The sender finds the service for the person's needs.
    let matches = match ask(
        sender,
        ReferralRequest::Match {
            query: MatchQuery {
                needs: vec!["job_placement".into()],
                region: Some("CM005".into()),
                ..MatchQuery::default()
            },
        },
    )
    .await
    .expect("match")
    {
        ReferralReply::Matches(found) => found,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(matches.len(), 1);
    assert_eq!(matches[0].hit.service_id, service);

    let id = send(sender, direct(receiver.handle().org_id(), &service))
        .await
        .expect("send");

    // The case file arrives at the receiver, intact, and only there.
    wait_for("the case file to reach the receiver", || async {
        show(receiver, &id)
            .await
            .is_some_and(|v| v.case_state == CaseState::Held)
    })
    .await;
    let view = show(receiver, &id).await.expect("view");
    assert_eq!(view.intact, Some(true));
    let case = view.case.expect("case file");
    assert_eq!(case.content.case_file.name, NAME);
    assert_eq!(case.content.case_file.phone.as_deref(), Some(PHONE));

    // The receiver answers and progresses it to completed.
    assert_eq!(
        move_to(receiver, &id, Move::Accept).await,
        Ok(Status::Accepted)
    );
    assert_eq!(
        move_to(receiver, &id, Move::Start).await,
        Ok(Status::InProgress)
    );
    assert_eq!(
        move_to(
            receiver,
            &id,
            Move::Complete {
                outcome: Outcome::Achieved
            }
        )
        .await,
        Ok(Status::Completed)
    );
    // Every node, the observer included, sees the same entry and history.
    for node in &nodes {
        wait_for("the board to show the referral completed", || async {
            entry(node, &id)
                .await
                .is_some_and(|e| e.status == Status::Completed)
        })
        .await;
    }
    let reference = entry(sender, &id).await.expect("entry");
    assert_eq!(reference.history.len(), 3);
    assert_eq!(reference.outcome, Some(Outcome::Achieved));
    for node in &nodes[1..] {
        assert_eq!(
            entry(node, &id).await.as_ref(),
            Some(&reference),
            "{}",
            node.name
        );
    }

    // The observer holds no case file, never received one, and no byte of it.
    let seen = show(observer, &id).await.expect("observer view");
    assert_eq!(seen.case_state, CaseState::NotAParty);
    assert!(seen.case.is_none());
    let received = record.lock().expect("record").clone();
    assert!(
        !received.is_empty(),
        "the observer received the board changes"
    );
    for payload in &received {
        for needle in [NAME, PHONE, "Mbarga", "Bonabéri"] {
            assert!(
                !contains(payload, needle),
                "the observer received {needle:?}"
            );
        }
    }
    assert_no_plaintext(observer);
    // The two parties hold it encrypted at rest only.
    assert_no_plaintext(sender);
    assert_no_plaintext(receiver);

    // Reads and deliveries are in the local audit logs.
    let ReferralReply::Audit(log) = ask(receiver, ReferralRequest::Audit { id: Some(id) })
        .await
        .expect("audit")
    else {
        panic!("audit");
    };
    let actions: Vec<&str> = log.iter().map(|a| a.action.as_str()).collect();
    assert!(
        actions.contains(&"received") && actions.contains(&"read"),
        "{actions:?}"
    );
    wait_for("the sender to record the delivery", || async {
        matches!(
            ask(sender, ReferralRequest::Audit { id: Some(id) }).await,
            Ok(ReferralReply::Audit(log)) if log.iter().any(|a| a.action == "delivered")
        )
    })
    .await;

    // The report counts it, without naming anyone: one referral is too few to show.
    let report = report_of(observer, None).await;
    assert_eq!(report.total, Count::Small { below: 5 });
    assert!(report.by_status.is_empty() && report.by_region.is_empty());
    assert!(report.withheld_tables.contains(&"status".to_owned()));
    assert_eq!(
        report.completion_rate, None,
        "a rate of one referral is its outcome"
    );

    // Seven more, one of them from another region, one entered in error: the small region
    // is "<5", and the other withheld with it so it cannot be recomputed from the total.
    for region in [
        "CM005", "CM005", "CM005", "CM005", "CM005", "CM004", "CM005",
    ] {
        let mut referral = direct(receiver.handle().org_id(), &service);
        referral.region = region.into();
        send(sender, referral).await.expect("send");
    }
    let mistaken = send(sender, direct(receiver.handle().org_id(), &service))
        .await
        .expect("send");
    assert_eq!(
        move_to(sender, &mistaken, Move::EnteredInError).await,
        Ok(Status::EnteredInError)
    );
    wait_for("the observer to see every referral", || async {
        let report = report_of(observer, None).await;
        report.total == Count::Shown(8) && report.entered_in_error != Count::Shown(0)
    })
    .await;
    let report = report_of(observer, None).await;
    assert_eq!(report.entered_in_error, Count::Small { below: 5 });
    assert_eq!(
        report.by_region.get("CM004"),
        Some(&Count::Small { below: 5 })
    );
    assert_eq!(report.by_region.get("CM005"), Some(&Count::Withheld));
    // The statuses: 1 completed (small), 7 pending: withheld with it.
    assert_eq!(
        report.by_status.get("completed"),
        Some(&Count::Small { below: 5 })
    );
    assert_eq!(report.by_status.get("pending"), Some(&Count::Withheld));
    // One dimension and one category: everything shows, nothing is small.
    assert_eq!(
        report.by_dimension.values().collect::<Vec<_>>(),
        vec![&Count::Shown(8)]
    );
}

/// The node's referral report over all time, cells under `min_count` hidden (the node's
/// setting when `None`).
async fn report_of(
    node: &TestNode,
    min_count: Option<u64>,
) -> passerelle_node::referral::report::Report {
    match ask(
        node,
        ReferralRequest::Report {
            from: None,
            to: None,
            min_count,
        },
    )
    .await
    {
        Ok(ReferralReply::Report(report)) => report,
        other => panic!("report: {other:?}"),
    }
}

/// A change of `org`'s document, made outside the node's checks and signed with its key:
/// an answer that goes from pending straight to completed.
fn forged_answer(
    owner: &TestNode,
    changes: Vec<Vec<u8>>,
    referral: &str,
    sender: OrgId,
) -> Vec<u8> {
    forged_move(
        owner,
        changes,
        referral,
        sender,
        &[("move", "complete"), ("outcome", "achieved")],
        passerelle_node::unix_now(),
    )
}

/// A receiver move written outside the node's checks, dated `at` by its author's (lying)
/// clock, signed with its key: `action` is the move's fields.
fn forged_move(
    owner: &TestNode,
    changes: Vec<Vec<u8>>,
    referral: &str,
    sender: OrgId,
    fields: &[(&str, &str)],
    at: i64,
) -> Vec<u8> {
    let (identity, mut doc) = replay_outside(owner, &changes);
    let am = doc.automerge();
    let answers = match am.get(automerge::ROOT, "answers").expect("get") {
        Some((_, obj)) => obj,
        None => panic!("no answers map"),
    };
    let answer = am
        .put_object(&answers, referral, automerge::ObjType::Map)
        .expect("answer");
    am.put(&answer, "sender", sender.to_string())
        .expect("sender");
    let moves = am
        .put_object(&answer, "moves", automerge::ObjType::List)
        .expect("moves");
    let step = am
        .insert_object(&moves, 0, automerge::ObjType::Map)
        .expect("move");
    let action = am
        .put_object(&step, "move", automerge::ObjType::Map)
        .expect("action");
    for (key, value) in fields {
        am.put(&action, *key, *value).expect("action");
    }
    am.put(&step, "from", "pending").expect("from");
    am.put(&step, "at", at).expect("at");
    am.put(&step, "seen", 0u64).expect("seen");
    sign_last_change(&identity, &mut doc, "forged")
}

/// A receiver that answers with its clock set back (to look on time) writes a legal move:
/// every other node applies it, and flags it, since it is dated before the referral its
/// author had seen; the report counts it apart from the timings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backdated_answer_is_flagged_on_every_node_and_left_out_of_the_timings() {
    let nodes = three_nodes(None).await;
    let (sender, receiver, observer) = (&nodes[0], &nodes[1], &nodes[2]);
    let service = offer(receiver, "Placement en emploi").await;
    wait_converged(&nodes, 3).await;
    let id = send(sender, direct(receiver.handle().org_id(), &service))
        .await
        .expect("send");
    let created = entry(sender, &id).await.expect("entry").created;
    let receiver_doc = DocumentId::organisation(&receiver.handle().org_id());
    let history = receiver
        .handle()
        .export(&receiver_doc)
        .await
        .expect("export");
    let backdated = forged_move(
        receiver,
        history,
        &id.to_string(),
        sender.handle().org_id(),
        &[("move", "accept")],
        created - 3 * 3600,
    );
    // (The receiver's own node takes it too, so its next changes follow it.)
    for node in [receiver, sender, observer] {
        let outcome = node
            .handle()
            .apply_remote(vec![backdated.clone()], Some(receiver.handle().key_id()))
            .await
            .expect("apply");
        assert_eq!(outcome.applied, 1, "{}: a legal move applies", node.name);
        let seen = entry(node, &id).await.expect("entry");
        assert_eq!(seen.status, Status::Accepted, "{}", node.name);
        assert!(seen.clock_flagged(), "{}: {:?}", node.name, seen.history);
        let flag = seen.history[0].clock.as_deref().expect("flag");
        assert!(flag.contains("3 h before"), "{flag}");
    }
    // An honest answer is not flagged.
    let honest = send(sender, direct(receiver.handle().org_id(), &service))
        .await
        .expect("send");
    wait_for("the second referral to reach the receiver", || async {
        entry(receiver, &honest).await.is_some()
    })
    .await;
    move_to(receiver, &honest, Move::Accept)
        .await
        .expect("accept");
    wait_for("the observer to see the honest answer", || async {
        entry(observer, &honest)
            .await
            .is_some_and(|e| e.status == Status::Accepted)
    })
    .await;
    assert!(
        !entry(observer, &honest)
            .await
            .expect("entry")
            .clock_flagged()
    );
    // The report: every count shown (min_count 1), the backdated one apart from the timings.
    let report = report_of(observer, Some(1)).await;
    assert_eq!(report.total, Count::Shown(2));
    assert_eq!(report.clock_flagged, Count::Shown(1));
    assert_eq!(report.by_status.get("accepted"), Some(&Count::Shown(2)));
    assert_eq!(
        report.answered_before_deadline,
        Some(1.0),
        "only the honest answer is timed"
    );
}

/// A receiver whose clock runs three hours ahead answers: the move is legal and after
/// everything its author had seen, so the documents alone cannot tell. Every other node
/// notes that it arrived dated three hours after its own clock — whether it came live or
/// in a catch-up — keeps the note across a restart, shows it, and the report counts the
/// referral apart from its timings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_dated_ahead_of_its_arrival_is_noted_by_the_nodes_it_reaches() {
    let mut nodes = three_nodes(None).await;
    let service = offer(&nodes[1], "Placement en emploi").await;
    wait_converged(&nodes, 3).await;
    let (sender_org, receiver_org) = (nodes[0].handle().org_id(), nodes[1].handle().org_id());
    let id = send(&nodes[0], direct(receiver_org, &service))
        .await
        .expect("send");
    wait_for("the referral to reach the observer", || async {
        entry(&nodes[2], &id).await.is_some()
    })
    .await;
    let history = nodes[1]
        .handle()
        .export(&DocumentId::organisation(&receiver_org))
        .await
        .expect("export");
    let ahead = forged_move(
        &nodes[1],
        history,
        &id.to_string(),
        sender_org,
        &[("move", "accept")],
        passerelle_node::unix_now() + 3 * 3600,
    );
    let from = Some(nodes[1].handle().key_id());
    // The author's own node, the sender live, the observer in a catch-up.
    for (node, live) in [(&nodes[1], true), (&nodes[0], true), (&nodes[2], false)] {
        let outcome = if live {
            node.handle().apply_remote(vec![ahead.clone()], from).await
        } else {
            node.handle()
                .apply_received(vec![ahead.clone()], Vec::new(), from)
                .await
        }
        .expect("apply");
        assert!(outcome.applied <= 1, "{}", node.name);
    }
    for node in &nodes {
        let seen = entry(node, &id).await.expect("entry");
        assert_eq!(seen.status, Status::Accepted, "{}", node.name);
        assert_eq!(seen.history[0].clock, None, "{}", node.name);
        if node.handle().org_id() == receiver_org {
            assert_eq!(
                seen.history[0].arrival, None,
                "its author's node notes nothing"
            );
        } else {
            let note = seen.history[0].arrival.as_deref().expect("noted");
            assert!(
                note.contains("3 h after it reached"),
                "{}: {note}",
                node.name
            );
        }
    }
    // Kept on disk: the observer restarts and still shows it; its report counts it apart.
    nodes[2].stop().await;
    nodes[2].start().await;
    let seen = entry(&nodes[2], &id).await.expect("entry");
    assert!(seen.history[0].arrival.is_some(), "{:?}", seen.history);
    let report = report_of(&nodes[2], Some(1)).await;
    assert_eq!(report.clock_flagged, Count::Shown(1));
    for node in &mut nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn illegal_moves_are_refused_locally_and_forged_ones_by_every_node() {
    let nodes = three_nodes(None).await;
    let (sender, receiver, observer) = (&nodes[0], &nodes[1], &nodes[2]);
    let service = offer(receiver, "Placement en emploi").await;
    wait_converged(&nodes, 3).await;

    // No consent, no referral: an override without its reason, consent for another
    // organisation, consent naming no field.
    let mut no_reason = direct(receiver.handle().org_id(), &service);
    no_reason.consent = ConsentRecord::Override {
        reason: "urgent".into(),
        at: passerelle_node::unix_now(),
    };
    let error = send(sender, no_reason).await.unwrap_err();
    assert!(error.contains("consent_override"), "{error}");
    let mut elsewhere = direct(receiver.handle().org_id(), &service);
    if let ConsentRecord::Given(c) = &mut elsewhere.consent {
        c.organisation = Some(observer.handle().org_id());
    }
    let error = send(sender, elsewhere).await.unwrap_err();
    assert!(error.contains("consent_organisation"), "{error}");
    let mut nothing = direct(receiver.handle().org_id(), &service);
    if let ConsentRecord::Given(c) = &mut nothing.consent {
        c.data.clear();
    }
    assert!(
        send(sender, nothing)
            .await
            .unwrap_err()
            .contains("consent_data")
    );
    let ReferralReply::List(list) = ask(
        sender,
        ReferralRequest::List {
            filter: ListFilter::default(),
        },
    )
    .await
    .expect("list") else {
        panic!("list");
    };
    assert!(list.entries.is_empty(), "a refused referral left an entry");

    let id = send(sender, direct(receiver.handle().org_id(), &service))
        .await
        .expect("send");
    wait_for("the referral to reach every board", || async {
        entry(receiver, &id).await.is_some() && entry(observer, &id).await.is_some()
    })
    .await;

    // Illegal moves, refused locally with a clear message.
    let error = move_to(sender, &id, Move::Accept).await.unwrap_err();
    assert!(error.contains("only the receiving organisation"), "{error}");
    let error = move_to(
        receiver,
        &id,
        Move::Complete {
            outcome: Outcome::Achieved,
        },
    )
    .await
    .unwrap_err();
    assert!(error.contains("pending cannot become completed"), "{error}");
    let error = move_to(observer, &id, Move::Accept).await.unwrap_err();
    assert!(
        error.contains("neither the sender nor the receiver"),
        "{error}"
    );
    let error = move_to(
        receiver,
        &id,
        Move::Withdraw {
            reason: Reason::Other,
        },
    )
    .await
    .unwrap_err();
    assert!(error.contains("only the sending organisation"), "{error}");

    // A bare edit cannot record a move behind the node's checks (nor a referral without
    // its case file and consent).
    let bare = receiver
        .handle()
        .edit(passerelle_node::document::Edit::MoveReferral {
            id: id.to_string(),
            record: passerelle_node::referral::board::MoveRecord {
                action: Move::Accept,
                from: Status::Pending,
                at: passerelle_node::unix_now(),
                seen: 0,
            },
            answering: Some(sender.handle().org_id()),
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(bare.contains("referral requests"), "{bare}");

    // A forged answer (pending → completed) signed with the receiver's own key is refused
    // by every other node, which keep the referral pending.
    let receiver_doc = DocumentId::organisation(&receiver.handle().org_id());
    let history = receiver
        .handle()
        .export(&receiver_doc)
        .await
        .expect("export");
    let forged = forged_answer(receiver, history, &id.to_string(), sender.handle().org_id());
    for node in [sender, observer] {
        let outcome = node
            .handle()
            .apply_remote(vec![forged.clone()], Some(receiver.handle().key_id()))
            .await
            .expect("apply");
        assert_eq!(outcome.applied, 0, "{}", node.name);
        assert_eq!(outcome.rejected.len(), 1, "{}", node.name);
        assert_eq!(
            outcome.rejected[0].code,
            passerelle_node::node::RejectionCode::IllegalReferral,
            "{}",
            node.name
        );
        let status = node.handle().status().await.expect("status");
        assert_eq!(status.rejected_by_reason.get("illegal_referral"), Some(&1));
        assert_eq!(
            entry(node, &id).await.map(|e| e.status),
            Some(Status::Pending)
        );
    }

    // The legal path still works after the forgery.
    assert_eq!(
        move_to(
            receiver,
            &id,
            Move::Decline {
                reason: Reason::NoCapacity
            }
        )
        .await,
        Ok(Status::Declined)
    );
    wait_for("the decline to reach the sender", || async {
        entry(sender, &id)
            .await
            .is_some_and(|e| e.status == Status::Declined && e.reason == Some(Reason::NoCapacity))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_file_for_an_offline_node_arrives_when_it_is_back_and_erasure_reaches_both() {
    let mut nodes: Vec<TestNode> = ["Délégation MINAS Centre", "Centre d'écoute Bonamoussadi"]
        .iter()
        .map(|name| TestNode::init_networked(name, vec![]))
        .collect();
    found_network(&nodes.iter().collect::<Vec<_>>(), "2");
    start_line(&mut nodes).await;
    let service = offer(&nodes[1], "Accompagnement vers l'emploi").await;
    wait_converged(&nodes, 2).await;
    let receiver_org = nodes[1].handle().org_id();

    // The receiver goes offline; the referral is sent anyway.
    nodes[1].stop().await;
    let id = send(&nodes[0], direct(receiver_org, &service))
        .await
        .expect("send while the receiver is offline");
    let view = show(&nodes[0], &id).await.expect("view");
    assert!(view.delivery_pending);
    assert_eq!(
        view.case_state,
        CaseState::Held,
        "the sender keeps its copy"
    );

    // Back online, it receives the case file without anyone doing anything.
    nodes[1].start().await;
    let receiver = &nodes[1];
    wait_for(
        "the case file to arrive after the receiver came back",
        || async {
            show(receiver, &id)
                .await
                .is_some_and(|v| v.case_state == CaseState::Held && v.intact == Some(true))
        },
    )
    .await;
    wait_for("the sender's outbox to empty", || async {
        show(&nodes[0], &id)
            .await
            .is_some_and(|v| !v.delivery_pending)
    })
    .await;

    // Erasure by the sender: unreadable here at once, and on the receiver once it hears.
    let ReferralReply::Erased(receipt) = ask(&nodes[0], ReferralRequest::Erase { id })
        .await
        .expect("erase")
    else {
        panic!("erase");
    };
    assert!(receipt.erased_here);
    assert_eq!(receipt.asked, Some(receiver_org));
    for node in &nodes {
        wait_for("the case file to be erased on both nodes", || async {
            show(node, &id)
                .await
                .is_some_and(|v| v.case_state == CaseState::Erased && v.case.is_none())
        })
        .await;
        let keys = node.data_dir().join("case-keys");
        assert_eq!(
            std::fs::read_dir(&keys).expect("case-keys").count(),
            0,
            "{} still holds a case-file key",
            node.name
        );
        assert_no_plaintext(node);
    }
    // The board entry stays: only the personal data is gone.
    assert!(entry(&nodes[1], &id).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_referral_is_taken_by_one_of_the_members_that_propose() {
    let mut nodes: Vec<TestNode> = [
        "OIM Bureau Douala",
        "ONG Jeunesse Active",
        "Centre Emploi Plus",
    ]
    .iter()
    .map(|name| TestNode::init_networked(name, vec![]))
    .collect();
    found_network(&nodes.iter().collect::<Vec<_>>(), "2");
    // The third node dials both others, so the sender can reach whichever it chooses.
    nodes[0].start().await;
    let first = nodes[0].listen_addr().await;
    if let Some(network) = nodes[1].config.network.as_mut() {
        network.peers = vec![first.clone()];
    }
    nodes[1].start().await;
    let second = nodes[1].listen_addr().await;
    if let Some(network) = nodes[2].config.network.as_mut() {
        network.peers = vec![first, second];
    }
    nodes[2].start().await;
    let service_b = offer(&nodes[1], "Insertion professionnelle").await;
    let service_c = offer(&nodes[2], "Placement en entreprise").await;
    wait_converged(&nodes, 3).await;

    let mut open = direct(nodes[1].handle().org_id(), &service_b);
    open.to = None;
    open.service = None;
    open.category = Some("job_placement".into());
    let id = send(&nodes[0], open).await.expect("send open referral");
    for node in &nodes[1..] {
        wait_for("the open referral to be listed for a member offering it", || async {
            matches!(
                ask(node, ReferralRequest::List { filter: ListFilter { open: true, ..ListFilter::default() } }).await,
                Ok(ReferralReply::List(list)) if list.entries.iter().any(|e| e.id == id)
            )
        })
        .await;
    }
    for (node, service) in [(&nodes[1], &service_b), (&nodes[2], &service_c)] {
        ask(
            node,
            ReferralRequest::Propose {
                id,
                service: service.parse().expect("a service id"),
            },
        )
        .await
        .expect("propose");
    }
    wait_for("both proposals to reach the sender", || async {
        entry(&nodes[0], &id)
            .await
            .is_some_and(|e| e.proposals.len() == 2)
    })
    .await;
    let chosen = nodes[2].handle().org_id();
    ask(&nodes[0], ReferralRequest::Assign { id, org: chosen })
        .await
        .expect("assign");
    // The chosen member gets the case file and answers; the other sees it taken.
    wait_for("the case file to reach the chosen member", || async {
        show(&nodes[2], &id)
            .await
            .is_some_and(|v| v.case_state == CaseState::Held && v.intact == Some(true))
    })
    .await;
    assert_eq!(
        move_to(&nodes[2], &id, Move::Accept).await,
        Ok(Status::Accepted)
    );
    wait_for("the other member to see it taken", || async {
        entry(&nodes[1], &id).await.is_some_and(|e| {
            e.receiver == Some(chosen)
                && e.status == Status::Accepted
                && e.proposals.iter().any(|p| p.org == chosen && p.chosen)
                && e.proposals.iter().any(|p| p.org != chosen && !p.chosen)
        })
    })
    .await;
    let other = show(&nodes[1], &id).await.expect("view");
    assert_eq!(other.case_state, CaseState::NotAParty);
    let error = move_to(&nodes[1], &id, Move::Start).await.unwrap_err();
    assert!(error.contains("neither"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_referrals_expire_and_each_side_destroys_its_copy_after_retention() {
    let mut nodes: Vec<TestNode> = ["Délégation MINPROFF Ouest", "Centre social Dschang"]
        .iter()
        .map(|name| TestNode::init_networked(name, vec![]))
        .collect();
    found_network(&nodes.iter().collect::<Vec<_>>(), "2");
    start_line(&mut nodes).await;
    let (sender, receiver) = (&nodes[0], &nodes[1]);
    let service = offer(receiver, "Appui à la recherche d'emploi").await;
    wait_converged(&nodes, 2).await;
    let unanswered = send(sender, direct(receiver.handle().org_id(), &service))
        .await
        .expect("send");
    let answered = send(sender, direct(receiver.handle().org_id(), &service))
        .await
        .expect("send");
    for id in [&unanswered, &answered] {
        wait_for("the case files to arrive", || async {
            show(receiver, id)
                .await
                .is_some_and(|v| v.case_state == CaseState::Held)
        })
        .await;
    }
    move_to(receiver, &answered, Move::Accept)
        .await
        .expect("accept");
    move_to(receiver, &answered, Move::Start)
        .await
        .expect("start");
    move_to(
        receiver,
        &answered,
        Move::Complete {
            outcome: Outcome::PartiallyAchieved,
        },
    )
    .await
    .expect("complete");
    let day = 24 * 3600;
    let now = passerelle_node::unix_now();

    // A week and a day later, the sender's node records the unanswered one as expired.
    sender
        .handle()
        .housekeeping_at(now + 8 * day)
        .await
        .expect("housekeeping");
    wait_for("the receiver to see the expiry", || async {
        entry(receiver, &unanswered)
            .await
            .is_some_and(|e| e.status == Status::Expired)
    })
    .await;
    assert_eq!(
        entry(sender, &answered).await.map(|e| e.status),
        Some(Status::Completed),
        "only pending referrals expire"
    );
    let error = move_to(receiver, &unanswered, Move::Accept)
        .await
        .unwrap_err();
    assert!(error.contains("expired cannot become accepted"), "{error}");

    // The receiver keeps access 90 days (the default) after closing, not a day more.
    receiver
        .handle()
        .housekeeping_at(now + 89 * day)
        .await
        .expect("housekeeping");
    assert_eq!(
        show(receiver, &answered).await.map(|v| v.case_state),
        Some(CaseState::Held)
    );
    receiver
        .handle()
        .housekeeping_at(now + 91 * day)
        .await
        .expect("housekeeping");
    assert_eq!(
        show(receiver, &answered).await.map(|v| v.case_state),
        Some(CaseState::RetentionExpired)
    );
    // The expired one closed a week later: still readable.
    assert_eq!(
        show(receiver, &unanswered).await.map(|v| v.case_state),
        Some(CaseState::Held)
    );

    // The sender's copy goes too, by its own clock and setting (default: the same 90 days),
    // and says when.
    let view = show(sender, &answered).await.expect("view");
    assert_eq!(view.case_state, CaseState::Held);
    let closed = view.entry.closed_at.expect("closed");
    assert_eq!(view.destroy_at, Some(closed + 90 * day));
    let ReferralReply::Retention(plan) = ask(sender, ReferralRequest::Retention { run: false })
        .await
        .expect("retention")
    else {
        panic!("retention");
    };
    let item = plan
        .held
        .iter()
        .find(|i| i.referral == answered)
        .expect("held");
    assert_eq!((item.side, item.due), (Side::Sent, false));
    assert_eq!(item.destroy_at, Some(closed + 90 * day));
    sender
        .handle()
        .housekeeping_at(now + 89 * day)
        .await
        .expect("housekeeping");
    assert_eq!(
        show(sender, &answered).await.map(|v| v.case_state),
        Some(CaseState::Held)
    );
    sender
        .handle()
        .housekeeping_at(now + 91 * day)
        .await
        .expect("housekeeping");
    assert_eq!(
        show(sender, &answered).await.map(|v| v.case_state),
        Some(CaseState::RetentionExpired)
    );
    // The unanswered one closed at its expiry, a week later: the sender keeps it still.
    assert_eq!(
        show(sender, &unanswered).await.map(|v| v.case_state),
        Some(CaseState::Held)
    );
    let ReferralReply::Audit(log) = ask(sender, ReferralRequest::Audit { id: Some(answered) })
        .await
        .expect("audit")
    else {
        panic!("audit");
    };
    assert!(
        log.iter()
            .any(|a| a.action == "retention_expired" && a.detail.contains("sender's")),
        "{log:?}"
    );
    let ReferralReply::Audit(log) = ask(receiver, ReferralRequest::Audit { id: Some(answered) })
        .await
        .expect("audit")
    else {
        panic!("audit");
    };
    assert!(log.iter().any(|a| a.action == "retention_expired"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_case_file_messages_are_refused_counted_and_change_nothing() {
    use passerelle_node::protocol::CaseMessage;
    use passerelle_node::referral::casefile::{CaseContent, Payload, seal};

    let nodes = three_nodes(None).await;
    let (sender, receiver, intruder) = (&nodes[0], &nodes[1], &nodes[2]);
    let service = offer(receiver, "Placement").await;
    wait_converged(&nodes, 3).await;
    let id = send(sender, direct(receiver.handle().org_id(), &service))
        .await
        .expect("send");
    wait_for("the real case file to arrive", || async {
        show(receiver, &id)
            .await
            .is_some_and(|v| v.case_state == CaseState::Held)
    })
    .await;
    let before = show(receiver, &id).await.expect("view").case;
    let (a, b, c) = (
        sender.handle().org_id(),
        receiver.handle().org_id(),
        intruder.handle().org_id(),
    );
    let receiver_key = Identity::load(&receiver.data_dir())
        .expect("identity")
        .encryption_public_key();
    let forged_payload = |from: OrgId| Payload {
        referral: id.to_string(),
        sender: from,
        receiver: b,
        sent_at: passerelle_node::unix_now(),
        content: CaseContent {
            salt: "11".repeat(32),
            case_file: CaseFile {
                name: "Personne inventée".into(),
                ..CaseFile::default()
            },
            consent: consent(),
        },
    };
    let deliver = |from: OrgId, claimed: OrgId| CaseMessage::Deliver {
        referral: id.to_string(),
        sender: claimed,
        sealed: seal(&forged_payload(from), &receiver_key).expect("seal"),
    };
    let mut tampered = match deliver(a, a) {
        CaseMessage::Deliver { sealed, .. } => sealed,
        CaseMessage::Erase { .. } | CaseMessage::ToOffice { .. } => unreachable!(),
    };
    tampered.ciphertext[0] ^= 1;
    let attempts = [
        // A member delivering in another's name.
        (c, deliver(a, a), "in the name of"),
        // A member delivering for a referral that is not its own.
        (c, deliver(c, c), "names other organisations"),
        // The real sender delivering again (a retry after a lost answer), even with other
        // content: the case file held is not replaced.
        (a, deliver(a, a), "already held"),
        // A tampered case file for a referral the board does not know: not taken.
        (
            a,
            CaseMessage::Deliver {
                referral: "ref-ffffffffffffffffffffffff".into(),
                sender: a,
                sealed: tampered,
            },
            "not reached this node",
        ),
        // Another member asking to erase a case file it is not party to.
        (
            c,
            CaseMessage::Erase {
                referral: id.to_string(),
            },
            "not the other party",
        ),
    ];
    for (key, message, expected) in attempts {
        let reply = receiver
            .handle()
            .case_message(message, key.key())
            .await
            .expect("answer");
        assert!(!reply.accepted || expected == "already held", "{reply:?}");
        assert!(reply.message.contains(expected), "{expected}: {reply:?}");
    }
    // A key that is no member at all is not even heard.
    let stranger = passerelle_node::identity::SigningSecret::generate()
        .expect("key")
        .org_id();
    let reply = receiver
        .handle()
        .case_message(deliver(stranger, stranger), stranger.key())
        .await
        .expect("answer");
    assert!(
        !reply.accepted && reply.message.contains("member"),
        "{reply:?}"
    );

    let status = receiver.handle().status().await.expect("status");
    assert_eq!(status.case_files_refused, 3);
    assert_eq!(status.case_files_held, 1);
    let after = show(receiver, &id).await.expect("view");
    assert_eq!(after.case, before, "the held case file changed");
    assert_eq!(after.intact, Some(true));
}

/// A receiver's case files backed up, sealed to a backup key kept off the node; one erased
/// afterwards; the receiver's vault lost (its case-file keys and records gone, documents
/// kept): the restore brings back the other case file, never the erased one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_after_an_erasure_leaves_the_erased_case_file_erased() {
    use passerelle_node::backup_seal::BackupSecret;
    let backups = tempfile::tempdir().expect("backup folder");
    let secret = BackupSecret::generate().expect("backup key");
    let key = secret.public_key();
    let mut nodes = vec![
        TestNode::init_networked("ONG Retour Douala", vec![]),
        TestNode::init("Centre Emploi Littoral", |config| {
            config.network = Some(passerelle_tests::loopback_network(vec![]));
            config.backup_dir = Some(backups.path().to_path_buf());
            config.backup_key = Some(key);
        }),
    ];
    found_network(&nodes.iter().collect::<Vec<_>>(), "2");
    start_line(&mut nodes).await;
    let (sender, receiver) = (&nodes[0], &nodes[1]);
    let service = offer(receiver, "Placement en emploi").await;
    wait_converged(&nodes, 2).await;
    let kept = send(sender, direct(receiver.handle().org_id(), &service))
        .await
        .expect("send");
    let erased = send(sender, direct(receiver.handle().org_id(), &service))
        .await
        .expect("send");
    for id in [&kept, &erased] {
        wait_for("the case files to arrive", || async {
            show(receiver, id)
                .await
                .is_some_and(|v| v.case_state == CaseState::Held)
        })
        .await;
    }

    // The backup: both case files, sealed (no name in the file).
    let ReferralReply::BackupWritten(backup) =
        ask(receiver, ReferralRequest::BackupWrite { dir: None })
            .await
            .expect("backup")
    else {
        panic!("backup");
    };
    assert_eq!(backup.case_files, 2);
    let bytes = std::fs::read(&backup.file).expect("backup file");
    assert!(!contains(&bytes, NAME) && !contains(&bytes, PHONE));

    // The sender erases one; the receiver's node erases its copy and records it beside
    // the backups.
    ask(sender, ReferralRequest::Erase { id: erased })
        .await
        .expect("erase");
    wait_for("the receiver to erase its copy", || async {
        show(receiver, &erased)
            .await
            .is_some_and(|v| v.case_state == CaseState::Erased)
    })
    .await;
    let journal = std::fs::read_to_string(backups.path().join("erasures.jsonl")).expect("journal");
    assert!(journal.contains(&erased.to_string()), "{journal}");

    // The receiver's vault is lost: its case-file keys and records, tombstones included.
    let mut nodes = nodes;
    nodes[1].stop().await;
    let data = nodes[1].data_dir();
    std::fs::remove_dir_all(data.join("case-keys")).expect("keys gone");
    {
        let store = passerelle_node::store::Store::open(
            &passerelle_node::config::Config::new(&data).store_dir(),
        )
        .expect("store");
        for tree in ["case-files", "case-erased"] {
            store.database().drop_tree(tree).expect("drop");
        }
    }
    nodes[1].start().await;
    let receiver = &nodes[1];
    assert_eq!(
        show(receiver, &kept).await.map(|v| v.case_state),
        Some(CaseState::NotReceived)
    );

    // A wrong secret opens nothing.
    let other = BackupSecret::generate().expect("another key");
    let refused = ask(
        receiver,
        ReferralRequest::BackupRestore {
            file: backup.file.clone(),
            secret: passerelle_node::api::SecretText::new(other.to_text().as_str()),
        },
    )
    .await
    .unwrap_err();
    assert!(
        refused.contains("does not open with this secret"),
        "{refused}"
    );

    // The restore: the kept one back and readable, the erased one not, and erased here.
    let ReferralReply::Restored(restored) = ask(
        receiver,
        ReferralRequest::BackupRestore {
            file: backup.file.clone(),
            secret: passerelle_node::api::SecretText::new(secret.to_text().as_str()),
        },
    )
    .await
    .expect("restore") else {
        panic!("restore");
    };
    assert_eq!(restored.restored, vec![kept.to_string()]);
    assert_eq!(restored.erased_since, vec![erased.to_string()]);
    let view = show(receiver, &kept).await.expect("view");
    assert_eq!(view.case_state, CaseState::Held);
    assert_eq!(view.case.expect("case").content.case_file.name, NAME);
    assert_eq!(
        show(receiver, &erased).await.map(|v| v.case_state),
        Some(CaseState::Erased)
    );
    let ReferralReply::Audit(log) = ask(receiver, ReferralRequest::Audit { id: Some(erased) })
        .await
        .expect("audit")
    else {
        panic!("audit");
    };
    assert!(log.iter().any(|a| a.action == "restore_skipped"), "{log:?}");
}

async fn audit_actions(node: &TestNode) -> Vec<String> {
    match ask(node, ReferralRequest::Audit { id: None }).await {
        Ok(ReferralReply::Audit(entries)) => entries.into_iter().map(|e| e.action).collect(),
        other => panic!("unexpected {other:?}"),
    }
}

/// A regional office (a device node of the receiving organisation) works a referral: the
/// organisation grants it case files, hands it one, the office reads it; once the grant
/// ends, the office has destroyed it and nothing more is handed to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_office_granted_case_files_reads_one_handed_to_it_and_not_after_the_grant_ends() {
    use passerelle_node::node::Decision;
    let mut nodes: Vec<TestNode> = ["Délégation MINJEC Littoral", "ONG Retour Digne"]
        .iter()
        .map(|name| TestNode::init_networked(name, vec![]))
        .collect();
    let network = found_network(&nodes.iter().collect::<Vec<_>>(), "1/2");
    start_line(&mut nodes).await;
    let service = offer(&nodes[1], "Placement en emploi Bafoussam").await;
    wait_converged(&nodes, 2).await;
    let org = nodes[1].handle().org_id();
    let mut office = TestNode::init_device("Antenne ORD Bafoussam", org);
    passerelle_node::node::join_network(
        &office.config,
        network,
        &[nodes[1].listen_addr().await.to_string()],
    )
    .expect("join");
    office.start().await;
    let key = office.handle().key_id();
    let case_key: passerelle_node::identity::EncryptionPublicKey = office
        .handle()
        .status()
        .await
        .expect("status")
        .encryption_key
        .parse()
        .expect("an encryption key");
    let head = nodes[1].handle();
    // Not a device of the organisation yet: no grant.
    let refused = head
        .decide(Decision::GrantCaseFiles {
            device: key,
            case_key,
        })
        .await
        .expect_err("not a device yet");
    assert!(refused.to_string().contains("device add"), "{refused}");
    head.decide(Decision::AddDevice {
        device: key,
        label: "Bafoussam".into(),
    })
    .await
    .expect("delegate");

    let id = send(&nodes[0], direct(org, &service)).await.expect("send");
    wait_for("the case file to reach the organisation", || async {
        show(&nodes[1], &id)
            .await
            .is_some_and(|v| v.case_state == CaseState::Held)
    })
    .await;
    // Delegated but not granted: nothing is handed to the office.
    let to_office = || ReferralRequest::ToOffice { id, office: key };
    let refused = ask(&nodes[1], to_office()).await.expect_err("not granted");
    assert!(refused.contains("device grant"), "{refused}");
    head.decide(Decision::GrantCaseFiles {
        device: key,
        case_key,
    })
    .await
    .expect("grant");
    // The sending organisation cannot hand its case file to another organisation's office.
    let refused = ask(&nodes[0], to_office())
        .await
        .expect_err("not received there");
    assert!(refused.contains("not received"), "{refused}");
    wait_for(
        "the office to see the referral, and not its case file",
        || async {
            show(&office, &id)
                .await
                .is_some_and(|v| v.case.is_none() && v.entry.receiver == Some(org))
        },
    )
    .await;
    ask(&nodes[1], to_office())
        .await
        .expect("hand to the office");
    wait_for("the case file to reach the office", || async {
        show(&office, &id)
            .await
            .is_some_and(|v| v.case_state == CaseState::Held)
    })
    .await;
    let view = show(&office, &id).await.expect("view at the office");
    assert_eq!(view.intact, Some(true));
    let case = view.case.expect("the office reads the case file");
    assert_eq!(case.content.case_file.name, NAME);
    assert_eq!(case.counterpart, Some(nodes[0].handle().org_id()));
    wait_for("the organisation to record the hand-over", || async {
        audit_actions(&nodes[1])
            .await
            .contains(&"handed_to_office".to_owned())
    })
    .await;
    let actions = audit_actions(&nodes[1]).await;
    for action in ["office_granted", "to_office"] {
        assert!(actions.contains(&action.to_owned()), "{actions:?}");
    }
    let actions = audit_actions(&office).await;
    assert!(
        actions.contains(&"received_from_organisation".to_owned()),
        "{actions:?}"
    );

    // Another member cannot hand a case file to the office, even sealed to its key.
    let forged = passerelle_node::referral::casefile::seal_for_office(
        &passerelle_node::referral::casefile::Payload {
            referral: id.to_string(),
            sender: nodes[0].handle().org_id(),
            receiver: org,
            sent_at: passerelle_node::unix_now(),
            content: case.content.clone(),
        },
        &key,
        &case_key,
    )
    .expect("seal");
    let reply = office
        .handle()
        .case_message(
            passerelle_node::protocol::CaseMessage::ToOffice {
                referral: id.to_string(),
                sender: nodes[0].handle().org_id(),
                sealed: forged,
            },
            nodes[0].handle().key_id(),
        )
        .await
        .expect("answer");
    assert!(
        !reply.accepted && reply.message.contains("only this office's organisation"),
        "{reply:?}"
    );
    assert_eq!(
        office
            .handle()
            .status()
            .await
            .expect("status")
            .case_files_refused,
        1
    );

    // A second referral handed to the office, then erased at the sender's request: the
    // organisation takes it back from the office too.
    let second = send(&nodes[0], direct(org, &service)).await.expect("send");
    wait_for("the second case file to reach the organisation", || async {
        show(&nodes[1], &second)
            .await
            .is_some_and(|v| v.case_state == CaseState::Held)
    })
    .await;
    ask(
        &nodes[1],
        ReferralRequest::ToOffice {
            id: second,
            office: key,
        },
    )
    .await
    .expect("hand the second to the office");
    wait_for("the second case file to reach the office", || async {
        show(&office, &second)
            .await
            .is_some_and(|v| v.case_state == CaseState::Held)
    })
    .await;
    ask(&nodes[0], ReferralRequest::Erase { id: second })
        .await
        .expect("the sender erases");
    wait_for("the office to erase the second case file", || async {
        show(&office, &second)
            .await
            .is_some_and(|v| v.case.is_none() && v.case_state == CaseState::Erased)
    })
    .await;
    assert_eq!(
        show(&office, &id).await.map(|v| v.case_state),
        Some(CaseState::Held),
        "the first stays at the office"
    );

    // The grant ends: the office destroys what it holds; nothing more is handed to it.
    head.decide(Decision::RevokeCaseFiles { device: key })
        .await
        .expect("end the grant");
    wait_for("the office to destroy the case file", || async {
        show(&office, &id)
            .await
            .is_some_and(|v| v.case.is_none() && v.case_state == CaseState::Erased)
    })
    .await;
    let refused = ask(&nodes[1], to_office()).await.expect_err("grant ended");
    assert!(refused.contains("device grant"), "{refused}");
    let actions = audit_actions(&nodes[1]).await;
    assert!(
        actions.contains(&"office_access_ended".to_owned()),
        "{actions:?}"
    );
    assert!(
        audit_actions(&office).await.contains(&"erased".to_owned()),
        "the office's erasure is in its audit log"
    );
    // The organisation's own copy stays; nothing in clear at rest anywhere.
    assert_eq!(
        show(&nodes[1], &id).await.map(|v| v.case_state),
        Some(CaseState::Held)
    );
    nodes.push(office);
    for node in &nodes {
        assert_no_plaintext(node);
    }
    for node in &mut nodes {
        node.stop().await;
    }
}
