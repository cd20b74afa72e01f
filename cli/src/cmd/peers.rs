//! `passerelle peers`: the connected peers.

use std::path::Path;

use passerelle_node::api;
use passerelle_node::node::StatusReport;

use crate::client::{Outcome, call};
use crate::output::{self, fields, table};

pub async fn run(data_dir: &Path, json_out: bool) -> anyhow::Result<Outcome> {
    let report: StatusReport = call(data_dir, api::Status {}).await?;
    let network = report.network;
    if json_out {
        output::json(&network)?;
    } else if !network.enabled {
        eprintln!("networking is off on this node");
    } else {
        output::out(&fields(vec![
            ("peer id", network.peer_id.clone()),
            ("listening on", network.listen_addrs.join(", ")),
            ("reachability", output::reachability_line(&network)),
            ("relays", output::relays_line(&network)),
        ]))?;
        let rows = network
            .peers
            .iter()
            .map(|p| {
                vec![
                    p.fingerprint.clone().unwrap_or_else(|| p.peer_id.clone()),
                    if p.relayed { "relayed" } else { "direct" }.to_owned(),
                    p.addresses.join(", "),
                    p.last_sync
                        .map(output::time)
                        .unwrap_or_else(|| "never".into()),
                    p.score.map(|s| format!("{s:.1}")).unwrap_or_default(),
                    p.rejected.to_string(),
                ]
            })
            .collect();
        output::out(&table(
            &[
                "organisation",
                "path",
                "addresses",
                "last sync (UTC)",
                "score",
                "refused",
            ],
            rows,
        ))?;
    }
    Ok(Outcome::found(!network.peers.is_empty()))
}
