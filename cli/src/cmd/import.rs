//! `passerelle import …`: this organisation's rows of a mapping spreadsheet or of an HSDS
//! export, and a backup written by `export automerge` (verified, then merged like changes
//! received from a peer).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use passerelle_node::api;
use passerelle_node::archive::Imported;
use passerelle_node::backup::DocumentBackup;
use passerelle_node::cartography::import::{Entries, MappingRow};
use passerelle_node::cartography::{hsds_import, import};
use passerelle_node::directory::fold;
use passerelle_node::document::Edit;
use passerelle_node::model::{Draft, OrganisationRecord};
use passerelle_node::node::OrganisationView;

use crate::client::{Outcome, absolute, apply_edits, call, items};
use crate::output::{self, table};

/// What `import csv` and `import hsds` may do.
#[derive(Debug, Args)]
pub struct ImportOptions {
    /// Show what would be created or updated, and every entry that cannot be read; write
    /// nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Import the entries that read well even if others do not (they are still listed).
    #[arg(long)]
    pub skip_errors: bool,
    /// Also publish the other organisations' entries as drafts in this organisation's
    /// document (a coordinator's historical mapping), for each to claim
    /// (`directory claim`).
    #[arg(long)]
    pub drafts: bool,
}

/// `passerelle import …`.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// A mapping spreadsheet: CSV (comma or semicolon) or a workbook (.xlsx, .xls, .ods);
    /// headers in French or English (see docs/cartography.md). This organisation's rows
    /// become its offices and services; importing the same file again changes nothing.
    #[command(alias = "xlsx")]
    Csv {
        /// The file (.csv, .xlsx, .xls or .ods).
        file: PathBuf,
        /// The workbook's sheet to read (the first by default).
        #[arg(long)]
        sheet: Option<String>,
        #[command(flatten)]
        options: ImportOptions,
    },
    /// Open Referral HSDS 3.0: a JSON file (an organization, a list of them, or an API page)
    /// or a folder holding the tabular package (organization.csv, service.csv, …). Fields
    /// Passerelle does not model are listed.
    Hsds {
        /// The JSON file or the package's folder.
        path: PathBuf,
        #[command(flatten)]
        options: ImportOptions,
    },
    /// A backup written by `passerelle export automerge`: every file is verified (signed
    /// heads, every change's signature, the .automerge file), then its changes are merged
    /// like changes received from a peer (membership and write rules apply).
    Automerge {
        /// The folder holding the backup.
        dir: PathBuf,
        /// Verify only; merge nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// One organisation's entries as the imported file gives them.
struct Source {
    name: String,
    passerelle_id: Option<String>,
    entries: Entries,
    rows: usize,
}

/// What was read from a file: the organisations, and what could not be read.
struct ReadFile {
    sources: Vec<Source>,
    /// Entries that cannot be read: (where, field, value, why).
    errors: Vec<[String; 4]>,
    /// Columns or fields not imported.
    unmodelled: Vec<String>,
    /// For a mapping: this organisation's rows, whose entries are merged whatever name
    /// (full or acronym) each row uses.
    rows: Option<Vec<MappingRow>>,
}

fn read_mapping(file: &Path, sheet: Option<&str>) -> anyhow::Result<ReadFile> {
    let extension = file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let read = if matches!(extension.as_str(), "xlsx" | "xlsm" | "xls" | "ods") {
        let bytes =
            std::fs::read(file).with_context(|| format!("file: reading {}", file.display()))?;
        import::read_workbook(&bytes, sheet)
    } else {
        if sheet.is_some() {
            anyhow::bail!("--sheet: only a workbook (.xlsx, .xls, .ods) has sheets");
        }
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("file: reading {} (as UTF-8 text)", file.display()))?;
        import::read_csv(&text)
    }
    .map_err(|e| anyhow::anyhow!("file {}: {e}", file.display()))?;
    let mut groups: BTreeMap<String, Vec<&MappingRow>> = BTreeMap::new();
    for row in &read.rows {
        groups
            .entry(fold(row.organisation.trim()))
            .or_default()
            .push(row);
    }
    let sources = groups
        .into_values()
        .map(|rows| Source {
            name: rows[0].organisation.clone(),
            passerelle_id: None,
            entries: import::entries_of_rows(&rows),
            rows: rows.len(),
        })
        .collect();
    Ok(ReadFile {
        sources,
        errors: read
            .errors
            .iter()
            .map(|e| {
                [
                    format!("row {}", e.row),
                    e.column.clone(),
                    e.value.clone(),
                    e.why.clone(),
                ]
            })
            .collect(),
        unmodelled: read
            .unknown_columns
            .iter()
            .map(|c| format!("column {c:?}"))
            .collect(),
        rows: Some(read.rows),
    })
}

fn read_hsds(path: &Path) -> anyhow::Result<ReadFile> {
    let read = if path.is_dir() {
        let mut files = BTreeMap::new();
        for entry in
            std::fs::read_dir(path).with_context(|| format!("path: reading {}", path.display()))?
        {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.to_ascii_lowercase().ends_with(".csv") {
                let text = std::fs::read_to_string(entry.path())
                    .with_context(|| format!("path: reading {}", entry.path().display()))?;
                files.insert(name, text);
            }
        }
        hsds_import::read_package(&files)
    } else {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("path: reading {}", path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("path {}: not JSON", path.display()))?;
        hsds_import::read_json(&value)
    }
    .map_err(|e| anyhow::anyhow!("path {}: {e}", path.display()))?;
    Ok(ReadFile {
        sources: read
            .organisations
            .into_iter()
            .map(|o| Source {
                rows: o.entries.offices.len() + o.entries.services.len(),
                name: o.name,
                passerelle_id: o.passerelle_id,
                entries: o.entries,
            })
            .collect(),
        errors: read
            .problems
            .iter()
            .map(|p| {
                [
                    format!("{} {}", p.entity, p.id),
                    p.field.clone(),
                    p.value.clone(),
                    p.why.clone(),
                ]
            })
            .collect(),
        unmodelled: read
            .unmodelled
            .iter()
            .map(|(field, count)| format!("{field} ({count}×)"))
            .collect(),
        rows: None,
    })
}

/// The errors grouped by field and cause (the reason up to its list of accepted values),
/// most frequent first.
fn causes(errors: &[[String; 4]]) -> Vec<(String, String, usize)> {
    let mut counts: std::collections::BTreeMap<(String, String), usize> = Default::default();
    for [_, field, _, why] in errors {
        let cause = why
            .split("; ")
            .next()
            .unwrap_or(why)
            .split(": ")
            .next()
            .unwrap_or(why)
            .to_owned();
        *counts.entry((field.clone(), cause)).or_default() += 1;
    }
    let mut out: Vec<(String, String, usize)> = counts
        .into_iter()
        .map(|((field, cause), count)| (field, cause, count))
        .collect();
    out.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.cmp(b)));
    out
}

pub async fn run(data_dir: &Path, command: ImportCommand, json: bool) -> anyhow::Result<Outcome> {
    let (file, read, options) = match command {
        ImportCommand::Csv {
            file,
            sheet,
            options,
        } => {
            let read = read_mapping(&file, sheet.as_deref())?;
            (file, read, options)
        }
        ImportCommand::Hsds { path, options } => {
            let read = read_hsds(&path)?;
            (path, read, options)
        }
        ImportCommand::Automerge { dir, dry_run } => {
            return automerge(data_dir, &dir, dry_run, json).await;
        }
    };
    let view: OrganisationView = call(data_dir, api::Organisation::default()).await?;
    let own = &view.record;
    // This organisation's entries: by its id in the file, else by its name or acronym.
    let is_own = |source: &Source| {
        source.passerelle_id.as_ref() == Some(&own.org_id) || import::names(own, &source.name)
    };
    let mut plan = match &read.rows {
        Some(rows) => import::plan_own(rows, own),
        None => {
            let mut entries = Entries {
                services_whole: true,
                ..Default::default()
            };
            let mut own_rows = 0;
            for source in read.sources.iter().filter(|s| is_own(s)) {
                own_rows += source.rows;
                entries.offices.extend(source.entries.offices.clone());
                entries.services.extend(source.entries.services.clone());
                entries.contacts.extend(source.entries.contacts.clone());
                entries.acronym = entries.acronym.or(source.entries.acronym.clone());
                entries.legal_status = entries.legal_status.or(source.entries.legal_status);
                entries.description = entries.description.or(source.entries.description.clone());
                entries.website = entries.website.or(source.entries.website.clone());
                entries.parent_organisation = entries
                    .parent_organisation
                    .or(source.entries.parent_organisation.clone());
                if entries.languages.is_empty() {
                    entries.languages = source.entries.languages.clone();
                }
            }
            let mut plan = import::plan_entries(&entries, own);
            plan.own_rows = own_rows;
            plan
        }
    };
    plan.other_organisations = read
        .sources
        .iter()
        .filter(|s| !is_own(s))
        .map(|s| (s.name.clone(), s.rows))
        .collect();
    // Drafts of the other organisations, when asked.
    let mut draft_edits = Vec::new();
    let mut draft_lines = Vec::new();
    let (mut drafts_unchanged, mut members, mut claimed) = (0, 0, 0);
    if options.drafts {
        let records: Vec<OrganisationRecord> = items(data_dir, api::Records::default()).await?;
        let claims: std::collections::BTreeSet<&String> =
            records.iter().flat_map(|r| r.claims.keys()).collect();
        let source_name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        for source in read.sources.iter().filter(|s| !is_own(s)) {
            // A member that already describes itself needs no draft.
            if records.iter().any(|r| {
                (Some(&r.org_id) == source.passerelle_id.as_ref() || import::names(r, &source.name))
                    && !r.services.is_empty()
            }) {
                members += 1;
                continue;
            }
            let id = import::draft_id(&own.org_id, &source.name);
            if claims.contains(&id) {
                claimed += 1;
                continue;
            }
            let draft = Draft {
                name: source.name.clone(),
                entries: source.entries.clone(),
                source: source_name.clone(),
                published: passerelle_node::unix_now(),
            };
            match own.drafts.get(&id) {
                Some(current) if current.name == draft.name && current.entries == draft.entries => {
                    drafts_unchanged += 1;
                }
                current => {
                    draft_lines.push(format!(
                        "{} draft {id} {:?} ({} offices, {} services)",
                        if current.is_some() {
                            "update"
                        } else {
                            "publish"
                        },
                        draft.name,
                        draft.entries.offices.len(),
                        draft.entries.services.len()
                    ));
                    draft_edits.push(Edit::PutDraft {
                        id,
                        draft: Box::new(draft),
                    });
                }
            }
        }
    }
    let blocked = !read.errors.is_empty() && !options.skip_errors;
    let dry_run = options.dry_run;
    // Every row refused: nothing to import, whatever --skip-errors says.
    let refused_all = !read.errors.is_empty()
        && read.sources.is_empty()
        && read.rows.as_ref().is_none_or(|rows| rows.is_empty());
    let by_cause = causes(&read.errors);
    if json {
        output::json(&serde_json::json!({
            "errors": read.errors.iter().map(|[at, field, value, why]| serde_json::json!({"at": at, "field": field, "value": value, "why": why})).collect::<Vec<_>>(),
            "unmodelled": read.unmodelled,
            "own_rows": plan.own_rows,
            "changes": plan.changes,
            "unchanged": plan.unchanged,
            "other_organisations": plan.other_organisations,
            "drafts": draft_lines,
            "drafts_unchanged": drafts_unchanged,
            "drafts_skipped_members": members,
            "drafts_skipped_claimed": claimed,
            "skipped_by_cause": by_cause.iter().map(|(field, cause, count)| serde_json::json!({"field": field, "cause": cause, "count": count})).collect::<Vec<_>>(),
            "written": !dry_run && !blocked && !refused_all,
        }))?;
    } else {
        if !read.errors.is_empty() {
            output::out(&format!("{} value(s) cannot be read:", read.errors.len()))?;
            output::out(&table(
                &["where", "field", "value", "why"],
                read.errors.iter().map(|e| e.to_vec()).collect(),
            ))?;
        }
        if !read.unmodelled.is_empty() {
            output::out(&format!(
                "not imported (Passerelle does not model them): {}",
                read.unmodelled.join(", ")
            ))?;
        }
        output::out(&format!(
            "{} entr(ies) are {}'s; {} change(s), {} already as the file says; {} entr(ies) of {} other organisation(s) are theirs to import",
            plan.own_rows,
            own.profile.name,
            plan.changes.len(),
            plan.unchanged,
            plan.other_organisations.values().sum::<usize>(),
            plan.other_organisations.len()
        ))?;
        let prefix = if dry_run { "would " } else { "" };
        for change in plan.changes.iter().chain(&draft_lines) {
            output::out(&format!("  {prefix}{change}"))?;
        }
        if options.drafts {
            output::out(&format!(
                "drafts: {} to publish, {drafts_unchanged} already published as the file says, {members} organisation(s) already members describing themselves, {claimed} already claimed",
                draft_lines.len()
            ))?;
        }
    }
    if refused_all {
        anyhow::bail!(
            "file: every row was refused ({} value(s) cannot be read); nothing was imported",
            read.errors.len()
        );
    }
    if blocked {
        anyhow::bail!(
            "file: {} value(s) cannot be read; nothing was imported (fix them, or pass --skip-errors to import the others)",
            read.errors.len()
        );
    }
    if !read.errors.is_empty() && !json {
        output::out(&format!(
            "skipped ({} value(s) that cannot be read), by cause:",
            read.errors.len()
        ))?;
        for (field, cause, count) in &by_cause {
            output::out(&format!("  {count} × {field}: {cause}"))?;
        }
    }
    if dry_run {
        return Ok(Outcome::Done);
    }
    let mut edits = plan.edits;
    edits.extend(draft_edits);
    apply_edits(data_dir, edits).await?;
    if !json {
        output::out(
            "imported: each change is signed by this organisation and reaches the network",
        )?;
    }
    Ok(Outcome::Done)
}

pub async fn automerge(
    data_dir: &Path,
    dir: &Path,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<Outcome> {
    let dir = absolute(dir)?;
    let imported: Imported = call(data_dir, api::ImportAutomerge { dir, dry_run }).await?;
    let outcome = &imported.outcome;
    if json {
        output::json(&serde_json::json!({
            "verified": imported.verified,
            "merged": imported.merged,
            "applied": outcome.applied,
            "duplicates": outcome.duplicates,
            "pending": outcome.pending,
            "rejected": outcome.rejected,
        }))?;
    } else {
        output::out(&table(
            &["document", "changes", "authors", "exported by"],
            imported
                .verified
                .iter()
                .map(|v| {
                    vec![
                        DocumentBackup::file_stem(&v.document),
                        v.changes.to_string(),
                        v.authors.len().to_string(),
                        v.exported_by.to_string(),
                    ]
                })
                .collect(),
        ))?;
        for rejection in &outcome.rejected {
            output::out(&format!(
                "refused ({}): {}",
                rejection.code, rejection.reason
            ))?;
        }
        output::out(&if dry_run {
            format!(
                "{} document(s) verified: signed heads, every change's signature, the .automerge files; nothing merged (--dry-run)",
                imported.verified.len()
            )
        } else {
            format!(
                "{} document(s) verified and merged: {} change(s) new here, {} already held, {} refused, {} waiting for changes they depend on",
                imported.verified.len(),
                outcome.applied,
                outcome.duplicates,
                outcome.rejected.len(),
                outcome.pending
            )
        })?;
    }
    if !outcome.rejected.is_empty() {
        anyhow::bail!(
            "dir: {} change(s) of the backup were refused by this node's rules (listed above); the others were merged",
            outcome.rejected.len()
        );
    }
    Ok(Outcome::Done)
}
