//! `passerelle status`: the node's identity, documents, store and counters.

use std::path::Path;

use passerelle_node::api;
use passerelle_node::node::StatusReport;

use crate::client::{Outcome, call};
use crate::messages::{said, t};
use crate::output::{self, fields, table};

pub async fn run(data_dir: &Path, json_out: bool) -> anyhow::Result<Outcome> {
    let report: StatusReport = call(data_dir, api::Status {}).await?;
    if json_out {
        output::json(&report)?;
        return Ok(Outcome::Done);
    }
    let mut rows = vec![
        (t("organisation", "organisation"), report.org_name.clone()),
        (t("id", "identifiant"), report.org_id.clone()),
        (t("fingerprint", "empreinte"), report.fingerprint.clone()),
    ];
    if report.device_of.is_some() {
        rows.push((
            t("device key", "clé de l'appareil"),
            report.node_key.clone(),
        ));
    }
    rows.extend(vec![
        (t("encryption key", "clé de chiffrement"), report.encryption_key.clone()),
        (t("data folder", "dossier de données"), report.data_dir.clone()),
        (t("version", "version"), report.version.clone()),
        (t("uptime", "en marche depuis"), format!("{} s", report.uptime_seconds)),
        (
            t("store", "stockage"),
            format!("{} {}", report.store_bytes, t("bytes", "octets")),
        ),
        (
            t("last start", "dernier démarrage"),
            said(
                format!(
                    "{} ms (store opened in {} ms): {} documents from snapshots, {} rebuilt from their signed changes",
                    report.start.load_ms,
                    report.start.open_ms,
                    report.start.from_snapshots,
                    report.start.rebuilt
                ),
                format!(
                    "{} ms (stockage ouvert en {} ms) : {} documents depuis les instantanés, {} reconstruits depuis leurs changements signés",
                    report.start.load_ms,
                    report.start.open_ms,
                    report.start.from_snapshots,
                    report.start.rebuilt
                ),
            ),
        ),
        (t("store check", "vérification du stockage"), store_check_line(&report.store_check)),
        (
            t("peer id", "identifiant de pair"),
            if report.network.enabled {
                report.network.peer_id.clone()
            } else {
                t("(networking off)", "(réseau coupé)").into()
            },
        ),
        (t("listening on", "écoute sur"), report.network.listen_addrs.join(", ")),
        (t("reachability", "joignabilité"), output::reachability_line(&report.network)),
        (t("relays", "relais"), output::relays_line(&report.network)),
        (
            t("peers", "pairs"),
            format!(
                "{} ({} {})",
                report.network.peers.len(),
                report.network.peers.iter().filter(|p| p.relayed).count(),
                t("through a relay", "par un relais")
            ),
        ),
        (
            t("catch-up rounds", "rattrapages"),
            said(
                format!(
                    "{} settled by a digest (nothing differed), {} listed this node's heads",
                    report.network.sync_rounds_in_step, report.network.sync_rounds_listed
                ),
                format!(
                    "{} réglés par un condensé (rien ne différait), {} ont listé les têtes de ce nœud",
                    report.network.sync_rounds_in_step, report.network.sync_rounds_listed
                ),
            ),
        ),
        (
            t("network", "réseau"),
            report
                .membership
                .network_id
                .clone()
                .unwrap_or_else(|| {
                    t(
                        "(none: `passerelle network create` or `network join`)",
                        "(aucun : `passerelle network create` ou `network join`)",
                    )
                    .into()
                }),
        ),
        (t("role", "rôle"), report.membership.role.clone()),
        (t("members", "membres"), report.membership.members.to_string()),
        (t("pending changes", "changements en attente"), report.pending_changes.to_string()),
        (
            t("documents received whole", "documents reçus entiers"),
            report.documents_received_whole.to_string(),
        ),
        (
            t("rejected changes", "changements refusés"),
            if report.rejected_by_reason.is_empty() {
                report.rejected_changes.to_string()
            } else {
                format!(
                    "{} ({})",
                    report.rejected_changes,
                    report
                        .rejected_by_reason
                        .iter()
                        .map(|(code, n)| format!("{code}: {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
        ),
        (
            t("case files", "dossiers"),
            said(
                format!(
                    "{} held, {} waiting to be delivered, {} refused",
                    report.case_files_held, report.case_outbox, report.case_files_refused
                ),
                format!(
                    "{} détenus, {} en attente de remise, {} refusés",
                    report.case_files_held, report.case_outbox, report.case_files_refused
                ),
            ),
        ),
    ]);
    output::out(&fields(rows))?;
    let rows = report
        .documents
        .iter()
        .map(|d| {
            vec![
                d.id.clone(),
                d.name.clone(),
                d.changes.to_string(),
                d.heads
                    .iter()
                    .map(|h| h[..12].to_owned())
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        })
        .collect();
    output::out(&table(
        &[
            t("document", "document"),
            t("organisation", "organisation"),
            t("changes", "changements"),
            t("heads", "têtes"),
        ],
        rows,
    ))?;
    Ok(Outcome::Done)
}

/// One line on the background check of the store.
fn store_check_line(check: &passerelle_node::node::StoreCheckStatus) -> String {
    use passerelle_node::node::StoreCheckState as S;
    let r = &check.report;
    match check.state {
        S::NotRun => t(
            "not run yet (it runs in the background shortly after start)",
            "pas encore faite (elle tourne en arrière-plan peu après le démarrage)",
        )
        .into(),
        S::Running => t("running", "en cours").into(),
        S::Interrupted => t(
            "interrupted (the node is stopping)",
            "interrompue (le nœud s'arrête)",
        )
        .into(),
        S::Sound => said(
            format!(
                "sound: {} documents, {} changes, {} other records read and verified in {} ms",
                r.documents, r.changes, r.records, check.millis
            ),
            format!(
                "sain : {} documents, {} changements, {} autres enregistrements lus et vérifiés en {} ms",
                r.documents, r.changes, r.records, check.millis
            ),
        ),
        S::Damaged => {
            let damaged = r
                .damaged
                .iter()
                .map(|d| format!("{} ({})", d.record, d.reason))
                .collect::<Vec<_>>()
                .join("; ");
            said(
                format!(
                    "DAMAGED: {damaged} — stop the node and run `passerelle repair` (what peers hold is fetched again)"
                ),
                format!(
                    "ENDOMMAGÉ : {damaged} — arrêtez le nœud et lancez `passerelle repair` (ce que détiennent les pairs est recherché de nouveau)"
                ),
            )
        }
    }
}
