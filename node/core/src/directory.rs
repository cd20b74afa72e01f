//! Search over the directory: pure functions of the organisations' records and a query.
//!
//! A service matches when every filter given matches; free text looks in the service's and
//! the organisation's names and descriptions, ignoring case and accents. Results are sorted
//! by organisation name, then service name.

use serde::{Deserialize, Serialize};

use crate::model::{CapacityStatus, OrganisationRecord, Service, ServiceStatus};
use crate::reference::{areas, taxonomy::Dimension};

/// A directory query; every field is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Words that must all appear in the name or description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Dimension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimension: Option<Dimension>,
    /// Category code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Region P-code: the service area or an office of the service lies in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Department P-code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// Cost kind: `free`, `cost_shared` or `fee`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<String>,
    /// Highest fee in XAF (free and cost-shared services always pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_fee_xaf: Option<u64>,
    /// Language code the service is offered in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Capacity status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<CapacityStatus>,
    /// Include inactive and temporarily closed services.
    #[serde(default)]
    pub include_inactive: bool,
    /// Search the unclaimed drafts of a historical mapping instead of the members' own
    /// entries.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drafts: bool,
}

/// A service found by a search, with its organisation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServiceHit {
    /// The organisation's id.
    pub org_id: String,
    /// The organisation's name.
    pub org_name: String,
    /// The service's id within the organisation.
    pub service_id: String,
    /// The service.
    pub service: Service,
    /// For a draft: who published it (unverified until the organisation claims it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft_by: Option<String>,
}

pub use crate::text::fold;

fn in_region(record: &OrganisationRecord, service: &Service, region: &str) -> bool {
    service.service_area.regions.iter().any(|r| r == region)
        || service
            .service_area
            .departments
            .iter()
            .any(|d| areas::department(d).is_some_and(|d| d.region == region))
        || service
            .offices
            .iter()
            .any(|o| record.offices.get(o).is_some_and(|o| o.region == region))
}

fn in_department(record: &OrganisationRecord, service: &Service, department: &str) -> bool {
    let region = areas::department(department).map(|d| d.region);
    service.service_area.departments.iter().any(|d| d == department)
        // A service offered in the whole region covers each of its departments.
        || region.is_some_and(|r| service.service_area.regions.iter().any(|s| s == r))
        || service.offices.iter().any(|o| {
            record
                .offices
                .get(o)
                .is_some_and(|o| o.department.as_deref() == Some(department))
        })
}

/// True if `service` of `record` matches `query`.
pub fn matches(record: &OrganisationRecord, service: &Service, query: &SearchQuery) -> bool {
    if !query.include_inactive && service.status != ServiceStatus::Active {
        return false;
    }
    if query.dimension.is_some_and(|d| d != service.dimension) {
        return false;
    }
    if let Some(category) = &query.category
        && !service.categories.iter().any(|c| c == category)
    {
        return false;
    }
    if let Some(region) = &query.region
        && !in_region(record, service, region)
    {
        return false;
    }
    if let Some(department) = &query.department
        && !in_department(record, service, department)
    {
        return false;
    }
    if let Some(kind) = &query.cost
        && service.cost.kind() != kind.replace('-', "_")
    {
        return false;
    }
    if let (Some(max), crate::model::Cost::Fee { amount_xaf }) = (query.max_fee_xaf, service.cost)
        && amount_xaf > max
    {
        return false;
    }
    if let Some(language) = &query.language
        && !service.languages.iter().any(|l| l == language)
        && !(service.languages.is_empty() && record.profile.languages.contains(language))
    {
        return false;
    }
    if query.capacity.is_some_and(|c| c != service.capacity.status) {
        return false;
    }
    if let Some(text) = &query.text {
        let haystack = fold(&format!(
            "{} {} {} {}",
            service.name,
            service.description.as_deref().unwrap_or(""),
            record.profile.name,
            record.profile.acronym.as_deref().unwrap_or("")
        ));
        if !fold(text)
            .split_whitespace()
            .all(|word| haystack.contains(word))
        {
            return false;
        }
    }
    true
}

/// Every service of `records` that matches `query`, sorted.
pub fn search<'a>(
    records: impl IntoIterator<Item = &'a OrganisationRecord>,
    query: &SearchQuery,
) -> Vec<ServiceHit> {
    let mut hits: Vec<ServiceHit> = records
        .into_iter()
        .flat_map(|record| {
            record
                .services
                .iter()
                .filter(|(_, service)| matches(record, service, query))
                .map(|(id, service)| ServiceHit {
                    org_id: record.org_id.clone(),
                    org_name: record.profile.name.clone(),
                    service_id: id.clone(),
                    service: service.clone(),
                    draft_by: None,
                })
        })
        .collect();
    hits.sort_by_cached_key(|h| (fold(&h.org_name), fold(&h.service.name)));
    hits
}

/// A draft no organisation has claimed yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenDraft {
    /// The draft id.
    pub id: String,
    /// Who published it: organisation id and name.
    pub publisher: String,
    /// The publisher's name.
    pub publisher_name: String,
    /// The draft, as a record whose `org_id` is the draft id (so search and the exports
    /// read it like any organisation's).
    pub record: OrganisationRecord,
    /// The file it came from.
    pub source: Option<String>,
    /// When it was published.
    pub published: i64,
}

/// Every draft that no organisation's document claims, by publisher then name.
pub fn open_drafts<'a>(
    records: impl IntoIterator<Item = &'a OrganisationRecord> + Clone,
) -> Vec<OpenDraft> {
    let claimed: std::collections::BTreeSet<&String> = records
        .clone()
        .into_iter()
        .flat_map(|r| r.claims.keys())
        .collect();
    let mut drafts: Vec<OpenDraft> = records
        .into_iter()
        .flat_map(|publisher| {
            let claimed = &claimed;
            publisher
                .drafts
                .iter()
                .filter(move |(id, _)| !claimed.contains(id))
                .map(move |(id, draft)| {
                    let entries = &draft.entries;
                    let mut record = OrganisationRecord::new(
                        id.clone(),
                        crate::model::Profile {
                            acronym: entries.acronym.clone(),
                            legal_status: entries.legal_status,
                            description: entries.description.clone(),
                            website: entries.website.clone(),
                            languages: entries.languages.clone(),
                            parent_organisation: entries.parent_organisation.clone(),
                            contacts: entries.contacts.clone(),
                            ..crate::model::Profile::named(draft.name.clone())
                        },
                    );
                    record.offices = entries.offices.clone();
                    record.services = entries.services.clone();
                    OpenDraft {
                        id: id.clone(),
                        publisher: publisher.org_id.clone(),
                        publisher_name: publisher.profile.name.clone(),
                        record,
                        source: draft.source.clone(),
                        published: draft.published,
                    }
                })
        })
        .collect();
    drafts.sort_by_cached_key(|d| (fold(&d.publisher_name), fold(&d.record.profile.name)));
    drafts
}

/// Searches the open drafts; each hit names its draft (as `org_id`) and its publisher.
pub fn search_drafts<'a>(
    records: impl IntoIterator<Item = &'a OrganisationRecord> + Clone,
    query: &SearchQuery,
) -> Vec<ServiceHit> {
    let drafts = open_drafts(records);
    let mut hits = Vec::new();
    for draft in &drafts {
        for mut hit in search([&draft.record], query) {
            hit.draft_by = Some(draft.publisher_name.clone());
            hits.push(hit);
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use std::collections::BTreeMap;

    fn record() -> OrganisationRecord {
        let mut services = BTreeMap::new();
        services.insert(
            "svc-a".to_owned(),
            Service {
                name: "Formation en électricité".into(),
                description: None,
                dimension: Dimension::Economic,
                categories: vec!["vocational_training".into()],
                eligibility: None,
                cost: Cost::Fee { amount_xaf: 10_000 },
                capacity: Capacity {
                    status: CapacityStatus::Waitlist,
                    places: Some(4),
                },
                languages: vec!["fr".into()],
                service_area: ServiceArea {
                    regions: vec!["CM005".into()],
                    departments: vec![],
                },
                offices: vec![],
                schedule: None,
                required_documents: vec![],
                contact: None,
                status: ServiceStatus::Active,
                last_update: 0,
            },
        );
        OrganisationRecord {
            services,
            ..OrganisationRecord::new("x", Profile::named("Centre Espoir"))
        }
    }

    #[test]
    fn filters_combine() {
        let r = record();
        let find = |q: SearchQuery| search([&r], &q).len();
        assert_eq!(find(SearchQuery::default()), 1);
        assert_eq!(
            find(SearchQuery {
                text: Some("ELECTRICITE espoir".into()),
                ..Default::default()
            }),
            1
        );
        assert_eq!(
            find(SearchQuery {
                department: Some("CM005004".into()),
                ..Default::default()
            }),
            1,
            "a region-wide service covers its departments"
        );
        assert_eq!(
            find(SearchQuery {
                region: Some("CM002".into()),
                ..Default::default()
            }),
            0
        );
        assert_eq!(
            find(SearchQuery {
                max_fee_xaf: Some(5_000),
                ..Default::default()
            }),
            0
        );
        assert_eq!(
            find(SearchQuery {
                cost: Some("free".into()),
                ..Default::default()
            }),
            0
        );
        assert_eq!(
            find(SearchQuery {
                capacity: Some(CapacityStatus::Waitlist),
                dimension: Some(Dimension::Economic),
                language: Some("fr".into()),
                ..Default::default()
            }),
            1
        );
    }
}
