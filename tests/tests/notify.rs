//! Notifications outside the page (`[notify]`): the office's webhook is called when a
//! referral arrives (and again after it failed), and the daily digest goes through a real
//! SMTP server (Debian's aiosmtpd, writing a Maildir); both hold ids and counts, never the
//! case file's contents.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use passerelle_node::config::NotifySection;
use passerelle_node::reference::Lang;
use passerelle_web::notify::{NotifyConfig, send_digest, start};

/// A port nothing listens on yet.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(passerelle_smtp),
    ignore = "needs Debian's python3-aiosmtpd, a real SMTP server (apt install python3-aiosmtpd; .ci/run installs it)"
)]
async fn a_referral_reaches_the_offices_webhook_and_daily_digest_without_personal_data() {
    let (nodes, service) = passerelle_tests::referral_pair().await;
    let (a, b) = (&nodes[0], &nodes[1]);

    // The office's webhook: it fails once (the office's server is restarting), then answers.
    let calls = Arc::new(AtomicUsize::new(0));
    let (sent, mut received) = tokio::sync::mpsc::unbounded_channel::<String>();
    let hook = {
        let calls = calls.clone();
        axum::Router::new().route(
            "/passerelle",
            axum::routing::post(move |body: String| {
                let calls = calls.clone();
                let sent = sent.clone();
                async move {
                    if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let _ = sent.send(body);
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook_address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, hook).await });

    // The office's SMTP server.
    let folder = tempfile::tempdir().expect("dir");
    let maildir = folder.path().join("Maildir");
    let smtp_port = free_port();
    let mut smtp = tokio::process::Command::new(env!("PASSERELLE_SMTP_PYTHON"))
        .args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{smtp_port}"))
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(&maildir)
        .kill_on_drop(true)
        .spawn()
        .expect("aiosmtpd");
    passerelle_tests::wait_for("the SMTP server to listen", || async {
        tokio::net::TcpStream::connect(("127.0.0.1", smtp_port))
            .await
            .is_ok()
    })
    .await;

    let section = NotifySection {
        webhook: Some(format!("http://{hook_address}/passerelle")),
        smtp: Some(format!("smtp://127.0.0.1:{smtp_port}")),
        from: Some("passerelle@emploi-littoral.cm".into()),
        to: Some(vec!["coordination@emploi-littoral.cm".into()]),
        ..Default::default()
    };
    let mut config = NotifyConfig::from_section(&section, Lang::Fr, folder.path())
        .expect("[notify]")
        .expect("on");
    config.every = Duration::from_millis(200);
    let notifier = start(b.handle(), config.clone());

    // The first call failed and was made again: nothing waits yet.
    let first = tokio::time::timeout(Duration::from_secs(30), received.recv())
        .await
        .expect("the webhook to be called again after its failure")
        .expect("a call");
    let first: serde_json::Value = serde_json::from_str(&first).expect("json");
    assert_eq!(first["counts"]["incoming"], 0, "{first}");
    assert_eq!(first["organisation"], b.handle().org_id().to_string());
    assert!(calls.load(Ordering::SeqCst) >= 2);

    // A refers a returnee to B: the webhook hears of it, with the id and no personal data.
    let id = passerelle_tests::refer(a, b, &service).await.to_string();
    let call = loop {
        let body = tokio::time::timeout(Duration::from_secs(60), received.recv())
            .await
            .expect("the webhook to hear of the referral")
            .expect("a call");
        let call: serde_json::Value = serde_json::from_str(&body).expect("json");
        if call["counts"]["incoming"] == 1 && call["counts"]["case_files"] == 1 {
            assert!(
                !body.contains("Paul") && !body.contains("677"),
                "personal data in the webhook's call: {body}"
            );
            break call;
        }
    };
    assert_eq!(call["counts"]["incoming_ids"][0], id.as_str(), "{call}");

    // The digest, through the SMTP server: counts and the id, no personal data.
    let digest = config.digest.as_ref().expect("digest");
    assert!(
        send_digest(&b.handle(), digest, &config)
            .await
            .expect("the digest is sent")
    );
    let new = maildir.join("new");
    let mut mails: Vec<String> = Vec::new();
    for _ in 0..100 {
        mails = std::fs::read_dir(&new)
            .map(|entries| {
                entries
                    .map(|e| std::fs::read_to_string(e.expect("entry").path()).expect("mail"))
                    .collect()
            })
            .unwrap_or_default();
        if !mails.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert!(
        mail.contains("To: coordination@emploi-littoral.cm"),
        "{mail}"
    );
    assert!(mail.contains("Subject:"), "{mail}");
    assert!(mail.contains(&id), "{mail}");
    assert!(!mail.contains("Paul") && !mail.contains("677"), "{mail}");

    notifier.shutdown().await;
    let _ = smtp.kill().await;
}
