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
use passerelle_node::cartography::headers::{self, ColumnReading};
use passerelle_node::cartography::import::{Entries, MappingRow};
use passerelle_node::cartography::owner::{self, Matched, Whose};
use passerelle_node::cartography::{hsds_import, import};
use passerelle_node::directory::fold;
use passerelle_node::document::Edit;
use passerelle_node::model::{Draft, OrganisationRecord};
use passerelle_node::node::OrganisationView;
use passerelle_node::reference::Lang;

use crate::client::{Outcome, absolute, apply_edits, call};
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
        /// Which column of the file is which, when its header is not read as you mean:
        /// HEADER=COLUMN, e.g. "Prestation proposée=service" or "Remarques=ignore"
        /// (repeatable). The import says how it read every column.
        #[arg(long = "column", value_name = "HEADER=COLUMN")]
        columns: Vec<String>,
        /// The same from a file: one HEADER = COLUMN a line, # for comments.
        #[arg(long, value_name = "FILE")]
        columns_file: Option<PathBuf>,
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
    /// For a mapping: how each column of the file was read.
    columns: Vec<ColumnReading>,
}

/// What the user said of the file's columns: `--column` pairs, then the mapping file's.
fn given(
    columns: &[String],
    columns_file: Option<&Path>,
    lang: Lang,
) -> anyhow::Result<headers::Given> {
    let flags = headers::Given::parse(columns.iter().map(String::as_str), lang)
        .map_err(|why| anyhow::anyhow!("--column: {why}"))?;
    let file = match columns_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--columns-file: reading {}", path.display()))?;
            headers::Given::parse_file(&text, lang)
                .map_err(|why| anyhow::anyhow!("--columns-file {}: {why}", path.display()))?
        }
        None => Default::default(),
    };
    Ok(flags.and(file))
}

fn read_mapping(
    file: &Path,
    sheet: Option<&str>,
    options: &import::ReadOptions,
) -> anyhow::Result<ReadFile> {
    let extension = file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let read = if matches!(extension.as_str(), "xlsx" | "xlsm" | "xls" | "ods") {
        let bytes =
            std::fs::read(file).with_context(|| format!("file: reading {}", file.display()))?;
        import::read_workbook(&bytes, sheet, options)
    } else {
        if sheet.is_some() {
            anyhow::bail!("--sheet: only a workbook (.xlsx, .xls, .ods) has sheets");
        }
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("file: reading {} (as UTF-8 text)", file.display()))?;
        import::read_csv(&text, options)
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
        // The columns not read are in the report of the columns.
        unmodelled: Vec::new(),
        rows: Some(read.rows),
        columns: read.columns,
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
        columns: Vec::new(),
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
            .trim()
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

pub async fn run(
    data_dir: &Path,
    command: ImportCommand,
    json: bool,
    lang: Lang,
) -> anyhow::Result<Outcome> {
    let (file, read, options) = match command {
        ImportCommand::Csv {
            file,
            sheet,
            columns,
            columns_file,
            options,
        } => {
            let read_options = import::ReadOptions {
                lang,
                given: given(&columns, columns_file.as_deref(), lang)?,
            };
            let read = read_mapping(&file, sheet.as_deref(), &read_options)?;
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
    // The other members: a name they answer to as well is ambiguous, not this
    // organisation's.
    let records: Vec<OrganisationRecord> = crate::client::records(data_dir).await?;
    let others: Vec<&OrganisationRecord> =
        records.iter().filter(|r| r.org_id != own.org_id).collect();
    // Whose each organisation of the file is: by its id in the file, else by its name.
    let whose: Vec<Whose> = read
        .sources
        .iter()
        .map(|source| {
            if source.passerelle_id.as_ref() == Some(&own.org_id) {
                Whose::Own(Matched::Id)
            } else {
                owner::whose(&source.name, own, &others)
            }
        })
        .collect();
    let plan = match &read.rows {
        Some(rows) => import::plan_own(rows, own, &others),
        None => {
            let mut entries = Entries {
                services_whole: true,
                ..Default::default()
            };
            let mut counts = import::ImportPlan::default();
            for (source, whose) in read.sources.iter().zip(&whose) {
                counts.count(&source.name, whose.clone(), source.rows);
                if !matches!(whose, Whose::Own(_)) {
                    continue;
                }
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
            import::ImportPlan {
                own_rows: counts.own_rows,
                other_organisations: counts.other_organisations,
                own_names: counts.own_names,
                ambiguous: counts.ambiguous,
                ..import::plan_entries(&entries, own)
            }
        }
    };
    // Drafts of the other organisations, when asked (never of an ambiguous name).
    let mut draft_edits = Vec::new();
    let mut draft_lines = Vec::new();
    let (mut drafts_unchanged, mut members, mut claimed) = (0, 0, 0);
    if options.drafts {
        let claims: std::collections::BTreeSet<&String> =
            records.iter().flat_map(|r| r.claims.keys()).collect();
        let source_name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        for (source, _) in read
            .sources
            .iter()
            .zip(&whose)
            .filter(|(_, w)| matches!(w, Whose::Other))
        {
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
            "columns": read.columns,
            "errors": read.errors.iter().map(|[at, field, value, why]| serde_json::json!({"at": at, "field": field, "value": value, "why": why})).collect::<Vec<_>>(),
            "unmodelled": read.unmodelled,
            "own_rows": plan.own_rows,
            "own_names": plan.own_names,
            "ambiguous": plan.ambiguous,
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
        print_report(&read, &plan, lang)?;
        output::out(&lang.pick(
            format!(
                "{} entr(ies) are {}'s; {} change(s), {} already as the file says; {} entr(ies) of {} other organisation(s) are theirs to import",
                plan.own_rows,
                own.profile.name,
                plan.changes.len(),
                plan.unchanged,
                plan.other_organisations.values().sum::<usize>(),
                plan.other_organisations.len()
            ),
            format!(
                "{} ligne(s) sont de {} ; {} modification(s), {} déjà comme le dit le fichier ; {} ligne(s) de {} autre(s) organisation(s) sont à elles d'importer",
                plan.own_rows,
                own.profile.name,
                plan.changes.len(),
                plan.unchanged,
                plan.other_organisations.values().sum::<usize>(),
                plan.other_organisations.len()
            ),
        ))?;
        let prefix = if dry_run {
            lang.pick("would ", "ferait : ")
        } else {
            ""
        };
        for change in plan.changes.iter().chain(&draft_lines) {
            output::out(&format!("  {prefix}{change}"))?;
        }
        if options.drafts {
            output::out(&lang.pick(
                format!(
                    "drafts: {} to publish, {drafts_unchanged} already published as the file says, {members} organisation(s) already members describing themselves, {claimed} already claimed",
                    draft_lines.len()
                ),
                format!(
                    "brouillons : {} à publier, {drafts_unchanged} déjà publiés comme le dit le fichier, {members} organisation(s) déjà membres qui se décrivent elles-mêmes, {claimed} déjà revendiqués",
                    draft_lines.len()
                ),
            ))?;
        }
    }
    if refused_all {
        anyhow::bail!(
            "{}",
            lang.pick(
                format!(
                    "file: every row was refused ({} value(s) cannot be read); nothing was imported",
                    read.errors.len()
                ),
                format!(
                    "fichier : toutes les lignes ont été refusées ({} valeur(s) illisibles) ; rien n'a été importé",
                    read.errors.len()
                ),
            )
        );
    }
    if blocked {
        anyhow::bail!(
            "{}",
            lang.pick(
                format!(
                    "file: {} value(s) cannot be read; nothing was imported (fix them, or pass --skip-errors to import the others)",
                    read.errors.len()
                ),
                format!(
                    "fichier : {} valeur(s) illisibles ; rien n'a été importé (corrigez-les, ou passez --skip-errors pour importer les autres)",
                    read.errors.len()
                ),
            )
        );
    }
    if !read.errors.is_empty() && !json {
        output::out(&lang.pick(
            format!(
                "skipped ({} value(s) that cannot be read), by cause:",
                read.errors.len()
            ),
            format!(
                "ignorées ({} valeur(s) illisibles), par cause :",
                read.errors.len()
            ),
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
        output::out(lang.pick(
            "imported: each change is signed by this organisation and reaches the network",
            "importé : chaque modification est signée par cette organisation et parvient au réseau",
        ))?;
    }
    Ok(Outcome::Done)
}

/// How the file's columns were read, what cannot be read, and whose the names are.
fn print_report(read: &ReadFile, plan: &import::ImportPlan, lang: Lang) -> anyhow::Result<()> {
    if !read.columns.is_empty() {
        output::out(lang.pick(
            "columns of the file, as read:",
            "colonnes du fichier, telles que lues :",
        ))?;
        output::out(&table(
            &lang.pick(
                ["#", "column of the file", "read as", "how"],
                ["n°", "colonne du fichier", "lue comme", "comment"],
            ),
            read.columns
                .iter()
                .map(|c| {
                    vec![
                        c.position.to_string(),
                        c.header.clone(),
                        c.column.clone().unwrap_or_else(|| "—".into()),
                        c.how.clone(),
                    ]
                })
                .collect(),
        ))?;
    }
    if !read.errors.is_empty() {
        output::out(&lang.pick(
            format!("{} value(s) cannot be read:", read.errors.len()),
            format!("{} valeur(s) illisibles :", read.errors.len()),
        ))?;
        output::out(&table(
            &lang.pick(
                ["where", "field", "value", "why"],
                ["où", "colonne", "valeur", "pourquoi"],
            ),
            read.errors
                .iter()
                .map(|e| {
                    let mut row = e.to_vec();
                    if lang == Lang::Fr {
                        row[0] = row[0].replacen("row ", "ligne ", 1);
                    }
                    row
                })
                .collect(),
        ))?;
    }
    if !read.unmodelled.is_empty() {
        output::out(&lang.pick(
            format!(
                "not imported (Passerelle does not model them): {}",
                read.unmodelled.join(", ")
            ),
            format!(
                "non importé (Passerelle ne les modélise pas) : {}",
                read.unmodelled.join(", ")
            ),
        ))?;
    }
    for name in &plan.own_names {
        output::out(&lang.pick(
            format!(
                "{:?}: {} entr(ies), this organisation's {}",
                name.name,
                name.rows,
                name.matched.describe(lang)
            ),
            format!(
                "« {} » : {} ligne(s), de cette organisation {}",
                name.name,
                name.rows,
                name.matched.describe(lang)
            ),
        ))?;
    }
    for name in &plan.ambiguous {
        output::out(&lang.pick(
            format!(
                "{:?}: {} entr(ies) NOT imported: the name is this organisation's and also {}'s; write the full name in the file",
                name.name,
                name.rows,
                name.also.join(", ")
            ),
            format!(
                "« {} » : {} ligne(s) NON importée(s) : ce nom est celui de cette organisation et aussi de {} ; écrivez le nom complet dans le fichier",
                name.name,
                name.rows,
                name.also.join(", ")
            ),
        ))?;
    }
    Ok(())
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
