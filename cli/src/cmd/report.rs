//! `passerelle report`: figures of the referral board (counts only, no personal data), or
//! the actors by domain and area with the gaps (`report actors`).

use std::path::Path;

use clap::{Args, Subcommand};
use passerelle_node::api;
use passerelle_node::cartography::actors::ActorsReport;
use passerelle_node::reference::Lang;
use passerelle_node::referral::report::Report;

use crate::client::{Outcome, call, records};
use crate::flags::{parse_date, parse_lang};
use crate::output::{self, table};
use crate::present::print_report;

/// `passerelle report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// What to report on (default: referrals).
    #[command(subcommand)]
    pub what: Option<ReportCommand>,
    /// The referral figures' period.
    #[command(flatten)]
    pub period: Period,
}

/// The period and form of the referral figures.
#[derive(Debug, Args, Default, Clone)]
pub struct Period {
    /// Referrals sent from this day (YYYY-MM-DD, UTC, included).
    #[arg(long, value_parser = parse_date, value_name = "YYYY-MM-DD")]
    pub from: Option<i64>,
    /// Referrals sent up to this day (YYYY-MM-DD, UTC, included).
    #[arg(long, value_parser = parse_date, value_name = "YYYY-MM-DD")]
    pub to: Option<i64>,
    /// Print the figures as CSV (table, key, count) instead of human tables.
    #[arg(long = "csv", conflicts_with = "json")]
    pub csv: bool,
}

/// `passerelle report …`.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Aggregate figures of the referral board (the default).
    Referrals {
        /// The period and form.
        #[command(flatten)]
        period: Period,
    },
    /// Organisations and services by dimension, category, region and department, and the
    /// regions where no organisation offers a category.
    Actors {
        /// Print CSV tables instead of human ones.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
        /// Language of labels: fr or en (default: the config's).
        #[arg(long, value_parser = parse_lang)]
        lang: Option<passerelle_node::reference::Lang>,
    },
}

pub async fn referrals(data_dir: &Path, period: Period, json_out: bool) -> anyhow::Result<Outcome> {
    let report: Report = call(
        data_dir,
        api::ReferralReport {
            from: period.from,
            // `--to` names a day: all of it.
            to: period.to.map(|day| day + 86_399),
            min_count: None,
        },
    )
    .await?;
    if json_out {
        output::json(&report)?;
    } else if period.csv {
        output::raw(&report_csv(&report)?)?;
    } else {
        print_report(&report)?;
    }
    Ok(Outcome::Done)
}

/// The figures as one CSV table: `table,key,count` (counts as the report writes them:
/// a number, `<5` or `x`).
fn report_csv(report: &Report) -> anyhow::Result<Vec<u8>> {
    let mut writer = ::csv::Writer::from_writer(Vec::new());
    writer.write_record(["table", "key", "count"])?;
    writer.write_record(["total", "", &report.total.to_string()])?;
    writer.write_record(["entered_in_error", "", &report.entered_in_error.to_string()])?;
    writer.write_record(["clock_flagged", "", &report.clock_flagged.to_string()])?;
    for (table, counts) in [
        ("status", &report.by_status),
        ("dimension", &report.by_dimension),
        ("category", &report.by_category),
        ("region", &report.by_region),
    ] {
        for (key, count) in counts {
            writer.write_record([table, key, &count.to_string()])?;
        }
    }
    for (name, c) in &report.by_organisation {
        for (column, count) in [
            ("sent", c.sent),
            ("received", c.received),
            ("completed", c.completed),
        ] {
            writer.write_record([&format!("organisation_{column}"), name, &count.to_string()])?;
        }
    }
    for table in &report.withheld_tables {
        writer.write_record([table.as_str(), "", "withheld"])?;
    }
    Ok(writer.into_inner()?)
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
    output::out(&crate::messages::said(
        format!(
            "{} organisations, {} active services",
            report.organisations, report.services
        ),
        format!(
            "{} organisations, {} services actifs",
            report.organisations, report.services
        ),
    ))?;
    for (section, counts) in sections {
        if counts.is_empty() {
            continue;
        }
        output::out("")?;
        output::out(&table(
            &[
                section,
                crate::messages::t("organisations", "organisations"),
                crate::messages::t("services", "services"),
            ],
            counts_rows(counts),
        ))?;
    }
    output::out(&crate::messages::said(
        format!(
            "\ngaps: {} region × category pairs with no active provider",
            report.gaps.len()
        ),
        format!(
            "\nmanques : {} couples région × catégorie sans prestataire actif",
            report.gaps.len()
        ),
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

/// Runs `passerelle report [referrals | actors]`.
pub async fn run(
    data_dir: &Path,
    args: ReportArgs,
    json: bool,
    lang: Lang,
) -> anyhow::Result<Outcome> {
    match args.what {
        None => referrals(data_dir, args.period, json).await,
        Some(ReportCommand::Referrals { period }) => referrals(data_dir, period, json).await,
        Some(ReportCommand::Actors { csv, lang: chosen }) => {
            actors(data_dir, json, csv, chosen.unwrap_or(lang)).await
        }
    }
}
