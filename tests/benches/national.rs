//! National-scale benchmark (issue "Benchmarks at national scale"): a seeded dataset of
//! 1,000 organisations, 10,000 services and 100,000 referrals with their status histories,
//! then, on a real node (real sled store, real signatures, membership enforced):
//!
//! 1. ingest: verified signed changes applied and made durable per second, next to the bare
//!    ed25519 verification rate of the same changes (the ceiling);
//! 2. start: shutdown, then open the store and answer the first query with the full dataset;
//! 3. queries: p50 / p99 of a directory search and of a referral list;
//! 4. disk used by the store;
//! 5. cold join: a new node syncs everything over loopback libp2p (time, bytes on the
//!    wire), next to an Automerge full-document transfer of the same documents (the
//!    baseline: save + load, compressed bytes);
//! 6. memory: peak RSS of a node holding the full dataset, in a process of its own.
//!
//! Prints a table and writes the figures as JSON (`target/bench-national.json`, or the path
//! in `PASSERELLE_BENCH_JSON`). A tenth of the size: `PASSERELLE_BENCH_SCALE=10`. The cold
//! join alone, again, on data folders a run kept: `PASSERELLE_BENCH_KEEP_STORE=<folder>`,
//! then `PASSERELLE_BENCH_COLD_JOIN_FROM=<folder>`.
//!
//! Run: `cargo bench -p passerelle-tests --bench national`. Documented in
//! docs/performance.md.

use std::time::{Duration, Instant};

use passerelle_node::directory::SearchQuery;
use passerelle_node::envelope::SignedChange;
use passerelle_node::node::{ListFilter, ReferralReply, ReferralRequest};
use passerelle_node::referral::lifecycle::Status;
use passerelle_tests::dataset::{DatasetSize, generate};
use passerelle_tests::{TestNode, copy_folder};
use serde_json::json;

/// Signed changes per `apply_received` call, as a catch-up batch would bring them.
const BATCH: usize = 2_000;
const QUERY_ROUNDS: usize = 100;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e3
}

fn row(measure: &str, figure: String, detail: String) {
    println!("| {measure} | {figure} | {detail} |");
}

/// Environment variable that makes this bench binary the node whose memory is measured.
const MEMORY_CHILD: &str = "PASSERELLE_BENCH_MEMORY_OF";

/// Runs this binary again as a node alone on the store in `data_dir` and returns its peak
/// RSS (kB) after start and queries, then after every document is loaded.
fn node_memory(data_dir: &std::path::Path) -> serde_json::Value {
    let output = std::process::Command::new(std::env::current_exe().expect("this binary"))
        .env(MEMORY_CHILD, data_dir)
        .output()
        .expect("run the memory child");
    assert!(
        output.status.success(),
        "memory child failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(line.lines().last().unwrap_or("{}")).expect("memory figures")
}

/// Environment variable naming a folder where the bench leaves copies of the seed node's
/// data folder (`<folder>/seed`: to profile the memory child on it again,
/// `PASSERELLE_BENCH_MEMORY_OF=<folder>/seed heaptrack <this binary>`) and of the joiner's
/// before it ever started (`<folder>/joiner`: for [`COLD_JOIN_FROM`]).
const KEEP_STORE: &str = "PASSERELLE_BENCH_KEEP_STORE";

/// Peak resident set size of this process, kB (`VmHWM`).
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The memory child: start a node (no network) on `data_dir`, answer the bench's queries,
/// report the peak RSS, then load every document and report it again.
fn memory_child(data_dir: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let store_only = {
        let store = passerelle_node::store::Store::open(
            &passerelle_node::config::Config::new(data_dir).store_dir(),
        )
        .expect("store");
        std::hint::black_box(store.change_counts().expect("counts"));
        let rss = peak_rss_kb();
        drop(store);
        rss
    };
    runtime.block_on(async {
        let started = Instant::now();
        let running = passerelle_node::runtime::start(passerelle_node::config::Config::new(data_dir))
            .await
            .expect("start");
        let handle = running.handle();
        let mut first_answer = None;
        for region in ["CM001", "CM005", "CM010"] {
            let query = SearchQuery {
                region: Some(region.into()),
                ..SearchQuery::default()
            };
            std::hint::black_box(handle.search(query).await.expect("search"));
            first_answer.get_or_insert(started.elapsed());
        }
        let start_ms = first_answer.unwrap_or_default().as_secs_f64() * 1e3;
        let after_search = peak_rss_kb();
        let filter = ListFilter {
            limit: Some(100),
            ..ListFilter::default()
        };
        std::hint::black_box(
            handle
                .referral(ReferralRequest::List { filter }, "bench")
                .await
                .expect("list"),
        );
        let after_queries = peak_rss_kb();
        if std::env::var_os("PASSERELLE_BENCH_MEMORY_QUERIES_ONLY").is_some() {
            println!("{}", json!({"start_ms": start_ms, "after_search_kb": after_search, "after_queries_kb": after_queries}));
            std::process::exit(0);
        }
        for document in handle.documents().await.expect("documents") {
            std::hint::black_box(handle.export(&document).await.expect("export"));
        }
        let all_loaded = peak_rss_kb();
        running.shutdown().await.expect("shutdown");
        println!(
            "{}",
            json!({"start_ms": start_ms, "store_open_kb": store_only, "after_search_kb": after_search, "after_queries_kb": after_queries, "all_loaded_kb": all_loaded})
        );
    });
}

fn main() {
    if let Ok(data_dir) = std::env::var(MEMORY_CHILD) {
        memory_child(&data_dir);
        return;
    }
    if let Ok(kept) = std::env::var(COLD_JOIN_FROM) {
        cold_join_only(std::path::Path::new(&kept));
        return;
    }
    let size = DatasetSize::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!("| measure | figure | detail |");
    println!("|---|---|---|");

    let started = Instant::now();
    let dataset = generate(size, 2026);
    let generated = started.elapsed();
    let changes = dataset.change_count();
    row(
        "dataset (seed 2026)",
        format!("{changes} signed changes"),
        format!(
            "{} organisations, {} services, {} referrals {:?}; {:.1} MB signed, {:.1} MB as compressed Automerge documents; made in {:.1} s",
            dataset.organisations.len(),
            dataset.services,
            dataset.referrals(),
            dataset.referrals_by_status,
            dataset.signed_bytes() as f64 / 1e6,
            dataset.compressed_bytes() as f64 / 1e6,
            generated.as_secs_f64()
        ),
    );

    // The ceiling: bare ed25519 verification of the same changes, batched as the node does.
    let decoded: Vec<SignedChange> = dataset
        .organisations
        .iter()
        .flat_map(|o| &o.changes)
        .take(50_000)
        .map(|bytes| SignedChange::decode(bytes).expect("decode"))
        .collect();
    let started = Instant::now();
    for chunk in decoded.chunks(BATCH) {
        SignedChange::verify_all(chunk).expect("valid signatures");
    }
    let ceiling = decoded.len() as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for change in &decoded {
        change.verify().expect("valid signature");
    }
    let one_by_one = decoded.len() as f64 / started.elapsed().as_secs_f64();
    row(
        "ed25519 verify, batched (ceiling)",
        format!("{ceiling:.0} /s"),
        format!("one by one {one_by_one:.0} /s; {} changes", decoded.len()),
    );
    drop(decoded);

    let mut figures = json!({
        "size": {
            "organisations": size.organisations,
            "services": size.services,
            "referrals": size.referrals,
            "signed_changes": changes,
            "signed_bytes": dataset.signed_bytes(),
            "compressed_bytes": dataset.compressed_bytes(),
        },
        "verify_ceiling_per_s": ceiling,
        "verify_one_by_one_per_s": one_by_one,
    });

    runtime.block_on(async {
        // A node of a network that admitted every organisation of the dataset.
        let mut node = TestNode::init_networked("Réseau national", vec![]);
        // The partner that joins later (5.), a founder so that it needs no admission.
        let mut joiner = TestNode::init_networked("Nouveau partenaire", vec![]);
        let network = passerelle_tests::found_network(&[&node, &joiner], "1");
        if let Ok(keep) = std::env::var(KEEP_STORE) {
            // The joiner as it is before it ever starts, for PASSERELLE_BENCH_COLD_JOIN_FROM.
            copy_folder(&joiner.data_dir(), &std::path::Path::new(&keep).join("joiner"))
                .expect("keep the joiner");
        }
        node.start().await;
        let handle = node.handle();
        let started = Instant::now();
        dataset.admit_all(&handle, network).await;
        let admitted = started.elapsed();

        // 1. Ingest: every signed change, in batches, verified, checked, applied, flushed.
        let started = Instant::now();
        dataset.ingest(&handle, BATCH).await;
        let ingest = started.elapsed();
        let rate = changes as f64 / ingest.as_secs_f64();
        row(
            "ingest: verified, checked, applied, durable",
            format!("{rate:.0} /s"),
            format!(
                "{changes} changes in {:.1} s, batches of {BATCH}; {:.0} % of the batched verify ceiling (target ≥ 10,000/s)",
                ingest.as_secs_f64(),
                100.0 * rate / ceiling
            ),
        );
        row(
            "membership set-up",
            format!("{:.1} s", admitted.as_secs_f64()),
            format!("{} admissions", dataset.organisations.len()),
        );

        // 2. Start with the full dataset: stop (final snapshots), start, first query.
        let started = Instant::now();
        node.stop().await;
        let stopped = started.elapsed();
        let started = Instant::now();
        node.start().await;
        let handle = node.handle();
        let first = handle
            .search(SearchQuery {
                region: Some("CM005".into()),
                ..SearchQuery::default()
            })
            .await
            .expect("first query");
        let start = started.elapsed();
        assert!(!first.is_empty());
        let report = handle.status().await.expect("status").start;
        row(
            "start: open the store, load every document, answer the first query",
            format!("{:.2} s", start.as_secs_f64()),
            format!(
                "store opened in {} ms, documents loaded in {} ms ({} from snapshots, {} rebuilt); shutdown with final snapshots {:.2} s (target < 1 s)",
                report.open_ms,
                report.load_ms,
                report.from_snapshots,
                report.rebuilt,
                stopped.as_secs_f64()
            ),
        );

        // 3. Queries.
        let mut search = Vec::with_capacity(QUERY_ROUNDS);
        for i in 0..QUERY_ROUNDS {
            let query = SearchQuery {
                text: Some(["formation", "logement", "soutien", "emploi"][i % 4].into()),
                region: Some(format!("CM{:03}", 1 + i % 10)),
                ..SearchQuery::default()
            };
            let started = Instant::now();
            let hits = handle.search(query).await.expect("search");
            search.push(started.elapsed());
            std::hint::black_box(hits);
        }
        search.sort();
        // `referral list` as the CLI asks it: a status (or none), the newest 100, the total.
        let statuses = [None, Some(Status::Pending), Some(Status::InProgress), Some(Status::Completed)];
        let mut list = Vec::with_capacity(QUERY_ROUNDS);
        let mut whole = Vec::with_capacity(10);
        let mut board_size = 0;
        for i in 0..QUERY_ROUNDS + 10 {
            let full = i >= QUERY_ROUNDS;
            let filter = ListFilter {
                status: statuses[i % statuses.len()],
                limit: (!full).then_some(100),
                ..ListFilter::default()
            };
            let started = Instant::now();
            let reply = handle
                .referral(ReferralRequest::List { filter }, "bench")
                .await
                .expect("list");
            let elapsed = started.elapsed();
            let ReferralReply::List(reply) = reply else {
                panic!("a list");
            };
            if full {
                whole.push(elapsed);
                if reply.entries.len() > board_size {
                    board_size = reply.entries.len();
                }
            } else {
                assert!(reply.entries.len() <= 100 && reply.total >= reply.entries.len());
                list.push(elapsed);
            }
        }
        list.sort();
        whole.sort();
        row(
            "directory search (text + region), p50 / p99",
            format!("{:.1} / {:.1} ms", percentile(&search, 0.5), percentile(&search, 0.99)),
            format!("{QUERY_ROUNDS} searches through the node handle (target p99 < 20 ms)"),
        );
        row(
            "referral list (a status or none, newest 100 and the total), p50 / p99",
            format!("{:.1} / {:.1} ms", percentile(&list, 0.5), percentile(&list, 0.99)),
            format!("{QUERY_ROUNDS} lists through the node handle, as `passerelle referral list [--status S]` asks (target p99 < 20 ms)"),
        );
        row(
            "referral list --all (every entry of the board, copied out), p50",
            format!("{:.0} ms", percentile(&whole, 0.5)),
            format!("{board_size} entries, 10 lists"),
        );

        // 4. Disk.
        let status = handle.status().await.expect("status");
        row(
            "store on disk",
            format!("{:.0} MB", status.store_bytes as f64 / 1e6),
            format!(
                "{:.1}× the signed changes",
                status.store_bytes as f64 / dataset.signed_bytes() as f64
            ),
        );

        // 5. Cold join: a new partner's node dials this one over loopback libp2p and
        // catches up on everything (verifying every signature, applying, storing).
        let cold = cold_join(&mut node, &mut joiner, Some(dataset.signed_bytes() as u64)).await;

        // 6. Memory: the node alone in a process of its own (this bench process also holds
        // the dataset), started on the seed's store.
        let memory = node_memory(&node.data_dir());
        if let Ok(keep) = std::env::var(KEEP_STORE) {
            let keep = std::path::Path::new(&keep);
            copy_folder(&node.data_dir(), &keep.join("seed")).expect("keep the store");
            std::fs::write(
                keep.join("signed-bytes"),
                dataset.signed_bytes().to_string(),
            )
            .expect("keep the dataset's size");
            println!("the seed's data folder is kept in {}", keep.join("seed").display());
        }
        row(
            "memory: peak RSS of a node holding the full dataset",
            format!("{:.0} MB", memory["after_queries_kb"].as_f64().unwrap_or(0.0) / 1e3),
            format!(
                "own process: the store opened alone {:.0} MB; after start and searches {:.0} MB; after a referral list too (the board index built) {:.0} MB; after loading every document into Automerge (as a busy sync would) {:.0} MB (target < 250 MB)",
                memory["store_open_kb"].as_f64().unwrap_or(0.0) / 1e3,
                memory["after_search_kb"].as_f64().unwrap_or(0.0) / 1e3,
                memory["after_queries_kb"].as_f64().unwrap_or(0.0) / 1e3,
                memory["all_loaded_kb"].as_f64().unwrap_or(0.0) / 1e3,
            ),
        );
        figures["cold_join"] = cold;
        figures["memory"] = memory;

        figures["ingest_per_s"] = json!(rate);
        figures["ingest_seconds"] = json!(ingest.as_secs_f64());
        figures["admissions_seconds"] = json!(admitted.as_secs_f64());
        figures["start_seconds"] = json!(start.as_secs_f64());
        figures["start_open_ms"] = json!(report.open_ms);
        figures["start_load_ms"] = json!(report.load_ms);
        figures["shutdown_seconds"] = json!(stopped.as_secs_f64());
        figures["search_ms"] = json!({"p50": percentile(&search, 0.5), "p99": percentile(&search, 0.99)});
        figures["referral_list_ms"] = json!({"p50": percentile(&list, 0.5), "p99": percentile(&list, 0.99)});
        figures["referral_list_all_ms"] = json!({"p50": percentile(&whole, 0.5), "entries": board_size});
        figures["store_bytes"] = json!(status.store_bytes);
    });

    let path = std::env::var("PASSERELLE_BENCH_JSON").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench-national.json").to_owned()
    });
    std::fs::write(&path, serde_json::to_vec_pretty(&figures).expect("json"))
        .expect("write the figures");
    println!("figures written to {path}");
}

/// Environment variable naming a folder kept by [`KEEP_STORE`]: the bench runs the cold
/// join (5.) alone, from copies of the seed's and the joiner's data folders.
const COLD_JOIN_FROM: &str = "PASSERELLE_BENCH_COLD_JOIN_FROM";

/// Starts `joiner`, which dials `node` over loopback and catches up on every document
/// (verifying, applying, storing), then stops both and runs the baseline (an Automerge
/// full-document transfer of the same documents); prints the row, returns the figures.
async fn cold_join(
    node: &mut TestNode,
    joiner: &mut TestNode,
    signed_bytes: Option<u64>,
) -> serde_json::Value {
    let seed = node.listen_addr().await;
    if let Some(config) = joiner.config.network.as_mut() {
        config.peers = vec![seed];
    }
    let target = node.heads().await;
    let started = Instant::now();
    joiner.start().await;
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let held = joiner.heads().await;
        if target.iter().all(|d| held.contains(d)) {
            break;
        }
        assert!(Instant::now() < deadline, "the joiner never caught up");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let joined = started.elapsed();
    let wire = {
        let network = joiner.handle().network_status();
        network.sync_bytes_received + network.gossip_bytes_received
    };
    joiner.stop().await;
    node.stop().await;

    // The baseline: the same documents moved whole in Automerge's compressed format
    // (save on one side, load on the other), from the seed's snapshots.
    let store = passerelle_node::store::Store::open(&node.config.store_dir()).expect("store");
    let saved: Vec<Vec<u8>> = store
        .load_snapshots()
        .expect("snapshots")
        .into_iter()
        .map(|(_, snapshot)| snapshot.document)
        .collect();
    drop(store);
    let started = Instant::now();
    let loaded: Vec<automerge::AutoCommit> = saved
        .iter()
        .map(|bytes| automerge::AutoCommit::load(bytes).expect("load"))
        .collect();
    let baseline_load = started.elapsed();
    let started = Instant::now();
    let resaved: usize = loaded.into_iter().map(|mut doc| doc.save().len()).sum();
    let baseline_save = started.elapsed();
    let baseline_bytes: usize = saved.iter().map(Vec::len).sum();
    let baseline = baseline_load + baseline_save;
    row(
        "cold join: a new node syncs the full dataset over loopback",
        format!("{:.1} s", joined.as_secs_f64()),
        format!(
            "{:.1} MB on the wire = {}{:.1}× the compressed documents; baseline (Automerge full-document transfer: save {:.1} s + load {:.1} s, {:.1} MB, no signatures): {:.1} s, so {:.1}× its time (targets < 10 s, ≤ 1.5× the compressed bytes)",
            wire as f64 / 1e6,
            signed_bytes
                .map(|signed| format!("{:.2}× the signed changes, ", wire as f64 / signed as f64))
                .unwrap_or_default(),
            wire as f64 / baseline_bytes as f64,
            baseline_save.as_secs_f64(),
            baseline_load.as_secs_f64(),
            baseline_bytes as f64 / 1e6,
            baseline.as_secs_f64(),
            joined.as_secs_f64() / baseline.as_secs_f64()
        ),
    );
    std::hint::black_box(resaved);
    json!({
        "seconds": joined.as_secs_f64(),
        "wire_bytes": wire,
        "baseline_bytes": baseline_bytes,
        "baseline_seconds": baseline.as_secs_f64(),
        "baseline_save_seconds": baseline_save.as_secs_f64(),
        "baseline_load_seconds": baseline_load.as_secs_f64(),
    })
}

/// The cold join alone, on copies of a kept seed and joiner ([`COLD_JOIN_FROM`]).
fn cold_join_only(kept: &std::path::Path) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let signed_bytes = std::fs::read_to_string(kept.join("signed-bytes"))
        .ok()
        .and_then(|s| s.trim().parse().ok());
    println!("| measure | figure | detail |");
    println!("|---|---|---|");
    let figures = runtime.block_on(async {
        let mut node = TestNode::from_copy("Réseau national", &kept.join("seed"), vec![]);
        let mut joiner = TestNode::from_copy("Nouveau partenaire", &kept.join("joiner"), vec![]);
        node.start().await;
        cold_join(&mut node, &mut joiner, signed_bytes).await
    });
    println!("{figures}");
}
