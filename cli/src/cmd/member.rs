//! `passerelle member …`: admission requests, approvals, revocations, the member list.

use std::path::Path;

use clap::Subcommand;
use passerelle_node::api;
use passerelle_node::identity::OrgId;
use passerelle_node::node::{Decision, MembershipView};

use crate::client::{Outcome, call, decide};
use crate::messages::t;
use crate::output::{self, table};

/// `passerelle member …`.
#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Ask to join (on a candidate's node): the request goes to every member node this
    /// node connects to, until the members decide.
    Request {
        /// A word to the members (who you are, who invited you).
        #[arg(long, default_value = "")]
        message: String,
    },
    /// Approve an organisation's admission (proposing it if this node holds its request)
    /// or the open proposal about it.
    Approve {
        /// The organisation's id.
        org: OrgId,
    },
    /// Propose (or approve the open proposal of) a member's revocation.
    Revoke {
        /// The member's id.
        org: OrgId,
        /// Why, for every member to read.
        #[arg(long)]
        reason: String,
    },
    /// List members, former members, open proposals and admission requests received.
    List,
}

pub async fn run(
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
            output::out(&table(
                &[
                    t("fingerprint", "empreinte"),
                    t("name", "nom"),
                    t("status", "statut"),
                    t("id", "identifiant"),
                ],
                rows,
            ))?;
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
                output::out(t(
                    "\nopen proposals (approve with `passerelle member approve <id>`):",
                    "\npropositions ouvertes (approuver avec `passerelle member approve <id>`) :",
                ))?;
                output::out(&table(
                    &[
                        t("proposal", "proposition"),
                        t("about", "au sujet de"),
                        t("approvals", "approbations"),
                        t("id", "identifiant"),
                    ],
                    rows,
                ))?;
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
                output::out(t(
                    "\nadmission requests received (propose with `passerelle member approve <id>`):",
                    "\ndemandes d'admission reçues (proposer avec `passerelle member approve <id>`) :",
                ))?;
                output::out(&table(
                    &[
                        t("fingerprint", "empreinte"),
                        t("name", "nom"),
                        t("message", "message"),
                        t("id", "identifiant"),
                    ],
                    rows,
                ))?;
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
                                t("withdrawn", "retiré").into()
                            } else if d.case_key.is_some() {
                                t("active, receives case files", "actif, reçoit des dossiers")
                                    .into()
                            } else {
                                t("active", "actif").into()
                            },
                        ]
                    })
                    .collect();
                output::out(t("\ndevices:", "\nappareils :"))?;
                output::out(&table(
                    &[
                        t("device", "appareil"),
                        t("organisation", "organisation"),
                        t("label", "libellé"),
                        t("status", "statut"),
                    ],
                    rows,
                ))?;
            }
            Ok(Outcome::Done)
        }
    }
}
