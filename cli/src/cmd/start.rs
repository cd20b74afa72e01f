//! `passerelle start`: the node in the foreground until Ctrl-C or SIGTERM.

use std::path::Path;

use anyhow::Context;
use clap::Args;
use passerelle_node::config::Config;
use passerelle_node::network::Multiaddr;
use passerelle_node::runtime;

use crate::client::{Outcome, read_config_file};
use crate::messages::{said, t};

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
    /// Do not serve the officers' web page.
    #[arg(long)]
    pub no_web: bool,
    /// Serve the web page on this address and port instead of `[web] listen` (default
    /// 127.0.0.1:4691; port 0 picks a free one).
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub web_listen: Option<String>,
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
    config.passphrase = crate::passphrase::unlock(data_dir)?;
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
    let file = read_config_file(data_dir)?;
    let mut web_section = file.web;
    if args.no_web {
        web_section.enabled = Some(false);
    }
    if let Some(listen) = &args.web_listen {
        web_section.listen = Some(listen.clone());
    }
    // Read before the node starts: a wrong address stops nothing half-way.
    let web_config = passerelle_web::WebConfig::from_section(&web_section, config.lang, data_dir)?;
    let notify_config =
        passerelle_web::notify::NotifyConfig::from_section(&file.notify, config.lang, data_dir)?;
    let metrics_address = passerelle_web::metrics::address(&file.metrics)?;
    let running = runtime::start(config)
        .await
        .with_context(|| format!("starting the node in {}", data_dir.display()))?;
    // The page's port taken (another node on this computer) does not stop the node: it
    // syncs and answers the command line; the page is reported as not served.
    let mut web_problem = None;
    let web = match web_config {
        Some(web_config) => match passerelle_web::serve(running.handle(), web_config).await {
            Ok(web) => Some(web),
            Err(e) => {
                web_problem = Some(e.to_string());
                None
            }
        },
        None => None,
    };
    let address_file = data_dir.join(passerelle_web::ADDRESS_FILE);
    match &web {
        Some(web) => {
            std::fs::write(&address_file, format!("{}\n", web.url()))
                .with_context(|| format!("writing {}", address_file.display()))?;
        }
        None => {
            let _ = std::fs::remove_file(&address_file);
        }
    }
    let org = running.handle().org_id();
    crate::output::say(&said(
        format!(
            "Passerelle node running for {} ({}).\nControl socket: {}",
            org,
            org.fingerprint(),
            running.control_socket().display()
        ),
        format!(
            "Nœud Passerelle en marche pour {} ({}).\nSocket de contrôle : {}",
            org,
            org.fingerprint(),
            running.control_socket().display()
        ),
    ));
    match (&web, &web_problem) {
        (Some(web), _) => {
            crate::output::say(&said(
                format!(
                    "Web page: {} (accounts: passerelle user add NAME --role officer)",
                    web.url()
                ),
                format!(
                    "Page web : {} (comptes : passerelle user add NOM --role officer)",
                    web.url()
                ),
            ));
            if let Some((fingerprint, made)) = web.certificate() {
                crate::output::say(&said(
                    format!(
                        "Web page certificate{} (SHA-256, for the officers to check in their browser):\n  {fingerprint}",
                        if made { ", made now in web-tls/" } else { "" }
                    ),
                    format!(
                        "Certificat de la page web{} (SHA-256, que les agents vérifient dans leur navigateur) :\n  {fingerprint}",
                        if made {
                            ", créé à l'instant dans web-tls/"
                        } else {
                            ""
                        }
                    ),
                ));
            }
        }
        (None, Some(problem)) => crate::output::say(&said(
            format!("Web page: NOT served: {problem}"),
            format!("Page web : NON servie : {problem}"),
        )),
        (None, None) => crate::output::say(t(
            "Web page: not served ([web] enabled = false or --no-web)",
            "Page web : non servie ([web] enabled = false ou --no-web)",
        )),
    }
    // Metrics that cannot be served (the port taken) do not stop the node either.
    let metrics = match metrics_address {
        Some(address) => {
            match passerelle_web::metrics::serve(
                running.handle(),
                running.libp2p_metrics(),
                address,
            )
            .await
            {
                Ok(metrics) => {
                    crate::output::say(&said(
                        format!(
                            "Metrics: http://{}/metrics (health: /health)",
                            metrics.address()
                        ),
                        format!(
                            "Métriques : http://{}/metrics (santé : /health)",
                            metrics.address()
                        ),
                    ));
                    Some(metrics)
                }
                Err(e) => {
                    crate::output::say(&said(
                        format!("Metrics: NOT served: {e}"),
                        format!("Métriques : NON servies : {e}"),
                    ));
                    None
                }
            }
        }
        None => None,
    };
    let notifier = notify_config.map(|mut notify| {
        notify.page = web.as_ref().map(|web| web.url());
        crate::output::say(&format!(
            "{}{}{}",
            t("Notifications:", "Notifications :"),
            notify
                .webhook
                .as_ref()
                .map(|url| format!(" webhook to {};", url.host_str().unwrap_or("?")))
                .unwrap_or_default(),
            notify
                .digest
                .as_ref()
                .map(|digest| format!(" {digest}"))
                .unwrap_or_default()
        ));
        passerelle_web::notify::start(running.handle(), notify)
    });
    crate::output::say(t("Press Ctrl-C to stop.", "Ctrl-C pour arrêter."));
    wait_for_stop_signal().await?;
    crate::output::say(t("Stopping…", "Arrêt…"));
    if let Some(notifier) = notifier {
        notifier.shutdown().await;
    }
    if let Some(metrics) = metrics {
        metrics.shutdown().await;
    }
    if let Some(web) = web {
        web.shutdown().await;
        let _ = std::fs::remove_file(&address_file);
    }
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
