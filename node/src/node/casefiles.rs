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
    /// The organisation whose node should receive it.
    pub to: OrgId,
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
            let addresses = self
                .documents
                .get(&entry.to)
                .and_then(|d| d.record())
                .and_then(|r| r.addresses.get(&entry.to.to_string()))
                .map(|a| a.addresses.clone())
                .unwrap_or_default();
            match entry.kind {
                OutboxKind::Erase => out.push(Outgoing {
                    addresses,
                    to: entry.to,
                    message: CaseMessage::Erase {
                        referral: entry.referral,
                    },
                }),
                OutboxKind::Deliver => {
                    let Some(key) = self
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
                    match casefile::seal(&payload, &key) {
                        Ok(sealed) => out.push(Outgoing {
                            addresses,
                            to: entry.to,
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

    /// The receiving node answered a message of the outbox.
    pub(super) fn handle_case_answered(
        &mut self,
        referral: &str,
        erase: bool,
        from: OrgId,
        reply: CaseReply,
    ) -> Result<(), NodeError> {
        let kind = if erase {
            OutboxKind::Erase
        } else {
            OutboxKind::Deliver
        };
        if !reply.done {
            return Ok(());
        }
        self.vault.dequeue(kind, referral)?;
        let action = match (erase, reply.accepted) {
            (false, true) => "delivered",
            (true, true) => "erased_remotely",
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
        let refuse = |message: String| CaseReply {
            done: true,
            accepted: false,
            message,
        };
        let Some(peer_org) = self.membership().and_then(|m| m.acting_member(&key)) else {
            return CaseReply {
                done: false,
                accepted: false,
                message: "this node does not know the sender as a member (yet)".into(),
            };
        };
        let now = crate::unix_now();
        match message {
            CaseMessage::Erase { referral } => {
                if !board::is_referral_id(&referral) {
                    return refuse("not a referral id".into());
                }
                match self.vault.side(&referral) {
                    Ok(Some((_, counterpart))) if counterpart == Some(peer_org) => {}
                    Ok(Some(_)) => {
                        return refuse(
                            "that organisation is not the other party of this referral".into(),
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
                            return refuse(
                                "that organisation is not a party to this referral".into(),
                            );
                        }
                        let _ = self.vault.erase(&referral, now, Erasure::Asked);
                        return CaseReply {
                            done: true,
                            accepted: true,
                            message: "no case file held; none will be taken".into(),
                        };
                    }
                    Err(e) => {
                        return CaseReply {
                            done: false,
                            accepted: false,
                            message: e.to_string(),
                        };
                    }
                }
                match self.vault.erase(&referral, now, Erasure::Asked) {
                    Ok(_) => {
                        let _ = self.vault.dequeue(OutboxKind::Deliver, &referral);
                        self.audit(
                            &referral,
                            "erased",
                            &peer_org.to_string(),
                            "at the other organisation's request; key destroyed",
                        );
                        CaseReply {
                            done: true,
                            accepted: true,
                            message: "erased".into(),
                        }
                    }
                    Err(e) => CaseReply {
                        done: false,
                        accepted: false,
                        message: e.to_string(),
                    },
                }
            }
            CaseMessage::Deliver {
                referral,
                sender,
                sealed,
            } => {
                if sender != peer_org {
                    return refuse(format!("sent by {peer_org} in the name of {sender}"));
                }
                if !board::is_referral_id(&referral) {
                    return refuse("not a referral id".into());
                }
                if self.identity.key_id() != self.own.key() {
                    return refuse(
                        "this is a device node; case files go to the organisation's own node"
                            .into(),
                    );
                }
                match self.vault.erased(&referral) {
                    Ok(Some(_)) => return refuse("erased here already; not taken again".into()),
                    Ok(None) => {}
                    Err(e) => {
                        return CaseReply {
                            done: false,
                            accepted: false,
                            message: e.to_string(),
                        };
                    }
                }
                // Only a case file whose board entry is here is taken: its commitment is
                // checked, and nobody can slip in a case file ahead of the real sender.
                let Ok(entry) = self.entry(&referral) else {
                    return CaseReply {
                        done: false,
                        accepted: false,
                        message:
                            "the board entry of this referral has not reached this node yet; retry"
                                .into(),
                    };
                };
                if entry.sender != sender || entry.receiver != Some(self.own) {
                    self.case_refused(&referral, &sender, "the board names other organisations");
                    return refuse("the board entry names other organisations".into());
                }
                if self.vault.holds(&referral).unwrap_or(false) {
                    return CaseReply {
                        done: true,
                        accepted: true,
                        message: "already held".into(),
                    };
                }
                let payload = match casefile::open(&sealed, &self.identity, &referral, &sender) {
                    Ok(payload) => payload,
                    Err(e) => {
                        self.case_refused(&referral, &sender, &e.to_string());
                        return refuse(e.to_string());
                    }
                };
                if payload.commitment() != entry.commitment {
                    self.case_refused(&referral, &sender, "does not match the board's commitment");
                    return refuse(
                        "the case file does not match the board entry's commitment".into(),
                    );
                }
                let service = entry.service.clone();
                if let Err(e) =
                    payload
                        .content
                        .consent
                        .allows(Some(&self.own), service.as_deref(), now)
                {
                    self.case_refused(&referral, &sender, &e.to_string());
                    return refuse(format!("consent does not allow it: {e}"));
                }
                let held = HeldCase {
                    side: Side::Received,
                    counterpart: Some(sender),
                    stored_at: now,
                    content: payload.content,
                };
                match self.vault.put(&referral, &held) {
                    Ok(()) => {
                        self.audit(&referral, "received", &sender.to_string(), "");
                        if matches!(held.content.consent, ConsentRecord::Override { .. }) {
                            self.audit(
                                &referral,
                                "consent_override",
                                &sender.to_string(),
                                "sent under a consent override",
                            );
                        }
                        info!(%referral, "case file received");
                        CaseReply {
                            done: true,
                            accepted: true,
                            message: "stored".into(),
                        }
                    }
                    Err(e) => CaseReply {
                        done: false,
                        accepted: false,
                        message: e.to_string(),
                    },
                }
            }
        }
    }

    fn case_refused(&mut self, referral: &str, sender: &OrgId, why: &str) {
        self.audit(referral, "refused", &sender.to_string(), why.to_owned());
    }
}
