//! Adding, changing and removing this organisation's services (admins). The form shows every
//! field of a service; what an admin typed is kept when something in it is refused, with the
//! field, the value and what is accepted. A change sends only the fields that differ, as one
//! signed edit.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use passerelle_node::accounts::Role;
use passerelle_node::api;
use passerelle_node::document::Edit;
use passerelle_node::model::{
    Capacity, CapacityStatus, Contact, Cost, Office, Service, ServiceArea, ServiceStatus,
};
use passerelle_node::reference::{areas, languages, taxonomy};

use super::{check_box, department_select, own_record};
use crate::App;
use crate::pages::{Visitor, field, fields, page};

/// A service as the form holds it: the text of each field, as shown or as typed.
#[derive(Debug, Default)]
pub struct ServiceForm {
    name: String,
    description: String,
    dimension: String,
    categories: Vec<String>,
    eligibility: String,
    cost: String,
    fee: String,
    capacity: String,
    places: String,
    languages: String,
    regions: Vec<String>,
    departments: Vec<String>,
    offices: Vec<String>,
    schedule: String,
    documents: String,
    status: String,
    contact_name: String,
    contact_title: String,
    contact_email: String,
    contact_phone: String,
}

/// The code a value is written as (its serde name: `waitlist`, `temporarily_closed`).
pub(super) fn code<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl ServiceForm {
    fn of(service: &Service) -> Self {
        let contact = service.contact.clone().unwrap_or_default();
        Self {
            name: service.name.clone(),
            description: service.description.clone().unwrap_or_default(),
            dimension: service.dimension.code().to_owned(),
            categories: service.categories.clone(),
            eligibility: service.eligibility.clone().unwrap_or_default(),
            cost: service.cost.kind().to_owned(),
            fee: match service.cost {
                Cost::Fee { amount_xaf } => amount_xaf.to_string(),
                _ => String::new(),
            },
            capacity: code(&service.capacity.status),
            places: service
                .capacity
                .places
                .map(|n| n.to_string())
                .unwrap_or_default(),
            languages: service.languages.join(", "),
            regions: service.service_area.regions.clone(),
            departments: service.service_area.departments.clone(),
            offices: service.offices.clone(),
            schedule: service.schedule.clone().unwrap_or_default(),
            documents: service.required_documents.join("\n"),
            status: code(&service.status),
            contact_name: contact.name.unwrap_or_default(),
            contact_title: contact.title.unwrap_or_default(),
            contact_email: contact.email.unwrap_or_default(),
            contact_phone: contact.phone.unwrap_or_default(),
        }
    }

    fn read(pairs: &[(String, String)]) -> Self {
        let value = |key: &str| field(pairs, key);
        Self {
            name: value("name"),
            description: value("description"),
            dimension: value("dimension"),
            categories: fields(pairs, "category"),
            eligibility: value("eligibility"),
            cost: value("cost"),
            fee: value("fee"),
            capacity: value("capacity"),
            places: value("places"),
            languages: value("languages"),
            regions: fields(pairs, "region"),
            departments: fields(pairs, "department"),
            offices: fields(pairs, "office"),
            schedule: value("schedule"),
            documents: value("documents"),
            status: value("status"),
            contact_name: value("contact_name"),
            contact_title: value("contact_title"),
            contact_email: value("contact_email"),
            contact_phone: value("contact_phone"),
        }
    }

    /// The service the form describes, or what is wrong: the field, the value and what is
    /// accepted. The node checks the rest (lengths, codes, offices) when it is sent.
    fn service(&self, visitor: &Visitor) -> Result<Service, String> {
        let wrong = |label: (&str, &str), value: &str, why: &str| {
            format!("{} : « {value} » — {why}", visitor.t(label.0, label.1))
        };
        let optional = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
        if self.name.trim().is_empty() {
            return Err(visitor
                .t("Nom du service : obligatoire", "Service name: required")
                .to_owned());
        }
        let dimension = taxonomy::Dimension::ALL
            .into_iter()
            .find(|d| d.code() == self.dimension)
            .ok_or_else(|| {
                wrong(
                    ("Dimension", "Dimension"),
                    &self.dimension,
                    visitor.t(
                        "choisissez économique, sociale ou psychosociale",
                        "choose economic, social or psychosocial",
                    ),
                )
            })?;
        let cost = match self.cost.as_str() {
            "free" => Cost::Free,
            "cost_shared" => Cost::CostShared,
            "fee" => Cost::Fee {
                amount_xaf: amount(&self.fee).ok_or_else(|| {
                    wrong(
                        ("Montant (FCFA)", "Amount (XAF)"),
                        &self.fee,
                        visitor.t(
                            "un nombre entier de francs CFA supérieur à zéro, par ex. 5000",
                            "a whole number of CFA francs above zero, e.g. 5000",
                        ),
                    )
                })?,
            },
            other => {
                return Err(wrong(
                    ("Coût", "Cost"),
                    other,
                    visitor.t(
                        "choisissez gratuit, partage des coûts ou payant",
                        "choose free, cost shared or fee",
                    ),
                ));
            }
        };
        let status: CapacityStatus = self.capacity.parse().map_err(|_| {
            wrong(
                ("Capacité", "Capacity"),
                &self.capacity,
                visitor.t(
                    "choisissez places disponibles, liste d'attente ou complet",
                    "choose available, waiting list or full",
                ),
            )
        })?;
        let places = match self.places.trim() {
            "" => None,
            text => Some(text.parse::<u32>().map_err(|_| {
                wrong(
                    ("Places", "Places"),
                    text,
                    visitor.t(
                        "un nombre entier, 0 ou plus (ou rien si vous ne savez pas)",
                        "a whole number, 0 or more (or nothing if not known)",
                    ),
                )
            })?),
        };
        let mut codes = Vec::new();
        for written in self.languages.split([',', ';', '/']).map(str::trim) {
            if written.is_empty() {
                continue;
            }
            let code = languages::code_of(written).map_err(|why| {
                wrong(
                    ("Langues", "Languages"),
                    written,
                    &why.message(visitor.lang),
                )
            })?;
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        let status_of_service = match self.status.as_str() {
            "" => ServiceStatus::Active,
            written => written.parse().map_err(|_| {
                wrong(
                    ("État du service", "Service status"),
                    written,
                    visitor.t(
                        "choisissez actif, arrêté ou fermé temporairement",
                        "choose active, stopped or temporarily closed",
                    ),
                )
            })?,
        };
        let contact = Contact {
            name: optional(&self.contact_name),
            title: optional(&self.contact_title),
            email: optional(&self.contact_email),
            phone: optional(&self.contact_phone),
        };
        let has_contact = contact.name.is_some()
            || contact.title.is_some()
            || contact.email.is_some()
            || contact.phone.is_some();
        Ok(Service {
            name: self.name.trim().to_owned(),
            description: optional(&self.description),
            dimension,
            categories: self.categories.clone(),
            eligibility: optional(&self.eligibility),
            cost,
            capacity: Capacity { status, places },
            languages: codes,
            service_area: ServiceArea {
                regions: self.regions.clone(),
                departments: self.departments.clone(),
            },
            offices: self.offices.clone(),
            schedule: optional(&self.schedule),
            required_documents: self
                .documents
                .lines()
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
                .collect(),
            contact: has_contact.then_some(contact),
            status: status_of_service,
            last_update: 0,
        })
    }
}

/// An amount in XAF as people write it: "5000", "5 000", "5.000 FCFA".
fn amount(text: &str) -> Option<u64> {
    let digits: String = text
        .to_lowercase()
        .replace("fcfa", "")
        .replace("xaf", "")
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '.' && *c != '\u{202f}')
        .collect();
    digits.parse::<u64>().ok().filter(|&n| n > 0)
}

fn text_field(id: &str, label: &str, value: &str, required: bool) -> Markup {
    html! {
        div.field {
            label for=(id) { (label) @if required { " *" } }
            input id=(id) name=(id) type="text" value=(value) required[required];
        }
    }
}

fn choice(id: &str, label: &str, chosen: &str, options: &[(&str, &str)]) -> Markup {
    html! {
        div.field {
            label for=(id) { (label) }
            select id=(id) name=(id) {
                @for (value, text) in options {
                    option value=(value) selected[*value == chosen] { (text) }
                }
            }
        }
    }
}

/// The form, filled with `form`; `action` is where it is posted.
fn service_form(
    visitor: &Visitor,
    action: &str,
    form: &ServiceForm,
    offices: &[(String, Office)],
    error: Option<&str>,
) -> Markup {
    let csrf = visitor
        .session
        .as_ref()
        .map(|s| s.csrf.as_str())
        .unwrap_or("");
    let lang = visitor.lang;
    html! {
        @if let Some(error) = error { p.error role="alert" id="form-error" { (error) } }
        form.edit method="post" action=(action) id="service-form" {
            input type="hidden" name="csrf" value=(csrf);
            fieldset {
                legend { (visitor.t("Le service", "The service")) }
                (text_field("name", visitor.t("Nom du service", "Service name"), &form.name, true))
                div.field {
                    label for="description" { (visitor.t("Description", "Description")) }
                    textarea id="description" name="description" rows="3" { (form.description) }
                }
                (choice("dimension", visitor.t("Dimension", "Dimension"), &form.dimension,
                    &taxonomy::Dimension::ALL.map(|d| (d.code(), d.label(lang)))))
                (choice("status", visitor.t("État du service", "Service status"), &form.status, &[
                    ("active", visitor.t("Actif", "Active")),
                    ("temporarily_closed", visitor.t("Fermé temporairement", "Temporarily closed")),
                    ("inactive", visitor.t("Arrêté", "Stopped")),
                ]))
            }
            fieldset.needs {
                legend { (visitor.t("Catégories", "Categories")) }
                @for dimension in taxonomy::Dimension::ALL {
                    div.group {
                        p { strong { (dimension.label(lang)) } }
                        @for category in taxonomy::CATEGORIES.iter().filter(|c| c.dimension == dimension) {
                            (check_box("category", category.code, category.label(lang), form.categories.iter().any(|c| c == category.code)))
                        }
                    }
                }
            }
            fieldset {
                legend { (visitor.t("Accès", "Access")) }
                (text_field("eligibility", visitor.t("Pour qui", "Who may use it"), &form.eligibility, false))
                (choice("cost", visitor.t("Coût", "Cost"), &form.cost, &[
                    ("free", visitor.t("Gratuit", "Free")),
                    ("cost_shared", visitor.t("Partage des coûts", "Cost shared")),
                    ("fee", visitor.t("Payant", "Fee")),
                ]))
                (text_field("fee", visitor.t("Montant si payant (FCFA)", "Amount if a fee (XAF)"), &form.fee, false))
                (choice("capacity", visitor.t("Capacité", "Capacity"), &form.capacity, &[
                    ("available", visitor.t("Places disponibles", "Available")),
                    ("waitlist", visitor.t("Liste d'attente", "Waiting list")),
                    ("full", visitor.t("Complet", "Full")),
                ]))
                (text_field("places", visitor.t("Places (ou personnes en attente)", "Places (or people waiting)"), &form.places, false))
                div.field {
                    label for="languages" { (visitor.t("Langues (séparées par des virgules)", "Languages (comma-separated)")) }
                    input id="languages" name="languages" type="text" value=(form.languages)
                        placeholder=(visitor.t("français, anglais, fulfulde", "French, English, Fulfulde"));
                }
                (text_field("schedule", visitor.t("Jours et heures", "Days and hours"), &form.schedule, false))
                div.field {
                    label for="documents" { (visitor.t("Pièces à apporter (une par ligne)", "Documents to bring (one per line)")) }
                    textarea id="documents" name="documents" rows="3" { (form.documents) }
                }
            }
            fieldset {
                legend { (visitor.t("Où", "Where")) }
                div.share {
                    @for region in &areas::REGIONS {
                        (check_box("region", region.pcode, region.name(lang), form.regions.iter().any(|r| r == region.pcode)))
                    }
                }
                (department_select(visitor, "department", &form.departments, true))
                @if offices.is_empty() {
                    p.hint { (visitor.t("Aucun bureau enregistré : ajoutez-en un depuis « Nos services ».",
                        "No office recorded: add one from \"Our services\".")) }
                } @else {
                    p { strong { (visitor.t("Bureaux où il est rendu", "Offices where it is delivered")) } }
                    div.share {
                        @for (id, office) in offices {
                            (check_box("office", id, &format!("{} ({})", office.name, office.town), form.offices.contains(id)))
                        }
                    }
                }
            }
            fieldset {
                legend { (visitor.t("Contact pour ce service", "Contact for this service")) }
                (text_field("contact_name", visitor.t("Nom", "Name"), &form.contact_name, false))
                (text_field("contact_title", visitor.t("Fonction", "Role"), &form.contact_title, false))
                (text_field("contact_email", visitor.t("Courriel", "E-mail"), &form.contact_email, false))
                (text_field("contact_phone", visitor.t("Téléphone", "Phone"), &form.contact_phone, false))
            }
            button type="submit" { (visitor.t("Enregistrer", "Save")) }
            " " a href="/own" { (visitor.t("Annuler", "Cancel")) }
        }
    }
}

fn title(visitor: &Visitor, adding: bool) -> &'static str {
    if adding {
        visitor.t("Ajouter un service", "Add a service")
    } else {
        visitor.t("Modifier un service", "Change a service")
    }
}

/// `GET /own/service/new` and `GET /own/service/{id}`.
async fn show(app: App, headers: HeaderMap, id: Option<String>) -> Response {
    let visitor = match app.require(&headers, Role::Admin) {
        Ok(v) => v,
        Err(answer) => return *answer,
    };
    let record = match own_record(&app, &visitor).await {
        Ok(record) => record,
        Err(answer) => return answer,
    };
    let offices: Vec<(String, Office)> = record.offices.clone().into_iter().collect();
    let (form, action) = match &id {
        None => (
            ServiceForm {
                dimension: "economic".into(),
                cost: "free".into(),
                capacity: "available".into(),
                status: "active".into(),
                ..ServiceForm::default()
            },
            "/own/service/new".to_owned(),
        ),
        Some(id) => match record.services.get(id) {
            Some(service) => (ServiceForm::of(service), format!("/own/service/{id}")),
            None => return crate::pages::not_found(State(app), headers).await,
        },
    };
    page(
        &visitor,
        title(&visitor, id.is_none()),
        service_form(&visitor, &action, &form, &offices, None),
    )
    .into_response()
}

pub async fn new_form(State(app): State<App>, headers: HeaderMap) -> Response {
    show(app, headers, None).await
}

pub async fn edit_form(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    show(app, headers, Some(id)).await
}

/// `POST /own/service/new` and `POST /own/service/{id}`: the service added, or the fields
/// that changed sent; the form again, as typed, with what is wrong.
async fn save(
    app: App,
    headers: HeaderMap,
    id: Option<String>,
    pairs: Vec<(String, String)>,
) -> Response {
    let visitor = match super::admin_form(&app, &headers, &pairs) {
        Ok(visitor) => visitor,
        Err(answer) => return *answer,
    };
    let record = match own_record(&app, &visitor).await {
        Ok(record) => record,
        Err(answer) => return answer,
    };
    let offices: Vec<(String, Office)> = record.offices.clone().into_iter().collect();
    let form = ServiceForm::read(&pairs);
    let action = match &id {
        None => "/own/service/new".to_owned(),
        Some(id) => format!("/own/service/{id}"),
    };
    let again = |error: &str| {
        (
            StatusCode::BAD_REQUEST,
            page(
                &visitor,
                title(&visitor, id.is_none()),
                service_form(&visitor, &action, &form, &offices, Some(error)),
            ),
        )
            .into_response()
    };
    let service = match form.service(&visitor) {
        Ok(service) => service,
        Err(why) => return again(&why),
    };
    let edit = match &id {
        None => Edit::AddService {
            id: String::new(),
            service: Box::new(service),
        },
        Some(id) => {
            let Some(current) = record.services.get(id) else {
                return crate::pages::not_found(State(app), headers).await;
            };
            let patch = super::changed_fields(current, &service);
            if patch.is_empty() {
                return Redirect::to("/own").into_response();
            }
            Edit::UpdateService {
                id: id.clone(),
                patch,
            }
        }
    };
    super::send_edit(&app, &visitor, edit, again).await
}

pub async fn add(
    State(app): State<App>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    save(app, headers, None, pairs).await
}

pub async fn update(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    save(app, headers, Some(id), pairs).await
}

#[derive(serde::Deserialize)]
pub struct RemoveForm {
    pub(super) csrf: String,
}

/// `POST /own/service/{id}/remove`.
pub async fn remove(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<RemoveForm>,
) -> Response {
    let request = api::EditOwn {
        edit: Edit::RemoveService { id },
    };
    crate::pages::submit(app, headers, Role::Admin, &form.csrf, Some(request), "/own").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_as_people_write_them() {
        for (written, xaf) in [
            ("5000", Some(5000)),
            ("5 000", Some(5000)),
            ("5.000 FCFA", Some(5000)),
            ("10 000 xaf", Some(10_000)),
            ("0", None),
            ("cinq mille", None),
            ("", None),
        ] {
            assert_eq!(amount(written), xaf, "{written:?}");
        }
    }
}
