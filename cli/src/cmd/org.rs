//! `passerelle org …`: this organisation's profile.

use std::path::Path;

use anyhow::bail;
use clap::{Args, Subcommand};
use passerelle_node::api;
use passerelle_node::document::Edit;
use passerelle_node::identity::OrgId;
use passerelle_node::model::{LegalStatus, Patch, ProfilePatch};
use passerelle_node::node::OrganisationView;
use passerelle_node::reference::Lang;
use serde_json::{Map, json};

use crate::client::{Outcome, call, edit};
use crate::flags::{ContactArgs, contact, parse_json_object, parse_legal_status};
use crate::messages::t;
use crate::output::{self, fields};

/// `passerelle org …`.
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Show an organisation's profile (this node's own by default).
    Show {
        /// Organisation id.
        #[arg(long)]
        org: Option<OrgId>,
    },
    /// Change profile fields; only the fields given change.
    Set(Box<OrgSetArgs>),
}

/// `passerelle org set`.
#[derive(Debug, Args)]
pub struct OrgSetArgs {
    /// Official name.
    #[arg(long)]
    pub name: Option<String>,
    /// Acronym.
    #[arg(long)]
    pub acronym: Option<String>,
    /// What the organisation does.
    #[arg(long)]
    pub description: Option<String>,
    /// Legal status.
    #[arg(long, value_parser = parse_legal_status)]
    pub legal_status: Option<LegalStatus>,
    /// Parent organisation (for a ministry's branch): its id or name.
    #[arg(long)]
    pub parent: Option<String>,
    /// Web site (https://…).
    #[arg(long)]
    pub website: Option<String>,
    /// Working languages, comma-separated ISO 639 codes (fr,en,ful).
    #[arg(long, value_delimiter = ',')]
    pub languages: Option<Vec<String>>,
    /// Main contact (replaces the contact list with this one).
    #[command(flatten)]
    pub contact: ContactArgs,
    /// Any fields as a JSON object (merge patch: `null` clears a field).
    #[arg(long, value_name = "JSON")]
    pub patch: Option<String>,
}

pub async fn run(
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
            // The flags over the fields of `--patch`.
            patch.extend(
                ProfilePatch {
                    name: args.name,
                    acronym: args.acronym.map(Some),
                    description: args.description.map(Some),
                    legal_status: args.legal_status.map(Some),
                    parent_organisation: args.parent.map(Some),
                    website: args.website.map(Some),
                    languages: args.languages,
                    contacts: contact(&args.contact).map(|c| vec![c]),
                }
                .into_map(),
            );
            if patch.is_empty() {
                bail!(
                    "org set: give at least one field to change (see `passerelle org set --help`)"
                );
            }
            edit(
                data_dir,
                Edit::SetProfile { patch },
                json_out,
                t("Profile updated", "Profil modifié"),
            )
            .await
        }
    }
}

fn print_profile(view: &OrganisationView, lang: Lang) -> anyhow::Result<()> {
    let p = &view.record.profile;
    output::out(&fields(vec![
        (t("name", "nom"), p.name.clone()),
        (t("acronym", "sigle"), p.acronym.clone().unwrap_or_default()),
        (t("id", "identifiant"), view.record.org_id.clone()),
        (t("fingerprint", "empreinte"), view.fingerprint.clone()),
        (
            t("legal status", "statut juridique"),
            p.legal_status
                .map(|s| json!(s).as_str().unwrap_or("").to_owned())
                .unwrap_or_else(|| "(not set)".into()),
        ),
        (
            t("parent", "organisation mère"),
            p.parent_organisation.clone().unwrap_or_default(),
        ),
        (
            t("description", "description"),
            p.description.clone().unwrap_or_default(),
        ),
        (t("languages", "langues"), p.languages.join(", ")),
        (
            t("website", "site web"),
            p.website.clone().unwrap_or_default(),
        ),
        (
            t("contacts", "contacts"),
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
        (
            t("offices", "bureaux"),
            view.record.offices.len().to_string(),
        ),
        (
            t("services", "services"),
            view.record.services.len().to_string(),
        ),
    ]))?;
    let _ = lang;
    Ok(())
}
