//! The `passerelle` command. `start` runs a node; every other command is a thin client of
//! the running node's local control API (see `docs/cli.md`).

// Argument enums are built once per run; boxing their variants would only add noise.
#![allow(clippy::large_enum_variant)]

mod client;
mod cmd;
mod flags;
mod help;
mod messages;
mod output;
mod passphrase;
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
    /// directory, e.g. ~/.local/share/passerelle, else the service's (/var/lib/passerelle).
    #[arg(long, global = true, env = "PASSERELLE_HOME", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Print machine-readable JSON instead of tables (shapes in docs/cli.md).
    #[arg(long, global = true)]
    pub json: bool,

    /// Language of messages, help and labels: fr or en (default: `[node] lang` of
    /// config.toml, else the locale, else fr).
    #[arg(long, global = true, value_parser = flags::parse_lang, value_name = "fr|en")]
    pub lang: Option<passerelle_node::reference::Lang>,

    /// How the log is written (on standard error): text for people, json (one object per
    /// line) for journald and log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "PASSERELLE_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// How the log is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per line, with its spans.
    Json,
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
    /// Membership: request admission, approve, revoke, replace a lost or stolen key, list
    /// members and requests.
    #[command(subcommand)]
    Member(cmd::member::MemberCommand),
    /// Other nodes of this organisation (device keys): add, remove, grant them case files.
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
    /// The audit log of case files, a chain sealed with this node's key: verify it, export
    /// it for an inspector.
    #[command(subcommand)]
    Audit(cmd::audit::AuditCommand),
    /// Backups of the case files sealed to a backup key kept off this computer: make the
    /// key, write a backup, restore one.
    #[command(subcommand)]
    Backup(cmd::backup::BackupCommand),
    /// The case files held here and when their retention period ends; `--run` destroys
    /// what is due now.
    Retention(cmd::retention::RetentionArgs),
    /// The accounts of this node's web page: add, list, remove, passwd.
    #[command(subcommand)]
    User(cmd::user::UserCommand),
    /// Repair a damaged store (run with the node stopped): keep every record that can
    /// still be read and verified, set the damaged store aside, and let the node fetch what
    /// is missing from its peers at the next start.
    Repair(cmd::repair::RepairArgs),
    /// Run a local demonstration in a temporary folder, then clean up.
    Demo,
    /// Print the completions of this command for a shell: bash, zsh, fish, elvish or
    /// powershell (e.g. `passerelle completions bash > /etc/bash_completion.d/passerelle`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page passerelle(1), or write it and one page per command
    /// (passerelle-referral(1), …) into a folder.
    Man {
        /// Write every page into this folder instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
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
    // The language is known before the arguments are read: the help and clap's own
    // errors are said in it.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let early = early_lang(&args);
    messages::set_lang(early);
    let cli = match help::command(early)
        .try_get_matches_from(&args)
        .and_then(|matches| <Cli as clap::FromArgMatches>::from_arg_matches(&matches))
    {
        Ok(cli) => cli,
        Err(error) => messages::clap_error(error, early),
    };
    let default_filter = if matches!(cli.command, Command::Start(_)) {
        "info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => log.init(),
        LogFormat::Json => {
            output::JSON_LOG.store(true, std::sync::atomic::Ordering::Relaxed);
            log.json()
                .with_current_span(true)
                .with_span_list(true)
                .init()
        }
    }
    let lang = resolve_lang(&cli);
    messages::set_lang(lang);
    match run(cli, lang) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::NothingFound) => ExitCode::from(1),
        Err(error) => {
            // A "not found" answer from the node is exit code 1, like an empty result.
            let not_found = error.downcast_ref::<ClientError>().is_some_and(
                |e| matches!(e, ClientError::Api(api) if api.kind == ErrorKind::NotFound),
            );
            let (word, cause_word) = messages::error_words(lang);
            let said = error
                .downcast_ref::<ClientError>()
                .and_then(|e| messages::client_error(e, lang))
                .unwrap_or_else(|| error.to_string());
            eprintln!("{word}{}", passerelle_node::text::visible(&said));
            for cause in error.chain().skip(1) {
                eprintln!(
                    "  {cause_word}{}",
                    passerelle_node::text::visible(&cause.to_string())
                );
            }
            ExitCode::from(if not_found { 1 } else { 2 })
        }
    }
}

/// The data folder of the node the Debian package runs as a service.
const SYSTEM_DATA_DIR: &str = "/var/lib/passerelle";

/// Without `--data-dir` or `PASSERELLE_HOME`: this user's own node's folder when there is
/// one, else the service's (`/var/lib/passerelle`, where the package installed one: its
/// administrators, in the group `passerelle`, reach its control socket), else this user's.
fn default_data_dir() -> anyhow::Result<PathBuf> {
    let own = dirs::data_dir().map(|d| d.join("passerelle"));
    let system = std::path::Path::new(SYSTEM_DATA_DIR);
    match own {
        Some(own) if own.exists() => Ok(own),
        _ if system.is_dir() => Ok(system.to_path_buf()),
        Some(own) => Ok(own),
        None => anyhow::bail!(
            "no data directory on this platform: give --data-dir or set PASSERELLE_HOME"
        ),
    }
}

/// `passerelle completions SHELL` and `passerelle man`: from the command's own definition.
fn describe(command: &Command, lang: passerelle_node::reference::Lang) -> anyhow::Result<Outcome> {
    match command {
        Command::Completions { shell } => {
            let mut text = Vec::new();
            clap_complete::generate(*shell, &mut help::command(lang), "passerelle", &mut text);
            output::raw(&text)?;
        }
        Command::Man { dir: Some(dir) } => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(help::command(lang), dir)
                .with_context(|| format!("writing the manual pages into {}", dir.display()))?;
        }
        Command::Man { dir: None } => {
            let mut page = Vec::new();
            clap_mangen::Man::new(help::command(lang))
                .render(&mut page)
                .context("writing the manual page")?;
            output::raw(&page)?;
        }
        _ => {}
    }
    Ok(Outcome::Done)
}

/// The language of labels and messages: `--lang`, else `[node] lang` of the node's
/// `config.toml`, else the locale, else French.
fn resolve_lang(cli: &Cli) -> passerelle_node::reference::Lang {
    lang_for(cli.lang, cli.data_dir.clone(), command_name(&cli.command))
}

/// The name of `command`, as typed.
fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Init(_) => "init",
        Command::Demo => "demo",
        Command::Repair(_) => "repair",
        Command::Completions { .. } => "completions",
        Command::Man { .. } => "man",
        _ => "",
    }
}

/// The language: `explicit` (`--lang`), else `[node] lang` of the node's `config.toml`
/// (not for the commands that make or mend a folder, or describe the command), else the
/// locale, else French.
fn lang_for(
    explicit: Option<passerelle_node::reference::Lang>,
    data_dir: Option<PathBuf>,
    command: &str,
) -> passerelle_node::reference::Lang {
    if let Some(lang) = explicit {
        return lang;
    }
    let configured = match command {
        "init" | "demo" | "repair" | "completions" | "man" => None,
        _ => data_dir
            .or_else(|| std::env::var_os("PASSERELLE_HOME").map(PathBuf::from))
            .or_else(|| default_data_dir().ok())
            .and_then(|dir| client::read_config_file(&dir).ok())
            .and_then(|file| file.node.lang),
    };
    configured
        .or_else(messages::locale_lang)
        .unwrap_or_default()
}

/// The language, from the arguments as typed, before clap reads them (for the help and
/// clap's errors): `--lang`, `--data-dir` and the command's name.
fn early_lang(args: &[std::ffi::OsString]) -> passerelle_node::reference::Lang {
    let mut explicit = None;
    let mut data_dir = None;
    let mut command = None;
    let mut words = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned());
    while let Some(word) = words.next() {
        match word.as_str() {
            "--" => break,
            "--lang" => explicit = words.next(),
            "--data-dir" => data_dir = words.next(),
            "--log-format" => {
                words.next();
            }
            _ => {
                if let Some(value) = word.strip_prefix("--lang=") {
                    explicit = Some(value.to_owned());
                } else if let Some(value) = word.strip_prefix("--data-dir=") {
                    data_dir = Some(value.to_owned());
                } else if !word.starts_with('-') && command.is_none() {
                    command = Some(word);
                }
            }
        }
    }
    lang_for(
        explicit.and_then(|lang| lang.parse().ok()),
        data_dir.map(PathBuf::from),
        command.as_deref().unwrap_or(""),
    )
}

fn run(cli: Cli, lang: passerelle_node::reference::Lang) -> anyhow::Result<Outcome> {
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
            Command::Backup(command) => cmd::backup::run(&data_dir, command, json).await,
            Command::Retention(args) => cmd::retention::run(&data_dir, args, json).await,
            Command::Audit(command) => cmd::audit::run(&data_dir, command, json, lang).await,
            Command::Repair(args) => cmd::repair::run(&data_dir, args, json),
            Command::Demo => cmd::demo::run().await,
            command @ (Command::Completions { .. } | Command::Man { .. }) => {
                describe(&command, lang)
            }
        }
    })
}
