//! The `passerelle` command. `start` runs a node; every other command is a thin client of
//! the running node's local control API (see `docs/cli.md`).

// Argument enums are built once per run; boxing their variants would only add noise.
#![allow(clippy::large_enum_variant)]

mod client;
mod cmd;
mod flags;
mod output;
mod present;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use passerelle_node::api::ErrorKind;
use passerelle_node::control::ClientError;

use client::Outcome;

// Argument enums are built once per run; boxing their variants would only add noise.
/// Passerelle: a node of the national referral network for returning migrants.
///
/// `passerelle start` runs this organisation's node; every other command talks to the
/// running node. Exit codes: 0 success, 1 nothing found, 2 error.
#[derive(Debug, Parser)]
#[command(name = "passerelle", version, propagate_version = true)]
pub struct Cli {
    /// Data folder of the node (keys, store, config). Default: the platform's data
    /// directory, e.g. ~/.local/share/passerelle.
    #[arg(long, global = true, env = "PASSERELLE_HOME", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Print machine-readable JSON instead of tables (shapes in docs/cli.md).
    #[arg(long, global = true)]
    pub json: bool,

    /// Language of labels and of the import's messages: fr or en (default: `[node] lang`
    /// of config.toml, else fr).
    #[arg(long, global = true, value_parser = flags::parse_lang, value_name = "fr|en")]
    pub lang: Option<passerelle_node::reference::Lang>,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create this organisation's identity, store and configuration in the data folder.
    Init(cmd::init::InitArgs),
    /// Run the node in the foreground until Ctrl-C or SIGTERM.
    Start(cmd::start::StartArgs),
    /// Show the connected peers.
    Peers,
    /// Show the node's identity, documents and store.
    Status,
    /// Show or change this organisation's profile.
    #[command(subcommand)]
    Org(cmd::org::OrgCommand),
    /// Manage this organisation's offices.
    #[command(subcommand)]
    Office(cmd::office::OfficeCommand),
    /// Manage this organisation's services.
    #[command(subcommand)]
    Service(cmd::service::ServiceCommand),
    /// Search the directory of services.
    #[command(subcommand)]
    Directory(cmd::directory::DirectoryCommand),
    /// Show the signed change log of an organisation's document.
    History(cmd::history::HistoryArgs),
    /// Create, join, show or ratify the network this node belongs to.
    #[command(subcommand)]
    Network(cmd::network::NetworkCommand),
    /// Membership: request admission, approve, revoke, list members and requests.
    #[command(subcommand)]
    Member(cmd::member::MemberCommand),
    /// Other nodes of this organisation (device keys): add, remove.
    #[command(subcommand)]
    Device(cmd::device::DeviceCommand),
    /// Referrals: find a service, send a returnee's case file, follow and answer referrals.
    #[command(subcommand)]
    Referral(cmd::referral::ReferralCommand),
    /// Figures: the referral board (the default; counts only, no personal data), or the
    /// actors by domain and area with the gaps (`report actors`).
    Report(cmd::report::ReportArgs),
    /// The live mapping in the formats the field reads: HSDS 3.0, a 3W table with HXL
    /// hashtags, GeoJSON.
    #[command(subcommand)]
    Export(cmd::export::ExportCommand),
    /// Bring an existing mapping in: this organisation's rows of a spreadsheet.
    #[command(subcommand)]
    Import(cmd::import::ImportCommand),
    /// The accounts of this node's web page: add, list, remove, passwd.
    #[command(subcommand)]
    User(cmd::user::UserCommand),
    /// Repair a damaged store (run with the node stopped): keep every record that can
    /// still be read and verified, set the damaged store aside, and let the node fetch what
    /// is missing from its peers at the next start.
    Repair(cmd::repair::RepairArgs),
    /// Run a local demonstration in a temporary folder, then clean up.
    Demo,
}

fn main() -> ExitCode {
    // A panic inside Automerge on malformed input from a peer is caught and logged as a
    // refusal (passerelle_node::automerge_guard): it is not printed as a crash.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !passerelle_node::automerge_guard::inside_guard() {
            default_hook(info);
        }
    }));
    let cli = Cli::parse();
    let default_filter = if matches!(cli.command, Command::Start(_)) {
        "info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::NothingFound) => ExitCode::from(1),
        Err(error) => {
            // A "not found" answer from the node is exit code 1, like an empty result.
            let not_found = error.downcast_ref::<ClientError>().is_some_and(
                |e| matches!(e, ClientError::Api(api) if api.kind == ErrorKind::NotFound),
            );
            eprintln!(
                "error: {}",
                passerelle_node::text::visible(&error.to_string())
            );
            for cause in error.chain().skip(1) {
                eprintln!(
                    "  caused by: {}",
                    passerelle_node::text::visible(&cause.to_string())
                );
            }
            ExitCode::from(if not_found { 1 } else { 2 })
        }
    }
}

fn default_data_dir() -> anyhow::Result<PathBuf> {
    dirs::data_dir()
        .map(|d| d.join("passerelle"))
        .context("no data directory on this platform: give --data-dir or set PASSERELLE_HOME")
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let data_dir = match cli.data_dir {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let json = cli.json;
    runtime.block_on(async move {
        let lang = match (&cli.command, cli.lang) {
            (_, Some(lang)) => lang,
            (Command::Init(_) | Command::Demo | Command::Repair(_), None) => Default::default(),
            (_, None) => client::load_config(&data_dir)?.lang,
        };
        match cli.command {
            Command::Init(args) => cmd::init::run(&data_dir, args, json),
            Command::Start(args) => cmd::start::run(&data_dir, args).await,
            Command::Peers => cmd::peers::run(&data_dir, json).await,
            Command::Status => cmd::status::run(&data_dir, json).await,
            Command::Org(command) => cmd::org::run(&data_dir, command, json, lang).await,
            Command::Office(command) => cmd::office::run(&data_dir, command, json, lang).await,
            Command::Service(command) => cmd::service::run(&data_dir, command, json, lang).await,
            Command::Directory(command) => {
                cmd::directory::run(&data_dir, command, json, lang).await
            }
            Command::History(args) => cmd::history::run(&data_dir, args, json).await,
            Command::Network(command) => cmd::network::run(&data_dir, command, json).await,
            Command::Member(command) => cmd::member::run(&data_dir, command, json).await,
            Command::Device(command) => cmd::device::run(&data_dir, command, json).await,
            Command::Referral(command) => cmd::referral::run(&data_dir, command, json).await,
            Command::Report(args) => cmd::report::run(&data_dir, args, json, lang).await,
            Command::Export(command) => cmd::export::run(&data_dir, command, lang, json).await,
            Command::Import(command) => cmd::import::run(&data_dir, command, json, lang).await,
            Command::User(command) => cmd::user::run(&data_dir, command, json).await,
            Command::Repair(args) => cmd::repair::run(&data_dir, args, json),
            Command::Demo => cmd::demo::run().await,
        }
    })
}
