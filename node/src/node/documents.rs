//! The documents actor's side of the directory: edits of this organisation's document,
//! the views of any organisation's, and snapshots.

use tracing::{debug, error, warn};

use super::{DocumentsActor, EditReceipt, NodeError, OrganisationView, Outbound, rebuild};
use crate::document::{Edit, HistoryEntry, OrganisationDocument};
use crate::envelope::DocumentId;
use crate::envelope::SignedChange;
use crate::identity::OrgId;
use crate::model::ValidationError;

impl DocumentsActor {
    pub(super) fn handle_edit(&mut self, mut edit: Edit) -> Result<EditReceipt, NodeError> {
        let own = self.own;
        let key = self.identity.key_id();
        let id = assign_id(&mut edit)?;
        if key != self.own_key()
            && self.membership().and_then(|m| m.acting_member(&key)) != Some(own)
        {
            return Err(NodeError::Invalid(ValidationError::new(
                "device",
                format!(
                    "this node's key {key} is not (or no longer) an authorised device of {own}: run `passerelle device add {key}` on the organisation's node"
                ),
            )
            .fr(format!(
                "la clé {key} de ce nœud n'est pas (ou plus) un appareil autorisé de {own} : lancez `passerelle device add {key}` sur le nœud de l'organisation"
            ))));
        }
        let document = self.documents.get_mut(&own).ok_or_else(|| {
            NodeError::not_found(
                "this organisation's document is not on this node yet (a device node, or a node repaired with `passerelle repair`): wait until it has synced with a member",
                "le document de cette organisation n'est pas encore sur ce nœud (un appareil, ou un nœud réparé avec `passerelle repair`) : attendez qu'il se soit synchronisé avec un membre",
            )
        })?;
        let now = crate::unix_now();
        let signed = if key == own.key() {
            document.apply_edit(&edit, self.identity.signing(), now)?
        } else {
            document.apply_delegated_edit(&edit, self.identity.signing(), now)?
        };
        let synced = match self.store.put_changes(std::slice::from_ref(&signed)) {
            Ok(synced) => synced,
            Err(e) => {
                error!(error = %e, "could not store a change; reloading the document from the store");
                self.reload(own);
                return Err(e.into());
            }
        };
        debug!(change = %signed.hash(), "edit stored");
        // Until this organisation is a member, its changes stay local: peers would refuse
        // them. They reach the network by catch-up once it is admitted.
        if self.is_member_key(&key) {
            self.publish(&signed);
        }
        *self.change_counts.entry(own).or_default() += 1;
        *self.since_snapshot.entry(own).or_default() += 1;
        self.snapshot_due();
        Ok(EditReceipt::stored(&signed, id, synced))
    }

    /// Publishes this node's addresses in its organisation's document, unless they are
    /// there already or the organisation is not a member yet (peers would refuse the
    /// change); whether it wrote.
    pub(super) fn handle_publish_addresses(
        &mut self,
        addresses: Vec<String>,
    ) -> Result<bool, NodeError> {
        let key = self.identity.key_id();
        if !self.is_member_key(&key) {
            return Ok(false);
        }
        let published = self
            .documents
            .get(&self.own)
            .and_then(|d| d.record())
            .and_then(|r| r.addresses.get(&key.to_string()))
            .map(|entry| entry.addresses.clone());
        if published.as_ref() == Some(&addresses) {
            return Ok(false);
        }
        self.handle_edit(Edit::SetAddresses { key, addresses })?;
        Ok(true)
    }

    /// Members' nodes' published addresses, by node key (this node's left out).
    pub(super) fn handle_published_addresses(&self) -> Vec<(crate::identity::KeyId, Vec<String>)> {
        let own = self.identity.key_id();
        let mut out = Vec::new();
        for document in self.documents.values() {
            let Some(record) = document.record() else {
                continue;
            };
            for (key, entry) in &record.addresses {
                let Ok(key) = key.parse::<crate::identity::KeyId>() else {
                    continue;
                };
                if key != own && self.is_member_key(&key) {
                    out.push((key, entry.addresses.clone()));
                }
            }
        }
        out
    }

    /// Hands a new local change to the network for gossip.
    pub(super) fn publish(&self, signed: &SignedChange) {
        if let Some(outbound) = &self.outbound
            && outbound
                .try_send(Outbound::Change(signed.encode()))
                .is_err()
        {
            debug!("network busy; the change will reach peers by catch-up");
        }
    }

    /// Tells the network that case-file messages are queued (it also looks periodically).
    pub(super) fn nudge_network(&self) {
        if let Some(outbound) = &self.outbound {
            let _ = outbound.try_send(Outbound::CaseFiles);
        }
    }

    pub(super) fn reload(&mut self, org: OrgId) {
        let id = DocumentId::organisation(&org);
        let rebuilt = self
            .store
            .load_document(&id)
            .map_err(NodeError::from)
            .and_then(|changes| {
                if changes.is_empty() {
                    return Ok(None);
                }
                // From the signed changes alone: the snapshot may predate the failed write.
                rebuild(&id, &changes, None).map(Some)
            });
        match rebuilt {
            Ok(Some(document)) => {
                self.documents.insert(org, document);
            }
            Ok(None) => {
                self.documents.remove(&org);
            }
            Err(e) => error!(error = %e, "could not rebuild the document from the store"),
        }
    }

    pub(super) fn document(
        &mut self,
        org: Option<OrgId>,
    ) -> Result<&mut OrganisationDocument, NodeError> {
        let org = org.unwrap_or(self.own);
        self.documents.get_mut(&org).ok_or_else(|| {
            NodeError::not_found(
                format!("no organisation {org} on this node"),
                format!("aucune organisation {org} sur ce nœud"),
            )
        })
    }

    pub(super) fn handle_organisation(
        &mut self,
        org: Option<OrgId>,
    ) -> Result<OrganisationView, NodeError> {
        let document = self.document(org)?;
        let record = document.record().cloned().ok_or_else(|| {
            NodeError::not_found(
                "that organisation has no profile yet",
                "cette organisation n'a pas encore de profil",
            )
        })?;
        Ok(OrganisationView {
            fingerprint: document.owner().fingerprint(),
            document: document.id().to_string(),
            record,
        })
    }

    pub(super) fn handle_history(
        &mut self,
        org: Option<OrgId>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, NodeError> {
        Ok(self.document(org)?.history(limit))
    }

    pub(super) fn snapshot(&mut self, org: OrgId) {
        if let Some(document) = self.documents.get_mut(&org) {
            let snapshot = document.snapshot();
            match self.store.put_snapshot(document.id(), &snapshot) {
                Ok(()) => {
                    debug!(document = %document.id(), bytes = snapshot.document.len(), "snapshot written");
                    self.since_snapshot.insert(org, 0);
                }
                Err(e) => warn!(error = %e, "could not write a snapshot (changes are safe)"),
            }
        }
    }

    pub(super) fn snapshot_due(&mut self) {
        let due: Vec<OrgId> = self
            .since_snapshot
            .iter()
            .filter(|(_, n)| **n >= self.config.snapshot_every)
            .map(|(org, _)| *org)
            .collect();
        for org in due {
            self.snapshot(org);
        }
    }

    pub(super) fn snapshot_dirty(&mut self) {
        let dirty: Vec<OrgId> = self
            .since_snapshot
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(org, _)| *org)
            .collect();
        for org in dirty {
            self.snapshot(org);
        }
    }
}

/// Gives add edits without an id a fresh random one; returns the id the edit concerns.
pub(super) fn assign_id(edit: &mut Edit) -> Result<String, NodeError> {
    let fresh = |prefix: &str| -> Result<String, NodeError> {
        let mut bytes = [0u8; 5];
        getrandom::fill(&mut bytes).map_err(|source| NodeError::Random {
            context: "drawing a random id".into(),
            source,
        })?;
        let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(format!("{prefix}-{suffix}"))
    };
    Ok(match edit {
        Edit::AddOffice { id, .. } => {
            if id.is_empty() {
                *id = fresh("off")?;
            }
            id.clone()
        }
        Edit::AddService { id, .. } => {
            if id.is_empty() {
                *id = fresh("svc")?;
            }
            id.clone()
        }
        Edit::UpdateOffice { id, .. }
        | Edit::RemoveOffice { id }
        | Edit::UpdateService { id, .. }
        | Edit::RemoveService { id } => id.clone(),
        Edit::SendReferral { id, .. }
        | Edit::MoveReferral { id, .. }
        | Edit::ProposeForReferral { id, .. }
        | Edit::AssignReferral { id, .. }
        | Edit::PutDraft { id, .. }
        | Edit::RemoveDraft { id }
        | Edit::ClaimDraft { id, .. } => id.clone(),
        Edit::SetProfile { .. } | Edit::SetEncryptionKey { .. } | Edit::SetAddresses { .. } => {
            String::new()
        }
    })
}
