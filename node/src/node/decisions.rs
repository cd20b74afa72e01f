//! The documents actor's side of membership: the network's view for the CLI, decisions
//! made on this node (ratify, request, approve, revoke, amend, devices), admission requests
//! received from candidates, and the cut of documents that a membership change requires.
//!
//! Rules:
//! - A decision is tried on the membership before anything is signed: one that would have
//!   no effect is refused with the reason, and nothing is written.
//! - Every new operation is stored (flushed) before it is applied and published.
//! - When a revocation or a device withdrawal takes effect, the documents concerned are cut
//!   back to what the decision keeps: the later changes are deleted from the store and the
//!   document is rebuilt, so this node holds exactly what every other honest node holds.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

use super::{DocumentsActor, NodeError, rebuild};
use crate::config::Config;
use crate::envelope::SignedChange;
use crate::identity::{Identity, KeyId, OrgId};
use crate::keys::KeyFiles;
use crate::membership::{
    Action, AdmissionRequest, Amendment, Charter, FormerMember, Member, Membership,
    MembershipError, NetworkDocument, NetworkDocumentError, NetworkId, Operation, Proposal,
    SignedRequest,
};
use crate::model::ValidationError;
use crate::store::Store;

/// A membership decision made on this node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// A founder signs the charter.
    Ratify,
    /// This (candidate) organisation signs an admission request; its node hands it to the
    /// members' nodes it connects to, until it is admitted.
    Request {
        /// A word to the members.
        #[serde(default)]
        message: String,
    },
    /// Approve what is open about an organisation (its admission or revocation), or
    /// propose its admission from the request it sent.
    Approve {
        /// The organisation.
        org: OrgId,
    },
    /// Propose (or approve) a member's revocation.
    Revoke {
        /// The member.
        org: OrgId,
        /// Why.
        reason: String,
    },
    /// Propose (or approve) a charter amendment.
    Amend {
        /// The changes.
        amendment: Amendment,
    },
    /// Authorise another node of this organisation.
    AddDevice {
        /// The device node's key (its `passerelle status` key id).
        device: KeyId,
        /// Where it runs.
        label: String,
    },
    /// Withdraw a device key.
    RemoveDevice {
        /// The device's key.
        device: KeyId,
    },
    /// Propose (or approve) replacing a member's organisation key, lost or stolen, by the
    /// key of its new node; its id stays.
    RotateKey {
        /// The member.
        org: OrgId,
        /// The new node's key (its `passerelle status` node key).
        key: KeyId,
        /// Why.
        reason: String,
    },
    /// Bring a key rotation signed by an organisation's offline recovery key: it takes
    /// effect without a quorum.
    Recover {
        /// The signed statement.
        rotation: crate::membership::SignedRotation,
    },
    /// Register this organisation's offline recovery key.
    SetRecovery {
        /// The recovery key's public half.
        key: KeyId,
    },
    /// Let a device of this organisation (a regional office) receive case files, sealed
    /// to its own encryption key.
    GrantCaseFiles {
        /// The device's key.
        device: KeyId,
        /// The device's encryption key (its `passerelle status`).
        case_key: crate::identity::EncryptionPublicKey,
    },
    /// End a device's access to case files: it destroys those it holds.
    RevokeCaseFiles {
        /// The device's key.
        device: KeyId,
    },
}

/// What a decision did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionReceipt {
    /// The new operation's change hash (empty for a request, which is not replicated).
    pub change: String,
    /// What happened, for people.
    pub message: String,
}

/// This node's place in its network, for `passerelle status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MembershipSummary {
    /// The network id, if any.
    pub network_id: Option<String>,
    /// The network's name.
    pub network_name: Option<String>,
    /// `member`, `founder (not ratified)`, `former member`, `candidate`, `not a member`,
    /// or `no network`.
    pub role: String,
    /// Current members.
    pub members: usize,
    /// Open proposals.
    pub open_proposals: usize,
    /// Admission requests received and not yet proposed.
    pub requests: usize,
}

/// A received admission request, for `passerelle member list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestView {
    /// The candidate.
    pub org: OrgId,
    /// Its fingerprint.
    pub fingerprint: String,
    /// Its name.
    pub name: String,
    /// Its message.
    pub message: String,
    /// When it signed the request.
    pub created: i64,
}

/// The network as `passerelle network show` and `passerelle member list` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MembershipView {
    /// This node's summary.
    pub summary: MembershipSummary,
    /// The charter, as amended.
    pub charter: Option<Charter>,
    /// Founders who have not ratified yet.
    pub awaiting_ratification: Vec<OrgId>,
    /// Current members (names from their profiles where held).
    pub members: Vec<Member>,
    /// Former members.
    pub former_members: Vec<FormerMember>,
    /// Device keys of members.
    pub devices: Vec<crate::membership::Device>,
    /// Open proposals.
    pub proposals: Vec<Proposal>,
    /// Admission requests received by this node and not yet proposed.
    pub requests: Vec<RequestView>,
    /// Operations without effect, with their reasons.
    pub void_operations: usize,
    /// Organisation keys replaced (lost or stolen), oldest first: the fingerprint history.
    #[serde(default)]
    pub replaced_keys: Vec<crate::membership::RetiredKey>,
    /// The current key of each organisation whose key was replaced.
    #[serde(default)]
    pub current_keys: BTreeMap<OrgId, KeyId>,
    /// The organisations that registered an offline recovery key, and its public half.
    #[serde(default)]
    pub recovery_keys: BTreeMap<OrgId, KeyId>,
}

/// Input refused: the field, and what is wrong in English and in French.
fn invalid(field: &str, message: impl Into<String>, fr: impl Into<String>) -> NodeError {
    NodeError::Invalid(ValidationError::new(field, message).fr(fr))
}

/// Input refused as its parser says it (in English).
fn refused(field: &str, error: impl std::fmt::Display) -> NodeError {
    NodeError::Invalid(ValidationError::new(field, error.to_string()))
}

/// Input refused by the network document, in French too where the rule says it.
fn refused_network(field: &str, error: NetworkDocumentError) -> NodeError {
    match error.fr() {
        Some(fr) => invalid(field, error.to_string(), fr),
        None => refused(field, error),
    }
}

/// Input refused by the membership rules, in both languages.
fn refused_membership(field: &str, error: MembershipError) -> NodeError {
    invalid(field, error.to_string(), error.fr())
}

/// Creates a network in a node's data folder (the node must be stopped): the genesis with
/// the charter and this organisation's ratification. This organisation must be a founder.
pub fn create_network(config: &Config, charter: Charter) -> Result<NetworkId, NodeError> {
    let identity = Identity::load_with(&config.data_dir, config.passphrase.as_ref())?;
    let store = Store::open(&config.store_dir())?;
    if let Some(existing) = store.network()? {
        return Err(invalid(
            "network",
            format!(
                "this node already belongs to network {existing}; a node belongs to one network"
            ),
            format!(
                "ce nœud appartient déjà au réseau {existing} ; un nœud appartient à un seul réseau"
            ),
        ));
    }
    let (network, changes) =
        NetworkDocument::create(identity.signing(), charter, crate::unix_now())
            .map_err(|e| refused_network("charter", e))?;
    store.put_changes(&changes)?;
    store.set_network(&network.network(), &[])?;
    Ok(network.network())
}

/// Founds a network whose founders' data folders are all on this machine (the demo, tests,
/// a training setup): the first folder's organisation creates the genesis, every other
/// founder's key signs its ratification, and every folder records the whole. The nodes
/// must be stopped. The charter's founders are replaced by these folders' organisations.
pub fn found_network_locally(
    configs: &[Config],
    mut charter: Charter,
) -> Result<NetworkId, NodeError> {
    let identities = configs
        .iter()
        .map(|c| Identity::load_with(&c.data_dir, c.passphrase.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(first) = identities.first() else {
        return Err(invalid(
            "founders",
            "at least one founder",
            "au moins un fondateur",
        ));
    };
    charter.founders = identities.iter().map(|i| i.org_id()).collect();
    let now = crate::unix_now();
    let (mut network, mut changes) = NetworkDocument::create(first.signing(), charter, now)
        .map_err(|e| refused_network("charter", e))?;
    for identity in &identities[1..] {
        let ratify = network
            .append(Operation::Ratify, identity.signing(), now)
            .map_err(|e| refused_network("charter", e))?;
        changes.push(ratify);
    }
    for config in configs {
        let store = Store::open(&config.store_dir())?;
        if let Some(existing) = store.network()? {
            return Err(invalid(
                "network",
                format!(
                    "{} already belongs to network {existing}",
                    config.data_dir.display()
                ),
                format!(
                    "{} appartient déjà au réseau {existing}",
                    config.data_dir.display()
                ),
            ));
        }
        store.put_changes(&changes)?;
        store.set_network(&network.network(), &[])?;
    }
    Ok(network.network())
}

/// Records the network a node joins and the peers to reach it (the node must be stopped).
pub fn join_network(
    config: &Config,
    network: NetworkId,
    peers: &[String],
) -> Result<(), NodeError> {
    let store = Store::open(&config.store_dir())?;
    store.set_network(&network, peers)?;
    Ok(())
}

/// The candidate of an admission proposal.
fn admission_subject(change: &SignedChange) -> Option<OrgId> {
    let operation = Operation::from_message(change.change().message()?).ok()?;
    match operation {
        Operation::Propose {
            action: Action::Admit { request },
        } => serde_json::from_str::<AdmissionRequest>(&request.body)
            .ok()
            .map(|r| r.org),
        _ => None,
    }
}

impl DocumentsActor {
    pub(super) fn membership(&self) -> Option<&Membership> {
        self.network.as_ref().and_then(|n| n.membership())
    }

    pub(super) fn membership_summary(&self) -> MembershipSummary {
        let own = self.own;
        let key = self.identity.key_id();
        let Some(network) = &self.network else {
            return MembershipSummary {
                role: "no network".into(),
                ..Default::default()
            };
        };
        let requests = self.pending_requests().len();
        let Some(m) = network.membership() else {
            return MembershipSummary {
                network_id: Some(network.network().to_string()),
                role: "joining (the network document has not arrived yet)".into(),
                requests,
                ..Default::default()
            };
        };
        let role = if key != m.own_key_of(&own) {
            match m.devices.get(&key) {
                Some(d) if d.withdrawn_keep.is_some() => "device (withdrawn)",
                Some(_) if m.members.contains_key(&own) => "device of a member",
                Some(_) => "device of an organisation that is not a member",
                None => {
                    "device (not yet authorised: run `passerelle device add <this node's key>` on the organisation's node)"
                }
            }
        } else if m.members.contains_key(&own) {
            if m.is_active() {
                "member"
            } else {
                "member (network not active: a founder has not ratified)"
            }
        } else if m.charter.founders.contains(&own) {
            "founder (not ratified: run `passerelle network ratify`)"
        } else if m.revoked.contains_key(&own) {
            "former member (revoked)"
        } else if self.store.own_request().ok().flatten().is_some() {
            "candidate (admission requested)"
        } else {
            "not a member (run `passerelle member request`)"
        };
        MembershipSummary {
            network_id: Some(network.network().to_string()),
            network_name: Some(m.charter.name.clone()),
            role: role.into(),
            members: m.members.len(),
            open_proposals: m
                .proposals
                .iter()
                .filter(|p| p.status == crate::membership::ProposalStatus::Open)
                .count(),
            requests,
        }
    }

    /// Admission requests received, verified, for this network, not yet proposed or decided.
    fn pending_requests(&self) -> Vec<(SignedRequest, AdmissionRequest)> {
        let Some(m) = self.membership() else {
            return Vec::new();
        };
        self.store
            .admission_requests()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|raw| serde_json::from_slice::<SignedRequest>(&raw).ok())
            // Verified when received; the inbox is this node's own disk.
            .filter_map(|signed| {
                serde_json::from_str::<AdmissionRequest>(&signed.body)
                    .ok()
                    .map(|r| (signed, r))
            })
            .filter(|(_, r)| {
                r.network == m.network
                    && !m.knows_key(&r.org.key())
                    && m.open_proposal_about(&r.org.to_string()).is_none()
            })
            .collect()
    }

    pub(super) fn handle_membership(&mut self) -> Result<MembershipView, NodeError> {
        let summary = self.membership_summary();
        let requests = self
            .pending_requests()
            .into_iter()
            .map(|(_, r)| RequestView {
                fingerprint: r.org.fingerprint(),
                org: r.org,
                name: r.name,
                message: r.message,
                created: r.created,
            })
            .collect();
        let Some(m) = self.membership().cloned() else {
            return Ok(MembershipView {
                summary,
                charter: None,
                awaiting_ratification: Vec::new(),
                members: Vec::new(),
                former_members: Vec::new(),
                devices: Vec::new(),
                proposals: Vec::new(),
                requests,
                void_operations: 0,
                replaced_keys: Vec::new(),
                current_keys: BTreeMap::new(),
                recovery_keys: BTreeMap::new(),
            });
        };
        let name_of = |org: &OrgId| {
            self.documents
                .get(org)
                .and_then(|d| d.record())
                .map(|r| r.profile.name.clone())
        };
        let members = m
            .members
            .values()
            .map(|member| {
                let mut member = member.clone();
                if let Some(name) = name_of(&member.org) {
                    member.name = name;
                }
                member
            })
            .collect();
        Ok(MembershipView {
            summary,
            awaiting_ratification: m
                .charter
                .founders
                .iter()
                .filter(|f| !m.ratified.contains(f))
                .copied()
                .collect(),
            charter: Some(m.charter.clone()),
            members,
            former_members: m.revoked.values().cloned().collect(),
            devices: m.devices.values().cloned().collect(),
            proposals: m
                .proposals
                .iter()
                .filter(|p| p.status == crate::membership::ProposalStatus::Open)
                .cloned()
                .collect(),
            requests,
            void_operations: m.void.len(),
            replaced_keys: m
                .org_keys
                .keys()
                .flat_map(|org| m.key_history(org))
                .cloned()
                .collect(),
            current_keys: m.org_keys.clone(),
            recovery_keys: m.recovery.clone(),
        })
    }

    pub(super) fn handle_decision(
        &mut self,
        decision: Decision,
    ) -> Result<DecisionReceipt, NodeError> {
        let own = self.own;
        let Some(network) = &self.network else {
            return Err(invalid(
                "network",
                "this node is in no network: run `passerelle network create` or `passerelle network join` first",
                "ce nœud n'est dans aucun réseau : lancez d'abord `passerelle network create` ou `passerelle network join`",
            ));
        };
        let network_id = network.network();
        if let Decision::Request { message } = decision {
            return self.make_request(network_id, message);
        }
        let Some(m) = network.membership() else {
            return Err(invalid(
                "network",
                "the network document has not arrived yet: wait until the node has synced with a member",
                "le document du réseau n'est pas encore arrivé : attendez que le nœud se soit synchronisé avec un membre",
            ));
        };
        let (operation, message) = match decision {
            // Handled above, before the membership is read.
            Decision::Request { message } => return self.make_request(network_id, message),
            Decision::Ratify => (Operation::Ratify, "charter ratified".to_owned()),
            Decision::Approve { org } => {
                if let Some(p) = m.open_proposal_about(&org.to_string()) {
                    (
                        Operation::Approve {
                            proposal: p.id.clone(),
                        },
                        format!(
                            "approved the open proposal about {} ({} of {} approvals before this one)",
                            org.fingerprint(),
                            p.approvals.len(),
                            p.required
                        ),
                    )
                } else if let Some(request) = self
                    .store
                    .admission_request(&org)?
                    .and_then(|raw| serde_json::from_slice::<SignedRequest>(&raw).ok())
                {
                    (
                        Operation::Propose {
                            action: Action::Admit { request },
                        },
                        format!(
                            "proposed the admission of {} (needs {} approvals)",
                            org.fingerprint(),
                            m.charter.admission.required(m.members.len())
                        ),
                    )
                } else {
                    return Err(NodeError::not_found(
                        format!(
                            "nothing to approve about {org}: no open proposal, and no admission request from it on this node (ask it to run `passerelle member request` while connected to this node)"
                        ),
                        format!(
                            "rien à approuver au sujet de {org} : aucune proposition ouverte, et aucune demande d'admission de sa part sur ce nœud (demandez-lui de lancer `passerelle member request` pendant qu'il est connecté à ce nœud)"
                        ),
                    ));
                }
            }
            Decision::Revoke { org, reason } => {
                if let Some(p) = m.open_proposal_about(&org.to_string()) {
                    if !matches!(p.action, Action::Revoke { .. }) {
                        return Err(invalid(
                            "org",
                            "the open proposal about it is not a revocation",
                            "la proposition ouverte à son sujet n'est pas une révocation",
                        ));
                    }
                    (
                        Operation::Approve {
                            proposal: p.id.clone(),
                        },
                        format!("approved the revocation of {}", org.fingerprint()),
                    )
                } else {
                    let keep = Self::keep_point(&mut self.documents, &org);
                    (
                        Operation::Propose {
                            action: Action::Revoke { org, reason, keep },
                        },
                        format!(
                            "proposed the revocation of {} (needs {} approvals)",
                            org.fingerprint(),
                            m.charter
                                .revocation
                                .required(m.members.len().saturating_sub(1).max(1))
                        ),
                    )
                }
            }
            Decision::Amend { amendment } => {
                if let Some(p) = m.open_proposal_about("charter") {
                    if !matches!(&p.action, Action::Amend { amendment: a } if *a == amendment) {
                        return Err(invalid(
                            "amendment",
                            "another amendment is open: approve it (with the same values) or wait until it is decided",
                            "un autre amendement est ouvert : approuvez-le (avec les mêmes valeurs) ou attendez qu'il soit décidé",
                        ));
                    }
                    (
                        Operation::Approve {
                            proposal: p.id.clone(),
                        },
                        "approved the charter amendment".to_owned(),
                    )
                } else {
                    (
                        Operation::Propose {
                            action: Action::Amend { amendment },
                        },
                        "proposed a charter amendment".to_owned(),
                    )
                }
            }
            Decision::AddDevice { device, label } => (
                Operation::Delegate { device, label },
                format!("authorised device {}", device.fingerprint()),
            ),
            Decision::RotateKey { org, key, reason } => {
                if let Some(p) = m.open_proposal_about(&org.to_string()) {
                    if !matches!(&p.action, Action::Rotate { key: k, .. } if *k == key) {
                        return Err(invalid(
                            "org",
                            "another decision about this member is open: approve it, or wait until it is decided",
                            "une autre décision sur ce membre est ouverte : approuvez-la, ou attendez qu'elle soit décidée",
                        ));
                    }
                    (
                        Operation::Approve {
                            proposal: p.id.clone(),
                        },
                        format!(
                            "approved the rotation of the key of {} ({} of {} approvals before this one)",
                            org.fingerprint(),
                            p.approvals.len(),
                            p.required
                        ),
                    )
                } else {
                    let keep = Self::keep_point(&mut self.documents, &org);
                    (
                        Operation::Propose {
                            action: Action::Rotate {
                                org,
                                key,
                                reason,
                                keep,
                            },
                        },
                        format!(
                            "proposed replacing the key of {} by {} (needs {} approvals)",
                            org.fingerprint(),
                            key.fingerprint(),
                            m.charter
                                .revocation
                                .required(m.members.len().saturating_sub(1).max(1))
                        ),
                    )
                }
            }
            Decision::Recover { rotation } => {
                let statement: crate::membership::RotationStatement =
                    serde_json::from_str(&rotation.body).map_err(|e| {
                        invalid(
                            "rotation",
                            format!("the statement does not decode: {e}"),
                            format!("la déclaration ne se lit pas : {e}"),
                        )
                    })?;
                let keep = Self::keep_point(&mut self.documents, &statement.org);
                (
                    Operation::Recover { rotation, keep },
                    format!(
                        "brought the recovery of {}: its key is now {}",
                        statement.org.fingerprint(),
                        statement.key.fingerprint()
                    ),
                )
            }
            Decision::SetRecovery { key } => (
                Operation::SetRecovery { key },
                format!("registered the recovery key {}", key.fingerprint()),
            ),
            Decision::GrantCaseFiles { device, case_key } => {
                let known = m.devices.get(&device).filter(|d| d.org == own);
                match known {
                    None => {
                        return Err(invalid(
                            "device",
                            format!(
                                "{device} is not a device of this organisation: authorise it first (`passerelle device add`)"
                            ),
                            format!(
                                "{device} n'est pas un appareil de cette organisation : autorisez-le d'abord (`passerelle device add`)"
                            ),
                        ));
                    }
                    Some(d) if d.withdrawn_keep.is_some() => {
                        return Err(invalid(
                            "device",
                            format!("{device} was withdrawn"),
                            format!("{device} a été retiré"),
                        ));
                    }
                    Some(d) if d.case_key.is_some() => {
                        return Err(invalid(
                            "device",
                            format!("{device} already receives case files"),
                            format!("{device} reçoit déjà des dossiers"),
                        ));
                    }
                    Some(_) => {}
                }
                (
                    Operation::Grant { device, case_key },
                    format!("device {} may receive case files", device.fingerprint()),
                )
            }
            Decision::RevokeCaseFiles { device } => {
                if m.office_case_key(&device).is_none()
                    || m.devices.get(&device).is_none_or(|d| d.org != own)
                {
                    return Err(invalid(
                        "device",
                        format!(
                            "{device} is not a device of this organisation receiving case files"
                        ),
                        format!(
                            "{device} n'est pas un appareil de cette organisation recevant des dossiers"
                        ),
                    ));
                }
                (
                    Operation::Ungrant { device },
                    format!(
                        "device {} receives no more case files; it destroys those it holds",
                        device.fingerprint()
                    ),
                )
            }
            Decision::RemoveDevice { device } => {
                // The device keeps what this node holds of its changes.
                let keep = self
                    .documents
                    .get_mut(&own)
                    .and_then(|d| d.latest_seq_by_key().get(&device).copied())
                    .unwrap_or(0);
                (
                    Operation::Undelegate { device, keep },
                    format!(
                        "withdrew device {} (keeps its first {keep} changes)",
                        device.fingerprint()
                    ),
                )
            }
        };
        let audit = match &operation {
            Operation::Grant { device, case_key } => Some((
                "office_granted",
                format!(
                    "device {} may receive case files, sealed to its key {case_key}",
                    device.fingerprint()
                ),
            )),
            Operation::Ungrant { device } => Some((
                "office_access_ended",
                format!(
                    "device {} receives no more case files and destroys those it holds",
                    device.fingerprint()
                ),
            )),
            _ => None,
        };
        let receipt = self.append_operation(operation, message)?;
        if let Some((action, detail)) = audit {
            self.audit("", action, "operator", detail);
        }
        Ok(receipt)
    }

    /// The keep-point of a revocation or key rotation: for each key, the last sequence
    /// number of `org`'s document among `documents` (those this node holds).
    fn keep_point(
        documents: &mut BTreeMap<OrgId, crate::document::OrganisationDocument>,
        org: &OrgId,
    ) -> BTreeMap<KeyId, u64> {
        documents
            .get_mut(org)
            .map(|d| d.latest_seq_by_key())
            .unwrap_or_default()
    }

    fn append_operation(
        &mut self,
        operation: Operation,
        message: String,
    ) -> Result<DecisionReceipt, NodeError> {
        let Some(network) = self.network.as_mut() else {
            return Err(invalid(
                "network",
                "this node is in no network",
                "ce nœud n'est dans aucun réseau",
            ));
        };
        let before = network.membership().map(|m| m.write_rules_digest());
        let signed = network
            .append(operation, self.identity.signing(), crate::unix_now())
            .map_err(|e| refused_network("decision", e))?;
        if let Err(e) = self.store.put_changes(std::slice::from_ref(&signed)) {
            error!(error = %e, "could not store a membership operation; reloading the network document");
            self.reload_network();
            return Err(e.into());
        }
        self.publish(&signed);
        info!(change = %signed.hash(), "{message}");
        if let Some(subject) = admission_subject(&signed) {
            // Proposed: the request now travels inside the network document.
            self.store.remove_admission_request(&subject)?;
        }
        if self.membership().map(|m| m.write_rules_digest()) != before {
            self.enforce_write_rules();
        }
        Ok(DecisionReceipt {
            change: signed.hash().to_string(),
            message,
        })
    }

    fn make_request(
        &mut self,
        network: NetworkId,
        message: String,
    ) -> Result<DecisionReceipt, NodeError> {
        let own = self.identity.org_id();
        if own != self.own {
            return Err(invalid(
                "request",
                "a device node does not ask to join: its organisation does, from its own node",
                "un appareil ne demande pas à rejoindre le réseau : son organisation le fait, depuis son propre nœud",
            ));
        }
        if self.membership().is_some_and(|m| m.knows_key(&own.key())) {
            return Err(invalid(
                "request",
                "this organisation is already a founder, member or former member of the network",
                "cette organisation est déjà fondatrice, membre ou ancien membre du réseau",
            ));
        }
        let name = self
            .documents
            .get(&own)
            .and_then(|d| d.record())
            .map(|r| r.profile.name.clone())
            .unwrap_or_default();
        let request = AdmissionRequest {
            network,
            org: own,
            name,
            message,
            created: crate::unix_now(),
        };
        let signed = SignedRequest::sign(&request, self.identity.signing())
            .map_err(|e| refused_membership("request", e))?;
        let bytes = serde_json::to_vec(&signed).map_err(|e| refused("request", e))?;
        self.store.set_own_request(&bytes)?;
        if let Some(outbound) = &self.outbound {
            let _ = outbound.try_send(super::Outbound::AdmissionRequest);
        }
        Ok(DecisionReceipt {
            change: String::new(),
            message: "admission request signed; this node hands it to every member node it connects to until the members decide".into(),
        })
    }

    pub(super) fn handle_admission_received(
        &mut self,
        raw: &[u8],
        from: KeyId,
    ) -> Result<String, NodeError> {
        let Some(m) = self.membership() else {
            return Err(invalid(
                "request",
                "this node is in no network",
                "ce nœud n'est dans aucun réseau",
            ));
        };
        let signed: SignedRequest =
            serde_json::from_slice(raw).map_err(|e| refused("request", e))?;
        let request = signed
            .verify()
            .map_err(|e| refused_membership("request", e))?;
        if request.org.key() != from {
            return Err(invalid(
                "request",
                "a request is delivered by the candidate's own node",
                "une demande est remise par le nœud même du candidat",
            ));
        }
        if request.network != m.network {
            return Err(invalid(
                "request",
                "the request is for another network",
                "la demande vise un autre réseau",
            ));
        }
        if m.knows_key(&request.org.key()) {
            return Ok("already decided".into());
        }
        if m.open_proposal_about(&request.org.to_string()).is_some() {
            return Ok("the members are deciding".into());
        }
        if !self.store.put_admission_request(&request.org, raw)? {
            return Err(invalid(
                "request",
                "this node's inbox of admission requests is full",
                "la boîte des demandes d'admission de ce nœud est pleine",
            ));
        }
        info!(candidate = %request.org.fingerprint(), name = %request.name, "admission request received");
        Ok("received; the members will decide".into())
    }

    pub(super) fn reload_network(&mut self) {
        let Some(id) = self.network.as_ref().map(|n| n.network()) else {
            return;
        };
        let rebuilt = self.store.load_document(&id.document_id()).map(|held| {
            let (ordered, _) = super::replication::release_in_order(held, |_| false);
            let mut network = NetworkDocument::empty(id);
            for change in &ordered {
                if let Err(e) = network.apply_unfolded(change) {
                    warn!(error = %e, "a stored network change does not apply");
                }
            }
            network.refold();
            network
        });
        match rebuilt {
            Ok(network) => self.network = Some(network),
            Err(e) => error!(error = %e, "could not reload the network document"),
        }
    }

    /// Cuts every document back to what the write rules allow now (after a revocation, a
    /// device withdrawal, or an admission voided by a concurrent decision). This node's
    /// own document is never cut on its own node.
    pub(super) fn enforce_write_rules(&mut self) {
        self.enforce_office_grant();
        self.own_key_duties();
        let Some(m) = self.membership().cloned() else {
            return;
        };
        let own = self.own;
        let owners: Vec<OrgId> = self.documents.keys().copied().collect();
        for owner in owners {
            if owner == own {
                continue;
            }
            let fast_path = m.members.contains_key(&owner)
                && !m
                    .devices
                    .values()
                    .any(|d| d.org == owner && d.withdrawn_keep.is_some())
                && !m.org_keys.contains_key(&owner);
            if fast_path {
                continue;
            }
            if let Err(e) = self.cut_document(&m, owner) {
                error!(org = %owner, error = %e, "could not cut a document back to its write rules");
            }
        }
    }

    /// What this node does once the membership says it is its organisation's own node:
    /// publishes its encryption key in the organisation's document (after a key rotation,
    /// the new node's, so that case files are sealed to it), and registers the recovery key
    /// made at `init`. Runs when the membership changes and at each housekeeping.
    pub(super) fn own_key_duties(&mut self) {
        let own = self.own;
        let Some(m) = self.membership() else {
            return;
        };
        if !m.is_active() || !m.members.contains_key(&own) || self.is_device_node() {
            return;
        }
        let registered = m.recovery.get(&own).copied();
        let mine = self.identity.encryption_public_key();
        let published = self
            .documents
            .get(&own)
            .and_then(|d| d.record())
            .map(|r| r.encryption_key);
        if let Some(published) = published
            && published != Some(mine)
        {
            match self.handle_edit(crate::document::Edit::SetEncryptionKey { key: mine }) {
                Ok(_) => {
                    info!("published this node's encryption key in the organisation's document")
                }
                Err(e) => warn!(error = %e, "could not publish this node's encryption key"),
            }
        }
        let pending = match self.store.recovery_pending() {
            Ok(pending) => pending,
            Err(e) => {
                warn!(error = %e, "could not read the recovery key to register");
                return;
            }
        };
        let Some(key) = pending else {
            return;
        };
        match registered {
            Some(done) if done == key => {
                let _ = self.store.set_recovery_pending(None);
            }
            Some(other) => {
                warn!(registered = %other.fingerprint(), made = %key.fingerprint(), "another recovery key is registered for this organisation: if it is not yours, ask the members to rotate this organisation's key");
                let _ = self.store.set_recovery_pending(None);
            }
            None => match self.handle_decision(Decision::SetRecovery { key }) {
                Ok(_) => {
                    let _ = self.store.set_recovery_pending(None);
                }
                Err(e) => warn!(error = %e, "could not register the recovery key"),
            },
        }
    }

    fn cut_document(&mut self, m: &Membership, owner: OrgId) -> Result<(), NodeError> {
        let id = crate::envelope::DocumentId::organisation(&owner);
        let held = self.store.load_document(&id)?;
        let (ordered, _) = super::replication::release_in_order(held, |_| false);
        let mut allowed: HashSet<automerge::ChangeHash> = HashSet::new();
        let mut kept: Vec<SignedChange> = Vec::new();
        let mut cut = Vec::new();
        for change in ordered {
            let ok = m
                .may_write(&owner, &change.author(), change.change().seq())
                .is_ok()
                && change.change().deps().iter().all(|d| allowed.contains(d));
            if ok {
                allowed.insert(change.hash());
                kept.push(change);
            } else {
                cut.push(change.hash());
            }
        }
        if cut.is_empty() {
            return Ok(());
        }
        warn!(org = %owner.fingerprint(), cut = cut.len(), kept = kept.len(), "membership decision: document cut back to what it keeps");
        self.store.remove_changes(&id, &cut)?;
        if kept.is_empty() {
            self.documents.remove(&owner);
            self.change_counts.remove(&owner);
            self.since_snapshot.remove(&owner);
            return Ok(());
        }
        let document = rebuild(&id, &kept, None)?;
        self.change_counts.insert(owner, kept.len());
        self.documents.insert(owner, document);
        self.since_snapshot.insert(owner, 1);
        Ok(())
    }
}
