//! `passerelle export geojson`: the mapping as a GeoJSON FeatureCollection (RFC 7946).
//!
//! - Each office with coordinates is a `Point` feature: its organisation, name, town, region
//!   and department codes and names, and the services delivered there.
//! - Each administrative area where services are offered is a feature **without geometry**
//!   (`"geometry": null`, allowed by RFC 7946) keyed by its OCHA P-code (`adm1_pcode` or
//!   `adm2_pcode`), with the number of organisations and services per dimension: join it to
//!   the OCHA administrative boundaries layer of Cameroon in a GIS to draw it. Passerelle
//!   does not ship boundary shapes.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::model::OrganisationRecord;
use crate::reference::{Lang, areas};

use super::places;

#[derive(Default)]
struct AreaCounts {
    organisations: BTreeSet<String>,
    services: BTreeMap<&'static str, u64>,
}

/// The FeatureCollection, labels in `lang`.
pub fn feature_collection<'a>(
    records: impl IntoIterator<Item = &'a OrganisationRecord>,
    lang: Lang,
) -> Value {
    let mut features = Vec::new();
    let mut by_area: BTreeMap<(u8, String), AreaCounts> = BTreeMap::new();
    for record in records {
        for (office_id, office) in &record.offices {
            let (Some(latitude), Some(longitude)) = (office.latitude, office.longitude) else {
                continue;
            };
            let services: Vec<&str> = record
                .services
                .values()
                .filter(|s| s.offices.contains(office_id))
                .map(|s| s.name.as_str())
                .collect();
            features.push(json!({
                "type": "Feature",
                "id": format!("{}/{office_id}", record.org_id),
                "geometry": {"type": "Point", "coordinates": [longitude, latitude]},
                "properties": {
                    "kind": "office",
                    "organisation": record.profile.name,
                    "organisation_id": record.org_id,
                    "office": office.name,
                    "town": office.town,
                    "adm1_pcode": office.region,
                    "adm1_name": areas::region(&office.region).map(|r| r.name(lang)),
                    "adm2_pcode": office.department,
                    "adm2_name": office.department.as_deref().and_then(areas::department).map(|d| d.name(lang)),
                    "services": services,
                },
            }));
        }
        for service in record.services.values() {
            for place in places(record, service) {
                let key = match &place.department {
                    Some(department) => (2, department.clone()),
                    None => (1, place.region.clone()),
                };
                let counts = by_area.entry(key).or_default();
                counts.organisations.insert(record.org_id.clone());
                *counts.services.entry(service.dimension.code()).or_default() += 1;
            }
        }
    }
    for ((level, pcode), counts) in by_area {
        let name = if level == 1 {
            areas::region(&pcode).map(|r| r.name(lang))
        } else {
            areas::department(&pcode).map(|d| d.name(lang))
        };
        let total: u64 = counts.services.values().sum();
        features.push(json!({
            "type": "Feature",
            "id": pcode,
            "geometry": null,
            "properties": {
                "kind": "service_area",
                "admin_level": level,
                format!("adm{level}_pcode"): pcode,
                format!("adm{level}_name"): name,
                "organisations": counts.organisations.len(),
                "services": total,
                "services_by_dimension": counts.services,
            },
        }));
    }
    json!({"type": "FeatureCollection", "features": features})
}
