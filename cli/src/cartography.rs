//! `passerelle export …` and `passerelle report actors`.

use std::path::Path;

use anyhow::Context;
use passerelle_node::cartography::{actors::ActorsReport, geojson, hsds, hxl};
use passerelle_node::control::Request;
use passerelle_node::model::OrganisationRecord;
use passerelle_node::reference::Lang;

use crate::args::ExportCommand;
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
            output::out(&format!(
                "{} organisations written to {} (HSDS 3.0)",
                records.len(),
                path.display()
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
