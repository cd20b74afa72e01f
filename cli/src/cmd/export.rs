//! `passerelle export …`: the live mapping in the formats the field reads (HSDS 3.0, a 3W
//! table with HXL hashtags, GeoJSON), and a verifiable backup in Automerge's format (the
//! node itself writes that folder: it runs as the same user, and no document is then too
//! large for the control API).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use passerelle_node::api;
use passerelle_node::archive::Exported;
use passerelle_node::backup::DocumentBackup;
use passerelle_node::cartography::{geojson, hsds, hxl};
use passerelle_node::reference::Lang;

use crate::client::{Outcome, absolute, call, records};
use crate::messages::t;
use crate::output::{self, table};

/// `passerelle export …`.
#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Open Referral HSDS 3.0: DIR/organizations.json (every organisation with its locations
    /// and services) and the tabular data package (one CSV per table and
    /// datapackage.json); the Cameroon profile is in docs/cartography.md.
    Hsds {
        /// The folder to write into (created if missing).
        dir: PathBuf,
    },
    /// A 3W table (who does what where): one row per service, category and place.
    Csv {
        /// Add the HXL hashtag row (#org+name, #sector, #adm1+code, …) under the header.
        #[arg(long)]
        hxl: bool,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// GeoJSON (RFC 7946): offices as points, service areas as features keyed by P-code.
    Geojson {
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// A complete, verifiable backup: every document held, in Automerge's standard binary
    /// format (DIR/<name>.automerge), with its signed changes (<name>.changes) and its heads
    /// signed by this node (<name>.heads.json).
    Automerge {
        /// The folder to write into (created if missing).
        dir: PathBuf,
    },
}

fn write_out(output: Option<&Path>, bytes: &[u8]) -> anyhow::Result<()> {
    match output {
        Some(path) => std::fs::write(path, bytes)
            .with_context(|| format!("output: writing {}", path.display())),
        None => output::out(String::from_utf8_lossy(bytes).trim_end()),
    }
}

pub async fn run(
    data_dir: &Path,
    command: ExportCommand,
    lang: Lang,
    json: bool,
) -> anyhow::Result<Outcome> {
    match command {
        ExportCommand::Hsds { dir } => {
            let records = records(data_dir).await?;
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("dir: creating {}", dir.display()))?;
            let path = dir.join("organizations.json");
            let body = hsds::organizations(&records, lang);
            std::fs::write(&path, serde_json::to_string_pretty(&body)?)
                .with_context(|| format!("dir: writing {}", path.display()))?;
            let package = hsds::tabular_package(&body)?;
            for (name, bytes) in &package {
                let file = dir.join(name);
                std::fs::write(&file, bytes)
                    .with_context(|| format!("dir: writing {}", file.display()))?;
            }
            if json {
                output::json(&serde_json::json!({
                    "organisations": records.len(),
                    "json": path,
                    "dir": dir,
                    "files": package.iter().map(|(name, _)| name).collect::<Vec<_>>(),
                }))?;
            } else {
                output::out(&crate::messages::said(
                    format!(
                        "{} organisations written to {} (HSDS 3.0 JSON) and the tabular package ({} CSV tables and datapackage.json) in {}",
                        records.len(),
                        path.display(),
                        package.len() - 1,
                        dir.display()
                    ),
                    format!(
                        "{} organisations écrites dans {} (HSDS 3.0 JSON) et le paquet tabulaire ({} tables CSV et datapackage.json) dans {}",
                        records.len(),
                        path.display(),
                        package.len() - 1,
                        dir.display()
                    ),
                ))?;
            }
        }
        ExportCommand::Csv { hxl, output } => {
            let records = records(data_dir).await?;
            match (json, output) {
                // The rows as JSON objects, one key per column.
                (true, None) => {
                    let rows: Vec<serde_json::Map<String, serde_json::Value>> =
                        hxl::rows(&records, lang)
                            .into_iter()
                            .map(|row| {
                                hxl::COLUMNS
                                    .iter()
                                    .zip(row)
                                    .map(|((name, _), cell)| ((*name).to_owned(), cell.into()))
                                    .collect()
                            })
                            .collect();
                    output::json(&rows)?;
                }
                (true, Some(path)) => {
                    let bytes = hxl::csv(&records, lang, hxl)?;
                    write_out(Some(&path), &bytes)?;
                    output::json(&serde_json::json!({
                        "written": path,
                        "rows": hxl::rows(&records, lang).len(),
                        "hxl": hxl,
                    }))?;
                }
                (false, output) => {
                    let bytes = hxl::csv(&records, lang, hxl)?;
                    write_out(output.as_deref(), &bytes)?;
                }
            }
        }
        ExportCommand::Automerge { dir } => {
            return automerge(data_dir, &dir, json).await;
        }
        ExportCommand::Geojson { output } => {
            let records = records(data_dir).await?;
            let collection = geojson::feature_collection(&records, lang);
            write_out(
                output.as_deref(),
                serde_json::to_string_pretty(&collection)?.as_bytes(),
            )?;
            // Written to a file: what was written, as JSON (to standard output the
            // collection is JSON already).
            if json && let Some(path) = output {
                output::json(&serde_json::json!({
                    "written": path,
                    "features": collection["features"].as_array().map_or(0, Vec::len),
                }))?;
            }
        }
    }
    Ok(Outcome::Done)
}

pub async fn automerge(data_dir: &Path, dir: &Path, json: bool) -> anyhow::Result<Outcome> {
    let dir = absolute(dir)?;
    let written: Vec<Exported> = call(data_dir, api::ExportAutomerge { dir: dir.clone() }).await?;
    if json {
        output::json(&written)?;
        return Ok(Outcome::Done);
    }
    output::out(&table(
        &[
            t("document", "document"),
            t("changes", "changements"),
            t("automerge bytes", "octets automerge"),
        ],
        written
            .iter()
            .map(|w| {
                vec![
                    DocumentBackup::file_stem(&w.document),
                    w.changes.to_string(),
                    w.automerge_bytes.to_string(),
                ]
            })
            .collect(),
    ))?;
    output::out(&crate::messages::said(
        format!(
            "written to {}: <name>.automerge opens with any Automerge implementation; <name>.changes and <name>.heads.json make it verifiable (`passerelle import automerge {}`)",
            dir.display(),
            dir.display()
        ),
        format!(
            "écrit dans {} : <nom>.automerge s'ouvre avec toute implémentation d'Automerge ; <nom>.changes et <nom>.heads.json le rendent vérifiable (`passerelle import automerge {}`)",
            dir.display(),
            dir.display()
        ),
    ))?;
    Ok(Outcome::Done)
}
