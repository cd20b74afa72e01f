//! `passerelle export hsds DIR`: the directory as Open Referral HSDS 3.0 JSON — a list of
//! `organization` objects with their `locations` and `services` nested (services carry
//! `service_areas`, `service_at_locations`, `cost_options`, `languages`, `schedules`,
//! `required_documents` and their categories as `attributes` with `taxonomy_term`s).
//!
//! The Cameroon profile (docs/cartography.md): HSDS ids are UUIDs derived from Passerelle's
//! stable ids (the same entry always gets the same UUID); addresses have no postal code and
//! name the region as `state_province`; service areas are OCHA P-codes (`extent_type`
//! `text`); capacity, dimension and the Passerelle ids travel as attributes and
//! organization identifiers.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::model::{Cost, OrganisationRecord, ServiceStatus};
use crate::reference::{Lang, areas, taxonomy};

/// The taxonomy name the categories carry.
pub const TAXONOMY: &str = taxonomy::TAXONOMY_VERSION;

/// A UUID (version 8, RFC 9562 custom) derived from `parts`: stable across exports.
pub fn uuid(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    hash.update(b"passerelle/hsds/1");
    for part in parts {
        hash.update([0u8]);
        hash.update(part.as_bytes());
    }
    let mut b: [u8; 16] = hash.finalize()[..16].try_into().unwrap_or([0; 16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = data_encoding::HEXLOWER.encode(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn term(code: &str, name: &str, taxonomy: &str) -> Value {
    json!({
        "id": uuid(&["term", taxonomy, code]),
        "code": code,
        "name": name,
        "description": name,
        "taxonomy": taxonomy,
        "language": "fr",
    })
}

fn attribute(
    link_id: &str,
    link_entity: &str,
    link_type: &str,
    term: Value,
    value: Option<&str>,
) -> Value {
    let term_id = term["id"].as_str().unwrap_or_default().to_owned();
    json!({
        "id": uuid(&["attribute", link_id, &term_id]),
        "link_id": link_id,
        "link_entity": link_entity,
        "link_type": link_type,
        "taxonomy_term_id": term_id,
        "value": value,
        "taxonomy_term": term,
    })
}

fn status(status: ServiceStatus) -> &'static str {
    match status {
        ServiceStatus::Active => "active",
        ServiceStatus::Inactive => "inactive",
        ServiceStatus::TemporarilyClosed => "temporarily closed",
    }
}

fn rfc3339(seconds: i64) -> Option<String> {
    (seconds > 0).then(|| {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds as u64);
        humantime::format_rfc3339_seconds(t).to_string()
    })
}

/// `value` without its `null` members, at every depth: HSDS's schema wants an optional
/// field absent, not `null` (a `null` fails its `type`).
fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

/// One organisation as an HSDS `organization` with nested locations and services; an
/// optional field without a value is left out.
pub fn organization(record: &OrganisationRecord, lang: Lang) -> Value {
    without_nulls(organization_with_nulls(record, lang))
}

fn organization_with_nulls(record: &OrganisationRecord, lang: Lang) -> Value {
    let org = record.org_id.as_str();
    let org_uuid = uuid(&["organization", org]);
    let profile = &record.profile;
    let contacts: Vec<Value> = profile
        .contacts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let id = uuid(&["contact", org, &i.to_string()]);
            json!({
                "id": id,
                "organization_id": org_uuid,
                "name": c.name,
                "title": c.title,
                "email": c.email,
                "phones": c.phone.as_ref().map(|p| vec![json!({"id": uuid(&["phone", &id]), "contact_id": id, "number": p})]).unwrap_or_default(),
            })
        })
        .collect();
    let locations: Vec<Value> = record
        .offices
        .iter()
        .map(|(office_id, office)| {
            let id = uuid(&["location", org, office_id]);
            let region = areas::region(&office.region);
            let pcode = office.department.clone().unwrap_or_else(|| office.region.clone());
            json!({
                "id": id,
                "location_type": "physical",
                "organization_id": org_uuid,
                "name": office.name,
                "latitude": office.latitude,
                "longitude": office.longitude,
                "external_identifier": pcode,
                "external_identifier_type": "OCHA P-code",
                "addresses": [{
                    "id": uuid(&["address", &id]),
                    "location_id": id,
                    "address_1": office.address.clone().unwrap_or_else(|| office.town.clone()),
                    "city": office.town,
                    "region": office.department.as_deref().and_then(areas::department).map(|d| d.name(lang)),
                    "state_province": region.map(|r| r.name(lang)),
                    "postal_code": "",
                    "country": "CM",
                    "address_type": "physical",
                }],
                "attributes": [attribute(&id, "location", "passerelle_id", term("office_id", "Passerelle office id", "passerelle"), Some(office_id))],
            })
        })
        .collect();
    let services: Vec<Value> = record
        .services
        .iter()
        .map(|(service_id, s)| {
            let id = uuid(&["service", org, service_id]);
            let mut attributes: Vec<Value> = s
                .categories
                .iter()
                .map(|code| {
                    let label = taxonomy::category(code).map_or(code.as_str(), |c| c.label(lang));
                    attribute(&id, "service", "service_category", term(code, label, TAXONOMY), None)
                })
                .collect();
            attributes.push(attribute(
                &id,
                "service",
                "dimension",
                term(s.dimension.code(), s.dimension.label(lang), TAXONOMY),
                None,
            ));
            attributes.push(attribute(
                &id,
                "service",
                "capacity",
                term("capacity", "Capacity", "passerelle"),
                Some(&match s.capacity.places {
                    Some(places) => format!("{:?}:{places}", s.capacity.status).to_lowercase(),
                    None => format!("{:?}", s.capacity.status).to_lowercase(),
                }),
            ));
            attributes.push(attribute(&id, "service", "passerelle_id", term("service_id", "Passerelle service id", "passerelle"), Some(service_id)));
            let service_areas: Vec<Value> = s
                .service_area
                .regions
                .iter()
                .map(|r| (r.clone(), areas::region(r).map(|r| r.name(lang))))
                .chain(s.service_area.departments.iter().map(|d| (d.clone(), areas::department(d).map(|d| d.name(lang)))))
                .map(|(pcode, name)| {
                    json!({
                        "id": uuid(&["service_area", &id, &pcode]),
                        "service_id": id,
                        "name": name,
                        "extent": pcode,
                        "extent_type": "text",
                        "description": "OCHA P-code",
                    })
                })
                .collect();
            let (option, amount) = match s.cost {
                Cost::Free => ("free", None),
                Cost::CostShared => ("cost shared", None),
                Cost::Fee { amount_xaf } => ("fee", Some(amount_xaf)),
            };
            json!({
                "id": id,
                "organization_id": org_uuid,
                "name": s.name,
                "description": s.description,
                "status": status(s.status),
                "eligibility_description": s.eligibility,
                "fees_description": s.cost.to_string(),
                "last_modified": rfc3339(s.last_update),
                "languages": s.languages.iter().map(|code| json!({"id": uuid(&["language", &id, code]), "service_id": id, "code": code})).collect::<Vec<_>>(),
                "service_areas": service_areas,
                "service_at_locations": s.offices.iter().map(|o| json!({
                    "id": uuid(&["service_at_location", &id, o]),
                    "service_id": id,
                    "location_id": uuid(&["location", org, o]),
                })).collect::<Vec<_>>(),
                "cost_options": [{
                    "id": uuid(&["cost_option", &id]),
                    "service_id": id,
                    "option": option,
                    "currency": "XAF",
                    "amount": amount,
                }],
                "schedules": s.schedule.as_ref().map(|text| vec![json!({"id": uuid(&["schedule", &id]), "service_id": id, "description": text})]).unwrap_or_default(),
                "required_documents": s.required_documents.iter().map(|d| json!({"id": uuid(&["required_document", &id, d]), "service_id": id, "document": d})).collect::<Vec<_>>(),
                "contacts": s.contact.as_ref().map(|c| {
                    let contact_id = uuid(&["contact", &id]);
                    vec![json!({
                        "id": contact_id,
                        "service_id": id,
                        "name": c.name,
                        "title": c.title,
                        "email": c.email,
                        "phones": c.phone.as_ref().map(|p| vec![json!({"id": uuid(&["phone", &contact_id]), "contact_id": contact_id, "number": p})]).unwrap_or_default(),
                    })]
                }).unwrap_or_default(),
                "attributes": attributes,
            })
        })
        .collect();
    let mut organization_attributes = Vec::new();
    if !profile.languages.is_empty() {
        organization_attributes.push(attribute(
            &org_uuid,
            "organization",
            "passerelle_languages",
            term("languages", "Working languages (ISO 639)", "passerelle"),
            Some(&profile.languages.join(" ")),
        ));
    }
    if let Some(parent) = &profile.parent_organisation {
        organization_attributes.push(attribute(
            &org_uuid,
            "organization",
            "passerelle_parent",
            term("parent_organisation", "Parent organisation", "passerelle"),
            Some(parent),
        ));
    }
    json!({
        "id": org_uuid,
        "name": profile.name,
        "alternate_name": profile.acronym,
        "description": profile.description.clone().unwrap_or_else(|| profile.name.clone()),
        "email": profile.contacts.iter().find_map(|c| c.email.clone()),
        "website": profile.website,
        "legal_status": profile.legal_status.map(|s| serde_json::to_value(s).unwrap_or(Value::Null)),
        "organization_identifiers": [{
            "id": uuid(&["organization_identifier", org]),
            "organization_id": org_uuid,
            "identifier_scheme": "passerelle",
            "identifier_type": "Passerelle organisation key (ed25519, base32)",
            "identifier": org,
        }],
        "contacts": contacts,
        "attributes": organization_attributes,
        "locations": locations,
        "services": services,
    })
}

/// Every organisation, as the HSDS `organization_list` body (a JSON array).
pub fn organizations<'a>(
    records: impl IntoIterator<Item = &'a OrganisationRecord>,
    lang: Lang,
) -> Value {
    Value::Array(records.into_iter().map(|r| organization(r, lang)).collect())
}

/// The table a nested HSDS field's objects go to in the tabular package.
fn table_of(field: &str) -> Option<&'static str> {
    Some(match field {
        "locations" => "location",
        "addresses" => "address",
        "services" => "service",
        "service_areas" => "service_area",
        "service_at_locations" => "service_at_location",
        "cost_options" => "cost_option",
        "languages" => "language",
        "attributes" => "attribute",
        "taxonomy_term" => "taxonomy_term",
        "contacts" => "contact",
        "phones" => "phone",
        "organization_identifiers" => "organization_identifier",
        "schedules" => "schedule",
        "required_documents" => "required_document",
        _ => return None,
    })
}

#[derive(Default)]
struct Table {
    columns: Vec<String>,
    rows: Vec<serde_json::Map<String, Value>>,
    ids: std::collections::BTreeSet<String>,
}

fn flatten(
    tables: &mut std::collections::BTreeMap<&'static str, Table>,
    table: &'static str,
    object: &Value,
) {
    let Some(fields) = object.as_object() else {
        return;
    };
    let mut row = serde_json::Map::new();
    for (key, value) in fields {
        match value {
            Value::Array(items) if items.iter().all(Value::is_object) => {
                if let Some(child) = table_of(key) {
                    for item in items {
                        flatten(tables, child, item);
                    }
                }
            }
            Value::Object(_) => {
                if let Some(child) = table_of(key) {
                    flatten(tables, child, value);
                }
            }
            Value::Array(_) => {}
            scalar => {
                row.insert(key.clone(), scalar.clone());
            }
        }
    }
    let entry = tables.entry(table).or_default();
    let id = row
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !id.is_empty() && !entry.ids.insert(id) {
        return; // a taxonomy term shared by several services: one row
    }
    for key in row.keys() {
        if !entry.columns.contains(key) {
            entry.columns.push(key.clone());
        }
    }
    entry.rows.push(row);
}

/// Open Referral's HSDS 3.0 tabular data package (`node/core/data/openreferral`): file
/// names, fields in their order, keys.
const OPEN_REFERRAL_PACKAGE: &str = include_str!("../../data/openreferral/datapackage.json");

/// Why the tabular package could not be written.
#[derive(Debug, thiserror::Error)]
pub enum TabularError {
    /// Writing a CSV failed.
    #[error(transparent)]
    Csv(#[from] csv::Error),
    /// Open Referral's package description, built in, did not read (a build defect).
    #[error("Open Referral's datapackage.json does not read: {0}")]
    Package(String),
}

/// The HSDS tabular data package, as Open Referral describes it (its `datapackage.json`):
/// one CSV per table that has rows, under Open Referral's file name (`organizations.csv`,
/// `services.csv`, `locations.csv`, …) with Open Referral's fields as columns in their
/// order, foreign keys as `*_id` columns; and the `datapackage.json` of those resources, with
/// the foreign keys to resources that are present (as Open Referral's own
/// `examples/make_datapackages.py` does). Returns (file name, bytes) pairs.
pub fn tabular_package(organizations: &Value) -> Result<Vec<(String, Vec<u8>)>, TabularError> {
    let mut tables = std::collections::BTreeMap::new();
    for organization in organizations.as_array().into_iter().flatten() {
        flatten(&mut tables, "organization", organization);
    }
    let package: Value = serde_json::from_str(OPEN_REFERRAL_PACKAGE)
        .map_err(|e| TabularError::Package(e.to_string()))?;
    let present: std::collections::BTreeSet<&str> = tables.keys().copied().collect();
    let mut files = Vec::new();
    let mut resources = Vec::new();
    for resource in package["resources"].as_array().into_iter().flatten() {
        let Some(table) = resource["name"].as_str().and_then(|n| tables.get(n)) else {
            continue;
        };
        let path = resource["path"]
            .as_str()
            .ok_or_else(|| TabularError::Package("a resource without a path".into()))?;
        let columns: Vec<&str> = resource["schema"]["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["name"].as_str())
            .collect();
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(&columns)?;
        for row in &table.rows {
            writer.write_record(columns.iter().map(|c| match row.get(*c) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            }))?;
        }
        let bytes = writer
            .into_inner()
            .map_err(|e| csv::Error::from(std::io::Error::other(e.to_string())))?;
        files.push((path.to_owned(), bytes));
        let mut resource = resource.clone();
        if resource["name"] == "address" {
            relax_postal_code(&mut resource);
        }
        if let Some(schema) = resource["schema"].as_object_mut() {
            let keys: Vec<Value> = schema
                .remove("foreignKeys")
                .and_then(|k| k.as_array().cloned())
                .unwrap_or_default()
                .into_iter()
                .filter(|k| {
                    k["reference"]["resource"]
                        .as_str()
                        .is_some_and(|r| present.contains(r))
                })
                .collect();
            // Open Referral writes `null` where a table has none, which frictionless
            // refuses: left out then.
            if !keys.is_empty() {
                schema.insert("foreignKeys".into(), Value::Array(keys));
            }
        }
        resources.push(resource);
    }
    let package = json!({
        "name": "passerelle-hsds",
        "title": "Passerelle directory — Open Referral HSDS 3.0",
        "profile": "tabular-data-package",
        "resources": resources,
    });
    files.push((
        "datapackage.json".to_owned(),
        serde_json::to_vec_pretty(&package).unwrap_or_default(),
    ));
    Ok(files)
}

/// The Cameroon profile's one change to Open Referral's package: Cameroon has no postal
/// codes, so an address's `postal_code` (required by HSDS's tabular package, an empty
/// string in the JSON) is not required (docs/cartography.md).
fn relax_postal_code(resource: &mut Value) {
    for field in resource["schema"]["fields"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        if field["name"] == "postal_code"
            && let Some(constraints) = field["constraints"].as_object_mut()
        {
            constraints.insert("required".into(), Value::Bool(false));
        }
    }
}

/// The fields of our tables that Open Referral's package has no column for (left out of
/// the tabular package; the JSON keeps them). Empty: a test holds it so.
#[cfg(test)]
pub(crate) fn columns_left_out(organizations: &Value) -> Vec<(String, String)> {
    let mut tables = std::collections::BTreeMap::new();
    for organization in organizations.as_array().into_iter().flatten() {
        flatten(&mut tables, "organization", organization);
    }
    let package: Value = serde_json::from_str(OPEN_REFERRAL_PACKAGE).expect("package");
    let mut out = Vec::new();
    for (name, table) in &tables {
        let resource = package["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["name"] == *name);
        let fields: Vec<&str> = resource
            .map(|r| {
                r["schema"]["fields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        for column in &table.columns {
            if !fields.contains(&column.as_str()) {
                out.push((name.to_string(), column.clone()));
            }
        }
    }
    out
}
