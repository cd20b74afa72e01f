//! `passerelle report actors`: the "répartition des acteurs par domaine" — organisations and
//! services by dimension, category, region and department, and the gaps: regions where no
//! organisation offers a category.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{OrganisationRecord, ServiceStatus};
use crate::reference::{Lang, areas, taxonomy};

use super::places;

/// Organisations and services counted under one key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Distinct organisations.
    pub organisations: u64,
    /// Services (active ones).
    pub services: u64,
}

/// A region with no active provider of a category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// Region P-code.
    pub region: String,
    /// Region name.
    pub region_name: String,
    /// Category code.
    pub category: String,
    /// Category label.
    pub category_label: String,
}

/// The report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorsReport {
    /// Organisations in the directory.
    pub organisations: u64,
    /// Active services.
    pub services: u64,
    /// By dimension label.
    pub by_dimension: BTreeMap<String, Counts>,
    /// By category label.
    pub by_category: BTreeMap<String, Counts>,
    /// By region (P-code and name).
    pub by_region: BTreeMap<String, Counts>,
    /// By department (P-code and name), where services name one.
    pub by_department: BTreeMap<String, Counts>,
    /// Regions × categories with no active provider.
    pub gaps: Vec<Gap>,
}

fn add(map: &mut BTreeMap<String, (BTreeSet<String>, u64)>, key: String, org: &str) {
    let entry = map.entry(key).or_default();
    entry.0.insert(org.to_owned());
    entry.1 += 1;
}

fn finish(map: BTreeMap<String, (BTreeSet<String>, u64)>) -> BTreeMap<String, Counts> {
    map.into_iter()
        .map(|(k, (orgs, services))| {
            (
                k,
                Counts {
                    organisations: orgs.len() as u64,
                    services,
                },
            )
        })
        .collect()
}

/// The report over `records`, labels in `lang`. Only active services count.
pub fn report<'a>(
    records: impl IntoIterator<Item = &'a OrganisationRecord>,
    lang: Lang,
) -> ActorsReport {
    let mut report = ActorsReport::default();
    let (mut dimension, mut category, mut region, mut department) = Default::default();
    let mut covered: BTreeSet<(String, String)> = BTreeSet::new();
    for record in records {
        report.organisations += 1;
        let org = record.org_id.as_str();
        for service in record.services.values() {
            if service.status != ServiceStatus::Active {
                continue;
            }
            report.services += 1;
            add(
                &mut dimension,
                service.dimension.label(lang).to_owned(),
                org,
            );
            for code in &service.categories {
                let label = taxonomy::category(code).map_or(code.as_str(), |c| c.label(lang));
                add(&mut category, label.to_owned(), org);
            }
            let places = places(record, service);
            let regions: BTreeSet<&str> = places.iter().map(|p| p.region.as_str()).collect();
            for code in &regions {
                let name = areas::region(code).map_or("", |r| r.name(lang));
                add(&mut region, format!("{code} {name}"), org);
                for c in &service.categories {
                    covered.insert(((*code).to_owned(), c.clone()));
                }
            }
            for place in &places {
                if let Some(code) = &place.department {
                    let name = areas::department(code).map_or("", |d| d.name(lang));
                    add(&mut department, format!("{code} {name}"), org);
                }
            }
        }
    }
    report.by_dimension = finish(dimension);
    report.by_category = finish(category);
    report.by_region = finish(region);
    report.by_department = finish(department);
    for r in areas::REGIONS.iter() {
        for c in taxonomy::CATEGORIES.iter() {
            if !covered.contains(&(r.pcode.to_owned(), c.code.to_owned())) {
                report.gaps.push(Gap {
                    region: r.pcode.to_owned(),
                    region_name: r.name(lang).to_owned(),
                    category: c.code.to_owned(),
                    category_label: c.label(lang).to_owned(),
                });
            }
        }
    }
    report
}
