//! The handle to the documents actor: one command per request, each with a one-shot
//! reply, on a bounded queue.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use super::{
    Decision, DecisionReceipt, EditReceipt, MembershipView, NodeError, OrganisationView, Outgoing,
    ReferralReply, ReferralRequest, RemoteOutcome, StatusReport, SyncOffer, SyncServed, received,
};
use crate::directory::{SearchQuery, ServiceHit};
use crate::document::{Edit, HistoryEntry};
use crate::envelope::DocumentId;
use crate::identity::{KeyId, OrgId};
use crate::model::{OrganisationRecord, ValidationError};
use crate::protocol::SyncRequest;
use crate::status::NetworkStatus;

pub(super) type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

pub(super) enum Command {
    Edit {
        edit: Edit,
        reply: Reply<EditReceipt>,
    },
    Organisation {
        org: Option<OrgId>,
        reply: Reply<OrganisationView>,
    },
    Search {
        query: SearchQuery,
        reply: Reply<Vec<ServiceHit>>,
    },
    History {
        org: Option<OrgId>,
        limit: usize,
        reply: Reply<Vec<HistoryEntry>>,
    },
    Status {
        reply: Reply<StatusReport>,
    },
    SyncOffer {
        reply: Reply<SyncOffer>,
    },
    HasChange {
        document: DocumentId,
        hash: automerge::ChangeHash,
        reply: Reply<bool>,
    },
    SyncServe {
        request: SyncRequest,
        from: KeyId,
        reply: Reply<SyncServed>,
    },
    ApplyRemote {
        changes: received::VerifiedBatch,
        from: Option<KeyId>,
        live: bool,
        reply: Reply<RemoteOutcome>,
    },
    Membership {
        reply: Reply<MembershipView>,
    },
    Export {
        document: DocumentId,
        reply: Reply<Vec<Vec<u8>>>,
    },
    Decide {
        decision: Decision,
        reply: Reply<DecisionReceipt>,
    },
    AdmissionReceived {
        request: Vec<u8>,
        from: KeyId,
        reply: Reply<String>,
    },
    Referral {
        request: ReferralRequest,
        by: String,
        reply: Reply<ReferralReply>,
    },
    CaseOutbox {
        reply: Reply<Vec<Outgoing>>,
    },
    CaseAnswered {
        referral: String,
        kind: crate::vault::OutboxKind,
        from: OrgId,
        answer: crate::protocol::CaseReply,
        reply: Reply<()>,
    },
    CaseMessage {
        message: crate::protocol::CaseMessage,
        key: KeyId,
        reply: Reply<crate::protocol::CaseReply>,
    },
    Housekeeping {
        now: i64,
        reply: Reply<()>,
    },
    Records {
        /// Without the referral parts.
        directory_only: bool,
        reply: Reply<Vec<OrganisationRecord>>,
    },
    Documents {
        reply: Reply<Vec<DocumentId>>,
    },
    RememberAddresses {
        key: KeyId,
        addresses: Vec<String>,
        reply: Reply<()>,
    },
    RememberedAddresses {
        reply: Reply<Vec<crate::store::PeerAddresses>>,
    },
    PublishAddresses {
        addresses: Vec<String>,
        reply: Reply<bool>,
    },
    PublishedAddresses {
        reply: Reply<Vec<(KeyId, Vec<String>)>>,
    },
    Backup {
        document: DocumentId,
        reply: Reply<crate::backup::DocumentBackup>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

impl Command {
    /// The command's name, for the span around its handling.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Command::Edit { .. } => "edit",
            Command::Organisation { .. } => "organisation",
            Command::Search { .. } => "search",
            Command::History { .. } => "history",
            Command::Status { .. } => "status",
            Command::SyncOffer { .. } => "sync_offer",
            Command::HasChange { .. } => "has_change",
            Command::SyncServe { .. } => "sync_serve",
            Command::ApplyRemote { .. } => "apply_remote",
            Command::Membership { .. } => "membership",
            Command::Export { .. } => "export",
            Command::Decide { .. } => "decide",
            Command::AdmissionReceived { .. } => "admission_received",
            Command::Referral { .. } => "referral",
            Command::CaseOutbox { .. } => "case_outbox",
            Command::CaseAnswered { .. } => "case_answered",
            Command::CaseMessage { .. } => "case_message",
            Command::Housekeeping { .. } => "housekeeping",
            Command::Records { .. } => "records",
            Command::Documents { .. } => "documents",
            Command::RememberAddresses { .. } => "remember_addresses",
            Command::PublishAddresses { .. } => "publish_addresses",
            Command::PublishedAddresses { .. } => "published_addresses",
            Command::RememberedAddresses { .. } => "remembered_addresses",
            Command::Backup { .. } => "backup",
            Command::Shutdown { .. } => "shutdown",
        }
    }
}

/// What the documents actor hands the network actor.
#[derive(Debug)]
pub enum Outbound {
    /// A new local signed change (encoded) to publish.
    Change(Vec<u8>),
    /// Case-file messages were queued: look at the outbox now.
    CaseFiles,
    /// This node signed an admission request: hand it to every connected peer now, not
    /// at the next catch-up round.
    AdmissionRequest,
}

/// A cloneable handle to a running node.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) org_id: OrgId,
    pub(super) key_id: KeyId,
    pub(super) network: watch::Receiver<NetworkStatus>,
    /// The web page's accounts, while the node runs (they hold the store open: taken out
    /// when the node stops, so that no handle kept elsewhere keeps the store locked).
    pub(super) accounts: Arc<std::sync::Mutex<Option<crate::accounts::Accounts>>>,
    /// The audit log, read beside the documents thread (it holds no store open).
    pub(super) audit: crate::audit_log::AuditReader,
}

impl NodeHandle {
    /// The accounts of this node's web page (an error once the node has stopped).
    pub fn accounts(&self) -> Result<crate::accounts::Accounts, NodeError> {
        self.accounts
            .lock()
            .map_err(|_| NodeError::Stopped)?
            .clone()
            .ok_or(NodeError::Stopped)
    }

    /// Lets go of the accounts (the node is stopping).
    pub(crate) fn close_accounts(&self) {
        if let Ok(mut accounts) = self.accounts.lock() {
            accounts.take();
        }
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, NodeError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| NodeError::Stopped)?;
        answer.await.map_err(|_| NodeError::Stopped)?
    }

    /// This node's organisation (on a device node, the organisation it writes for).
    pub fn org_id(&self) -> OrgId {
        self.org_id
    }

    /// This node's signing key (the organisation's own key, or a device key).
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// Applies an edit to this organisation's document; returns once it is durable.
    pub async fn edit(&self, edit: Edit) -> Result<EditReceipt, NodeError> {
        self.ask(|reply| Command::Edit { edit, reply }).await
    }

    /// An organisation's record (this node's own when `org` is `None`).
    pub async fn organisation(&self, org: Option<OrgId>) -> Result<OrganisationView, NodeError> {
        self.ask(|reply| Command::Organisation { org, reply }).await
    }

    /// Searches every organisation held.
    pub async fn search(&self, query: SearchQuery) -> Result<Vec<ServiceHit>, NodeError> {
        self.ask(|reply| Command::Search { query, reply }).await
    }

    /// The signed change log of an organisation's document, newest first.
    pub async fn history(
        &self,
        org: Option<OrgId>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, NodeError> {
        self.ask(|reply| Command::History { org, limit, reply })
            .await
    }

    /// The node's status.
    pub async fn status(&self) -> Result<StatusReport, NodeError> {
        let mut report = self.ask(|reply| Command::Status { reply }).await?;
        report.network = self.network_status();
        Ok(report)
    }

    /// The network's status: peer id, listen addresses, connected peers.
    pub fn network_status(&self) -> NetworkStatus {
        self.network.borrow().clone()
    }

    /// True if this node holds the change `hash` (hex) of `document`.
    pub async fn has_change(&self, document: &DocumentId, hash: &str) -> Result<bool, NodeError> {
        let hash: automerge::ChangeHash = hash.parse().map_err(|_| {
            NodeError::Invalid(
                ValidationError::new("hash", "not a 64-digit hex change hash")
                    .fr("pas l'empreinte d'un changement (64 chiffres hexadécimaux)"),
            )
        })?;
        let document = document.clone();
        self.ask(|reply| Command::HasChange {
            document,
            hash,
            reply,
        })
        .await
    }

    /// Every document held, with its heads (the start of a sync request).
    pub async fn sync_offer(&self) -> Result<SyncOffer, NodeError> {
        self.ask(|reply| Command::SyncOffer { reply }).await
    }

    /// Answers a sync request from the peer whose key is `from`.
    pub async fn sync_serve(
        &self,
        request: SyncRequest,
        from: KeyId,
    ) -> Result<SyncServed, NodeError> {
        self.ask(|reply| Command::SyncServe {
            request,
            from,
            reply,
        })
        .await
    }

    /// Checks, stores and applies encoded signed changes received from the peer whose key
    /// is `from`, as their author published them (live, by gossip).
    pub async fn apply_remote(
        &self,
        changes: Vec<Vec<u8>>,
        from: Option<KeyId>,
    ) -> Result<RemoteOutcome, NodeError> {
        self.apply(changes, Vec::new(), from, true).await
    }

    /// Checks, stores and applies a sync response's signed changes and whole documents
    /// (bundles) received from the peer whose key is `from`.
    pub async fn apply_received(
        &self,
        changes: Vec<Vec<u8>>,
        documents: Vec<crate::protocol::DocumentBundle>,
        from: Option<KeyId>,
    ) -> Result<RemoteOutcome, NodeError> {
        self.apply(changes, documents, from, false).await
    }

    async fn apply(
        &self,
        changes: Vec<Vec<u8>>,
        documents: Vec<crate::protocol::DocumentBundle>,
        from: Option<KeyId>,
        live: bool,
    ) -> Result<RemoteOutcome, NodeError> {
        // Decoding, loading whole documents and signature verification run beside the
        // documents thread (on every core for a large batch), which then only checks,
        // applies and stores.
        let changes = tokio::task::spawn_blocking(move || {
            received::VerifiedBatch::check_with_documents(changes, documents)
        })
        .await
        .map_err(|_| NodeError::Stopped)?;
        self.ask(|reply| Command::ApplyRemote {
            changes,
            from,
            live,
            reply,
        })
        .await
    }

    /// Every signed change of a document this node holds, encoded, in causal order (a
    /// verifiable backup; what a peer would be sent).
    pub async fn export(&self, document: &DocumentId) -> Result<Vec<Vec<u8>>, NodeError> {
        let document = document.clone();
        self.ask(|reply| Command::Export { document, reply }).await
    }

    /// The network, its charter, members, proposals and received admission requests.
    pub async fn membership(&self) -> Result<MembershipView, NodeError> {
        self.ask(|reply| Command::Membership { reply }).await
    }

    /// Makes a membership decision (ratify, request, approve, revoke, amend, devices).
    pub async fn decide(&self, decision: Decision) -> Result<DecisionReceipt, NodeError> {
        self.ask(|reply| Command::Decide { decision, reply }).await
    }

    /// A referral request (match, send, move, list, show, erase, report…); `by` names the
    /// local user asking, for the audit log.
    pub async fn referral(
        &self,
        request: ReferralRequest,
        by: impl Into<String>,
    ) -> Result<ReferralReply, NodeError> {
        if request.reads_audit_log() {
            // Beside the documents thread: a large log holds up neither sync nor writes.
            if self.commands.is_closed() {
                return Err(NodeError::Stopped);
            }
            let (reader, sealer) = (self.audit.clone(), self.key_id);
            return tokio::task::spawn_blocking(move || {
                super::referrals::read_audit(&reader, &sealer, request)
            })
            .await
            .map_err(|_| NodeError::Stopped)?;
        }
        let by = by.into();
        self.ask(|reply| Command::Referral { request, by, reply })
            .await
    }

    /// The case-file messages waiting to be sent, sealed for this attempt.
    pub async fn case_outbox(&self) -> Result<Vec<Outgoing>, NodeError> {
        self.ask(|reply| Command::CaseOutbox { reply }).await
    }

    /// The other node answered a case-file message.
    pub async fn case_answered(
        &self,
        referral: String,
        kind: crate::vault::OutboxKind,
        from: OrgId,
        answer: crate::protocol::CaseReply,
    ) -> Result<(), NodeError> {
        self.ask(|reply| Command::CaseAnswered {
            referral,
            kind,
            from,
            answer,
            reply,
        })
        .await
    }

    /// A case-file message from the peer whose key is `key`; returns the answer.
    pub async fn case_message(
        &self,
        message: crate::protocol::CaseMessage,
        key: KeyId,
    ) -> Result<crate::protocol::CaseReply, NodeError> {
        self.ask(|reply| Command::CaseMessage {
            message,
            key,
            reply,
        })
        .await
    }

    /// Every organisation record this node holds (the directory, for exports and reports).
    pub async fn records(
        &self,
        directory_only: bool,
    ) -> Result<Vec<OrganisationRecord>, NodeError> {
        self.ask(|reply| Command::Records {
            directory_only,
            reply,
        })
        .await
    }

    /// Remembers where `key`'s node listens (kept in the store across restarts).
    pub async fn remember_addresses(
        &self,
        key: KeyId,
        addresses: Vec<String>,
    ) -> Result<(), NodeError> {
        self.ask(|reply| Command::RememberAddresses {
            key,
            addresses,
            reply,
        })
        .await
    }

    /// Publishes where this node can be reached in its organisation's document (a signed
    /// change, gossiped to members), unless the document says so already; whether it wrote.
    pub async fn publish_addresses(&self, addresses: Vec<String>) -> Result<bool, NodeError> {
        self.ask(|reply| Command::PublishAddresses { addresses, reply })
            .await
    }

    /// Where the nodes of members said they can be reached (their organisations'
    /// documents), by node key; this node's own left out.
    pub async fn published_addresses(&self) -> Result<Vec<(KeyId, Vec<String>)>, NodeError> {
        self.ask(|reply| Command::PublishedAddresses { reply })
            .await
    }

    /// Where peers' nodes were last reached, the most recently seen first.
    pub async fn remembered_addresses(
        &self,
    ) -> Result<Vec<crate::store::PeerAddresses>, NodeError> {
        self.ask(|reply| Command::RememberedAddresses { reply })
            .await
    }

    /// The ids of every document this node holds (the network document first).
    pub async fn documents(&self) -> Result<Vec<DocumentId>, NodeError> {
        self.ask(|reply| Command::Documents { reply }).await
    }

    /// A backup of one document: Automerge's standard format, its signed changes, and its
    /// heads signed by this node ([`crate::backup`]).
    pub async fn backup(
        &self,
        document: DocumentId,
    ) -> Result<crate::backup::DocumentBackup, NodeError> {
        self.ask(|reply| Command::Backup { document, reply }).await
    }

    /// Runs the periodic referral work now (expiry, retention).
    pub async fn housekeeping(&self) -> Result<(), NodeError> {
        self.housekeeping_at(crate::unix_now()).await
    }

    /// Runs the periodic referral work as if it were `now` (Unix seconds): what tests use
    /// to see a deadline pass without waiting for it.
    pub async fn housekeeping_at(&self, now: i64) -> Result<(), NodeError> {
        self.ask(|reply| Command::Housekeeping { now, reply }).await
    }

    /// Keeps an admission request a candidate's node sent; returns what to tell it.
    pub async fn admission_received(
        &self,
        request: Vec<u8>,
        from: KeyId,
    ) -> Result<String, NodeError> {
        self.ask(|reply| Command::AdmissionReceived {
            request,
            from,
            reply,
        })
        .await
    }
}
