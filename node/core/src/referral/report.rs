//! `passerelle report`: aggregate figures of the referral board. Counts only: no referral
//! id, no date of a single referral, nothing about a person.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::board::BoardEntry;
use super::lifecycle::Status;
use crate::identity::OrgId;

/// Referrals sent and received by one organisation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganisationCounts {
    /// Sent.
    pub sent: u64,
    /// Received (assigned, for open referrals).
    pub received: u64,
    /// Completed, as the receiver.
    pub completed: u64,
}

/// The figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Referrals counted (entered in error left out).
    pub total: u64,
    /// By status.
    pub by_status: BTreeMap<String, u64>,
    /// By dimension.
    pub by_dimension: BTreeMap<String, u64>,
    /// By category.
    pub by_category: BTreeMap<String, u64>,
    /// By region P-code.
    pub by_region: BTreeMap<String, u64>,
    /// By organisation name.
    pub by_organisation: BTreeMap<String, OrganisationCounts>,
    /// Median time from sending to the receiver's first answer, seconds.
    pub median_first_response_seconds: Option<i64>,
    /// Share of referrals due (answered, or past their deadline) answered by the deadline.
    pub answered_before_deadline: Option<f64>,
    /// Completed among the referrals that reached an end (completed, failed, declined,
    /// withdrawn, expired).
    pub completion_rate: Option<f64>,
}

fn median(mut values: Vec<i64>) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let middle = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2
    } else {
        values[middle]
    })
}

/// The figures of `entries` at `now`, naming organisations with `names`.
pub fn report(entries: &[BoardEntry], names: &BTreeMap<OrgId, String>, now: i64) -> Report {
    let name = |org: &OrgId| names.get(org).cloned().unwrap_or_else(|| org.fingerprint());
    let mut report = Report::default();
    let mut response_times = Vec::new();
    let (mut due, mut on_time, mut ended, mut completed) = (0u64, 0u64, 0u64, 0u64);
    for entry in entries
        .iter()
        .filter(|e| e.status != Status::EnteredInError)
    {
        report.total += 1;
        *report
            .by_status
            .entry(entry.status.code().into())
            .or_default() += 1;
        *report
            .by_dimension
            .entry(entry.dimension.code().into())
            .or_default() += 1;
        *report
            .by_category
            .entry(entry.category.clone())
            .or_default() += 1;
        *report.by_region.entry(entry.region.clone()).or_default() += 1;
        report
            .by_organisation
            .entry(name(&entry.sender))
            .or_default()
            .sent += 1;
        if let Some(receiver) = &entry.receiver {
            let counts = report.by_organisation.entry(name(receiver)).or_default();
            counts.received += 1;
            if entry.status == Status::Completed {
                counts.completed += 1;
            }
        }
        if let Some(first) = entry.first_response {
            response_times.push(first - entry.created);
            due += 1;
            if first <= entry.deadline {
                on_time += 1;
            }
        } else if now > entry.deadline && entry.status != Status::Withdrawn {
            due += 1;
        }
        if entry.status.is_closed() {
            ended += 1;
            if entry.status == Status::Completed {
                completed += 1;
            }
        }
    }
    report.median_first_response_seconds = median(response_times);
    report.answered_before_deadline = (due > 0).then(|| on_time as f64 / due as f64);
    report.completion_rate = (ended > 0).then(|| completed as f64 / ended as f64);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![5, 1, 3]), Some(3));
        assert_eq!(median(vec![4, 1, 3, 2]), Some(2));
    }
}
