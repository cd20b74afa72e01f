//! `passerelle export csv --hxl`: the 3W table (who does what where) humanitarian
//! coordinators read, one row per service and place, with a second header row of HXL
//! hashtags. It passes libhxl's `hxlvalidate` with HXL's core schema (a test runs it):
//! `#value` holds numbers only — the cost's amount, its kind in words under `#meta+cost`
//! and its currency under `#currency`.

use crate::model::{Cost, LegalStatus, OrganisationRecord, ServiceStatus};
use crate::reference::{Lang, areas, taxonomy};

use super::places;

/// Columns: the human header and its HXL hashtag.
pub const COLUMNS: [(&str, &str); 20] = [
    ("organisation", "#org+name"),
    ("acronym", "#org+acronym"),
    ("organisation_type", "#org+type"),
    ("organisation_id", "#org+id"),
    ("dimension", "#sector"),
    ("category", "#subsector"),
    ("service", "#activity+name"),
    ("service_id", "#activity+id"),
    ("region_code", "#adm1+code"),
    ("region", "#adm1+name"),
    ("department_code", "#adm2+code"),
    ("department", "#adm2+name"),
    ("status", "#status"),
    ("capacity", "#status+capacity"),
    ("cost", "#meta+cost"),
    ("cost_amount", "#value+cost"),
    ("cost_currency", "#currency"),
    ("languages", "#meta+languages"),
    ("contact_email", "#contact+email"),
    ("contact_phone", "#contact+phone"),
];

fn legal_status(status: Option<LegalStatus>, lang: Lang) -> &'static str {
    match (status, lang) {
        (None, _) => "",
        (Some(LegalStatus::Government), Lang::Fr) => "Gouvernement",
        (Some(LegalStatus::Government), Lang::En) => "Government",
        (Some(LegalStatus::Ngo), _) => match lang {
            Lang::Fr => "ONG",
            Lang::En => "NGO",
        },
        (Some(LegalStatus::International), Lang::Fr) => "Organisation internationale",
        (Some(LegalStatus::International), Lang::En) => "International organisation",
        (Some(LegalStatus::Private), Lang::Fr) => "Secteur privé",
        (Some(LegalStatus::Private), Lang::En) => "Private sector",
        (Some(LegalStatus::Community), Lang::Fr) => "Organisation communautaire",
        (Some(LegalStatus::Community), Lang::En) => "Community-based organisation",
    }
}

/// The cost's kind in words, its amount (a fee's) and currency.
fn cost(cost: Cost, lang: Lang) -> [String; 3] {
    let kind = match (cost, lang) {
        (Cost::Free, Lang::Fr) => "Gratuit",
        (Cost::Free, Lang::En) => "Free",
        (Cost::CostShared, Lang::Fr) => "Partage des coûts",
        (Cost::CostShared, Lang::En) => "Cost shared",
        (Cost::Fee { .. }, Lang::Fr) => "Payant",
        (Cost::Fee { .. }, Lang::En) => "Fee",
    };
    match cost {
        Cost::Fee { amount_xaf } => [kind.into(), amount_xaf.to_string(), "XAF".into()],
        _ => [kind.into(), String::new(), String::new()],
    }
}

fn status(status: ServiceStatus) -> &'static str {
    match status {
        ServiceStatus::Active => "active",
        ServiceStatus::Inactive => "inactive",
        ServiceStatus::TemporarilyClosed => "temporarily_closed",
    }
}

/// The rows of the 3W table (without headers): one per service, category and place, sorted
/// by organisation, acronym, type, …, column by column, as a French reader sorts
/// (case and accents folded: "Économique" with the E's), then by the exact text. Labels
/// in `lang`.
pub fn rows<'a>(
    records: impl IntoIterator<Item = &'a OrganisationRecord>,
    lang: Lang,
) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for record in records {
        let profile = &record.profile;
        let email = profile
            .contacts
            .iter()
            .find_map(|c| c.email.clone())
            .unwrap_or_default();
        let phone = profile
            .contacts
            .iter()
            .find_map(|c| c.phone.clone())
            .unwrap_or_default();
        for (service_id, service) in &record.services {
            let mut places = places(record, service);
            if places.is_empty() {
                places.push(super::Place {
                    region: String::new(),
                    department: None,
                });
            }
            let categories: Vec<String> = if service.categories.is_empty() {
                vec![String::new()]
            } else {
                service.categories.clone()
            };
            for category in &categories {
                for place in &places {
                    let region = areas::region(&place.region);
                    let department = place.department.as_deref().and_then(areas::department);
                    let [cost_kind, cost_amount, cost_currency] = cost(service.cost, lang);
                    rows.push(vec![
                        profile.name.clone(),
                        profile.acronym.clone().unwrap_or_default(),
                        legal_status(profile.legal_status, lang).to_owned(),
                        record.org_id.clone(),
                        service.dimension.label(lang).to_owned(),
                        taxonomy::category(category)
                            .map(|c| c.label(lang).to_owned())
                            .unwrap_or_else(|| category.clone()),
                        service.name.clone(),
                        service_id.clone(),
                        place.region.clone(),
                        region.map(|r| r.name(lang).to_owned()).unwrap_or_default(),
                        place.department.clone().unwrap_or_default(),
                        department
                            .map(|d| d.name(lang).to_owned())
                            .unwrap_or_default(),
                        status(service.status).to_owned(),
                        format!("{:?}", service.capacity.status).to_lowercase(),
                        cost_kind,
                        cost_amount,
                        cost_currency,
                        service.languages.join(" "),
                        email.clone(),
                        phone.clone(),
                    ]);
                }
            }
        }
    }
    rows.sort_by_cached_key(|row| {
        (
            row.iter()
                .map(|cell| crate::directory::fold(cell))
                .collect::<Vec<_>>(),
            row.clone(),
        )
    });
    rows
}

/// The 3W table as CSV: the human header, the HXL hashtag row (when `hxl`), the rows.
pub fn csv<'a>(
    records: impl IntoIterator<Item = &'a OrganisationRecord>,
    lang: Lang,
    hxl: bool,
) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(COLUMNS.iter().map(|(name, _)| *name))?;
    if hxl {
        writer.write_record(COLUMNS.iter().map(|(_, tag)| *tag))?;
    }
    for row in rows(records, lang) {
        writer.write_record(&row)?;
    }
    writer
        .into_inner()
        .map_err(|e| csv::Error::from(std::io::Error::other(e.to_string())))
}
