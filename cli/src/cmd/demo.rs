//! `passerelle demo`: three organisations' real nodes on loopback, each with its own keys
//! and sled store in a temporary folder, publishing services through their control sockets
//! exactly as the other commands do; then the directories converge over libp2p, and
//! everything is removed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use passerelle_node::config::Config;
use passerelle_node::control::Client;
use passerelle_node::document::Edit;
use passerelle_node::membership::Charter;
use passerelle_node::model::{LegalStatus, Office, Profile, Service};
use passerelle_node::network::NetworkConfig;
use passerelle_node::node::{Decision, EditReceipt, StatusReport};
use passerelle_node::reference::Lang;
use passerelle_node::runtime::RunningNode;
use passerelle_node::{api, model, node, runtime};
use serde_json::{Value, json};

use crate::client::Outcome;
use crate::cmd::directory::{DirectoryCommand, SearchArgs};
use crate::cmd::history::HistoryArgs;
use crate::cmd::member::MemberCommand;
use crate::messages::{said, t};

/// Upper bound for the directories to converge (loopback: well under a second).
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);

fn step(title: &str) {
    println!("\n== {title}\n");
}

struct DemoNode {
    name: &'static str,
    data_dir: PathBuf,
    running: RunningNode,
}

struct Organisation {
    name: &'static str,
    acronym: &'static str,
    status: LegalStatus,
    folder: &'static str,
    office: Value,
    services: Vec<Value>,
}

fn organisations() -> Vec<Organisation> {
    vec![
        Organisation {
            name: "Délégation régionale de l'Emploi et de la Formation professionnelle – Littoral",
            acronym: "DR-EFOP-LT",
            status: LegalStatus::Government,
            folder: "delegation-littoral",
            office: json!({"name": "Délégation régionale", "region": "CM005", "department": "CM005004", "town": "Douala", "latitude": 4.0483, "longitude": 9.7043}),
            services: vec![
                json!({"name": "Formation professionnelle en électricité bâtiment", "dimension": "economic",
                       "categories": ["vocational_training"], "cost": {"kind": "free"},
                       "capacity": {"status": "available", "places": 25}, "languages": ["fr", "en"],
                       "service_area": {"regions": ["CM005"]}, "schedule": "Sessions de 6 mois, rentrée en mars et septembre"}),
                json!({"name": "Placement en emploi et stages", "dimension": "economic",
                       "categories": ["job_placement"], "cost": {"kind": "free"},
                       "capacity": {"status": "available"}, "languages": ["fr"],
                       "service_area": {"departments": ["CM005004", "CM005001"]}}),
            ],
        },
        Organisation {
            name: "Association Retour et Dignité",
            acronym: "ARD",
            status: LegalStatus::Ngo,
            folder: "ard-douala",
            office: json!({"name": "Siège de Bonapriso", "region": "CM005", "department": "CM005004", "town": "Douala"}),
            services: vec![
                json!({"name": "Écoute et soutien psychosocial individuel", "dimension": "psychosocial",
                       "categories": ["psychosocial_individual", "counselling"], "cost": {"kind": "free"},
                       "capacity": {"status": "available"}, "languages": ["fr", "en"],
                       "service_area": {"regions": ["CM005", "CM010"]}}),
                json!({"name": "Hébergement d'urgence (15 nuits)", "dimension": "social",
                       "categories": ["housing"], "cost": {"kind": "cost_shared"},
                       "capacity": {"status": "waitlist", "places": 8}, "service_area": {"departments": ["CM005004"]}}),
            ],
        },
        Organisation {
            name: "Fondation Horizon Entreprendre",
            acronym: "FHE",
            status: LegalStatus::Private,
            folder: "fhe-bafoussam",
            office: json!({"name": "Agence de Bafoussam", "region": "CM008", "department": "CM008006", "town": "Bafoussam"}),
            services: vec![
                json!({"name": "Appui au démarrage d'activités génératrices de revenus", "dimension": "economic",
                       "categories": ["income_generating_activity", "business_support"], "cost": {"kind": "cost_shared"},
                       "capacity": {"status": "available", "places": 40}, "languages": ["fr"],
                       "service_area": {"regions": ["CM008", "CM007"]}}),
                json!({"name": "Microcrédit de démarrage", "dimension": "economic",
                       "categories": ["microfinance"], "cost": {"kind": "fee", "amount_xaf": 5000},
                       "capacity": {"status": "available"}, "service_area": {"regions": ["CM008"]}}),
            ],
        },
    ]
}

/// The organisation that asks to join during the demo.
fn newcomer() -> Organisation {
    Organisation {
        name: "Centre médico-social Espoir de Garoua",
        acronym: "CMS-Espoir",
        status: LegalStatus::Ngo,
        folder: "cms-garoua",
        office: json!({"name": "Centre de Garoua", "region": "CM004", "town": "Garoua"}),
        services: vec![
            json!({"name": "Consultations et soins de santé primaires", "dimension": "social",
                              "categories": ["medical"], "cost": {"kind": "cost_shared"},
                              "capacity": {"status": "available"}, "languages": ["fr", "ff"],
                              "service_area": {"regions": ["CM004"]}}),
        ],
    }
}

/// Polls `check` until it holds or the demo's timeout passes.
async fn wait_until<F, Fut>(what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        if started.elapsed() > CONVERGE_TIMEOUT {
            bail!("{what} did not happen within {CONVERGE_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn edit(client: &mut Client, edit: Edit) -> anyhow::Result<String> {
    let receipt: EditReceipt = client.call(api::EditOwn { edit }).await?;
    Ok(receipt.id)
}

async fn publish(data_dir: &Path, org: &Organisation) -> anyhow::Result<()> {
    let mut client = Client::connect(data_dir).await?;
    let office: Box<Office> = Box::new(model::decode_json("office", org.office.clone())?);
    let office_id = edit(
        &mut client,
        Edit::AddOffice {
            id: String::new(),
            office,
        },
    )
    .await?;
    for value in &org.services {
        let mut value = value.clone();
        value["offices"] = json!([office_id]);
        let service: Box<Service> = Box::new(model::decode_json("service", value)?);
        edit(
            &mut client,
            Edit::AddService {
                id: String::new(),
                service,
            },
        )
        .await?;
    }
    Ok(())
}

async fn heads(data_dir: &Path) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let mut client = Client::connect(data_dir).await?;
    let status: StatusReport = client.call(api::Status {}).await?;
    let mut heads: Vec<_> = status
        .documents
        .into_iter()
        .map(|d| {
            let mut h = d.heads;
            h.sort();
            (d.id, h)
        })
        .collect();
    heads.sort();
    Ok(heads)
}

async fn wait_converged(nodes: &[DemoNode]) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let first = heads(&nodes[0].data_dir).await?;
        let mut same = first.len() == nodes.len();
        for node in &nodes[1..] {
            same &= heads(&node.data_dir).await? == first;
        }
        if same {
            return Ok(started.elapsed());
        }
        if started.elapsed() > CONVERGE_TIMEOUT {
            bail!("the directories did not converge within {CONVERGE_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs the demo.
pub async fn run() -> anyhow::Result<Outcome> {
    let folder = tempfile::Builder::new()
        .prefix("passerelle-demo-")
        .tempdir()
        .context("creating a temporary folder")?;
    let lang = Lang::Fr;
    let orgs = organisations();

    step(t(
        "1. Three organisations create their identities (passerelle init) and found a network",
        "1. Trois organisations créent leur identité (passerelle init) et fondent un réseau",
    ));
    let mut configs: Vec<(PathBuf, Config)> = Vec::new();
    for org in &orgs {
        let data_dir = folder.path().join(org.folder);
        let config = Config::new(&data_dir);
        let profile = Profile {
            acronym: Some(org.acronym.into()),
            legal_status: Some(org.status),
            ..Profile::named(org.name)
        };
        let id = node::initialise(&config, profile)?;
        println!(
            "{:<12} {}  {} {}",
            org.acronym,
            id,
            t("fingerprint", "empreinte"),
            id.fingerprint()
        );
        configs.push((data_dir, config));
    }
    let network = node::found_network_locally(
        &configs.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>(),
        Charter {
            name: "Réseau de réintégration — démonstration".into(),
            founders: Vec::new(),
            admission: "2".parse()?,
            revocation: "2".parse()?,
            amendment: "2/3".parse()?,
            taxonomy: passerelle_node::reference::taxonomy::TAXONOMY_VERSION.into(),
        },
    )?;
    println!(
        "{}",
        said(
            format!(
                "\nThey found network {network} together: each signs the charter (admission by 2 members, revocation by 2, amendments by 2/3)."
            ),
            format!(
                "\nElles fondent ensemble le réseau {network} : chacune signe la charte (admission par 2 membres, révocation par 2, amendements par 2/3)."
            ),
        )
    );

    let mut nodes: Vec<DemoNode> = Vec::new();
    for ((data_dir, mut config), org) in configs.into_iter().zip(&orgs) {
        // Each node dials the one started before it: a line, as over a real network.
        let peers = match nodes.last() {
            Some(previous) => previous
                .running
                .handle()
                .network_status()
                .listen_addrs
                .iter()
                .filter_map(|a| a.parse().ok())
                .collect(),
            None => vec![],
        };
        config.network = Some(NetworkConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
            peers,
            sync_interval: Duration::from_secs(5),
            mdns: false,
            ..Default::default()
        });
        let running = runtime::start(config).await?;
        let started = Instant::now();
        while running.handle().network_status().listen_addrs.is_empty() {
            if started.elapsed() > CONVERGE_TIMEOUT {
                bail!("node {} did not start listening", org.acronym);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        nodes.push(DemoNode {
            name: org.acronym,
            data_dir,
            running,
        });
    }

    step(t(
        "2. Their nodes run on loopback: ARD dials the delegation, FHE dials ARD",
        "2. Leurs nœuds tournent en boucle locale : ARD joint la délégation, FHE joint ARD",
    ));
    crate::cmd::peers::run(&nodes[1].data_dir, false).await?;

    step(t(
        "3. Each publishes its office and services on its own node, as signed changes",
        "3. Chacune publie son bureau et ses services sur son propre nœud, en changements signés",
    ));
    for (node, org) in nodes.iter().zip(&orgs) {
        publish(&node.data_dir, org).await?;
        println!(
            "{:<12} {} {} services",
            node.name,
            t("published", "a publié"),
            org.services.len()
        );
    }

    step(t(
        "4. The three directories converge over libp2p",
        "4. Les trois annuaires convergent par libp2p",
    ));
    let took = wait_converged(&nodes).await?;
    println!(
        "{}",
        said(
            format!(
                "All three nodes hold the same three signed documents, {} ms after the last edit.\n",
                took.as_millis()
            ),
            format!(
                "Les trois nœuds détiennent les trois mêmes documents signés, {} ms après la dernière modification.\n",
                took.as_millis()
            ),
        )
    );
    println!(
        "{}",
        t(
            "The directory as the private foundation in Bafoussam sees it:",
            "L'annuaire tel que le voit la fondation privée de Bafoussam :",
        )
    );
    crate::cmd::directory::run(
        &nodes[2].data_dir,
        DirectoryCommand::Search(SearchArgs {
            text: None,
            dimension: None,
            category: None,
            region: None,
            department: None,
            cost: None,
            max_fee: None,
            language: None,
            capacity: None,
            include_inactive: false,
            drafts: false,
        }),
        false,
        lang,
    )
    .await?;

    step(t(
        "5. The NGO's shelter is full: it says so once, every node knows",
        "5. Le foyer de l'ONG est complet : elle le dit une fois, chaque nœud le sait",
    ));
    let mut client = Client::connect(&nodes[1].data_dir).await?;
    let view: passerelle_node::node::OrganisationView =
        client.call(api::Organisation::default()).await?;
    if let Some((shelter, _)) = view
        .record
        .services
        .iter()
        .find(|(_, s)| s.categories.iter().any(|c| c == "housing"))
    {
        let patch = json!({"capacity": {"status": "full"}});
        edit(
            &mut client,
            Edit::UpdateService {
                id: shelter.clone(),
                patch: patch.as_object().cloned().unwrap_or_default(),
            },
        )
        .await?;
    }
    let took = wait_converged(&nodes).await?;
    println!(
        "{}",
        said(
            format!(
                "Seen at the delegation {} ms later — housing in Wouri with places now:",
                took.as_millis()
            ),
            format!(
                "Vu à la délégation {} ms plus tard — hébergement dans le Wouri avec des places maintenant :",
                took.as_millis()
            ),
        )
    );
    let found = crate::cmd::directory::run(
        &nodes[0].data_dir,
        DirectoryCommand::Search(SearchArgs {
            text: None,
            dimension: None,
            category: Some("housing".into()),
            region: None,
            department: Some("CM005004".into()),
            cost: None,
            max_fee: None,
            language: None,
            capacity: Some(model::CapacityStatus::Available),
            include_inactive: false,
            drafts: false,
        }),
        false,
        lang,
    )
    .await?;
    if found == Outcome::Done {
        bail!("the full shelter still shows as available");
    }

    step(t(
        "6. The signed change log of the NGO's document, as the delegation holds it",
        "6. Le journal des changements signés du document de l'ONG, tel que la délégation le détient",
    ));
    crate::cmd::history::run(
        &nodes[0].data_dir,
        HistoryArgs {
            org: Some(nodes[1].running.handle().org_id()),
            limit: 10,
        },
        false,
    )
    .await?;

    step(t(
        "7. A fourth organisation asks to join; the charter wants two members' approvals",
        "7. Une quatrième organisation demande à rejoindre le réseau ; la charte veut l'approbation de deux membres",
    ));
    let org = newcomer();
    let data_dir = folder.path().join(org.folder);
    let mut config = Config::new(&data_dir);
    let new_id = node::initialise(
        &config,
        Profile {
            acronym: Some(org.acronym.into()),
            legal_status: Some(org.status),
            ..Profile::named(org.name)
        },
    )?;
    // It was given an invitation: the network id and the foundation's address.
    let fhe_address = nodes[2]
        .running
        .handle()
        .network_status()
        .listen_addrs
        .first()
        .cloned()
        .context("the foundation's node listens nowhere")?;
    node::join_network(&config, network, &[fhe_address])?;
    config.network = Some(NetworkConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
        peers: vec![],
        sync_interval: Duration::from_secs(5),
        mdns: false,
        ..Default::default()
    });
    let running = runtime::start(config).await?;
    publish(&data_dir, &org).await?;
    running
        .handle()
        .decide(Decision::Request {
            message: "Centre de santé à Garoua, recommandé par la FHE".into(),
        })
        .await?;
    let fhe = nodes[2].running.handle();
    wait_until("the request reaching the foundation", || {
        let fhe = fhe.clone();
        async move {
            fhe.membership()
                .await
                .is_ok_and(|m| m.requests.iter().any(|r| r.org == new_id))
        }
    })
    .await?;
    println!(
        "{}",
        t(
            "The foundation's node holds the signed request; the foundation proposes it:",
            "Le nœud de la fondation détient la demande signée ; la fondation propose l'admission :",
        )
    );
    crate::cmd::member::run(
        &nodes[2].data_dir,
        MemberCommand::Approve { org: new_id },
        false,
    )
    .await?;
    let delegation = nodes[0].running.handle();
    wait_until("the proposal reaching the delegation", || {
        let delegation = delegation.clone();
        async move {
            delegation
                .membership()
                .await
                .is_ok_and(|m| !m.proposals.is_empty())
        }
    })
    .await?;
    println!(
        "{}",
        t(
            "\nThe delegation sees one approval of two, and approves:",
            "\nLa délégation voit une approbation sur deux, et approuve :",
        )
    );
    crate::cmd::member::run(&nodes[0].data_dir, MemberCommand::List, false).await?;
    crate::cmd::member::run(
        &nodes[0].data_dir,
        MemberCommand::Approve { org: new_id },
        false,
    )
    .await?;
    nodes.push(DemoNode {
        name: org.acronym,
        data_dir,
        running,
    });
    let took = wait_converged(&nodes).await?;
    println!(
        "{}",
        said(
            format!(
                "\nAdmitted: all four nodes hold the same four documents {} ms later. The members:",
                took.as_millis()
            ),
            format!(
                "\nAdmise : les quatre nœuds détiennent les quatre mêmes documents {} ms plus tard. Les membres :",
                took.as_millis()
            ),
        )
    );
    crate::cmd::member::run(&nodes[3].data_dir, MemberCommand::List, false).await?;

    refer(&nodes, folder.path()).await?;

    step(t("Done", "Terminé"));
    let count = nodes.len();
    for node in nodes {
        node.running.shutdown().await?;
    }
    println!(
        "{}",
        said(
            format!(
                "{count} nodes stopped; the demo folder {} is removed now.",
                folder.path().display()
            ),
            format!(
                "{count} nœuds arrêtés ; le dossier de la démonstration {} est supprimé maintenant.",
                folder.path().display()
            ),
        )
    );
    Ok(Outcome::Done)
}

/// Step 8: the NGO refers a returnee to the delegation's training; the case file goes to
/// the delegation only, the foundation sees the board entry and nothing else.
async fn refer(nodes: &[DemoNode], folder: &Path) -> anyhow::Result<()> {
    use crate::cmd::referral::{ListArgs, MatchArgs, ReferralCommand, SendArgs, run as referral};
    use passerelle_node::node::{ReferralReply, ReferralRequest};

    let (delegation, ngo, foundation) = (&nodes[0], &nodes[1], &nodes[2]);
    step(t(
        "8. The NGO refers a returnee to a training; the case file goes to the delegation only",
        "8. L'ONG oriente une personne de retour vers une formation ; le dossier va à la délégation seulement",
    ));
    println!(
        "{}",
        t(
            "Services for vocational training in the Littoral, best first:",
            "Services de formation professionnelle dans le Littoral, les meilleurs d'abord :",
        )
    );
    referral(
        &ngo.data_dir,
        ReferralCommand::Match(MatchArgs {
            needs: vec!["vocational_training".into()],
            region: Some("CM005".into()),
            department: None,
            max_fee: None,
            language: Some("fr".into()),
            include_full: false,
        }),
        false,
    )
    .await?;
    let training = delegation
        .running
        .handle()
        .organisation(None)
        .await?
        .record
        .services
        .iter()
        .find(|(_, s)| s.categories.iter().any(|c| c == "vocational_training"))
        .map(|(id, _)| id.clone())
        .context("the delegation offers no training")?;
    let case_file = folder.join("dossier.toml");
    std::fs::write(
        &case_file,
        "name = \"Samuel Ekambi\"\nsex = \"male\"\nbirth_year = 1998\nphone = \"+237 670 00 00 00\"\nlanguages = [\"fr\", \"duala\"]\nlocation = \"Douala, New Bell\"\nneeds = [\"vocational_training\"]\nnotes = \"Électricien autodidacte, revenu du Niger en janvier.\"\n",
    )?;
    println!(
        "{}",
        t(
            "\nThe NGO's officer sends it (verbal consent, name, phone, languages and needs only):",
            "\nL'agent de l'ONG l'envoie (consentement oral ; nom, téléphone, langues et besoins seulement) :",
        )
    );
    referral(
        &ngo.data_dir,
        ReferralCommand::Send(SendArgs {
            to: Some(delegation.running.handle().org_id().to_string()),
            service: Some(training.parse()?),
            category: None,
            region: "CM005".into(),
            priority: passerelle_node::referral::board::Priority::Routine,
            respond_within: Duration::from_secs(5 * 24 * 3600),
            case_file: Some(case_file),
            name: None,
            sex: None,
            birth_year: None,
            age: None,
            phone: None,
            languages: vec![],
            location: None,
            needs: vec![],
            vulnerabilities: vec![],
            notes: None,
            consent: Some(passerelle_node::referral::casefile::ConsentMethod::Verbal),
            consent_date: None,
            consent_expires: None,
            consent_data: vec![
                "name".into(),
                "phone".into(),
                "languages".into(),
                "needs".into(),
            ],
            consent_override: None,
        }),
        false,
    )
    .await?;
    let handle = delegation.running.handle();
    let received = |handle: passerelle_node::node::NodeHandle| async move {
        let Ok(ReferralReply::List(list)) = handle
            .referral(
                ReferralRequest::List {
                    filter: Default::default(),
                },
                "demo",
            )
            .await
        else {
            return None;
        };
        // The list says which case files are held here without reading them.
        let entry = list.entries.first()?;
        list.case_files_held.contains(&entry.id).then_some(entry.id)
    };
    wait_until("the case file reaching the delegation", || {
        let handle = handle.clone();
        async move { received(handle).await.is_some() }
    })
    .await?;
    let id = received(handle.clone()).await.context("the referral")?;
    println!(
        "{}",
        t(
            "\nAt the delegation (the read is recorded in its audit log):",
            "\nÀ la délégation (la lecture est inscrite dans son journal d'audit) :",
        )
    );
    referral(&delegation.data_dir, ReferralCommand::Show { id }, false).await?;
    println!(
        "{}",
        t(
            "\nThe delegation accepts and starts the training:",
            "\nLa délégation accepte et commence la formation :",
        )
    );
    referral(&delegation.data_dir, ReferralCommand::Accept { id }, false).await?;
    referral(&delegation.data_dir, ReferralCommand::Start { id }, false).await?;
    let fhe = foundation.running.handle();
    wait_until("the foundation's board to show it in progress", || {
        let fhe = fhe.clone();
        async move {
            matches!(
                fhe.referral(ReferralRequest::List { filter: Default::default() }, "demo").await,
                Ok(ReferralReply::List(list)) if list.entries.iter().any(|e| e.id == id && e.status.code() == "in_progress")
            )
        }
    })
    .await?;
    println!(
        "{}",
        t(
            "\nThe foundation sees the board entry — and no case file:",
            "\nLa fondation voit l'entrée du tableau — et aucun dossier :",
        )
    );
    referral(
        &foundation.data_dir,
        ReferralCommand::List(ListArgs {
            incoming: false,
            outgoing: false,
            status: None,
            overdue: false,
            open: false,
            limit: 100,
            all: false,
        }),
        false,
    )
    .await?;
    if let Ok(ReferralReply::Show(view)) = fhe.referral(ReferralRequest::Show { id }, "demo").await
        && view.case.is_some()
    {
        bail!("the foundation holds the case file");
    }
    println!(
        "{}",
        t(
            "\nAggregate figures, as any member can print them (passerelle report):",
            "\nChiffres agrégés, tels que tout membre peut les afficher (passerelle report) :",
        )
    );
    crate::cmd::report::referrals(&foundation.data_dir, Default::default(), false).await?;
    Ok(())
}
