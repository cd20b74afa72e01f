//! Every command that reads the whole directory or board, timed through the real binary
//! and control socket on a node holding the benchmarks' national dataset (1,000
//! organisations, 10,000 services, 100,000 referrals; a tenth with
//! `PASSERELLE_BENCH_SCALE=10`): `export hsds`, `export csv --hxl`, `export geojson`,
//! `report actors` and `referral list --all`, each run three times after one warm-up.
//! The node's audit log holds six entries for each referral of the dataset (a busy
//! organisation's years of case files: 600,000 entries, sealed and in files as the node
//! writes them): `referral audit ID`, `audit export` of a year and `audit verify` read it,
//! and `status` is timed while `audit verify` runs (the node answers meanwhile).
//!
//! Run: `cargo bench -p passerelle --bench exports`. Documented in docs/performance.md.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use passerelle_tests::dataset::{DatasetSize, generate};

const ROUNDS: usize = 3;

fn passerelle(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_passerelle"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("PASSERELLE_HOME")
        .env_remove("RUST_LOG")
        .output()
        .expect("run passerelle")
}

fn main() {
    let size = DatasetSize::from_env();
    let started = Instant::now();
    let dataset = generate(size, 2026);
    eprintln!(
        "dataset: {} organisations, {} services, {} referrals, made in {:.1} s",
        dataset.organisations.len(),
        dataset.services,
        dataset.referrals(),
        started.elapsed().as_secs_f64()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let node = runtime.block_on(dataset.node_holding_it("Réseau national"));
    let audited = dataset.referrals();
    drop(dataset);
    let data = node.data_dir();
    let started = Instant::now();
    let (one_referral, year_ago, entries) = fill_audit_log(&data, audited);
    eprintln!(
        "audit log: {entries} entries written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let out = tempfile::tempdir().expect("temporary folder");
    let mut process = Command::new(env!("CARGO_BIN_EXE_passerelle"))
        .arg("--data-dir")
        .arg(&data)
        .args(["start", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the node");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !passerelle(&data, &["status", "--json"]).status.success() {
        assert!(Instant::now() < deadline, "the node did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let hsds = out.path().join("hsds");
    let table = out.path().join("3w.csv");
    let commands: [(&str, Vec<&str>, Option<&Path>); 11] = [
        (
            "export hsds DIR",
            vec!["export", "hsds", hsds.to_str().expect("path")],
            Some(&hsds),
        ),
        (
            "export csv --hxl --output FILE",
            vec![
                "export",
                "csv",
                "--hxl",
                "--output",
                table.to_str().expect("path"),
            ],
            Some(&table),
        ),
        ("export geojson", vec!["export", "geojson"], None),
        (
            "report actors --json",
            vec!["report", "actors", "--json"],
            None,
        ),
        (
            "referral list --all --json",
            vec!["referral", "list", "--all", "--json"],
            None,
        ),
        (
            "report referrals --json",
            vec!["report", "referrals", "--json"],
            None,
        ),
        (
            "report referrals --csv --from --to",
            vec![
                "report",
                "referrals",
                "--csv",
                "--from",
                "2000-01-01",
                "--to",
                "2099-12-31",
            ],
            None,
        ),
        ("retention --json", vec!["retention", "--json"], None),
        ("audit verify", vec!["audit", "verify"], None),
        (
            "referral audit ID",
            vec!["referral", "audit", &one_referral],
            None,
        ),
        (
            "audit export --from (a year)",
            vec!["audit", "export", "--from", &year_ago],
            None,
        ),
    ];
    println!("| command | median | min – max | output |");
    println!("|---|---|---|---|");
    for (name, args, written) in &commands {
        let mut times = Vec::new();
        let mut bytes = 0;
        for round in 0..=ROUNDS {
            let started = Instant::now();
            let run = passerelle(&data, args);
            let elapsed = started.elapsed();
            assert!(
                run.status.success(),
                "{name} failed: {}",
                String::from_utf8_lossy(&run.stderr)
            );
            bytes = match written {
                Some(path) if path.is_dir() => std::fs::read_dir(path)
                    .expect("folder")
                    .map(|e| e.expect("entry").metadata().expect("size").len())
                    .sum::<u64>() as usize,
                Some(path) => std::fs::metadata(path).expect("file").len() as usize,
                None => run.stdout.len(),
            };
            if round > 0 {
                times.push(elapsed);
            }
        }
        times.sort();
        println!(
            "| `{name}` | {:.2} s | {:.2} – {:.2} s | {:.1} MB |",
            times[times.len() / 2].as_secs_f64(),
            times[0].as_secs_f64(),
            times[times.len() - 1].as_secs_f64(),
            bytes as f64 / 1e6
        );
    }
    // The node answers while it checks its whole audit log.
    let verifying = Command::new(env!("CARGO_BIN_EXE_passerelle"))
        .arg("--data-dir")
        .arg(&data)
        .args(["audit", "verify"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env_remove("PASSERELLE_HOME")
        .spawn()
        .expect("audit verify");
    let mut verifying = verifying;
    let mut slowest = Duration::ZERO;
    let mut calls = 0;
    while verifying.try_wait().expect("wait").is_none() {
        let started = Instant::now();
        assert!(passerelle(&data, &["status", "--json"]).status.success());
        slowest = slowest.max(started.elapsed());
        calls += 1;
    }
    println!(
        "\n`status` while `audit verify` runs: {calls} calls, the slowest {:.2} s",
        slowest.as_secs_f64()
    );
    let _ = process.kill();
    let _ = process.wait();
}

/// Writes into the (stopped) node's audit log six entries for each of `referrals`
/// referrals, over the last two years, sealed by the node's key every
/// [`SEAL_EVERY`](passerelle_node::audit_log::SEAL_EVERY) entries and in files of
/// [`ROTATE_BYTES`](passerelle_node::audit_log::ROTATE_BYTES), as the node writes them (one
/// `fdatasync` per file here, not per line). Returns one referral's id, the day a year ago
/// (YYYY-MM-DD) and how many entries were written.
fn fill_audit_log(data: &Path, referrals: usize) -> (String, String, usize) {
    use passerelle_node::audit::{Event, Head};
    use passerelle_node::audit_log::{AUDIT_DIR, ROTATE_BYTES, SEAL_EVERY};
    use passerelle_node::keys::KeyFiles;
    use std::io::Write;
    let identity = passerelle_node::identity::Identity::load(data).expect("the node's keys");
    let dir = data.join(AUDIT_DIR);
    assert!(
        !dir.join("000002.jsonl").exists(),
        "the audit log is already full"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let span = 2 * 365 * 86_400;
    let actions = [
        "stored",
        "sent",
        "delivered",
        "accepted",
        "completed",
        "erased",
    ];
    let total = referrals * actions.len();
    // What the node wrote at start (a seal) stays first.
    let first = std::fs::read_to_string(dir.join("000001.jsonl")).unwrap_or_default();
    let mut head = first
        .lines()
        .filter_map(|l| serde_json::from_str::<passerelle_node::audit::Entry>(l).ok())
        .next_back()
        .map(|e| Head::after(&e))
        .unwrap_or_default();
    let mut index = 1;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(dir.join(format!("{index:06}.jsonl")))
        .expect("audit file");
    let mut length = first.len() as u64;
    let mut since_seal = 0;
    let write = |file: &mut std::fs::File, length: &mut u64, entry| {
        let mut line = serde_json::to_vec(&entry).expect("json");
        line.push(b'\n');
        file.write_all(&line).expect("write");
        *length += line.len() as u64;
    };
    for i in 0..total {
        let referral = format!("ref-{:024x}", i / actions.len());
        let at = now - span + (i as i64 * span) / total as i64;
        let entry = head.next(Event {
            at,
            referral,
            action: actions[i % actions.len()].to_owned(),
            by: "officer".to_owned(),
            detail: String::new(),
        });
        head = Head::after(&entry);
        write(&mut file, &mut length, entry);
        since_seal += 1;
        if since_seal >= SEAL_EVERY || length >= ROTATE_BYTES {
            let seal = head.seal(at, "node", identity.signing());
            head = Head::after(&seal);
            write(&mut file, &mut length, seal);
            since_seal = 0;
        }
        if length >= ROTATE_BYTES {
            file.sync_data().expect("sync");
            index += 1;
            file = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(dir.join(format!("{index:06}.jsonl")))
                .expect("audit file");
            length = 0;
        }
    }
    let seal = head.seal(now, "node", identity.signing());
    write(&mut file, &mut length, seal);
    file.sync_data().expect("sync");
    let year_ago = std::time::UNIX_EPOCH + Duration::from_secs((now - 365 * 86_400) as u64);
    let year_ago = humantime::format_rfc3339(year_ago).to_string()[..10].to_owned();
    (format!("ref-{:024x}", referrals / 2), year_ago, total)
}
