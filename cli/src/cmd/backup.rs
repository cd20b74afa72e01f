//! `passerelle backup`: backups of the case files sealed to a backup key kept off the
//! node, and their restore (what was erased since a backup stays erased).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use passerelle_node::api;
use passerelle_node::backup_seal::BackupSecret;
use passerelle_node::case_backup::{BackupReceipt, RestoreReceipt};

use crate::client::{Outcome, call};
use crate::output;

/// `passerelle backup …`.
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Make a backup key: its secret half is written to a file to keep off this computer
    /// (with whoever may restore), its public half is printed, for [backup] public_key.
    Key {
        /// Where to write the secret (created, never overwritten; mode 0600).
        #[arg(long, value_name = "FILE")]
        secret_out: PathBuf,
    },
    /// Write a backup of every case file held here, sealed to the backup key, into the
    /// backup folder.
    Write {
        /// The folder, instead of [backup] dir.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Restore a backup with the backup secret; the case files erased since it was made
    /// (recorded in its folder's erasures.jsonl) are not brought back.
    Restore {
        /// The backup file (case-files-….sealed).
        file: PathBuf,
        /// The file holding the backup secret.
        #[arg(long, value_name = "FILE")]
        secret_file: PathBuf,
    },
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("reading the path {}", path.display()))
}

pub async fn run(data_dir: &Path, command: BackupCommand, json: bool) -> anyhow::Result<Outcome> {
    match command {
        BackupCommand::Key { secret_out } => {
            let secret = BackupSecret::generate()?;
            output::write_secret(&secret_out, &secret.to_text())?;
            let public = secret.public_key().to_string();
            if json {
                output::json(&serde_json::json!({
                    "public_key": public,
                    "secret_file": secret_out,
                }))?;
            } else {
                output::out(&crate::messages::said(
                    format!(
                        "backup key made. Its secret is in {} — keep it off this computer, with whoever may restore; without it no backup opens.\nAdd to config.toml, then restart the node:\n\n[backup]\ndir = \"/var/backups/passerelle\"\npublic_key = \"{public}\"",
                        secret_out.display()
                    ),
                    format!(
                        "clé de sauvegarde créée. Son secret est dans {} — gardez-le hors de cet ordinateur, avec qui peut restaurer ; sans lui aucune sauvegarde ne s'ouvre.\nAjoutez à config.toml, puis redémarrez le nœud :\n\n[backup]\ndir = \"/var/backups/passerelle\"\npublic_key = \"{public}\"",
                        secret_out.display()
                    ),
                ))?;
            }
            Ok(Outcome::Done)
        }
        BackupCommand::Write { dir } => {
            let dir = dir.as_deref().map(absolute).transpose()?;
            let receipt: BackupReceipt = call(data_dir, api::BackupWrite { dir }).await?;
            if json {
                output::json(&receipt)?;
            } else {
                output::out(&crate::messages::said(
                    format!(
                        "{} case files sealed to the backup key in {} ({} bytes)",
                        receipt.case_files,
                        receipt.file.display(),
                        receipt.bytes
                    ),
                    format!(
                        "{} dossiers scellés à la clé de sauvegarde dans {} ({} octets)",
                        receipt.case_files,
                        receipt.file.display(),
                        receipt.bytes
                    ),
                ))?;
            }
            Ok(Outcome::Done)
        }
        BackupCommand::Restore { file, secret_file } => {
            let secret = std::fs::read_to_string(&secret_file)
                .with_context(|| format!("secret_file: reading {}", secret_file.display()))?;
            let receipt: RestoreReceipt = call(
                data_dir,
                api::BackupRestore {
                    file: absolute(&file)?,
                    secret: api::SecretText::new(secret),
                },
            )
            .await?;
            if json {
                output::json(&receipt)?;
            } else {
                output::out(&crate::messages::said(
                    format!(
                        "backup of {}: {} case files restored, {} not (erased since), {} held already",
                        output::time(receipt.made_at),
                        receipt.restored.len(),
                        receipt.erased_since.len(),
                        receipt.held_already.len()
                    ),
                    format!(
                        "sauvegarde du {} : {} dossiers restaurés, {} non (effacés depuis), {} déjà détenus",
                        output::time(receipt.made_at),
                        receipt.restored.len(),
                        receipt.erased_since.len(),
                        receipt.held_already.len()
                    ),
                ))?;
            }
            Ok(Outcome::Done)
        }
    }
}
