//! Referrals benchmark: the cost of the board fold at scale, of sealing and opening a case
//! file, of the encrypted vault (store, read, a sealed backup, erase), of the audit log, and
//! of sending referrals through a
//! real node (consent and case file checked, case file stored encrypted, board entry
//! signed and flushed).
//!
//! Run: `cargo bench -p passerelle-node --bench referrals`
//! Size: `PASSERELLE_BENCH_REFERRALS=10000` (default) referrals on the board.
//! Documented in docs/performance.md.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use passerelle_node::config::Config;
use passerelle_node::document::Edit;
use passerelle_node::envelope::DocumentId;
use passerelle_node::identity::{Identity, OrgId, SigningSecret};
use passerelle_node::membership::Charter;
use passerelle_node::model::{self, OrganisationRecord, Profile};
use passerelle_node::node::{self, ReferralReply, ReferralRequest, SendReferral};
use passerelle_node::reference::taxonomy::Dimension;
use passerelle_node::referral::board::{self, Answer, MoveRecord, Priority, SentReferral};
use passerelle_node::referral::casefile::{
    self, CaseContent, CaseFile, Consent, ConsentMethod, ConsentRecord, FIELDS, Payload,
};
use passerelle_node::referral::lifecycle::{Move, Outcome, Status};
use passerelle_node::runtime;
use passerelle_node::store::Store;
use passerelle_node::vault::{Erasure, HeldCase, Side, Vault};

fn case_file(i: usize) -> CaseFile {
    CaseFile {
        name: format!("Personne {i} Mbarga"),
        sex: Some("female".into()),
        birth_year: Some(1990 + (i % 20) as u16),
        phone: Some(format!("+237 6{:08}", i)),
        languages: vec!["fr".into()],
        location: Some("Douala".into()),
        needs: vec!["vocational_training".into(), "housing".into()],
        vulnerabilities: vec!["single_parent".into()],
        notes: Some("Revenue de Libye; préfère les rendez-vous le matin. ".repeat(4)),
        ..CaseFile::default()
    }
}

fn consent() -> ConsentRecord {
    ConsentRecord::Given(Consent {
        method: ConsentMethod::Verbal,
        given_at: passerelle_node::unix_now() - 60,
        expires_at: None,
        organisation: None,
        service: None,
        data: FIELDS.iter().map(|f| (*f).to_owned()).collect(),
    })
}

fn mv(action: Move, from: Status, at: i64, seen: u32) -> MoveRecord {
    MoveRecord {
        action,
        from,
        at,
        seen,
    }
}

/// `count` referrals among 100 organisations, each answered up to a different stage.
fn board_records(count: usize) -> BTreeMap<OrgId, OrganisationRecord> {
    let orgs: Vec<OrgId> = (0..100)
        .map(|_| SigningSecret::generate().expect("key").org_id())
        .collect();
    let mut records: BTreeMap<OrgId, OrganisationRecord> = orgs
        .iter()
        .map(|org| {
            (
                *org,
                OrganisationRecord::new(
                    org.to_string(),
                    Profile::named(format!("Organisation {}", org.fingerprint())),
                ),
            )
        })
        .collect();
    for i in 0..count {
        let sender = orgs[i % 100];
        let receiver = orgs[(i * 7 + 1) % 100];
        if sender == receiver {
            continue;
        }
        let id = format!("ref-{i:024x}");
        let created = 1_700_000_000 + i as i64;
        let referral = SentReferral {
            receiver: Some(receiver),
            service: Some("svc-1".into()),
            open: false,
            dimension: Dimension::Economic,
            category: "vocational_training".into(),
            region: "CM005".into(),
            priority: Priority::Routine,
            created,
            deadline: created + 7 * 86_400,
            commitment: "ab".repeat(32),
            assigned: None,
            moves: Vec::new(),
        };
        let mut moves = Vec::new();
        if i % 4 >= 1 {
            moves.push(mv(Move::Accept, Status::Pending, created + 60, 0));
        }
        if i % 4 >= 2 {
            moves.push(mv(Move::Start, Status::Accepted, created + 120, 0));
        }
        if i % 4 == 3 {
            moves.push(mv(
                Move::Complete {
                    outcome: Outcome::Achieved,
                },
                Status::InProgress,
                created + 180,
                0,
            ));
        }
        if let Some(r) = records.get_mut(&sender) {
            r.referrals.insert(id.clone(), referral);
        }
        if !moves.is_empty()
            && let Some(r) = records.get_mut(&receiver)
        {
            r.answers.insert(id, Answer { sender, moves });
        }
    }
    records
}

fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn main() {
    let count: usize = std::env::var("PASSERELLE_BENCH_REFERRALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    println!("referrals benchmark ({count} referrals on the board)\n");

    // 1. The board: check every document's referral parts, then fold both sides.
    let records = board_records(count);
    let started = Instant::now();
    for (org, record) in &records {
        board::check_record(org, record).expect("valid");
    }
    let check = started.elapsed();
    let started = Instant::now();
    let entries = board::board(records.iter().map(|(o, r)| (*o, r)));
    let fold = started.elapsed();
    let completed = entries
        .iter()
        .filter(|e| e.status == Status::Completed)
        .count();
    println!(
        "board: check every referral {:>8.1} ms, fold {} entries {:>8.1} ms ({} completed)",
        check.as_secs_f64() * 1e3,
        entries.len(),
        fold.as_secs_f64() * 1e3,
        completed
    );
    let started = Instant::now();
    let lookups = 1_000;
    for e in entries.iter().take(lookups) {
        board::entry(e.id, records.iter().map(|(o, r)| (*o, r))).expect("entry");
    }
    println!(
        "one entry (what a move or show folds):  {:>8.3} ms each",
        started.elapsed().as_secs_f64() * 1e3 / lookups as f64
    );
    let started = Instant::now();
    let report = passerelle_node::referral::report::report(
        &entries,
        &BTreeMap::new(),
        0,
        passerelle_node::referral::report::Scope::default(),
    );
    println!(
        "report over the board:                 {:>8.1} ms ({} referrals)",
        started.elapsed().as_secs_f64() * 1e3,
        report.total
    );

    // 2. Sealing and opening case files.
    let sender = Identity::generate().expect("identity");
    let receiver = Identity::generate().expect("identity");
    let payloads: Vec<Payload> = (0..1_000)
        .map(|i| Payload {
            referral: format!("ref-{i:024x}"),
            sender: sender.org_id(),
            receiver: receiver.org_id(),
            sent_at: 1,
            content: CaseContent {
                salt: casefile::fresh_salt().expect("salt"),
                case_file: case_file(i),
                consent: consent(),
            },
        })
        .collect();
    let started = Instant::now();
    let sealed: Vec<_> = payloads
        .iter()
        .map(|p| casefile::seal(p, &receiver.encryption_public_key()).expect("seal"))
        .collect();
    let seal_rate = per_second(payloads.len(), started.elapsed());
    let started = Instant::now();
    for (p, s) in payloads.iter().zip(&sealed) {
        casefile::open(
            s,
            &receiver,
            &p.referral,
            &sender.org_id(),
            &receiver.org_id(),
        )
        .expect("open");
    }
    let open_rate = per_second(payloads.len(), started.elapsed());
    println!(
        "case files: seal {seal_rate:>8.0} /s, open {open_rate:>8.0} /s ({} bytes sealed)",
        serde_json::to_vec(&sealed[0]).map(|b| b.len()).unwrap_or(0)
    );

    // 3. The vault: store (key file + ciphertext, flushed), read, erase.
    let folder = tempfile::tempdir().expect("tempdir");
    let store = Store::create(&folder.path().join("store")).expect("store");
    let vault = Vault::open(
        &store,
        folder.path(),
        passerelle_node::identity::SigningSecret::generate().expect("key"),
    )
    .expect("vault");
    let n = 500;
    let started = Instant::now();
    for p in payloads.iter().take(n) {
        vault
            .put(
                &p.referral,
                &HeldCase {
                    side: Side::Received,
                    counterpart: Some(p.sender),
                    stored_at: 1,
                    content: p.content.clone(),
                },
            )
            .expect("put");
    }
    let put_rate = per_second(n, started.elapsed());
    let started = Instant::now();
    for p in payloads.iter().take(n) {
        vault.read(&p.referral).expect("read").expect("held");
    }
    let read_rate = per_second(n, started.elapsed());
    // A sealed backup of every case file held (what `backup write` does, on the documents
    // thread): each read, all sealed at once to the backup key, written and synced.
    let backup_key = passerelle_node::backup_seal::BackupSecret::generate()
        .expect("backup key")
        .public_key();
    let started = Instant::now();
    let backup = passerelle_node::case_backup::write(
        &vault,
        &folder.path().join("backups"),
        &backup_key,
        "bench",
        1,
    )
    .expect("backup");
    let backup_ms = started.elapsed().as_secs_f64() * 1e3;
    println!(
        "backup write: {backup_ms:>6.1} ms for {} case files ({:.0} µs each, {:.1} MB sealed)",
        backup.case_files,
        backup_ms * 1e3 / backup.case_files as f64,
        backup.bytes as f64 / 1e6
    );
    let started = Instant::now();
    for p in payloads.iter().take(n) {
        vault.erase(&p.referral, 2, Erasure::Asked).expect("erase");
    }
    let erase_rate = per_second(n, started.elapsed());
    println!(
        "vault: store {put_rate:>6.0} /s, read {read_rate:>6.0} /s, erase {erase_rate:>6.0} /s ({n} case files, each write flushed)"
    );
    // The audit log: what each read adds (a line on disk, a seal every 32), and verifying
    // the whole chain.
    let started = Instant::now();
    for p in payloads.iter().take(n) {
        vault
            .audit(&passerelle_node::vault::AuditEntry {
                at: 3,
                referral: p.referral.clone(),
                action: "read".into(),
                by: "web:agent".into(),
                detail: String::new(),
            })
            .expect("audit");
    }
    let audit_rate = per_second(n, started.elapsed());
    let entries = vault.audit_log(None).expect("log").len();
    let started = Instant::now();
    let verdict = vault.audit_chain().verify(&[]).expect("verify");
    let verify_ms = started.elapsed().as_secs_f64() * 1e3;
    println!(
        "audit log: append {audit_rate:>6.0} /s (each on disk), verify {verify_ms:>6.1} ms for {} entries ({entries} events)",
        verdict.entries
    );
    drop(vault);
    drop(store);

    // 4. Sending through a real node.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(send_through_a_node());
}

async fn send_through_a_node() {
    let folder = tempfile::tempdir().expect("tempdir");
    let configs: Vec<Config> = ["Expéditeur", "Destinataire"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let config = Config::new(folder.path().join(format!("node{i}")));
            node::initialise(&config, Profile::named(*name)).expect("init");
            config
        })
        .collect();
    node::found_network_locally(
        &configs,
        Charter {
            name: "Banc d'essai".into(),
            founders: Vec::new(),
            admission: "1".parse().expect("quorum"),
            revocation: "1".parse().expect("quorum"),
            amendment: "1".parse().expect("quorum"),
            taxonomy: "iom".into(),
        },
    )
    .expect("network");
    let sender = runtime::start(configs[0].clone()).await.expect("start");
    let receiver = runtime::start(configs[1].clone()).await.expect("start");
    let service: Box<model::Service> = Box::new(
        model::decode_json(
            "service",
            serde_json::json!({"name": "Formation", "dimension": "economic",
                "categories": ["vocational_training"], "cost": {"kind": "free"},
                "capacity": {"status": "available"}, "service_area": {"regions": ["CM005"]}}),
        )
        .expect("service"),
    );
    let service_id = receiver
        .handle()
        .edit(Edit::AddService {
            id: String::new(),
            service,
        })
        .await
        .expect("service")
        .id;
    let to = receiver.handle().org_id();
    let document = receiver
        .handle()
        .export(&DocumentId::organisation(&to))
        .await
        .expect("export");
    sender
        .handle()
        .apply_received(document, Vec::new(), None)
        .await
        .expect("import");
    let n = 300;
    let started = Instant::now();
    for i in 0..n {
        let reply = sender
            .handle()
            .referral(
                ReferralRequest::Send {
                    send: Box::new(SendReferral {
                        to: Some(to),
                        service: Some(service_id.parse().expect("a service id")),
                        category: None,
                        region: "CM005".into(),
                        priority: Priority::Routine,
                        respond_within: 7 * 86_400,
                        case_file: case_file(i),
                        consent: consent(),
                    }),
                },
                "bench",
            )
            .await
            .expect("send");
        assert!(matches!(reply, ReferralReply::Receipt(_)));
    }
    let send_rate = per_second(n, started.elapsed());
    let started = Instant::now();
    let reply = sender
        .handle()
        .referral(
            ReferralRequest::List {
                filter: Default::default(),
            },
            "bench",
        )
        .await
        .expect("list");
    let listed = match reply {
        ReferralReply::List(list) => list.entries.len(),
        _ => 0,
    };
    println!(
        "node: send {send_rate:>6.0} referrals/s (consent, case file sealed at rest, board entry signed and flushed); list {listed} in {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    sender.shutdown().await.expect("shutdown");
    receiver.shutdown().await.expect("shutdown");
}
