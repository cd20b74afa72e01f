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
//!
//! The actor is split by concern, each an `impl DocumentsActor` block behind the one
//! handle (`handle.rs`: one command per request): `documents` (this organisation's edits,
//! any organisation's view, snapshots), `decisions` (membership), `referrals` (the board,
//! case files), `replication` (what peers send and are sent) and `load` (creating a data
//! folder, loading from snapshots or every signed change). This file holds the actor, its
//! command loop, its status, and starting and stopping it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};

use crate::config::Config;
use crate::directory;
use crate::document::{DocumentError, OrganisationDocument, Replica};
use crate::envelope::DocumentId;
use crate::envelope::SignedChange;
use crate::identity::{Identity, IdentityError, OrgId};
use crate::membership::NetworkDocument;
use crate::model::{OrganisationRecord, ValidationError};
use crate::status::NetworkStatus;
use crate::store::{Store, StoreError};

mod casefiles;
mod decisions;
mod documents;
mod handle;
mod load;
mod received;
mod referrals;
mod replication;

use handle::Command;
pub use handle::{NodeHandle, Outbound};
use load::rebuild;
pub use load::{initialise, initialise_device, remember_recovery_key};

pub use casefiles::Outgoing;
pub use decisions::{
    Decision, DecisionReceipt, MembershipSummary, MembershipView, RequestView, create_network,
    found_network_locally, join_network,
};
pub use referrals::{
    CaseState, EraseReceipt, ListFilter, ReferralList, ReferralReceipt, ReferralReply,
    ReferralRequest, ReferralView, RetentionItem, RetentionReport, SendReferral,
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
    #[error("{message}")]
    NotFound {
        /// What was not found.
        message: String,
        /// The same in French.
        fr: String,
    },
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
    /// The case-file vault failed.
    #[error("the case-file vault: {0}")]
    Vault(#[from] crate::vault::VaultError),
    /// The system's random source failed.
    #[error("{context}: the system's random source failed: {source}")]
    Random {
        /// What the randomness was for.
        context: String,
        /// The error.
        source: getrandom::Error,
    },
    /// The network stack could not be built or could not listen.
    #[error("{context}: {reason}")]
    Network {
        /// What was being done.
        context: String,
        /// libp2p's message.
        reason: String,
    },
    /// A thread of the node panicked (its message is in the log).
    #[error("{0}: a thread of the node panicked")]
    Panicked(&'static str),
    /// The node answered with something other than what was asked (a defect).
    #[error("internal error: {0}")]
    Internal(String),
    /// The node is shutting down or has stopped.
    #[error("the node has stopped")]
    Stopped,
}

impl From<DocumentError> for NodeError {
    fn from(e: DocumentError) -> Self {
        match e {
            DocumentError::Invalid(v) => Self::Invalid(v),
            DocumentError::NotFound { kind, id } => {
                let none = match kind {
                    "office" => "aucun bureau",
                    "service" => "aucun service",
                    "referral" => "aucune référence",
                    "draft" => "aucun brouillon",
                    _ => "rien",
                };
                Self::not_found(
                    format!("no {kind} with id {id:?}"),
                    format!("{none} d'identifiant {id:?}"),
                )
            }
            other => Self::Document(other),
        }
    }
}

impl NodeError {
    /// "Not found", in English and French.
    pub fn not_found(message: impl Into<String>, fr: impl Into<String>) -> Self {
        Self::NotFound {
            message: message.into(),
            fr: fr.into(),
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
    /// When a snapshot of a document was last written since start (Unix seconds).
    #[serde(default)]
    pub last_snapshot_at: Option<i64>,
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
    let accounts = crate::accounts::Accounts::open(&loaded.store).map_err(|e| NodeError::Io {
        context: "opening the web accounts".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let handle = NodeHandle {
        commands,
        org_id,
        key_id: identity.key_id(),
        network: network_rx,
        accounts: Arc::new(std::sync::Mutex::new(Some(accounts))),
        audit: loaded.vault.audit_chain().reader(),
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
    handle.close_accounts();
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
                        )
                        .fr("les références se font par les demandes de référence (`passerelle referral …`), et la clé de chiffrement seulement par `passerelle init`")))
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
                    live,
                    reply,
                } => {
                    let result = self.handle_apply_remote(changes, from, live);
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
                    kind,
                    from,
                    answer,
                    reply,
                } => {
                    let _ = reply.send(self.handle_case_answered(&referral, kind, from, answer));
                }
                Command::CaseMessage {
                    message,
                    key,
                    reply,
                } => {
                    let _ = reply.send(Ok(self.handle_case_message(message, key)));
                }
                Command::RememberAddresses {
                    key,
                    addresses,
                    reply,
                } => {
                    let result = self
                        .store
                        .remember_addresses(&key, &addresses, crate::unix_now())
                        .map_err(NodeError::from);
                    let _ = reply.send(result);
                }
                Command::PublishedAddresses { reply } => {
                    let _ = reply.send(Ok(self.handle_published_addresses()));
                }
                Command::PublishAddresses { addresses, reply } => {
                    let _ = reply.send(self.handle_publish_addresses(addresses));
                }
                Command::RememberedAddresses { reply } => {
                    let _ = reply.send(self.store.remembered_addresses().map_err(NodeError::from));
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
                Command::Records {
                    directory_only,
                    reply,
                } => {
                    let records = self
                        .documents
                        .values()
                        .filter_map(|d| d.record())
                        .map(|r| {
                            if directory_only {
                                r.directory_part()
                            } else {
                                r.clone()
                            }
                        })
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

    fn handle_status(&mut self) -> StatusReport {
        let own = self.own;
        let key = self.identity.key_id();
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
            device_of: self.is_device_node().then(|| own.to_string()),
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
            last_snapshot_at: self.store.last_snapshot_at(),
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
}
