//! The network: its members, the open proposals (admins approve) and the candidates'
//! requests (admins propose their admission); and the reports — referrals by status,
//! dimension, region and organisation with response times, and the actors by domain with
//! the gaps (regions where no one offers a category).

use axum::Form;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use passerelle_node::accounts::Role;
use passerelle_node::api;
use passerelle_node::cartography::actors;
use passerelle_node::control::{local_call, local_stream};
use passerelle_node::identity::OrgId;
use passerelle_node::membership::ProposalStatus;
use passerelle_node::model::OrganisationRecord;
use passerelle_node::node::{Decision, MembershipView};
use passerelle_node::reference::{areas, taxonomy};
use passerelle_node::referral::lifecycle::Status;
use passerelle_node::referral::report::{Count, Report};
use serde::Deserialize;

use super::{Visitor, failure, head_row, page};
use crate::App;

fn counts_table(visitor: &Visitor, heading: (&str, &str), rows: &[(String, String)]) -> Markup {
    html! {
        table.results.report {
            (head_row(visitor, &[heading, ("Nombre", "Count")]))
            tbody { @for (key, value) in rows { tr { td { (key) } td { (value) } } } }
        }
    }
}

/// The period of `GET /reports?from=YYYY-MM-DD&to=YYYY-MM-DD` (both optional).
#[derive(Debug, Default, Deserialize)]
pub struct Period {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// A day written YYYY-MM-DD as Unix seconds at its start (UTC); `None` when empty or not a
/// date (the form shows it back, and the report is of all time on that side).
fn day(text: &str) -> Option<i64> {
    let time = humantime::parse_rfc3339_weak(&format!("{} 00:00:00", text.trim())).ok()?;
    time.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs() as i64)
}

/// `GET /reports`.
pub async fn reports(
    State(app): State<App>,
    headers: HeaderMap,
    Query(period): Query<Period>,
) -> Response {
    let visitor = match app.require(&headers, Role::Viewer) {
        Ok(v) => v,
        Err(answer) => return *answer,
    };
    let by = visitor.by();
    let asked = api::ReferralReport {
        from: day(&period.from),
        to: day(&period.to).map(|d| d + 86_399),
        min_count: None,
    };
    let report: Report = match local_call(&app.handle, asked, &by).await {
        Ok(report) => report,
        Err(e) => return failure(&visitor, &e),
    };
    let records: Vec<OrganisationRecord> = match local_stream(
        &app.handle,
        api::Records {
            directory_only: true,
        },
        &by,
    )
    .await
    {
        Ok(((), records)) => records,
        Err(e) => return failure(&visitor, &e),
    };
    let actors = actors::report(&records, visitor.lang);
    let percent =
        |share: Option<f64>| share.map_or("—".to_owned(), |s| format!("{:.0} %", s * 100.0));
    // Codes shown as words in the page's language (the code itself when it has none).
    let named = |map: &std::collections::BTreeMap<String, Count>,
                 name: &dyn Fn(&str) -> Option<String>|
     -> Vec<(String, String)> {
        map.iter()
            .map(|(k, v)| (name(k).unwrap_or_else(|| k.clone()), v.to_string()))
            .collect()
    };
    let actor_pairs =
        |map: &std::collections::BTreeMap<String, actors::Counts>| -> Vec<(String, String)> {
            map.iter()
                .map(|(k, c)| (k.clone(), format!("{} / {}", c.organisations, c.services)))
                .collect()
        };
    page(
        &visitor,
        visitor.t("Rapports", "Reports"),
        html! {
            h2 { (visitor.t("Orientations", "Referrals")) }
            form.period method="get" action="/reports" {
                label { (visitor.t("Envoyées du", "Sent from")) " " input type="date" name="from" value=(period.from); }
                " "
                label { (visitor.t("au", "to")) " " input type="date" name="to" value=(period.to); }
                " "
                button type="submit" { (visitor.t("Afficher", "Show")) }
            }
            p.note #suppression {
                (visitor.t(
                    &format!("Pour qu'aucune personne ne puisse être reconnue, un nombre inférieur à {k} est écrit « <{k} », et d'autres sont masqués (« x ») pour qu'il ne puisse pas être recalculé à partir des totaux.", k = report.min_count),
                    &format!("So that no one can be singled out, a count below {k} is written \"<{k}\", and others are withheld (\"x\") so it cannot be recomputed from the totals.", k = report.min_count),
                ))
                @if !report.withheld_tables.is_empty() {
                    " " (visitor.t("Trop peu d'orientations pour publier : ", "Too few referrals to publish: ")) (report.withheld_tables.join(", ")) "."
                }
            }
            dl.profile #referral-report {
                dt { (visitor.t("Total", "Total")) } dd { (report.total) }
                dt { (visitor.t("Saisies par erreur (hors total)", "Entered in error (not counted)")) } dd { (report.entered_in_error) }
                dt { (visitor.t("Datées avant une étape déjà vue (hors délais)", "Dated before a step already seen (not in the timings)")) } dd { (report.clock_flagged) }
                dt { (visitor.t("Délai médian de première réponse", "Median time to first answer")) }
                dd { (report.median_first_response_seconds.map_or("—".to_owned(), |s| format!("{:.1} h", s as f64 / 3600.0))) }
                dt { (visitor.t("Répondues avant l'échéance", "Answered before the deadline")) } dd { (percent(report.answered_before_deadline)) }
                dt { (visitor.t("Taux d'achèvement", "Completion rate")) } dd { (percent(report.completion_rate)) }
            }
            div.reports {
                (counts_table(&visitor, ("Statut", "Status"), &named(&report.by_status, &|code| {
                    code.parse::<Status>().map(|s| super::board::status_text(&visitor, s).to_owned()).ok()
                })))
                (counts_table(&visitor, ("Dimension", "Dimension"), &named(&report.by_dimension, &|code| {
                    serde_json::from_value::<taxonomy::Dimension>(serde_json::Value::String(code.to_owned()))
                        .map(|d| d.label(visitor.lang).to_owned())
                        .ok()
                })))
                (counts_table(&visitor, ("Région", "Region"), &named(&report.by_region, &|code| {
                    areas::region(code).map(|r| r.name(visitor.lang).to_owned())
                })))
            }
            h2 { (visitor.t("Acteurs par domaine (organisations / services)", "Actors by domain (organisations / services)")) }
            p { (actors.organisations) " " (visitor.t("organisations", "organisations")) ", " (actors.services) " " (visitor.t("services actifs", "active services")) }
            div.reports {
                (counts_table(&visitor, ("Dimension", "Dimension"), &actor_pairs(&actors.by_dimension)))
                (counts_table(&visitor, ("Catégorie", "Category"), &actor_pairs(&actors.by_category)))
                (counts_table(&visitor, ("Région", "Region"), &actor_pairs(&actors.by_region)))
            }
            h2 #gaps { (visitor.t("Manques : régions sans aucun prestataire d'une catégorie", "Gaps: regions with no provider of a category")) }
            p { (actors.gaps.len()) " " (visitor.t("manque(s)", "gap(s)")) }
            table.results.gaps {
                (head_row(&visitor, &[("Région", "Region"), ("Catégorie", "Category")]))
                tbody { @for gap in &actors.gaps { tr { td { (gap.region_name) } td { (gap.category_label) } } } }
            }
        },
    )
    .into_response()
}

/// `GET /members`.
pub async fn members(State(app): State<App>, headers: HeaderMap) -> Response {
    let visitor = match app.require(&headers, Role::Viewer) {
        Ok(v) => v,
        Err(answer) => return *answer,
    };
    let view: MembershipView =
        match local_call(&app.handle, api::Membership {}, &visitor.by()).await {
            Ok(view) => view,
            Err(e) => return failure(&visitor, &e),
        };
    let own = app.handle.org_id();
    let admin = visitor
        .session
        .as_ref()
        .is_some_and(|s| s.role >= Role::Admin);
    let csrf = visitor
        .session
        .as_ref()
        .map(|s| s.csrf.as_str())
        .unwrap_or("");
    let approve = |org: &str, label: &str| {
        html! {
            form.approve method="post" action="/members/approve" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="org" value=(org);
                button type="submit" { (label) }
            }
        }
    };
    page(
        &visitor,
        visitor.t("Membres du réseau", "Members of the network"),
        html! {
            table.results #members {
                (head_row(&visitor, &[("Organisation", "Organisation"), ("Admission", "Admission")]))
                tbody {
                    @for member in &view.members {
                        tr {
                            td { a href={ "/org/" (member.org) } { (member.name) } }
                            td {
                                @if member.founder { (visitor.t("fondatrice", "founder")) }
                                @else {
                                    (visitor.t("approuvée par ", "approved by "))
                                    (member.approved_by.iter().map(|org| view.members.iter().find(|m| m.org == *org).map_or_else(|| org.to_string(), |m| m.name.clone())).collect::<Vec<_>>().join(", "))
                                }
                            }
                        }
                    }
                }
            }
            h2 { (visitor.t("Propositions ouvertes", "Open proposals")) }
            @let open: Vec<_> = view.proposals.iter().filter(|p| p.status == ProposalStatus::Open).collect();
            @if open.is_empty() { p { (visitor.t("Aucune.", "None.")) } }
            @for proposal in open {
                div.proposal {
                    strong { (proposal.subject_name) } " — "
                    (proposal.approvals.len()) "/" (proposal.required) " " (visitor.t("approbations", "approvals"))
                    @if admin && !proposal.approvals.contains(&own) && proposal.subject.parse::<OrgId>().is_ok() {
                        (approve(&proposal.subject, visitor.t("Approuver", "Approve")))
                    }
                }
            }
            h2 { (visitor.t("Demandes d'adhésion", "Requests to join")) }
            @if view.requests.is_empty() { p { (visitor.t("Aucune.", "None.")) } }
            @for request in &view.requests {
                div.proposal {
                    strong { (request.name) } " (" code { (request.fingerprint) } ") — " (request.message)
                    @if admin {
                        (approve(&request.org.to_string(), visitor.t("Proposer l'admission", "Propose admission")))
                    }
                }
            }
        },
    )
    .into_response()
}

#[derive(Deserialize)]
pub struct ApproveForm {
    csrf: String,
    org: String,
}

/// `POST /members/approve` (admins).
pub async fn approve(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<ApproveForm>,
) -> Response {
    let request = form.org.parse::<OrgId>().ok().map(|org| api::Decide {
        decision: Decision::Approve { org },
    });
    super::submit(app, headers, Role::Admin, &form.csrf, request, "/members").await
}
