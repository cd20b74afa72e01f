//! `passerelle network …`, `passerelle member …` and `passerelle device …`.

use std::path::Path;

use anyhow::{Context, bail};
use passerelle_node::api;
use passerelle_node::keys::KeyFiles;
use passerelle_node::membership::{Amendment, Charter, NetworkId};
use passerelle_node::node::{self, Decision, DecisionReceipt, MembershipView, StatusReport};
use passerelle_node::reference::taxonomy::TAXONOMY_VERSION;

use crate::args::{DeviceCommand, MemberCommand, NetworkCommand};
use crate::commands::{Outcome, call, load_config};
use crate::output::{self, fields, table};

/// Prefix of invitation texts.
const INVITATION_PREFIX: &str = "passerelle-invite:";

/// An invitation: `passerelle-invite:<network id>@<multiaddr>,<multiaddr>…`, or a bare
/// network id (peers then come from `--peer`, the config file or mDNS).
fn parse_invitation(text: &str) -> anyhow::Result<(NetworkId, Vec<String>)> {
    let text = text.trim();
    if let Ok(network) = text.parse::<NetworkId>() {
        return Ok((network, Vec::new()));
    }
    let rest = text.strip_prefix(INVITATION_PREFIX).with_context(|| {
        format!("invitation: {text:?} is neither a network id nor starts with {INVITATION_PREFIX:?} (copy the whole line `passerelle network invite` printed)")
    })?;
    let (network, peers) = rest.split_once('@').unwrap_or((rest, ""));
    let network: NetworkId = network.parse()?;
    let mut addresses = Vec::new();
    for peer in peers.split(',').filter(|p| !p.trim().is_empty()) {
        let address: passerelle_node::network::Multiaddr = peer
            .trim()
            .parse()
            .with_context(|| format!("invitation: peer address {peer:?} is not a multiaddr"))?;
        addresses.push(address.to_string());
    }
    if addresses.is_empty() {
        bail!("invitation: it names no peer address to connect to");
    }
    Ok((network, addresses))
}

async fn decide(data_dir: &Path, decision: Decision, json_out: bool) -> anyhow::Result<Outcome> {
    let receipt: DecisionReceipt = call(data_dir, api::Decide { decision }).await?;
    if json_out {
        output::json(&receipt)?;
    } else if receipt.change.is_empty() {
        output::out(&receipt.message)?;
    } else {
        output::out(&format!(
            "{} (change {})",
            receipt.message,
            &receipt.change[..12]
        ))?;
    }
    Ok(Outcome::Done)
}

pub async fn network(
    data_dir: &Path,
    command: NetworkCommand,
    json_out: bool,
) -> anyhow::Result<Outcome> {
    match command {
        NetworkCommand::Create(args) => {
            let config = load_config(data_dir)?;
            let identity = passerelle_node::identity::Identity::load(data_dir)?;
            let mut founders = vec![identity.org_id()];
            founders.extend(args.founder.iter().filter(|f| **f != identity.org_id()));
            let charter = Charter {
                name: args.name,
                founders,
                admission: args.admission,
                revocation: args.revocation,
                amendment: args.amendment,
                taxonomy: TAXONOMY_VERSION.into(),
            };
            let network = node::create_network(&config, charter)?;
            if json_out {
                output::json(&serde_json::json!({ "network_id": network.to_string() }))?;
            } else {
                output::out(&format!(
                    "network {network} created; this organisation signed its charter.\nStart the node, then give the other founders an invitation (`passerelle network invite`): each joins and runs `passerelle network ratify`."
                ))?;
            }
            Ok(Outcome::Done)
        }
        NetworkCommand::Join { invitation } => {
            let (network, peers) = parse_invitation(&invitation)?;
            let config = load_config(data_dir)?;
            node::join_network(&config, network, &peers)?;
            if json_out {
                output::json(
                    &serde_json::json!({ "network_id": network.to_string(), "peers": peers }),
                )?;
            } else {
                output::out(&format!(
                    "this node joins network {network} through {} peer(s).\nStart it (`passerelle start`); then, if you are a founder, `passerelle network ratify`, otherwise `passerelle member request`.",
                    peers.len()
                ))?;
            }
            Ok(Outcome::Done)
        }
        NetworkCommand::Invite { address } => {
            let status: StatusReport = call(data_dir, api::Status {}).await?;
            let Some(network) = status.membership.network_id.clone() else {
                bail!("network: this node is in no network yet");
            };
            if !status.network.enabled {
                bail!(
                    "network: this node runs without networking; start it with networking to invite"
                );
            }
            let peer = &status.network.peer_id;
            let mut addresses: Vec<String> = if address.is_empty() {
                let mut listen = status.network.listen_addrs.clone();
                // Addresses others can reach first; loopback last.
                listen.sort_by_key(|a| a.contains("/127.") || a.contains("/::1/"));
                listen
            } else {
                address.iter().map(|a| a.to_string()).collect()
            };
            for a in &mut addresses {
                if !a.contains("/p2p/") {
                    a.push_str(&format!("/p2p/{peer}"));
                }
            }
            let invitation = format!("{INVITATION_PREFIX}{network}@{}", addresses.join(","));
            if json_out {
                output::json(&serde_json::json!({ "invitation": invitation }))?;
            } else {
                output::out(&invitation)?;
            }
            Ok(Outcome::Done)
        }
        NetworkCommand::Show => {
            let view: MembershipView = call(data_dir, api::Membership {}).await?;
            if json_out {
                output::json(&view)?;
                return Ok(Outcome::Done);
            }
            let summary = &view.summary;
            let mut rows = vec![
                (
                    "network",
                    summary
                        .network_id
                        .clone()
                        .unwrap_or_else(|| "(none)".into()),
                ),
                ("name", summary.network_name.clone().unwrap_or_default()),
                ("this node", summary.role.clone()),
                ("members", summary.members.to_string()),
                ("open proposals", summary.open_proposals.to_string()),
                ("requests received", summary.requests.to_string()),
            ];
            if let Some(charter) = &view.charter {
                rows.push(("founders", charter.founders.len().to_string()));
                rows.push((
                    "awaiting ratification",
                    view.awaiting_ratification
                        .iter()
                        .map(|f| f.fingerprint())
                        .collect::<Vec<_>>()
                        .join(", "),
                ));
                rows.push(("admission quorum", charter.admission.to_string()));
                rows.push(("revocation quorum", charter.revocation.to_string()));
                rows.push(("amendment quorum", charter.amendment.to_string()));
                rows.push(("taxonomy", charter.taxonomy.clone()));
            }
            output::out(&fields(rows))?;
            Ok(Outcome::Done)
        }
        NetworkCommand::Ratify => decide(data_dir, Decision::Ratify, json_out).await,
        NetworkCommand::Amend(args) => {
            let amendment = Amendment {
                name: args.name,
                admission: args.admission,
                revocation: args.revocation,
                amendment: args.amendment,
                taxonomy: None,
            };
            if amendment == Amendment::default() {
                bail!("amend: give at least one of --name, --admission, --revocation, --amendment");
            }
            decide(data_dir, Decision::Amend { amendment }, json_out).await
        }
    }
}

pub async fn member(
    data_dir: &Path,
    command: MemberCommand,
    json_out: bool,
) -> anyhow::Result<Outcome> {
    match command {
        MemberCommand::Request { message } => {
            decide(data_dir, Decision::Request { message }, json_out).await
        }
        MemberCommand::Approve { org } => {
            decide(data_dir, Decision::Approve { org }, json_out).await
        }
        MemberCommand::Revoke { org, reason } => {
            decide(data_dir, Decision::Revoke { org, reason }, json_out).await
        }
        MemberCommand::List => {
            let view: MembershipView = call(data_dir, api::Membership {}).await?;
            if json_out {
                output::json(&view)?;
                return Ok(Outcome::Done);
            }
            let mut rows: Vec<Vec<String>> = view
                .members
                .iter()
                .map(|m| {
                    vec![
                        m.org.fingerprint(),
                        m.name.clone(),
                        if m.founder {
                            "founder".into()
                        } else {
                            "member".into()
                        },
                        m.org.to_string(),
                    ]
                })
                .collect();
            rows.extend(view.former_members.iter().map(|m| {
                vec![
                    m.org.fingerprint(),
                    m.name.clone(),
                    format!("revoked: {}", m.reason),
                    m.org.to_string(),
                ]
            }));
            output::out(&table(&["fingerprint", "name", "status", "id"], rows))?;
            if !view.proposals.is_empty() {
                let rows = view
                    .proposals
                    .iter()
                    .map(|p| {
                        let kind = match &p.action {
                            passerelle_node::membership::Action::Admit { .. } => "admit",
                            passerelle_node::membership::Action::Revoke { .. } => "revoke",
                            passerelle_node::membership::Action::Amend { .. } => "amend",
                        };
                        vec![
                            kind.to_owned(),
                            p.subject_name.clone(),
                            format!("{}/{}", p.approvals.len(), p.required),
                            p.subject.clone(),
                        ]
                    })
                    .collect();
                output::out("\nopen proposals (approve with `passerelle member approve <id>`):")?;
                output::out(&table(&["proposal", "about", "approvals", "id"], rows))?;
            }
            if !view.requests.is_empty() {
                let rows = view
                    .requests
                    .iter()
                    .map(|r| {
                        vec![
                            r.fingerprint.clone(),
                            r.name.clone(),
                            r.message.clone(),
                            r.org.to_string(),
                        ]
                    })
                    .collect();
                output::out(
                    "\nadmission requests received (propose with `passerelle member approve <id>`):",
                )?;
                output::out(&table(&["fingerprint", "name", "message", "id"], rows))?;
            }
            if !view.devices.is_empty() {
                let rows = view
                    .devices
                    .iter()
                    .map(|d| {
                        vec![
                            d.key.fingerprint(),
                            d.org.fingerprint(),
                            d.label.clone(),
                            if d.withdrawn_keep.is_some() {
                                "withdrawn".into()
                            } else {
                                "active".into()
                            },
                        ]
                    })
                    .collect();
                output::out("\ndevices:")?;
                output::out(&table(&["device", "organisation", "label", "status"], rows))?;
            }
            Ok(Outcome::Done)
        }
    }
}

pub async fn device(
    data_dir: &Path,
    command: DeviceCommand,
    json_out: bool,
) -> anyhow::Result<Outcome> {
    match command {
        DeviceCommand::Add { key, label } => {
            decide(
                data_dir,
                Decision::AddDevice { device: key, label },
                json_out,
            )
            .await
        }
        DeviceCommand::Remove { key } => {
            decide(data_dir, Decision::RemoveDevice { device: key }, json_out).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invitations_parse_and_name_what_is_wrong() {
        let id = "a".repeat(32);
        let (network, peers) = parse_invitation(&format!(
            "{INVITATION_PREFIX}{id}@/ip4/127.0.0.1/tcp/4690,/dns4/node.example.cm/tcp/4690"
        ))
        .unwrap();
        assert_eq!(network.to_string(), id);
        assert_eq!(peers.len(), 2);
        assert!(
            parse_invitation("hello")
                .unwrap_err()
                .to_string()
                .contains("invitation")
        );
        assert!(
            parse_invitation(&format!("{INVITATION_PREFIX}{id}@"))
                .unwrap_err()
                .to_string()
                .contains("no peer")
        );
        assert!(
            parse_invitation(&format!("{INVITATION_PREFIX}{id}@not-an-address"))
                .unwrap_err()
                .to_string()
                .contains("multiaddr")
        );
    }
}
