//! Talking to the running node: its control socket (retrying while it is busy), its
//! configuration, and the replies shared by several commands.

use std::path::Path;

use anyhow::Context;
use passerelle_node::api;
use passerelle_node::api::{Call, ErrorKind, Request, Streamed};
use passerelle_node::config::{CONFIG_FILE, Config, ConfigFile};
use passerelle_node::control::{Client, ClientError};
use passerelle_node::document::Edit;
use passerelle_node::model::OrganisationRecord;
use passerelle_node::node::{Decision, DecisionReceipt, EditReceipt};

use crate::output;

/// Whether a command found what it was asked for (exit code 0) or nothing (exit code 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Success.
    Done,
    /// Nothing found.
    NothingFound,
}

impl Outcome {
    /// `Done` if something was found, else `NothingFound`.
    pub fn found(any: bool) -> Self {
        if any { Self::Done } else { Self::NothingFound }
    }
}

/// Reads `config.toml` (an absent file means defaults).
pub fn read_config_file(data_dir: &Path) -> anyhow::Result<ConfigFile> {
    let path = data_dir.join(CONFIG_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => ConfigFile::parse(&text).with_context(|| format!("reading {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(passerelle_node::control::ClientError::NotAllowed { path }.into())
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Reads `config.toml` (if any) and layers it over the defaults (no networking).
pub fn load_config(data_dir: &Path) -> anyhow::Result<Config> {
    Ok(Config::new(data_dir).with_file(&read_config_file(data_dir)?))
}

/// Sends a [`Call`] to the node of `data_dir` and reads its reply. A node that says it is
/// busy has done nothing: ask again, a little later each time.
pub async fn call<C: Call + Clone>(data_dir: &Path, request: C) -> anyhow::Result<C::Reply> {
    let writes = Into::<Request>::into(request.clone()).writes();
    retrying_busy(data_dir, writes, |mut client| {
        let request = request.clone();
        async move { client.call(request).await }
    })
    .await
}

/// Sends a [`Streamed`] request to the node of `data_dir` and reads the whole answer
/// (retrying while the node says it is busy, as [`call`]).
pub async fn collect<S: Streamed + Clone>(
    data_dir: &Path,
    request: S,
) -> anyhow::Result<(S::Head, Vec<S::Item>)> {
    retrying_busy(data_dir, false, |mut client| {
        let request = request.clone();
        async move { client.collect(request).await }
    })
    .await
}

/// Connects and runs `ask`, again while the node answers `busy` (it did nothing), a little
/// later each time. A write whose connection broke before its answer may or may not have
/// been made: said so.
async fn retrying_busy<T, F, Fut>(data_dir: &Path, writes: bool, ask: F) -> anyhow::Result<T>
where
    F: Fn(Client) -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    let mut pause = std::time::Duration::from_millis(100);
    loop {
        let answer = match Client::connect(data_dir).await {
            Ok(client) => ask(client).await,
            Err(e) => Err(e),
        };
        match answer {
            Err(ClientError::Api(e))
                if e.kind == ErrorKind::Busy && pause < std::time::Duration::from_secs(20) =>
            {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(ClientError::Io(e)) if writes => {
                return Err(anyhow::anyhow!(
                    "the connection to the node broke before it answered ({e}): the change may or may not have been made; check with `passerelle history` (or `passerelle referral show`) before trying again"
                ));
            }
            other => return Ok(other?),
        }
    }
}

/// The items of a [`Streamed`] request whose head says nothing.
pub async fn items<S: Streamed<Head = ()> + Clone>(
    data_dir: &Path,
    request: S,
) -> anyhow::Result<Vec<S::Item>> {
    Ok(collect(data_dir, request).await?.1)
}

pub async fn edit(
    data_dir: &Path,
    edit: Edit,
    json_out: bool,
    what: &str,
) -> anyhow::Result<Outcome> {
    let receipt: EditReceipt = call(data_dir, api::EditOwn { edit }).await?;
    if json_out {
        output::json(&receipt)?;
    } else if receipt.id.is_empty() {
        output::out(&format!("{what} (change {})", &receipt.change[..12]))?;
    } else {
        output::out(&format!(
            "{what} {} (change {})",
            receipt.id,
            &receipt.change[..12]
        ))?;
    }
    Ok(Outcome::Done)
}

pub async fn decide(
    data_dir: &Path,
    decision: Decision,
    json_out: bool,
) -> anyhow::Result<Outcome> {
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

/// Every organisation's record without its referral parts (the directory), by name.
pub async fn records(data_dir: &Path) -> anyhow::Result<Vec<OrganisationRecord>> {
    let mut records: Vec<OrganisationRecord> = items(
        data_dir,
        api::Records {
            directory_only: true,
        },
    )
    .await?;
    records.sort_by(|a, b| a.profile.name.cmp(&b.profile.name));
    Ok(records)
}

/// Applies `edits` one by one, with a progress bar on long imports (on a terminal).
pub async fn apply_edits(data_dir: &Path, edits: Vec<Edit>) -> anyhow::Result<()> {
    let bar = if edits.len() >= 20 {
        indicatif::ProgressBar::new(edits.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} signed edits ({eta} left)")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    for edit in edits {
        let _: EditReceipt = call(data_dir, api::EditOwn { edit }).await?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}

pub fn absolute(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    std::path::absolute(dir).with_context(|| format!("dir: {}", dir.display()))
}
