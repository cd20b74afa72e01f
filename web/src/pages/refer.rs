//! Referring a returnee: find services for the person's needs (match), then send the
//! referral with its case file and the person's consent (or an override and its reason).
//! Officers and admins only.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use passerelle_node::accounts::Role;
use passerelle_node::api;
use passerelle_node::control::local_call;
use passerelle_node::identity::OrgId;
use passerelle_node::ids::ServiceId;
use passerelle_node::node::{ReferralReceipt, SendReferral};
use passerelle_node::reference::{areas, languages, taxonomy};
use passerelle_node::referral::board::Priority;
use passerelle_node::referral::casefile::{
    CaseFile, Consent, ConsentMethod, ConsentRecord, FIELDS,
};
use passerelle_node::referral::matching::{MatchQuery, ServiceMatch};
use serde::Deserialize;

use super::directory::{area_text, capacity_text, categories_text, cost_text};
use super::{Visitor, check_csrf, failure, field, fields, page};
use crate::App;

/// A case-file field in words.
fn field_label(visitor: &Visitor, field: &str) -> String {
    match field {
        "name" => visitor.t("Nom", "Name"),
        "sex" => visitor.t("Sexe", "Sex"),
        "birth_year" => visitor.t("Année de naissance", "Year of birth"),
        "age" => visitor.t("Âge", "Age"),
        "phone" => visitor.t("Téléphone", "Phone"),
        "languages" => visitor.t("Langues", "Languages"),
        "location" => visitor.t("Où la trouver", "Where to find the person"),
        "needs" => visitor.t("Besoins", "Needs"),
        "vulnerabilities" => visitor.t("Vulnérabilités", "Vulnerabilities"),
        "notes" => visitor.t("Notes", "Notes"),
        other => other,
    }
    .to_owned()
}

/// What the match form sends (several `need`s).
#[derive(Debug, Default)]
pub struct Needs {
    needs: Vec<String>,
    region: String,
    language: String,
    max_fee: String,
}

impl Needs {
    fn read(query: &[(String, String)]) -> Self {
        let mut needs = Self::default();
        for (key, value) in query {
            match key.as_str() {
                "need" if taxonomy::category(value).is_some() => needs.needs.push(value.clone()),
                "region" => needs.region = value.clone(),
                "language" => needs.language = value.clone(),
                "max_fee" => needs.max_fee = value.clone(),
                _ => {}
            }
        }
        needs
    }
}

fn needs_form(visitor: &Visitor, needs: &Needs) -> Markup {
    html! {
        form.search method="get" action="/refer" {
            fieldset.needs {
                legend { (visitor.t("Besoins de la personne", "The person's needs")) }
                @for dimension in [taxonomy::Dimension::Economic, taxonomy::Dimension::Social, taxonomy::Dimension::Psychosocial] {
                    div.group {
                        strong { (dimension.label(visitor.lang)) }
                        @for category in taxonomy::CATEGORIES.iter().filter(|c| c.dimension == dimension) {
                            div.check {
                                input type="checkbox" name="need" value=(category.code)
                                    id={ "need-" (category.code) }
                                    checked[needs.needs.iter().any(|n| n == category.code)];
                                label for={ "need-" (category.code) } { (category.label(visitor.lang)) }
                            }
                        }
                    }
                }
            }
            div.field {
                label for="region" { (visitor.t("Région où se trouve la personne", "Region where the person is")) }
                select #region name="region" required {
                    option value="" { "—" }
                    @for region in areas::REGIONS {
                        option value=(region.pcode) selected[needs.region == region.pcode] { (region.name(visitor.lang)) }
                    }
                }
            }
            div.field {
                label for="language" { (visitor.t("Langue parlée", "Language spoken")) }
                input #language type="text" name="language" value=(needs.language);
            }
            div.field {
                label for="max_fee" { (visitor.t("Coût maximum (FCFA)", "Highest fee (FCFA)")) }
                input #max_fee type="number" min="0" name="max_fee" value=(needs.max_fee);
            }
            button type="submit" { (visitor.t("Trouver des services", "Find services")) }
        }
    }
}

/// `GET /refer`: the needs, then the services that meet them, best first.
pub async fn find(
    State(app): State<App>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let visitor = match app.require(&headers, Role::Officer) {
        Ok(v) => v,
        Err(answer) => return *answer,
    };
    let needs = Needs::read(&query);
    let title = visitor.t("Orienter une personne", "Refer a person");
    if needs.needs.is_empty() || needs.region.is_empty() {
        return page(&visitor, title, needs_form(&visitor, &needs)).into_response();
    }
    let language = match needs.language.trim() {
        "" => None,
        text => match languages::code_of(text) {
            Ok(code) => Some(code),
            Err(why) => {
                return page(
                    &visitor,
                    title,
                    html! {
                        (needs_form(&visitor, &needs))
                        p.error role="alert" { (visitor.t("Langue", "Language")) " : " (why.message(visitor.lang)) }
                    },
                )
                .into_response();
            }
        },
    };
    let query = MatchQuery {
        needs: needs.needs.clone(),
        region: Some(needs.region.clone()),
        max_fee_xaf: needs.max_fee.trim().parse().ok(),
        language,
        ..Default::default()
    };
    let found: Vec<ServiceMatch> =
        match local_call(&app.handle, api::ReferralMatch { query }, &visitor.by()).await {
            Ok(found) => found,
            Err(e) => return failure(&visitor, &e),
        };
    let own = app.handle.org_id();
    let needs_query: String = needs.needs.iter().map(|n| format!("&need={n}")).collect();
    page(
        &visitor,
        title,
        html! {
            (needs_form(&visitor, &needs))
            p.count role="status" id="match-count" {
                (found.len()) " " (visitor.t("service(s) correspondant(s)", "matching service(s)"))
            }
            p {
                a.open-referral href={ "/refer/send?region=" (needs.region) (needs_query) } {
                    (visitor.t(
                        "Ou envoyer une orientation ouverte : tout membre qui offre ce besoin dans la région peut proposer un service",
                        "Or send an open referral: any member offering this need in the region may offer a service"
                    ))
                }
            }
            @if !found.is_empty() {
                table.results.matches {
                    (super::head_row(&visitor, &[("Service", "Service"), ("Organisation", "Organisation"), ("Couvre", "Covers"), ("Zone", "Area"), ("Coût", "Cost"), ("Capacité", "Capacity"), ("", "")]))
                    tbody {
                        @for found in &found {
                            tr {
                                td { (found.hit.service.name) }
                                td { (found.hit.org_name) }
                                td { (categories_text(&visitor, &found.covers)) }
                                td { (area_text(&visitor, &found.hit.service.service_area)) }
                                td { (cost_text(&visitor, &found.hit.service.cost)) }
                                td { (capacity_text(&visitor, &found.hit.service.capacity)) }
                                td {
                                    @if found.hit.org_id != own.to_string() {
                                        a.refer href={ "/refer/send?org=" (found.hit.org_id) "&service=" (found.hit.service_id) "&region=" (needs.region) (needs_query) } {
                                            (visitor.t("Orienter", "Refer"))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

/// Which service the referral goes to.
#[derive(Debug, Deserialize)]
pub struct Target {
    org: String,
    service: String,
    region: String,
}

fn send_form(
    visitor: &Visitor,
    csrf: &str,
    target: &Target,
    (service_name, org_name): (&str, &str),
    needs: &[String],
    typed: &[(String, String)],
    error: Option<&str>,
) -> Markup {
    let today = super::board::date(passerelle_node::unix_now());
    let today = today.get(..10).unwrap_or("");
    // Shown again as typed when something was refused: nothing is lost.
    let v = |key: &str| field(typed, key);
    let first = typed.is_empty();
    let shared = fields(typed, "share");
    let consent_date = if first {
        today.to_owned()
    } else {
        v("consent_date")
    };
    let respond_days = if first {
        "7".to_owned()
    } else {
        v("respond_days")
    };
    html! {
        p.target { (visitor.t("Vers", "To")) " : " strong { (service_name) } " — " (org_name) }
        @if let Some(error) = error { p.error role="alert" id="send-error" { (error) } }
        form.referral method="post" action="/refer/send" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="org" value=(target.org);
            input type="hidden" name="service" value=(target.service);
            input type="hidden" name="region" value=(target.region);
            @for need in needs { input type="hidden" name="need" value=(need); }
            fieldset {
                legend { (visitor.t("La personne (dossier chiffré, envoyé à cette seule organisation)", "The person (case file, encrypted, sent to this organisation only)")) }
                label for="name" { (visitor.t("Nom complet", "Full name")) }
                input #name type="text" name="name" required autocomplete="off" value=(v("name"));
                label for="sex" { (visitor.t("Sexe", "Sex")) }
                select #sex name="sex" {
                    option value="" { "—" }
                    @for (value, text) in [("female", visitor.t("Femme", "Female")), ("male", visitor.t("Homme", "Male")), ("other", visitor.t("Autre", "Other"))] {
                        option value=(value) selected[v("sex") == value] { (text) }
                    }
                }
                label for="birth_year" { (visitor.t("Année de naissance", "Year of birth")) }
                input #birth_year type="number" name="birth_year" min="1900" max="2100" value=(v("birth_year"));
                label for="phone" { (visitor.t("Téléphone", "Phone")) }
                input #phone type="tel" name="phone" autocomplete="off" value=(v("phone"));
                label for="languages" { (visitor.t("Langues parlées", "Languages spoken")) }
                input #languages type="text" name="languages" value=(v("languages"));
                label for="location" { (visitor.t("Où la trouver (ville, quartier)", "Where to find the person (town, quarter)")) }
                input #location type="text" name="location" value=(v("location"));
                label for="notes" { (visitor.t("Notes pour l'organisation qui reçoit", "Notes for the receiving organisation")) }
                textarea #notes name="notes" rows="3" { (v("notes")) }
            }
            fieldset {
                legend { (visitor.t("Consentement", "Consent")) }
                label for="consent" { (visitor.t("Comment la personne a consenti", "How the person consented")) }
                select #consent name="consent" {
                    @for (value, text) in [
                        ("verbal", visitor.t("Oralement", "Verbally")),
                        ("written", visitor.t("Formulaire signé", "Signed form")),
                        ("digital", visitor.t("Formulaire ou message numérique", "Digital form or message")),
                        ("guardian", visitor.t("Par un parent ou tuteur", "By a parent or guardian")),
                        ("override", visitor.t("Sans consentement (dérogation, avec motif)", "Without consent (override, with a reason)")),
                    ] {
                        option value=(value) selected[v("consent") == value] { (text) }
                    }
                }
                label for="consent_date" { (visitor.t("Date du consentement", "Date of consent")) }
                input #consent_date type="date" name="consent_date" value=(consent_date);
                p { (visitor.t("Champs que la personne accepte de partager :", "Fields the person agrees to share:")) }
                div.share {
                    @for field in FIELDS {
                        div.check {
                            input type="checkbox" name="share" value=(field) id={ "share-" (field) }
                                checked[first || shared.iter().any(|s| s == field)];
                            label for={ "share-" (field) } { (field_label(visitor, field)) }
                        }
                    }
                }
                label for="override_reason" { (visitor.t("Motif de la dérogation (seulement si la loi le permet)", "Reason for the override (only where the law allows it)")) }
                input #override_reason type="text" name="override_reason" value=(v("override_reason"));
            }
            fieldset {
                legend { (visitor.t("Orientation", "Referral")) }
                label for="priority" { (visitor.t("Priorité", "Priority")) }
                select #priority name="priority" {
                    option value="routine" { (visitor.t("Normale", "Routine")) }
                    option value="urgent" selected[v("priority") == "urgent"] { (visitor.t("Urgente", "Urgent")) }
                }
                label for="respond_days" { (visitor.t("Réponse attendue sous", "Answer expected within")) }
                select #respond_days name="respond_days" {
                    @for days in ["2", "7", "14"] {
                        option value=(days) selected[respond_days == days] { (days) " " (visitor.t("jours", "days")) }
                    }
                }
            }
            button type="submit" { (visitor.t("Envoyer l'orientation", "Send the referral")) }
        }
    }
}

/// The names of a service and of its organisation, asked of the node (an open referral:
/// no service yet).
async fn names_of(
    app: &App,
    visitor: &Visitor,
    target: &Target,
) -> Result<(String, String), Response> {
    if target.org.is_empty() && target.service.is_empty() {
        return Ok((
            visitor.t("Orientation ouverte", "Open referral").to_owned(),
            visitor
                .t(
                    "tout membre qui offre ce besoin dans la région",
                    "any member offering this need in the region",
                )
                .to_owned(),
        ));
    }
    let org: OrgId = target
        .org
        .parse()
        .map_err(|_| (StatusCode::BAD_REQUEST, "org").into_response())?;
    let view: passerelle_node::node::OrganisationView = local_call(
        &app.handle,
        api::Organisation { org: Some(org) },
        &visitor.by(),
    )
    .await
    .map_err(|e| failure(visitor, &e))?;
    let service = view
        .record
        .services
        .get(&target.service)
        .map(|s| s.name.clone())
        .ok_or_else(|| {
            failure(
                visitor,
                &passerelle_node::api::ApiError::new(
                    passerelle_node::api::ErrorKind::NotFound,
                    format!(
                        "{}: {}",
                        target.service,
                        visitor.t("service introuvable", "no such service")
                    ),
                ),
            )
        })?;
    Ok((service, view.record.profile.name))
}

/// `GET /refer/send?org=&service=&region=&need=…`: the referral form.
pub async fn form(
    State(app): State<App>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let visitor = match app.require(&headers, Role::Officer) {
        Ok(v) => v,
        Err(answer) => return *answer,
    };
    let value = |key: &str| field(&query, key);
    let target = Target {
        org: value("org"),
        service: value("service"),
        region: value("region"),
    };
    let needs = Needs::read(&query).needs;
    let (service, org) = match names_of(&app, &visitor, &target).await {
        Ok(names) => names,
        Err(answer) => return answer,
    };
    let csrf = visitor
        .session
        .as_ref()
        .map(|s| s.csrf.clone())
        .unwrap_or_default();
    page(
        &visitor,
        visitor.t("Envoyer une orientation", "Send a referral"),
        send_form(
            &visitor,
            &csrf,
            &target,
            (&service, &org),
            &needs,
            &[],
            None,
        ),
    )
    .into_response()
}

/// `POST /refer/send`.
pub async fn send(
    State(app): State<App>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let visitor = match app.require(&headers, Role::Officer) {
        Ok(v) => v,
        Err(answer) => return *answer,
    };
    let value = |key: &str| field(&pairs, key);
    let all = |key: &str| fields(&pairs, key);
    if let Err(refused) = check_csrf(&visitor, &value("csrf")) {
        return *refused;
    }
    let target = Target {
        org: value("org"),
        service: value("service"),
        region: value("region"),
    };
    let needs = all("need");
    let refused = |error: String, names: (String, String)| {
        let csrf = visitor
            .session
            .as_ref()
            .map(|s| s.csrf.clone())
            .unwrap_or_default();
        (
            StatusCode::BAD_REQUEST,
            page(
                &visitor,
                visitor.t("Envoyer une orientation", "Send a referral"),
                send_form(
                    &visitor,
                    &csrf,
                    &target,
                    (&names.0, &names.1),
                    &needs,
                    &pairs,
                    Some(&error),
                ),
            ),
        )
            .into_response()
    };
    let names = match names_of(&app, &visitor, &target).await {
        Ok(names) => names,
        Err(answer) => return answer,
    };
    let now = passerelle_node::unix_now();
    let optional = |key: &str| Some(value(key)).filter(|v| !v.is_empty());
    let case_file = CaseFile {
        name: value("name"),
        sex: optional("sex"),
        birth_year: optional("birth_year").and_then(|y| y.parse().ok()),
        phone: optional("phone"),
        languages: value("languages")
            .split([',', ';', '/'])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        location: optional("location"),
        needs: needs.clone(),
        notes: optional("notes"),
        ..CaseFile::default()
    };
    // A direct referral names the organisation and its service; an open one neither.
    let (to, service) = if target.org.is_empty() && target.service.is_empty() {
        (None, None)
    } else {
        match (
            target.org.parse::<OrgId>(),
            target.service.parse::<ServiceId>(),
        ) {
            (Ok(to), Ok(service)) => (Some(to), Some(service)),
            _ => {
                return refused(
                    visitor.t("Service inconnu.", "Unknown service.").into(),
                    names,
                );
            }
        }
    };
    if needs.is_empty() {
        return refused(
            visitor
                .t(
                    "Choisissez au moins un besoin.",
                    "Choose at least one need.",
                )
                .into(),
            names,
        );
    }
    let consent = match value("consent").as_str() {
        "override" => match optional("override_reason") {
            Some(reason) => ConsentRecord::Override { reason, at: now },
            None => {
                return refused(
                    visitor
                        .t(
                            "Une dérogation au consentement exige son motif.",
                            "An override of consent needs its reason.",
                        )
                        .into(),
                    names,
                );
            }
        },
        method => {
            let method = match method {
                "written" => ConsentMethod::Written,
                "digital" => ConsentMethod::Digital,
                "guardian" => ConsentMethod::Guardian,
                _ => ConsentMethod::Verbal,
            };
            let given_at = optional("consent_date")
                .and_then(|d| humantime::parse_rfc3339_weak(&format!("{d} 00:00:00")).ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(now, |d| d.as_secs() as i64);
            ConsentRecord::Given(Consent {
                method,
                given_at,
                expires_at: None,
                organisation: to,
                service: service.as_ref().map(ToString::to_string),
                data: all("share"),
            })
        }
    };
    let send = SendReferral {
        to,
        service,
        category: needs.first().cloned(),
        region: target.region.clone(),
        priority: if value("priority") == "urgent" {
            Priority::Urgent
        } else {
            Priority::Routine
        },
        respond_within: value("respond_days")
            .parse::<i64>()
            .unwrap_or(7)
            .clamp(1, 60)
            * 86_400,
        case_file,
        consent,
    };
    match local_call::<api::ReferralSend>(
        &app.handle,
        api::ReferralSend {
            send: Box::new(send),
            operator: None,
        },
        &visitor.by(),
    )
    .await
    {
        Ok(ReferralReceipt { id, .. }) => Redirect::to(&format!("/referral/{id}")).into_response(),
        Err(e) => refused(e.message_in(visitor.lang).to_owned(), names),
    }
}
