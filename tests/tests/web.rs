//! The officers' web page in a real browser (Debian's Chromium, headless, through
//! WebDriver) against a real node: signing in, the board, searching the directory, the
//! language switch, a form without its CSRF token refused, sign-in rate-limited.
//! Screenshots of each page go to `target/tmp/web-screenshots/`.

use passerelle_node::accounts::{Password, Role};
use passerelle_tests::TestNode;
use passerelle_tests::browser::Browser;
use passerelle_web::{MAX_FAILURES, WebConfig};

use crate::add;

const PASSWORD: &str = "mot de passe d'Amina";

fn shots() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-screenshots")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(passerelle_browser),
    ignore = "needs Debian's chromium and chromium-driver (apt install chromium chromium-driver; .ci/run installs them)"
)]
async fn an_officer_signs_in_searches_and_the_page_refuses_forged_forms_and_guessing() {
    let mut node = TestNode::init("Association Retour et Dignité", |_| {});
    node.start().await;
    let handle = node.handle();
    handle
        .edit(add("Placement en emploi à Douala", "CM005"))
        .await
        .expect("a service");
    handle
        .edit(add("Formation en soudure à Garoua", "CM006"))
        .await
        .expect("a service");
    let accounts = handle.accounts().expect("accounts");
    accounts
        .add("amina", Role::Officer, &Password::new(PASSWORD))
        .expect("officer");
    accounts
        .add(
            "paul",
            Role::Viewer,
            &Password::new("le mot de passe de Paul"),
        )
        .expect("viewer");
    let web = passerelle_web::serve(
        handle.clone(),
        WebConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            lang: passerelle_node::reference::Lang::Fr,
        },
    )
    .await
    .expect("serve the page");
    let base = format!("http://{}", web.address());
    let browser = Browser::start(&shots()).await;

    // Not signed in: the sign-in page, in French.
    browser.open(&format!("{base}/board")).await;
    assert!(
        browser.url().await.ends_with("/login"),
        "{}",
        browser.url().await
    );
    assert_eq!(browser.text("h1").await, "Connexion");
    browser.screenshot("login").await;

    // A wrong password says so; the right one opens the board.
    browser.fill("#name", "amina").await;
    browser.fill("#password", "pas le bon mot de passe").await;
    browser.follow("form.login button").await;
    assert!(
        browser
            .text("#login-error")
            .await
            .contains("mot de passe incorrect")
    );
    browser.fill("#name", "amina").await;
    browser.fill("#password", PASSWORD).await;
    browser.follow("form.login button").await;
    assert!(
        browser.url().await.ends_with("/board"),
        "{}",
        browser.url().await
    );
    assert_eq!(browser.text("h1").await, "Tableau des orientations");
    assert!(
        browser
            .text(".who")
            .await
            .contains("amina (chargé de dossiers)")
    );
    browser.screenshot("board").await;

    // The directory: by words and region.
    browser.follow("nav a[href='/directory']").await;
    browser.fill("#q", "placement").await;
    browser.choose("#region", "CM005").await;
    browser.follow("form.search button").await;
    assert!(
        browser
            .text("#result-count")
            .await
            .starts_with("1 service(s) trouvé(s)"),
        "{}",
        browser.body().await
    );
    let results = browser.text("table.results").await;
    assert!(
        results.contains("Placement en emploi à Douala") && results.contains("Littoral"),
        "{results}"
    );
    assert!(!results.contains("Garoua"), "{results}");
    browser.screenshot("directory").await;
    // The organisation's page.
    browser.follow("table.results a").await;
    assert_eq!(browser.text("h1").await, "Association Retour et Dignité");
    browser.screenshot("organisation").await;

    // English, one click away, and kept.
    browser.follow(".lang a").await;
    assert_eq!(browser.text("h1").await, "Referral board");
    browser.follow("nav a[href='/directory']").await;
    assert_eq!(browser.text("h1").await, "Directory of services");

    // A form posted without its CSRF token is refused, and changes nothing: still signed in.
    browser
        .client
        .execute(
            "document.querySelector('form.signout input[name=csrf]').value = '';",
            vec![],
        )
        .await
        .expect("blank the token");
    browser.follow("form.signout button").await;
    assert_eq!(browser.text("h1").await, "Form refused");
    browser.open(&format!("{base}/board")).await;
    assert_eq!(browser.text("h1").await, "Referral board");
    // Signing out with the token ends the session.
    browser.follow("form.signout button").await;
    assert!(browser.url().await.ends_with("/login"));
    browser.open(&format!("{base}/directory")).await;
    assert!(browser.url().await.ends_with("/login"));

    // A viewer reads the board too.
    browser.fill("#name", "paul").await;
    browser.fill("#password", "le mot de passe de Paul").await;
    browser.follow("form.login button").await;
    assert!(browser.text(".who").await.contains("paul (viewer)"));
    browser.follow("form.signout button").await;

    // Guessing: after five wrong passwords, sign-in is refused for a while — even with the
    // right password.
    for _ in 0..MAX_FAILURES {
        browser.fill("#name", "amina").await;
        browser.fill("#password", "devinette").await;
        browser.follow("form.login button").await;
    }
    browser.fill("#name", "amina").await;
    browser.fill("#password", PASSWORD).await;
    browser.follow("form.login button").await;
    assert!(
        browser
            .text("#login-error")
            .await
            .starts_with("Too many sign-in attempts"),
        "{}",
        browser.body().await
    );
    assert!(browser.url().await.ends_with("/login"));
    browser.screenshot("rate-limited").await;

    browser.close().await;
    web.shutdown().await;
    node.stop().await;
}
