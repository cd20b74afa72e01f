//! Adding, changing and removing this organisation's offices (admins), as for services:
//! what was typed is kept when something is refused; a change sends only what differs.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use passerelle_node::accounts::Role;
use passerelle_node::api;
use passerelle_node::document::Edit;
use passerelle_node::model::Office;
use passerelle_node::reference::areas;

use super::{department_select, own_record};
use crate::App;
use crate::pages::{Visitor, field, page};

/// An office as the form holds it.
#[derive(Debug, Default)]
struct OfficeForm {
    name: String,
    region: String,
    department: String,
    town: String,
    address: String,
    latitude: String,
    longitude: String,
}

impl OfficeForm {
    fn of(office: &Office) -> Self {
        Self {
            name: office.name.clone(),
            region: office.region.clone(),
            department: office.department.clone().unwrap_or_default(),
            town: office.town.clone(),
            address: office.address.clone().unwrap_or_default(),
            latitude: office.latitude.map(|d| d.to_string()).unwrap_or_default(),
            longitude: office.longitude.map(|d| d.to_string()).unwrap_or_default(),
        }
    }

    fn read(pairs: &[(String, String)]) -> Self {
        let value = |key: &str| field(pairs, key);
        Self {
            name: value("name"),
            region: value("region"),
            department: value("department"),
            town: value("town"),
            address: value("address"),
            latitude: value("latitude"),
            longitude: value("longitude"),
        }
    }

    /// The office, or what is wrong (the field, the value, what is accepted).
    fn office(&self, visitor: &Visitor) -> Result<Office, String> {
        let optional = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
        let required = |text: &str, label: (&str, &str)| {
            optional(text).ok_or_else(|| {
                format!(
                    "{} : {}",
                    visitor.t(label.0, label.1),
                    visitor.t("obligatoire", "required")
                )
            })
        };
        let degrees =
            |text: &str, label: (&str, &str), limit: f64| -> Result<Option<f64>, String> {
                match text.trim() {
                    "" => Ok(None),
                    written => written
                        .replace(',', ".")
                        .parse::<f64>()
                        .ok()
                        .filter(|d| d.is_finite() && d.abs() <= limit)
                        .map(Some)
                        .ok_or_else(|| {
                            format!(
                                "{} : « {written} » — {} {limit}",
                                visitor.t(label.0, label.1),
                                visitor.t(
                                    "des degrés décimaux (par ex. 4.0511), entre moins et plus",
                                    "decimal degrees (e.g. 4.0511), between minus and plus"
                                )
                            )
                        }),
                }
            };
        let region = required(&self.region, ("Région", "Region"))?;
        if areas::region(&region).is_none() {
            return Err(format!(
                "{} : « {region} » — {}",
                visitor.t("Région", "Region"),
                areas::region_list()
            ));
        }
        Ok(Office {
            name: required(&self.name, ("Nom du bureau", "Office name"))?,
            region,
            department: optional(&self.department),
            town: required(&self.town, ("Ville", "Town"))?,
            address: optional(&self.address),
            latitude: degrees(&self.latitude, ("Latitude", "Latitude"), 90.0)?,
            longitude: degrees(&self.longitude, ("Longitude", "Longitude"), 180.0)?,
        })
    }
}

fn office_form(visitor: &Visitor, action: &str, form: &OfficeForm, error: Option<&str>) -> Markup {
    let csrf = visitor
        .session
        .as_ref()
        .map(|s| s.csrf.as_str())
        .unwrap_or("");
    let lang = visitor.lang;
    let text = |id: &str, label: &str, value: &str, required: bool| {
        html! {
            div.field {
                label for=(id) { (label) @if required { " *" } }
                input id=(id) name=(id) type="text" value=(value) required[required];
            }
        }
    };
    let chosen = [form.department.clone()];
    html! {
        @if let Some(error) = error { p.error role="alert" id="form-error" { (error) } }
        form.edit method="post" action=(action) id="office-form" {
            input type="hidden" name="csrf" value=(csrf);
            fieldset {
                legend { (visitor.t("Le bureau", "The office")) }
                (text("name", visitor.t("Nom du bureau", "Office name"), &form.name, true))
                div.field {
                    label for="region" { (visitor.t("Région", "Region")) " *" }
                    select id="region" name="region" required {
                        option value="" { "—" }
                        @for region in &areas::REGIONS {
                            option value=(region.pcode) selected[form.region == region.pcode] { (region.name(lang)) }
                        }
                    }
                }
                (department_select(visitor, "department", &chosen, false))
                (text("town", visitor.t("Ville", "Town"), &form.town, true))
                (text("address", visitor.t("Adresse ou indications", "Address or directions"), &form.address, false))
                (text("latitude", visitor.t("Latitude (facultatif)", "Latitude (optional)"), &form.latitude, false))
                (text("longitude", visitor.t("Longitude (facultatif)", "Longitude (optional)"), &form.longitude, false))
            }
            button type="submit" { (visitor.t("Enregistrer", "Save")) }
            " " a href="/own" { (visitor.t("Annuler", "Cancel")) }
        }
    }
}

fn title(visitor: &Visitor, adding: bool) -> &'static str {
    if adding {
        visitor.t("Ajouter un bureau", "Add an office")
    } else {
        visitor.t("Modifier un bureau", "Change an office")
    }
}

async fn show(app: App, headers: HeaderMap, id: Option<String>) -> Response {
    let visitor = match app.require(&headers, Role::Admin) {
        Ok(v) => v,
        Err(answer) => return *answer,
    };
    let (form, action) = match &id {
        None => (OfficeForm::default(), "/own/office/new".to_owned()),
        Some(id) => {
            let record = match own_record(&app, &visitor).await {
                Ok(record) => record,
                Err(answer) => return answer,
            };
            match record.offices.get(id) {
                Some(office) => (OfficeForm::of(office), format!("/own/office/{id}")),
                None => return crate::pages::not_found(State(app), headers).await,
            }
        }
    };
    page(
        &visitor,
        title(&visitor, id.is_none()),
        office_form(&visitor, &action, &form, None),
    )
    .into_response()
}

/// `GET /own/office/new`.
pub async fn new_form(State(app): State<App>, headers: HeaderMap) -> Response {
    show(app, headers, None).await
}

/// `GET /own/office/{id}`.
pub async fn edit_form(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    show(app, headers, Some(id)).await
}

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
    let form = OfficeForm::read(&pairs);
    let action = match &id {
        None => "/own/office/new".to_owned(),
        Some(id) => format!("/own/office/{id}"),
    };
    let again = |error: &str| {
        (
            StatusCode::BAD_REQUEST,
            page(
                &visitor,
                title(&visitor, id.is_none()),
                office_form(&visitor, &action, &form, Some(error)),
            ),
        )
            .into_response()
    };
    let office = match form.office(&visitor) {
        Ok(office) => office,
        Err(why) => return again(&why),
    };
    let edit = match &id {
        None => Edit::AddOffice {
            id: String::new(),
            office: Box::new(office),
        },
        Some(id) => {
            let record = match own_record(&app, &visitor).await {
                Ok(record) => record,
                Err(answer) => return answer,
            };
            let Some(current) = record.offices.get(id) else {
                return crate::pages::not_found(State(app), headers).await;
            };
            let patch = super::changed_fields(current, &office);
            if patch.is_empty() {
                return Redirect::to("/own").into_response();
            }
            Edit::UpdateOffice {
                id: id.clone(),
                patch,
            }
        }
    };
    super::send_edit(&app, &visitor, edit, again).await
}

/// `POST /own/office/new`.
pub async fn add(
    State(app): State<App>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    save(app, headers, None, pairs).await
}

/// `POST /own/office/{id}`.
pub async fn update(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    save(app, headers, Some(id), pairs).await
}

/// `POST /own/office/{id}/remove` (refused by the node while a service is delivered there).
pub async fn remove(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<super::service::RemoveForm>,
) -> Response {
    let request = api::EditOwn {
        edit: Edit::RemoveOffice { id },
    };
    crate::pages::submit(app, headers, Role::Admin, &form.csrf, Some(request), "/own").await
}
