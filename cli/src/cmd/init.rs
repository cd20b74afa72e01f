//! `passerelle init`: this organisation's identity, store and configuration.

use std::path::Path;

use anyhow::Context;
use clap::Args;
use passerelle_node::config::{CONFIG_FILE, Config, ConfigFile};
use passerelle_node::identity::OrgId;
use passerelle_node::model::{LegalStatus, Profile};
use passerelle_node::node;
use serde_json::json;

use crate::client::Outcome;
use crate::flags::parse_legal_status;
use crate::output;

/// `passerelle init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The organisation's official name.
    #[arg(long, required_unless_present = "device_of")]
    pub org_name: Option<String>,
    /// Make this a device node of an existing member organisation (its id): another
    /// office's node, with its own key, writing that organisation's document once the
    /// organisation has run `passerelle device add <this node's key>`.
    #[arg(long, value_name = "ORG-ID", conflicts_with_all = ["org_name", "legal_status", "acronym"])]
    pub device_of: Option<OrgId>,
    /// Legal status.
    #[arg(long, value_parser = parse_legal_status)]
    pub legal_status: Option<LegalStatus>,
    /// Acronym or short name.
    #[arg(long)]
    pub acronym: Option<String>,
    /// Make an offline recovery key, its secret written once to FILE (keep it off this
    /// computer): registered in the network once this organisation is a member, it alone
    /// can give the organisation a new key if this one is lost or stolen.
    #[arg(long, value_name = "FILE", conflicts_with = "device_of")]
    pub recovery_key: Option<std::path::PathBuf>,
    /// Protect the keys with a passphrase (asked twice; for the service, read from its
    /// credential $CREDENTIALS_DIRECTORY/passphrase): asked again at every start.
    #[arg(long)]
    pub passphrase: bool,
}

pub fn run(data_dir: &Path, args: InitArgs, json_out: bool) -> anyhow::Result<Outcome> {
    let mut config = Config::new(data_dir);
    if args.passphrase {
        config.passphrase = Some(crate::passphrase::new_one()?);
    }
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
            output::out(&crate::messages::said(
                format!(
                    "Created a device node of organisation {} in {}\n\n  device key  {key}\n\nOn the organisation's node run: passerelle device add {key} --label \"…\"\nThen here: passerelle network join '<invitation>' and passerelle start\n\nIf this node replaces the organisation's lost or stolen node: other members (as many as a revocation needs) run\npasserelle member rotate {org} --key {key} --reason \"…\"\n(or, with the recovery key: passerelle member recovery-statement here, member recover on a member's node)",
                    org.fingerprint(),
                    data_dir.display(),
                ),
                format!(
                    "Nœud appareil de l'organisation {} créé dans {}\n\n  clé de l'appareil  {key}\n\nSur le nœud de l'organisation, lancez : passerelle device add {key} --label \"…\"\nPuis ici : passerelle network join '<invitation>' et passerelle start\n\nSi ce nœud remplace le nœud perdu ou volé de l'organisation : d'autres membres (autant qu'une révocation en demande) lancent\npasserelle member rotate {org} --key {key} --reason \"…\"\n(ou, avec la clé de secours : passerelle member recovery-statement ici, member recover sur le nœud d'un membre)",
                    org.fingerprint(),
                    data_dir.display(),
                ),
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
    if let Some(path) = &args.recovery_key {
        let secret = passerelle_node::identity::SigningSecret::generate()?;
        crate::output::write_secret(
            path,
            &passerelle_node::membership::recovery_secret_text(&secret),
        )?;
        node::remember_recovery_key(&config, &secret.key_id())
            .context("recording the recovery key")?;
        if !json_out {
            output::out(&crate::messages::said(
                format!(
                    "Recovery key made: its secret is in {} — keep it off this computer. It is registered in the network once this organisation is a member.",
                    path.display()
                ),
                format!(
                    "Clé de secours créée : son secret est dans {} — gardez-le hors de cet ordinateur. Elle est enregistrée dans le réseau dès que cette organisation est membre.",
                    path.display()
                ),
            ))?;
        }
    }
    write_config_template(data_dir, &org_name)?;
    if json_out {
        output::json(&json!({
            "org_id": org.to_string(),
            "fingerprint": org.fingerprint(),
            "data_dir": data_dir.display().to_string(),
        }))?;
    } else {
        output::out(&crate::messages::said(
            format!(
                "Created the identity of {:?} in {}\n\n  organisation id  {}\n  fingerprint      {}\n\nRead the fingerprint out to partners so they can check your id.\nStart the node with: passerelle start",
                org_name,
                data_dir.display(),
                org,
                org.fingerprint()
            ),
            format!(
                "Identité de {:?} créée dans {}\n\n  identifiant de l'organisation  {}\n  empreinte                      {}\n\nLisez l'empreinte à vos partenaires pour qu'ils vérifient votre identifiant.\nDémarrez le nœud avec : passerelle start",
                org_name,
                data_dir.display(),
                org,
                org.fingerprint()
            ),
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
