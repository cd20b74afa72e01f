//! The officers' web page in a real browser (Debian's Chromium, headless, through
//! WebDriver) against a real node: signing in, the board, searching the directory, the
//! language switch, a form without its CSRF token refused, sign-in rate-limited.
//! Screenshots of each page go to `target/tmp/web-screenshots/`; each page shot is checked
//! with axe-core against WCAG 2.1 A and AA.

use passerelle_node::accounts::{Password, Role};
use passerelle_tests::TestNode;
use passerelle_tests::browser::Browser;
use passerelle_web::{MAX_FAILURES, WebConfig};

use crate::add;

const PASSWORD: &str = "mot de passe d'Amina";

/// Writes a screenshot of the page and checks it against WCAG 2.1 A and AA with axe-core.
async fn shot(browser: &Browser, name: &str) {
    browser.screenshot(name).await;
    let problems = browser.accessibility_problems().await;
    assert!(
        problems.is_empty(),
        "page {name} ({}) is not accessible:\n{}",
        browser.url().await,
        problems.join("\n")
    );
}

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
        WebConfig::local(
            "127.0.0.1:0".parse().expect("address"),
            passerelle_node::reference::Lang::Fr,
        ),
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
    shot(&browser, "login").await;
    // The check finds what it is meant to: a field without a label, added for the test.
    browser
        .client
        .execute(
            "document.querySelector('form.login').appendChild(document.createElement('input'));",
            vec![],
        )
        .await
        .expect("an unlabelled field");
    let problems = browser.accessibility_problems().await;
    assert!(
        problems.iter().any(|p| p.starts_with("label ")),
        "{problems:?}"
    );
    browser.open(&format!("{base}/login")).await;

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
    shot(&browser, "board").await;

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
    shot(&browser, "directory").await;
    // The organisation's page.
    browser.follow("table.results a").await;
    assert_eq!(browser.text("h1").await, "Association Retour et Dignité");
    shot(&browser, "organisation").await;

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

    // An admin sets a service's capacity; the directory says so at once. An officer may
    // not (403).
    browser.open(&format!("{base}/own")).await;
    assert!(browser.url().await.ends_with("/login"));
    accounts
        .add(
            "chef",
            Role::Admin,
            &Password::new("le mot de passe du chef"),
        )
        .expect("admin");
    browser.fill("#name", "chef").await;
    browser.fill("#password", "le mot de passe du chef").await;
    browser.follow("form.login button").await;
    browser.follow("nav a[href='/own']").await;
    let id = handle
        .organisation(None)
        .await
        .expect("own")
        .record
        .services
        .iter()
        .find(|(_, s)| s.name == "Placement en emploi à Douala")
        .map(|(id, _)| id.clone())
        .expect("the service");
    browser.choose(&format!("#status-{id}"), "full").await;
    browser.fill(&format!("#places-{id}"), "0").await;
    browser.follow(&format!("#capacity-{id} button")).await;
    assert!(
        browser.text("#own-services").await.contains("Full (0)"),
        "{}",
        browser.body().await
    );
    shot(&browser, "own-services").await;
    browser.open(&format!("{base}/directory?q=placement")).await;
    assert!(browser.text("table.results").await.contains("Full (0)"));
    browser.follow("form.signout button").await;
    browser.fill("#name", "amina").await;
    browser.fill("#password", PASSWORD).await;
    browser.follow("form.login button").await;
    browser.open(&format!("{base}/own")).await;
    assert_eq!(browser.text("h1").await, "Not allowed");
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
    shot(&browser, "rate-limited").await;

    browser.close().await;
    web.shutdown().await;
    node.stop().await;
}

/// Serves the page of `node` on `host` (a loopback address of its own, so that each
/// node's cookies stay apart in one browser profile).
async fn serve(node: &TestNode, host: &str) -> (passerelle_web::RunningWeb, String) {
    let web = passerelle_web::serve(
        node.handle(),
        WebConfig::local(
            format!("{host}:0").parse().expect("address"),
            passerelle_node::reference::Lang::Fr,
        ),
    )
    .await
    .expect("serve the page");
    let base = format!("http://{}", web.address());
    (web, base)
}

async fn sign_in(browser: &Browser, base: &str, name: &str, password: &str) {
    browser.open(&format!("{base}/login")).await;
    browser.fill("#name", name).await;
    browser.fill("#password", password).await;
    browser.follow("form.login button").await;
    assert!(
        browser.url().await.ends_with("/board"),
        "{name} could not sign in: {}",
        browser.body().await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(passerelle_browser),
    ignore = "needs Debian's chromium and chromium-driver (apt install chromium chromium-driver; .ci/run installs them)"
)]
async fn a_referral_made_on_one_nodes_page_is_answered_on_anothers_and_a_viewer_never_sees_the_case_file()
 {
    let nodes = passerelle_tests::spawn_line(&[
        "ONG Retour Douala",
        "Centre Emploi Littoral",
        "Délégation Ouest",
    ])
    .await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    b.handle()
        .edit(add("Placement en emploi des jeunes", "CM005"))
        .await
        .expect("B's service");
    passerelle_tests::wait_for("B's service to reach A", || async {
        a.services()
            .await
            .iter()
            .any(|(_, s)| s == "Placement en emploi des jeunes")
    })
    .await;
    let password = "une longue phrase de passe";
    for (node, name, role) in [
        (a, "amina", Role::Officer),
        (b, "brice", Role::Officer),
        (b, "vero", Role::Viewer),
        (c, "carine", Role::Officer),
    ] {
        node.handle()
            .accounts()
            .expect("accounts")
            .add(name, role, &Password::new(password))
            .expect("account");
    }
    let (web_a, base_a) = serve(a, "127.0.0.1").await;
    let (web_b, base_b) = serve(b, "127.0.0.2").await;
    let (web_c, base_c) = serve(c, "127.0.0.3").await;
    let shots = shots();
    let sender = Browser::start(&shots).await;
    let receiver = Browser::start(&shots).await;

    // B's officer waits on the board.
    sign_in(&receiver, &base_b, "brice", password).await;
    assert_eq!(receiver.text("#notifications").await, "");

    // A's officer finds B's service by need and region, and refers with consent.
    sign_in(&sender, &base_a, "amina", password).await;
    sender.follow("nav a[href='/refer']").await;
    sender.click("#need-job_placement").await;
    sender.choose("#region", "CM005").await;
    sender.follow("form.search button").await;
    let matches = sender.text("table.matches").await;
    assert!(
        matches.contains("Placement en emploi des jeunes")
            && matches.contains("Centre Emploi Littoral"),
        "{matches}"
    );
    shot(&sender, "match").await;
    sender.follow("a.refer").await;
    sender.fill("#name", "Aïcha Mbarga Ndongo").await;
    sender.choose("#sex", "female").await;
    sender.fill("#phone", "+237 699 12 34 56").await;
    sender.fill("#languages", "fr, ff").await;
    sender.fill("#location", "Douala, Bonabéri").await;
    // An override without its reason is refused; everything typed is still there.
    sender.choose("#consent", "override").await;
    sender.click("#share-phone").await;
    sender.follow("form.referral button").await;
    assert!(
        !sender.text("#send-error").await.is_empty(),
        "{}",
        sender.body().await
    );
    assert_eq!(sender.value("#name").await, "Aïcha Mbarga Ndongo");
    assert_eq!(sender.value("#phone").await, "+237 699 12 34 56");
    assert_eq!(sender.value("#location").await, "Douala, Bonabéri");
    assert_eq!(sender.value("#consent").await, "override");
    let phone_shared = sender
        .client
        .execute(
            "return document.getElementById('share-phone').checked;",
            vec![],
        )
        .await
        .expect("checkbox");
    assert_eq!(phone_shared, serde_json::Value::Bool(false));
    sender.click("#share-phone").await;
    sender.choose("#consent", "verbal").await;
    shot(&sender, "refer-form").await;
    sender.follow("form.referral button").await;
    let url = sender.url().await;
    let id = url
        .rsplit('/')
        .next()
        .expect("the referral's id")
        .to_owned();
    assert!(id.starts_with("ref-"), "{url}: {}", sender.body().await);
    assert_eq!(sender.text("#status").await, "En attente de réponse");
    assert_eq!(sender.text("#case-name").await, "Aïcha Mbarga Ndongo");
    shot(&sender, "referral-sent").await;

    // On B, without reloading: the notification, then the case file received.
    let mut seen = String::new();
    for _ in 0..300 {
        seen = receiver.text("#notifications").await;
        if seen.contains("1 nouvelle(s) orientation(s) reçue(s)")
            && seen.contains("1 dossier(s) reçu(s)")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        seen.contains("1 nouvelle(s) orientation(s) reçue(s)") && seen.contains(&id),
        "{seen}"
    );
    assert!(seen.contains("1 dossier(s) reçu(s)"), "{seen}");
    let title = receiver.client.title().await.expect("title");
    assert!(title.starts_with("(1) "), "{title}");
    shot(&receiver, "notification").await;

    // B's officer opens the case file (recorded under the account), accepts, starts,
    // completes.
    receiver.follow("#notifications a.notice-link").await;
    assert_eq!(receiver.text("#case-name").await, "Aïcha Mbarga Ndongo");
    shot(&receiver, "case-file").await;
    receiver.follow("#move-accept button").await;
    assert_eq!(receiver.text("#status").await, "Acceptée");
    receiver.follow("#move-start button").await;
    assert_eq!(receiver.text("#status").await, "En cours");
    receiver.choose("#outcome", "achieved").await;
    receiver.follow("#move-complete button").await;
    assert_eq!(receiver.text("#status").await, "Terminée");
    // Closed: the page says when this node destroys its copy.
    let destroy = receiver.text("#destroy-at").await;
    assert!(destroy.contains("sera détruit sur ce nœud le"), "{destroy}");
    let ((), audit) = passerelle_node::control::local_stream(
        &b.handle(),
        passerelle_node::api::Audit {
            id: Some(id.parse().expect("id")),
        },
        "test",
    )
    .await
    .expect("audit");
    assert!(
        audit.iter().any(|e| serde_json::to_string(e)
            .expect("json")
            .contains("web:brice")),
        "the case file's read is not recorded under the officer's account: {audit:?}"
    );

    // An open referral: sent from A's page to any member offering the need in the region;
    // B's officer offers its service, A's officer gives the referral to B.
    sender.follow("nav a[href='/refer']").await;
    sender.click("#need-job_placement").await;
    sender.choose("#region", "CM005").await;
    sender.follow("form.search button").await;
    sender.follow("a.open-referral").await;
    sender.fill("#name", "Paul Essomba").await;
    sender.follow("form.referral button").await;
    let url = sender.url().await;
    let open_id = url.rsplit('/').next().expect("id").to_owned();
    assert!(
        open_id.starts_with("ref-"),
        "{url}: {}",
        sender.body().await
    );
    assert!(sender.body().await.contains("Aucune proposition"));
    passerelle_tests::wait_for("the open referral to reach B", || async {
        b.handle()
            .referral(
                passerelle_node::node::ReferralRequest::List {
                    filter: Default::default(),
                },
                "test",
            )
            .await
            .is_ok_and(|r| format!("{r:?}").contains(&open_id))
    })
    .await;
    receiver.open(&format!("{base_b}/referral/{open_id}")).await;
    receiver.follow("form.propose button").await;
    assert!(
        receiver
            .text("ul.proposals")
            .await
            .contains("Centre Emploi Littoral"),
        "{}",
        receiver.body().await
    );
    let mut offered = false;
    for _ in 0..300 {
        sender.open(&format!("{base_a}/referral/{open_id}")).await;
        if sender
            .text("ul.proposals")
            .await
            .contains("Centre Emploi Littoral")
        {
            offered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        offered,
        "B's offer did not reach A: {}",
        sender.body().await
    );
    sender.follow("form.assign button").await;
    assert!(
        sender.body().await.contains("Vers\nCentre Emploi Littoral"),
        "{}",
        sender.body().await
    );

    // B's viewer sees the board but never the case file.
    receiver.follow("form.signout button").await;
    sign_in(&receiver, &base_b, "vero", password).await;
    receiver.open(&format!("{base_b}/board?view=all")).await;
    assert!(receiver.text("table.board").await.contains(&id));
    receiver.open(&format!("{base_b}/referral/{id}")).await;
    assert_eq!(receiver.text("h1").await, "Accès refusé");
    assert!(!receiver.body().await.contains("Aïcha"));

    // A third node's page shows the board entry and no case file.
    receiver.open(&format!("{base_c}/login")).await;
    sign_in(&receiver, &base_c, "carine", password).await;
    passerelle_tests::wait_for("the referral's entry to reach C", || async {
        c.handle()
            .referral(
                passerelle_node::node::ReferralRequest::List {
                    filter: Default::default(),
                },
                "test",
            )
            .await
            .is_ok_and(|r| format!("{r:?}").contains(&id))
    })
    .await;
    receiver.open(&format!("{base_c}/board?view=all")).await;
    assert!(receiver.text("table.board").await.contains(&id));
    receiver.open(&format!("{base_c}/referral/{id}")).await;
    assert!(receiver.body().await.contains("Pas sur ce nœud"));
    assert!(!receiver.body().await.contains("Aïcha"));
    shot(&receiver, "third-node").await;

    // The reports and the members, on A.
    sender.follow("nav a[href='/reports']").await;
    // Two referrals: a count too small to show, and the page says why.
    let report = sender.text("#referral-report").await;
    assert!(report.starts_with("Total\n<5"), "{report}");
    assert!(
        sender.text("#suppression").await.contains("écrit « <5 »"),
        "{}",
        sender.body().await
    );
    assert!(sender.text("table.gaps").await.contains("Extrême-Nord"));
    shot(&sender, "reports").await;
    sender.follow("nav a[href='/members']").await;
    let members = sender.text("#members").await;
    for name in [
        "ONG Retour Douala",
        "Centre Emploi Littoral",
        "Délégation Ouest",
    ] {
        assert!(members.contains(name), "{members}");
    }
    shot(&sender, "members").await;

    sender.close().await;
    receiver.close().await;
    for web in [web_a, web_b, web_c] {
        web.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(passerelle_browser),
    ignore = "needs Debian's chromium and chromium-driver (apt install chromium chromium-driver; .ci/run installs them)"
)]
async fn admins_keep_their_offices_and_services_and_admit_a_member_from_the_page() {
    use passerelle_node::node::Decision;
    // Two founders (admission by both) and a candidate that asks to join.
    let mut nodes: Vec<TestNode> = ["ONG Retour Douala", "Délégation Ouest"]
        .iter()
        .map(|name| TestNode::init_networked(name, vec![]))
        .collect();
    let network = passerelle_tests::found_network(&nodes.iter().collect::<Vec<_>>(), "2");
    passerelle_tests::start_line(&mut nodes).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let mut candidate = TestNode::init_networked("Centre Espoir Bafoussam", vec![]);
    passerelle_node::node::join_network(
        &candidate.config,
        network,
        &[a.listen_addr().await.to_string()],
    )
    .expect("join");
    candidate.start().await;
    let new_org = candidate.handle().org_id();
    let password = "une longue phrase de passe";
    for (node, name) in [(a, "chef-a"), (b, "chef-b")] {
        node.handle()
            .accounts()
            .expect("accounts")
            .add(name, Role::Admin, &Password::new(password))
            .expect("admin");
    }
    let (web_a, base_a) = serve(a, "127.0.0.1").await;
    let (web_b, base_b) = serve(b, "127.0.0.2").await;
    let browser = Browser::start(&shots()).await;
    sign_in(&browser, &base_a, "chef-a", password).await;

    // An office, with coordinates written the French way.
    browser.follow("nav a[href='/own']").await;
    browser.follow("#add-office").await;
    browser.fill("#name", "Antenne de Bonabéri").await;
    browser.choose("#region", "CM005").await;
    browser.choose("#department", "CM005004").await;
    browser.fill("#town", "Douala").await;
    browser
        .fill("#address", "Carrefour Ndobo, face pharmacie")
        .await;
    browser.fill("#latitude", "4,0825").await;
    browser.fill("#longitude", "9,6789").await;
    shot(&browser, "own-office-form").await;
    browser.follow("#office-form button").await;
    let offices = browser.text("#own-offices").await;
    assert!(
        offices.contains("Antenne de Bonabéri") && offices.contains("Littoral"),
        "{}",
        browser.body().await
    );
    let record = a.handle().organisation(None).await.expect("own").record;
    let (office_id, office) = record.offices.iter().next().expect("the office");
    assert_eq!(office.department.as_deref(), Some("CM005004"));
    assert_eq!(office.latitude, Some(4.0825));

    // A service: a language the node does not know is refused, naming it, and everything
    // typed is still there to correct.
    browser.follow("#add-service").await;
    browser
        .fill("#name", "Accompagnement psychosocial des familles")
        .await;
    browser.choose("#dimension", "psychosocial").await;
    browser.click("#category-psychosocial_individual").await;
    browser.click("#category-counselling").await;
    browser.choose("#cost", "fee").await;
    browser.fill("#fee", "5 000").await;
    browser.fill("#places", "12").await;
    browser.fill("#languages", "français, klingon").await;
    browser.click("#region-CM005").await;
    browser.click(&format!("#office-{office_id}")).await;
    browser
        .fill("#documents", "Carte d'identité\nAttestation de retour")
        .await;
    browser.follow("#service-form button").await;
    let error = browser.text("#form-error").await;
    assert!(
        error.starts_with("Langues : « klingon »"),
        "{}",
        browser.body().await
    );
    assert_eq!(
        browser.value("#name").await,
        "Accompagnement psychosocial des familles"
    );
    assert_eq!(browser.value("#fee").await, "5 000");
    assert_eq!(
        browser.value("#documents").await,
        "Carte d'identité\nAttestation de retour"
    );
    shot(&browser, "own-service-refused").await;
    browser.fill("#languages", "français, fulfulde").await;
    browser.follow("#service-form button").await;
    assert!(
        browser
            .text("#own-services")
            .await
            .contains("Accompagnement psychosocial des familles"),
        "{}",
        browser.body().await
    );
    let record = a.handle().organisation(None).await.expect("own").record;
    let (service_id, service) = record.services.iter().next().expect("the service");
    assert_eq!(
        service.cost,
        passerelle_node::model::Cost::Fee { amount_xaf: 5000 }
    );
    assert_eq!(service.languages, ["fr", "fub"]);
    assert_eq!(service.offices, std::slice::from_ref(office_id));
    assert_eq!(service.service_area.regions, ["CM005"]);
    assert_eq!(service.capacity.places, Some(12));
    assert_eq!(
        service.categories,
        ["psychosocial_individual", "counselling"]
    );
    assert_eq!(service.required_documents.len(), 2);
    passerelle_tests::wait_for("the new service to reach B", || async {
        b.services()
            .await
            .iter()
            .any(|(_, s)| s == "Accompagnement psychosocial des familles")
    })
    .await;

    // A change sends only what changed: the name; the rest stays as it was.
    browser
        .follow(&format!(
            "#own-services a[href='/own/service/{service_id}']"
        ))
        .await;
    shot(&browser, "own-service-form").await;
    browser
        .fill("#name", "Écoute et accompagnement des familles")
        .await;
    browser.follow("#service-form button").await;
    let after = a.handle().organisation(None).await.expect("own").record;
    let changed = &after.services[service_id];
    assert_eq!(changed.name, "Écoute et accompagnement des familles");
    assert_eq!(
        (
            &changed.cost,
            &changed.languages,
            &changed.offices,
            &changed.categories
        ),
        (
            &service.cost,
            &service.languages,
            &service.offices,
            &service.categories
        )
    );

    // The office cannot go while the service is delivered there; the service can.
    browser.accept_confirmations().await;
    browser
        .follow(&format!(
            "form[action='/own/office/{office_id}/remove'] button"
        ))
        .await;
    assert!(
        browser
            .text(".error")
            .await
            .contains("sert encore au service"),
        "{}",
        browser.body().await
    );
    browser.open(&format!("{base_a}/own")).await;
    browser.accept_confirmations().await;
    browser
        .follow(&format!(
            "form[action='/own/service/{service_id}/remove'] button"
        ))
        .await;
    assert!(!browser.text("#own-services").await.contains("familles"));
    passerelle_tests::wait_for("the removal to reach B", || async {
        !b.services()
            .await
            .iter()
            .any(|(_, s)| s.contains("familles"))
    })
    .await;

    // The candidate asks to join; A's admin proposes its admission, B's approves it.
    candidate
        .handle()
        .decide(Decision::Request {
            message: "Centre d'écoute à Bafoussam".into(),
        })
        .await
        .expect("request");
    passerelle_tests::wait_for("the request to reach A", || async {
        a.handle()
            .membership()
            .await
            .is_ok_and(|m| m.requests.iter().any(|r| r.org == new_org))
    })
    .await;
    browser.follow("nav a[href='/members']").await;
    assert!(browser.body().await.contains("Centre d'écoute à Bafoussam"));
    shot(&browser, "members-request").await;
    browser.follow("form.approve button").await;
    let proposal = browser.text("div.proposal").await;
    assert!(
        proposal.starts_with("Centre Espoir Bafoussam") && proposal.contains("1/2"),
        "{}",
        browser.body().await
    );
    passerelle_tests::wait_for("the proposal to reach B", || async {
        b.handle()
            .membership()
            .await
            .is_ok_and(|m| m.proposals.iter().any(|p| p.subject == new_org.to_string()))
    })
    .await;
    sign_in(&browser, &base_b, "chef-b", password).await;
    browser.follow("nav a[href='/members']").await;
    browser.follow("form.approve button").await;
    for node in [a, b, &candidate] {
        let handle = node.handle();
        passerelle_tests::wait_for("the admission to reach every node", || {
            let handle = handle.clone();
            async move {
                handle
                    .membership()
                    .await
                    .is_ok_and(|m| m.members.iter().any(|member| member.org == new_org))
            }
        })
        .await;
    }
    browser.open(&format!("{base_b}/members")).await;
    let members = browser.text("#members").await;
    assert!(
        members
            .contains("Centre Espoir Bafoussam approuvée par ONG Retour Douala, Délégation Ouest")
            || members.contains(
                "Centre Espoir Bafoussam approuvée par Délégation Ouest, ONG Retour Douala"
            ),
        "{members}"
    );
    shot(&browser, "members-admitted").await;

    browser.close().await;
    web_a.shutdown().await;
    web_b.shutdown().await;
    candidate.stop().await;
    for node in &mut nodes {
        node.stop().await;
    }
}
