//! Local edits benchmark: signed changes created, flushed to sled and applied per second on
//! one node, and node start time with a large directory.
//!
//! Run: `cargo bench -p passerelle-node --bench local_edits`
//! Size: `PASSERELLE_BENCH_SERVICES=10000` (default) services for the start-time figure.
//! Documented in docs/performance.md.

use std::time::{Duration, Instant};

use passerelle_node::api;
use passerelle_node::config::Config;
use passerelle_node::control::Client;
use passerelle_node::directory::{SearchQuery, ServiceHit};
use passerelle_node::document::Edit;
use passerelle_node::envelope::{DocumentId, SignedChange};
use passerelle_node::identity::SigningSecret;
use passerelle_node::model::{self, LegalStatus, Profile, Service};
use passerelle_node::node::{self, EditReceipt};
use passerelle_node::runtime;

fn service(i: usize) -> Box<Service> {
    let regions = [
        "CM001", "CM002", "CM003", "CM004", "CM005", "CM006", "CM007", "CM008", "CM009", "CM010",
    ];
    let categories = [
        "vocational_training",
        "housing",
        "counselling",
        "job_placement",
        "medical",
    ];
    let dimension = match i % 5 {
        1 | 4 => "social",
        2 => "psychosocial",
        _ => "economic",
    };
    Box::new(
        model::decode_json(
            "service",
            serde_json::json!({
                "name": format!("Service {i} de formation et d'accompagnement"),
                "description": "Accompagnement des migrants de retour, sur rendez-vous.",
                "dimension": dimension,
                "categories": [categories[i % 5]],
                "cost": {"kind": "free"},
                "capacity": {"status": "available", "places": (i % 40) as u32},
                "languages": ["fr", "en"],
                "service_area": {"regions": [regions[i % 10]]},
            }),
        )
        .expect("valid service"),
    )
}

fn profile() -> Profile {
    Profile {
        legal_status: Some(LegalStatus::Ngo),
        ..Profile::named("Banc d'essai")
    }
}

fn rate(n: usize, elapsed: Duration) -> String {
    format!("{:>10.0} /s", n as f64 / elapsed.as_secs_f64())
}

fn row(what: &str, figure: String, detail: String) {
    println!("| {what:<52} | {figure:>14} | {detail} |");
}

fn bare_verification(n: usize) {
    let secret = SigningSecret::generate().expect("key");
    let mut doc = automerge::AutoCommit::new()
        .with_actor(automerge::ActorId::from(secret.org_id().as_bytes()));
    let id = DocumentId::organisation(&secret.org_id());
    let mut changes = Vec::with_capacity(n);
    for i in 0..n {
        use automerge::transaction::Transactable;
        doc.put(automerge::ROOT, "k", i as i64).expect("put");
        doc.commit();
        let change = doc.get_last_local_change().expect("change");
        changes.push(SignedChange::sign(id.clone(), change, &secret));
    }
    let start = Instant::now();
    for c in &changes {
        c.verify().expect("verifies");
    }
    row(
        "ed25519 verify, one by one (ceiling)",
        rate(n, start.elapsed()),
        format!("{n} signed changes"),
    );
    let start = Instant::now();
    SignedChange::verify_all(&changes).expect("verifies");
    row(
        "ed25519 verify, batched (ceiling)",
        rate(n, start.elapsed()),
        format!("{n} signed changes"),
    );
}

/// What durability costs: the same small records written to a sled tree and flushed one by
/// one, with sled's own flush (`sync_file_range`) alone and followed by `fdatasync` of its
/// log, as the store now does before acknowledging (one run, same disk, same sizes).
fn durability_cost(n: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled::Config::new()
        .path(dir.path().join("db"))
        .flush_every_ms(None)
        .open()
        .expect("sled");
    let tree = db.open_tree("changes").expect("tree");
    let log = std::fs::File::open(dir.path().join("db").join("db")).expect("log file");
    let value = vec![0x5au8; 650];
    let mut rates = Vec::new();
    for (round, sync) in [false, true, false, true].into_iter().enumerate() {
        let start = Instant::now();
        for i in 0..n {
            tree.insert(format!("{round}-{i:08}").as_bytes(), value.as_slice())
                .expect("insert");
            db.flush().expect("flush");
            if sync {
                log.sync_data().expect("fdatasync");
            }
        }
        rates.push((sync, n as f64 / start.elapsed().as_secs_f64()));
    }
    let mean = |sync: bool| {
        let chosen: Vec<f64> = rates
            .iter()
            .filter(|(s, _)| *s == sync)
            .map(|(_, r)| *r)
            .collect();
        chosen.iter().sum::<f64>() / chosen.len() as f64
    };
    row(
        "durable write: sled flush alone",
        format!("{:.0} /s", mean(false)),
        format!("{n} records of 650 B, one flush each (sync_file_range)"),
    );
    row(
        "durable write: sled flush + fdatasync of the log",
        format!("{:.0} /s", mean(true)),
        format!("the same; {:.2}x the time", mean(false) / mean(true)),
    );
}

fn main() {
    let services: usize = std::env::var("PASSERELLE_BENCH_SERVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!("| measure                                              |         figure | detail |");
    println!("|------------------------------------------------------|----------------|--------|");
    bare_verification(5_000);
    durability_cost(2_000);
    runtime.block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config::new(dir.path().join("node"));
        node::initialise(&config, profile()).expect("init");
        let running = runtime::start(config.clone()).await.expect("start");
        let handle = running.handle();

        // 1. Local edits through the node handle: validate, apply, sign, flush, reply.
        let start = Instant::now();
        for i in 0..services {
            handle
                .edit(Edit::AddService {
                    id: String::new(),
                    service: service(i),
                })
                .await
                .expect("edit");
        }
        let elapsed = start.elapsed();
        row(
            "local edits: signed, flushed, applied (handle)",
            rate(services, elapsed),
            format!(
                "{services} service additions, one flush each, {:.1} s",
                elapsed.as_secs_f64()
            ),
        );

        // 2. The same through the control socket, as the CLI does.
        let mut client = Client::connect(&config.data_dir).await.expect("client");
        let n = 500;
        let start = Instant::now();
        for i in 0..n {
            let edit = Edit::AddService {
                id: String::new(),
                service: service(services + i),
            };
            let _: EditReceipt = client.call(api::EditOwn { edit }).await.expect("edit");
        }
        row(
            "local edits over the control socket",
            rate(n, start.elapsed()),
            format!("{n} service additions, one request each"),
        );
        let total = services + n;

        // 3. Query latency on the full directory.
        let mut times = Vec::new();
        for _ in 0..50 {
            let start = Instant::now();
            let hits: Vec<ServiceHit> = client
                .collect(api::Search {
                    query: SearchQuery {
                        region: Some("CM005".into()),
                        text: Some("formation".into()),
                        ..Default::default()
                    },
                })
                .await
                .expect("search")
                .1;
            assert!(!hits.is_empty());
            times.push(start.elapsed());
        }
        times.sort();
        row(
            "directory search over the control socket (p50 / p99)",
            format!(
                "{:.1} / {:.1} ms",
                times[25].as_secs_f64() * 1e3,
                times[49].as_secs_f64() * 1e3
            ),
            format!("{total} services, region + text filter"),
        );
        drop(client);

        // 4. Start time: stop (writes a snapshot), then open, verify and answer a query.
        let start = Instant::now();
        running.shutdown().await.expect("shutdown");
        row(
            "shutdown (final snapshot)",
            format!("{:.0} ms", start.elapsed().as_secs_f64() * 1e3),
            String::new(),
        );
        let start = Instant::now();
        let running = runtime::start(config.clone()).await.expect("restart");
        let ready = start.elapsed();
        let hits = running
            .handle()
            .search(SearchQuery::default())
            .await
            .expect("search");
        let first_answer = start.elapsed();
        assert_eq!(hits.len(), total);
        row(
            "node start: open store, verify every change, load",
            format!("{:.0} ms", ready.as_secs_f64() * 1e3),
            format!("{total} services ({} signed changes)", total + 1),
        );
        row(
            "node start to first query answered",
            format!("{:.0} ms", first_answer.as_secs_f64() * 1e3),
            "search returning every service".into(),
        );
        let status = running.handle().status().await.expect("status");
        row(
            "store size on disk",
            format!("{:.1} MB", status.store_bytes as f64 / 1e6),
            String::new(),
        );
        running.shutdown().await.expect("shutdown");
    });
}
