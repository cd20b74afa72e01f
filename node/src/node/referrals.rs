//! The documents actor's referral work: sending (consent, case file, board entry),
//! moving, open referrals, reading and erasing case files, and the periodic housekeeping
//! (expiry of unanswered referrals, end of the receiver's access). Case files travelling
//! between nodes are `casefiles.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{DocumentsActor, NodeError};
use crate::document::Edit;
use crate::identity::{KeyId, OrgId};
use crate::ids::{ReferralId, ServiceId};
use crate::model::{OrganisationRecord, ServiceStatus, ValidationError};
use crate::reference::taxonomy;
use crate::referral::board::{
    self, Assignment, BoardEntry, MoveRecord, Priority, Proposal, SentReferral,
};
use crate::referral::casefile::{self, CaseContent, CaseFile, ConsentRecord};
use crate::referral::index::{BoardIndex, Summary};
use crate::referral::lifecycle::{Move, Role, Status};
use crate::referral::matching::{self, MatchQuery, ServiceMatch};
use crate::referral::report::{self, Report};
use crate::vault::{AuditEntry, Erasure, HeldCase, OutboxEntry, OutboxKind, Side};

/// What `passerelle referral send` asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendReferral {
    /// The receiving organisation (a direct referral), with `service`.
    #[serde(default)]
    pub to: Option<OrgId>,
    /// The receiver's service id.
    #[serde(default)]
    pub service: Option<ServiceId>,
    /// The category asked for: required for an open referral; for a direct one, defaults
    /// to the service's first category.
    #[serde(default)]
    pub category: Option<String>,
    /// Region P-code where the person is.
    pub region: String,
    /// Routine or urgent.
    pub priority: Priority,
    /// Seconds the receiver has to answer.
    pub respond_within: i64,
    /// The case file.
    pub case_file: CaseFile,
    /// Consent, or the override and its reason.
    pub consent: ConsentRecord,
}

/// Which referrals `referral list` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListFilter {
    /// Only those received by this organisation.
    #[serde(default)]
    pub incoming: bool,
    /// Only those sent by this organisation.
    #[serde(default)]
    pub outgoing: bool,
    /// Only those with this status.
    #[serde(default)]
    pub status: Option<Status>,
    /// Only pending referrals past their deadline.
    #[serde(default)]
    pub overdue: bool,
    /// Only open referrals this organisation could take (it offers the category in the
    /// region) and that are not assigned yet.
    #[serde(default)]
    pub open: bool,
    /// At most this many entries, newest first (`None`: all).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// A request about referrals (the control API's `referral` request).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum ReferralRequest {
    /// Services ranked for needs.
    Match {
        /// The needs and constraints.
        query: MatchQuery,
    },
    /// Send a referral with its case file.
    Send {
        /// What to send.
        send: Box<SendReferral>,
    },
    /// Move a referral.
    Move {
        /// The referral.
        id: ReferralId,
        /// The move.
        action: Move,
    },
    /// Offer a service for an open referral.
    Propose {
        /// The referral.
        id: ReferralId,
        /// This organisation's service.
        service: ServiceId,
    },
    /// Give an open referral to one of the organisations that proposed.
    Assign {
        /// The referral.
        id: ReferralId,
        /// The organisation chosen.
        org: OrgId,
    },
    /// The board.
    List {
        /// Which referrals.
        filter: ListFilter,
    },
    /// One referral, with its case file where this node may read it.
    Show {
        /// The referral.
        id: ReferralId,
    },
    /// Hand a received case file on to one of this organisation's offices (a device node
    /// granted case files), the one that will serve the person.
    ToOffice {
        /// The referral.
        id: ReferralId,
        /// The office's device key.
        office: KeyId,
    },
    /// Erase a referral's case file here and ask the other node to erase it.
    Erase {
        /// The referral.
        id: ReferralId,
    },
    /// The local audit log of case files.
    Audit {
        /// One referral's entries only.
        #[serde(default)]
        id: Option<ReferralId>,
    },
    /// The audit log's chain made from `from` to `to` (Unix seconds), seals included.
    AuditChain {
        /// From (inclusive).
        #[serde(default)]
        from: Option<i64>,
        /// To (inclusive).
        #[serde(default)]
        to: Option<i64>,
    },
    /// Checks the audit log's chain.
    AuditVerify,
    /// A backup of every case file held here, sealed to the backup key, into `dir` (else
    /// `[backup] dir`).
    BackupWrite {
        /// The folder.
        #[serde(default)]
        dir: Option<std::path::PathBuf>,
    },
    /// Restores a backup, opened with the backup secret, except what was erased since.
    BackupRestore {
        /// The sealed backup.
        file: std::path::PathBuf,
        /// The backup secret's text.
        secret: crate::keys::SecretText,
    },
    /// Every case file held here and when its retention ends; `run`: destroy what is due
    /// first.
    Retention {
        /// Destroy what is due now.
        #[serde(default)]
        run: bool,
    },
    /// Aggregate figures of the referrals sent from `from` to `to` (Unix seconds).
    Report {
        /// From (inclusive).
        #[serde(default)]
        from: Option<i64>,
        /// To (inclusive).
        #[serde(default)]
        to: Option<i64>,
        /// The smallest count shown, instead of the configured one.
        #[serde(default)]
        min_count: Option<u64>,
    },
}

/// What a send or move did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferralReceipt {
    /// The referral id.
    pub id: ReferralId,
    /// Its status now, on this node's board.
    pub status: Status,
    /// The signed change recorded (hex hash).
    pub change: String,
    /// What happens next, in words.
    pub note: String,
    /// The same in French.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note_fr: String,
}

/// Where a case file stands on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    /// Held and readable here.
    Held,
    /// Not arrived yet (the sender's node retries until it is delivered).
    NotReceived,
    /// Erased here.
    Erased,
    /// The receiver's access ended (retention period after closing); erased.
    RetentionExpired,
    /// This organisation is not a party to the referral: never sent here.
    NotAParty,
}

/// A referral as `referral show` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferralView {
    /// The board entry.
    pub entry: BoardEntry,
    /// Names of the organisations involved.
    pub names: BTreeMap<OrgId, String>,
    /// Where the case file stands here.
    pub case_state: CaseState,
    /// The case file, consent and salt, when held and readable here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<HeldCase>,
    /// True if the case file matches the board's commitment (None: nothing to compare).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intact: Option<bool>,
    /// The case file's delivery is still queued on this node.
    pub delivery_pending: bool,
    /// When this node's copy of the case file will be destroyed (Unix seconds): its
    /// retention period after the referral closed; `None` while it is open or not held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destroy_at: Option<i64>,
}

/// A case file held here, and when its retention ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionItem {
    /// The referral.
    pub referral: ReferralId,
    /// Whether this node's organisation sent or received it.
    pub side: Side,
    /// When the referral closed (`None`: still open, kept).
    pub closed_at: Option<i64>,
    /// When the copy here is destroyed (`None` while open).
    pub destroy_at: Option<i64>,
    /// True when that time has passed: the next housekeeping destroys it.
    pub due: bool,
}

/// `passerelle retention`: every case file held here and when it goes; what was run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionReport {
    /// Days the receiver keeps a case file after closing.
    pub receiver_days: u64,
    /// Days the sender keeps its copy after closing.
    pub sender_days: u64,
    /// Every case file held here (after the run, when one was asked).
    pub held: Vec<RetentionItem>,
    /// The case files destroyed by this run.
    pub destroyed: Vec<ReferralId>,
}

/// The board as `referral list` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferralList {
    /// The entries, newest first (at most the filter's limit).
    pub entries: Vec<BoardEntry>,
    /// How many entries match the filter (more than `entries` holds when it was limited).
    #[serde(default)]
    pub total: usize,
    /// Names of the organisations involved.
    pub names: BTreeMap<OrgId, String>,
    /// This node's organisation.
    pub own: OrgId,
    /// The time the list was made (for "overdue").
    pub now: i64,
    /// The referrals whose case file this node holds (without reading them).
    pub case_files_held: Vec<ReferralId>,
    /// When each held case file of a closed referral will be destroyed here.
    #[serde(default)]
    pub destroy_at: BTreeMap<ReferralId, i64>,
}

/// What `referral erase` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EraseReceipt {
    /// The referral.
    pub id: ReferralId,
    /// True if a case file was held here.
    pub erased_here: bool,
    /// The organisation asked to erase its copy (queued until it acknowledges).
    pub asked: Option<OrgId>,
}

/// The answer to a [`ReferralRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum ReferralReply {
    /// Ranked services.
    Matches(Vec<ServiceMatch>),
    /// A referral sent, moved, proposed for or assigned.
    Receipt(ReferralReceipt),
    /// The board.
    List(ReferralList),
    /// One referral.
    Show(Box<ReferralView>),
    /// An erasure.
    Erased(EraseReceipt),
    /// The audit log.
    Audit(Vec<AuditEntry>),
    /// The audit log's chain, and the key that seals it.
    AuditChain(Vec<crate::audit::Entry>, String),
    /// What checking the chain found.
    AuditVerdict(crate::audit::Verdict),
    /// The retention plan, and what a run destroyed.
    Retention(RetentionReport),
    /// A backup written.
    BackupWritten(crate::case_backup::BackupReceipt),
    /// A backup restored.
    Restored(crate::case_backup::RestoreReceipt),
    /// Aggregate figures.
    Report(Report),
}

/// A backup's failure as the node says it: a wrong secret or file is the input's fault.
fn backup_error(e: crate::case_backup::CaseBackupError) -> NodeError {
    use crate::case_backup::CaseBackupError as E;
    match e {
        E::Seal(seal) => {
            let fr = match &seal {
                crate::backup_seal::BackupSealError::NotABackup => {
                    "ce n'est pas une sauvegarde de dossiers écrite par `passerelle backup write`"
                }
                crate::backup_seal::BackupSealError::WrongKeyOrAltered => {
                    "la sauvegarde ne s'ouvre pas avec ce secret (une autre clé de sauvegarde, ou un fichier modifié)"
                }
                _ => "la sauvegarde ne s'ouvre pas",
            };
            invalid("file", seal.to_string(), fr)
        }
        E::Contents(why) => invalid(
            "file",
            format!("the backup's contents cannot be read: {why}"),
            format!("le contenu de la sauvegarde est illisible : {why}"),
        ),
        E::Vault(v) => NodeError::Vault(v),
        E::Io { context, source } => NodeError::Io { context, source },
    }
}

/// Input refused: the field, and what is wrong in English and in French.
pub(super) fn invalid(field: &str, message: impl Into<String>, fr: impl Into<String>) -> NodeError {
    NodeError::Invalid(ValidationError::new(field, message).fr(fr))
}

fn fresh_referral_id() -> Result<ReferralId, NodeError> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|source| NodeError::Random {
        context: "drawing a referral id".into(),
        source,
    })?;
    Ok(ReferralId::from_bytes(bytes))
}

fn this_year(now: i64) -> i32 {
    // Days since 1970 to a civil year is close enough from the mean year length.
    1970 + (now / 31_556_952) as i32
}

/// Answers a request that reads the audit log (`Audit`, `AuditChain`, `AuditVerify`):
/// what [`NodeHandle::referral`](super::NodeHandle::referral) runs beside the documents
/// thread, so that reading a large log holds up neither sync nor writes. `sealer` is this
/// node's key.
pub(super) fn read_audit(
    reader: &crate::audit_log::AuditReader,
    sealer: &KeyId,
    request: ReferralRequest,
) -> Result<ReferralReply, NodeError> {
    let failed = |e| NodeError::from(crate::vault::VaultError::from(e));
    match request {
        ReferralRequest::Audit { id } => reader
            .events(id.map(|i| i.to_string()).as_deref())
            .map(ReferralReply::Audit)
            .map_err(failed),
        ReferralRequest::AuditChain { from, to } => reader
            .entries(from, to)
            .map(|entries| ReferralReply::AuditChain(entries, sealer.to_string()))
            .map_err(failed),
        ReferralRequest::AuditVerify => reader
            .verify(std::slice::from_ref(sealer))
            .map(ReferralReply::AuditVerdict)
            .map_err(failed),
        other => Err(NodeError::Io {
            context: "reading the audit log".into(),
            source: std::io::Error::other(format!("{other:?} does not read the audit log")),
        }),
    }
}

impl ReferralRequest {
    /// True for the requests that only read the audit log ([`read_audit`]).
    pub(super) fn reads_audit_log(&self) -> bool {
        matches!(
            self,
            Self::Audit { .. } | Self::AuditChain { .. } | Self::AuditVerify
        )
    }
}

impl DocumentsActor {
    fn names(&self) -> BTreeMap<OrgId, String> {
        self.records()
            .map(|(org, r)| (org, r.profile.name.clone()))
            .collect()
    }

    /// The board as the documents held now say it, kept folded between calls: only the
    /// referrals of documents that changed since the last call are refolded.
    fn board_index(&self) -> std::cell::Ref<'_, BoardIndex> {
        self.board_index.borrow_mut().update(
            self.documents
                .iter()
                .filter_map(|(org, d)| d.record().map(|r| (*org, d.generation(), r))),
        );
        self.board_index.borrow()
    }

    /// The record of one document held.
    fn record_of(&self, org: &OrgId) -> Option<&OrganisationRecord> {
        self.documents.get(org).and_then(|d| d.record())
    }

    /// Every document held that has a record, with its owner.
    fn records(&self) -> impl Iterator<Item = (OrgId, &OrganisationRecord)> {
        self.documents
            .iter()
            .filter_map(|(org, d)| d.record().map(|r| (*org, r)))
    }

    /// The whole board, from every document held, newest first (folded afresh: for the
    /// report, not for every query).
    pub(super) fn board(&self) -> Vec<BoardEntry> {
        board::board(self.records())
    }

    pub(super) fn entry(&self, id: &str) -> Result<BoardEntry, NodeError> {
        if !board::is_referral_id(id) {
            return Err(invalid(
                "id",
                format!("{id:?} is not a referral id (ref- and 24 hex digits)"),
                format!(
                    "{id:?} n'est pas un identifiant de référence (ref- et 24 chiffres hexadécimaux)"
                ),
            ));
        }
        let referral = ReferralId::parse(id).ok_or_else(|| {
            invalid(
                "id",
                format!("{id:?} is not a referral id (ref- and 24 hex digits)"),
                format!("{id:?} n'est pas un identifiant de référence (ref- et 24 chiffres hexadécimaux)"),
            )
        })?;
        board::entry(referral, self.records())
            .map(|entry| self.with_arrivals(entry))
            .ok_or_else(|| {
                NodeError::not_found(
                    format!("no referral {id} on this node's board"),
                    format!("aucune référence {id} au tableau de ce nœud"),
                )
            })
    }

    /// The entry with what this node noted of when its moves arrived.
    fn with_arrivals(&self, mut entry: BoardEntry) -> BoardEntry {
        match self.store.arrivals_of(&entry.id.to_string()) {
            Ok(arrivals) if !arrivals.is_empty() => entry.note_arrivals(&arrivals),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "could not read the moves' arrivals"),
        }
        entry
    }

    /// The entries with what this node noted of when their moves arrived: the notes read
    /// once (they are few), not once per entry.
    fn with_all_arrivals(&self, entries: &mut [BoardEntry]) -> Result<(), NodeError> {
        let arrivals = self.store.all_arrivals()?;
        if arrivals.is_empty() {
            return Ok(());
        }
        for entry in entries {
            if let Some(noted) = arrivals.get(&entry.id.to_string()) {
                entry.note_arrivals(noted);
            }
        }
        Ok(())
    }

    fn role_in(&self, entry: &BoardEntry) -> Option<Role> {
        if entry.sender == self.own {
            Some(Role::Sender)
        } else if entry.receiver == Some(self.own) {
            Some(Role::Receiver)
        } else {
            None
        }
    }

    pub(super) fn audit(&self, referral: &str, action: &str, by: &str, detail: impl Into<String>) {
        let entry = AuditEntry {
            at: crate::unix_now(),
            referral: referral.to_owned(),
            action: action.to_owned(),
            by: by.to_owned(),
            detail: detail.into(),
        };
        if let Err(e) = self.vault.audit(&entry) {
            warn!(error = %e, "could not write the case-file audit log");
        }
    }

    pub(super) fn handle_referral(
        &mut self,
        request: ReferralRequest,
        by: &str,
    ) -> Result<ReferralReply, NodeError> {
        match request {
            ReferralRequest::Match { mut query } => {
                if query.needs.is_empty() {
                    return Err(invalid(
                        "needs",
                        format!(
                            "name at least one need, among: {}",
                            taxonomy::category_codes()
                        ),
                        format!(
                            "nommez au moins un besoin, parmi : {}",
                            taxonomy::category_codes()
                        ),
                    ));
                }
                for need in &query.needs {
                    crate::model::check_category("needs", need)?;
                }
                if let Some(region) = &query.region {
                    crate::model::check_region("region", region)?;
                }
                query.exclude = Some(self.own);
                let records = self.documents.values().filter_map(|d| d.record());
                Ok(ReferralReply::Matches(matching::rank(records, &query)))
            }
            ReferralRequest::Send { send } => {
                self.send_referral(*send, by).map(ReferralReply::Receipt)
            }
            ReferralRequest::Move { id, action } => self
                .move_referral(id, action, crate::unix_now())
                .map(ReferralReply::Receipt),
            ReferralRequest::Propose { id, service } => {
                self.propose(id, service).map(ReferralReply::Receipt)
            }
            ReferralRequest::Assign { id, org } => {
                self.assign(id, org, by).map(ReferralReply::Receipt)
            }
            ReferralRequest::List { filter } => self.list(&filter).map(ReferralReply::List),
            ReferralRequest::Show { id } => {
                self.show(id, by).map(|v| ReferralReply::Show(Box::new(v)))
            }
            ReferralRequest::Erase { id } => self.erase(id, by).map(ReferralReply::Erased),
            ReferralRequest::ToOffice { id, office } => self
                .hand_to_office(id, office, by)
                .map(ReferralReply::Receipt),
            request @ (ReferralRequest::Audit { .. }
            | ReferralRequest::AuditChain { .. }
            | ReferralRequest::AuditVerify) => read_audit(
                &self.vault.audit_chain().reader(),
                &self.identity.key_id(),
                request,
            ),
            ReferralRequest::BackupWrite { dir } => {
                self.backup_write(dir, by).map(ReferralReply::BackupWritten)
            }
            ReferralRequest::BackupRestore { file, secret } => self
                .backup_restore(&file, &secret, by)
                .map(ReferralReply::Restored),
            ReferralRequest::Retention { run } => self
                .retention(run, crate::unix_now())
                .map(ReferralReply::Retention),
            ReferralRequest::Report {
                from,
                to,
                min_count,
            } => {
                let mut entries = self.board();
                self.with_all_arrivals(&mut entries)?;
                Ok(ReferralReply::Report(report::report(
                    &entries,
                    &self.names(),
                    crate::unix_now(),
                    report::Scope {
                        from,
                        to,
                        min_count: min_count.unwrap_or(self.config.report_min_count),
                    },
                )))
            }
        }
    }

    /// A signed edit of this organisation's document, through the usual path (validated,
    /// signed, durable, published).
    fn referral_edit(&mut self, edit: Edit) -> Result<String, NodeError> {
        Ok(self.handle_edit(edit)?.change)
    }

    fn send_referral(
        &mut self,
        send: SendReferral,
        by: &str,
    ) -> Result<ReferralReceipt, NodeError> {
        let now = crate::unix_now();
        crate::model::check_region("region", &send.region)?;
        if !(3600..=board::MAX_DEADLINE_SECONDS).contains(&send.respond_within) {
            return Err(invalid(
                "respond_within",
                "the response deadline must be between 1 hour and 1 year",
                "le délai de réponse doit être compris entre 1 heure et 1 an",
            ));
        }
        send.case_file.validate(this_year(now))?;
        let (receiver, service, category, open) = match (&send.to, &send.service) {
            (Some(to), Some(service)) => {
                if *to == self.own {
                    return Err(invalid(
                        "to",
                        "an organisation cannot refer to itself",
                        "une organisation ne peut pas se référer à elle-même",
                    ));
                }
                if !self
                    .membership()
                    .is_some_and(|m| m.members.contains_key(to))
                {
                    return Err(invalid(
                        "to",
                        format!("{to} is not a member of the network"),
                        format!("{to} n'est pas membre du réseau"),
                    ));
                }
                let record = self
                    .documents
                    .get(to)
                    .and_then(|d| d.record())
                    .ok_or_else(|| {
                        invalid(
                            "to",
                            format!("no organisation {to} on this node yet"),
                            format!("aucune organisation {to} sur ce nœud pour l'instant"),
                        )
                    })?;
                let offered = record.services.get(service.as_str()).ok_or_else(|| {
                    invalid(
                        "service",
                        format!(
                            "{} offers no service \"{service}\"; see `passerelle directory search` or `passerelle referral match`",
                            record.profile.name
                        ),
                        format!(
                            "{} n'offre aucun service « {service} » ; voyez `passerelle directory search` ou `passerelle referral match`",
                            record.profile.name
                        ),
                    )
                })?;
                if offered.status != ServiceStatus::Active {
                    return Err(invalid(
                        "service",
                        format!("service {service:?} is not active"),
                        format!("le service {service:?} n'est pas actif"),
                    ));
                }
                if record.encryption_key.is_none() {
                    return Err(invalid(
                        "to",
                        format!(
                            "{} has published no encryption key: its case files cannot be sealed",
                            record.profile.name
                        ),
                        format!(
                            "{} n'a publié aucune clé de chiffrement : ses dossiers ne peuvent pas être scellés",
                            record.profile.name
                        ),
                    ));
                }
                let category = match &send.category {
                    Some(c) if offered.categories.contains(c) => c.clone(),
                    Some(c) => {
                        return Err(invalid(
                            "category",
                            format!(
                                "service {service:?} is not in category {c:?}; its categories: {}",
                                offered.categories.join(", ")
                            ),
                            format!(
                                "le service {service:?} n'est pas dans la catégorie {c:?} ; ses catégories : {}",
                                offered.categories.join(", ")
                            ),
                        ));
                    }
                    None => offered.categories.first().cloned().ok_or_else(|| {
                        invalid(
                            "category",
                            format!("service \"{service}\" has no category; give --category"),
                            format!(
                                "le service « {service} » n'a pas de catégorie ; donnez --category"
                            ),
                        )
                    })?,
                };
                send.consent.allows(Some(to), Some(service.as_str()), now)?;
                (Some(*to), Some(service.to_string()), category, false)
            }
            (None, None) => {
                let category = send.category.clone().ok_or_else(|| {
                    invalid(
                        "category",
                        "an open referral (no --to) needs the category of service asked for",
                        "une référence ouverte (sans --to) demande la catégorie du service recherché",
                    )
                })?;
                crate::model::check_category("category", &category)?;
                send.consent.allows(None, None, now)?;
                (None, None, category, true)
            }
            _ => {
                return Err(invalid(
                    "to",
                    "give both --to and --service (a direct referral), or neither (an open referral)",
                    "donnez --to et --service (une référence directe), ou aucun des deux (une référence ouverte)",
                ));
            }
        };
        let dimension = taxonomy::category(&category)
            .map(|c| c.dimension)
            .ok_or_else(|| {
                invalid(
                    "category",
                    format!("unknown category {category:?}"),
                    format!("catégorie {category:?} inconnue"),
                )
            })?;
        let referral_id = fresh_referral_id()?;
        let id = referral_id.to_string();
        let fields = send.consent.fields();
        let content = CaseContent {
            salt: casefile::fresh_salt().map_err(|source| NodeError::Random {
                context: "drawing a salt".into(),
                source,
            })?,
            case_file: send.case_file.minimise(&fields),
            consent: send.consent.clone(),
        };
        let referral = SentReferral {
            receiver,
            service: service.clone(),
            open,
            dimension,
            category,
            region: send.region.clone(),
            priority: send.priority,
            created: now,
            deadline: now + send.respond_within,
            commitment: content.commitment(&id, &self.own),
            assigned: None,
            moves: Vec::new(),
        };
        // The case file first, encrypted at rest: a board entry never lacks its case file.
        self.vault.put(
            &id,
            &HeldCase {
                side: Side::Sent,
                counterpart: receiver,
                stored_at: now,
                content,
            },
        )?;
        let change = match self.referral_edit(Edit::SendReferral {
            id: id.clone(),
            referral: Box::new(referral),
        }) {
            Ok(change) => change,
            Err(e) => {
                let _ = self.vault.erase(&id, now, Erasure::Asked);
                return Err(e);
            }
        };
        self.audit(&id, "stored", by, "case file recorded for sending");
        if let ConsentRecord::Override { reason, .. } = &send.consent {
            // The reason may name the person: it stays in the (encrypted) case file, read
            // with it; the log, which an inspector is given, says an override was made.
            self.audit(
                &id,
                "consent_override",
                by,
                format!(
                    "sent without consent; the reason ({} characters) is in the case file",
                    reason.chars().count()
                ),
            );
        }
        let (note, note_fr) = match receiver {
            Some(to) => {
                self.queue_delivery(&id, to, now)?;
                (
                    "the case file goes to the receiving node directly, encrypted; it is retried until that node acknowledges it",
                    "le dossier va directement au nœud destinataire, chiffré ; l'envoi est répété jusqu'à ce que ce nœud en accuse réception",
                )
            }
            None => (
                "open referral: members offering the category in the region can propose; choose one with `passerelle referral assign`",
                "référence ouverte : les membres qui offrent la catégorie dans la région peuvent se proposer ; choisissez-en un avec `passerelle referral assign`",
            ),
        };
        let (note, note_fr) = (note.to_owned(), note_fr.to_owned());
        info!(referral = %id, "referral sent");
        Ok(ReferralReceipt {
            id: referral_id,
            status: Status::Pending,
            change,
            note,
            note_fr,
        })
    }

    fn queue_delivery(&mut self, id: &str, to: OrgId, now: i64) -> Result<(), NodeError> {
        self.vault.queue(&OutboxEntry {
            referral: id.to_owned(),
            kind: OutboxKind::Deliver,
            to,
            since: now,
        })?;
        self.nudge_network();
        Ok(())
    }

    fn move_referral(
        &mut self,
        referral: ReferralId,
        action: Move,
        now: i64,
    ) -> Result<ReferralReceipt, NodeError> {
        // The records, the vault and the audit log name a referral by its text.
        let text = referral.to_string();
        let id = text.as_str();
        let entry = self.entry(id)?;
        let role = self.role_in(&entry).ok_or_else(|| {
            invalid(
                "id",
                format!("this organisation is neither the sender nor the receiver of {id}"),
                format!("cette organisation n'a ni envoyé ni reçu {id}"),
            )
        })?;
        let status = entry
            .decide(role, action, now)
            .map_err(|e| NodeError::Invalid(e.into()))?;
        let record = MoveRecord {
            action,
            from: entry.status,
            at: now,
            seen: if role == Role::Receiver {
                entry.sender_moves()
            } else {
                0
            },
        };
        let change = self.referral_edit(Edit::MoveReferral {
            id: id.to_owned(),
            record,
            answering: (role == Role::Receiver).then_some(entry.sender),
        })?;
        Ok(ReferralReceipt {
            id: referral,
            status,
            change,
            note: format!("{} → {status}", entry.status),
            note_fr: format!("{} → {status}", entry.status),
        })
    }

    fn propose(
        &mut self,
        referral: ReferralId,
        service: ServiceId,
    ) -> Result<ReferralReceipt, NodeError> {
        // The records name a service by its text.
        let service = String::from(service);
        let text = referral.to_string();
        let id = text.as_str();
        let entry = self.entry(id)?;
        if !entry.open || entry.receiver.is_some() {
            return Err(invalid(
                "id",
                format!("{id} is not an open referral waiting for a receiver"),
                format!("{id} n'est pas une référence ouverte en attente d'un destinataire"),
            ));
        }
        if entry.sender == self.own {
            return Err(invalid(
                "id",
                "an organisation does not propose for its own referral",
                "une organisation ne se propose pas pour sa propre référence",
            ));
        }
        if entry.status != Status::Pending {
            return Err(invalid(
                "id",
                format!("{id} is {}", entry.status),
                format!("{id} est {}", entry.status),
            ));
        }
        let record = self
            .documents
            .get(&self.own)
            .and_then(|d| d.record())
            .ok_or_else(|| {
                NodeError::not_found(
                    "this organisation's document",
                    "le document de cette organisation",
                )
            })?;
        let offered = record.services.get(&service).ok_or_else(|| {
            invalid(
                "service",
                format!("this organisation has no service {service:?}"),
                format!("cette organisation n'a pas de service {service:?}"),
            )
        })?;
        if !offered.categories.contains(&entry.category) {
            return Err(invalid(
                "service",
                format!("service {service:?} is not in category {}", entry.category),
                format!(
                    "le service {service:?} n'est pas dans la catégorie {}",
                    entry.category
                ),
            ));
        }
        let in_region = crate::directory::matches(
            record,
            offered,
            &crate::directory::SearchQuery {
                region: Some(entry.region.clone()),
                ..Default::default()
            },
        );
        if !in_region {
            return Err(invalid(
                "service",
                format!(
                    "service {service:?} is not offered in region {}",
                    entry.region
                ),
                format!(
                    "le service {service:?} n'est pas offert dans la région {}",
                    entry.region
                ),
            ));
        }
        let change = self.referral_edit(Edit::ProposeForReferral {
            id: id.to_owned(),
            proposal: Proposal {
                sender: entry.sender,
                service,
                at: crate::unix_now(),
            },
        })?;
        Ok(ReferralReceipt {
            id: referral,
            status: entry.status,
            change,
            note: "proposal recorded; the sending organisation chooses who takes it".into(),
            note_fr: "proposition enregistrée ; l'organisation qui envoie choisit qui la prend"
                .into(),
        })
    }

    fn assign(
        &mut self,
        referral: ReferralId,
        org: OrgId,
        by: &str,
    ) -> Result<ReferralReceipt, NodeError> {
        let text = referral.to_string();
        let id = text.as_str();
        let now = crate::unix_now();
        let entry = self.entry(id)?;
        if entry.sender != self.own {
            return Err(invalid(
                "id",
                "only the sending organisation assigns its open referral",
                "seule l'organisation qui l'a envoyée attribue sa référence ouverte",
            ));
        }
        if !entry.open || entry.receiver.is_some() {
            return Err(invalid(
                "id",
                format!("{id} is not an open referral waiting for a receiver"),
                format!("{id} n'est pas une référence ouverte en attente d'un destinataire"),
            ));
        }
        if entry.status != Status::Pending {
            return Err(invalid(
                "id",
                format!("{id} is {}", entry.status),
                format!("{id} est {}", entry.status),
            ));
        }
        let proposal = entry
            .proposals
            .iter()
            .find(|p| p.org == org)
            .ok_or_else(|| {
                invalid(
                    "org",
                    format!("{org} has not proposed for {id}"),
                    format!("{org} ne s'est pas proposée pour {id}"),
                )
            })?;
        if self
            .documents
            .get(&org)
            .and_then(|d| d.record())
            .and_then(|r| r.encryption_key)
            .is_none()
        {
            return Err(invalid(
                "org",
                "that organisation has published no encryption key",
                "cette organisation n'a publié aucune clé de chiffrement",
            ));
        }
        let mut held = self.vault.read(id)?.ok_or_else(|| {
            NodeError::not_found(
                format!("the case file of {id} is not on this node (erased?)"),
                format!("le dossier de {id} n'est pas sur ce nœud (effacé ?)"),
            )
        })?;
        held.content
            .consent
            .allows(Some(&org), Some(&proposal.service), now)?;
        let change = self.referral_edit(Edit::AssignReferral {
            id: id.to_owned(),
            assignment: Assignment {
                receiver: org,
                service: proposal.service.clone(),
                at: now,
            },
        })?;
        held.counterpart = Some(org);
        self.vault.put(id, &held)?;
        self.audit(id, "stored", by, format!("assigned to {org}"));
        self.queue_delivery(id, org, now)?;
        Ok(ReferralReceipt {
            id: referral,
            status: entry.status,
            change,
            note: "assigned; the case file goes to that organisation's node, and it answers".into(),
            note_fr: "attribuée ; le dossier va au nœud de cette organisation, qui répond".into(),
        })
    }

    /// Hands the case file of a referral this organisation received on to its office
    /// `office` (sealed to the device's own key, delivered until it acknowledges); a
    /// copy handed to another office before is taken back from it.
    fn hand_to_office(
        &mut self,
        referral: ReferralId,
        office: KeyId,
        by: &str,
    ) -> Result<ReferralReceipt, NodeError> {
        let text = referral.to_string();
        let id = text.as_str();
        let now = crate::unix_now();
        if self.is_device_node() {
            return Err(invalid(
                "id",
                "an office hands nothing on: the organisation's own node does",
                "un bureau ne transmet rien : le nœud de l'organisation le fait",
            ));
        }
        let entry = self.entry(id)?;
        if entry.receiver != Some(self.own) {
            return Err(invalid(
                "id",
                format!("{id} was not received by this organisation"),
                format!("{id} n'a pas été reçue par cette organisation"),
            ));
        }
        let granted = self.membership().and_then(|m| {
            m.devices
                .get(&office)
                .filter(|d| d.org == self.own)
                .and_then(|_| m.office_case_key(&office))
        });
        if granted.is_none() {
            return Err(invalid(
                "office",
                format!(
                    "{office} is not an office of this organisation granted case files: run `passerelle device grant {office} <its encryption key>` first"
                ),
                format!(
                    "{office} n'est pas un bureau de cette organisation autorisé à recevoir des dossiers : lancez d'abord `passerelle device grant {office} <sa clé de chiffrement>`"
                ),
            ));
        }
        let held = self.vault.read(id)?.ok_or_else(|| {
            NodeError::not_found(
                format!("the case file of {id} is not on this node (not arrived yet, or erased)"),
                format!("le dossier de {id} n'est pas sur ce nœud (pas encore arrivé, ou effacé)"),
            )
        })?;
        held.content
            .consent
            .allows(Some(&self.own), entry.service.as_deref(), now)?;
        if let Some(before) = self.vault.office_of(id)?
            && before != office
        {
            self.take_back_from_office(id, now)?;
        }
        self.vault.hand_to_office(id, &office)?;
        self.vault.queue(&OutboxEntry {
            referral: id.to_owned(),
            kind: OutboxKind::ToOffice,
            to: office.as_own_org(),
            since: now,
        })?;
        self.audit(id, "to_office", by, format!("handed on to office {office}"));
        self.nudge_network();
        Ok(ReferralReceipt {
            id: referral,
            status: entry.status,
            change: String::new(),
            note: "the case file goes to that office, sealed to its own key".into(),
            note_fr: "le dossier va à ce bureau, scellé pour sa propre clé".into(),
        })
    }

    /// Asks the office a case file was handed on to (if any) to erase it.
    pub(super) fn take_back_from_office(&mut self, id: &str, now: i64) -> Result<(), NodeError> {
        let Some(office) = self.vault.office_of(id)? else {
            return Ok(());
        };
        self.vault.dequeue(OutboxKind::ToOffice, id)?;
        self.vault.leave_office(id)?;
        self.vault.queue(&OutboxEntry {
            referral: id.to_owned(),
            kind: OutboxKind::EraseAtOffice,
            to: office.as_own_org(),
            since: now,
        })?;
        self.audit(
            id,
            "erase_requested",
            "node",
            format!("asked office {office} to erase its copy"),
        );
        self.nudge_network();
        Ok(())
    }

    fn list(&self, filter: &ListFilter) -> Result<ReferralList, NodeError> {
        let now = crate::unix_now();
        // Before the board is borrowed for the list (the plan reads it too): the case files
        // held, and when each goes.
        let plan = self.retention_plan(now)?;
        let case_files_held = plan.iter().map(|item| item.referral).collect();
        let destroy_at = plan
            .iter()
            .filter_map(|item| item.destroy_at.map(|at| (item.referral, at)))
            .collect();
        let own = self.own;
        let own_record = self.documents.get(&own).and_then(|d| d.record());
        // This organisation offers the category in the region (service area, departments
        // or offices there, as the directory search decides).
        let offers = |category: &str, region: &str| {
            own_record.is_some_and(|record| {
                record.services.values().any(|service| {
                    crate::directory::matches(
                        record,
                        service,
                        &crate::directory::SearchQuery {
                            category: Some(category.to_owned()),
                            region: Some(region.to_owned()),
                            ..Default::default()
                        },
                    )
                })
            })
        };
        let index = self.board_index();
        let mut total = 0;
        let shown: Vec<Summary> = index
            .summaries()
            .filter(|e| !filter.incoming || e.receiver == Some(own))
            .filter(|e| !filter.outgoing || e.sender == own)
            .filter(|e| filter.status.is_none_or(|s| e.status == s))
            .filter(|e| !filter.overdue || e.overdue(now))
            .filter(|e| {
                !filter.open
                    || (e.open
                        && e.receiver.is_none()
                        && e.sender != own
                        && e.status == Status::Pending
                        && self
                            .record_of(&e.sender)
                            .and_then(|r| r.referrals.get(&e.id.to_string()))
                            .is_some_and(|sent| offers(&sent.category, &sent.region)))
            })
            .filter(|_| {
                total += 1;
                filter.limit.is_none_or(|limit| total <= limit)
            })
            .collect();
        let mut entries: Vec<BoardEntry> = shown
            .iter()
            .filter_map(|summary| index.entry(summary, |org| self.record_of(org)))
            .collect();
        self.with_all_arrivals(&mut entries)?;
        Ok(ReferralList {
            entries,
            total,
            names: self.names(),
            own,
            now,
            case_files_held,
            destroy_at,
        })
    }

    /// Every case file held here, its side, and when its retention ends: `retention_days`
    /// after closing for a received one, `sender_retention_days` for a sent one.
    pub(super) fn retention_plan(&self, now: i64) -> Result<Vec<RetentionItem>, NodeError> {
        let held: Vec<(ReferralId, Side)> = self
            .vault
            .held()?
            .into_iter()
            .filter_map(|(id, side, _)| ReferralId::parse(&id).map(|r| (r, side)))
            .collect();
        // When each held one closed: one pass over the board, keeping only those.
        let wanted: std::collections::BTreeSet<ReferralId> = held.iter().map(|(r, _)| *r).collect();
        let closed: BTreeMap<ReferralId, i64> = if wanted.is_empty() {
            BTreeMap::new()
        } else {
            self.board_index()
                .summaries()
                .filter(|s| wanted.contains(&s.id))
                .filter_map(|s| s.closed_at.map(|at| (s.id, at)))
                .collect()
        };
        let mut plan = Vec::with_capacity(held.len());
        for (referral, side) in held {
            let closed_at = closed.get(&referral).copied();
            let destroy_at = closed_at.map(|at| at + self.kept_for(side));
            plan.push(RetentionItem {
                referral,
                side,
                closed_at,
                destroy_at,
                due: destroy_at.is_some_and(|at| now >= at),
            });
        }
        Ok(plan)
    }

    fn backup_write(
        &mut self,
        dir: Option<std::path::PathBuf>,
        by: &str,
    ) -> Result<crate::case_backup::BackupReceipt, NodeError> {
        let key = self.config.backup_key.ok_or_else(|| {
            invalid(
                "public_key",
                "no backup key: make one with `passerelle backup key` and set [backup] public_key in config.toml",
                "aucune clé de sauvegarde : créez-en une avec `passerelle backup key` et renseignez [backup] public_key dans config.toml",
            )
        })?;
        let dir = dir.or_else(|| self.config.backup_dir.clone()).ok_or_else(|| {
            invalid(
                "dir",
                "no backup folder: give --dir or set [backup] dir in config.toml",
                "aucun dossier de sauvegarde : donnez --dir ou renseignez [backup] dir dans config.toml",
            )
        })?;
        let receipt = crate::case_backup::write(
            &self.vault,
            &dir,
            &key,
            &self.own.to_string(),
            crate::unix_now(),
        )
        .map_err(backup_error)?;
        self.audit(
            "",
            "backup",
            by,
            format!(
                "{} case files sealed to the backup key into {}",
                receipt.case_files,
                receipt.file.display()
            ),
        );
        Ok(receipt)
    }

    fn backup_restore(
        &mut self,
        file: &std::path::Path,
        secret: &crate::keys::SecretText,
        by: &str,
    ) -> Result<crate::case_backup::RestoreReceipt, NodeError> {
        let secret = crate::backup_seal::BackupSecret::from_text(secret.expose())
            .map_err(|e| invalid("secret", e.to_string(), e.to_string()))?;
        let receipt = crate::case_backup::restore(&self.vault, file, &secret, crate::unix_now())
            .map_err(backup_error)?;
        for referral in &receipt.restored {
            self.audit(referral, "restored", by, format!("from {}", file.display()));
        }
        for referral in &receipt.erased_since {
            self.audit(
                referral,
                "restore_skipped",
                by,
                "erased since the backup was made: not restored",
            );
        }
        Ok(receipt)
    }

    /// How long this node keeps a case file of `side` after its referral closes (seconds).
    fn kept_for(&self, side: Side) -> i64 {
        match side {
            Side::Received => self.config.retention,
            Side::Sent => self.config.sender_retention,
        }
        .as_secs() as i64
    }

    /// `passerelle retention [--run]`: the plan, after running what is due when asked.
    pub(super) fn retention(&mut self, run: bool, now: i64) -> Result<RetentionReport, NodeError> {
        let destroyed = if run {
            self.destroy_due(now)?
        } else {
            Vec::new()
        };
        Ok(RetentionReport {
            receiver_days: self.config.retention.as_secs() / 86_400,
            sender_days: self.config.sender_retention.as_secs() / 86_400,
            held: self.retention_plan(now)?,
            destroyed,
        })
    }

    /// Destroys every case file held here whose retention period has ended, on either
    /// side; each in the audit log.
    fn destroy_due(&mut self, now: i64) -> Result<Vec<ReferralId>, NodeError> {
        let mut destroyed = Vec::new();
        for item in self.retention_plan(now)?.into_iter().filter(|i| i.due) {
            let id = item.referral.to_string();
            self.vault.erase(&id, now, Erasure::RetentionEnded)?;
            self.take_back_from_office(&id, now)?;
            let whose = match item.side {
                Side::Received => "the receiver's",
                Side::Sent => "the sender's",
            };
            self.audit(
                &id,
                "retention_expired",
                "housekeeping",
                format!("{whose} retention period after closing ended; key destroyed"),
            );
            info!(referral = %id, side = ?item.side, "case file erased at the end of its retention period");
            destroyed.push(item.referral);
        }
        Ok(destroyed)
    }

    fn show(&mut self, referral: ReferralId, by: &str) -> Result<ReferralView, NodeError> {
        let text = referral.to_string();
        let id = text.as_str();
        let entry = self.entry(id)?;
        let role = self.role_in(&entry);
        let delivery_pending = self
            .vault
            .outbox()?
            .iter()
            .any(|o| o.referral == id && o.kind == OutboxKind::Deliver);
        let mut view = ReferralView {
            names: self.names(),
            case_state: CaseState::NotAParty,
            case: None,
            intact: None,
            delivery_pending,
            destroy_at: None,
            entry,
        };
        if role.is_none() && !(view.entry.open && view.entry.sender == self.own) {
            return Ok(view);
        }
        if let Some(tombstone) = self.vault.erased(id)? {
            view.case_state = match tombstone.why {
                Erasure::RetentionEnded => CaseState::RetentionExpired,
                Erasure::Asked => CaseState::Erased,
            };
            return Ok(view);
        }
        match self.vault.read(id)? {
            Some(case) => {
                view.intact =
                    Some(case.content.commitment(id, &view.entry.sender) == view.entry.commitment);
                // No read goes unrecorded: a case file whose read cannot be written to
                // the audit log is not shown.
                self.vault.audit(&AuditEntry {
                    at: crate::unix_now(),
                    referral: id.to_owned(),
                    action: "read".into(),
                    by: by.to_owned(),
                    detail: String::new(),
                })?;
                view.case_state = CaseState::Held;
                view.destroy_at = view.entry.closed_at.map(|at| at + self.kept_for(case.side));
                view.case = Some(case);
            }
            None => view.case_state = CaseState::NotReceived,
        }
        Ok(view)
    }

    fn erase(&mut self, referral: ReferralId, by: &str) -> Result<EraseReceipt, NodeError> {
        let now = crate::unix_now();
        let text = referral.to_string();
        let id = text.as_str();
        let counterpart = match self.entry(id) {
            Ok(entry) => match self.role_in(&entry) {
                Some(Role::Sender) => entry.receiver,
                Some(Role::Receiver) => Some(entry.sender),
                None if entry.sender == self.own => None,
                None => {
                    return Err(invalid(
                        "id",
                        format!(
                            "this organisation is not a party to {id}: it holds no case file of it"
                        ),
                        format!(
                            "cette organisation n'est pas partie à {id} : elle n'en détient aucun dossier"
                        ),
                    ));
                }
            },
            // A case file that arrived before its board entry.
            Err(_) => self.vault.side(id)?.and_then(|(_, c)| c),
        };
        let erased_here = self.vault.erase(id, now, Erasure::Asked)?;
        self.vault.dequeue(OutboxKind::Deliver, id)?;
        self.take_back_from_office(id, now)?;
        self.audit(id, "erased", by, "erased on this node; key destroyed");
        if let Some(to) = counterpart {
            self.vault.queue(&OutboxEntry {
                referral: id.to_owned(),
                kind: OutboxKind::Erase,
                to,
                since: now,
            })?;
            self.audit(
                id,
                "erase_requested",
                by,
                format!("asked {to} to erase its copy"),
            );
            self.nudge_network();
        }
        Ok(EraseReceipt {
            id: referral,
            erased_here,
            asked: counterpart,
        })
    }

    /// Periodic work: records the expiry of this organisation's unanswered referrals, and
    /// ends the receiver's access to case files a retention period after closing.
    pub(super) fn handle_housekeeping(&mut self, now: i64) -> Result<(), NodeError> {
        self.own_key_duties();
        let own_key = !self.is_device_node();
        let own = self.own;
        let to_expire: Vec<Summary> = self
            .board_index()
            .summaries()
            .filter(|e| own_key && e.sender == own && e.overdue(now))
            .collect();
        for entry in to_expire {
            if let Err(e) = self.move_referral(entry.id, Move::Expire, now) {
                warn!(referral = %entry.id, error = %e, "could not record an expiry");
            }
        }
        self.destroy_due(now)?;
        Ok(())
    }
}
