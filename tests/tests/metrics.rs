//! The metrics for monitoring (`[metrics]`): a real node's `/metrics` counts its peers,
//! documents, changes and referrals, with libp2p's own metrics of the same connections, in
//! an exposition Prometheus's own OpenMetrics parser reads; `/health` answers while the
//! node does.

use std::io::{Read, Write};
use std::net::SocketAddr;

/// `GET path` over HTTP/1.1: the status line and headers, and the body.
fn get(address: SocketAddr, path: &str) -> (String, String) {
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("headers end");
    (head.to_owned(), body.to_owned())
}

/// The value of the sample `line` starts with (`name{labels}`), when there is one.
fn sample(text: &str, line: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(line) && l[line.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Fetches the metrics until `done` holds of them.
async fn wait_metrics(address: SocketAddr, what: &str, done: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    for _ in 0..300 {
        let (head, body) = tokio::task::spawn_blocking(move || get(address, "/metrics"))
            .await
            .expect("fetch");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(
            head.contains("content-type: application/openmetrics-text; version=1.0.0"),
            "{head}"
        );
        text = body;
        if done(&text) {
            return text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the metrics never showed {what}:\n{text}");
}

async fn two_nodes_and_a_referral() -> (
    Vec<passerelle_tests::TestNode>,
    SocketAddr,
    passerelle_web::metrics::RunningMetrics,
) {
    let (nodes, service) = passerelle_tests::referral_pair().await;
    let a = &nodes[0];
    passerelle_tests::refer(a, &nodes[1], &service).await;
    let metrics = passerelle_web::metrics::serve(
        a.handle(),
        a.libp2p_metrics(),
        "127.0.0.1:0".parse().expect("address"),
    )
    .await
    .expect("serve the metrics");
    let address = metrics.address();
    (nodes, address, metrics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodes_metrics_count_its_peers_documents_referrals_and_libp2p_traffic() {
    let (mut nodes, address, metrics) = two_nodes_and_a_referral().await;
    let text = wait_metrics(address, "the case file delivered", |t| {
        sample(t, "passerelle_case_files_waiting") == Some(0.0)
            && sample(t, "passerelle_referrals{status=\"pending\"}") == Some(1.0)
    })
    .await;
    assert_eq!(sample(&text, "passerelle_up"), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, "passerelle_peers{path=\"direct\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "passerelle_peers{path=\"relayed\"}"),
        Some(0.0),
        "{text}"
    );
    // The two organisations' documents; the sender keeps its copy of the case file.
    assert_eq!(sample(&text, "passerelle_documents"), Some(2.0), "{text}");
    assert_eq!(
        sample(&text, "passerelle_case_files_held"),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(&text, "passerelle_changes_stored").is_some_and(|n| n >= 4.0),
        "{text}"
    );
    // A document received whole is written with its snapshot.
    if sample(&text, "passerelle_documents_received_whole_total").is_some_and(|n| n > 0.0) {
        assert!(
            sample(&text, "passerelle_last_snapshot_timestamp_seconds").is_some_and(|t| t > 1.7e9),
            "{text}"
        );
    }
    assert!(
        sample(&text, "passerelle_store_bytes").is_some_and(|n| n > 0.0),
        "{text}"
    );
    // libp2p's own: the connection, and bytes by protocol.
    assert!(
        text.lines()
            .any(|l| l.starts_with("libp2p_swarm_connections_established_total")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("libp2p_bandwidth_bytes_total")
                && l.contains("direction=\"Inbound\"")),
        "{text}"
    );
    // Counts only: no organisation's name, nobody's.
    assert!(!text.contains("Douala") && !text.contains("Paul"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1);
    // Every series the sample Grafana dashboard draws is one the node serves.
    let dashboard = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../docs/monitoring/grafana-dashboard.json"),
    )
    .expect("the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).expect("JSON");
    let mut drawn = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("passerelle_") || word.starts_with("libp2p_") {
                    drawn += 1;
                    assert!(
                        text.lines().any(|l| l.starts_with(word)
                            && l[word.len()..].starts_with([' ', '{'])),
                        "the dashboard draws {word}, which the node does not serve:\n{text}"
                    );
                }
            }
        }
    }
    assert!(drawn >= 10, "{drawn}");
    assert!(text.ends_with("# EOF\n"));

    let (head, body) = tokio::task::spawn_blocking(move || get(address, "/health"))
        .await
        .expect("health");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let health: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["peers"], 1, "{health}");

    // A stopped node is not healthy.
    nodes[0].stop().await;
    let (head, _) = tokio::task::spawn_blocking(move || get(address, "/health"))
        .await
        .expect("health");
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    metrics.shutdown().await;
    nodes[1].stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(passerelle_openmetrics),
    ignore = "needs Debian's python3-prometheus-client, Prometheus's OpenMetrics parser (apt install python3-prometheus-client; .ci/run installs it)"
)]
async fn prometheuss_own_parser_reads_the_metrics() {
    let (mut nodes, address, metrics) = two_nodes_and_a_referral().await;
    let text = wait_metrics(address, "the referral", |t| {
        sample(t, "passerelle_referrals{status=\"pending\"}") == Some(1.0)
    })
    .await;
    let folder = tempfile::tempdir().expect("dir");
    let file = folder.path().join("metrics.txt");
    std::fs::write(&file, &text).expect("write");
    let check = std::process::Command::new(env!("PASSERELLE_OPENMETRICS_PYTHON"))
        .args([
            "-c",
            "import sys\n\
             from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
             families = list(text_string_to_metric_families(open(sys.argv[1]).read()))\n\
             names = {f.name for f in families}\n\
             assert 'passerelle_referrals' in names and 'libp2p_swarm_connections_established' in names, sorted(names)\n\
             print(len(families))",
        ])
        .arg(&file)
        .output()
        .expect("python3");
    assert!(
        check.status.success(),
        "Prometheus's parser refused the metrics: {}\n{text}",
        String::from_utf8_lossy(&check.stderr)
    );
    let families: usize = String::from_utf8_lossy(&check.stdout)
        .trim()
        .parse()
        .expect("a count");
    assert!(families > 20, "{families} families");
    metrics.shutdown().await;
    for node in &mut nodes {
        node.stop().await;
    }
}
