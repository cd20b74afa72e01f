//! A seeded, national-scale dataset for the benchmarks: organisations, each signing its own
//! document with its services, and referrals between them with realistic status histories
//! (the sender's document holds each referral and its own moves, the receiver's its
//! answers). The same seed and size give the same keys, ids, contents and signed changes.
//!
//! Everything goes through the real document code ([`OrganisationDocument::apply_edit`]),
//! so every change is validated, written as one Automerge change and signed, exactly as a
//! node would make it.

use std::collections::BTreeMap;

use passerelle_node::document::{Edit, OrganisationDocument};
use passerelle_node::identity::SigningSecret;
use passerelle_node::membership::{AdmissionRequest, NetworkId, SignedRequest};
use passerelle_node::model::{self, LegalStatus, Profile, Service};
use passerelle_node::node::{Decision, NodeHandle};
use passerelle_node::reference::taxonomy;
use passerelle_node::referral::board::{MoveRecord, Priority, SentReferral};
use passerelle_node::referral::lifecycle::{Move, Outcome, Reason, Status};
use rand::{Rng, RngCore, SeedableRng, rngs::StdRng};

/// How big a dataset to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasetSize {
    /// Organisations (each one document).
    pub organisations: usize,
    /// Services, spread evenly over the organisations.
    pub services: usize,
    /// Referrals between them.
    pub referrals: usize,
}

impl DatasetSize {
    /// The national scale of the benchmarks: 1,000 organisations, 10,000 services,
    /// 100,000 referrals.
    pub const NATIONAL: Self = Self {
        organisations: 1000,
        services: 10_000,
        referrals: 100_000,
    };

    /// [`DatasetSize::NATIONAL`] divided by `PASSERELLE_BENCH_SCALE` (e.g. `10` for a
    /// tenth), for quicker runs.
    pub fn from_env() -> Self {
        let scale: usize = std::env::var("PASSERELLE_BENCH_SCALE")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|s| *s > 0)
            .unwrap_or(1);
        Self {
            organisations: (Self::NATIONAL.organisations / scale).max(2),
            services: (Self::NATIONAL.services / scale).max(2),
            referrals: Self::NATIONAL.referrals / scale,
        }
    }
}

/// One organisation of the dataset.
#[derive(Debug)]
pub struct Organisation {
    /// Its key.
    pub secret: SigningSecret,
    /// Its name.
    pub name: String,
    /// Every signed change of its document, encoded, in the order they were made.
    pub changes: Vec<Vec<u8>>,
    /// Its document in Automerge's compressed format (`save()`), bytes.
    pub compressed_bytes: usize,
}

/// The dataset.
#[derive(Debug)]
pub struct Dataset {
    /// The organisations with their signed documents.
    pub organisations: Vec<Organisation>,
    /// Services made.
    pub services: usize,
    /// Referrals made, by the status their history leads to.
    pub referrals_by_status: BTreeMap<String, usize>,
}

impl Dataset {
    /// Every signed change.
    pub fn change_count(&self) -> usize {
        self.organisations.iter().map(|o| o.changes.len()).sum()
    }

    /// The sum of the encoded signed changes, bytes.
    pub fn signed_bytes(&self) -> usize {
        self.organisations
            .iter()
            .flat_map(|o| &o.changes)
            .map(Vec::len)
            .sum()
    }

    /// The sum of the documents in Automerge's compressed format, bytes.
    pub fn compressed_bytes(&self) -> usize {
        self.organisations.iter().map(|o| o.compressed_bytes).sum()
    }

    /// Referrals made.
    pub fn referrals(&self) -> usize {
        self.referrals_by_status.values().sum()
    }
}

const REGIONS: [&str; 10] = [
    "CM001", "CM002", "CM003", "CM004", "CM005", "CM006", "CM007", "CM008", "CM009", "CM010",
];
const LEGAL: [LegalStatus; 5] = [
    LegalStatus::Government,
    LegalStatus::Ngo,
    LegalStatus::Ngo,
    LegalStatus::International,
    LegalStatus::Private,
];

/// Where a referral's history ends, and how often (per thousand), as a referral board of
/// a few years looks: most completed or under way, a tenth still pending.
const HISTORIES: [(Status, u32); 10] = [
    (Status::Pending, 100),
    (Status::Declined, 60),
    (Status::Withdrawn, 40),
    (Status::Expired, 50),
    (Status::Accepted, 100),
    (Status::InProgress, 200),
    (Status::Waitlisted, 50),
    (Status::Completed, 300),
    (Status::Failed, 70),
    (Status::EnteredInError, 30),
];

/// The moves that lead to `end`: (by the receiver?, move).
fn history(end: Status) -> Vec<(bool, Move)> {
    let accept = (true, Move::Accept);
    let start = (true, Move::Start);
    match end {
        Status::Pending => vec![],
        Status::Declined => vec![(
            true,
            Move::Decline {
                reason: Reason::NoCapacity,
            },
        )],
        Status::Withdrawn => vec![(
            false,
            Move::Withdraw {
                reason: Reason::NoLongerInterested,
            },
        )],
        Status::Expired => vec![(false, Move::Expire)],
        Status::Accepted => vec![accept],
        Status::InProgress => vec![accept, start],
        Status::Waitlisted => vec![
            accept,
            (
                true,
                Move::Waitlist {
                    reason: Reason::NoCapacity,
                },
            ),
        ],
        Status::Completed => vec![
            accept,
            start,
            (
                true,
                Move::Complete {
                    outcome: Outcome::Achieved,
                },
            ),
        ],
        Status::Failed => vec![
            accept,
            start,
            (
                true,
                Move::Fail {
                    reason: Reason::CouldNotContact,
                },
            ),
        ],
        Status::EnteredInError => vec![(false, Move::EnteredInError)],
    }
}

fn service(rng: &mut StdRng, index: usize) -> (Service, &'static str, &'static str) {
    let category = &taxonomy::CATEGORIES[rng.random_range(0..taxonomy::CATEGORIES.len())];
    let region = REGIONS[rng.random_range(0..REGIONS.len())];
    let service = model::decode_json(
        "service",
        serde_json::json!({
            "name": format!("Service {index} : {}", category.label_fr),
            "description": "Accueil sur rendez-vous, orientation et suivi individualisé des migrants de retour.",
            "dimension": category.dimension,
            "categories": [category.code],
            "cost": if index.is_multiple_of(4) { serde_json::json!({"kind": "fee", "amount_xaf": 5000}) } else { serde_json::json!({"kind": "free"}) },
            "capacity": {"status": "available", "places": rng.random_range(0..40u32)},
            "languages": ["fr", "en"],
            "service_area": {"regions": [region]},
        }),
    )
    .expect("a generated service is valid");
    (service, category.code, region)
}

/// Makes the dataset of `size` from `seed`.
pub fn generate(size: DatasetSize, seed: u64) -> Dataset {
    const T0: i64 = 1_735_689_600; // 2025-01-01
    let mut rng = StdRng::seed_from_u64(seed);
    let mut documents = Vec::with_capacity(size.organisations);
    let mut organisations = Vec::with_capacity(size.organisations);
    for o in 0..size.organisations {
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        let secret = SigningSecret::from_bytes(&key);
        let name = format!("Organisation {o}");
        let profile = Profile {
            legal_status: Some(LEGAL[o % LEGAL.len()]),
            languages: vec!["fr".into()],
            ..Profile::named(name.clone())
        };
        let (document, genesis) =
            OrganisationDocument::create(&secret, profile, T0).expect("document");
        documents.push(document);
        organisations.push(Organisation {
            secret,
            name,
            changes: vec![genesis.encode()],
            compressed_bytes: 0,
        });
    }
    // Services, spread evenly; remember where each is for the referrals.
    let mut offered: Vec<(usize, String, &'static str, &'static str)> =
        Vec::with_capacity(size.services);
    for s in 0..size.services {
        let o = s % size.organisations;
        let (service, category, region) = service(&mut rng, s);
        let id = format!("svc-{s:05}");
        let change = documents[o]
            .apply_edit(
                &Edit::AddService {
                    id: id.clone(),
                    service: Box::new(service),
                },
                &organisations[o].secret,
                T0 + 60,
            )
            .expect("add service");
        organisations[o].changes.push(change.encode());
        offered.push((o, id, category, region));
    }
    // Referrals, each to a service of another organisation, with its history.
    let total: u32 = HISTORIES.iter().map(|(_, w)| w).sum();
    let mut referrals_by_status = BTreeMap::new();
    for r in 0..size.referrals {
        let (receiver, service_id, category, region) =
            offered[rng.random_range(0..offered.len())].clone();
        let mut sender = rng.random_range(0..size.organisations);
        if sender == receiver {
            sender = (sender + 1) % size.organisations;
        }
        let created = T0 + 86_400 + r as i64 * 60;
        let deadline = created + 14 * 86_400;
        let mut commitment = [0u8; 32];
        rng.fill_bytes(&mut commitment);
        let id = format!("ref-{r:024x}");
        let referral = SentReferral {
            receiver: Some(organisations[receiver].secret.org_id()),
            service: Some(service_id),
            open: false,
            dimension: taxonomy::category(category)
                .map(|c| c.dimension)
                .expect("known category"),
            category: category.to_owned(),
            region: region.to_owned(),
            priority: if r.is_multiple_of(10) {
                Priority::Urgent
            } else {
                Priority::Routine
            },
            created,
            deadline,
            commitment: commitment.iter().map(|b| format!("{b:02x}")).collect(),
            assigned: None,
            moves: Vec::new(),
        };
        let change = documents[sender]
            .apply_edit(
                &Edit::SendReferral {
                    id: id.clone(),
                    referral: Box::new(referral),
                },
                &organisations[sender].secret,
                created,
            )
            .expect("send referral");
        organisations[sender].changes.push(change.encode());
        let mut pick = rng.random_range(0..total);
        let end = HISTORIES
            .iter()
            .find(|(_, weight)| {
                if pick < *weight {
                    true
                } else {
                    pick -= weight;
                    false
                }
            })
            .map(|(status, _)| *status)
            .unwrap_or(Status::Pending);
        let mut status = Status::Pending;
        for (step, (by_receiver, action)) in history(end).into_iter().enumerate() {
            let at = if action == Move::Expire {
                deadline + 60
            } else {
                created + (step as i64 + 1) * 3_600
            };
            let record = MoveRecord {
                action,
                from: status,
                at,
                seen: 0,
            };
            let (author, answering) = if by_receiver {
                (receiver, Some(organisations[sender].secret.org_id()))
            } else {
                (sender, None)
            };
            let change = documents[author]
                .apply_edit(
                    &Edit::MoveReferral {
                        id: id.clone(),
                        record,
                        answering,
                    },
                    &organisations[author].secret,
                    at,
                )
                .expect("move");
            organisations[author].changes.push(change.encode());
            status = action.target();
        }
        *referrals_by_status.entry(end.to_string()).or_insert(0) += 1;
    }
    for (organisation, document) in organisations.iter_mut().zip(&mut documents) {
        organisation.compressed_bytes = document.save().len();
    }
    Dataset {
        organisations,
        services: size.services,
        referrals_by_status,
    }
}

impl Dataset {
    /// Admits every organisation of the dataset into `network` on the node of `handle`
    /// (a founder whose charter admits by one approval): each signs its admission request,
    /// the node approves it.
    pub async fn admit_all(&self, handle: &NodeHandle, network: NetworkId) {
        for organisation in &self.organisations {
            let request = AdmissionRequest {
                network,
                org: organisation.secret.org_id(),
                name: organisation.name.clone(),
                message: String::new(),
                created: 1,
            };
            let signed = SignedRequest::sign(&request, &organisation.secret).expect("request");
            handle
                .admission_received(
                    serde_json::to_vec(&signed).expect("json"),
                    organisation.secret.key_id(),
                )
                .await
                .expect("admission request");
            handle
                .decide(Decision::Approve {
                    org: organisation.secret.org_id(),
                })
                .await
                .expect("admit");
        }
    }

    /// A stopped node named `name` holding the whole dataset: a founder of a network that
    /// admits by one approval, every organisation admitted, every change ingested.
    pub async fn node_holding_it(&self, name: &str) -> crate::TestNode {
        let mut node = crate::TestNode::init_networked(name, vec![]);
        let network = crate::found_network(&[&node], "1");
        node.start().await;
        self.admit_all(&node.handle(), network).await;
        self.ingest(&node.handle(), 2_000).await;
        node.stop().await;
        node
    }

    /// Gives the node of `handle` every signed change, in batches of `batch` as a
    /// catch-up brings them; returns how many it applied (all, or it panics).
    pub async fn ingest(&self, handle: &NodeHandle, batch: usize) -> usize {
        let mut pending = Vec::with_capacity(batch);
        let mut applied = 0;
        let mut changes = self
            .organisations
            .iter()
            .flat_map(|o| &o.changes)
            .peekable();
        while let Some(bytes) = changes.next() {
            pending.push(bytes.clone());
            if pending.len() == batch || changes.peek().is_none() {
                let outcome = handle
                    .apply_received(std::mem::take(&mut pending), Vec::new(), None)
                    .await
                    .expect("ingest");
                assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
                applied += outcome.applied;
            }
        }
        assert_eq!(applied, self.change_count(), "every change applied");
        applied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_signed_dataset() {
        let size = DatasetSize {
            organisations: 5,
            services: 20,
            referrals: 200,
        };
        let a = generate(size, 7);
        let b = generate(size, 7);
        assert_eq!(a.referrals(), 200);
        assert_eq!(a.change_count(), b.change_count());
        for (x, y) in a.organisations.iter().zip(&b.organisations) {
            assert_eq!(x.changes, y.changes);
        }
        // Several histories, each a legal sequence (the document code checked every move).
        assert!(
            a.referrals_by_status.len() >= 6,
            "{:?}",
            a.referrals_by_status
        );
        assert!(a.change_count() > 5 + 20 + 200);
        let c = generate(size, 8);
        assert_ne!(a.organisations[0].changes, c.organisations[0].changes);
    }
}
