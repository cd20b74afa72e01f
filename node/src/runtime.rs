//! The wiring: starts a node's parts and stops them in order. The only module that knows
//! them all (see docs/architecture.md, "Layers").
//!
//! Rules:
//! - Start: the documents actor (its store opened and every document loaded), then the
//!   network, then the control socket, then housekeeping and the store check; a part that
//!   fails to start stops the ones started before it.
//! - Stop: the store check, the control socket, housekeeping, the network, then the actor
//!   (final snapshots) and the store.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::Config;
use crate::network::Network;
use crate::node::{NodeError, NodeHandle, StartedActor};

/// A node that runs: its handle, and what [`RunningNode::shutdown`] needs to stop it.
#[derive(Debug)]
pub struct RunningNode {
    handle: NodeHandle,
    /// The background check of the store, and how to stop it.
    store_check: Option<(
        std::thread::JoinHandle<()>,
        Arc<std::sync::atomic::AtomicBool>,
    )>,
    stop_control: watch::Sender<bool>,
    control_task: tokio::task::JoinHandle<()>,
    housekeeping: tokio::task::JoinHandle<()>,
    actor_thread: Option<std::thread::JoinHandle<()>>,
    network: Option<Network>,
    socket: PathBuf,
    registry: Arc<libp2p::metrics::Registry>,
    store_dir: PathBuf,
}

impl RunningNode {
    /// A handle to send commands.
    pub fn handle(&self) -> NodeHandle {
        self.handle.clone()
    }

    /// libp2p's metrics of this node's network (empty without networking).
    pub fn libp2p_metrics(&self) -> Arc<libp2p::metrics::Registry> {
        self.registry.clone()
    }

    /// The control socket's path.
    pub fn control_socket(&self) -> &std::path::Path {
        &self.socket
    }

    /// Stops accepting control connections, writes snapshots, closes the store.
    pub async fn shutdown(mut self) -> Result<(), NodeError> {
        // The store check holds the store open: it stops first.
        if let Some((thread, stop)) = self.store_check.take() {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        let _ = self.stop_control.send(true);
        let _ = (&mut self.control_task).await;
        self.housekeeping.abort();
        if let Some(network) = self.network.take() {
            network.shutdown().await;
        }
        if let Some(thread) = self.actor_thread.take() {
            crate::node::shutdown_actor(&self.handle, thread, self.store_dir.clone()).await?;
        }
        let _ = std::fs::remove_file(&self.socket);
        info!("node stopped");
        Ok(())
    }
}

/// Opens the store, verifies and loads every document, and starts the documents actor,
/// the network (if configured) and the control API. Must be called inside a tokio runtime.
pub async fn start(config: Config) -> Result<RunningNode, NodeError> {
    let StartedActor {
        handle,
        thread: actor_thread,
        config,
        network_id,
        identity,
        network_status,
        outbound,
        store_check: (check_store, check_status),
    } = crate::node::start_actor(config).await?;
    let org_id = handle.org_id();

    // libp2p's metrics, filled by the network, read by `[metrics]`.
    let mut registry = libp2p::metrics::Registry::default();
    let network = match (config.network.clone(), outbound) {
        (Some(network_config), Some((outbound, members))) => {
            match crate::network::spawn(
                identity.signing(),
                network_config,
                network_id,
                crate::network::NodeLinks {
                    handle: handle.clone(),
                    outbound,
                    status: network_status,
                    members,
                },
                &mut registry,
            )
            .await
            {
                Ok(network) => Some(network),
                Err(e) => {
                    crate::node::stop_actor(&handle, actor_thread).await;
                    return Err(e);
                }
            }
        }
        _ => None,
    };
    let socket = config.control_socket();
    let listener = match crate::control::bind(&socket).await {
        Ok(listener) => listener,
        Err(e) => {
            if let Some(network) = network {
                network.shutdown().await;
            }
            crate::node::stop_actor(&handle, actor_thread).await;
            return Err(e);
        }
    };
    let (stop_control, stop_rx) = watch::channel(false);
    let control_task = tokio::spawn(crate::control::serve(listener, handle.clone(), stop_rx));
    let housekeeping = {
        let handle = handle.clone();
        let every = config.housekeeping_interval;
        tokio::spawn(async move {
            // The first round comes one interval after start, not at once: it folds the
            // whole board (half a second at national scale), and the node answers its
            // first queries before that.
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match handle.housekeeping().await {
                    Ok(()) => {}
                    Err(NodeError::Stopped) => break,
                    Err(e) => warn!(error = %e, "referral housekeeping failed"),
                }
            }
        })
    };
    info!(org = %org_id, fingerprint = %org_id.fingerprint(), socket = %socket.display(), "node started");
    let store_check = match config.store_check_after {
        Some(after) => {
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let thread =
                crate::node::spawn_store_check(check_store, after, check_status, stop.clone())
                    .map_err(|source| NodeError::Io {
                        context: "starting the store check".into(),
                        source,
                    })?;
            Some((thread, stop))
        }
        None => {
            drop(check_store);
            None
        }
    };
    Ok(RunningNode {
        handle,
        store_check,
        stop_control,
        control_task,
        housekeeping,
        actor_thread: Some(actor_thread),
        network,
        socket,
        store_dir: config.store_dir(),
        registry: Arc::new(registry),
    })
}
