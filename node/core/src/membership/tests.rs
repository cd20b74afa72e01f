use super::*;

struct Org {
    secret: SigningSecret,
}

impl Org {
    fn new() -> Self {
        Self {
            secret: SigningSecret::generate().unwrap(),
        }
    }
    fn id(&self) -> OrgId {
        self.secret.org_id()
    }
    fn key(&self) -> KeyId {
        self.secret.key_id()
    }
    fn request(&self, network: NetworkId, name: &str) -> SignedRequest {
        SignedRequest::sign(
            &AdmissionRequest {
                network,
                org: self.id(),
                name: name.into(),
                message: String::new(),
                created: 100,
            },
            &self.secret,
        )
        .unwrap()
    }
}

fn make_proposal(
    doc: &mut NetworkDocument,
    by: &Org,
    action: Action,
) -> Result<SignedChange, NetworkDocumentError> {
    doc.append(Operation::Propose { action }, &by.secret, 10)
}

fn approve_proposal(
    doc: &mut NetworkDocument,
    by: &Org,
    proposal: &SignedChange,
) -> Result<SignedChange, NetworkDocumentError> {
    doc.append(
        Operation::Approve {
            proposal: proposal.hash().to_string(),
        },
        &by.secret,
        10,
    )
}

fn charter(founders: &[&Org], admission: &str) -> Charter {
    Charter {
        name: "Réseau test".into(),
        founders: founders.iter().map(|f| f.id()).collect(),
        admission: admission.parse().unwrap(),
        revocation: "2".parse().unwrap(),
        amendment: "2/3".parse().unwrap(),
        taxonomy: "iom-2024".into(),
    }
}

/// Three founders, all ratified.
fn network() -> (NetworkDocument, [Org; 3]) {
    let orgs = [Org::new(), Org::new(), Org::new()];
    let (mut doc, _) = NetworkDocument::create(
        &orgs[0].secret,
        charter(&[&orgs[0], &orgs[1], &orgs[2]], "2"),
        1,
    )
    .unwrap();
    for org in &orgs[1..] {
        doc.append(Operation::Ratify, &org.secret, 2).unwrap();
    }
    (doc, orgs)
}

#[test]
fn quorum_parses_counts_and_fractions_and_names_accepted_values() {
    assert_eq!("2".parse::<Quorum>().unwrap().required(10), 2);
    assert_eq!("2/3".parse::<Quorum>().unwrap().required(4), 3);
    assert_eq!("1/2".parse::<Quorum>().unwrap().required(1), 1);
    for bad in ["0", "3/2", "x", "1/0", ""] {
        let error = bad.parse::<Quorum>().unwrap_err().to_string();
        assert!(error.contains("quorum") && error.contains("2/3"), "{error}");
    }
}

#[test]
fn founders_become_members_by_ratifying_and_the_network_activates() {
    let orgs = [Org::new(), Org::new()];
    let (mut doc, changes) =
        NetworkDocument::create(&orgs[0].secret, charter(&[&orgs[0], &orgs[1]], "2"), 1).unwrap();
    let net = doc.network();
    assert_eq!(changes.len(), 2);
    assert!(doc.network().is_genesis(&changes[0].hash()));
    let m = doc.membership().unwrap();
    assert!(!m.is_active());
    assert!(m.members.contains_key(&orgs[0].id()));
    // Nothing but ratification before the network is active.
    let outsider = Org::new();
    let error = make_proposal(
        &mut doc,
        &orgs[0],
        Action::Admit {
            request: outsider.request(net, "X"),
        },
    )
    .unwrap_err();
    assert!(error.to_string().contains("not active"), "{error}");
    doc.append(Operation::Ratify, &orgs[1].secret, 3).unwrap();
    assert!(doc.membership().unwrap().is_active());
    // Ratifying twice, or by a non-founder, is refused.
    assert!(doc.append(Operation::Ratify, &orgs[1].secret, 4).is_err());
    assert!(doc.append(Operation::Ratify, &outsider.secret, 4).is_err());
}

#[test]
fn admission_takes_effect_only_at_the_quorum() {
    let (mut doc, orgs) = network();
    let net = doc.network();
    let candidate = Org::new();
    let propose = make_proposal(
        &mut doc,
        &orgs[0],
        Action::Admit {
            request: candidate.request(net, "Centre Espoir"),
        },
    )
    .unwrap();
    let m = doc.membership().unwrap();
    assert!(!m.members.contains_key(&candidate.id()));
    assert_eq!(m.proposals[0].required, 2);
    // The proposer approving again counts nothing.
    assert!(approve_proposal(&mut doc, &orgs[0], &propose).is_err());
    // A non-member's approval is refused.
    assert!(approve_proposal(&mut doc, &candidate, &propose).is_err());
    approve_proposal(&mut doc, &orgs[1], &propose).unwrap();
    let m = doc.membership().unwrap();
    let member = &m.members[&candidate.id()];
    assert_eq!(member.name, "Centre Espoir");
    assert_eq!(member.approved_by.len(), 2);
    assert_eq!(m.proposals[0].status, ProposalStatus::Decided);
}

#[test]
fn a_request_for_another_network_or_with_a_bad_signature_is_refused() {
    let (mut doc, orgs) = network();
    let (other, _) =
        NetworkDocument::create(&orgs[0].secret, charter(&[&orgs[0]], "1"), 9).unwrap();
    let candidate = Org::new();
    let wrong_network = candidate.request(other.network(), "X");
    assert!(
        make_proposal(
            &mut doc,
            &orgs[0],
            Action::Admit {
                request: wrong_network
            }
        )
        .unwrap_err()
        .to_string()
        .contains("another network")
    );
    let mut forged = candidate.request(doc.network(), "X");
    forged.body = forged.body.replace("\"X\"", "\"Y\"");
    assert!(forged.verify().is_err());
}

#[test]
fn revocation_keeps_what_came_before_and_rejects_the_rest() {
    let (mut doc, orgs) = network();
    let target = orgs[2].id();
    let keep = BTreeMap::from([(target.key(), 5u64)]);
    let m = doc.membership().unwrap();
    assert!(m.may_write(&target, &target.key(), 9).is_ok());
    let propose = make_proposal(
        &mut doc,
        &orgs[0],
        Action::Revoke {
            org: target,
            reason: "fraud".into(),
            keep,
        },
    )
    .unwrap();
    // The member may not approve its own revocation.
    assert!(approve_proposal(&mut doc, &orgs[2], &propose).is_err());
    approve_proposal(&mut doc, &orgs[1], &propose).unwrap();
    let m = doc.membership().unwrap();
    assert!(!m.members.contains_key(&target));
    assert!(m.may_write(&target, &target.key(), 5).is_ok());
    assert!(matches!(
        m.may_write(&target, &target.key(), 6),
        Err(WriteRefusal::Revoked { keep: 5, .. })
    ));
    // A revoked member's own operations have no effect any more.
    assert!(doc.append(Operation::Ratify, &orgs[2].secret, 5).is_err());
}

#[test]
fn write_rule_one_writer_per_document_and_devices() {
    let (mut doc, orgs) = network();
    let device = Org::new();
    let m = doc.membership().unwrap();
    assert!(matches!(
        m.may_write(&orgs[0].id(), &orgs[1].key(), 1),
        Err(WriteRefusal::NotOwnersKey { .. })
    ));
    let outsider = Org::new();
    assert!(matches!(
        m.may_write(&outsider.id(), &outsider.key(), 1),
        Err(WriteRefusal::NotMember { .. })
    ));
    doc.append(
        Operation::Delegate {
            device: device.key(),
            label: "Douala".into(),
        },
        &orgs[0].secret,
        3,
    )
    .unwrap();
    let m = doc.membership().unwrap();
    assert!(m.may_write(&orgs[0].id(), &device.key(), 1).is_ok());
    assert_eq!(m.acting_member(&device.key()), Some(orgs[0].id()));
    // A device cannot write for another organisation, nor delegate further.
    assert!(m.may_write(&orgs[1].id(), &device.key(), 1).is_err());
    assert!(
        doc.append(
            Operation::Delegate {
                device: Org::new().key(),
                label: "x".into()
            },
            &device.secret,
            4
        )
        .is_err()
    );
    doc.append(
        Operation::Undelegate {
            device: device.key(),
            keep: 3,
        },
        &orgs[0].secret,
        5,
    )
    .unwrap();
    let m = doc.membership().unwrap();
    assert!(m.may_write(&orgs[0].id(), &device.key(), 3).is_ok());
    assert!(m.may_write(&orgs[0].id(), &device.key(), 4).is_err());
}

#[test]
fn only_the_organisation_grants_its_own_device_case_files_and_withdrawal_ends_it() {
    let (mut doc, orgs) = network();
    let device = Org::new();
    let case_key = crate::identity::Identity::generate()
        .unwrap()
        .encryption_public_key();
    let grant = |device: KeyId| Operation::Grant { device, case_key };
    // Not a device yet: nothing to grant.
    assert!(doc.append(grant(device.key()), &orgs[0].secret, 3).is_err());
    doc.append(
        Operation::Delegate {
            device: device.key(),
            label: "Antenne de Bafoussam".into(),
        },
        &orgs[0].secret,
        3,
    )
    .unwrap();
    assert_eq!(
        doc.membership().unwrap().office_case_key(&device.key()),
        None
    );
    // Another member, or the device itself, cannot grant it.
    assert!(doc.append(grant(device.key()), &orgs[1].secret, 4).is_err());
    assert!(doc.append(grant(device.key()), &device.secret, 4).is_err());
    doc.append(grant(device.key()), &orgs[0].secret, 4).unwrap();
    assert_eq!(
        doc.membership().unwrap().office_case_key(&device.key()),
        Some(case_key)
    );
    assert!(doc.append(grant(device.key()), &orgs[0].secret, 5).is_err());
    doc.append(
        Operation::Ungrant {
            device: device.key(),
        },
        &orgs[0].secret,
        5,
    )
    .unwrap();
    assert_eq!(
        doc.membership().unwrap().office_case_key(&device.key()),
        None
    );
    assert!(
        doc.append(
            Operation::Ungrant {
                device: device.key()
            },
            &orgs[0].secret,
            6
        )
        .is_err()
    );
    // Granted again, then the device is withdrawn: the grant ends with it.
    doc.append(grant(device.key()), &orgs[0].secret, 6).unwrap();
    doc.append(
        Operation::Undelegate {
            device: device.key(),
            keep: 0,
        },
        &orgs[0].secret,
        7,
    )
    .unwrap();
    assert_eq!(
        doc.membership().unwrap().office_case_key(&device.key()),
        None
    );
    assert!(doc.append(grant(device.key()), &orgs[0].secret, 8).is_err());
}

#[test]
fn a_quorum_replaces_a_stolen_key_and_the_old_key_acts_for_nobody_after_its_keep_point() {
    let (mut doc, orgs) = network();
    let new = Org::new();
    let rotate = |keep: u64| Action::Rotate {
        org: orgs[0].id(),
        key: new.key(),
        reason: "ordinateur volé".into(),
        keep: BTreeMap::from([(orgs[0].key(), keep)]),
    };
    // The organisation concerned neither proposes nor approves its own rotation.
    assert!(make_proposal(&mut doc, &orgs[0], rotate(4)).is_err());
    // The thief, holding the old key, registers a recovery key of its own.
    let thiefs_recovery = Org::new();
    doc.append(
        Operation::SetRecovery {
            key: thiefs_recovery.key(),
        },
        &orgs[0].secret,
        3,
    )
    .unwrap();
    let proposal = make_proposal(&mut doc, &orgs[1], rotate(4)).unwrap();
    assert!(approve_proposal(&mut doc, &orgs[0], &proposal).is_err());
    let m = doc.membership().unwrap();
    assert_eq!(
        m.own_key_of(&orgs[0].id()),
        orgs[0].key(),
        "not decided yet"
    );
    approve_proposal(&mut doc, &orgs[2], &proposal).unwrap();
    let m = doc.membership().unwrap();
    let org = orgs[0].id();
    // Same organisation, new key: it acts and writes for it; the old key up to 4 only.
    assert_eq!(m.own_key_of(&org), new.key());
    assert_eq!(m.acting_member(&new.key()), Some(org));
    assert_eq!(m.acting_member(&orgs[0].key()), None);
    assert!(m.acting_keys().contains(&new.key()));
    assert!(!m.acting_keys().contains(&orgs[0].key()));
    assert!(m.may_write(&org, &new.key(), 1).is_ok());
    assert!(m.may_write(&org, &orgs[0].key(), 4).is_ok());
    assert!(matches!(
        m.may_write(&org, &orgs[0].key(), 5),
        Err(WriteRefusal::Revoked { keep: 4, .. })
    ));
    assert_eq!(m.organisation_of(&orgs[0].key()), org);
    let history = m.key_history(&org);
    assert_eq!(history.len(), 1);
    assert_eq!(
        (
            history[0].key,
            history[0].replaced_by,
            history[0].how.as_str()
        ),
        (orgs[0].key(), new.key(), "quorum")
    );
    // The thief's recovery key was dropped with the rotation; the old key decides nothing.
    assert!(!m.recovery.contains_key(&org));
    assert!(
        doc.append(
            Operation::Delegate {
                device: Org::new().key(),
                label: "x".into()
            },
            &orgs[0].secret,
            9
        )
        .is_err()
    );
    assert!(make_proposal(&mut doc, &orgs[0], rotate(9)).is_err());
    // The new key acts as the organisation: it delegates a device.
    doc.append(
        Operation::Delegate {
            device: Org::new().key(),
            label: "Antenne".into(),
        },
        &new.secret,
        10,
    )
    .unwrap();
}

#[test]
fn a_registered_recovery_key_alone_replaces_the_key_once() {
    let (mut doc, orgs) = network();
    let network_id = doc.network();
    let recovery = Org::new();
    // Written offline as text, read back the same.
    let text = recovery_secret_text(&recovery.secret);
    assert_eq!(
        recovery_secret_from_text(&format!(" {}\n", text.as_str()))
            .unwrap()
            .key_id(),
        recovery.key()
    );
    assert!(recovery_secret_from_text("passerelle-backup-secret-1:abc").is_err());
    doc.append(
        Operation::SetRecovery {
            key: recovery.key(),
        },
        &orgs[0].secret,
        3,
    )
    .unwrap();
    // Only one, and only by the organisation's own key.
    assert!(
        doc.append(
            Operation::SetRecovery {
                key: Org::new().key()
            },
            &orgs[0].secret,
            4
        )
        .is_err()
    );
    let new = Org::new();
    let statement = |key: KeyId| RotationStatement {
        network: network_id,
        org: orgs[0].id(),
        key,
        created: 5,
    };
    let recover = |rotation: SignedRotation| Operation::Recover {
        rotation,
        keep: BTreeMap::from([(orgs[0].key(), 2)]),
    };
    // Signed by another key than the registered one: no effect.
    let forged = SignedRotation::sign(&statement(new.key()), &Org::new().secret);
    assert!(doc.append(recover(forged), &orgs[1].secret, 5).is_err());
    // Brought by another member, signed by the recovery key: done, without a quorum.
    let signed = SignedRotation::sign(&statement(new.key()), &recovery.secret);
    doc.append(recover(signed.clone()), &orgs[1].secret, 6)
        .unwrap();
    let m = doc.membership().unwrap();
    assert_eq!(m.own_key_of(&orgs[0].id()), new.key());
    assert_eq!(m.key_history(&orgs[0].id())[0].how, "recovery");
    // Spent: the same key cannot sign another rotation.
    let again = SignedRotation::sign(&statement(Org::new().key()), &recovery.secret);
    assert!(doc.append(recover(again), &orgs[2].secret, 7).is_err());
    assert!(doc.append(recover(signed), &orgs[2].secret, 7).is_err());
}

#[test]
fn the_fold_does_not_depend_on_arrival_order() {
    // Two members act concurrently: one approves an admission while the other proposes the
    // approver's revocation. Every order of the same operations folds to the same result.
    let (mut doc, orgs) = network();
    let net = doc.network();
    let candidate = Org::new();
    let propose = make_proposal(
        &mut doc,
        &orgs[0],
        Action::Admit {
            request: candidate.request(net, "C"),
        },
    )
    .unwrap();
    let base: Vec<LoggedOperation> = doc.operations().to_vec();
    // Each branch starts from a copy of the shared history.
    let mut left = doc.clone();
    let mut right = doc.clone();
    let approve = approve_proposal(&mut left, &orgs[1], &propose).unwrap();
    let revoke = make_proposal(
        &mut right,
        &orgs[2],
        Action::Revoke {
            org: orgs[1].id(),
            reason: "test".into(),
            keep: BTreeMap::new(),
        },
    )
    .unwrap();
    let mut one = base.clone();
    one.push(logged(&approve));
    one.push(logged(&revoke));
    let mut two = base;
    two.push(logged(&revoke));
    two.push(logged(&approve));
    let a = Membership::fold(doc.network(), &one).unwrap();
    let b = Membership::fold(doc.network(), &two).unwrap();
    assert_eq!(a, b);

    fn logged(change: &SignedChange) -> LoggedOperation {
        LoggedOperation::new(
            change.hash(),
            change.change().deps().to_vec(),
            change.author(),
            change.change().timestamp(),
            Operation::from_message(change.change().message().unwrap()).unwrap(),
        )
    }
}

#[test]
fn received_changes_are_checked_before_they_are_stored() {
    let (mut doc, orgs) = network();
    let outsider = Org::new();
    // An outsider's operation (signed correctly) is refused: its key has no part.
    let change = {
        let mut scratch = AutoCommit::new().with_actor(ActorId::from(outsider.id().as_bytes()));
        let hash = scratch.empty_change(
            automerge::transaction::CommitOptions::default()
                .with_message(Operation::Ratify.to_message())
                .with_time(5),
        );
        let raw = scratch.get_change_by_hash(&hash).unwrap();
        SignedChange::sign(doc.id().clone(), raw, &outsider.secret)
    };
    assert!(matches!(
        doc.check(&change),
        Err(NetworkDocumentError::UnknownKey { .. })
    ));
    // A member's well-formed operation passes.
    let mut other = doc.clone();
    let ok = other
        .append(
            Operation::Delegate {
                device: outsider.key(),
                label: "x".into(),
            },
            &orgs[1].secret,
            6,
        )
        .unwrap();
    doc.check(&ok).unwrap();
    doc.apply_verified(&[ok]).unwrap();
    assert!(
        doc.membership()
            .unwrap()
            .devices
            .contains_key(&outsider.key())
    );
}

use crate::envelope::SignedChange;
use automerge::{ActorId, AutoCommit};

#[test]
fn a_charter_amendment_needs_its_quorum() {
    // Three founders; amendments need 2/3 of the members, i.e. two of three.
    let (mut doc, orgs) = network();
    let net = doc.network();
    let amendment = Amendment {
        admission: Some("3".parse().unwrap()),
        ..Default::default()
    };
    let propose = make_proposal(
        &mut doc,
        &orgs[0],
        Action::Amend {
            amendment: amendment.clone(),
        },
    )
    .unwrap();
    assert_eq!(doc.membership().unwrap().charter.admission.to_string(), "2");
    // An empty amendment, or a second one while this is open, is refused.
    assert!(
        make_proposal(
            &mut doc,
            &orgs[1],
            Action::Amend {
                amendment: Amendment::default()
            }
        )
        .is_err()
    );
    approve_proposal(&mut doc, &orgs[2], &propose).unwrap();
    let m = doc.membership().unwrap();
    assert_eq!(m.charter.admission.to_string(), "3");
    assert_eq!(m.charter.name, "Réseau test");
    // From now on an admission needs three approvals.
    let candidate = Org::new();
    make_proposal(
        &mut doc,
        &orgs[0],
        Action::Admit {
            request: candidate.request(net, "C"),
        },
    )
    .unwrap();
    let m = doc.membership().unwrap();
    assert_eq!(
        m.open_proposal_about(&candidate.id().to_string())
            .unwrap()
            .required,
        3
    );
}
