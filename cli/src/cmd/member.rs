//! `passerelle member …`: admission requests, approvals, revocations, the member list.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use passerelle_node::api;
use passerelle_node::identity::{KeyId, OrgId, SigningSecret};
use passerelle_node::membership::{
    RotationStatement, SignedRotation, recovery_secret_from_text, recovery_secret_text,
};
use passerelle_node::node::{Decision, MembershipView};

use crate::client::{Outcome, call, decide};
use crate::messages::{said, t};
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
    /// Propose (or approve the open proposal of) replacing a member's organisation key,
    /// lost or stolen, by the key of its new node (made with `init --device-of ORG`); its
    /// id stays, its old key's later changes are refused.
    Rotate {
        /// The member's id.
        org: OrgId,
        /// The new node's key (the `node key` of its `passerelle status`).
        #[arg(long)]
        key: KeyId,
        /// Why, for every member to read.
        #[arg(long)]
        reason: String,
    },
    /// Make this organisation's offline recovery key and register it: its secret, written
    /// once to FILE and kept off this computer, can alone replace the organisation's key.
    RecoveryKey {
        /// Where to write the secret (never overwritten).
        #[arg(long, value_name = "FILE")]
        secret_out: PathBuf,
    },
    /// On the organisation's new node (made with `init --device-of ORG`, joined to the
    /// network): sign with the recovery key's secret the statement that gives the
    /// organisation this node's key; a member brings it with `member recover`.
    RecoveryStatement {
        /// The recovery key's secret.
        #[arg(long, value_name = "FILE")]
        secret_file: PathBuf,
        /// Where to write the statement (for a member to bring).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Bring a key rotation signed by an organisation's recovery key (the file of `member
    /// recovery-statement`): it takes effect without a quorum.
    Recover {
        /// The statement file.
        file: PathBuf,
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
        MemberCommand::Rotate { org, key, reason } => {
            decide(data_dir, Decision::RotateKey { org, key, reason }, json_out).await
        }
        MemberCommand::RecoveryKey { secret_out } => {
            let secret = SigningSecret::generate()?;
            crate::output::write_secret(&secret_out, &recovery_secret_text(&secret))?;
            decide(
                data_dir,
                Decision::SetRecovery {
                    key: secret.key_id(),
                },
                json_out,
            )
            .await
        }
        MemberCommand::RecoveryStatement { secret_file, out } => {
            let text = std::fs::read_to_string(&secret_file)
                .with_context(|| format!("secret_file: reading {}", secret_file.display()))?;
            let secret = recovery_secret_from_text(&text)
                .map_err(|e| anyhow::anyhow!(said(e.to_string(), e.fr())))?;
            let status: passerelle_node::node::StatusReport =
                call(data_dir, api::Status {}).await?;
            let view: MembershipView = call(data_dir, api::Membership {}).await?;
            let network = view
                .summary
                .network_id
                .as_deref()
                .context("this node is in no network: join it first (`passerelle network join`)")?
                .parse()
                .context("the network id")?;
            let statement = RotationStatement {
                network,
                org: status.org_id.parse().context("the organisation id")?,
                key: status.node_key.parse().context("the node key")?,
                created: passerelle_node::unix_now(),
            };
            let signed = SignedRotation::sign(&statement, &secret);
            let mut bytes = serde_json::to_vec_pretty(&signed)?;
            bytes.push(b'\n');
            output::write_new(&out, "out", &bytes, 0o644)?;
            if json_out {
                output::json(&statement)?;
            } else {
                output::out(&crate::messages::said(
                    format!(
                        "Statement written to {}: the key of {} becomes this node's key {}.\nGive it to any member, who runs: passerelle member recover {}",
                        out.display(),
                        statement.org.fingerprint(),
                        statement.key.fingerprint(),
                        out.display()
                    ),
                    format!(
                        "Déclaration écrite dans {} : la clé de {} devient la clé de ce nœud {}.\nDonnez-la à un membre, qui lance : passerelle member recover {}",
                        out.display(),
                        statement.org.fingerprint(),
                        statement.key.fingerprint(),
                        out.display()
                    ),
                ))?;
            }
            Ok(Outcome::Done)
        }
        MemberCommand::Recover { file } => {
            let bytes = std::fs::read(&file)
                .with_context(|| format!("file: reading {}", file.display()))?;
            let rotation: SignedRotation = serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "file: {} is not a recovery statement (written by `member recovery-statement`)",
                    file.display()
                )
            })?;
            decide(data_dir, Decision::Recover { rotation }, json_out).await
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
                            passerelle_node::membership::Action::Rotate { .. } => "rotate key",
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
            if !view.replaced_keys.is_empty() {
                let rows = view
                    .replaced_keys
                    .iter()
                    .map(|r| {
                        vec![
                            r.org.fingerprint(),
                            r.key.fingerprint(),
                            r.replaced_by.fingerprint(),
                            match r.how.as_str() {
                                "recovery" => t("by its recovery key", "par sa clé de secours"),
                                _ => t("by the members' quorum", "par le quorum des membres"),
                            }
                            .to_owned(),
                            r.keep.to_string(),
                        ]
                    })
                    .collect();
                output::out(t(
                    "\nreplaced organisation keys (same organisation id):",
                    "\nclés d'organisation remplacées (même identifiant d'organisation) :",
                ))?;
                output::out(&table(
                    &[
                        t("organisation", "organisation"),
                        t("old key", "ancienne clé"),
                        t("replaced by", "remplacée par"),
                        t("how", "comment"),
                        t("changes kept", "modifications gardées"),
                    ],
                    rows,
                ))?;
            }
            Ok(Outcome::Done)
        }
    }
}
