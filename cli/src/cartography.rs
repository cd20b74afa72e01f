//! `passerelle export …` and `passerelle report actors`.

use std::path::Path;

use anyhow::Context;
use passerelle_node::cartography::{actors::ActorsReport, geojson, hsds, hxl};
use passerelle_node::control::Request;
use passerelle_node::model::OrganisationRecord;
use passerelle_node::reference::Lang;

use crate::args::{ExportCommand, ImportCommand};
use crate::commands::{Outcome, call};
use crate::output::{self, table};

async fn records(data_dir: &Path) -> anyhow::Result<Vec<OrganisationRecord>> {
    let mut records: Vec<OrganisationRecord> = call(data_dir, Request::Records).await?;
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
) -> anyhow::Result<Outcome> {
    let records = records(data_dir).await?;
    match command {
        ExportCommand::Hsds { dir, lang: chosen } => {
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
            let bytes = hxl::csv(&records, chosen.unwrap_or(lang), hxl)?;
            write_out(output.as_deref(), &bytes)?;
        }
        ExportCommand::Automerge { dir } => return crate::backup::export(data_dir, &dir).await,
        ExportCommand::Geojson {
            output,
            lang: chosen,
        } => {
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

pub async fn import(
    data_dir: &Path,
    command: ImportCommand,
    json: bool,
) -> anyhow::Result<Outcome> {
    use passerelle_node::cartography::import::{plan_own, read_csv};
    use passerelle_node::node::{EditReceipt, OrganisationView};
    let (file, dry_run, skip_errors) = match command {
        ImportCommand::Csv {
            file,
            dry_run,
            skip_errors,
        } => (file, dry_run, skip_errors),
        ImportCommand::Automerge { dir, dry_run } => {
            return crate::backup::import(data_dir, &dir, dry_run, json).await;
        }
    };
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("file: reading {}", file.display()))?;
    let read = read_csv(&text).map_err(|e| anyhow::anyhow!("file {}: {e}", file.display()))?;
    let view: OrganisationView = call(data_dir, Request::Organisation { org: None }).await?;
    let plan = plan_own(&read.rows, &view.record);
    let blocked = !read.errors.is_empty() && !skip_errors;
    if json {
        output::json(&serde_json::json!({
            "rows_read": read.rows.len() + read.errors.iter().map(|e| e.row).collect::<std::collections::BTreeSet<_>>().len(),
            "errors": read.errors,
            "unknown_columns": read.unknown_columns,
            "own_rows": plan.own_rows,
            "changes": plan.changes,
            "unchanged": plan.unchanged,
            "other_organisations": plan.other_organisations,
            "written": !dry_run && !blocked,
        }))?;
    } else {
        if !read.errors.is_empty() {
            output::out(&format!("{} value(s) cannot be read:", read.errors.len()))?;
            output::out(&table(
                &["row", "column", "value", "why"],
                read.errors
                    .iter()
                    .map(|e| {
                        vec![
                            e.row.to_string(),
                            e.column.clone(),
                            e.value.clone(),
                            e.why.clone(),
                        ]
                    })
                    .collect(),
            ))?;
        }
        if !read.unknown_columns.is_empty() {
            output::out(&format!(
                "columns not imported (unknown headers): {}",
                read.unknown_columns.join(", ")
            ))?;
        }
        output::out(&format!(
            "{} row(s) are {}'s; {} change(s), {} already as the file says; {} row(s) of {} other organisation(s) are theirs to import",
            plan.own_rows,
            view.record.profile.name,
            plan.changes.len(),
            plan.unchanged,
            plan.other_organisations.values().sum::<usize>(),
            plan.other_organisations.len()
        ))?;
        for change in &plan.changes {
            output::out(&format!(
                "  {}{change}",
                if dry_run { "would " } else { "" }
            ))?;
        }
    }
    if blocked {
        anyhow::bail!(
            "file: {} value(s) cannot be read; nothing was imported (fix them, or pass --skip-errors to import the other rows)",
            read.errors.len()
        );
    }
    if dry_run {
        return Ok(Outcome::Done);
    }
    for edit in plan.edits {
        let _: EditReceipt = call(data_dir, Request::Edit { edit }).await?;
    }
    if !json {
        output::out(
            "imported: each change is signed by this organisation and reaches the network",
        )?;
    }
    Ok(Outcome::Done)
}
