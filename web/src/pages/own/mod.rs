//! This organisation's offices and services, for its admins: the capacity of each service
//! (places available, a waiting list, full), the change caseworkers at other organisations
//! look at before they refer, kept up to date in one click; adding, changing and removing
//! offices and services ([`office`], [`service`]). Each change is an ordinary signed edit of
//! the organisation's own document.

pub mod office;
pub mod service;

use axum::Form;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use passerelle_node::accounts::Role;
use passerelle_node::api;
use passerelle_node::control::local_call;
use passerelle_node::document::Edit;
use passerelle_node::model::{Capacity, CapacityStatus, OrganisationRecord, ServicePatch};
use passerelle_node::node::OrganisationView;
use passerelle_node::reference::areas;
use serde::Deserialize;

use super::directory::{area_text, capacity_text, categories_text};
use super::{Visitor, failure, head_row, page};
use crate::App;

/// `GET /own`.
pub async fn services(State(app): State<App>, headers: HeaderMap) -> Response {
    let visitor = match app.require(&headers, Role::Admin) {
        Ok(v) => v,
        Err(answer) => return *answer,
    };
    let view: OrganisationView =
        match local_call(&app.handle, api::Organisation { org: None }, &visitor.by()).await {
            Ok(view) => view,
            Err(e) => return failure(&visitor, &e),
        };
    let csrf = visitor
        .session
        .as_ref()
        .map(|s| s.csrf.as_str())
        .unwrap_or("");
    let statuses = [
        ("available", visitor.t("Places disponibles", "Available")),
        ("waitlist", visitor.t("Liste d'attente", "Waiting list")),
        ("full", visitor.t("Complet", "Full")),
    ];
    page(
        &visitor,
        &format!(
            "{} — {}",
            visitor.t("Nos services", "Our services"),
            view.record.profile.name
        ),
        html! {
            p.hint { (visitor.t(
                "Chaque modification est signée par votre organisation et parvient à tout le réseau.",
                "Each change is signed by your organisation and reaches the whole network."
            )) }
            h2 { (visitor.t("Services", "Services")) }
            p { a href="/own/service/new" id="add-service" { (visitor.t("Ajouter un service", "Add a service")) } }
            table.results #own-services {
                (head_row(&visitor, &[("Service", "Service"), ("Catégories", "Categories"), ("Zone", "Area"), ("Capacité", "Capacity"), ("Changer la capacité", "Change the capacity"), ("", "")]))
                tbody {
                    @for (id, service) in &view.record.services {
                        tr {
                            td { a href={ "/own/service/" (id) } title=(visitor.t("Modifier", "Change")) { (service.name) } }
                            td { (categories_text(&visitor, &service.categories)) }
                            td { (area_text(&visitor, &service.service_area)) }
                            td.capacity { (capacity_text(&visitor, &service.capacity)) }
                            td {
                                form.capacity method="post" action="/own/capacity" id={ "capacity-" (id) } {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input type="hidden" name="service" value=(id);
                                    label for={ "status-" (id) } { (visitor.t("État", "Status")) }
                                    select id={ "status-" (id) } name="status" {
                                        @for (value, label) in statuses {
                                            option value=(value) selected[service::code(&service.capacity.status) == value] { (label) }
                                        }
                                    }
                                    label for={ "places-" (id) } { (visitor.t("Places", "Places")) }
                                    input id={ "places-" (id) } type="number" min="0" name="places"
                                        value=[service.capacity.places];
                                    button type="submit" { (visitor.t("Enregistrer", "Save")) }
                                }
                            }
                            td { (remove_button(&visitor, csrf, &format!("/own/service/{id}/remove"),
                                visitor.t("Supprimer ce service pour tout le réseau ?", "Remove this service for the whole network?"))) }
                        }
                    }
                }
            }
            h2 { (visitor.t("Bureaux", "Offices")) }
            p { a href="/own/office/new" id="add-office" { (visitor.t("Ajouter un bureau", "Add an office")) } }
            table.results #own-offices {
                (head_row(&visitor, &[("Bureau", "Office"), ("Ville", "Town"), ("Région", "Region"), ("Adresse", "Address"), ("", "")]))
                tbody {
                    @for (id, office) in &view.record.offices {
                        tr {
                            td { a href={ "/own/office/" (id) } title=(visitor.t("Modifier", "Change")) { (office.name) } }
                            td { (office.town) }
                            td { (areas::region(&office.region).map_or(office.region.as_str(), |r| r.name(visitor.lang))) }
                            td { (office.address.as_deref().unwrap_or("")) }
                            td { (remove_button(&visitor, csrf, &format!("/own/office/{id}/remove"),
                                visitor.t("Supprimer ce bureau pour tout le réseau ?", "Remove this office for the whole network?"))) }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

/// A button that removes something, after the browser asks `question` (where scripts run).
fn remove_button(visitor: &Visitor, csrf: &str, action: &str, question: &str) -> Markup {
    html! {
        form.erase method="post" action=(action) data-confirm=(question) {
            input type="hidden" name="csrf" value=(csrf);
            button type="submit" { (visitor.t("Supprimer", "Remove")) }
        }
    }
}

/// The visitor posting an admin's form that carries its session's CSRF token, or the answer
/// refusing it.
pub(crate) fn admin_form(
    app: &App,
    headers: &HeaderMap,
    pairs: &[(String, String)],
) -> Result<Visitor, Box<Response>> {
    let visitor = app.require(headers, Role::Admin)?;
    super::check_csrf(&visitor, &super::field(pairs, "csrf"))?;
    Ok(visitor)
}

/// Sends `edit` of this organisation's document: back to `/own` once it is written; the
/// form again (`again`, with the node's reason) when the node refuses what it says.
pub(crate) async fn send_edit(
    app: &App,
    visitor: &Visitor,
    edit: Edit,
    again: impl FnOnce(&str) -> Response,
) -> Response {
    match local_call(&app.handle, api::EditOwn { edit }, &visitor.by()).await {
        Ok(_) => axum::response::Redirect::to("/own").into_response(),
        Err(e) if e.kind == api::ErrorKind::InvalidInput => again(e.message_in(visitor.lang)),
        Err(e) => failure(visitor, &e),
    }
}

/// This organisation's document, or the page saying why it cannot be read.
pub(crate) async fn own_record(
    app: &App,
    visitor: &Visitor,
) -> Result<OrganisationRecord, Response> {
    match local_call(&app.handle, api::Organisation { org: None }, &visitor.by()).await {
        Ok(OrganisationView { record, .. }) => Ok(record),
        Err(e) => Err(failure(visitor, &e)),
    }
}

/// The fields of `new` that differ from `current`, as a patch: a field `new` leaves empty is
/// cleared (`null`); the node sets `last_update` itself.
pub(crate) fn changed_fields<T: serde::Serialize>(
    current: &T,
    new: &T,
) -> serde_json::Map<String, serde_json::Value> {
    let as_map = |value: &T| match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let (before, after) = (as_map(current), as_map(new));
    before
        .keys()
        .chain(after.keys())
        .filter(|key| key.as_str() != "last_update")
        .filter(|key| before.get(*key) != after.get(*key))
        .map(|key| {
            (
                key.clone(),
                after.get(key).cloned().unwrap_or(serde_json::Value::Null),
            )
        })
        .collect()
}

/// A checkbox named `name` with `value`, labelled.
pub(crate) fn check_box(name: &str, value: &str, label: &str, checked: bool) -> Markup {
    let id = format!("{name}-{value}");
    html! {
        div.check {
            input type="checkbox" id=(id) name=(name) value=(value) checked[checked];
            label for=(id) { (label) }
        }
    }
}

/// The departments by region: one (or, with `several`, several) chosen.
pub(crate) fn department_select(
    visitor: &Visitor,
    name: &str,
    chosen: &[String],
    several: bool,
) -> Markup {
    let lang = visitor.lang;
    html! {
        div.field {
            label for=(name) {
                @if several { (visitor.t("Départements (Ctrl + clic pour plusieurs)", "Departments (Ctrl + click for several)")) }
                @else { (visitor.t("Département", "Department")) }
            }
            select id=(name) name=(name) multiple[several] size=[several.then_some(8)] {
                @if !several { option value="" { "—" } }
                @for region in &areas::REGIONS {
                    optgroup label=(region.name(lang)) {
                        @for department in areas::departments_of(region.pcode) {
                            option value=(department.pcode) selected[chosen.iter().any(|c| c == department.pcode)] { (department.name(lang)) }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct CapacityForm {
    csrf: String,
    service: String,
    status: String,
    #[serde(default)]
    places: String,
}

/// `POST /own/capacity` (admins).
pub async fn capacity(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<CapacityForm>,
) -> Response {
    let status = form.status.parse().unwrap_or(CapacityStatus::Available);
    let patch = ServicePatch {
        capacity: Some(Capacity {
            status,
            places: form.places.trim().parse().ok(),
        }),
        ..ServicePatch::default()
    };
    let request = api::EditOwn {
        edit: Edit::update_service(form.service, patch),
    };
    super::submit(app, headers, Role::Admin, &form.csrf, Some(request), "/own").await
}
