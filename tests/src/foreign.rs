//! A foreign libp2p peer: js-libp2p (`tests/foreign/peer.mjs`), another implementation than
//! the node's, run with Node.js. What it was given comes back as [`ForeignEvent`]s.
//!
//! Its npm packages are pinned in `tests/foreign/package-lock.json`; `.ci/run` installs
//! them, and the first test to need them installs them if they are missing
//! (`npm ci --prefix tests/foreign`).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The folder of the foreign peer's script and packages.
pub fn folder() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("foreign")
}

static INSTALL: Mutex<()> = Mutex::new(());

/// Installs the pinned npm packages if they are not there yet.
pub fn ensure_installed() {
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = folder();
    if dir.join("node_modules").join("libp2p").exists() {
        return;
    }
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .status()
        .expect("the foreign peer needs Node.js and npm (Debian: apt-get install nodejs npm)");
    assert!(
        status.success(),
        "npm ci --prefix {} failed: the foreign peer's packages are missing",
        dir.display()
    );
}

/// What the foreign peer should do.
#[derive(Debug, Clone, Default)]
pub struct ForeignOptions {
    /// The node to dial (a multiaddr with `/p2p/<id>` or without).
    pub dial: String,
    /// The network's gossip topic.
    pub topic: String,
    /// The network id, for the catch-up request.
    pub network: String,
    /// How long it stays.
    pub seconds: u64,
    /// Its key: `None` for a fresh ed25519 key, `Some("secp256k1")` for a fresh secp256k1
    /// key.
    pub key_type: Option<String>,
    /// An ed25519 secret (32 bytes) to use as its key instead.
    pub seed: Option<[u8; 32]>,
    /// Send this many catch-up requests as fast as they go (a flood).
    pub flood_sync: Option<u64>,
    /// While flooding, hang up and dial again after every this many requests (to see
    /// whether reconnecting refills its budget).
    pub redial_every: Option<u64>,
}

/// A running foreign peer and what it reported so far.
#[derive(Debug)]
pub struct ForeignPeer {
    child: Child,
    events: Arc<Mutex<Vec<Value>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl ForeignPeer {
    /// Starts it.
    pub fn spawn(options: &ForeignOptions) -> Self {
        ensure_installed();
        let mut command = Command::new("node");
        command
            .arg(folder().join("peer.mjs"))
            .args(["--dial", &options.dial])
            .args(["--topic", &options.topic])
            .args(["--network", &options.network])
            .args(["--seconds", &options.seconds.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(key) = &options.key_type {
            command.args(["--key", key]);
        }
        if let Some(count) = options.flood_sync {
            command.args(["--flood-sync", &count.to_string()]);
        }
        if let Some(every) = options.redial_every {
            command.args(["--redial-every", &every.to_string()]);
        }
        if let Some(seed) = &options.seed {
            let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
            command.args(["--seed", &hex]);
        }
        let mut child = command.spawn().expect("start node (Node.js)");
        let stdout = child.stdout.take().expect("piped stdout");
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let reader = tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({"event": "text", "text": line}));
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(value);
            }
        });
        Self {
            child,
            events,
            reader,
        }
    }

    /// Every event reported so far.
    pub fn events(&self) -> Vec<Value> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The events of one kind reported so far.
    pub fn events_of(&self, kind: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == kind)
            .collect()
    }

    /// Its peer id, once it said it.
    pub fn peer_id(&self) -> Option<String> {
        self.events_of("peer")
            .first()
            .and_then(|e| e["id"].as_str().map(str::to_owned))
    }

    /// Stops it now (SIGTERM, before its `seconds` are up: it reports as at its end), and
    /// returns every event.
    pub async fn stop(mut self) -> Vec<Value> {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        if tokio::time::timeout(crate::TIMEOUT, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
        }
        let _ = tokio::time::timeout(crate::TIMEOUT, &mut self.reader).await;
        self.events()
    }

    /// Waits for it to finish (it stops by itself after its `seconds`), and returns every
    /// event.
    pub async fn finish(mut self) -> Vec<Value> {
        let status = tokio::time::timeout(crate::TIMEOUT * 2, self.child.wait())
            .await
            .expect("the foreign peer stops after its time")
            .expect("wait for the foreign peer");
        let _ = (&mut self.reader).await;
        assert!(status.success(), "the foreign peer failed: {status}");
        self.events()
    }
}
