//! `passerelle referral match`: the services that fit a returnee's needs, best first.
//!
//! Filters (must hold): active, offered in the region (and department when given), within
//! the highest fee, in the language when one is asked for, not full unless asked. Score:
//! needs covered first, then capacity (available before waitlist before full), cost (free,
//! then cost-shared, then the lower fee), a service delivered in the department itself,
//! then by name.

use serde::{Deserialize, Serialize};

use crate::directory::{self, SearchQuery, ServiceHit};
use crate::identity::OrgId;
use crate::model::{CapacityStatus, Cost, OrganisationRecord};

/// What the returnee needs and where.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchQuery {
    /// Category codes of the needs (at least one).
    pub needs: Vec<String>,
    /// Region P-code where the person is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Department P-code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// Highest fee the person can pay, XAF (0: free or cost-shared only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_fee_xaf: Option<u64>,
    /// A language the person speaks (ISO 639 code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Include services that are full.
    #[serde(default)]
    pub include_full: bool,
    /// Leave out this organisation's own services (the sender's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<OrgId>,
}

/// A service that fits, with why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceMatch {
    /// The service and its organisation.
    #[serde(flatten)]
    pub hit: ServiceHit,
    /// The needs it covers.
    pub covers: Vec<String>,
    /// Its rank score (higher first).
    pub score: u32,
}

fn score(hit: &ServiceHit, covers: usize, in_department: bool) -> u32 {
    let service = &hit.service;
    let capacity = match service.capacity.status {
        CapacityStatus::Available => 30,
        CapacityStatus::Waitlist => 15,
        CapacityStatus::Full => 0,
    };
    let cost = match service.cost {
        Cost::Free => 20,
        Cost::CostShared => 15,
        Cost::Fee { amount_xaf } if amount_xaf <= 10_000 => 8,
        Cost::Fee { .. } => 4,
    };
    covers as u32 * 100 + capacity + cost + if in_department { 10 } else { 0 }
}

/// The services of `records` that fit `query`, best first.
pub fn rank<'a>(
    records: impl IntoIterator<Item = &'a OrganisationRecord>,
    query: &MatchQuery,
) -> Vec<ServiceMatch> {
    let filter = SearchQuery {
        region: query.region.clone(),
        language: query.language.clone(),
        max_fee_xaf: query.max_fee_xaf.filter(|m| *m > 0),
        ..SearchQuery::default()
    };
    let exclude = query.exclude.map(|o| o.to_string());
    let mut found: Vec<ServiceMatch> = Vec::new();
    for record in records {
        if exclude.as_deref() == Some(record.org_id.as_str()) {
            continue;
        }
        for (id, service) in &record.services {
            if !directory::matches(record, service, &filter) {
                continue;
            }
            if query.max_fee_xaf == Some(0) && matches!(service.cost, Cost::Fee { .. }) {
                continue;
            }
            if !query.include_full && service.capacity.status == CapacityStatus::Full {
                continue;
            }
            let covers: Vec<String> = query
                .needs
                .iter()
                .filter(|n| service.categories.contains(n))
                .cloned()
                .collect();
            if covers.is_empty() {
                continue;
            }
            let in_department = query.department.as_ref().is_some_and(|d| {
                directory::matches(
                    record,
                    service,
                    &SearchQuery {
                        department: Some(d.clone()),
                        ..SearchQuery::default()
                    },
                )
            });
            let hit = ServiceHit {
                org_id: record.org_id.clone(),
                org_name: record.profile.name.clone(),
                service_id: id.clone(),
                service: service.clone(),
                draft_by: None,
            };
            found.push(ServiceMatch {
                score: score(&hit, covers.len(), in_department),
                covers,
                hit,
            });
        }
    }
    found.sort_by(|a, b| {
        b.score.cmp(&a.score).then_with(|| {
            (
                directory::fold(&a.hit.org_name),
                directory::fold(&a.hit.service.name),
            )
                .cmp(&(
                    directory::fold(&b.hit.org_name),
                    directory::fold(&b.hit.service.name),
                ))
        })
    });
    found
}
