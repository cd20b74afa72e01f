//! `passerelle referral …` and `passerelle report`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use passerelle_node::api;
use passerelle_node::identity::OrgId;
use passerelle_node::node::{
    CaseState, ListFilter, ReferralList, ReferralReply, ReferralRequest, ReferralView,
    SendReferral, StatusReport,
};
use passerelle_node::referral::board::BoardEntry;
use passerelle_node::referral::casefile::{CaseFile, Consent, ConsentRecord, FIELDS};
use passerelle_node::referral::lifecycle::Move;
use passerelle_node::referral::matching::MatchQuery;
use passerelle_node::referral::report::Report;

use crate::args::{ListArgs, MatchArgs, ReferralCommand, SendArgs};
use crate::commands::{Outcome, call, collect, items};
use crate::output::{self, fields, table, time};

/// Asks the node; the board and the audit log, which grow, come as streams.
async fn ask(data_dir: &Path, referral: ReferralRequest) -> anyhow::Result<ReferralReply> {
    match referral {
        ReferralRequest::List { filter } => {
            let (head, entries) = collect(data_dir, api::Board { filter }).await?;
            Ok(ReferralReply::List(ReferralList {
                entries,
                total: head.total,
                names: head.names,
                own: head.own,
                now: head.now,
                case_files_held: head.case_files_held,
            }))
        }
        ReferralRequest::Audit { id } => Ok(ReferralReply::Audit(
            items(data_dir, api::Audit { id }).await?,
        )),
        referral => {
            call(
                data_dir,
                api::Referral {
                    referral,
                    operator: std::env::var("USER").ok(),
                },
            )
            .await
        }
    }
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
                e.id.clone(),
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
            "referral",
            "",
            "status",
            "priority",
            "from",
            "to",
            "category",
            "region",
            "answer by",
            "case file",
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
        ("referral", e.id.clone()),
        ("status", status_cell(e, now)),
        (
            "reason",
            e.reason.map(|r| r.code().to_owned()).unwrap_or_default(),
        ),
        (
            "outcome",
            e.outcome.map(|o| o.code().to_owned()).unwrap_or_default(),
        ),
        ("priority", e.priority.to_string()),
        ("from", name_of(names, &e.sender)),
        (
            "to",
            e.receiver
                .as_ref()
                .map(|r| name_of(names, r))
                .unwrap_or_else(|| "(open referral, not assigned)".into()),
        ),
        ("service", e.service.clone().unwrap_or_default()),
        ("category", format!("{} ({})", e.category, e.dimension)),
        ("region", e.region.clone()),
        ("sent", time(e.created)),
        ("answer by", time(e.deadline)),
        ("closed", e.closed_at.map(time).unwrap_or_default()),
    ]))?;
    if !e.proposals.is_empty() {
        output::out("\nproposals")?;
        output::out(&table(
            &["organisation", "service", "when", "chosen"],
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
    output::out("\nhistory")?;
    output::out(&table(
        &["when", "by", "move", "status", "note"],
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
                    h.void
                        .clone()
                        .map(|v| format!("void: {v}"))
                        .unwrap_or_default(),
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
                ("name", c.name.clone()),
                ("sex", c.sex.clone().unwrap_or_default()),
                (
                    "birth year",
                    c.birth_year.map(|y| y.to_string()).unwrap_or_default(),
                ),
                ("age", c.age.map(|a| a.to_string()).unwrap_or_default()),
                ("phone", c.phone.clone().unwrap_or_default()),
                ("languages", c.languages.join(", ")),
                ("location", c.location.clone().unwrap_or_default()),
                ("needs", c.needs.join(", ")),
                ("vulnerabilities", c.vulnerabilities.join(", ")),
                ("notes", c.notes.clone().unwrap_or_default()),
                ("consent", consent),
            ]))?;
        }
        (CaseState::NotReceived, _) => output::out(
            "case file: not received yet (the sending node retries until it is delivered)",
        )?,
        (CaseState::Erased, _) => output::out("case file: erased on this node")?,
        (CaseState::RetentionExpired, _) => output::out(
            "case file: access ended (retention period after closing); erased on this node",
        )?,
        (CaseState::NotAParty, _) | (CaseState::Held, None) => output::out(
            "case file: not on this node (only the two organisations of a referral hold it)",
        )?,
    }
    if view.delivery_pending {
        output::out("delivery: waiting for the receiving node to come online")?;
    }
    Ok(())
}

fn print_report(report: &Report) -> anyhow::Result<()> {
    let pct = |v: Option<f64>| {
        v.map(|v| format!("{:.0}%", v * 100.0))
            .unwrap_or("—".into())
    };
    output::out(&fields(vec![
        ("referrals", report.total.to_string()),
        (
            "median first response",
            report
                .median_first_response_seconds
                .map(|s| {
                    humantime::format_duration(std::time::Duration::from_secs(s.max(0) as u64))
                        .to_string()
                })
                .unwrap_or("—".into()),
        ),
        (
            "answered by the deadline",
            pct(report.answered_before_deadline),
        ),
        ("completion rate", pct(report.completion_rate)),
    ]))?;
    for (title, counts) in [
        ("status", &report.by_status),
        ("dimension", &report.by_dimension),
        ("category", &report.by_category),
        ("region", &report.by_region),
    ] {
        if counts.is_empty() {
            continue;
        }
        output::out("")?;
        output::out(&table(
            &[title, "referrals"],
            counts
                .iter()
                .map(|(k, v)| vec![k.clone(), v.to_string()])
                .collect(),
        ))?;
    }
    if !report.by_organisation.is_empty() {
        output::out("")?;
        output::out(&table(
            &["organisation", "sent", "received", "completed"],
            report
                .by_organisation
                .iter()
                .map(|(name, c)| {
                    vec![
                        name.clone(),
                        c.sent.to_string(),
                        c.received.to_string(),
                        c.completed.to_string(),
                    ]
                })
                .collect(),
        ))?;
    }
    Ok(())
}

async fn send(data_dir: &Path, args: SendArgs) -> anyhow::Result<ReferralRequest> {
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
        given.service = args.service.clone();
    }
    Ok(ReferralRequest::Send {
        send: Box::new(SendReferral {
            to,
            service: args.service,
            category: args.category,
            region: args.region,
            priority: args.priority,
            respond_within: args.respond_within.as_secs() as i64,
            case_file,
            consent,
        }),
    })
}

pub async fn referral(
    data_dir: &Path,
    command: ReferralCommand,
    json_out: bool,
) -> anyhow::Result<Outcome> {
    let moving = |id: String, action: Move| ReferralRequest::Move { id, action };
    let request = match command {
        ReferralCommand::Match(MatchArgs {
            needs,
            region,
            department,
            max_fee,
            language,
            include_full,
        }) => ReferralRequest::Match {
            query: MatchQuery {
                needs,
                region,
                department,
                max_fee_xaf: max_fee,
                language,
                include_full,
                exclude: None,
            },
        },
        ReferralCommand::Send(args) => send(data_dir, args).await?,
        ReferralCommand::List(ListArgs {
            incoming,
            outgoing,
            status,
            overdue,
            open,
            limit,
            all,
        }) => ReferralRequest::List {
            filter: ListFilter {
                incoming,
                outgoing,
                status,
                overdue,
                open,
                limit: (!all).then_some(limit as usize),
            },
        },
        ReferralCommand::Show { id } => ReferralRequest::Show { id },
        ReferralCommand::Accept { id } => moving(id, Move::Accept),
        ReferralCommand::Decline { id, reason } => moving(id, Move::Decline { reason }),
        ReferralCommand::Start { id } => moving(id, Move::Start),
        ReferralCommand::Waitlist { id, reason } => moving(id, Move::Waitlist { reason }),
        ReferralCommand::Complete { id, outcome } => moving(id, Move::Complete { outcome }),
        ReferralCommand::Fail { id, reason } => moving(id, Move::Fail { reason }),
        ReferralCommand::Withdraw { id, reason } => moving(id, Move::Withdraw { reason }),
        ReferralCommand::EnteredInError { id } => moving(id, Move::EnteredInError),
        ReferralCommand::Propose { id, service } => ReferralRequest::Propose { id, service },
        ReferralCommand::Assign { id, org } => ReferralRequest::Assign {
            id,
            org: resolve_org(data_dir, "org", &org).await?,
        },
        ReferralCommand::Erase { id } => ReferralRequest::Erase { id },
        ReferralCommand::Audit { id } => ReferralRequest::Audit { id },
    };
    let reply = ask(data_dir, request).await?;
    if json_out {
        match &reply {
            ReferralReply::Matches(v) => output::json(v)?,
            ReferralReply::Receipt(v) => output::json(v)?,
            ReferralReply::List(v) => output::json(v)?,
            ReferralReply::Show(v) => output::json(v)?,
            ReferralReply::Erased(v) => output::json(v)?,
            ReferralReply::Audit(v) => output::json(v)?,
            ReferralReply::Report(v) => output::json(v)?,
        }
        return Ok(match reply {
            ReferralReply::Matches(v) => Outcome::found(!v.is_empty()),
            ReferralReply::List(v) => Outcome::found(!v.entries.is_empty()),
            _ => Outcome::Done,
        });
    }
    match reply {
        ReferralReply::Matches(found) => {
            output::out(&table(
                &[
                    "score",
                    "organisation",
                    "service",
                    "id",
                    "covers",
                    "capacity",
                    "cost",
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
            ))?;
            Ok(Outcome::found(!found.is_empty()))
        }
        ReferralReply::Receipt(receipt) => {
            output::out(&format!(
                "{}: {} (change {})\n{}",
                receipt.id,
                receipt.status,
                &receipt.change[..12.min(receipt.change.len())],
                receipt.note
            ))?;
            Ok(Outcome::Done)
        }
        ReferralReply::List(list) => {
            print_list(&list)?;
            Ok(Outcome::found(!list.entries.is_empty()))
        }
        ReferralReply::Show(view) => {
            print_view(&view)?;
            Ok(Outcome::Done)
        }
        ReferralReply::Erased(receipt) => {
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
        ReferralReply::Audit(log) => {
            output::out(&table(
                &["when", "referral", "action", "by", "detail"],
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
            Ok(Outcome::found(!log.is_empty()))
        }
        ReferralReply::Report(report) => {
            print_report(&report)?;
            Ok(Outcome::Done)
        }
    }
}

pub async fn report(data_dir: &Path, json_out: bool) -> anyhow::Result<Outcome> {
    match ask(data_dir, ReferralRequest::Report).await? {
        ReferralReply::Report(report) => {
            if json_out {
                output::json(&report)?;
            } else {
                print_report(&report)?;
            }
            Ok(Outcome::Done)
        }
        _ => bail!("the node answered something else than a report"),
    }
}
