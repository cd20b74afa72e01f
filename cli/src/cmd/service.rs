//! `passerelle service …`: this organisation's services.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use passerelle_node::document::Edit;
use passerelle_node::identity::OrgId;
use passerelle_node::model::{
    Capacity, CapacityStatus, Cost, Patch, ServiceArea, ServicePatch, ServiceStatus,
};
use passerelle_node::node::OrganisationView;
use passerelle_node::reference::Lang;
use passerelle_node::reference::taxonomy::Dimension;
use passerelle_node::{api, model};
use serde_json::{Map, Value, json};

use crate::client::{Outcome, call, edit};
use crate::flags::{
    ContactArgs, contact, parse_capacity, parse_cost, parse_count, parse_dimension,
    parse_json_object, parse_service_status,
};
use crate::messages::t;
use crate::output::{self, fields};
use crate::present::{
    area_text, capacity_text, categories_text, cost_text, hits_of, print_services,
};

/// `passerelle service …`.
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Add a service (from flags, or from a JSON file with --from-file).
    Add(ServiceArgs),
    /// Change a service; only the fields given change.
    Update {
        /// Service id (svc-…).
        id: String,
        /// New values.
        #[command(flatten)]
        fields: ServiceArgs,
    },
    /// Remove a service.
    Remove {
        /// Service id.
        id: String,
    },
    /// Show one service.
    Show {
        /// Service id.
        id: String,
        /// Organisation id (this node's own by default).
        #[arg(long)]
        org: Option<OrgId>,
    },
    /// List an organisation's services (this node's own by default).
    List {
        /// Organisation id.
        #[arg(long)]
        org: Option<OrgId>,
    },
}

/// Service fields.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// Service name.
    #[arg(long)]
    pub name: Option<String>,
    /// What the service is.
    #[arg(long)]
    pub description: Option<String>,
    /// Dimension: economic, social or psychosocial.
    #[arg(long, value_parser = parse_dimension)]
    pub dimension: Option<Dimension>,
    /// Category code (repeat for several); see docs/data-model.md.
    #[arg(long = "category")]
    pub categories: Vec<String>,
    /// Who may use it.
    #[arg(long)]
    pub eligibility: Option<String>,
    /// Cost: free, cost-shared or fee:<XAF>.
    #[arg(long, value_parser = parse_cost, allow_hyphen_values = true)]
    pub cost: Option<Cost>,
    /// Capacity: available, waitlist or full.
    #[arg(long, value_parser = parse_capacity)]
    pub capacity: Option<CapacityStatus>,
    /// Places free (or people waiting), where known.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count::<u32>)]
    pub places: Option<u32>,
    /// Language code (repeat for several).
    #[arg(long = "language")]
    pub languages: Vec<String>,
    /// Region P-code of the service area (repeat for several).
    #[arg(long = "region")]
    pub regions: Vec<String>,
    /// Department P-code of the service area (repeat for several).
    #[arg(long = "department")]
    pub departments: Vec<String>,
    /// Office id where it is delivered (repeat for several).
    #[arg(long = "office")]
    pub offices: Vec<String>,
    /// Days and hours, in words.
    #[arg(long)]
    pub schedule: Option<String>,
    /// Document a beneficiary must bring (repeat for several).
    #[arg(long = "document")]
    pub documents: Vec<String>,
    /// Status: active, inactive or temporarily_closed.
    #[arg(long, value_parser = parse_service_status)]
    pub status: Option<ServiceStatus>,
    /// Contact for this service.
    #[command(flatten)]
    pub contact: ContactArgs,
    /// Read the service (add) or the fields to change (update) from a JSON file.
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,
}

/// The service's fields given: those of `--from-file` (a JSON object), then the flags over
/// them.
fn service_json(args: &ServiceArgs) -> anyhow::Result<Map<String, Value>> {
    let mut map = match &args.from_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            parse_json_object(&path.display().to_string(), &text)?
        }
        None => Map::new(),
    };
    map.extend(service_patch(args).into_map());
    Ok(map)
}

/// The fields given as flags.
fn service_patch(args: &ServiceArgs) -> ServicePatch {
    let list = |items: &Vec<String>| (!items.is_empty()).then(|| items.clone());
    let capacity = (args.capacity.is_some() || args.places.is_some()).then(|| Capacity {
        status: args.capacity.unwrap_or(CapacityStatus::Available),
        places: args.places,
    });
    let service_area =
        (!args.regions.is_empty() || !args.departments.is_empty()).then(|| ServiceArea {
            regions: args.regions.clone(),
            departments: args.departments.clone(),
        });
    ServicePatch {
        name: args.name.clone(),
        description: args.description.clone().map(Some),
        dimension: args.dimension,
        categories: list(&args.categories),
        eligibility: args.eligibility.clone().map(Some),
        cost: args.cost,
        capacity,
        languages: list(&args.languages),
        service_area,
        offices: list(&args.offices),
        schedule: args.schedule.clone().map(Some),
        required_documents: list(&args.documents),
        contact: contact(&args.contact).map(Some),
        status: args.status,
    }
}

pub async fn run(
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
                    anyhow::anyhow!(crate::messages::said(
                        format!(
                            "invalid service: {e} (required: --name, --dimension, --cost, --capacity)"
                        ),
                        format!(
                            "service refusé : {} (requis : --name, --dimension, --cost, --capacity)",
                            e.said(passerelle_node::reference::Lang::Fr)
                        ),
                    ))
                })?;
            edit(
                data_dir,
                Edit::AddService {
                    id: String::new(),
                    service,
                },
                json_out,
                t("Service added:", "Service ajouté :"),
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
                t("Service updated:", "Service modifié :"),
            )
            .await
        }
        ServiceCommand::Remove { id } => {
            edit(
                data_dir,
                Edit::RemoveService { id },
                json_out,
                t("Service removed:", "Service retiré :"),
            )
            .await
        }
        ServiceCommand::Show { id, org } => {
            let view: OrganisationView = call(data_dir, api::Organisation { org }).await?;
            let Some(hit) = hits_of(&view).into_iter().find(|h| h.service_id == id) else {
                let name = passerelle_node::text::visible(&view.record.profile.name);
                eprintln!(
                    "{}",
                    crate::messages::said(
                        format!("no service with id {id:?} in {name}"),
                        format!("aucun service d'identifiant {id:?} chez {name}"),
                    )
                );
                return Ok(Outcome::NothingFound);
            };
            if json_out {
                output::json(&hit)?;
                return Ok(Outcome::Done);
            }
            let s = &hit.service;
            output::out(&fields(vec![
                (t("id", "identifiant"), hit.service_id.clone()),
                (t("organisation", "organisation"), hit.org_name.clone()),
                (t("name", "nom"), s.name.clone()),
                (
                    t("description", "description"),
                    s.description.clone().unwrap_or_default(),
                ),
                (
                    t("dimension", "dimension"),
                    s.dimension.label(lang).to_owned(),
                ),
                (
                    t("categories", "catégories"),
                    categories_text(&s.categories, lang),
                ),
                (
                    t("eligibility", "conditions d'accès"),
                    s.eligibility.clone().unwrap_or_default(),
                ),
                (t("cost", "coût"), cost_text(&s.cost)),
                (t("capacity", "capacité"), capacity_text(&s.capacity)),
                (t("languages", "langues"), s.languages.join(", ")),
                (
                    t("area", "zone desservie"),
                    area_text(&s.service_area, lang),
                ),
                (t("offices", "bureaux"), s.offices.join(", ")),
                (
                    t("schedule", "horaires"),
                    s.schedule.clone().unwrap_or_default(),
                ),
                (
                    t("documents", "pièces à fournir"),
                    s.required_documents.join("; "),
                ),
                (
                    t("status", "statut"),
                    json!(s.status).as_str().unwrap_or("").to_owned(),
                ),
                (t("last update", "mise à jour"), output::time(s.last_update)),
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
