//! Every command that reads the whole directory or board, timed through the real binary
//! and control socket on a node holding the benchmarks' national dataset (1,000
//! organisations, 10,000 services, 100,000 referrals; a tenth with
//! `PASSERELLE_BENCH_SCALE=10`): `export hsds`, `export csv --hxl`, `export geojson`,
//! `report actors` and `referral list --all`, each run three times after one warm-up.
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
    drop(dataset);
    let data = node.data_dir();
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
    let commands: [(&str, Vec<&str>, Option<&Path>); 9] = [
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
    let _ = process.kill();
    let _ = process.wait();
}
