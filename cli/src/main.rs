//! The `passerelle` command. `start` runs a node; every other command is a thin client of
//! the running node's local control API (see `docs/cli.md`).

mod args;
mod backup;
mod cartography;
mod commands;
mod demo;
mod membership;
mod output;
mod referrals;
mod repair;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use passerelle_node::api::ErrorKind;
use passerelle_node::control::ClientError;

use args::{Cli, Command};
use commands::Outcome;

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
        let lang = match &cli.command {
            Command::Init(_) | Command::Demo | Command::Repair(_) => Default::default(),
            _ => commands::load_config(&data_dir)?.lang,
        };
        match cli.command {
            Command::Init(args) => commands::init(&data_dir, args, json),
            Command::Start(args) => commands::start(&data_dir, args).await,
            Command::Peers => commands::peers(&data_dir, json).await,
            Command::Status => commands::status(&data_dir, json).await,
            Command::Org(command) => commands::org(&data_dir, command, json, lang).await,
            Command::Office(command) => commands::office(&data_dir, command, json, lang).await,
            Command::Service(command) => commands::service(&data_dir, command, json, lang).await,
            Command::Directory(command) => {
                commands::directory(&data_dir, command, json, lang).await
            }
            Command::History(args) => commands::history(&data_dir, args, json).await,
            Command::Network(command) => membership::network(&data_dir, command, json).await,
            Command::Member(command) => membership::member(&data_dir, command, json).await,
            Command::Device(command) => membership::device(&data_dir, command, json).await,
            Command::Referral(command) => referrals::referral(&data_dir, command, json).await,
            Command::Report(args) => match args.what {
                None | Some(args::ReportCommand::Referrals) => {
                    referrals::report(&data_dir, json).await
                }
                Some(args::ReportCommand::Actors { csv, lang: chosen }) => {
                    cartography::actors(&data_dir, json, csv, chosen.unwrap_or(lang)).await
                }
            },
            Command::Export(command) => cartography::export(&data_dir, command, lang, json).await,
            Command::Import(command) => cartography::import(&data_dir, command, json).await,
            Command::Repair(args) => repair::run(&data_dir, args, json),
            Command::Demo => demo::run().await,
        }
    })
}
