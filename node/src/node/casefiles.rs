//! The documents actor's side of case files travelling between nodes: the delivery
//! outbox (sealed afresh for each attempt), the other node's answers, and case-file
//! messages received (a delivery, or a request to erase).
//!
//! Rules:
//! - A case file is taken only from the node of the member that sent the referral, for a
//!   referral the board shows between the two, and never replaces one held; every refusal
//!   is written to the audit log.
//! - An outbox entry leaves the outbox only when the other node acknowledged it.

use tracing::{info, warn};

use super::{DocumentsActor, NodeError};
use crate::identity::{KeyId, OrgId};
use crate::protocol::{CaseMessage, CaseReply};
use crate::referral::board;
use crate::referral::casefile::{self, ConsentRecord, Payload};
use crate::vault::{Erasure, HeldCase, OutboxKind, Side};

/// A message for another organisation's node, from the outbox.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The organisation whose node should receive it (for an office: the device's key,
    /// read as the id its node answers to).
    pub to: OrgId,
    /// The key of the node to send it to: the organisation's own key now (the one that
    /// replaced its id's key after a rotation), or the office's device key.
    pub key: KeyId,
    /// Which outbox entry it comes from.
    pub kind: OutboxKind,
    /// The message.
    pub message: CaseMessage,
    /// Where the receiver's node said it can be reached (its organisation's document),
    /// most direct first.
    pub addresses: Vec<String>,
}

impl DocumentsActor {
    /// The outbox as messages ready to send (case files sealed afresh for each attempt).
    pub(super) fn handle_case_outbox(&mut self) -> Result<Vec<Outgoing>, NodeError> {
        let mut out = Vec::new();
        for entry in self.vault.outbox()? {
            // Where the node to send to publishes its addresses: an office in its
            // organisation's document (this one's), an organisation in its own.
            let (key, published_in) = match entry.kind {
                OutboxKind::ToOffice | OutboxKind::EraseAtOffice => (entry.to.key(), self.own),
                OutboxKind::Deliver | OutboxKind::Erase => (
                    self.membership()
                        .map(|m| m.own_key_of(&entry.to))
                        .unwrap_or_else(|| entry.to.key()),
                    entry.to,
                ),
            };
            let addresses = self
                .documents
                .get(&published_in)
                .and_then(|d| d.record())
                .and_then(|r| r.addresses.get(&key.to_string()))
                .map(|a| a.addresses.clone())
                .unwrap_or_default();
            match entry.kind {
                OutboxKind::Erase | OutboxKind::EraseAtOffice => out.push(Outgoing {
                    addresses,
                    to: entry.to,
                    key,
                    kind: entry.kind,
                    message: CaseMessage::Erase {
                        referral: entry.referral,
                    },
                }),
                OutboxKind::ToOffice => {
                    if let Some(message) = self.sealed_for_office(&entry.referral, &entry.to)? {
                        out.push(Outgoing {
                            addresses,
                            to: entry.to,
                            key,
                            kind: entry.kind,
                            message,
                        });
                    }
                }
                OutboxKind::Deliver => {
                    let Some(encryption_key) = self
                        .documents
                        .get(&entry.to)
                        .and_then(|d| d.record())
                        .and_then(|r| r.encryption_key)
                    else {
                        continue;
                    };
                    let Some(held) = self.vault.read(&entry.referral)? else {
                        // Erased meanwhile: nothing to deliver.
                        self.vault.dequeue(OutboxKind::Deliver, &entry.referral)?;
                        continue;
                    };
                    let payload = Payload {
                        referral: entry.referral.clone(),
                        sender: self.own,
                        receiver: entry.to,
                        sent_at: crate::unix_now(),
                        content: held.content,
                    };
                    match casefile::seal(&payload, &encryption_key) {
                        Ok(sealed) => out.push(Outgoing {
                            addresses,
                            to: entry.to,
                            key,
                            kind: entry.kind,
                            message: CaseMessage::Deliver {
                                referral: entry.referral,
                                sender: self.own,
                                sealed,
                            },
                        }),
                        Err(e) => {
                            warn!(referral = %entry.referral, error = %e, "could not seal a case file")
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// The case file of `referral` sealed for the office `to` (a device key read as an
    /// id), or `None` when there is nothing to send any more (the grant ended, the case
    /// file was erased): the entry leaves the outbox.
    fn sealed_for_office(
        &mut self,
        referral: &str,
        to: &OrgId,
    ) -> Result<Option<CaseMessage>, NodeError> {
        let device = to.key();
        let key = self.membership().and_then(|m| m.office_case_key(&device));
        let held = self.vault.read(referral)?;
        let (Some(key), Some(held)) = (key, held) else {
            self.vault.dequeue(OutboxKind::ToOffice, referral)?;
            return Ok(None);
        };
        let Some(sender) = held.counterpart else {
            self.vault.dequeue(OutboxKind::ToOffice, referral)?;
            return Ok(None);
        };
        let payload = Payload {
            referral: referral.to_owned(),
            sender,
            receiver: self.own,
            sent_at: crate::unix_now(),
            content: held.content,
        };
        match casefile::seal_for_office(&payload, &device, &key) {
            Ok(sealed) => Ok(Some(CaseMessage::ToOffice {
                referral: referral.to_owned(),
                sender,
                sealed,
            })),
            Err(e) => {
                warn!(%referral, error = %e, "could not seal a case file for an office");
                Ok(None)
            }
        }
    }

    /// The receiving node answered a message of the outbox.
    pub(super) fn handle_case_answered(
        &mut self,
        referral: &str,
        kind: OutboxKind,
        from: OrgId,
        reply: CaseReply,
    ) -> Result<(), NodeError> {
        if !reply.done {
            return Ok(());
        }
        self.vault.dequeue(kind, referral)?;
        let action = match (kind, reply.accepted) {
            (OutboxKind::Deliver, true) => "delivered",
            (OutboxKind::Erase, true) => "erased_remotely",
            (OutboxKind::ToOffice, true) => "handed_to_office",
            (OutboxKind::EraseAtOffice, true) => "erased_at_office",
            (_, false) => "refused",
        };
        let peer = from.to_string();
        self.audit(referral, action, &peer, reply.message.clone());
        if !reply.accepted {
            warn!(%referral, message = %reply.message, "the other node refused a case-file message");
        }
        Ok(())
    }

    /// A case-file message from the peer whose key is `key`. Every refusal is logged and
    /// counted (`case files … refused` in `passerelle status`) and changes nothing.
    pub(super) fn handle_case_message(&mut self, message: CaseMessage, key: KeyId) -> CaseReply {
        let reply = self.case_message(message, key);
        if reply.done && !reply.accepted {
            warn!(peer = %key, reason = %reply.message, "case-file message refused");
            self.case_files_refused += 1;
        }
        reply
    }

    fn case_message(&mut self, message: CaseMessage, key: KeyId) -> CaseReply {
        let Some(peer_org) = self.membership().and_then(|m| m.acting_member(&key)) else {
            return CaseReply::retry("this node does not know the sender as a member (yet)");
        };
        let now = crate::unix_now();
        match message {
            CaseMessage::Erase { referral } => {
                if !board::is_referral_id(&referral) {
                    return CaseReply::refused("not a referral id");
                }
                if self.is_device_node() && key == self.own_key() {
                    // The organisation takes back what it handed to this office.
                    return self.erase_at_office(&referral, now, "at the organisation's request");
                }
                match self.vault.side(&referral) {
                    Ok(Some((_, counterpart))) if counterpart == Some(peer_org) => {}
                    Ok(Some(_)) => {
                        return CaseReply::refused(
                            "that organisation is not the other party of this referral",
                        );
                    }
                    Ok(None) => {
                        // Nothing held (not delivered yet): a tombstone keeps a later
                        // delivery out — only at the word of a party to the referral, so
                        // another member cannot block a delivery it saw on the board.
                        let party = self
                            .entry(&referral)
                            .ok()
                            .is_some_and(|e| e.sender == peer_org || e.receiver == Some(peer_org));
                        if !party {
                            return CaseReply::refused(
                                "that organisation is not a party to this referral",
                            );
                        }
                        let _ = self.vault.erase(&referral, now, Erasure::Asked);
                        return CaseReply::taken("no case file held; none will be taken");
                    }
                    Err(e) => {
                        return CaseReply::retry(e.to_string());
                    }
                }
                match self.vault.erase(&referral, now, Erasure::Asked) {
                    Ok(_) => {
                        let _ = self.vault.dequeue(OutboxKind::Deliver, &referral);
                        if let Err(e) = self.take_back_from_office(&referral, now) {
                            warn!(%referral, error = %e, "could not ask the office to erase its copy");
                        }
                        self.audit(
                            &referral,
                            "erased",
                            &peer_org.to_string(),
                            "at the other organisation's request; key destroyed",
                        );
                        CaseReply::taken("erased")
                    }
                    Err(e) => CaseReply::retry(e.to_string()),
                }
            }
            CaseMessage::ToOffice {
                referral,
                sender,
                sealed,
            } => self.office_case(key, referral, sender, sealed, now),
            CaseMessage::Deliver {
                referral,
                sender,
                sealed,
            } => {
                if sender != peer_org {
                    return CaseReply::refused(format!(
                        "sent by {peer_org} in the name of {sender}"
                    ));
                }
                if !board::is_referral_id(&referral) {
                    return CaseReply::refused("not a referral id");
                }
                if self.is_device_node() {
                    return CaseReply::refused(
                        "this is a device node; case files go to the organisation's own node",
                    );
                }
                let stored = self.take_case_file(&referral, sender, now, |identity, own| {
                    casefile::open(&sealed, identity, &referral, &sender, own)
                });
                match stored {
                    Ok(consent_override) => {
                        self.audit(&referral, "received", &sender.to_string(), "");
                        if consent_override {
                            self.audit(
                                &referral,
                                "consent_override",
                                &sender.to_string(),
                                "sent under a consent override",
                            );
                        }
                        info!(%referral, "case file received");
                        CaseReply::taken("stored")
                    }
                    Err(answer) => answer,
                }
            }
        }
    }

    /// True on a device node (a regional office): its key is not its organisation's.
    pub(super) fn is_device_node(&self) -> bool {
        self.identity.key_id() != self.own_key()
    }

    /// The key this node's organisation signs with now: its id's key, or the key that
    /// replaced it (a rotation) — the key of its own node.
    pub(super) fn own_key(&self) -> KeyId {
        self.membership()
            .map(|m| m.own_key_of(&self.own))
            .unwrap_or_else(|| self.own.key())
    }

    /// Erases, on a device node, a case file its organisation handed to it.
    fn erase_at_office(&mut self, referral: &str, now: i64, why: &str) -> CaseReply {
        match self.vault.erase(referral, now, Erasure::Asked) {
            Ok(held) => {
                if held {
                    self.audit(
                        referral,
                        "erased",
                        &self.own.to_string(),
                        format!("{why}; key destroyed"),
                    );
                }
                CaseReply::taken("erased")
            }
            Err(e) => CaseReply::retry(e.to_string()),
        }
    }

    /// A case file this device node's organisation hands on to it (the office that will
    /// serve the person). Taken only from the organisation's own key, while the network
    /// document grants this device case files, for a referral the board shows to the
    /// organisation, matching the board's commitment and the consent.
    fn office_case(
        &mut self,
        key: KeyId,
        referral: String,
        sender: OrgId,
        sealed: casefile::Sealed,
        now: i64,
    ) -> CaseReply {
        if !board::is_referral_id(&referral) {
            return CaseReply::refused("not a referral id");
        }
        if !self.is_device_node() {
            return CaseReply::refused(
                "this is the organisation's own node, not one of its offices",
            );
        }
        if key != self.own_key() {
            self.case_refused(
                &referral,
                &sender,
                "handed on by a key that is not the organisation's",
            );
            return CaseReply::refused("only this office's organisation hands case files on to it");
        }
        let own_key = self.identity.key_id();
        let granted = self
            .membership()
            .and_then(|m| m.office_case_key(&own_key))
            .is_some_and(|k| k == self.identity.encryption_public_key());
        if !granted {
            return CaseReply::retry(
                "this office is not granted case files in the network document (yet)",
            );
        }
        let stored = self.take_case_file(&referral, sender, now, |identity, own| {
            casefile::open_as_office(&sealed, identity, &referral, &sender, own)
        });
        match stored {
            Ok(_) => {
                self.audit(
                    &referral,
                    "received_from_organisation",
                    &self.own.to_string(),
                    "handed on to this office",
                );
                info!(%referral, "case file handed on to this office");
                CaseReply::taken("stored at the office")
            }
            Err(answer) => answer,
        }
    }

    /// What every case file passes before it is stored here, in order: not erased here
    /// already; its board entry here, naming `sender` and this organisation (nobody slips a
    /// case file in ahead of the real sender); not held already; it opens (`open`, with
    /// this node's keys and organisation); it matches the board entry's commitment; its
    /// consent allows this organisation and the referral's service. Then it is stored.
    /// `Ok`: stored, and whether it came under a consent override; `Err`: the answer to
    /// give (each refusal written to the audit log).
    fn take_case_file(
        &mut self,
        referral: &str,
        sender: OrgId,
        now: i64,
        open: impl FnOnce(&crate::identity::Identity, &OrgId) -> Result<Payload, casefile::SealError>,
    ) -> Result<bool, CaseReply> {
        match self.vault.erased(referral) {
            Ok(Some(_)) => return Err(CaseReply::refused("erased here already; not taken again")),
            Ok(None) => {}
            Err(e) => return Err(CaseReply::retry(e.to_string())),
        }
        let Ok(entry) = self.entry(referral) else {
            return Err(CaseReply::retry(
                "the board entry of this referral has not reached this node yet; retry",
            ));
        };
        if entry.sender != sender || entry.receiver != Some(self.own) {
            self.case_refused(referral, &sender, "the board names other organisations");
            return Err(CaseReply::refused(
                "the board entry names other organisations",
            ));
        }
        if self.vault.holds(referral).unwrap_or(false) {
            return Err(CaseReply::taken("already held"));
        }
        let payload = match open(&self.identity, &self.own) {
            Ok(payload) => payload,
            Err(e) => {
                self.case_refused(referral, &sender, &e.to_string());
                return Err(CaseReply::refused(e.to_string()));
            }
        };
        if payload.commitment() != entry.commitment {
            self.case_refused(referral, &sender, "does not match the board's commitment");
            return Err(CaseReply::refused(
                "the case file does not match the board entry's commitment",
            ));
        }
        if let Err(e) =
            payload
                .content
                .consent
                .allows(Some(&self.own), entry.service.as_deref(), now)
        {
            self.case_refused(referral, &sender, &e.to_string());
            return Err(CaseReply::refused(format!(
                "consent does not allow it: {e}"
            )));
        }
        let consent_override = matches!(payload.content.consent, ConsentRecord::Override { .. });
        let held = HeldCase {
            side: Side::Received,
            counterpart: Some(sender),
            stored_at: now,
            content: payload.content,
        };
        self.vault
            .put(referral, &held)
            .map_err(|e| CaseReply::retry(e.to_string()))?;
        Ok(consent_override)
    }

    /// On a device node whose grant of case files ended (or that was withdrawn): destroys
    /// every case file it holds. Runs when the membership changes and at start.
    pub(super) fn enforce_office_grant(&mut self) {
        if !self.is_device_node() {
            self.forget_offices_without_grant();
            return;
        }
        let own_key = self.identity.key_id();
        match self.membership() {
            None => return,
            Some(m) if m.office_case_key(&own_key).is_some() => return,
            Some(_) => {}
        }
        let held = match self.vault.held() {
            Ok(held) => held,
            Err(e) => {
                warn!(error = %e, "could not list the case files held at this office");
                return;
            }
        };
        let now = crate::unix_now();
        for (referral, _, _) in held {
            let _ =
                self.erase_at_office(&referral, now, "this office's access to case files ended");
        }
    }

    /// On the organisation's node: forgets the offices whose grant ended (they destroy
    /// what they hold themselves when they learn it), and what was still to hand to them.
    fn forget_offices_without_grant(&mut self) {
        let Some(m) = self.membership().cloned() else {
            return;
        };
        let outbox = match self.vault.outbox() {
            Ok(outbox) => outbox,
            Err(e) => {
                warn!(error = %e, "could not read the case-file outbox");
                return;
            }
        };
        for entry in outbox {
            if entry.kind == OutboxKind::ToOffice && m.office_case_key(&entry.to.key()).is_none() {
                let _ = self.vault.dequeue(OutboxKind::ToOffice, &entry.referral);
            }
        }
        let offices: Vec<KeyId> = m
            .devices
            .values()
            .filter(|d| d.org == self.own && m.office_case_key(&d.key).is_none())
            .map(|d| d.key)
            .collect();
        for device in offices {
            for referral in self.vault.at_office(&device).unwrap_or_default() {
                if self.vault.leave_office(&referral).is_ok() {
                    self.audit(
                        &referral,
                        "office_access_ended",
                        &device.to_string(),
                        "the office's access to case files ended; it destroys its copy",
                    );
                }
            }
        }
    }

    fn case_refused(&mut self, referral: &str, sender: &OrgId, why: &str) {
        self.audit(referral, "refused", &sender.to_string(), why.to_owned());
    }
}
