//! One referral: its board entry and history, the case file when this node holds it (every
//! read recorded in the audit log under the officer's account), and the moves this
//! organisation may make from where it stands; erasing the case file. Officers and admins
//! only: a viewer never opens a case file.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use passerelle_node::accounts::Role;
use passerelle_node::api;
use passerelle_node::control::local_call;
use passerelle_node::ids::ReferralId;
use passerelle_node::node::{CaseState, ReferralView};
use passerelle_node::referral::casefile::ConsentRecord;
use passerelle_node::referral::lifecycle::{Move, Outcome, Reason, Role as Side};
use serde::Deserialize;

use super::board::{date, status_text};
use super::{Visitor, failure, page};
use crate::App;

fn reason_text(visitor: &Visitor, reason: Reason) -> &'static str {
    match reason {
        Reason::NotEligible => visitor.t("Ne remplit pas les critères", "Not eligible"),
        Reason::NoCapacity => visitor.t("Plus de place", "No place"),
        Reason::CouldNotContact => visitor.t("Injoignable", "Could not be reached"),
        Reason::NoLongerInterested => {
            visitor.t("Ne souhaite plus le service", "No longer interested")
        }
        Reason::ReferredElsewhere => visitor.t("Orientée ailleurs", "Referred elsewhere"),
        Reason::ServiceUnavailable => visitor.t("Service indisponible", "Service unavailable"),
        Reason::Relocated => visitor.t("A déménagé", "Moved away"),
        Reason::Other => visitor.t("Autre", "Other"),
    }
}

fn outcome_text(visitor: &Visitor, outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Achieved => visitor.t("Besoin satisfait", "Need met"),
        Outcome::PartiallyAchieved => visitor.t("Besoin en partie satisfait", "Need partly met"),
        Outcome::NotAchieved => visitor.t("Besoin non satisfait", "Need not met"),
    }
}

/// A move's button label, and what else it asks (a reason, an outcome).
fn move_label(visitor: &Visitor, action: &str) -> &'static str {
    match action {
        "accept" => visitor.t("Accepter", "Accept"),
        "decline" => visitor.t("Refuser", "Decline"),
        "start" => visitor.t("Commencer", "Start"),
        "waitlist" => visitor.t("Mettre en liste d'attente", "Waitlist"),
        "complete" => visitor.t("Terminer", "Complete"),
        "fail" => visitor.t("Signaler un échec", "Report a failure"),
        "withdraw" => visitor.t("Retirer", "Withdraw"),
        _ => visitor.t("Saisie par erreur", "Entered in error"),
    }
}

/// The moves offered: each with a placeholder reason or outcome (the form sends the one
/// chosen).
const MOVES: [(&str, Move); 8] = [
    ("accept", Move::Accept),
    (
        "decline",
        Move::Decline {
            reason: Reason::Other,
        },
    ),
    ("start", Move::Start),
    (
        "waitlist",
        Move::Waitlist {
            reason: Reason::NoCapacity,
        },
    ),
    (
        "complete",
        Move::Complete {
            outcome: Outcome::Achieved,
        },
    ),
    (
        "fail",
        Move::Fail {
            reason: Reason::Other,
        },
    ),
    (
        "withdraw",
        Move::Withdraw {
            reason: Reason::Other,
        },
    ),
    ("entered_in_error", Move::EnteredInError),
];

fn moves(visitor: &Visitor, view: &ReferralView, own: &str, now: i64) -> Markup {
    let entry = &view.entry;
    let side = if entry.sender.to_string() == own {
        Some(Side::Sender)
    } else if entry
        .receiver
        .as_ref()
        .is_some_and(|r| r.to_string() == own)
    {
        Some(Side::Receiver)
    } else {
        None
    };
    let Some(side) = side else {
        return html! {};
    };
    let csrf = visitor
        .session
        .as_ref()
        .map(|s| s.csrf.as_str())
        .unwrap_or("");
    let possible: Vec<(&str, &Move)> = MOVES
        .iter()
        .filter(|(_, m)| entry.decide(side, *m, now).is_ok())
        .map(|(name, m)| (*name, m))
        .collect();
    html! {
        @if !possible.is_empty() {
            h2 { (visitor.t("Répondre", "Answer")) }
            div.moves {
                @for (name, action) in possible {
                    form.move method="post" action={ "/referral/" (entry.id) "/move" } id={ "move-" (name) } {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="action" value=(name);
                        @match action {
                            Move::Decline { .. } | Move::Withdraw { .. } | Move::Waitlist { .. } | Move::Fail { .. } => {
                                label for={ "reason-" (name) } { (visitor.t("Motif", "Reason")) }
                                select id={ "reason-" (name) } name="reason" {
                                    @for reason in Reason::ALL {
                                        option value=(reason.code()) { (reason_text(visitor, reason)) }
                                    }
                                }
                            }
                            Move::Complete { .. } => {
                                label for="outcome" { (visitor.t("Résultat", "Outcome")) }
                                select #outcome name="outcome" {
                                    @for outcome in Outcome::ALL {
                                        option value=(outcome.code()) { (outcome_text(visitor, outcome)) }
                                    }
                                }
                            }
                            _ => {}
                        }
                        button type="submit" { (move_label(visitor, name)) }
                    }
                }
            }
        }
    }
}

fn case_file(visitor: &Visitor, view: &ReferralView) -> Markup {
    html! {
        h2 { (visitor.t("Dossier de la personne", "The person's case file")) }
        @match (&view.case_state, &view.case) {
            (CaseState::Held, Some(held)) => {
                @let c = &held.content.case_file;
                p.hint { (visitor.t(
                    "Cette lecture est inscrite au journal d'audit à votre nom.",
                    "This reading is recorded in the audit log under your name."
                )) }
                @if let Some(at) = view.destroy_at {
                    p.hint #destroy-at { (visitor.t(
                        "Ce dossier sera détruit sur ce nœud le ",
                        "This case file will be destroyed on this node on "
                    )) (date(at)) (visitor.t(
                        " (durée de conservation après clôture).",
                        " (retention after closing)."
                    )) }
                }
                @if view.intact == Some(false) {
                    p.error role="alert" { (visitor.t(
                        "Ce dossier NE CORRESPOND PAS à l'engagement inscrit au tableau.",
                        "This case file DOES NOT MATCH the board's commitment."
                    )) }
                }
                dl.profile #case-file {
                    dt { (visitor.t("Nom", "Name")) } dd #case-name { (c.name) }
                    @if let Some(sex) = &c.sex { dt { (visitor.t("Sexe", "Sex")) } dd { (sex) } }
                    @if let Some(year) = c.birth_year { dt { (visitor.t("Année de naissance", "Year of birth")) } dd { (year) } }
                    @if let Some(phone) = &c.phone { dt { (visitor.t("Téléphone", "Phone")) } dd { (phone) } }
                    @if !c.languages.is_empty() { dt { (visitor.t("Langues", "Languages")) } dd { (c.languages.join(", ")) } }
                    @if let Some(location) = &c.location { dt { (visitor.t("Où la trouver", "Where")) } dd { (location) } }
                    @if !c.needs.is_empty() { dt { (visitor.t("Besoins", "Needs")) } dd { (super::directory::categories_text(visitor, &c.needs)) } }
                    @if let Some(notes) = &c.notes { dt { (visitor.t("Notes", "Notes")) } dd { (notes) } }
                    dt { (visitor.t("Consentement", "Consent")) }
                    dd {
                        @match &held.content.consent {
                            ConsentRecord::Given(given) => {
                                (format!("{:?}", given.method).to_lowercase()) ", " (date(given.given_at)) " — " (given.data.join(", "))
                            }
                            ConsentRecord::Override { reason, at } => {
                                strong { (visitor.t("Dérogation", "Override")) } " (" (date(*at)) ") : " (reason)
                            }
                        }
                    }
                }
            }
            (CaseState::NotReceived, _) => p { (visitor.t(
                "Pas encore reçu (le nœud qui l'envoie réessaie jusqu'à la livraison).",
                "Not received yet (the sending node retries until it is delivered)."
            )) },
            (CaseState::Erased, _) => p { (visitor.t("Effacé sur ce nœud.", "Erased on this node.")) },
            (CaseState::RetentionExpired, _) => p { (visitor.t(
                "Accès terminé (durée de conservation après clôture) ; effacé sur ce nœud.",
                "Access ended (retention after closing); erased on this node."
            )) },
            _ => p id="no-case-file" { (visitor.t(
                "Pas sur ce nœud : seules les deux organisations d'une orientation détiennent le dossier.",
                "Not on this node: only the two organisations of a referral hold the case file."
            )) },
        }
    }
}

/// An open referral (no receiver yet): another member's officer proposes one of its
/// services that offers the category; the sender's officer assigns it to a proposer.
fn open_referral(
    visitor: &Visitor,
    view: &ReferralView,
    own: &str,
    services: &[(String, String)],
) -> Markup {
    let entry = &view.entry;
    if !entry.open
        || entry.receiver.is_some()
        || entry.status != passerelle_node::referral::lifecycle::Status::Pending
    {
        return html! {};
    }
    let csrf = visitor
        .session
        .as_ref()
        .map(|s| s.csrf.as_str())
        .unwrap_or("");
    let sender = entry.sender.to_string() == own;
    let name = |org: &passerelle_node::identity::OrgId| {
        view.names
            .get(org)
            .cloned()
            .unwrap_or_else(|| org.to_string())
    };
    html! {
        h2 { (visitor.t("Orientation ouverte : propositions", "Open referral: offers")) }
        @if entry.proposals.is_empty() { p { (visitor.t("Aucune proposition pour l'instant.", "No offer yet.")) } }
        ul.proposals {
            @for proposal in &entry.proposals {
                li {
                    (name(&proposal.org)) " — " code { (proposal.service) }
                    @if sender {
                        form.assign method="post" action={ "/referral/" (entry.id) "/assign" } {
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="org" value=(proposal.org);
                            button type="submit" { (visitor.t("Confier à cette organisation", "Assign to this organisation")) }
                        }
                    }
                }
            }
        }
        @if !sender && !services.is_empty() {
            form.propose method="post" action={ "/referral/" (entry.id) "/propose" } {
                input type="hidden" name="csrf" value=(csrf);
                label for="service" { (visitor.t("Proposer un de nos services", "Offer one of our services")) }
                select #service name="service" {
                    @for (id, service) in services { option value=(id) { (service) } }
                }
                button type="submit" { (visitor.t("Proposer", "Offer")) }
            }
        }
    }
}

/// `GET /referral/{id}`.
pub async fn show(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let visitor = match app.require(&headers, Role::Officer) {
        Ok(v) => v,
        Err(answer) => return *answer,
    };
    let Ok(id) = id.parse::<ReferralId>() else {
        return super::not_found(State(app), headers).await;
    };
    let view: ReferralView = match local_call(
        &app.handle,
        api::ReferralShow { id, operator: None },
        &visitor.by(),
    )
    .await
    {
        Ok(view) => view,
        Err(e) => return failure(&visitor, &e),
    };
    let now = passerelle_node::unix_now();
    let own = app.handle.org_id().to_string();
    let entry = &view.entry;
    // This organisation's services that could take an open referral.
    let mut offers = Vec::new();
    if entry.open && entry.receiver.is_none() && entry.sender.to_string() != own {
        match local_call(&app.handle, api::Organisation { org: None }, &visitor.by()).await {
            Ok(mine) => {
                let mine: passerelle_node::node::OrganisationView = mine;
                offers = mine
                    .record
                    .services
                    .iter()
                    .filter(|(_, s)| s.categories.contains(&entry.category))
                    .map(|(id, s)| (id.clone(), s.name.clone()))
                    .collect();
            }
            Err(e) => return failure(&visitor, &e),
        }
    }
    let name = |org: &passerelle_node::identity::OrgId| {
        view.names
            .get(org)
            .cloned()
            .unwrap_or_else(|| org.to_string())
    };
    let csrf = visitor
        .session
        .as_ref()
        .map(|s| s.csrf.as_str())
        .unwrap_or("");
    let body = html! {
        dl.profile {
            dt { (visitor.t("Statut", "Status")) } dd #status { (status_text(&visitor, entry.status)) }
            dt { (visitor.t("De", "From")) } dd { (name(&entry.sender)) }
            dt { (visitor.t("Vers", "To")) }
            dd { @match &entry.receiver { Some(org) => (name(org)), None => em { (visitor.t("ouverte", "open")) } } }
            dt { (visitor.t("Réponse attendue avant", "Answer due")) } dd { (date(entry.deadline)) }
        }
        (moves(&visitor, &view, &own, now))
        (open_referral(&visitor, &view, &own, &offers))
        (case_file(&visitor, &view))
        @if matches!(view.case_state, CaseState::Held) {
            form.erase method="post" action={ "/referral/" (entry.id) "/erase" }
                data-confirm=(visitor.t("Effacer ce dossier sur ce nœud ?", "Erase this case file on this node?")) {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { (visitor.t("Effacer le dossier", "Erase the case file")) }
            }
        }
        h2 { (visitor.t("Historique", "History")) }
        ol.history {
            @for line in &entry.history {
                li {
                    (date(line.at)) " — " (status_text(&visitor, line.status))
                    @if line.clock.is_some() {
                        " " strong.flag { (visitor.t("(datée avant une étape que son auteur avait déjà vue)", "(dated before a step its author had already seen)")) }
                    }
                    @if line.arrival.is_some() {
                        " " strong.flag { (visitor.t("(arrivée sur ce nœud loin de sa date)", "(reached this node far from its date)")) }
                    }
                }
            }
        }
    };
    (
        // A case-file page is never kept by the browser or a proxy.
        [(header::CACHE_CONTROL, "no-store, private")],
        page(
            &visitor,
            &format!("{} {}", visitor.t("Orientation", "Referral"), entry.id),
            body,
        ),
    )
        .into_response()
}

/// Asks the node `make(id)` for an officer's form about referral `id` (`None`: the form
/// names nothing the node knows), then shows the referral — or why not.
async fn act<C>(
    app: App,
    headers: HeaderMap,
    csrf: &str,
    id: &str,
    make: impl FnOnce(ReferralId) -> Option<C>,
) -> Response
where
    C: passerelle_node::api::Call,
{
    let id = id.parse::<ReferralId>().ok();
    let back = id.map_or_else(|| "/board".to_owned(), |id| format!("/referral/{id}"));
    super::submit(app, headers, Role::Officer, csrf, id.and_then(make), &back).await
}

#[derive(Deserialize)]
pub struct MoveForm {
    csrf: String,
    action: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    outcome: String,
}

/// `POST /referral/{id}/move`.
pub async fn step(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<MoveForm>,
) -> Response {
    let reason = form.reason.parse::<Reason>().unwrap_or(Reason::Other);
    let outcome = form.outcome.parse::<Outcome>().unwrap_or(Outcome::Achieved);
    let action = match form.action.as_str() {
        "accept" => Some(Move::Accept),
        "decline" => Some(Move::Decline { reason }),
        "start" => Some(Move::Start),
        "waitlist" => Some(Move::Waitlist { reason }),
        "complete" => Some(Move::Complete { outcome }),
        "fail" => Some(Move::Fail { reason }),
        "withdraw" => Some(Move::Withdraw { reason }),
        "entered_in_error" => Some(Move::EnteredInError),
        _ => None,
    };
    act(app, headers, &form.csrf, &id, |id| {
        action.map(|action| api::ReferralMove {
            id,
            action,
            operator: None,
        })
    })
    .await
}

#[derive(Deserialize)]
pub struct EraseForm {
    csrf: String,
}

/// `POST /referral/{id}/erase`.
pub async fn erase(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<EraseForm>,
) -> Response {
    act(app, headers, &form.csrf, &id, |id| {
        Some(api::ReferralErase { id, operator: None })
    })
    .await
}

#[derive(Deserialize)]
pub struct ProposeForm {
    csrf: String,
    service: String,
}

/// `POST /referral/{id}/propose`: offer one of this organisation's services.
pub async fn propose(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ProposeForm>,
) -> Response {
    let service = form.service.parse().ok();
    act(app, headers, &form.csrf, &id, |id| {
        service.map(|service| api::ReferralPropose {
            id,
            service,
            operator: None,
        })
    })
    .await
}

#[derive(Deserialize)]
pub struct AssignForm {
    csrf: String,
    org: String,
}

/// `POST /referral/{id}/assign`: the sender gives its open referral to a proposer.
pub async fn assign(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<AssignForm>,
) -> Response {
    let org = form.org.parse().ok();
    act(app, headers, &form.csrf, &id, |id| {
        org.map(|org| api::ReferralAssign {
            id,
            org,
            operator: None,
        })
    })
    .await
}
