//! Integration tests of real Passerelle nodes: real keys, real sled stores in temporary
//! folders, real control sockets, several nodes per test.

use passerelle_node::api::{self, ErrorKind};
use passerelle_node::control::ClientError;
use passerelle_node::directory::{SearchQuery, ServiceHit};
use passerelle_node::document::Edit;
use passerelle_node::node::{EditReceipt, StatusReport};
use passerelle_node::store::Store;
use passerelle_tests::{TestNode, spawn_nodes, wait_for};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

mod backup;
mod drafts;
mod foreign;
mod fuzz;
mod hostile;
mod layering;
mod membership;
mod metrics;
mod nat;
mod notify;
mod partition;
mod powercut;
mod referrals;
mod repair;
mod standards;
mod start;
mod sync;
mod web;

pub(crate) use passerelle_tests::{add, service};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organisations_each_write_their_own_signed_document() {
    let mut nodes = spawn_nodes(&["Délégation MINJEC Littoral", "ONG Avenir", "CICR Garoua"]).await;
    let regions = ["CM005", "CM002", "CM006"];
    for (node, region) in nodes.iter().zip(regions) {
        for i in 0..3 {
            let receipt = node
                .handle()
                .edit(add(&format!("{} service {i}", node.name), region))
                .await
                .expect("edit");
            assert!(receipt.durable);
        }
    }
    let mut ids = Vec::new();
    for (node, region) in nodes.iter().zip(regions) {
        let status = node.handle().status().await.expect("status");
        assert_eq!(status.org_name, node.name);
        assert_eq!(status.documents.len(), 1);
        assert_eq!(status.documents[0].changes, 5);
        assert_eq!(status.documents[0].heads.len(), 1);
        ids.push(status.org_id.clone());
        let hits = node
            .handle()
            .search(SearchQuery {
                region: Some(region.into()),
                ..Default::default()
            })
            .await
            .expect("search");
        assert_eq!(hits.len(), 3);
        assert!(hits.iter().all(|h| h.org_name == node.name));
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "every organisation has its own key");

    // Every stored change of every node verifies against its author's key, read straight
    // from the sled store after the node stopped.
    for node in &mut nodes {
        node.stop().await;
        let store = Store::open(&node.config.store_dir()).expect("open store");
        let documents = store.load().expect("every change verifies");
        assert_eq!(documents.len(), 1);
        let owner = documents[0].id.organisation_owner().expect("org document");
        assert!(
            documents[0]
                .changes
                .iter()
                .all(|c| c.author() == owner.key())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_from_snapshots_and_changes() {
    let mut node = TestNode::init("Centre Espoir", |config| config.snapshot_every = 4);
    node.start().await;
    for i in 0..10 {
        node.handle()
            .edit(add(&format!("Service {i}"), "CM005"))
            .await
            .expect("edit");
    }
    let before = node.handle().organisation(None).await.expect("view");
    node.restart().await;
    let after = node.handle().organisation(None).await.expect("view");
    assert_eq!(before, after);
    // Edits continue the same signed chain after the restart.
    node.handle()
        .edit(add("Service 10", "CM005"))
        .await
        .expect("edit");
    node.restart().await;
    let history = node.handle().history(None, 100).await.expect("history");
    assert_eq!(history.len(), 13);
    let authors: std::collections::HashSet<_> = history.iter().map(|h| &h.author).collect();
    assert_eq!(authors.len(), 1);
    let seqs: Vec<u64> = history.iter().rev().map(|h| h.seq).collect();
    assert_eq!(seqs, (1..=13).collect::<Vec<_>>());
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_all_get_durable_edits() {
    let mut nodes = spawn_nodes(&["ONG Avenir"]).await;
    let node = &mut nodes[0];
    let mut tasks = tokio::task::JoinSet::new();
    for client_no in 0..8 {
        let mut client = node.client().await;
        tasks.spawn(async move {
            for i in 0..10 {
                let edit = add(&format!("Client {client_no} service {i}"), "CM010");
                let receipt: EditReceipt = client
                    .call(api::EditOwn { edit })
                    .await
                    .expect("edit over the control socket");
                assert!(receipt.durable);
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("client task");
    }
    node.restart().await;
    let hits: Vec<ServiceHit> = node
        .client()
        .await
        .collect(api::Search {
            query: SearchQuery::default(),
        })
        .await
        .expect("search")
        .1;
    assert_eq!(hits.len(), 80);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_api_refuses_hostile_input_and_keeps_serving() {
    let mut nodes = spawn_nodes(&["ONG Avenir"]).await;
    let node = &mut nodes[0];
    node.handle()
        .edit(add("Service", "CM005"))
        .await
        .expect("edit");
    let socket = node.config.control_socket();

    // Garbage and unknown requests get a bad_request answer on the same connection.
    let stream = tokio::net::UnixStream::connect(&socket)
        .await
        .expect("connect");
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    for garbage in [
        "not json",
        r#"{"request": "format_disk"}"#,
        r#"{"request": "edit"}"#,
    ] {
        write
            .write_all(format!("{garbage}\n").as_bytes())
            .await
            .expect("write");
        let answer = lines.next_line().await.expect("read").expect("a line");
        let answer: serde_json::Value = serde_json::from_str(&answer).expect("json answer");
        assert_eq!(answer["error"]["kind"], "bad_request", "{answer}");
    }

    // An oversized request is refused and the connection closed.
    let stream = tokio::net::UnixStream::connect(&socket)
        .await
        .expect("connect");
    let (read, mut write) = stream.into_split();
    let big = vec![b'x'; passerelle_node::api::MAX_REQUEST_BYTES + 1024];
    let _ = write.write_all(&big).await;
    let mut lines = BufReader::new(read).lines();
    let answer = lines
        .next_line()
        .await
        .expect("read")
        .expect("an error line");
    assert!(answer.contains("longer than"), "{answer}");

    // Invalid edits name the field; not-found is its own kind.
    let mut client = node.client().await;
    let mut bad = service("X", "CM005");
    bad.service_area.regions = vec!["CM042".into()];
    let err = client
        .call(api::EditOwn {
            edit: Edit::AddService {
                id: String::new(),
                service: bad,
            },
        })
        .await
        .expect_err("invalid region");
    match err {
        ClientError::Api(api) => {
            assert_eq!(api.kind, ErrorKind::InvalidInput);
            assert_eq!(api.field.as_deref(), Some("service_area.regions[0]"));
        }
        other => panic!("unexpected {other}"),
    }
    let err = client
        .call(api::EditOwn {
            edit: Edit::RemoveService {
                id: "svc-none".into(),
            },
        })
        .await
        .expect_err("no such service");
    assert!(matches!(err, ClientError::Api(api) if api.kind == ErrorKind::NotFound));

    // The node still serves, and its data is as it was.
    let handle = node.handle();
    wait_for("the node to answer", || {
        let handle = handle.clone();
        async move { handle.status().await.is_ok() }
    })
    .await;
    let status: StatusReport = client.call(api::Status {}).await.expect("status");
    assert_eq!(status.documents[0].changes, 3);
    node.stop().await;
}

/// The client's side of the API against a socket that answers badly: a stream cut short
/// is an error, never a shorter answer; a node of an older release is named as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_short_is_an_error_and_an_older_node_is_named() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let socket = passerelle_node::config::control_socket(dir.path());
    let listener = tokio::net::UnixListener::bind(&socket).expect("bind");
    // Each connection is answered by the next script, whatever it asks: a list of lines
    // to write after each request read, then the connection is closed.
    let scripts: Vec<Vec<Vec<&'static str>>> = vec![
        // Announces three items, sends two.
        vec![vec![
            r#"{"head":null}"#,
            r#"{"item":{"hash":"ab","author":"o","author_fingerprint":"f","seq":1,"time":0,"message":"m"}}"#,
            r#"{"item":{"hash":"ab","author":"o","author_fingerprint":"f","seq":1,"time":0,"message":"m"}}"#,
            r#"{"end":{"count":3}}"#,
        ]],
        // Stops after the first item.
        vec![vec![
            r#"{"head":null}"#,
            r#"{"item":{"hash":"ab","author":"o","author_fingerprint":"f","seq":1,"time":0,"message":"m"}}"#,
        ]],
        // An error half-way.
        vec![vec![
            r#"{"head":null}"#,
            r#"{"error":{"kind":"internal","message":"the store failed"}}"#,
        ]],
        // A node of version 1: it knows neither `version` nor streams.
        vec![
            vec![
                r#"{"error":{"kind":"bad_request","message":"malformed request: unknown variant `history`"}}"#,
            ],
            vec![
                r#"{"error":{"kind":"bad_request","message":"malformed request: unknown variant `version`"}}"#,
            ],
        ],
    ];
    let server = tokio::spawn(async move {
        for script in scripts {
            let (stream, _) = listener.accept().await.expect("accept");
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            for answer in script {
                lines.next_line().await.expect("read").expect("a request");
                for line in answer {
                    write.write_all(line.as_bytes()).await.expect("write");
                    write.write_all(b"\n").await.expect("write");
                }
            }
        }
    });
    let records = || async {
        passerelle_node::control::Client::connect(dir.path())
            .await
            .expect("connect")
            .collect(api::History {
                org: None,
                limit: 10,
            })
            .await
    };
    let short = records().await.expect_err("three announced, two sent");
    assert!(
        short.to_string().contains("announced 3 items and sent 2"),
        "{short}"
    );
    let cut = records().await.expect_err("no end");
    assert!(matches!(cut, ClientError::Io(_)), "{cut}");
    let failed = records().await.expect_err("an error half-way");
    assert!(
        matches!(&failed, ClientError::Api(e) if e.kind == ErrorKind::Internal),
        "{failed}"
    );
    let older = records().await.expect_err("an older node");
    assert!(
        matches!(&older, ClientError::Version { node } if node.contains("(1)")),
        "{older}"
    );
    assert!(older.to_string().contains("restart the node"), "{older}");
    server.await.expect("the script ran");
}
