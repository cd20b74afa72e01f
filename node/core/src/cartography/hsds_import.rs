//! `passerelle import hsds FILE|DIR`: Open Referral HSDS 3.0 in — JSON (one `organization`
//! with its services and locations, a list of them, or an API page with `contents`) or the
//! HSDS tabular data package (one CSV per table) — read into one [`Entries`] per
//! organisation, ready for [`plan_entries`](super::import::plan_entries).
//!
//! Rules:
//! - Passerelle's own ids come back when the file carries them (the `passerelle_id`
//!   attributes of `export hsds`), so a round trip changes nothing; otherwise ids are derived
//!   from the content, as for a spreadsheet.
//! - Areas are read from OCHA P-codes when given (`external_identifier`, service area
//!   `extent`), else from region and department names.
//! - Every field Passerelle does not model is counted and reported (`entity.field`), never
//!   dropped silently; a service or location that cannot be read is reported with its id,
//!   field and why, and left out.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ReadError;
use super::import::{
    Entries, capacity, category, cost, department, dimension, legal_status, office_id, region,
    service_id,
};
use crate::directory::fold;
use crate::model::{Capacity, Contact, Cost, Office, Service, ServiceArea, ServiceStatus};
use crate::reference::{Lang, areas, taxonomy};

/// An entry that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HsdsProblem {
    /// `organization`, `location` or `service`.
    pub entity: String,
    /// Its HSDS id (or name).
    pub id: String,
    /// The field at fault.
    pub field: String,
    /// The value found.
    pub value: String,
    /// Why, with what is accepted.
    pub why: String,
}

/// One HSDS organization, read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HsdsOrganisation {
    /// Its name.
    pub name: String,
    /// Its Passerelle organisation id, when the file carries it.
    pub passerelle_id: Option<String>,
    /// What it says the organisation is.
    pub entries: Entries,
}

/// What reading HSDS gave.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadHsds {
    /// The organizations read.
    pub organisations: Vec<HsdsOrganisation>,
    /// Entries left out, with why.
    pub problems: Vec<HsdsProblem>,
    /// Fields (and tables) Passerelle does not model, with how many times each was found.
    pub unmodelled: BTreeMap<String, usize>,
}

/// Fields of each HSDS entity that the import reads (or that only restate what it reads:
/// ids and foreign keys).
const KNOWN: [(&str, &[&str]); 14] = [
    (
        "organization",
        &[
            "id",
            "name",
            "alternate_name",
            "description",
            "email",
            "website",
            "legal_status",
            "organization_identifiers",
            "contacts",
            "locations",
            "services",
            "attributes",
        ],
    ),
    (
        "location",
        &[
            "id",
            "location_type",
            "organization_id",
            "name",
            "latitude",
            "longitude",
            "external_identifier",
            "external_identifier_type",
            "addresses",
            "attributes",
        ],
    ),
    (
        "address",
        &[
            "id",
            "location_id",
            "address_1",
            "city",
            "region",
            "state_province",
            "postal_code",
            "country",
            "address_type",
        ],
    ),
    (
        "service",
        &[
            "id",
            "organization_id",
            "name",
            "description",
            "status",
            "eligibility_description",
            "fees_description",
            "last_modified",
            "languages",
            "service_areas",
            "service_at_locations",
            "cost_options",
            "schedules",
            "required_documents",
            "contacts",
            "attributes",
        ],
    ),
    (
        "contact",
        &[
            "id",
            "organization_id",
            "service_id",
            "name",
            "title",
            "email",
            "phones",
        ],
    ),
    ("phone", &["id", "contact_id", "number", "type"]),
    (
        "service_area",
        &[
            "id",
            "service_id",
            "name",
            "extent",
            "extent_type",
            "description",
        ],
    ),
    ("service_at_location", &["id", "service_id", "location_id"]),
    (
        "cost_option",
        &["id", "service_id", "option", "currency", "amount"],
    ),
    ("language", &["id", "service_id", "code", "name"]),
    ("schedule", &["id", "service_id", "description"]),
    ("required_document", &["id", "service_id", "document"]),
    (
        "organization_identifier",
        &[
            "id",
            "organization_id",
            "identifier_scheme",
            "identifier_type",
            "identifier",
        ],
    ),
    (
        "attribute",
        &[
            "id",
            "link_id",
            "link_entity",
            "link_type",
            "taxonomy_term_id",
            "value",
            "taxonomy_term",
        ],
    ),
];

/// The lists nested in an HSDS service: (entity, field).
const SERVICE_CHILDREN: [(&str, &str); 7] = [
    ("service_area", "service_areas"),
    ("service_at_location", "service_at_locations"),
    ("cost_option", "cost_options"),
    ("language", "languages"),
    ("schedule", "schedules"),
    ("required_document", "required_documents"),
    ("contact", "contacts"),
];

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Counts the non-empty fields of `object` that `entity` does not model.
fn note_unmodelled(entity: &str, object: &Map<String, Value>, read: &mut ReadHsds) {
    let known = KNOWN
        .iter()
        .find(|(e, _)| *e == entity)
        .map(|(_, f)| *f)
        .unwrap_or(&[]);
    for (key, value) in object {
        if !known.contains(&key.as_str()) && !is_empty(value) {
            *read
                .unmodelled
                .entry(format!("{entity}.{key}"))
                .or_default() += 1;
        }
    }
}

fn text(object: &Map<String, Value>, field: &str) -> Option<String> {
    match object.get(field)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(object: &Map<String, Value>, field: &str) -> Option<f64> {
    match object.get(field)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().replace(',', ".").parse().ok(),
        _ => None,
    }
}

fn list<'a>(object: &'a Map<String, Value>, field: &str) -> Vec<&'a Map<String, Value>> {
    match object.get(field) {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_object).collect(),
        Some(Value::Object(item)) => vec![item],
        _ => Vec::new(),
    }
}

/// An attribute's taxonomy, term code and value.
struct Attribute {
    link_type: String,
    taxonomy: String,
    code: String,
    name: String,
    value: Option<String>,
}

fn attributes(object: &Map<String, Value>) -> Vec<Attribute> {
    list(object, "attributes")
        .into_iter()
        .map(|a| {
            let term = a.get("taxonomy_term").and_then(Value::as_object);
            let of_term = |f: &str| term.and_then(|t| text(t, f)).unwrap_or_default();
            Attribute {
                link_type: text(a, "link_type").unwrap_or_default(),
                taxonomy: of_term("taxonomy"),
                code: of_term("code"),
                name: of_term("name"),
                value: text(a, "value"),
            }
        })
        .collect()
}

fn passerelle_attribute(attributes: &[Attribute], code: &str) -> Option<String> {
    attributes
        .iter()
        .find(|a| a.taxonomy == "passerelle" && a.code == code)
        .and_then(|a| a.value.clone())
}

/// Reads HSDS JSON: an organization, a list of them, or an object listing them under
/// `contents`, `organizations` or `items`.
pub fn read_json(value: &Value) -> Result<ReadHsds, ReadError> {
    const READ: &str = "the import reads an HSDS organization, a service (with its nested \
        organization) or a service_at_location, one or a list of them (an array, or a page \
        with `contents`), or the tabular package";
    let items: Vec<&Map<String, Value>> = match value {
        Value::Array(items) => items.iter().filter_map(Value::as_object).collect(),
        // An API page: its list under `contents` (HSDS 3.0), `organizations` or `items`.
        Value::Object(page)
            if ["contents", "organizations", "items"]
                .iter()
                .any(|k| page.get(*k).is_some_and(Value::is_array)) =>
        {
            ["contents", "organizations", "items"]
                .iter()
                .find_map(|k| page.get(*k).and_then(Value::as_array))
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
                .collect()
        }
        Value::Object(object) => vec![object],
        other => {
            return Err(ReadError::NotHsds(format!(
                "the file holds a JSON {}, not HSDS; {READ}",
                match other {
                    Value::String(_) => "string",
                    Value::Number(_) => "number",
                    Value::Bool(_) => "boolean",
                    _ => "null",
                }
            )));
        }
    };
    let kinds: Vec<Kind> = items.iter().map(|item| Kind::of(item)).collect();
    // A file of things that are not organisations' (a taxonomy, a location alone) is
    // refused whole, saying what it looked like; never read as organisations named after
    // whatever `name` they have.
    if let Some(first) = kinds.first()
        && kinds.iter().all(|k| !k.is_read())
    {
        return Err(ReadError::NotHsds(format!(
            "this looks like {} ({} item{}), not organisations' data; {READ}",
            first.describe(),
            kinds.len(),
            if kinds.len() == 1 { "" } else { "s" }
        )));
    }
    if items.is_empty() {
        return Err(ReadError::NotHsds(format!(
            "the file holds nothing; {READ}"
        )));
    }
    let mut read = ReadHsds::default();
    // Services and services at locations are gathered under their organisation, in the
    // order the file names them.
    let mut organizations: Vec<Map<String, Value>> = Vec::new();
    for (item, kind) in items.into_iter().zip(kinds) {
        let gathered = match kind {
            Kind::Organization => Ok(item.clone()),
            Kind::Service => organization_of_service(item, None),
            Kind::ServiceAtLocation => match item.get("service").and_then(Value::as_object) {
                Some(service) => organization_of_service(service, Some(item)),
                None => Err("a service_at_location without its service".to_owned()),
            },
            other => Err(format!(
                "{} in a list of organisations' data: left out",
                other.describe()
            )),
        };
        match gathered {
            Ok(organization) => merge_organization(&mut organizations, organization),
            Err(why) => read.problems.push(HsdsProblem {
                entity: kind.entity().into(),
                id: text(item, "id").unwrap_or_default(),
                field: String::new(),
                value: text(item, "name").unwrap_or_default(),
                why,
            }),
        }
    }
    for organization in &organizations {
        if let Some(organisation) = read_organization(organization, &mut read) {
            read.organisations.push(organisation);
        }
    }
    Ok(read)
}

/// What an object of an HSDS JSON file is, by the fields it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Organization,
    Service,
    ServiceAtLocation,
    Location,
    Taxonomy,
    TaxonomyTerm,
    Other,
}

impl Kind {
    fn of(object: &Map<String, Value>) -> Self {
        let has = |key: &str| object.contains_key(key);
        let is_object = |key: &str| object.get(key).is_some_and(Value::is_object);
        if is_object("service") && is_object("location") {
            Self::ServiceAtLocation
        } else if is_object("organization") || (has("organization_id") && has("status")) {
            Self::Service
        } else if has("taxonomy_id") || has("parent_id") || (has("code") && has("taxonomy")) {
            Self::TaxonomyTerm
        } else if has("version")
            && object
                .keys()
                .all(|k| ["id", "name", "description", "uri", "version"].contains(&k.as_str()))
        {
            Self::Taxonomy
        } else if has("location_type") || (has("latitude") && has("longitude") && !has("services"))
        {
            Self::Location
        } else if has("name") {
            Self::Organization
        } else {
            Self::Other
        }
    }

    fn is_read(self) -> bool {
        matches!(
            self,
            Self::Organization | Self::Service | Self::ServiceAtLocation
        )
    }

    fn entity(self) -> &'static str {
        match self {
            Self::Organization => "organization",
            Self::Service => "service",
            Self::ServiceAtLocation => "service_at_location",
            Self::Location => "location",
            Self::Taxonomy => "taxonomy",
            Self::TaxonomyTerm => "taxonomy_term",
            Self::Other => "object",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Organization => "an HSDS organization",
            Self::Service => "an HSDS service",
            Self::ServiceAtLocation => "an HSDS service_at_location",
            Self::Location => "an HSDS location alone (no organization, no service)",
            Self::Taxonomy => "an HSDS taxonomy",
            Self::TaxonomyTerm => "an HSDS taxonomy term",
            Self::Other => "JSON objects that are no HSDS entity (no name)",
        }
    }
}

/// A service's organisation (nested in it, as HSDS's `service` carries it) with the
/// service under `services`; with `at`, a service_at_location, its location too (under
/// the organisation's `locations`, linked from the service).
fn organization_of_service(
    service: &Map<String, Value>,
    at: Option<&Map<String, Value>>,
) -> Result<Map<String, Value>, String> {
    let Some(organization) = service.get("organization").and_then(Value::as_object) else {
        return Err(format!(
            "the service names its organization only by id ({}), and the file does not hold it",
            text(service, "organization_id").unwrap_or_else(|| "none".into())
        ));
    };
    let mut organization = organization.clone();
    let mut service = service.clone();
    service.remove("organization");
    if let Some(at) = at
        && let Some(location) = at.get("location").and_then(Value::as_object)
    {
        let location_id = text(location, "id").unwrap_or_default();
        let link = serde_json::json!({
            "id": text(at, "id").unwrap_or_default(),
            "service_id": text(&service, "id").unwrap_or_default(),
            "location_id": location_id,
        });
        push_unique(&mut service, "service_at_locations", link);
        push_unique(
            &mut organization,
            "locations",
            Value::Object(location.clone()),
        );
    }
    push_unique(&mut organization, "services", Value::Object(service));
    Ok(organization)
}

/// Appends `item` to the array `key` of `object` unless one with the same `id` is there.
fn push_unique(object: &mut Map<String, Value>, key: &str, item: Value) {
    let list = object
        .entry(key.to_owned())
        .or_insert_with(|| Value::Array(Vec::new()));
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    if let Value::Array(items) = list {
        let id = item.get("id").filter(|id| !is_empty(id));
        if id.is_none() || !items.iter().any(|i| i.get("id") == id) {
            items.push(item);
        }
    }
}

/// Adds `organization` to `organizations`, or its services and locations to the one of the
/// same id already there (a list of services of one organisation).
fn merge_organization(
    organizations: &mut Vec<Map<String, Value>>,
    organization: Map<String, Value>,
) {
    let id = organization.get("id").filter(|id| !is_empty(id)).cloned();
    let Some(existing) = id
        .as_ref()
        .and_then(|id| organizations.iter_mut().find(|o| o.get("id") == Some(id)))
    else {
        organizations.push(organization);
        return;
    };
    for key in ["services", "locations"] {
        for item in organization
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            push_unique(existing, key, item.clone());
        }
    }
}

fn read_organization(org: &Map<String, Value>, read: &mut ReadHsds) -> Option<HsdsOrganisation> {
    note_unmodelled("organization", org, read);
    let org_ref = text(org, "id").unwrap_or_default();
    let Some(name) = text(org, "name") else {
        read.problems.push(HsdsProblem {
            entity: "organization".into(),
            id: org_ref,
            field: "name".into(),
            value: String::new(),
            why: "required, and empty".into(),
        });
        return None;
    };
    let mut problem = |entity: &str, id: &str, field: &str, value: &str, why: String| {
        read.problems.push(HsdsProblem {
            entity: entity.into(),
            id: id.into(),
            field: field.into(),
            value: value.into(),
            why,
        });
    };
    let mut entries = Entries {
        services_whole: true,
        acronym: text(org, "alternate_name"),
        description: text(org, "description").filter(|d| *d != name),
        website: text(org, "website"),
        ..Default::default()
    };
    // HSDS's legal_status is free text ("Limited Company"): mapped where it names one of
    // Passerelle's statuses, else kept as unmodelled (the organisation is read without it).
    if let Some(status) = text(org, "legal_status") {
        match legal_status(&status, Lang::En) {
            Ok(status) => entries.legal_status = Some(status),
            Err(_) => {
                *read
                    .unmodelled
                    .entry(format!("organization.legal_status ({status:?})"))
                    .or_default() += 1;
            }
        }
    }
    let passerelle_id = list(org, "organization_identifiers")
        .into_iter()
        .find(|i| text(i, "identifier_scheme").as_deref() == Some("passerelle"))
        .and_then(|i| text(i, "identifier"));
    let org_attributes = attributes(org);
    if let Some(languages) = passerelle_attribute(&org_attributes, "languages") {
        entries.languages = languages.split_whitespace().map(str::to_owned).collect();
    }
    entries.parent_organisation = passerelle_attribute(&org_attributes, "parent_organisation");
    for contact in list(org, "contacts") {
        entries.contacts.push(read_contact(contact));
    }
    if let Some(email) = text(org, "email")
        && !entries
            .contacts
            .iter()
            .any(|c| c.email.as_deref() == Some(&email))
    {
        entries.contacts.push(Contact {
            email: Some(email),
            ..Default::default()
        });
    }
    // Locations become offices.
    let mut office_of_location: HashMap<String, String> = HashMap::new();
    let mut unmodelled: Vec<(&str, &Map<String, Value>)> = Vec::new();
    for location in list(org, "locations") {
        unmodelled.push(("location", location));
        let id = text(location, "id").unwrap_or_default();
        let address = list(location, "addresses").into_iter().next();
        if let Some(address) = address {
            unmodelled.push(("address", address));
        }
        let address_text = |f: &str| address.and_then(|a| text(a, f));
        let Some(town) = address_text("city") else {
            problem(
                "location",
                &id,
                "addresses.city",
                "",
                "a location needs an address with its town (city)".into(),
            );
            continue;
        };
        // The area: a P-code if given, else the names.
        let pcode = text(location, "external_identifier")
            .filter(|_| {
                text(location, "external_identifier_type")
                    .is_some_and(|t| fold(&t).contains("p-code") || fold(&t).contains("pcode"))
            })
            .map(|c| c.to_uppercase());
        let (region_code, department_code) = match pcode.as_deref() {
            Some(code) if areas::department(code).is_some() => {
                let d = areas::department(code).map(|d| (d.region.to_owned(), d.pcode.to_owned()));
                match d {
                    Some((r, d)) => (Some(r), Some(d)),
                    None => (None, None),
                }
            }
            Some(code) if areas::region(code).is_some() => {
                (areas::region(code).map(|r| r.pcode.to_owned()), None)
            }
            _ => {
                let Some(state) = address_text("state_province") else {
                    problem(
                        "location",
                        &id,
                        "addresses.state_province",
                        "",
                        "a location needs its region (an OCHA P-code as external_identifier, or the region's name as state_province)".into(),
                    );
                    continue;
                };
                match region(&state, Lang::En) {
                    Ok(r) => {
                        let d = match address_text("region") {
                            Some(name) => match department(&name, &r, Lang::En) {
                                Ok(d) => Some(d),
                                Err(why) => {
                                    problem("location", &id, "addresses.region", &name, why);
                                    continue;
                                }
                            },
                            None => None,
                        };
                        (Some(r), d)
                    }
                    Err(why) => {
                        problem("location", &id, "addresses.state_province", &state, why);
                        continue;
                    }
                }
            }
        };
        let Some(region_code) = region_code else {
            continue;
        };
        let street = address_text("address_1").filter(|a| *a != town);
        let office = Office {
            name: text(location, "name").unwrap_or_else(|| town.clone()),
            region: region_code,
            department: department_code,
            address: street,
            latitude: number(location, "latitude"),
            longitude: number(location, "longitude"),
            town,
        };
        let office_key =
            passerelle_attribute(&attributes(location), "office_id").unwrap_or_else(|| {
                office_id(
                    &office.town,
                    office.address.as_deref(),
                    &office.region,
                    office.department.as_deref(),
                )
            });
        office_of_location.insert(id, office_key.clone());
        entries.offices.insert(office_key, office);
    }
    // Services.
    for service in list(org, "services") {
        unmodelled.push(("service", service));
        for (entity, field) in SERVICE_CHILDREN {
            for child in list(service, field) {
                unmodelled.push((entity, child));
            }
        }
        let id = text(service, "id").unwrap_or_default();
        let Some(service_name) = text(service, "name") else {
            problem("service", &id, "name", "", "required, and empty".into());
            continue;
        };
        let attrs = attributes(service);
        let mut failed = false;
        let mut fail = |field: &str, value: &str, why: String| {
            problem("service", &id, field, value, why);
            failed = true;
        };
        let mut categories = Vec::new();
        let mut stated_dimension = None;
        for attribute in &attrs {
            if attribute.taxonomy == "passerelle" {
                continue;
            }
            if attribute.link_type == "dimension"
                || taxonomy::Dimension::ALL
                    .iter()
                    .any(|d| d.code() == attribute.code)
            {
                match dimension(&attribute.code, Lang::En)
                    .or_else(|_| dimension(&attribute.name, Lang::En))
                {
                    Ok(d) => stated_dimension = Some(d),
                    Err(why) => fail("attributes.dimension", &attribute.code, why),
                }
                continue;
            }
            if attribute.taxonomy != super::hsds::TAXONOMY {
                *read
                    .unmodelled
                    .entry(format!(
                        "service.attributes ({} taxonomy)",
                        if attribute.taxonomy.is_empty() {
                            "no"
                        } else {
                            &attribute.taxonomy
                        }
                    ))
                    .or_default() += 1;
                continue;
            }
            match category(&attribute.code, Lang::En)
                .or_else(|_| category(&attribute.name, Lang::En))
            {
                Ok(code) if !categories.contains(&code) => categories.push(code),
                Ok(_) => {}
                Err(why) => fail("attributes.taxonomy_term", &attribute.code, why),
            }
        }
        let dimension = stated_dimension.or_else(|| {
            categories
                .first()
                .and_then(|c| taxonomy::category(c))
                .map(|c| c.dimension)
        });
        let Some(dimension) = dimension else {
            fail(
                "attributes",
                "",
                format!(
                    "no dimension: give a dimension attribute or a category of taxonomy {}",
                    super::hsds::TAXONOMY
                ),
            );
            continue;
        };
        let cost_option = list(service, "cost_options").into_iter().next();
        let service_cost = match cost_option.and_then(|c| text(c, "option")) {
            Some(option) => match fold(&option).as_str() {
                "fee" | "frais" => match cost_option.and_then(|c| number(c, "amount")) {
                    Some(amount) if amount > 0.0 => Some(Cost::Fee {
                        amount_xaf: amount.round() as u64,
                    }),
                    _ => {
                        fail(
                            "cost_options.amount",
                            "",
                            "a fee needs a positive amount in XAF".into(),
                        );
                        None
                    }
                },
                other => cost(other, Lang::En)
                    .map_err(|why| fail("cost_options.option", &option, why))
                    .ok(),
            },
            None => match text(service, "fees_description") {
                Some(fees) => cost(&fees, Lang::En)
                    .map_err(|why| fail("fees_description", &fees, why))
                    .ok(),
                None => {
                    fail("cost_options", "", "no cost: give a cost option (free, cost shared, fee with an amount in XAF) or fees_description".into());
                    None
                }
            },
        };
        let mut service_capacity = Capacity {
            status: crate::model::CapacityStatus::Available,
            places: None,
        };
        if let Some(value) = passerelle_attribute(&attrs, "capacity") {
            let (status, places) = value.split_once(':').unwrap_or((&value, ""));
            match capacity(status, Lang::En) {
                Ok((status, in_status)) => {
                    service_capacity.status = status;
                    service_capacity.places = places.parse().ok().or(in_status);
                }
                Err(why) => fail("attributes.capacity", &value, why),
            }
        }
        let status = match text(service, "status").map(|s| fold(&s)) {
            None => ServiceStatus::Active,
            Some(s) if s == "active" => ServiceStatus::Active,
            Some(s) if s == "temporarily closed" || s == "temporarily_closed" => {
                ServiceStatus::TemporarilyClosed
            }
            Some(s) if s == "inactive" || s == "defunct" => ServiceStatus::Inactive,
            Some(s) => {
                fail(
                    "status",
                    &s,
                    "not one of: active, inactive, defunct, temporarily closed".into(),
                );
                ServiceStatus::Active
            }
        };
        let mut area = ServiceArea::default();
        for service_area in list(service, "service_areas") {
            let extent = text(service_area, "extent").unwrap_or_default();
            let name = text(service_area, "name").unwrap_or_default();
            if let Some(d) = areas::department(&extent) {
                push(&mut area.departments, d.pcode);
            } else if let Some(r) = areas::region(&extent) {
                push(&mut area.regions, r.pcode);
            } else if let Ok(r) = region(&name, Lang::En) {
                push(&mut area.regions, &r);
            } else if let Some(d) = areas::DEPARTMENTS
                .iter()
                .find(|d| fold(d.name_fr) == fold(&name) || fold(d.name_en) == fold(&name))
            {
                push(&mut area.departments, d.pcode);
            } else {
                fail(
                    "service_areas",
                    if extent.is_empty() { &name } else { &extent },
                    "not a region or department of Cameroon (by OCHA P-code as extent, or by name)"
                        .into(),
                );
            }
        }
        let mut offices = Vec::new();
        for link in list(service, "service_at_locations") {
            match text(link, "location_id").and_then(|l| office_of_location.get(&l)) {
                Some(office) => push(&mut offices, office),
                None => fail(
                    "service_at_locations.location_id",
                    &text(link, "location_id").unwrap_or_default(),
                    "no location of this organization has that id (or it could not be read)".into(),
                ),
            }
        }
        if area.regions.is_empty() && area.departments.is_empty() {
            // Offered where its offices are.
            for office in &offices {
                if let Some(o) = entries.offices.get(office) {
                    match &o.department {
                        Some(d) => push(&mut area.departments, d),
                        None => push(&mut area.regions, &o.region),
                    }
                }
            }
        }
        let mut languages = Vec::new();
        for language in list(service, "languages") {
            if let Some(code) = text(language, "code") {
                push(&mut languages, &code.to_lowercase());
            }
        }
        let schedules: Vec<String> = list(service, "schedules")
            .into_iter()
            .filter_map(|s| text(s, "description"))
            .collect();
        let required_documents: Vec<String> = list(service, "required_documents")
            .into_iter()
            .filter_map(|d| text(d, "document"))
            .collect();
        let contact = list(service, "contacts")
            .into_iter()
            .next()
            .map(read_contact);
        let (false, Some(service_cost)) = (failed, service_cost) else {
            continue;
        };
        let key =
            passerelle_attribute(&attrs, "service_id").unwrap_or_else(|| service_id(&service_name));
        entries.services.insert(
            key,
            Service {
                name: service_name,
                description: text(service, "description"),
                dimension,
                categories,
                eligibility: text(service, "eligibility_description"),
                cost: service_cost,
                capacity: service_capacity,
                languages,
                service_area: area,
                offices,
                schedule: (!schedules.is_empty()).then(|| schedules.join("; ")),
                required_documents,
                contact,
                status,
                last_update: 0,
            },
        );
    }
    for contact in list(org, "contacts") {
        unmodelled.push(("contact", contact));
    }
    for (entity, object) in unmodelled {
        note_unmodelled(entity, object, read);
        if entity == "contact" {
            for phone in list(object, "phones") {
                note_unmodelled("phone", phone, read);
            }
        }
    }
    for attribute in org_attributes {
        if attribute.taxonomy != "passerelle" {
            *read
                .unmodelled
                .entry(format!("organization.attributes ({})", attribute.taxonomy))
                .or_default() += 1;
        }
    }
    Some(HsdsOrganisation {
        name,
        passerelle_id,
        entries,
    })
}

fn push(list: &mut Vec<String>, value: &str) {
    if !list.iter().any(|v| v == value) {
        list.push(value.to_owned());
    }
}

fn read_contact(contact: &Map<String, Value>) -> Contact {
    Contact {
        name: text(contact, "name"),
        title: text(contact, "title"),
        email: text(contact, "email"),
        phone: list(contact, "phones")
            .into_iter()
            .find_map(|p| text(p, "number")),
    }
}

/// The tables of the tabular package the import reads, and the file names it accepts for
/// each (HSDS tools write singular or plural names).
const TABLES: [&str; 14] = [
    "organization",
    "location",
    "address",
    "service",
    "contact",
    "phone",
    "service_area",
    "service_at_location",
    "cost_option",
    "language",
    "schedule",
    "required_document",
    "organization_identifier",
    "attribute",
];

fn table_name(stem: &str) -> Option<&'static str> {
    let stem = stem.to_ascii_lowercase();
    if stem == "taxonomy_term" || stem == "taxonomy_terms" {
        return Some("taxonomy_term");
    }
    TABLES
        .iter()
        .copied()
        .find(|t| stem == *t || stem == format!("{t}s") || (*t == "address" && stem == "addresses"))
}

/// Reads the HSDS tabular data package: `files` maps each CSV file's name to its text.
/// Rows are nested under their parents by their foreign keys, then read as JSON. Tables the
/// import does not know are reported.
pub fn read_package(files: &BTreeMap<String, String>) -> Result<ReadHsds, ReadError> {
    let mut tables: BTreeMap<&'static str, Vec<Map<String, Value>>> = BTreeMap::new();
    let mut unknown = Vec::new();
    for (file, body) in files {
        let stem = file.trim_end_matches(".csv");
        let Some(table) = table_name(stem) else {
            unknown.push(file.clone());
            continue;
        };
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(body.trim_start_matches('\u{feff}').as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| ReadError::HeaderRow {
                file: format!("{file}: "),
                reason: e.to_string(),
            })?
            .clone();
        for (index, record) in reader.records().enumerate() {
            let record = record.map_err(|e| ReadError::PackageRow {
                file: file.clone(),
                row: index + 2,
                reason: e.to_string(),
            })?;
            let row: Map<String, Value> = headers
                .iter()
                .zip(record.iter())
                .filter(|(_, v)| !v.trim().is_empty())
                .map(|(h, v)| (h.to_owned(), Value::String(v.to_owned())))
                .collect();
            tables.entry(table).or_default().push(row);
        }
    }
    if !tables.contains_key("organization") {
        return Err(ReadError::NotHsds(
            "no organization table (organization.csv or organizations.csv): not an HSDS tabular package".into(),
        ));
    }
    let mut take = |name: &str| tables.remove(name).unwrap_or_default();
    let terms: HashMap<String, Map<String, Value>> = take("taxonomy_term")
        .into_iter()
        .filter_map(|t| text(&t, "id").map(|id| (id, t)))
        .collect();
    let mut attributes = take("attribute");
    for attribute in &mut attributes {
        if let Some(term) = text(attribute, "taxonomy_term_id").and_then(|id| terms.get(&id)) {
            attribute.insert("taxonomy_term".into(), Value::Object(term.clone()));
        }
    }
    let mut contacts = take("contact");
    let mut orphans: BTreeMap<String, usize> = BTreeMap::new();
    let mut locations = take("location");
    let mut services = take("service");
    let mut organizations = take("organization");
    let mut orphan = |table: &str, rows: Vec<Map<String, Value>>| {
        if !rows.is_empty() {
            *orphans
                .entry(format!("{table} rows linked to nothing"))
                .or_default() += rows.len();
        }
    };
    orphan(
        "phone",
        nest(take("phone"), "contact_id", &mut contacts, "phones"),
    );
    orphan(
        "address",
        nest(take("address"), "location_id", &mut locations, "addresses"),
    );
    for (table, field) in SERVICE_CHILDREN.iter().filter(|(t, _)| *t != "contact") {
        orphan(table, nest(take(table), "service_id", &mut services, field));
    }
    let (of_services, of_organizations): (Vec<_>, Vec<_>) = contacts
        .into_iter()
        .partition(|c| c.contains_key("service_id"));
    orphan(
        "contact",
        nest(of_services, "service_id", &mut services, "contacts"),
    );
    let rest = nest(attributes, "link_id", &mut locations, "attributes");
    let rest = nest(rest, "link_id", &mut services, "attributes");
    orphan(
        "attribute",
        nest(rest, "link_id", &mut organizations, "attributes"),
    );
    orphan(
        "contact",
        nest(
            of_organizations,
            "organization_id",
            &mut organizations,
            "contacts",
        ),
    );
    orphan(
        "location",
        nest(
            locations,
            "organization_id",
            &mut organizations,
            "locations",
        ),
    );
    orphan(
        "service",
        nest(services, "organization_id", &mut organizations, "services"),
    );
    orphan(
        "organization_identifier",
        nest(
            take("organization_identifier"),
            "organization_id",
            &mut organizations,
            "organization_identifiers",
        ),
    );
    let mut read = read_json(&Value::Array(
        organizations.into_iter().map(Value::Object).collect(),
    ))?;
    for file in unknown {
        *read.unmodelled.entry(format!("table {file}")).or_default() += 1;
    }
    for (what, count) in orphans {
        *read.unmodelled.entry(what).or_default() += count;
    }
    Ok(read)
}

/// Puts each child into the `field` list of the parent whose id its `key` names; returns
/// the children with no such parent.
fn nest(
    children: Vec<Map<String, Value>>,
    key: &str,
    parents: &mut [Map<String, Value>],
    field: &str,
) -> Vec<Map<String, Value>> {
    let index: HashMap<String, usize> = parents
        .iter()
        .enumerate()
        .filter_map(|(i, p)| text(p, "id").map(|id| (id, i)))
        .collect();
    let mut left = Vec::new();
    for child in children {
        match text(&child, key).and_then(|id| index.get(&id)) {
            Some(&i) => {
                if let Value::Array(items) = parents[i]
                    .entry(field)
                    .or_insert_with(|| Value::Array(Vec::new()))
                {
                    items.push(Value::Object(child));
                }
            }
            None => left.push(child),
        }
    }
    left
}

#[cfg(test)]
mod tests {
    fn english() -> crate::cartography::import::ReadOptions {
        crate::cartography::import::ReadOptions {
            lang: crate::reference::Lang::En,
            ..Default::default()
        }
    }
    use super::*;
    use crate::cartography::hsds;
    use crate::cartography::import::{plan_entries, plan_own, read_csv};
    use crate::document::OrganisationDocument;
    use crate::identity::SigningSecret;
    use crate::model::{OrganisationRecord, Profile};
    use crate::reference::Lang;

    const SAMPLE: &str = include_str!("../../../../docs/examples/mapping.csv");

    /// A fresh organisation named `name` after `plan` has been applied to it.
    fn imported(
        name: &str,
        plan: impl Fn(&OrganisationRecord) -> Vec<crate::document::Edit>,
    ) -> OrganisationRecord {
        let secret = SigningSecret::generate().unwrap();
        let (mut doc, _) = OrganisationDocument::create(&secret, Profile::named(name), 1).unwrap();
        for edit in plan(doc.record().unwrap()) {
            doc.apply_edit(&edit, &secret, 2)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        doc.record().unwrap().clone()
    }

    fn same_content(a: &OrganisationRecord, b: &OrganisationRecord) {
        assert_eq!(a.profile, b.profile);
        assert_eq!(a.offices, b.offices, "{}", a.profile.name);
        assert_eq!(a.services, b.services, "{}", a.profile.name);
    }

    #[test]
    fn the_sample_mapping_survives_hsds_json_and_the_tabular_package_without_loss() {
        let rows = read_csv(SAMPLE, &english()).unwrap().rows;
        let names: std::collections::BTreeSet<String> =
            rows.iter().map(|r| r.organisation.clone()).collect();
        let records: Vec<OrganisationRecord> = names
            .iter()
            .map(|name| imported(name, |record| plan_own(&rows, record, &[]).edits))
            .collect();
        assert_eq!(records.len(), 33);
        let body = hsds::organizations(&records, Lang::Fr);

        let from_json = read_json(&body).unwrap();
        assert!(from_json.problems.is_empty(), "{:?}", from_json.problems);
        assert!(
            from_json.unmodelled.is_empty(),
            "{:?}",
            from_json.unmodelled
        );
        assert_eq!(from_json.organisations.len(), 33);

        let files: BTreeMap<String, String> = hsds::tabular_package(&body)
            .unwrap()
            .into_iter()
            .filter(|(name, _)| name.ends_with(".csv"))
            .map(|(name, bytes)| (name, String::from_utf8(bytes).unwrap()))
            .collect();
        let from_package = read_package(&files).unwrap();
        assert!(
            from_package.problems.is_empty(),
            "{:?}",
            from_package.problems
        );
        assert!(
            from_package.unmodelled.is_empty(),
            "{:?}",
            from_package.unmodelled
        );
        assert_eq!(from_package.organisations, from_json.organisations);

        for (original, read) in records.iter().zip(&from_json.organisations) {
            assert_eq!(read.name, original.profile.name);
            assert_eq!(
                read.passerelle_id.as_deref(),
                Some(original.org_id.as_str())
            );
            let again = imported(&read.name, |record| {
                plan_entries(&read.entries, record).edits
            });
            same_content(original, &again);
            // And into the original: nothing to do.
            let plan = plan_entries(&read.entries, original);
            assert!(plan.edits.is_empty(), "{}: {:?}", read.name, plan.changes);
        }
    }

    #[test]
    fn hsds_from_other_tools_reads_by_names_and_reports_what_is_not_modelled() {
        let body = serde_json::json!({
            "id": "a1",
            "name": "Centre Espoir",
            "year_incorporated": 2004,
            "locations": [{
                "id": "l1",
                "name": "Antenne de Bafoussam",
                "transportation": "moto-taxi",
                "addresses": [{"id": "ad1", "address_1": "Quartier Tamdja", "city": "Bafoussam", "state_province": "Ouest", "region": "Mifi", "postal_code": "", "country": "CM"}]
            }],
            "services": [
                {
                    "id": "s1",
                    "name": "Écoute psychologique",
                    "url": "https://example.invalid",
                    "attributes": [
                        {"taxonomy_term": {"code": "counselling", "taxonomy": hsds::TAXONOMY}},
                        {"taxonomy_term": {"code": "mental-health", "taxonomy": "openeligibility"}}
                    ],
                    "cost_options": [{"option": "fee", "amount": 2000, "currency": "XAF"}],
                    "service_at_locations": [{"location_id": "l1"}],
                    "languages": [{"code": "FR"}]
                },
                {"id": "s2", "name": "Sans coût", "attributes": [{"taxonomy_term": {"code": "counselling", "taxonomy": hsds::TAXONOMY}}]},
                {"id": "s3", "name": "Hors zone", "fees_description": "gratuit", "attributes": [{"taxonomy_term": {"code": "counselling", "taxonomy": hsds::TAXONOMY}}], "service_areas": [{"extent": "CM099", "name": "Atlantide"}]}
            ]
        });
        let read = read_json(&body).unwrap();
        let org = &read.organisations[0];
        let office = org.entries.offices.values().next().unwrap();
        assert_eq!(
            (office.region.as_str(), office.department.as_deref()),
            ("CM008", Some("CM008006"))
        );
        assert_eq!(office.address.as_deref(), Some("Quartier Tamdja"));
        let service = org.entries.services.values().next().unwrap();
        assert_eq!(service.cost, Cost::Fee { amount_xaf: 2000 });
        assert_eq!(service.dimension, taxonomy::Dimension::Psychosocial);
        assert_eq!(
            service.service_area.departments,
            vec!["CM008006".to_owned()]
        );
        assert_eq!(service.languages, vec!["fr".to_owned()]);
        assert_eq!(org.entries.services.len(), 1);
        let problems: Vec<(&str, &str)> = read
            .problems
            .iter()
            .map(|p| (p.id.as_str(), p.field.as_str()))
            .collect();
        assert_eq!(
            problems,
            vec![("s2", "cost_options"), ("s3", "service_areas")]
        );
        for field in [
            "organization.year_incorporated",
            "location.transportation",
            "service.url",
            "service.attributes (openeligibility taxonomy)",
        ] {
            assert_eq!(
                read.unmodelled.get(field),
                Some(&1),
                "{field}: {:?}",
                read.unmodelled
            );
        }
    }
}
