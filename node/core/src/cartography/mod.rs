//! The actor mapping in and out, in the formats the field uses: mapping spreadsheets (CSV,
//! xlsx) and Open Referral HSDS 3.0 (JSON, tabular package) in ([`import`],
//! [`hsds_import`]); HSDS 3.0, a 3W table with HXL hashtags ([`hxl`]), GeoJSON, and the
//! report of actors by domain and area with its gaps ([`actors`]) out.
//!
//! Everything here is pure: it takes file contents or the organisation records a node holds
//! and returns entries, edits, rows, JSON or text. The CLI reads and writes the files.

pub mod actors;
pub mod geojson;
pub mod headers;
pub mod hsds;
pub mod hsds_import;
pub mod hxl;
pub mod import;
pub mod owner;

use crate::model::{OrganisationRecord, Service, ServiceArea};
use crate::reference::areas;

/// Why a whole file (a spreadsheet, an HSDS export) cannot be read. A row that cannot
/// be read is not this: it is listed with the others' errors and the rest is read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The header row of a CSV file does not parse.
    #[error("{file}the header row cannot be read: {reason}")]
    HeaderRow {
        /// The file, with `: ` after it, in a package of several; empty for one file.
        file: String,
        /// The CSV reader's message.
        reason: String,
    },
    /// The header row lacks required columns.
    #[error("{message}")]
    MissingColumns {
        /// The required columns not found.
        missing: Vec<String>,
        /// How each column of the file was read.
        columns: Vec<headers::ColumnReading>,
        /// What is missing, how each column of the file was read, and how to say which
        /// column is which, in the user's language.
        message: String,
    },
    /// What the user said of the file's columns does not fit the file.
    #[error("{0}")]
    Columns(String),
    /// Not a workbook the reader knows.
    #[error("not a workbook that can be read (.xlsx, .xls, .ods): {0}")]
    NotAWorkbook(String),
    /// The sheet asked for is not in the workbook.
    #[error("no sheet {wanted:?}; sheets: {}", sheets.join(", "))]
    NoSuchSheet {
        /// The sheet asked for.
        wanted: String,
        /// The workbook's sheets.
        sheets: Vec<String>,
    },
    /// The workbook has no sheet at all.
    #[error("the workbook has no sheet")]
    NoSheet,
    /// A sheet that cannot be read, or is empty.
    #[error("sheet {sheet:?} {reason}")]
    Sheet {
        /// The sheet.
        sheet: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The reader failed on the file (a malformed file it does not check).
    #[error(transparent)]
    Reader(#[from] crate::automerge_guard::DecodeError),
    /// A row of an HSDS package's table that cannot be read (the package's tables refer to
    /// each other, so one bad row stops the package).
    #[error("{file}, row {row}: {reason}")]
    PackageRow {
        /// The file.
        file: String,
        /// The row (the header is row 1).
        row: usize,
        /// The CSV reader's message.
        reason: String,
    },
    /// Not HSDS the import reads: what it looked like, and what is read.
    #[error("{0}")]
    NotHsds(String),
}

/// One place a service is offered: a region, and a department when known.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Place {
    /// Region P-code.
    pub region: String,
    /// Department P-code, when the service names one (or an office in it).
    pub department: Option<String>,
}

/// Where a service is offered, from its service area and its offices, without repeats.
/// A department whose region is listed whole is left out (the region covers it).
pub fn places(record: &OrganisationRecord, service: &Service) -> Vec<Place> {
    let ServiceArea {
        regions,
        departments,
    } = &service.service_area;
    let mut found: Vec<Place> = regions
        .iter()
        .map(|r| Place {
            region: r.clone(),
            department: None,
        })
        .collect();
    let from_departments = departments.iter().filter_map(|d| {
        areas::department(d).map(|dep| Place {
            region: dep.region.to_owned(),
            department: Some(dep.pcode.to_owned()),
        })
    });
    let from_offices = service.offices.iter().filter_map(|o| {
        record.offices.get(o).map(|office| Place {
            region: office.region.clone(),
            department: office.department.clone(),
        })
    });
    for place in from_departments.chain(from_offices) {
        let whole_region = regions.contains(&place.region);
        if !whole_region && !found.contains(&place) {
            found.push(place);
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{self, Office, Profile};
    use crate::reference::Lang;

    fn record() -> OrganisationRecord {
        let office: Office = model::decode_json(
            "office",
            serde_json::json!({"name": "Antenne de Bonabéri", "region": "CM005",
                "department": "CM005004", "town": "Douala", "latitude": 4.07, "longitude": 9.68}),
        )
        .unwrap();
        let service =
            |value: serde_json::Value| -> Service { model::decode_json("service", value).unwrap() };
        let mut services = BTreeMap::new();
        services.insert(
            "svc-a".to_owned(),
            service(
                serde_json::json!({"name": "Formation", "dimension": "economic",
                "categories": ["vocational_training", "job_placement"], "cost": {"kind": "free"},
                "capacity": {"status": "available"},
                "service_area": {"regions": ["CM005"], "departments": ["CM005004", "CM008006"]},
                "offices": ["off-1"]}),
            ),
        );
        services.insert(
            "svc-b".to_owned(),
            service(
                serde_json::json!({"name": "Écoute", "dimension": "psychosocial",
                "categories": ["counselling"], "cost": {"kind": "fee", "amount_xaf": 2000},
                "capacity": {"status": "full"}, "offices": ["off-1"]}),
            ),
        );
        OrganisationRecord {
            offices: BTreeMap::from([("off-1".to_owned(), office)]),
            services,
            ..OrganisationRecord::new(
                "org-x",
                Profile {
                    acronym: Some("ARD".into()),
                    legal_status: Some(model::LegalStatus::Ngo),
                    ..Profile::named("Association Retour et Dignité")
                },
            )
        }
    }

    #[test]
    fn places_merge_the_area_and_the_offices_without_repeats() {
        let r = record();
        let found = places(&r, &r.services["svc-a"]);
        // The Littoral whole (its department and the office in it are covered), and one
        // department of the West.
        assert_eq!(
            found,
            vec![
                Place {
                    region: "CM005".into(),
                    department: None
                },
                Place {
                    region: "CM008".into(),
                    department: Some("CM008006".into())
                },
            ]
        );
        let found = places(&r, &r.services["svc-b"]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].department.as_deref(), Some("CM005004"));
    }

    #[test]
    fn the_3w_table_has_hxl_tags_and_one_row_per_category_and_place() {
        let r = record();
        let text = String::from_utf8(hxl::csv([&r], Lang::En, true).unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("organisation,acronym,organisation_type"));
        assert!(lines[1].starts_with("#org+name,#org+acronym,#org+type"));
        assert!(lines[1].contains("#adm1+code") && lines[1].contains("#sector"));
        // svc-a: 2 categories × 2 places; svc-b: 1 × 1.
        assert_eq!(lines.len(), 2 + 5);
        assert!(
            text.contains("Association Retour et Dignité,ARD,NGO"),
            "{text}"
        );
        assert!(text.contains("CM008006,Mifi"), "{text}");
        let fr = String::from_utf8(hxl::csv([&r], Lang::Fr, false).unwrap()).unwrap();
        assert!(fr.contains("Économique") && !fr.contains("#org"), "{fr}");
        // The cost: its kind in words, the amount alone under #value, the currency.
        assert!(
            lines[1].contains("#meta+cost,#value+cost,#currency"),
            "{text}"
        );
        assert!(text.contains(",Fee,2000,XAF,"), "{text}");
        assert!(
            fr.contains(",Payant,2000,XAF,") && fr.contains(",Gratuit,,,"),
            "{fr}"
        );
    }

    #[test]
    fn the_3w_rows_sort_as_a_french_reader_sorts() {
        let mut records = Vec::new();
        for name in [
            "Zénith",
            "Économie solidaire",
            "association Avenir",
            "Espoir",
        ] {
            let mut r = record();
            r.profile.name = name.into();
            records.push(r);
        }
        let names: Vec<String> = hxl::rows(&records, Lang::Fr)
            .into_iter()
            .map(|row| row[0].clone())
            .collect::<Vec<_>>()
            .into_iter()
            .fold(Vec::new(), |mut out, name| {
                if out.last() != Some(&name) {
                    out.push(name);
                }
                out
            });
        assert_eq!(
            names,
            [
                "association Avenir",
                "Économie solidaire",
                "Espoir",
                "Zénith"
            ]
        );
    }

    #[test]
    fn geojson_has_office_points_and_areas_by_pcode() {
        let r = record();
        let collection = geojson::feature_collection([&r], Lang::Fr);
        let features = collection["features"].as_array().unwrap();
        let office = &features[0];
        assert_eq!(office["geometry"]["type"], "Point");
        assert_eq!(office["geometry"]["coordinates"][0], 9.68);
        assert_eq!(
            office["properties"]["services"].as_array().unwrap().len(),
            2
        );
        let areas: Vec<&serde_json::Value> = features[1..].iter().collect();
        assert!(areas.iter().all(|a| a["geometry"].is_null()));
        assert!(
            areas
                .iter()
                .any(|a| a["properties"]["adm1_pcode"] == "CM005")
        );
        assert!(
            areas
                .iter()
                .any(|a| a["properties"]["adm2_pcode"] == "CM008006")
        );
    }

    #[test]
    fn hsds_organizations_nest_locations_and_services_with_stable_uuids() {
        let r = record();
        let org = hsds::organization(&r, Lang::Fr);
        let id = org["id"].as_str().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "8", "version 8 UUID: {id}");
        assert_eq!(hsds::organization(&r, Lang::Fr)["id"], org["id"], "stable");
        assert_eq!(org["alternate_name"], "ARD");
        assert_eq!(org["legal_status"], "ngo");
        assert_eq!(org["organization_identifiers"][0]["identifier"], "org-x");
        let location = &org["locations"][0];
        assert_eq!(location["location_type"], "physical");
        assert_eq!(location["addresses"][0]["country"], "CM");
        assert_eq!(location["addresses"][0]["postal_code"], "");
        let services = org["services"].as_array().unwrap();
        assert_eq!(services.len(), 2);
        let training = services.iter().find(|s| s["name"] == "Formation").unwrap();
        assert_eq!(training["status"], "active");
        assert_eq!(
            training["service_at_locations"][0]["location_id"],
            location["id"]
        );
        assert_eq!(training["service_areas"].as_array().unwrap().len(), 3);
        assert_eq!(training["cost_options"][0]["option"], "free");
        let categories: Vec<&str> = training["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["link_type"] == "service_category")
            .map(|a| a["taxonomy_term"]["code"].as_str().unwrap())
            .collect();
        assert_eq!(categories, vec!["vocational_training", "job_placement"]);
        let listening = services.iter().find(|s| s["name"] == "Écoute").unwrap();
        assert_eq!(listening["cost_options"][0]["amount"], 2000);
        assert_eq!(listening["cost_options"][0]["currency"], "XAF");

        // The tabular package: one table per kind, foreign keys as ids, shared terms once.
        let files = hsds::tabular_package(&hsds::organizations([&r], Lang::Fr)).unwrap();
        let text = |name: &str| {
            String::from_utf8(files.iter().find(|(n, _)| n == name).unwrap().1.clone()).unwrap()
        };
        let services_csv = text("services.csv");
        assert_eq!(services_csv.lines().count(), 3);
        assert!(
            services_csv
                .lines()
                .next()
                .unwrap()
                .contains("organization_id")
        );
        assert!(
            services_csv.contains(id),
            "services name their organization"
        );
        assert_eq!(text("service_areas.csv").lines().count(), 1 + 3);
        assert_eq!(text("locations.csv").lines().count(), 2);
        let terms = text("taxonomy_terms.csv");
        assert!(terms.contains("vocational_training"));
        let package: serde_json::Value = serde_json::from_slice(&files.last().unwrap().1).unwrap();
        assert_eq!(
            package["resources"].as_array().unwrap().len(),
            files.len() - 1
        );
        // Open Referral's file names and columns; nothing of ours left without a column.
        assert_eq!(
            text("organizations.csv").lines().next().unwrap(),
            "id,name,alternate_name,description,email,website,tax_status,tax_id,\
             year_incorporated,legal_status,logo,uri,parent_organization_id"
        );
        assert_eq!(
            hsds::columns_left_out(&hsds::organizations([&r], Lang::Fr)),
            Vec::<(String, String)>::new()
        );
        // No null in the JSON: an optional field without a value is absent.
        let org = hsds::organization(&r, Lang::Fr);
        assert!(!serde_json::to_string(&org).unwrap().contains("null"));
    }

    #[test]
    fn the_actors_report_counts_active_services_and_finds_gaps() {
        let r = record();
        let report = actors::report([&r], Lang::En);
        assert_eq!(report.organisations, 1);
        assert_eq!(report.services, 2);
        assert_eq!(report.by_dimension["Economic"].services, 1);
        assert_eq!(report.by_category["Vocational training"].organisations, 1);
        let littoral = report
            .by_region
            .keys()
            .find(|k| k.starts_with("CM005"))
            .unwrap();
        assert_eq!(report.by_region[littoral].services, 2);
        // Vocational training is offered in the Littoral and the West: not a gap there.
        assert!(
            !report
                .gaps
                .iter()
                .any(|g| g.region == "CM005" && g.category == "vocational_training")
        );
        assert!(
            !report
                .gaps
                .iter()
                .any(|g| g.region == "CM008" && g.category == "vocational_training")
        );
        assert!(
            report
                .gaps
                .iter()
                .any(|g| g.region == "CM001" && g.category == "vocational_training")
        );
        assert_eq!(report.gaps.len(), 10 * 22 - 2 - 2 - 1);
    }
}
