//! How directory records read in a terminal: area names, costs, capacities, categories
//! in the configured language, and the services table.

use passerelle_node::directory::ServiceHit;
use passerelle_node::model;
use passerelle_node::node::OrganisationView;
use passerelle_node::reference::{Lang, areas, taxonomy};
use passerelle_node::referral::report::Report;
use serde_json::json;

use crate::client::Outcome;
use crate::messages::t;
use crate::output::{self, fields, table};

pub fn region_name(code: &str, lang: Lang) -> String {
    areas::region(code)
        .map(|r| r.name(lang).to_owned())
        .unwrap_or_else(|| code.to_owned())
}

pub fn department_name(code: &str, lang: Lang) -> String {
    areas::department(code)
        .map(|d| d.name(lang).to_owned())
        .unwrap_or_else(|| code.to_owned())
}

pub fn cost_text(cost: &model::Cost) -> String {
    match cost {
        model::Cost::Free => "free".into(),
        model::Cost::CostShared => "cost-shared".into(),
        model::Cost::Fee { amount_xaf } => format!("{amount_xaf} XAF"),
    }
}

pub fn capacity_text(capacity: &model::Capacity) -> String {
    let status = json!(capacity.status).as_str().unwrap_or("").to_owned();
    match capacity.places {
        Some(n) => format!("{status} ({n})"),
        None => status,
    }
}

pub fn area_text(area: &model::ServiceArea, lang: Lang) -> String {
    area.regions
        .iter()
        .map(|r| region_name(r, lang))
        .chain(area.departments.iter().map(|d| department_name(d, lang)))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn categories_text(categories: &[String], lang: Lang) -> String {
    categories
        .iter()
        .map(|c| {
            taxonomy::category(c)
                .map(|c| c.label(lang))
                .unwrap_or(c)
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn service_rows(hits: &[ServiceHit], lang: Lang, with_org: bool) -> Vec<Vec<String>> {
    hits.iter()
        .map(|h| {
            let s = &h.service;
            let mut row = vec![h.service_id.clone()];
            if with_org {
                row.push(h.org_name.clone());
            }
            row.extend([
                s.name.clone(),
                s.dimension.label(lang).to_owned(),
                categories_text(&s.categories, lang),
                area_text(&s.service_area, lang),
                cost_text(&s.cost),
                capacity_text(&s.capacity),
            ]);
            row
        })
        .collect()
}

pub fn hits_of(view: &OrganisationView) -> Vec<ServiceHit> {
    view.record
        .services
        .iter()
        .map(|(id, s)| ServiceHit {
            org_id: view.record.org_id.clone(),
            org_name: view.record.profile.name.clone(),
            service_id: id.clone(),
            service: s.clone(),
            draft_by: None,
        })
        .collect()
}

/// Prints services as a table (with their organisation when `with_org`) or JSON.
pub fn print_services(
    hits: &[ServiceHit],
    lang: Lang,
    with_org: bool,
    json_out: bool,
) -> anyhow::Result<Outcome> {
    if json_out {
        output::json(&hits)?;
    } else if hits.is_empty() {
        eprintln!("{}", t("no service matches", "aucun service ne correspond"));
    } else {
        let mut header = vec![t("id", "identifiant")];
        if with_org {
            header.push(t("organisation", "organisation"));
        }
        header.extend([
            t("service", "service"),
            t("dimension", "dimension"),
            t("categories", "catégories"),
            t("area", "zone desservie"),
            t("cost", "coût"),
            t("capacity", "capacité"),
        ]);
        output::out(&table(&header, service_rows(hits, lang, with_org)))?;
    }
    Ok(Outcome::found(!hits.is_empty()))
}

pub fn print_report(report: &Report) -> anyhow::Result<()> {
    let pct = |v: Option<f64>| {
        v.map(|v| format!("{:.0}%", v * 100.0))
            .unwrap_or("—".into())
    };
    output::out(&fields(vec![
        (t("referrals", "références"), report.total.to_string()),
        (
            t("entered in error", "saisies par erreur"),
            report.entered_in_error.to_string(),
        ),
        (
            t(
                "dated before what they followed (left out of the timings)",
                "datées avant une étape déjà vue (hors délais)",
            ),
            report.clock_flagged.to_string(),
        ),
        (
            t("median first response", "délai médian de première réponse"),
            report
                .median_first_response_seconds
                .map(|s| {
                    humantime::format_duration(std::time::Duration::from_secs(s.max(0) as u64))
                        .to_string()
                })
                .unwrap_or("—".into()),
        ),
        (
            t("answered by the deadline", "répondues avant l'échéance"),
            pct(report.answered_before_deadline),
        ),
        (
            t("completion rate", "taux d'achèvement"),
            pct(report.completion_rate),
        ),
    ]))?;
    for (title, counts) in [
        (t("status", "statut"), &report.by_status),
        (t("dimension", "dimension"), &report.by_dimension),
        (t("category", "catégorie"), &report.by_category),
        (t("region", "région"), &report.by_region),
    ] {
        if counts.is_empty() {
            continue;
        }
        output::out("")?;
        output::out(&table(
            &[title, t("referrals", "références")],
            counts
                .iter()
                .map(|(k, v)| vec![k.clone(), v.to_string()])
                .collect(),
        ))?;
    }
    output::out(&crate::messages::said(
        format!(
            "\ncounts below {k} are written <{k}; x: withheld so they cannot be recomputed from the totals",
            k = report.min_count
        ),
        format!(
            "\nles nombres inférieurs à {k} sont écrits <{k} ; x : masqué pour qu'ils ne puissent pas être recalculés à partir des totaux",
            k = report.min_count
        ),
    ))?;
    if !report.withheld_tables.is_empty() {
        output::out(&format!(
            "{} {}",
            t(
                "too few referrals to publish:",
                "trop peu de références pour publier :"
            ),
            report.withheld_tables.join(", ")
        ))?;
    }
    if !report.by_organisation.is_empty() {
        output::out("")?;
        output::out(&table(
            &[
                t("organisation", "organisation"),
                t("sent", "envoyées"),
                t("received", "reçues"),
                t("completed", "achevées"),
            ],
            report
                .by_organisation
                .iter()
                .map(|(name, c)| {
                    vec![
                        name.clone(),
                        c.sent.to_string(),
                        c.received.to_string(),
                        c.completed.to_string(),
                    ]
                })
                .collect(),
        ))?;
    }
    Ok(())
}
