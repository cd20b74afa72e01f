//! NAT bench: a public member and two offices, one behind an ADSL router's NAT and one
//! behind a 4G operator's carrier NAT (network namespaces, nftables masquerade; hole
//! punching off, so the only path between the offices is the public member's relay).
//! Measured, in the same run, against a baseline where the two offices have public
//! addresses (direct paths everywhere):
//! - propagation: an edit on one office until the other holds the same heads (it travels
//!   by gossip through the public member in both set-ups);
//! - case file: a referral sent by one office until the other holds its case file, read
//!   and intact (through the relay behind NAT; directly in the baseline). The first one
//!   includes setting up the connection.
//!
//! Needs root. Run: `cargo bench -p passerelle-tests --bench nat`
//! (`PASSERELLE_BENCH_ROUNDS=20` by default). Documented in docs/performance.md.

use std::time::{Duration, Instant};

use passerelle_node::node::{CaseState, ReferralReply, ReferralRequest};
use passerelle_tests::nat::{Offices, public_and_offices};
use passerelle_tests::partition::referral;
use passerelle_tests::{TestNode, add, wait_converged, within};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn case_file_held(node: &TestNode, id: passerelle_node::ids::ReferralId) -> bool {
    matches!(
        node.handle()
            .referral(ReferralRequest::Show { id }, "bench")
            .await,
        Ok(ReferralReply::Show(view)) if view.case_state == CaseState::Held && view.intact == Some(true)
    )
}

/// (propagation samples, first case file, later case files)
async fn measure(behind_nat: bool, rounds: usize) -> (Vec<Duration>, Duration, Vec<Duration>) {
    let Offices {
        internet: _internet,
        mut nodes,
        ..
    } = public_and_offices(false, behind_nat).await;
    if behind_nat {
        for office in &nodes[1..] {
            assert!(
                within(Duration::from_secs(90), || async {
                    !office.handle().network_status().relays.is_empty()
                })
                .await,
                "the offices hold a slot on the relay"
            );
        }
    }
    let service = nodes[2]
        .handle()
        .edit(add("Accompagnement psychosocial", "CM005"))
        .await
        .expect("edit")
        .id;
    wait_converged(&nodes, 3).await;

    let mut propagation = Vec::new();
    for round in 0..rounds {
        nodes[1]
            .handle()
            .edit(add(&format!("Service {round}"), "CM005"))
            .await
            .expect("edit");
        let start = Instant::now();
        let target = nodes[1].heads().await;
        assert!(
            within(Duration::from_secs(30), || async {
                nodes[2].heads().await == target
            })
            .await,
            "the edit reached the other office"
        );
        propagation.push(start.elapsed());
    }

    let receiver = nodes[2].handle().org_id();
    let mut first = None;
    let mut later = Vec::new();
    for _ in 0..rounds.min(10) {
        let start = Instant::now();
        let id = match nodes[1]
            .handle()
            .referral(
                ReferralRequest::Send {
                    send: Box::new(referral(receiver, &service)),
                },
                "bench",
            )
            .await
            .expect("send")
        {
            ReferralReply::Receipt(receipt) => receipt.id,
            other => panic!("unexpected reply {other:?}"),
        };
        assert!(
            within(Duration::from_secs(60), || case_file_held(&nodes[2], id)).await,
            "the case file arrived"
        );
        match first {
            None => first = Some(start.elapsed()),
            Some(_) => later.push(start.elapsed()),
        }
    }
    let relayed = nodes[1]
        .handle()
        .network_status()
        .peers
        .iter()
        .any(|p| p.relayed);
    assert_eq!(relayed, behind_nat, "the path is the one measured");
    for node in &mut nodes {
        node.stop().await;
    }
    (propagation, first.expect("one case file"), later)
}

fn main() {
    let rounds = std::env::var("PASSERELLE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (direct_prop, direct_first, direct_later) = measure(false, rounds).await;
        let (nat_prop, nat_first, nat_later) = measure(true, rounds).await;
        let (dp, np) = (median(direct_prop), median(nat_prop));
        let (dl, nl) = (median(direct_later), median(nat_later));
        println!("rounds: {rounds}");
        println!(
            "propagation office → office (median): direct {} · behind NAT {} · ratio {:.2}",
            ms(dp),
            ms(np),
            np.as_secs_f64() / dp.as_secs_f64()
        );
        println!(
            "first case file (connection set up): direct {} · through the relay {}",
            ms(direct_first),
            ms(nat_first)
        );
        println!(
            "later case files (median): direct {} · through the relay {} · ratio {:.2}",
            ms(dl),
            ms(nl),
            nl.as_secs_f64() / dl.as_secs_f64()
        );
    });
}
