//! `passerelle export …` and `passerelle report actors`.

use std::path::Path;

use anyhow::Context;
use std::collections::BTreeMap;

use passerelle_node::api;
use passerelle_node::cartography::import::{self, Entries, MappingRow};
use passerelle_node::cartography::{actors::ActorsReport, geojson, hsds, hsds_import, hxl};
use passerelle_node::directory::{fold, open_drafts};
use passerelle_node::document::Edit;
use passerelle_node::model::OrganisationRecord;
use passerelle_node::model::{Claim, Draft};
use passerelle_node::node::{EditReceipt, OrganisationView};
use passerelle_node::reference::Lang;

use crate::args::{ExportCommand, ImportCommand};
use crate::commands::{Outcome, call, items};
use crate::output::{self, table};

async fn records(data_dir: &Path) -> anyhow::Result<Vec<OrganisationRecord>> {
    let mut records: Vec<OrganisationRecord> = items(data_dir, api::Records {}).await?;
    records.sort_by(|a, b| a.profile.name.cmp(&b.profile.name));
    Ok(records)
}

fn write_out(output: Option<&Path>, bytes: &[u8]) -> anyhow::Result<()> {
    match output {
        Some(path) => std::fs::write(path, bytes)
            .with_context(|| format!("output: writing {}", path.display())),
        None => output::out(String::from_utf8_lossy(bytes).trim_end()),
    }
}

pub async fn export(
    data_dir: &Path,
    command: ExportCommand,
    lang: Lang,
    json: bool,
) -> anyhow::Result<Outcome> {
    match command {
        ExportCommand::Hsds { dir, lang: chosen } => {
            let records = records(data_dir).await?;
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("dir: creating {}", dir.display()))?;
            let path = dir.join("organizations.json");
            let body = hsds::organizations(&records, chosen.unwrap_or(lang));
            std::fs::write(&path, serde_json::to_string_pretty(&body)?)
                .with_context(|| format!("dir: writing {}", path.display()))?;
            let package = hsds::tabular_package(&body)?;
            for (name, bytes) in &package {
                let file = dir.join(name);
                std::fs::write(&file, bytes)
                    .with_context(|| format!("dir: writing {}", file.display()))?;
            }
            output::out(&format!(
                "{} organisations written to {} (HSDS 3.0 JSON) and the tabular package ({} CSV tables and datapackage.json) in {}",
                records.len(),
                path.display(),
                package.len() - 1,
                dir.display()
            ))?;
        }
        ExportCommand::Csv {
            hxl,
            output,
            lang: chosen,
        } => {
            let records = records(data_dir).await?;
            let bytes = hxl::csv(&records, chosen.unwrap_or(lang), hxl)?;
            write_out(output.as_deref(), &bytes)?;
        }
        ExportCommand::Automerge { dir } => {
            return crate::backup::export(data_dir, &dir, json).await;
        }
        ExportCommand::Geojson {
            output,
            lang: chosen,
        } => {
            let records = records(data_dir).await?;
            let collection = geojson::feature_collection(&records, chosen.unwrap_or(lang));
            write_out(
                output.as_deref(),
                serde_json::to_string_pretty(&collection)?.as_bytes(),
            )?;
        }
    }
    Ok(Outcome::Done)
}

fn counts_rows(
    counts: &std::collections::BTreeMap<String, passerelle_node::cartography::actors::Counts>,
) -> Vec<Vec<String>> {
    counts
        .iter()
        .map(|(k, c)| {
            vec![
                k.clone(),
                c.organisations.to_string(),
                c.services.to_string(),
            ]
        })
        .collect()
}

pub async fn actors(data_dir: &Path, json: bool, csv: bool, lang: Lang) -> anyhow::Result<Outcome> {
    let records = records(data_dir).await?;
    let report: ActorsReport = passerelle_node::cartography::actors::report(&records, lang);
    if json {
        output::json(&report)?;
        return Ok(Outcome::Done);
    }
    let sections = [
        ("dimension", &report.by_dimension),
        ("category", &report.by_category),
        ("region", &report.by_region),
        ("department", &report.by_department),
    ];
    if csv {
        // One table: section, key, organisations, services; then the gaps.
        let mut writer = ::csv::Writer::from_writer(Vec::new());
        writer.write_record(["section", "key", "organisations", "services"])?;
        for (section, counts) in sections {
            for row in counts_rows(counts) {
                writer.write_record([section, &row[0], &row[1], &row[2]])?;
            }
        }
        for gap in &report.gaps {
            writer.write_record([
                "gap",
                &format!(
                    "{} {} / {}",
                    gap.region, gap.region_name, gap.category_label
                ),
                "0",
                "0",
            ])?;
        }
        output::out(String::from_utf8_lossy(&writer.into_inner()?).trim_end())?;
        return Ok(Outcome::Done);
    }
    output::out(&format!(
        "{} organisations, {} active services",
        report.organisations, report.services
    ))?;
    for (section, counts) in sections {
        if counts.is_empty() {
            continue;
        }
        output::out("")?;
        output::out(&table(
            &[section, "organisations", "services"],
            counts_rows(counts),
        ))?;
    }
    output::out(&format!(
        "\ngaps: {} region × category pairs with no active provider",
        report.gaps.len()
    ))?;
    let mut by_region: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
    for gap in &report.gaps {
        by_region
            .entry(format!("{} {}", gap.region, gap.region_name))
            .or_default()
            .push(gap.category_label.as_str());
    }
    output::out(&table(
        &["region", "categories with no provider"],
        by_region
            .into_iter()
            .map(|(r, c)| vec![r, c.join(", ")])
            .collect(),
    ))?;
    Ok(Outcome::Done)
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

/// Applies `edits` one by one, with a progress bar on long imports (on a terminal).
async fn apply_edits(data_dir: &Path, edits: Vec<Edit>) -> anyhow::Result<()> {
    let bar = if edits.len() >= 20 {
        indicatif::ProgressBar::new(edits.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} signed edits ({eta} left)")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    for edit in edits {
        let _: EditReceipt = call(data_dir, api::EditOwn { edit }).await?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}

pub async fn import(
    data_dir: &Path,
    command: ImportCommand,
    json: bool,
) -> anyhow::Result<Outcome> {
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
            return crate::backup::import(data_dir, &dir, dry_run, json).await;
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
        let records: Vec<OrganisationRecord> = items(data_dir, api::Records {}).await?;
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
            "written": !dry_run && !blocked,
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
    if blocked {
        anyhow::bail!(
            "file: {} value(s) cannot be read; nothing was imported (fix them, or pass --skip-errors to import the others)",
            read.errors.len()
        );
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

/// `passerelle directory drafts`.
pub async fn drafts(data_dir: &Path, json: bool) -> anyhow::Result<Outcome> {
    let records: Vec<OrganisationRecord> = items(data_dir, api::Records {}).await?;
    let drafts = open_drafts(&records);
    if json {
        output::json(&drafts)?;
    } else if !drafts.is_empty() {
        output::out(&table(
            &[
                "draft",
                "organisation",
                "offices",
                "services",
                "published by",
                "from",
            ],
            drafts
                .iter()
                .map(|d| {
                    vec![
                        d.id.clone(),
                        d.record.profile.name.clone(),
                        d.record.offices.len().to_string(),
                        d.record.services.len().to_string(),
                        d.publisher_name.clone(),
                        d.source.clone().unwrap_or_default(),
                    ]
                })
                .collect(),
        ))?;
        output::out(
            "unverified: each organisation claims its own with `passerelle directory claim DRAFT`",
        )?;
    }
    Ok(Outcome::found(!drafts.is_empty()))
}

/// `passerelle directory claim DRAFT`.
pub async fn claim(
    data_dir: &Path,
    draft: &str,
    anyway: bool,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<Outcome> {
    let records: Vec<OrganisationRecord> = items(data_dir, api::Records {}).await?;
    let view: OrganisationView = call(data_dir, api::Organisation::default()).await?;
    let own = &view.record;
    let Some(found) = open_drafts(&records).into_iter().find(|d| d.id == draft) else {
        let claimed = records.iter().find(|r| r.claims.contains_key(draft));
        anyhow::bail!(match claimed {
            Some(by) => format!("draft: {draft} was already claimed by {}", by.profile.name),
            None => format!("draft: no draft {draft:?} (see `passerelle directory drafts`)"),
        });
    };
    let name = &found.record.profile.name;
    if !anyway && !import::names(own, name) {
        anyhow::bail!(
            "draft: {draft} is for {name:?}, and this organisation is {:?}; if it is yours under another name, pass --anyway",
            own.profile.name
        );
    }
    let publisher_draft = records
        .iter()
        .find(|r| r.org_id == found.publisher)
        .and_then(|r| r.drafts.get(draft))
        .ok_or_else(|| anyhow::anyhow!("draft: {draft} vanished while reading it"))?;
    let plan = import::plan_entries(&publisher_draft.entries, own);
    if json {
        output::json(&serde_json::json!({
            "draft": draft,
            "changes": plan.changes,
            "unchanged": plan.unchanged,
            "written": !dry_run,
        }))?;
    } else {
        let prefix = if dry_run { "would " } else { "" };
        for change in &plan.changes {
            output::out(&format!("  {prefix}{change}"))?;
        }
    }
    if dry_run {
        return Ok(Outcome::Done);
    }
    let mut edits = plan.edits;
    edits.push(Edit::ClaimDraft {
        id: draft.to_owned(),
        claim: Claim {
            publisher: found.publisher.clone(),
            at: passerelle_node::unix_now(),
        },
    });
    apply_edits(data_dir, edits).await?;
    if !json {
        output::out(&format!(
            "claimed {draft}: {} change(s) signed by {}; the draft is now hidden on every node",
            plan.changes.len(),
            own.profile.name
        ))?;
    }
    Ok(Outcome::Done)
}
