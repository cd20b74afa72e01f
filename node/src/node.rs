//! The node runtime: a documents actor that owns the store and the documents, a cloneable
//! [`NodeHandle`] that sends it commands, and [`start_actor`] / [`shutdown_actor`] (the
//! wiring of the other parts is `crate::runtime`).
//!
//! Rules:
//! - The documents actor runs on its own OS thread: sled and Automerge work never blocks
//!   the async runtime. Commands carry a one-shot reply channel; the command queue is
//!   bounded ([`COMMAND_CAP`]).
//! - An edit is validated, applied, signed and flushed to the store before its reply is
//!   sent. If the store write fails, the in-memory document is rebuilt from the store, so
//!   memory never runs ahead of disk.
//! - Networking (sync) plugs in as another actor that talks to the same handle.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, error, info, warn};

use crate::config::Config;
use crate::directory::{self, SearchQuery, ServiceHit};
use crate::document::{DocumentError, Edit, HistoryEntry, OrganisationDocument, Replica};
use crate::envelope::DocumentId;
use crate::envelope::SignedChange;
use crate::identity::{Identity, IdentityError, OrgId};
use crate::keys::KeyFiles;
use crate::membership::NetworkDocument;
use crate::model::{OrganisationRecord, Profile, ValidationError};
use crate::protocol::SyncRequest;
use crate::status::NetworkStatus;
use crate::store::{Snapshot, Store, StoreError};

mod decisions;
mod referrals;
mod replication;

pub use decisions::{
    Decision, DecisionReceipt, MembershipSummary, MembershipView, RequestView, create_network,
    found_network_locally, join_network,
};
pub use referrals::{
    CaseState, EraseReceipt, ListFilter, Outgoing, ReferralList, ReferralReceipt, ReferralReply,
    ReferralRequest, ReferralView, SendReferral,
};
pub use replication::{
    MAX_PENDING, Rejection, RejectionCode, RemoteOutcome, SyncOffer, SyncServed,
};

/// Most commands waiting for the documents actor.
pub const COMMAND_CAP: usize = 256;
/// Most new local changes waiting to be published.
pub const OUTBOUND_CAP: usize = 1024;

/// Errors of the node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Input was refused; nothing was written.
    #[error("invalid input: {0}")]
    Invalid(#[from] ValidationError),
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The data folder already holds an identity.
    #[error("{0} is already initialised (it holds an identity); use another --data-dir")]
    AlreadyInitialised(PathBuf),
    /// Keys could not be created or read.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The store failed or is corrupt.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A document is malformed or refused an operation.
    #[error(transparent)]
    Document(DocumentError),
    /// A file or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// The node is shutting down or has stopped.
    #[error("the node has stopped")]
    Stopped,
}

impl From<DocumentError> for NodeError {
    fn from(e: DocumentError) -> Self {
        match e {
            DocumentError::Invalid(v) => Self::Invalid(v),
            DocumentError::NotFound { kind, id } => {
                Self::NotFound(format!("no {kind} with id {id:?}"))
            }
            other => Self::Document(other),
        }
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> NodeError {
    let context = context.into();
    move |source| NodeError::Io { context, source }
}

/// What an edit did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EditReceipt {
    /// The document written.
    pub document: String,
    /// The id of the office or service added, updated or removed (empty for the profile).
    pub id: String,
    /// The new change's hash.
    pub change: String,
    /// Durable on disk when this receipt was sent.
    pub durable: bool,
}

impl EditReceipt {
    /// The receipt of `change`, stored: only the store's proof that it reached
    /// `fdatasync` makes a receipt that says it is durable.
    fn stored(change: &SignedChange, id: String, _synced: crate::store::Synced) -> Self {
        Self {
            document: change.document().to_string(),
            id,
            change: change.hash().to_string(),
            durable: true,
        }
    }
}

/// An organisation as the CLI shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OrganisationView {
    /// The organisation's fingerprint.
    pub fingerprint: String,
    /// The document id.
    pub document: String,
    /// The record (profile, offices, services).
    #[serde(flatten)]
    pub record: OrganisationRecord,
}

/// One document in the status report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DocumentStatus {
    /// The document id.
    pub id: String,
    /// Owner's name (from its profile).
    pub name: String,
    /// Signed changes held.
    pub changes: usize,
    /// Current heads (hex hashes).
    pub heads: Vec<String>,
}

/// `passerelle status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatusReport {
    /// Passerelle version.
    pub version: String,
    /// This node's organisation.
    pub org_id: String,
    /// Its fingerprint.
    pub fingerprint: String,
    /// Its name.
    pub org_name: String,
    /// This node's signing key (the organisation's own, or a device key).
    pub node_key: String,
    /// On a device node: the organisation it writes for.
    pub device_of: Option<String>,
    /// Its encryption public key.
    pub encryption_key: String,
    /// The data folder.
    pub data_dir: String,
    /// Seconds since the node started.
    pub uptime_seconds: u64,
    /// Documents held.
    pub documents: Vec<DocumentStatus>,
    /// Store size on disk, bytes.
    pub store_bytes: u64,
    /// Received signed changes waiting for missing dependencies.
    pub pending_changes: usize,
    /// Received changes rejected (bad signature, wrong author, undecodable) since start.
    pub rejected_changes: u64,
    /// The same, by reason code (`bad_signature`, `not_member`, `revoked`, …).
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Documents this node lacked and received whole (a bundle: Automerge's compressed
    /// document and one signature per author) since start, instead of change by change.
    #[serde(default)]
    pub documents_received_whole: u64,
    /// Case files this node holds (encrypted).
    pub case_files_held: usize,
    /// Case-file deliveries and erasure requests waiting for the other node.
    pub case_outbox: usize,
    /// Case-file messages from other nodes refused since start.
    pub case_files_refused: u64,
    /// The network this node belongs to and its role in it.
    pub membership: decisions::MembershipSummary,
    /// Networking: peer id, listen addresses and connected peers.
    pub network: NetworkStatus,
    /// How this node's last start went.
    #[serde(default)]
    pub start: StartReport,
    /// The check of the whole store run in the background after start.
    #[serde(default)]
    pub store_check: StoreCheckStatus,
}

/// Where the background check of the store stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreCheckState {
    /// Not run (yet, or turned off).
    #[default]
    NotRun,
    /// Reading the store now.
    Running,
    /// Every record read and verified.
    Sound,
    /// Damage found: see the list, and run `passerelle repair` (node stopped).
    Damaged,
    /// Stopped before the end (the node stopped).
    Interrupted,
}

/// The background check of the store ([`crate::store::Store::check`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreCheckStatus {
    /// Where it stands.
    pub state: StoreCheckState,
    /// When it finished (Unix time).
    #[serde(default)]
    pub finished_at: Option<i64>,
    /// How long it took, in milliseconds.
    #[serde(default)]
    pub millis: u64,
    /// What it read and found.
    #[serde(default)]
    pub report: crate::store::StoreCheck,
}

/// Runs the background check of the store: waits `after` (or until stopped), reads and
/// verifies the whole store, and checks again whatever it found damaged (a record written
/// during the check can look inconsistent for a moment) before reporting it.
pub fn spawn_store_check(
    store: Store,
    after: std::time::Duration,
    status: Arc<std::sync::Mutex<StoreCheckStatus>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    use std::sync::atomic::Ordering;
    std::thread::Builder::new()
        .name("passerelle-store-check".into())
        .spawn(move || {
            let set = |update: &dyn Fn(&mut StoreCheckStatus)| {
                if let Ok(mut status) = status.lock() {
                    update(&mut status);
                }
            };
            let deadline = Instant::now() + after;
            while Instant::now() < deadline {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(50).min(after));
            }
            set(&|s| s.state = StoreCheckState::Running);
            let began = Instant::now();
            let stopped = || stop.load(Ordering::Relaxed);
            let mut report = store.check_until(&stopped);
            if !report.damaged.is_empty() && !report.interrupted {
                std::thread::sleep(std::time::Duration::from_millis(500));
                let again = store.check_until(&stopped);
                report.damaged.retain(|d| again.damaged.contains(d));
                report.interrupted = again.interrupted;
            }
            let state = if report.interrupted {
                StoreCheckState::Interrupted
            } else if report.damaged.is_empty() {
                StoreCheckState::Sound
            } else {
                StoreCheckState::Damaged
            };
            for damage in &report.damaged {
                error!(record = %damage.record, document = ?damage.document, reason = %damage.reason, "the store is damaged: stop the node and run `passerelle repair`");
            }
            info!(?state, documents = report.documents, changes = report.changes, ms = began.elapsed().as_millis() as u64, "store checked");
            let millis = began.elapsed().as_millis() as u64;
            set(&|s| {
                s.state = state;
                s.finished_at = Some(crate::unix_now());
                s.millis = millis;
                s.report = report.clone();
            });
        })
}

/// How a node loaded its store at start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartReport {
    /// Documents taken from a snapshot holding every stored change of theirs.
    pub from_snapshots: usize,
    /// Documents rebuilt from their verified signed changes (no usable snapshot, a change
    /// stored after the last one, or `--verify-store`).
    pub rebuilt: usize,
    /// Time to load the documents, milliseconds.
    pub load_ms: u64,
    /// Time to open the store before that (identity, sled, case-file vault; includes any
    /// wait for a node still shutting down to release the store), milliseconds.
    #[serde(default)]
    pub open_ms: u64,
}

type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

enum Command {
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
        from: OrgId,
        reply: Reply<SyncServed>,
    },
    ApplyRemote {
        changes: replication::VerifiedBatch,
        from: Option<OrgId>,
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
        from: OrgId,
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
        erase: bool,
        from: OrgId,
        answer: crate::protocol::CaseReply,
        reply: Reply<()>,
    },
    CaseMessage {
        message: crate::protocol::CaseMessage,
        key: OrgId,
        reply: Reply<crate::protocol::CaseReply>,
    },
    Housekeeping {
        now: i64,
        reply: Reply<()>,
    },
    Records {
        reply: Reply<Vec<OrganisationRecord>>,
    },
    Documents {
        reply: Reply<Vec<DocumentId>>,
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
    fn name(&self) -> &'static str {
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
}

/// A cloneable handle to a running node.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    commands: mpsc::Sender<Command>,
    org_id: OrgId,
    key_id: OrgId,
    network: watch::Receiver<NetworkStatus>,
}

impl NodeHandle {
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
    pub fn key_id(&self) -> OrgId {
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
            NodeError::Invalid(ValidationError::new(
                "hash",
                "not a 64-digit hex change hash",
            ))
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
        from: OrgId,
    ) -> Result<SyncServed, NodeError> {
        self.ask(|reply| Command::SyncServe {
            request,
            from,
            reply,
        })
        .await
    }

    /// Checks, stores and applies encoded signed changes received from the peer whose key
    /// is `from`.
    pub async fn apply_remote(
        &self,
        changes: Vec<Vec<u8>>,
        from: Option<OrgId>,
    ) -> Result<RemoteOutcome, NodeError> {
        self.apply_received(changes, Vec::new(), from).await
    }

    /// Checks, stores and applies a sync response's signed changes and whole documents
    /// (bundles) received from the peer whose key is `from`.
    pub async fn apply_received(
        &self,
        changes: Vec<Vec<u8>>,
        documents: Vec<crate::protocol::DocumentBundle>,
        from: Option<OrgId>,
    ) -> Result<RemoteOutcome, NodeError> {
        // Decoding, loading whole documents and signature verification run beside the
        // documents thread (on every core for a large batch), which then only checks,
        // applies and stores.
        let changes = tokio::task::spawn_blocking(move || {
            replication::VerifiedBatch::check_with_documents(changes, documents)
        })
        .await
        .map_err(|_| NodeError::Stopped)?;
        self.ask(|reply| Command::ApplyRemote {
            changes,
            from,
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
        erase: bool,
        from: OrgId,
        answer: crate::protocol::CaseReply,
    ) -> Result<(), NodeError> {
        self.ask(|reply| Command::CaseAnswered {
            referral,
            erase,
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
        key: OrgId,
    ) -> Result<crate::protocol::CaseReply, NodeError> {
        self.ask(|reply| Command::CaseMessage {
            message,
            key,
            reply,
        })
        .await
    }

    /// Every organisation record this node holds (the directory, for exports and reports).
    pub async fn records(&self) -> Result<Vec<OrganisationRecord>, NodeError> {
        self.ask(|reply| Command::Records { reply }).await
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
        from: OrgId,
    ) -> Result<String, NodeError> {
        self.ask(|reply| Command::AdmissionReceived {
            request,
            from,
            reply,
        })
        .await
    }
}

/// Creates a data folder: keys, store and the organisation's signed genesis document.
/// Refuses a folder that already holds an identity.
pub fn initialise(config: &Config, profile: Profile) -> Result<OrgId, NodeError> {
    let identity = Identity::generate()?;
    let now = crate::unix_now();
    let (mut document, genesis) = OrganisationDocument::create(identity.signing(), profile, now)?;
    // The key case files are sealed to, published in the signed document.
    let key = document.apply_edit(
        &Edit::SetEncryptionKey {
            key: identity.encryption_public_key(),
        },
        identity.signing(),
        now,
    )?;
    let store = create_data_folder(config, &identity)?;
    store.put_changes(&[genesis, key])?;
    let snapshot = document.snapshot();
    store.put_snapshot(document.id(), &snapshot)?;
    Ok(identity.org_id())
}

/// Creates the data folder of a **device node**: another node of organisation `org` (a
/// regional office), with its own key, writing `org`'s document once `org` has authorised
/// the key (`passerelle device add`). Returns the device's key id.
pub fn initialise_device(config: &Config, org: OrgId) -> Result<OrgId, NodeError> {
    let identity = Identity::generate()?;
    let store = create_data_folder(config, &identity)?;
    store.set_device_of(&org)?;
    Ok(identity.org_id())
}

/// Makes the data folder (mode 0700), an empty store and the key files; refuses a folder
/// that already holds an identity or a store with changes.
fn create_data_folder(config: &Config, identity: &Identity) -> Result<Store, NodeError> {
    let dir = &config.data_dir;
    if Identity::exists_in(dir) {
        return Err(NodeError::AlreadyInitialised(dir.clone()));
    }
    fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(io(format!("setting permissions of {}", dir.display())))?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::durable::sync_dir(parent).map_err(io(format!("syncing {}", parent.display())))?;
    }
    let store = Store::create(&config.store_dir())?;
    if store.change_count() > 0 {
        return Err(NodeError::AlreadyInitialised(dir.clone()));
    }
    identity.save_new(dir)?;
    Ok(store)
}

/// The documents actor once started: its handle and thread, and what the services around
/// it ([`crate::runtime`] wires them) need.
#[derive(Debug)]
pub struct StartedActor {
    /// Its handle.
    pub handle: NodeHandle,
    /// Its thread.
    pub thread: std::thread::JoinHandle<()>,
    /// The configuration, with the peers recorded from an invitation added.
    pub config: Config,
    /// The network this node is in, if any.
    pub network_id: Option<String>,
    /// This node's keys.
    pub identity: Arc<Identity>,
    /// Where the network reports its status for [`NodeHandle::network_status`].
    pub network_status: watch::Sender<NetworkStatus>,
    /// With networking: new local changes to publish, and the keys acting for members.
    pub outbound: Option<(
        mpsc::Receiver<Outbound>,
        watch::Receiver<crate::membership::MemberKeys>,
    )>,
    /// The store, for the background check, and where the check reports.
    pub store_check: (Store, Arc<std::sync::Mutex<StoreCheckStatus>>),
}

/// Opens the store, verifies and loads every document, and starts the documents actor on
/// its own thread. Must be called inside a tokio runtime.
pub async fn start_actor(config: Config) -> Result<StartedActor, NodeError> {
    let loaded = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || DocumentsActor::load(config))
            .await
            .map_err(|e| NodeError::Io {
                context: "loading the store".into(),
                source: std::io::Error::other(e.to_string()),
            })??
    };
    let mut loaded = loaded;
    let network_id = loaded.network.as_ref().map(|n| n.network().to_string());
    let org_id = loaded.own;
    let identity = loaded.identity.clone();
    let (commands, receiver) = mpsc::channel(COMMAND_CAP);
    let (network_status, network_rx) = watch::channel(NetworkStatus::default());
    let handle = NodeHandle {
        commands,
        org_id,
        key_id: identity.org_id(),
        network: network_rx,
    };
    // Peers recorded from an invitation (`passerelle network join`) are dialled too.
    let mut config = config;
    if let Some(network) = config.network.as_mut() {
        for peer in loaded.store.bootstrap_peers()? {
            match peer.parse::<libp2p::Multiaddr>() {
                Ok(address) if !network.peers.contains(&address) => network.peers.push(address),
                Ok(_) => {}
                Err(e) => warn!(%peer, error = %e, "a recorded peer address does not parse"),
            }
        }
    }
    let outbound = config.network.as_ref().map(|_| {
        let (tx, rx) = mpsc::channel(OUTBOUND_CAP);
        loaded.outbound = Some(tx);
        let (members_tx, members_rx) = watch::channel(Default::default());
        loaded.members = Some(members_tx);
        loaded.publish_members();
        (rx, members_rx)
    });
    let store_check = (loaded.store.clone(), loaded.store_check.clone());
    let thread = std::thread::Builder::new()
        .name("passerelle-documents".into())
        .spawn(move || loaded.run(receiver))
        .map_err(io("starting the documents thread"))?;
    Ok(StartedActor {
        handle,
        thread,
        config,
        network_id,
        identity,
        network_status,
        outbound,
        store_check,
    })
}

/// Stops the documents actor (final snapshots), waits for its thread, then lets sled
/// settle the store's log.
pub async fn shutdown_actor(
    handle: &NodeHandle,
    thread: std::thread::JoinHandle<()>,
    store_dir: PathBuf,
) -> Result<(), NodeError> {
    ask_shutdown(handle).await;
    tokio::task::spawn_blocking(move || thread.join())
        .await
        .map_err(|e| NodeError::Io {
            context: "joining the documents thread".into(),
            source: std::io::Error::other(e.to_string()),
        })?
        .map_err(|_| NodeError::Io {
            context: "the documents thread panicked".into(),
            source: std::io::Error::other("panic"),
        })?;
    // The documents thread has closed the store: let sled settle its log now rather
    // than at the next start (a failure here costs only start time, so it is logged).
    match tokio::task::spawn_blocking(move || Store::settle(&store_dir)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!(error = %e, "could not settle the store's log at shutdown"),
        Err(e) => warn!(error = %e, "could not settle the store's log at shutdown"),
    }
    Ok(())
}

/// Stops a documents actor that was started, when start-up fails later on.
pub async fn stop_actor(handle: &NodeHandle, thread: std::thread::JoinHandle<()>) {
    ask_shutdown(handle).await;
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
}

/// Asks the documents actor to stop (final snapshots) and waits for its answer.
async fn ask_shutdown(handle: &NodeHandle) {
    let (reply, done) = oneshot::channel();
    if handle
        .commands
        .send(Command::Shutdown { reply })
        .await
        .is_ok()
    {
        let _ = done.await;
    }
}

struct DocumentsActor {
    config: Config,
    /// The organisation whose document this node writes: its own key's, or on a device
    /// node the organisation that delegated the key.
    own: OrgId,
    identity: Arc<Identity>,
    store: Store,
    documents: BTreeMap<OrgId, OrganisationDocument>,
    change_counts: HashMap<OrgId, usize>,
    since_snapshot: HashMap<OrgId, u64>,
    started: Instant,
    pending: replication::Pending,
    rejected_changes: u64,
    rejected_by_code: BTreeMap<String, u64>,
    documents_received_whole: u64,
    /// The network document, once this node has created or joined a network.
    network: Option<NetworkDocument>,
    /// New local changes, encoded, for the network to publish (None without networking).
    outbound: Option<mpsc::Sender<Outbound>>,
    /// What the background check of the store found (written by its thread).
    store_check: Arc<std::sync::Mutex<StoreCheckStatus>>,
    /// The keys acting for members, for the network's gates (None without networking).
    members: Option<watch::Sender<crate::membership::MemberKeys>>,
    /// The membership last published there: its number of operations read.
    members_published: Option<usize>,
    /// Case files held here, their audit log and outbox.
    vault: crate::vault::Vault,
    /// Case-file messages refused since start.
    case_files_refused: u64,
    /// How the store was loaded.
    start: StartReport,
    /// The referral board, folded incrementally (`referral list`, report, housekeeping).
    board_index: std::cell::RefCell<crate::referral::index::BoardIndex>,
}

impl DocumentsActor {
    fn load(config: Config) -> Result<Self, NodeError> {
        let opening = Instant::now();
        let identity = Identity::load(&config.data_dir)?;
        let store = Store::open(&config.store_dir())?;
        let vault = crate::vault::Vault::open(&store, &config.data_dir)?;
        let open_ms = opening.elapsed().as_millis() as u64;
        let started = Instant::now();
        let counts = if config.verify_store {
            None
        } else {
            store.change_counts()?
        };
        // The network document (its changes verified and folded) is read beside the
        // organisation documents: neither needs the other.
        let (network, loaded) = std::thread::scope(|scope| {
            let network = scope.spawn(|| load_network(&store));
            let loaded = match counts {
                Some(counts) => load_from_snapshots(&store, counts),
                None => load_everything(&store),
            };
            (network.join(), loaded)
        });
        let network = network.map_err(|_| NodeError::Io {
            context: "loading the network document".into(),
            source: std::io::Error::other("the loading thread panicked"),
        })??;
        let loaded = loaded?;
        if let Some(stray) = loaded.stray_network {
            return Err(StoreError::Corrupt {
                key: stray.to_string(),
                reason: "a network document other than this node's network".into(),
            }
            .into());
        }
        let (documents, change_counts) = (loaded.documents, loaded.change_counts);
        let start = StartReport {
            from_snapshots: loaded.from_snapshots,
            rebuilt: documents.len() - loaded.from_snapshots,
            load_ms: started.elapsed().as_millis() as u64,
            open_ms,
        };
        info!(
            documents = documents.len(),
            from_snapshots = start.from_snapshots,
            rebuilt = start.rebuilt,
            load_ms = start.load_ms,
            open_ms = start.open_ms,
            "store loaded"
        );
        // A rebuilt document gets a fresh snapshot (at the next one due, or at shutdown),
        // so that the next start takes it from there.
        let since_snapshot = loaded.stale.into_iter().map(|owner| (owner, 1)).collect();
        let device_of = store.device_of()?;
        let own = device_of.unwrap_or_else(|| identity.org_id());
        // A device node receives its organisation's document from the network; so does a
        // node whose own document `passerelle repair` set aside.
        let awaited = store.own_document_awaited()?;
        if awaited && documents.contains_key(&own) {
            store.set_own_document_awaited(false)?;
        }
        if device_of.is_none() && !documents.contains_key(&own) && !awaited {
            return Err(StoreError::Corrupt {
                key: DocumentId::organisation(&own).to_string(),
                reason: "the store holds no document for this node's organisation (was `passerelle init` interrupted?)".into(),
            }
            .into());
        }
        let mut actor = Self {
            config,
            own,
            identity: Arc::new(identity),
            store,
            documents,
            change_counts,
            since_snapshot,
            start,
            started: Instant::now(),
            pending: replication::Pending::default(),
            rejected_changes: 0,
            documents_received_whole: 0,
            rejected_by_code: BTreeMap::new(),
            network,
            outbound: None,
            members: None,
            members_published: None,
            store_check: Default::default(),
            vault,
            case_files_refused: 0,
            board_index: Default::default(),
        };
        // A crash between a revocation and the cut of the revoked member's documents is
        // finished here.
        actor.enforce_write_rules();
        Ok(actor)
    }

    fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        // Every log line of this thread names the node; each command's, the command.
        let node = tracing::info_span!("node", fingerprint = %self.identity.org_id().fingerprint());
        let _node = node.enter();
        while let Some(command) = commands.blocking_recv() {
            let span = tracing::debug_span!("command", name = command.name());
            let _command = span.enter();
            match command {
                Command::Edit { edit, reply } => {
                    // Referral parts and the encryption key are written by the node's own
                    // steps (consent, case file, merged status), never as a bare edit.
                    let result = if edit.is_node_managed() {
                        Err(NodeError::Invalid(ValidationError::new(
                            "edit",
                            "referrals are made with the referral requests (`passerelle referral …`), and the encryption key only by `passerelle init`",
                        )))
                    } else {
                        self.handle_edit(edit)
                    };
                    let _ = reply.send(result);
                }
                Command::Organisation { org, reply } => {
                    let _ = reply.send(self.handle_organisation(org));
                }
                Command::Search { query, reply } => {
                    let records = self.documents.values().filter_map(|d| d.record());
                    let hits = if query.drafts {
                        directory::search_drafts(records, &query)
                    } else {
                        directory::search(records, &query)
                    };
                    let _ = reply.send(Ok(hits));
                }
                Command::History { org, limit, reply } => {
                    let _ = reply.send(self.handle_history(org, limit));
                }
                Command::Status { reply } => {
                    let _ = reply.send(Ok(self.handle_status()));
                }
                Command::SyncOffer { reply } => {
                    let _ = reply.send(Ok(self.handle_sync_offer()));
                }
                Command::HasChange {
                    document,
                    hash,
                    reply,
                } => {
                    let held = match (document.organisation_owner(), self.network.as_mut()) {
                        (Some(owner), _) => self
                            .documents
                            .get_mut(&owner)
                            .is_some_and(|d| d.has_change(&hash)),
                        (None, Some(network)) if network.id() == &document => {
                            network.has_change(&hash)
                        }
                        _ => false,
                    };
                    let _ = reply.send(Ok(held));
                }
                Command::SyncServe {
                    request,
                    from,
                    reply,
                } => {
                    let _ = reply.send(self.handle_sync_serve(request, from));
                }
                Command::ApplyRemote {
                    changes,
                    from,
                    reply,
                } => {
                    let result = self.handle_apply_remote(changes, from);
                    self.snapshot_due();
                    let _ = reply.send(result);
                }
                Command::Export { document, reply } => {
                    let _ = reply.send(self.handle_export(&document));
                }
                Command::Membership { reply } => {
                    let _ = reply.send(self.handle_membership());
                }
                Command::Decide { decision, reply } => {
                    let _ = reply.send(self.handle_decision(decision));
                }
                Command::AdmissionReceived {
                    request,
                    from,
                    reply,
                } => {
                    let _ = reply.send(self.handle_admission_received(&request, from));
                }
                Command::Referral { request, by, reply } => {
                    let _ = reply.send(self.handle_referral(request, &by));
                }
                Command::CaseOutbox { reply } => {
                    let _ = reply.send(self.handle_case_outbox());
                }
                Command::CaseAnswered {
                    referral,
                    erase,
                    from,
                    answer,
                    reply,
                } => {
                    let _ = reply.send(self.handle_case_answered(&referral, erase, from, answer));
                }
                Command::CaseMessage {
                    message,
                    key,
                    reply,
                } => {
                    let _ = reply.send(Ok(self.handle_case_message(message, key)));
                }
                Command::Documents { reply } => {
                    let mut ids: Vec<DocumentId> =
                        self.network.iter().map(|n| n.id().clone()).collect();
                    ids.extend(self.documents.values().map(|d| d.id().clone()));
                    let _ = reply.send(Ok(ids));
                }
                Command::Backup { document, reply } => {
                    let result = self.handle_export(&document).and_then(|changes| {
                        crate::backup::DocumentBackup::build(
                            document,
                            changes,
                            self.identity.signing(),
                            crate::unix_now(),
                        )
                        .map_err(|e| {
                            NodeError::Invalid(ValidationError::new("document", e.to_string()))
                        })
                    });
                    let _ = reply.send(result);
                }
                Command::Records { reply } => {
                    let records = self
                        .documents
                        .values()
                        .filter_map(|d| d.record().cloned())
                        .collect();
                    let _ = reply.send(Ok(records));
                }
                Command::Housekeeping { now, reply } => {
                    let _ = reply.send(self.handle_housekeeping(now));
                }
                Command::Shutdown { reply } => {
                    self.snapshot_dirty();
                    let _ = reply.send(());
                    return;
                }
            }
            self.publish_members();
        }
        // Every handle is gone: still leave a snapshot behind.
        self.snapshot_dirty();
    }

    /// Tells the network which keys act for members when the membership changed.
    fn publish_members(&mut self) {
        let Some(sender) = &self.members else {
            return;
        };
        let membership = self.network.as_ref().and_then(|n| n.membership());
        let seen = membership.map(|m| m.operations);
        if seen == self.members_published && seen.is_some() {
            return;
        }
        self.members_published = seen;
        let keys = membership.map(|m| m.acting_keys()).unwrap_or_default();
        sender.send_replace(std::sync::Arc::new(keys));
    }

    fn handle_edit(&mut self, mut edit: Edit) -> Result<EditReceipt, NodeError> {
        let own = self.own;
        let key = self.identity.org_id();
        let id = assign_id(&mut edit)?;
        if key != own && self.membership().and_then(|m| m.acting_member(&key)) != Some(own) {
            return Err(NodeError::Invalid(ValidationError::new(
                "device",
                format!(
                    "this node's key {key} is not (or no longer) an authorised device of {own}: run `passerelle device add {key}` on the organisation's node"
                ),
            )));
        }
        let document = self.documents.get_mut(&own).ok_or_else(|| {
            NodeError::NotFound(
                "this organisation's document is not on this node yet (a device node, or a node repaired with `passerelle repair`): wait until it has synced with a member"
                    .into(),
            )
        })?;
        let now = crate::unix_now();
        let signed = if key == own {
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

    /// Hands a new local change to the network for gossip.
    fn publish(&self, signed: &SignedChange) {
        if let Some(outbound) = &self.outbound
            && outbound
                .try_send(Outbound::Change(signed.encode()))
                .is_err()
        {
            debug!("network busy; the change will reach peers by catch-up");
        }
    }

    /// Tells the network that case-file messages are queued (it also looks periodically).
    fn nudge_network(&self) {
        if let Some(outbound) = &self.outbound {
            let _ = outbound.try_send(Outbound::CaseFiles);
        }
    }

    fn reload(&mut self, org: OrgId) {
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

    fn document(&mut self, org: Option<OrgId>) -> Result<&mut OrganisationDocument, NodeError> {
        let org = org.unwrap_or(self.own);
        self.documents
            .get_mut(&org)
            .ok_or_else(|| NodeError::NotFound(format!("no organisation {org} on this node")))
    }

    fn handle_organisation(&mut self, org: Option<OrgId>) -> Result<OrganisationView, NodeError> {
        let document = self.document(org)?;
        let record = document
            .record()
            .cloned()
            .ok_or_else(|| NodeError::NotFound("that organisation has no profile yet".into()))?;
        Ok(OrganisationView {
            fingerprint: document.owner().fingerprint(),
            document: document.id().to_string(),
            record,
        })
    }

    fn handle_history(
        &mut self,
        org: Option<OrgId>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, NodeError> {
        Ok(self.document(org)?.history(limit))
    }

    fn handle_status(&mut self) -> StatusReport {
        let own = self.own;
        let key = self.identity.org_id();
        let documents = self
            .documents
            .values_mut()
            .map(|d| DocumentStatus {
                id: d.id().to_string(),
                name: d
                    .record()
                    .map(|r| r.profile.name.clone())
                    .unwrap_or_default(),
                changes: self.change_counts.get(&d.owner()).copied().unwrap_or(0),
                heads: d.heads().iter().map(|h| h.to_string()).collect(),
            })
            .collect();
        StatusReport {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            org_id: own.to_string(),
            fingerprint: own.fingerprint(),
            node_key: key.to_string(),
            device_of: (key != own).then(|| own.to_string()),
            org_name: self
                .documents
                .get(&own)
                .and_then(|d| d.record())
                .map(|r| r.profile.name.clone())
                .unwrap_or_default(),
            encryption_key: self.identity.encryption_public_key().to_string(),
            data_dir: self.config.data_dir.display().to_string(),
            uptime_seconds: self.started.elapsed().as_secs(),
            documents,
            store_bytes: self.store.size_on_disk(),
            pending_changes: self.pending.len(),
            rejected_changes: self.rejected_changes,
            rejected_by_reason: self.rejected_by_code.clone(),
            documents_received_whole: self.documents_received_whole,
            case_files_held: self.vault.held().map(|h| h.len()).unwrap_or(0),
            case_outbox: self.vault.outbox().map(|o| o.len()).unwrap_or(0),
            case_files_refused: self.case_files_refused,
            membership: self.membership_summary(),
            network: NetworkStatus::default(),
            start: self.start.clone(),
            store_check: self
                .store_check
                .lock()
                .map(|s| s.clone())
                .unwrap_or_default(),
        }
    }

    fn snapshot(&mut self, org: OrgId) {
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

    fn snapshot_due(&mut self) {
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

    fn snapshot_dirty(&mut self) {
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
fn assign_id(edit: &mut Edit) -> Result<String, NodeError> {
    let fresh = |prefix: &str| -> Result<String, NodeError> {
        let mut bytes = [0u8; 5];
        getrandom::fill(&mut bytes).map_err(|e| NodeError::Io {
            context: "drawing a random id".into(),
            source: std::io::Error::other(e.to_string()),
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
        Edit::SetProfile { .. } | Edit::SetEncryptionKey { .. } => String::new(),
    })
}

/// The network document, from its stored changes (verified).
fn load_network(store: &Store) -> Result<Option<NetworkDocument>, NodeError> {
    let Some(id) = store.network()? else {
        return Ok(None);
    };
    let mut network = NetworkDocument::empty(id);
    let held = store.load_document(&id.document_id())?;
    let (ordered, missing) = replication::release_in_order(held, |_| false);
    if !missing.is_empty() {
        return Err(StoreError::Corrupt {
            key: id.document_id().to_string(),
            reason: format!("{} network changes miss a dependency", missing.len()),
        }
        .into());
    }
    for change in &ordered {
        network
            .apply_unfolded(change)
            .map_err(|e| StoreError::Corrupt {
                key: id.document_id().to_string(),
                reason: e.to_string(),
            })?;
    }
    network.refold();
    Ok(Some(network))
}

/// The organisation documents a store holds, as the documents actor keeps them.
struct LoadedDocuments {
    documents: BTreeMap<OrgId, OrganisationDocument>,
    change_counts: HashMap<OrgId, usize>,
    /// How many were taken from a sufficient snapshot.
    from_snapshots: usize,
    /// The documents whose snapshot is missing or behind their stored changes.
    stale: Vec<OrgId>,
    /// A network document other than the node's own, if the store holds one.
    stray_network: Option<DocumentId>,
}

impl LoadedDocuments {
    fn new(stray_network: Option<DocumentId>) -> Self {
        Self {
            documents: BTreeMap::new(),
            change_counts: HashMap::new(),
            from_snapshots: 0,
            stale: Vec::new(),
            stray_network,
        }
    }
}

/// Fast start: each document whose snapshot holds as many changes as the store counts for
/// it is taken from the snapshot (record as saved, Automerge loaded when first needed);
/// the others are rebuilt from their verified signed changes. Spread over the cores.
fn load_from_snapshots(
    store: &Store,
    counts: BTreeMap<DocumentId, u64>,
) -> Result<LoadedDocuments, NodeError> {
    let own_network = store.network()?.map(|n| n.document_id());
    let mut stray_network = None;
    let mut work = Vec::new();
    for (id, count) in counts {
        if id.network_owner().is_some() {
            if Some(&id) != own_network.as_ref() && count > 0 {
                stray_network = Some(id);
            }
            continue;
        }
        let Some(owner) = id.organisation_owner() else {
            return Err(StoreError::Corrupt {
                key: format!("change-counts/{id}"),
                reason: "not an organisation document".into(),
            }
            .into());
        };
        if count > 0 {
            work.push((id, owner, count));
        }
    }
    type Done = (OrgId, OrganisationDocument, usize, bool);
    // Each snapshot is read and parsed by the thread that takes its document, one at a
    // time, so that the store's snapshots are never all in memory at once.
    let load_one = |(id, owner, count): (DocumentId, OrgId, u64)| -> Result<Done, NodeError> {
        if let Some(snapshot) = store.snapshot_record(&id)? {
            if snapshot.changes == count {
                match OrganisationDocument::from_sufficient_snapshot(
                    owner,
                    snapshot,
                    Arc::new(store.clone()),
                ) {
                    Ok(document) => return Ok((owner, document, count as usize, true)),
                    Err(e) => {
                        warn!(document = %id, error = %e, "snapshot unreadable; rebuilding from the signed changes")
                    }
                }
            } else {
                debug!(document = %id, snapshot = snapshot.changes, stored = count, "snapshot behind the store; rebuilding from the signed changes");
            }
        }
        let changes = store.load_document(&id)?;
        let document = rebuild(&id, &changes, None)?;
        Ok((owner, document, changes.len(), false))
    };
    let results: Vec<Result<Done, NodeError>> = crate::parallel::map(work, load_one);
    let mut loaded = LoadedDocuments::new(stray_network);
    let mut recounted = Vec::new();
    for result in results {
        let (owner, document, count, from_snapshot) = result?;
        if from_snapshot {
            loaded.from_snapshots += 1;
        } else {
            recounted.push((document.id().clone(), count as u64));
            loaded.stale.push(owner);
        }
        loaded.change_counts.insert(owner, count);
        loaded.documents.insert(owner, document);
    }
    // A count a crash left ahead of the changes is set right.
    store.set_change_counts(recounted.iter().map(|(id, n)| (id, *n)), false)?;
    Ok(loaded)
}

/// Full check (`--verify-store`, or a store from before change counts were kept): every
/// stored change decoded and verified, every document rebuilt from its snapshot and
/// changes; then the change counts are recorded.
fn load_everything(store: &Store) -> Result<LoadedDocuments, NodeError> {
    // Two independent halves, one per core: decode and verify every signed change, and
    // load the snapshots into Automerge.
    let (changes, snapshots) = std::thread::scope(|scope| {
        let snapshots = scope.spawn(|| load_snapshots(store));
        let changes = store.load_changes();
        (changes, snapshots.join())
    });
    let mut changes = changes?;
    let own_network = store.network()?.map(|n| n.document_id());
    let network_count = own_network
        .as_ref()
        .and_then(|id| changes.remove(id))
        .map(|c| c.len());
    let stray_network = changes
        .keys()
        .find(|id| id.network_owner().is_some())
        .cloned();
    let mut snapshots = match snapshots {
        Ok(loaded) => loaded?,
        Err(_) => {
            warn!("loading snapshots failed; rebuilding every document from its changes");
            HashMap::new()
        }
    };
    let mut loaded = LoadedDocuments::new(stray_network);
    let mut counts = Vec::new();
    for (id, changes) in changes {
        if id.network_owner().is_some() {
            continue;
        }
        let count = changes.len();
        let snapshot = snapshots.remove(&id);
        let sufficient = snapshot
            .as_ref()
            .is_some_and(|(s, d)| d.is_ok() && s.changes == count as u64);
        let document = rebuild(&id, &changes, snapshot)?;
        counts.push((id, count as u64));
        if !sufficient {
            loaded.stale.push(document.owner());
        }
        loaded.change_counts.insert(document.owner(), count);
        loaded.documents.insert(document.owner(), document);
    }
    if let (Some(id), Some(count)) = (own_network, network_count) {
        counts.push((id, count as u64));
    }
    store.set_change_counts(counts.iter().map(|(id, n)| (id, *n)), true)?;
    Ok(loaded)
}

type LoadedSnapshot = (Snapshot, Result<OrganisationDocument, DocumentError>);

/// Reads every snapshot and loads it into Automerge.
fn load_snapshots(store: &Store) -> Result<HashMap<DocumentId, LoadedSnapshot>, StoreError> {
    Ok(store
        .load_snapshots()?
        .into_iter()
        .filter_map(|(id, snapshot)| {
            let owner = id.organisation_owner()?;
            let document = OrganisationDocument::from_snapshot(owner, &snapshot.document);
            Some((id, (snapshot, document)))
        })
        .collect())
}

/// Builds a document from what the store holds: the snapshot if any, then every stored
/// change it lacks. Checks that nothing is missing and that the snapshot holds no change
/// without a signed record.
fn rebuild(
    id: &DocumentId,
    changes: &[SignedChange],
    snapshot: Option<LoadedSnapshot>,
) -> Result<OrganisationDocument, NodeError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        key: id.to_string(),
        reason,
    };
    let owner = id
        .organisation_owner()
        .ok_or_else(|| corrupt("not an organisation document".into()))?;
    let signed: HashSet<_> = changes.iter().map(|c| c.hash()).collect();
    let (mut document, snapshot) = match snapshot {
        Some((snapshot, Ok(mut document))) => {
            if let Some(head) = document.heads().into_iter().find(|h| !signed.contains(h)) {
                return Err(corrupt(format!(
                    "the snapshot holds change {head}, which has no signed record"
                ))
                .into());
            }
            (document, Some(snapshot))
        }
        Some((_, Err(e))) => {
            warn!(document = %id, error = %e, "snapshot unreadable; rebuilding from the signed changes");
            (OrganisationDocument::empty(owner), None)
        }
        None => (OrganisationDocument::empty(owner), None),
    };
    let missing: Vec<_> = changes
        .iter()
        .filter(|c| !document.has_change(&c.hash()))
        .cloned()
        .collect();
    match snapshot {
        Some(snapshot) if missing.is_empty() => document.restore_record(&snapshot),
        _ => document.apply_verified(&missing),
    }
    .map_err(|e| corrupt(e.to_string()))?;
    let held = document.change_count();
    if held != changes.len() {
        return Err(corrupt(format!(
            "{} signed changes are stored but only {held} could be applied (a dependency is missing)",
            changes.len()
        ))
        .into());
    }
    Ok(document)
}
