//! `passerelle network …`: create, join, show, ratify or amend the network.

use std::path::Path;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use passerelle_node::identity::OrgId;
use passerelle_node::keys::KeyFiles;
use passerelle_node::membership::{Amendment, Charter, NetworkId, Quorum};
use passerelle_node::network::Multiaddr;
use passerelle_node::node::{Decision, MembershipView, StatusReport};
use passerelle_node::reference::taxonomy::TAXONOMY_VERSION;
use passerelle_node::{api, node};

use crate::client::{Outcome, call, decide, load_config};
use crate::flags::parse_quorum;
use crate::messages::t;
use crate::output::{self, fields};

/// `passerelle network …`.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network with its charter (run with the node stopped). This organisation is
    /// a founder; the other founders join with the invitation and run `network ratify`.
    Create(NetworkCreateArgs),
    /// Join a network from an invitation (run with the node stopped), then `start`.
    Join {
        /// The invitation text a member gave (`passerelle network invite`).
        invitation: String,
    },
    /// Print an invitation for a new organisation: the network id and this node's addresses.
    Invite {
        /// Address others reach this node at (repeat), e.g. /dns4/node.example.cm/tcp/4690;
        /// default: the addresses it listens on.
        #[arg(long, value_name = "MULTIADDR")]
        address: Vec<Multiaddr>,
    },
    /// Show the network: charter, founders, members, open proposals.
    Show,
    /// Sign the charter (founders only).
    Ratify,
    /// Propose (or approve the open proposal of) a charter amendment.
    Amend(AmendArgs),
}

/// `passerelle network create`.
#[derive(Debug, Args)]
pub struct NetworkCreateArgs {
    /// The network's name.
    #[arg(long)]
    pub name: String,
    /// Another founding organisation's id (repeat); this organisation is always a founder.
    #[arg(long, value_name = "ORG-ID")]
    pub founder: Vec<OrgId>,
    /// Approvals needed to admit an organisation: a number ("2") or a fraction of the
    /// members ("1/2", "2/3").
    #[arg(long, default_value = "1/2", value_parser = parse_quorum)]
    pub admission: Quorum,
    /// Approvals needed to revoke a member (the member does not count).
    #[arg(long, default_value = "1/2", value_parser = parse_quorum)]
    pub revocation: Quorum,
    /// Approvals needed to amend the charter.
    #[arg(long, default_value = "2/3", value_parser = parse_quorum)]
    pub amendment: Quorum,
}

/// `passerelle network amend`.
#[derive(Debug, Args)]
pub struct AmendArgs {
    /// New name.
    #[arg(long)]
    pub name: Option<String>,
    /// New admission quorum.
    #[arg(long, value_parser = parse_quorum)]
    pub admission: Option<Quorum>,
    /// New revocation quorum.
    #[arg(long, value_parser = parse_quorum)]
    pub revocation: Option<Quorum>,
    /// New amendment quorum.
    #[arg(long, value_parser = parse_quorum)]
    pub amendment: Option<Quorum>,
}

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

pub async fn run(
    data_dir: &Path,
    command: NetworkCommand,
    json_out: bool,
) -> anyhow::Result<Outcome> {
    match command {
        NetworkCommand::Create(args) => {
            let mut config = load_config(data_dir)?;
            config.passphrase = crate::passphrase::unlock(data_dir)?;
            let identity = passerelle_node::identity::Identity::load_with(
                data_dir,
                config.passphrase.as_ref(),
            )?;
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
                output::out(&crate::messages::said(
                    format!(
                        "network {network} created; this organisation signed its charter.\nStart the node, then give the other founders an invitation (`passerelle network invite`): each joins and runs `passerelle network ratify`."
                    ),
                    format!(
                        "réseau {network} créé ; cette organisation a signé sa charte.\nDémarrez le nœud, puis donnez une invitation aux autres fondateurs (`passerelle network invite`) : chacun rejoint le réseau et lance `passerelle network ratify`."
                    ),
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
                output::out(&crate::messages::said(
                    format!(
                        "this node joins network {network} through {} peer(s).\nStart it (`passerelle start`); then, if you are a founder, `passerelle network ratify`, otherwise `passerelle member request`.",
                        peers.len()
                    ),
                    format!(
                        "ce nœud rejoint le réseau {network} par {} pair(s).\nDémarrez-le (`passerelle start`) ; puis, si vous êtes fondateur, `passerelle network ratify`, sinon `passerelle member request`.",
                        peers.len()
                    ),
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
                    t("network", "réseau"),
                    summary
                        .network_id
                        .clone()
                        .unwrap_or_else(|| "(none)".into()),
                ),
                (
                    t("name", "nom"),
                    summary.network_name.clone().unwrap_or_default(),
                ),
                (t("this node", "ce nœud"), summary.role.clone()),
                (t("members", "membres"), summary.members.to_string()),
                (
                    t("open proposals", "propositions ouvertes"),
                    summary.open_proposals.to_string(),
                ),
                (
                    t("requests received", "demandes reçues"),
                    summary.requests.to_string(),
                ),
            ];
            if let Some(charter) = &view.charter {
                rows.push((
                    t("founders", "fondateurs"),
                    charter.founders.len().to_string(),
                ));
                rows.push((
                    t("awaiting ratification", "ratification attendue de"),
                    view.awaiting_ratification
                        .iter()
                        .map(|f| f.fingerprint())
                        .collect::<Vec<_>>()
                        .join(", "),
                ));
                rows.push((
                    t("admission quorum", "quorum d'admission"),
                    charter.admission.to_string(),
                ));
                rows.push((
                    t("revocation quorum", "quorum de révocation"),
                    charter.revocation.to_string(),
                ));
                rows.push((
                    t("amendment quorum", "quorum d'amendement"),
                    charter.amendment.to_string(),
                ));
                rows.push((t("taxonomy", "taxonomie"), charter.taxonomy.clone()));
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
