//! The node's API: one typed request/response protocol, shared by the `passerelle` command
//! (over the control socket, [`crate::control`]) and by anything else that drives a node.
//!
//! Rules:
//! - Every request is a type of its own that names what it answers: a [`Call`] answers one
//!   value ([`Call::Reply`]); a [`Streamed`] request answers a head ([`Streamed::Head`])
//!   then any number of items ([`Streamed::Item`]), so no answer is capped by the size of
//!   one message (the whole directory, the referral board, a document's history).
//! - [`Request`] is every request on the wire: `{"request": "<name>", …fields}`.
//! - The answer is a sequence of [`Frame`]s, one JSON object per line: `{"ok": …}` for a
//!   call; `{"head": …}`, then `{"item": …}` per item, then `{"end": {"count": n}}` for a
//!   stream; `{"error": …}` ([`ApiError`]) ends either, even half-way through a stream. A
//!   stream whose `end` does not count the items received was cut short.
//! - The protocol is versioned ([`API_VERSION`], [`Version`]); a request a node does not
//!   know is answered `bad_request`, and the client then asks the node's version to say
//!   which side to upgrade.
//! - Limits: a request line is at most [`MAX_REQUEST_BYTES`]; an answer line (one value or
//!   one item) at most [`MAX_FRAME_BYTES`].
//!
//! Documented for callers in `docs/api.md`.

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::accounts::{Account, AccountError, Password, Role};
use crate::directory::{SearchQuery, ServiceHit};
use crate::document::{Edit, HistoryEntry};
use crate::identity::{KeyId, OrgId};
use crate::ids::{ReferralId, ServiceId};
use crate::model::OrganisationRecord;
use crate::node::{
    Decision, DecisionReceipt, EditReceipt, EraseReceipt, ListFilter, MembershipView, NodeError,
    OrganisationView, ReferralReceipt, ReferralView, SendReferral, StatusReport,
};
use crate::referral::board::BoardEntry;
use crate::referral::lifecycle::Move;
use crate::referral::matching::{MatchQuery, ServiceMatch};
use crate::referral::report::Report;
use crate::vault::AuditEntry;

/// The version of this protocol. 1 answered every request with one line of at most 4 MiB;
/// 2 streams large answers and types every request.
pub const API_VERSION: u32 = 2;
/// Longest request line, in bytes.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// Longest answer line (one value, or one item of a stream), in bytes: as large as the
/// largest document a node accepts ([`crate::automerge_bounds::MAX_INFLATED_DOCUMENT`]).
pub const MAX_FRAME_BYTES: usize = crate::automerge_bounds::MAX_INFLATED_DOCUMENT as usize;

/// A request answered by one value.
pub trait Call: Into<Request> {
    /// What it answers.
    type Reply: Serialize + DeserializeOwned;
}

/// A request answered by a head and a stream of items.
pub trait Streamed: Into<Request> {
    /// What comes first (`()` when there is nothing).
    type Head: Serialize + DeserializeOwned;
    /// Each item.
    type Item: Serialize + DeserializeOwned;
}

macro_rules! requests {
    ($($(#[$doc:meta])* $variant:ident($request:ident)),* $(,)?) => {
        /// Every request, as it is written on the wire.
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(tag = "request", rename_all = "snake_case")]
        pub enum Request {
            $($(#[$doc])* $variant($request),)*
        }
        $(impl From<$request> for Request {
            fn from(request: $request) -> Self {
                Request::$variant(request)
            }
        })*
    };
}

requests! {
    /// [`Version`].
    Version(Version),
    /// [`Status`].
    Status(Status),
    /// [`Organisation`].
    Organisation(Organisation),
    /// [`EditOwn`].
    Edit(EditOwn),
    /// [`Search`].
    Search(Search),
    /// [`History`].
    History(History),
    /// [`Membership`].
    Membership(Membership),
    /// [`Decide`].
    Decide(Decide),
    /// [`Records`].
    Records(Records),
    /// [`ExportAutomerge`].
    ExportAutomerge(ExportAutomerge),
    /// [`ImportAutomerge`].
    ImportAutomerge(ImportAutomerge),
    /// [`ReferralMatch`].
    ReferralMatch(ReferralMatch),
    /// [`ReferralSend`].
    ReferralSend(ReferralSend),
    /// [`ReferralMove`].
    ReferralMove(ReferralMove),
    /// [`ReferralPropose`].
    ReferralPropose(ReferralPropose),
    /// [`ReferralAssign`].
    ReferralAssign(ReferralAssign),
    /// [`ReferralShow`].
    ReferralShow(ReferralShow),
    /// [`ReferralErase`].
    ReferralErase(ReferralErase),
    /// [`ReferralToOffice`].
    ReferralToOffice(ReferralToOffice),
    /// [`ReferralReport`].
    ReferralReport(ReferralReport),
    /// [`Board`].
    Board(Board),
    /// [`Audit`].
    Audit(Audit),
    /// [`AuditExport`].
    AuditExport(AuditExport),
    /// [`AuditVerify`].
    AuditVerify(AuditVerify),
    /// [`Retention`].
    Retention(Retention),
    /// [`BackupWrite`].
    BackupWrite(BackupWrite),
    /// [`BackupRestore`].
    BackupRestore(BackupRestore),
    /// [`UserAdd`].
    UserAdd(UserAdd),
    /// [`UserList`].
    UserList(UserList),
    /// [`UserRemove`].
    UserRemove(UserRemove),
    /// [`UserPassword`].
    UserPassword(UserPassword),
}

/// The protocol version the node speaks and the node's own version.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Version {}

/// What [`Version`] answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiVersion {
    /// The protocol version ([`API_VERSION`]).
    pub api: u32,
    /// The node's release.
    pub node: String,
}

impl Call for Version {
    type Reply = ApiVersion;
}

/// The node's status.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Status {}

impl Call for Status {
    type Reply = StatusReport;
}

/// An organisation's profile, offices and services.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organisation {
    /// Which organisation; this node's own if absent.
    #[serde(default)]
    pub org: Option<OrgId>,
}

impl Call for Organisation {
    type Reply = OrganisationView;
}

/// An edit of this node's organisation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditOwn {
    /// The edit.
    pub edit: Edit,
}

impl Call for EditOwn {
    type Reply = EditReceipt;
}

/// A directory search: the services found, best first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Search {
    /// The query.
    pub query: SearchQuery,
}

impl Streamed for Search {
    type Head = ();
    type Item = ServiceHit;
}

/// A document's signed change log, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct History {
    /// Which organisation; this node's own if absent.
    #[serde(default)]
    pub org: Option<OrgId>,
    /// Most entries.
    pub limit: usize,
}

impl Streamed for History {
    type Head = ();
    type Item = HistoryEntry;
}

/// The network: charter, members, proposals, requests.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Membership {}

impl Call for Membership {
    type Reply = MembershipView;
}

/// A membership decision.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decide {
    /// The decision.
    pub decision: Decision,
}

impl Call for Decide {
    type Reply = DecisionReceipt;
}

/// Every organisation record held: the directory, for exports and reports.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Records {
    /// Only the directory: each record without its referral parts (referrals sent,
    /// answers, proposals), for exports and reports of organisations and services. At
    /// national scale that is most of what a record holds.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub directory_only: bool,
}

impl Streamed for Records {
    type Head = ();
    type Item = OrganisationRecord;
}

/// Writes a backup of every document into a folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportAutomerge {
    /// An absolute path (created if missing).
    pub dir: PathBuf,
}

impl Call for ExportAutomerge {
    type Reply = Vec<crate::archive::Exported>;
}

/// Verifies a backup folder and merges it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportAutomerge {
    /// An absolute path.
    pub dir: PathBuf,
    /// Verify only.
    #[serde(default)]
    pub dry_run: bool,
}

impl Call for ImportAutomerge {
    type Reply = crate::archive::Imported;
}

/// Services that fit a returnee's needs, best first (needs covered, capacity, cost).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferralMatch {
    /// The needs and constraints.
    pub query: MatchQuery,
}

impl Call for ReferralMatch {
    type Reply = Vec<ServiceMatch>;
}

/// Sends a referral with the person's case file (consent, or an override with its reason,
/// required). Every referral step names the operator as the caller knows them (`$USER`),
/// for the audit log; the node adds the Unix uid of the connecting process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferralSend {
    /// What to send.
    pub send: Box<SendReferral>,
    /// The operator.
    #[serde(default)]
    pub operator: Option<String>,
}

impl Call for ReferralSend {
    type Reply = ReferralReceipt;
}

/// One of this organisation's moves on a referral (accept, decline, start, …).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferralMove {
    /// The referral.
    pub id: ReferralId,
    /// The move.
    pub action: Move,
    /// The operator.
    #[serde(default)]
    pub operator: Option<String>,
}

impl Call for ReferralMove {
    type Reply = ReferralReceipt;
}

/// Offers one of this organisation's services for another's open referral.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferralPropose {
    /// The referral.
    pub id: ReferralId,
    /// This organisation's service.
    pub service: ServiceId,
    /// The operator.
    #[serde(default)]
    pub operator: Option<String>,
}

impl Call for ReferralPropose {
    type Reply = ReferralReceipt;
}

/// Gives this organisation's open referral to one of the organisations that proposed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferralAssign {
    /// The referral.
    pub id: ReferralId,
    /// The organisation chosen.
    pub org: OrgId,
    /// The operator.
    #[serde(default)]
    pub operator: Option<String>,
}

impl Call for ReferralAssign {
    type Reply = ReferralReceipt;
}

/// One referral: its board entry, history, and its case file where this node may read it
/// (the read is recorded in the audit log).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferralShow {
    /// The referral.
    pub id: ReferralId,
    /// The operator.
    #[serde(default)]
    pub operator: Option<String>,
}

impl Call for ReferralShow {
    type Reply = ReferralView;
}

/// Erases a referral's case file here and asks the other organisation's node to erase its
/// copy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferralErase {
    /// The referral.
    pub id: ReferralId,
    /// The operator.
    #[serde(default)]
    pub operator: Option<String>,
}

impl Call for ReferralErase {
    type Reply = EraseReceipt;
}

/// Hands a received case file on to one of this organisation's offices (a device node
/// granted case files), sealed to the device's own key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferralToOffice {
    /// The referral.
    pub id: ReferralId,
    /// The office's device key.
    pub office: KeyId,
    /// The operator.
    #[serde(default)]
    pub operator: Option<String>,
}

impl Call for ReferralToOffice {
    type Reply = ReferralReceipt;
}

/// Aggregate figures of the board (counts only, no personal data).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferralReport {
    /// Referrals sent from this time (Unix seconds, inclusive).
    #[serde(default)]
    pub from: Option<i64>,
    /// Referrals sent up to this time (Unix seconds, inclusive).
    #[serde(default)]
    pub to: Option<i64>,
    /// The smallest count shown, instead of the node's `[referrals] report_min_count`: for
    /// the node's own monitoring (`/metrics`: counts by status, as the board shows them to
    /// every member), never for a report that leaves the network.
    #[serde(default)]
    pub min_count: Option<u64>,
}

impl Call for ReferralReport {
    type Reply = Report;
}

/// The referral board: the entries matching a filter, newest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    /// Which referrals.
    #[serde(default)]
    pub filter: ListFilter,
}

/// What comes before the entries of the board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardHead {
    /// How many entries match the filter (more than are sent when it was limited).
    pub total: usize,
    /// Names of the organisations involved.
    pub names: std::collections::BTreeMap<OrgId, String>,
    /// This node's organisation.
    pub own: OrgId,
    /// The time the list was made (for "overdue").
    pub now: i64,
    /// The referrals whose case file this node holds (without reading them).
    pub case_files_held: Vec<ReferralId>,
    /// When each held case file of a closed referral will be destroyed here.
    #[serde(default)]
    pub destroy_at: std::collections::BTreeMap<ReferralId, i64>,
}

impl Streamed for Board {
    type Head = BoardHead;
    type Item = BoardEntry;
}

/// The local audit log of case files, oldest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    /// One referral's entries only.
    #[serde(default)]
    pub id: Option<ReferralId>,
}

impl Streamed for Audit {
    type Head = ();
    type Item = AuditEntry;
}

/// The audit log's chain made in a period, seals included, oldest first: what an inspector
/// is given (`passerelle audit export`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditExport {
    /// From this time (Unix seconds, inclusive).
    #[serde(default)]
    pub from: Option<i64>,
    /// To this time (Unix seconds, inclusive).
    #[serde(default)]
    pub to: Option<i64>,
}

/// Who sealed the chain: what an inspector checks the seals with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// This node's organisation.
    pub organisation: String,
    /// The key that seals the chain (this node's key id).
    pub sealed_by: String,
}

impl Streamed for AuditExport {
    type Head = AuditHead;
    type Item = crate::audit::Entry;
}

/// Checks the audit log's whole chain (`passerelle audit verify`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditVerify {}

impl Call for AuditVerify {
    type Reply = crate::audit::Verdict;
}

pub use crate::keys::SecretText;

/// Writes a backup of every case file held here, sealed to `[backup] public_key`, into
/// `dir` (else `[backup] dir`): `passerelle backup write`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupWrite {
    /// The folder.
    #[serde(default)]
    pub dir: Option<std::path::PathBuf>,
}

impl Call for BackupWrite {
    type Reply = crate::case_backup::BackupReceipt;
}

/// Restores a sealed backup of case files (`passerelle backup restore`), except those
/// erased since it was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupRestore {
    /// The sealed backup (a path on the node's computer).
    pub file: std::path::PathBuf,
    /// The backup secret's text.
    pub secret: SecretText,
}

impl Call for BackupRestore {
    type Reply = crate::case_backup::RestoreReceipt;
}

/// Every case file held here and when its retention ends (`passerelle retention`); with
/// `run`, what is due is destroyed first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Destroy what is due now.
    #[serde(default)]
    pub run: bool,
}

impl Call for Retention {
    type Reply = crate::node::RetentionReport;
}

/// Makes an account of this node's web page (`passerelle user add`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserAdd {
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Its password (hashed by the node; never stored or logged).
    pub password: Password,
}

impl Call for UserAdd {
    type Reply = Account;
}

/// Every account of this node's web page.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserList {}

impl Call for UserList {
    type Reply = Vec<Account>;
}

/// Removes an account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRemove {
    /// Its name.
    pub name: String,
}

impl Call for UserRemove {
    type Reply = ();
}

/// Sets an account's password.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPassword {
    /// Its name.
    pub name: String,
    /// The new password.
    pub password: Password,
}

impl Call for UserPassword {
    type Reply = ();
}

impl Request {
    /// True if the request may write something (an edit, a decision, a referral step, an
    /// import): if the connection breaks before the answer, it may or may not have been
    /// done.
    pub fn writes(&self) -> bool {
        match self {
            Request::Edit(_)
            | Request::Decide(_)
            | Request::ReferralSend(_)
            | Request::ReferralMove(_)
            | Request::ReferralPropose(_)
            | Request::ReferralAssign(_)
            | Request::ReferralErase(_)
            | Request::ReferralToOffice(_)
            | Request::UserAdd(_)
            | Request::UserRemove(_)
            | Request::UserPassword(_) => true,
            Request::Retention(Retention { run }) => *run,
            Request::BackupWrite(_) | Request::BackupRestore(_) => true,
            Request::ImportAutomerge(ImportAutomerge { dry_run, .. }) => !dry_run,
            Request::ReferralMatch(_)
            | Request::ReferralShow(_)
            | Request::ReferralReport(_)
            | Request::Version(_)
            | Request::Status(_)
            | Request::Organisation(_)
            | Request::Search(_)
            | Request::History(_)
            | Request::Membership(_)
            | Request::Records(_)
            | Request::ExportAutomerge(_)
            | Request::Board(_)
            | Request::Audit(_)
            | Request::AuditExport(_)
            | Request::AuditVerify(_)
            | Request::UserList(_) => false,
        }
    }
}

/// One line of an answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frame {
    /// The answer to a [`Call`]. Kept as raw JSON text, so a large value is written and
    /// read once, without an intermediate JSON tree.
    Ok(Box<serde_json::value::RawValue>),
    /// The head of a [`Streamed`] answer.
    Head(Box<serde_json::value::RawValue>),
    /// One item of a [`Streamed`] answer.
    Item(Box<serde_json::value::RawValue>),
    /// The end of a [`Streamed`] answer.
    End(StreamEnd),
    /// The request failed (at once, or half-way through a stream).
    Error(ApiError),
}

/// The end of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamEnd {
    /// How many items were sent.
    pub count: u64,
}

/// Kinds of error the API returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request's input was refused; nothing was written.
    InvalidInput,
    /// The thing asked for does not exist.
    NotFound,
    /// The request could not be read.
    BadRequest,
    /// The node failed (store, keys, …).
    Internal,
    /// The node has too much to do right now: nothing was done; retry.
    Busy,
}

/// An error the node returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// What kind of error.
    pub kind: ErrorKind,
    /// The field at fault, for invalid input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// A message for people, in English.
    pub message: String,
    /// The same in French, where the node says it in French (input refused, not found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fr: Option<String>,
}

impl ApiError {
    /// An error of `kind` with no field.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            field: None,
            message: message.into(),
            fr: None,
        }
    }

    /// The message in `lang` (English where the node wrote no French).
    pub fn message_in(&self, lang: crate::reference::Lang) -> &str {
        match (lang, &self.fr) {
            (crate::reference::Lang::Fr, Some(fr)) => fr,
            _ => &self.message,
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        let field = match &e {
            AccountError::BadName(_) | AccountError::Exists(_) | AccountError::LastAdmin(_) => {
                Some("name")
            }
            AccountError::ShortPassword => Some("password"),
            _ => None,
        };
        let kind = match &e {
            AccountError::NotFound(_) => ErrorKind::NotFound,
            AccountError::Hash(_) | AccountError::Store(_) | AccountError::Damaged(_) => {
                ErrorKind::Internal
            }
            _ => ErrorKind::InvalidInput,
        };
        Self {
            kind,
            field: field.map(str::to_owned),
            fr: Some(e.fr()),
            message: e.to_string(),
        }
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::Invalid(v) => Self {
                kind: ErrorKind::InvalidInput,
                message: v.to_string(),
                fr: v.fr.is_some().then(|| v.said(crate::reference::Lang::Fr)),
                field: Some(v.field),
            },
            NodeError::NotFound { message, fr } => Self {
                kind: ErrorKind::NotFound,
                field: None,
                message,
                fr: Some(fr),
            },
            other => Self::new(ErrorKind::Internal, other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests of version 1 that kept their shape read the same.
    #[test]
    fn requests_read_as_they_are_written() {
        let status: Request = serde_json::from_str(r#"{"request":"status"}"#).expect("status");
        assert!(matches!(status, Request::Status(_)));
        let history: Request =
            serde_json::from_str(r#"{"request":"history","limit":5}"#).expect("history");
        assert!(matches!(
            history,
            Request::History(History {
                org: None,
                limit: 5
            })
        ));
        let board: Request =
            serde_json::from_str(r#"{"request":"board","filter":{"incoming":true}}"#)
                .expect("board");
        assert!(matches!(board, Request::Board(Board { filter }) if filter.incoming));
        for (text, what) in [
            (r#"{"request":"status","extra":1}"#, "unknown field"),
            (r#"{"request":"nothing"}"#, "unknown variant"),
            (r#"{"request":"history"}"#, "missing field"),
        ] {
            let error = serde_json::from_str::<Request>(text).expect_err(text);
            assert!(error.to_string().contains(what), "{text}: {error}");
        }
        let written = serde_json::to_string(&Request::from(Records::default())).expect("json");
        assert_eq!(written, r#"{"request":"records"}"#);
    }

    #[test]
    fn frames_are_one_key_objects() {
        let end = serde_json::to_string(&Frame::End(StreamEnd { count: 3 })).expect("json");
        assert_eq!(end, r#"{"end":{"count":3}}"#);
        let item: Frame = serde_json::from_str(r#"{"item":{"a":[1,2]}}"#).expect("item");
        assert!(matches!(item, Frame::Item(raw) if raw.get() == r#"{"a":[1,2]}"#));
    }
}
