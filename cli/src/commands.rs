//! One small function per subcommand. Each talks to the running node through the control
//! API (except `init`, `start` and `demo`) and returns whether it found something.

use std::path::Path;

use anyhow::{Context, bail};
use passerelle_node::api::{self, Call, ErrorKind, Request, Streamed};
use passerelle_node::config::{CONFIG_FILE, Config, ConfigFile};
use passerelle_node::control::{Client, ClientError};
use passerelle_node::directory::{SearchQuery, ServiceHit};
use passerelle_node::document::{Edit, HistoryEntry};
use passerelle_node::model::{self, Profile};
use passerelle_node::node::{self, EditReceipt, OrganisationView, StatusReport};
use passerelle_node::reference::{Lang, areas, taxonomy};
use passerelle_node::runtime;
use serde_json::{Map, Value, json};

use crate::args::*;
use crate::output::{self, fields, table};

/// Whether a command found what it was asked for (exit code 0) or nothing (exit code 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Success.
    Done,
    /// Nothing found.
    NothingFound,
}

impl Outcome {
    /// `Done` if something was found, else `NothingFound`.
    pub fn found(any: bool) -> Self {
        if any { Self::Done } else { Self::NothingFound }
    }
}

/// Reads `config.toml` (an absent file means defaults).
pub fn read_config_file(data_dir: &Path) -> anyhow::Result<ConfigFile> {
    let path = data_dir.join(CONFIG_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => ConfigFile::parse(&text).with_context(|| format!("reading {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Reads `config.toml` (if any) and layers it over the defaults (no networking).
pub fn load_config(data_dir: &Path) -> anyhow::Result<Config> {
    Ok(Config::new(data_dir).with_file(&read_config_file(data_dir)?))
}

/// The configuration `passerelle start` runs with: defaults, file, then flags.
pub fn start_config(data_dir: &Path, args: &StartArgs) -> anyhow::Result<Config> {
    let file = read_config_file(data_dir)?;
    let mut config = Config::new(data_dir).with_file(&file);
    config.verify_store = args.verify_store;
    if !args.no_network {
        let mut network = Config::network_from_file(&file)?.unwrap_or_default();
        if !args.listen.is_empty() {
            network.listen = args.listen.clone();
        }
        network.peers.extend(args.peer.iter().cloned());
        if args.no_mdns {
            network.mdns = false;
        }
        config.network = Some(network);
    }
    Ok(config)
}

/// Sends a [`Call`] to the node of `data_dir` and reads its reply. A node that says it is
/// busy has done nothing: ask again, a little later each time.
pub async fn call<C: Call + Clone>(data_dir: &Path, request: C) -> anyhow::Result<C::Reply> {
    let writes = Into::<Request>::into(request.clone()).writes();
    retrying_busy(data_dir, writes, |mut client| {
        let request = request.clone();
        async move { client.call(request).await }
    })
    .await
}

/// Sends a [`Streamed`] request to the node of `data_dir` and reads the whole answer
/// (retrying while the node says it is busy, as [`call`]).
pub async fn collect<S: Streamed + Clone>(
    data_dir: &Path,
    request: S,
) -> anyhow::Result<(S::Head, Vec<S::Item>)> {
    retrying_busy(data_dir, false, |mut client| {
        let request = request.clone();
        async move { client.collect(request).await }
    })
    .await
}

/// Connects and runs `ask`, again while the node answers `busy` (it did nothing), a little
/// later each time. A write whose connection broke before its answer may or may not have
/// been made: said so.
async fn retrying_busy<T, F, Fut>(data_dir: &Path, writes: bool, ask: F) -> anyhow::Result<T>
where
    F: Fn(Client) -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    let mut pause = std::time::Duration::from_millis(100);
    loop {
        let answer = match Client::connect(data_dir).await {
            Ok(client) => ask(client).await,
            Err(e) => Err(e),
        };
        match answer {
            Err(ClientError::Api(e))
                if e.kind == ErrorKind::Busy && pause < std::time::Duration::from_secs(20) =>
            {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(ClientError::Io(e)) if writes => {
                return Err(anyhow::anyhow!(
                    "the connection to the node broke before it answered ({e}): the change may or may not have been made; check with `passerelle history` (or `passerelle referral show`) before trying again"
                ));
            }
            other => return Ok(other?),
        }
    }
}

/// The items of a [`Streamed`] request whose head says nothing.
pub async fn items<S: Streamed<Head = ()> + Clone>(
    data_dir: &Path,
    request: S,
) -> anyhow::Result<Vec<S::Item>> {
    Ok(collect(data_dir, request).await?.1)
}

pub fn init(data_dir: &Path, args: InitArgs, json_out: bool) -> anyhow::Result<Outcome> {
    let config = Config::new(data_dir);
    if let Some(org) = args.device_of {
        let key = node::initialise_device(&config, org)
            .with_context(|| format!("initialising {}", data_dir.display()))?;
        write_config_template(data_dir, &format!("device of {org}"))?;
        if json_out {
            output::json(&json!({
                "device_key": key.to_string(),
                "device_of": org.to_string(),
                "data_dir": data_dir.display().to_string(),
            }))?;
        } else {
            output::out(&format!(
                "Created a device node of organisation {} in {}\n\n  device key  {key}\n\nOn the organisation's node run: passerelle device add {key} --label \"…\"\nThen here: passerelle network join '<invitation>' and passerelle start",
                org.fingerprint(),
                data_dir.display(),
            ))?;
        }
        return Ok(Outcome::Done);
    }
    let org_name = args.org_name.unwrap_or_default();
    let profile = Profile {
        acronym: args.acronym,
        legal_status: args.legal_status,
        ..Profile::named(org_name.clone())
    };
    let org = node::initialise(&config, profile)
        .with_context(|| format!("initialising {}", data_dir.display()))?;
    write_config_template(data_dir, &org_name)?;
    if json_out {
        output::json(&json!({
            "org_id": org.to_string(),
            "fingerprint": org.fingerprint(),
            "data_dir": data_dir.display().to_string(),
        }))?;
    } else {
        output::out(&format!(
            "Created the identity of {:?} in {}\n\n  organisation id  {}\n  fingerprint      {}\n\nRead the fingerprint out to partners so they can check your id.\nStart the node with: passerelle start",
            org_name,
            data_dir.display(),
            org,
            org.fingerprint()
        ))?;
    }
    Ok(Outcome::Done)
}

fn write_config_template(data_dir: &Path, name: &str) -> anyhow::Result<()> {
    let config_path = data_dir.join(CONFIG_FILE);
    if !config_path.exists() {
        passerelle_node::durable::write_file_atomically(
            &config_path,
            ConfigFile::template(name).as_bytes(),
            0o600,
        )
        .with_context(|| format!("writing {}", config_path.display()))?;
    }
    Ok(())
}

pub async fn start(data_dir: &Path, args: StartArgs) -> anyhow::Result<Outcome> {
    let config = start_config(data_dir, &args)?;
    let running = runtime::start(config)
        .await
        .with_context(|| format!("starting the node in {}", data_dir.display()))?;
    let org = running.handle().org_id();
    eprintln!(
        "Passerelle node running for {} ({}).\nControl socket: {}\nPress Ctrl-C to stop.",
        org,
        org.fingerprint(),
        running.control_socket().display()
    );
    wait_for_stop_signal().await?;
    eprintln!("Stopping…");
    running.shutdown().await?;
    Ok(Outcome::Done)
}

async fn wait_for_stop_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = term.recv() => {}
    }
    Ok(())
}

pub async fn status(data_dir: &Path, json_out: bool) -> anyhow::Result<Outcome> {
    let report: StatusReport = call(data_dir, api::Status {}).await?;
    if json_out {
        output::json(&report)?;
        return Ok(Outcome::Done);
    }
    let mut rows = vec![
        ("organisation", report.org_name.clone()),
        ("id", report.org_id.clone()),
        ("fingerprint", report.fingerprint.clone()),
    ];
    if report.device_of.is_some() {
        rows.push(("device key", report.node_key.clone()));
    }
    rows.extend(vec![
        ("encryption key", report.encryption_key.clone()),
        ("data folder", report.data_dir.clone()),
        ("version", report.version.clone()),
        ("uptime", format!("{} s", report.uptime_seconds)),
        ("store", format!("{} bytes", report.store_bytes)),
        (
            "last start",
            format!(
                "{} ms (store opened in {} ms): {} documents from snapshots, {} rebuilt from their signed changes",
                report.start.load_ms,
                report.start.open_ms,
                report.start.from_snapshots,
                report.start.rebuilt
            ),
        ),
        ("store check", store_check_line(&report.store_check)),
        (
            "peer id",
            if report.network.enabled {
                report.network.peer_id.clone()
            } else {
                "(networking off)".into()
            },
        ),
        ("listening on", report.network.listen_addrs.join(", ")),
        ("peers", report.network.peers.len().to_string()),
        (
            "network",
            report
                .membership
                .network_id
                .clone()
                .unwrap_or_else(|| "(none: `passerelle network create` or `network join`)".into()),
        ),
        ("role", report.membership.role.clone()),
        ("members", report.membership.members.to_string()),
        ("pending changes", report.pending_changes.to_string()),
        (
            "documents received whole",
            report.documents_received_whole.to_string(),
        ),
        (
            "rejected changes",
            if report.rejected_by_reason.is_empty() {
                report.rejected_changes.to_string()
            } else {
                format!(
                    "{} ({})",
                    report.rejected_changes,
                    report
                        .rejected_by_reason
                        .iter()
                        .map(|(code, n)| format!("{code}: {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
        ),
        (
            "case files",
            format!(
                "{} held, {} waiting to be delivered, {} refused",
                report.case_files_held, report.case_outbox, report.case_files_refused
            ),
        ),
    ]);
    output::out(&fields(rows))?;
    let rows = report
        .documents
        .iter()
        .map(|d| {
            vec![
                d.id.clone(),
                d.name.clone(),
                d.changes.to_string(),
                d.heads
                    .iter()
                    .map(|h| h[..12].to_owned())
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        })
        .collect();
    output::out(&table(
        &["document", "organisation", "changes", "heads"],
        rows,
    ))?;
    Ok(Outcome::Done)
}

/// One line on the background check of the store.
fn store_check_line(check: &passerelle_node::node::StoreCheckStatus) -> String {
    use passerelle_node::node::StoreCheckState as S;
    let r = &check.report;
    match check.state {
        S::NotRun => "not run yet (it runs in the background shortly after start)".into(),
        S::Running => "running".into(),
        S::Interrupted => "interrupted (the node is stopping)".into(),
        S::Sound => format!(
            "sound: {} documents, {} changes, {} other records read and verified in {} ms",
            r.documents, r.changes, r.records, check.millis
        ),
        S::Damaged => format!(
            "DAMAGED: {} — stop the node and run `passerelle repair` (what peers hold is fetched again)",
            r.damaged
                .iter()
                .map(|d| format!("{} ({})", d.record, d.reason))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

pub async fn peers(data_dir: &Path, json_out: bool) -> anyhow::Result<Outcome> {
    let report: StatusReport = call(data_dir, api::Status {}).await?;
    let network = report.network;
    if json_out {
        output::json(&network)?;
    } else if !network.enabled {
        eprintln!("networking is off on this node");
    } else {
        output::out(&fields(vec![
            ("peer id", network.peer_id.clone()),
            ("listening on", network.listen_addrs.join(", ")),
        ]))?;
        let rows = network
            .peers
            .iter()
            .map(|p| {
                vec![
                    p.fingerprint.clone().unwrap_or_else(|| p.peer_id.clone()),
                    p.addresses.join(", "),
                    p.last_sync
                        .map(output::time)
                        .unwrap_or_else(|| "never".into()),
                    p.score.map(|s| format!("{s:.1}")).unwrap_or_default(),
                    p.rejected.to_string(),
                ]
            })
            .collect();
        output::out(&table(
            &[
                "organisation",
                "addresses",
                "last sync (UTC)",
                "score",
                "refused",
            ],
            rows,
        ))?;
    }
    Ok(Outcome::found(!network.peers.is_empty()))
}

fn contact_json(contact: &ContactArgs) -> Option<Value> {
    let mut map = Map::new();
    for (key, value) in [
        ("name", &contact.contact_name),
        ("email", &contact.contact_email),
        ("phone", &contact.contact_phone),
    ] {
        if let Some(value) = value {
            map.insert(key.into(), Value::String(value.clone()));
        }
    }
    (!map.is_empty()).then_some(Value::Object(map))
}

fn parse_json_object(what: &str, text: &str) -> anyhow::Result<Map<String, Value>> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => bail!("{what}: expected a JSON object like {{\"field\": value}}"),
        Err(e) => bail!("{what}: not valid JSON: {e}"),
    }
}

async fn edit(data_dir: &Path, edit: Edit, json_out: bool, what: &str) -> anyhow::Result<Outcome> {
    let receipt: EditReceipt = call(data_dir, api::EditOwn { edit }).await?;
    if json_out {
        output::json(&receipt)?;
    } else if receipt.id.is_empty() {
        output::out(&format!("{what} (change {})", &receipt.change[..12]))?;
    } else {
        output::out(&format!(
            "{what} {} (change {})",
            receipt.id,
            &receipt.change[..12]
        ))?;
    }
    Ok(Outcome::Done)
}

pub async fn org(
    data_dir: &Path,
    command: OrgCommand,
    json_out: bool,
    lang: Lang,
) -> anyhow::Result<Outcome> {
    match command {
        OrgCommand::Show { org } => {
            let view: OrganisationView = call(data_dir, api::Organisation { org }).await?;
            if json_out {
                output::json(&view)?;
            } else {
                print_profile(&view, lang)?;
            }
            Ok(Outcome::Done)
        }
        OrgCommand::Set(args) => {
            let args = *args;
            let mut patch = match &args.patch {
                Some(text) => parse_json_object("--patch", text)?,
                None => Map::new(),
            };
            let mut set = |key: &str, value: Option<Value>| {
                if let Some(value) = value {
                    patch.insert(key.to_owned(), value);
                }
            };
            set("name", args.name.map(Value::String));
            set("acronym", args.acronym.map(Value::String));
            set("description", args.description.map(Value::String));
            set("legal_status", args.legal_status.map(|s| json!(s)));
            set("parent_organisation", args.parent.map(Value::String));
            set("website", args.website.map(Value::String));
            set("languages", args.languages.map(|l| json!(l)));
            set("contacts", contact_json(&args.contact).map(|c| json!([c])));
            if patch.is_empty() {
                bail!(
                    "org set: give at least one field to change (see `passerelle org set --help`)"
                );
            }
            edit(
                data_dir,
                Edit::SetProfile { patch },
                json_out,
                "Profile updated",
            )
            .await
        }
    }
}

fn print_profile(view: &OrganisationView, lang: Lang) -> anyhow::Result<()> {
    let p = &view.record.profile;
    output::out(&fields(vec![
        ("name", p.name.clone()),
        ("acronym", p.acronym.clone().unwrap_or_default()),
        ("id", view.record.org_id.clone()),
        ("fingerprint", view.fingerprint.clone()),
        (
            "legal status",
            p.legal_status
                .map(|s| json!(s).as_str().unwrap_or("").to_owned())
                .unwrap_or_else(|| "(not set)".into()),
        ),
        ("parent", p.parent_organisation.clone().unwrap_or_default()),
        ("description", p.description.clone().unwrap_or_default()),
        ("languages", p.languages.join(", ")),
        ("website", p.website.clone().unwrap_or_default()),
        (
            "contacts",
            p.contacts
                .iter()
                .map(|c| {
                    [&c.name, &c.title, &c.email, &c.phone]
                        .into_iter()
                        .flatten()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(" · ")
                })
                .collect::<Vec<_>>()
                .join("; "),
        ),
        ("offices", view.record.offices.len().to_string()),
        ("services", view.record.services.len().to_string()),
    ]))?;
    let _ = lang;
    Ok(())
}

fn office_json(args: &OfficeArgs) -> Map<String, Value> {
    let mut map = Map::new();
    let mut set = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            map.insert(key.to_owned(), value);
        }
    };
    set("name", args.name.clone().map(Value::String));
    set("region", args.region.clone().map(Value::String));
    set("department", args.department.clone().map(Value::String));
    set("town", args.town.clone().map(Value::String));
    set("address", args.address.clone().map(Value::String));
    set("latitude", args.latitude.map(|v| json!(v)));
    set("longitude", args.longitude.map(|v| json!(v)));
    map
}

fn region_name(code: &str, lang: Lang) -> String {
    areas::region(code)
        .map(|r| r.name(lang).to_owned())
        .unwrap_or_else(|| code.to_owned())
}

fn department_name(code: &str, lang: Lang) -> String {
    areas::department(code)
        .map(|d| d.name(lang).to_owned())
        .unwrap_or_else(|| code.to_owned())
}

pub async fn office(
    data_dir: &Path,
    command: OfficeCommand,
    json_out: bool,
    lang: Lang,
) -> anyhow::Result<Outcome> {
    match command {
        OfficeCommand::Add(args) => {
            let office: Box<model::Office> =
                model::decode_json("office", Value::Object(office_json(&args)))
                    .map_err(|e| anyhow::anyhow!("invalid office: {e}"))?;
            edit(
                data_dir,
                Edit::AddOffice {
                    id: String::new(),
                    office,
                },
                json_out,
                "Office added:",
            )
            .await
        }
        OfficeCommand::Update { id, fields } => {
            let patch = office_json(&fields);
            if patch.is_empty() {
                bail!("office update: give at least one field to change");
            }
            edit(
                data_dir,
                Edit::UpdateOffice { id, patch },
                json_out,
                "Office updated:",
            )
            .await
        }
        OfficeCommand::Remove { id } => {
            edit(
                data_dir,
                Edit::RemoveOffice { id },
                json_out,
                "Office removed:",
            )
            .await
        }
        OfficeCommand::List { org } => {
            let view: OrganisationView = call(data_dir, api::Organisation { org }).await?;
            if json_out {
                output::json(&view.record.offices)?;
            } else {
                let rows = view
                    .record
                    .offices
                    .iter()
                    .map(|(id, o)| {
                        vec![
                            id.clone(),
                            o.name.clone(),
                            o.town.clone(),
                            region_name(&o.region, lang),
                            o.department
                                .as_deref()
                                .map(|d| department_name(d, lang))
                                .unwrap_or_default(),
                        ]
                    })
                    .collect();
                output::out(&table(
                    &["id", "name", "town", "region", "department"],
                    rows,
                ))?;
            }
            Ok(if view.record.offices.is_empty() {
                Outcome::NothingFound
            } else {
                Outcome::Done
            })
        }
    }
}

fn service_json(args: &ServiceArgs) -> anyhow::Result<Map<String, Value>> {
    let mut map = match &args.from_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            parse_json_object(&path.display().to_string(), &text)?
        }
        None => Map::new(),
    };
    let mut set = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            map.insert(key.to_owned(), value);
        }
    };
    let list = |items: &Vec<String>| (!items.is_empty()).then(|| json!(items));
    set("name", args.name.clone().map(Value::String));
    set("description", args.description.clone().map(Value::String));
    set("dimension", args.dimension.map(|d| json!(d)));
    set("categories", list(&args.categories));
    set("eligibility", args.eligibility.clone().map(Value::String));
    set("cost", args.cost.map(|c| json!(c)));
    if args.capacity.is_some() || args.places.is_some() {
        let status = args
            .capacity
            .map(|c| json!(c))
            .unwrap_or(json!("available"));
        let mut capacity = json!({ "status": status });
        if let Some(places) = args.places {
            capacity["places"] = json!(places);
        }
        set("capacity", Some(capacity));
    }
    set("languages", list(&args.languages));
    if !args.regions.is_empty() || !args.departments.is_empty() {
        set(
            "service_area",
            Some(json!({"regions": args.regions, "departments": args.departments})),
        );
    }
    set("offices", list(&args.offices));
    set("schedule", args.schedule.clone().map(Value::String));
    set("required_documents", list(&args.documents));
    set("status", args.status.map(|s| json!(s)));
    set("contact", contact_json(&args.contact));
    Ok(map)
}

fn cost_text(cost: &model::Cost) -> String {
    match cost {
        model::Cost::Free => "free".into(),
        model::Cost::CostShared => "cost-shared".into(),
        model::Cost::Fee { amount_xaf } => format!("{amount_xaf} XAF"),
    }
}

fn capacity_text(capacity: &model::Capacity) -> String {
    let status = json!(capacity.status).as_str().unwrap_or("").to_owned();
    match capacity.places {
        Some(n) => format!("{status} ({n})"),
        None => status,
    }
}

fn area_text(area: &model::ServiceArea, lang: Lang) -> String {
    area.regions
        .iter()
        .map(|r| region_name(r, lang))
        .chain(area.departments.iter().map(|d| department_name(d, lang)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn categories_text(categories: &[String], lang: Lang) -> String {
    categories
        .iter()
        .map(|c| {
            taxonomy::category(c)
                .map(|c| c.label(lang))
                .unwrap_or(c)
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn service_rows(hits: &[ServiceHit], lang: Lang, with_org: bool) -> Vec<Vec<String>> {
    hits.iter()
        .map(|h| {
            let s = &h.service;
            let mut row = vec![h.service_id.clone()];
            if with_org {
                row.push(h.org_name.clone());
            }
            row.extend([
                s.name.clone(),
                s.dimension.label(lang).to_owned(),
                categories_text(&s.categories, lang),
                area_text(&s.service_area, lang),
                cost_text(&s.cost),
                capacity_text(&s.capacity),
            ]);
            row
        })
        .collect()
}

fn hits_of(view: &OrganisationView) -> Vec<ServiceHit> {
    view.record
        .services
        .iter()
        .map(|(id, s)| ServiceHit {
            org_id: view.record.org_id.clone(),
            org_name: view.record.profile.name.clone(),
            service_id: id.clone(),
            service: s.clone(),
            draft_by: None,
        })
        .collect()
}

pub async fn service(
    data_dir: &Path,
    command: ServiceCommand,
    json_out: bool,
    lang: Lang,
) -> anyhow::Result<Outcome> {
    match command {
        ServiceCommand::Add(args) => {
            let map = service_json(&args)?;
            let service: Box<model::Service> = model::decode_json("service", Value::Object(map))
                .map_err(|e| {
                    anyhow::anyhow!(
                        "invalid service: {e} (required: --name, --dimension, --cost, --capacity)"
                    )
                })?;
            edit(
                data_dir,
                Edit::AddService {
                    id: String::new(),
                    service,
                },
                json_out,
                "Service added:",
            )
            .await
        }
        ServiceCommand::Update { id, fields } => {
            let patch = service_json(&fields)?;
            if patch.is_empty() {
                bail!("service update: give at least one field to change");
            }
            edit(
                data_dir,
                Edit::UpdateService { id, patch },
                json_out,
                "Service updated:",
            )
            .await
        }
        ServiceCommand::Remove { id } => {
            edit(
                data_dir,
                Edit::RemoveService { id },
                json_out,
                "Service removed:",
            )
            .await
        }
        ServiceCommand::Show { id, org } => {
            let view: OrganisationView = call(data_dir, api::Organisation { org }).await?;
            let Some(hit) = hits_of(&view).into_iter().find(|h| h.service_id == id) else {
                eprintln!(
                    "no service with id {id:?} in {}",
                    passerelle_node::text::visible(&view.record.profile.name)
                );
                return Ok(Outcome::NothingFound);
            };
            if json_out {
                output::json(&hit)?;
                return Ok(Outcome::Done);
            }
            let s = &hit.service;
            output::out(&fields(vec![
                ("id", hit.service_id.clone()),
                ("organisation", hit.org_name.clone()),
                ("name", s.name.clone()),
                ("description", s.description.clone().unwrap_or_default()),
                ("dimension", s.dimension.label(lang).to_owned()),
                ("categories", categories_text(&s.categories, lang)),
                ("eligibility", s.eligibility.clone().unwrap_or_default()),
                ("cost", cost_text(&s.cost)),
                ("capacity", capacity_text(&s.capacity)),
                ("languages", s.languages.join(", ")),
                ("area", area_text(&s.service_area, lang)),
                ("offices", s.offices.join(", ")),
                ("schedule", s.schedule.clone().unwrap_or_default()),
                ("documents", s.required_documents.join("; ")),
                ("status", json!(s.status).as_str().unwrap_or("").to_owned()),
                ("last update", output::time(s.last_update)),
            ]))?;
            Ok(Outcome::Done)
        }
        ServiceCommand::List { org } => {
            let view: OrganisationView = call(data_dir, api::Organisation { org }).await?;
            let hits = hits_of(&view);
            print_services(&hits, lang, false, json_out)
        }
    }
}

/// Prints services as a table (with their organisation when `with_org`) or JSON.
fn print_services(
    hits: &[ServiceHit],
    lang: Lang,
    with_org: bool,
    json_out: bool,
) -> anyhow::Result<Outcome> {
    if json_out {
        output::json(&hits)?;
    } else if hits.is_empty() {
        eprintln!("no service matches");
    } else {
        let mut header = vec!["id"];
        if with_org {
            header.push("organisation");
        }
        header.extend([
            "service",
            "dimension",
            "categories",
            "area",
            "cost",
            "capacity",
        ]);
        output::out(&table(&header, service_rows(hits, lang, with_org)))?;
    }
    Ok(Outcome::found(!hits.is_empty()))
}

pub async fn directory(
    data_dir: &Path,
    command: DirectoryCommand,
    json_out: bool,
    lang: Lang,
) -> anyhow::Result<Outcome> {
    let args = match command {
        DirectoryCommand::Search(args) => args,
        DirectoryCommand::Drafts => return crate::cartography::drafts(data_dir, json_out).await,
        DirectoryCommand::Claim {
            draft,
            anyway,
            dry_run,
        } => return crate::cartography::claim(data_dir, &draft, anyway, dry_run, json_out).await,
    };
    if let Some(region) = &args.region {
        model::check_region("--region", region).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    if let Some(department) = &args.department {
        model::check_department("--department", department, None)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    if let Some(category) = &args.category {
        model::check_category("--category", category).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let query = SearchQuery {
        text: args.text,
        dimension: args.dimension,
        category: args.category,
        region: args
            .region
            .as_deref()
            .and_then(areas::region)
            .map(|r| r.pcode.to_owned()),
        department: args
            .department
            .as_deref()
            .and_then(areas::department)
            .map(|d| d.pcode.to_owned()),
        cost: args.cost.map(|c| c.replace('-', "_")),
        max_fee_xaf: args.max_fee,
        language: args.language,
        capacity: args.capacity,
        include_inactive: args.include_inactive,
        drafts: args.drafts,
    };
    let hits: Vec<ServiceHit> = items(data_dir, api::Search { query }).await?;
    if args.drafts && !json_out && !hits.is_empty() {
        output::out(&format!(
            "unverified drafts of a historical mapping, published by {} (each organisation claims its own: `passerelle directory claim DRAFT`):",
            hits.iter()
                .filter_map(|h| h.draft_by.clone())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join(", ")
        ))?;
    }
    print_services(&hits, lang, true, json_out)
}

pub async fn history(
    data_dir: &Path,
    args: HistoryArgs,
    json_out: bool,
) -> anyhow::Result<Outcome> {
    let entries: Vec<HistoryEntry> = items(
        data_dir,
        api::History {
            org: args.org,
            limit: args.limit,
        },
    )
    .await?;
    if json_out {
        output::json(&entries)?;
    } else {
        let rows = entries
            .iter()
            .map(|e| {
                vec![
                    output::time(e.time),
                    e.author_fingerprint.clone(),
                    e.seq.to_string(),
                    e.message.clone(),
                    e.hash[..12].to_owned(),
                ]
            })
            .collect();
        output::out(&table(
            &["time (UTC)", "author", "seq", "what changed", "change"],
            rows,
        ))?;
    }
    Ok(if entries.is_empty() {
        Outcome::NothingFound
    } else {
        Outcome::Done
    })
}
