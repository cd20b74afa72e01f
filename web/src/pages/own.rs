//! This organisation's services, for its admins: the capacity of each (places available, a
//! waiting list, full), the change caseworkers at other organisations look at before they
//! refer. Each change is an ordinary signed edit of the organisation's own document.

use axum::Form;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::html;
use passerelle_node::accounts::Role;
use passerelle_node::api;
use passerelle_node::control::local_call;
use passerelle_node::document::Edit;
use passerelle_node::model::{Capacity, CapacityStatus, ServicePatch};
use passerelle_node::node::OrganisationView;
use serde::Deserialize;

use super::directory::{area_text, capacity_text, categories_text};
use super::{failure, head_row, page};
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
            table.results #own-services {
                (head_row(&visitor, &[("Service", "Service"), ("Catégories", "Categories"), ("Zone", "Area"), ("Capacité", "Capacity"), ("Changer la capacité", "Change the capacity")]))
                tbody {
                    @for (id, service) in &view.record.services {
                        tr {
                            td { (service.name) }
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
                                            option value=(value) selected[capacity_code(service.capacity.status) == value] { (label) }
                                        }
                                    }
                                    label for={ "places-" (id) } { (visitor.t("Places", "Places")) }
                                    input id={ "places-" (id) } type="number" min="0" name="places"
                                        value=[service.capacity.places];
                                    button type="submit" { (visitor.t("Enregistrer", "Save")) }
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

fn capacity_code(status: CapacityStatus) -> &'static str {
    match status {
        CapacityStatus::Available => "available",
        CapacityStatus::Waitlist => "waitlist",
        CapacityStatus::Full => "full",
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
    let status = match form.status.as_str() {
        "waitlist" => CapacityStatus::Waitlist,
        "full" => CapacityStatus::Full,
        _ => CapacityStatus::Available,
    };
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
