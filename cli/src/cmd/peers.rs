//! `passerelle peers`: the connected peers.

use std::path::Path;

use passerelle_node::api;
use passerelle_node::node::StatusReport;

use crate::client::{Outcome, call};
use crate::messages::t;
use crate::output::{self, fields, table};

pub async fn run(data_dir: &Path, json_out: bool) -> anyhow::Result<Outcome> {
    let report: StatusReport = call(data_dir, api::Status {}).await?;
    let network = report.network;
    if json_out {
        output::json(&network)?;
    } else if !network.enabled {
        eprintln!(
            "{}",
            crate::messages::t(
                "networking is off on this node",
                "le réseau est coupé sur ce nœud"
            )
        );
    } else {
        output::out(&fields(vec![
            (t("peer id", "identifiant de pair"), network.peer_id.clone()),
            (
                t("listening on", "écoute sur"),
                network.listen_addrs.join(", "),
            ),
            (
                t("reachability", "joignabilité"),
                output::reachability_line(&network),
            ),
            (t("relays", "relais"), output::relays_line(&network)),
        ]))?;
        let rows = network
            .peers
            .iter()
            .map(|p| {
                vec![
                    p.fingerprint.clone().unwrap_or_else(|| p.peer_id.clone()),
                    if p.relayed {
                        t("relayed", "par relais")
                    } else {
                        t("direct", "direct")
                    }
                    .to_owned(),
                    p.addresses.join(", "),
                    p.last_sync
                        .map(output::time)
                        .unwrap_or_else(|| t("never", "jamais").into()),
                    p.score.map(|s| format!("{s:.1}")).unwrap_or_default(),
                    p.rejected.to_string(),
                ]
            })
            .collect();
        output::out(&table(
            &[
                t("organisation", "organisation"),
                t("path", "chemin"),
                t("addresses", "adresses"),
                t("last sync (UTC)", "dernière synchro (UTC)"),
                t("score", "score"),
                t("refused", "refusés"),
            ],
            rows,
        ))?;
    }
    Ok(Outcome::found(!network.peers.is_empty()))
}
