//! `passerelle office …`: this organisation's offices.

use std::path::Path;

use anyhow::bail;
use clap::{Args, Subcommand};
use passerelle_node::document::Edit;
use passerelle_node::identity::OrgId;
use passerelle_node::model::{OfficePatch, Patch};
use passerelle_node::node::OrganisationView;
use passerelle_node::reference::Lang;
use passerelle_node::{api, model};
use serde_json::Value;

use crate::client::{Outcome, call, edit};
use crate::flags::parse_degrees;
use crate::messages::t;
use crate::output::{self, table};
use crate::present::{department_name, region_name};

/// `passerelle office …`.
#[derive(Debug, Subcommand)]
pub enum OfficeCommand {
    /// Add an office.
    Add(OfficeArgs),
    /// Change an office; only the fields given change.
    Update {
        /// Office id (off-…).
        id: String,
        /// New values.
        #[command(flatten)]
        fields: OfficeArgs,
    },
    /// Remove an office (no service may still use it).
    Remove {
        /// Office id.
        id: String,
    },
    /// List an organisation's offices (this node's own by default).
    List {
        /// Organisation id.
        #[arg(long)]
        org: Option<OrgId>,
    },
}

/// Office fields.
#[derive(Debug, Args)]
pub struct OfficeArgs {
    /// Office name.
    #[arg(long)]
    pub name: Option<String>,
    /// Region P-code (CM001 … CM010) or ISO code (CM-LT).
    #[arg(long)]
    pub region: Option<String>,
    /// Department P-code (e.g. CM005004 for Wouri).
    #[arg(long)]
    pub department: Option<String>,
    /// Town or city.
    #[arg(long)]
    pub town: Option<String>,
    /// Street address or directions.
    #[arg(long)]
    pub address: Option<String>,
    /// Latitude (WGS 84 degrees).
    #[arg(long, allow_hyphen_values = true, value_parser = parse_degrees)]
    pub latitude: Option<f64>,
    /// Longitude (WGS 84 degrees).
    #[arg(long, allow_hyphen_values = true, value_parser = parse_degrees)]
    pub longitude: Option<f64>,
}

fn office_patch(args: &OfficeArgs) -> OfficePatch {
    OfficePatch {
        name: args.name.clone(),
        region: args.region.clone(),
        department: args.department.clone().map(Some),
        town: args.town.clone(),
        address: args.address.clone().map(Some),
        latitude: args.latitude.map(Some),
        longitude: args.longitude.map(Some),
    }
}

pub async fn run(
    data_dir: &Path,
    command: OfficeCommand,
    json_out: bool,
    lang: Lang,
) -> anyhow::Result<Outcome> {
    match command {
        OfficeCommand::Add(args) => {
            let office: Box<model::Office> =
                model::decode_json("office", Value::Object(office_patch(&args).into_map()))
                    .map_err(|e| anyhow::anyhow!("invalid office: {e}"))?;
            edit(
                data_dir,
                Edit::AddOffice {
                    id: String::new(),
                    office,
                },
                json_out,
                t("Office added:", "Bureau ajouté :"),
            )
            .await
        }
        OfficeCommand::Update { id, fields } => {
            let patch = office_patch(&fields);
            if patch.is_empty() {
                bail!("office update: give at least one field to change");
            }
            edit(
                data_dir,
                Edit::update_office(id, patch),
                json_out,
                t("Office updated:", "Bureau modifié :"),
            )
            .await
        }
        OfficeCommand::Remove { id } => {
            edit(
                data_dir,
                Edit::RemoveOffice { id },
                json_out,
                t("Office removed:", "Bureau retiré :"),
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
                    &[
                        t("id", "identifiant"),
                        t("name", "nom"),
                        t("town", "ville"),
                        t("region", "région"),
                        t("department", "département"),
                    ],
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
