//! `passerelle start`: the node in the foreground until Ctrl-C or SIGTERM.

use std::path::Path;

use anyhow::Context;
use clap::Args;
use passerelle_node::config::Config;
use passerelle_node::network::Multiaddr;
use passerelle_node::runtime;

use crate::client::{Outcome, read_config_file};

/// `passerelle start`.
#[derive(Debug, Args, Default)]
pub struct StartArgs {
    /// Address to listen on (repeat for several); replaces `[network] listen` of the config.
    /// Default: /ip4/0.0.0.0/tcp/4690.
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<Multiaddr>,
    /// Peer to connect to and keep connected to (repeat for several); added to
    /// `[network] peers` of the config. E.g. /ip4/192.0.2.10/tcp/4690 or /dns4/node.example.cm/tcp/4690.
    #[arg(long, value_name = "MULTIADDR")]
    pub peer: Vec<Multiaddr>,
    /// Run without networking (local directory only).
    #[arg(long)]
    pub no_network: bool,
    /// Do not look for peers on the local network (mDNS).
    #[arg(long)]
    pub no_mdns: bool,
    /// Do not ask the router to open a port (UPnP).
    #[arg(long)]
    pub no_upnp: bool,
    /// Verify every stored signed change and rebuild every document from them before
    /// serving (slower: about 15 s for a national network of 300,000 changes), instead of
    /// starting from the snapshots that hold all of them.
    #[arg(long)]
    pub verify_store: bool,
}

/// The configuration `passerelle start` runs with: defaults, file, then flags.
pub fn start_config(data_dir: &Path, args: &StartArgs) -> anyhow::Result<Config> {
    let file = read_config_file(data_dir)?;
    let mut config = Config::new(data_dir).with_file(&file);
    config.verify_store = args.verify_store;
    if !args.no_network {
        let mut network = Config::network_from_file(&file)?.unwrap_or_default();
        if !args.listen.is_empty() {
            network.listen = args.listen.clone();
        }
        network.peers.extend(args.peer.iter().cloned());
        if args.no_mdns {
            network.mdns = false;
        }
        if args.no_upnp {
            network.upnp = false;
        }
        config.network = Some(network);
    }
    Ok(config)
}

pub async fn run(data_dir: &Path, args: StartArgs) -> anyhow::Result<Outcome> {
    let config = start_config(data_dir, &args)?;
    let running = runtime::start(config)
        .await
        .with_context(|| format!("starting the node in {}", data_dir.display()))?;
    let org = running.handle().org_id();
    eprintln!(
        "Passerelle node running for {} ({}).\nControl socket: {}\nPress Ctrl-C to stop.",
        org,
        org.fingerprint(),
        running.control_socket().display()
    );
    wait_for_stop_signal().await?;
    eprintln!("Stopping…");
    running.shutdown().await?;
    Ok(Outcome::Done)
}

async fn wait_for_stop_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = term.recv() => {}
    }
    Ok(())
}
