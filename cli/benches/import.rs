//! Importing a coordinator's mapping at scale: a 10,000-row sheet written like the messy
//! field mapping of docs/examples (phrase headers, names of languages, French costs,
//! misspelt categories, bad rows) — that sample's 44 rows again and again, each copy's
//! other organisations named apart, its own rows naming this node's organisation by its
//! name and by its name with a branch suffix.
//!
//! Measured, each three times after one warm-up:
//! - reading it (the library's `read_csv`: headers recognised, every value checked);
//! - `passerelle import csv FILE --skip-errors --dry-run` through the real binary and
//!   socket, on a node holding the benchmarks' national dataset (a tenth with
//!   `PASSERELLE_BENCH_SCALE=10`): reading, whose each name is (against every member), the
//!   plan;
//! - then the import itself, once (what the node writes).
//!
//! It also prints the share of the messy sample that imports without hand edits.
//!
//! Run: `cargo bench -p passerelle --bench import`. Documented in docs/cartography.md.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use passerelle_node::cartography::import::{ReadOptions, read_csv};
use passerelle_tests::dataset::{DatasetSize, generate};

const ROUNDS: usize = 3;
const ROWS: usize = 10_000;
const OWN: &str = "Réseau national";

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

/// The sample's rows again and again up to `ROWS`, other organisations named apart per
/// copy, the sample's own organisation (ARD) renamed to this node's.
fn sheet(sample: &str) -> String {
    let sample = sample.trim_start_matches('\u{feff}');
    let mut lines = sample.lines();
    let header = lines.next().expect("header");
    let rows: Vec<&str> = lines.collect();
    let mut out = String::from(header);
    out.push('\n');
    for index in 0..ROWS {
        let copy = index / rows.len();
        let mut cells: Vec<String> = rows[index % rows.len()]
            .split(';')
            .map(str::to_owned)
            .collect();
        let name = &cells[1];
        cells[1] = if name == "Association Retour et Dignité" || name == "ARD" {
            OWN.to_owned()
        } else if let Some(branch) = name.strip_prefix("ARD") {
            format!("{OWN}{branch}")
        } else {
            format!("{name} {copy}")
        };
        cells[2] = String::new();
        out.push_str(&cells.join(";"));
        out.push('\n');
    }
    out
}

fn median(mut times: Vec<Duration>) -> (f64, f64, f64) {
    times.sort();
    (
        times[times.len() / 2].as_secs_f64(),
        times[0].as_secs_f64(),
        times[times.len() - 1].as_secs_f64(),
    )
}

fn main() {
    let sample = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/examples/cartographie-terrain.csv"
    ))
    .expect("the messy sample");
    let options = ReadOptions::default();
    let read = read_csv(&sample, &options).expect("the sample reads");
    let total = sample.trim_end().lines().count() - 1;
    println!(
        "messy sample: {} of {total} rows import without hand edits ({:.0} %); {} values reported",
        read.rows.len(),
        100.0 * read.rows.len() as f64 / total as f64,
        read.errors.len()
    );

    let text = sheet(&sample);
    let mut times = Vec::new();
    let mut good = 0;
    for round in 0..=ROUNDS {
        let started = Instant::now();
        let read = read_csv(&text, &options).expect("the sheet reads");
        if round > 0 {
            times.push(started.elapsed());
        }
        good = read.rows.len();
    }
    let (med, min, max) = median(times);
    println!(
        "read_csv, {ROWS} rows ({good} good): {med:.3} s ({min:.3} – {max:.3}), {:.0} rows/s",
        ROWS as f64 / med
    );

    let size = DatasetSize::from_env();
    let dataset = generate(size, 2026);
    let organisations = dataset.organisations.len();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let node = runtime.block_on(dataset.node_holding_it(OWN));
    drop(dataset);
    let data = node.data_dir();
    let folder = tempfile::tempdir().expect("temporary folder");
    let file = folder.path().join("cartographie-10000.csv");
    std::fs::write(&file, &text).expect("write the sheet");
    let file = file.to_str().expect("path");
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
    let mut times = Vec::new();
    for round in 0..=ROUNDS {
        let started = Instant::now();
        let run = passerelle(
            &data,
            &[
                "import",
                "csv",
                file,
                "--skip-errors",
                "--dry-run",
                "--json",
            ],
        );
        let elapsed = started.elapsed();
        assert!(
            run.status.success(),
            "import --dry-run failed: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        if round > 0 {
            times.push(elapsed);
        }
    }
    let (med, min, max) = median(times);
    println!(
        "passerelle import csv --skip-errors --dry-run, {ROWS} rows, node of {organisations} organisations: {med:.2} s ({min:.2} – {max:.2}), {:.0} rows/s",
        ROWS as f64 / med
    );
    let started = Instant::now();
    let run = passerelle(&data, &["import", "csv", file, "--skip-errors", "--json"]);
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        run.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let done: serde_json::Value = serde_json::from_slice(&run.stdout).expect("JSON");
    println!(
        "passerelle import csv --skip-errors (written: {} own rows, {} changes): {elapsed:.2} s, {:.0} rows/s",
        done["own_rows"],
        done["changes"].as_array().map_or(0, Vec::len),
        ROWS as f64 / elapsed
    );
    let _ = process.kill();
    let _ = process.wait();
}
