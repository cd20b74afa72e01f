//! `passerelle user …`: the accounts of the people who use this node's web page (each with a
//! role; passwords hashed by the node with Argon2id and never shown).

use std::io::BufRead;
use std::path::Path;

use clap::Subcommand;
use passerelle_node::accounts::{Account, MIN_PASSWORD_CHARS, Password, Role};
use passerelle_node::api;

use crate::client::{Outcome, call};
use crate::messages::t;
use crate::output::{self, table};

/// `passerelle user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Make an account: the password is asked twice on the terminal, or read from the
    /// first line of standard input with --password-stdin.
    Add {
        /// Its name (letters, digits, '.', '_', '-').
        name: String,
        /// What it may do: admin (also edits this organisation's services and decides on
        /// membership), officer (refers, reads case files, answers referrals), viewer (reads
        /// the directory, the board and the reports; never a case file).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the accounts.
    List,
    /// Remove an account (its sessions end at their next request).
    Remove {
        /// Its name.
        name: String,
    },
    /// Set an account's password.
    Passwd {
        /// Its name.
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
}

/// The password: from standard input's first line, or asked twice on the terminal.
fn password(from_stdin: bool) -> anyhow::Result<Password> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok(Password::new(line.trim_end_matches(['\r', '\n'])));
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        anyhow::bail!(
            "password: standard input is not a terminal; pass --password-stdin and write the password on it"
        );
    }
    let first = rpassword::prompt_password(format!(
        "Password (at least {MIN_PASSWORD_CHARS} characters): "
    ))?;
    let again = rpassword::prompt_password("Again: ")?;
    if first != again {
        anyhow::bail!("password: the two do not match; nothing was changed");
    }
    Ok(Password::new(first))
}

fn when(seconds: i64) -> String {
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds.max(0) as u64),
    )
    .to_string()
}

pub async fn run(data_dir: &Path, command: UserCommand, json: bool) -> anyhow::Result<Outcome> {
    match command {
        UserCommand::Add {
            name,
            role,
            password_stdin,
        } => {
            let password = password(password_stdin)?;
            let account: Account = call(
                data_dir,
                api::UserAdd {
                    name,
                    role,
                    password,
                },
            )
            .await?;
            if json {
                output::json(&account)?;
            } else {
                output::out(&crate::messages::said(
                    format!(
                        "account {} ({}) made: it signs in on this node's web page",
                        account.name, account.role
                    ),
                    format!(
                        "compte {} ({}) créé : il se connecte à la page web de ce nœud",
                        account.name, account.role
                    ),
                ))?;
            }
        }
        UserCommand::List => {
            let accounts: Vec<Account> = call(data_dir, api::UserList {}).await?;
            if json {
                output::json(&accounts)?;
            } else if !accounts.is_empty() {
                output::out(&table(
                    &[
                        t("name", "nom"),
                        t("role", "rôle"),
                        t("made", "créé"),
                        t("password set", "mot de passe défini"),
                    ],
                    accounts
                        .iter()
                        .map(|a| {
                            vec![
                                a.name.clone(),
                                a.role.to_string(),
                                when(a.created),
                                when(a.password_set),
                            ]
                        })
                        .collect(),
                ))?;
            }
            return Ok(Outcome::found(!accounts.is_empty()));
        }
        UserCommand::Remove { name } => {
            let () = call(data_dir, api::UserRemove { name: name.clone() }).await?;
            if json {
                output::json(&serde_json::json!({ "removed": name }))?;
            } else {
                output::out(&crate::messages::said(
                    format!("account {name} removed"),
                    format!("compte {name} supprimé"),
                ))?;
            }
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            let password = password(password_stdin)?;
            let () = call(
                data_dir,
                api::UserPassword {
                    name: name.clone(),
                    password,
                },
            )
            .await?;
            if json {
                output::json(&serde_json::json!({ "password_set": name }))?;
            } else {
                output::out(&crate::messages::said(
                    format!("password of {name} set"),
                    format!("mot de passe de {name} défini"),
                ))?;
            }
        }
    }
    Ok(Outcome::Done)
}
