//! Partition bench: two members in two network namespaces whose link is cut (nftables drops
//! every packet) for 5 s to 4 minutes, both writing meanwhile (services, a referral sent,
//! referrals accepted); how long after the link returns until both hold identical heads,
//! and whether the dead connection was noticed before it returned. Needs root.
//!
//! Run: `cargo bench -p passerelle-tests --bench partition`
//! Other cuts, in seconds: `PASSERELLE_BENCH_CUTS=5,10,30` (default: 11 cuts, 5 s to 240 s;
//! about 13 minutes). Documented in docs/performance.md.

use std::time::Duration;

use passerelle_tests::partition::Partitioned;

fn cuts() -> Vec<Duration> {
    let list = std::env::var("PASSERELLE_BENCH_CUTS")
        .unwrap_or_else(|_| "5,8,12,17,25,35,50,75,110,160,240".into());
    list.split(',')
        .filter_map(|s| s.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .collect()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut pair = Partitioned::start().await;
        let mut healed = Vec::new();
        println!("cut_s\thealed_ms\tnoticed");
        for cut in cuts() {
            let trial = pair.trial(cut).await;
            println!(
                "{}\t{}\t{}",
                trial.cut_for.as_secs(),
                trial.healed_after.as_millis(),
                trial.noticed
            );
            healed.push(trial.healed_after);
        }
        pair.stop().await;
        healed.sort();
        let median = healed[healed.len() / 2];
        let max = healed[healed.len() - 1];
        println!(
            "{} partitions: identical heads {:.2} s (median) and {:.2} s (max) after the link returned",
            healed.len(),
            median.as_secs_f64(),
            max.as_secs_f64()
        );
    });
}
