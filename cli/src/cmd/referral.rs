//! `passerelle referral …`: find a service, send a returnee's case file, follow and answer
//! referrals.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use passerelle_node::api;
use passerelle_node::identity::{KeyId, OrgId};
use passerelle_node::ids::{ReferralId, ServiceId};
use passerelle_node::node::{
    CaseState, ListFilter, ReferralList, ReferralReceipt, ReferralView, SendReferral, StatusReport,
};
use passerelle_node::referral::board::{BoardEntry, Priority};
use passerelle_node::referral::casefile::{
    CaseFile, Consent, ConsentMethod, ConsentRecord, FIELDS,
};
use passerelle_node::referral::lifecycle::{self, Move, Reason, Status};
use passerelle_node::referral::matching::{MatchQuery, ServiceMatch};

use crate::client::{Outcome, call, collect, items};
use crate::flags::{
    parse_consent_method, parse_count, parse_date, parse_duration, parse_outcome, parse_positive,
    parse_priority, parse_reason, parse_status,
};
use crate::messages::t;
use crate::output::{self, fields, table, time};

/// `passerelle referral …`.
#[derive(Debug, Subcommand)]
pub enum ReferralCommand {
    /// Services that fit a returnee's needs, best first (needs covered, capacity, cost).
    Match(MatchArgs),
    /// Send a referral with the person's case file. Consent (or an override with its
    /// reason) is required; the case file goes only to the receiving organisation's node,
    /// encrypted, and never onto the shared board.
    Send(SendArgs),
    /// The referral board: all, incoming, outgoing, by status, overdue, or open to take.
    List(ListArgs),
    /// One referral: board entry, history, and the case file where this node may read it
    /// (each read is recorded in the audit log).
    Show {
        /// The referral id (ref-…).
        id: ReferralId,
    },
    /// Accept a referral this organisation received.
    Accept {
        /// The referral id.
        id: ReferralId,
    },
    /// Decline a referral this organisation received.
    Decline {
        /// The referral id.
        id: ReferralId,
        /// Why (required).
        #[arg(long, value_parser = parse_reason)]
        reason: Reason,
    },
    /// Start providing the service.
    Start {
        /// The referral id.
        id: ReferralId,
    },
    /// Put the person on the waiting list.
    Waitlist {
        /// The referral id.
        id: ReferralId,
        /// Why (required).
        #[arg(long, value_parser = parse_reason)]
        reason: Reason,
    },
    /// The service was delivered.
    Complete {
        /// The referral id.
        id: ReferralId,
        /// What it achieved: achieved, partially_achieved, not_achieved.
        #[arg(long, value_parser = parse_outcome)]
        outcome: lifecycle::Outcome,
    },
    /// The service could not be delivered.
    Fail {
        /// The referral id.
        id: ReferralId,
        /// Why (required).
        #[arg(long, value_parser = parse_reason)]
        reason: Reason,
    },
    /// Withdraw a referral this organisation sent.
    Withdraw {
        /// The referral id.
        id: ReferralId,
        /// Why (required).
        #[arg(long, value_parser = parse_reason)]
        reason: Reason,
    },
    /// Mark a referral this organisation sent as made by mistake.
    #[command(name = "entered-in-error")]
    EnteredInError {
        /// The referral id.
        id: ReferralId,
    },
    /// Offer one of this organisation's services for another's open referral.
    Propose {
        /// The referral id.
        id: ReferralId,
        /// This organisation's service id (svc-…).
        #[arg(long)]
        service: ServiceId,
    },
    /// Give this organisation's open referral to one of the organisations that proposed;
    /// the case file then goes to it.
    Assign {
        /// The referral id.
        id: ReferralId,
        /// The organisation chosen (id, or a part of its name).
        #[arg(long)]
        org: String,
    },
    /// Hand a case file this organisation received on to one of its offices (a device
    /// node granted case files with `device grant`), the one that will serve the person.
    ToOffice {
        /// The referral id.
        id: ReferralId,
        /// The office's device key (its `passerelle status` node key).
        office: KeyId,
    },
    /// Erase a referral's case file on this node, and ask the other organisation's node
    /// to erase its copy. The board entry stays (it holds no personal data).
    Erase {
        /// The referral id.
        id: ReferralId,
    },
    /// The local audit log of case files: receipts, reads, deliveries, erasures.
    Audit {
        /// Only this referral.
        id: Option<ReferralId>,
    },
}

/// `passerelle referral match`.
#[derive(Debug, Args)]
pub struct MatchArgs {
    /// A need, as a category code (repeat for several), e.g. vocational_training.
    #[arg(long = "need", required = true, value_name = "CATEGORY")]
    pub needs: Vec<String>,
    /// Region P-code where the person is, e.g. CM005.
    #[arg(long)]
    pub region: Option<String>,
    /// Department P-code (services there rank higher).
    #[arg(long)]
    pub department: Option<String>,
    /// Highest fee the person can pay, in XAF (0: free or cost-shared only).
    #[arg(long, value_name = "XAF", allow_negative_numbers = true, value_parser = parse_count::<u64>)]
    pub max_fee: Option<u64>,
    /// A language the person speaks (ISO 639 code).
    #[arg(long)]
    pub language: Option<String>,
    /// Include services that are full.
    #[arg(long)]
    pub include_full: bool,
}

/// `passerelle referral send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The receiving organisation (id, or a part of its name); omit with --service for an
    /// open referral to any member offering --category in --region.
    #[arg(long, requires = "service")]
    pub to: Option<String>,
    /// The receiving organisation's service id (svc-…).
    #[arg(long, requires = "to")]
    pub service: Option<ServiceId>,
    /// Category of service asked for (required for an open referral).
    #[arg(long)]
    pub category: Option<String>,
    /// Region P-code where the person is, e.g. CM005.
    #[arg(long)]
    pub region: String,
    /// routine or urgent.
    #[arg(long, default_value = "routine", value_parser = parse_priority)]
    pub priority: Priority,
    /// How long the receiver has to answer, e.g. 48h, 7d.
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    pub respond_within: std::time::Duration,
    /// The case file as a JSON or TOML file (fields: name, sex, birth_year, age, phone,
    /// languages, location, needs, vulnerabilities, notes); flags below override it.
    #[arg(long, value_name = "FILE")]
    pub case_file: Option<PathBuf>,
    /// The person's full name.
    #[arg(long)]
    pub name: Option<String>,
    /// female, male or other.
    #[arg(long)]
    pub sex: Option<String>,
    /// Year of birth.
    #[arg(long)]
    pub birth_year: Option<u16>,
    /// Age in years (when the year of birth is not known).
    #[arg(long)]
    pub age: Option<u8>,
    /// Phone number.
    #[arg(long)]
    pub phone: Option<String>,
    /// A language the person speaks (repeat).
    #[arg(long = "language")]
    pub languages: Vec<String>,
    /// Where to find the person (town, quarter).
    #[arg(long)]
    pub location: Option<String>,
    /// A need, in words or as a category code (repeat).
    #[arg(long = "need")]
    pub needs: Vec<String>,
    /// A vulnerability, e.g. single_parent, disability (repeat).
    #[arg(long = "vulnerability")]
    pub vulnerabilities: Vec<String>,
    /// Notes for the receiving caseworker.
    #[arg(long)]
    pub notes: Option<String>,
    /// How the person consented: verbal, written, digital, guardian.
    #[arg(long, value_parser = parse_consent_method, conflicts_with = "consent_override")]
    pub consent: Option<ConsentMethod>,
    /// When consent was given (YYYY-MM-DD; default today).
    #[arg(long, value_parser = parse_date, requires = "consent")]
    pub consent_date: Option<i64>,
    /// When consent ends (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date, requires = "consent")]
    pub consent_expires: Option<i64>,
    /// The case-file fields the person agreed to share, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', requires = "consent")]
    pub consent_data: Vec<String>,
    /// Send without consent, with the reason (e.g. a child at risk); logged on both nodes.
    #[arg(long, value_name = "REASON")]
    pub consent_override: Option<String>,
}

/// `passerelle referral list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only referrals received by this organisation.
    #[arg(long, conflicts_with = "outgoing")]
    pub incoming: bool,
    /// Only referrals sent by this organisation.
    #[arg(long)]
    pub outgoing: bool,
    /// Only referrals with this status (pending, accepted, in_progress, …).
    #[arg(long, value_parser = parse_status)]
    pub status: Option<Status>,
    /// Only pending referrals past their response deadline.
    #[arg(long)]
    pub overdue: bool,
    /// Only open referrals this organisation could take (it offers the category there).
    #[arg(long)]
    pub open: bool,
    /// Show at most this many, newest first (the total is always given).
    #[arg(long, default_value_t = 100, allow_negative_numbers = true, value_parser = parse_positive, conflicts_with = "all")]
    pub limit: u32,
    /// Show every matching referral.
    #[arg(long)]
    pub all: bool,
}

/// An organisation from an id, or from a part of its name among the organisations this
/// node holds (must match exactly one).
async fn resolve_org(data_dir: &Path, field: &str, text: &str) -> anyhow::Result<OrgId> {
    if let Ok(org) = text.parse::<OrgId>() {
        return Ok(org);
    }
    let status: StatusReport = call(data_dir, api::Status {}).await?;
    let wanted = text.to_lowercase();
    let found: Vec<(String, String)> = status
        .documents
        .iter()
        .filter(|d| d.name.to_lowercase().contains(&wanted))
        .filter_map(|d| {
            d.id.strip_prefix("org/")
                .map(|id| (id.to_owned(), d.name.clone()))
        })
        .collect();
    match found.as_slice() {
        [(id, _)] => Ok(id.parse()?),
        [] => {
            bail!("{field}: no organisation id or name matches {text:?} (see `passerelle status`)")
        }
        many => bail!(
            "{field}: {text:?} matches several organisations ({}); give the organisation id",
            many.iter()
                .map(|(_, name)| name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn name_of(names: &BTreeMap<OrgId, String>, org: &OrgId) -> String {
    names.get(org).cloned().unwrap_or_else(|| org.fingerprint())
}

fn case_file_from(args: &SendArgs) -> anyhow::Result<CaseFile> {
    let mut case = match &args.case_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("case-file: reading {}", path.display()))?;
            let is_toml = path.extension().is_some_and(|e| e == "toml");
            if is_toml {
                toml_case(&text).with_context(|| format!("case-file: {}", path.display()))?
            } else {
                serde_json::from_str(&text).or_else(|json_error| {
                    toml_case(&text).map_err(|_| {
                        anyhow::anyhow!(
                            "case-file: {} is neither valid JSON ({json_error}) nor TOML",
                            path.display()
                        )
                    })
                })?
            }
        }
        None => CaseFile::default(),
    };
    if let Some(name) = &args.name {
        case.name = name.clone();
    }
    if args.sex.is_some() {
        case.sex = args.sex.clone();
    }
    if args.birth_year.is_some() {
        case.birth_year = args.birth_year;
    }
    if args.age.is_some() {
        case.age = args.age;
    }
    if args.phone.is_some() {
        case.phone = args.phone.clone();
    }
    if !args.languages.is_empty() {
        case.languages = args.languages.clone();
    }
    if args.location.is_some() {
        case.location = args.location.clone();
    }
    if !args.needs.is_empty() {
        case.needs = args.needs.clone();
    }
    if !args.vulnerabilities.is_empty() {
        case.vulnerabilities = args.vulnerabilities.clone();
    }
    if args.notes.is_some() {
        case.notes = args.notes.clone();
    }
    Ok(case)
}

fn toml_case(text: &str) -> anyhow::Result<CaseFile> {
    // TOML → JSON value → the case file (one set of field rules for both formats).
    let value: toml::Value = toml::from_str(text)?;
    Ok(serde_json::from_value(serde_json::to_value(value)?)?)
}

fn consent_from(args: &SendArgs, now: i64) -> anyhow::Result<ConsentRecord> {
    match (&args.consent, &args.consent_override) {
        (Some(method), None) => {
            let data = if args.consent_data.is_empty() {
                FIELDS.iter().map(|f| (*f).to_owned()).collect()
            } else {
                args.consent_data
                    .iter()
                    .map(|f| f.trim().to_owned())
                    .collect()
            };
            Ok(ConsentRecord::Given(Consent {
                method: *method,
                given_at: args.consent_date.unwrap_or(now),
                expires_at: args.consent_expires,
                organisation: None,
                service: None,
                data,
            }))
        }
        (None, Some(reason)) => Ok(ConsentRecord::Override {
            reason: reason.clone(),
            at: now,
        }),
        _ => bail!(
            "consent: record how the person consented (--consent verbal|written|digital|guardian, with --consent-data to limit the fields shared) or, only where the law allows it, --consent-override \"REASON\""
        ),
    }
}

fn status_cell(entry: &BoardEntry, now: i64) -> String {
    if entry.overdue(now) {
        format!("{} (overdue)", entry.status)
    } else {
        entry.status.to_string()
    }
}

fn print_list(list: &ReferralList) -> anyhow::Result<()> {
    let rows = list
        .entries
        .iter()
        .map(|e| {
            let direction = if e.sender == list.own {
                "out"
            } else if e.receiver == Some(list.own) {
                "in"
            } else {
                ""
            };
            vec![
                e.id.to_string(),
                direction.to_owned(),
                status_cell(e, list.now),
                e.priority.to_string(),
                name_of(&list.names, &e.sender),
                match &e.receiver {
                    Some(r) => name_of(&list.names, r),
                    None => format!("(open: {} proposals)", e.proposals.len()),
                },
                e.category.clone(),
                e.region.clone(),
                time(e.deadline),
                if list.case_files_held.contains(&e.id) {
                    "here".into()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    output::out(&table(
        &[
            t("referral", "référence"),
            "",
            t("status", "statut"),
            t("priority", "priorité"),
            t("from", "de"),
            t("to", "à"),
            t("category", "catégorie"),
            t("region", "région"),
            t("answer by", "réponse avant"),
            t("case file", "dossier"),
        ],
        rows,
    ))?;
    if list.total > list.entries.len() {
        output::out(&format!(
            "{} of {} referrals shown, newest first (--limit N or --all for more)",
            list.entries.len(),
            list.total
        ))?;
    }
    Ok(())
}

fn print_view(view: &ReferralView) -> anyhow::Result<()> {
    let e = &view.entry;
    let names = &view.names;
    let now = passerelle_node::unix_now();
    output::out(&fields(vec![
        (t("referral", "référence"), e.id.to_string()),
        (t("status", "statut"), status_cell(e, now)),
        (
            t("reason", "raison"),
            e.reason.map(|r| r.code().to_owned()).unwrap_or_default(),
        ),
        (
            t("outcome", "résultat"),
            e.outcome.map(|o| o.code().to_owned()).unwrap_or_default(),
        ),
        (t("priority", "priorité"), e.priority.to_string()),
        (t("from", "de"), name_of(names, &e.sender)),
        (
            t("to", "à"),
            e.receiver
                .as_ref()
                .map(|r| name_of(names, r))
                .unwrap_or_else(|| "(open referral, not assigned)".into()),
        ),
        (
            t("service", "service"),
            e.service.clone().unwrap_or_default(),
        ),
        (
            t("category", "catégorie"),
            format!("{} ({})", e.category, e.dimension),
        ),
        (t("region", "région"), e.region.clone()),
        ("sent", time(e.created)),
        (t("answer by", "réponse avant"), time(e.deadline)),
        ("closed", e.closed_at.map(time).unwrap_or_default()),
    ]))?;
    if !e.proposals.is_empty() {
        output::out(t("\nproposals", "\npropositions"))?;
        output::out(&table(
            &[
                t("organisation", "organisation"),
                t("service", "service"),
                t("when", "quand"),
                t("chosen", "choisie"),
            ],
            e.proposals
                .iter()
                .map(|p| {
                    vec![
                        name_of(names, &p.org),
                        p.service.clone(),
                        time(p.at),
                        if p.chosen {
                            "yes".into()
                        } else {
                            String::new()
                        },
                    ]
                })
                .collect(),
        ))?;
    }
    output::out(t("\nhistory", "\nhistorique"))?;
    output::out(&table(
        &[
            t("when", "quand"),
            t("by", "par"),
            t("move", "étape"),
            t("status", "statut"),
            t("note", "note"),
        ],
        e.history
            .iter()
            .map(|h| {
                vec![
                    time(h.at),
                    match h.by {
                        passerelle_node::referral::lifecycle::Role::Sender => "sender".into(),
                        passerelle_node::referral::lifecycle::Role::Receiver => "receiver".into(),
                    },
                    serde_json::to_value(h.action)
                        .ok()
                        .map(|v| {
                            v.as_object()
                                .map(|o| {
                                    o.values()
                                        .filter_map(|x| x.as_str())
                                        .collect::<Vec<_>>()
                                        .join(" ")
                                })
                                .unwrap_or_default()
                        })
                        .unwrap_or_default(),
                    h.status.to_string(),
                    [
                        h.void.clone().map(|v| format!("void: {v}")),
                        h.clock.clone().map(|c| format!("clock: {c}")),
                        h.arrival.clone().map(|a| format!("arrival: {a}")),
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("; "),
                ]
            })
            .collect(),
    ))?;
    output::out("")?;
    match (&view.case_state, &view.case) {
        (CaseState::Held, Some(case)) => {
            let c = &case.content.case_file;
            let consent = match &case.content.consent {
                ConsentRecord::Given(consent) => format!(
                    "{}, given {}{}; for {}{}; fields: {}",
                    format!("{:?}", consent.method).to_lowercase(),
                    time(consent.given_at),
                    consent
                        .expires_at
                        .map(|e| format!(", until {}", time(e)))
                        .unwrap_or_default(),
                    consent
                        .organisation
                        .as_ref()
                        .map(|o| name_of(names, o))
                        .unwrap_or_else(|| "the organisation chosen".into()),
                    consent
                        .service
                        .as_ref()
                        .map(|s| format!(", service {s}"))
                        .unwrap_or_default(),
                    consent.data.join(", ")
                ),
                ConsentRecord::Override { reason, at } => {
                    format!("OVERRIDE ({}): {reason}", time(*at))
                }
            };
            output::out(&format!(
                "case file (read recorded in the audit log; {})",
                match view.intact {
                    Some(true) => "matches the board's commitment",
                    Some(false) => "DOES NOT MATCH the board's commitment",
                    None => "no board entry to compare with",
                }
            ))?;
            output::out(&fields(vec![
                (t("name", "nom"), c.name.clone()),
                (t("sex", "sexe"), c.sex.clone().unwrap_or_default()),
                (
                    t("birth year", "année de naissance"),
                    c.birth_year.map(|y| y.to_string()).unwrap_or_default(),
                ),
                (
                    t("age", "âge"),
                    c.age.map(|a| a.to_string()).unwrap_or_default(),
                ),
                (t("phone", "téléphone"), c.phone.clone().unwrap_or_default()),
                (t("languages", "langues"), c.languages.join(", ")),
                (
                    t("location", "lieu"),
                    c.location.clone().unwrap_or_default(),
                ),
                (t("needs", "besoins"), c.needs.join(", ")),
                (
                    t("vulnerabilities", "vulnérabilités"),
                    c.vulnerabilities.join(", "),
                ),
                (t("notes", "notes"), c.notes.clone().unwrap_or_default()),
                (t("consent", "consentement"), consent),
            ]))?;
        }
        (CaseState::NotReceived, _) => output::out(t(
            "case file: not received yet (the sending node retries until it is delivered)",
            "dossier : pas encore reçu (le nœud qui l'envoie réessaie jusqu'à la remise)",
        ))?,
        (CaseState::Erased, _) => output::out(t(
            "case file: erased on this node",
            "dossier : effacé sur ce nœud",
        ))?,
        (CaseState::RetentionExpired, _) => output::out(t(
            "case file: access ended (retention period after closing); erased on this node",
            "dossier : accès terminé (durée de conservation après clôture) ; effacé sur ce nœud",
        ))?,
        (CaseState::NotAParty, _) | (CaseState::Held, None) => output::out(t(
            "case file: not on this node (only the two organisations of a referral hold it)",
            "dossier : pas sur ce nœud (seules les deux organisations d'une référence le détiennent)",
        ))?,
    }
    if view.delivery_pending {
        output::out(t(
            "delivery: waiting for the receiving node to come online",
            "remise : en attente que le nœud destinataire soit en ligne",
        ))?;
    }
    if let Some(at) = view.destroy_at {
        output::out(&format!(
            "retention: this node's copy is destroyed on {} (passerelle retention)",
            output::time(at)
        ))?;
    }
    Ok(())
}

async fn send(data_dir: &Path, args: SendArgs) -> anyhow::Result<SendReferral> {
    let now = passerelle_node::unix_now();
    let case_file = case_file_from(&args)?;
    let mut consent = consent_from(&args, now)?;
    let to = match &args.to {
        Some(text) => Some(resolve_org(data_dir, "to", text).await?),
        None => None,
    };
    // The consent's scope is this referral's receiver and service, written down (an open
    // referral's consent covers whichever member it is assigned to).
    if let ConsentRecord::Given(given) = &mut consent {
        given.organisation = to;
        given.service = args.service.as_ref().map(ToString::to_string);
    }
    Ok(SendReferral {
        to,
        service: args.service,
        category: args.category,
        region: args.region,
        priority: args.priority,
        respond_within: args.respond_within.as_secs() as i64,
        case_file,
        consent,
    })
}

/// The operator's name as this account knows it, for the node's audit log.
fn operator() -> Option<String> {
    std::env::var("USER").ok()
}

/// Prints a step's receipt.
fn print_receipt(receipt: &ReferralReceipt, json_out: bool) -> anyhow::Result<Outcome> {
    if json_out {
        output::json(receipt)?;
    } else {
        let note = match crate::messages::lang() {
            passerelle_node::reference::Lang::Fr if !receipt.note_fr.is_empty() => &receipt.note_fr,
            _ => &receipt.note,
        };
        // A hand-over to an office writes no signed change: no change to name.
        let change = if receipt.change.is_empty() {
            String::new()
        } else {
            format!(
                " ({} {})",
                t("change", "changement"),
                &receipt.change[..12.min(receipt.change.len())]
            )
        };
        output::out(&format!(
            "{}: {}{change}\n{note}",
            receipt.id, receipt.status
        ))?;
    }
    Ok(Outcome::Done)
}

/// One of this organisation's moves on a referral.
async fn step(
    data_dir: &Path,
    id: ReferralId,
    action: Move,
    json_out: bool,
) -> anyhow::Result<Outcome> {
    let receipt = call(
        data_dir,
        api::ReferralMove {
            id,
            action,
            operator: operator(),
        },
    )
    .await?;
    print_receipt(&receipt, json_out)
}

pub async fn run(
    data_dir: &Path,
    command: ReferralCommand,
    json_out: bool,
) -> anyhow::Result<Outcome> {
    match command {
        ReferralCommand::Match(MatchArgs {
            needs,
            region,
            department,
            max_fee,
            language,
            include_full,
        }) => {
            let query = MatchQuery {
                needs,
                region,
                department,
                max_fee_xaf: max_fee,
                language,
                include_full,
                exclude: None,
            };
            let found = call(data_dir, api::ReferralMatch { query }).await?;
            if json_out {
                output::json(&found)?;
            } else {
                print_matches(&found)?;
            }
            Ok(Outcome::found(!found.is_empty()))
        }
        ReferralCommand::Send(args) => {
            let send = Box::new(send(data_dir, args).await?);
            let receipt = call(
                data_dir,
                api::ReferralSend {
                    send,
                    operator: operator(),
                },
            )
            .await?;
            print_receipt(&receipt, json_out)
        }
        ReferralCommand::List(ListArgs {
            incoming,
            outgoing,
            status,
            overdue,
            open,
            limit,
            all,
        }) => {
            let filter = ListFilter {
                incoming,
                outgoing,
                status,
                overdue,
                open,
                limit: (!all).then_some(limit as usize),
            };
            let (head, entries) = collect(data_dir, api::Board { filter }).await?;
            let list = ReferralList {
                entries,
                total: head.total,
                names: head.names,
                own: head.own,
                now: head.now,
                case_files_held: head.case_files_held,
                destroy_at: head.destroy_at,
            };
            if json_out {
                output::json(&list)?;
            } else {
                print_list(&list)?;
            }
            Ok(Outcome::found(!list.entries.is_empty()))
        }
        ReferralCommand::Show { id } => {
            let view = call(
                data_dir,
                api::ReferralShow {
                    id,
                    operator: operator(),
                },
            )
            .await?;
            if json_out {
                output::json(&view)?;
            } else {
                print_view(&view)?;
            }
            Ok(Outcome::Done)
        }
        ReferralCommand::Accept { id } => step(data_dir, id, Move::Accept, json_out).await,
        ReferralCommand::Decline { id, reason } => {
            step(data_dir, id, Move::Decline { reason }, json_out).await
        }
        ReferralCommand::Start { id } => step(data_dir, id, Move::Start, json_out).await,
        ReferralCommand::Waitlist { id, reason } => {
            step(data_dir, id, Move::Waitlist { reason }, json_out).await
        }
        ReferralCommand::Complete { id, outcome } => {
            step(data_dir, id, Move::Complete { outcome }, json_out).await
        }
        ReferralCommand::Fail { id, reason } => {
            step(data_dir, id, Move::Fail { reason }, json_out).await
        }
        ReferralCommand::Withdraw { id, reason } => {
            step(data_dir, id, Move::Withdraw { reason }, json_out).await
        }
        ReferralCommand::EnteredInError { id } => {
            step(data_dir, id, Move::EnteredInError, json_out).await
        }
        ReferralCommand::Propose { id, service } => {
            let receipt = call(
                data_dir,
                api::ReferralPropose {
                    id,
                    service,
                    operator: operator(),
                },
            )
            .await?;
            print_receipt(&receipt, json_out)
        }
        ReferralCommand::Assign { id, org } => {
            let org = resolve_org(data_dir, "org", &org).await?;
            let receipt = call(
                data_dir,
                api::ReferralAssign {
                    id,
                    org,
                    operator: operator(),
                },
            )
            .await?;
            print_receipt(&receipt, json_out)
        }
        ReferralCommand::ToOffice { id, office } => {
            let receipt = call(
                data_dir,
                api::ReferralToOffice {
                    id,
                    office,
                    operator: operator(),
                },
            )
            .await?;
            print_receipt(&receipt, json_out)
        }
        ReferralCommand::Erase { id } => {
            let receipt = call(
                data_dir,
                api::ReferralErase {
                    id,
                    operator: operator(),
                },
            )
            .await?;
            if json_out {
                output::json(&receipt)?;
                return Ok(Outcome::Done);
            }
            output::out(&format!(
                "{}: {}{}",
                receipt.id,
                if receipt.erased_here {
                    "case file erased on this node (key destroyed)"
                } else {
                    "no case file was held on this node"
                },
                receipt
                    .asked
                    .map(|o| format!(
                        "; the other organisation's node ({}) is asked to erase its copy, until it acknowledges",
                        o.fingerprint()
                    ))
                    .unwrap_or_default()
            ))?;
            Ok(Outcome::Done)
        }
        ReferralCommand::Audit { id } => {
            let log = items(data_dir, api::Audit { id }).await?;
            if json_out {
                output::json(&log)?;
            } else {
                output::out(&table(
                    &[
                        t("when", "quand"),
                        t("referral", "référence"),
                        t("action", "action"),
                        t("by", "par"),
                        t("detail", "détail"),
                    ],
                    log.iter()
                        .map(|a| {
                            vec![
                                time(a.at),
                                a.referral.clone(),
                                a.action.clone(),
                                a.by.clone(),
                                a.detail.clone(),
                            ]
                        })
                        .collect(),
                ))?;
            }
            Ok(Outcome::found(!log.is_empty()))
        }
    }
}

/// Prints ranked services.
fn print_matches(found: &[ServiceMatch]) -> anyhow::Result<()> {
    output::out(&table(
        &[
            t("score", "score"),
            t("organisation", "organisation"),
            t("service", "service"),
            t("id", "id"),
            t("covers", "couvre"),
            t("capacity", "capacité"),
            t("cost", "coût"),
        ],
        found
            .iter()
            .map(|m| {
                vec![
                    m.score.to_string(),
                    m.hit.org_name.clone(),
                    m.hit.service.name.clone(),
                    m.hit.service_id.clone(),
                    m.covers.join(", "),
                    format!("{:?}", m.hit.service.capacity.status).to_lowercase(),
                    m.hit.service.cost.to_string(),
                ]
            })
            .collect(),
    ))
}
