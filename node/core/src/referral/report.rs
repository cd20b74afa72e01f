//! `passerelle report`: aggregate figures of the referral board. Counts only: no referral
//! id, no date of a single referral, nothing about a person — and no count small enough to
//! single one out.
//!
//! Small-cell suppression: in every table (by status, dimension, category, region, and each
//! column of the table by organisation) a count from 1 to `min_count - 1` (default 4) is
//! not shown but said to be small (`<5`). A table's total is known (the report's total, or
//! the column's sum), so one hidden cell could be recomputed from it, and several could be
//! pinned down when their sum leaves them one possible value each: other cells, smallest
//! first, are then withheld too (`x`) until every hidden cell could still be at least two
//! values. A report of fewer referrals than `min_count` shows no table at all. The median
//! and the shares are left out when they rest on fewer than `min_count` referrals.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::board::BoardEntry;
use super::lifecycle::Status;
use crate::identity::OrgId;

/// The smallest count shown by default.
pub const DEFAULT_MIN_COUNT: u64 = 5;

/// A count as published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Shown as it is.
    Shown(u64),
    /// From 1 to `below - 1`: shown as `<below`.
    Small {
        /// The smallest count shown.
        below: u64,
    },
    /// Withheld so that small ones cannot be recomputed from the totals: shown as `x`.
    Withheld,
}

impl Count {
    /// The count, when shown.
    pub fn shown(&self) -> Option<u64> {
        match self {
            Self::Shown(n) => Some(*n),
            _ => None,
        }
    }
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Shown(n) => write!(f, "{n}"),
            Self::Small { below } => write!(f, "<{below}"),
            Self::Withheld => f.write_str("x"),
        }
    }
}

impl Serialize for Count {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Shown(n) => serializer.serialize_u64(*n),
            other => serializer.serialize_str(&other.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Number(u64),
            Text(String),
        }
        match Written::deserialize(deserializer)? {
            Written::Number(n) => Ok(Self::Shown(n)),
            Written::Text(text) if text == "x" => Ok(Self::Withheld),
            Written::Text(text) => text
                .strip_prefix('<')
                .and_then(|n| n.parse().ok())
                .map(|below| Self::Small { below })
                .ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "{text:?} is not a count (a number, \"<N\" or \"x\")"
                    ))
                }),
        }
    }
}

/// Referrals sent and received by one organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganisationCounts {
    /// Sent.
    pub sent: Count,
    /// Received (assigned, for open referrals).
    pub received: Count,
    /// Completed, as the receiver.
    pub completed: Count,
}

/// The figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The smallest count shown: smaller ones are `<N`, and others withheld (`x`) so they
    /// cannot be recomputed.
    pub min_count: u64,
    /// Referrals sent from this time (Unix seconds), when the report is of a period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<i64>,
    /// Referrals sent up to this time (Unix seconds), when the report is of a period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<i64>,
    /// Referrals counted (entered in error left out).
    pub total: Count,
    /// Referrals their sender marked as entered in error (not counted anywhere else).
    pub entered_in_error: Count,
    /// Referrals with a move dated before something its author had already seen (the
    /// board flags it): counted in the tables, left out of the timings.
    pub clock_flagged: Count,
    /// By status.
    pub by_status: BTreeMap<String, Count>,
    /// By dimension.
    pub by_dimension: BTreeMap<String, Count>,
    /// By category.
    pub by_category: BTreeMap<String, Count>,
    /// By region P-code.
    pub by_region: BTreeMap<String, Count>,
    /// By organisation name.
    pub by_organisation: BTreeMap<String, OrganisationCounts>,
    /// The tables not published at all: too few referrals for any of their counts to be
    /// shown without singling one out (`status`, `dimension`, `category`, `region`,
    /// `organisation`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withheld_tables: Vec<String>,
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

/// True when hidden cells (`small` of them from 1 to `k - 1`, `withheld` of them of `k` or
/// more) summing to `sum` leave some cell a single possible value.
fn pinned(sum: u64, small: u64, withheld: u64, k: u64) -> bool {
    if small + withheld == 0 {
        return false;
    }
    // The range a cell of bounds `low..=high` can take, the others' sums being within
    // `others_min..=others_max` (`None`: unbounded).
    let single = |low: u64, high: Option<u64>, others_min: u64, others_max: Option<u64>| {
        let low = match others_max {
            Some(max) => low.max(sum.saturating_sub(max)),
            None => low,
        };
        let most = sum.saturating_sub(others_min);
        let high = high.map_or(most, |h| h.min(most));
        high <= low
    };
    let unbounded_if = |cells: u64| (cells == 0).then_some(0);
    if small > 0 {
        let others_min = (small - 1) + withheld * k;
        let others_max = unbounded_if(withheld).map(|_| (small - 1) * (k - 1));
        if single(1, Some(k - 1), others_min, others_max) {
            return true;
        }
    }
    if withheld > 0 {
        let others_min = small + (withheld - 1) * k;
        let others_max = unbounded_if(withheld - 1).map(|_| small * (k - 1));
        if single(k, None, others_min, others_max) {
            return true;
        }
    }
    false
}

/// Publishes one table whose cells sum to `sum`: small cells shown as small, and as many
/// others withheld (smallest first) as it takes for no hidden cell to be pinned down.
fn publish(counts: &BTreeMap<String, u64>, sum: u64, k: u64) -> Option<BTreeMap<String, Count>> {
    let mut published: BTreeMap<String, Count> = counts
        .iter()
        .map(|(key, &n)| {
            let count = if n > 0 && n < k {
                Count::Small { below: k }
            } else {
                Count::Shown(n)
            };
            (key.clone(), count)
        })
        .collect();
    let small = published
        .values()
        .filter(|c| matches!(c, Count::Small { .. }))
        .count() as u64;
    let mut withheld = 0;
    let hidden_sum = |published: &BTreeMap<String, Count>| {
        sum - published.values().filter_map(Count::shown).sum::<u64>()
    };
    while small + withheld > 0 && pinned(hidden_sum(&published), small, withheld, k) {
        let next = published
            .iter()
            .filter_map(|(key, c)| c.shown().filter(|&n| n > 0).map(|n| (n, key.clone())))
            .min();
        let Some((_, key)) = next else {
            // Nothing left to withhold and a cell still pinned (five regions of one
            // referral each, say): the table is not published.
            return None;
        };
        published.insert(key, Count::Withheld);
        withheld += 1;
    }
    Some(published)
}

/// The raw counts of a set of referrals.
#[derive(Default)]
struct Tally {
    total: u64,
    entered_in_error: u64,
    clock_flagged: u64,
    by_status: BTreeMap<String, u64>,
    by_dimension: BTreeMap<String, u64>,
    by_category: BTreeMap<String, u64>,
    by_region: BTreeMap<String, u64>,
    sent: BTreeMap<String, u64>,
    received: BTreeMap<String, u64>,
    completed: BTreeMap<String, u64>,
    response_times: Vec<i64>,
    due: u64,
    on_time: u64,
    ended: u64,
    ended_completed: u64,
}

/// What a report covers: a period of sending (Unix seconds, both inclusive) and the
/// smallest count shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    /// Referrals sent from this time.
    pub from: Option<i64>,
    /// Referrals sent up to this time.
    pub to: Option<i64>,
    /// The smallest count shown ([`DEFAULT_MIN_COUNT`]; 1 shows every count).
    pub min_count: u64,
}

impl Default for Scope {
    fn default() -> Self {
        Self {
            from: None,
            to: None,
            min_count: DEFAULT_MIN_COUNT,
        }
    }
}

/// The figures of `entries` sent within `scope` at `now`, naming organisations with
/// `names`, small counts suppressed.
pub fn report(
    entries: &[BoardEntry],
    names: &BTreeMap<OrgId, String>,
    now: i64,
    scope: Scope,
) -> Report {
    let name = |org: &OrgId| names.get(org).cloned().unwrap_or_else(|| org.fingerprint());
    let mut t = Tally::default();
    let within = |e: &&BoardEntry| {
        scope.from.is_none_or(|f| e.created >= f) && scope.to.is_none_or(|to| e.created <= to)
    };
    for entry in entries.iter().filter(within) {
        if entry.status == Status::EnteredInError {
            t.entered_in_error += 1;
            continue;
        }
        t.total += 1;
        *t.by_status.entry(entry.status.code().into()).or_default() += 1;
        *t.by_dimension
            .entry(entry.dimension.code().into())
            .or_default() += 1;
        *t.by_category.entry(entry.category.clone()).or_default() += 1;
        *t.by_region.entry(entry.region.clone()).or_default() += 1;
        *t.sent.entry(name(&entry.sender)).or_default() += 1;
        if let Some(receiver) = &entry.receiver {
            *t.received.entry(name(receiver)).or_default() += 1;
            if entry.status == Status::Completed {
                *t.completed.entry(name(receiver)).or_default() += 1;
            }
        }
        let timed = !entry.clock_flagged();
        if !timed {
            t.clock_flagged += 1;
        }
        if let Some(first) = entry.first_response.filter(|_| timed) {
            t.response_times.push(first - entry.created);
            t.due += 1;
            if first <= entry.deadline {
                t.on_time += 1;
            }
        } else if timed && now > entry.deadline && entry.status != Status::Withdrawn {
            t.due += 1;
        }
        if entry.status.is_closed() {
            t.ended += 1;
            if entry.status == Status::Completed {
                t.ended_completed += 1;
            }
        }
    }
    let k = scope.min_count.max(1);
    let single = |n: u64| {
        if n > 0 && n < k {
            Count::Small { below: k }
        } else {
            Count::Shown(n)
        }
    };
    let enough = |base: u64| base >= k;
    // Fewer referrals than k: no table at all (every cell would be small or pinned).
    let mut withheld_tables = Vec::new();
    let mut table = |name: &str, counts: &BTreeMap<String, u64>, sum: u64| {
        let published = if enough(t.total) || counts.is_empty() {
            publish(counts, sum, k)
        } else {
            None
        };
        published.unwrap_or_else(|| {
            if !withheld_tables.iter().any(|n| n == name) {
                withheld_tables.push(name.to_owned());
            }
            BTreeMap::new()
        })
    };
    let sum = |m: &BTreeMap<String, u64>| m.values().sum::<u64>();
    let by_status = table("status", &t.by_status, t.total);
    let by_dimension = table("dimension", &t.by_dimension, t.total);
    let by_category = table("category", &t.by_category, t.total);
    let by_region = table("region", &t.by_region, t.total);
    let sent = table("organisation", &t.sent, sum(&t.sent));
    let received = table("organisation", &t.received, sum(&t.received));
    let completed = table("organisation", &t.completed, sum(&t.completed));
    let mut by_organisation = BTreeMap::new();
    if !withheld_tables.iter().any(|n| n == "organisation") {
        for organisation in sent.keys().chain(received.keys()) {
            let get = |m: &BTreeMap<String, Count>| {
                m.get(organisation).copied().unwrap_or(Count::Shown(0))
            };
            by_organisation.insert(
                organisation.clone(),
                OrganisationCounts {
                    sent: get(&sent),
                    received: get(&received),
                    completed: get(&completed),
                },
            );
        }
    }
    Report {
        min_count: k,
        from: scope.from,
        to: scope.to,
        total: single(t.total),
        entered_in_error: single(t.entered_in_error),
        clock_flagged: single(t.clock_flagged),
        by_status,
        by_dimension,
        by_category,
        by_region,
        by_organisation,
        withheld_tables,
        median_first_response_seconds: if enough(t.response_times.len() as u64) {
            median(t.response_times)
        } else {
            None
        },
        answered_before_deadline: enough(t.due).then(|| t.on_time as f64 / t.due as f64),
        completion_rate: enough(t.ended).then(|| t.ended_completed as f64 / t.ended as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value each hidden cell can take, given what is shown and the table's sum:
    /// small cells 1..k-1, withheld ones k or more.
    fn possible(published: &BTreeMap<String, Count>, sum: u64, k: u64) -> Vec<Vec<u64>> {
        let shown: u64 = published.values().filter_map(Count::shown).sum();
        let hidden: Vec<(u64, u64)> = published
            .values()
            .filter_map(|c| match c {
                Count::Small { .. } => Some((1, k - 1)),
                Count::Withheld => Some((k, sum)),
                Count::Shown(_) => None,
            })
            .collect();
        let mut seen = vec![std::collections::BTreeSet::new(); hidden.len()];
        fn walk(
            hidden: &[(u64, u64)],
            left: u64,
            chosen: &mut Vec<u64>,
            seen: &mut [std::collections::BTreeSet<u64>],
        ) {
            if chosen.len() == hidden.len() {
                if left == 0 {
                    for (i, v) in chosen.iter().enumerate() {
                        seen[i].insert(*v);
                    }
                }
                return;
            }
            let (low, high) = hidden[chosen.len()];
            for v in low..=high.min(left) {
                chosen.push(v);
                walk(hidden, left - v, chosen, seen);
                chosen.pop();
            }
        }
        walk(&hidden, sum - shown, &mut Vec::new(), &mut seen);
        seen.into_iter().map(|s| s.into_iter().collect()).collect()
    }

    #[test]
    fn no_hidden_cell_can_be_recomputed_from_the_totals() {
        let k = DEFAULT_MIN_COUNT;
        // A lone small cell: the smallest other is withheld with it.
        let counts: BTreeMap<String, u64> = [("CM005", 20), ("CM004", 7), ("CM001", 2)]
            .map(|(a, n)| (a.to_owned(), n))
            .into();
        let published = publish(&counts, 29, k).expect("published");
        assert_eq!(published["CM005"], Count::Shown(20));
        assert_eq!(published["CM004"], Count::Withheld);
        assert_eq!(published["CM001"], Count::Small { below: 5 });
        // Two small cells of 4 each would be pinned by their sum (8 = 2 × 4).
        let counts: BTreeMap<String, u64> = [("a", 30), ("b", 4), ("c", 4), ("d", 9)]
            .map(|(a, n)| (a.to_owned(), n))
            .into();
        let published = publish(&counts, 47, k).expect("published");
        assert_eq!(published["d"], Count::Withheld, "{published:?}");
        // Every small cell of one referral: nothing to publish.
        let counts: BTreeMap<String, u64> =
            ["a", "b", "c", "d", "e"].map(|a| (a.to_owned(), 1)).into();
        assert_eq!(publish(&counts, 5, k), None);
        // Thousands of tables: no hidden cell is ever left one possible value.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        let mut hid = 0;
        for _ in 0..3000 {
            let cells = 1 + next(6);
            let counts: BTreeMap<String, u64> = (0..cells)
                .map(|i| {
                    let n = if next(2) == 0 { 1 + next(6) } else { next(30) };
                    (format!("c{i}"), n)
                })
                .collect();
            let sum = counts.values().sum();
            let Some(published) = publish(&counts, sum, k) else {
                continue;
            };
            for (key, count) in &published {
                match count {
                    Count::Shown(n) => assert!(*n == 0 || *n >= k, "{key} {n} shown"),
                    _ => hid += 1,
                }
            }
            for values in possible(&published, sum, k) {
                assert!(
                    values.len() >= 2,
                    "{counts:?} → {published:?}: pinned {values:?}"
                );
            }
        }
        assert!(hid > 1000, "the trial hid {hid} cells");
    }

    #[test]
    fn counts_are_written_as_numbers_or_as_small_or_withheld() {
        let published = publish(&BTreeMap::new(), 0, 5);
        assert_eq!(published, Some(BTreeMap::new()));
        let json = serde_json::to_string(&Count::Small { below: 5 }).unwrap();
        assert_eq!(json, "\"<5\"");
        for count in [Count::Shown(12), Count::Small { below: 5 }, Count::Withheld] {
            let text = serde_json::to_string(&count).unwrap();
            assert_eq!(serde_json::from_str::<Count>(&text).unwrap(), count);
        }
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![5, 1, 3]), Some(3));
        assert_eq!(median(vec![4, 1, 3, 2]), Some(2));
    }
}
