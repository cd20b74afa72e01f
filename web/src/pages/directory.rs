//! The directory: search (text, dimension, category, region, department, cost, language,
//! capacity; drafts apart) and an organisation's page.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use passerelle_node::accounts::Role;
use passerelle_node::api;
use passerelle_node::cartography::import::{department_code, region_code};
use passerelle_node::control::{local_call, local_stream};
use passerelle_node::directory::{SearchQuery, ServiceHit};
use passerelle_node::identity::OrgId;
use passerelle_node::model::{self, CapacityStatus, Cost};
use passerelle_node::node::OrganisationView;
use passerelle_node::reference::{Lang, areas, languages, taxonomy};
use serde::Deserialize;

use super::{Visitor, failure, page};
use crate::App;

/// Most results shown on one page.
pub const SHOWN: usize = 50;

/// The search form's fields, as the browser sends them (empty means "any").
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    q: String,
    #[serde(default)]
    dimension: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    department: String,
    #[serde(default)]
    cost: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    capacity: String,
    #[serde(default)]
    drafts: Option<String>,
}

fn some(text: &str) -> Option<&str> {
    let text = text.trim();
    (!text.is_empty()).then_some(text)
}

impl Filters {
    /// The query, or what is wrong with a field (field, message).
    fn query(&self, lang: Lang) -> Result<SearchQuery, (&'static str, String)> {
        Ok(SearchQuery {
            text: some(&self.q).map(str::to_owned),
            dimension: match some(&self.dimension) {
                Some("economic") => Some(taxonomy::Dimension::Economic),
                Some("social") => Some(taxonomy::Dimension::Social),
                Some("psychosocial") => Some(taxonomy::Dimension::Psychosocial),
                _ => None,
            },
            category: some(&self.category)
                .filter(|c| taxonomy::category(c).is_some())
                .map(str::to_owned),
            region: some(&self.region)
                .map(|r| region_code(r, lang).map_err(|why| ("region", why)))
                .transpose()?,
            department: some(&self.department)
                .map(|d| department_code(d, lang).map_err(|why| ("department", why)))
                .transpose()?,
            cost: some(&self.cost)
                .filter(|c| matches!(*c, "free" | "cost_shared" | "fee"))
                .map(str::to_owned),
            language: some(&self.language)
                .map(|l| languages::code_of(l).map_err(|why| ("language", why.message(lang))))
                .transpose()?,
            capacity: match some(&self.capacity) {
                Some("available") => Some(CapacityStatus::Available),
                Some("waitlist") => Some(CapacityStatus::Waitlist),
                Some("full") => Some(CapacityStatus::Full),
                _ => None,
            },
            drafts: self.drafts.is_some(),
            ..Default::default()
        })
    }
}

pub fn cost_text(visitor: &Visitor, cost: &Cost) -> String {
    match cost {
        Cost::Free => visitor.t("Gratuit", "Free").to_owned(),
        Cost::CostShared => visitor.t("Partage des coûts", "Cost shared").to_owned(),
        Cost::Fee { amount_xaf } => format!("{amount_xaf} FCFA"),
    }
}

pub fn capacity_text(visitor: &Visitor, capacity: &model::Capacity) -> String {
    let status = match capacity.status {
        CapacityStatus::Available => visitor.t("Places disponibles", "Available"),
        CapacityStatus::Waitlist => visitor.t("Liste d'attente", "Waiting list"),
        CapacityStatus::Full => visitor.t("Complet", "Full"),
    };
    match capacity.places {
        Some(n) => format!("{status} ({n})"),
        None => status.to_owned(),
    }
}

pub fn area_text(visitor: &Visitor, area: &model::ServiceArea) -> String {
    area.regions
        .iter()
        .map(|r| areas::region(r).map_or(r.as_str(), |r| r.name(visitor.lang)))
        .chain(
            area.departments
                .iter()
                .map(|d| areas::department(d).map_or(d.as_str(), |d| d.name(visitor.lang))),
        )
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn categories_text(visitor: &Visitor, categories: &[String]) -> String {
    categories
        .iter()
        .map(|c| taxonomy::category(c).map_or(c.as_str(), |c| c.label(visitor.lang)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn select(
    name: &str,
    label: &str,
    any: &str,
    chosen: &str,
    options: &[(String, String)],
) -> Markup {
    html! {
        div.field {
            label for=(name) { (label) }
            select id=(name) name=(name) {
                option value="" { (any) }
                @for (value, text) in options {
                    option value=(value) selected[value == chosen] { (text) }
                }
            }
        }
    }
}

fn form(visitor: &Visitor, filters: &Filters) -> Markup {
    let lang = visitor.lang;
    let dimensions = [
        taxonomy::Dimension::Economic,
        taxonomy::Dimension::Social,
        taxonomy::Dimension::Psychosocial,
    ]
    .map(|d| {
        (
            serde_json::to_value(d)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            d.label(lang).to_owned(),
        )
    });
    let categories: Vec<(String, String)> = taxonomy::CATEGORIES
        .iter()
        .map(|c| (c.code.to_owned(), c.label(lang).to_owned()))
        .collect();
    let regions: Vec<(String, String)> = areas::REGIONS
        .iter()
        .map(|r| (r.pcode.to_owned(), r.name(lang).to_owned()))
        .collect();
    let departments: Vec<(String, String)> = areas::DEPARTMENTS
        .iter()
        .map(|d| (d.pcode.to_owned(), d.name(lang).to_owned()))
        .collect();
    let any = visitor.t("Tous", "Any");
    html! {
        form.search method="get" action="/directory" role="search" {
            div.field.wide {
                label for="q" { (visitor.t("Mots recherchés", "Words")) }
                input #q type="search" name="q" value=(filters.q);
            }
            (select("dimension", visitor.t("Dimension", "Dimension"), any, &filters.dimension, &dimensions))
            (select("category", visitor.t("Catégorie", "Category"), any, &filters.category, &categories))
            (select("region", visitor.t("Région", "Region"), any, &filters.region, &regions))
            (select("department", visitor.t("Département", "Department"), any, &filters.department, &departments))
            (select("cost", visitor.t("Coût", "Cost"), any, &filters.cost, &[
                ("free".into(), visitor.t("Gratuit", "Free").into()),
                ("cost_shared".into(), visitor.t("Partage des coûts", "Cost shared").into()),
                ("fee".into(), visitor.t("Payant", "Fee").into()),
            ]))
            div.field {
                label for="language" { (visitor.t("Langue", "Language")) }
                input #language type="text" name="language" value=(filters.language)
                    placeholder=(visitor.t("français, fulfulde…", "French, Fulfulde…"));
            }
            (select("capacity", visitor.t("Capacité", "Capacity"), any, &filters.capacity, &[
                ("available".into(), visitor.t("Places disponibles", "Available").into()),
                ("waitlist".into(), visitor.t("Liste d'attente", "Waiting list").into()),
                ("full".into(), visitor.t("Complet", "Full").into()),
            ]))
            div.field.check {
                input #drafts type="checkbox" name="drafts" value="1" checked[filters.drafts.is_some()];
                label for="drafts" { (visitor.t(
                    "Brouillons de la cartographie historique (non vérifiés)",
                    "Drafts of the historical mapping (unverified)"
                )) }
            }
            button type="submit" { (visitor.t("Rechercher", "Search")) }
        }
    }
}

/// `GET /directory`.
pub async fn search(
    State(app): State<App>,
    headers: HeaderMap,
    Query(filters): Query<Filters>,
) -> Response {
    let visitor = match app.require(&headers, Role::Viewer) {
        Ok(v) => v,
        Err(answer) => return *answer,
    };
    let title = visitor.t("Annuaire des services", "Directory of services");
    let query = match filters.query(visitor.lang) {
        Ok(query) => query,
        Err((field, why)) => {
            return page(
                &visitor,
                title,
                html! {
                    (form(&visitor, &filters))
                    p.error role="alert" { (field) " : " (why) }
                },
            )
            .into_response();
        }
    };
    let drafts = query.drafts;
    let hits: Vec<ServiceHit> =
        match local_stream(&app.handle, api::Search { query }, &visitor.by()).await {
            Ok(((), hits)) => hits,
            Err(e) => return failure(&visitor, &e),
        };
    page(
        &visitor,
        title,
        html! {
            (form(&visitor, &filters))
            p.count role="status" id="result-count" {
                (hits.len()) " " (visitor.t("service(s) trouvé(s)", "service(s) found"))
                @if hits.len() > SHOWN { " — " (SHOWN) " " (visitor.t("affichés", "shown")) }
                @if drafts { " — " (visitor.t("brouillons non vérifiés", "unverified drafts")) }
            }
            @if !hits.is_empty() {
                table.results {
                    (super::head_row(&visitor, &[("Service", "Service"), ("Organisation", "Organisation"), ("Catégories", "Categories"), ("Zone", "Area"), ("Coût", "Cost"), ("Capacité", "Capacity"), ("Langues", "Languages")]))
                    tbody {
                        @for hit in hits.iter().take(SHOWN) {
                            tr {
                                td { (hit.service.name) }
                                td {
                                    @if hit.draft_by.is_some() { (hit.org_name) }
                                    @else { a href={ "/org/" (hit.org_id) } { (hit.org_name) } }
                                }
                                td { (categories_text(&visitor, &hit.service.categories)) }
                                td { (area_text(&visitor, &hit.service.service_area)) }
                                td { (cost_text(&visitor, &hit.service.cost)) }
                                td { (capacity_text(&visitor, &hit.service.capacity)) }
                                td { (hit.service.languages.join(", ")) }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

/// `GET /org/{id}`.
pub async fn organisation(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let visitor = match app.require(&headers, Role::Viewer) {
        Ok(v) => v,
        Err(answer) => return *answer,
    };
    let Ok(org) = id.parse::<OrgId>() else {
        return super::not_found(State(app), headers).await;
    };
    let view: OrganisationView = match local_call(
        &app.handle,
        api::Organisation { org: Some(org) },
        &visitor.by(),
    )
    .await
    {
        Ok(view) => view,
        Err(e) => return failure(&visitor, &e),
    };
    let record = &view.record;
    page(
        &visitor,
        &record.profile.name,
        html! {
            dl.profile {
                @if let Some(acronym) = &record.profile.acronym {
                    dt { (visitor.t("Sigle", "Acronym")) } dd { (acronym) }
                }
                @if let Some(description) = &record.profile.description {
                    dt { (visitor.t("Présentation", "About")) } dd { (description) }
                }
                dt { (visitor.t("Empreinte", "Fingerprint")) } dd { code { (view.fingerprint) } }
            }
            h2 { (visitor.t("Bureaux", "Offices")) }
            ul.offices {
                @for office in record.offices.values() {
                    li {
                        (office.name) " — " (office.town)
                        @if let Some(address) = &office.address { ", " (address) }
                    }
                }
            }
            h2 { (visitor.t("Services", "Services")) }
            table.results {
                (super::head_row(&visitor, &[("Service", "Service"), ("Catégories", "Categories"), ("Zone", "Area"), ("Coût", "Cost"), ("Capacité", "Capacity")]))
                tbody {
                    @for service in record.services.values() {
                        tr {
                            td { (service.name) }
                            td { (categories_text(&visitor, &service.categories)) }
                            td { (area_text(&visitor, &service.service_area)) }
                            td { (cost_text(&visitor, &service.cost)) }
                            td { (capacity_text(&visitor, &service.capacity)) }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}
