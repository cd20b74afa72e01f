//! `passerelle demo`: a real node in a temporary folder, driven through its control API
//! exactly as the other commands drive it, then removed.

use anyhow::Context;
use passerelle_node::control::{Client, Request};
use passerelle_node::document::Edit;
use passerelle_node::model::{self, Office, Service};
use passerelle_node::node::{self, EditReceipt};
use passerelle_node::reference::Lang;
use serde_json::json;

use crate::args::{DirectoryCommand, HistoryArgs, InitArgs, SearchArgs, ServiceCommand};
use crate::commands::{self, Outcome};

fn step(title: &str) {
    println!("\n== {title}\n");
}

async fn add(client: &mut Client, edit: Edit) -> anyhow::Result<String> {
    let receipt: EditReceipt = client.call(&Request::Edit { edit }).await?;
    Ok(receipt.id)
}

fn service(value: serde_json::Value) -> anyhow::Result<Service> {
    model::decode_json("service", value).map_err(|e| anyhow::anyhow!("demo data: {e}"))
}

/// Runs the demo.
pub async fn run() -> anyhow::Result<Outcome> {
    let folder = tempfile::Builder::new()
        .prefix("passerelle-demo-")
        .tempdir()
        .context("creating a temporary folder")?;
    let data_dir = folder.path().join("ard-douala");
    let lang = Lang::Fr;

    step("1. An NGO in Douala creates its identity (passerelle init)");
    commands::init(
        &data_dir,
        InitArgs {
            org_name: "Association Retour et Dignité".into(),
            legal_status: Some(model::LegalStatus::Ngo),
            acronym: Some("ARD".into()),
        },
        false,
    )?;

    step("2. Its node starts (passerelle start) with a local control socket");
    let running = node::start(commands::load_config(&data_dir)?).await?;
    println!("control socket: {}", running.control_socket().display());

    step("3. It publishes its profile, offices and services, each a signed change");
    let mut client = Client::connect(&data_dir).await?;
    let patch = json!({
        "description": "Accueil, orientation et réinsertion des migrants de retour",
        "languages": ["fr", "en"],
        "website": "https://ard.example.cm",
        "contacts": [{"name": "Bureau d'accueil", "email": "accueil@ard.example.cm", "phone": "+237 6 99 00 00 00"}]
    });
    let patch = patch.as_object().cloned().unwrap_or_default();
    add(&mut client, Edit::SetProfile { patch }).await?;
    let douala: Office = model::decode_json(
        "office",
        json!({
            "name": "Siège de Bonapriso", "region": "CM005", "department": "CM005004",
            "town": "Douala", "address": "Rue Njo-Njo", "latitude": 4.0311, "longitude": 9.6962
        }),
    )?;
    let douala = add(
        &mut client,
        Edit::AddOffice {
            id: String::new(),
            office: Box::new(douala),
        },
    )
    .await?;
    let nkongsamba: Office = model::decode_json(
        "office",
        json!({
            "name": "Antenne de Nkongsamba", "region": "CM005", "department": "CM005001", "town": "Nkongsamba"
        }),
    )?;
    let nkongsamba = add(
        &mut client,
        Edit::AddOffice {
            id: String::new(),
            office: Box::new(nkongsamba),
        },
    )
    .await?;
    let services = [
        json!({"name": "Formation en couture et stylisme", "dimension": "economic",
               "categories": ["vocational_training"], "cost": {"kind": "free"},
               "capacity": {"status": "available", "places": 15}, "languages": ["fr"],
               "service_area": {"regions": ["CM005"]}, "offices": [douala],
               "schedule": "Lundi–vendredi, 8h–15h", "required_documents": ["Carte nationale d'identité"]}),
        json!({"name": "Appui au démarrage d'activités génératrices de revenus", "dimension": "economic",
               "categories": ["income_generating_activity", "business_support"], "cost": {"kind": "cost_shared"},
               "capacity": {"status": "waitlist", "places": 30}, "languages": ["fr", "en"],
               "service_area": {"departments": ["CM005004", "CM005001"]}, "offices": [douala, nkongsamba]}),
        json!({"name": "Écoute et soutien psychosocial individuel", "dimension": "psychosocial",
               "categories": ["psychosocial_individual", "counselling"], "cost": {"kind": "free"},
               "capacity": {"status": "available"}, "languages": ["fr", "en"],
               "service_area": {"regions": ["CM005", "CM010"]}, "offices": [douala]}),
        json!({"name": "Hébergement d'urgence (15 nuits)", "dimension": "social",
               "categories": ["housing"], "cost": {"kind": "fee", "amount_xaf": 2000},
               "capacity": {"status": "full"}, "service_area": {"departments": ["CM005004"]}}),
    ];
    for value in services {
        add(
            &mut client,
            Edit::AddService {
                id: String::new(),
                service: Box::new(service(value)?),
            },
        )
        .await?;
    }
    commands::service(&data_dir, ServiceCommand::List { org: None }, false, lang).await?;

    step("4. A coordinator searches: free or cost-shared economic services in Littoral (CM005)");
    commands::directory(
        &data_dir,
        DirectoryCommand::Search(SearchArgs {
            text: None,
            dimension: Some(passerelle_node::reference::taxonomy::Dimension::Economic),
            category: None,
            region: Some("CM005".into()),
            department: None,
            cost: None,
            max_fee: Some(0),
            language: None,
            capacity: None,
            include_inactive: false,
        }),
        false,
        lang,
    )
    .await?;

    step("5. The signed change log of the organisation's document (passerelle history)");
    commands::history(
        &data_dir,
        HistoryArgs {
            org: None,
            limit: 20,
        },
        false,
    )
    .await?;

    step("6. The node stops and starts again: every change is re-verified from the store");
    drop(client);
    running.shutdown().await?;
    let running = node::start(commands::load_config(&data_dir)?).await?;
    commands::status(&data_dir, false).await?;
    running.shutdown().await?;

    step("Done");
    println!(
        "The demo folder {} is removed now. Networking (three organisations whose directories\nconverge over libp2p) joins this demo with the sync release.",
        folder.path().display()
    );
    Ok(Outcome::Done)
}
