//! Edits of an organisation's document: what a client may ask for ([`Edit`]), and the plan
//! of each — checked against the current record, pure — as the new value it produces
//! (`Update`), before anything is written to Automerge.

use serde::{Deserialize, Serialize};

use super::{DocumentError, to_json};
use crate::identity::{EncryptionPublicKey, OrgId};
use crate::model::{
    self, Office, OrganisationRecord, Profile, Service, ValidationError, decode_json, merge_patch,
};
use crate::referral::board::{self, Answer, Assignment, MoveRecord, Proposal, SentReferral};

/// One edit of an organisation's document.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "edit", rename_all = "snake_case")]
pub enum Edit {
    /// Change profile fields (shallow merge patch).
    SetProfile {
        /// Fields to replace; `null` clears one.
        patch: serde_json::Map<String, serde_json::Value>,
    },
    /// Add an office under a new id.
    AddOffice {
        /// The new id (`off-…`).
        id: String,
        /// The office.
        office: Box<Office>,
    },
    /// Change office fields.
    UpdateOffice {
        /// Which office.
        id: String,
        /// Fields to replace.
        patch: serde_json::Map<String, serde_json::Value>,
    },
    /// Remove an office.
    RemoveOffice {
        /// Which office.
        id: String,
    },
    /// Add a service under a new id.
    AddService {
        /// The new id (`svc-…`).
        id: String,
        /// The service.
        service: Box<Service>,
    },
    /// Change service fields.
    UpdateService {
        /// Which service.
        id: String,
        /// Fields to replace.
        patch: serde_json::Map<String, serde_json::Value>,
    },
    /// Remove a service.
    RemoveService {
        /// Which service.
        id: String,
    },
    /// Publish the organisation's X25519 key, to which case files are sealed.
    SetEncryptionKey {
        /// The public key.
        key: EncryptionPublicKey,
    },
    /// Record a referral this organisation sends (the node checked consent and the case
    /// file first; the referral carries no personal data).
    SendReferral {
        /// The referral id (`ref-…`).
        id: String,
        /// The referral.
        referral: Box<SentReferral>,
    },
    /// Record one of this organisation's moves on a referral: as its sender, or (with
    /// `answering`) as the receiver of that organisation's referral.
    MoveReferral {
        /// The referral id.
        id: String,
        /// The move.
        record: MoveRecord,
        /// The sender of the referral this organisation answers; `None` for its own.
        #[serde(default)]
        answering: Option<OrgId>,
    },
    /// Offer one of this organisation's services for another's open referral.
    ProposeForReferral {
        /// The referral id.
        id: String,
        /// The offer.
        proposal: Proposal,
    },
    /// Choose who takes this organisation's open referral.
    AssignReferral {
        /// The referral id.
        id: String,
        /// The choice.
        assignment: Assignment,
    },
    /// Publish (or replace) a draft profile of another organisation, from a historical
    /// mapping.
    PutDraft {
        /// The draft id (`dft-…`).
        id: String,
        /// The draft.
        draft: Box<model::Draft>,
    },
    /// Withdraw a draft this organisation published.
    RemoveDraft {
        /// Which draft.
        id: String,
    },
    /// Publish where one of this organisation's nodes (the one whose key signs) can be
    /// reached; replaces what it published before.
    SetAddresses {
        /// The node's key id.
        key: crate::identity::KeyId,
        /// Its addresses, most direct first.
        addresses: Vec<String>,
    },
    /// Record that this organisation claimed a draft (its entries are copied by ordinary
    /// edits).
    ClaimDraft {
        /// The draft id.
        id: String,
        /// Who published it, and when it was claimed.
        claim: model::Claim,
    },
}

impl Edit {
    /// Changes the profile fields `patch` gives.
    pub fn set_profile(patch: crate::model::ProfilePatch) -> Self {
        use crate::model::Patch;
        Edit::SetProfile {
            patch: patch.into_map(),
        }
    }

    /// Changes the fields `patch` gives of office `id`.
    pub fn update_office(id: impl Into<String>, patch: crate::model::OfficePatch) -> Self {
        use crate::model::Patch;
        Edit::UpdateOffice {
            id: id.into(),
            patch: patch.into_map(),
        }
    }

    /// Changes the fields `patch` gives of service `id`.
    pub fn update_service(id: impl Into<String>, patch: crate::model::ServicePatch) -> Self {
        use crate::model::Patch;
        Edit::UpdateService {
            id: id.into(),
            patch: patch.into_map(),
        }
    }

    /// True for the edits the node makes itself and a client may not ask for directly:
    /// referral parts (they need consent, a case file and the merged status checked) and
    /// the encryption key.
    pub fn is_node_managed(&self) -> bool {
        matches!(
            self,
            Self::SetEncryptionKey { .. }
                | Self::SetAddresses { .. }
                | Self::SendReferral { .. }
                | Self::MoveReferral { .. }
                | Self::ProposeForReferral { .. }
                | Self::AssignReferral { .. }
        )
    }
}

/// The new value an edit produces, computed before anything is written.
#[derive(Debug)]
pub(super) enum Update {
    Profile(Profile),
    PutOffice(String, Box<Office>),
    RemoveOffice(String),
    PutService(String, Box<Service>),
    RemoveService(String),
    EncryptionKey(EncryptionPublicKey),
    PutReferral(String, Box<SentReferral>),
    AppendSentMove(String, MoveRecord),
    AppendAnswer(String, OrgId, MoveRecord),
    PutProposal(String, Proposal),
    Assign(String, Assignment),
    PutDraft(String, Box<model::Draft>),
    RemoveDraft(String),
    PutClaim(String, model::Claim),
    PutAddresses(String, model::NodeAddresses),
}

impl Update {
    pub(super) fn apply_to(self, record: &mut OrganisationRecord) {
        match self {
            Self::PutDraft(id, draft) => {
                record.drafts.insert(id, *draft);
            }
            Self::RemoveDraft(id) => {
                record.drafts.remove(&id);
            }
            Self::PutClaim(id, claim) => {
                record.claims.insert(id, claim);
            }
            Self::PutAddresses(key, entry) => {
                record.addresses.insert(key, entry);
            }
            Self::Profile(profile) => record.profile = profile,
            Self::PutOffice(id, office) => {
                record.offices.insert(id, *office);
            }
            Self::RemoveOffice(id) => {
                record.offices.remove(&id);
            }
            Self::PutService(id, service) => {
                record.services.insert(id, *service);
            }
            Self::RemoveService(id) => {
                record.services.remove(&id);
            }
            Self::EncryptionKey(key) => record.encryption_key = Some(key),
            Self::PutReferral(id, referral) => {
                record.referrals.insert(id, *referral);
            }
            Self::AppendSentMove(id, step) => {
                if let Some(referral) = record.referrals.get_mut(&id) {
                    referral.moves.push(step);
                }
            }
            Self::AppendAnswer(id, sender, step) => {
                record
                    .answers
                    .entry(id)
                    .or_insert_with(|| Answer {
                        sender,
                        moves: Vec::new(),
                    })
                    .moves
                    .push(step);
            }
            Self::PutProposal(id, proposal) => {
                record.proposals.insert(id, proposal);
            }
            Self::Assign(id, assignment) => {
                if let Some(referral) = record.referrals.get_mut(&id) {
                    referral.assigned = Some(assignment);
                }
            }
        }
    }
}

/// Checks `edit` against `record` and returns the change message and the new value.
pub(super) fn plan(
    edit: &Edit,
    record: &OrganisationRecord,
    owner: &OrgId,
    now: i64,
) -> Result<(String, Update), DocumentError> {
    let changed = |patch: &serde_json::Map<String, serde_json::Value>| {
        patch.keys().cloned().collect::<Vec<_>>().join(", ")
    };
    Ok(match edit {
        Edit::SetProfile { patch } => {
            let merged = merge_patch(&to_json(&record.profile), patch);
            let mut profile: Profile = decode_json("profile", merged)?;
            model::validate_profile(&mut profile)?;
            (
                format!("update profile: {}", changed(patch)),
                Update::Profile(profile),
            )
        }
        Edit::AddOffice { id, office } => {
            check_new_id("office", id, record.offices.contains_key(id))?;
            let mut office = (**office).clone();
            model::validate_office(&mut office)?;
            (
                format!("add office {id} {:?}", office.name),
                Update::PutOffice(id.clone(), Box::new(office)),
            )
        }
        Edit::UpdateOffice { id, patch } => {
            let current = record
                .offices
                .get(id)
                .ok_or_else(|| not_found("office", id))?;
            let merged = merge_patch(&to_json(current), patch);
            let mut office: Office = decode_json("office", merged)?;
            model::validate_office(&mut office)?;
            (
                format!("update office {id}: {}", changed(patch)),
                Update::PutOffice(id.clone(), Box::new(office)),
            )
        }
        Edit::RemoveOffice { id } => {
            let office = record
                .offices
                .get(id)
                .ok_or_else(|| not_found("office", id))?;
            if let Some((service_id, _)) =
                record.services.iter().find(|(_, s)| s.offices.contains(id))
            {
                return Err(ValidationError::new(
                    "id",
                    format!(
                        "office {id} is still used by service {service_id}; update or remove that service first"
                    ),
                )
                .fr(format!(
                    "le bureau {id} sert encore au service {service_id} ; modifiez ou retirez d'abord ce service"
                ))
                .into());
            }
            (
                format!("remove office {id} {:?}", office.name),
                Update::RemoveOffice(id.clone()),
            )
        }
        Edit::AddService { id, service } => {
            check_new_id("service", id, record.services.contains_key(id))?;
            let mut service = (**service).clone();
            model::validate_service(&mut service, &record.offices)?;
            service.last_update = now;
            (
                format!("add service {id} {:?}", service.name),
                Update::PutService(id.clone(), Box::new(service)),
            )
        }
        Edit::UpdateService { id, patch } => {
            let current = record
                .services
                .get(id)
                .ok_or_else(|| not_found("service", id))?;
            let mut patch = patch.clone();
            patch.remove("last_update");
            let merged = merge_patch(&to_json(current), &patch);
            let mut service: Service = decode_json("service", merged)?;
            model::validate_service(&mut service, &record.offices)?;
            service.last_update = now;
            (
                format!("update service {id}: {}", changed(&patch)),
                Update::PutService(id.clone(), Box::new(service)),
            )
        }
        Edit::RemoveService { id } => {
            let service = record
                .services
                .get(id)
                .ok_or_else(|| not_found("service", id))?;
            (
                format!("remove service {id} {:?}", service.name),
                Update::RemoveService(id.clone()),
            )
        }
        Edit::SetEncryptionKey { key } => (
            format!("publish encryption key {key}"),
            Update::EncryptionKey(*key),
        ),
        Edit::SendReferral { id, referral } => {
            if record.referrals.contains_key(id) {
                return Err(
                    ValidationError::new("id", format!("referral {id} already exists"))
                        .fr(format!("la référence {id} existe déjà"))
                        .into(),
                );
            }
            board::check_sent(owner, id, referral)
                .map_err(|e| ValidationError::new("referral", e.to_string()))?;
            (
                format!("send referral {id}"),
                Update::PutReferral(id.clone(), referral.clone()),
            )
        }
        Edit::MoveReferral {
            id,
            record: step,
            answering,
        } => {
            let code = step.action.target();
            match answering {
                None => {
                    let mut referral = record
                        .referrals
                        .get(id)
                        .cloned()
                        .ok_or_else(|| not_found("referral", id))?;
                    referral.moves.push(step.clone());
                    board::check_sent(owner, id, &referral)
                        .map_err(|e| ValidationError::new("move", e.to_string()))?;
                    (
                        format!("referral {id}: {code}"),
                        Update::AppendSentMove(id.clone(), step.clone()),
                    )
                }
                Some(sender) => {
                    let mut answer = record.answers.get(id).cloned().unwrap_or(Answer {
                        sender: *sender,
                        moves: Vec::new(),
                    });
                    if answer.sender != *sender {
                        return Err(ValidationError::new(
                            "referral",
                            format!("referral {id} was sent by {}, not {sender}", answer.sender),
                        )
                        .fr(format!(
                            "la référence {id} a été envoyée par {}, pas par {sender}",
                            answer.sender
                        ))
                        .into());
                    }
                    answer.moves.push(step.clone());
                    board::check_answer(owner, id, &answer)
                        .map_err(|e| ValidationError::new("move", e.to_string()))?;
                    (
                        format!("answer referral {id}: {code}"),
                        Update::AppendAnswer(id.clone(), *sender, step.clone()),
                    )
                }
            }
        }
        Edit::ProposeForReferral { id, proposal } => {
            if record.proposals.contains_key(id) {
                return Err(ValidationError::new(
                    "referral",
                    format!("this organisation already proposed for referral {id}"),
                )
                .fr(format!(
                    "cette organisation s'est déjà proposée pour la référence {id}"
                ))
                .into());
            }
            if !record.services.contains_key(&proposal.service) {
                return Err(not_found("service", &proposal.service));
            }
            board::check_proposal(owner, id, proposal)
                .map_err(|e| ValidationError::new("referral", e.to_string()))?;
            (
                format!("propose {} for referral {id}", proposal.service),
                Update::PutProposal(id.clone(), proposal.clone()),
            )
        }
        Edit::PutDraft { id, draft } => {
            check_new_id("draft", id, false)?;
            let mut draft = (**draft).clone();
            model::validate_draft(&mut draft)?;
            (
                format!("publish draft {id} {:?}", draft.name),
                Update::PutDraft(id.clone(), Box::new(draft)),
            )
        }
        Edit::RemoveDraft { id } => {
            if !record.drafts.contains_key(id) {
                return Err(not_found("draft", id));
            }
            (
                format!("remove draft {id}"),
                Update::RemoveDraft(id.clone()),
            )
        }
        Edit::SetAddresses { key, addresses } => {
            let entry = model::NodeAddresses {
                addresses: addresses.clone(),
                updated: now,
            };
            let key = key.to_string();
            model::validate_addresses(&key, &entry)?;
            if !record.addresses.contains_key(&key)
                && record.addresses.len() >= model::MAX_ADDRESSED_NODES
            {
                return Err(ValidationError::new(
                    "addresses",
                    format!(
                        "addresses of {} nodes published already; at most {}",
                        record.addresses.len(),
                        model::MAX_ADDRESSED_NODES
                    ),
                )
                .fr(format!(
                    "adresses de {} nœuds déjà publiées ; au plus {}",
                    record.addresses.len(),
                    model::MAX_ADDRESSED_NODES
                ))
                .into());
            }
            (
                format!("publish the addresses of node {key}"),
                Update::PutAddresses(key, entry),
            )
        }
        Edit::ClaimDraft { id, claim } => {
            check_new_id("draft", id, false)?;
            (
                format!("claim draft {id} of {}", claim.publisher),
                Update::PutClaim(id.clone(), claim.clone()),
            )
        }
        Edit::AssignReferral { id, assignment } => {
            let mut referral = record
                .referrals
                .get(id)
                .cloned()
                .ok_or_else(|| not_found("referral", id))?;
            if !referral.open || referral.assigned.is_some() {
                return Err(ValidationError::new(
                    "referral",
                    format!("referral {id} is not an open referral waiting for assignment"),
                )
                .fr(format!(
                    "la référence {id} n'est pas une référence ouverte en attente d'attribution"
                ))
                .into());
            }
            referral.assigned = Some(assignment.clone());
            board::check_sent(owner, id, &referral)
                .map_err(|e| ValidationError::new("referral", e.to_string()))?;
            (
                format!("assign referral {id} to {}", assignment.receiver),
                Update::Assign(id.clone(), assignment.clone()),
            )
        }
    })
}

pub(super) fn not_found(kind: &'static str, id: &str) -> DocumentError {
    DocumentError::NotFound {
        kind,
        id: id.to_owned(),
    }
}

pub(super) fn check_new_id(kind: &str, id: &str, taken: bool) -> Result<(), ValidationError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !ok {
        return Err(ValidationError::new(
            "id",
            format!("{kind} id {id:?} must be 1 to 64 characters of a-z, 0-9, '-' or '_'"),
        )
        .fr(format!(
            "l'identifiant {id:?} ({kind}) doit compter 1 à 64 caractères parmi a-z, 0-9, '-' et '_'"
        )));
    }
    if taken {
        return Err(
            ValidationError::new("id", format!("a {kind} with id {id:?} already exists"))
                .fr(format!("l'identifiant {id:?} ({kind}) existe déjà")),
        );
    }
    Ok(())
}
